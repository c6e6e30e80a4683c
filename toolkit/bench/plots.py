"""Report figures with matplotlib's object API (``Figure`` + Agg canvas, no pyplot).

No pyplot means no global backend switch and no GUI, so a bench run on a headless
Jetson or inside a notebook behaves the same. Every figure is written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from toolkit.provenance import atomic_path

DPI = 100


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")
    return path


def slug(label: str) -> str:
    """A file-name-safe version of a row label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "row"


def _wide_range(values) -> bool:
    values = [v for v in values if v > 0]
    return bool(values) and max(values) / min(values) > 20


def _log_x(axes) -> None:
    """Log-scaled x axis labelled with plain numbers (1, 10, 100), minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())


def latency_cdf(rows: list, path: Path) -> Path:
    """Cumulative distribution of latency per row: backend alone (solid), end to end (dashed).

    Args:
        rows: RowResult dicts (with ``samples``).
        path: PNG to write.
    """
    figure = _figure(7.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    every = []
    for index, row in enumerate(rows):
        colour = f"C{index % 10}"
        for key, style, suffix in (("backend_ms", "-", "backend"), ("end_to_end_ms", "--", "end to end")):
            samples = np.sort(np.asarray(row["samples"][key], dtype=float))
            every.extend(samples.tolist())
            # start each curve at 0 so the first step is drawn too
            fraction = np.arange(0, samples.size + 1) / samples.size
            axes.step(np.concatenate([samples[:1], samples]), fraction, where="post", linestyle=style,
                      color=colour, label=f"{row['info']['label']} ({suffix})")
    if _wide_range(every):
        _log_x(axes)
    axes.set_xlabel("latency per pair (ms)")
    axes.set_ylabel("fraction of calls")
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    axes.set_title("Latency CDF")
    return _save(figure, path)


def speed_vs_epe(rows: list, path: Path, against: str) -> Path:
    """Backend p50 latency against EPE, one labelled point per row.

    Args:
        rows: RowResult dicts.
        path: PNG to write.
        against: "vs_ground_truth" or "vs_reference": which EPE to plot.
    """
    figure = _figure(6.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    xs = []
    for index, row in enumerate(rows):
        if not row.get(against):
            continue
        x, y = row["latency"]["p50"], row[against]["epe"]
        xs.append(x)
        axes.scatter([x], [y], color=f"C{index % 10}", s=40, zorder=3)
        axes.annotate(row["info"]["label"], (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if _wide_range(xs):
        _log_x(axes)
    axes.set_xlabel("backend latency p50 (ms)")
    axes.set_ylabel("EPE " + ("vs ground truth" if against == "vs_ground_truth" else "vs PyTorch reference") + " (px)")
    axes.grid(True, alpha=0.3)
    axes.set_title("Speed vs accuracy (lower left is better)")
    return _save(figure, path)


def error_maps(label: str, worst: list, path: Path) -> Path:
    """One row's worst pairs: left image | disparity | absolute error (px), one pair per line.

    Args:
        label: the row label (figure title).
        worst: WorstPair list, worst first.
        path: PNG to write.
    """
    from toolkit.data import io

    figure = _figure(12.0, 3.0 * len(worst) + 0.4)
    errors = np.concatenate([w.error[np.isfinite(w.error)].ravel() for w in worst]) if worst else np.zeros(1)
    error_max = max(1.0, float(np.percentile(errors, 99))) if errors.size else 1.0
    for line, pair in enumerate(worst):
        left = io.read_image(pair.left_path)
        panels = (
            (left, None, f"{pair.name}: left"),
            (pair.disparity, "turbo", "disparity (px)"),
            (np.ma.masked_invalid(pair.error), _error_colormap(), f"error vs {pair.against}: EPE {pair.epe:.2f} px"),
        )
        for column, (image, cmap, title) in enumerate(panels):
            axes = figure.add_subplot(len(worst), 3, 3 * line + column + 1)
            if cmap is None:
                axes.imshow(image)
            else:
                shown = axes.imshow(image, cmap=cmap, vmin=0, vmax=error_max if column == 2 else None)
                figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.02)
            axes.set_title(title, fontsize=8)
            axes.axis("off")
    figure.suptitle(f"{label}: worst pairs (error panel: grey = no ground truth there)", fontsize=10)
    return _save(figure, path)


def _error_colormap():
    """Magma with masked pixels (no ground truth) in grey, so they do not read as large errors."""
    from matplotlib import colormaps

    return colormaps["magma"].with_extremes(bad="0.6")


def sparsification_curves(rows: list, path: Path) -> Path:
    """Sparsification (solid) and oracle (dotted) curves of the rows with a confidence output."""
    figure = _figure(6.0, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for index, row in enumerate(rows):
        curves = (row.get("confidence") or {}).get("sparsification")
        if not curves:
            continue
        colour = f"C{index % 10}"
        removed = np.asarray(curves["removed"]) * 100
        axes.plot(removed, curves["curve"], color=colour,
                  label=f"{row['info']['label']} (AUSE {curves['ause']:.3f})")
        axes.plot(removed, curves["oracle"], color=colour, linestyle=":")
        axes.plot(removed, curves["random"], color=colour, linestyle="--", alpha=0.5)
    axes.set_xlabel("least confident pixels removed (%)")
    axes.set_ylabel("EPE of the remaining pixels (px)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title("Sparsification (dotted: oracle, dashed: random)")
    return _save(figure, path)
