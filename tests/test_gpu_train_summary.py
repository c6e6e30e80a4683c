"""The acceptance rule of benchmarks/model-card/gpu_train_summary.py: ship only if better on both sets."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks/model-card/gpu_train_summary.py"


@pytest.fixture(scope="module")
def summary():
    spec = importlib.util.spec_from_file_location("gpu_train_summary", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(before, after, bad2_after=5.0):
    return {"before": {"epe": before, "bad2": 13.0}, "after": {"epe": after, "bad2": bad2_after}}


def results(middlebury_8, synthetic, middlebury_2=None):
    sweep = {8: middlebury_8}
    if middlebury_2 is not None:
        sweep[2] = middlebury_2
    return {"middlebury": sweep, "synthetic": synthetic}


def test_better_on_both_ships_and_targets_are_checked(summary):
    decision = summary.decide(results(entry(1.74, 1.10), entry(0.292, 0.250), entry(1.8, 1.25)), default_iters=8)
    assert decision["ship"] and decision["better_on_middlebury"] and decision["better_on_synthetic"]
    assert decision["targets"]["middlebury_epe_le_1.2"] and decision["targets"]["epe_8_iters_5pct_below_2_iters"]
    assert decision["refinement_gain_8_vs_2"] == pytest.approx(1 - 1.10 / 1.25)


@pytest.mark.parametrize("middlebury, synthetic", [
    (entry(1.74, 1.10), entry(0.292, 0.300)),  # better on Middlebury only
    (entry(1.74, 1.80), entry(0.292, 0.200)),  # better on synthetic only
])
def test_better_on_one_set_only_does_not_ship(summary, middlebury, synthetic):
    decision = summary.decide(results(middlebury, synthetic), default_iters=8)
    assert not decision["ship"]
    assert decision["targets"]["epe_8_iters_5pct_below_2_iters"] is None  # no 2-iteration run to compare


def test_a_missing_evaluation_does_not_ship(summary):
    assert not summary.decide(results(entry(1.7, 1.0), None), default_iters=8)["ship"]
    assert not summary.decide(results(entry(1.7, 1.0), entry(0.3, 0.2)), default_iters=16)["ship"]


def report(tmp_path, name, kind, path, iters=None, epe=(1.0, 0.9)):
    rows = [{"vs_ground_truth": {"epe": value, "bad2": 5.0, "pairs": 8}} for value in epe]
    body = {"dataset": {"kind": kind, "path": path}, "config": {"iters": iters}, "input_hw": [256, 512], "rows": rows}
    out = tmp_path / f"{name}.json"
    out.write_text(json.dumps(body))
    return out


def test_held_out_sets_are_told_apart_by_their_folder_and_only_plain_ones_decide(summary, tmp_path):
    reports = [report(tmp_path, "plain", "instereo2k", "/tmp/x/heldout-synthetic", epe=(0.29, 0.28)),
               report(tmp_path, "hard", "instereo2k", "/tmp/x/heldout-hard", epe=(2.0, 3.0)),
               report(tmp_path, "mb8", "builtin", "builtin", iters=8, epe=(1.74, 1.6))]
    results = summary.collect(reports)
    assert results["synthetic"]["after"]["epe"] == 0.28 and results["hard"]["after"]["epe"] == 3.0
    assert summary.decide(results, default_iters=8)["ship"]  # worse hard cases inform, they do not decide
