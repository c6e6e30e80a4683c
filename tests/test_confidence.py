import numpy as np
import pytest

from tests.backends.test_sgbm import H, W
from toolkit.confidence import lr_confidence, lr_consistency_mask, lr_disagreement, mask_unconfident
from toolkit.data.synthetic import make_scene
from toolkit.errors import InputError

BACKGROUND, FOREGROUND, X0, X1 = 4, 12, 80, 120
BAND = slice(X0 - (FOREGROUND - BACKGROUND), X0)  # left pixels hidden behind the rectangle in the right view
ROWS = slice(24, 72)


def banded_disparities():
    """Exact left/right disparities of ``banded_pair``'s layout."""
    left = np.full((H, W), BACKGROUND, np.float32)
    left[20:76, X0:X1] = FOREGROUND
    right = np.full((H, W), BACKGROUND, np.float32)
    right[20:76, X0 - FOREGROUND:X1 - FOREGROUND] = FOREGROUND
    return left, right


def test_exact_disparities_fail_only_in_the_occlusion_band_and_beyond_the_border():
    left, right = banded_disparities()
    confidence = lr_confidence(left, right)
    assert np.all(confidence[ROWS, BAND] < 1e-3)
    assert np.all(confidence[:, :BACKGROUND] == 0)  # lands left of the right image
    seen = np.ones((H, W), bool)
    seen[ROWS, BAND] = False
    seen[:, :BACKGROUND] = False
    assert np.all(confidence[ROWS][seen[ROWS]] == 1.0)


def test_exact_disparities_of_a_synthetic_scene_agree_where_visible():
    scene = make_scene(5, H, W, 32)
    mask = lr_consistency_mask(scene.disparity, scene.right_disparity, 1.0)
    assert (mask == scene.valid).mean() > 0.97


def test_disagreement_is_interpolated_and_thresholded():
    left = np.full((4, 10), 2.0, np.float32)
    right = np.full((4, 10), 2.0, np.float32)
    right[:, 3] = 3.5  # left x=5 lands on right x=3
    assert np.allclose(lr_disagreement(left, right)[:, 5], 1.5)
    left[:, 6] = 2.5  # lands at x=3.5: half way between 3.5 and 2.0
    assert np.allclose(lr_disagreement(left, right)[:, 6], abs(2.75 - 2.5))
    mask = lr_consistency_mask(left, right, threshold=1.0)
    assert not mask[:, 5].any() and mask[:, 7].all()
    assert not mask[:, :2].any()
    assert lr_consistency_mask(left, right, threshold=2.0)[:, 5].all()


def test_invalid_disparities_are_unverifiable():
    left = np.full((2, 8), 2.0, np.float32)
    right = np.full((2, 8), 2.0, np.float32)
    left[0, 4] = 0.0
    left[1, 4] = np.nan
    right[:, 1] = 0.0  # left x=3 lands there
    confidence = lr_confidence(left, right)
    assert confidence[0, 4] == 0 and confidence[1, 4] == 0 and np.all(confidence[:, 3] == 0)
    assert np.all(confidence[:, 5:] == 1)


def test_mask_unconfident():
    disparity = np.array([[1.0, 2.0, 3.0]], np.float32)
    confidence = np.array([[0.1, 0.5, 0.9]], np.float32)
    assert mask_unconfident(disparity, confidence, None) is disparity
    assert mask_unconfident(disparity, confidence, 0.5).tolist() == [[0.0, 2.0, 3.0]]
    with pytest.raises(InputError, match="--min-confidence 1.5"):
        mask_unconfident(disparity, confidence, 1.5)
    with pytest.raises(InputError, match="no confidence"):
        mask_unconfident(disparity, None, 0.5)


def test_bad_inputs():
    with pytest.raises(InputError, match="one size"):
        lr_disagreement(np.zeros((2, 3)), np.zeros((3, 2)))
