import importlib.util
import sys

import cv2
import numpy as np
import pytest

from toolkit.data.builtin import builtin_pair
from toolkit.errors import DependencyError

needs_skimage = pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="scikit-image is not installed")


@needs_skimage
def test_motorcycle_pair_shapes_and_ground_truth():
    left, right, disparity, valid = builtin_pair()
    assert left.shape == right.shape == (500, 741, 3) and left.dtype == np.uint8
    assert disparity.shape == valid.shape == (500, 741) and disparity.dtype == np.float32
    assert 0.8 < valid.mean() < 1.0
    assert np.all(disparity[~valid] == 0) and disparity[valid].min() > 0


@needs_skimage
def test_motorcycle_disparity_sign_and_scale():
    """Warping the right image by x - d must match the left better than x + d or a 5% scale error."""
    left, right, disparity, valid = builtin_pair()
    h, w = disparity.shape
    ys = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)

    def error(xs):
        warped = cv2.remap(right.astype(np.float32), xs.astype(np.float32), ys, cv2.INTER_LINEAR)
        return float(np.median(np.abs(warped - left).mean(axis=2)[valid]))

    columns = np.arange(w, dtype=np.float32)[None, :]
    truth = error(columns - disparity)
    assert truth < 5.0
    assert error(columns + disparity) > 2 * truth
    assert error(columns - 1.05 * disparity) > 1.3 * truth


def test_missing_scikit_image_is_a_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    with pytest.raises(DependencyError, match="pip install scikit-image"):
        builtin_pair()
