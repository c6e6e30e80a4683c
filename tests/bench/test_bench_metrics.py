"""Disparity and confidence metrics against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.bench import metrics
from toolkit.data import io


def test_epe_max_and_bad_x_are_strict_thresholds():
    prediction = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    truth = np.array([[1.0, 3.0], [5.0, 4.0]], dtype=np.float32)  # errors 0, 1, 2, 0
    result = metrics.disparity_metrics(prediction, truth)
    assert result.epe == pytest.approx(0.75)
    assert result.max_error == pytest.approx(2.0)
    assert result.bad1 == pytest.approx(25.0)  # only the 2 px error is > 1
    assert result.bad2 == pytest.approx(0.0)  # 2 px is not > 2
    assert result.bad3 == pytest.approx(0.0)
    assert result.valid_pixels == 4


def test_d1_needs_both_more_than_3px_and_more_than_5_percent():
    truth = np.array([100.0, 40.0, 10.0, 100.0, 50.0], dtype=np.float32)
    errors = np.array([4.0, 4.0, 2.9, 6.0, 2.5], dtype=np.float32)
    # 100/4: > 3 px but 4 < 5 (5 %) -> inlier; 40/4: > 3 and > 2 -> outlier;
    # 10/2.9: > 0.5 but not > 3 -> inlier; 100/6: > 3 and > 5 -> outlier; 50/2.5: neither.
    result = metrics.disparity_metrics((truth + errors)[None], truth[None])
    assert result.d1 == pytest.approx(40.0)
    assert result.bad3 == pytest.approx(60.0)


def test_inf_nan_and_mask_invalid_pixels_are_excluded():
    truth = np.array([[10.0, np.inf, np.nan], [20.0, 30.0, 40.0]], dtype=np.float32)
    valid = np.array([[True, True, True], [True, False, True]])
    prediction = np.array([[11.0, 0.0, 0.0], [20.0, 99.0, 44.0]], dtype=np.float32)
    result = metrics.disparity_metrics(prediction, truth, valid)
    assert result.valid_pixels == 3  # 10, 20, 40; inf, NaN and the masked 30 are out
    assert result.epe == pytest.approx((1.0 + 0.0 + 4.0) / 3)
    assert result.max_error == pytest.approx(4.0)


def test_png_zero_is_invalid_through_the_reader(tmp_path):
    truth = np.array([[0.0, 12.5], [30.0, 0.0]], dtype=np.float32)
    path = io.write_disparity_png(tmp_path / "gt.png", truth, scale=io.INSTEREO2K_SCALE)
    disparity, valid = io.read_disparity(path, io.INSTEREO2K_SCALE)
    result = metrics.disparity_metrics(np.full_like(disparity, 13.5), disparity, valid)
    assert result.valid_pixels == 2
    assert result.epe == pytest.approx((1.0 + 16.5) / 2)


def test_non_finite_prediction_counts_as_failed_pixel():
    truth = np.array([[10.0, 10.0]], dtype=np.float32)
    prediction = np.array([[10.0, np.nan]], dtype=np.float32)
    result = metrics.disparity_metrics(prediction, truth)
    assert result.valid_pixels == 2
    assert math.isinf(result.epe)
    assert result.bad1 == pytest.approx(50.0)
    assert result.d1 == pytest.approx(50.0)


def test_no_valid_pixel_gives_nan_not_zero():
    truth = np.full((2, 2), np.inf, dtype=np.float32)
    result = metrics.disparity_metrics(np.zeros((2, 2), np.float32), truth)
    assert result.valid_pixels == 0
    assert math.isnan(result.epe) and math.isnan(result.d1)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        metrics.disparity_metrics(np.zeros((2, 3)), np.zeros((3, 2)))


def test_sparsification_curve_by_hand():
    errors = np.array([4.0, 0.0, 2.0, 2.0])
    confidence = np.array([0.1, 0.9, 0.5, 0.6])
    curve = metrics.sparsification_curve(errors, confidence, np.array([0.0, 0.25, 0.5, 0.75]))
    # remove 4 (least confident), then the 2 at 0.5, then the 2 at 0.6
    np.testing.assert_allclose(curve, [2.0, 4.0 / 3.0, 1.0, 0.0])
    assert metrics.epe_at_density(errors, confidence, 0.5) == pytest.approx(1.0)
    np.testing.assert_allclose(metrics.oracle_curve(errors, np.array([0.0, 0.25, 0.5])), [2.0, 4.0 / 3.0, 1.0])


def test_perfect_confidence_has_zero_ause():
    errors = np.random.default_rng(0).gamma(1.0, 2.0, size=500)
    result = metrics.sparsification(errors, -errors)
    assert result.ause == pytest.approx(0.0, abs=1e-12)
    assert result.ause_random > 0.5


def test_reversed_confidence_scores_worse_than_random():
    # half the pixels exact, half 1 px off; confidence = error ranks the bad ones as best
    errors = np.repeat([0.0, 1.0], 50)
    removed = np.asarray(metrics.REMOVED_FRACTIONS)
    kept = 100 - 100 * removed
    reversed_curve = np.where(removed <= 0.5, 50 / kept, 1.0)  # the zeros go first
    oracle = np.maximum(0.0, (50 - 100 * removed) / kept)  # the ones go first
    gap = reversed_curve - oracle
    expected = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(removed)))  # trapezoid rule
    result = metrics.sparsification(errors, errors.copy())
    np.testing.assert_allclose(result.curve, reversed_curve)
    np.testing.assert_allclose(result.oracle, oracle)
    assert result.ause == pytest.approx(expected)
    assert result.ause > result.ause_random > 0


def test_constant_confidence_equals_random_removal():
    errors = np.random.default_rng(1).uniform(0, 5, size=200)
    result = metrics.sparsification(errors, np.ones_like(errors))
    np.testing.assert_allclose(result.curve, result.random)
    assert result.ause == pytest.approx(result.ause_random)


def test_sparsification_refuses_infinite_errors():
    with pytest.raises(ValueError, match="finite"):
        metrics.sparsification(np.array([1.0, np.inf]), np.array([0.5, 0.5]))


def test_mean_sparsification_averages_maps():
    errors = np.random.default_rng(2).uniform(0, 3, size=100)
    perfect = metrics.sparsification(errors, -errors)
    useless = metrics.sparsification(errors, np.zeros_like(errors))
    mean = metrics.mean_sparsification([perfect, useless])
    assert mean.ause == pytest.approx((perfect.ause + useless.ause) / 2)
    assert mean.epe_at_density["0.5"] == pytest.approx(
        (perfect.epe_at_density["0.5"] + useless.epe_at_density["0.5"]) / 2)
    assert metrics.mean_sparsification([]) is None


def test_spearman_is_rank_based_and_handles_ties():
    from toolkit.bench.metrics import average_ranks, spearman

    x = np.array([0.1, 0.4, 0.2, 0.9])
    assert spearman(x, x ** 3) == pytest.approx(1.0)  # monotone transform keeps the ranking
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    swapped = np.array([0.1, 0.2, 0.4, 0.9])  # two middle pixels swap places
    assert spearman(x, swapped) == pytest.approx(1 - 6 * 2 / (4 * 15))
    with pytest.raises(ValueError, match="one length"):
        spearman(x, x[:2])
