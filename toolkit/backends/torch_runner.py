"""PyTorch runner: the reference every other backend is checked against, and a fast GPU path.

Eager FP32 is the reference. On a CUDA device two options make PyTorch fast without
TensorRT (eager PyTorch on a GPU is bound by its ~1,760 kernel launches a pass, not by the
GPU):

* ``precision="fp16"``: half weights, with the layers that ``export --fp16`` keeps in FP32
  (normalisation: ``FP32_MODULE_OPS``) kept in FP32, and the forward run under autocast so
  softmax and sums (the other ops of ``toolkit.export_fp16.KEEP_FP32_OPS``) compute in FP32;
* ``cuda_graph=True``: the whole forward captured once as a CUDA graph at the fixed network
  size, then replayed: static device inputs, pinned host buffers, non-blocking copies.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from toolkit.backends.base import Runner
from toolkit.errors import DependencyError, InputError, ModelError
from toolkit.preprocess import INPUT_NAMES

# PyTorch module class name -> the ONNX op it exports as; a module whose op
# ``toolkit.export_fp16.KEEP_FP32_OPS`` keeps in FP32 stays FP32 in the FP16 model too.
FP32_MODULE_OPS = {
    "InstanceNorm1d": "InstanceNormalization", "InstanceNorm2d": "InstanceNormalization",
    "InstanceNorm3d": "InstanceNormalization", "LayerNorm": "LayerNormalization",
    "GroupNorm": "GroupNormalization",
}
# untimed passes on a side stream before capture: cuDNN picks its algorithms and allocates
# workspaces there, which must not happen inside the graph
GRAPH_WARMUP = 3


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


def keeps_fp32(module) -> bool:
    """Whether ``module`` stays FP32 in the FP16 model (see ``FP32_MODULE_OPS``)."""
    from toolkit.export_fp16 import KEEP_FP32_OPS

    return FP32_MODULE_OPS.get(type(module).__name__) in KEEP_FP32_OPS


def _to_fp32_input(module, args):
    return tuple(a.float() if hasattr(a, "is_floating_point") and a.is_floating_point() else a for a in args)


def half_model(model):
    """Convert ``model`` in place to half weights, keeping FP32 the modules ``keeps_fp32`` names.

    A kept module gets its parameters back in FP32 and a forward pre-hook that casts its
    input to FP32, so its statistics are computed in FP32; the next layer casts back to
    FP16 under autocast.

    Returns:
        the model, and the names of the modules kept in FP32.
    """
    model.half()
    kept = []
    for name, module in model.named_modules():
        if keeps_fp32(module):
            module.float()
            module.register_forward_pre_hook(_to_fp32_input)
            kept.append(name)
    return model, kept


class CudaGraphForward:
    """The model's forward at one network size, captured once as a CUDA graph and replayed.

    Follows ``torch.cuda.graphs``: warm-up on a side stream, capture with static input
    tensors; each call copies the feed into pinned host buffers, from there to the static
    inputs with ``non_blocking=True``, replays, and copies the outputs back to pinned host
    buffers before one synchronisation.

    Args:
        torch: the torch module.
        forward: callable(left, right) -> dict of (1, 1, H, W) float32 device tensors.
        device: a CUDA device string.
        input_hw: the network size (H, W).
    """

    def __init__(self, torch, forward, device: str, input_hw: tuple[int, int]) -> None:
        self.torch = torch
        shape = (1, 3) + tuple(input_hw)
        self.host_inputs = {name: torch.empty(shape, dtype=torch.float32).pin_memory() for name in INPUT_NAMES}
        self.static_inputs = {name: torch.zeros(shape, dtype=torch.float32, device=device) for name in INPUT_NAMES}
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP):
                forward(**self.static_inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(self.graph):
                self.static_outputs = forward(**self.static_inputs)
        except RuntimeError as exc:
            raise ModelError(f"the forward pass cannot be captured as a CUDA graph ({str(exc).splitlines()[0][:160]})"
                             ) from None
        self.host_outputs = {name: torch.empty(value.shape, dtype=torch.float32).pin_memory()
                             for name, value in self.static_outputs.items()}

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name in INPUT_NAMES:
            self.host_inputs[name].numpy()[...] = feed[name]
            self.static_inputs[name].copy_(self.host_inputs[name], non_blocking=True)
        self.graph.replay()
        for name, value in self.static_outputs.items():
            self.host_outputs[name].copy_(value, non_blocking=True)
        # one wait for the whole call (copies and replay share the current stream): inside the
        # timed region, so infer_ms is the real GPU time
        self.torch.cuda.current_stream().synchronize()
        return {name: value.numpy().copy() for name, value in self.host_outputs.items()}


class TorchRunner(Runner):
    """Runs the student (or any module with its contract) in PyTorch.

    Args:
        checkpoint_or_model: a checkpoint path (loaded with ``toolkit.model.load_student``) or
            an ``nn.Module`` whose ``forward(left, right, iters=None)`` returns (B, 1, H, W).
        iters: refinement iterations; None uses the model's own default.
        max_disp: cost-volume range in pixels for a checkpoint (the weights do not depend on
            it); None keeps the checkpoint's. Not accepted with a module.
        device: torch device string ("cpu", "cuda", "cuda:N"); checked by ``open_runner``.
        size: fixed network input (H, W), or None to pad each pair to the next multiple of 32.
        threads: intra-op CPU threads (``torch.set_num_threads``), or None to leave PyTorch's choice.
        precision: "fp32", or "fp16" (CUDA only; see the module doc).
        cuda_graph: capture the forward as a CUDA graph at ``size`` (CUDA only; needs ``size``).

    The student's confidence (``toolkit.model.confidence``) comes with every prediction: it
    costs a few elementwise ops. A module whose forward takes no ``confidence`` argument
    gives disparity only.
    """

    name = "torch"

    def __init__(self, checkpoint_or_model, iters: int | None = None, device: str = "cpu",
                 size: tuple[int, int] | None = None, threads: int | None = None,
                 max_disp: int | None = None, precision: str = "fp32", cuda_graph: bool = False) -> None:
        super().__init__()
        if iters is not None and iters < 1:
            raise InputError(f"--iters {iters}: expected a positive number of refinement iterations")
        if max_disp is not None and not isinstance(checkpoint_or_model, (str, os.PathLike)):
            raise InputError("--max-disp needs a checkpoint path; a ready-made module keeps its own")
        if precision not in ("fp32", "fp16"):
            raise InputError(f"--precision {precision}: expected fp32 or fp16")
        if (precision == "fp16" or cuda_graph) and device == "cpu":
            raise InputError(f"{'--precision fp16' if precision == 'fp16' else '--cuda-graph'} needs a CUDA device; "
                             "add --device cuda")
        if cuda_graph and size is None:
            raise InputError("--cuda-graph needs --size HxW: a CUDA graph is captured at one network size")
        if max_disp is not None and (max_disp < 32 or max_disp % 32):
            raise InputError(f"--max-disp {max_disp}: expected a multiple of 32 (the cost volume's max_disp/4 "
                             "planes go through three stride-2 steps)")
        self.source = checkpoint_or_model
        self.iters = iters
        self.max_disp = max_disp
        self.device = device
        self.input_hw = None if size is None else tuple(size)
        self.threads = threads
        self.precision = precision
        self.cuda_graph = cuda_graph
        self.providers = ("CUDA graph",) if cuda_graph else ("eager",)
        self.model = None
        self.config = None
        self.graphed = None
        self.fp32_modules: list = []
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
        if self.precision == "fp16":
            self.model, self.fp32_modules = half_model(self.model)
        self.with_confidence = accepts_confidence(self.model)
        self.torch = torch
        if self.cuda_graph:
            with torch.cuda.device(self.device):
                self.graphed = CudaGraphForward(torch, self.forward, self.device, self.input_hw)

    def deactivate_impl(self) -> None:
        self.model = None
        self.graphed = None

    def forward(self, left, right) -> dict:
        """The network on device tensors: {"disparity", maybe "confidence"} as float32 (1, 1, H, W)."""
        torch = self.torch
        # no_grad rather than inference_mode: the graph's static outputs are read after capture
        with torch.no_grad(), self.autocast():
            if self.with_confidence:
                disparity, confidence = self.model(left, right, iters=self.iters, confidence=True)
            else:
                disparity, confidence = self.model(left, right, iters=self.iters), None
            outputs = {"disparity": disparity.float()}
            if confidence is not None:
                outputs["confidence"] = confidence.float()
        return outputs

    def autocast(self):
        """FP16 autocast for the FP16 model (softmax and sums then run in FP32); nothing for FP32.

        The weight cast cache is off: it must not outlive a graph capture.
        """
        if self.precision != "fp16":
            return contextlib.nullcontext()
        return self.torch.autocast("cuda", dtype=self.torch.float16, cache_enabled=False)

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.graphed is not None:
            with self.torch.cuda.device(self.device):
                return self.graphed(feed)
        torch = self.torch
        left = torch.from_numpy(feed["left"]).to(self.device)
        right = torch.from_numpy(feed["right"]).to(self.device)
        outputs = self.forward(left, right)
        if self.device != "cpu":
            # Synchronise inside the timed region so infer_ms is the real GPU time.
            torch.cuda.synchronize(self.device)
        return {name: value.cpu().numpy() for name, value in outputs.items()}
