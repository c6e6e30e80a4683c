"""A synthetic calibrated stereo rig: known intrinsics, distortion, R and T, and views rendered through it.

Used by the rectification and calibration tests: what comes out of the code under test
is compared with the geometry the images were rendered from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.stream.rectify import StereoCalibration

IMAGE_SIZE = (640, 480)  # width, height


@dataclass
class Rig:
    """Left camera at the origin; x_right = R x_left + T (OpenCV's stereoCalibrate convention)."""

    K1: np.ndarray
    D1: np.ndarray
    K2: np.ndarray
    D2: np.ndarray
    R: np.ndarray
    T: np.ndarray
    size: tuple = IMAGE_SIZE

    def calibration(self) -> StereoCalibration:
        return StereoCalibration(self.K1, self.D1, self.K2, self.D2, self.R, self.T, self.size, "m")

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project (N, 3) left-camera points into both distorted images: two (N, 2) arrays."""
        zero = np.zeros(3)
        left, _ = cv2.projectPoints(points, zero, zero, self.K1, self.D1)
        rvec, _ = cv2.Rodrigues(self.R)
        right, _ = cv2.projectPoints(points, rvec, self.T.ravel(), self.K2, self.D2)
        return left.reshape(-1, 2), right.reshape(-1, 2)


def make_rig(baseline: float = 0.12, distortion: bool = True) -> Rig:
    """A slightly imperfect rig: different focal lengths and principal points, a small rotation."""
    K1 = np.array([[500.0, 0, 322.0], [0, 501.0, 236.0], [0, 0, 1]])
    K2 = np.array([[505.0, 0, 316.0], [0, 504.0, 244.0], [0, 0, 1]])
    D1 = np.array([[-0.08, 0.02, 0.001, -0.0005, 0.0]]) if distortion else np.zeros((1, 5))
    D2 = np.array([[-0.06, 0.015, -0.0008, 0.0006, 0.0]]) if distortion else np.zeros((1, 5))
    R, _ = cv2.Rodrigues(np.array([0.01, -0.03, 0.008]))
    T = np.array([[-baseline], [0.002], [0.001]])
    return Rig(K1, D1, K2, D2, R, T)


def chessboard_texture(cols: int, rows: int, square_px: int) -> tuple[np.ndarray, float]:
    """A chessboard of (cols+1) x (rows+1) squares with a one-square white margin, gray uint8.

    Returns:
        (texture, origin): ``origin`` is the texture coordinate (x and y) of inner corner (0, 0)
        in OpenCV's pixel-centre convention.
    """
    squares_x, squares_y = cols + 1, rows + 1
    texture = np.full(((squares_y + 2) * square_px, (squares_x + 2) * square_px), 255, np.uint8)
    for j in range(squares_y):
        for i in range(squares_x):
            if (i + j) % 2 == 0:
                y0, x0 = (j + 1) * square_px, (i + 1) * square_px
                texture[y0:y0 + square_px, x0:x0 + square_px] = 0
    return texture, 2 * square_px - 0.5


def undistorted_grid(K: np.ndarray, D: np.ndarray, size: tuple) -> np.ndarray:
    """For each pixel of a distorted image, where it lands without distortion: (H, W, 2)."""
    width, height = size
    grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)), -1)
    return cv2.undistortPoints(grid.reshape(-1, 1, 2), K, D, P=K).reshape(height, width, 2)


def render_plane(texture: np.ndarray, origin: float, px_to_board: float, K: np.ndarray, grid: np.ndarray,
                 R_board: np.ndarray, t_board: np.ndarray) -> np.ndarray:
    """Render a planar texture posed at (R_board, t_board) through a camera with distortion, RGB uint8.

    The texture maps to the board plane by X = (u - origin) * px_to_board, the plane to the
    undistorted image by the homography K [r1 r2 t]; ``grid`` (from ``undistorted_grid``)
    carries the lens distortion, so each output pixel samples the texture where its ray
    meets the board.
    """
    A = np.array([[px_to_board, 0, -origin * px_to_board], [0, px_to_board, -origin * px_to_board], [0, 0, 1]])
    H = K @ np.column_stack([R_board[:, 0], R_board[:, 1], t_board.ravel()]) @ A
    homogeneous = np.concatenate([grid, np.ones(grid.shape[:2] + (1,))], -1) @ np.linalg.inv(H).T
    src = (homogeneous[..., :2] / homogeneous[..., 2:3]).astype(np.float32)
    gray = cv2.remap(texture, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=150)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def board_poses(count: int, seed: int = 0, center_x: float = 0.06) -> list[tuple[np.ndarray, np.ndarray]]:
    """Board poses (R, t of the board's centre) spread over tilts and distances, seen by both cameras."""
    rng = np.random.default_rng(seed)
    poses = []
    for k in range(count):
        tilt = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(-0.3, 0.3)])
        R, _ = cv2.Rodrigues(tilt)
        t = np.array([center_x + rng.uniform(-0.08, 0.08), rng.uniform(-0.06, 0.06), rng.uniform(0.7, 1.0)])
        poses.append((R, t))
    return poses


def render_board_pairs(rig: Rig, cols: int, rows: int, square: float, count: int, square_px: int = 24,
                       seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render ``count`` left/right views of a chessboard with ``square``-sized squares through ``rig``."""
    texture, origin = chessboard_texture(cols, rows, square_px)
    px_to_board = square / square_px
    centre = np.array([(cols - 1) * square / 2, (rows - 1) * square / 2, 0.0])
    grids = undistorted_grid(rig.K1, rig.D1, rig.size), undistorted_grid(rig.K2, rig.D2, rig.size)
    pairs = []
    for R_board, t_centre in board_poses(count, seed):
        t_board = t_centre - R_board @ centre  # the board's corner (0, 0) sits at t_board
        left = render_plane(texture, origin, px_to_board, rig.K1, grids[0], R_board, t_board)
        right = render_plane(texture, origin, px_to_board, rig.K2, grids[1], rig.R @ R_board,
                             rig.R @ t_board + rig.T.ravel())
        pairs.append((left, right))
    return pairs
