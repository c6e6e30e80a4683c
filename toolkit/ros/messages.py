"""Conversion between ROS 2 messages (``rosbags`` dataclasses) and the toolkit's arrays.

Images come in as ``sensor_msgs/Image`` (encodings in ``IMAGE_ENCODINGS``) or
``sensor_msgs/CompressedImage`` (JPEG/PNG, decoded by OpenCV) and leave as HxWx3 uint8 RGB.
Results go out as the messages the ROS stereo stack uses: ``stereo_msgs/DisparityImage``,
depth as ``sensor_msgs/Image`` 32FC1 in metres (NaN where there is no depth, REP 118),
confidence as 32FC1, the rectified left image as rgb8, and an organised
``sensor_msgs/PointCloud2`` with x, y, z float32 and packed rgb (NaN points where invalid).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import InputError
from toolkit.ros import typestore

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
DISPARITY = "stereo_msgs/msg/DisparityImage"
POINTCLOUD = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPES = (IMAGE, COMPRESSED)

# encoding -> (channels, OpenCV conversion to RGB or None)
IMAGE_ENCODINGS = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, cv2.COLOR_BGR2RGB),  # OpenCV's (cv_bridge's) channel order
}


@dataclass(frozen=True)
class Stamp:
    """A header: stamp in nanoseconds and frame id."""

    ns: int
    frame_id: str


def header_stamp(msg) -> Stamp:
    return Stamp(int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec), str(msg.header.frame_id))


def make_header(stamp: Stamp):
    types = typestore().types
    time = types["builtin_interfaces/msg/Time"](sec=stamp.ns // 1_000_000_000, nanosec=stamp.ns % 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=time, frame_id=stamp.frame_id)


def check_encoding(msg, msgtype: str, topic: str) -> None:
    """Refuse an Image whose encoding this toolkit does not read (CompressedImage is checked when decoded).

    Raises:
        InputError: naming the topic, the encoding and the ones that are read.
    """
    if msgtype != COMPRESSED and msg.encoding not in IMAGE_ENCODINGS:
        raise InputError(f"topic {topic}: image encoding {msg.encoding!r} is not supported "
                         f"(expected one of {', '.join(IMAGE_ENCODINGS)})")


def image_to_rgb(msg, msgtype: str, topic: str) -> np.ndarray:
    """Decode an Image or CompressedImage into HxWx3 uint8 RGB.

    Raises:
        InputError: an encoding this toolkit does not read, or data that does not decode.
    """
    if msgtype == COMPRESSED:
        frame = cv2.imdecode(np.asarray(msg.data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise InputError(f"topic {topic}: CompressedImage ({msg.format!r}) that OpenCV cannot decode")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    check_encoding(msg, msgtype, topic)
    channels, conversion = IMAGE_ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < width * channels or data.size < step * height:
        raise InputError(f"topic {topic}: a {width}x{height} {msg.encoding} image with step {step} "
                         f"and {data.size} bytes is truncated")
    # Rows may be padded to ``step`` bytes.
    pixels = data[:step * height].reshape(height, step)[:, :width * channels].reshape(height, width, channels)
    if conversion is None:
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def image_msg(array: np.ndarray, encoding: str, stamp: Stamp):
    """A ``sensor_msgs/Image`` holding ``array`` (HxW float32 for 32FC1, HxWx3 uint8 for rgb8)."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return typestore().types[IMAGE](
        header=make_header(stamp), height=height, width=width, encoding=encoding,
        is_bigendian=int(array.dtype.byteorder == ">"), step=array.strides[0],
        data=np.frombuffer(array.tobytes(), dtype=np.uint8))


def image_from_msg(msg) -> np.ndarray:
    """The array inside an Image written by ``image_msg`` (32FC1 -> float32, rgb8 -> uint8 RGB)."""
    if msg.encoding == "32FC1":
        row = np.asarray(msg.data, dtype=np.uint8).reshape(int(msg.height), int(msg.step))
        return row.view("<f4" if not msg.is_bigendian else ">f4")[:, :int(msg.width)].astype(np.float32)
    return image_to_rgb(msg, IMAGE, "")


def disparity_msg(disparity: np.ndarray, valid: np.ndarray, focal_px: float, baseline_m: float, stamp: Stamp):
    """``stereo_msgs/DisparityImage``: invalid pixels are 0, below ``min_disparity``.

    ``delta_d`` is 0: the network's disparity is continuous, not quantised in steps.
    """
    types = typestore().types
    values = np.where(valid, disparity, 0.0).astype(np.float32)
    shown = values[valid & (values > 0)]
    low, high = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 0.0)
    height, width = values.shape
    window = types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=height, width=width,
                                                        do_rectify=False)
    return types[DISPARITY](header=make_header(stamp), image=image_msg(values, "32FC1", stamp), f=float(focal_px),
                            t=float(baseline_m), valid_window=window, min_disparity=low, max_disparity=high,
                            delta_d=0.0)


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """Nx3 (or HxWx3) uint8 RGB -> float32 holding 0x00RRGGBB, the PCL/ROS ``rgb`` field."""
    colors = colors.astype(np.uint32)
    packed = (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]
    return packed.astype(np.uint32).view(np.float32)


def unpack_rgb(values: np.ndarray) -> np.ndarray:
    packed = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)


CLOUD_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f4")])


def pointcloud_msg(points: np.ndarray, colors: np.ndarray, keep: np.ndarray, stamp: Stamp):
    """An organised ``sensor_msgs/PointCloud2`` (one point per pixel, NaN where ``keep`` is False).

    Args:
        points: HxWx3 float32 points (``pointcloud.reproject``), metres.
        colors: HxWx3 uint8 RGB.
        keep: HxW bool of the pixels that are points.
    """
    types = typestore().types
    field = types["sensor_msgs/msg/PointField"]
    height, width = keep.shape
    cloud = np.empty((height, width), dtype=CLOUD_DTYPE)
    for i, name in enumerate("xyz"):
        cloud[name] = np.where(keep, points[..., i], np.nan)
    cloud["rgb"] = pack_rgb(colors[..., :3])
    fields = [field(name=name, offset=CLOUD_DTYPE.fields[name][1], datatype=field.FLOAT32, count=1)
              for name in CLOUD_DTYPE.names]
    return types[POINTCLOUD](header=make_header(stamp), height=height, width=width, fields=fields,
                             is_bigendian=False, point_step=CLOUD_DTYPE.itemsize,
                             row_step=CLOUD_DTYPE.itemsize * width,
                             data=np.frombuffer(cloud.tobytes(), dtype=np.uint8), is_dense=False)


def pointcloud_from_msg(msg) -> np.ndarray:
    """HxW structured array (x, y, z, rgb) of a cloud written by ``pointcloud_msg``."""
    names = [f.name for f in msg.fields]
    if names != list(CLOUD_DTYPE.names) or int(msg.point_step) != CLOUD_DTYPE.itemsize:
        raise InputError(f"PointCloud2 with fields {names} and point step {msg.point_step}: expected x, y, z, rgb float32")
    data = np.asarray(msg.data, dtype=np.uint8)
    return data.view(CLOUD_DTYPE).reshape(int(msg.height), int(msg.width))
