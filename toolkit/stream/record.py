"""Recording the loop's output to a video that stays playable when the run is interrupted.

Frames go to a temporary file beside the target (``.name.partial.mp4``); ``close`` releases
the writer, which finalises the container, then renames it onto the target and writes the
provenance sidecar. The loop calls ``close`` on every exit path (end of source, ``q``,
Ctrl-C, an error), so an interrupted run leaves a playable file with the frames so far.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from toolkit import provenance
from toolkit.errors import InputError

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class VideoRecorder:
    """A sink that writes every view it is given to a video file.

    Args:
        path: target file; its suffix picks the codec (.mp4/.m4v/.mov/.mkv: mp4v, .avi: MJPG).
        fps: frame rate written into the container, or a function returning it (asked at the
            first frame, when the source is open and knows its rate; None from it means 30).
        fields: provenance fields for the sidecar (source, backend, model ...).

    Raises:
        InputError: an unsupported suffix.
    """

    def __init__(self, path: str | os.PathLike, fps: float | Callable[[], float | None],
                 fields: dict | None = None) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            raise InputError(f"--save {self.path}: unsupported video suffix {suffix!r} "
                             f"(expected one of {', '.join(sorted(FOURCC_BY_SUFFIX))})")
        self.fourcc = FOURCC_BY_SUFFIX[suffix]
        self.fps_source = fps
        self.fps = 30.0
        self.fields = dict(fields or {})
        self.writer: cv2.VideoWriter | None = None
        self.tmp: Path | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def _open(self, size: tuple[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".partial{self.path.suffix}",
                                   dir=self.path.parent)
        os.close(fd)
        # mkstemp creates 0600; the recording gets the permissions any other new file would.
        os.chmod(tmp, 0o666 & ~provenance.current_umask())
        self.tmp, self.size = Path(tmp), size
        fps = self.fps_source() if callable(self.fps_source) else self.fps_source
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if not self.writer.isOpened():
            self.discard()
            raise InputError(f"--save {self.path}: OpenCV could not open a {self.fourcc} video writer here "
                             "(is FFmpeg support built in? try .avi)")

    def publish(self, view: np.ndarray) -> bool:
        """Append one RGB view (resized to the first view's size if it differs); always keeps going."""
        size = (view.shape[1], view.shape[0])
        if self.writer is None:
            self._open(size)
        elif size != self.size:
            view = cv2.resize(view, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
        self.frames += 1
        return True

    def close(self) -> Path | None:
        """Finalise the file and put it in place with its sidecar; returns its path, or None if empty."""
        if self.writer is None:
            return None
        self.writer.release()
        self.writer = None
        if self.frames == 0:
            self.discard()
            return None
        os.replace(self.tmp, self.path)
        self.tmp = None
        provenance.write_json(provenance.sidecar_path(self.path), provenance.record(
            artifact="video", path=str(self.path), frames=self.frames, fps=self.fps, codec=self.fourcc,
            **self.fields))
        return self.path

    def discard(self) -> None:
        """Drop the temporary file without producing the target."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self.tmp is not None and self.tmp.exists():
            self.tmp.unlink()
        self.tmp = None
