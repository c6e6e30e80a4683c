"""Model-agnostic confidence: the left-right consistency check, and masking by confidence.

The check (run by ``toolkit.backends.lr_check.LRCheckRunner``) runs the model a second time on
the mirrored, swapped pair, which turns the right view into a left view; mirroring that result
back gives the right-view disparity. A left pixel x with disparity d lands at x - d in the
right view, where the right-view disparity should again be d. Their difference is the
disagreement; pixels that land outside the image or on an invalid disparity cannot be
verified and get confidence 0. The cost is stated plainly: one more inference per frame.

Runtime module: stays valid on Python 3.8 (JetPack 5) and needs neither PyTorch nor TensorRT.
"""

from __future__ import annotations

import numpy as np

from toolkit.errors import InputError

# Disagreement (px) at which the LR confidence falls to 1/e.
LR_SCALE_PX = 1.0


def lr_disagreement(disp_left: np.ndarray, disp_right: np.ndarray) -> np.ndarray:
    """|d_left(x) - d_right(x - d_left(x))| per left pixel, linearly interpolated; +inf where unverifiable.

    Args:
        disp_left: HxW left-view disparity (x_right = x_left - d).
        disp_right: HxW right-view disparity (x_left = x_right + d).

    Returns:
        HxW float32; +inf where the left disparity is not positive and finite, where it lands
        outside the right image, or where the right disparity there is invalid.
    """
    disp_left = np.asarray(disp_left, dtype=np.float32)
    disp_right = np.asarray(disp_right, dtype=np.float32)
    if disp_left.shape != disp_right.shape or disp_left.ndim != 2:
        raise InputError(f"LR check needs two HxW maps of one size, got {disp_left.shape} and {disp_right.shape}")
    height, width = disp_left.shape
    valid_left = np.isfinite(disp_left) & (disp_left > 0)
    landing = np.arange(width, dtype=np.float32)[None, :] - np.where(valid_left, disp_left, 0)
    inside = valid_left & (landing >= 0) & (landing <= width - 1)
    x0 = np.clip(np.floor(landing), 0, width - 1).astype(np.intp)
    x1 = np.minimum(x0 + 1, width - 1)
    frac = np.clip(landing - x0, 0, 1)
    rows = np.arange(height)[:, None]
    near, far = disp_right[rows, x0], disp_right[rows, x1]
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(near) & np.isfinite(far) & (near > 0) & (far > 0)
        seen = near * (1 - frac) + far * frac
        difference = np.abs(seen - disp_left)
    return np.where(inside & usable, difference, np.inf).astype(np.float32)


def lr_consistency_mask(disp_left: np.ndarray, disp_right: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """HxW bool: True where the two views agree within ``threshold`` pixels (see ``lr_disagreement``)."""
    return lr_disagreement(disp_left, disp_right) <= threshold


def lr_confidence(disp_left: np.ndarray, disp_right: np.ndarray, scale_px: float = LR_SCALE_PX) -> np.ndarray:
    """Confidence in [0, 1] from the LR check: ``exp(-disagreement / scale_px)``, 0 where unverifiable."""
    return np.exp(-lr_disagreement(disp_left, disp_right) / np.float32(scale_px)).astype(np.float32)


def mask_unconfident(disparity: np.ndarray, confidence: np.ndarray | None,
                     min_confidence: float | None) -> np.ndarray:
    """Disparity with pixels below ``min_confidence`` set to 0 (invalid); unchanged without a threshold.

    Raises:
        InputError: a threshold outside [0, 1], or a threshold for a model without confidence.
    """
    if min_confidence is None:
        return disparity
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError(f"--min-confidence {min_confidence}: expected a value in 0..1")
    if confidence is None:
        raise InputError("--min-confidence: this model gives no confidence; export with --confidence or add --lr-check")
    return np.where(confidence >= min_confidence, disparity, 0).astype(np.float32)
