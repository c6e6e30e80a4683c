"""Checkpoint -> ONNX that TensorRT 8.5/10/11 and ONNX Runtime accept, checked against PyTorch.

The pipeline, in order: load the student, wrap it with its iteration count baked in, trace
it with PyTorch's TorchScript-based exporter (opset 17 by default: JetPack 5's TensorRT 8.5
parses up to 17, and torch 2.13's dynamo exporter cannot emit below 18), simplify it with
onnxslim, optionally retype it to FP16 (``toolkit.export_fp16``), store the metadata record,
run the ONNX checker and the TensorRT lint, and compare ONNX Runtime against PyTorch on a
real stereo pair. Only a model that passes is renamed into place, with its JSON sidecar.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolkit import onnx_meta, preprocess, provenance
from toolkit.errors import CheckFailed, DependencyError, InputError, ModelError
from toolkit.outputs import check_output_file

DEFAULT_SIZE = (480, 640)
DEFAULT_OPSET = 17
EXPORTERS = ("torchscript", "dynamo")
# The TorchScript exporter emits opsets 9..20; TensorRT's parsers start at 9 (10.x) and
# the dynamo exporter at 18, so these are the only combinations worth offering.
OPSET_RANGE = {"torchscript": (13, 20), "dynamo": (18, 20)}
TRT_TARGETS_BY_PRECISION = {"fp32": "8.5", "fp16": "11"}


@dataclass(frozen=True)
class Tolerance:
    """Largest parity error accepted between ONNX Runtime and PyTorch.

    Attributes:
        epe, bad1: disparity limits in source pixels.
        spearman: smallest rank correlation of the confidence output with PyTorch's (when exported).
    """

    epe: float
    bad1: float
    spearman: float = 0.95


# FP32 export must match PyTorch to rounding; FP16 rounds features to 11 bits of mantissa.
PARITY_TOLERANCE = {"fp32": Tolerance(epe=0.01, bad1=0.001), "fp16": Tolerance(epe=0.25, bad1=0.03)}


@dataclass(frozen=True)
class DynamicShapes:
    """Height/width range of a dynamic export: TensorRT optimisation profile min/opt/max."""

    min: tuple[int, int]
    opt: tuple[int, int]
    max: tuple[int, int]

    def to_dict(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass
class ParityReport:
    """ONNX Runtime vs PyTorch on one real pair, compared at source resolution."""

    pair: str
    network_hw: tuple[int, int]
    max_abs_diff: float
    epe: float
    bad1: float
    tolerance: Tolerance
    epe_vs_gt: dict = field(default_factory=dict)
    confidence: dict | None = None  # {"spearman": ..., "max_abs_diff": ...} with a confidence output

    @property
    def passed(self) -> bool:
        ranked = self.confidence is None or self.confidence["spearman"] >= self.tolerance.spearman
        return self.epe <= self.tolerance.epe and self.bad1 <= self.tolerance.bad1 and ranked

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class ExportResult:
    """What ``export_onnx`` wrote and what it checked."""

    path: Path
    sidecar: Path
    metadata: dict
    parity: ParityReport | None
    findings: list
    lint_trt: str | None
    exporter: str
    seconds: float


def export_onnx(
    checkpoint,
    out: str | os.PathLike | None = None,
    size: tuple[int, int] | None = DEFAULT_SIZE,
    iters: int | None = None,
    max_disp: int | None = None,
    opset: int = DEFAULT_OPSET,
    dynamic: DynamicShapes | None = None,
    fp16: bool = False,
    simplify: bool = True,
    check: bool = True,
    exporter: str = "torchscript",
    lint_trt: str | None = "auto",
    parity_pair=None,
    confidence: bool = False,
) -> ExportResult:
    """Export the student to ONNX, check it, and write it with its sidecar.

    Args:
        checkpoint: checkpoint path, or an ``nn.Module`` with the student's forward contract.
        out: destination .onnx; None -> ``engines/<stem>_<H>x<W>_it<iters>_<precision>.onnx``.
        size: static network (H, W), multiples of 32; ignored when ``dynamic`` is given.
        iters: refinement iterations baked in; None -> the checkpoint's configured value.
        max_disp: cost-volume range baked in; None -> the checkpoint's (checkpoints only).
        opset: ONNX opset (17 keeps TensorRT 8.5 able to parse the model).
        dynamic: height/width range for a dynamic export, or None for a static one.
        fp16: write an FP16-typed graph (for strongly typed TensorRT 10/11) with correlation,
            softmax and disparity regression kept in FP32.
        simplify: run onnxslim (constant folding, dead-code and shape-op removal).
        check: compare ONNX Runtime against PyTorch and fail beyond the tolerance.
        exporter: "torchscript" (default) or "dynamo" (opset >= 18 only).
        lint_trt: TensorRT version to lint against ("8.5", "10", "11"), "auto" (8.5 for FP32,
            11 for FP16) or None to skip.
        parity_pair: (name, left, right, gt, valid) for the parity check; None -> the
            built-in Middlebury pair.
        confidence: add the student's per-pixel confidence as a second output, "confidence"
            (the parity check then also requires its ranking to match PyTorch's).

    Returns:
        ExportResult.

    Raises:
        InputError: bad options (checked before anything slow runs).
        CheckpointError: an unusable checkpoint.
        ModelError: PyTorch cannot export the model.
        CheckFailed: the parity check failed; nothing is written.
    """
    start = time.perf_counter()
    precision = "fp16" if fp16 else "fp32"
    size = validate_options(size, iters, opset, dynamic, exporter)
    inputs = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else []
    if out is not None:
        check_output_file(out, "--out", suffixes=(".onnx",), inputs=inputs)
    lint_target = TRT_TARGETS_BY_PRECISION[precision] if lint_trt == "auto" else lint_trt
    if lint_target is not None:
        from toolkit.lint import check_trt_target

        check_trt_target(lint_target)
    torch = import_torch()
    model, config, info = load_model(checkpoint, max_disp)
    iters = iters or config.get("iters")
    if not iters:
        raise InputError("--iters: the model carries no default iteration count; expected --iters N")
    if out is None:
        out = check_output_file(default_output_path(info["stem"], size, dynamic, iters, precision, confidence),
                                "--out", inputs=inputs)
    out = Path(out)
    pair = parity_pair if parity_pair is not None else builtin_parity_pair()
    prepared = preprocess.prepare_pair(pair[1], pair[2], dynamic.opt if dynamic else size)
    wrapper = fixed_iterations(model, iters, confidence)
    output_names = ["disparity", "confidence"] if confidence else ["disparity"]

    sidecar = provenance.sidecar_path(out)
    with provenance.atomic_path(out) as tmp_onnx, provenance.atomic_path(sidecar) as tmp_json:
        trace_to_onnx(torch, wrapper, prepared.feed, tmp_onnx, opset, dynamic, exporter, output_names)
        proto = finish_graph(tmp_onnx, simplify, fp16)
        metadata = provenance.record(
            checkpoint=info["path"], checkpoint_sha256=info["sha256"], student_config=config,
            input_hw=None if dynamic else list(size), dynamic=dynamic.to_dict() if dynamic else None,
            iters=int(iters), max_disp=config.get("max_disp"), precision=precision,
            inputs={name: io_spec(size, dynamic, 3) for name in preprocess.INPUT_NAMES},
            outputs={name: io_spec(size, dynamic, 1) for name in output_names}, confidence=confidence,
            normalisation=onnx_meta.NORMALISATION, opset=opset, exporter=exporter,
        )
        onnx_meta.set_stereo_metadata(proto, metadata)
        save_checked(proto, tmp_onnx)
        findings = lint_model(proto, lint_target)
        parity = None
        if check:
            parity = parity_check(wrapper, tmp_onnx, prepared, pair, precision)
        provenance.write_json(tmp_json, provenance.record(
            artifact=out.name, sha256=provenance.sha256_file(tmp_onnx), kind="onnx", metadata=metadata,
            parity=parity.to_dict() if parity else None,
            lint={"trt": lint_target, "findings": [f.to_dict() for f in findings]},
            options={"simplify": simplify, "check": check, "fp16": fp16, "exporter": exporter,
                     "confidence": confidence},
        ))
    return ExportResult(out, sidecar, metadata, parity, findings, lint_target, exporter, time.perf_counter() - start)


def import_torch():
    try:
        import torch
    except ImportError:
        raise DependencyError("PyTorch is not installed; export needs `pip install stereo-trt[torch]`") from None
    return torch


def validate_options(size, iters, opset, dynamic, exporter) -> tuple[int, int]:
    """Check every export option before the model is loaded; returns the static size to use."""
    if exporter not in EXPORTERS:
        raise InputError(f"--exporter {exporter!r}: expected one of {', '.join(EXPORTERS)}")
    low, high = OPSET_RANGE[exporter]
    if not low <= opset <= high:
        raise InputError(f"--opset {opset}: the {exporter} exporter supports opsets {low}..{high} here")
    if iters is not None and iters < 1:
        raise InputError(f"--iters {iters}: expected a positive number of refinement iterations")
    if dynamic is not None:
        check_dynamic(dynamic)
        return dynamic.opt
    if size is None:
        raise InputError("--size: a static export needs HxW (multiples of 32), or give --dynamic")
    preprocess.check_network_size(tuple(size), "--size")
    return tuple(size)


def check_dynamic(dynamic: DynamicShapes) -> None:
    """min <= opt <= max per axis, every size a multiple of 32 (TensorRT profiles and the network need it)."""
    for label in ("min", "opt", "max"):
        preprocess.check_network_size(tuple(getattr(dynamic, label)), f"--dynamic {label}")
    for axis, name in ((0, "height"), (1, "width")):
        if not dynamic.min[axis] <= dynamic.opt[axis] <= dynamic.max[axis]:
            raise InputError(
                f"--dynamic: {name} must satisfy min <= opt <= max, got "
                f"{dynamic.min[axis]}, {dynamic.opt[axis]}, {dynamic.max[axis]}"
            )


def parse_dynamic(text: str | None) -> DynamicShapes | None:
    """Parse ``"MINxMIN:OPTxOPT:MAXxMAX"`` (for example ``256x320:480x640:544x960``)."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"--dynamic {text!r}: expected MIN:OPT:MAX sizes, for example 256x320:480x640:544x960")
    sizes = [preprocess.parse_size(part, "--dynamic") for part in parts]
    dynamic = DynamicShapes(*sizes)
    check_dynamic(dynamic)
    return dynamic


def load_model(checkpoint, max_disp: int | None):
    """(model in eval mode, config dict, info with path/sha256/stem) for a path or a module."""
    if isinstance(checkpoint, (str, os.PathLike)):
        from toolkit.backends.torch_runner import load_checkpoint

        path = Path(checkpoint)
        if not path.is_file():
            raise InputError(f"{path}: no such checkpoint; expected a .pth file")
        model, config, info = load_checkpoint(path, max_disp)
        return model, config.to_dict(), {"path": str(path), "sha256": info["sha256"], "stem": path.stem}
    if max_disp is not None and max_disp != getattr(checkpoint, "max_disp", None):
        raise InputError("--max-disp needs a checkpoint path; a ready-made module keeps its own")
    config = {key: getattr(checkpoint, key) for key in ("max_disp", "iters") if hasattr(checkpoint, key)}
    return checkpoint.eval(), config, {"path": None, "sha256": state_dict_sha256(checkpoint), "stem": "model"}


def state_dict_sha256(model) -> str:
    """A content hash for an in-memory module: its tensors in key order."""
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def default_output_path(stem: str, size, dynamic, iters: int, precision: str, confidence: bool = False) -> Path:
    """``engines/<stem>_<H>x<W>_it<iters>_<precision>[_conf].onnx`` (``dyn<maxH>x<maxW>`` when dynamic)."""
    from toolkit.paths import ENGINES_DIR

    shape = f"dyn{dynamic.max[0]}x{dynamic.max[1]}" if dynamic else f"{size[0]}x{size[1]}"
    suffix = "_conf" if confidence else ""
    return ENGINES_DIR / f"{stem}_{shape}_it{iters}_{precision}{suffix}.onnx"


def builtin_parity_pair():
    """The built-in real pair as (name, left, right, gt, valid)."""
    from toolkit.data.builtin import builtin_pair

    left, right, gt, valid = builtin_pair()
    return ("builtin-motorcycle", left, right, gt, valid)


def io_spec(size, dynamic, channels: int) -> dict:
    h, w = ("height", "width") if dynamic else size
    return {"shape": [1, channels, h, w], "dtype": "float32"}


def fixed_iterations(model, iters: int, confidence: bool = False):
    """The export wrapper: ``forward(left, right) -> disparity`` (or ``(disparity, confidence)``)
    with the iteration count baked in."""
    torch = import_torch()
    from toolkit.model.confidence import accepts_confidence

    if confidence and not accepts_confidence(model):
        raise InputError("--confidence: this model's forward takes no confidence argument; "
                         "only the RT-IGEV student has a confidence output")

    class FixedIterations(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.iters = iters

        def forward(self, left, right):
            if confidence:
                return self.model(left, right, iters=self.iters, confidence=True)
            return self.model(left, right, iters=self.iters)

    return FixedIterations().eval()


def trace_to_onnx(torch, wrapper, feed: dict, path: Path, opset: int, dynamic, exporter: str,
                  output_names: list) -> None:
    """Run PyTorch's exporter; any failure becomes a one-line ModelError."""
    args = (torch.from_numpy(feed["left"]), torch.from_numpy(feed["right"]))
    kwargs = dict(input_names=list(preprocess.INPUT_NAMES), output_names=list(output_names), opset_version=opset)
    if exporter == "torchscript":
        kwargs.update(dynamo=False, do_constant_folding=True)
        if dynamic:
            axes = {2: "height", 3: "width"}
            kwargs["dynamic_axes"] = {name: axes for name in [*preprocess.INPUT_NAMES, *output_names]}
    else:
        kwargs.update(dynamo=True, external_data=False, verbose=False)
        if dynamic:
            kwargs["dynamic_shapes"] = dynamo_shapes(torch, dynamic)
    try:
        with torch.inference_mode(False), torch.no_grad(), quiet():
            torch.onnx.export(wrapper, args, str(path), **kwargs)
    except Exception as exc:  # the exporters raise many types (TorchExportError, RuntimeError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"PyTorch could not export the model with the {exporter} exporter: {first[:200]}") from None


def dynamo_shapes(torch, dynamic: DynamicShapes) -> dict:
    """torch.export dims constrained to multiples of 32 within the profile range."""
    h = torch.export.Dim("h32", min=dynamic.min[0] // 32, max=dynamic.max[0] // 32)
    w = torch.export.Dim("w32", min=dynamic.min[1] // 32, max=dynamic.max[1] // 32)
    spec = {2: 32 * h, 3: 32 * w}
    return {"left": spec, "right": spec}


@contextlib.contextmanager
def quiet():
    """Silence the exporters' warnings, log lines and progress prints; errors still propagate."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        logger.setLevel(level)


def finish_graph(path: Path, simplify: bool, fp16: bool):
    """Load the traced graph, simplify it and retype it to FP16 when asked; returns the ModelProto."""
    import onnx

    proto = onnx.load(str(path))
    if simplify:
        proto = slim(proto)
    if fp16:
        from toolkit.export_fp16 import convert_to_fp16

        proto = convert_to_fp16(proto)
    return proto


def slim(proto):
    """onnxslim: constant folding, shape-op elimination, dead-code removal."""
    try:
        import onnxslim
    except ImportError:
        raise DependencyError("onnxslim is not installed; expected `pip install stereo-trt[torch]` or --no-simplify") from None
    with quiet():
        return onnxslim.slim(proto)


def save_checked(proto, path: Path) -> None:
    """Run the ONNX checker (with strict shape inference) and write the model."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"the exported graph fails the ONNX checker: {first[:200]}") from None
    onnx.save(proto, str(path))


def lint_model(proto, trt: str | None) -> list:
    if trt is None:
        return []
    from toolkit.lint import lint_onnx

    return lint_onnx(proto, trt=trt)


def parity_check(wrapper, onnx_path: Path, prepared, pair, precision: str) -> ParityReport:
    """ONNX Runtime vs PyTorch on the pair; raises CheckFailed beyond the tolerance."""
    import torch

    from toolkit.backends.onnxrt import open_session

    with torch.no_grad():
        reference = wrapper(torch.from_numpy(prepared.feed["left"]), torch.from_numpy(prepared.feed["right"]))
    session = open_session(onnx_path)
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, prepared.feed)))
    candidate = outputs["disparity"]
    if isinstance(reference, tuple):
        reference, reference_confidence = reference
    else:
        reference_confidence = None
    report = compare_disparities(
        preprocess.restore_disparity(reference.numpy(), prepared.geometry),
        preprocess.restore_disparity(np.asarray(candidate, dtype=np.float32), prepared.geometry),
        PARITY_TOLERANCE[precision],
    )
    report.pair, report.network_hw = pair[0], prepared.geometry.padded_hw
    if reference_confidence is not None:
        report.confidence = compare_confidence(
            preprocess.crop_to_source(reference_confidence.numpy(), prepared.geometry),
            preprocess.crop_to_source(np.asarray(outputs["confidence"], dtype=np.float32), prepared.geometry),
        )
    gt, valid = pair[3], pair[4]
    if gt is not None:
        report.epe_vs_gt = {
            "torch": epe_vs_gt(preprocess.restore_disparity(reference.numpy(), prepared.geometry), gt, valid),
            "onnxruntime": epe_vs_gt(preprocess.restore_disparity(candidate, prepared.geometry), gt, valid),
        }
    if not report.passed:
        ranked = f", confidence Spearman {report.confidence['spearman']:.4f}" if report.confidence else ""
        raise CheckFailed(
            f"parity check failed on {report.pair}: ONNX Runtime vs PyTorch EPE {report.epe:.4f} px, "
            f"bad-1 {report.bad1:.4%}, max diff {report.max_abs_diff:.3f} px{ranked}; expected EPE <= "
            f"{report.tolerance.epe} px, bad-1 <= {report.tolerance.bad1:.2%}"
            f"{f' and Spearman >= {report.tolerance.spearman}' if report.confidence else ''}"
        )
    return report


def compare_confidence(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """Rank agreement (Spearman) and largest difference of two confidence maps."""
    from toolkit.bench.metrics import spearman

    return {"spearman": spearman(reference.ravel(), candidate.ravel()),
            "max_abs_diff": float(np.abs(candidate.astype(np.float64) - reference).max())}


def compare_disparities(reference: np.ndarray, candidate: np.ndarray, tolerance: Tolerance) -> ParityReport:
    """Max abs difference, mean abs difference (EPE) and share of pixels off by more than 1 px."""
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    return ParityReport(
        pair="", network_hw=(0, 0), max_abs_diff=float(diff.max()), epe=float(diff.mean()),
        bad1=float((diff > 1.0).mean()), tolerance=tolerance,
    )


def epe_vs_gt(disparity: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> float:
    """EPE against ground truth over its valid pixels (informative: random weights score badly)."""
    mask = np.asarray(valid, dtype=bool) & np.isfinite(gt)
    return float(np.abs(disparity[mask] - gt[mask]).mean()) if mask.any() else float("nan")
