"""Finding stereo pairs (and their ground truth) from what a user types on the command line.

``discover_pairs`` accepts:
  * two files, LEFT RIGHT;
  * a folder holding pairs in any of these layouts (searched at any depth):
      - InStereo2K: ``<pair>/left.png`` + ``right.png`` (ground truth ``left_disp.png``, x100);
      - Middlebury: ``<pair>/im0.png`` + ``im1.png`` (ground truth ``disp0.pfm`` or ``disp0GT.pfm``);
      - KITTI: ``image_2/`` + ``image_3/`` with the same file names (ground truth ``disp_occ_0/``, x256);
      - ``left/`` + ``right/`` with the same file names;
  * left images, as a glob (``'shots/*_left.png'``) or as the files a shell expanded it
    to, each paired by a naming rule such as ``_left -> _right`` or ``im0 -> im1``.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from toolkit.data.io import IMAGE_SUFFIXES, INSTEREO2K_SCALE, KITTI_SCALE
from toolkit.errors import InputError

# (left token, right token) tried in order when pairing a left image by its name
NAMING_RULES = (
    ("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"),
    ("im0", "im1"), ("image_2", "image_3"), ("image_02", "image_03"),
    ("_L", "_R"), ("_l", "_r"), ("cam0", "cam1"), ("view1", "view5"),
)
# ground truth beside a left image: left file name -> (ground-truth file name, PNG scale)
SIBLING_GT = {
    "left.png": (("left_disp.png", INSTEREO2K_SCALE),),
    "im0.png": (("disp0.pfm", 1.0), ("disp0GT.pfm", 1.0)),
}
LAYOUTS_TRIED = ("InStereo2K <pair>/left.png+right.png", "Middlebury <pair>/im0.png+im1.png",
                 "KITTI image_2/+image_3/", "left/+right/ with matching names")
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class StereoPair:
    """One pair on disk.

    Attributes:
        name: unique among the pairs found, file-name safe (no path separators).
        left, right: image paths.
        gt_path: left-view ground-truth disparity (PFM or 16-bit PNG), or None.
        gt_scale: fixed-point scale of a PNG ground truth (100 InStereo2K, 256 KITTI; 1 for PFM).
    """

    name: str
    left: Path
    right: Path
    gt_path: Path | None = None
    gt_scale: float = 1.0


def parse_rule(text: str) -> tuple[str, str]:
    """Parse a naming rule ``"LEFT->RIGHT"`` (for example ``"_left->_right"``).

    Raises:
        InputError: no ``->`` or an empty side.
    """
    left, sep, right = text.partition("->")
    if not sep or not left or not right:
        raise InputError(f"naming rule {text!r}: expected LEFT->RIGHT, for example _left->_right or im0->im1")
    return left, right


def discover_pairs(spec: str | os.PathLike | Sequence[str | os.PathLike],
                   rule: tuple[str, str] | None = None) -> list[StereoPair]:
    """Turn command-line inputs into stereo pairs, sorted by name.

    Args:
        spec: LEFT RIGHT (two files), one folder, one glob of left images, or a list of
            left images (a glob the shell expanded); a single string is one input.
        rule: (left token, right token) to pair left images by name; None tries
            ``NAMING_RULES`` in order.

    Raises:
        InputError: a missing path, an unpaired image, or a folder / glob with no pairs.
    """
    items = [str(spec)] if isinstance(spec, (str, os.PathLike)) else [str(s) for s in spec]
    if not items:
        raise InputError("no input given: expected LEFT RIGHT images, a folder of pairs or a glob of left images")
    if len(items) == 1 and any(ch in items[0] for ch in GLOB_CHARS) and not Path(items[0]).exists():
        return _from_glob(items[0], rule)
    if len(items) == 1:
        path = Path(items[0])
        if path.is_dir():
            return _from_folder(path)
        if path.is_file():
            return _unique_names(_from_left_images([path], rule))
        raise InputError(f"{path}: no such file or folder")
    for item in items:
        if not Path(item).is_file():
            raise InputError(f"{item}: no such image file (several inputs must all be image files)")
    if len(items) == 2 and _is_left_right(Path(items[0]), Path(items[1]), rule):
        left, right = Path(items[0]), Path(items[1])
        return [_pair(_pair_name(left, rule), left, right)]
    _refuse_repeated(items)
    return _unique_names(_from_left_images([Path(i) for i in items], rule))


def _refuse_repeated(items: list) -> None:
    """A left image listed twice would be predicted twice into the same files."""
    seen = {}
    for item in items:
        key = Path(item).resolve()
        if key in seen:
            raise InputError(f"{item}: given twice (also as {seen[key]}); expected each left image once, "
                             "or LEFT RIGHT")
        seen[key] = item


def _is_left_right(first: Path, second: Path, rule) -> bool:
    """Two files are LEFT RIGHT unless each already has its own right image by a naming rule."""
    counterpart = _right_for(first, rule)
    if counterpart is not None and counterpart == second:
        return True
    return counterpart is None or _right_for(second, rule) is None


def _right_for(left: Path, rule) -> Path | None:
    """The existing right image a naming rule gives for ``left``, or None.

    The rule replaces the last occurrence of its left token in the path; the file
    name is tried first, then the folders above it.
    """
    rules = [rule] if rule else NAMING_RULES
    text = str(left)
    for left_token, right_token in rules:
        index = text.rfind(left_token)
        if index < 0:
            continue
        candidate = Path(text[:index] + right_token + text[index + len(left_token):])
        if candidate != left and candidate.is_file():
            return candidate
    return None


def _from_left_images(lefts: list[Path], rule) -> list[StereoPair]:
    pairs = []
    for left in sorted(lefts):
        right = _right_for(left, rule)
        if right is None:
            tried = f"rule {rule[0]}->{rule[1]}" if rule else "rules " + ", ".join(f"{a}->{b}" for a, b in NAMING_RULES)
            raise InputError(f"{left}: no right image found by naming {tried} (give LEFT RIGHT explicitly)")
        pairs.append(_pair(_pair_name(left, rule), left, right))
    return pairs


def _from_glob(pattern: str, rule) -> list[StereoPair]:
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not matches:
        raise InputError(f"{pattern}: the glob matches no files (expected left images, e.g. 'shots/*_left.png')")
    rules = [rule] if rule else NAMING_RULES
    # a glob like 'shots/*.png' also matches the right images: keep only files that name a left view
    lefts = [m for m in matches if _right_for(m, rule) is not None]
    if not lefts:
        names = ", ".join(f"{a}->{b}" for a, b in rules)
        raise InputError(f"{pattern}: no matched file has a right image by naming rules {names}")
    return _unique_names(_from_left_images(lefts, rule))


def _pair_name(left: Path, rule) -> str:
    """The left file name without its left token; the folder's name when nothing is left."""
    stem = left.stem
    for left_token, _ in [rule] if rule else NAMING_RULES:
        if left_token in stem:
            stem = stem.replace(left_token, "", 1)
            break
    stem = stem.strip("_-. ")
    return stem or left.parent.name or "pair"


def _pair(name: str, left: Path, right: Path) -> StereoPair:
    gt_path, gt_scale = _sibling_ground_truth(left)
    return StereoPair(name, left, right, gt_path, gt_scale)


def _sibling_ground_truth(left: Path) -> tuple[Path | None, float]:
    for gt_name, scale in SIBLING_GT.get(left.name, ()):
        if (left.parent / gt_name).is_file():
            return left.parent / gt_name, scale
    return None, 1.0


def _from_folder(folder: Path) -> list[StereoPair]:
    """Every pair in ``folder`` under any supported layout."""
    pairs = (_pair_folders(folder, "left.png", "right.png") + _pair_folders(folder, "im0.png", "im1.png")
             + _matching_folders(folder, "image_2", "image_3", ("disp_occ_0", KITTI_SCALE))
             + _matching_folders(folder, "left", "right", None))
    if not pairs:
        raise InputError(f"{folder}: no stereo pairs found (layouts tried: {'; '.join(LAYOUTS_TRIED)})")
    return _unique_names(pairs)


def _pair_folders(folder: Path, left_name: str, right_name: str) -> list[StereoPair]:
    """Pairs stored one per folder (InStereo2K, Middlebury), at any depth below ``folder``."""
    pairs = []
    for left in sorted(folder.rglob(left_name)):
        right = left.parent / right_name
        if not right.is_file():
            raise InputError(f"{left.parent}: has {left_name} but no {right_name}")
        rel = left.parent.relative_to(folder).as_posix()
        name = folder.name if rel == "." else rel.replace("/", "_")
        pairs.append(_pair(name, left, right))
    return pairs


def _matching_folders(folder: Path, left_dir: str, right_dir: str, gt: tuple[str, float] | None) -> list[StereoPair]:
    """Pairs stored as same-named files in two sibling folders (KITTI, left/ + right/)."""
    pairs = []
    for lefts in sorted(p for p in folder.rglob(left_dir) if p.is_dir() and (p.parent / right_dir).is_dir()):
        rights = lefts.parent / right_dir
        prefix = lefts.parent.relative_to(folder).as_posix().replace("/", "_")
        for left in sorted(p for p in lefts.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            right = rights / left.name
            if not right.is_file():
                raise InputError(f"{right}: missing; {left} has no right image of the same name")
            gt_path = lefts.parent / gt[0] / left.name if gt else None
            has_gt = gt_path is not None and gt_path.is_file()
            name = left.stem if prefix == "." else f"{prefix}_{left.stem}"
            pairs.append(StereoPair(name, left, right, gt_path if has_gt else None, gt[1] if has_gt else 1.0))
    return pairs


def _unique_names(pairs: list[StereoPair]) -> list[StereoPair]:
    """Keep names as they are when unique; otherwise name each pair by its left path."""
    names = [p.name for p in pairs]
    if len(set(names)) == len(names):
        return sorted(pairs, key=lambda p: p.name)
    base = Path(os.path.commonpath([str(p.left.parent) for p in pairs]))
    renamed = [StereoPair(str(p.left.relative_to(base).with_suffix("")).replace(os.sep, "_"), p.left, p.right,
                          p.gt_path, p.gt_scale) for p in pairs]
    return sorted(renamed, key=lambda p: p.name)
