"""What ``run`` writes besides the view: a ROS 2 bag (``--record-bag``) and PLY snapshots (``--ply-dir``).

Both need the rectified geometry as a Q matrix in metres (``geometry``), both take every
processed ``loop.FrameResult`` (``write_to_all`` as ``StreamOptions.on_result``), and both
outputs are checked before any slow work (``check_outputs``). ``config`` below is a
``stream.app.RunConfig``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.errors import InputError
from toolkit.outputs import check_output_dir
from toolkit.pointcloud import CloudMask, cloud_from_disparity, q_matrix, write_ply
from toolkit.stream.display import Window

DEFAULT_PLY_EVERY = 30


class CloudSnapshots:
    """Writes ``<folder>/frame_<index>.ply`` for every ``every``-th processed frame, and on request.

    Use ``write`` as (part of) ``StreamOptions.on_result``.

    Args:
        folder: where the clouds go (created at the first one).
        every: write one cloud per this many processed frames (the first frame always).
        q_for: (height, width) -> 4x4 Q of the rectified frames.
        mask: confidence and depth limits.
        fields: provenance fields for each cloud's sidecar.
    """

    def __init__(self, folder: str | os.PathLike, every: int, q_for: Callable[[int, int], np.ndarray],
                 mask: CloudMask | None = None, fields: dict | None = None) -> None:
        self.folder = Path(folder)
        self.every = every
        self.q_for = q_for
        self.mask = mask or CloudMask()
        self.fields = dict(fields or {})
        self.seen = 0
        self.requested = False
        self.written: list[Path] = []

    def request(self) -> None:
        """Write a cloud for the next frame too, whatever its turn (the window's p key)."""
        self.requested = True

    def write(self, result) -> None:
        """Take one ``loop.FrameResult``; writes a cloud when its turn has come or one was requested."""
        due = self.seen % self.every == 0 or self.requested
        self.seen += 1
        if not due:
            return
        self.requested = False
        cloud = cloud_from_disparity(result.disparity, self.q_for(*result.disparity.shape), result.left,
                                     result.valid, result.confidence, self.mask)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"frame_{result.index:06d}.ply"
        self.written.append(write_ply(path, cloud, {"frame": result.index, **self.fields}))


def geometry(config, rectifier) -> Callable | None:
    """(height, width) -> Q in metres for --record-bag and --ply-dir; None when neither is asked for.

    From the rectifier (calibration or camera_info), else from --focal-px/--baseline with
    the principal point at the image centre.

    Raises:
        InputError: a cloud output without any geometry.
    """
    if not (config.record_bag or config.ply_dir):
        return None
    if rectifier is not None:
        Q = rectifier.q_metres()
        return lambda height, width: Q
    if config.focal_px is not None:
        return lambda height, width: q_matrix(config.focal_px, config.baseline, (width - 1) / 2, (height - 1) / 2)
    option = "--record-bag" if config.record_bag else "--ply-dir"
    raise InputError(f"{option} needs the stereo geometry: --calibration, a bag with camera_info, "
                     "or --focal-px and --baseline (in metres)")


def check_outputs(config) -> None:
    """--record-bag and --ply-dir checked before any slow work.

    Raises:
        InputError: an output that cannot be written, depth limits out of order, cloud
            options without a cloud output (never silently ignored).
        DependencyError: --record-bag without rosbags.
    """
    CloudMask(min_depth=config.min_depth, max_depth=config.max_depth)
    if not (config.record_bag or config.ply_dir) and (config.min_depth is not None or config.max_depth is not None):
        raise InputError("--min-depth/--max-depth apply to the point clouds of --record-bag and --ply-dir")
    if config.ply_every is not None and not config.ply_dir:
        raise InputError("--ply-every needs --ply-dir (where the point clouds go)")
    if config.record_bag:
        from toolkit.ros import require_rosbags
        from toolkit.ros.record import check_bag_output

        require_rosbags()
        check_bag_output(config.record_bag, inputs=config.sources)
    if config.ply_dir:
        check_output_dir(config.ply_dir, "--ply-dir", inputs=config.sources)


def result_writers(config, q_for, fields: dict) -> list:
    """The bag recorder (--record-bag) and PLY snapshots (--ply-dir); each has ``write(result)``.

    Args:
        q_for: from ``geometry``.
    """
    if q_for is None:
        return []
    mask = CloudMask(min_depth=config.min_depth, max_depth=config.max_depth)
    writers = []
    if config.record_bag:
        from toolkit.ros.record import BagRecorder

        writers.append(BagRecorder(config.record_bag, q_for, mask, fields=fields))
    if config.ply_dir:
        writers.append(CloudSnapshots(config.ply_dir, config.ply_every or DEFAULT_PLY_EVERY, q_for, mask, fields))
    return writers


def bind_keys(writers: list, sinks: list) -> None:
    """In a window, p writes a point cloud of the next frame (with --ply-dir)."""
    snapshots = [w for w in writers if isinstance(w, CloudSnapshots)]
    for sink in sinks:
        if snapshots and isinstance(sink, Window):
            sink.keys[ord("p")] = snapshots[0].request


def write_to_all(writers: list) -> Callable:
    def write(result) -> None:
        for writer in writers:
            writer.write(result)
    return write
