"""Held-out EPE over training of the built-in weights, both stages, as a plot.

    python benchmarks/model-card/training_curve.py                       # re-plot the committed series
    python benchmarks/model-card/training_curve.py --log STAGE1_LOG --log STAGE2_LOG   # from `stereo-trt train` output

Reads the "step N: held-out EPE x px, bad-2 y%" lines that ``stereo-trt train`` prints,
writes training_log.json (the series) and training_curve.png next to this script. The
held-out set is the training run's own: 8 procedural synthetic scenes at the crop size.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
LINE = re.compile(r"step (\d+): held-out EPE ([\d.]+) px, bad-2 ([\d.]+)%")


def read_log(path: Path) -> list:
    return [{"step": int(m[1]), "epe": float(m[2]), "bad2_percent": float(m[3])}
            for m in map(LINE.search, path.read_text().splitlines()) if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", action="append", type=Path, help="a stage's training output, in order")
    args = parser.parse_args()
    series_path = HERE / "training_log.json"
    if args.log:
        stages = [read_log(path) for path in args.log]
        series_path.write_text(json.dumps({"stages": stages}, indent=1) + "\n")
    stages = json.loads(series_path.read_text())["stages"]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    offset = 0
    for index, points in enumerate(stages, start=1):
        ax.plot([offset + p["step"] for p in points], [p["epe"] for p in points], marker=".", label=f"stage {index}")
        offset += points[-1]["step"] if points else 0
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step (stages back to back)")
    ax.set_ylabel("held-out synthetic EPE (px)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "training_curve.png")
    print(f"wrote {HERE / 'training_curve.png'}")


if __name__ == "__main__":
    main()
