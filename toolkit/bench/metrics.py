"""Disparity accuracy and confidence metrics, over the valid pixels of a reference map.

Accuracy (every error is the absolute disparity difference, in pixels):
  * EPE: mean error; max error;
  * bad-x: percentage of pixels whose error exceeds x px;
  * D1 (KITTI 2015): percentage of pixels whose error exceeds 3 px AND 5 % of the true
    disparity (both must hold).

Invalid reference pixels are excluded: +inf or NaN in a float map, and whatever the
``valid`` mask marks False (a 16-bit PNG's zeros, as ``toolkit.data.io.read_disparity``
reports them). A prediction that is not finite where the reference is valid is a failed
pixel, not a missing one: its error is +inf, so it counts as bad everywhere and makes the
EPE infinite rather than hiding.

Confidence (Ilg et al., ECCV 2018, "Uncertainty estimates and multi-hypotheses networks
for optical flow"): the sparsification curve is the EPE of the pixels that remain as the
least confident ones are removed; the oracle curve removes the largest errors first (the
best any confidence could do); random removal keeps the EPE flat in expectation. AUSE is
the area between the sparsification and oracle curves over the removed fraction: 0 is a
perfect ranking, the random baseline's area is what a useless confidence scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BAD_THRESHOLDS = (1.0, 2.0, 3.0)
D1_ABS_PX = 3.0
D1_REL = 0.05
# removed fraction of the valid pixels at which the sparsification curves are sampled
REMOVED_FRACTIONS = tuple(np.round(np.arange(0.0, 1.0, 0.02), 2).tolist())
DENSITIES = (0.5, 0.9)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoidal integral; numpy 2 renamed ``trapz`` to ``trapezoid`` (JetPack 5 has numpy 1)."""
    integrate = getattr(np, "trapezoid", None) or getattr(np, "trapz")
    return float(integrate(y, x))


def valid_mask(reference: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Pixels where ``reference`` holds a measurement: finite, and True in ``valid`` when given.

    Args:
        reference: HxW disparity (ground truth or a reference prediction).
        valid: optional HxW bool mask from the reader (False where a PNG stores 0).

    Returns:
        HxW bool mask.
    """
    mask = np.isfinite(reference)
    if valid is not None:
        if valid.shape != reference.shape:
            raise ValueError(f"valid mask shape {valid.shape} differs from the reference {reference.shape}")
        mask &= valid.astype(bool)
    return mask


def pixel_errors(prediction: np.ndarray, reference: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Absolute errors at the valid reference pixels, as a flat float64 array.

    A non-finite prediction at a valid pixel gets an error of +inf (see the module notes).
    """
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from the reference {reference.shape}")
    mask = valid_mask(reference, valid)
    errors = np.abs(prediction[mask].astype(np.float64) - reference[mask].astype(np.float64))
    errors[~np.isfinite(errors)] = np.inf
    return errors


@dataclass
class DisparityMetrics:
    """Accuracy of one disparity map against a reference.

    Attributes:
        epe: mean absolute error in px (NaN when no pixel is valid).
        max_error: largest absolute error in px.
        bad1, bad2, bad3: percentage of valid pixels with error > 1, 2, 3 px.
        d1: percentage of valid pixels with error > 3 px and > 5 % of the reference.
        valid_pixels: how many pixels were compared.
    """

    epe: float
    max_error: float
    bad1: float
    bad2: float
    bad3: float
    d1: float
    valid_pixels: int

    def as_dict(self) -> dict:
        return asdict(self)


def bad_x(errors: np.ndarray, threshold: float) -> float:
    """Percentage of ``errors`` strictly above ``threshold`` px (NaN for an empty array)."""
    if errors.size == 0:
        return float("nan")
    return float(np.count_nonzero(errors > threshold) * 100.0 / errors.size)


def d1_outliers(errors: np.ndarray, reference_values: np.ndarray) -> float:
    """KITTI D1: percentage of pixels with error > 3 px AND error > 5 % of the true disparity."""
    if errors.size == 0:
        return float("nan")
    outlier = (errors > D1_ABS_PX) & (errors > D1_REL * np.abs(reference_values))
    return float(np.count_nonzero(outlier) * 100.0 / errors.size)


def disparity_metrics(prediction: np.ndarray, reference: np.ndarray,
                      valid: np.ndarray | None = None) -> DisparityMetrics:
    """EPE, max error, bad-1/2/3 and D1 of ``prediction`` over the valid pixels of ``reference``.

    Args:
        prediction: HxW predicted disparity in px.
        reference: HxW ground truth (or reference prediction); +inf/NaN mark invalid pixels.
        valid: optional HxW bool mask of measured reference pixels.

    Returns:
        DisparityMetrics; every value is NaN when no pixel is valid.
    """
    mask = valid_mask(reference, valid)
    errors = pixel_errors(prediction, reference, mask)
    if errors.size == 0:
        nan = float("nan")
        return DisparityMetrics(nan, nan, nan, nan, nan, nan, 0)
    return DisparityMetrics(
        epe=float(errors.mean()),
        max_error=float(errors.max()),
        bad1=bad_x(errors, 1.0),
        bad2=bad_x(errors, 2.0),
        bad3=bad_x(errors, 3.0),
        d1=d1_outliers(errors, reference[mask]),
        valid_pixels=int(errors.size),
    )


def masked_epe(errors: np.ndarray, keep: np.ndarray) -> float:
    """Mean of ``errors`` where ``keep`` is True (NaN when nothing is kept)."""
    return float(errors[keep].mean()) if np.any(keep) else float("nan")


def _remaining_mean(ordered_errors: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Mean of what remains when the first ``removed`` fraction of ``ordered_errors`` is dropped.

    ``ordered_errors`` is sorted so that the pixels to remove first come first.
    """
    n = ordered_errors.size
    suffix_sums = np.cumsum(ordered_errors[::-1])[::-1]  # suffix_sums[i] = sum(ordered_errors[i:])
    start = np.minimum(np.round(removed * n).astype(int), n - 1)  # always keep at least one pixel
    return suffix_sums[start] / (n - start)


def _tie_averaged(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Replace each value by the mean over the pixels sharing its key.

    Pixels of equal confidence have no order between them; their expected error under
    random tie-breaking is their mean, so a constant confidence scores like random removal
    instead of like whatever order the pixels happen to be stored in.
    """
    _, group, counts = np.unique(keys, return_inverse=True, return_counts=True)
    group = group.reshape(-1)
    return (np.bincount(group, weights=values) / counts)[group]


def sparsification_curve(errors: np.ndarray, confidence: np.ndarray,
                         removed: np.ndarray | None = None) -> np.ndarray:
    """EPE of the remaining pixels as the least confident are removed first.

    Args:
        errors: flat absolute errors of the valid pixels.
        confidence: flat confidence of the same pixels (higher = more reliable).
        removed: removed fractions in [0, 1) (default: ``REMOVED_FRACTIONS``).

    Returns:
        EPE of the remaining pixels at each removed fraction.
    """
    removed = np.asarray(REMOVED_FRACTIONS if removed is None else removed, dtype=np.float64)
    if errors.shape != confidence.shape:
        raise ValueError(f"errors {errors.shape} and confidence {confidence.shape} differ in shape")
    order = np.argsort(confidence, kind="stable")  # least confident first
    ordered = _tie_averaged(errors[order], confidence[order])
    return _remaining_mean(ordered, removed)


def oracle_curve(errors: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
    """EPE of the remaining pixels when the largest errors are removed first (the lower bound)."""
    removed = np.asarray(REMOVED_FRACTIONS if removed is None else removed, dtype=np.float64)
    return _remaining_mean(np.sort(errors)[::-1], removed)


def random_curve(errors: np.ndarray, removed: np.ndarray | None = None) -> np.ndarray:
    """Expected EPE of the remaining pixels under random removal: the full EPE at every fraction."""
    removed = np.asarray(REMOVED_FRACTIONS if removed is None else removed, dtype=np.float64)
    return np.full(removed.shape, errors.mean())


@dataclass
class Sparsification:
    """Confidence quality of one map (or the mean over several maps).

    Attributes:
        removed: removed fractions the curves are sampled at.
        curve, oracle, random: EPE of the remaining pixels at each fraction.
        ause: area between ``curve`` and ``oracle`` (px; 0 is a perfect ranking).
        ause_random: area between ``random`` and ``oracle``: what a useless confidence scores.
        epe_at_density: {"0.5": EPE of the 50 % most confident pixels, "0.9": ...}.
    """

    removed: list
    curve: list
    oracle: list
    random: list
    ause: float
    ause_random: float
    epe_at_density: dict

    def as_dict(self) -> dict:
        return asdict(self)


def epe_at_density(errors: np.ndarray, confidence: np.ndarray, density: float) -> float:
    """EPE of the ``density`` fraction (0, 1] of most confident pixels."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return float(sparsification_curve(errors, confidence, np.array([1.0 - density]))[0])


def sparsification(errors: np.ndarray, confidence: np.ndarray, densities=DENSITIES) -> Sparsification:
    """Sparsification, oracle and random curves, AUSE and the EPE at fixed densities.

    Args:
        errors: flat absolute errors of the valid pixels (finite).
        confidence: flat confidence of the same pixels.
        densities: kept fractions to report the EPE at.

    Raises:
        ValueError: no pixel, or infinite errors (a curve through +inf has no area).
    """
    if errors.size == 0:
        raise ValueError("sparsification needs at least one valid pixel")
    if not np.all(np.isfinite(errors)):
        raise ValueError("sparsification needs finite errors; the prediction has non-finite pixels")
    removed = np.asarray(REMOVED_FRACTIONS, dtype=np.float64)
    curve = sparsification_curve(errors, confidence, removed)
    oracle = oracle_curve(errors, removed)
    rand = random_curve(errors, removed)
    return Sparsification(
        removed=removed.tolist(), curve=curve.tolist(), oracle=oracle.tolist(), random=rand.tolist(),
        ause=_trapezoid(curve - oracle, removed),
        ause_random=_trapezoid(rand - oracle, removed),
        epe_at_density={str(d): epe_at_density(errors, confidence, d) for d in densities},
    )


def mean_sparsification(items: list) -> Sparsification | None:
    """Average several maps' sparsification results (each map weighs the same); None when empty.

    Curves are averaged point by point; since AUSE is linear in the curves, the mean of the
    AUSEs equals the AUSE of the mean curves.
    """
    if not items:
        return None
    def mean(name: str) -> np.ndarray:
        return np.mean([getattr(item, name) for item in items], axis=0)

    densities = items[0].epe_at_density.keys()
    return Sparsification(
        removed=list(items[0].removed),
        curve=mean("curve").tolist(), oracle=mean("oracle").tolist(), random=mean("random").tolist(),
        ause=float(mean("ause")), ause_random=float(mean("ause_random")),
        epe_at_density={d: float(np.mean([item.epe_at_density[d] for item in items])) for d in densities},
    )


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a flat array, ties sharing the mean of their ranks."""
    values = np.asarray(values).ravel()
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(values.size, dtype=np.float64)
    return _tie_averaged(ranks, values)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long arrays (1.0 when both are constant and equal).

    Used to check that a confidence map keeps its ranking after export or quantization: what
    masking by a threshold and the sparsification curve depend on is the order of the pixels.
    """
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"spearman needs two non-empty arrays of one length, got {a.shape} and {b.shape}")
    ra, rb = average_ranks(a) - (a.size - 1) / 2, average_ranks(b) - (b.size - 1) / 2
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    if denominator == 0.0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float((ra * rb).sum() / denominator)
