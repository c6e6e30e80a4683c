"""Output paths checked before any slow work.

Every command calls ``check_output_file`` / ``check_output_dir`` on what it will write
before it loads a model or reads a dataset, so an impossible output (under a file, in a
read-only place, a wrong suffix, one of the command's own inputs) fails in milliseconds
with one line naming the option, not after calibration or training. Nothing is created
by the check: it probes the nearest existing folder with a temporary file and removes it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable

from toolkit.errors import InputError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_creatable_under(folder: Path, path: Path, option: str) -> None:
    """``path`` can be created: its nearest existing ancestor is a writable folder."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".stereo-trt-probe.", dir=existing)
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _check_not_an_input(path: Path, inputs: Iterable, option: str) -> None:
    resolved = path.resolve()
    for item in inputs:
        if item is not None and Path(item).resolve() == resolved:
            raise InputError(f"{option} {path}: is one of this command's inputs; choose another output path")


def check_output_file(path: str | os.PathLike, option: str = "--out", suffixes: Iterable[str] | None = None,
                      inputs: Iterable = ()) -> Path:
    """Check that ``path`` can be written as a file and return it as a Path.

    Args:
        path: the output file.
        option: the option or argument that named it, for the message.
        suffixes: accepted suffixes (lower case, with the dot); None accepts any.
        inputs: the command's input paths; writing over one of them is refused.

    Raises:
        InputError: an existing folder, a wrong suffix, a parent that is a file or is not
            writable, or one of the inputs.
    """
    path = Path(path)
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if path.suffix.lower() not in suffixes:
            listed = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
            raise InputError(f"{option} {path}: expected a file ending in {listed}")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; expected a file path")
    _check_not_an_input(path, inputs, option)
    _check_creatable_under(path.parent, path, option)
    return path


def check_output_dir(path: str | os.PathLike, option: str = "--out", inputs: Iterable = ()) -> Path:
    """Check that ``path`` is, or can be created as, a writable folder, and return it as a Path.

    Raises:
        InputError: an existing file, an ancestor that is a file or is not writable, or one of the inputs.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: is a file; expected a folder")
    _check_not_an_input(path, inputs, option)
    _check_creatable_under(path, path, option)
    return path
