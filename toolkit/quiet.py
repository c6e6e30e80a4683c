"""Third-party log noise silenced where a user's file is read.

OpenCV logs its own warnings ("can't open/read file", "IHDR chunk shall be first") and the C
codecs under it print straight to the process's stderr ("libpng error: Read Error",
"Premature end of JPEG file"). Our readers turn every such failure into one ``InputError``
naming the file, so those extra lines around it only confuse. ``native_quiet`` silences both
for the duration of one read.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import cv2

_LOCK = threading.Lock()


@contextlib.contextmanager
def native_quiet():
    """Silence OpenCV's logging and the C libraries' stderr (file descriptor 2) inside the block.

    The descriptor is process-wide: another thread's stderr output during the block is lost,
    so keep the block to the one native call that reads the file.
    """
    with _LOCK:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        saved = _redirect_stderr_to_null()
        try:
            yield
        finally:
            _restore_stderr(saved)
            cv2.utils.logging.setLogLevel(previous)


def _redirect_stderr_to_null() -> int | None:
    """Point descriptor 2 at /dev/null; returns a duplicate of the old one (None when there is no fd 2)."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        return None
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
    finally:
        os.close(null)
    return saved


def _restore_stderr(saved: int | None) -> None:
    if saved is None:
        return
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)


def opencv_reason(exc: Exception) -> str:
    """The reason in a ``cv2.error`` (its text is several lines with the C++ location and the
    failed assertion), as one short line for our messages."""
    text = getattr(exc, "err", None) or str(exc)
    for line in text.splitlines():
        line = line.lstrip("> ").strip().rstrip(":")
        if line:
            return line
    return type(exc).__name__
