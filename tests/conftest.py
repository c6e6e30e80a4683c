import importlib.util

import pytest


def pytest_collection_modifyitems(config, items):
    """Skip TensorRT-marked tests, with the reason, wherever TensorRT cannot be imported."""
    if importlib.util.find_spec("tensorrt") is not None:
        return
    skip = pytest.mark.skip(reason="TensorRT is not importable here (no NVIDIA GPU / TensorRT on this machine)")
    for item in items:
        if "tensorrt" in item.keywords:
            item.add_marker(skip)
