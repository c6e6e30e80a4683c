"""Reading and writing images, disparity maps (PFM, 16-bit PNG) and colorized views.

Images are returned as RGB (or gray / RGBA as stored); disparity maps as float32 with a
boolean validity mask, whatever the encoding on disk:
  * PFM: float, invalid pixels are +inf or NaN (Middlebury);
  * 16-bit PNG: disparity x scale, 0 = invalid (KITTI scale 256, InStereo2K scale 100).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from toolkit.errors import InputError
from toolkit.provenance import atomic_path
from toolkit.quiet import native_quiet

KITTI_SCALE = 256.0
INSTEREO2K_SCALE = 100.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file as stored (8/16-bit, gray/RGB/RGBA), channels in RGB order.

    Raises:
        InputError: the file is missing, empty, unreadable or OpenCV cannot decode it.
    """
    path = Path(path)
    image = _decode(path, "image")
    if image is None:
        raise InputError(f"{path}: not a readable image (expected PNG, JPEG, BMP, TIFF, PPM or WebP)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _decode(path: Path, what: str) -> np.ndarray | None:
    """The file's bytes decoded by OpenCV as stored, or None when they are not an image.

    Python reads the bytes (so any path, unicode included, works and OS errors name the file);
    OpenCV and libpng/libjpeg decode them without their own log lines.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if data.size == 0:
        raise InputError(f"{path}: the {what} file is empty (0 bytes)")
    with native_quiet():
        try:
            return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            return None


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB (or gray, or 16-bit) image atomically; the format follows the suffix."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    _imwrite(path, image)
    return Path(path)


def _imwrite(path: str | os.PathLike, image: np.ndarray) -> None:
    """cv2.imwrite through a temporary name; OpenCV's refusals become one InputError."""
    with atomic_path(path) as tmp:
        try:
            written = cv2.imwrite(str(tmp), image)
        except cv2.error:
            written = False
        if not written:
            raise InputError(f"{path}: OpenCV cannot write a {image.dtype} image with shape {image.shape} in this format")


def write_pfm(path: str | os.PathLike, data: np.ndarray) -> Path:
    """Write a single-channel float map as little-endian PFM (rows stored bottom to top)."""
    data = np.asarray(data, dtype="<f4")
    if data.ndim != 2:
        raise ValueError(f"PFM writer takes a 2-D map, got shape {data.shape}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(f"Pf\n{data.shape[1]} {data.shape[0]}\n-1.0\n".encode("ascii"))
            handle.write(np.ascontiguousarray(data[::-1]).tobytes())
    return Path(path)


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a PFM file (one or three channels); returns float32, top row first."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            kind = handle.readline().strip()
            if kind not in (b"Pf", b"PF"):
                raise InputError(f"{path}: not a PFM file (header {kind[:8]!r}, expected Pf or PF)")
            width, height = (int(v) for v in handle.readline().split())
            scale = float(handle.readline().strip())
            channels = 3 if kind == b"PF" else 1
            dtype = "<f4" if scale < 0 else ">f4"
            data = np.frombuffer(handle.read(), dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable PFM file ({exc})") from None
    if data.size != width * height * channels:
        raise InputError(f"{path}: PFM holds {data.size} values, header says {width}x{height}x{channels}")
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(data.reshape(shape)[::-1]).astype(np.float32)


def write_disparity_png(path: str | os.PathLike, disparity: np.ndarray, scale: float = KITTI_SCALE) -> Path:
    """Encode disparity as 16-bit PNG (disparity x scale, 0 = invalid, clipped to 65535)."""
    disparity = np.asarray(disparity, dtype=np.float32)
    valid = np.isfinite(disparity) & (disparity > 0)
    encoded = np.zeros(disparity.shape, dtype=np.uint16)
    encoded[valid] = np.clip(np.round(disparity[valid] * scale), 1, 65535).astype(np.uint16)
    _imwrite(path, encoded)
    return Path(path)


def read_disparity(path: str | os.PathLike, scale: float = KITTI_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Read a disparity map; returns (disparity float32, valid bool).

    Args:
        path: a ``.pfm`` file (float, inf/NaN invalid) or a 16-bit PNG (0 invalid).
        scale: the PNG's fixed-point scale (256 for KITTI, 100 for InStereo2K).
    """
    path = Path(path)
    if path.suffix.lower() == ".pfm":
        disparity = read_pfm(path)
        valid = np.isfinite(disparity)
        return np.where(valid, disparity, 0).astype(np.float32), valid
    encoded = _decode(path, "disparity")
    if encoded is None:
        raise InputError(f"{path}: not a readable image (damaged or truncated?); expected a single-channel "
                         "16-bit disparity PNG")
    if encoded.ndim != 2 or encoded.dtype != np.uint16:
        channels = 1 if encoded.ndim == 2 else encoded.shape[2]
        raise InputError(f"{path}: a {channels}-channel {encoded.dtype} image; expected a single-channel "
                         "16-bit disparity PNG")
    valid = encoded > 0
    return (encoded.astype(np.float32) / np.float32(scale)), valid


def colorize(values: np.ndarray, vmin: float | None = None, vmax: float | None = None,
             mask: np.ndarray | None = None, colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """Map a float map to RGB uint8 with a colormap; pixels outside ``mask`` are black.

    ``vmin``/``vmax`` default to the 1st/99th percentiles of the valid values, so one
    outlier does not wash out the picture.
    """
    values = np.asarray(values, dtype=np.float32)
    valid = np.isfinite(values) if mask is None else (mask & np.isfinite(values))
    finite = values[valid]
    if finite.size == 0:
        return np.zeros(values.shape + (3,), dtype=np.uint8)
    lo = float(np.percentile(finite, 1)) if vmin is None else vmin
    hi = float(np.percentile(finite, 99)) if vmax is None else vmax
    scaled = np.clip((np.where(valid, values, lo) - lo) / max(hi - lo, 1e-6), 0, 1)
    bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), colormap)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb[~valid] = 0
    return rgb
