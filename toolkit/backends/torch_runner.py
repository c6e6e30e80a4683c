"""PyTorch runner: the reference every other backend is checked against."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.backends.base import Runner
from toolkit.errors import DependencyError, InputError


def import_torch():
    """Import PyTorch or explain how to get it (the runtime install on a Jetson has none)."""
    try:
        import torch
    except ImportError:
        raise DependencyError("PyTorch is not installed; expected `pip install stereo-trt[torch]`") from None
    return torch


def load_checkpoint(path: Path, max_disp: int | None = None, device: str = "cpu"):
    """``load_student`` with an optional max_disp override: (model in eval mode, config, info)."""
    import dataclasses

    from toolkit.model import load_student

    model, config, info = load_student(path, map_location=device)
    if max_disp is not None and max_disp != config.max_disp:
        config = dataclasses.replace(config, max_disp=max_disp)
        model, config, info = load_student(path, config=config, map_location=device)
    return model, config, info


class TorchRunner(Runner):
    """Runs the student (or any module with its contract) in eager PyTorch.

    Args:
        checkpoint_or_model: a checkpoint path (loaded with ``toolkit.model.load_student``) or
            an ``nn.Module`` whose ``forward(left, right, iters=None)`` returns (B, 1, H, W).
        iters: refinement iterations; None uses the model's own default.
        max_disp: cost-volume range in pixels for a checkpoint (the weights do not depend on
            it); None keeps the checkpoint's. Not accepted with a module.
        device: torch device string ("cpu", "cuda").
        size: fixed network input (H, W), or None to pad each pair to the next multiple of 32.
        threads: intra-op CPU threads (``torch.set_num_threads``), or None to leave PyTorch's choice.

    The student's confidence (``toolkit.model.confidence``) comes with every prediction: it
    costs a few elementwise ops. A module whose forward takes no ``confidence`` argument
    gives disparity only.
    """

    name = "torch"
    precision = "fp32"

    def __init__(self, checkpoint_or_model, iters: int | None = None, device: str = "cpu",
                 size: tuple[int, int] | None = None, threads: int | None = None,
                 max_disp: int | None = None) -> None:
        super().__init__()
        if iters is not None and iters < 1:
            raise InputError(f"--iters {iters}: expected a positive number of refinement iterations")
        if max_disp is not None and not isinstance(checkpoint_or_model, (str, os.PathLike)):
            raise InputError("--max-disp needs a checkpoint path; a ready-made module keeps its own")
        if max_disp is not None and (max_disp < 32 or max_disp % 32):
            raise InputError(f"--max-disp {max_disp}: expected a multiple of 32 (the cost volume's max_disp/4 "
                             "planes go through three stride-2 steps)")
        self.source = checkpoint_or_model
        self.iters = iters
        self.max_disp = max_disp
        self.device = device
        self.input_hw = size
        self.threads = threads
        self.model = None
        self.config = None
        self.info: dict = {}

    def activate_impl(self) -> None:
        torch = import_torch()
        from toolkit.model.confidence import accepts_confidence

        if self.threads:
            torch.set_num_threads(self.threads)
        if isinstance(self.source, (str, os.PathLike)):
            self.model, self.config, self.info = load_checkpoint(Path(self.source), self.max_disp, self.device)
        else:
            self.model = self.source.to(self.device).eval()
        self.with_confidence = accepts_confidence(self.model)
        self.torch = torch

    def deactivate_impl(self) -> None:
        self.model = None

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            left = torch.from_numpy(feed["left"]).to(self.device)
            right = torch.from_numpy(feed["right"]).to(self.device)
            if self.with_confidence:
                disparity, confidence = self.model(left, right, iters=self.iters, confidence=True)
            else:
                disparity, confidence = self.model(left, right, iters=self.iters), None
            if self.device != "cpu":
                # Synchronise inside the timed region so infer_ms is the real GPU time.
                torch.cuda.synchronize()
        outputs = {"disparity": disparity.float().cpu().numpy()}
        if confidence is not None:
            outputs["confidence"] = confidence.float().cpu().numpy()
        return outputs
