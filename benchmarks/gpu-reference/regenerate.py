"""The GPU reference report of issue 13, in one call on a GPU machine (see README.md here).

Runs the ``cuda``-marked tests, then ``bench`` on the built-in pair (rows: PyTorch FP32 eager,
PyTorch FP16 + CUDA graph, ONNX Runtime on the providers present, SGBM), then ``run`` over a
generated side-by-side video with the fastest network row and ``--save``, and writes under
``$OUT`` (at most 8 files): cuda_tests.txt, bench_report.md, bench_report.json, run.mp4 and
its sidecar, gpu_reference.json and gpu_reference.md (versions, figures and the issue's ratio
targets: graph >= 3x eager, FP16 EPE vs FP32 <= 0.05 px, run loop overhead <= 10 %).

Needs no installation: ``PYTHONPATH=$PWD python3 benchmarks/gpu-reference/regenerate.py``.
Knobs (environment): OUT (default ./gpu-reference-out), GPU_REF_SIZE (480x640),
GPU_REF_ITERS (8), GPU_REF_FRAMES (300), GPU_REF_REPEATS (30 timed passes), GPU_REF_DEVICE
(cuda; "cpu" exercises the plumbing without the GPU rows), GPU_REF_TESTS (1; 0 skips the
pytest step).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TARGETS = {"graph_vs_eager_min": 3.0, "fp16_epe_max_px": 0.05, "run_overhead_max": 0.10}


def knobs() -> dict:
    from toolkit.device import parse_device
    from toolkit.preprocess import parse_size

    return {"out": Path(os.environ.get("OUT") or "gpu-reference-out"),
            "size": parse_size(os.environ.get("GPU_REF_SIZE", "480x640")),
            "iters": int(os.environ.get("GPU_REF_ITERS", "8")),
            "frames": int(os.environ.get("GPU_REF_FRAMES", "300")),
            "device": parse_device(os.environ.get("GPU_REF_DEVICE", "cuda"), "GPU_REF_DEVICE"),
            "repeats": int(os.environ.get("GPU_REF_REPEATS", "30")),
            "tests": os.environ.get("GPU_REF_TESTS", "1") != "0"}


def versions() -> dict:
    """GPU, driver, CUDA, PyTorch, ONNX Runtime and toolkit versions of this machine."""
    import toolkit

    found = {"toolkit": getattr(toolkit, "__version__", "?"), "python": platform.python_version(),
             "machine": platform.node(), "cpu_count": os.cpu_count()}
    try:
        import torch

        found.update(torch=torch.__version__, torch_cuda=torch.version.cuda,
                     cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None,
                     gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except ImportError:
        found["torch"] = None
    try:
        import onnxruntime

        found.update(onnxruntime=onnxruntime.__version__, ort_providers=onnxruntime.get_available_providers())
    except ImportError:
        found["onnxruntime"] = None
    smi = shutil.which("nvidia-smi")
    if smi:
        query = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                               capture_output=True, text=True, check=False)
        found["nvidia_smi"] = query.stdout.strip() or query.stderr.strip()
    return found


def cuda_tests(out: Path) -> dict:
    """The cuda-marked tests; their summary line and exit code."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider",
                           str(ROOT / "tests")], capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    text = done.stdout + done.stderr
    (out / "cuda_tests.txt").write_text(text)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return {"exit_code": done.returncode, "summary": lines[-1] if lines else ""}


def export_row(scratch: Path, size, iters: int) -> Path:
    from toolkit.export import export_onnx
    from toolkit.paths import BUILTIN_CHECKPOINT

    target = scratch / f"rt_igev_student_{size[0]}x{size[1]}_it{iters}_fp32.onnx"
    return export_onnx(BUILTIN_CHECKPOINT, out=target, size=size, iters=iters, simplify=False).path


def bench_rows(onnx_path: Path, device: str) -> list:
    """PyTorch FP32 eager (the reference), FP16 + CUDA graph, ONNX Runtime, SGBM."""
    import onnxruntime

    from toolkit.paths import BUILTIN_CHECKPOINT

    checkpoint = str(BUILTIN_CHECKPOINT)
    rows = [checkpoint]
    if device != "cpu":
        rows.append(checkpoint + "+fp16+graph")
    ort_cuda = device != "cpu" and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if onnx_path is not None:
        rows.append(f"{onnx_path}+{'cuda' if ort_cuda else 'cpu'}")
    return rows + ["sgbm"]


def run_bench(rows: list, knob: dict, scratch: Path):
    from toolkit.bench import BenchConfig
    from toolkit.bench import run_bench as bench

    config = BenchConfig(models=rows, data="builtin", size=knob["size"], iters=knob["iters"], device=knob["device"],
                         warmup=5, repeats=knob["repeats"], measure_memory=True)
    report = bench(config, scratch / "bench", progress=print)
    for name in ("report.md", "report.json"):
        shutil.copy(scratch / "bench" / name, knob["out"] / f"bench_{name}")
    return report


def side_by_side_video(path: Path, frames: int, size) -> Path:
    """A pan over the built-in pair, left | right in each frame (rectified, like a stereo camera)."""
    import cv2

    from toolkit.demo import builtin_clip

    clip = builtin_clip(min(frames, 60), size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (2 * size[1], size[0]))
    for index in range(frames):
        frame = clip[index % len(clip)]
        writer.write(cv2.cvtColor(np.concatenate([frame.left, frame.right], axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def fastest_network_row(report) -> dict:
    return min((row for row in report.rows if row["info"]["backend"] != "sgbm"), key=lambda r: r["latency"]["p50"])


def run_row(row: dict, knob: dict, scratch: Path):
    """``run`` over the generated video with the row's own settings, saving the view."""
    from toolkit.backends import parse_model_text
    from toolkit.stream import app

    spec = parse_model_text(row["info"]["spec"])
    video = side_by_side_video(scratch / "side_by_side.mp4", knob["frames"], knob["size"])
    save = scratch / "run.mp4"
    config = app.RunConfig(sources=[str(video)], rectified=True, headless=True, model=spec.model,
                           backend=row["info"]["backend"], device=row["device"],
                           size_text="{}x{}".format(*knob["size"]),
                           precision=spec.precision, cuda_graph=spec.cuda_graph, save=str(save),
                           iters=knob["iters"] if row["info"]["backend"] == "torch" else None,
                           latest_frame_wins=False, status_every=10.0)
    summary = app.run(config, echo=print)
    for produced in scratch.glob("run.mp4*"):
        shutil.copy(produced, knob["out"] / produced.name)
    return summary


def ratios(report, run_summary, fastest: dict) -> dict:
    rows = {row["info"]["label"]: row for row in report.rows}
    eager = next((r for label, r in rows.items() if r["info"]["backend"] == "torch" and "+" not in label), None)
    graph = next((r for label, r in rows.items() if label.endswith("+fp16+graph")), None)
    found = {"fastest_row": fastest["info"]["label"], "fastest_row_fps": fastest["latency"]["fps"],
             "run_fps": run_summary.fps if run_summary else None,
             "run_frames": run_summary.frames_processed if run_summary else 0}
    if eager and graph:
        found["graph_vs_eager"] = eager["latency"]["p50"] / graph["latency"]["p50"]
        found["fp16_epe_vs_fp32_px"] = (graph["vs_reference"] or {}).get("epe")
        found["fp16_max_error_vs_fp32_px"] = (graph["vs_reference"] or {}).get("max_error")
    found["run_overhead"] = 1.0 - run_summary.fps / fastest["latency"]["fps"] if run_summary else None
    found["targets"] = TARGETS
    found["met"] = {
        "graph_vs_eager": _at_least(found.get("graph_vs_eager"), TARGETS["graph_vs_eager_min"]),
        "fp16_epe": _at_most(found.get("fp16_epe_vs_fp32_px"), TARGETS["fp16_epe_max_px"]),
        "run_overhead": _at_most(found["run_overhead"], TARGETS["run_overhead_max"]),
    }
    return found


def _at_least(value, target) -> bool | None:
    return None if value is None else value >= target


def _at_most(value, target) -> bool | None:
    return None if value is None else value <= target


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"


def write_summary(out: Path, record: dict) -> None:
    (out / "gpu_reference.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    figures = record["ratios"]
    lines = ["# GPU reference (issue 13)", "",
             f"Machine: {record['versions'].get('nvidia_smi') or record['versions'].get('gpu')}; "
             f"PyTorch {record['versions'].get('torch')} (CUDA {record['versions'].get('torch_cuda')}), "
             f"ONNX Runtime {record['versions'].get('onnxruntime')} {record['versions'].get('ort_providers')}, "
             f"stereo-trt {record['versions'].get('toolkit')}.",
             f"Knobs: size {record['knobs']['size']}, {record['knobs']['iters']} iterations, "
             f"{record['knobs']['frames']} frames, device {record['knobs']['device']}.", "",
             f"cuda tests: {record['cuda_tests'].get('summary')}", "", "| figure | value | target | met |",
             "| --- | ---: | ---: | --- |"]
    rows = [("FP16 + CUDA graph vs eager FP32 (p50)", figures.get("graph_vs_eager"), ">= 3x", "graph_vs_eager"),
            ("FP16 EPE vs FP32 (px)", figures.get("fp16_epe_vs_fp32_px"), "<= 0.05", "fp16_epe"),
            (f"run loop overhead ({figures['fastest_row']})", figures.get("run_overhead"), "<= 10 %", "run_overhead")]
    for name, value, target, key in rows:
        shown = "n/a" if value is None else f"{value:.3f}"
        lines.append(f"| {name} | {shown} | {target} | {figures['met'][key]} |")
    run_fps = "n/a" if figures["run_fps"] is None else f"{figures['run_fps']:.1f}"
    lines += ["", f"run: {figures['run_frames']} frames at {run_fps} FPS; the row alone "
              f"{figures['fastest_row_fps']:.1f} FPS. Bench tables: bench_report.md."]
    lines += [f"- note: {note}" for note in record["notes"]]
    (out / "gpu_reference.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    knob = knobs()
    knob["out"].mkdir(parents=True, exist_ok=True)
    record = {"knobs": {**knob, "out": str(knob["out"])}, "versions": versions(), "started": time.time()}
    record["cuda_tests"] = cuda_tests(knob["out"]) if knob["tests"] else {"summary": "skipped (GPU_REF_TESTS=0)"}
    record["notes"] = notes = []
    # the GPU is lent once: a failing stage is noted and the rest of the report still written
    with tempfile.TemporaryDirectory(prefix="gpu-reference-") as scratch:
        scratch = Path(scratch)
        try:
            onnx_path = export_row(scratch, knob["size"], knob["iters"])
        except Exception as exc:  # any export failure only costs the ONNX Runtime row
            onnx_path = None
            notes.append(f"export failed, so no ONNX Runtime row ({first_line(exc)})")
        report = run_bench(bench_rows(onnx_path, knob["device"]), knob, scratch)
        fastest = fastest_network_row(report)
        try:
            summary = run_row(fastest, knob, scratch)
        except Exception as exc:  # the bench figures are still worth writing
            summary = None
            notes.append(f"run with {fastest['info']['label']} failed ({first_line(exc)})")
        record["ratios"] = ratios(report, summary, fastest)
    record["seconds"] = time.time() - record.pop("started")
    write_summary(knob["out"], record)
    print((knob["out"] / "gpu_reference.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
