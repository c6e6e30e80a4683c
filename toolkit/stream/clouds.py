"""Point-cloud snapshots of the stream: a PLY every N processed frames (``run --ply-dir``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit.pointcloud import CloudMask, cloud_from_disparity, write_ply


class CloudSnapshots:
    """Writes ``<folder>/frame_<index>.ply`` for every ``every``-th processed frame.

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
        self.written: list[Path] = []

    def write(self, result) -> None:
        """Take one ``loop.FrameResult``; writes a cloud when its turn has come."""
        due = self.seen % self.every == 0
        self.seen += 1
        if not due:
            return
        cloud = cloud_from_disparity(result.disparity, self.q_for(*result.disparity.shape), result.left,
                                     result.valid, result.confidence, self.mask)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"frame_{result.index:06d}.ply"
        self.written.append(write_ply(path, cloud, {"frame": result.index, **self.fields}))
