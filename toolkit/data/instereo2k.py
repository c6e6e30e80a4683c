"""InStereo2K reader and the calibration-set sampler built on it.

Official layout::

    <root>/train/part<N>/<id>/left.png, right.png, left_disp.png, right_disp.png
    <root>/test/<id>/left.png, right.png, left_disp.png, right_disp.png

Disparity PNGs are uint16, disparity x 100, 0 = invalid. The dataset's licence is
non-commercial, so it is never vendored: tests build a tree of the same layout with
``toolkit.data.synthetic.write_instereo2k_tree``.

A calibration manifest records which pairs calibrate an INT8 model, which pairs are
held out to check its accuracy (disjoint from the first), the seed, and how every pair
is preprocessed, so a calibration can be repeated and audited.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit import provenance
from toolkit.data import io
from toolkit.errors import InputError

SPLITS = ("train", "test")
DISP_NAME = "left_disp.png"
MANIFEST_KIND = "stereo-trt calibration manifest"
PREPROCESS_TEXT = "toolkit.preprocess, RGB 0..255 float32, size {size}"
DEFAULT_MANIFEST_DIR = Path("calibration")


@dataclass(frozen=True)
class Sample:
    """One InStereo2K pair on disk.

    Attributes:
        name: unique, file-name safe: ``part1_000123`` (train) or ``000123`` (test).
        left_path, right_path: the two images.
        disp_path: ``left_disp.png``, or None when the pair has no ground truth.
    """

    name: str
    left_path: Path
    right_path: Path
    disp_path: Path | None


class Instereo2K:
    """The pairs of one split of an InStereo2K tree, checked when listed.

    Args:
        root: dataset root (the folder holding ``train/`` and ``test/``).
        split: "train" or "test".

    Attributes:
        root, split: as given; samples: list of ``Sample`` sorted by name.

    Raises:
        InputError: the root or split is missing, it holds no pairs, or a pair lacks right.png.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        if split not in SPLITS:
            raise InputError(f"InStereo2K split {split!r}: expected one of {', '.join(SPLITS)}")
        self.root = Path(root)
        self.split = split
        self.samples = list_samples(self.root, split)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self):
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def list_samples(root: Path, split: str) -> list[Sample]:
    """Find every pair of ``split`` under ``root`` (see ``Instereo2K``)."""
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected an InStereo2K root holding train/ and test/)")
    split_dir = root / split
    # train pairs sit two levels down (part<N>/<id>), test pairs one level down (<id>)
    lefts = sorted(split_dir.glob("*/*/left.png" if split == "train" else "*/left.png"))
    if not lefts:
        layout = "train/part<N>/<id>/left.png" if split == "train" else "test/<id>/left.png"
        raise InputError(f"{split_dir}: no InStereo2K pairs found (expected {layout} with right.png beside it)")
    return [_sample(left.parent, split_dir) for left in lefts]


def _sample(pair_dir: Path, split_dir: Path) -> Sample:
    right = pair_dir / "right.png"
    if not right.is_file():
        raise InputError(f"{pair_dir}: has left.png but no right.png (an InStereo2K pair needs both)")
    disp = pair_dir / DISP_NAME
    name = pair_dir.relative_to(split_dir).as_posix().replace("/", "_")
    return Sample(name, pair_dir / "left.png", right, disp if disp.is_file() else None)


def load(sample: Sample) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Decode one pair.

    Returns:
        (left, right, disparity, valid): HxWx3 uint8 RGB images; HxW float32 disparity
        in pixels and HxW bool validity, or (None, None) when the pair has no ground truth.

    Raises:
        InputError: an unreadable file, a disparity PNG that is not 16-bit, or sizes that differ.
    """
    left, right = io.read_image(sample.left_path), io.read_image(sample.right_path)
    if left.shape[:2] != right.shape[:2]:
        raise InputError(f"{sample.right_path}: {_size(right)} differs from {sample.left_path.name} {_size(left)}")
    if sample.disp_path is None:
        return left, right, None, None
    disparity, valid = io.read_disparity(sample.disp_path, io.INSTEREO2K_SCALE)
    if disparity.shape != left.shape[:2]:
        raise InputError(f"{sample.disp_path}: {_size(disparity)} differs from {sample.left_path.name} {_size(left)}")
    return left, right, disparity, valid


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}"


@dataclass
class Manifest:
    """Which pairs calibrate, which are held out, and how they are preprocessed.

    Attributes:
        root: the dataset root, absolute.
        split: the split the pairs come from.
        pairs: calibration pair folders, relative to ``root`` (``train/part1/000123``).
        holdout: held-out pair folders, disjoint from ``pairs``.
        seed: the sampling seed.
        size: network size "HxW", or None for "pad each pair to a multiple of 32".
        preprocess: how every pair becomes network input.
        provenance: what wrote the manifest (``toolkit.provenance.record``).
    """

    root: str
    split: str
    pairs: list[str]
    holdout: list[str]
    seed: int
    size: str | None = None
    preprocess: str = ""
    provenance: dict = field(default_factory=dict)

    def calibration_samples(self) -> list[Sample]:
        """The calibration pairs as ``Sample``s (checked on disk)."""
        return [self._resolve(rel) for rel in self.pairs]

    def holdout_samples(self) -> list[Sample]:
        """The held-out pairs as ``Sample``s (checked on disk)."""
        return [self._resolve(rel) for rel in self.holdout]

    def _resolve(self, rel: str) -> Sample:
        pair_dir = Path(self.root) / rel
        if not (pair_dir / "left.png").is_file():
            raise InputError(f"{pair_dir}: listed in the calibration manifest but has no left.png")
        return _sample(pair_dir, Path(self.root) / self.split)


def sample_calibration(root: str | os.PathLike, n: int, seed: int = 0, holdout: int = 0,
                       split: str = "train", size: tuple[int, int] | None = None) -> Manifest:
    """Choose ``n`` calibration pairs and ``holdout`` held-out pairs, seeded, spread over the parts.

    Pairs are shuffled within each part, then dealt round-robin over the parts; the
    first ``n`` dealt calibrate and the next ``holdout`` are held out, so both sets
    cover every part about equally and never share a pair.

    Args:
        root: InStereo2K root.
        n: number of calibration pairs (> 0).
        seed: sampling seed; the same seed on the same tree gives the same manifest.
        holdout: number of held-out pairs.
        split: split to sample from.
        size: network size the pairs will be preprocessed to, or None (pad to a multiple of 32).

    Raises:
        InputError: a bad count, or fewer pairs in the split than ``n + holdout``.
    """
    if n <= 0 or holdout < 0:
        raise InputError(f"calibration needs n > 0 pairs and holdout >= 0, got n={n}, holdout={holdout}")
    root = Path(root)
    samples = list_samples(root, split)
    if len(samples) < n + holdout:
        raise InputError(
            f"{root / split}: {len(samples)} pairs, too few for {n} calibration + {holdout} held-out pairs"
        )
    dealt = _deal_over_parts([s.left_path.parent.relative_to(root).as_posix() for s in samples], seed)
    size_text = f"{size[0]}x{size[1]}" if size else None
    return Manifest(
        root=str(root.resolve()), split=split, pairs=dealt[:n], holdout=dealt[n:n + holdout], seed=int(seed),
        size=size_text, preprocess=PREPROCESS_TEXT.format(size=size_text or "padded to a multiple of 32"),
    )


def _deal_over_parts(pair_dirs: list[str], seed: int) -> list[str]:
    """Shuffle pairs within each part (the folder above the pair) and interleave the parts."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {}
    for rel in sorted(pair_dirs):
        parts.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
    queues = [list(rng.permutation(parts[key])) for key in sorted(parts)]
    dealt = []
    while any(queues):
        for queue in queues:
            if queue:
                dealt.append(str(queue.pop(0)))
    return dealt


def default_manifest_path(manifest: Manifest) -> Path:
    """``calibration/instereo2k_n<N>_holdout<M>_seed<S>.json``."""
    name = f"instereo2k_n{len(manifest.pairs)}_holdout{len(manifest.holdout)}_seed{manifest.seed}.json"
    return DEFAULT_MANIFEST_DIR / name


def write_manifest(manifest: Manifest, path: str | os.PathLike | None = None) -> Path:
    """Write the manifest as JSON (atomically), with a provenance record; returns the path."""
    path = Path(path) if path is not None else default_manifest_path(manifest)
    data = {
        "kind": MANIFEST_KIND,
        "root": manifest.root,
        "split": manifest.split,
        "seed": manifest.seed,
        "size": manifest.size,
        "preprocess": manifest.preprocess,
        "pairs": manifest.pairs,
        "holdout": manifest.holdout,
        "provenance": provenance.record(tool="toolkit.data.instereo2k.sample_calibration"),
    }
    return provenance.write_json(path, data)


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a manifest written by ``write_manifest``.

    Raises:
        InputError: the file is missing, not JSON, not a calibration manifest, or has
            overlapping calibration and held-out pairs.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such calibration manifest") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON calibration manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise InputError(f"{path}: not a calibration manifest (expected \"kind\": \"{MANIFEST_KIND}\")")
    try:
        manifest = Manifest(
            root=str(data["root"]), split=str(data["split"]), pairs=[str(p) for p in data["pairs"]],
            holdout=[str(p) for p in data["holdout"]], seed=int(data["seed"]), size=data.get("size"),
            preprocess=str(data.get("preprocess", "")), provenance=dict(data.get("provenance", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: calibration manifest lacks or garbles field {exc}") from None
    overlap = set(manifest.pairs) & set(manifest.holdout)
    if overlap:
        raise InputError(f"{path}: {len(overlap)} pair(s) both calibrate and are held out, e.g. {sorted(overlap)[0]}")
    return manifest
