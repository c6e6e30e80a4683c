"""Calibration files, rectification on a synthetic rig with known R and T, depth from disparity."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from stream_rig import IMAGE_SIZE, make_rig
from toolkit import preprocess
from toolkit.errors import InputError
from toolkit.stream.rectify import DepthConverter, Rectifier, load_calibration, save_calibration

# Points in front of the rig (left camera frame, metres), spread over the field of view and depth.
POINTS = np.array([
    [-0.5, -0.35, 1.6], [0.4, -0.3, 1.2], [0.0, 0.0, 2.5], [-0.3, 0.25, 1.0],
    [0.6, 0.4, 2.2], [-0.9, 0.1, 3.0], [0.25, 0.5, 1.8], [0.9, -0.5, 2.8],
])


def blob_image(point: np.ndarray, sigma: float = 1.6) -> np.ndarray:
    """A dark RGB image with one Gaussian spot centred at ``point`` (x, y), sub-pixel exact."""
    width, height = IMAGE_SIZE
    xs, ys = np.meshgrid(np.arange(width), np.arange(height))
    spot = 250.0 * np.exp(-((xs - point[0]) ** 2 + (ys - point[1]) ** 2) / (2 * sigma ** 2))
    return np.repeat(np.round(spot).astype(np.uint8)[:, :, None], 3, axis=2)


def centroid(image: np.ndarray) -> np.ndarray:
    weights = image[:, :, 0].astype(np.float64)
    weights[weights < 20] = 0  # the spot only, not interpolation dust
    ys, xs = np.indices(weights.shape)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def test_rectified_correspondences_share_a_row_and_give_the_true_depth():
    rig = make_rig(baseline=0.12, distortion=True)
    rectifier = Rectifier(rig.calibration(), alpha=0.0)
    depth = rectifier.depth_converter()
    left_px, right_px = rig.project(POINTS)
    for point, left, right in zip(POINTS, left_px, right_px):
        rect_left, rect_right = rectifier.rectify(blob_image(left), blob_image(right))
        (xl, yl), (xr, yr) = centroid(rect_left), centroid(rect_right)
        assert abs(yl - yr) < 0.5, f"rows differ by {abs(yl - yr):.3f} px for {point}"
        # Depth along the rectified left camera's axis, from the disparity of the spot
        z_true = (rectifier.R1 @ point)[2]
        z, valid = depth.depth(np.array([[xl - xr]], dtype=np.float32))
        assert valid[0, 0] and z[0, 0] == pytest.approx(z_true, rel=0.01)
    assert rectifier.baseline == pytest.approx(0.12, rel=1e-3)


def test_unrectified_rows_do_differ_on_this_rig():
    # Guards the test above: without rectification the rig's rotation and distortion move rows apart.
    left_px, right_px = make_rig().project(POINTS)
    assert np.abs(left_px[:, 1] - right_px[:, 1]).max() > 2


def test_rectify_refuses_frames_of_another_size():
    rectifier = Rectifier(make_rig().calibration())
    frame = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(InputError, match=r"frames are 320x240 but the calibration was made at 640x480"):
        rectifier.rectify(frame, frame)


def test_swapped_and_vertical_rigs_are_refused():
    swapped = make_rig()
    swapped.T = -swapped.T
    with pytest.raises(InputError, match="left and right are swapped: add --swap"):
        Rectifier(swapped.calibration())
    vertical = make_rig()
    vertical.T = np.array([[0.001], [-0.12], [0.0]])
    with pytest.raises(InputError, match="one above the other"):
        Rectifier(vertical.calibration())


@pytest.mark.parametrize("suffix", [".yaml", ".xml", ".json"])
def test_calibration_file_round_trip(tmp_path, suffix):
    calib = make_rig().calibration()
    calib.rms = 0.21
    path = save_calibration(tmp_path / f"stereo{suffix}", calib)
    loaded = load_calibration(path)
    for name in ("K1", "D1", "K2", "D2", "R", "T"):
        assert np.allclose(getattr(loaded, name), getattr(calib, name)), name
    assert loaded.image_size == IMAGE_SIZE and loaded.units == "m" and loaded.rms == pytest.approx(0.21)


def test_opencv_sample_names_and_image_size_sequence(tmp_path):
    # OpenCV's stereo_calib sample names the intrinsics M1/M2; image size as a [w, h] sequence.
    rig = make_rig()
    path = tmp_path / "opencv.yml"
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for name, value in (("M1", rig.K1), ("D1", rig.D1), ("M2", rig.K2), ("D2", rig.D2), ("R", rig.R), ("T", rig.T)):
        storage.write(name, value)
    storage.startWriteStruct("image_size", cv2.FileNode_SEQ)
    for value in IMAGE_SIZE:
        storage.write("", value)
    storage.endWriteStruct()
    storage.release()
    loaded = load_calibration(path)
    assert np.allclose(loaded.K2, rig.K2) and loaded.image_size == IMAGE_SIZE


def test_json_with_opencv_matrix_objects(tmp_path):
    rig = make_rig()
    matrix = lambda m: {"rows": m.shape[0], "cols": m.shape[1], "data": m.ravel().tolist()}  # noqa: E731
    data = {"K1": matrix(rig.K1), "D1": rig.D1.ravel().tolist(), "K2": matrix(rig.K2), "D2": rig.D2.ravel().tolist(),
            "R": matrix(rig.R), "T": rig.T.ravel().tolist(), "image_size": list(IMAGE_SIZE)}
    (tmp_path / "c.json").write_text(json.dumps(data))
    assert np.allclose(load_calibration(tmp_path / "c.json").R, rig.R)


def test_calibration_file_errors(tmp_path):
    with pytest.raises(InputError, match=r"--calibration .*nope.yaml: no such file"):
        load_calibration(tmp_path / "nope.yaml")
    (tmp_path / "c.txt").write_text("K1")
    with pytest.raises(InputError, match="unknown format '.txt'"):
        load_calibration(tmp_path / "c.txt")
    (tmp_path / "c.json").write_text(json.dumps({"K1": np.eye(3).tolist()}))
    with pytest.raises(InputError, match=r"c.json: no D1"):
        load_calibration(tmp_path / "c.json")
    calib = make_rig().calibration()
    path = save_calibration(tmp_path / "nosize.json", calib)
    data = json.loads(path.read_text())
    del data["image_width"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="no image size"):
        load_calibration(path)
    (tmp_path / "bad.yaml").write_text("%YAML:1.0\nK1: [unclosed\n")
    with pytest.raises(InputError, match="FileStorage cannot parse"):
        load_calibration(tmp_path / "bad.yaml")


def test_depth_from_q_matches_focal_times_baseline():
    rectifier = Rectifier(make_rig(distortion=False).calibration())
    from_q = rectifier.depth_converter()
    from_fb = DepthConverter.from_focal_baseline(rectifier.focal_px, rectifier.baseline)
    disparity = np.array([[10.0, 40.0, 0.0, -3.0]], dtype=np.float32)
    depth_q, valid_q = from_q.depth(disparity)
    depth_fb, valid_fb = from_fb.depth(disparity)
    assert valid_q.tolist() == valid_fb.tolist() == [[True, True, False, False]]
    assert np.allclose(depth_q[valid_q], depth_fb[valid_fb], rtol=1e-5)
    assert depth_fb[0, 0] == pytest.approx(rectifier.focal_px * rectifier.baseline / 10.0)


def test_depth_is_right_when_frames_are_resized_to_the_engine_size():
    # A 120x160 frame through a 64x96 engine: the network sees disparities scaled by 85/160;
    # restore_disparity brings them back to source pixels, so f*B/d needs no further factor.
    geometry = preprocess.plan_geometry((120, 160), (64, 96))
    assert geometry.resized_hw == (64, 85)
    true_disparity = 16.0
    network = np.full((1, 1, 64, 96), true_disparity / geometry.disparity_scale, dtype=np.float32)
    restored = preprocess.restore_disparity(network, geometry)
    depth, valid = DepthConverter.from_focal_baseline(400.0, 0.1).depth(restored)
    assert restored.shape == (120, 160) and valid.all()
    assert np.allclose(depth, 400.0 * 0.1 / true_disparity, rtol=1e-5)
