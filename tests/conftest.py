import importlib.util

import pytest


def _cuda_skip_reason() -> str | None:
    """Why CUDA-marked tests cannot run here, or None when PyTorch sees a CUDA GPU."""
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed"
    import torch

    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is a CPU-only build"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA GPU on this machine"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip TensorRT- and CUDA-marked tests, with the reason, where they cannot run."""
    reasons = {}
    if importlib.util.find_spec("tensorrt") is None:
        reasons["tensorrt"] = "TensorRT is not importable here (no NVIDIA GPU / TensorRT on this machine)"
    if any("cuda" in item.keywords for item in items):
        cuda_reason = _cuda_skip_reason()
        if cuda_reason is not None:
            reasons["cuda"] = cuda_reason
    for item in items:
        for marker, reason in reasons.items():
            if marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
