"""Activation-range calibration: one pass over the pairs, TensorRT-style entropy / percentile / min-max.

ONNX Runtime's own entropy calibrator searches thresholds in pure Python (seconds per tensor
at 2048 bins, most of an hour for the student's few hundred tensors). This module collects
the same statistics in one pass, a pair at a time (memory stays at one pair's activations),
keeping per tensor the signed min/max and a histogram of absolute values with a fixed bin
width that grows by whole bins when a later pair exceeds the range. Thresholds follow
TensorRT's EntropyCalibration2 idea: the amax whose 128-level quantization of the clipped
distribution loses the least information (KL divergence). The result is written as ONNX
Runtime's calibration cache, which ``quantize_static`` then reuses for every variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

HIST_BINS = 2048  # TensorRT's histogram resolution for entropy calibration
MAX_BINS = 2 * HIST_BINS  # beyond this, adjacent bins merge (bin width doubles)
QUANT_LEVELS = 128  # int8 magnitudes 0..127
START_BIN = 128
MAX_CLIPPED = 0.01  # at most 1% of the calibration values may fall beyond the chosen amax
CHUNK_BYTES = 3 << 29  # 1.5 GiB of calibration outputs per inference run


class TensorStats:
    """Running min, max and |x| histogram of one tensor."""

    def __init__(self) -> None:
        self.low = np.inf
        self.high = -np.inf
        self.hist: np.ndarray | None = None
        self.width = 0.0

    def update(self, values: np.ndarray, histogram: bool) -> None:
        values = np.asarray(values, dtype=np.float32).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        if histogram:
            self.add_histogram(np.abs(values))

    def add_histogram(self, magnitudes: np.ndarray) -> None:
        amax = float(magnitudes.max())
        if self.hist is None:
            if amax == 0.0:
                return
            self.width = amax / HIST_BINS
            self.hist = np.zeros(HIST_BINS, dtype=np.int64)
        needed = int(np.ceil(amax / self.width))
        if needed > self.hist.size:
            self.hist = np.concatenate([self.hist, np.zeros(needed - self.hist.size, dtype=np.int64)])
        while self.hist.size > MAX_BINS:
            # Merge pairs so the histogram stays small; an odd last bin gets an empty partner.
            padded = np.concatenate([self.hist, np.zeros(self.hist.size % 2, dtype=np.int64)])
            self.hist = padded[0::2] + padded[1::2]
            self.width *= 2
        index = np.minimum((magnitudes / self.width).astype(np.int64), self.hist.size - 1)
        self.hist += np.bincount(index, minlength=self.hist.size)

    @property
    def amax(self) -> float:
        return max(abs(self.low), abs(self.high))


def entropy_amax(hist: np.ndarray, width: float) -> float:
    """The clipping threshold minimising KL(P || Q) between the clipped distribution and its 128-level version.

    For every candidate bin count i (128 .. last non-empty bin): P is the histogram cut at i
    with the outliers folded into its last bin; Q spreads each of 128 levels' mass evenly
    over that level's non-empty bins. All candidates are scored at once from prefix sums,
    and ties go to the widest range, as TensorRT's calibrator does. Unlike TensorRT's, cuts
    clipping more than 1% of the values are not considered.

    Args:
        hist: counts of |x| per bin (bin k covers [k*width, (k+1)*width)).
        width: bin width.

    Returns:
        amax, the upper edge of the best bin count.
    """
    h = hist.astype(np.float64)
    last = int(np.nonzero(h)[0].max()) + 1 if h.any() else 0
    if last <= START_BIN:
        return last * width
    h = h[:last]
    mass = np.concatenate([[0.0], np.cumsum(h)])
    count = np.concatenate([[0.0], np.cumsum(h > 0)])
    plogp = np.concatenate([[0.0], np.cumsum(xlogx(h))])
    total = mass[-1]
    i = np.arange(START_BIN, last + 1)
    # Level j of candidate i holds bins ceil(j*i/128) .. ceil((j+1)*i/128) - 1.
    bounds = (np.arange(QUANT_LEVELS + 1)[None, :] * i[:, None] + QUANT_LEVELS - 1) // QUANT_LEVELS
    level_mass = mass[bounds[:, 1:]] - mass[bounds[:, :-1]]
    level_count = count[bounds[:, 1:]] - count[bounds[:, :-1]]
    outliers = total - mass[i]
    p_level = level_mass.copy()
    p_level[:, -1] += outliers
    p_entropy = plogp[i - 1] + xlogx(h[i - 1] + outliers)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_q = np.where(level_count > 0, np.log(level_mass / np.maximum(level_count, 1.0)), 0.0)
        kl = p_entropy / total - np.log(total) - (p_level * log_q).sum(axis=1) / total + np.log(mass[i])
    # Outliers folded onto an empty last bin, or a cut holding no values at all, leave P mass
    # where Q has none: infinite divergence. A cut clipping more than MAX_CLIPPED of the values
    # is refused too: KL alone would happily clip a narrow band far from zero to one level.
    kl[((h[i - 1] == 0) & (outliers > 0)) | (mass[i] == 0) | (outliers > MAX_CLIPPED * total)] = np.inf
    best = kl.size - 1 - int(np.argmin(kl[::-1]))
    return float(i[best] * width)


def xlogx(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, values * np.log(np.where(values > 0, values, 1.0)), 0.0)


def percentile_amax(hist: np.ndarray, width: float, percentile: float) -> float:
    """The |x| below which ``percentile`` percent of the values fall."""
    cumulative = np.cumsum(hist) / max(hist.sum(), 1)
    index = int(np.searchsorted(cumulative, percentile / 100.0))
    return min(index + 1, hist.size) * width


def calibration_tensors(model, op_types: tuple[str, ...] | None) -> dict[str, int]:
    """Float tensors entering or leaving nodes of ``op_types`` (every node when None), weights excluded.

    Returns:
        tensor name -> size in bytes (0 when its shape is not static), in graph order.
    """
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    sizes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tensor = value.type.tensor_type
        if tensor.elem_type == onnx.TensorProto.FLOAT:
            dims = [d.dim_value for d in tensor.shape.dim]
            sizes[value.name] = 4 * int(np.prod(dims)) if dims and all(dims) else 0
    initializers = {t.name for t in model.graph.initializer}
    tensors = {}
    for node in model.graph.node:
        if op_types is None or node.op_type in op_types:
            for name in list(node.input) + list(node.output):
                if name in sizes and name not in initializers:
                    tensors[name] = sizes[name]
    return tensors


def chunk_by_bytes(tensors: dict[str, int], budget: int = CHUNK_BYTES) -> list[list[str]]:
    """Split tensor names into groups whose outputs fit ``budget`` bytes (one tensor may exceed it alone)."""
    chunks, current, used = [], [], 0
    for name, size in tensors.items():
        if current and used + size > budget:
            chunks.append(current)
            current, used = [], 0
        current.append(name)
        used += size
    return chunks + [current] if current else chunks


def augmented_model(model, tensors: list[str], path: Path) -> Path:
    """A copy of ``model`` that also outputs every tensor to calibrate."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    copy.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in tensors if name not in present
    )
    onnx.save(copy, str(path))
    return path


def collect(model, tensors: dict[str, int], feeds: list[dict], work: Path, histogram: bool,
            on_progress: Callable[[int], None] | None = None) -> dict[str, TensorStats]:
    """Run the augmented model on each feed and accumulate per-tensor statistics.

    The outputs of one run are capped at ``CHUNK_BYTES``: at 480x640 the student's Conv
    tensors alone take about 2 GiB, so large sets are fetched in several runs per pair.
    """
    from toolkit.backends.onnxrt import open_session

    session = open_session(augmented_model(model, list(tensors), work / "augmented.onnx"),
                           providers=["CPUExecutionProvider"])
    stats = {name: TensorStats() for name in tensors}
    chunks = chunk_by_bytes(tensors)
    for index, feed in enumerate(feeds, start=1):
        for chunk in chunks:
            for name, value in zip(chunk, session.run(chunk, feed)):
                stats[name].update(value, histogram)
        if on_progress:
            on_progress(index)
    return stats


def tensor_ranges(stats: dict[str, TensorStats], method: str, percentile: float, symmetric: bool) -> dict:
    """tensor -> (low, high): symmetric +-amax for entropy/percentile; min/max for minmax."""
    ranges = {}
    for name, stat in stats.items():
        if not np.isfinite(stat.low):
            ranges[name] = (0.0, 0.0)
            continue
        if method == "minmax" or stat.hist is None:
            amax = stat.amax
            ranges[name] = (-amax, amax) if symmetric else (stat.low, stat.high)
            continue
        amax = entropy_amax(stat.hist, stat.width) if method == "entropy" else percentile_amax(stat.hist, stat.width, percentile)
        amax = min(amax, stat.amax)
        ranges[name] = (-amax, amax) if symmetric else (max(stat.low, -amax), min(stat.high, amax))
    return ranges


def write_ort_ranges(ranges: dict, method: str, path: Path) -> Path:
    """Save ranges as ONNX Runtime's calibration cache, which ``quantize_static`` reuses."""
    from onnxruntime.quantization import CalibrationMethod, TensorData, TensorsData, save_tensors_data

    ort_method = getattr(CalibrationMethod, {"entropy": "Entropy", "percentile": "Percentile", "minmax": "MinMax"}[method])
    data = {name: TensorData(lowest=np.array(low, np.float32), highest=np.array(high, np.float32))
            for name, (low, high) in ranges.items()}
    save_tensors_data(TensorsData(ort_method, data), path)
    return path
