"""``stereo-trt demo``: the whole pipeline on built-in data, in a few minutes on a CPU.

Built-in checkpoint -> the best backend available (``toolkit.backends.choice``: a TensorRT
engine where TensorRT imports, else PyTorch on CUDA in FP16 + CUDA graph, else ONNX Runtime
on CUDA, else on the CPU; the ONNX is exported under ``engines/`` once and reused while the
checkpoint is unchanged) streamed over a short built-in clip through the real-time loop ->
an output video, a side-by-side PNG (left | disparity | depth), FPS, and EPE against the
PyTorch reference and against ground truth.

The clip is a slow pan of a camera-sized window over the Middlebury "Motorcycle" pair that
scikit-image ships (real images with ground truth), so every frame can be scored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit import paths, provenance
from toolkit.backends import choice as backend_choice
from toolkit.backends.choice import BackendChoice
from toolkit.backends.spec import RunnerSpec
from toolkit.bench import metrics
from toolkit.data import builtin, io
from toolkit.errors import InputError
from toolkit.stream import loop
from toolkit.stream.rectify import DepthConverter
from toolkit.stream.record import VideoRecorder
from toolkit.stream.sources import StereoFrame, StereoSource

DEMO_SIZE = (480, 640)
DEMO_FRAMES = 8
CLIP_FPS = 5.0


@dataclass
class ClipFrame:
    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    valid: np.ndarray


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    backend: str
    model: Path
    video: Path
    panel: Path
    summary: loop.Summary
    epe_vs_reference: float
    epe_vs_gt: float
    reference_epe_vs_gt: float
    report: Path
    notes: list = field(default_factory=list)


def builtin_clip(frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE) -> list[ClipFrame]:
    """Windows of ``size`` panning diagonally across the built-in pair, with their ground truth."""
    left, right, disparity, valid = builtin.builtin_pair()
    h, w = size
    ys = np.linspace(0, left.shape[0] - h, frames).round().astype(int)
    xs = np.linspace(0, left.shape[1] - w, frames).round().astype(int)
    # A window cut from both views at the same place keeps the pair rectified and the disparity unchanged.
    return [ClipFrame(*(a[y:y + h, x:x + w] for a in (left, right, disparity, valid))) for y, x in zip(ys, xs)]


class ClipSource(StereoSource):
    """The built-in clip as a file-like source (every frame is processed, none dropped)."""

    name = "built-in clip (Middlebury Motorcycle pan)"

    def __init__(self, clip: list[ClipFrame]) -> None:
        self.clip, self.position = clip, 0

    def open(self) -> None:
        self.position = 0

    def read(self) -> StereoFrame | None:
        if self.position >= len(self.clip):
            return None
        frame = self.clip[self.position]
        self.position += 1
        return StereoFrame(frame.left, frame.right, self.position - 1, time.perf_counter())

    @property
    def fps(self) -> float:
        return CLIP_FPS


def ensure_onnx(checkpoint: Path, engines_dir: Path, size: tuple[int, int], log: Callable[[str], None]) -> Path:
    """The checkpoint's ONNX at ``size``: reused when its sidecar names the same checkpoint hash."""
    from toolkit.export import export_onnx
    from toolkit.model import load_student

    iters = load_student(checkpoint)[1].iters
    target = engines_dir / f"{checkpoint.stem}_{size[0]}x{size[1]}_it{iters}_fp32.onnx"
    digest = provenance.sha256_file(checkpoint)
    sidecar = provenance.sidecar_path(target)
    if target.is_file() and sidecar.is_file():
        recorded = json.loads(sidecar.read_text()).get("metadata", {}).get("checkpoint_sha256")
        if recorded == digest:
            log(f"reusing {target}")
            return target
    log(f"exporting {checkpoint.name} to {target} (once; checked against PyTorch) ...")
    result = export_onnx(checkpoint, out=target, size=size, iters=iters)
    log(f"exported in {result.seconds:.0f} s; parity vs PyTorch: EPE {result.parity.epe:.4f} px")
    return target


def ensure_engine(onnx_path: Path, engines_dir: Path, log: Callable[[str], None]) -> Path:
    """An FP16 TensorRT engine of the ONNX, built on this device once and reused."""
    from toolkit.trt.build import build_engine

    target = engines_dir / f"{onnx_path.stem.replace('_fp32', '')}_fp16.engine"
    if target.is_file():
        log(f"reusing {target}")
        return target
    log(f"building {target} with TensorRT (minutes, once) ...")
    return build_engine(onnx_path, precision="fp16", out=target).path


def reference_disparities(checkpoint: Path, clip: list[ClipFrame], log: Callable[[str], None],
                          device: str = "cpu") -> list[np.ndarray]:
    """PyTorch FP32 eager disparities of the clip: the reference every backend is held to."""
    from toolkit.backends import RunnerSpec, open_runner

    log(f"PyTorch FP32 reference over {len(clip)} frames on {device} ...")
    with open_runner(RunnerSpec(model=str(checkpoint), device=device)) as runner:
        return [runner.infer(f.left, f.right).disparity for f in clip]


def side_by_side(left: np.ndarray, disparity: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """left | colorized disparity | colorized depth (near = warm), one RGB image."""
    valid = np.isfinite(depth) & (disparity > 0)
    return np.concatenate([left, io.colorize(disparity, vmin=0.0, mask=valid),
                           io.colorize(-depth, mask=valid)], axis=1)


def demo_choice(backend: str | None, device: str | None) -> BackendChoice:
    """The backend and settings of the demo: ``choose_backend`` unless --backend names one.

    A named backend runs on ``device`` (default: cpu; TensorRT: cuda), PyTorch on CUDA in
    FP16 + CUDA graph.
    """
    if backend is None:
        return backend_choice.choose_backend(device)
    if backend == "torch":
        gpu = device is not None and device != "cpu"
        return BackendChoice("torch", device or "cpu", "fp16" if gpu else None, gpu,
                             f"--backend torch on {device or 'cpu'}")
    return BackendChoice(backend, device or ("cuda" if backend == "tensorrt" else "cpu"), None, False,
                         f"--backend {backend}")


# the precision of what ``choice_spec`` makes from a checkpoint: ensure_onnx's ONNX, ensure_engine's engine
BUILT_PRECISION = {"onnxruntime": "fp32", "tensorrt": "fp16"}


def choice_spec(choice: BackendChoice, checkpoint: Path, size: tuple[int, int], engines_dir: Path | str | None = None,
                log: Callable[[str], None] = print, **fields) -> RunnerSpec:
    """The runner spec of a backend choice for a checkpoint: the checkpoint itself (PyTorch), or its
    ONNX / engine, made once under ``engines_dir`` at ``size`` and reused.

    Args:
        engines_dir: where the ONNX / engine go; None describes the spec without making them
            (the model is then the checkpoint), for checking options before the export.
        **fields: further ``RunnerSpec`` fields (threads, max_disp, lr_check).
    """
    baked = BUILT_PRECISION.get(choice.backend)
    if choice.precision is not None and baked is not None and choice.precision != baked:
        # refused here, before minutes of export or engine build, not by the runner afterwards
        raise InputError(f"--precision {choice.precision}: on {choice.backend} the checkpoint runs as the {baked} "
                         f"model made from it; choose --precision {baked}, or give --model (an ONNX model "
                         "exported at that precision, or the checkpoint on a CUDA device)")
    model = checkpoint
    if choice.backend != "torch" and engines_dir is not None:
        onnx_path = ensure_onnx(checkpoint, Path(engines_dir), size, log)
        model = ensure_engine(onnx_path, Path(engines_dir), log) if choice.backend == "tensorrt" else onnx_path
    values = {key: value for key, value in fields.items() if value not in (None, False)}
    return RunnerSpec(model=str(model), backend=choice.backend, device=choice.device, precision=choice.precision,
                      cuda_graph=choice.cuda_graph, size=size if choice.backend == "torch" else None, **values)


def run_demo(out_dir: str | Path = "outputs/demo", engines_dir: str | Path = paths.ENGINES_DIR,
             checkpoint: str | Path | None = None, frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE,
             backend: str | None = None, device: str | None = None, log: Callable[[str], None] = print) -> DemoResult:
    """Run the whole pipeline on built-in data and write the demo's outputs under ``out_dir``.

    Args:
        backend: "tensorrt", "torch" or "onnxruntime"; None: the best one here (``choose_backend``).
        device: "cpu", "cuda" or "cuda:N"; None: the best one here.
    """
    from toolkit.backends import check_spec, open_runner
    from toolkit.outputs import check_output_dir

    check_output_dir(out_dir, "--out")
    check_output_dir(engines_dir, "engines folder")
    checkpoint = paths.resolve_checkpoint(checkpoint)
    out_dir, engines_dir = Path(out_dir), Path(engines_dir)
    choice = demo_choice(backend, device)
    log(f"backend: {choice.backend} on {choice.device} ({choice.reason})")
    check_spec(choice_spec(choice, checkpoint, size))  # the device and options, before the export
    clip = builtin_clip(frames, size)
    spec = choice_spec(choice, checkpoint, size, engines_dir, log)
    model = Path(spec.model)
    backend = choice.backend
    depth = DepthConverter(builtin.FOCAL_PX, builtin.BASELINE_M, builtin.DOFFS_PX / builtin.BASELINE_M, "m")
    results: list = []
    options = loop.StreamOptions(depth=depth, on_result=results.append, on_status=log, status_every_s=5.0)
    video = out_dir / "demo.mp4"
    log(f"streaming the built-in clip through {backend} ...")
    with open_runner(spec) as runner:
        summary = loop.run_stream(ClipSource(clip), runner, options,
                                  sinks=[VideoRecorder(video, CLIP_FPS, {"model": str(model)})])
    reference = reference_disparities(checkpoint, clip, log, choice.device if backend == "torch" else "cpu")
    vs_reference = [metrics.disparity_metrics(r.disparity, ref).epe for r, ref in zip(results, reference)]
    vs_gt = [metrics.disparity_metrics(r.disparity, f.disparity, f.valid).epe for r, f in zip(results, clip)]
    ref_vs_gt = [metrics.disparity_metrics(ref, f.disparity, f.valid).epe for ref, f in zip(reference, clip)]
    panel = io.write_image(out_dir / "demo_side_by_side.png",
                           side_by_side(results[0].left, results[0].disparity, results[0].depth))
    result = DemoResult(f"{summary.backend}", model, video, panel, summary, float(np.mean(vs_reference)),
                        float(np.mean(vs_gt)), float(np.mean(ref_vs_gt)), out_dir / "demo.json")
    provenance.write_json(result.report, provenance.record(
        kind="demo", checkpoint=str(checkpoint), checkpoint_sha256=provenance.sha256_file(checkpoint),
        model=str(model), backend=result.backend, device=choice.device, precision=runner.precision,
        cuda_graph=choice.cuda_graph, choice_reason=choice.reason, input_hw=list(size), frames=len(results),
        fps=None if np.isnan(summary.fps) else summary.fps, latency_ms_mean=summary.latency_ms_mean,
        infer_ms=summary.stage_ms.get("infer"),
        epe_vs_reference=result.epe_vs_reference, epe_vs_gt=result.epe_vs_gt,
        reference_epe_vs_gt=result.reference_epe_vs_gt))
    return result
