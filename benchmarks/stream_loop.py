"""Loop overhead: end-to-end ``run_stream`` FPS against backend-only FPS on the same frames.

Regenerates benchmarks/stream_loop.md:

    .venv/bin/python benchmarks/stream_loop.py --model engines/student_256x320_it8_fp32.onnx --size 256x320

For each backend (SGBM always; ONNX Runtime for every --model) and each round:

* backend only: the frames are decoded and preprocessed beforehand, then ``runner.infer_feed``
  runs on each feed in turn; FPS = 1000 / mean inference ms (the first call is a warm-up);
* loop: ``run_stream`` on the side-by-side video of the same frames, every-frame mode,
  no window (what ``run --headless`` does); FPS from its summary (first frame excluded);
* loop + save: the same with the MP4 recorder attached (``run --save``).

Overhead = 1 - loop FPS / backend FPS: the share of the loop's frame time not explained by
inference. Rounds alternate the three so that load from other processes hits all alike;
the table reports medians over rounds. On a shared machine the backend-only and loop runs
still see different load, so the table also gives a same-run figure: the inference
thread's idle share inside the loop, 1 - (mean inference ms x loop FPS / 1000), the time
the backend waited on the other stages, and the loop's own work share, (prepare ms +
present ms) x loop FPS / 1000: the wall time of the stages around inference as a share of
the frame time (they overlap inference; on a busy CPU this is an upper bound on what they cost).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from toolkit import preprocess
from toolkit.backends import RunnerSpec, open_runner
from toolkit.data.synthetic import make_scene
from toolkit.provenance import tool_versions
from toolkit.stream import sources
from toolkit.stream.loop import StreamOptions, run_stream
from toolkit.stream.record import VideoRecorder

OUT = Path(__file__).with_name("stream_loop.md")


def write_video(path: Path, size: tuple[int, int], count: int, max_disp: float) -> Path:
    """A side-by-side mp4v video of ``count`` synthetic scenes of ``size`` (h, w) per view."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (2 * width, height))
    for seed in range(count):
        scene = make_scene(seed, height, width, max_disp)
        writer.write(cv2.cvtColor(np.hstack([scene.left, scene.right]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def decoded_pairs(video: Path) -> list[sources.StereoFrame]:
    frames = []
    with sources.open_source([str(video)]) as source:
        while True:
            frame = source.read()
            if frame is None:
                return frames
            frames.append(frame)


def backend_only_fps(runner, feeds: list[dict]) -> float:
    runner.infer_feed(feeds[0])  # warm-up
    times = [runner.infer_feed(feed)[1] for feed in feeds]
    return 1000.0 / float(np.mean(times))


def loop_fps(runner, video: Path, save_to: Path | None) -> tuple[float, dict]:
    sinks = [VideoRecorder(save_to, 30.0)] if save_to else []
    summary = run_stream(sources.open_source([str(video)]), runner, StreamOptions(latest_frame_wins=False), sinks)
    return summary.fps, summary.stage_ms


def measure(name: str, runner, video: Path, rounds: int, workdir: Path) -> dict:
    """Median FPS of backend-only, loop and loop+save over ``rounds`` alternating rounds."""
    frames = decoded_pairs(video)
    feeds = [preprocess.prepare_pair(f.left, f.right, runner.input_hw).feed for f in frames]
    results = {"backend": [], "loop": [], "loop_save": [], "stages": []}
    with runner:
        for _ in range(rounds):
            results["backend"].append(backend_only_fps(runner, feeds))
            fps, stages = loop_fps(runner, video, None)
            results["loop"].append(fps)
            results["stages"].append(stages)
            results["loop_save"].append(loop_fps(runner, video, workdir / "save.mp4")[0])
            print(f"{name}: backend {results['backend'][-1]:.3g}, loop {results['loop'][-1]:.3g}, "
                  f"loop+save {results['loop_save'][-1]:.3g} FPS", flush=True)
    return results


def row(name: str, size: tuple[int, int], frames: int, results: dict) -> str:
    backend = statistics.median(results["backend"])
    loop = statistics.median(results["loop"])
    save = statistics.median(results["loop_save"])
    stages = {k: statistics.median(s[k] for s in results["stages"]) for k in results["stages"][0]}
    stage_text = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
    idle = statistics.median(1 - s["infer"] * fps / 1000.0 for s, fps in zip(results["stages"], results["loop"]))
    work = statistics.median((s["prepare"] + s["present"]) * fps / 1000.0
                             for s, fps in zip(results["stages"], results["loop"]))
    spread = f"{min(results['loop']):.3g}-{max(results['loop']):.3g}"
    return (f"| {name} | {size[0]}x{size[1]} | {frames} | {backend:.3g} ({1000 / backend:.0f} ms) "
            f"| {loop:.3g} ({spread}) | {100 * (1 - loop / backend):.1f}% | {100 * idle:.1f}% | {100 * work:.1f}% "
            f"| {save:.3g} | {100 * (1 - save / backend):.1f}% | {stage_text} |")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="stereo-trt ONNX model(s) to time with ONNX Runtime")
    parser.add_argument("--size", default="256x320", help="frame size HxW for SGBM (ONNX models use their own)")
    parser.add_argument("--frames", type=int, default=8, help="distinct frames in the video")
    parser.add_argument("--sgbm-frames", type=int, default=40, help="frames for the SGBM rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--note", action="append", default=[], help="a line to add under the table")
    args = parser.parse_args(argv)

    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sgbm_size = preprocess.parse_size(args.size)
        video = write_video(workdir / "sgbm.mp4", sgbm_size, args.sgbm_frames, 64)
        rows.append(row("sgbm (OpenCV, LR check)", sgbm_size, args.sgbm_frames,
                        measure("sgbm", open_runner(RunnerSpec("sgbm", max_disp=64)), video, args.rounds, workdir)))
        for model in args.model:
            runner = open_runner(RunnerSpec(str(model)))
            size = runner.input_hw
            video = write_video(workdir / "onnx.mp4", size, args.frames, 64)
            rows.append(row(f"onnxruntime {runner.precision} ({Path(model).name})", size, args.frames,
                            measure(Path(model).name, runner, video, args.rounds, workdir)))
            notes.append(f"- `{Path(model).name}`: iters {runner.metadata.get('iters')}, "
                         f"checkpoint `{runner.metadata.get('checkpoint')}`")

    versions = tool_versions()
    command = "python benchmarks/stream_loop.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# Stream loop overhead",
        "",
        "End-to-end `run_stream` FPS (capture thread, rectify+preprocess thread, inference thread, "
        "presenting on the main thread) against the backend alone on the same, already preprocessed "
        "frames. Overhead = 1 - loop FPS / backend FPS. Target: <= 10% with ONNX Runtime on this CPU. "
        "The two are separate runs, so on a loaded machine their ratio carries the load's noise; "
        "the same-run columns do not: inference idle in loop = 1 - inference ms x loop FPS / 1000, "
        "loop work share = (prepare + present ms) x loop FPS / 1000 (see the script's docstring).",
        "",
        "| backend | frame HxW | frames | backend-only FPS (ms/frame) | loop FPS (min-max) | overhead vs backend-only "
        "| inference idle in loop | loop work share | loop + --save FPS | overhead with save | loop per-stage ms (median) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores visible (shared with other jobs: numbers move between runs)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- rounds: {args.rounds}, medians reported; the video is mp4v, side-by-side, every-frame mode, no window",
        f"- command: `{command}`",
        *notes,
        *(f"- {note}" for note in args.note),
        "",
    ])
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"took {time.perf_counter() - start:.0f} s")
    sys.exit(code)
