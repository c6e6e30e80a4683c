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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from toolkit.backends.base import Prediction, Runner
from toolkit.confidence import mask_unconfident
from toolkit.data import io
from toolkit.errors import InputError
from toolkit.pointcloud import CloudMask, cloud_from_disparity, q_matrix, write_ply


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
                     min_confidence: float | None = None, doffs: float = 0.0) -> list[Path]:
    """Write every output file for one prediction; returns the paths written.

    Args:
        min_confidence: pixels whose confidence is below this are written as invalid.
        doffs: principal point x difference (right minus left) for depth, px.
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
        depth = depth_from_disparity(disparity, focal_px, baseline_m, doffs)
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
    if (focal_px is None) != (baseline_m is None):
        raise InputError("--focal and --baseline go together: depth needs both")
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence {min_confidence}: expected a value in 0..1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name, left, right in pairs:
        prediction = runner.infer(left, right)
        files = write_prediction(prediction, out_dir, name, focal_px, baseline_m, min_confidence, doffs)
        if cloud is not None:
            disparity = mask_unconfident(prediction.disparity, prediction.confidence, min_confidence)
            files.append(write_cloud(out_dir / f"{name}.ply", disparity, left, cloud,
                                     {"pair": name, "backend": runner.name, "precision": runner.precision}))
        output = PredictOutput(name, files, prediction.infer_ms, prediction.total_ms)
        outputs.append(output)
        if on_pair is not None:
            on_pair(output)
    return outputs
