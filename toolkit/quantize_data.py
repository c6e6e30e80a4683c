"""Calibration and held-out pairs for ``quantize``, fed through the one inference preprocessing.

A calibration source is a manifest written by ``toolkit.data.instereo2k.write_manifest``,
an InStereo2K root (sampled with ``sample_calibration``: seeded, spread over the parts),
any folder ``toolkit.data.pairs.discover_pairs`` understands, or a list of pairs. Every
pair is decoded and preprocessed up front, so a broken or mismatched pair fails in seconds,
before calibration starts, and the calibrator sees exactly the feed dicts inference sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from toolkit import preprocess
from toolkit.errors import InputError

DEFAULT_N_CALIB = 32
DEFAULT_HOLDOUT = 8


@dataclass
class PreparedSample:
    """One pair, preprocessed: the feed dict, its geometry, and ground truth when the pair has it."""

    name: str
    feed: dict
    geometry: preprocess.Geometry
    gt: np.ndarray | None = None
    valid: np.ndarray | None = None


@dataclass
class CalibrationSplit:
    """Calibration and held-out pairs (disjoint), and where they came from."""

    calibration: list[PreparedSample]
    holdout: list[PreparedSample]
    source: dict


@dataclass(frozen=True)
class PairSource:
    """A pair not yet decoded: a name and a function returning (left, right, gt, valid)."""

    name: str
    load: object


def resolve_pairs(calibration, n_calib: int | None, holdout: int | None,
                  seed: int) -> tuple[list[PairSource], list[PairSource], dict]:
    """Pick calibration and held-out pairs from a manifest, a folder or a list of pairs.

    Args:
        calibration: manifest .json, InStereo2K root, folder of pairs, or a sequence of
            ``StereoPair`` / InStereo2K ``Sample`` objects.
        n_calib: calibration pairs wanted; None takes all a manifest lists (32 elsewhere).
        holdout: held-out pairs wanted (disjoint from the calibration pairs); None takes all a
            manifest lists (8 elsewhere).
        seed: shuffling seed for folders and InStereo2K roots.

    Returns:
        (calibration sources, held-out sources, description of the source for the report).

    Raises:
        InputError: a missing source, no pairs, or too few pairs for n_calib + holdout.
    """
    if isinstance(calibration, (str, os.PathLike)):
        path = Path(calibration)
        if path.suffix.lower() == ".json":
            return from_manifest(path, n_calib, holdout)
        if path.is_file():
            raise InputError(f"--calibration {path}: is a file but not a calibration manifest; expected a "
                             "manifest .json, an InStereo2K root or a folder of stereo pairs")
        if not path.is_dir():
            raise InputError(f"--calibration {path}: no such manifest or folder")
        n_calib = DEFAULT_N_CALIB if n_calib is None else n_calib
        holdout = DEFAULT_HOLDOUT if holdout is None else holdout
        if (path / "train").is_dir() or (path / "test").is_dir():
            return from_instereo2k(path, n_calib, holdout, seed)
        from toolkit.data.pairs import discover_pairs

        pairs = discover_pairs(path)
        order = np.random.default_rng(seed).permutation(len(pairs))
        return split_pairs([stereo_pair_source(pairs[i]) for i in order], n_calib, holdout,
                           str(path), {"kind": "folder", "path": str(path), "seed": seed})
    sources = [as_source(item) for item in calibration]
    return split_pairs(sources, DEFAULT_N_CALIB if n_calib is None else n_calib,
                       DEFAULT_HOLDOUT if holdout is None else holdout, "the pairs given", {"kind": "list"})


def from_manifest(path: Path, n_calib: int | None, holdout: int):
    from toolkit.data.instereo2k import load, read_manifest

    manifest = read_manifest(path)
    n_calib = len(manifest.pairs) if n_calib is None else n_calib
    holdout = len(manifest.holdout) if holdout is None else holdout
    if n_calib > len(manifest.pairs) or holdout > len(manifest.holdout):
        raise InputError(
            f"{path}: lists {len(manifest.pairs)} calibration + {len(manifest.holdout)} held-out pairs, "
            f"too few for --n-calib {n_calib} and --holdout {holdout}"
        )
    calib = [PairSource(s.name, lambda s=s: load(s)) for s in manifest.calibration_samples()[:n_calib]]
    held = [PairSource(s.name, lambda s=s: load(s)) for s in manifest.holdout_samples()[:holdout]]
    return calib, held, {"kind": "manifest", "path": str(path), "root": manifest.root, "seed": manifest.seed}


def from_instereo2k(root: Path, n_calib: int, holdout: int, seed: int):
    from toolkit.data.instereo2k import load, sample_calibration

    split = "train" if (root / "train").is_dir() else "test"
    manifest = sample_calibration(root, n_calib, seed=seed, holdout=holdout, split=split)
    calib = [PairSource(s.name, lambda s=s: load(s)) for s in manifest.calibration_samples()]
    held = [PairSource(s.name, lambda s=s: load(s)) for s in manifest.holdout_samples()]
    source = {"kind": "instereo2k", "root": manifest.root, "split": split, "seed": seed,
              "pairs": manifest.pairs, "holdout": manifest.holdout}
    return calib, held, source


def split_pairs(sources: list[PairSource], n_calib: int, holdout: int, where: str, source: dict):
    if not sources:
        raise InputError(f"{where}: no stereo pairs found for calibration")
    if len(sources) < n_calib + holdout:
        raise InputError(
            f"{where}: {len(sources)} pairs, too few for {n_calib} calibration + {holdout} held-out pairs "
            "(lower --n-calib / --holdout or add pairs)"
        )
    calib, held = sources[:n_calib], sources[n_calib:n_calib + holdout]
    return calib, held, {**source, "pairs": [s.name for s in calib], "holdout": [s.name for s in held]}


def as_source(item) -> PairSource:
    """A PairSource for a ``StereoPair`` (left/right paths) or an InStereo2K ``Sample``."""
    if hasattr(item, "left_path"):
        from toolkit.data.instereo2k import load

        return PairSource(item.name, lambda s=item: load(s))
    if hasattr(item, "left") and hasattr(item, "right"):
        return stereo_pair_source(item)
    raise InputError(f"calibration pair {item!r}: expected a StereoPair or an InStereo2K Sample")


def stereo_pair_source(pair) -> PairSource:
    def load():
        from toolkit.data import io

        left, right = io.read_image(pair.left), io.read_image(pair.right)
        if getattr(pair, "gt_path", None) is None:
            return left, right, None, None
        gt, valid = io.read_disparity(pair.gt_path, pair.gt_scale)
        return left, right, gt, valid

    return PairSource(pair.name, load)


def prepare_sources(sources: Sequence[PairSource], size: tuple[int, int] | None) -> list[PreparedSample]:
    """Decode and preprocess every pair; errors name the pair."""
    prepared = []
    for source in sources:
        try:
            left, right, gt, valid = source.load()
            pair = preprocess.prepare_pair(left, right, size)
        except InputError as exc:
            raise InputError(f"calibration pair {source.name}: {exc}") from None
        if gt is not None and gt.shape != pair.geometry.source_hw:
            raise InputError(f"calibration pair {source.name}: ground truth {gt.shape[1]}x{gt.shape[0]} differs "
                             f"from the images {pair.geometry.source_hw[1]}x{pair.geometry.source_hw[0]}")
        prepared.append(PreparedSample(source.name, pair.feed, pair.geometry, gt, valid))
    return prepared


def check_uniform_size(samples: list[PreparedSample], what: str) -> None:
    """A model without a fixed size pads each pair to its own multiple of 32; calibration needs one size."""
    sizes = sorted({s.geometry.padded_hw for s in samples})
    if len(sizes) > 1:
        raise InputError(
            f"{what}: pairs of different sizes ({', '.join(f'{h}x{w}' for h, w in sizes[:3])}) for a model "
            "without a fixed input size; export with --size or use pairs of one size"
        )


def load_split(calibration, n_calib, holdout, seed, size) -> CalibrationSplit:
    """Resolve, decode and preprocess calibration and held-out pairs at the model's input size."""
    calib_sources, held_sources, source = resolve_pairs(calibration, n_calib, holdout, seed)
    calib = prepare_sources(calib_sources, size)
    held = prepare_sources(held_sources, size)
    if size is None:
        check_uniform_size(calib + held, "calibration pairs")
    return CalibrationSplit(calib, held, source)
