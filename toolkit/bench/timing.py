"""Latency statistics and the interleaved run order.

Each runner reports its own inference time (``Prediction.infer_ms``: the backend call,
device synchronised inside it); the bench adds decoding to the runner's ``total_ms`` for
the end-to-end figure. Percentiles come from numpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class LatencyStats:
    """Summary of one row's latency samples, in milliseconds.

    Attributes:
        count: number of timed calls.
        min, mean, p50, p90, p99, max: over the samples (percentiles by numpy's linear rule).
        std: standard deviation.
        fps: 1000 / mean, the rate of back-to-back calls on one stream.
    """

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p99: float
    max: float
    std: float
    fps: float

    def as_dict(self) -> dict:
        return asdict(self)


def latency_stats(samples_ms) -> LatencyStats:
    """Summarise latency samples (ms).

    Raises:
        ValueError: no samples.
    """
    samples = np.asarray(samples_ms, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("latency statistics need at least one sample")
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    mean = float(samples.mean())
    return LatencyStats(
        count=int(samples.size), min=float(samples.min()), mean=mean, p50=float(p50), p90=float(p90),
        p99=float(p99), max=float(samples.max()), std=float(samples.std()),
        fps=1000.0 / mean if mean > 0 else float("inf"),
    )


def interleaved_order(count: int, step: int) -> list[int]:
    """Row order for one pair: every row once, the starting row rotated by ``step``.

    Running rows round robin, pair by pair, lets slow machine drift (thermal throttling,
    a neighbour's load) hit every row alike; rotating the start keeps one row from always
    running right after the same other row (and inheriting its cache state).
    """
    if count <= 0:
        return []
    start = step % count
    return list(range(start, count)) + list(range(start))
