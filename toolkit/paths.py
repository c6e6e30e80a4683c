"""Where the toolkit finds its built-in assets and puts artifacts by default."""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import InputError

PACKAGE_DIR = Path(__file__).resolve().parent
BUILTIN_CHECKPOINT = PACKAGE_DIR / "weights" / "rt_igev_student.pth"
ENGINES_DIR = Path("engines")
CALIBRATION_DIR = Path("calibration")
BENCHMARKS_DIR = Path("benchmarks")


def resolve_checkpoint(path: str | Path | None) -> Path:
    """The checkpoint to use: the given path, or the built-in student when None.

    Raises:
        InputError: the path does not exist, or no path was given and no built-in checkpoint ships.
    """
    if path is None:
        if not BUILTIN_CHECKPOINT.is_file():
            raise InputError(f"no --checkpoint given and the built-in checkpoint {BUILTIN_CHECKPOINT} is missing")
        return BUILTIN_CHECKPOINT
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--checkpoint {path}: no such file")
    return path
