"""Recording the stream's results into a ROS 2 bag that stays readable when the run is interrupted.

Per processed frame, under ``namespace`` (default ``/stereo_trt``):

* ``disparity``: ``stereo_msgs/DisparityImage`` (32FC1, invalid = 0, f and baseline in metres);
* ``depth``: ``sensor_msgs/Image`` 32FC1 in metres, NaN where there is no depth;
* ``confidence``: ``sensor_msgs/Image`` 32FC1 in [0, 1] (models with a confidence only);
* ``points``: organised ``sensor_msgs/PointCloud2`` (x, y, z, rgb), NaN where masked;
* ``left/image_rect``: the rectified left image, rgb8.

Each message carries the input left image's header (stamp and frame id) and is logged at
the input message's bag time, so the result plays next to the input. The bag is written
under a temporary name beside the target and moved into place by ``close``, which the
stream loop calls on every exit path (end, ``q``, Ctrl-C, an error): an interrupted run
leaves a finalised bag with the frames so far. ``OUT.mcap`` is a single MCAP file (what
Foxglove opens and ``ros2 bag play`` plays); a path without a suffix is a rosbag2 folder
(metadata.yaml + MCAP storage).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit import provenance
from toolkit.errors import InputError
from toolkit.outputs import check_output_dir, check_output_file
from toolkit.pointcloud import CloudMask, reproject
from toolkit.ros import messages, require_rosbags, typestore
from toolkit.stream.rectify import DepthConverter

DEFAULT_NAMESPACE = "/stereo_trt"
DEFAULT_FRAME_ID = "stereo_left_optical_frame"
TOPICS = {"disparity": messages.DISPARITY, "depth": messages.IMAGE, "confidence": messages.IMAGE,
          "points": messages.POINTCLOUD, "left/image_rect": messages.IMAGE}


def check_bag_output(path: str | os.PathLike, inputs=()) -> Path:
    """Check ``--record-bag`` before any slow work: a new .mcap file, or a new folder.

    Raises:
        InputError: another suffix, an existing folder bag, an unwritable place, one of the inputs.
    """
    path = Path(path)
    if path.suffix:
        return check_output_file(path, "--record-bag", suffixes=(".mcap",), inputs=inputs)
    if path.exists():
        raise InputError(f"--record-bag {path}: exists; a rosbag2 folder is never overwritten (choose a new name)")
    return check_output_dir(path, "--record-bag", inputs=inputs)


class BagRecorder:
    """A stream sink that writes every frame's results to a ROS 2 bag.

    Use ``write`` as ``StreamOptions.on_result``; ``publish`` (the view) does nothing.

    Args:
        path: OUT.mcap or a new folder (see ``check_bag_output``).
        q_for: (height, width) -> 4x4 Q in metres for frames of that size.
        mask: depth limits for the point cloud (confidence is already in the frame's validity).
        namespace: prefix of the output topics.
        fields: provenance fields for the sidecar.
    """

    def __init__(self, path: str | os.PathLike, q_for: Callable[[int, int], np.ndarray], mask: CloudMask | None = None,
                 namespace: str = DEFAULT_NAMESPACE, fields: dict | None = None) -> None:
        require_rosbags()
        self.path = Path(path)
        self.q_for = q_for
        self.mask = mask or CloudMask()
        self.namespace = namespace.rstrip("/")
        self.fields = dict(fields or {})
        self.tmp: Path | None = None
        self.writer = None
        self.connections: dict[str, object] = {}
        self.frames = 0

    def _open(self) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.stem}.", suffix=".partial", dir=self.path.parent))
        # rosbags names the storage file after the folder: <folder>/<folder>.mcap
        self.writer = Writer(self.tmp / self.path.stem, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()

    def _publish(self, topic: str, msg, log_ns: int) -> None:
        msgtype = TOPICS[topic]
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(f"{self.namespace}/{topic}", msgtype,
                                                                 typestore=typestore())
        self.writer.write(self.connections[topic], log_ns, typestore().serialize_cdr(msg, msgtype))

    def publish(self, view: np.ndarray) -> bool:
        return True

    def write(self, result) -> None:
        """Write one ``loop.FrameResult`` (stamped with its bag header, else the wall clock)."""
        if self.writer is None:
            self._open()
        meta = result.meta
        if meta is not None and hasattr(meta, "stamp"):
            stamp, log_ns = meta.stamp, meta.log_ns
        else:
            log_ns = time.time_ns()
            stamp = messages.Stamp(log_ns, DEFAULT_FRAME_ID)
        for topic, msg in frame_messages(result, self.q_for(*result.disparity.shape), self.mask, stamp).items():
            self._publish(topic, msg, log_ns)
        self.frames += 1

    def close(self) -> Path | None:
        """Finalise the bag and move it into place with its sidecar; returns its path, or None if empty."""
        if self.writer is None:
            return None
        self.writer.close()
        self.writer = None
        if self.frames == 0:  # the first frame failed: nothing worth a bag
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            return None
        written = self.tmp / self.path.stem
        os.replace(written / f"{self.path.stem}.mcap" if self.path.suffix else written, self.path)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
        provenance.write_json(provenance.sidecar_path(self.path), provenance.record(
            artifact="ros2 bag", path=str(self.path), frames=self.frames,
            topics=sorted(f"{self.namespace}/{t}" for t in self.connections), **self.fields))
        return self.path


def frame_messages(result, Q: np.ndarray, mask: CloudMask, stamp: messages.Stamp) -> dict:
    """The output messages of one frame, by topic (see the module docstring).

    Args:
        result: a ``loop.FrameResult``.
        Q: 4x4 reprojection matrix whose points are in metres.
        mask: depth limits for the cloud.
        stamp: header for every message.
    """
    points = reproject(result.disparity, Q)
    depth = np.where(result.valid, points[..., 2], np.nan).astype(np.float32)
    keep = mask.keep(points, result.valid)
    geometry = DepthConverter.from_q(Q)
    focal, baseline = geometry.focal_px, geometry.baseline
    # DisparityImage holds disparities adjusted for the principal points' x offset (verged or
    # alpha-rectified cameras), so that its consumers' Z = f T / d holds, as stereo_image_proc does.
    doffs = geometry.offset * geometry.baseline
    disparity = result.disparity + np.float32(doffs) if doffs else result.disparity
    out = {"disparity": messages.disparity_msg(disparity, result.valid & (disparity > 0), focal, baseline, stamp),
           "depth": messages.image_msg(depth, "32FC1", stamp)}
    if result.confidence is not None:
        out["confidence"] = messages.image_msg(result.confidence.astype(np.float32), "32FC1", stamp)
    out["points"] = messages.pointcloud_msg(points, result.left, keep, stamp)
    out["left/image_rect"] = messages.image_msg(np.ascontiguousarray(result.left[..., :3]), "rgb8", stamp)
    return out
