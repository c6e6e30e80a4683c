"""``stereo-trt ros2``: a thin ROS 2 node around the stream loop and the bag path's conversions.

The node only subscribes and publishes. Images arrive through
``message_filters.ApproximateTimeSynchronizer`` on two subscriptions with QoS keep-last 1,
best effort (a slow model drops stale frames instead of queueing them); each pair goes,
converted by the same code that reads bags (``messages.image_to_rgb``), into a
``FrameQueue``, a live source for ``loop.run_stream`` (latest frame wins). The loop runs
the runner exactly as ``stereo-trt run`` does, and every result is published as the same
messages ``--record-bag`` writes (``record.frame_messages``). Rectification comes from the
first ``camera_info`` of each camera (or ``--calibration``).

rclpy messages and ``rosbags`` messages meet as CDR bytes: ``rclpy.serialization`` on one
side, the ``rosbags`` typestore on the other, so no field is copied by hand.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from toolkit.errors import DependencyError, InputError
from toolkit.pointcloud import CloudMask
from toolkit.ros import messages, typestore
from toolkit.ros.bag import FrameMeta, camera_info_topic
from toolkit.ros.record import DEFAULT_NAMESPACE, TOPICS, frame_messages
from toolkit.stream.sources import StereoFrame, StereoSource

POLL_S = 0.1


class FrameQueue(StereoSource):
    """A live source fed from subscriber callbacks: holds the newest pair only.

    ``push`` is called on the ROS executor thread, ``read`` on the loop's capture thread.
    """

    live = True
    name = "ros2 topics"

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: StereoFrame | None = None
        self._closed = False
        self.count = 0
        self.replaced = 0

    def open(self) -> None:
        pass

    def push(self, left, right, meta: FrameMeta) -> None:
        """Offer one decoded pair (RGB arrays); a pair not yet read is replaced."""
        with self._cond:
            if self._frame is not None:
                self.replaced += 1
            self._frame = StereoFrame(left, right, self.count, time.perf_counter(), meta=meta)
            self.count += 1
            self._cond.notify_all()

    def read(self) -> StereoFrame | None:
        """The newest pair, waiting for one; None once closed."""
        with self._cond:
            while self._frame is None and not self._closed:
                self._cond.wait(POLL_S)
            frame, self._frame = self._frame, None
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def decode_pair(left_msg, right_msg, msgtype: str, topics: tuple[str, str]):
    """(left RGB, right RGB, FrameMeta) from two rosbags image messages.

    Raises:
        InputError: unknown encodings, left and right of different sizes.
    """
    left = messages.image_to_rgb(left_msg, msgtype, topics[0])
    right = messages.image_to_rgb(right_msg, msgtype, topics[1])
    if left.shape != right.shape:
        raise InputError(f"{topics[0]} has {left.shape[1]}x{left.shape[0]} images but {topics[1]} has "
                         f"{right.shape[1]}x{right.shape[0]}; left and right must have one size")
    stamp = messages.header_stamp(left_msg)
    return left, right, FrameMeta(stamp, messages.header_stamp(right_msg), stamp.ns)


def require_rclpy():
    """Import rclpy, message_filters and their helpers, or say where they come from.

    Raises:
        DependencyError: no ROS 2 installation on the Python path.
    """
    try:
        import message_filters
        import rclpy
        from rclpy import serialization
        from rosidl_runtime_py.utilities import get_message
    except ImportError:
        raise DependencyError("stereo-trt ros2 needs rclpy and message_filters, which come with a ROS 2 installation "
                              "(not from PyPI): source /opt/ros/<distro>/setup.bash first") from None
    return rclpy, message_filters, serialization, get_message


@dataclass
class NodeConfig:
    """Options of ``stereo-trt ros2``.

    Attributes:
        left_topic, right_topic: image topics (Image, or CompressedImage with ``compressed``).
        compressed: subscribe to ``sensor_msgs/CompressedImage``.
        slop_s: the largest stamp difference of a synchronised pair.
        namespace: prefix of the published topics.
        rectified: the image topics are rectified already (camera_info gives only the geometry).
        min_confidence: publish pixels below this confidence as invalid (models with a confidence).
        mask: depth limits for the point cloud.
        max_frames: stop after this many frames (None: until Ctrl-C).
    """

    left_topic: str = "/left/image_raw"
    right_topic: str = "/right/image_raw"
    compressed: bool = False
    slop_s: float = 0.005
    namespace: str = DEFAULT_NAMESPACE
    rectified: bool = False
    min_confidence: float | None = None
    mask: CloudMask = field(default_factory=CloudMask)
    max_frames: int | None = None


class StereoNode:
    """The rclpy node: subscriptions feed a ``FrameQueue``, ``publish_result`` publishes a ``FrameResult``.

    Args:
        config: topics and QoS-related options.
        queue: where synchronised pairs go.
    """

    def __init__(self, config: NodeConfig, queue: FrameQueue) -> None:
        rclpy, message_filters, serialization, get_message = require_rclpy()
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        self.config, self.queue = config, queue
        self._serialization, self._get_message = serialization, get_message
        self.node = rclpy.create_node("stereo_trt")
        self.msgtype = messages.COMPRESSED if config.compressed else messages.IMAGE
        image_class = get_message(self.msgtype)
        # Keep-last 1, best effort: a frame the model cannot take in time is dropped, never queued.
        images_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        subscriptions = [message_filters.Subscriber(self.node, image_class, topic, qos_profile=images_qos)
                         for topic in (config.left_topic, config.right_topic)]
        self.sync = message_filters.ApproximateTimeSynchronizer(subscriptions, queue_size=2, slop=config.slop_s)
        self.sync.registerCallback(self._on_pair)
        self.infos: dict[str, object] = {}
        info_class = get_message(messages.CAMERA_INFO)
        for topic in (config.left_topic, config.right_topic):
            info_topic = camera_info_topic(topic)
            # Best effort matches reliable and best-effort publishers alike (drivers use both).
            self.node.create_subscription(info_class, info_topic, self._info_callback(info_topic), images_qos)
        self.publishers = {name: self.node.create_publisher(get_message(msgtype), f"{config.namespace}/{name}", 1)
                           for name, msgtype in TOPICS.items()}
        self.error: BaseException | None = None

    def _to_rosbags(self, msg, msgtype: str):
        return typestore().deserialize_cdr(self._serialization.serialize_message(msg), msgtype)

    def _info_callback(self, topic: str) -> Callable:
        def callback(msg) -> None:
            self.infos.setdefault(topic, self._to_rosbags(msg, messages.CAMERA_INFO))
        return callback

    def camera_infos(self) -> tuple | None:
        """(left, right) CameraInfo (rosbags messages) once both arrived, else None."""
        names = [camera_info_topic(t) for t in (self.config.left_topic, self.config.right_topic)]
        return tuple(self.infos[n] for n in names) if all(n in self.infos for n in names) else None

    def _on_pair(self, left_msg, right_msg) -> None:
        try:
            left, right, meta = decode_pair(self._to_rosbags(left_msg, self.msgtype),
                                            self._to_rosbags(right_msg, self.msgtype), self.msgtype,
                                            (self.config.left_topic, self.config.right_topic))
        except InputError as exc:
            self.error = exc
            self.queue.close()
            return
        self.queue.push(left, right, meta)

    def publish_result(self, result, Q) -> None:
        """Publish one ``loop.FrameResult`` as the messages ``--record-bag`` writes."""
        for name, msg in frame_messages(result, Q, self.config.mask, result.meta.stamp).items():
            raw = bytes(typestore().serialize_cdr(msg, TOPICS[name]))
            self.publishers[name].publish(self._serialization.deserialize_message(raw, self.publishers[name].msg_type))


def run_node(config: NodeConfig, runner, rectifier=None, on_status: Callable[[str], None] = print,
             wait_info_s: float = 30.0):
    """Spin the node in a background thread and run the stream loop until Ctrl-C.

    Args:
        config: topics and options.
        runner: an inactive runner (``stream.app.build_runner``).
        rectifier: from --calibration; None takes the rectification from camera_info.
        on_status: where status lines go.
        wait_info_s: how long to wait for both camera_info messages.

    Returns:
        The loop's ``Summary``.

    Raises:
        DependencyError: rclpy is not importable.
        InputError: no camera_info within ``wait_info_s`` and no --calibration; bad images.
    """
    rclpy = require_rclpy()[0]
    from rclpy.executors import SingleThreadedExecutor

    from toolkit.ros.camera_info import CameraInfoRectifier
    from toolkit.stream import loop

    # A process that already runs ROS (a launch file's component, a test) keeps its context.
    owns_context = not rclpy.ok()
    if owns_context:
        rclpy.init()
    queue = FrameQueue()
    node = StereoNode(config, queue)
    executor = SingleThreadedExecutor()
    executor.add_node(node.node)
    spinner = threading.Thread(target=executor.spin, name="ros2-spin", daemon=True)
    spinner.start()
    try:
        if rectifier is None:
            deadline = time.monotonic() + wait_info_s
            while node.camera_infos() is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
            if node.camera_infos() is None:
                raise InputError(f"no camera_info next to {config.left_topic} and {config.right_topic} within "
                                 f"{wait_info_s:g} s; give --calibration FILE")
            rectifier = CameraInfoRectifier(*node.camera_infos(), remap=not config.rectified)
        Q = rectifier.q_metres()
        options = loop.StreamOptions(rectifier=rectifier, min_confidence=config.min_confidence,
                                     latest_frame_wins=True, max_frames=config.max_frames, status_every_s=5.0,
                                     on_status=on_status, on_result=lambda result: node.publish_result(result, Q))
        summary = loop.run_stream(queue, runner, options)
        if node.error is not None:
            raise node.error
        return summary
    finally:
        queue.close()
        executor.shutdown()
        node.node.destroy_node()
        if owns_context:
            rclpy.try_shutdown()
