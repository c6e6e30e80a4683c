"""Disparity (and depth, and confidence) for stereo pairs, written as files people use.

For each pair: ``<name>_disp.pfm`` (float disparity), ``<name>_disp.png`` (uint16, x256,
KITTI convention, 0 = invalid), ``<name>_disp_color.png``; with focal length (px) and
baseline (m): ``<name>_depth.pfm`` (metres, +inf where invalid) and
``<name>_depth_color.png``; with a confidence output: ``<name>_conf.pfm`` (float, 0..1) and
``<name>_conf.png`` (8-bit). With a confidence threshold, pixels below it are written as
invalid: disparity 0, depth +inf, black in the colour images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from toolkit.backends.base import Prediction, Runner
from toolkit.confidence import mask_unconfident
from toolkit.data import io
from toolkit.errors import InputError


@dataclass
class PredictOutput:
    """The files written for one pair and the timing of its inference."""

    name: str
    files: list[Path] = field(default_factory=list)
    infer_ms: float = 0.0
    total_ms: float = 0.0


def depth_from_disparity(disparity: np.ndarray, focal_px: float, baseline_m: float) -> np.ndarray:
    """Depth in metres, ``f * B / d``; +inf where the disparity is not positive."""
    if focal_px <= 0 or baseline_m <= 0:
        raise InputError(f"focal ({focal_px}) and baseline ({baseline_m}) must both be positive")
    depth = np.full(disparity.shape, np.inf, dtype=np.float32)
    positive = disparity > 0
    depth[positive] = focal_px * baseline_m / disparity[positive]
    return depth


def write_prediction(prediction: Prediction, out_dir: Path, name: str,
                     focal_px: float | None = None, baseline_m: float | None = None,
                     min_confidence: float | None = None) -> list[Path]:
    """Write every output file for one prediction; returns the paths written.

    Args:
        min_confidence: pixels whose confidence is below this are written as invalid.
    """
    disparity = mask_unconfident(prediction.disparity, prediction.confidence, min_confidence)
    kept = disparity > 0 if min_confidence is not None else None
    stem = Path(out_dir) / name
    files = [
        io.write_pfm(f"{stem}_disp.pfm", disparity),
        io.write_disparity_png(f"{stem}_disp.png", disparity),
        io.write_image(f"{stem}_disp_color.png", io.colorize(disparity, vmin=0.0, mask=kept)),
    ]
    if focal_px is not None and baseline_m is not None:
        depth = depth_from_disparity(disparity, focal_px, baseline_m)
        files.append(io.write_pfm(f"{stem}_depth.pfm", depth))
        files.append(io.write_image(f"{stem}_depth_color.png", io.colorize(1.0 / depth, vmin=0.0, mask=kept)))
    if prediction.confidence is not None:
        files.append(io.write_pfm(f"{stem}_conf.pfm", prediction.confidence.astype(np.float32)))
        confidence = np.clip(prediction.confidence * 255.0, 0, 255).astype(np.uint8)
        files.append(io.write_image(f"{stem}_conf.png", confidence))
    return files


def read_pairs(pairs: Iterable) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Decode ``StereoPair``-like objects (``name``, ``left``/``right`` paths) one at a time."""
    for pair in pairs:
        yield pair.name, io.read_image(pair.left), io.read_image(pair.right)


def predict_pairs(runner: Runner, pairs: Iterable, out_dir: str | Path,
                  focal_px: float | None = None, baseline_m: float | None = None,
                  on_pair=None, min_confidence: float | None = None) -> list[PredictOutput]:
    """Run ``runner`` over stereo pairs and write the outputs of each under ``out_dir``.

    Args:
        runner: an active runner.
        pairs: (name, left, right) tuples of decoded images (see ``read_pairs``).
        out_dir: output folder (created).
        focal_px, baseline_m: both given -> depth maps too.
        on_pair: optional callback(PredictOutput) after each pair, for progress.
        min_confidence: write pixels below this confidence as invalid (needs a confidence output).
    """
    if (focal_px is None) != (baseline_m is None):
        raise InputError("--focal and --baseline go together: depth needs both")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence {min_confidence}: expected a value in 0..1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name, left, right in pairs:
        prediction = runner.infer(left, right)
        files = write_prediction(prediction, out_dir, name, focal_px, baseline_m, min_confidence)
        output = PredictOutput(name, files, prediction.infer_ms, prediction.total_ms)
        outputs.append(output)
        if on_pair is not None:
            on_pair(output)
    return outputs
