"""Accuracy, per-layer sensitivity and speed of quantized models, measured in ONNX Runtime.

Every comparison runs the candidate and the FP32 model on the same preprocessed held-out
feeds and compares disparities at source resolution (``preprocess.restore_disparity``):
"EPE vs FP32" is the mean absolute difference in source pixels, "bad-1" the share of pixels
off by more than one pixel. Where held-out pairs carry ground truth, EPE and bad-1 against
it are reported for both models as well. A model with a confidence output is also checked
for keeping its ranking: the Spearman correlation with FP32's confidence, per pair.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from toolkit import preprocess
from toolkit.backends.onnxrt import open_session
from toolkit.bench.metrics import spearman
from toolkit.quantize_data import PreparedSample


@dataclass
class Accuracy:
    """A candidate against the FP32 model (and against ground truth where there is some)."""

    epe: float
    bad1: float
    max_abs_diff: float
    pairs: int
    vs_gt: dict = field(default_factory=dict)
    confidence_spearman: float | None = None  # lowest per-pair rank correlation with FP32's confidence

    def to_dict(self) -> dict:
        return asdict(self)


class Evaluator:
    """Runs models on held-out feeds and compares them with the FP32 reference, computed once.

    Args:
        fp32_path: the FP32 ONNX model.
        samples: held-out pairs.
        threads: ONNX Runtime intra-op threads.
    """

    def __init__(self, fp32_path: Path, samples: list[PreparedSample], threads: int | None = None) -> None:
        self.samples = samples
        self.threads = threads
        self.measured: dict[tuple, Accuracy] = {}
        self.reference, self.reference_confidence = self.predict(fp32_path)

    def predict(self, model_path: Path, count: int | None = None) -> tuple[list, list | None]:
        """Disparity (and confidence, None without that output) at source resolution for the
        first ``count`` held-out pairs (all when None)."""
        session = open_session(model_path, self.threads)
        names = ["disparity"] + [o.name for o in session.get_outputs() if o.name == "confidence"]
        disparities, confidences = [], []
        for sample in self.samples[:count]:
            raw = session.run(names, sample.feed)
            disparities.append(preprocess.restore_disparity(np.asarray(raw[0], np.float32), sample.geometry))
            if len(raw) > 1:
                confidences.append(preprocess.crop_to_source(np.asarray(raw[1], np.float32), sample.geometry))
        return disparities, (confidences if len(names) > 1 else None)

    def accuracy(self, model_path: Path, count: int | None = None) -> Accuracy:
        """EPE / bad-1 / max difference of ``model_path`` against FP32 over the first ``count`` pairs (memoised)."""
        key = (str(model_path), count)
        if key not in self.measured:
            self.measured[key] = self.measure(model_path, count)
        return self.measured[key]

    def measure(self, model_path: Path, count: int | None) -> Accuracy:
        predictions, confidences = self.predict(model_path, count)
        diffs = np.concatenate([np.abs(p - r).ravel() for p, r in zip(predictions, self.reference)])
        result = Accuracy(float(diffs.mean()), float((diffs > 1.0).mean()), float(diffs.max()), len(predictions))
        result.vs_gt = self.against_ground_truth(predictions)
        if confidences is not None and self.reference_confidence is not None:
            result.confidence_spearman = min(
                spearman(c, r) for c, r in zip(confidences, self.reference_confidence))
        return result

    def against_ground_truth(self, predictions: list[np.ndarray]) -> dict:
        """EPE and bad-1 of FP32 and the candidate against ground truth, and their deltas; {} without GT."""
        pairs = [(p, r, s) for p, r, s in zip(predictions, self.reference, self.samples) if s.gt is not None]
        if not pairs:
            return {}
        candidate = np.concatenate([np.abs(p - s.gt)[s.valid] for p, _, s in pairs])
        reference = np.concatenate([np.abs(r - s.gt)[s.valid] for _, r, s in pairs])
        if candidate.size == 0:
            return {}
        scores = {"fp32": score(reference), "quantized": score(candidate), "pairs": len(pairs)}
        scores["epe_delta"] = scores["quantized"]["epe"] - scores["fp32"]["epe"]
        scores["bad1_delta"] = scores["quantized"]["bad1"] - scores["fp32"]["bad1"]
        return scores


def score(errors: np.ndarray) -> dict:
    return {"epe": float(errors.mean()), "bad1": float((errors > 1.0).mean())}


@dataclass
class LayerGroup:
    """Quantizable nodes sharing one set of weights (a module called per iteration or per view)."""

    name: str
    nodes: list[str]


def layer_groups(model, op_types: tuple[str, ...], excluded: set) -> list[LayerGroup]:
    """Group quantizable nodes by their weights; nodes without constant weights stand alone.

    Weights are compared by content, not by initializer name: the exporter folds batch norm
    into each call of a module separately (left and right image, every GRU iteration), so one
    module's weights appear under several names.
    """
    import hashlib

    initializers = {init.name: init for init in model.graph.initializer}
    groups: dict[str, LayerGroup] = {}
    for node in model.graph.node:
        if node.op_type not in op_types or node.name in excluded:
            continue
        weight = initializers.get(node.input[1]) if len(node.input) > 1 else None
        key = node.name if weight is None else hashlib.sha1(
            repr(list(weight.dims)).encode() + onnx_bytes(weight)).hexdigest()
        if key not in groups:
            groups[key] = LayerGroup(node.name, [])
        groups[key].nodes.append(node.name)
    return list(groups.values())


def onnx_bytes(tensor) -> bytes:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor).tobytes()


@dataclass(frozen=True)
class Budget:
    """What a quantized model must keep: EPE vs FP32, and the confidence's ranking when it has one.

    Attributes:
        epe: largest EPE vs FP32 in px.
        spearman: smallest per-pair Spearman of the confidence vs FP32's, or None (no confidence output).
    """

    epe: float
    spearman: float | None = None

    def shortfall(self, accuracy: Accuracy) -> float:
        """How far ``accuracy`` is from the budget, as a multiple of it; <= 1 meets it.

        max(EPE / budget, (1 - rho) / (1 - rho_min)): one number that ranks layers by whichever
        of the two they hurt more, relative to what is allowed.
        """
        ratios = [accuracy.epe / self.epe]
        if self.spearman is not None and accuracy.confidence_spearman is not None:
            ratios.append((1.0 - accuracy.confidence_spearman) / max(1.0 - self.spearman, 1e-9))
        return max(ratios)

    def met_by(self, accuracy: Accuracy) -> bool:
        return self.shortfall(accuracy) <= 1.0


def describe(accuracy: Accuracy) -> str:
    ranked = "" if accuracy.confidence_spearman is None else f", confidence Spearman {accuracy.confidence_spearman:.4f}"
    return f"EPE {accuracy.epe:.4f} px{ranked}"


def rank_sensitivity(groups: list[LayerGroup], quantize_only: Callable, evaluator: Evaluator, pairs: int,
                     budget: Budget, on_progress: Callable | None = None) -> list[dict]:
    """Quantize each group alone and measure it vs FP32 on ``pairs`` held-out pairs; most harmful first.

    Args:
        groups: the quantizable layer groups.
        quantize_only: nodes -> path of a model with only those nodes quantized.
        evaluator: held-out comparison against FP32.
        pairs: how many held-out pairs each measurement uses.
        budget: orders the groups by ``budget.shortfall`` (EPE, and the confidence ranking when there is one).
        on_progress: optional callback(message).
    """
    ranked = []
    for index, group in enumerate(groups, start=1):
        accuracy = evaluator.accuracy(quantize_only(group.nodes), pairs)
        ranked.append({"layer": group.name, "nodes": group.nodes, "epe": accuracy.epe, "bad1": accuracy.bad1,
                       "confidence_spearman": accuracy.confidence_spearman, "shortfall": budget.shortfall(accuracy)})
        if on_progress:
            on_progress(f"sensitivity {index}/{len(groups)}: {group.name} {describe(accuracy)}")
    return sorted(ranked, key=lambda item: item["shortfall"], reverse=True)


def search_budget(ranked: list[dict], quantize_without: Callable, evaluator: Evaluator, budget: Budget,
                  on_progress: Callable | None = None) -> tuple[int, list[dict]]:
    """Smallest k such that keeping the k most harmful groups in float meets ``budget``.

    Doubles k until the budget is met, then bisects between the last miss and the first hit.
    Sensitivities do not add up exactly, so every step is measured on all held-out pairs.

    Returns:
        (k, steps measured: [{"kept_float": k, "epe": ..., "bad1": ..., "confidence_spearman": ...}]).
    """
    measured: dict[int, bool] = {}
    steps = []

    def meets(k: int) -> bool:
        if k not in measured:
            nodes = [node for item in ranked[:k] for node in item["nodes"]]
            accuracy = evaluator.accuracy(quantize_without(nodes))
            measured[k] = budget.met_by(accuracy)
            steps.append({"kept_float": k, "epe": accuracy.epe, "bad1": accuracy.bad1,
                          "confidence_spearman": accuracy.confidence_spearman})
            if on_progress:
                on_progress(f"budget search: {k} layer group(s) in float -> {describe(accuracy)}")
        return measured[k]

    low, high = 0, 1
    while high < len(ranked) and not meets(high):
        low, high = high, min(2 * high, len(ranked))
    high = min(high, len(ranked))
    if not meets(high):
        return len(ranked), steps
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if meets(middle) else (middle, high)
    return high, steps


def measure_speed(models: dict[str, Path], feed: dict, runs: int, threads: int | None = None) -> dict:
    """Median latency of each model on one feed, runs interleaved so load drifts hit all alike.

    Returns:
        {label: {"median_ms": ..., "runs": [...]}}, after one untimed warm-up run each.
    """
    sessions = {label: open_session(path, threads) for label, path in models.items()}
    for session in sessions.values():
        session.run(["disparity"], feed)
    times = {label: [] for label in sessions}
    for _ in range(runs):
        for label, session in sessions.items():
            start = time.perf_counter()
            session.run(["disparity"], feed)
            times[label].append((time.perf_counter() - start) * 1000.0)
    return {label: {"median_ms": statistics.median(values), "runs": values} for label, values in times.items()}
