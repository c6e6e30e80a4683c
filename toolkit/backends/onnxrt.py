"""ONNX Runtime runner: FP32, FP16-typed and INT8 Q/DQ models on any machine.

The model's input size and precision come from the stereo-trt metadata written by
``export``/``quantize``, so a runner cannot be pointed at a foreign ONNX by mistake.
Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.backends.base import Runner
from toolkit.errors import DependencyError, InputError, ModelError
from toolkit.onnx_meta import read_stereo_metadata
from toolkit.preprocess import INPUT_NAMES

# Preferred order when the caller names no providers; TensorRT's EP is left out on purpose:
# it would build an engine behind the user's back, which is the `build` command's job.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise DependencyError("onnxruntime is not installed; expected `pip install onnxruntime`") from None
    return onnxruntime


def session_options(threads: int | None = None):
    """Session options used everywhere the toolkit runs ONNX: full graph optimisation, fixed threads.

    Args:
        threads: intra-op threads, or None/0 for ONNX Runtime's default (one per physical core).
    """
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT warns about every unused initializer
    return options


def default_providers() -> list[str]:
    available = import_onnxruntime().get_available_providers()
    return [p for p in PREFERRED_PROVIDERS if p in available]


def open_session(path: str | os.PathLike, threads: int | None = None, providers: list[str] | None = None):
    """An ``InferenceSession`` with the toolkit's options; load failures become ModelError."""
    ort = import_onnxruntime()
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads),
                                    providers=list(providers or default_providers()))
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({first[:160]})") from None


def read_foreign_metadata(path: Path) -> dict:
    """What a model without stereo-trt metadata tells about itself: its static input size, if any.

    Its stereo-trt record is used when it has one.

    Raises:
        ModelError: not an ONNX file.
    """
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError / OSError depending on the damage
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    try:
        return read_stereo_metadata(path)
    except ModelError:
        pass
    for value in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        if value.name == "left" and len(dims) == 4 and all(dims[2:]):
            return {"input_hw": dims[2:]}
    return {}


def fit_size(metadata: dict, size: tuple[int, int] | None, path: Path) -> tuple[int, int] | None:
    """The input size to use, checked against the model's static size or dynamic range."""
    static = metadata.get("input_hw")
    if static:
        if size is not None and tuple(size) != tuple(static):
            raise InputError(f"--size {size[0]}x{size[1]}: {path.name} was exported for {static[0]}x{static[1]}; "
                             "re-export at that size or with --dynamic")
        return tuple(static)
    profile = metadata.get("dynamic")
    if size is not None and profile:
        low, high = profile["min"], profile["max"]
        if not (low[0] <= size[0] <= high[0] and low[1] <= size[1] <= high[1]):
            raise InputError(f"--size {size[0]}x{size[1]}: outside {path.name}'s exported range "
                             f"{low[0]}x{low[1]}..{high[0]}x{high[1]}")
    return tuple(size) if size is not None else None


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX model written by ``stereo-trt export`` or ``quantize`` (or, with
    ``any_onnx``, any ONNX stereo model: a pseudo-label teacher exported elsewhere).

    Args:
        path: the .onnx file.
        threads: intra-op CPU threads; None lets ONNX Runtime decide.
        providers: execution providers in order of preference (``toolkit.device.onnxruntime_providers``);
            None picks CUDA when present, else CPU. Once active, ``providers`` holds what the
            session really uses.
        size: network input (H, W): must equal a static model's size; for a dynamic model, the
            size every pair is brought to (within the exported min..max). None: the model's
            static size, or each pair padded to a multiple of 32 for a dynamic model.
        any_onnx: accept a model without stereo-trt metadata: its size comes from the graph's
            static input shape, its disparity from the output called ``disparity`` (else the
            first output), reshaped to one map.
        device: the device the providers stand for, as reports show it.

    Raises:
        ModelError: not an ONNX file, or one without the stereo-trt metadata (unless ``any_onnx``).
        InputError: a size the model cannot take.
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: list | None = None, size: tuple[int, int] | None = None,
                 any_onnx: bool = False, device: str = "cpu") -> None:
        super().__init__()
        if threads is not None and threads < 0:
            raise InputError(f"--threads {threads}: expected a positive thread count")
        self.path = Path(path)
        self.metadata = read_foreign_metadata(self.path) if any_onnx else read_stereo_metadata(self.path)
        self.precision = self.metadata.get("precision", "fp32")
        self.input_hw = fit_size(self.metadata, size, self.path)
        self.threads = threads
        self.requested_providers = providers
        self.device = device
        self.any_onnx = any_onnx
        self.session = None
        self.input_dtypes: dict[str, type] = {}

    def activate_impl(self) -> None:
        session = open_session(self.path, self.threads, self.requested_providers)
        inputs = {i.name: i.type for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        if sorted(inputs) != sorted(INPUT_NAMES) or ("disparity" not in outputs and not self.any_onnx):
            raise ModelError(
                f"{self.path}: inputs {sorted(inputs)} / outputs {outputs}; "
                "expected inputs 'left', 'right' and an output 'disparity'"
            )
        self.input_dtypes = {name: ORT_DTYPES.get(kind, np.float32) for name, kind in inputs.items()}
        # a foreign model's disparity is its 'disparity' output, else its first; ours name every output
        self.output_names = outputs if "disparity" in outputs else outputs[:1]
        self.providers = tuple(session.get_providers())
        self.session = session

    def deactivate_impl(self) -> None:
        self.session = None

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: np.ascontiguousarray(feed[name], dtype=dtype) for name, dtype in self.input_dtypes.items()}
        values = self.session.run(self.output_names, feed)
        outputs = {name: np.asarray(value, dtype=np.float32) for name, value in zip(self.output_names, values)}
        if "disparity" not in outputs:
            outputs = {"disparity": self.as_disparity_map(outputs[self.output_names[0]], feed)}
        return outputs

    def as_disparity_map(self, values: np.ndarray, feed: dict) -> np.ndarray:
        """A foreign model's first output as one (1, 1, H, W) disparity map of the input's size."""
        height, width = feed["left"].shape[2:]
        if values.size != height * width:
            raise ModelError(f"{self.path}: output '{self.output_names[0]}' has shape {values.shape}; "
                             f"expected one disparity map of {height}x{width}")
        return values.reshape(1, 1, height, width)
