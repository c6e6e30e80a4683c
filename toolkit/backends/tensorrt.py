"""TensorRT runner: a built engine behind the common Runner interface.

The engine work lives in ``toolkit.trt.runtime.EngineSession``; this class adds what every
runner shares (preprocessing in the base class, warm-up, timing). Construction checks that
TensorRT and a CUDA module are importable, so ``stereo-trt run --backend trt`` on a machine
without them stops at once with one line naming the missing module.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.backends.base import Runner
from toolkit.errors import InputError, ModelError
from toolkit.preprocess import INPUT_NAMES, check_network_size
from toolkit.trt import cuda_mem
from toolkit.trt.deps import import_tensorrt
from toolkit.trt.runtime import EngineSession


class TensorRTRunner(Runner):
    """Runs an engine built by ``stereo-trt build`` on this device.

    Args:
        path: the .engine/.plan file (its ``.json`` sidecar is checked against this machine).
        size: network size (H, W) for an engine with dynamic shapes; None pads each pair to the
            next multiple of 32 (which must lie in one of the engine's profiles). For a
            fixed-size engine it must equal the size the engine was built for.
        cuda_graph: replay inference as a CUDA graph (needs cuda-python).
        warmup: untimed runs at activation, so the first timed call is not a cold start.
        verbose: TensorRT's verbose log.
        threads: CPU thread count, which TensorRT has no use for: refused when given, so a
            ``--threads`` meant for ONNX Runtime or PyTorch is not silently ignored.

    Raises:
        DependencyError: tensorrt, or both pycuda and cuda-python, are not importable.
        ModelError: missing engine file.
        InputError: a bad size or warm-up count, or ``threads``.
    """

    name = "tensorrt"
    device = "cuda"
    providers = ("TensorRT",)

    def __init__(self, path: str | os.PathLike, size: tuple | None = None, cuda_graph: bool = False,
                 warmup: int = 3, verbose: bool = False, threads: int | None = None) -> None:
        super().__init__()
        if threads is not None:
            raise InputError("--threads applies to ONNX Runtime and PyTorch; TensorRT runs on the GPU")
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such engine file; build one with `stereo-trt build`")
        if warmup < 0:
            raise InputError(f"warm-up runs {warmup}: expected 0 or more")
        import_tensorrt()
        cuda_mem.require_backend(need_graphs=cuda_graph)
        self.session = EngineSession(self.path, cuda_graph=cuda_graph, verbose=verbose)
        sidecar = self.session.sidecar or {}
        self.precision = sidecar.get("precision", "unknown")
        self.requested_hw = None if size is None else tuple(size)
        if self.requested_hw is not None:
            check_network_size(self.requested_hw, "size")
        hw = sidecar.get("input_hw")
        self.input_hw = self.requested_hw or (tuple(hw) if hw else None)
        self.warmup = warmup

    def activate_impl(self) -> None:
        try:
            self.session.open()
            self.settle_input_size()
            self.warm_up()
        except BaseException:
            self.session.close()  # activation failed: deactivate will not be called
            raise

    def settle_input_size(self) -> None:
        """A fixed-size engine decides the network size; a requested size must agree with it."""
        fixed = self.session.fixed_hw()
        if fixed is None:
            return
        if self.requested_hw is not None and self.requested_hw != fixed:
            raise InputError(f"size {self.requested_hw}: {self.path.name} is built for {fixed[0]}x{fixed[1]} only")
        self.input_hw = fixed

    def warm_up(self) -> None:
        """Untimed runs (and the CUDA-graph capture) before the first timed call."""
        warm_hw = self.input_hw or self.session.warmup_hw()
        zeros = np.zeros((1, 3) + tuple(warm_hw), dtype=np.float32)
        for _ in range(self.warmup):
            self.session.run({name: zeros for name in INPUT_NAMES})

    def deactivate_impl(self) -> None:
        self.session.close()

    def infer_impl(self, feed: dict) -> dict:
        return self.session.run(feed)
