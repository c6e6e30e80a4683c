"""Rectification and stereo geometry from a pair of ``sensor_msgs/CameraInfo`` messages.

A ROS stereo driver publishes, for each camera, K and D (the raw camera), R (the
rectifying rotation) and P (the rectified projection; the right camera's P[0,3] is
-f * baseline, baseline in metres). That is everything ``image_proc`` needs to rectify,
and everything the toolkit's ``Rectifier`` computes from a calibration file: the maps are
``initUndistortRectifyMap(K, D, R, P)`` per camera, Q follows from the two P matrices.
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.errors import InputError
from toolkit.pointcloud import q_from_projections
from toolkit.stream.rectify import RectifiedGeometry

PINHOLE_MODELS = ("plumb_bob", "rational_polynomial", "")
FISHEYE_MODELS = ("equidistant",)


def _matrices(info, topic: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    R = np.asarray(info.r, dtype=np.float64).reshape(3, 3)
    P = np.asarray(info.p, dtype=np.float64).reshape(3, 4)
    D = np.asarray(info.d, dtype=np.float64).ravel()
    if K[0, 0] <= 0 or P[0, 0] <= 0:
        raise InputError(f"topic {topic}: camera_info without a calibration (K or P is zero); "
                         "calibrate the camera, or give --calibration")
    return K, D, R, P


class CameraInfoRectifier(RectifiedGeometry):
    """Rectifies frames and gives Q and depth from a left and a right CameraInfo.

    Has the interface the stream loop uses from ``rectify.Rectifier`` (``rectify``,
    ``depth_converter``, ``Q``, ``focal_px``, ``baseline``).

    Args:
        left, right: the CameraInfo messages.
        topics: their topic names, for messages.
        remap: False when the image topics are already rectified (``image_rect``; the
            camera_info still describes the raw camera): only the geometry is used.

    Raises:
        InputError: no calibration in a message, left and right of different sizes, a
            distortion model OpenCV cannot undo, or a right camera not to the right.
    """

    def __init__(self, left, right, topics: tuple[str, str] = ("left camera_info", "right camera_info"),
                 remap: bool = True) -> None:
        self.topics = topics
        (K1, D1, R1, P1), (K2, D2, R2, P2) = _matrices(left, topics[0]), _matrices(right, topics[1])
        self.size = (int(left.width), int(left.height))
        if self.size != (int(right.width), int(right.height)):
            raise InputError(f"topics {topics[0]} and {topics[1]}: camera_info sizes differ "
                             f"({left.width}x{left.height} vs {right.width}x{right.height})")
        if P2[0, 3] >= 0:
            raise InputError(f"topic {topics[1]}: P[0,3] = {P2[0, 3]} puts the right camera at or left of the left "
                             "one (expected -focal * baseline < 0); are left and right swapped?")
        self.P1, self.P2 = P1, P2
        self.Q = q_from_projections(P1, P2)
        self.units = "m"
        self.left_maps = self.right_maps = None
        # Identity maps (no distortion, no rotation, P = K: the usual camera_info of rectified
        # topics) would only cost a remap per frame.
        if remap and not (_is_identity(K1, D1, R1, P1) and _is_identity(K2, D2, R2, P2)):
            self.left_maps = _maps(left.distortion_model, K1, D1, R1, P1, self.size, topics[0])
            self.right_maps = _maps(right.distortion_model, K2, D2, R2, P2, self.size, topics[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return self.size

    def rectify(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Remap one pair (or pass it through for rectified topics).

        Raises:
            InputError: frames of another size than the camera_info.
        """
        width, height = self.size
        if left.shape[:2] != (height, width) or right.shape[:2] != (height, width):
            raise InputError(f"frames are {left.shape[1]}x{left.shape[0]} but {self.topics[0]} describes "
                             f"{width}x{height} images")
        if self.left_maps is None:
            return left, right
        return (cv2.remap(left, *self.left_maps, cv2.INTER_LINEAR),
                cv2.remap(right, *self.right_maps, cv2.INTER_LINEAR))


def _is_identity(K, D, R, P) -> bool:
    return not np.any(D) and np.allclose(R, np.eye(3)) and np.allclose(P[:, :3], K)


def _maps(model: str, K, D, R, P, size, topic: str):
    if model in FISHEYE_MODELS:
        return cv2.fisheye.initUndistortRectifyMap(K, D[:4].reshape(4, 1), R, P[:, :3], size, cv2.CV_16SC2)
    if model not in PINHOLE_MODELS:
        raise InputError(f"topic {topic}: distortion model {model!r} is not supported "
                         f"(expected one of {', '.join(m for m in PINHOLE_MODELS + FISHEYE_MODELS if m)})")
    return cv2.initUndistortRectifyMap(K, D if D.size else None, R, P[:, :3], size, cv2.CV_16SC2)
