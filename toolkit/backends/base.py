"""The runner contract shared by PyTorch, ONNX Runtime and TensorRT.

A runner is a context manager: ``activate`` loads what it needs, ``deactivate`` frees
it. ``infer`` checks and preprocesses the pair once, here, through ``toolkit.preprocess``;
a backend only fills ``infer_impl`` (feed dict in, output dict out) and reports the time
its own inference took.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from toolkit import preprocess
from toolkit.errors import StereoTrtError


@dataclass
class Prediction:
    """What a runner returns for one pair.

    Attributes:
        disparity: HxW float32 disparity in source pixels (x_right = x_left - d).
        confidence: HxW float32 in [0, 1], or None when the model has no confidence output.
        infer_ms: time spent in the backend's own inference call, milliseconds.
        total_ms: preprocessing + inference + postprocessing, milliseconds.
    """

    disparity: np.ndarray
    confidence: np.ndarray | None
    infer_ms: float
    total_ms: float


class Runner(ABC):
    """Base runner: subclasses set ``name``/``precision`` and implement the ``*_impl`` hooks.

    Attributes:
        name: backend name shown in reports ("torch", "onnxruntime", "tensorrt").
        precision: "fp32", "fp16" or "int8".
        input_hw: fixed network input size, or None when the model takes any multiple of 32.
        device: where inference runs ("cpu", "cuda", "cuda:N").
        providers: what executes it there, as reports show it (ONNX Runtime: the session's
            execution providers once active; PyTorch: eager or CUDA graph).
    """

    name: str = "runner"
    precision: str = "fp32"
    input_hw: tuple[int, int] | None = None
    device: str = "cpu"
    providers: tuple = ()

    def __init__(self) -> None:
        self.is_active = False

    def __enter__(self) -> "Runner":
        self.activate()
        return self

    def __exit__(self, *exc) -> None:
        self.deactivate()

    def activate(self) -> None:
        if not self.is_active:
            self.activate_impl()
            self.is_active = True

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def infer(self, left: np.ndarray, right: np.ndarray) -> Prediction:
        """Estimate disparity for one decoded pair (HxWx3 uint8 RGB, or what ``as_rgb8`` accepts)."""
        if not self.is_active:
            raise StereoTrtError(f"{self.name} runner used before activate(); use it as a context manager")
        start = time.perf_counter()
        prepared = preprocess.prepare_pair(left, right, self.input_hw)
        outputs, infer_ms = self.infer_feed(prepared.feed)
        disparity = preprocess.restore_disparity(outputs["disparity"], prepared.geometry)
        confidence = outputs.get("confidence")
        if confidence is not None:
            confidence = preprocess.crop_to_source(confidence, prepared.geometry)
        total_ms = (time.perf_counter() - start) * 1000.0
        return Prediction(disparity, confidence, infer_ms, total_ms)

    def infer_feed(self, feed: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """Run an already preprocessed feed dict; returns the outputs and the inference time in ms."""
        start = time.perf_counter()
        outputs = self.infer_impl(feed)
        return outputs, (time.perf_counter() - start) * 1000.0

    def activate_impl(self) -> None:
        """Load the model; called once by ``activate``."""

    def deactivate_impl(self) -> None:
        """Free what ``activate_impl`` took."""

    @abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network on a feed dict; return at least ``{"disparity": (1, 1, H, W)}``."""
