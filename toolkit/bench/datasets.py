"""The pairs a benchmark runs on, all as files so that end-to-end timing includes decoding.

``--data`` accepts:
  * ``builtin``: scikit-image's Middlebury Motorcycle pair with ground truth (written to
    a scratch folder as PNG so that it is decoded like any other pair);
  * an InStereo2K root (a folder holding ``train/`` and/or ``test/``): the chosen split,
    the test split by default;
  * anything ``toolkit.data.pairs.discover_pairs`` accepts: a Middlebury- or KITTI-style
    folder, a ``left/`` + ``right/`` folder, a folder of pairs without ground truth, a glob.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.data import io
from toolkit.data.pairs import StereoPair, discover_pairs
from toolkit.errors import InputError

BUILTIN = "builtin"
BUILTIN_NAME = "motorcycle"


@dataclass
class BenchData:
    """The resolved dataset.

    Attributes:
        pairs: StereoPair list, sorted by name.
        description: what ``--data`` resolved to, for the report.
        builtin_gt: (disparity, valid) of the built-in pair (its ground truth stays in memory).
    """

    pairs: list
    description: dict
    builtin_gt: tuple | None = None


def load_bench_data(spec: str, scratch_dir: str | Path, split: str = "test", limit: int | None = None) -> BenchData:
    """Resolve ``--data`` into pairs on disk.

    Args:
        spec: "builtin", an InStereo2K root, or what ``discover_pairs`` accepts.
        scratch_dir: where the built-in pair is written (a temporary folder).
        split: InStereo2K split, used only for an InStereo2K root.
        limit: keep only the first ``limit`` pairs (by name), or None for all.

    Raises:
        InputError: nothing found, a bad split, a bad limit.
    """
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: expected at least one pair")
    if spec == BUILTIN:
        data = _builtin(Path(scratch_dir))
    elif _is_instereo2k_root(Path(spec)):
        data = _instereo2k(Path(spec), split)
    else:
        pairs = discover_pairs(spec)
        data = BenchData(pairs, {"kind": "folder", "path": str(spec)})
    total = len(data.pairs)
    data.pairs = data.pairs[:limit] if limit else data.pairs
    with_gt = len(data.pairs) if data.builtin_gt is not None else sum(p.gt_path is not None for p in data.pairs)
    data.description.update(pairs=len(data.pairs), available=total, with_ground_truth=with_gt)
    return data


def _is_instereo2k_root(path: Path) -> bool:
    return path.is_dir() and ((path / "test").is_dir() or (path / "train").is_dir())


def _instereo2k(root: Path, split: str) -> BenchData:
    from toolkit.data.instereo2k import Instereo2K

    dataset = Instereo2K(root, split)
    pairs = [StereoPair(s.name, s.left_path, s.right_path, s.disp_path, io.INSTEREO2K_SCALE) for s in dataset]
    return BenchData(pairs, {"kind": "instereo2k", "path": str(root), "split": split})


def _builtin(scratch: Path) -> BenchData:
    from toolkit.data.builtin import builtin_pair

    left, right, disparity, valid = builtin_pair()
    left_path = io.write_image(scratch / f"{BUILTIN_NAME}_left.png", left)
    right_path = io.write_image(scratch / f"{BUILTIN_NAME}_right.png", right)
    pair = StereoPair(BUILTIN_NAME, left_path, right_path, None, 1.0)
    return BenchData([pair], {"kind": "builtin", "source": "Middlebury 2014 Motorcycle (scikit-image, 500x741)"},
                     builtin_gt=(disparity, valid))


def read_ground_truth(data: BenchData, pair: StereoPair) -> tuple[np.ndarray, np.ndarray] | None:
    """(disparity, valid) of a pair, or None when it has no ground truth.

    Raises:
        InputError: an unreadable ground-truth file.
    """
    if pair.gt_path is None:
        return data.builtin_gt if data.builtin_gt is not None and pair.name == BUILTIN_NAME else None
    return io.read_disparity(pair.gt_path, pair.gt_scale)


def check_bench_data(data: BenchData, size: tuple[int, int] | None = None) -> None:
    """Decode every pair and its ground truth once, before any row loads or any pass is timed.

    A benchmark should not stop at pair 40 of 50, minutes into its timed passes, on a corrupt
    image or a truncated ground-truth file; decoding costs little next to the passes.

    Raises:
        InputError: naming the file: unreadable, left/right sizes differ, a size the network
            cannot take, or ground truth of another size than its left image.
    """
    from toolkit import preprocess

    for pair in data.pairs:
        left, _ = preprocess.read_checked_pair(pair, size)
        truth = read_ground_truth(data, pair) if pair.gt_path is not None else None
        if truth is not None and truth[0].shape != left.shape[:2]:
            raise InputError(f"{pair.gt_path}: ground truth is {truth[0].shape[1]}x{truth[0].shape[0]}, "
                             f"the left image {left.shape[1]}x{left.shape[0]}")
