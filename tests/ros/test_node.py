"""The ROS 2 node: its rclpy-free parts here, the node itself where rclpy imports."""

from __future__ import annotations

import importlib.util
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ros_bags import camera_info, encode, write_bag
from toolkit.cli import main
from toolkit.errors import InputError
from toolkit.ros import messages
from toolkit.ros.node import FrameQueue, NodeConfig, decode_pair

HAS_RCLPY = importlib.util.find_spec("rclpy") is not None
NO_RCLPY = "rclpy comes with a ROS 2 installation (not on PyPI) and is not importable here"


def test_the_queue_hands_over_the_newest_pair_and_ends_when_closed():
    queue = FrameQueue()
    image = np.zeros((4, 6, 3), np.uint8)
    for i in range(3):
        queue.push(image + i, image, meta=None)
    frame = queue.read()
    assert frame.left[0, 0, 0] == 2 and queue.replaced == 2
    closer = threading.Timer(0.05, queue.close)
    closer.start()
    assert queue.read() is None


def test_decode_pair_refuses_mismatched_sizes():
    stamp = messages.Stamp(5, "l")
    left = encode(np.zeros((8, 12, 3), np.uint8), "rgb8", stamp)
    right = encode(np.zeros((8, 10, 3), np.uint8), "rgb8", stamp)
    with pytest.raises(InputError, match="/l has 12x8 images but /r has 10x8"):
        decode_pair(left, right, messages.IMAGE, ("/l", "/r"))
    rgb, _, meta = decode_pair(left, left, messages.IMAGE, ("/l", "/r"))
    assert rgb.shape == (8, 12, 3) and meta.stamp == stamp


def test_compressed_topics_wait_for_the_camera_info_of_their_base_topic():
    # the node and the bag reader share image_transport's rule: <ns>/image_raw/compressed -> <ns>/camera_info
    from toolkit.ros.node import StereoNode

    node = StereoNode.__new__(StereoNode)  # its rclpy-free part only
    node.config = NodeConfig("/stereo/left/image_raw/compressed", "/stereo/right/image_raw/compressed", compressed=True)
    node.infos = {"/stereo/left/camera_info": "left info", "/stereo/right/camera_info": "right info"}
    assert node.camera_infos() == ("left info", "right info")


def test_calibration_and_rectified_exclude_each_other_as_in_run(tmp_path):
    result = CliRunner().invoke(main, ["ros2", "--calibration", str(tmp_path / "calib.yaml"), "--rectified"])
    assert result.exit_code == 2 and "--calibration and --rectified exclude each other" in result.output, result.output


@pytest.mark.parametrize("options, message", [
    (["--device", "cuda:abc"], "--device 'cuda:abc': expected cpu, cuda or cuda:N"),
    (["--model", "missing.onnx"], "missing.onnx"),
    (["--backend", "sgbm", "--precision", "fp16"], "--precision"),
])
def test_model_options_are_checked_before_rclpy_is_needed(options, message):
    result = CliRunner().invoke(main, ["ros2", *options])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output and "rclpy" not in result.output


def test_help_has_an_example_and_needs_no_ros():
    result = CliRunner().invoke(main, ["ros2", "--help"])
    assert result.exit_code == 0 and "Example: stereo-trt ros2 " in result.output


@pytest.mark.skipif(HAS_RCLPY, reason="rclpy is importable here: the missing-ROS message cannot be shown")
def test_without_ros_the_command_says_where_rclpy_comes_from():
    result = CliRunner().invoke(main, ["ros2", "--backend", "sgbm"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "needs rclpy and message_filters, which come with a ROS 2 installation" in result.output


@pytest.mark.skipif(not HAS_RCLPY, reason=NO_RCLPY)
def test_the_node_publishes_the_bag_messages_for_published_pairs(tmp_path):
    import rclpy
    from rclpy import serialization
    from rosidl_runtime_py.utilities import get_message

    from toolkit.backends.sgbm import SGBMRunner
    from toolkit.ros import typestore
    from toolkit.ros.node import run_node

    scene = write_bag(tmp_path / "unused.mcap", frames=1)
    left, right = scene.lefts[0], scene.rights[0]
    rclpy.init()
    try:
        peer = rclpy.create_node("stereo_trt_test_peer")
        image_type, info_type = get_message(messages.IMAGE), get_message(messages.CAMERA_INFO)

        def to_rclpy(msg, msgtype, cls):
            return serialization.deserialize_message(bytes(typestore().serialize_cdr(msg, msgtype)), cls)

        pubs = {t: peer.create_publisher(image_type, f"/cam/{t}/image_rect", 1) for t in ("left", "right")}
        infos = {t: peer.create_publisher(info_type, f"/cam/{t}/camera_info", 1) for t in ("left", "right")}
        received = []
        peer.create_subscription(get_message(messages.DISPARITY), "/stereo_trt/disparity", received.append, 10)
        config = NodeConfig("/cam/left/image_rect", "/cam/right/image_rect", rectified=True, max_frames=1)
        worker = threading.Thread(target=run_node, args=(config, SGBMRunner(max_disp=32)), daemon=True)
        worker.start()
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            stamp = time.time_ns()
            for side, image in (("left", left), ("right", right)):
                st = messages.Stamp(stamp, f"{side}_optical")
                infos[side].publish(to_rclpy(camera_info(96, 64, st.frame_id, stamp, side == "right"),
                                             messages.CAMERA_INFO, info_type))
                pubs[side].publish(to_rclpy(encode(image, "rgb8", st), messages.IMAGE, image_type))
            rclpy.spin_once(peer, timeout_sec=0.2)
        worker.join(10)
        assert received and received[0].header.frame_id == "left_optical"
        assert received[0].image.encoding == "32FC1" and received[0].image.width == 96
    finally:
        rclpy.try_shutdown()
