"""The built-in real stereo pair: Middlebury 2014 "Motorcycle", as shipped by scikit-image.

scikit-image stores the pair (down-sampled 4x to 500x741) with its ground truth inside
the wheel, so it loads offline. Its disparity is in pixels of the 500x741 images,
positive, with x_right = x_left - d (checked by warping the right image onto the left),
and +inf where the ground truth has no value. Calibration of the down-sampled pair:
focal 994.978 px, baseline 0.193001 m, left principal point (311.193, 254.877) px, and the
principal points differ by 31.086 px (Middlebury's doffs, right minus left), so depth is
focal * baseline / (d + 31.086). (The full-size calib.txt values divided by 4.)
"""

from __future__ import annotations

import numpy as np

from toolkit.errors import DependencyError

FOCAL_PX = 994.978
BASELINE_M = 0.193001
DOFFS_PX = 31.086
CX_PX = 311.193
CY_PX = 254.877


def builtin_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the Motorcycle pair.

    Returns:
        (left, right, disparity, valid): HxWx3 uint8 RGB images, HxW float32 disparity
        (0 where invalid) and HxW bool validity, H x W = 500 x 741.

    Raises:
        DependencyError: scikit-image is not installed.
    """
    try:
        from skimage import data
    except ImportError:
        raise DependencyError(
            "the built-in stereo pair comes from scikit-image, which is not installed: pip install scikit-image"
        ) from None
    left, right, disparity = data.stereo_motorcycle()
    valid = np.isfinite(disparity) & (disparity > 0)
    disparity = np.where(valid, disparity, 0).astype(np.float32)
    return np.ascontiguousarray(left), np.ascontiguousarray(right), disparity, valid
