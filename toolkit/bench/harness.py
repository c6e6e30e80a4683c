"""The benchmark run: every model on the same pairs at the same size, interleaved.

Order of work:
  1. check the configuration and describe every model (nothing slow yet);
  2. resolve the dataset, create the runners, agree on one network size, open them;
  3. warm up every row, round robin;
  4. ``repeats`` timed passes, pair by pair and, within a pair, row by row (rotating the
     first row), so drift hits every row alike. Each call decodes the pair from disk and
     runs the runner: backend latency is the runner's own ``infer_ms``, end to end is
     decoding + the runner's ``total_ms`` (preprocessing, inference, postprocessing);
  5. accuracy from the first pass (the outputs do not change between passes): against the
     PyTorch FP32 reference run on the same pairs and against ground truth where it exists;
  6. peak memory of each row in a fresh process (``toolkit.bench.memory``);
  7. the report files (``toolkit.bench.report``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.bench import memory, metrics, models
from toolkit.bench.datasets import BenchData, check_bench_data, load_bench_data, read_ground_truth
from toolkit.bench.timing import latency_stats, interleaved_order
from toolkit.backends.lr_check import LRCheckRunner
from toolkit.data import io
from toolkit.errors import DependencyError, InputError

EXPORTED_BACKENDS = ("onnxruntime", "tensorrt")
# default number of timed calls per row: enough for a p90 to mean something on one pair
MIN_TIMED_CALLS = 20
ACCURACY_KEYS_REF = ("epe", "max_error", "bad1")
ACCURACY_KEYS_GT = ("epe", "max_error", "d1", "bad1", "bad2", "bad3")


@dataclass
class BenchConfig:
    """What to benchmark and how; checked by ``validate`` before anything slow runs.

    Attributes:
        models: ``--model`` values: checkpoints, ONNX models, engines, or "sgbm".
        data: "builtin", an InStereo2K root or a folder/glob of pairs.
        split: InStereo2K split ("test" by default).
        size: network (H, W) every row runs at; None: the exported models' size, else each
            pair padded to a multiple of 32.
        warmup: untimed calls per row before timing.
        repeats: timed passes over all pairs; None: enough passes for ``MIN_TIMED_CALLS``
            calls per row (one pass when the dataset alone has that many pairs).
        reference: PyTorch checkpoint for the "vs reference" columns; None: the first
            checkpoint among ``models``, else the built-in weights when the exported models
            were exported from them, else no reference.
        threads: CPU threads for PyTorch, ONNX Runtime and OpenCV; None keeps their defaults.
        device: device of the PyTorch and ONNX Runtime rows ("cpu", "cuda", "cuda:N"); a row
            may pin its own with ``+cpu`` / ``+cuda``.
        iters: refinement iterations for checkpoints; None: what the exported models baked
            in (when they agree), else the checkpoint's own.
        max_disp: disparity range for checkpoints and SGBM; None: the exported models' value
            (when they agree), else each model's own (SGBM: 192).
        limit: use only the first ``limit`` pairs.
        measure_memory: run the per-row memory probe (one child process per row).
        min_confidence: threshold for "EPE on confident pixels" of rows with a confidence output.
        worst_pairs: pairs shown in each row's error-map figure.
    """

    models: list
    data: str = "builtin"
    split: str = "test"
    size: tuple | None = None
    warmup: int = 2
    repeats: int | None = None
    reference: str | None = None
    threads: int | None = None
    device: str = "cpu"
    iters: int | None = None
    max_disp: int | None = None
    limit: int | None = None
    measure_memory: bool = True
    min_confidence: float = 0.5
    worst_pairs: int = 2

    def validate(self) -> None:
        """Raises InputError naming the first bad option."""
        if not self.models:
            raise InputError("no --model given: expected at least one checkpoint, ONNX model, engine or 'sgbm'")
        checks = [
            (self.warmup >= 0, f"--warmup {self.warmup}: expected 0 or more"),
            (self.repeats is None or self.repeats >= 1, f"--repeats {self.repeats}: expected 1 or more"),
            (self.threads is None or self.threads >= 1, f"--threads {self.threads}: expected 1 or more"),
            (self.iters is None or self.iters >= 1, f"--iters {self.iters}: expected 1 or more"),
            (self.max_disp is None or self.max_disp >= 16, f"--max-disp {self.max_disp}: expected 16 or more"),
            (0.0 <= self.min_confidence <= 1.0, f"--min-confidence {self.min_confidence}: expected 0..1"),
            (self.worst_pairs >= 0, f"worst_pairs {self.worst_pairs}: expected 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(message)
        if self.reference is not None and not Path(self.reference).is_file():
            raise InputError(f"--reference {self.reference}: no such checkpoint")


@dataclass(eq=False)
class WorstPair:
    """A pair kept for a row's error-map figure (compared by identity: it holds arrays)."""

    epe: float
    name: str
    left_path: str
    disparity: np.ndarray
    error: np.ndarray  # |prediction - target|, NaN where the target is invalid
    against: str  # "ground truth" or "reference"


@dataclass
class RowResult:
    """Everything measured for one row.

    Attributes:
        info: the model (ModelInfo as a dict).
        precision: "fp32", "fp16", "int8" (as the runner reports it).
        device: where the row ran ("cpu", "cuda", "cuda:N"), as the runner reports it.
        providers: what executed it there: ONNX Runtime's session providers, "eager" or
            "CUDA graph" for PyTorch, "TensorRT", "OpenCV StereoSGBM".
        metadata: the exported model's iters / max_disp / input size / checkpoint hash.
        options: the runner options used.
        latency: backend-only LatencyStats (dict); end_to_end: decode + runner total.
        decode_ms: mean time to decode one pair from disk.
        samples: raw "backend_ms" and "end_to_end_ms" samples, in run order.
        memory: MemoryUsage dict, or None; memory_note: why it is missing.
        vs_reference, vs_ground_truth: mean over pairs of the metrics (max_error: the
            largest over pairs); None when there is nothing to compare with.
        confidence: confident-pixel EPE and sparsification (rows with a confidence output,
            pairs with ground truth), or None.
        per_pair: per pair: name, backend p50 ms, metrics vs reference and ground truth.
        worst_pairs: the pairs in the row's error-map figure, worst first (name, EPE, against what).
    """

    info: dict
    precision: str
    device: str
    providers: list
    metadata: dict
    options: dict
    latency: dict
    end_to_end: dict
    decode_ms: float
    samples: dict
    memory: dict | None
    memory_note: str | None
    vs_reference: dict | None
    vs_ground_truth: dict | None
    confidence: dict | None
    per_pair: list
    worst_pairs: list


@dataclass
class BenchReport:
    """A finished benchmark (``as_dict`` is what report.json holds)."""

    config: dict
    dataset: dict
    passes: int
    input_hw: list | None
    reference: dict | None
    environment: dict
    rows: list
    notes: list
    provenance: dict
    files: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Row:
    """Mutable state of one row during the run."""

    info: models.ModelInfo
    options: dict
    runner: object
    backend_ms: list = field(default_factory=list)
    end_to_end_ms: list = field(default_factory=list)
    decode_ms: list = field(default_factory=list)
    pair_ms: dict = field(default_factory=dict)
    per_pair: list = field(default_factory=list)
    sparsification: list = field(default_factory=list)
    confident: list = field(default_factory=list)
    rank_agreement: list = field(default_factory=list)
    worst: list = field(default_factory=list)


@dataclass
class _Reference:
    """The PyTorch reference: a row of the run, a separate runner, or absent."""

    path: str | None = None
    sha256: str | None = None
    row: int | None = None
    runner: object = None
    note: str | None = None
    label: str | None = None

    def as_dict(self) -> dict | None:
        if self.path is None:
            return None
        return {"checkpoint": self.path, "sha256": self.sha256, "is_row": self.row is not None, "label": self.label}


Progress = Callable[[str], None]


def run_bench(config: BenchConfig, out_dir: str | Path, progress: Progress | None = None) -> BenchReport:
    """Benchmark every model of ``config`` and write the report under ``out_dir``.

    Args:
        config: what to run (checked first).
        out_dir: report folder (created; report.md, report.json, results.csv, per_pair.csv, plots/).
        progress: callback receiving one line of text per step (the CLI prints them).

    Returns:
        The BenchReport, with ``files`` listing what was written.

    Raises:
        InputError: bad options, models or data (before anything slow runs where possible).
        DependencyError: a backend or the reference needs a library that is not installed.
    """
    from toolkit import provenance
    from toolkit.bench import report as report_writer
    from toolkit.bench.environment import environment, load_average
    from toolkit.outputs import check_output_dir

    load_at_start = load_average()
    say = progress or (lambda message: None)
    config.validate()
    check_output_dir(out_dir, "--out", inputs=[*(m for m in config.models if Path(m).exists()), config.data])
    infos = models.describe_models(config.models)
    models.check_rows(infos, config.device, config.threads, config.size)
    notes = []
    with tempfile.TemporaryDirectory(prefix="stereo-trt-bench-") as scratch:
        data = load_bench_data(config.data, scratch, config.split, config.limit)
        check_bench_data(data, config.size)
        passes = config.repeats or -(-MIN_TIMED_CALLS // len(data.pairs))
        say(f"data: {data.description['pairs']} pair(s) from {config.data} "
            f"({data.description['with_ground_truth']} with ground truth); {passes} timed pass(es)")
        rows, reference, size = _open_rows(config, infos, notes, say)
        _set_opencv_threads(config.threads)
        with contextlib.ExitStack() as stack:
            for row in rows:
                stack.enter_context(row.runner)
            if reference.runner is not None:
                stack.enter_context(reference.runner)
            _warm_up(rows, data, config.warmup, say)
            _timed_passes(rows, reference, data, passes, config, say)
        usage = _measure_memory(rows, data, size, say) if config.measure_memory else {}
        env = environment(config.threads, load_at_start)
        _note_busy_machine(env, notes)
        results = [_row_result(row, usage.get(row.info.label), config) for row in rows]
        report = BenchReport(
            config=_config_dict(config), dataset=data.description, passes=passes, input_hw=list(size) if size else None,
            reference=reference.as_dict(), environment=env, rows=[asdict(r) for r in results],
            notes=notes, provenance=provenance.record(tool="stereo-trt bench"),
        )
        worst = {row.info.label: sorted(row.worst, key=lambda w: -w.epe) for row in rows}
        report.files = report_writer.write_report(report, out_dir, worst, say)
    return report


def _note_busy_machine(env: dict, notes: list) -> None:
    """Say so when other work competed for the CPU: every latency then includes contention."""
    loads = [load[0] for load in env["load_average"].values() if load]
    if loads and max(loads) > env["usable_cores"]:
        notes.append(f"the machine was busy: 1-minute load average up to {max(loads):.1f} on "
                     f"{env['usable_cores']} usable cores, so latencies include contention from other processes")


def _config_dict(config: BenchConfig) -> dict:
    values = asdict(config)
    values["size"] = list(config.size) if config.size else None
    return values


def _set_opencv_threads(threads: int | None) -> None:
    """OpenCV's pool serves SGBM and the resize in preprocessing, for every row alike."""
    if threads:
        import cv2

        cv2.setNumThreads(threads)


def _open_rows(config: BenchConfig, infos: list, notes: list, say: Progress):
    """Create every row's runner and the reference, each at the one agreed network size."""
    from toolkit.backends import open_runner

    # exported models first: their baked-in iterations, range and size set those of the others
    exported = {info.label: open_runner(_spec(info, config, None, None, config.size))
                for info in infos if info.backend in EXPORTED_BACKENDS}
    metadata = {label: models.exported_metadata(r) for label, r in exported.items()}
    iters = config.iters or _common(metadata, "iters", notes, "iterations")
    max_disp = config.max_disp or _common(metadata, "max_disp", notes, "max disparity")
    size = models.bench_size(config.size, exported)
    rows = []
    for info in infos:
        spec = _spec(info, config, iters, max_disp, size)
        runner = exported.get(info.label)
        if runner is None or runner.input_hw != size:
            runner = open_runner(spec)
        rows.append(_Row(info, models.spec_options(spec), runner))
    say("size: " + (f"{size[0]}x{size[1]}" if size else "each pair padded to a multiple of 32")
        + f"; rows: {', '.join(info.label for info in infos)}")
    reference = _resolve_reference(config, rows, metadata, iters, max_disp, size, notes)
    say(f"reference: {reference.path or 'none'}" + (f" ({reference.note})" if reference.note else ""))
    return rows, reference, size


def _spec(info, config: BenchConfig, iters, max_disp, size):
    return models.row_spec(info.spec, config.device, config.threads, iters, max_disp, size)


def _common(exported: dict, key: str, notes: list, what: str):
    """The value every exported model shares for ``key``; None (with a note) when they differ."""
    values = {label: meta[key] for label, meta in exported.items() if meta.get(key) is not None}
    distinct = set(values.values())
    if len(distinct) > 1:
        listing = ", ".join(f"{label}: {value}" for label, value in values.items())
        notes.append(f"exported models differ in {what} ({listing}); checkpoints use their own")
        return None
    return distinct.pop() if distinct else None


def _resolve_reference(config: BenchConfig, rows: list, exported: dict, iters, max_disp, size,
                       notes: list) -> _Reference:
    """Pick the PyTorch FP32 reference (see ``BenchConfig.reference``) and check what it matches."""
    from toolkit import provenance
    from toolkit.paths import BUILTIN_CHECKPOINT

    torch_rows = [i for i, row in enumerate(rows) if row.info.backend == "torch"]
    path = config.reference
    if path is None and torch_rows:
        path = rows[torch_rows[0]].info.path
    sources = {meta.get("checkpoint_sha256") for meta in exported.values()} - {None}
    # the automatic fallback must not make PyTorch a requirement (a Jetson runtime install has none)
    torch_available = importlib.util.find_spec("torch") is not None
    if path is None and len(sources) == 1 and BUILTIN_CHECKPOINT.is_file() and torch_available:
        if provenance.sha256_file(BUILTIN_CHECKPOINT) in sources:
            path = str(BUILTIN_CHECKPOINT)
    if path is None:
        notes.append("no PyTorch reference: pass --reference CKPT for the 'vs reference' columns")
        return _Reference(note="no checkpoint among the models and none given")
    resolved = str(Path(path).resolve())
    sha = provenance.sha256_file(resolved)
    for label, meta in exported.items():
        if meta.get("checkpoint_sha256") not in (None, sha):
            notes.append(f"{label} was exported from checkpoint {meta['checkpoint_sha256'][:12]}, not the reference "
                         f"{sha[:12]}: its 'vs reference' error includes the weight difference")
    # the reference is the eager FP32 pass: a +fp16 or +graph row of the same checkpoint is not it
    same_row = [i for i in torch_rows if rows[i].info.path == resolved and _is_eager_fp32(rows[i].options)]
    if same_row:
        return _Reference(resolved, sha, row=same_row[0], label=rows[same_row[0]].info.label)
    from toolkit.backends import RunnerSpec, open_runner

    spec = RunnerSpec(model=resolved, device=config.device, threads=config.threads, iters=iters, max_disp=max_disp,
                      size=size)
    try:
        runner = open_runner(spec)
    except DependencyError as exc:
        raise DependencyError(f"the PyTorch reference needs PyTorch ({exc}); or leave --reference out") from None
    return _Reference(resolved, sha, runner=runner, note="run untimed beside the rows")


def _is_eager_fp32(options: dict) -> bool:
    """A row that runs the reference computation itself: eager, FP32, no left-right wrapping."""
    return options.get("precision") in (None, "fp32") and not options.get("cuda_graph") and not options.get("lr_check")


def _decode(pair) -> tuple[np.ndarray, np.ndarray, float]:
    start = time.perf_counter()
    left, right = io.read_image(pair.left), io.read_image(pair.right)
    return left, right, (time.perf_counter() - start) * 1000.0


def _warm_up(rows: list, data: BenchData, calls: int, say: Progress) -> None:
    if calls == 0:
        return
    say(f"warm-up: {calls} call(s) per row")
    left, right, _ = _decode(data.pairs[0])
    for step in range(calls):
        for index in interleaved_order(len(rows), step):
            rows[index].runner.infer(left, right)


def _timed_passes(rows: list, reference: _Reference, data: BenchData, passes: int, config: BenchConfig,
                  say: Progress) -> None:
    """Run every pair through every row ``passes`` times; score the first pass."""
    total = len(data.pairs)
    for repeat in range(passes):
        for pair_index, pair in enumerate(data.pairs):
            predictions = {}
            for index in interleaved_order(len(rows), repeat * total + pair_index):
                predictions[index] = _timed_call(rows[index], pair)
            say(f"pass {repeat + 1}/{passes} pair {pair_index + 1}/{total} {pair.name}: "
                + ", ".join(f"{rows[i].info.label} {predictions[i].infer_ms:.1f} ms" for i in sorted(predictions)))
            if repeat == 0:
                _score_pair(rows, predictions, reference, data, pair, config)


def _timed_call(row: _Row, pair):
    left, right, decode_ms = _decode(pair)
    prediction = row.runner.infer(left, right)
    row.decode_ms.append(decode_ms)
    row.backend_ms.append(prediction.infer_ms)
    row.end_to_end_ms.append(decode_ms + prediction.total_ms)
    row.pair_ms.setdefault(pair.name, []).append(prediction.infer_ms)
    return prediction


def _score_pair(rows: list, predictions: dict, reference: _Reference, data: BenchData, pair,
                config: BenchConfig) -> None:
    """Accuracy of every row on one pair against the reference and the ground truth."""
    if reference.row is not None:
        ref_prediction = predictions[reference.row]
    elif reference.runner is not None:
        left, right, _ = _decode(pair)
        ref_prediction = reference.runner.infer(left, right)
    else:
        ref_prediction = None
    ref_disparity = ref_prediction.disparity if ref_prediction is not None else None
    truth = read_ground_truth(data, pair)
    if truth is not None and truth[0].shape != predictions[0].disparity.shape:
        raise InputError(f"{pair.gt_path or pair.name}: ground truth is {truth[0].shape[1]}x{truth[0].shape[0]}, "
                         f"the left image {predictions[0].disparity.shape[1]}x{predictions[0].disparity.shape[0]}")
    for index, prediction in predictions.items():
        _score_row(rows[index], pair, prediction, ref_disparity, truth, config)
        if ref_prediction is not None and index != reference.row:
            _score_rank_agreement(rows[index], prediction, ref_prediction)


def _score_rank_agreement(row: _Row, prediction, ref_prediction) -> None:
    """Spearman of the row's confidence against the reference's: the same network's confidence,
    exported or quantized, must keep its ranking (SGBM and LR-checked rows are other estimators)."""
    if prediction.confidence is None or ref_prediction.confidence is None:
        return
    if row.info.backend == "sgbm" or isinstance(row.runner, LRCheckRunner):
        return
    row.rank_agreement.append(metrics.spearman(prediction.confidence, ref_prediction.confidence))


def _score_row(row: _Row, pair, prediction, ref_disparity, truth, config: BenchConfig) -> None:
    entry = {"pair": pair.name}
    if ref_disparity is not None:
        entry["vs_reference"] = metrics.disparity_metrics(prediction.disparity, ref_disparity).as_dict()
    target = None
    if truth is not None:
        entry["vs_ground_truth"] = metrics.disparity_metrics(prediction.disparity, truth[0], truth[1]).as_dict()
        target = (truth[0], truth[1], entry["vs_ground_truth"]["epe"], "ground truth")
        if prediction.confidence is not None:
            _score_confidence(row, prediction, truth, config.min_confidence)
    elif ref_disparity is not None:
        target = (ref_disparity, None, entry["vs_reference"]["epe"], "reference")
    row.per_pair.append(entry)
    if target is not None and config.worst_pairs:
        _keep_worst(row, pair, prediction.disparity, target, config.worst_pairs)


def _score_confidence(row: _Row, prediction, truth, threshold: float) -> None:
    """Confident-pixel EPE and sparsification of one pair (errors against ground truth)."""
    mask = metrics.valid_mask(truth[0], truth[1])
    errors = metrics.pixel_errors(prediction.disparity, truth[0], mask)
    confidence = prediction.confidence[mask]
    if errors.size == 0:
        return
    keep = confidence >= threshold
    row.confident.append({"epe": metrics.masked_epe(errors, keep), "density": float(keep.mean())})
    if np.all(np.isfinite(errors)):
        row.sparsification.append(metrics.sparsification(errors, confidence))


def _keep_worst(row: _Row, pair, disparity: np.ndarray, target: tuple, keep: int) -> None:
    """Keep the ``keep`` pairs with the largest EPE for this row's error-map figure."""
    reference, valid, epe, against = target
    if not np.isfinite(epe):
        epe = float("inf")
    if len(row.worst) >= keep and epe <= min(w.epe for w in row.worst):
        return
    mask = metrics.valid_mask(reference, valid)
    error = np.where(mask, np.abs(disparity - np.where(mask, reference, 0)), np.nan).astype(np.float32)
    row.worst.append(WorstPair(epe, pair.name, str(pair.left), disparity, error, against))
    if len(row.worst) > keep:
        row.worst.sort(key=lambda w: -w.epe)
        del row.worst[keep:]


def _measure_memory(rows: list, data: BenchData, size, say: Progress) -> dict:
    """Per-row peak memory, each in a fresh child process (see ``toolkit.bench.memory``)."""
    usage = {}
    pair = data.pairs[0]
    for row in rows:
        result = memory.measure(row.info.spec, row.options, size, pair.left, pair.right)
        usage[row.info.label] = result
        text = result if isinstance(result, str) else f"peak RSS {result.peak_rss_mb:.0f} MB"
        say(f"memory: {row.info.label}: {text}")
    return usage


def _mean_metrics(per_pair: list, key: str, fields: tuple) -> dict | None:
    """Mean over pairs of each field (max_error: the largest), or None when no pair has ``key``."""
    entries = [entry[key] for entry in per_pair if key in entry and entry[key]["valid_pixels"] > 0]
    if not entries:
        return None
    summary = {name: float(np.mean([e[name] for e in entries])) for name in fields if name != "max_error"}
    if "max_error" in fields:
        summary["max_error"] = float(max(e["max_error"] for e in entries))
    summary["pairs"] = len(entries)
    return summary


def _confidence_summary(row: _Row, threshold: float) -> dict | None:
    if not row.confident and not row.rank_agreement:
        return None
    curves = metrics.mean_sparsification(row.sparsification)
    kept = [c["epe"] for c in row.confident if np.isfinite(c["epe"])]  # NaN: no pixel passed the threshold
    return {
        "min_confidence": threshold,
        "epe_confident": float(np.mean(kept)) if kept else None,
        "density_confident": float(np.mean([c["density"] for c in row.confident])) if row.confident else None,
        "sparsification": curves.as_dict() if curves else None,
        "pairs": len(row.confident),
        # lowest per-pair Spearman against the reference's confidence (None: no comparison)
        "spearman_vs_reference": float(min(row.rank_agreement)) if row.rank_agreement else None,
    }


def _row_result(row: _Row, usage, config: BenchConfig) -> RowResult:
    per_pair = [{**entry, "backend_p50_ms": float(np.median(row.pair_ms[entry["pair"]]))} for entry in row.per_pair]
    return RowResult(
        info=row.info.as_dict(),
        precision=getattr(row.runner, "precision", "fp32"),
        device=row.runner.device,
        providers=list(row.runner.providers),
        metadata=models.exported_metadata(row.runner),
        options={k: v for k, v in row.options.items() if v is not None},
        latency=latency_stats(row.backend_ms).as_dict(),
        end_to_end=latency_stats(row.end_to_end_ms).as_dict(),
        decode_ms=float(np.mean(row.decode_ms)),
        samples={"backend_ms": row.backend_ms, "end_to_end_ms": row.end_to_end_ms},
        memory=usage.as_dict() if isinstance(usage, memory.MemoryUsage) else None,
        memory_note=usage if isinstance(usage, str) else None,
        vs_reference=_mean_metrics(row.per_pair, "vs_reference", ACCURACY_KEYS_REF),
        vs_ground_truth=_mean_metrics(row.per_pair, "vs_ground_truth", ACCURACY_KEYS_GT),
        confidence=_confidence_summary(row, config.min_confidence),
        per_pair=per_pair,
        worst_pairs=[{"pair": w.name, "epe": w.epe, "against": w.against}
                     for w in sorted(row.worst, key=lambda w: -w.epe)],
    )
