"""What a runner should be, as typed values: ``RunnerSpec``, and the rules that resolve and check it.

Every command describes the model it wants as one ``RunnerSpec`` and hands it to
``toolkit.backends.open_runner``; this module decides the backend (explicit name, else the
file suffix, else ``sgbm``), fills the one set of defaults, and refuses any option the chosen
backend cannot honour. Nothing here imports PyTorch, ONNX Runtime or TensorRT.
Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from toolkit.errors import InputError

SGBM = "sgbm"
BACKEND_BY_SUFFIX = {
    ".pth": "torch",
    ".pt": "torch",
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
}
BACKEND_ALIASES = {"torch": "torch", "pytorch": "torch", "onnxruntime": "onnxruntime", "ort": "onnxruntime",
                   "tensorrt": "tensorrt", "trt": "tensorrt", "sgbm": SGBM}
# Model-text modifiers (``student.pth+fp16+graph+lr``): what a bench row or a teacher name can carry.
LR_SUFFIX = "+lr"
MODIFIERS = {"lr": "lr_check", "fp16": "precision", "graph": "cuda_graph", "cpu": "device", "cuda": "device"}
MODIFIER_VALUES = {"fp16": "fp16", "cpu": "cpu", "cuda": "cuda"}
# The one set of SGBM defaults (run, bench and pseudo-label used to disagree: 128 vs 192).
SGBM_MAX_DISP = 192
SGBM_LR_THRESHOLD = 1.0
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class RunnerSpec:
    """One runner, described before anything loads. None means "the backend's default".

    Attributes:
        model: a checkpoint (.pth/.pt), ONNX model (.onnx), TensorRT engine (.engine/.plan), or "sgbm".
        backend: "torch", "onnxruntime", "tensorrt" or "sgbm"; None: from ``model``'s suffix.
        device: "cpu", "cuda" or "cuda:N" (normalised by ``toolkit.device.parse_device``);
            None: "cpu", except TensorRT, which runs on the current CUDA device.
        precision: "fp32" or "fp16" for checkpoints (fp16: half weights on a CUDA device);
            exported models have theirs baked in and only accept the same value.
        cuda_graph: capture the forward pass once as a CUDA graph (checkpoints on CUDA at a
            fixed ``size``; TensorRT engines).
        size: network input (H, W), multiples of 32; None: the model's own, else each pair
            padded to a multiple of 32.
        threads: CPU threads for PyTorch / ONNX Runtime.
        iters: refinement iterations (checkpoints only).
        max_disp: disparity range in px (checkpoints and SGBM).
        lr_check: confidence from a left-right consistency check (two inferences per pair).
        lr_threshold: SGBM's own left-right check threshold in px (default 1.0).
        sgbm_lr_check: False turns SGBM's own left-right check off (every matched pixel kept).
        any_onnx: accept an ONNX stereo model without stereo-trt metadata (a teacher exported
            elsewhere: inputs ``left``/``right``, output ``disparity`` or the first output).
    """

    model: str
    backend: str | None = None
    device: str | None = None
    precision: str | None = None
    cuda_graph: bool = False
    size: tuple | None = None
    threads: int | None = None
    iters: int | None = None
    max_disp: int | None = None
    lr_check: bool = False
    lr_threshold: float | None = None
    sgbm_lr_check: bool = True
    any_onnx: bool = False

    def with_(self, **changes) -> "RunnerSpec":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def given(self) -> dict:
        """The fields that differ from their defaults (what the user asked for)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "model" and getattr(self, f.name) != f.default}


def parse_model_text(text: str, **fields_) -> RunnerSpec:
    """A spec from model text with optional modifiers: ``PATH|sgbm[+cpu|+cuda][+fp16][+graph][+lr]``.

    ``+fp16`` asks for half precision, ``+graph`` for a CUDA graph, ``+lr`` for the left-right
    confidence, ``+cpu``/``+cuda`` pin the row's device (an ONNX row on the CPU beside PyTorch
    rows on the GPU); ``fields_`` fill the other fields.

    Raises:
        InputError: a modifier given twice, or an unknown one after a model name (``student.pth+fp17``).
    """
    base, flags, given = str(text), {}, {}
    while "+" in base:
        head, _, tail = base.rpartition("+")
        if tail.lower() not in MODIFIERS:
            _refuse_unknown_modifier(text, base, head, tail)
            break
        field = MODIFIERS[tail.lower()]
        if field in flags:
            if given[field].lower() == tail.lower():
                raise InputError(f"--model {text}: +{tail} given twice")
            raise InputError(f"--model {text}: +{tail} and +{given[field]} exclude each other (both set the device)")
        flags[field] = MODIFIER_VALUES.get(tail.lower(), True)
        given[field] = tail
        base = head
    return RunnerSpec(model=base, **{**fields_, **flags})


def _refuse_unknown_modifier(text: str, base: str, head: str, tail: str) -> None:
    """``student.pth+fp17``: a typo in a modifier, not a file with an odd suffix (unless that file exists)."""
    while "+" in head and head.rpartition("+")[2].lower() in MODIFIERS:
        head = head.rpartition("+")[0]
    head_is_model = head.lower() == SGBM or Path(head).suffix.lower() in BACKEND_BY_SUFFIX
    if head_is_model and not Path(base).exists():
        raise InputError(f"--model {text}: unknown modifier +{tail}; expected "
                         f"{', '.join('+' + name for name in MODIFIERS)} after the model")


def model_label(spec: RunnerSpec) -> str:
    """Short row name: the file name (or "sgbm") and the modifiers, e.g. ``student.pth+fp16+graph``."""
    name = SGBM if is_sgbm(spec) else Path(spec.model).name
    if spec.device:
        name += "+" + spec.device
    if spec.precision == "fp16":
        name += "+fp16"
    if spec.cuda_graph:
        name += "+graph"
    return name + (LR_SUFFIX if spec.lr_check else "")


def is_sgbm(spec: RunnerSpec) -> bool:
    return spec.model.lower() == SGBM or (spec.backend or "").lower() == SGBM


def backend_for(model_path: str | os.PathLike, backend: str | None = None) -> str:
    """The backend name for a model file: an explicit ``backend`` wins, else the suffix decides.

    Raises:
        InputError: an unknown backend name or suffix.
    """
    if backend is not None:
        if backend.lower() not in BACKEND_ALIASES:
            raise InputError(f"--backend {backend!r}: expected one of {sorted(set(BACKEND_ALIASES.values()))}")
        return BACKEND_ALIASES[backend.lower()]
    if str(model_path).lower() == SGBM:
        return SGBM
    suffix = Path(model_path).suffix.lower()
    if suffix not in BACKEND_BY_SUFFIX:
        raise InputError(
            f"{model_path}: cannot tell the backend from suffix {suffix or '(none)'!r}; "
            f"expected one of {', '.join(sorted(BACKEND_BY_SUFFIX))}, 'sgbm', or --backend"
        )
    return BACKEND_BY_SUFFIX[suffix]


def resolve(spec: RunnerSpec) -> tuple[str, RunnerSpec]:
    """(backend, spec with defaults filled), after refusing what that backend cannot honour.

    Checks only the description (no file is read, nothing is imported), so commands call it
    before any slow work.

    Raises:
        InputError: an unknown backend or suffix, a model file for SGBM, an option the
            backend cannot honour, or a value out of range.
    """
    backend = backend_for(spec.model, spec.backend)
    if backend == SGBM and spec.model.lower() != SGBM:
        raise InputError(f"--backend sgbm takes no model file ({spec.model}); it matches the frames themselves")
    _check_values(spec)
    refused = REFUSALS[backend](spec)
    if refused:
        raise InputError(refused)
    if backend == SGBM:
        return backend, spec.with_(device=spec.device or "cpu", max_disp=spec.max_disp or SGBM_MAX_DISP,
                                   lr_threshold=SGBM_LR_THRESHOLD if spec.lr_threshold is None else spec.lr_threshold)
    if backend == "tensorrt":
        return backend, spec.with_(device=spec.device or "cuda")
    return backend, spec.with_(device=spec.device or "cpu")


def _check_values(spec: RunnerSpec) -> None:
    from toolkit.preprocess import check_network_size

    if spec.precision is not None and spec.precision not in PRECISIONS:
        raise InputError(f"--precision {spec.precision}: expected one of {', '.join(PRECISIONS)}")
    if spec.size is not None:
        check_network_size(tuple(spec.size), f"--size {spec.size[0]}x{spec.size[1]}")
    for option, value in (("--threads", spec.threads), ("--iters", spec.iters), ("--max-disp", spec.max_disp)):
        if value is not None and value < 1:
            raise InputError(f"{option} {value}: expected a positive number")


# how a field is spelt on the command line, where that is not --field-name
OPTION_NAMES = {"sgbm_lr_check": "--no-lr-check", "lr_check": "--lr-check", "any_onnx": "a foreign ONNX model"}


def option_name(field_name: str) -> str:
    return OPTION_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def _first(spec: RunnerSpec, options: dict) -> str | None:
    """The first option of ``options`` (field -> reason) that ``spec`` sets; its message."""
    given = spec.given()
    for name, reason in options.items():
        if name in given:
            return f"{option_name(name)} {reason}"
    return None


SGBM_ONLY = {"lr_threshold": "applies to SGBM only", "sgbm_lr_check": "applies to SGBM only"}


def _refuse_torch(spec: RunnerSpec) -> str | None:
    refused = _first(spec, {**SGBM_ONLY, "any_onnx": "applies to ONNX models only"})
    if refused:
        return refused
    on_cpu = (spec.device or "cpu") == "cpu"
    if spec.precision == "fp16" and on_cpu:
        return "--precision fp16 needs a CUDA device (half precision is for GPUs); add --device cuda or use fp32"
    if spec.cuda_graph and on_cpu:
        return "--cuda-graph needs a CUDA device; add --device cuda"
    if spec.cuda_graph and spec.size is None:
        return "--cuda-graph needs --size HxW: a CUDA graph is captured at one network size"
    return None


def _refuse_exported(spec: RunnerSpec) -> str | None:
    baked = {"iters": f"applies to checkpoints only; {Path(spec.model).name} has it baked in at export",
             "max_disp": f"applies to checkpoints only; {Path(spec.model).name} has it baked in at export"}
    return _first(spec, {**baked, **SGBM_ONLY})


def _refuse_onnxruntime(spec: RunnerSpec) -> str | None:
    refused = _refuse_exported(spec)
    if refused:
        return refused
    if spec.cuda_graph:
        return "--cuda-graph applies to checkpoints and TensorRT engines, not ONNX Runtime"
    return None


def _refuse_tensorrt(spec: RunnerSpec) -> str | None:
    refused = _refuse_exported(spec) or _first(spec, {
        "threads": "applies to ONNX Runtime and PyTorch; TensorRT runs on the GPU",
        "any_onnx": "applies to ONNX models only"})
    if refused:
        return refused
    if spec.device == "cpu":
        return "--device cpu: a TensorRT engine runs on a CUDA GPU only; use the ONNX model for the CPU"
    if spec.device not in (None, "cuda", "cuda:0"):
        return (f"--device {spec.device}: TensorRT runs on the current CUDA device; "
                "select the GPU with CUDA_VISIBLE_DEVICES instead")
    return None


def _refuse_sgbm(spec: RunnerSpec) -> str | None:
    refused = _first(spec, {
        "iters": "applies to networks only; SGBM has no iterations",
        "precision": "applies to networks only; SGBM matches in fixed point",
        "cuda_graph": "applies to networks only; SGBM runs on the CPU",
        "threads": "does not apply to SGBM: it uses OpenCV's thread pool",
        "any_onnx": "applies to ONNX models only"})
    if refused:
        return refused
    if spec.device not in (None, "cpu"):
        return f"--device {spec.device}: SGBM (OpenCV) runs on the CPU only"
    return None


REFUSALS = {"torch": _refuse_torch, "onnxruntime": _refuse_onnxruntime, "tensorrt": _refuse_tensorrt,
            SGBM: _refuse_sgbm}
