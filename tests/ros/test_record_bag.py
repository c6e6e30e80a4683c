"""`run --source BAG --record-bag OUT` end to end: what OUT holds, and that it survives Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from interrupted_run import interrupt_run

from ros_bags import BASELINE, FOCAL, read_bag, write_bag
from toolkit import predict
from toolkit.backends.sgbm import SGBMRunner
from toolkit.cli import main
from toolkit.data import io
from toolkit.ros import messages
from toolkit.ros.bag import BagSource, inspect_bag
from toolkit.ros.camera_info import CameraInfoRectifier
from toolkit.ros.record import BagRecorder
from toolkit.stream import loop

NS = "/stereo_trt"
TOPICS = [f"{NS}/{t}" for t in ("disparity", "depth", "confidence", "points", "left/image_rect")]


def run(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def predicted_disparity(tmp_path, runner, left, right):
    """What `predict` writes for one pair (its PFM), with the same runner."""
    with runner:
        predict.predict_pairs(runner, [("pair", left, right)], tmp_path / "predict")
    return io.read_pfm(tmp_path / "predict" / "pair_disp.pfm")


@pytest.mark.parametrize("storage, name", [("mcap", "in.mcap"), ("sqlite3", "in_bag")])
def test_record_bag_holds_every_output_per_pair_with_input_stamps(tmp_path, storage, name):
    scene = write_bag(tmp_path / name, storage, frames=3)
    out = tmp_path / "out.mcap"
    result = run("--source", scene.path, "--backend", "sgbm", "--max-disp", "32", "--headless", "--status-every", "0",
                 "--record-bag", out)
    assert result.exit_code == 0, result.output
    bag = read_bag(out)
    assert sorted(bag) == sorted(TOPICS)
    for topic in TOPICS:
        assert [log for log, _ in bag[topic]] == scene.stamps, topic  # logged at the input's bag time
        assert [messages.header_stamp(m) for _, m in bag[topic]] == [
            messages.Stamp(s, "left_optical") for s in scene.stamps], topic
    sidecar = json.loads((tmp_path / "out.mcap.json").read_text())
    assert sidecar["frames"] == 3 and sidecar["backend"] == "sgbm" and sorted(sidecar["topics"]) == sorted(TOPICS)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left

    errors = []
    for i in range(3):
        disparity_msg = bag[f"{NS}/disparity"][i][1]
        assert (disparity_msg.f, disparity_msg.t) == (FOCAL, pytest.approx(BASELINE))
        disparity = messages.image_from_msg(disparity_msg.image)
        expected = predicted_disparity(tmp_path, SGBMRunner(max_disp=32), scene.lefts[i], scene.rights[i])
        valid = disparity > 0
        np.testing.assert_array_equal(disparity[valid], expected[valid])
        assert valid.mean() > 0.5

        cloud = messages.pointcloud_from_msg(bag[f"{NS}/points"][i][1])
        z = cloud["z"]
        has_point = np.isfinite(z)
        assert np.array_equal(has_point, valid)
        # Every point lies on its pixel's ray at depth f B / d.
        rows, cols = np.nonzero(has_point)
        np.testing.assert_allclose(z[has_point], FOCAL * BASELINE / disparity[has_point], rtol=1e-5)
        cx, cy = (96 - 1) / 2, (64 - 1) / 2
        np.testing.assert_allclose(cloud["x"][has_point], (cols - cx) * z[has_point] / FOCAL, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(cloud["y"][has_point], (rows - cy) * z[has_point] / FOCAL, rtol=1e-4, atol=1e-6)
        colours = messages.unpack_rgb(cloud["rgb"])
        np.testing.assert_array_equal(colours, scene.lefts[i])
        depth = messages.image_from_msg(bag[f"{NS}/depth"][i][1])
        np.testing.assert_allclose(depth[has_point], z[has_point])
        assert np.isnan(depth[~has_point]).all()
        np.testing.assert_array_equal(messages.image_from_msg(bag[f"{NS}/left/image_rect"][i][1]), scene.lefts[i])
        # Against the generated scene's ground truth.
        truth_valid = has_point & scene.valids[i]
        truth = FOCAL * BASELINE / scene.disparities[i][truth_valid]
        errors.append(np.abs(z[truth_valid] - truth) / truth)
    median = float(np.median(np.concatenate(errors)))
    print(f"\nrecord-bag ({storage}): SGBM point cloud vs generated ground truth, median relative depth error {median:.4f}")
    assert median < 0.05


def test_record_bag_disparity_equals_predict_through_the_cli(tmp_path):
    from tiny_models import exported_tiny_onnx

    model = exported_tiny_onnx()
    scene = write_bag(tmp_path / "in.mcap", frames=2)
    out = tmp_path / "out_bag"  # a rosbag2 folder this time
    result = run("--source", scene.path, "--model", model, "--headless", "--status-every", "0", "--record-bag", out)
    assert result.exit_code == 0, result.output
    assert (out / "metadata.yaml").is_file()
    bag = read_bag(out)
    for i in range(2):
        io.write_image(tmp_path / f"l{i}.png", scene.lefts[i])
        io.write_image(tmp_path / f"r{i}.png", scene.rights[i])
        predicted = CliRunner().invoke(main, ["predict", str(tmp_path / f"l{i}.png"), str(tmp_path / f"r{i}.png"),
                                              "--model", str(model), "--out", str(tmp_path / f"p{i}")])
        assert predicted.exit_code == 0, predicted.output
        expected = io.read_pfm(tmp_path / f"p{i}" / f"l{i}_disp.pfm")
        disparity = messages.image_from_msg(bag[f"{NS}/disparity"][i][1].image)
        valid = disparity > 0
        assert valid.mean() > 0.5
        np.testing.assert_allclose(disparity[valid], expected[valid], rtol=1e-5, atol=1e-4)


def test_an_interrupted_run_leaves_a_readable_bag(tmp_path):
    scene = write_bag(tmp_path / "in.mcap", frames=5)
    plan = inspect_bag(scene.path)
    rectifier = CameraInfoRectifier(*plan.camera_infos)
    out = tmp_path / "out.mcap"
    recorder = BagRecorder(out, lambda h, w: rectifier.Q)
    seen = []

    def write_then_ctrl_c(result):
        recorder.write(result)
        seen.append(result.index)
        if len(seen) == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread, mid-run

    options = loop.StreamOptions(rectifier=rectifier, on_result=write_then_ctrl_c)
    summary = loop.run_stream(BagSource(plan), SGBMRunner(max_disp=32), options, [recorder])
    assert summary.stop_reason == "interrupted"
    bag = read_bag(out)
    assert sorted(bag) == sorted(TOPICS) and all(len(v) == 2 for v in bag.values())


def test_record_bag_output_is_checked_before_the_model_loads(tmp_path):
    scene = write_bag(tmp_path / "in.mcap", frames=1)
    result = run("--source", scene.path, "--model", tmp_path / "missing.onnx", "--record-bag", tmp_path / "out.bag")
    assert result.exit_code == 2 and "--record-bag" in result.output and "expected a file ending in .mcap" in result.output
    result = run("--source", scene.path, "--backend", "sgbm", "--headless", "--record-bag", scene.path)
    assert result.exit_code == 2 and "is one of this command's inputs" in result.output


def test_ply_snapshots_every_n_frames(tmp_path):
    from toolkit.pointcloud import read_ply

    scene = write_bag(tmp_path / "in.mcap", frames=3)
    result = run("--source", scene.path, "--backend", "sgbm", "--max-disp", "32", "--headless", "--status-every", "0",
                 "--ply-dir", tmp_path / "clouds", "--ply-every", "2", "--max-depth", "2.0")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "clouds").glob("*.ply"))
    assert written == ["frame_000000.ply", "frame_000002.ply"]
    cloud = read_ply(tmp_path / "clouds" / "frame_000000.ply")
    assert len(cloud) > 1000 and cloud.points[:, 2].max() <= 2.0


EXAMPLE = "stereo-trt run --source recording.mcap --backend sgbm --headless --record-bag depth.mcap"


def test_the_example_is_in_the_readme_the_guide_and_the_help():
    repo = Path(__file__).resolve().parents[2]
    assert EXAMPLE in (repo / "README.md").read_text() and EXAMPLE in (repo / "docs" / "ros2.md").read_text()
    assert f"Example: {EXAMPLE}" in " ".join(CliRunner().invoke(main, ["run", "--help"]).output.split())


def test_the_help_example_runs_end_to_end(tmp_path, monkeypatch):
    # The README / --help line as written, on a generated recording.mcap in a scratch folder.
    monkeypatch.chdir(tmp_path)
    write_bag(tmp_path / "recording.mcap", frames=2)
    result = CliRunner().invoke(main, EXAMPLE.split()[1:])
    assert result.exit_code == 0, result.output
    assert all(len(v) == 2 for v in read_bag(tmp_path / "depth.mcap").values())


def test_without_rosbags_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys

    for name in ("rosbags", "rosbags.rosbag2", "rosbags.typesys"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import rosbags...` fail here
    video_folder = tmp_path / "pairs"
    video_folder.mkdir()
    result = run("--source", video_folder, "--rectified", "--backend", "sgbm", "--record-bag", tmp_path / "o.mcap")
    assert result.exit_code == 2 and "pip install 'stereo-trt[ros]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_p_key_in_the_window_writes_a_cloud_of_the_next_frame(tmp_path, monkeypatch):
    import cv2

    from toolkit.stream import clouds, display

    snapshots = clouds.CloudSnapshots(tmp_path / "c", 1000, lambda h, w: np.eye(4))
    window = display.Window()
    clouds.bind_keys([snapshots], [window])
    # The window's GUI calls stand in for a display this machine does not have; the key dispatch is what is tested.
    for name, value in (("namedWindow", None), ("imshow", None), ("getWindowProperty", 1.0)):
        monkeypatch.setattr(cv2, name, lambda *a, _v=value: _v)
    monkeypatch.setattr(cv2, "waitKey", lambda *a: ord("p"))
    assert window.publish(np.zeros((4, 4, 3), np.uint8)) is True
    assert snapshots.requested


def test_ctrl_c_in_a_real_process_leaves_a_readable_bag(tmp_path):
    total = 600
    scene = write_bag(tmp_path / "long.mcap", frames=total, distinct=3)
    out = tmp_path / "interrupted.mcap"
    returncode, output = interrupt_run(["--source", str(scene.path), "--backend", "sgbm", "--max-disp", "32",
                                        "--headless", "--status-every", "0", "--record-bag", str(out)])
    assert returncode == 0, output
    assert "interrupted:" in output
    bag = read_bag(out)
    counts = {len(v) for v in bag.values()}
    assert sorted(bag) == sorted(TOPICS) and len(counts) == 1 and 0 < counts.pop() < total
    assert json.loads((tmp_path / "interrupted.mcap.json").read_text())["frames"] < total
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("options, expected", [
    (("--max-depth", "3"), "--min-depth/--max-depth apply to the point clouds of --record-bag and --ply-dir"),
    (("--min-depth", "0.5"), "--min-depth/--max-depth apply to the point clouds of --record-bag and --ply-dir"),
    (("--ply-every", "5"), "--ply-every needs --ply-dir"),
])
def test_cloud_options_without_a_cloud_output_are_refused(tmp_path, options, expected):
    # like predict's --min-depth without --ply: a setting is never silently dropped
    scene = write_bag(tmp_path / "in.mcap", frames=1)
    result = run("--source", scene.path, "--model", tmp_path / "missing.onnx", "--headless", *options)
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output, result.output


def test_disparity_messages_are_adjusted_for_the_principal_point_offset():
    # ROS DisparityImage: d = x_l - x_r - (cx_l - cx_r), so that Z = f T / d (stereo_image_proc's rule);
    # with a principal point offset (doffs = cx_r - cx_l) the raw disparity alone gives the wrong depth.
    from toolkit.pointcloud import CloudMask, q_matrix
    from toolkit.ros.record import frame_messages

    disparity = np.full((8, 10), 20.0, dtype=np.float32)
    disparity[0, 0] = 0.0  # no match
    valid = disparity > 0
    result = loop.FrameResult(0, np.zeros((8, 10, 3), np.uint8), disparity, None, None, valid, 0.0)
    Q = q_matrix(100.0, 0.1, 4.5, 3.5, doffs=5.0)
    out = frame_messages(result, Q, CloudMask(), messages.Stamp(0, "left"))
    msg = out["disparity"]
    image = messages.image_from_msg(msg.image)
    depth = messages.image_from_msg(out["depth"])
    assert depth[1, 1] == pytest.approx(100.0 * 0.1 / 25.0)
    assert msg.f * msg.t / image[1, 1] == pytest.approx(depth[1, 1])
    assert msg.min_disparity == pytest.approx(25.0) and image[0, 0] < msg.min_disparity
