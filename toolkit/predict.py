"""Disparity (and depth, and confidence) for stereo pairs, written as files people use.

For each pair: ``<name>_disp.pfm`` (float disparity), ``<name>_disp.png`` (uint16, x256,
KITTI convention, 0 = invalid), ``<name>_disp_color.png``; with focal length (px) and
baseline (m): ``<name>_depth.pfm`` (metres, +inf where invalid) and
``<name>_depth_color.png``; with a confidence output: ``<name>_conf.pfm`` (float, 0..1) and
``<name>_conf.png`` (8-bit). With a confidence threshold, pixels below it are written as
invalid: disparity 0, depth +inf, black in the colour images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from toolkit import preprocess
from toolkit.backends.base import Prediction, Runner
from toolkit.confidence import mask_unconfident
from toolkit.data import io
from toolkit.errors import InputError, StereoTrtError

MAX_LISTED = 10  # pair names listed in a failed run's error, so it stays one readable line


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
    files: list[Path] = []
    try:
        files.append(io.write_pfm(f"{stem}_disp.pfm", disparity))
        files.append(io.write_disparity_png(f"{stem}_disp.png", disparity))
        files.append(io.write_image(f"{stem}_disp_color.png", io.colorize(disparity, vmin=0.0, mask=kept)))
        if focal_px is not None and baseline_m is not None:
            depth = depth_from_disparity(disparity, focal_px, baseline_m)
            files.append(io.write_pfm(f"{stem}_depth.pfm", depth))
            files.append(io.write_image(f"{stem}_depth_color.png", io.colorize(1.0 / depth, vmin=0.0, mask=kept)))
        if prediction.confidence is not None:
            files.append(io.write_pfm(f"{stem}_conf.pfm", prediction.confidence.astype(np.float32)))
            confidence = np.clip(prediction.confidence * 255.0, 0, 255).astype(np.uint8)
            files.append(io.write_image(f"{stem}_conf.png", confidence))
    except BaseException:
        # A pair's files come as a set: none of them rather than some.
        for path in files:
            path.unlink(missing_ok=True)
        raise
    return files


def check_options(focal_px: float | None, baseline_m: float | None, min_confidence: float | None) -> None:
    """Check the output options before any work.

    Raises:
        InputError: naming the option.
    """
    if (focal_px is None) != (baseline_m is None):
        raise InputError("--focal and --baseline go together: depth needs both")
    for option, value in (("--focal", focal_px), ("--baseline", baseline_m)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{option} {value}: expected a positive number")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence {min_confidence}: expected a value in 0..1")


def check_pairs(pairs: Iterable, size: tuple[int, int] | None = None, out_dir: str | Path | None = None) -> None:
    """Decode every pair once and check it can be predicted, before the first file is written.

    A folder run should not stop at pair 40 of 50 on a corrupt file; decoding costs little
    next to inference.

    Raises:
        InputError: naming the pair's file: unreadable, left/right sizes differ, too small or too
            large, or an input that an output under ``out_dir`` would overwrite.
    """
    for pair in pairs:
        if out_dir is not None:
            _check_not_overwritten(pair, Path(out_dir))
        left, right = io.read_image(pair.left), io.read_image(pair.right)
        try:
            preprocess.plan_geometry(preprocess.check_pair(left, right)[0].shape[:2], size)
        except InputError as exc:
            raise InputError(f"pair {pair.name} ({pair.left}): {exc}") from None


OUTPUT_SUFFIXES = ("_disp.pfm", "_disp.png", "_disp_color.png", "_depth.pfm", "_depth_color.png",
                   "_conf.pfm", "_conf.png")


def _check_not_overwritten(pair, out_dir: Path) -> None:
    inputs = {Path(pair.left).resolve(), Path(pair.right).resolve()}
    for suffix in OUTPUT_SUFFIXES:
        if (out_dir / f"{pair.name}{suffix}").resolve() in inputs:
            raise InputError(f"--out {out_dir}: {pair.name}{suffix} would overwrite an input of pair {pair.name}; "
                             "choose another output folder")


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
    check_options(focal_px, baseline_m, min_confidence)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[PredictOutput] = []
    position = "the first pair"
    try:
        for name, left, right in pairs:
            position = name
            prediction = runner.infer(left, right)
            files = write_prediction(prediction, out_dir, name, focal_px, baseline_m, min_confidence)
            outputs.append(PredictOutput(name, files, prediction.infer_ms, prediction.total_ms))
            position = f"the pair after {name}"
            if on_pair is not None:
                on_pair(outputs[-1])
    except StereoTrtError as exc:
        raise type(exc)(f"{exc}; stopped at {position}{_written_note(outputs, out_dir)}") from None
    return outputs


def _written_note(outputs: list[PredictOutput], out_dir: Path) -> str:
    """Which pairs a failed run did write, for its one-line error."""
    if not outputs:
        return ", nothing written"
    names = [o.name for o in outputs]
    listed = ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
    return f"; {len(names)} pair(s) written under {out_dir}: {listed}"
