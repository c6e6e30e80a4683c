"""What the loop shows: the left view beside the colorized disparity or depth, a colorbar, a status text.

All images here are HxWx3 uint8 RGB; sinks convert to BGR where OpenCV wants it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


COLORMAP = cv2.COLORMAP_TURBO
BAR_WIDTH = 56
SAMPLE_STEP = 4
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class ValueRange:
    """The colour scale of the map: fixed when given, else following the data smoothly.

    A per-frame 1st..99th percentile range makes the picture flicker; an exponential
    moving average of it (``smoothing`` = weight of the newest frame) does not.

    Attributes:
        low, high: current range; fixed when ``fixed`` is True.
        fixed: keep ``low``/``high`` as given.
        smoothing: EMA weight of each new frame's percentiles.
    """

    low: float = 0.0
    high: float = 1.0
    fixed: bool = False
    smoothing: float = 0.2
    started: bool = False

    def update(self, values: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
        """Fold one frame's valid values into the range; returns (low, high)."""
        if self.fixed:
            return self.low, self.high
        # Every 4th pixel each way: percentiles of a full 720p frame cost tens of ms on a
        # Jetson CPU, and a colour scale does not need them exact.
        finite = values[::SAMPLE_STEP, ::SAMPLE_STEP][valid[::SAMPLE_STEP, ::SAMPLE_STEP]]
        if finite.size == 0:
            return self.low, self.high
        low, high = (float(v) for v in np.percentile(finite, (1, 99)))
        if not self.started:
            self.low, self.high, self.started = low, high, True
        else:
            a = self.smoothing
            self.low, self.high = (1 - a) * self.low + a * low, (1 - a) * self.high + a * high
        self.high = max(self.high, self.low + 1e-3)
        return self.low, self.high


def colorize_map(values: np.ndarray, valid: np.ndarray, low: float, high: float, near_is_high: bool) -> np.ndarray:
    """Colorize disparity (large = near = warm) or depth (small = near = warm); invalid pixels black.

    The colour scale of ``toolkit.data.io.colorize`` with a fixed range, in fewer passes over
    the frame: this runs once per displayed frame.

    Args:
        values: HxW float map.
        valid: HxW bool; False pixels are drawn black.
        low, high: the colour range.
        near_is_high: True for disparity, False for depth (its scale is reversed so near stays warm).
    """
    span = max(high - low, 1e-6)
    scale, offset = (255.0 / span, -low * 255.0 / span) if near_is_high else (-255.0 / span, high * 255.0 / span)
    # Clipped to the range, scale * v + offset lies in 0..255, so convertScaleAbs's absolute
    # value changes nothing; it scales and converts to uint8 in one pass (NaN -> 0, masked below).
    levels = cv2.convertScaleAbs(np.clip(values, low, high), alpha=scale, beta=offset)
    rgb = cv2.cvtColor(cv2.applyColorMap(levels, COLORMAP), cv2.COLOR_BGR2RGB)
    rgb *= valid[:, :, None]
    return rgb


@functools.lru_cache(maxsize=4)
def _bar_background(height: int) -> np.ndarray:
    bar = np.full((height, BAR_WIDTH, 3), 32, dtype=np.uint8)
    # Near is warm at the top for both: disparity's high end, depth's low end.
    ramp = np.linspace(255, 0, max(height - 40, 2)).astype(np.uint8)[:, None]
    colours = cv2.cvtColor(cv2.applyColorMap(np.repeat(ramp, 16, axis=1), COLORMAP), cv2.COLOR_BGR2RGB)
    bar[20:20 + colours.shape[0], 6:22] = colours
    return bar


def colorbar(height: int, low: float, high: float, label: str, near_is_high: bool) -> np.ndarray:
    """A vertical colour scale ``BAR_WIDTH`` px wide, labelled with its ends and ``label``."""
    bar = _bar_background(height).copy()
    top, bottom = (high, low) if near_is_high else (low, high)
    _text(bar, _short(top), (24, 30), 0.35)
    _text(bar, _short(bottom), (24, height - 22), 0.35)
    _text(bar, label, (4, 13), 0.35)
    return bar


def _short(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float) -> None:
    # Dark outline under light text stays readable on any background.
    cv2.putText(image, text, origin, FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_status(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write status lines (FPS, latency, backend) in the top-left corner, in place."""
    scale = max(0.4, min(0.7, image.shape[0] / 720.0))
    step = int(24 * scale / 0.6)
    for i, line in enumerate(lines):
        _text(image, line, (8, step * (i + 1)), scale)
    return image


def compose_view(left: np.ndarray, colored: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """Left image | colorized map | colorbar, side by side, one height."""
    return np.ascontiguousarray(np.hstack([left, colored, bar]))
