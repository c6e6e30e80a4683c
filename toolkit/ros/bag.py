"""ROS 2 bags as a stereo source: topic discovery, stamp pairing, camera_info geometry.

A bag is a rosbag2 folder (``metadata.yaml`` with sqlite3 or MCAP storage) or a single
``.mcap`` / ``.db3`` file, read with ``rosbags``. ``inspect_bag`` picks the left and right
image topics (given, or the one obvious left/right pair of ``sensor_msgs/Image`` or
``CompressedImage`` topics) and their ``camera_info`` (same namespace), before any model
loads. ``BagSource`` then pairs left and right messages by header stamp within a
tolerance and hands them to the stream loop with their stamps and frame ids.
"""

from __future__ import annotations

import collections
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from toolkit.errors import InputError
from toolkit.ros import messages, require_rosbags, typestore
from toolkit.stream.sources import StereoFrame, StereoSource

BAG_SUFFIXES = (".mcap", ".db3")
DEFAULT_TOLERANCE_S = 0.005
PENDING_LIMIT = 64


def is_bag(path: str | Path) -> bool:
    """A rosbag2 folder (with metadata.yaml) or a .mcap / .db3 file."""
    path = Path(path)
    if path.is_dir():
        return (path / "metadata.yaml").is_file()
    return path.is_file() and path.suffix.lower() in BAG_SUFFIXES


@dataclass(frozen=True)
class FrameMeta:
    """What a bag frame carries besides its pixels.

    Attributes:
        stamp: the left image's header (stamp and frame id); outputs are stamped with it.
        right: the right image's header.
        log_ns: the left message's time in the bag, which output messages are logged at.
    """

    stamp: messages.Stamp
    right: messages.Stamp
    log_ns: int


@dataclass
class BagPlan:
    """The topics a run reads and the calibration found in the bag.

    Attributes:
        path: the bag.
        left, right: image topics.
        msgtypes: topic -> message type of both image topics.
        camera_infos: (left, right) CameraInfo messages, or None when the bag has none for these topics.
        info_topics: the camera_info topic names used.
        fps: left messages per second of bag time, None for a single message.
        uncalibrated: the bag has camera_info for these topics, but with K or P zero (what
            drivers publish for an uncalibrated camera); ``camera_infos`` is None then.
    """

    path: Path
    left: str
    right: str
    msgtypes: dict
    camera_infos: tuple | None
    info_topics: tuple[str, str] | None
    fps: float | None
    uncalibrated: bool = False


@contextlib.contextmanager
def open_reader(path: str | Path):
    """An open ``rosbags.rosbag2.Reader``; unreadable bags become InputError."""
    require_rosbags()
    from rosbags.rosbag2 import Reader, ReaderError

    try:
        reader = Reader(Path(path))
        reader.open()
    except (ReaderError, OSError, ValueError, KeyError) as exc:
        raise InputError(f"--source {path}: not a readable ROS 2 bag ({exc})") from None
    try:
        yield reader
    finally:
        reader.close()


def image_topics(reader) -> list[str]:
    """Topics holding Image or CompressedImage messages, sorted."""
    return sorted(t for t, info in reader.topics.items() if info.msgtype in messages.IMAGE_TYPES)


def pick_stereo_topics(topics: Iterable[str]) -> tuple[str, str] | None:
    """The one left/right pair among image topics: names that differ by 'left' <-> 'right'."""
    names = set(topics)
    pairs = [(t, t.replace("left", "right")) for t in sorted(names) if "left" in t and t.replace("left", "right") in names]
    return pairs[0] if len(pairs) == 1 else None


# image_transport publishes a transport's messages under <base topic>/<transport name>.
TRANSPORT_SUFFIXES = ("compressed", "compressedDepth", "theora", "zstd", "ffmpeg")


def camera_info_topic(image_topic: str) -> str:
    """``/left/image_raw`` -> ``/left/camera_info`` (the camera's namespace, image_transport's rule);
    ``/left/image_raw/compressed`` -> ``/left/camera_info`` too (the base topic's namespace)."""
    base, _, name = image_topic.rpartition("/")
    if name in TRANSPORT_SUFFIXES:
        image_topic = base
    return image_topic.rpartition("/")[0] + "/camera_info"


def _choose_topics(path, available: list[str], left: str | None, right: str | None) -> tuple[str, str]:
    listing = ", ".join(available) or "none"
    for option, topic in (("--left-topic", left), ("--right-topic", right)):
        if topic is not None and topic not in available:
            raise InputError(f"{option} {topic}: not an image topic of {path} (its image topics: {listing})")
    if left and right:
        return left, right
    if left or right:
        raise InputError("--left-topic and --right-topic go together")
    pair = pick_stereo_topics(available)
    if pair is None:
        raise InputError(f"--source {path}: no single left/right pair of image topics (its image topics: {listing}); "
                         "name them with --left-topic and --right-topic")
    return pair


def _first_message(reader, topic: str):
    connections = [c for c in reader.connections if c.topic == topic]
    for connection, _, raw in reader.messages(connections=connections):
        return typestore().deserialize_cdr(raw, connection.msgtype)
    return None


def inspect_bag(path: str | Path, left_topic: str | None = None, right_topic: str | None = None,
                swap: bool = False) -> BagPlan:
    """Choose the image topics and read the camera_info of a bag (no image is decoded).

    Args:
        swap: exchange the chosen left and right topics, each with its camera_info (the
            geometry, the rectification maps and the output frame id follow the images).

    Raises:
        InputError: unreadable bag, topics that are not there (the message lists the image
            topics the bag has), no obvious stereo pair, an image topic without
            messages, an image encoding that is not read.
    """
    path = Path(path)
    with open_reader(path) as reader:
        left, right = _choose_topics(path, image_topics(reader), left_topic, right_topic)
        if swap:
            left, right = right, left
        topics = reader.topics
        for topic in (left, right):  # an empty topic or an unreadable encoding is named before any model loads
            first = _first_message(reader, topic)
            if first is None:
                raise InputError(f"--source {path}: topic {topic} has no messages (a stereo pair needs both cameras)")
            messages.check_encoding(first, topics[topic].msgtype, topic)
        info_topics = (camera_info_topic(left), camera_info_topic(right))
        infos = None
        if all(t in topics and topics[t].msgtype == messages.CAMERA_INFO for t in info_topics):
            infos = tuple(_first_message(reader, t) for t in info_topics)
            infos = None if None in infos else infos  # a topic declared but never written
        # image_proc's rule: a camera_info with K or P zero is no calibration; --rectified with
        # --focal-px/--baseline (or --calibration) then gives the geometry instead.
        uncalibrated = infos is not None and not all(float(i.k[0]) > 0 and float(i.p[0]) > 0 for i in infos)
        if uncalibrated:
            infos = None
        count = topics[left].msgcount
        duration_s = reader.duration / 1e9
        fps = (count - 1) / duration_s if count > 1 and duration_s > 0 else None
        return BagPlan(path, left, right, {left: topics[left].msgtype, right: topics[right].msgtype},
                       infos, info_topics if infos else None, fps, uncalibrated)


def plan_for(config) -> BagPlan | None:
    """The ``BagPlan`` when the one --source of a ``stream.app.RunConfig`` is a ROS 2 bag, else None.

    Raises:
        InputError: --left-topic/--right-topic without a bag, topics the bag does not have.
        DependencyError: rosbags is not installed.
    """
    if len(config.sources) == 1 and is_bag(config.sources[0]):
        return inspect_bag(config.sources[0], config.left_topic, config.right_topic, config.swap)
    if config.left_topic or config.right_topic or config.slop is not None:
        raise InputError("--left-topic/--right-topic/--slop need a ROS 2 bag as --source (.mcap, .db3 or a rosbag2 folder)")
    return None


@dataclass
class _Pending:
    stamp: messages.Stamp
    log_ns: int
    msg: object


def pair_by_stamp(stream: Iterable[tuple[str, int, messages.Stamp, object]], tolerance_ns: int,
                  ) -> Iterator[tuple[_Pending, _Pending]]:
    """Pair left and right messages whose header stamps are within ``tolerance_ns``, each
    with its nearest partner.

    A tolerance wider than the frame period must not pair a frame with its neighbour's
    partner after a dropped message (which would shift every later pair by one frame), so a
    pair is settled only once no later message can be nearer.

    Args:
        stream: ("left" | "right", log time ns, header stamp, message) in bag order.
        tolerance_ns: the largest stamp difference of a pair.

    Yields:
        (left, right) in order; a message that finds no partner is skipped.
    """
    pending = {"left": collections.deque(maxlen=PENDING_LIMIT), "right": collections.deque(maxlen=PENDING_LIMIT)}
    for side, log_ns, stamp, msg in stream:
        pending[side].append(_Pending(stamp, log_ns, msg))
        yield from _settle(pending["left"], pending["right"], tolerance_ns, final=False)
    yield from _settle(pending["left"], pending["right"], tolerance_ns, final=True)


def _settle(left: collections.deque, right: collections.deque, tolerance_ns: int, final: bool):
    """Yield the pairs that later messages cannot change (all of them when ``final``)."""
    while left and right:
        a, b = left[0].stamp.ns, right[0].stamp.ns
        # Stamps grow: the oldest message of one side too old for the other's oldest never pairs.
        if a < b - tolerance_ns:
            left.popleft()
            continue
        if b < a - tolerance_ns:
            right.popleft()
            continue
        gap = abs(a - b)
        if len(left) > 1 and abs(left[1].stamp.ns - b) < gap:  # a newer left is nearer: this one's partner was dropped
            left.popleft()
            continue
        if len(right) > 1 and abs(right[1].stamp.ns - a) < gap:
            right.popleft()
            continue
        # The next message of the older side may still come and be nearer.
        if not final and ((len(left) == 1 and a < b) or (len(right) == 1 and b < a)):
            return
        yield left.popleft(), right.popleft()


class BagSource(StereoSource):
    """Stereo pairs from two image topics of a bag, paired by header stamp.

    Frames carry a ``FrameMeta`` in ``StereoFrame.meta``.

    Args:
        plan: from ``inspect_bag``.
        swap: exchange the decoded images only; to swap cameras, swap the topics with
            ``inspect_bag(swap=True)`` so that each image keeps its camera_info and header.
        tolerance_s: the largest left/right stamp difference of a pair; None: ``DEFAULT_TOLERANCE_S``.
    """

    live = False

    def __init__(self, plan: BagPlan, swap: bool = False, tolerance_s: float | None = None) -> None:
        self.plan = plan
        self.swap = swap
        self.tolerance_ns = int(round((DEFAULT_TOLERANCE_S if tolerance_s is None else tolerance_s) * 1e9))
        self.name = f"{plan.path} ({plan.left}, {plan.right})"
        self._context = None
        self._pairs: Iterator | None = None
        self.count = 0

    @property
    def fps(self) -> float | None:
        return self.plan.fps

    def open(self) -> None:
        self._context = open_reader(self.plan.path)
        reader = self._context.__enter__()
        self._pairs = pair_by_stamp(self._messages(reader), self.tolerance_ns)
        self.count = 0

    def close(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None
            self._pairs = None

    def _messages(self, reader):
        sides = {self.plan.left: "left", self.plan.right: "right"}
        connections = [c for c in reader.connections if c.topic in sides]
        for connection, log_ns, raw in reader.messages(connections=connections):
            msg = typestore().deserialize_cdr(raw, connection.msgtype)
            yield sides[connection.topic], log_ns, messages.header_stamp(msg), msg

    def read(self) -> StereoFrame | None:
        pair = next(self._pairs, None)
        if pair is None:
            if self.count == 0:
                raise InputError(f"--source {self.name}: no left/right messages with stamps within "
                                 f"{self.tolerance_ns / 1e6:g} ms of each other (raise --slop for unsynchronised cameras)")
            return None
        left_item, right_item = pair
        left = messages.image_to_rgb(left_item.msg, self.plan.msgtypes[self.plan.left], self.plan.left)
        right = messages.image_to_rgb(right_item.msg, self.plan.msgtypes[self.plan.right], self.plan.right)
        if left.shape != right.shape:
            raise InputError(f"--source {self.plan.path}: {self.plan.left} has {left.shape[1]}x{left.shape[0]} images "
                             f"but {self.plan.right} has {right.shape[1]}x{right.shape[0]}; left and right must have one size")
        if self.swap:
            left, right = right, left
        meta = FrameMeta(left_item.stamp, right_item.stamp, left_item.log_ns)
        frame = StereoFrame(np.ascontiguousarray(left), np.ascontiguousarray(right), self.count, time.perf_counter(),
                            meta=meta)
        self.count += 1
        return frame
