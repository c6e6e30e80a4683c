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

import json
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
from toolkit.outputs import check_output_dir
from toolkit.predict import check_pairs

MANIFEST_NAME = "pseudo_labels.json"
LABEL_ENCODING = "uint16 PNG, disparity x 100, 0 = invalid (InStereo2K)"
MASK_ENCODING = "uint8 PNG, 255 = valid, 0 = invalid"
CHECKPOINT_SUFFIXES = (".pth", ".pt")
# files an output folder must not already hold unless --overwrite: labels, ground truth, a manifest
DISPARITY_SUFFIXES = (".png", ".pfm")


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
        lr_check: SGBM: False keeps every matched pixel (default True). ONNX and checkpoint
            teachers: True runs them a second time on the mirrored, swapped pair and the
            left-right agreement becomes the confidence the mask keeps (default False).
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
    checks = {"sgbm_lr_check": lr_check is not False} if teacher.lower() == "sgbm" else {"lr_check": bool(lr_check)}
    spec = RunnerSpec(model=teacher, max_disp=max_disp, lr_threshold=lr_threshold, iters=iters, device=device,
                      threads=threads, any_onnx=suffix == ".onnx", **checks)
    return open_runner(spec)


def describe_teacher(teacher: str, runner: Runner) -> dict:
    """The provenance of a teacher: its kind, its settings and, for a file, its hash."""
    if teacher.lower() == "sgbm":
        return {"kind": "sgbm", "max_disp": runner.max_disp, "block_size": runner.block_size,
                "lr_threshold": runner.lr_threshold}
    network = getattr(runner, "inner", runner)  # an LRCheckRunner wraps the teacher's own runner
    return {"kind": network.name, "path": str(Path(teacher).resolve()), "sha256": provenance.sha256_file(teacher),
            "iters": getattr(network, "iters", None), "device": runner.device, "precision": runner.precision,
            "lr_check": network is not runner}


def pairs_root(pairs: Sequence[StereoPair]) -> Path:
    """The deepest folder holding every pair's images: the tree the output mirrors."""
    return Path(os.path.commonpath([str(image.parent.resolve()) for p in pairs for image in (p.left, p.right)]))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def check_label_output(out_dir: str | os.PathLike, root: str | os.PathLike, folders: Sequence = (),
                       overwrite: bool = False) -> Path:
    """Refuse an output folder that would write into the labels' input, before any teacher runs.

    Args:
        out_dir: the output root (``--out``).
        root: the input tree the output mirrors (``pairs_root`` or the folder named).
        folders: input folders named on the command line; the output may not be inside one.
        overwrite: allow an output folder that already holds disparity files.

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: the output is a file or cannot be written, is the input tree or inside
            an input folder, or already holds disparity files (without ``overwrite``).
    """
    out_dir = check_output_dir(out_dir, "--out")
    out = out_dir.resolve()
    # the mirrored tree's own root: labels would land beside the input images (an InStereo2K
    # pair's left_disp.png is its ground truth); a folder the user named: nothing may go inside it
    inside = [Path(root).resolve()] if out == Path(root).resolve() else []
    inside += [Path(f).resolve() for f in folders if _is_within(out, Path(f).resolve())]
    if inside:
        raise InputError(f"--out {out_dir}: is the input folder {inside[0]} or inside it; "
                         "expected a folder outside the input (labels never go into their input)")
    if not overwrite:
        existing = _first_disparity_file(out)
        if existing is not None:
            raise InputError(f"--out {out_dir}: already holds disparity files ({existing}); "
                             "expected a new or empty folder, or --overwrite to replace them")
    return out_dir


def _first_disparity_file(folder: Path) -> Path | None:
    """A disparity map or label manifest under ``folder``, or None (also when it does not exist)."""
    if not folder.is_dir():
        return None
    for path in folder.rglob("*"):
        if path.name == MANIFEST_NAME or ("disp" in path.name.lower() and path.suffix.lower() in DISPARITY_SUFFIXES):
            return path
    return None


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
    # each file through a temporary name; the mask first, so an interrupted run never leaves a
    # label without its mask
    io.write_image(mask_path, valid.astype(np.uint8) * 255)
    io.write_disparity_png(label_path, np.where(valid, prediction.disparity, 0), io.INSTEREO2K_SCALE)
    if with_images:
        for image in (pair.left, pair.right):
            _place_image(image, out_dir / image.resolve().relative_to(root), root)
    return Label(pair.name, label_path, mask_path, float(valid.mean()))


def _place_image(source: Path, target: Path, root: Path) -> None:
    """Hard-link an input image into the output tree (no extra space); copy across file systems.

    An image already there is kept only when it is this very file (a link from an earlier
    run): an ``--overwrite`` run over another input, or over images changed since, would
    otherwise pair the new labels with the old images. A file of the input tree ``root`` is
    never replaced.
    """
    if target.exists() and (os.path.samefile(source, target) or _is_within(target.resolve(), root)):
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
                 on_pair: Callable[[int, Label], None] | None = None, overwrite: bool = False) -> Path:
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
        overwrite: allow an output folder that already holds disparity files.

    Returns:
        The manifest path (``<out_dir>/pseudo_labels.json``).

    Raises:
        InputError: no pairs, a pair outside ``root``, a pair that cannot be decoded or predicted
            (``toolkit.predict.check_pairs``), or an output ``check_label_output`` refuses.
    """
    if not pairs:
        raise InputError("no stereo pairs to label; expected at least one pair")
    folders = () if root is None else (root,)
    root = pairs_root(pairs) if root is None else Path(root).resolve()
    out_dir = check_label_output(out_dir, root, folders, overwrite)
    outside = [image for p in pairs for image in (p.left, p.right) if not _is_within(image.resolve(), root)]
    if outside:
        raise InputError(f"{outside[0]}: outside the input tree {root} that the labels mirror")
    # every pair decoded before the first label: a damaged image at pair 40 of 50 would leave a
    # partial label tree without a manifest that `train --data` reads all the same
    check_pairs(pairs)
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
    _remove_earlier_labels(out_dir, {path for label in labels for path in (label.label, label.mask)})
    return provenance.write_json(out_dir / MANIFEST_NAME, record)


def _remove_earlier_labels(out_dir: Path, kept: set[Path]) -> None:
    """Delete the labels and masks an earlier run's manifest lists that this run did not write.

    An ``--overwrite`` run over fewer pairs (bad pairs taken out of the input) would otherwise
    leave their old labels, which ``train --data`` reads like the new ones. Only files the
    earlier manifest names, inside ``out_dir``, are touched.
    """
    try:
        earlier = json.loads((out_dir / MANIFEST_NAME).read_text())["pairs"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    kept = {path.resolve() for path in kept}
    for entry in earlier:
        for key in ("label", "mask"):
            path = (out_dir / str(entry.get(key, ""))).resolve() if isinstance(entry, dict) else None
            if path is not None and path not in kept and path.is_file() and _is_within(path, out_dir.resolve()):
                path.unlink()
