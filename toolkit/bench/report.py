"""Benchmark report files: report.md, report.json, results.csv, per_pair.csv and plots/.

The Markdown leads with one table in the style of Ultralytics' benchmark output (one row
per model and precision: size, EPE vs reference, EPE vs ground truth, D1, p50/p99 latency,
FPS); details, plots and the environment follow. The JSON holds every number, raw latency
samples included; the CSVs hold the same summary and per-pair numbers as flat tables.
Every file is written atomically.
"""

from __future__ import annotations

import csv
import io as text_io
import math
import statistics
from pathlib import Path

from toolkit.bench import plots
from toolkit.bench.models import BACKEND_TITLES
from toolkit.provenance import atomic_path, write_json

MISSING = "–"
# keys left out of the flat CSV rows: raw samples, per-pair lists and curve points
CSV_SKIP = ("samples", "per_pair", "removed", "curve", "oracle", "random")


def write_report(report, out_dir: str | Path, worst: dict, say=None) -> dict:
    """Write every report file under ``out_dir``.

    Args:
        report: the BenchReport.
        out_dir: folder (created).
        worst: row label -> WorstPair list for the error-map figures.
        say: optional progress callback.

    Returns:
        name -> path (relative to ``out_dir``) of every file written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    figures, plot_note = _write_plots(report, out_dir, worst)
    if plot_note:
        report.notes.append(plot_note)
    files.update(figures)
    files["results.csv"] = _write_csv(out_dir / "results.csv", [flat_row(row) for row in report.rows])
    files["per_pair.csv"] = _write_csv(out_dir / "per_pair.csv", per_pair_rows(report.rows))
    files["report.md"] = "report.md"
    files["report.json"] = "report.json"
    report.files = dict(files)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(render_markdown(report, figures))
    write_json(out_dir / "report.json", report.as_dict())
    if say is not None:
        say(f"report: {out_dir / 'report.md'} (+ report.json, results.csv, per_pair.csv, {len(figures)} plot(s))")
    return report.files


def _write_plots(report, out_dir: Path, worst: dict) -> tuple[dict, str | None]:
    """The figures, as name -> relative path; plus a note when they cannot be drawn."""
    if not plots.matplotlib_available():
        return {}, "plots skipped: matplotlib is not installed (pip install matplotlib)"
    plot_dir = out_dir / "plots"
    rows = report.rows
    figures = {"latency_cdf": plots.latency_cdf(rows, plot_dir / "latency_cdf.png")}
    against = _headline_accuracy(rows)
    if against:
        figures["speed_vs_epe"] = plots.speed_vs_epe(rows, plot_dir / "speed_vs_epe.png", against)
    if any((row.get("confidence") or {}).get("sparsification") for row in rows):
        figures["sparsification"] = plots.sparsification_curves(rows, plot_dir / "sparsification.png")
    for label, pairs in worst.items():
        if pairs:
            figures[f"errors {label}"] = plots.error_maps(label, pairs, plot_dir / f"errors_{plots.slug(label)}.png")
    return {name: path.relative_to(out_dir).as_posix() for name, path in figures.items()}, None


def _headline_accuracy(rows: list) -> str | None:
    """Which accuracy the scatter plot shows: ground truth when any row has it, else reference."""
    for key in ("vs_ground_truth", "vs_reference"):
        if any(row.get(key) for row in rows):
            return key
    return None


def fmt(value, digits: int = 2) -> str:
    """A number for a table: fixed decimals, "inf" for infinity, a dash for missing/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def fmt_ms(value) -> str:
    """Milliseconds with precision that fits their size (0.123, 12.3, 1234)."""
    if value is None:
        return MISSING
    return fmt(value, 0 if value >= 100 else 1 if value >= 10 else 3 if value < 1 else 2)


def fmt_px(value) -> str:
    """An error in pixels: 3 decimals, scientific below 0.001 so tiny parity errors stay visible."""
    if value is not None and isinstance(value, float) and 0 < value < 1e-3:
        return f"{value:.1e}"
    return fmt(value, 3)


def _get(row: dict, *keys):
    value = row
    for key in keys:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def _table(header: list, lines: list, align: list | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` holds "l" or "r" per column."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    text = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    text += ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]
    return "\n".join(text)


def _precision(row: dict) -> str:
    return "classical" if row["info"]["backend"] == "sgbm" else str(row["precision"]).upper()


def summary_table(rows: list, reference: dict | None) -> str:
    """The headline table: one row per model/precision."""
    header = ["Model", "Backend", "Runs on", "Precision", "Size (MB)", "EPE vs ref (px)", "EPE vs GT (px)",
              "D1 (%)", "p50 (ms)", "p99 (ms)", "FPS", "Speed vs ref", "End-to-end FPS"]
    reference_row = find_reference_row(rows, reference)
    lines = [[f"`{row['info']['label']}`", BACKEND_TITLES.get(row["info"]["backend"], row["info"]["backend"]),
              runs_on(row), _precision(row), fmt(row["info"]["size_mb"], 1), fmt_px(_get(row, "vs_reference", "epe")),
              fmt_px(_get(row, "vs_ground_truth", "epe")), fmt(_get(row, "vs_ground_truth", "d1")),
              fmt_ms(row["latency"]["p50"]), fmt_ms(row["latency"]["p99"]), fmt(row["latency"]["fps"]),
              fmt_speedup(speed_vs(row, reference_row)), fmt(row["end_to_end"]["fps"])] for row in rows]
    return _table(header, lines, ["l", "l", "l", "l"] + ["r"] * 9)


def runs_on(row: dict) -> str:
    """Device and what executed the row there, e.g. "cuda:0 (CUDA graph)", "cpu (CPUExecutionProvider)"."""
    providers = ", ".join(row.get("providers") or [])
    return f"{row.get('device', '?')} ({providers})" if providers else str(row.get("device", "?"))


def find_reference_row(rows: list, reference: dict | None) -> dict | None:
    """The row that runs the PyTorch reference itself, if the run has one."""
    if not reference or not reference.get("is_row"):
        return None
    if reference.get("label"):
        return next((row for row in rows if row["info"]["label"] == reference["label"]), None)
    return next((row for row in rows if row["info"]["backend"] == "torch"
                 and row["info"].get("path") == reference["checkpoint"]), None)


def speed_vs(row: dict, reference_row: dict | None) -> float | None:
    """The reference row's mean backend latency over this row's: 1.25 = 25 % more frames per second."""
    if reference_row is None or not row["latency"]["mean"]:
        return None
    return reference_row["latency"]["mean"] / row["latency"]["mean"]


def paired_speed_vs(row: dict, reference_row: dict | None) -> float | None:
    """Median over calls of reference time / this row's time for the same pair and pass.

    Rows are timed interleaved, so the i-th samples of two rows saw the same pair moments
    apart: the per-call ratio cancels slow drifts of a shared machine that a ratio of means
    keeps.
    """
    if reference_row is None:
        return None
    reference_ms, own_ms = reference_row["samples"]["backend_ms"], row["samples"]["backend_ms"]
    if not own_ms or len(own_ms) != len(reference_ms):
        return None
    return statistics.median(ref / own for ref, own in zip(reference_ms, own_ms) if own > 0)


def fmt_speedup(value) -> str:
    return MISSING if value is None else f"{value:.2f}x"


def latency_table(rows: list, reference: dict | None) -> str:
    header = ["Model", "min", "mean", "p50", "p90", "p99", "max", "E2E p50", "E2E p90", "E2E p99", "decode",
              "calls", "paired speed vs ref"]
    reference_row = find_reference_row(rows, reference)
    lines = []
    for row in rows:
        lat, e2e = row["latency"], row["end_to_end"]
        lines.append([f"`{row['info']['label']}`"] + [fmt_ms(lat[k]) for k in ("min", "mean", "p50", "p90", "p99", "max")]
                     + [fmt_ms(e2e[k]) for k in ("p50", "p90", "p99")] + [fmt_ms(row["decode_ms"]), lat["count"],
                                                                       fmt_speedup(paired_speed_vs(row, reference_row))])
    return _table(header, lines)


def reference_table(rows: list) -> str:
    header = ["Model", "EPE (px)", "max error (px)", "bad-1 (%)"]
    lines = [[f"`{row['info']['label']}`", fmt_px(_get(row, "vs_reference", "epe")),
              fmt_px(_get(row, "vs_reference", "max_error")), fmt(_get(row, "vs_reference", "bad1"), 3)]
             for row in rows]
    return _table(header, lines)


def ground_truth_table(rows: list) -> str:
    header = ["Model", "EPE (px)", "max error (px)", "D1 (%)", "bad-1 (%)", "bad-2 (%)", "bad-3 (%)"]
    lines = [[f"`{row['info']['label']}`", fmt_px(_get(row, "vs_ground_truth", "epe")),
              fmt(_get(row, "vs_ground_truth", "max_error"), 2)]
             + [fmt(_get(row, "vs_ground_truth", key)) for key in ("d1", "bad1", "bad2", "bad3")] for row in rows]
    return _table(header, lines)


def confidence_table(rows: list) -> str:
    header = ["Model", "EPE dense (px)", "EPE confident (px)", "density (%)", "AUSE", "AUSE random",
              "EPE @50% (px)", "EPE @90% (px)", "Spearman vs ref (min)"]
    lines = []
    for row in rows:
        conf = row.get("confidence")
        if not conf:
            continue
        sparse = conf.get("sparsification") or {}
        at = sparse.get("epe_at_density", {})
        density = conf["density_confident"]
        lines.append([f"`{row['info']['label']}`", fmt_px(_get(row, "vs_ground_truth", "epe")),
                      fmt_px(conf["epe_confident"]), fmt(density * 100 if density is not None else None, 1),
                      fmt(sparse.get("ause"), 3), fmt(sparse.get("ause_random"), 3),
                      fmt_px(at.get("0.5")), fmt_px(at.get("0.9")), fmt(conf.get("spearman_vs_reference"), 4)])
    return _table(header, lines)


def memory_table(rows: list) -> str:
    header = ["Model", "peak RSS (MB)", "before loading (MB)", "model + backend (MB)", "GPU (MB)"]
    lines = []
    for row in rows:
        mem = row.get("memory")
        if mem is None:
            lines.append([f"`{row['info']['label']}`", row.get("memory_note") or "not measured", "", "", ""])
            continue
        lines.append([f"`{row['info']['label']}`", fmt(mem["peak_rss_mb"], 0), fmt(mem["baseline_rss_mb"], 0),
                      fmt(mem["model_rss_mb"], 0), fmt(mem["gpu_mb"], 0)])
    return _table(header, lines)


def environment_table(env: dict) -> str:
    threads = env.get("threads", {})
    lines = [["CPU", env.get("cpu")], ["cores (logical / usable)", f"{env.get('logical_cores')} / {env.get('usable_cores')}"],
             ["threads", ", ".join(f"{k} {v}" for k, v in threads.items() if v is not None)],
             ["GPU", "; ".join(env.get("gpus") or []) or "none"], ["OS", f"{env.get('os')} ({env.get('machine')})"]]
    load = env.get("load_average") or {}
    if load.get("start") and load.get("end"):
        lines.append(["load average 1/5/15 min (start → end)",
                      f"{'/'.join(map(str, load['start']))} → {'/'.join(map(str, load['end']))}"])
    if env.get("jetson"):
        lines += [["Jetson", env["jetson"]], ["power mode (nvpmodel -q)", env.get("power_mode") or "unknown"]]
    lines.append(["versions", ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())])
    return _table(["", "value"], lines, ["l", "l"])


def reproduce_command(config: dict) -> str:
    """The ``stereo-trt bench`` command line that repeats this run."""
    parts = ["stereo-trt bench"] + [f"--model {spec}" for spec in config["models"]]
    parts.append(f"--data {config['data']}")
    options = (("split", "--split", "test"), ("warmup", "--warmup", None), ("repeats", "--repeats", None),
               ("reference", "--reference", None), ("threads", "--threads", None), ("device", "--device", "cpu"),
               ("iters", "--iters", None), ("max_disp", "--max-disp", None), ("limit", "--limit", None),
               ("min_confidence", "--min-confidence", 0.5))
    if config.get("size"):
        parts.append(f"--size {config['size'][0]}x{config['size'][1]}")
    for key, flag, default in options:
        value = config.get(key)
        if value is not None and value != default:
            parts.append(f"{flag} {value}")
    if not config.get("measure_memory", True):
        parts.append("--no-memory")
    return " ".join(parts)


def render_markdown(report, figures: dict) -> str:
    """The whole report.md text."""
    rows, config, data = report.rows, report.config, report.dataset
    size = f"{report.input_hw[0]}x{report.input_hw[1]}" if report.input_hw else "each pair padded to a multiple of 32"
    parts = [
        "# stereo-trt benchmark",
        f"{data.get('pairs')} pair(s) from `{config['data']}` ({data.get('kind')}"
        + (f", split {data['split']}" if data.get("split") else "") + f"; {data.get('with_ground_truth')} with ground truth), "
        f"network input {size}, {report.passes} timed pass(es) after {config['warmup']} warm-up call(s) per model, "
        f"models interleaved pair by pair. " + _reference_sentence(report.reference),
        summary_table(rows, report.reference),
        "p50/p99/FPS: backend inference alone (each runner's own timing, device synchronised); end-to-end FPS "
        "adds decoding the PNGs, preprocessing and postprocessing. FPS = 1000 / mean latency; speed vs ref: the "
        "PyTorch reference row's mean latency over this row's, both from the same interleaved passes. EPE and D1 "
        "(KITTI: error > 3 px and > 5 %) are over all valid pixels, averaged over pairs; "
        f"{MISSING} means nothing to compare with.",
        "## Latency (ms)", latency_table(rows, report.reference),
    ]
    if any(row.get("vs_reference") for row in rows):
        name = Path(report.reference["checkpoint"]).name
        parts += [f"## Accuracy vs the PyTorch FP32 reference (`{name}`)", reference_table(rows)]
    if any(row.get("vs_ground_truth") for row in rows):
        parts += ["## Accuracy vs ground truth", ground_truth_table(rows)]
    if any(row.get("confidence") for row in rows):
        threshold = next(row["confidence"]["min_confidence"] for row in rows if row.get("confidence"))
        parts += ["## Confidence", confidence_table(rows),
                  f"EPE confident: pixels with confidence >= {threshold}; density: their share of the valid pixels. "
                  "AUSE: area between the sparsification and oracle curves (0 = perfect ranking); "
                  "AUSE random: what random removal scores. EPE @x%: the x% most confident pixels. "
                  "Spearman vs ref: the lowest per-pair rank correlation with the PyTorch reference's confidence "
                  "(exported and quantized models must keep the ranking)."]
    parts += ["## Memory", memory_table(rows),
              "Each model measured alone in a fresh process after the timed runs: peak resident set "
              "(VmHWM on Linux) while loading it and running two inferences at the benchmark size, the resident set "
              "before loading it, and the difference (the model plus its backend library). GPU: PyTorch's peak "
              "allocation, or device memory in use (cudaMemGetInfo) after minus before; on Jetson the RSS "
              "already includes it."]
    parts += _figure_section(figures)
    parts += ["## Environment", environment_table(report.environment)]
    if report.notes:
        parts += ["## Notes", "\n".join(f"- {note}" for note in report.notes)]
    parts += ["## Reproduce", f"```\n{reproduce_command(config)}\n```",
              f"Created {report.provenance.get('created_utc')} by stereo-trt "
              f"{report.provenance.get('tool_versions', {}).get('stereo-trt')}; every number is in `report.json`, "
              "`results.csv` and `per_pair.csv`."]
    return "\n\n".join(parts) + "\n"


def _reference_sentence(reference: dict | None) -> str:
    if reference is None:
        return "No PyTorch reference (give --reference CKPT for the 'vs ref' column)."
    return f"Reference: `{Path(reference['checkpoint']).name}` in PyTorch FP32."


def _figure_section(figures: dict) -> list:
    if not figures:
        return []
    titles = {"latency_cdf": "Latency CDF", "speed_vs_epe": "Speed vs accuracy", "sparsification": "Sparsification"}
    lines = ["## Plots"]
    for name, path in figures.items():
        title = titles.get(name) or f"Worst pairs of `{name[len('errors '):]}`"
        lines.append(f"### {title}\n\n![{name}]({path})")
    return lines


def flat_row(row: dict) -> dict:
    """One RowResult dict as a flat CSV record (nested keys joined by '.', lists of numbers left out,
    lists of names joined by spaces)."""
    flat = {}

    def visit(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key not in CSV_SKIP:
                    visit(f"{prefix}.{key}" if prefix else str(key), inner)
        elif not isinstance(value, (list, tuple)):
            flat[prefix] = value
        elif value and all(isinstance(item, str) for item in value):
            flat[prefix] = " ".join(value)  # names, such as the execution providers a row ran on

    visit("", row)
    return flat


def per_pair_rows(rows: list) -> list:
    """Per-pair records: model, pair, backend p50 and the metrics against reference and ground truth."""
    records = []
    for row in rows:
        for entry in row["per_pair"]:
            record = {"model": row["info"]["label"]}
            record.update(flat_row(entry))
            records.append(record)
    return records


def _write_csv(path: Path, records: list) -> str:
    """Write records (dicts, columns in first-seen order) as CSV; returns the file name."""
    columns = []
    for record in records:
        columns += [key for key in record if key not in columns]
    buffer = text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())
    return path.name
