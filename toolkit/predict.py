"""Disparity (and depth, and confidence) for stereo pairs, written as files people use.

For each pair: ``<name>_disp.pfm`` (float disparity), ``<name>_disp.png`` (uint16, x256,
KITTI convention, 0 = invalid), ``<name>_disp_color.png``; with focal length (px) and
baseline (m): ``<name>_depth.pfm`` (metres, +inf where invalid) and
``<name>_depth_color.png``; with a confidence output: ``<name>_conf.pfm`` (float, 0..1) and
``<name>_conf.png`` (8-bit). With a confidence threshold, pixels below it are written as
invalid: disparity 0, depth +inf, black in the colour images. With ``CloudOptions``:
``<name>.ply``, the coloured point cloud of the valid pixels (``toolkit.pointcloud``).
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
from toolkit.pointcloud import CloudMask, cloud_from_disparity, q_matrix, write_ply

MAX_LISTED = 10  # pair names listed in a failed run's error, so it stays one readable line


@dataclass
class PredictOutput:
    """The files written for one pair and the timing of its inference."""

    name: str
    files: list[Path] = field(default_factory=list)
    infer_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class CloudOptions:
    """Geometry and masks for ``<name>.ply`` point clouds.

    Attributes:
        focal_px, baseline_m: rectified focal length (px) and baseline (m).
        cx, cy: principal point of the left view, px; None: the image centre.
        doffs: principal point x difference, right minus left, px (Middlebury's ``doffs``).
        mask: depth limits (confidence is applied to the disparity before).
    """

    focal_px: float
    baseline_m: float
    cx: float | None = None
    cy: float | None = None
    doffs: float = 0.0
    mask: CloudMask = field(default_factory=CloudMask)

    def q_for(self, height: int, width: int) -> np.ndarray:
        cx = (width - 1) / 2 if self.cx is None else self.cx
        cy = (height - 1) / 2 if self.cy is None else self.cy
        return q_matrix(self.focal_px, self.baseline_m, cx, cy, self.doffs)


def cloud_options(has_inputs: bool, focal_px: float | None, baseline_m: float | None, cx: float | None = None,
                  cy: float | None = None, doffs: float = 0.0, min_depth: float | None = None,
                  max_depth: float | None = None) -> CloudOptions:
    """``predict --ply``'s geometry: the values given, else (no inputs) the built-in pair's calibration.

    Raises:
        InputError: no focal length and baseline for user pairs, depth limits out of order.
    """
    mask = CloudMask(min_depth=min_depth, max_depth=max_depth)
    if focal_px is not None and baseline_m is not None:
        return CloudOptions(focal_px, baseline_m, cx, cy, doffs, mask)
    if focal_px is None and baseline_m is None and not has_inputs:
        from toolkit.data import builtin

        return CloudOptions(builtin.FOCAL_PX, builtin.BASELINE_M, builtin.CX_PX, builtin.CY_PX, builtin.DOFFS_PX, mask)
    raise InputError("--ply needs --focal and --baseline (metres), with --cx/--cy/--doffs when the principal "
                     "points are not centred and equal")


def depth_from_disparity(disparity: np.ndarray, focal_px: float, baseline_m: float, doffs: float = 0.0) -> np.ndarray:
    """Depth in metres, ``f * B / (d + doffs)``; +inf where the disparity is not positive."""
    if focal_px <= 0 or baseline_m <= 0:
        raise InputError(f"focal ({focal_px}) and baseline ({baseline_m}) must both be positive")
    depth = np.full(disparity.shape, np.inf, dtype=np.float32)
    positive = (disparity > 0) & (disparity + doffs > 0)
    depth[positive] = focal_px * baseline_m / (disparity[positive] + doffs)
    return depth


def write_cloud(path: str | Path, disparity: np.ndarray, left: np.ndarray, cloud: CloudOptions,
                fields: dict | None = None) -> Path:
    """The PLY of the pixels with a positive disparity, coloured from ``left``."""
    points = cloud_from_disparity(disparity, cloud.q_for(*disparity.shape[:2]), left, disparity > 0,
                                  mask=cloud.mask)
    return write_ply(path, points, {"focal_px": cloud.focal_px, "baseline_m": cloud.baseline_m, "cx": cloud.cx,
                                    "cy": cloud.cy, "doffs": cloud.doffs, "min_depth": cloud.mask.min_depth,
                                    "max_depth": cloud.mask.max_depth, **(fields or {})})


def write_prediction(prediction: Prediction, out_dir: Path, name: str,
                     focal_px: float | None = None, baseline_m: float | None = None,
                     min_confidence: float | None = None, doffs: float = 0.0, cloud: CloudOptions | None = None,
                     left: np.ndarray | None = None, cloud_meta: dict | None = None) -> list[Path]:
    """Write every output file for one prediction, all or none; returns the paths written.

    Args:
        min_confidence: pixels whose confidence is below this are written as invalid.
        doffs: principal point x difference (right minus left) for depth, px.
        cloud: also write ``<name>.ply`` with this geometry, coloured from ``left``;
            ``cloud_meta`` goes into its record.
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
            depth = depth_from_disparity(disparity, focal_px, baseline_m, doffs)
            files.append(io.write_pfm(f"{stem}_depth.pfm", depth))
            files.append(io.write_image(f"{stem}_depth_color.png", io.colorize(1.0 / depth, vmin=0.0, mask=kept)))
        if prediction.confidence is not None:
            files.append(io.write_pfm(f"{stem}_conf.pfm", prediction.confidence.astype(np.float32)))
            confidence = np.clip(prediction.confidence * 255.0, 0, 255).astype(np.uint8)
            files.append(io.write_image(f"{stem}_conf.png", confidence))
        if cloud is not None:
            files.append(write_cloud(f"{stem}.ply", disparity, left, cloud, cloud_meta))
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
        preprocess.read_checked_pair(pair, size)


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
                  on_pair=None, min_confidence: float | None = None, doffs: float = 0.0,
                  cloud: CloudOptions | None = None) -> list[PredictOutput]:
    """Run ``runner`` over stereo pairs and write the outputs of each under ``out_dir``.

    Args:
        runner: an active runner.
        pairs: (name, left, right) tuples of decoded images (see ``read_pairs``).
        out_dir: output folder (created).
        focal_px, baseline_m: both given -> depth maps too.
        on_pair: optional callback(PredictOutput) after each pair, for progress.
        min_confidence: write pixels below this confidence as invalid (needs a confidence output).
        doffs: principal point x difference (right minus left) for the depth maps, px.
        cloud: also write ``<name>.ply`` with this geometry.
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
            files = write_prediction(prediction, out_dir, name, focal_px, baseline_m, min_confidence, doffs,
                                     cloud=cloud, left=left,
                                     cloud_meta={"pair": name, "backend": runner.name, "precision": runner.precision})
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
