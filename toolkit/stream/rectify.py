"""Stereo calibration files, rectification maps and depth from disparity.

A calibration file holds K1, D1, K2, D2 (intrinsics and distortion of the left and right
cameras), R, T (pose of the right camera in the left camera's frame, OpenCV's
``stereoCalibrate`` convention: x_right = R x_left + T) and the image size it was made at.
It is read from OpenCV FileStorage YAML/XML (also with the M1/M2 names of OpenCV's
stereo_calib sample) or from JSON (nested lists, or OpenCV's rows/cols/data matrices).

``Rectifier`` computes the rectification once (``stereoRectify`` with zero disparity at
infinity, then ``initUndistortRectifyMap``) and remaps every frame. ``DepthConverter`` turns
disparity in rectified source pixels into depth, from Q or from f and B.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import InputError
from toolkit.provenance import atomic_path
from toolkit.quiet import opencv_reason

# Coefficient counts of OpenCV's distortion models (k1 k2 p1 p2 [k3 [k4 k5 k6 [s1..s4 [tx ty]]]]).
DISTORTION_SIZES = (4, 5, 8, 12, 14)
# Names accepted for each field, first one is what this toolkit writes.
MATRIX_NAMES = {
    "K1": ("K1", "M1", "cameraMatrix1", "camera_matrix_left"),
    "D1": ("D1", "distCoeffs1", "dist_coeffs_left"),
    "K2": ("K2", "M2", "cameraMatrix2", "camera_matrix_right"),
    "D2": ("D2", "distCoeffs2", "dist_coeffs_right"),
    "R": ("R",),
    "T": ("T",),
}
CALIBRATION_SUFFIXES = (".yaml", ".yml", ".xml", ".json")


@dataclass
class StereoCalibration:
    """A calibrated stereo pair.

    Attributes:
        K1, K2: 3x3 camera matrices (pixels).
        D1, D2: distortion coefficients (OpenCV order k1 k2 p1 p2 [k3 ...]).
        R: 3x3 rotation and T: 3-vector translation of the right camera relative to the left.
        image_size: (width, height) the calibration was made at.
        units: unit of T ("m", "mm", ... or "" when unknown); depth comes out in it.
        rms: stereo reprojection RMS in px, when known.
    """

    K1: np.ndarray
    D1: np.ndarray
    K2: np.ndarray
    D2: np.ndarray
    R: np.ndarray
    T: np.ndarray
    image_size: tuple[int, int]
    units: str = ""
    rms: float | None = None

    @property
    def baseline(self) -> float:
        """Distance between the camera centres, in ``units``."""
        return float(np.linalg.norm(self.T))


def load_calibration(path: str | Path) -> StereoCalibration:
    """Read a stereo calibration file (YAML/XML via OpenCV FileStorage, or JSON).

    Raises:
        InputError: missing file, unknown format, or a missing / malformed field.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--calibration {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in CALIBRATION_SUFFIXES:
        raise InputError(f"--calibration {path}: unknown format {suffix!r} (expected .yaml, .yml, .xml or .json)")
    fields = _read_json(path) if suffix == ".json" else _read_filestorage(path)
    return _calibration_from_fields(path, fields)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--calibration {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--calibration {path}: expected a JSON object with K1, D1, K2, D2, R, T, image_size")
    fields = {}
    for key, value in data.items():
        if isinstance(value, dict) and {"rows", "cols", "data"} <= set(value):
            value = np.asarray(value["data"], dtype=np.float64).reshape(value["rows"], value["cols"])
        fields[key] = value
    return fields


def _read_filestorage(path: Path) -> dict:
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # OpenCV 5's binding wraps its parse error in a SystemError
        storage = None
    if storage is None or not storage.isOpened():
        raise InputError(f"--calibration {path}: OpenCV FileStorage cannot parse this file")
    try:
        fields = {}
        root = storage.root()
        for key in root.keys():
            node = root.getNode(key)
            if node.isMap():
                try:
                    fields[key] = node.mat()
                except (cv2.error, SystemError):  # an opencv-matrix without its dt/data (truncated, hand-edited)
                    raise InputError(f"--calibration {path}: {key} is not a complete opencv-matrix "
                                     "(expected rows, cols, dt and data)") from None
            elif node.isSeq():
                fields[key] = [node.at(i).real() for i in range(node.size())]
            elif node.isString():
                fields[key] = node.string()
            elif node.isReal() or node.isInt():
                fields[key] = node.real()
        return fields
    finally:
        storage.release()


def _calibration_from_fields(path: Path, fields: dict) -> StereoCalibration:
    values = {}
    for name, aliases in MATRIX_NAMES.items():
        found = next((fields[a] for a in aliases if a in fields and fields[a] is not None), None)
        if found is None:
            raise InputError(f"--calibration {path}: no {name} (expected {', '.join(MATRIX_NAMES)} and image size)")
        values[name] = np.asarray(found, dtype=np.float64)
    expected = {"K1": (3, 3), "K2": (3, 3), "R": (3, 3)}
    for name, shape in expected.items():
        if values[name].shape != shape:
            raise InputError(f"--calibration {path}: {name} has shape {values[name].shape}, expected {shape}")
    if values["T"].size != 3:
        raise InputError(f"--calibration {path}: T has {values['T'].size} values, expected 3")
    for name in ("D1", "D2"):
        if values[name].size not in DISTORTION_SIZES:
            raise InputError(f"--calibration {path}: {name} has {values[name].size} coefficients, expected "
                             f"{', '.join(map(str, DISTORTION_SIZES))} (OpenCV's distortion models)")
    for name, value in values.items():
        if not np.all(np.isfinite(value)):
            raise InputError(f"--calibration {path}: {name} holds non-finite values")
    values["T"] = values["T"].reshape(3, 1)
    values["D1"], values["D2"] = values["D1"].reshape(1, -1), values["D2"].reshape(1, -1)
    rms = fields.get("rms")
    return StereoCalibration(image_size=_image_size(path, fields), units=str(fields.get("units", "")),
                             rms=float(rms) if rms is not None else None, **values)


def _image_size(path: Path, fields: dict) -> tuple[int, int]:
    for key in ("image_size", "imageSize"):
        if key in fields:
            size = np.asarray(fields[key]).ravel()
            if size.size == 2:
                return _positive_size(path, size[0], size[1])
    if "image_width" in fields and "image_height" in fields:
        return _positive_size(path, fields["image_width"], fields["image_height"])
    raise InputError(f"--calibration {path}: no image size (expected image_width and image_height, "
                     "or image_size: [width, height])")


def _positive_size(path: Path, width, height) -> tuple[int, int]:
    try:
        size = int(float(width)), int(float(height))
    except (TypeError, ValueError):
        size = (0, 0)
    if min(size) < 1 or max(size) > 65535:
        raise InputError(f"--calibration {path}: image size {width}x{height}, expected positive whole numbers of px")
    return size


def save_calibration(path: str | Path, calib: StereoCalibration) -> Path:
    """Write a calibration atomically: OpenCV FileStorage for .yaml/.yml/.xml, plain JSON for .json."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CALIBRATION_SUFFIXES:
        raise InputError(f"--out {path}: unknown calibration format {suffix!r} (expected .yaml, .yml, .xml or .json)")
    matrices = {"K1": calib.K1, "D1": calib.D1, "K2": calib.K2, "D2": calib.D2, "R": calib.R, "T": calib.T}
    with atomic_path(path) as tmp:
        if suffix == ".json":
            data = {k: np.asarray(v).tolist() for k, v in matrices.items()}
            data.update(image_width=calib.image_size[0], image_height=calib.image_size[1], units=calib.units)
            if calib.rms is not None:
                data["rms"] = calib.rms
            tmp.write_text(json.dumps(data, indent=2) + "\n")
        else:
            storage = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE)
            storage.write("image_width", int(calib.image_size[0]))
            storage.write("image_height", int(calib.image_size[1]))
            for name, matrix in matrices.items():
                storage.write(name, np.asarray(matrix, dtype=np.float64))
            storage.write("units", calib.units)
            if calib.rms is not None:
                storage.write("rms", float(calib.rms))
            storage.release()
    return path


class RectifiedGeometry:
    """What the stream loop reads from any rectifier: focal length and baseline of the rectified
    views from their projections ``P1``/``P2``, depth from ``Q``. Subclasses set ``P1``, ``P2``,
    ``Q`` and ``units``."""

    P1: np.ndarray
    P2: np.ndarray
    Q: np.ndarray
    units: str

    @property
    def focal_px(self) -> float:
        """Focal length of the rectified views, pixels."""
        return float(self.P1[0, 0])

    @property
    def baseline(self) -> float:
        """Baseline of the rectified pair, in ``units``."""
        return float(-self.P2[0, 3] / self.P2[0, 0])

    def depth_converter(self) -> "DepthConverter":
        return DepthConverter.from_q(self.Q, self.units)

    def q_metres(self) -> np.ndarray:
        """Q whose points come out in metres (point clouds and ROS messages are in metres)."""
        from toolkit.pointcloud import metres_per_unit, scale_q

        return scale_q(self.Q, metres_per_unit(self.units))


class Rectifier(RectifiedGeometry):
    """Undistorts and rectifies stereo frames with maps computed once.

    Args:
        calib: the stereo calibration.
        alpha: stereoRectify's free scaling: 0 keeps only valid pixels (zoomed in),
            1 keeps every source pixel (black borders), -1 lets OpenCV choose.

    Raises:
        InputError: a rig that is not side by side (vertical baseline), or left and right
            swapped (the right camera sits to the left: use --swap).
    """

    def __init__(self, calib: StereoCalibration, alpha: float = 0.0) -> None:
        self.calib = calib
        self.alpha = alpha
        self.units = calib.units
        size = tuple(int(v) for v in calib.image_size)
        try:
            R1, R2, P1, P2, Q, _, _ = cv2.stereoRectify(
                calib.K1, calib.D1, calib.K2, calib.D2, size, calib.R, calib.T,
                flags=cv2.CALIB_ZERO_DISPARITY, alpha=alpha)
        except cv2.error as exc:
            raise InputError(f"calibration: OpenCV cannot rectify with it ({opencv_reason(exc)})") from None
        self._check_layout(P2)
        self.R1, self.R2, self.P1, self.P2, self.Q = R1, R2, P1, P2, Q
        # Fixed-point maps: remap is about twice as fast with CV_16SC2 than with float maps.
        self.left_maps = cv2.initUndistortRectifyMap(calib.K1, calib.D1, R1, P1, size, cv2.CV_16SC2)
        self.right_maps = cv2.initUndistortRectifyMap(calib.K2, calib.D2, R2, P2, size, cv2.CV_16SC2)

    @staticmethod
    def _check_layout(P2: np.ndarray) -> None:
        if abs(P2[1, 3]) > abs(P2[0, 3]):
            raise InputError("calibration describes cameras one above the other; stereo-trt needs a "
                             "side-by-side (left/right) rig")
        if P2[0, 3] > 0:
            raise InputError("calibration puts the right camera to the left of the left one; "
                             "left and right are swapped: add --swap or swap the calibration")

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.calib.image_size)

    def rectify(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remap one pair into the rectified frame (rows of corresponding points line up).

        Raises:
            InputError: frames of another size than the calibration.
        """
        width, height = self.image_size
        if left.shape[:2] != (height, width) or right.shape[:2] != (height, width):
            raise InputError(
                f"frames are {left.shape[1]}x{left.shape[0]} but the calibration was made at {width}x{height}; "
                "capture at the calibrated size (--camera-size) or calibrate at this one"
            )
        left = cv2.remap(left, *self.left_maps, cv2.INTER_LINEAR)
        right = cv2.remap(right, *self.right_maps, cv2.INTER_LINEAR)
        return left, right


@dataclass(frozen=True)
class DepthConverter:
    """Depth from disparity in rectified source pixels: Z = f / (d / B + c).

    ``c`` is Q[3,3], zero for CALIB_ZERO_DISPARITY rectification, where Z = f B / d.
    Disparity must be in the pixels of the rectified source frame: runners return it so
    (``preprocess.restore_disparity`` multiplies by ``Geometry.disparity_scale`` when the
    frame was resized to the network size), so no further scaling belongs here.

    Attributes:
        focal_px: rectified focal length, pixels.
        baseline: rectified baseline, in ``units``.
        offset: Q[3,3] (principal point difference over baseline), 0 by default.
        units: unit of depth.
    """

    focal_px: float
    baseline: float
    offset: float = 0.0
    units: str = ""

    @classmethod
    def from_q(cls, Q: np.ndarray, units: str = "") -> "DepthConverter":
        """From the 4x4 reprojection matrix of ``cv2.stereoRectify``."""
        inv_baseline = Q[3, 2]
        if inv_baseline == 0:
            raise InputError("Q matrix has Q[3,2] = 0: no baseline, cannot compute depth")
        return cls(float(Q[2, 3]), float(1.0 / inv_baseline), float(Q[3, 3]), units)

    @classmethod
    def from_focal_baseline(cls, focal_px: float, baseline: float, units: str = "m") -> "DepthConverter":
        if focal_px <= 0 or baseline <= 0:
            raise InputError(f"--focal-px {focal_px} and --baseline {baseline} must both be positive")
        return cls(float(focal_px), float(baseline), 0.0, units)

    def depth(self, disparity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth for each pixel and the mask of pixels where it is defined (positive, finite)."""
        disparity = np.asarray(disparity, dtype=np.float32)
        w = disparity / np.float32(self.baseline) + np.float32(self.offset)
        valid = np.isfinite(w) & (w > 0)
        depth = np.full(disparity.shape, np.inf, dtype=np.float32)
        depth[valid] = np.float32(self.focal_px) / w[valid]
        return depth, valid
