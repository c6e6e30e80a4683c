"""FP32 ONNX + calibration pairs -> INT8 Q/DQ ONNX that TensorRT 8.5/10/11 accept, with an accuracy report.

The TensorRT target (default) follows TensorRT's explicit-quantization rules: ONNX
Runtime's ``quantize_static`` in QDQ format, symmetric int8 activations and weights
(zero point 0), per-channel weights kept in FP32 behind a Q/DQ pair (the form every
TensorRT version parses), no quantized bias, and only Conv / ConvTranspose / MatMul / Gemm
inputs quantized. The softmax / disparity-regression head and every layer that reads or
writes a single-channel disparity map stay in float.

Steps: check options and decode every pair (fast failures first), calibrate once (one pair
per pass, so memory stays at one pair's activations), quantize, compare INT8 with FP32 on
held-out pairs, optionally keep the most sensitive layers in float until an EPE budget is
met, lint for TensorRT, time both models, then write the Q/DQ model, its report (the JSON
sidecar), an error map and TensorRT's calibration cache for implicit INT8 on 8.5/10.x.

``target="cpu"`` instead uses ONNX Runtime's own CPU placement (uint8 activations, every
supported op): not for TensorRT, offered for CPU deployment and reported with its speed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit import onnx_meta, provenance
from toolkit.calib_cache import DEFAULT_TRT_VERSION, cache_header, write_calibration_cache
from toolkit.errors import CheckFailed, DependencyError, InputError, ModelError
from toolkit.outputs import check_output_file
from toolkit.quantize_data import CalibrationSplit, load_split
from toolkit.quantize_eval import (Budget, Evaluator, describe, layer_groups, measure_speed, rank_sensitivity,
                                   search_budget)

METHODS = ("entropy", "percentile", "minmax")
# Default: min/max ranges. On the trained student (128x256, 4 iterations, 6 calibration and
# 3 held-out pairs) full INT8 vs FP32 was 0.73 px with min/max, 0.84 px with the 99.999th
# percentile and 2.31 px with entropy, whose clipping of activation tails (cost-volume peaks,
# early feature maps) the stereo head cannot absorb. At 480x640 (16 calibration, 4 held-out
# pairs) min/max with --max-epe-delta 0.2 kept 1 layer group in float (benchmarks/cpu-reference).
DEFAULT_METHOD = "minmax"
CALIBRATION_METHODS = {"entropy": "Entropy", "percentile": "Percentile", "minmax": "MinMax"}
TARGETS = ("trt", "cpu")
# With --max-epe-delta, a model with a confidence output must also keep its ranking (issue 8).
MIN_CONFIDENCE_SPEARMAN = 0.95
TRT_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm")
SHAPE_ONLY_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten", "Identity"})


@dataclass(frozen=True)
class QuantizeOptions:
    """Everything that decides how a model is quantized; checked before any pair is read."""

    method: str = DEFAULT_METHOD
    target: str = "trt"
    trt_version: str = DEFAULT_TRT_VERSION
    percentile: float = 99.999
    max_epe_delta: float | None = None
    sensitivity_pairs: int = 2
    speed_runs: int = 3
    threads: int | None = None

    def validate(self) -> None:
        from toolkit.calib_cache import trt_version_code

        if self.method not in METHODS:
            raise InputError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.target not in TARGETS:
            raise InputError(f"--target {self.target!r}: expected one of {', '.join(TARGETS)}")
        trt_version_code(self.trt_version)
        if self.target == "trt":
            from toolkit.lint import check_trt_target

            check_trt_target(self.trt_version)
        if not 0 < self.percentile <= 100:
            raise InputError(f"--percentile {self.percentile}: expected a value in (0, 100]")
        if self.max_epe_delta is not None and self.max_epe_delta <= 0:
            raise InputError(f"--max-epe-delta {self.max_epe_delta}: expected a positive budget in pixels")
        if self.sensitivity_pairs < 1:
            raise InputError(f"--sensitivity-pairs {self.sensitivity_pairs}: expected 1 or more")
        if self.speed_runs < 0:
            raise InputError(f"--speed-runs {self.speed_runs}: expected 0 or more (0 skips timing)")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads {self.threads}: expected a positive thread count")

    @property
    def op_types(self) -> tuple[str, ...] | None:
        """Op types to quantize: TensorRT's set, or None (everything ONNX Runtime can) for the CPU target."""
        return TRT_OP_TYPES if self.target == "trt" else None


@dataclass
class QuantizeResult:
    """What ``quantize_onnx`` wrote and measured."""

    path: Path
    report_path: Path
    error_map_path: Path
    cache_path: Path | None
    report: dict
    seconds: float


def quantize_onnx(
    fp32_onnx: str | os.PathLike,
    calibration,
    out: str | os.PathLike | None = None,
    method: str = DEFAULT_METHOD,
    n_calib: int | None = None,
    holdout: int | None = None,
    max_epe_delta: float | None = None,
    target: str = "trt",
    trt_version: str = DEFAULT_TRT_VERSION,
    cache: str | os.PathLike | None = None,
    percentile: float = 99.999,
    seed: int = 0,
    threads: int | None = None,
    speed_runs: int = 3,
    sensitivity_pairs: int = 2,
    on_progress: Callable[[str], None] | None = None,
) -> QuantizeResult:
    """Quantize an exported FP32 model to INT8 Q/DQ and measure what it costs.

    Args:
        fp32_onnx: FP32 model written by ``stereo-trt export``.
        calibration: calibration manifest (.json), InStereo2K root, folder of pairs, or a list of pairs.
        out: destination; None -> the input name with ``_fp32`` replaced by ``_int8`` (``_int8cpu``).
        method: "minmax" (default), "percentile" or "entropy" calibration (see ``DEFAULT_METHOD``).
        n_calib: calibration pairs (None: all a manifest lists, else 32).
        holdout: held-out pairs for accuracy (None: all a manifest lists, else 8); at least 1.
        max_epe_delta: EPE budget vs FP32 in pixels; when the full INT8 model exceeds it (or, with
            a confidence output, its Spearman vs FP32 falls below ``MIN_CONFIDENCE_SPEARMAN``),
            keep the most harmful layers in float until both hold. None: report only.
        target: "trt" (TensorRT Q/DQ rules) or "cpu" (ONNX Runtime's uint8 placement).
        trt_version: TensorRT version written into the calibration cache header (8.5.2, 10.3.0 ...).
        cache: calibration cache path; None -> ``calibration/<out stem>.cache`` (TensorRT target only).
        percentile: percentile for ``method="percentile"``.
        seed: sampling seed for folders and InStereo2K roots.
        threads: ONNX Runtime threads for calibration-free runs (evaluation, timing).
        speed_runs: timed runs per model for the speed comparison (0 skips it).
        sensitivity_pairs: held-out pairs used per layer in the sensitivity ranking.
        on_progress: optional callback(message) for progress lines.

    Returns:
        QuantizeResult.

    Raises:
        InputError: bad options or pairs (before calibration starts).
        ModelError: not an FP32 ONNX model written by ``export``.
        CheckFailed: the quantized graph breaks TensorRT's rules.
    """
    start = time.perf_counter()
    say = on_progress or (lambda message: None)
    options = QuantizeOptions(method, target, trt_version, percentile, max_epe_delta, sensitivity_pairs, speed_runs,
                              threads)
    options.validate()
    fp32_path, metadata = check_fp32_model(fp32_onnx)
    out = Path(out) if out is not None else default_output_path(fp32_path, target)
    if out.suffix.lower() != ".onnx" or out.resolve() == fp32_path.resolve():
        raise InputError(f"--out {out}: expected a new .onnx path, not the input model")
    cache_path = None if target != "trt" else Path(cache) if cache else calibration_cache_path(out)
    # Before calibration, which takes minutes: an impossible output must fail now.
    check_output_file(out, "--out", suffixes=(".onnx",), inputs=[fp32_path])
    check_output_file(error_map_path(out), "--out", inputs=[fp32_path])
    if cache_path is not None:
        check_output_file(cache_path, "--cache", inputs=[fp32_path, out])
    for option, count in (("--n-calib", n_calib), ("--holdout", holdout)):
        if count is not None and count < 1:
            raise InputError(f"{option} {count}: expected at least 1 pair")
    size = network_size(metadata)
    split = load_split(calibration, n_calib, holdout, seed, size)
    if not split.holdout:
        raise InputError("no held-out pairs: INT8 accuracy cannot be measured; expected --holdout >= 1")
    say(f"{len(split.calibration)} calibration + {len(split.holdout)} held-out pairs, preprocessed to "
        f"{split.holdout[0].geometry.padded_hw[0]}x{split.holdout[0].geometry.padded_hw[1]}")
    import_quantization()
    with tempfile.TemporaryDirectory(prefix="stereo-trt-quantize-") as work:
        work = Path(work)
        quantizer = Quantizer(fp32_path, work, options, split, say)
        outcome = quantizer.run()
        report = build_report(fp32_path, metadata, options, split, outcome, out, cache_path)
        write_outputs(out, cache_path, outcome, report, metadata, options)
    report["seconds"] = time.perf_counter() - start
    return QuantizeResult(out, provenance.sidecar_path(out), error_map_path(out), cache_path, report,
                          report["seconds"])


def import_quantization():
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise DependencyError("onnxruntime.quantization is unavailable; expected `pip install onnxruntime`") from None


def check_fp32_model(path) -> tuple[Path, dict]:
    """The input must be an FP32 model written by ``export`` (metadata present, precision fp32)."""
    path = Path(path)
    metadata = onnx_meta.read_stereo_metadata(path)
    if metadata.get("precision") != "fp32":
        raise ModelError(f"{path}: precision {metadata.get('precision')!r}; expected an FP32 model from `stereo-trt export`")
    return path, metadata


def network_size(metadata: dict) -> tuple[int, int] | None:
    """The size calibration pairs are preprocessed to: the static size, a dynamic model's opt size, or
    None (each pair padded to a multiple of 32) when the metadata records neither."""
    if metadata.get("input_hw"):
        return tuple(metadata["input_hw"])
    if metadata.get("dynamic"):
        return tuple(metadata["dynamic"]["opt"])
    return None


def default_output_path(fp32_path: Path, target: str) -> Path:
    suffix = "int8" if target == "trt" else "int8cpu"
    stem = fp32_path.stem[: -len("_fp32")] if fp32_path.stem.endswith("_fp32") else fp32_path.stem
    return fp32_path.with_name(f"{stem}_{suffix}.onnx")


def calibration_cache_path(out: Path) -> Path:
    from toolkit.paths import CALIBRATION_DIR

    return CALIBRATION_DIR / f"{out.stem}.cache"


def error_map_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.error.png")


@dataclass
class Outcome:
    """What the quantization run produced, in the work directory."""

    model_path: Path
    accuracy: object
    full_accuracy: object
    head: list[str]
    sensitivity: list[dict] | None
    search: list[dict] | None
    kept_float: list[dict]
    speed: dict | None
    error_map: np.ndarray
    findings: list
    scales: dict


class Quantizer:
    """Calibrates once, then builds and measures quantized variants of one FP32 model."""

    def __init__(self, fp32_path: Path, work: Path, options: QuantizeOptions, split: CalibrationSplit,
                 say: Callable[[str], None]) -> None:
        import onnx

        self.fp32_path = fp32_path
        self.work = work
        self.options = options
        self.split = split
        self.say = say
        self.model = onnx.load(str(fp32_path))
        self.head = sorted(head_nodes(self.model))
        self.built: dict[tuple, Path] = {}
        self.ranges_path = work / "ranges.json"

    def run(self) -> Outcome:
        self.calibrate()
        evaluator = Evaluator(self.fp32_path, self.split.holdout, self.options.threads)
        full_path = self.build(exclude=[])
        self.lint(full_path)  # the rules hold for the full model before any time goes into measuring it
        full = evaluator.accuracy(full_path)
        self.say(f"INT8 vs FP32 on {full.pairs} held-out pair(s): {describe(full)}, bad-1 {full.bad1:.3%}")
        final_path, accuracy, sensitivity, search, kept = full_path, full, None, None, []
        budget = None
        if self.options.max_epe_delta is not None:
            spearman = MIN_CONFIDENCE_SPEARMAN if full.confidence_spearman is not None else None
            budget = Budget(self.options.max_epe_delta, spearman)
        if budget is not None and not budget.met_by(full):
            groups = layer_groups(self.model, self.options.op_types or TRT_OP_TYPES, set(self.head))
            sensitivity = rank_sensitivity(groups, self.only, evaluator, self.options.sensitivity_pairs, budget,
                                           self.say)
            k, search = search_budget(sensitivity, self.without, evaluator, budget, self.say)
            kept = sensitivity[:k]
            final_path = self.without([node for item in kept for node in item["nodes"]])
            accuracy = evaluator.accuracy(final_path)
        disparities, _ = evaluator.predict(final_path, 1)
        error = np.abs(disparities[0] - evaluator.reference[0])
        speed = self.time(final_path)
        findings = self.lint(final_path)
        return Outcome(final_path, accuracy, full, self.head, sensitivity, search, kept, speed, error, findings,
                       activation_scales(final_path))

    def calibrate(self) -> None:
        """Collect activation ranges once, one pair per pass, into ONNX Runtime's calibration cache."""
        from toolkit import quantize_calib

        trt = self.options.target == "trt"
        tensors = quantize_calib.calibration_tensors(self.model, self.options.op_types)
        feeds = [sample.feed for sample in self.split.calibration]
        total = len(feeds)
        stats = quantize_calib.collect(
            self.model, tensors, feeds, self.work, histogram=self.options.method != "minmax",
            on_progress=lambda i: self.say(f"calibration {i}/{total}: {self.split.calibration[i - 1].name}"),
        )
        self.say(f"computing {self.options.method} ranges for {len(tensors)} tensors")
        ranges = quantize_calib.tensor_ranges(stats, self.options.method, self.options.percentile, symmetric=trt)
        quantize_calib.write_ort_ranges(ranges, self.options.method, self.ranges_path)

    def build(self, exclude: list[str], include: list[str] | None = None) -> Path:
        """A quantized model from the cached ranges; ``exclude`` adds to the head, ``include`` restricts.

        Each variant is built once: the budget search and the final model reuse them.
        """
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        key = (tuple(sorted(exclude)), None if include is None else tuple(sorted(include)))
        if key in self.built:
            return self.built[key]
        method = getattr(CalibrationMethod, CALIBRATION_METHODS[self.options.method])
        path = self.work / f"candidate_{len(self.built) + 1}.onnx"
        self.built[key] = path
        trt = self.options.target == "trt"
        extra = {"ActivationSymmetric": trt, "WeightSymmetric": True, "QuantizeBias": not trt,
                 "AddQDQPairToWeight": trt}
        if trt:
            # TensorRT wants Q/DQ on the inputs of quantizable layers only; an output Q/DQ before the
            # activation would waste half the int8 range on negatives the ReLU then drops.
            extra["OpTypesToExcludeOutputQuantization"] = list(TRT_OP_TYPES)
        with quiet_ort():
            quantize_static(
                str(self.fp32_path), str(path), calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(self.options.op_types or []) or None, per_channel=trt,
                activation_type=QuantType.QInt8 if trt else QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_quantize=include, nodes_to_exclude=self.head + list(exclude),
                calibrate_method=method,
                extra_options=extra, calibration_cache_path=str(self.ranges_path),
            )
        return path

    def only(self, nodes: list[str]) -> Path:
        return self.build(exclude=[], include=list(nodes))

    def without(self, nodes: list[str]) -> Path:
        return self.build(exclude=list(nodes))

    def time(self, final_path: Path) -> dict | None:
        if not self.options.speed_runs:
            return None
        self.say(f"timing FP32 vs INT8 in ONNX Runtime ({self.options.speed_runs} runs each)")
        speed = measure_speed({"fp32": self.fp32_path, "int8": final_path}, self.split.holdout[0].feed,
                              self.options.speed_runs, self.options.threads)
        speed["int8_speedup"] = speed["fp32"]["median_ms"] / speed["int8"]["median_ms"]
        return speed

    def lint(self, final_path: Path) -> list:
        """TensorRT rules for the TensorRT target; a broken Q/DQ graph fails the run."""
        if self.options.target != "trt":
            return []
        from toolkit.lint import errors, lint_onnx

        findings = lint_onnx(final_path, trt=self.options.trt_version)
        failed = errors(findings)
        if failed:
            raise CheckFailed(f"the quantized graph breaks TensorRT {self.options.trt_version} rules: {failed[0]} "
                              f"(and {len(failed) - 1} more); expected symmetric int8 Q/DQ")
        return findings


@contextlib.contextmanager
def quiet_ort():
    """Silence ONNX Runtime's quantizer: a pre-processing hint per call (it does not apply to exported
    graphs) and progress prints on stdout; the toolkit reports progress itself."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def head_nodes(model) -> set[str]:
    """Nodes kept out of INT8: the softmax / disparity-regression head and every disparity-map layer.

    * each Softmax, the node producing its input (the classifier), and what reads its output
      through reshapes and products up to the reduction (the regression / convex combination);
    * every node that reads or writes a float single-channel map (N, 1, ...): disparities,
      whose 8-bit quantization would cost up to 1/254 of their range per pixel.
    """
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        if tensor.elem_type == onnx.TensorProto.FLOAT and tensor.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    nodes = list(inferred.graph.node)
    producers = {out: n for n in nodes for out in n.output}
    consumers = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    head = set()
    for node in nodes:
        if node.op_type == "Softmax":
            head.add(node.name)
            head.update(softmax_readers(node, consumers))
            head.update(softmax_producer(node, producers))
        elif any(is_single_channel(shapes.get(name)) for name in list(node.input) + list(node.output)):
            head.add(node.name)
    return {name for name in head if name}


def is_single_channel(shape) -> bool:
    return shape is not None and len(shape) >= 4 and shape[1] == 1


def softmax_readers(node, consumers: dict) -> set[str]:
    """Nodes reading a softmax output through reshapes and products, up to the first reduction."""
    found, frontier = set(), list(node.output)
    while frontier:
        for consumer in consumers.get(frontier.pop(), []):
            if consumer.name in found:
                continue
            found.add(consumer.name)
            if consumer.op_type in SHAPE_ONLY_OPS or consumer.op_type == "Mul":
                frontier.extend(consumer.output)
    return found


def softmax_producer(node, producers: dict) -> set[str]:
    """The node computing the softmax logits, found back through reshapes."""
    name = node.input[0]
    while name in producers:
        producer = producers[name]
        if producer.op_type not in SHAPE_ONLY_OPS:
            return {producer.name}
        name = producer.input[0]
    return set()


def activation_scales(model_path: Path) -> dict[str, float]:
    """Activation tensor -> the scale of its QuantizeLinear (weights excluded: they are initializers)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    initializers = {t.name: t for t in model.graph.initializer}
    scales = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in initializers:
            scale = numpy_helper.to_array(initializers[node.input[1]])
            scales[node.input[0]] = float(np.asarray(scale).reshape(-1)[0])
    return scales


def build_report(fp32_path: Path, metadata: dict, options: QuantizeOptions, split: CalibrationSplit,
                 outcome: Outcome, out: Path, cache_path: Path | None) -> dict:
    """The JSON report: accuracy, sensitivity, layers kept in float, speed, TensorRT findings."""
    speed = outcome.speed
    report = {
        "model": out.name,
        "source_model": {"path": str(fp32_path), "sha256": provenance.sha256_file(fp32_path)},
        "options": {**options.__dict__, "op_types": list(options.op_types or ["(all ONNX Runtime supports)"])},
        "calibration": {**split.source, "n_calib": len(split.calibration), "n_holdout": len(split.holdout),
                        "preprocess": "toolkit.preprocess.prepare_pair at the model's input size"},
        "accuracy_vs_fp32": outcome.accuracy.to_dict(),
        "accuracy_full_int8_vs_fp32": outcome.full_accuracy.to_dict(),
        "epe_delta": outcome.accuracy.epe,
        "bad1_delta": outcome.accuracy.vs_gt.get("bad1_delta", outcome.accuracy.bad1),
        "head_kept_float": outcome.head,
        "kept_float": [{"layer": k["layer"], "nodes": k["nodes"], "epe_alone": k["epe"]} for k in outcome.kept_float],
        "sensitivity": outcome.sensitivity,
        "budget_search": outcome.search,
        "speed_ms": speed,
        "error_map": {"file": error_map_path(out).name, "pair": split.holdout[0].name,
                      "colour_range_px": [0.0, error_map_range(outcome.error_map)],
                      "what": "|INT8 - FP32| disparity in source pixels"},
        "tensorrt": {
            "lint_target": options.trt_version if options.target == "trt" else None,
            "findings": [f.to_dict() for f in outcome.findings],
            "calibration_cache": str(cache_path) if cache_path else None,
            "cache_header": cache_header(options.trt_version) if cache_path else None,
            "quantized_activations": len(outcome.scales),
        },
        "notes": report_notes(options, speed),
    }
    return report


def report_notes(options: QuantizeOptions, speed: dict | None) -> list[str]:
    notes = ["epe_delta is INT8 vs FP32 (source pixels) on the held-out pairs; bad1_delta is the ground-truth "
             "bad-1 difference when the pairs have ground truth, else the share of pixels INT8 moves by > 1 px"]
    if options.target == "cpu":
        notes.append("target cpu: uint8 activations and ONNX Runtime's own op placement; not for TensorRT")
    if speed:
        faster = speed["int8_speedup"]
        verdict = "faster" if faster > 1.05 else "not faster"
        notes.append(f"on this CPU the INT8 model runs {faster:.2f}x the FP32 speed ({verdict}); for the TensorRT "
                     "target the Q/DQ model is evidence of TensorRT INT8 accuracy, not a CPU speed lever")
    return notes


def error_map_range(error: np.ndarray) -> float:
    """Top of the error map's colour scale: the largest error, at least 1 px so noise stays dark."""
    return max(1.0, float(error.max()))


def write_outputs(out: Path, cache_path: Path | None, outcome: Outcome, report: dict, metadata: dict,
                  options: QuantizeOptions) -> None:
    """Write model, report sidecar, error map and calibration cache; all or nothing."""
    import onnx

    from toolkit.data import io as image_io

    model = onnx.load(str(outcome.model_path))
    quantized_meta = {key: value for key, value in metadata.items() if key not in ("created_utc", "host", "tool_versions")}
    quantized_meta.update(
        precision="int8", source_sha256=report["source_model"]["sha256"],
        quantization={"method": options.method, "target": options.target, "epe_vs_fp32": outcome.accuracy.epe,
                      "kept_float": [k["layer"] for k in outcome.kept_float], "n_calib": report["calibration"]["n_calib"]},
    )
    onnx_meta.set_stereo_metadata(model, provenance.record(**quantized_meta))
    destinations = [out, provenance.sidecar_path(out), error_map_path(out)]
    if cache_path is not None:
        destinations += [cache_path, provenance.sidecar_path(cache_path)]
    with contextlib.ExitStack() as stack:
        tmp = [stack.enter_context(provenance.atomic_path(path)) for path in destinations]
        onnx.save(model, str(tmp[0]))
        report["sha256"] = provenance.sha256_file(tmp[0])
        provenance.write_json(tmp[1], provenance.record(kind="onnx-int8", **report))
        image_io.write_image(tmp[2], image_io.colorize(outcome.error_map, vmin=0.0, vmax=error_map_range(outcome.error_map)))
        if cache_path is not None:
            write_calibration_cache(tmp[3], outcome.scales, cache_header(options.trt_version))
            provenance.write_json(tmp[4], provenance.record(
                kind="tensorrt-calibration-cache", model=out.name, header=cache_header(options.trt_version),
                tensors=len(outcome.scales), method=options.method, calibration=report["calibration"],
                note="scales = amax/127 of the calibrated activations; valid for this TensorRT version only",
            ))
