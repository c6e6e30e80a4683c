"""OpenCV semi-global block matching as a runner: the classical baseline and a pseudo-label teacher.

Disparity comes from ``cv2.StereoSGBM`` (3-way mode), the right-view disparity from the
same matcher on the mirrored pair, and a left-right consistency check keeps only the
pixels where both agree. The runner reports those as confidence 1 and all others as
disparity 0, confidence 0. Works with OpenCV 4.x (JetPack) and 5.x (PyPI).
Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import cv2
import numpy as np

from toolkit.backends.base import Runner
from toolkit.backends.spec import SGBM_LR_THRESHOLD, SGBM_MAX_DISP
from toolkit.confidence import lr_consistency_mask
from toolkit.errors import InputError

BLOCK_SIZE = 5
# SGBM returns fixed-point disparity with 4 fractional bits
SGBM_SCALE = 16.0


def create_matcher(max_disp: int, block_size: int = BLOCK_SIZE, channels: int = 3):
    """A ``cv2.StereoSGBM`` for disparities 0..max_disp with the usual smoothness settings.

    P1/P2 follow OpenCV's own guidance (8 and 32 x channels x block area); the internal
    left-right check is off because ``toolkit.confidence.lr_consistency_mask`` does it with a threshold we choose.

    Args:
        max_disp: largest disparity searched, rounded up to a multiple of 16 (OpenCV's requirement).
        block_size: odd matching window size.
        channels: image channels (3 for colour).
    """
    num_disparities = max(16, -(-int(max_disp) // 16) * 16)
    area = block_size * block_size
    return cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=num_disparities,
        blockSize=block_size,
        P1=8 * channels * area,
        P2=32 * channels * area,
        disp12MaxDiff=-1,
        preFilterCap=63,
        uniquenessRatio=10,
        speckleWindowSize=100,
        speckleRange=2,
        mode=cv2.StereoSGBM_MODE_SGBM_3WAY,
    )


def match(matcher, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Left-view disparity in pixels (float32); pixels SGBM could not match are 0.

    SGBM leaves the first numDisparities columns unmatched (and fails outright on images
    narrower than that), so both images get that many black columns on the left, and
    the result is cropped back: every real pixel then has its full search range.
    """
    pad = matcher.getNumDisparities()
    padded = [cv2.copyMakeBorder(image, 0, 0, pad, 0, cv2.BORDER_CONSTANT, value=0) for image in (left, right)]
    raw = matcher.compute(*padded)[:, pad:].astype(np.float32) / np.float32(SGBM_SCALE)
    return np.where(raw > 0, raw, 0).astype(np.float32)


def match_right(matcher, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Right-view disparity (x_left = x_right + d): match the mirrored pair, mirror back.

    Mirroring both images turns the right view into a left view whose matches lie at
    smaller x, which is what SGBM searches.
    """
    mirrored = match(matcher, np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]))
    return np.ascontiguousarray(mirrored[:, ::-1])


def feed_to_image(tensor: np.ndarray) -> np.ndarray:
    """A (1, 3, H, W) float tensor of 0..255 back to an HxWx3 uint8 image."""
    return np.ascontiguousarray(np.clip(np.rint(tensor[0]), 0, 255).astype(np.uint8).transpose(1, 2, 0))


class SGBMRunner(Runner):
    """OpenCV StereoSGBM behind the common runner interface.

    Args:
        max_disp: disparities searched, a multiple of 16.
        block_size: odd matching window size.
        lr_threshold: left-right check threshold in pixels; None turns the check off
            (then every matched pixel counts as valid).
        size: network (H, W) every pair is brought to by the shared preprocessing; None: each
            pair padded to a multiple of 32.

    Outputs of ``infer_impl``: ``disparity`` (1, 1, H, W), 0 where invalid, and
    ``confidence`` (1, 1, H, W), 1 where valid and 0 elsewhere.
    """

    name = "sgbm"
    precision = "fp32"
    providers = ("OpenCV StereoSGBM",)

    def __init__(self, max_disp: int = SGBM_MAX_DISP, block_size: int = BLOCK_SIZE,
                 lr_threshold: float | None = SGBM_LR_THRESHOLD, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        if max_disp < 16 or max_disp % 16:
            raise InputError(f"--max-disp {max_disp}: SGBM searches a multiple of 16 disparities (OpenCV's "
                             "requirement); expected 16, 32, 48 ...")
        if block_size < 1 or block_size % 2 == 0:
            raise InputError(f"SGBM block size {block_size}: expected an odd number >= 1")
        self.max_disp = int(max_disp)
        self.block_size = block_size
        self.lr_threshold = lr_threshold
        self.input_hw = None if size is None else tuple(size)
        self.matcher = None

    def activate_impl(self) -> None:
        self.matcher = create_matcher(self.max_disp, self.block_size)

    def deactivate_impl(self) -> None:
        self.matcher = None

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        left, right = feed_to_image(feed["left"]), feed_to_image(feed["right"])
        disparity = match(self.matcher, left, right)
        if self.lr_threshold is None:
            valid = disparity > 0
        else:
            valid = lr_consistency_mask(disparity, match_right(self.matcher, left, right), self.lr_threshold)
        disparity = np.where(valid, disparity, 0).astype(np.float32)
        return {"disparity": disparity[None, None], "confidence": valid.astype(np.float32)[None, None]}
