"""Summarise a GPU fine-tuning run (gpu_train.sh): before vs after, the issue's targets, the decision.

Reads the ``stereo-trt bench`` reports gpu_train.sh wrote (rows: the current weights, then
the candidate), the candidate checkpoint's own record of its training, and writes
``summary.json`` and ``summary.md`` under --out. The candidate may replace the built-in
weights only if it beats them on BOTH the Middlebury pair (at the checkpoint's default
iterations, as ``predict`` runs it) and the held-out synthetic scenes.

Run from the repository root (PYTHONPATH=. when the project is not installed):
    python benchmarks/model-card/gpu_train_summary.py --before OLD.pth --after NEW.pth --out DIR REPORT.json ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolkit import provenance
from toolkit.model import load_student

# the acceptance targets for the built-in student (PyTorch FP32, predict defaults)
TARGET_MIDDLEBURY_EPE = 1.2
TARGET_MIDDLEBURY_BAD2 = 10.0
TARGET_REFINEMENT_GAIN = 0.05  # EPE at 8 iterations at least 5 % below EPE at 2


def read_rows(report_path: Path) -> tuple[dict, dict, dict]:
    """(before row, after row, report) of one bench report; rows in the order gpu_train.sh gave them."""
    report = json.loads(report_path.read_text())
    before, after = report["rows"][:2]
    return before["vs_ground_truth"], after["vs_ground_truth"], report


def collect(reports: list[Path]) -> dict:
    """EPE / bad-2 per data set and iteration count, before and after.

    The held-out sets are told apart by their folder's name, as gpu_train.sh writes them:
    ``heldout-hard`` (hard-case scenes, for information) or else the plain held-out scenes.
    """
    results = {"middlebury": {}, "synthetic": None, "hard": None}
    for path in reports:
        before, after, report = read_rows(path)
        entry = {"before": {"epe": before["epe"], "bad2": before["bad2"]},
                 "after": {"epe": after["epe"], "bad2": after["bad2"]},
                 "pairs": before["pairs"], "input_hw": report.get("input_hw"), "report": str(path)}
        if report["dataset"]["kind"] == "builtin":
            results["middlebury"][int(report["config"]["iters"])] = entry
        elif Path(report["dataset"]["path"]).name == "heldout-hard":
            results["hard"] = entry
        else:
            results["synthetic"] = entry
    return results


def decide(results: dict, default_iters: int) -> dict:
    middlebury = results["middlebury"].get(default_iters)
    synthetic = results["synthetic"]
    if middlebury is None or synthetic is None:
        return {"ship": False, "why": f"missing evaluation (Middlebury at {default_iters} iterations or synthetic)"}
    better_mb = middlebury["after"]["epe"] < middlebury["before"]["epe"]
    better_syn = synthetic["after"]["epe"] < synthetic["before"]["epe"]
    sweep = results["middlebury"]
    gain = None
    if 2 in sweep and 8 in sweep:
        gain = 1.0 - sweep[8]["after"]["epe"] / sweep[2]["after"]["epe"]
    targets = {
        "middlebury_epe_le_1.2": middlebury["after"]["epe"] <= TARGET_MIDDLEBURY_EPE,
        "middlebury_bad2_le_10pct": middlebury["after"]["bad2"] <= TARGET_MIDDLEBURY_BAD2,
        "epe_8_iters_5pct_below_2_iters": None if gain is None else gain >= TARGET_REFINEMENT_GAIN,
        "synthetic_no_worse_than_before": synthetic["after"]["epe"] <= synthetic["before"]["epe"],
    }
    return {"ship": better_mb and better_syn, "better_on_middlebury": better_mb, "better_on_synthetic": better_syn,
            "refinement_gain_8_vs_2": gain, "targets": targets,
            "why": "better on both" if better_mb and better_syn else "not better on both sets: keep the current weights"}


def training_record(after: Path) -> dict:
    _, config, info = load_student(after)
    meta = info["meta"]
    train = meta.get("train", {})
    keys = ("data", "init", "steps", "minutes", "batch_size", "crop_hw", "train_iters", "lr", "scene_max_disp",
            "photo_textures", "hard_cases", "seed", "workers", "precision")
    return {"sha256": info["sha256"], "size_mb": round(after.stat().st_size / 1e6, 2), "step": meta.get("step"),
            "elapsed_s": meta.get("elapsed_s"), "device": meta.get("device"), "autocast": meta.get("autocast"),
            "last_val": meta.get("last_val"), "config": {k: train.get(k) for k in keys},
            "inference_iters": config.iters}


def markdown(summary: dict) -> str:
    t, d = summary["training"], summary["decision"]
    lines = [f"# Fine-tuning of the built-in student on {t['device']}", "",
             f"Decision: **{'ship' if d['ship'] else 'do not ship'}** ({d['why']}).", "",
             f"Training: {t['step']} steps in {t['elapsed_s']} s on {t['device']} (autocast {t['autocast']}), "
             f"config {json.dumps(t['config'])}; checkpoint {t['size_mb']} MB, sha256 `{t['sha256']}`.", "",
             "| data | iterations | EPE before (px) | EPE after (px) | bad-2 before (%) | bad-2 after (%) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    rows = [("Middlebury Motorcycle", iters, entry) for iters, entry in sorted(summary["middlebury"].items())]
    if summary["synthetic"]:
        rows.append(("held-out synthetic", t["inference_iters"], summary["synthetic"]))
    if summary.get("hard"):
        rows.append(("held-out hard cases (information)", t["inference_iters"], summary["hard"]))
    for name, iters, e in rows:
        lines.append(f"| {name} | {iters} | {e['before']['epe']:.3f} | {e['after']['epe']:.3f} | "
                     f"{e['before']['bad2']:.2f} | {e['after']['bad2']:.2f} |")
    lines += ["", "Targets (after): " + ", ".join(f"{k}: {v}" for k, v in d.get("targets", {}).items()), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path)
    parser.add_argument("--after", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args()
    results = collect(args.reports)
    training = training_record(args.after)
    summary = {"before": {"path": str(args.before), "sha256": provenance.sha256_file(args.before)},
               "after": {"path": str(args.after)}, "training": training,
               "middlebury": results["middlebury"], "synthetic": results["synthetic"], "hard": results["hard"],
               "decision": decide(results, training["inference_iters"]),
               "provenance": provenance.record(tool="benchmarks/model-card/gpu_train_summary.py")}
    provenance.write_json(args.out / "summary.json", summary)
    (args.out / "summary.md").write_text(markdown(summary))
    print(markdown(summary))


if __name__ == "__main__":
    main()
