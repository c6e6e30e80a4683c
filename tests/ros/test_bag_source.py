"""Bags as a source: topic choice, stamp pairing, message decoding, camera_info geometry, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ros_bags import BASELINE, FOCAL, camera_info, write_bag
from toolkit.cli import main
from toolkit.errors import InputError
from toolkit.ros import messages
from toolkit.ros.bag import BagSource, inspect_bag, is_bag, pair_by_stamp, pick_stereo_topics
from toolkit.ros.camera_info import CameraInfoRectifier

LEFT, RIGHT = "/stereo/left/image_rect", "/stereo/right/image_rect"


def one_line_error(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def run_bag(path, *extra):
    return CliRunner().invoke(main, ["run", "--source", str(path), "--backend", "sgbm", "--max-disp", "32",
                                     "--headless", "--status-every", "0", *extra])


def stream(*items):
    return [(side, ns, messages.Stamp(ns, side), f"{side}{ns}") for side, ns in items]


def test_pairing_matches_stamps_within_the_tolerance_and_skips_orphans():
    items = stream(("left", 0), ("right", 1), ("left", 100), ("left", 200), ("right", 202), ("right", 300))
    pairs = [(a.msg, b.msg) for a, b in pair_by_stamp(items, tolerance_ns=5)]
    assert pairs == [("left0", "right1"), ("left200", "right202")]


@pytest.mark.parametrize("dropped", ["left", "right"])
@pytest.mark.parametrize("right_first", [False, True])
def test_a_slop_wider_than_the_frame_period_still_pairs_each_frame_with_its_own_partner(dropped, right_first):
    # 66 ms frames, right 3 ms late, frame 2 lost on one side, --slop 0.1: L3 must pair with R3, not R2/L2 with the next
    items = []
    for i in range(6):
        sides = [("left", i * 66), ("right", i * 66 + 3)]
        items += [(side, ns) for side, ns in (sides[::-1] if right_first else sides) if not (i == 2 and side == dropped)]
    pairs = [(a.stamp.ns // 66, b.stamp.ns // 66) for a, b in pair_by_stamp(stream(*items), tolerance_ns=100)]
    assert pairs == [(0, 0), (1, 1), (3, 3), (4, 4), (5, 5)]


def test_the_one_left_right_pair_is_found_among_other_topics():
    assert pick_stereo_topics(["/cam/left/image", "/cam/right/image", "/depth"]) == ("/cam/left/image", "/cam/right/image")
    assert pick_stereo_topics(["/a/left", "/a/right", "/b/left", "/b/right"]) is None


@pytest.mark.parametrize("storage, name", [("mcap", "rec.mcap"), ("sqlite3", "rec_bag")])
def test_inspect_finds_topics_camera_info_and_rate(tmp_path, storage, name):
    scene = write_bag(tmp_path / name, storage, frames=3)
    assert is_bag(scene.path)
    plan = inspect_bag(scene.path)
    assert (plan.left, plan.right) == (LEFT, RIGHT)
    assert plan.info_topics == ("/stereo/left/camera_info", "/stereo/right/camera_info")
    assert plan.fps == pytest.approx(10.0, rel=0.05)
    rectifier = CameraInfoRectifier(*plan.camera_infos)
    assert rectifier.focal_px == FOCAL and rectifier.baseline == pytest.approx(BASELINE)
    assert rectifier.left_maps is None  # rectified camera_info: frames pass through unchanged


@pytest.mark.parametrize("encoding", ["bgr8", "mono8", "png"])
def test_frames_decode_to_rgb_with_their_stamps(tmp_path, encoding):
    scene = write_bag(tmp_path / "rec.mcap", frames=2, encoding=encoding)
    with BagSource(inspect_bag(scene.path)) as source:
        frames = [source.read(), source.read()]
        assert source.read() is None
    expected = scene.lefts[1]
    if encoding == "mono8":
        expected = cv2.cvtColor(cv2.cvtColor(expected, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    np.testing.assert_allclose(frames[1].left, expected, atol=1)
    assert frames[1].meta.stamp == messages.Stamp(scene.stamps[1], "left_optical")
    assert frames[1].meta.right.frame_id == "right_optical"


def test_compressed_topics_find_the_camera_info_of_their_base_topic(tmp_path):
    # image_transport: /stereo/left/image_raw/compressed belongs to /stereo/left/camera_info
    topics = ("/stereo/left/image_raw/compressed", "/stereo/right/image_raw/compressed")
    scene = write_bag(tmp_path / "rec.mcap", frames=2, encoding="jpeg", topics=topics)
    plan = inspect_bag(scene.path)
    assert plan.info_topics == ("/stereo/left/camera_info", "/stereo/right/camera_info")
    result = run_bag(scene.path)
    assert result.exit_code == 0, result.output


def test_camera_info_rectifier_undistorts_like_opencv():
    info_l = camera_info(96, 64, "l", 0, right=False)
    info_r = camera_info(96, 64, "r", 0, right=True)
    info_l.d = np.array([0.1, 0, 0, 0, 0])
    rectifier = CameraInfoRectifier(info_l, info_r)
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    left, right = rectifier.rectify(image, image)
    assert rectifier.left_maps is not None and not np.array_equal(left, image)
    np.testing.assert_array_equal(right, image)  # identity maps for an undistorted camera reproduce it
    with pytest.raises(InputError, match="describes 96x64 images"):
        rectifier.rectify(image[:32], image[:32])


def test_a_missing_topic_lists_the_image_topics(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=1)
    line = one_line_error(run_bag(scene.path, "--left-topic", "/nope", "--right-topic", RIGHT))
    assert "--left-topic /nope: not an image topic" in line and f"its image topics: {LEFT}, {RIGHT}" in line


def test_an_ambiguous_bag_asks_for_the_topics(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=1, extra_topics=("/other/left/image_rect", "/other/right/image_rect"))
    line = one_line_error(run_bag(scene.path))
    assert "no single left/right pair" in line and "--left-topic and --right-topic" in line
    assert run_bag(scene.path, "--left-topic", LEFT, "--right-topic", RIGHT).exit_code == 0


def test_mismatched_image_sizes_are_one_line(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=1, with_info=False, right_size=(32, 48))
    line = one_line_error(run_bag(scene.path, "--rectified"))
    assert f"{LEFT} has 96x64 images but {RIGHT} has 48x32" in line


def test_an_unknown_encoding_is_one_line(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=1, encoding="bayer_rggb16")
    line = one_line_error(run_bag(scene.path))
    assert f"topic {LEFT}: image encoding 'bayer_rggb16' is not supported" in line


def test_an_unknown_encoding_is_named_before_the_model_loads(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=1, encoding="mono16")
    result = CliRunner().invoke(main, ["run", "--source", str(scene.path), "--model", str(tmp_path / "missing.onnx"),
                                       "--headless"])
    assert f"topic {LEFT}: image encoding 'mono16' is not supported" in one_line_error(result)


def test_no_camera_info_and_no_calibration_is_one_line(tmp_path):
    scene = write_bag(tmp_path / "rec_bag", "sqlite3", frames=1, with_info=False)
    line = one_line_error(run_bag(scene.path))
    assert "no camera_info for" in line and "give --calibration FILE" in line


def test_uncalibrated_camera_info_gives_way_to_rectified_with_focal_and_baseline(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=2, with_info="uncalibrated")
    line = one_line_error(run_bag(scene.path))
    assert "uncalibrated camera_info (K or P is zero)" in line and "--rectified with --focal-px/--baseline" in line
    result = run_bag(scene.path, "--rectified", "--focal-px", str(FOCAL), "--baseline", str(BASELINE))
    assert result.exit_code == 0, result.output


def test_focal_and_baseline_beside_the_bags_camera_info_are_refused(tmp_path):
    # they drove the --depth view while the bag and clouds used camera_info: two geometries, one ignored
    scene = write_bag(tmp_path / "rec.mcap", frames=1)
    line = one_line_error(run_bag(scene.path, "--rectified", "--focal-px", "500", "--baseline", "1", "--depth"))
    assert "--focal-px/--baseline: the geometry already comes from the camera_info of" in line


def test_an_empty_image_topic_is_named_not_blamed_on_the_slop(tmp_path):
    from rosbags.rosbag2 import Writer

    from ros_bags import encode
    from toolkit.ros import typestore

    with Writer(tmp_path / "rec", version=9) as writer:  # the right camera recorded nothing
        left = writer.add_connection(LEFT, messages.IMAGE, typestore=typestore())
        writer.add_connection(RIGHT, messages.IMAGE, typestore=typestore())
        msg = encode(np.zeros((64, 96, 3), np.uint8), "rgb8", messages.Stamp(1, "left_optical"))
        writer.write(left, 1, typestore().serialize_cdr(msg, messages.IMAGE))
    line = one_line_error(run_bag(tmp_path / "rec", "--rectified"))
    assert f"topic {RIGHT} has no messages" in line and "--slop" not in line


def test_topics_without_a_bag_are_refused(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    line = one_line_error(run_bag(folder, "--left-topic", LEFT, "--right-topic", RIGHT))
    assert "need a ROS 2 bag as --source" in line


def test_an_unreadable_bag_is_one_line(tmp_path):
    bad = tmp_path / "broken.mcap"
    bad.write_bytes(b"not an mcap file")
    assert "not a readable ROS 2 bag" in one_line_error(run_bag(bad))


def test_unsynchronised_cameras_pair_with_a_larger_slop(tmp_path):
    scene = write_bag(tmp_path / "rec.mcap", frames=2, skew_ns=20_000_000)
    line = one_line_error(run_bag(scene.path))
    assert "no left/right messages with stamps within 5 ms" in line and "--slop" in line
    result = run_bag(scene.path, "--slop", "0.03")
    assert result.exit_code == 0 and "2 frames processed of 2 captured" in result.output, result.output


def test_calibration_overrides_the_bags_camera_info(tmp_path):
    from ros_bags import read_bag
    from toolkit.stream.rectify import StereoCalibration, save_calibration

    K = np.array([[80.0, 0, 47.5], [0, 80.0, 31.5], [0, 0, 1]])
    calibration = save_calibration(tmp_path / "c.yaml", StereoCalibration(
        K, np.zeros((1, 5)), K, np.zeros((1, 5)), np.eye(3), np.array([[-0.2], [0.0], [0.0]]), (96, 64), units="m"))
    scene = write_bag(tmp_path / "rec.mcap", frames=1)
    result = run_bag(scene.path, "--calibration", calibration, "--record-bag", tmp_path / "out.mcap")
    assert result.exit_code == 0, result.output
    disparity = read_bag(tmp_path / "out.mcap")["/stereo_trt/disparity"][0][1]
    assert (disparity.f, disparity.t) == (pytest.approx(80.0), pytest.approx(0.2))


def test_swap_exchanges_the_topics_with_their_camera_info_and_headers(tmp_path):
    # cameras wired the other way round: the left camera's images and camera_info are on the "right" topics
    scene = write_bag(tmp_path / "rec.mcap", frames=2, topics=(RIGHT, LEFT))
    assert "are left and right swapped?" in one_line_error(run_bag(scene.path))
    assert inspect_bag(scene.path, swap=True).left == RIGHT
    out = tmp_path / "out.mcap"
    result = run_bag(scene.path, "--swap", "--record-bag", str(out))
    assert result.exit_code == 0, result.output
    from ros_bags import read_bag

    disparity = read_bag(out)["/stereo_trt/disparity"][0][1]
    assert disparity.header.frame_id == "left_optical" and disparity.t == pytest.approx(BASELINE)
