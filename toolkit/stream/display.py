"""An on-screen window for the loop, only where a display exists; ``q`` or Esc quits, other keys can be bound."""

from __future__ import annotations

import os
import re
import sys

import cv2
import numpy as np

QUIT_KEYS = (ord("q"), ord("Q"), 27)


def gui_available(build_info: str | None = None) -> bool:
    """Whether this OpenCV has a GUI backend (opencv-python-headless has none)."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    match = re.search(r"^\s*GUI:\s*(\S+)", info, flags=re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NONE"


def has_display(environ: dict | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: an X11 or Wayland display on Linux, always on macOS/Windows."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


class Window:
    """A sink showing each view in a resizable OpenCV window; ``publish`` returns False to quit.

    Must be used from the main thread (GUI toolkits require it).

    Attributes:
        keys: key code -> function called when that key is pressed (``run --ply-dir`` binds p).
    """

    def __init__(self, title: str = "stereo-trt") -> None:
        self.title = title
        self.opened = False
        self.seen_visible = False
        self.keys: dict = {}

    def publish(self, view: np.ndarray) -> bool:
        if not self.opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self.opened = True
        cv2.imshow(self.title, cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return False
        if key in self.keys:
            self.keys[key]()
        # The window's close button: the property drops below 1 once it is gone. Some GUI
        # backends report 0 until the window first appears, so only a window seen visible counts.
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        self.seen_visible = self.seen_visible or visible
        return visible or not self.seen_visible

    def close(self) -> None:
        if self.opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self.opened = False
