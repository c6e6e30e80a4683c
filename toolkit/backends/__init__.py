"""Runners: one interface, ``infer(left, right) -> Prediction``, for every backend.

``open_runner`` picks the backend from the model file's suffix; each backend module is
imported only when chosen, so ONNX Runtime users never import PyTorch and nobody imports
TensorRT by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import InputError

BACKEND_BY_SUFFIX = {
    ".pth": "torch",
    ".pt": "torch",
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
}
BACKEND_ALIASES = {"torch": "torch", "pytorch": "torch", "onnxruntime": "onnxruntime", "ort": "onnxruntime",
                   "tensorrt": "tensorrt", "trt": "tensorrt"}
# Options that only a checkpoint can honour: an ONNX model or engine has them baked in.
CHECKPOINT_ONLY = ("iters", "max_disp")


def backend_for(model_path: str | os.PathLike, backend: str | None = None) -> str:
    """The backend name for a model file: an explicit ``backend`` wins, else the suffix decides.

    Raises:
        InputError: an unknown backend name or suffix.
    """
    if backend is not None:
        if backend.lower() not in BACKEND_ALIASES:
            raise InputError(f"--backend {backend!r}: expected one of {sorted(set(BACKEND_ALIASES.values()))}")
        return BACKEND_ALIASES[backend.lower()]
    suffix = Path(model_path).suffix.lower()
    if suffix not in BACKEND_BY_SUFFIX:
        raise InputError(
            f"{model_path}: cannot tell the backend from suffix {suffix or '(none)'!r}; "
            f"expected one of {', '.join(sorted(BACKEND_BY_SUFFIX))} or --backend"
        )
    return BACKEND_BY_SUFFIX[suffix]


def open_runner(model_path: str | os.PathLike, backend: str | None = None, **opts):
    """Create (not activate) the runner for a model file.

    Options left at None mean "the default" and are not passed on. A checkpoint-only
    option (iters, max_disp) given for an ONNX model or engine is refused rather than
    silently ignored, since those have it baked in; ``size`` must fit the model's own.

    Args:
        model_path: checkpoint (.pth/.pt), ONNX (.onnx) or TensorRT engine (.engine/.plan).
        backend: force a backend ("torch", "onnxruntime", "tensorrt"); None chooses by suffix.
        **opts: runner options. torch: iters, max_disp, device, size, threads;
            onnxruntime: threads, providers, size, device ("cpu" or "cuda"); tensorrt: passed to
            ``toolkit.backends.tensorrt.TensorRTRunner`` (``device`` is not: TensorRT runs on
            the current CUDA device).

    Returns:
        A Runner; use it as a context manager.

    Raises:
        InputError: missing file, unknown suffix or backend, an option the backend cannot honour.
    """
    path = Path(model_path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file; expected a checkpoint, ONNX model or TensorRT engine")
    name = backend_for(path, backend)
    opts = {key: value for key, value in opts.items() if value is not None}
    if name == "torch":
        from toolkit.backends.torch_runner import TorchRunner

        return TorchRunner(path, **opts)
    baked = [key for key in CHECKPOINT_ONLY if key in opts]
    if baked:
        option = "--" + baked[0].replace("_", "-")
        raise InputError(f"{option} applies to checkpoints only; {path.name} has it baked in at export")
    device = opts.pop("device", "cpu")
    if name == "onnxruntime":
        from toolkit.backends.onnxrt import OnnxRuntimeRunner

        if "providers" not in opts and str(device).startswith("cuda"):
            opts["providers"] = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return OnnxRuntimeRunner(path, **opts)
    from toolkit.backends.tensorrt import TensorRTRunner

    return TensorRTRunner(path, **opts)
