"""One exception hierarchy for every user-facing failure.

Each message is one line: what happened, then what was expected. The CLI turns
any ``StereoTrtError`` into exit code 2 without a traceback.
"""


class StereoTrtError(Exception):
    """Base class: a failure the user can fix (bad input, missing dependency, failed check)."""


class InputError(StereoTrtError):
    """A file, folder or option given by the user is missing, unreadable or malformed."""


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded into the student network."""


class ModelError(InputError):
    """An ONNX model or engine that is not one of ours, or does not fit the request."""


class DependencyError(StereoTrtError):
    """An optional dependency (TensorRT, pycuda, PyTorch ...) is not installed."""


class CheckFailed(StereoTrtError):
    """A verification step (parity, accuracy budget, compatibility) did not pass."""
