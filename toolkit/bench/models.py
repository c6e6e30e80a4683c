"""The rows of a benchmark: what each ``--model`` is, and how it is opened.

A row is a model file (checkpoint, ONNX, engine: ``toolkit.backends.open_runner`` picks
the backend) or ``sgbm``, OpenCV's semi-global block matching as the classical baseline.
Either may end in ``+lr``: the same model with its confidence taken from a left-right
consistency check (``toolkit.confidence.LRCheckRunner``; two inferences per pair).
Every row runs at one network size; exported models carry theirs, checkpoints and
dynamic-shape models are given the bench size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.confidence import LR_SUFFIX, with_lr_check
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
        label: short unique name for tables and plots (the file name, or "sgbm").
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
    from toolkit.backends import backend_for

    infos = []
    for spec in specs:
        spec = str(spec)
        base, lr = split_lr(spec)
        suffix = LR_SUFFIX if lr else ""
        if base.lower() == SGBM_SPEC:
            infos.append(ModelInfo(spec, SGBM_SPEC + suffix, "sgbm", None, None))
            continue
        path = Path(base)
        if not path.is_file():
            raise InputError(f"--model {spec}: no such file; expected a checkpoint, ONNX model, engine or 'sgbm' "
                             f"(optionally ending in {LR_SUFFIX})")
        backend = backend_for(path)
        infos.append(ModelInfo(spec, path.name + suffix, backend, str(path.resolve()), path.stat().st_size / 1e6))
    _check_unique(infos)
    return infos


def _check_unique(infos: list) -> None:
    """Refuse a model given twice; label same-named files from different folders by their folder."""
    seen = set()
    for info in infos:
        key = (info.path or split_lr(info.spec)[0].lower(), info.label.endswith(LR_SUFFIX))
        if key in seen:
            raise InputError(f"--model {info.spec} is given twice; each row must be a different model")
        seen.add(key)
    labels = [info.label for info in infos]
    for info in infos:
        if labels.count(info.label) > 1 and info.path:
            info.label = f"{Path(info.path).parent.name}/{info.label}"


def runner_options(backend: str, threads: int | None, device: str, iters: int | None,
                   max_disp: int | None) -> dict:
    """The ``open_runner`` options a backend accepts (JSON-serialisable, for the memory probe too).

    Exported models have iterations and max disparity baked in, and TensorRT runs on the
    current CUDA device with its own threading, so each backend gets only what it honours.
    """
    if backend == "torch":
        return {"threads": threads, "device": device, "iters": iters, "max_disp": max_disp}
    if backend == "onnxruntime":
        return {"threads": threads, "device": device}
    if backend == "sgbm":
        return {"max_disp": max_disp}
    return {}


def open_model(spec: str, options: dict, input_hw: tuple | None = None):
    """Create (not activate) the runner of one row, at the bench network size.

    Args:
        spec: the ``--model`` value.
        options: from ``runner_options``.
        input_hw: the bench network size, or None to pad each pair to a multiple of 32.

    Raises:
        InputError: the model's own fixed size differs from ``input_hw``.
    """
    return fit_size(create_runner(spec, options), spec, input_hw)


def split_lr(spec: str) -> tuple[str, bool]:
    """(model spec without a trailing ``+lr``, whether it had one)."""
    if spec.lower().endswith(LR_SUFFIX):
        return spec[: -len(LR_SUFFIX)], True
    return spec, False


def create_runner(spec: str, options: dict):
    """The runner for one ``--model`` value (SGBM or ``open_runner``, maybe LR-checked), not yet active."""
    options = {key: value for key, value in options.items() if value is not None}
    base, lr = split_lr(spec)
    if base.lower() == SGBM_SPEC:
        from toolkit.backends.sgbm import SGBMRunner

        runner = SGBMRunner(**options)
    else:
        from toolkit.backends import open_runner

        runner = open_runner(base, **options)
    return with_lr_check(runner, lr)


def fit_size(runner, spec: str, input_hw: tuple | None):
    """Give a runner the bench size; refuse one whose exported size differs.

    Raises:
        InputError: the model is fixed at another size.
    """
    if input_hw is None:
        return runner
    fixed = getattr(runner, "input_hw", None)
    if fixed is not None and tuple(fixed) != tuple(input_hw):
        raise InputError(
            f"--model {spec}: takes {fixed[0]}x{fixed[1]} input (fixed at export), the bench runs at "
            f"{input_hw[0]}x{input_hw[1]}; pass --size {fixed[0]}x{fixed[1]} or export at the bench size"
        )
    # checkpoints and dynamic-shape models take any multiple of 32: give them the bench size
    runner.input_hw = tuple(input_hw)
    return runner


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

