"""End-to-end benchmark runs with real runners (ONNX Runtime + OpenCV SGBM) at a tiny size."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from toolkit.backends.sgbm import SGBMRunner
from toolkit.bench import BenchConfig, memory, metrics, run_bench
from toolkit.bench.timing import interleaved_order, latency_stats
from toolkit.data import io
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.errors import InputError

SIZE = (64, 96)


@pytest.fixture(scope="module")
def tiny_onnx():
    from tiny_models import exported_tiny_onnx

    return exported_tiny_onnx(SIZE)


@pytest.fixture(scope="module")
def instereo2k(tmp_path_factory):
    """Two generated test pairs with ground truth, in the InStereo2K layout."""
    return write_instereo2k_tree(tmp_path_factory.mktemp("instereo2k"), n_train_parts=0, n_test=2, size=SIZE,
                                 max_disp=24)


@pytest.fixture(scope="module")
def bench_run(tiny_onnx, instereo2k, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    lines = []
    config = BenchConfig(models=[str(tiny_onnx), "sgbm"], data=str(instereo2k), warmup=1, repeats=2, max_disp=32,
                         worst_pairs=1)
    report = run_bench(config, out, progress=lines.append)
    return report, out, lines


def summary_rows(markdown: str) -> list:
    """Data lines of the first Markdown table (the headline table)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Model"))
    assert set(lines[start + 1].replace("|", "").split()) <= {"---", "---:"}
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_bench_writes_every_report_file(bench_run):
    report, out, _ = bench_run
    for name in ("report.md", "report.json", "results.csv", "per_pair.csv", "plots/latency_cdf.png",
                 "plots/speed_vs_epe.png", "plots/sparsification.png", "plots/errors_sgbm.png"):
        assert (out / name).is_file(), name
    assert list(out.glob("plots/errors_tiny*.png"))
    assert not list(out.rglob("*.partial*")), "a temporary file was left behind"
    for png in out.glob("plots/*.png"):
        assert io.read_image(png).shape[2] in (3, 4)


def test_markdown_has_one_row_per_model(bench_run):
    _, out, _ = bench_run
    markdown = (out / "report.md").read_text()
    rows = summary_rows(markdown)
    assert [row[0] for row in rows] == ["`tiny_64x96_it2_fp32.onnx`", "`sgbm`"]
    # the device and providers each row really ran on: cpu stays CPU only
    assert rows[0][1:4] == ["ONNX Runtime", "cpu (CPUExecutionProvider)", "FP32"]
    assert rows[1][2] == "cpu (OpenCV StereoSGBM)"
    assert all(len(row) == 13 for row in rows)
    assert [row[11] for row in rows] == ["–", "–"]  # no PyTorch reference row in this run
    for plot in ("plots/latency_cdf.png", "plots/speed_vs_epe.png", "plots/errors_sgbm.png"):
        assert f"]({plot})" in markdown


def test_error_maps_show_the_worst_pair(bench_run):
    report, out, _ = bench_run
    for row in report.rows:
        worst = max(row["per_pair"], key=lambda entry: entry["vs_ground_truth"]["epe"])
        assert [w["pair"] for w in row["worst_pairs"]] == [worst["pair"]]  # worst_pairs=1 keeps only the worst
        assert row["worst_pairs"][0]["against"] == "ground truth"
    figure = io.read_image(out / "plots" / "errors_sgbm.png")
    assert figure.shape[0] < figure.shape[1]  # one pair: a single line of three panels


def test_pairs_without_ground_truth_or_reference(tmp_path):
    for side in ("left", "right"):
        io.write_image(tmp_path / "data" / side / "a.png", np.random.default_rng(0).integers(0, 255, (64, 96, 3),
                                                                                            dtype=np.uint8))
    report = run_bench(BenchConfig(models=["sgbm"], data=str(tmp_path / "data"), warmup=0, repeats=1, max_disp=32,
                                   measure_memory=False), tmp_path / "out")
    row = report.rows[0]
    assert row["vs_ground_truth"] is None and row["vs_reference"] is None and row["confidence"] is None
    assert (tmp_path / "out" / "plots" / "latency_cdf.png").is_file()
    assert not (tmp_path / "out" / "plots" / "speed_vs_epe.png").exists()
    assert summary_rows((tmp_path / "out" / "report.md").read_text())[0][4:7] == ["–", "–", "–"]


def test_timing_is_interleaved_and_complete(bench_run):
    report, _, lines = bench_run
    for row in report.rows:
        assert row["latency"]["count"] == 4  # 2 pairs x 2 passes
        assert len(row["samples"]["end_to_end_ms"]) == 4
        lat = row["latency"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        # end to end = decoding + the runner's total, which contains the backend call
        assert all(e > b for e, b in zip(row["samples"]["end_to_end_ms"], row["samples"]["backend_ms"]))
    pair_lines = [line for line in lines if line.startswith("pass ")]
    assert len(pair_lines) == 4 and all("tiny_64x96" in line and "sgbm" in line for line in pair_lines)


def test_ground_truth_accuracy_matches_an_independent_run(bench_run, instereo2k):
    report, _, _ = bench_run
    sgbm = next(row for row in report.rows if row["info"]["backend"] == "sgbm")
    expected = []
    with SGBMRunner(max_disp=32) as runner:
        runner.input_hw = SIZE
        for pair_dir in sorted((instereo2k / "test").iterdir()):
            prediction = runner.infer(io.read_image(pair_dir / "left.png"), io.read_image(pair_dir / "right.png"))
            truth, valid = io.read_disparity(pair_dir / "left_disp.png", io.INSTEREO2K_SCALE)
            expected.append(metrics.disparity_metrics(prediction.disparity, truth, valid))
    assert sgbm["vs_ground_truth"]["epe"] == pytest.approx(np.mean([m.epe for m in expected]), rel=1e-6)
    assert sgbm["vs_ground_truth"]["d1"] == pytest.approx(np.mean([m.d1 for m in expected]), rel=1e-6)
    assert sgbm["vs_reference"] is None  # no checkpoint among the rows, none given
    # SGBM's left-right check is its confidence: the kept pixels must be the better ones
    confidence = sgbm["confidence"]
    assert confidence["epe_confident"] < sgbm["vs_ground_truth"]["epe"]
    assert confidence["sparsification"]["ause"] < confidence["sparsification"]["ause_random"]


def test_json_and_csv_hold_the_same_numbers(bench_run):
    report, out, _ = bench_run
    data = json.loads((out / "report.json").read_text())
    assert [row["info"]["label"] for row in data["rows"]] == [row["info"]["label"] for row in report.rows]
    assert data["environment"]["usable_cores"] >= 1 and "versions" in data["environment"]
    assert data["provenance"]["tool"] == "stereo-trt bench"
    with open(out / "results.csv", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 2
    assert float(records[1]["vs_ground_truth.epe"]) == pytest.approx(data["rows"][1]["vs_ground_truth"]["epe"])
    assert float(records[0]["latency.p99"]) == pytest.approx(data["rows"][0]["latency"]["p99"])
    with open(out / "per_pair.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4  # 2 models x 2 pairs


def test_memory_is_measured_per_row(bench_run):
    report, _, _ = bench_run
    for row in report.rows:
        usage = row["memory"]
        assert usage is not None, row["memory_note"]
        assert usage["peak_rss_mb"] >= usage["baseline_rss_mb"] > 0


def test_memory_probe_does_not_inherit_the_parent_size(tmp_path):
    """A spawned child must not report its (large) parent's resident set as its own peak."""
    left, right = io.write_image(tmp_path / "l.png", np.zeros((64, 96, 3), np.uint8)), tmp_path / "r.png"
    io.write_image(right, np.zeros((64, 96, 3), np.uint8))
    ballast = np.ones(200 * 2**20 // 8)  # 200 MiB resident in this process
    usage = memory.measure("sgbm", {"max_disp": 32}, SIZE, left, right)
    assert not isinstance(usage, str), usage
    assert usage.peak_rss_mb < memory.current_rss_mb() - 150
    del ballast


def test_exported_size_must_match_the_bench_size(tiny_onnx, tmp_path):
    config = BenchConfig(models=[str(tiny_onnx), "sgbm"], size=(96, 128), warmup=0, repeats=1,
                         measure_memory=False)
    with pytest.raises(InputError, match=r"--size 96x128: .* exported for 64x96"):
        run_bench(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes, message", [
    ({"models": []}, "no --model"),
    ({"repeats": 0}, "--repeats 0"),
    ({"models": ["missing.onnx"]}, "missing.onnx: no such file"),
    ({"models": ["sgbm", "SGBM"]}, "given twice"),
    ({"min_confidence": 2.0}, "--min-confidence"),
])
def test_bad_configuration_is_refused_before_running(tmp_path, changes, message):
    config = BenchConfig(**{"models": ["sgbm"], **changes})
    with pytest.raises(InputError, match=message):
        run_bench(config, tmp_path / "out")


def test_latency_stats_by_hand():
    stats = latency_stats([4.0, 1.0, 3.0, 2.0])
    assert (stats.min, stats.max, stats.mean, stats.p50) == (1.0, 4.0, 2.5, 2.5)
    assert stats.p90 == pytest.approx(3.7)  # numpy linear: position 0.9 * 3 = 2.7 -> 3 + 0.7 * (4 - 3)
    assert stats.fps == pytest.approx(400.0)
    with pytest.raises(ValueError):
        latency_stats([])


def test_interleaved_order_rotates_the_first_row():
    assert interleaved_order(3, 0) == [0, 1, 2]
    assert interleaved_order(3, 1) == [1, 2, 0]
    assert interleaved_order(3, 5) == [2, 0, 1]
    assert interleaved_order(0, 1) == []


def test_lr_rows_add_a_confidence_to_any_model(tiny_onnx, instereo2k, tmp_path):
    config = BenchConfig(models=[str(tiny_onnx), f"{tiny_onnx}+lr", "sgbm+lr"], data=str(instereo2k), warmup=0,
                         repeats=1, max_disp=32, measure_memory=False)
    report = run_bench(config, tmp_path / "out", progress=lambda line: None)
    rows = {row["info"]["label"]: row for row in report.rows}
    plain, checked = rows[tiny_onnx.name], rows[tiny_onnx.name + "+lr"]
    assert plain["confidence"] is None and set(rows) == {tiny_onnx.name, tiny_onnx.name + "+lr", "sgbm+lr"}
    # the same disparity (the left-view pass), now with a confidence that ranks its errors
    assert checked["vs_ground_truth"]["epe"] == pytest.approx(plain["vs_ground_truth"]["epe"], rel=1e-6)
    for label in (tiny_onnx.name + "+lr", "sgbm+lr"):
        curves = rows[label]["confidence"]["sparsification"]
        assert curves["ause"] < curves["ause_random"], label
    assert (tmp_path / "out" / "plots" / "sparsification.png").is_file()


def test_an_exported_confidence_is_ranked_like_the_pytorch_reference(instereo2k, tmp_path):
    from toolkit.export import export_onnx
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    checkpoint = tmp_path / "student.pth"
    save_student(checkpoint, build_student(config, seed=0), config, {"note": "bench confidence test"})
    onnx_path = export_onnx(checkpoint, tmp_path / "student.onnx", size=SIZE, confidence=True).path
    bench = BenchConfig(models=[str(checkpoint), str(onnx_path), "sgbm"], data=str(instereo2k), warmup=0, repeats=1,
                        measure_memory=False)
    report = run_bench(bench, tmp_path / "out", progress=lambda line: None)
    rows = {row["info"]["label"]: row for row in report.rows}
    assert rows["student.onnx"]["confidence"]["spearman_vs_reference"] > 0.999
    assert rows["student.pth"]["confidence"]["spearman_vs_reference"] is None  # the reference itself
    assert rows["sgbm"]["confidence"]["spearman_vs_reference"] is None  # another estimator
    assert "Spearman vs ref" in (tmp_path / "out" / "report.md").read_text()
    speed = {row[0]: row[11] for row in summary_rows((tmp_path / "out" / "report.md").read_text())}
    reference_ms = rows["student.pth"]["latency"]["mean"]
    assert speed["`student.pth`"] == "1.00x"
    assert speed["`sgbm`"] == f"{reference_ms / rows['sgbm']['latency']['mean']:.2f}x"
    markdown = (tmp_path / "out" / "report.md").read_text()
    latency = summary_rows(markdown[markdown.index("## Latency"):])
    ratios = sorted(r / s for r, s in zip(rows["student.pth"]["samples"]["backend_ms"],
                                          rows["sgbm"]["samples"]["backend_ms"]))
    paired = {row[0]: row[-1] for row in latency}
    assert paired["`student.pth`"] == "1.00x"
    assert paired["`sgbm`"] == f"{(ratios[len(ratios) // 2] + ratios[(len(ratios) - 1) // 2]) / 2:.2f}x"
