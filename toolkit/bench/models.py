"""The rows of a benchmark: what each ``--model`` is, and how it is opened.

A row is a model file (checkpoint, ONNX, engine: ``toolkit.backends.open_runner`` picks
the backend) or ``sgbm``, OpenCV's semi-global block matching as the classical baseline.
A checkpoint may end in ``+fp16`` (half weights, CUDA) and ``+graph`` (the forward replayed
as a CUDA graph), so the fastest PyTorch sits beside the eager FP32 reference; any row
may end in ``+lr``: the same model with its confidence taken from a left-right
consistency check (``toolkit.backends.lr_check.LRCheckRunner``; two inferences per pair).
Every row runs at one network size, given to each runner when it is created; exported
models carry theirs, checkpoints and dynamic-shape models are given the bench size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.backends.spec import LR_SUFFIX, RunnerSpec, backend_for, model_label, parse_model_text
from toolkit.errors import InputError

SGBM_SPEC = "sgbm"
BACKEND_TITLES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "tensorrt": "TensorRT", "sgbm": "OpenCV"}
# metadata fields of an exported model that the report shows
# (the row's precision comes from the runner: an engine may run an FP32 ONNX in FP16)
METADATA_FIELDS = ("checkpoint_sha256", "input_hw", "iters", "max_disp")


@dataclass
class ModelInfo:
    """One row, described before anything is loaded.

    Attributes:
        spec: the ``--model`` value as given.
        label: short unique name for tables and plots (the file name, or "sgbm", with modifiers).
        backend: "torch", "onnxruntime", "tensorrt" or "sgbm".
        path: absolute model path, or None for SGBM.
        size_mb: model file size in MB (10^6 bytes), or None for SGBM.
    """

    spec: str
    label: str
    backend: str
    path: str | None
    size_mb: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def describe_models(specs: list) -> list:
    """ModelInfo for every ``--model``, checking files exist and labels are unique.

    Raises:
        InputError: a missing file, an unknown suffix, or the same model given twice.
    """
    infos = []
    for text in specs:
        text = str(text)
        spec = parse_model_text(text)
        backend = backend_for(spec.model)
        label = model_label(spec)
        if backend == "sgbm":
            infos.append(ModelInfo(text, label, "sgbm", None, None))
            continue
        path = Path(spec.model)
        if not path.is_file():
            raise InputError(f"--model {text}: no such file; expected a checkpoint, ONNX model, engine or 'sgbm' "
                             f"(optionally ending in +fp16, +graph, {LR_SUFFIX})")
        infos.append(ModelInfo(text, label, backend, str(path.resolve()), path.stat().st_size / 1e6))
    _check_unique(infos)
    return infos


def _check_unique(infos: list) -> None:
    """Refuse a row given twice; label same-named files from different folders by their folder."""
    seen = set()
    for info in infos:
        key = (info.path or SGBM_SPEC, info.label.split("+", 1)[1] if "+" in info.label else "")
        if key in seen:
            raise InputError(f"--model {info.spec} is given twice; each row must be a different model")
        seen.add(key)
    labels = [info.label for info in infos]
    for info in infos:
        if labels.count(info.label) > 1 and info.path:
            info.label = f"{Path(info.path).parent.name}/{info.label}"


def row_spec(text: str, device: str = "cpu", threads: int | None = None, iters: int | None = None,
             max_disp: int | None = None, size: tuple | None = None) -> RunnerSpec:
    """The ``RunnerSpec`` of one row: the model text's modifiers plus the bench options its backend honours.

    ``--device`` (unless the row pins its own with ``+cpu``/``+cuda``) and ``--threads`` are for
    the PyTorch and ONNX Runtime rows (SGBM runs on
    the CPU with OpenCV's pool, set once for every row; an engine on the current CUDA device);
    ``--iters`` is for checkpoints, ``--max-disp`` for checkpoints and SGBM (exported models
    have both baked in).
    """
    spec = parse_model_text(text, size=None if size is None else tuple(size))
    backend = backend_for(spec.model)
    if backend in ("torch", "onnxruntime"):
        spec = spec.with_(device=spec.device or device, threads=threads)  # +cpu / +cuda pin a row's device
    if backend == "torch":
        spec = spec.with_(iters=iters, max_disp=max_disp)
    if backend == "sgbm":
        spec = spec.with_(max_disp=max_disp)
    return spec


def check_rows(infos: list, device: str, threads: int | None, size: tuple | None) -> None:
    """Refuse, before any data loads, a row whose options or device cannot work here.

    Raises:
        InputError: an option a row's backend cannot honour (a +graph row without a size...).
        DependencyError: --device asks for CUDA a PyTorch or ONNX Runtime row cannot use here.
    """
    from toolkit.backends import check_spec
    from toolkit.preprocess import PAD_MULTIPLE

    exported = any(info.backend in ("onnxruntime", "tensorrt") for info in infos)
    for info in infos:
        spec = row_spec(info.spec, device, threads, size=size)
        if spec.cuda_graph and size is None and info.backend == "torch" and exported:
            # the size may still come from the exported rows (open_runner checks it again); the
            # device and every other option are checked now, with a stand-in size
            spec = spec.with_(size=(PAD_MULTIPLE, PAD_MULTIPLE))
        check_spec(spec)


def spec_options(spec: RunnerSpec) -> dict:
    """A spec as JSON-serialisable options (the memory probe rebuilds it in a child process)."""
    values = asdict(spec)
    values["size"] = list(spec.size) if spec.size else None
    return values


def spec_from_options(options: dict) -> RunnerSpec:
    return RunnerSpec(**{**options, "size": tuple(options["size"]) if options.get("size") else None})


def exported_metadata(runner) -> dict:
    """The fields of an exported model's stereo-trt metadata the report shows ({} for others).

    An ONNX runner holds the metadata itself; an engine's sidecar carries its source ONNX's.
    """
    metadata = getattr(runner, "metadata", None)
    if metadata is None:
        sidecar = getattr(getattr(runner, "session", None), "sidecar", None) or {}
        metadata = (sidecar.get("onnx") or {}).get("metadata")
    metadata = metadata or {}
    return {key: metadata[key] for key in METADATA_FIELDS if key in metadata}


def bench_size(requested: tuple | None, runners: dict) -> tuple | None:
    """The one network size every row runs at.

    Args:
        requested: ``--size``, or None.
        runners: label -> runner (created, not active).

    Returns:
        ``requested`` when given; else the size the exported models share; None when no row
        fixes one (each pair is then padded to a multiple of 32).

    Raises:
        InputError: exported models fixed at different sizes (rows would not be comparable).
    """
    fixed = {label: tuple(r.input_hw) for label, r in runners.items() if getattr(r, "input_hw", None) is not None}
    if requested is not None:
        return tuple(requested)
    sizes = sorted(set(fixed.values()))
    if len(sizes) > 1:
        listing = ", ".join(f"{label} {hw[0]}x{hw[1]}" for label, hw in fixed.items())
        raise InputError(f"models take different input sizes ({listing}); a benchmark compares at one size: "
                         "export them at the same --size")
    return sizes[0] if sizes else None

