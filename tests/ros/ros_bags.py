"""Small ROS 2 bags written from generated scenes, for the bag source and sink tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data.synthetic import make_scene
from toolkit.ros import messages, typestore

FOCAL = 100.0
BASELINE = 0.12
SIZE = (64, 96)  # height, width
PERIOD_NS = 100_000_000
START_NS = 1_700_000_000_000_000_000


@dataclass
class BagScene:
    """A bag on disk and what went into it."""

    path: Path
    lefts: list
    rights: list
    disparities: list
    valids: list
    stamps: list


def camera_info(width: int, height: int, frame_id: str, stamp_ns: int, right: bool, focal=FOCAL, baseline=BASELINE):
    """A rectified pinhole camera_info: D = 0, R = I, P = [K | -f B] for the right camera."""
    types = typestore().types
    cx, cy = (width - 1) / 2, (height - 1) / 2
    K = np.array([focal, 0, cx, 0, focal, cy, 0, 0, 1], dtype=np.float64)
    P = np.array([focal, 0, cx, -focal * baseline if right else 0.0, 0, focal, cy, 0, 0, 0, 1, 0], dtype=np.float64)
    roi = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return types[messages.CAMERA_INFO](
        header=messages.make_header(messages.Stamp(stamp_ns, frame_id)), height=height, width=width,
        distortion_model="plumb_bob", d=np.zeros(5), k=K, r=np.eye(3).ravel(), p=P, binning_x=0, binning_y=0, roi=roi)


def encode(image: np.ndarray, encoding: str, stamp: messages.Stamp):
    """An Image message of an RGB array in ``encoding`` (rgb8, bgr8, mono8) or a JPEG/PNG CompressedImage."""
    if encoding in ("jpeg", "png"):
        ok, data = cv2.imencode(f".{encoding}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        return typestore().types[messages.COMPRESSED](header=messages.make_header(stamp), format=encoding,
                                                       data=data.ravel())
    if encoding == "bgr8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    msg = messages.image_msg(image, encoding, stamp)
    return msg


def write_bag(path, storage: str = "mcap", frames: int = 3, encoding: str = "rgb8", with_info: bool = True,
              right_size: tuple | None = None, skew_ns: int = 1_000_000, topics=("/stereo/left/image_rect", "/stereo/right/image_rect"),
              extra_topics=(), distinct: int | None = None) -> BagScene:
    """Write a bag with ``frames`` stereo pairs from generated scenes.

    Args:
        path: a folder (rosbag2 with metadata.yaml), or a .mcap file (the storage file alone).
        storage: "mcap" or "sqlite3".
        encoding: rgb8, bgr8, mono8, jpeg, png, or any other text written as-is (for error tests).
        with_info: write camera_info topics beside the image topics; "uncalibrated": with K and P
            zero, as drivers publish for a camera nobody calibrated.
        right_size: (height, width) of the right images, to mismatch on purpose.
        skew_ns: right stamps lag the left ones by this much.
        extra_topics: other image topics to add (one copy of the left images).
        distinct: generate this many scenes and cycle through them (long bags stay quick to write).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    store = typestore()
    path = Path(path)
    folder = path.with_suffix("") if path.suffix == ".mcap" else path
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    scene = BagScene(path, [], [], [], [], [])
    writer = Writer(folder, version=9, storage_plugin=plugin)
    writer.open()
    image_type = messages.COMPRESSED if encoding in ("jpeg", "png") else messages.IMAGE
    conns = {t: writer.add_connection(t, image_type, typestore=store) for t in (*topics, *extra_topics)}
    infos = {}
    if with_info:
        for t in topics:
            base = t[:-len("/compressed")] if t.endswith("/compressed") else t  # image_transport's naming
            name = base.rpartition("/")[0] + "/camera_info"
            infos[t] = writer.add_connection(name, messages.CAMERA_INFO, typestore=store)
    scenes = {}
    for i in range(frames):
        seed = i % distinct if distinct else i
        s = scenes.setdefault(seed, make_scene(seed, *SIZE, max_disp=20, jitter=False))
        left, right = s.left, s.right
        if right_size is not None:
            right = cv2.resize(right, right_size[::-1])
        stamp = START_NS + i * PERIOD_NS
        for t, image, offset, frame_id in ((topics[0], left, 0, "left_optical"), (topics[1], right, skew_ns, "right_optical")):
            st = messages.Stamp(stamp + offset, frame_id)
            msg = encode(image, encoding, st) if encoding in ("rgb8", "bgr8", "mono8", "jpeg", "png") else \
                messages.image_msg(image, "rgb8", st)
            if encoding not in ("rgb8", "bgr8", "mono8", "jpeg", "png"):
                msg.encoding = encoding
            writer.write(conns[t], st.ns, store.serialize_cdr(msg, image_type))
            if t in infos:
                info = camera_info(image.shape[1], image.shape[0], frame_id, st.ns, right=t == topics[1])
                if with_info == "uncalibrated":
                    info.k, info.p = np.zeros(9), np.zeros(12)
                writer.write(infos[t], st.ns, store.serialize_cdr(info, messages.CAMERA_INFO))
        for t in extra_topics:
            st = messages.Stamp(stamp, "extra")
            writer.write(conns[t], st.ns, store.serialize_cdr(encode(left, "rgb8", st), image_type))
        scene.lefts.append(left)
        scene.rights.append(right)
        scene.disparities.append(s.disparity)
        scene.valids.append(s.valid)
        scene.stamps.append(stamp)
    writer.close()
    if path.suffix == ".mcap":
        shutil.move(str(folder / f"{folder.name}.mcap"), str(path))
        shutil.rmtree(folder)
    return scene


def read_bag(path) -> dict:
    """topic -> list of (log time ns, message) of every message in a bag."""
    from rosbags.rosbag2 import Reader

    out: dict = {}
    with Reader(Path(path)) as reader:
        for connection, log_ns, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (log_ns, typestore().deserialize_cdr(raw, connection.msgtype)))
    return out
