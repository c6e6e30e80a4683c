"""What the confidence output costs: the same network with and without it, timed side by side.

    .venv/bin/python benchmarks/confidence/cost.py --size 480x640 --iters 8 --threads 2 --repeats 5

Rows, each timed interleaved with its partner on the Middlebury pair (scikit-image) at the
given size, after one untimed warm-up call each:
  * PyTorch eager FP32, built-in weights: ``model(l, r)`` vs ``model(l, r, confidence=True)``;
  * ONNX Runtime FP32: an export without the output vs one with ``--confidence``
    (both written under outputs/confidence-cost/, reused when present);
  * the left-right check (``--lr-check``) on the ONNX model: a second inference, for scale.
Writes benchmarks/confidence/cost.json and prints a Markdown table; the ratio is the figure
that carries over to other machines, the milliseconds are this machine's.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from toolkit import provenance
from toolkit.backends import RunnerSpec, open_runner
from toolkit.data.builtin import builtin_pair
from toolkit.export import export_onnx
from toolkit.model import load_student
from toolkit.paths import BUILTIN_CHECKPOINT
from toolkit.preprocess import parse_size, prepare_pair

HERE = Path(__file__).resolve().parent
WORK = Path("outputs/confidence-cost")


def interleaved(calls: dict, repeats: int) -> dict:
    """Median wall time (ms) of each call, one warm-up each, then ``repeats`` rounds alternating the order."""
    for call in calls.values():
        call()
    times = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(repeats):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            calls[name]()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: {"median_ms": statistics.median(values), "runs_ms": values} for name, values in times.items()}


def onnx_models(size, iters) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    paths = {}
    for confidence in (False, True):
        out = WORK / f"student_{size[0]}x{size[1]}_it{iters}{'_conf' if confidence else ''}.onnx"
        if not out.is_file():
            export_onnx(BUILTIN_CHECKPOINT, out, size=size, iters=iters, confidence=confidence, lint_trt=None)
        paths[confidence] = out
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="480x640")
    parser.add_argument("--iters", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    size = parse_size(args.size)
    torch.set_num_threads(args.threads)
    left, right, _, _ = builtin_pair()
    feed = prepare_pair(left, right, size).feed
    model = load_student(BUILTIN_CHECKPOINT)[0]
    l, r = torch.from_numpy(feed["left"]), torch.from_numpy(feed["right"])

    def eager(confidence: bool):
        def call():
            with torch.inference_mode():
                model(l, r, iters=args.iters, confidence=confidence)
        return call

    results = {"torch": interleaved({"without": eager(False), "with": eager(True)}, args.repeats)}
    paths = onnx_models(size, args.iters)
    plain, with_conf = (open_runner(RunnerSpec(str(paths[key]), threads=args.threads)) for key in (False, True))
    checked = open_runner(RunnerSpec(str(paths[False]), threads=args.threads, lr_check=True))
    with plain, with_conf, checked:
        results["onnxruntime"] = interleaved({"without": lambda: plain.infer_feed(feed),
                                              "with": lambda: with_conf.infer_feed(feed),
                                              "lr_check": lambda: checked.infer_feed(feed)}, args.repeats)
    rows = []
    for backend, timing in results.items():
        base = timing["without"]["median_ms"]
        for name, value in timing.items():
            rows.append({"backend": backend, "variant": name, "median_ms": value["median_ms"],
                         "ratio_to_without": value["median_ms"] / base})
    report = provenance.record(
        kind="confidence-cost", checkpoint_sha256=provenance.sha256_file(BUILTIN_CHECKPOINT), input_hw=list(size),
        iters=args.iters, threads=args.threads, repeats=args.repeats, cpu=platform.processor() or platform.machine(),
        rows=rows, raw=results)
    provenance.write_json(HERE / "cost.json", report)
    print("| backend | variant | median ms | ratio to without |\n| --- | --- | ---: | ---: |")
    for row in rows:
        print(f"| {row['backend']} | {row['variant']} | {row['median_ms']:.0f} | {row['ratio_to_without']:.3f} |")


if __name__ == "__main__":
    main()
