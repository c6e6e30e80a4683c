"""Stereo calibration from views of a chessboard (or ChArUco board): ``stereo-trt calibrate-camera``.

Steps: find the board's corners in each left/right pair (pairs where either side misses
the board are skipped), calibrate each camera, then the pair with the intrinsics fixed
(``stereoCalibrate``), reject the views whose reprojection RMS exceeds a threshold and
calibrate once more without them. The result is written as an OpenCV FileStorage YAML/XML
or JSON file (what ``run --calibration`` reads) with a provenance sidecar, plus a
rectified preview with horizontal lines: a corresponding point must sit on one line in
both halves.

Board sizes are given as inner corners for a chessboard (a 10x7-square board has 9x6)
and as squares for ChArUco (OpenCV's own convention for each).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from toolkit import provenance
from toolkit.data import io
from toolkit.errors import CheckFailed, DependencyError, InputError
from toolkit.outputs import check_output_file
from toolkit.preprocess import as_rgb8
from toolkit.stream import sources
from toolkit.stream.rectify import CALIBRATION_SUFFIXES, Rectifier, StereoCalibration, save_calibration

MIN_VIEWS = 5
PREVIEW_SUFFIXES = tuple(s for s in io.IMAGE_SUFFIXES if s != ".pgm")  # .pgm holds gray only
MIN_CHARUCO_CORNERS = 6
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
CHESSBOARD_FLAGS = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
# k3 is left at zero: with a few dozen views of an ordinary lens it fits noise, not optics.
INTRINSIC_FLAGS = cv2.CALIB_FIX_K3


@dataclass(frozen=True)
class Board:
    """The calibration target.

    Attributes:
        kind: "chessboard" or "charuco".
        cols, rows: inner corners (chessboard) or squares (ChArUco) along x and y.
        square: side of one square, in ``units``; sets the units of the baseline.
        marker: ChArUco marker side, in ``units``.
        dictionary: ChArUco ArUco dictionary name, e.g. "DICT_4X4_50".
        units: unit of ``square`` ("m" by default).
    """

    kind: str = "chessboard"
    cols: int = 9
    rows: int = 6
    square: float = 0.025
    marker: float | None = None
    dictionary: str = "DICT_4X4_50"
    units: str = "m"

    def object_points(self) -> np.ndarray:
        """Chessboard inner corners on the z = 0 plane, row by row, (N, 3) float32."""
        grid = np.mgrid[0:self.cols, 0:self.rows].T.reshape(-1, 2)
        return np.hstack([grid * self.square, np.zeros((len(grid), 1))]).astype(np.float32)


def parse_board_size(text: str) -> tuple[int, int]:
    """``"9x6"`` -> (9, 6).

    Raises:
        InputError: not COLSxROWS with both at least 2.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not match or min(int(match.group(1)), int(match.group(2))) < 2:
        raise InputError(f"--board {text!r}: expected COLSxROWS with both at least 2, for example 9x6")
    return int(match.group(1)), int(match.group(2))


@dataclass
class BoardView:
    """One pair in which the board was found on both sides.

    Attributes:
        name: where the pair came from (file stem or frame number).
        object_points: (N, 3) float32 board points.
        left_points, right_points: (N, 1, 2) float32 image points, same order.
    """

    name: str
    object_points: np.ndarray
    left_points: np.ndarray
    right_points: np.ndarray


@dataclass
class ViewError:
    """Reprojection RMS of one view in the stereo solution, px."""

    name: str
    left_rms: float
    right_rms: float
    rejected: bool = False

    @property
    def worst(self) -> float:
        return max(self.left_rms, self.right_rms)


@dataclass
class CalibrationResult:
    """What ``calibrate_stereo`` found.

    Attributes:
        calibration: the stereo calibration (rms is the final stereo RMS).
        views: per-view errors of the first solution, rejected ones marked.
        left_rms, right_rms: per-camera RMS of the final solution, px.
        pairs_read: pairs looked at; views holds those where the board was found.
    """

    calibration: StereoCalibration
    views: list[ViewError] = field(default_factory=list)
    left_rms: float = float("nan")
    right_rms: float = float("nan")
    pairs_read: int = 0

    @property
    def used(self) -> int:
        return sum(not v.rejected for v in self.views)


class BoardDetector:
    """Finds board points in grayscale images; ChArUco needs OpenCV >= 4.7's ``CharucoDetector``.

    Raises:
        DependencyError: ChArUco on an OpenCV without the new aruco API.
        InputError: an unknown ArUco dictionary or a missing marker size.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        if board.kind == "chessboard":
            self.points = board.object_points()
            return
        if board.kind != "charuco":
            raise InputError(f"--board-type {board.kind!r}: expected chessboard or charuco")
        aruco = getattr(cv2, "aruco", None)
        if aruco is None or not hasattr(aruco, "CharucoDetector"):
            raise DependencyError(f"ChArUco boards need OpenCV >= 4.7 (cv2.aruco.CharucoDetector); "
                                  f"this is OpenCV {cv2.__version__}: use a chessboard or calibrate on a desktop")
        if not hasattr(aruco, board.dictionary):
            raise InputError(f"--dictionary {board.dictionary}: not an ArUco dictionary (e.g. DICT_4X4_50, DICT_5X5_100)")
        if board.marker is None or not 0 < board.marker < board.square:
            raise InputError(f"--marker {board.marker}: a ChArUco marker must be smaller than the square ({board.square})")
        dictionary = aruco.getPredefinedDictionary(getattr(aruco, board.dictionary))
        self.charuco = aruco.CharucoBoard((board.cols, board.rows), board.square, board.marker, dictionary)
        self.detector = aruco.CharucoDetector(self.charuco)
        self.points = np.asarray(self.charuco.getChessboardCorners(), dtype=np.float32)

    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, image points (N, 1, 2)) of the board corners found, or None."""
        if self.board.kind == "chessboard":
            found, corners = cv2.findChessboardCorners(gray, (self.board.cols, self.board.rows), flags=CHESSBOARD_FLAGS)
            if not found:
                return None
            corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1), SUBPIX_CRITERIA)
            return np.arange(len(corners)), corners.reshape(-1, 1, 2).astype(np.float32)
        corners, ids, _, _ = self.detector.detectBoard(gray)
        if ids is None or len(ids) < MIN_CHARUCO_CORNERS:
            return None
        return ids.ravel(), corners.reshape(-1, 1, 2).astype(np.float32)

    def detect_pair(self, name: str, left: np.ndarray, right: np.ndarray) -> BoardView | None:
        """The board points seen in both views, or None when either side misses the board."""
        found = [self.detect(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)) for image in (left, right)]
        if found[0] is None or found[1] is None:
            return None
        (left_ids, left_pts), (right_ids, right_pts) = found
        common, li, ri = np.intersect1d(left_ids, right_ids, return_indices=True)
        if len(common) < MIN_CHARUCO_CORNERS:
            return None
        return BoardView(name, self.points[common], left_pts[li], right_pts[ri])


def _calibrate_once(views: Sequence[BoardView], image_size: tuple[int, int]):
    objects = [v.object_points for v in views]
    lefts, rights = [v.left_points for v in views], [v.right_points for v in views]
    left_rms, K1, D1, _, _ = cv2.calibrateCamera(objects, lefts, image_size, None, None, flags=INTRINSIC_FLAGS)
    right_rms, K2, D2, _, _ = cv2.calibrateCamera(objects, rights, image_size, None, None, flags=INTRINSIC_FLAGS)
    # The number of outputs differs between OpenCV versions (rvecs/tvecs appeared in 4.x);
    # the leading ones and the per-view errors at the end are stable.
    result = cv2.stereoCalibrateExtended(objects, lefts, rights, K1, D1, K2, D2, image_size, None, None,
                                         flags=cv2.CALIB_FIX_INTRINSIC)
    rms, R, T, per_view = result[0], result[5], result[6], np.asarray(result[-1]).reshape(-1, 2)
    return rms, (K1, D1, K2, D2, R, T), left_rms, right_rms, per_view


def calibrate_stereo(views: Sequence[BoardView], image_size: tuple[int, int], board: Board,
                     max_view_rms: float = 1.0, min_views: int = MIN_VIEWS) -> CalibrationResult:
    """Calibrate both cameras and the pair; drop views above ``max_view_rms`` and solve again.

    Args:
        views: board detections, one per pair.
        image_size: (width, height) of every image.
        board: the target (for the units).
        max_view_rms: reject views whose left or right RMS exceeds this, px.
        min_views: fewest views to calibrate from.

    Raises:
        CheckFailed: fewer than ``min_views`` views, before or after rejection.
    """
    if len(views) < min_views:
        raise CheckFailed(f"the board was found in {len(views)} pair(s); calibration needs at least {min_views} "
                          "(show the whole board to both cameras, at several angles and distances)")
    rms, params, left_rms, right_rms, per_view = _calibrate_once(views, image_size)
    errors = [ViewError(v.name, float(e[0]), float(e[1])) for v, e in zip(views, per_view)]
    for error in errors:
        error.rejected = error.worst > max_view_rms
    kept = [v for v, e in zip(views, errors) if not e.rejected]
    if len(kept) < min_views:
        raise CheckFailed(f"only {len(kept)} of {len(views)} views have a reprojection RMS under --max-view-rms "
                          f"{max_view_rms} px; calibration needs at least {min_views} (sharper images, a flat board, "
                          "or a higher threshold)")
    if len(kept) < len(views):
        rms, params, left_rms, right_rms, _ = _calibrate_once(kept, image_size)
    K1, D1, K2, D2, R, T = params
    calibration = StereoCalibration(K1, D1, K2, D2, R, T.reshape(3, 1), tuple(image_size), board.units, float(rms))
    return CalibrationResult(calibration, errors, float(left_rms), float(right_rms))


def read_board_pairs(texts: Sequence[str], every: int = 1) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Pairs to calibrate from: a folder of pairs, a side-by-side video or two videos.

    Args:
        texts: one folder or video (side-by-side), or two videos (left, right).
        every: from videos, take one frame in ``every`` (a folder's pairs are all taken).

    Raises:
        InputError: a live camera (record a video of the board first), missing paths.
    """
    specs = [sources.parse_source(t) for t in texts]
    live = [s.text for s in specs if s.live]
    if live:
        raise InputError(f"calibrate-camera: {live[0]} is a live source; record a video or image pairs of the "
                         "board first and calibrate from those")
    with sources.open_source(texts) as source:
        # Image pairs are chosen views already; thinning applies to video frames only.
        step = 1 if isinstance(source, sources.FolderSource) else every
        while True:
            frame = source.read()
            if frame is None:
                return
            if frame.index % step == 0:
                name = _pair_name(source, frame.index)
                # Mono stereo cameras deliver grayscale (or 16-bit) boards: one 8-bit RGB form for detection and preview.
                yield name, as_rgb8(frame.left, f"{name} left"), as_rgb8(frame.right, f"{name} right")


def _pair_name(source: sources.StereoSource, index: int) -> str:
    if isinstance(source, sources.FolderSource):
        return str(source.pairs[index].name)
    return f"frame{index:05d}"


def detect_views(pairs: Iterable[tuple[str, np.ndarray, np.ndarray]], detector: BoardDetector,
                 max_views: int | None = None) -> tuple[list[BoardView], tuple[int, int], int]:
    """Detect the board in each pair; returns (views, image size (w, h), pairs read).

    Raises:
        InputError: pairs of different sizes, or no pairs at all.
    """
    views, size, read = [], None, 0
    for name, left, right in pairs:
        read += 1
        this = (left.shape[1], left.shape[0])
        if size is None:
            size = this
        elif this != size or right.shape[:2] != left.shape[:2]:
            raise InputError(f"{name}: images are {this[0]}x{this[1]}, the first pair was {size[0]}x{size[1]}; "
                             "calibrate from images of one size")
        view = detector.detect_pair(name, left, right)
        if view is not None:
            views.append(view)
            if max_views is not None and len(views) >= max_views:
                break
    if size is None:
        raise InputError("calibrate-camera: no image pairs were read")
    return views, size, read


def draw_preview(rectifier: Rectifier, left: np.ndarray, right: np.ndarray, spacing: int = 24) -> np.ndarray:
    """Rectified left | right with horizontal lines every ``spacing`` px: a point must sit on one line in both."""
    rect_left, rect_right = rectifier.rectify(left, right)
    preview = np.ascontiguousarray(np.hstack([rect_left, rect_right]))
    for y in range(spacing // 2, preview.shape[0], spacing):
        cv2.line(preview, (0, y), (preview.shape[1] - 1, y), (0, 255, 0), 1, cv2.LINE_AA)
    return preview


def calibrate_camera(texts: Sequence[str], board: Board, out: str | Path, preview: str | Path | None = None,
                     max_view_rms: float = 1.0, every: int = 1, max_views: int | None = None,
                     alpha: float = 0.0) -> CalibrationResult:
    """The ``calibrate-camera`` command as a function: read, detect, calibrate, write.

    Args:
        texts: one folder of pairs or side-by-side video, or two videos (left, right).
        board: the target.
        out: calibration file to write (.yaml/.yml/.xml/.json); a ``.json`` provenance sidecar goes beside it.
        preview: where to write the rectified preview image (None: none).
        max_view_rms: reject views above this reprojection RMS, px.
        every: take one video frame in ``every``.
        max_views: stop reading after this many views with the board found.
        alpha: stereoRectify free scaling for the preview.

    Returns:
        The calibration result (also written to ``out``).
    """
    check_output_file(out, "--out", suffixes=CALIBRATION_SUFFIXES, inputs=texts)
    if preview is not None:
        check_output_file(preview, "--preview", suffixes=PREVIEW_SUFFIXES, inputs=[*texts, out])
    detector = BoardDetector(board)
    views, size, read = detect_views(read_board_pairs(texts, every), detector, max_views)
    result = calibrate_stereo(views, size, board, max_view_rms)
    result.pairs_read = read
    calibration = result.calibration
    rectifier = Rectifier(calibration, alpha)
    image = None
    if preview is not None:
        first = next(v.name for v in views if v.name in {e.name for e in result.views if not e.rejected})
        image = draw_preview(rectifier, *_find_pair(texts, every, first))
    sidecar = provenance.sidecar_path(out)
    # All or nothing: the three files are renamed into place only once all three are written.
    with contextlib.ExitStack() as stack:
        tmp_out = stack.enter_context(provenance.atomic_path(out))
        tmp_sidecar = stack.enter_context(provenance.atomic_path(sidecar))
        if image is not None:
            io.write_image(stack.enter_context(provenance.atomic_path(preview)), image)
        save_calibration(tmp_out, calibration)
        provenance.write_json(tmp_sidecar, provenance.record(
            artifact="stereo calibration", sources=list(texts), board=board.__dict__, image_size=list(size),
            pairs_read=read, views_found=len(views), views_used=result.used, max_view_rms=max_view_rms,
            rms=calibration.rms, left_rms=result.left_rms, right_rms=result.right_rms, baseline=calibration.baseline,
            units=calibration.units, per_view=[e.__dict__ for e in result.views]))
    return result


def _find_pair(texts: Sequence[str], every: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    # Read again rather than keep every image in memory during detection.
    for pair_name, left, right in read_board_pairs(texts, every):
        if pair_name == name:
            return left, right
    raise InputError(f"calibrate-camera: pair {name} vanished while calibrating")
