"""Where the time goes: PyTorch eager vs ONNX Runtime FP32 on the CPU, part by part.

Regenerates benchmarks/ort_vs_torch.md and .json (run from the repository root):

    .venv/bin/python benchmarks/ort_vs_torch.py --rounds 5

Both backends run the same model on the same input: the built-in weights and the ONNX
export of them (``--onnx``, made by ``benchmarks/cpu-reference/regenerate.sh`` or
``stereo-trt export``), the Middlebury motorcycle pair through the shared preprocessing
path. Whole-network times come from the runners themselves (``Runner.infer``), rounds
alternating which backend goes first; the ratio to read is the median of the per-round
ratios. One more call of each is then profiled: ONNX Runtime's own profiler (node kernel
times, grouped by the module path in each node's name) and forward hooks on the PyTorch
modules. The refinement loop's 3x3 GRU convolutions are also converted to GFLOP/s, which
says how close both are to what the CPU can do.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from toolkit.backends import RunnerSpec, open_runner
from toolkit.backends.onnxrt import import_onnxruntime, session_options
from toolkit.backends.torch_runner import TorchRunner
from toolkit.bench.environment import cpu_model, load_average
from toolkit.data.builtin import builtin_pair
from toolkit.paths import BUILTIN_CHECKPOINT
from toolkit.preprocess import prepare_pair
from toolkit.provenance import atomic_path, record, sha256_file, write_json

# Top-level modules of RTIGEVStereo -> the part of the network they belong to.
PARTS = {
    "feature": "feature trunk + stems (both images)",
    "stem_2": "feature trunk + stems (both images)",
    "stem_4": "feature trunk + stems (both images)",
    "conv": "match descriptors",
    "desc": "match descriptors",
    "cost_agg": "3D hourglass + classifier",
    "classifier": "3D hourglass + classifier",
    "hnet": "hidden state / context",
    "cnet": "hidden state / context",
    "context_zqr_conv": "hidden state / context",
    "update_block": "update block (8 iterations)",
    "spx_2_gru": "convex upsampling weights",
    "spx_gru": "convex upsampling weights",
}
REST = "everything else (correlation, softmaxes, lookups, reshapes; ORT: layout reorders)"
GRU_CONVS = ("convz", "convr", "convq")


def alternate(runners: dict, feed: dict, rounds: int) -> dict:
    """Per-backend inference times (ms), rounds alternating which backend goes first."""
    times = {name: [] for name in runners}
    names = list(runners)
    for index in range(rounds):
        for name in names if index % 2 == 0 else names[::-1]:
            times[name].append(runners[name].infer_feed(feed)[1])
    return times


def part_of(module_path: str) -> str:
    return PARTS.get(module_path, REST)


def ort_profile(onnx_path: Path, feed: dict, threads: int) -> tuple[Counter, list]:
    """ONNX Runtime kernel times (ms) per network part, and each GRU convolution's time (ms)."""
    ort = import_onnxruntime()
    options = session_options(threads)
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as scratch:
        options.profile_file_prefix = str(Path(scratch) / "ort")
        session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
        session.run(None, feed)
        session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    last_run = kernels[len(kernels) // 2:]
    parts, gru = Counter(), []
    for event in last_run:
        # fused nodes keep the module path of the node they replaced: /model/<module>/...
        path = event["name"].split("/")
        parts[part_of(path[2] if len(path) > 3 and path[1] == "model" else "")] += event["dur"] / 1000.0
        if "/gru/" in event["name"] and any(f"/{conv}" in event["name"] for conv in GRU_CONVS):
            gru.append(event["dur"] / 1000.0)
    return parts, gru


def torch_profile(runner: TorchRunner, feed: dict) -> tuple[Counter, list]:
    """PyTorch time (ms) per network part from forward hooks, and each GRU convolution's time (ms)."""
    model = runner.model
    parts, gru = Counter(), []
    watched = [(module, lambda ms, part=PARTS[name]: parts.update({part: ms}))
               for name, module in model.named_children() if name in PARTS]
    watched += [(getattr(model.update_block.gru, name), gru.append) for name in GRU_CONVS]
    handles = []
    for module, add in watched:
        handles += time_module(module, add)
    try:
        _, total = runner.infer_feed(feed)
    finally:
        for handle in handles:
            handle.remove()
    parts[REST] = total - sum(parts.values())
    return parts, gru


def time_module(module, add) -> list:
    """Hooks that pass ``add`` the milliseconds of each forward call of ``module``."""
    started = []
    return [module.register_forward_pre_hook(lambda *_: started.append(time.perf_counter())),
            module.register_forward_hook(lambda *_: add((time.perf_counter() - started.pop()) * 1000.0))]


def gru_gflops(size: tuple, hidden: int, conv_ms: list) -> float:
    """Achieved GFLOP/s of the GRU's 3x3 convolutions ((2*hidden) -> hidden at 1/4 resolution)."""
    flops = 2 * (2 * hidden) * hidden * 9 * (size[0] // 4) * (size[1] // 4)
    return flops * len(conv_ms) / (sum(conv_ms) / 1000.0) / 1e9


def markdown(result: dict) -> str:
    """The report: whole-network ratio, then the part-by-part table."""
    timing, profile = result["timing"], result["profile"]
    lines = [
        "# PyTorch eager vs ONNX Runtime FP32 on the CPU: where the time goes",
        "",
        f"{result['size'][0]}x{result['size'][1]}, {result['iters']} iterations, {result['threads']} threads, "
        f"built-in weights, Middlebury motorcycle pair; CPU: {result['cpu']}; load average at start "
        f"{result['load_average']}. Regenerate: `.venv/bin/python benchmarks/ort_vs_torch.py --rounds "
        f"{result['rounds']}`.",
        "",
        "## Whole network (runner inference time, alternating rounds)",
        "",
        "| backend | median ms | all rounds (ms) |",
        "| --- | ---: | --- |",
    ]
    for name, values in timing["ms"].items():
        lines.append(f"| {name} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")
    lines += [
        "",
        f"ONNX Runtime / PyTorch speed, median of the per-round ratios: **{timing['median_ratio']:.2f}x** "
        f"(rounds: {', '.join(f'{r:.2f}' for r in timing['round_ratios'])}).",
        "",
        "## Part by part (one profiled call each)",
        "",
        "| part | PyTorch ms | ONNX Runtime ms | PyTorch / ORT |",
        "| --- | ---: | ---: | ---: |",
    ]
    for part in dict.fromkeys(list(PARTS.values()) + [REST]):
        torch_ms, ort_ms = profile["torch_ms"].get(part, 0.0), profile["ort_ms"].get(part, 0.0)
        ratio = f"{torch_ms / ort_ms:.2f}" if ort_ms > 0 else "–"
        lines.append(f"| {part} | {torch_ms:.0f} | {ort_ms:.0f} | {ratio} |")
    lines += [
        f"| **total** | **{sum(profile['torch_ms'].values()):.0f}** | **{sum(profile['ort_ms'].values()):.0f}** | |",
        "",
        "ONNX Runtime's column sums kernel times (no time between kernels); a few fused nodes take "
        "the name of a non-module op and land in the last row.",
        "",
        "## The GRU's 3x3 convolutions",
        "",
        f"{profile['gru_convs']} convolutions ({2 * result['hidden']} -> {result['hidden']} channels, 3x3, at 1/4 "
        f"resolution): PyTorch {profile['torch_gru_ms']:.0f} ms in all, {profile['torch_gru_gflops']:.0f} GFLOP/s; "
        f"ONNX Runtime {profile['ort_gru_ms']:.0f} ms, {profile['ort_gru_gflops']:.0f} GFLOP/s. "
        f"The update block is {100 * update_share(profile, 'torch_ms'):.0f} % of PyTorch's time and "
        f"{100 * update_share(profile, 'ort_ms'):.0f} % of ONNX Runtime's; even if everything else in ONNX Runtime "
        f"took no time at all, it would be {ceiling(profile):.2f}x PyTorch (PyTorch's total over ONNX Runtime's "
        "update block).",
        "",
    ]
    return "\n".join(lines)


def update_share(profile: dict, key: str) -> float:
    return profile[key].get(PARTS["update_block"], 0.0) / sum(profile[key].values())


def ceiling(profile: dict) -> float:
    """PyTorch's total over ONNX Runtime's update block: the ratio if nothing else cost ORT anything."""
    return sum(profile["torch_ms"].values()) / profile["ort_ms"][PARTS["update_block"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(BUILTIN_CHECKPOINT))
    parser.add_argument("--onnx", default="engines/rt_igev_student_480x640_it8_fp32_conf.onnx",
                        help="FP32 export of the checkpoint (its size and iterations are used for both)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/ort_vs_torch")
    args = parser.parse_args()

    load_at_start = load_average()
    onnx_runner = open_runner(RunnerSpec(str(args.onnx), threads=args.threads))
    size, iters = onnx_runner.input_hw, onnx_runner.metadata["iters"]
    torch_runner = open_runner(RunnerSpec(str(args.checkpoint), iters=iters, size=size, threads=args.threads))
    left, right, _, _ = builtin_pair()
    feed = prepare_pair(left, right, size).feed
    runners = {"PyTorch": torch_runner, "ONNX Runtime": onnx_runner}
    with torch_runner, onnx_runner:
        for runner in runners.values():
            runner.infer_feed(feed)
        times = alternate(runners, feed, args.rounds)
        ratios = [t / o for t, o in zip(times["PyTorch"], times["ONNX Runtime"])]
        torch_parts, torch_gru = torch_profile(torch_runner, feed)
        hidden = torch_runner.config.hidden_dim
    ort_parts, ort_gru = ort_profile(Path(args.onnx), feed, args.threads)

    result = record(
        what="PyTorch eager vs ONNX Runtime FP32, part by part",
        checkpoint=args.checkpoint, checkpoint_sha256=sha256_file(args.checkpoint),
        onnx=args.onnx, onnx_sha256=sha256_file(args.onnx),
        size=list(size), iters=iters, threads=args.threads, rounds=args.rounds, hidden=hidden,
        cpu=cpu_model(), load_average=load_at_start,
        timing={"ms": times, "round_ratios": ratios, "median_ratio": statistics.median(ratios)},
        profile={
            "torch_ms": dict(torch_parts), "ort_ms": dict(ort_parts), "gru_convs": len(ort_gru),
            "torch_gru_ms": sum(torch_gru), "ort_gru_ms": sum(ort_gru),
            "torch_gru_gflops": gru_gflops(size, hidden, torch_gru), "ort_gru_gflops": gru_gflops(size, hidden, ort_gru),
        },
    )
    out = Path(args.out)
    write_json(out.with_suffix(".json"), result)
    report = markdown(result)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
