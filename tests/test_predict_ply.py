"""`stereo-trt predict --ply`: point clouds whose depths match ground truth through the calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import builtin
from toolkit.pointcloud import read_ply


def one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def ground_truth_depth_of_points(points: np.ndarray):
    """Project each point back to its left pixel with the pair's calibration; (its depth, the
    ground-truth depth there) for points on valid ground truth."""
    _, _, disparity, valid = builtin.builtin_pair()
    x, y, z = points.T
    u = np.rint(builtin.FOCAL_PX * x / z + builtin.CX_PX).astype(int)
    v = np.rint(builtin.FOCAL_PX * y / z + builtin.CY_PX).astype(int)
    inside = (u >= 0) & (u < disparity.shape[1]) & (v >= 0) & (v < disparity.shape[0])
    u, v, z = u[inside], v[inside], z[inside]
    ok = valid[v, u]
    truth = builtin.FOCAL_PX * builtin.BASELINE_M / (disparity[v, u][ok] + builtin.DOFFS_PX)
    return z[ok], truth


EXAMPLE = "stereo-trt predict --ply --max-depth 3 --out outputs/motorcycle"
REPO = Path(__file__).resolve().parents[1]


def test_the_example_is_in_the_readme_and_the_help():
    assert EXAMPLE in (REPO / "README.md").read_text()
    assert f"Example: {EXAMPLE}" in " ".join(CliRunner().invoke(main, ["predict", "--help"]).output.split())


@pytest.mark.slow
def test_predict_ply_on_the_builtin_pair_matches_ground_truth_depth(tmp_path, monkeypatch):
    # The --help / README example, run as written, in a scratch folder.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, EXAMPLE.split()[1:])
    assert result.exit_code == 0, result.output
    assert "built-in pair: focal 994.978 px, baseline 0.193001 m, doffs 31.086 px" in result.output
    cloud = read_ply(tmp_path / "outputs/motorcycle/motorcycle.ply")
    assert len(cloud) > 100_000 and cloud.points[:, 2].max() <= 3.0
    depth, truth = ground_truth_depth_of_points(cloud.points)
    relative = np.abs(depth - truth) / truth
    median = float(np.median(relative))
    print(f"\npredict --ply, built-in Motorcycle pair, built-in student: {len(cloud)} points, "
          f"{truth.size} on ground truth, median relative depth error {median:.4f}, "
          f"90th percentile {np.percentile(relative, 90):.4f}")
    assert truth.size > 0.8 * len(cloud)
    assert median < 0.03


def test_ply_needs_focal_and_baseline_for_user_pairs(tmp_path):
    left, right = tmp_path / "l.png", tmp_path / "r.png"
    for path in (left, right):
        path.write_bytes(b"")
    result = CliRunner().invoke(main, ["predict", str(left), str(right), "--ply", "--out", str(tmp_path / "o")])
    assert "--ply needs --focal and --baseline" in one_line_error(result)


def test_depth_limits_without_ply_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["predict", "--max-depth", "3", "--out", str(tmp_path / "o")])
    assert "--min-depth/--max-depth apply to --ply" in one_line_error(result)


@pytest.mark.parametrize("options, expected", [
    (("--cx", "300"), "--cx/--cy apply to --ply point clouds"),
    (("--cy", "200"), "--cx/--cy apply to --ply point clouds"),
    (("--doffs", "64"), "--doffs applies to depth and point clouds: give it with --focal and --baseline"),
])
def test_geometry_options_that_would_be_ignored_are_refused(tmp_path, options, expected):
    result = CliRunner().invoke(main, ["predict", *options, "--out", str(tmp_path / "o")])
    assert expected in one_line_error(result)
