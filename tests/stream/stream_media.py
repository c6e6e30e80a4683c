"""Small stereo videos and image folders generated from synthetic scenes, for the stream tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toolkit.data import io
from toolkit.data.synthetic import make_scene

HEIGHT, WIDTH, MAX_DISP = 64, 96, 24
SGBM_RANGE = 32  # what SGBM searches for these scenes: MAX_DISP rounded up to OpenCV's multiple of 16


def scenes(count: int, height: int = HEIGHT, width: int = WIDTH) -> list:
    return [make_scene(seed, height, width, MAX_DISP) for seed in range(count)]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames with OpenCV's mp4v (what the toolkit itself records with)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "this OpenCV cannot write mp4v"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def side_by_side_video(path: Path, count: int, repeat: int = 1) -> Path:
    """A side-by-side video of ``count`` distinct scenes, the sequence played ``repeat`` times."""
    frames = [np.hstack([s.left, s.right]) for s in scenes(count)]
    return write_video(path, frames * repeat)


def two_videos(folder: Path, count: int, right_size: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """left.mp4 and right.mp4; ``right_size`` (h, w) makes the right one another size."""
    pairs = scenes(count)
    left = write_video(folder / "left.mp4", [s.left for s in pairs])
    rights = [s.right if right_size is None else cv2.resize(s.right, right_size[::-1]) for s in pairs]
    right = write_video(folder / "right.mp4", rights)
    return left, right


def pair_folder(folder: Path, count: int) -> Path:
    """A left/ + right/ folder of PNG pairs."""
    for k, scene in enumerate(scenes(count)):
        io.write_image(folder / "left" / f"{k:04d}.png", scene.left)
        io.write_image(folder / "right" / f"{k:04d}.png", scene.right)
    return folder


def count_frames(path: Path) -> int:
    """Decode a video to its end and count the frames (the container's count can lie)."""
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames
