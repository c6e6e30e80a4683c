"""Importing TensorRT lazily, with one clear line when it is missing.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import importlib

from toolkit.errors import DependencyError

DOCTOR_HINT = "run `stereo-trt doctor` to see what this machine has and how to install the rest"


def missing_module_message(module: str, needed_for: str) -> str:
    """The one-line message for a missing optional module."""
    return f"the Python module `{module}` is not installed ({needed_for}); {DOCTOR_HINT}"


def import_tensorrt():
    """Import and return the ``tensorrt`` module.

    Raises:
        DependencyError: TensorRT's Python bindings are not importable here.
    """
    try:
        return importlib.import_module("tensorrt")
    except ImportError:
        raise DependencyError(missing_module_message("tensorrt", "TensorRT builds and runs engines")) from None
