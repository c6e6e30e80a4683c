"""Pseudo-labels: run a teacher over stereo pairs and write its disparities as training labels.

Labels use the InStereo2K encoding, so a labelled tree reads like the real dataset:
for each pair, beside where its left image sits in the input tree (mirrored under the
output folder), ``<left stem>_disp.png`` (uint16, disparity x 100, 0 = invalid) and
``<left stem>_valid.png`` (uint8, 255 = the teacher trusts this pixel). For InStereo2K
input (``left.png``) that is ``left_disp.png``, exactly the dataset's own name; with
``with_images`` the two images are linked (or copied) to their own mirrored places, so
the output folder is itself a tree of the input's layout. ``pseudo_labels.json``
records the teacher and every pair.

Teachers: ``sgbm`` (OpenCV SGBM, left-right checked), any ONNX stereo model with inputs
``left``/``right`` (1, 3, H, W) RGB 0..255 and a disparity output (run by the ONNX Runtime
runner with ``any_onnx``), or a student checkpoint (.pth/.pt).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from toolkit import provenance
from toolkit.backends.base import Runner
from toolkit.data import io
from toolkit.data.pairs import StereoPair
from toolkit.errors import InputError

MANIFEST_NAME = "pseudo_labels.json"
LABEL_ENCODING = "uint16 PNG, disparity x 100, 0 = invalid (InStereo2K)"
MASK_ENCODING = "uint8 PNG, 255 = valid, 0 = invalid"
CHECKPOINT_SUFFIXES = (".pth", ".pt")


@dataclass
class Label:
    """What was written for one pair.

    Attributes:
        name: the pair's name.
        label: the disparity PNG; mask: the validity PNG.
        valid_fraction: share of pixels the teacher marked valid.
    """

    name: str
    label: Path
    mask: Path
    valid_fraction: float


def open_teacher(teacher: str, max_disp: int | None = None, lr_threshold: float | None = None,
                 lr_check: bool | None = None, iters: int | None = None, device: str | None = None,
                 threads: int | None = None) -> Runner:
    """The runner for a teacher named on the command line (not yet activated), from ``open_runner``.

    Options left at None take their defaults; an option the chosen teacher cannot use is
    refused rather than silently ignored (``toolkit.backends.spec``).

    Args:
        teacher: "sgbm", a .onnx file (any ONNX stereo model with inputs ``left``/``right``),
            or a student checkpoint (.pth/.pt).
        max_disp: SGBM search range (default 192); a checkpoint's cost-volume range.
        lr_threshold: SGBM left-right check threshold in px (default 1.0).
        lr_check: SGBM: False keeps every matched pixel (default True).
        iters: refinement iterations (checkpoints; default: the checkpoint's).
        device: "cpu", "cuda" or "cuda:N" for checkpoints and ONNX teachers (default "cpu").
        threads: CPU threads for ONNX Runtime / PyTorch.

    Raises:
        InputError: an unknown teacher, a missing file, or an option the teacher does not take.
        DependencyError: a CUDA device this machine cannot give.
    """
    from toolkit.backends import RunnerSpec, open_runner

    suffix = Path(teacher).suffix.lower()
    if teacher.lower() != "sgbm" and suffix not in (".onnx",) + CHECKPOINT_SUFFIXES:
        raise InputError(f"--teacher {teacher!r}: expected sgbm, an .onnx model or a .pth/.pt checkpoint")
    if teacher.lower() != "sgbm" and not Path(teacher).is_file():
        raise InputError(f"--teacher {teacher}: no such file")
    spec = RunnerSpec(model=teacher, max_disp=max_disp, lr_threshold=lr_threshold, sgbm_lr_check=lr_check is not False,
                      iters=iters, device=device, threads=threads, any_onnx=suffix == ".onnx")
    return open_runner(spec)


def describe_teacher(teacher: str, runner: Runner) -> dict:
    """The provenance of a teacher: its kind, its settings and, for a file, its hash."""
    if teacher.lower() == "sgbm":
        return {"kind": "sgbm", "max_disp": runner.max_disp, "block_size": runner.block_size,
                "lr_threshold": runner.lr_threshold}
    return {"kind": runner.name, "path": str(Path(teacher).resolve()), "sha256": provenance.sha256_file(teacher),
            "iters": getattr(runner, "iters", None), "device": runner.device, "precision": runner.precision}


def pairs_root(pairs: Sequence[StereoPair]) -> Path:
    """The deepest folder holding every pair's images: the tree the output mirrors."""
    return Path(os.path.commonpath([str(image.parent.resolve()) for p in pairs for image in (p.left, p.right)]))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def label_paths(pair: StereoPair, root: Path, out_dir: Path) -> tuple[Path, Path]:
    """Where one pair's label and mask go: the left image's place in ``root``, mirrored under ``out_dir``."""
    folder = out_dir / pair.left.parent.resolve().relative_to(root)
    return folder / f"{pair.left.stem}_disp.png", folder / f"{pair.left.stem}_valid.png"


def trusted_pixels(disparity: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    """Pixels worth training on: finite positive disparity, and confidence >= 0.5 when there is one."""
    valid = np.isfinite(disparity) & (disparity > 0)
    if confidence is not None:
        valid &= confidence >= 0.5
    return valid


def label_pair(runner: Runner, pair: StereoPair, root: Path, out_dir: Path, with_images: bool = False) -> Label:
    """Run the teacher on one pair and write its label and mask (atomically)."""
    left, right = io.read_image(pair.left), io.read_image(pair.right)
    prediction = runner.infer(left, right)
    valid = trusted_pixels(prediction.disparity, prediction.confidence)
    label_path, mask_path = label_paths(pair, root, out_dir)
    io.write_disparity_png(label_path, np.where(valid, prediction.disparity, 0), io.INSTEREO2K_SCALE)
    io.write_image(mask_path, valid.astype(np.uint8) * 255)
    if with_images:
        for image in (pair.left, pair.right):
            _place_image(image, out_dir / image.resolve().relative_to(root))
    return Label(pair.name, label_path, mask_path, float(valid.mean()))


def _place_image(source: Path, target: Path) -> None:
    """Hard-link an input image into the output tree (no extra space); copy across file systems."""
    if target.exists():
        return
    with provenance.atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)


def _pair_record(pair: StereoPair, label: Label, out_dir: Path) -> dict:
    """One pair's entry in the manifest: its inputs (absolute) and its outputs (relative to ``out_dir``)."""
    return {"name": pair.name, "left": str(pair.left.resolve()), "right": str(pair.right.resolve()),
            "label": label.label.relative_to(out_dir).as_posix(), "mask": label.mask.relative_to(out_dir).as_posix(),
            "valid_fraction": round(label.valid_fraction, 4)}


def pseudo_label(runner: Runner, pairs: Sequence[StereoPair], out_dir: str | os.PathLike, teacher: dict,
                 root: str | os.PathLike | None = None, with_images: bool = False,
                 on_pair: Callable[[int, Label], None] | None = None) -> Path:
    """Label every pair with an active teacher runner and write the manifest last.

    Args:
        runner: an active runner (see ``open_teacher``).
        pairs: pairs to label (``toolkit.data.pairs.discover_pairs``).
        out_dir: output root; the input tree is mirrored below it.
        teacher: provenance of the teacher (``describe_teacher``).
        root: the input tree to mirror (the folder the user named); None: the deepest
            folder holding every left image.
        with_images: also link the left/right images into the output tree, each at its
            own place in ``root`` mirrored.
        on_pair: callback(index, Label) after each pair, for progress.

    Returns:
        The manifest path (``<out_dir>/pseudo_labels.json``).

    Raises:
        InputError: no pairs, an output folder that is a file, or a pair outside ``root``.
    """
    if not pairs:
        raise InputError("no stereo pairs to label; expected at least one pair")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: is a file; expected a folder for the labels")
    root = pairs_root(pairs) if root is None else Path(root).resolve()
    outside = [image for p in pairs for image in (p.left, p.right) if not _is_within(image.resolve(), root)]
    if outside:
        raise InputError(f"{outside[0]}: outside the input tree {root} that the labels mirror")
    labels = []
    for index, pair in enumerate(pairs):
        labels.append(label_pair(runner, pair, root, out_dir, with_images))
        if on_pair is not None:
            on_pair(index, labels[-1])
    record = provenance.record(
        tool="stereo-trt pseudo-label", teacher=teacher, source_root=str(root),
        label_encoding=LABEL_ENCODING, mask_encoding=MASK_ENCODING, images_linked=with_images,
        pairs=[_pair_record(pair, label, out_dir) for pair, label in zip(pairs, labels)],
    )
    return provenance.write_json(out_dir / MANIFEST_NAME, record)
