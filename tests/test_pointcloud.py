"""Point clouds: Q matrices, reprojection, masks and PLY files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from toolkit.errors import InputError
from toolkit.pointcloud import (CloudMask, cloud_from_disparity, metres_per_unit, q_from_projections, q_matrix,
                                read_ply, reproject, scale_q, write_ply)


def test_q_matrix_is_the_one_stereo_rectify_builds():
    K = np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]])
    _, _, P1, P2, Q, _, _ = cv2.stereoRectify(K, np.zeros(5), K, np.zeros(5), (320, 240), np.eye(3), np.array([[-0.1], [0.0], [0.0]]),
                                              flags=cv2.CALIB_ZERO_DISPARITY, alpha=0)
    np.testing.assert_allclose(q_matrix(P1[0, 0], 0.1, P1[0, 2], P1[1, 2]), Q, atol=1e-9)
    np.testing.assert_allclose(q_from_projections(P1, P2), Q, atol=1e-9)


def test_reprojection_gives_f_b_over_d_plus_doffs_and_the_pixel_ray():
    disparity = np.full((4, 6), 10.0, dtype=np.float32)
    disparity[0, 0] = 0.0
    points = reproject(disparity, q_matrix(100.0, 0.5, 2.0, 1.0, doffs=15.0))
    assert np.isnan(points[0, 0]).all()
    z = 100.0 * 0.5 / (10.0 + 15.0)
    np.testing.assert_allclose(points[2, 5], [(5 - 2.0) * z / 100.0, (2 - 1.0) * z / 100.0, z], rtol=1e-6)


def test_mask_keeps_valid_confident_points_in_the_depth_range():
    disparity = np.array([[50.0, 10.0, 5.0, 50.0]], dtype=np.float32)  # depths 1, 5, 10, 1 m
    confidence = np.array([[0.9, 0.9, 0.9, 0.1]], dtype=np.float32)
    image = np.arange(12, dtype=np.uint8).reshape(1, 4, 3)
    cloud = cloud_from_disparity(disparity, q_matrix(50.0, 1.0, 0, 0), image, confidence=confidence,
                                 mask=CloudMask(min_confidence=0.5, min_depth=2.0, max_depth=8.0))
    assert len(cloud) == 1
    np.testing.assert_allclose(cloud.points[0, 2], 5.0)
    assert cloud.colors[0].tolist() == [3, 4, 5] and cloud.pixels[0].tolist() == [0, 1]


def test_depth_limits_out_of_order_are_refused():
    with pytest.raises(InputError, match="--min-depth 5.0 must be below --max-depth 2.0"):
        CloudMask(min_depth=5.0, max_depth=2.0)


def test_units_scale_points_to_metres():
    Q = q_matrix(100.0, 120.0, 0, 0)  # baseline in mm
    points = reproject(np.full((1, 1), 10.0, np.float32), scale_q(Q, metres_per_unit("mm")))
    np.testing.assert_allclose(points[0, 0, 2], 1.2, rtol=1e-6)
    with pytest.raises(InputError, match="units 'ft'"):
        metres_per_unit("ft")


def test_ply_round_trip_with_provenance(tmp_path):
    disparity = np.full((3, 4), 20.0, dtype=np.float32)
    image = np.full((3, 4, 3), 200, dtype=np.uint8)
    cloud = cloud_from_disparity(disparity, q_matrix(100.0, 0.1, 2, 1), image)
    path = write_ply(tmp_path / "c.ply", cloud, {"model": "sgbm"})
    back = read_ply(path)
    np.testing.assert_array_equal(back.points, cloud.points)
    np.testing.assert_array_equal(back.colors, cloud.colors)
    record = json.loads((tmp_path / "c.ply.json").read_text())
    assert record["points"] == 12 and record["model"] == "sgbm" and "tool_versions" in record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ply", "c.ply.json"]  # no temporary left
