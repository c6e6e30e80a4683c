"""Point clouds from disparity: OpenCV's reprojection with a Q matrix, masks, colours, PLY.

A disparity in rectified pixels becomes 3-D points through the rectification's 4x4 Q
matrix (``cv2.reprojectImageTo3D``): X = (x - cx) / W, Y = (y - cy) / W, Z = f / W with
W = (d - (cx - cx_right)) / B. Points are in the left rectified camera's optical frame
(x right, y down, z forward, the ROS ``*_optical_frame`` convention), in the baseline's
unit. Q comes from a calibration (``Rectifier.Q``), from ROS ``camera_info`` projection
matrices, or from focal length, baseline and principal point (``q_matrix``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit import provenance
from toolkit.errors import DependencyError, InputError

METRES_PER_UNIT = {"m": 1.0, "": 1.0, "cm": 0.01, "mm": 0.001}


def q_matrix(focal_px: float, baseline: float, cx: float, cy: float, doffs: float = 0.0) -> np.ndarray:
    """The 4x4 reprojection matrix of a rectified pair, as ``cv2.stereoRectify`` builds it.

    Args:
        focal_px: rectified focal length, px.
        baseline: distance between the camera centres (its unit is the unit of the points).
        cx, cy: principal point of the left rectified view, px.
        doffs: x difference of the principal points, right minus left (Middlebury's
            ``doffs``; 0 for ``CALIB_ZERO_DISPARITY`` rectification): Z = f B / (d + doffs).

    Raises:
        InputError: a focal length or baseline that is not positive.
    """
    if not focal_px > 0 or not baseline > 0:
        raise InputError(f"focal length ({focal_px} px) and baseline ({baseline}) must both be positive")
    return np.array([[1.0, 0.0, 0.0, -cx],
                     [0.0, 1.0, 0.0, -cy],
                     [0.0, 0.0, 0.0, focal_px],
                     [0.0, 0.0, 1.0 / baseline, doffs / baseline]], dtype=np.float64)


def q_from_projections(P1: np.ndarray, P2: np.ndarray) -> np.ndarray:
    """Q from the rectified 3x4 projection matrices of the left and right cameras.

    The right camera's ``P2[0, 3]`` is ``-f * B`` (OpenCV and ROS ``camera_info`` alike).

    Raises:
        InputError: a right projection without a horizontal baseline.
    """
    P1, P2 = np.asarray(P1, dtype=np.float64).reshape(3, 4), np.asarray(P2, dtype=np.float64).reshape(3, 4)
    focal = P1[0, 0]
    if focal <= 0 or P2[0, 3] >= 0:
        raise InputError(f"projection matrices without a left-to-right baseline (right P[0,3] = {P2[0, 3]}, "
                         "expected -focal * baseline < 0)")
    return q_matrix(focal, -P2[0, 3] / P2[0, 0], P1[0, 2], P1[1, 2], P2[0, 2] - P1[0, 2])


def metres_per_unit(units: str) -> float:
    """Scale from a calibration's unit to metres (point clouds and ROS messages are in metres).

    Raises:
        InputError: a unit other than m, cm, mm (or none, taken as metres).
    """
    if units not in METRES_PER_UNIT:
        raise InputError(f"calibration units {units!r}: expected m, cm or mm (point clouds and ROS messages are in metres)")
    return METRES_PER_UNIT[units]


def scale_q(Q: np.ndarray, scale: float) -> np.ndarray:
    """Q whose points come out ``scale`` times larger (a baseline in another unit)."""
    Q = np.array(Q, dtype=np.float64)
    Q[3, 2:] /= scale
    return Q


def reproject(disparity: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """HxWx3 float32 points for every pixel; NaN where the disparity gives no point.

    A disparity that is not positive is "no match" in this toolkit (0 in its files), never
    a point at infinity, even when a principal point offset would give it a depth.
    """
    disparity = np.ascontiguousarray(disparity, dtype=np.float32)
    points = cv2.reprojectImageTo3D(disparity, np.asarray(Q, dtype=np.float64), handleMissingValues=False)
    # W <= 0 (behind the camera) yields inf or a negative depth: no point there either.
    points[~((disparity > 0) & np.isfinite(points[..., 2]) & (points[..., 2] > 0))] = np.nan
    return points


@dataclass
class CloudMask:
    """Which pixels become points.

    Attributes:
        min_confidence: drop pixels whose confidence is below this (when there is a confidence).
        min_depth, max_depth: keep depths in this range (the points' unit); far-away noise
            otherwise swamps a cloud.
    """

    min_confidence: float | None = None
    min_depth: float | None = None
    max_depth: float | None = None

    def __post_init__(self) -> None:
        if self.min_depth is not None and self.max_depth is not None and not self.min_depth < self.max_depth:
            raise InputError(f"--min-depth {self.min_depth} must be below --max-depth {self.max_depth}")

    def keep(self, points: np.ndarray, valid: np.ndarray | None = None,
             confidence: np.ndarray | None = None) -> np.ndarray:
        """HxW bool: finite points with positive depth, ``valid``, confident and in the depth range."""
        depth = points[..., 2]
        keep = np.isfinite(points).all(axis=-1) & (depth > 0)
        if valid is not None:
            keep &= valid
        if self.min_confidence is not None and confidence is not None:
            keep &= confidence >= self.min_confidence
        if self.min_depth is not None:
            keep &= depth >= self.min_depth
        if self.max_depth is not None:
            keep &= depth <= self.max_depth
        return keep


@dataclass
class PointCloud:
    """An unorganised coloured cloud.

    Attributes:
        points: Nx3 float32 (x, y, z).
        colors: Nx3 uint8 RGB.
        pixels: Nx2 int (row, col) of each point in the left image.
    """

    points: np.ndarray
    colors: np.ndarray
    pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def cloud_from_disparity(disparity: np.ndarray, Q: np.ndarray, image: np.ndarray | None = None,
                         valid: np.ndarray | None = None, confidence: np.ndarray | None = None,
                         mask: CloudMask | None = None) -> PointCloud:
    """The coloured points of the pixels ``mask`` keeps.

    Args:
        disparity: HxW disparity in rectified source pixels.
        Q: 4x4 reprojection matrix (``q_matrix``, ``Rectifier.Q``).
        image: HxWx3 uint8 RGB left image for the colours (grey 128 without one).
        valid: HxW bool of pixels allowed at all (the loop's validity mask), or None.
        confidence: HxW confidence in [0, 1], or None.
        mask: confidence and depth limits.
    """
    points = reproject(disparity, Q)
    keep = (mask or CloudMask()).keep(points, valid, confidence)
    rows, cols = np.nonzero(keep)
    colors = (image[rows, cols, :3] if image is not None
              else np.full((rows.size, 3), 128, dtype=np.uint8)).astype(np.uint8)
    return PointCloud(points[rows, cols].astype(np.float32), colors, np.stack([rows, cols], axis=1))


def _plyfile():
    try:
        import plyfile
    except ImportError:
        raise DependencyError("writing PLY point clouds needs plyfile: pip install plyfile") from None
    return plyfile


def write_ply(path: str | os.PathLike, cloud: PointCloud, fields: dict | None = None) -> Path:
    """Write a binary little-endian PLY (x, y, z float32; red, green, blue uint8) atomically,
    with a JSON provenance sidecar beside it.

    Args:
        path: the .ply file.
        cloud: the points.
        fields: provenance fields (model, calibration, masks ...).
    """
    plyfile = _plyfile()
    vertices = np.empty(len(cloud), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                           ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    for i, name in enumerate("xyz"):
        vertices[name] = cloud.points[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        vertices[name] = cloud.colors[:, i]
    element = plyfile.PlyElement.describe(vertices, "vertex")
    path = Path(path)
    with provenance.atomic_path(path) as tmp:
        plyfile.PlyData([element], text=False, byte_order="<", comments=["written by stereo-trt"]).write(str(tmp))
    provenance.write_json(provenance.sidecar_path(path), provenance.record(
        artifact="point cloud", path=str(path), points=len(cloud), **(fields or {})))
    return path


def read_ply(path: str | os.PathLike) -> PointCloud:
    """Read a PLY written by ``write_ply`` (pixels are not stored: an empty Nx2 array)."""
    vertex = _plyfile().PlyData.read(str(path))["vertex"].data
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    colors = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(np.uint8)
    return PointCloud(points, colors, np.empty((0, 2), dtype=np.int64))
