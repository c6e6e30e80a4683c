"""calibrate-camera: a known baseline recovered from chessboard views rendered through a synthetic rig."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from stream_media import count_frames, write_video
from stream_rig import IMAGE_SIZE, board_poses, make_rig, render_board_pairs, render_plane, undistorted_grid
from toolkit.errors import CheckFailed, InputError
from toolkit.provenance import sidecar_path
from toolkit.stream import calibrate
from toolkit.stream.rectify import Rectifier, load_calibration

COLS, ROWS, SQUARE, BASELINE = 9, 6, 0.03, 0.12
BOARD = calibrate.Board("chessboard", COLS, ROWS, SQUARE)


@pytest.fixture(scope="module")
def rig():
    return make_rig(baseline=BASELINE)


@pytest.fixture(scope="module")
def board_pairs(rig):
    return render_board_pairs(rig, COLS, ROWS, SQUARE, count=10)


def named(pairs):
    return [(f"view{k}", left, right) for k, (left, right) in enumerate(pairs)]


def test_recovers_the_baseline_and_intrinsics(rig, board_pairs):
    views, size, read = calibrate.detect_views(named(board_pairs), calibrate.BoardDetector(BOARD))
    assert (len(views), size, read) == (10, IMAGE_SIZE, 10)
    result = calibrate.calibrate_stereo(views, size, BOARD)
    calib = result.calibration
    assert calib.baseline == pytest.approx(BASELINE, rel=0.02)
    assert calib.T[0, 0] < 0  # right camera to the right: x_right = R x_left + T
    assert np.allclose(calib.K1[:2, :3], rig.K1[:2, :3], atol=5.0)
    assert calib.rms < 0.5 and result.used == 10
    assert all(not view.rejected for view in result.views)


def test_a_bad_view_is_rejected_and_the_rest_recalibrated(board_pairs):
    views, size, _ = calibrate.detect_views(named(board_pairs), calibrate.BoardDetector(BOARD))
    # Corrupt one view as a motion-blurred or mis-detected board would: corners off by pixels.
    rng = np.random.default_rng(0)
    views[3].right_points = views[3].right_points + rng.normal(0, 4.0, views[3].right_points.shape).astype(np.float32)
    result = calibrate.calibrate_stereo(views, size, BOARD, max_view_rms=1.0)
    assert [v.rejected for v in result.views].count(True) == 1 and result.views[3].rejected
    assert result.views[3].right_rms > 1.0
    assert result.calibration.baseline == pytest.approx(BASELINE, rel=0.02)
    assert result.used == 9


def test_too_few_views_is_a_failed_check(board_pairs):
    views, size, _ = calibrate.detect_views(named(board_pairs[:3]), calibrate.BoardDetector(BOARD))
    with pytest.raises(CheckFailed, match="found in 3 pair"):
        calibrate.calibrate_stereo(views, size, BOARD)
    views, size, _ = calibrate.detect_views(named(board_pairs), calibrate.BoardDetector(BOARD))
    with pytest.raises(CheckFailed, match="views have a reprojection RMS under --max-view-rms 1e-06"):
        calibrate.calibrate_stereo(views, size, BOARD, max_view_rms=1e-6)


def test_pairs_without_the_board_are_skipped(board_pairs):
    blank = np.full_like(board_pairs[0][0], 150)
    views, _, read = calibrate.detect_views(named(board_pairs[:2]) + [("blank", blank, blank)],
                                            calibrate.BoardDetector(BOARD))
    assert read == 3 and [v.name for v in views] == ["view0", "view1"]


def test_calibrate_camera_from_a_side_by_side_video_writes_file_sidecar_and_preview(tmp_path, board_pairs):
    # Each view held for two frames, as a hand-held board would be; every=2 takes one of each.
    frames = [np.hstack(pair) for pair in board_pairs for _ in range(2)]
    video = write_video(tmp_path / "board.mp4", frames)
    assert count_frames(video) == 20
    out, preview = tmp_path / "cal" / "stereo.yaml", tmp_path / "cal" / "preview.png"
    result = calibrate.calibrate_camera([str(video)], BOARD, out, preview, every=2)
    assert result.pairs_read == 10 and result.used >= 8
    loaded = load_calibration(out)
    assert loaded.baseline == pytest.approx(BASELINE, rel=0.02)
    assert loaded.units == "m" and loaded.image_size == IMAGE_SIZE
    record = json.loads(sidecar_path(out).read_text())
    assert record["views_used"] == result.used and len(record["per_view"]) == len(result.views)
    image = cv2.imread(str(preview))
    assert image.shape == (IMAGE_SIZE[1], 2 * IMAGE_SIZE[0], 3)
    # the preview's guide lines are pure green rows
    assert (image[12, 4:-4, 1] > 200).all() and (image[12, 4:-4, 2] < 60).all()


def test_preview_rows_line_up(rig, board_pairs):
    # In the preview, the same board corner lands on one row in both halves.
    result = calibrate.calibrate_stereo(
        calibrate.detect_views(named(board_pairs), calibrate.BoardDetector(BOARD))[0], IMAGE_SIZE, BOARD)
    rectifier = Rectifier(result.calibration)
    left, right = rectifier.rectify(*board_pairs[0])
    detector = calibrate.BoardDetector(BOARD)
    _, left_pts = detector.detect(cv2.cvtColor(left, cv2.COLOR_RGB2GRAY))
    _, right_pts = detector.detect(cv2.cvtColor(right, cv2.COLOR_RGB2GRAY))
    assert np.abs(left_pts[:, 0, 1] - right_pts[:, 0, 1]).max() < 0.5


def test_charuco_board(rig):
    detector = calibrate.BoardDetector(calibrate.Board("charuco", 7, 5, 0.05, 0.036, "DICT_4X4_50"))
    square_px, margin = 40, 40
    texture = detector.charuco.generateImage((7 * square_px + 2 * margin, 5 * square_px + 2 * margin),
                                             marginSize=margin, borderBits=1)
    grids = undistorted_grid(rig.K1, rig.D1, rig.size), undistorted_grid(rig.K2, rig.D2, rig.size)
    centre = np.array([7 * 0.05 / 2, 5 * 0.05 / 2, 0.0])
    pairs = []
    for k, (R_board, t_centre) in enumerate(board_poses(10, seed=1)):
        t_board = t_centre - R_board @ centre
        render = lambda K, grid, R, t: render_plane(texture, margin - 0.5, 0.05 / square_px, K, grid, R, t)  # noqa: E731
        pairs.append((f"view{k}", render(rig.K1, grids[0], R_board, t_board),
                      render(rig.K2, grids[1], rig.R @ R_board, rig.R @ t_board + rig.T.ravel())))
    views, size, _ = calibrate.detect_views(pairs, detector)
    result = calibrate.calibrate_stereo(views, size, detector.board)
    assert result.calibration.baseline == pytest.approx(BASELINE, rel=0.02)


def test_board_and_source_errors(tmp_path):
    with pytest.raises(InputError, match=r"--board '9'"):
        calibrate.parse_board_size("9")
    assert calibrate.parse_board_size("9x6") == (9, 6)
    with pytest.raises(InputError, match="marker must be smaller than the square"):
        calibrate.BoardDetector(calibrate.Board("charuco", 7, 5, 0.05, 0.06))
    with pytest.raises(InputError, match="not an ArUco dictionary"):
        calibrate.BoardDetector(calibrate.Board("charuco", 7, 5, 0.05, 0.03, "DICT_NOPE"))
    with pytest.raises(InputError, match="is a live source; record a video"):
        list(calibrate.read_board_pairs(["0"]))
