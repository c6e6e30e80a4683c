"""TensorRT's legacy INT8 calibration cache: write it from calibrated ranges, read it back.

The cache is what ``IInt8EntropyCalibrator2.writeCalibrationCache`` produces and what
``trtexec --int8 --calib=FILE`` or the build command consume for implicit INT8 on
TensorRT 8.5 and 10.x (TensorRT 11 has no calibrators; it reads Q/DQ nodes instead).

Format (text, one entry per line)::

    TRT-8502-EntropyCalibration2
    left: 3f800000
    /features/conv1/Conv_output_0: 3c8b4396

The header carries TensorRT's version integer (``NV_TENSORRT_VERSION``: major*1000 +
minor*100 + patch before TensorRT 10, major*10000 + minor*100 + patch from 10 on) and
TensorRT ignores a cache whose header names another version. Each entry is a tensor
name, a colon and a space, then the eight hex digits of the float32 scale's IEEE-754
bits, most significant byte first. The dynamic range TensorRT applies is scale x 127.
The header names EntropyCalibration2 whatever method chose the ranges (min/max by
default): the calibrator that hands the cache to TensorRT (``toolkit.trt.calibrator``) is
an ``IInt8EntropyCalibrator2``, and TensorRT takes a matching cache's scales as they are.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path

from toolkit.errors import InputError
from toolkit.provenance import atomic_path

CALIBRATOR_ALGORITHM = "EntropyCalibration2"
DEFAULT_TRT_VERSION = "8.5.2"  # JetPack 5's TensorRT: the oldest target that still calibrates
INT8_MAX = 127.0
HEADER_PATTERN = re.compile(r"^TRT-(\d+)-(\w+)$")


def trt_version_code(version: str) -> int:
    """TensorRT's version integer for a dotted version, as NV_TENSORRT_VERSION defines it.

    Args:
        version: "8.5.2", "10.3.0", "10.3" (patch defaults to 0).

    Returns:
        8502 for 8.5.2, 100300 for 10.3.0.

    Raises:
        InputError: when the text is not a dotted version of at most three numbers.
    """
    parts = version.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise InputError(f"TensorRT version {version!r}: expected major.minor.patch, for example 8.5.2 or 10.3.0")
    major, minor, patch = (int(p) for p in parts + ["0"] * (3 - len(parts)))
    # TensorRT 10 widened the encoding to make room for two-digit minors.
    if major >= 10:
        return major * 10000 + minor * 100 + patch
    return major * 1000 + minor * 100 + patch


def cache_header(version: str = DEFAULT_TRT_VERSION, algorithm: str = CALIBRATOR_ALGORITHM) -> str:
    """The first line of a cache for ``version``: ``TRT-8502-EntropyCalibration2`` for 8.5.2."""
    return f"TRT-{trt_version_code(version)}-{algorithm}"


def scale_to_hex(scale: float) -> str:
    """Eight hex digits of a float32's bits, big-endian, as TensorRT prints them."""
    return struct.pack(">f", scale).hex()


def hex_to_scale(text: str) -> float:
    """Inverse of ``scale_to_hex``."""
    return struct.unpack(">f", bytes.fromhex(text))[0]


def write_calibration_cache(
    path: str | os.PathLike, scales: dict[str, float], header: str = cache_header()
) -> Path:
    """Write a TensorRT calibration cache atomically.

    Args:
        path: destination file (conventionally ``calibration/<model>.cache``).
        scales: tensor name -> float32 scale (dynamic range / 127), one line each.
        header: first line, see ``cache_header``.

    Returns:
        The path written.

    Raises:
        InputError: a malformed header, a tensor name TensorRT could not read back,
            or a scale that is not a finite positive number.
    """
    if not HEADER_PATTERN.match(header):
        raise InputError(f"calibration cache header {header!r}: expected TRT-<version>-<algorithm>")
    lines = [header]
    for name, scale in scales.items():
        check_entry(name, scale)
        lines.append(f"{name}: {scale_to_hex(float(scale))}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(path)


def check_entry(name: str, scale: float) -> None:
    """Refuse entries TensorRT would misread: empty or multi-line names, non-positive scales."""
    if not name or "\n" in name:
        raise InputError(f"calibration cache: tensor name {name!r} cannot be written on one line")
    if not math.isfinite(scale) or scale <= 0.0:
        raise InputError(f"calibration cache: tensor {name!r} has scale {scale}; expected a finite positive float")


def read_calibration_cache(path: str | os.PathLike) -> tuple[str, dict[str, float]]:
    """Read a TensorRT calibration cache.

    Args:
        path: a cache written by TensorRT or by ``write_calibration_cache``.

    Returns:
        (header line, {tensor name: float32 scale}).

    Raises:
        InputError: missing file, bad header, malformed or duplicate entries.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration cache")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text calibration cache (binary content)") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not HEADER_PATTERN.match(lines[0]):
        raise InputError(f"{path}: first line is not a TensorRT cache header; expected TRT-<version>-<algorithm>")
    return lines[0], parse_entries(lines[1:], path)


def parse_entries(lines: list[str], path: Path) -> dict[str, float]:
    """Parse ``name: hex`` lines; tensor names may themselves contain colons."""
    scales: dict[str, float] = {}
    for number, line in enumerate(lines, start=2):
        name, sep, digits = line.rpartition(": ")
        if not sep or not name or not re.fullmatch(r"[0-9a-fA-F]{8}", digits):
            raise InputError(f"{path}:{number}: expected 'tensor_name: <8 hex digits>', got {line!r}")
        if name in scales:
            raise InputError(f"{path}:{number}: tensor {name!r} appears twice")
        scales[name] = hex_to_scale(digits)
    return scales


def header_version(header: str) -> int:
    """The TensorRT version integer named by a cache header (8502 for TRT-8502-...)."""
    match = HEADER_PATTERN.match(header)
    if not match:
        raise InputError(f"calibration cache header {header!r}: expected TRT-<version>-<algorithm>")
    return int(match.group(1))
