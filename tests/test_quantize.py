"""quantize: TensorRT Q/DQ rules, calibration cache, sensitivity budget, entropy thresholds, bad input."""

import functools
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from tiny_models import TINY_SIZE, exported_tiny_onnx
from toolkit.calib_cache import read_calibration_cache
from toolkit.cli import main
from toolkit.data import io
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.errors import InputError, ModelError
from toolkit.lint import errors, lint_onnx
from toolkit.onnx_meta import get_stereo_metadata
from toolkit.preprocess import prepare_pair
from toolkit.quantize import quantize_onnx
from toolkit.quantize_calib import TensorStats, entropy_amax, percentile_amax
from toolkit.quantize_data import load_split


@functools.lru_cache(maxsize=None)
def dataset() -> Path:
    """Six train pairs in two parts plus two test pairs, InStereo2K layout, at the tiny size."""
    return write_instereo2k_tree(Path(tempfile.mkdtemp(prefix="stereo-trt-q-")) / "instereo2k", n_train_parts=2,
                                 pairs_per_part=3, n_test=2, size=TINY_SIZE)


@functools.lru_cache(maxsize=None)
def quantized():
    out = Path(tempfile.mkdtemp(prefix="stereo-trt-q-")) / "tiny_int8.onnx"
    return quantize_onnx(exported_tiny_onnx(), dataset(), out, n_calib=4, holdout=2, speed_runs=1,
                         cache=out.with_suffix(".cache"), trt_version="10.3.0")


def graph_parts(path: Path):
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return model, inits


def test_qdq_graph_follows_tensorrt_rules():
    result = quantized()
    model, inits = graph_parts(result.path)
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq, "nothing was quantized"
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in producers]
    assert convs, "no Conv reads a dequantized weight"
    for conv in convs:
        weight_dq = producers[conv.input[1]]
        out_channels = inits[producers[weight_dq.input[0]].input[0]].shape[0]
        assert inits[weight_dq.input[1]].shape == (out_channels,), "weights must be per-channel"
        if len(conv.input) > 2:
            assert conv.input[2] in inits and inits[conv.input[2]].dtype == np.float32, "bias must stay float"
    assert all(inits.get(n.input[0], np.zeros(1, np.int8)).dtype != np.int32 for n in qdq if n.op_type == "DequantizeLinear")
    for softmax in (n for n in model.graph.node if n.op_type == "Softmax"):
        assert producers[softmax.input[0]].op_type not in ("DequantizeLinear",)
    for name in ("/model/cost_agg/cost_agg.2/Conv", "/model/update/update.1/Conv"):
        node = next(n for n in model.graph.node if n.name == name)
        assert producers[node.input[0]].op_type != "DequantizeLinear", f"{name} is in the regression head"
    assert errors(lint_onnx(result.path, trt="8.5")) == []
    assert get_stereo_metadata(model)["precision"] == "int8"


def test_calibration_cache_has_a_line_per_quantized_tensor():
    result = quantized()
    model, inits = graph_parts(result.path)
    activations = {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
                   if n.op_type == "QuantizeLinear" and n.input[0] not in inits}
    header, scales = read_calibration_cache(result.cache_path)
    assert header == "TRT-100300-EntropyCalibration2"
    assert set(scales) == set(activations)
    for name, scale in scales.items():
        assert scale == pytest.approx(activations[name], rel=1e-6)
    # The normalised image (2*x/255-1) spans [-1, 1]: its scale is 1/127 when calibration saw 0..255 input.
    assert scales["/model/Sub_output_0"] == pytest.approx(1 / 127, rel=0.02)


def test_report_and_error_map_are_written():
    result = quantized()
    report = json.loads(result.report_path.read_text())
    assert report["accuracy_vs_fp32"]["pairs"] == 2 and report["calibration"]["n_calib"] == 4
    assert report["calibration"]["kind"] == "instereo2k" and len(report["calibration"]["pairs"]) == 4
    assert set(report["calibration"]["pairs"]).isdisjoint(report["calibration"]["holdout"])
    assert report["speed_ms"]["fp32"]["median_ms"] > 0 and report["sha256"]
    assert "vs_gt" in report["accuracy_vs_fp32"] and "epe_delta" in report
    assert io.read_image(result.error_map_path).shape == (64, 96, 3)


def test_sensitivity_search_meets_the_budget(tmp_path):
    full = quantized().report["accuracy_vs_fp32"]["epe"]
    budget = full / 4
    result = quantize_onnx(exported_tiny_onnx(), dataset(), tmp_path / "budget.onnx", n_calib=4, holdout=2,
                           max_epe_delta=budget, speed_runs=0)
    report = result.report
    assert report["accuracy_vs_fp32"]["epe"] <= budget < report["accuracy_full_int8_vs_fp32"]["epe"]
    assert report["kept_float"] and report["sensitivity"]
    epes = [item["epe"] for item in report["sensitivity"]]
    assert epes == sorted(epes, reverse=True)
    kept_nodes = {node for item in report["kept_float"] for node in item["nodes"]}
    model, _ = graph_parts(result.path)
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.name in kept_nodes:
            assert producers[node.input[0]].op_type != "DequantizeLinear", node.name


def test_calibration_feeds_are_the_inference_preprocessing():
    split = load_split(dataset(), 2, 1, 0, TINY_SIZE)
    from toolkit.data.instereo2k import Instereo2K, load

    samples = {s.name: s for s in Instereo2K(dataset(), "train")}
    for prepared in split.calibration + split.holdout:
        left, right, _, _ = load(samples[prepared.name])
        expected = prepare_pair(left, right, TINY_SIZE).feed
        for key in ("left", "right"):
            np.testing.assert_array_equal(prepared.feed[key], expected[key])
        assert prepared.feed["left"].max() > 1.0, "feeds are 0..255, never divided by 255"


def reference_entropy(bins, width, start=128, levels=128):
    """Straightforward loop version of the KL threshold search, to check the vectorised one."""
    bins = bins.astype(np.float64)
    bins = bins[: int(np.nonzero(bins)[0].max()) + 1]
    best, best_i = np.inf, None
    for i in range(start, bins.size + 1):
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        level = (np.arange(i) * levels) // i
        nonzero = bins[:i] > 0
        mass = np.bincount(level, weights=bins[:i], minlength=levels)
        count = np.bincount(level, weights=nonzero, minlength=levels)
        q = np.where(nonzero, mass[level] / np.maximum(count[level], 1), 0.0)
        if q.sum() == 0 or np.any((p > 0) & (q == 0)) or bins[i:].sum() > 0.01 * bins.sum():
            continue
        p, q = p / p.sum(), q / q.sum()
        kl = np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0]))
        if kl <= best:
            best, best_i = kl, i
    return best_i * width


@pytest.mark.parametrize("kind", ["gaussian-mixture", "relu", "sparse", "band"])
def test_entropy_threshold_matches_the_loop_definition(kind):
    rng = np.random.default_rng(1)
    stats = TensorStats()
    for k in range(3):
        x = rng.standard_normal(100_000) * (1 + k)
        x = np.maximum(x, 0) if kind == "relu" else x * (rng.random(x.size) < 0.05) if kind == "sparse" else x
        x = 10 + rng.random(x.size) if kind == "band" else x
        stats.update(x.astype(np.float32), histogram=True)
    amax = entropy_amax(stats.hist, stats.width)
    assert amax == pytest.approx(reference_entropy(stats.hist, stats.width))
    assert 0 < amax <= stats.amax + stats.width
    if kind == "band":
        assert amax > 10.9, "a narrow band far from zero must not be clipped to one level"
    assert percentile_amax(stats.hist, stats.width, 99.0) < percentile_amax(stats.hist, stats.width, 99.99) <= stats.amax + stats.width


def invoke(*args):
    return CliRunner().invoke(main, ["quantize", *map(str, args)])


def assert_one_line_error(result, text):
    assert result.exit_code == 2, result.output
    assert text in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_cli_bad_inputs_exit_2_and_write_nothing(tmp_path):
    out = tmp_path / "out" / "q.onnx"
    cache = tmp_path / "out" / "q.cache"
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    assert_one_line_error(invoke(junk, "-c", dataset(), "--out", out, "--cache", cache), "not an ONNX model")
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(str(exported_tiny_onnx()))
    del model.metadata_props[:]
    onnx.save(model, foreign)
    assert_one_line_error(invoke(foreign, "-c", dataset(), "--out", out, "--cache", cache), "no 'stereo_trt' metadata")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", empty, "--out", out, "--cache", cache), "no stereo pairs")
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", dataset(), "--n-calib", 6, "--holdout", 4, "--out", out,
                                 "--cache", cache), "too few for 6 calibration + 4 held-out")
    mismatched = tmp_path / "mismatched"
    io.write_image(mismatched / "a" / "left.png", np.zeros((64, 96, 3), np.uint8))
    io.write_image(mismatched / "a" / "right.png", np.zeros((64, 90, 3), np.uint8))
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", mismatched, "--n-calib", 1, "--holdout", 0, "--out", out,
                                 "--cache", cache), "--holdout 0")
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", mismatched, "--n-calib", 1, "--holdout", 1, "--out", out,
                                 "--cache", cache), "too few for 1 calibration + 1 held-out")
    io.write_image(mismatched / "b" / "left.png", np.zeros((64, 96, 3), np.uint8))
    io.write_image(mismatched / "b" / "right.png", np.zeros((64, 96, 3), np.uint8))
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", mismatched, "--n-calib", 1, "--holdout", 1, "--out", out,
                                 "--cache", cache), "differ in size")
    assert_one_line_error(invoke(exported_tiny_onnx(), "-c", dataset(), "--max-epe-delta", -1, "--out", out),
                          "--max-epe-delta")
    assert not out.parent.exists()


def test_library_refuses_quantizing_a_quantized_model(tmp_path):
    with pytest.raises(ModelError, match="expected an FP32 model"):
        quantize_onnx(quantized().path, dataset(), tmp_path / "again.onnx")
    with pytest.raises(InputError, match="--trt"):
        quantize_onnx(exported_tiny_onnx(), dataset(), tmp_path / "x.onnx", trt_version="7.1")
    assert list(tmp_path.iterdir()) == []


class ScriptedEvaluator:
    """Accuracy as a function of which groups stay in float: EPE falls with group 'a', the
    confidence ranking recovers only with group 'c' (harmless for EPE)."""

    def accuracy(self, kept, count=None):
        from toolkit.quantize_eval import Accuracy

        kept = set(kept)
        return Accuracy(epe=0.1 if "a" in kept else 0.5, bad1=0.0, max_abs_diff=1.0, pairs=2,
                        confidence_spearman=0.99 if "c" in kept else 0.90)


def test_budget_ranks_and_searches_by_epe_and_by_confidence_ranking():
    from toolkit.quantize_eval import Budget, LayerGroup, rank_sensitivity, search_budget

    evaluator = ScriptedEvaluator()
    groups = [LayerGroup(name, [name]) for name in "abcd"]
    everything = set("abcd")
    quantize_only = lambda nodes: everything - set(nodes)  # noqa: E731 (kept in float: the others)
    budget = Budget(epe=0.2, spearman=0.95)
    ranked = rank_sensitivity(groups, quantize_only, evaluator, 2, budget)
    # quantizing 'a' alone costs 2.5x the EPE budget, 'c' alone 2x the ranking budget
    assert [item["layer"] for item in ranked[:2]] == ["a", "c"]
    k, steps = search_budget(ranked, lambda nodes: set(nodes), evaluator, budget)
    assert k == 2 and steps[-1]["confidence_spearman"] == 0.99
    assert search_budget(ranked, lambda nodes: set(nodes), evaluator, Budget(epe=0.2))[0] == 1
