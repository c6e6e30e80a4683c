"""Which device a command runs on: ``cpu``, ``cuda`` or ``cuda:N``, parsed and checked up front.

The CLI parses ``--device`` text with ``parse_device``; the library holds the normalised
string and checks it with ``require_torch_device`` / ``onnxruntime_providers`` before any
slow work, so a machine without a usable GPU gets one line that says what is missing.
PyTorch and ONNX Runtime are imported only inside the checks.
"""

from __future__ import annotations

import re

from toolkit.errors import DependencyError, InputError

_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")
DOCTOR_HINT = "run 'stereo-trt doctor' to see what this machine can run"


def parse_device(text: str | None, option: str = "--device") -> str:
    """Normalise device text: ``cpu``, ``cuda`` or ``cuda:N`` (``cuda:0`` stays ``cuda:0``).

    Raises:
        InputError: anything else, naming ``option``.
    """
    if text is None:
        return "cpu"
    match = _DEVICE.fullmatch(str(text).strip().lower())
    if match is None or (match.group(1) == "cpu" and match.group(2) is not None):
        raise InputError(f"{option} {text!r}: expected cpu, cuda or cuda:N (N = GPU index)")
    return match.group(0)


def cuda_index(device: str) -> int | None:
    """The GPU index of a normalised device: None for cpu, 0 for plain ``cuda``."""
    if device == "cpu":
        return None
    _, _, index = device.partition(":")
    return int(index) if index else 0


def is_cuda(device: str) -> bool:
    return device != "cpu"


def require_torch_device(device: str, option: str = "--device") -> None:
    """Check that PyTorch can run on ``device`` here.

    Raises:
        DependencyError: PyTorch is missing, was built without CUDA, sees no GPU, or has
            fewer GPUs than the index asks for.
    """
    if not is_cuda(device):
        return
    try:
        import torch
    except ImportError:
        raise DependencyError(f"{option} {device}: PyTorch is not installed; {DOCTOR_HINT}") from None
    if torch.version.cuda is None:
        raise DependencyError(f"{option} {device}: this PyTorch ({torch.__version__}) is a CPU-only build; {DOCTOR_HINT}")
    if not torch.cuda.is_available():
        raise DependencyError(f"{option} {device}: PyTorch {torch.__version__} sees no usable CUDA GPU; {DOCTOR_HINT}")
    count = torch.cuda.device_count()
    if cuda_index(device) >= count:
        raise DependencyError(f"{option} {device}: this machine has {count} CUDA GPU(s), indices 0..{count - 1}; {DOCTOR_HINT}")


def onnxruntime_providers(device: str, option: str = "--device") -> list:
    """ONNX Runtime execution providers for ``device``: ``cpu`` is CPU only, even where CUDA exists.

    ``cuda:N`` keeps its index through the CUDA provider's ``device_id``.

    Raises:
        DependencyError: CUDA asked for and this ONNX Runtime has no CUDA provider.
    """
    if not is_cuda(device):
        return ["CPUExecutionProvider"]
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise DependencyError(
            f"{option} {device}: this ONNX Runtime has no CUDAExecutionProvider (install onnxruntime-gpu); {DOCTOR_HINT}"
        )
    return [("CUDAExecutionProvider", {"device_id": cuda_index(device)}), "CPUExecutionProvider"]
