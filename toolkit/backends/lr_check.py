"""Left-right checked runner: any runner's disparity, with confidence from the left-right check.

Lives beside the runners it wraps (``toolkit.confidence`` holds the pure-NumPy check and
imports no runner). Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import numpy as np

from toolkit.backends.base import Runner
from toolkit.backends.spec import LR_SUFFIX
from toolkit.confidence import LR_SCALE_PX, lr_confidence
from toolkit.errors import InputError


def mirrored_swap(feed: dict) -> dict:
    """The feed of the mirrored, swapped pair: its left-view disparity is the right view's, mirrored."""
    return {
        "left": np.ascontiguousarray(feed["right"][..., ::-1]),
        "right": np.ascontiguousarray(feed["left"][..., ::-1]),
    }


class LRCheckRunner(Runner):
    """Wraps any runner: same disparity, confidence from the left-right check (two inferences per pair).

    The check runs at network resolution on the preprocessed feed (mirroring a symmetrically
    padded pair keeps it symmetric), so ``scale_px`` is in network pixels. Any confidence
    output of the wrapped model is replaced.

    Args:
        inner: the runner to check (not yet active; this runner activates it).
        scale_px: disagreement at which the confidence falls to 1/e.
    """

    def __init__(self, inner: Runner, scale_px: float = LR_SCALE_PX) -> None:
        super().__init__()
        if scale_px <= 0:
            raise InputError(f"LR scale {scale_px}: expected a positive number of pixels")
        self.inner = inner
        self.scale_px = scale_px
        self.name = inner.name + LR_SUFFIX
        self.precision = inner.precision

    @property
    def input_hw(self):
        return self.inner.input_hw

    @property
    def device(self) -> str:
        return self.inner.device

    @property
    def providers(self) -> tuple:
        return self.inner.providers

    def activate_impl(self) -> None:
        self.inner.activate()

    def deactivate_impl(self) -> None:
        self.inner.deactivate()

    def infer_impl(self, feed: dict) -> dict:
        left_view = self.inner.infer_impl(feed)["disparity"]
        right_view = self.inner.infer_impl(mirrored_swap(feed))["disparity"][..., ::-1]
        confidence = lr_confidence(left_view[0, 0], right_view[0, 0], self.scale_px)
        return {"disparity": left_view, "confidence": confidence[None, None]}
