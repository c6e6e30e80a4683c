"""Which backend is best on this machine, and why: TensorRT, else PyTorch on CUDA (FP16 + CUDA
graph), else ONNX Runtime on CUDA, else ONNX Runtime on the CPU.

Only looks at what is importable and what the libraries report; loads no model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from toolkit.device import cuda_index, is_cuda, onnxruntime_providers, require_torch_device
from toolkit.errors import DependencyError


@dataclass(frozen=True)
class BackendChoice:
    """The backend to use and the settings that make it fast.

    Attributes:
        backend: "tensorrt", "torch" or "onnxruntime".
        device: "cpu", "cuda" or "cuda:N".
        precision: "fp16" for the PyTorch GPU path, else None (the model's own).
        cuda_graph: replay the forward pass as a CUDA graph.
        reason: one line saying why this one, for the user.
    """

    backend: str
    device: str
    precision: str | None
    cuda_graph: bool
    reason: str


def tensorrt_importable() -> bool:
    """TensorRT and a CUDA binding (pycuda or cuda-python) are importable."""
    has_cuda = any(importlib.util.find_spec(m) is not None for m in ("pycuda", "cuda"))
    return importlib.util.find_spec("tensorrt") is not None and has_cuda


def _torch_cuda_problem(device: str) -> str | None:
    try:
        require_torch_device(device)
    except DependencyError as exc:
        return str(exc)
    return None


def _ort_cuda_problem(device: str) -> str | None:
    try:
        onnxruntime_providers(device)
    except (DependencyError, ImportError) as exc:
        return str(exc)
    return None


def choose_backend(device: str | None = None) -> BackendChoice:
    """The best backend here for ``device`` (None: any; "cpu": ONNX Runtime on the CPU).

    Raises:
        DependencyError: a CUDA device asked for that no backend can use here.
    """
    if device == "cpu":
        return BackendChoice("onnxruntime", "cpu", None, False, "--device cpu: ONNX Runtime on the CPU")
    gpu = device or "cuda"
    if tensorrt_importable() and cuda_index(gpu) == 0:
        return BackendChoice("tensorrt", "cuda", None, False, "TensorRT and a CUDA binding are importable")
    torch_problem = _torch_cuda_problem(gpu)
    if torch_problem is None:
        return BackendChoice("torch", gpu, "fp16", True,
                             "no TensorRT here; PyTorch sees a CUDA GPU: FP16 weights replayed as a CUDA graph")
    ort_problem = _ort_cuda_problem(gpu)
    if ort_problem is None:
        return BackendChoice("onnxruntime", gpu, None, False,
                             "no TensorRT, no CUDA PyTorch; ONNX Runtime has the CUDA execution provider")
    if is_cuda(device or "cpu"):
        raise DependencyError(torch_problem)
    return BackendChoice("onnxruntime", "cpu", None, False,
                         "no TensorRT and no usable CUDA GPU (PyTorch or ONNX Runtime): ONNX Runtime on the CPU")
