"""The one preprocessing path, shared by every backend, the calibrator and the benchmarks.

Network input contract (the same for PyTorch, ONNX Runtime and TensorRT):
two float32 tensors ``left`` and ``right`` of shape (1, 3, H, W), RGB, values 0..255,
H and W multiples of 32. Normalisation to [-1, 1] happens inside the network, so
nothing downstream may divide by 255 again.

An image of another size is resized to fit the network size keeping its aspect ratio,
then padded (edge replicate, split evenly on both sides as the official code does).
``restore`` undoes both and rescales disparity to source pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.errors import InputError

PAD_MULTIPLE = 32
INPUT_NAMES = ("left", "right")
# The network's memory grows with its grid (the cost volume alone is H/4 x W/4 x max_disp/4 x 8
# groups); 8192x8192 tried multi-GB allocations and died in the allocator. 4K UHD, padded, is
# the largest grid a stereo camera delivers today.
MAX_SIDE = 4096
MAX_PIXELS = 2176 * 3840


@dataclass(frozen=True)
class Geometry:
    """How a source image maps onto the network grid.

    Attributes:
        source_hw: size of the image as given.
        resized_hw: size after the aspect-preserving resize (equals source_hw when none).
        padded_hw: network input size, multiples of 32.
        pad: (top, bottom, left, right) replicate padding added after the resize.
    """

    source_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    padded_hw: tuple[int, int]
    pad: tuple[int, int, int, int]

    @property
    def disparity_scale(self) -> float:
        """Factor that turns network-grid disparity into source-pixel disparity."""
        return self.source_hw[1] / self.resized_hw[1]


@dataclass(frozen=True)
class PreparedPair:
    """A stereo pair ready for any backend: the feed dict plus the geometry to undo."""

    feed: dict[str, np.ndarray]
    geometry: Geometry


def round_up(value: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-value // multiple) * multiple


def parse_size(text: str | None, option: str = "--size") -> tuple[int, int] | None:
    """Parse ``"HxW"`` into a network size, checking both are positive multiples of 32.

    Args:
        text: the option's text; option: its name, for the message.

    Raises:
        InputError: when the text is malformed or not a multiple of 32.
    """
    if text is None or text == "":
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"{option} {text!r}: expected HxW, for example 480x640") from None
    check_network_size((h, w), f"{option} {text}")
    return h, w


def check_network_size(size: tuple[int, int], what: str) -> None:
    """Positive multiples of 32, within ``MAX_SIDE`` and ``MAX_PIXELS``.

    Raises:
        InputError: naming ``what`` (the option) and the limit.
    """
    h, w = size
    if h <= 0 or w <= 0 or h % PAD_MULTIPLE or w % PAD_MULTIPLE:
        raise InputError(f"{what}: height and width must be positive multiples of {PAD_MULTIPLE}, got {h}x{w}")
    check_size_limit((h, w), what)


def check_size_limit(size: tuple[int, int], what: str) -> None:
    """Refuse a network grid larger than the limit, before anything allocates for it."""
    h, w = size
    if max(h, w) > MAX_SIDE or h * w > MAX_PIXELS:
        raise InputError(f"{what}: {h}x{w} is larger than the network supports here; expected at most "
                         f"{MAX_SIDE} px a side and {MAX_PIXELS:,} pixels (e.g. 2176x3840, 4K UHD padded)")


def plan_geometry(source_hw: tuple[int, int], size: tuple[int, int] | None = None) -> Geometry:
    """Decide resize and padding for an image of ``source_hw``.

    Args:
        source_hw: (height, width) of the source image.
        size: fixed network size (multiples of 32), or None to pad the source to the next multiple.
    """
    h, w = source_hw
    if size is None:
        resized = (h, w)
        padded = (round_up(h), round_up(w))
        check_size_limit(padded, f"image of {h}x{w} px (padded to the network grid; --size HxW resizes it)")
    else:
        check_network_size(size, "network size")
        scale = min(size[0] / h, size[1] / w)
        resized = (min(size[0], max(1, round(h * scale))), min(size[1], max(1, round(w * scale))))
        padded = size
    ph, pw = padded[0] - resized[0], padded[1] - resized[1]
    return Geometry((h, w), resized, padded, (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2))


def as_rgb8(image: np.ndarray, name: str) -> np.ndarray:
    """Bring a decoded image to HxWx3 uint8 RGB.

    Accepts grayscale (replicated to three channels), RGBA (alpha dropped) and 16-bit
    images (scaled to 8 bits). Refuses anything else with an ``InputError`` naming ``name``.
    """
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(f"{name}: expected a grayscale, RGB or RGBA image, got an array of shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{name}: expected 8- or 16-bit pixels, got {image.dtype}")
    if min(image.shape[:2]) < 8:
        raise InputError(f"{name}: image of {image.shape[0]}x{image.shape[1]} px is too small (8 px minimum)")
    return np.ascontiguousarray(image)


def to_network(image: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Resize and pad one HxWx3 uint8 RGB image into a (1, 3, H, W) float32 tensor of 0..255."""
    if image.shape[:2] != geometry.resized_hw:
        shrinking = geometry.resized_hw[0] < image.shape[0]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        image = cv2.resize(image, geometry.resized_hw[::-1], interpolation=interp)
    top, bottom, left, right = geometry.pad
    if any(geometry.pad):
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None].astype(np.float32))


def check_pair(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as HxWx3 uint8 RGB (see ``as_rgb8``), checked to be one size.

    Raises:
        InputError: images of different sizes or unusable pixel formats.
    """
    left, right = as_rgb8(left, "left image"), as_rgb8(right, "right image")
    if left.shape != right.shape:
        raise InputError(
            f"left and right images differ in size: {left.shape[1]}x{left.shape[0]} vs "
            f"{right.shape[1]}x{right.shape[0]} (a rectified pair has one size)"
        )
    return left, right


def read_checked_pair(pair, size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a ``StereoPair``'s images and check the network can take them at ``size``.

    What commands run over every pair before their first output, so a folder run does not
    stop at pair 40 of 50 on a corrupt file.

    Raises:
        InputError: naming the pair and its left image: unreadable, left/right sizes differ,
            too small or too large.
    """
    from toolkit.data import io

    left, right = io.read_image(pair.left), io.read_image(pair.right)
    try:
        plan_geometry(check_pair(left, right)[0].shape[:2], size)
    except InputError as exc:
        raise InputError(f"pair {pair.name} ({pair.left}): {exc}") from None
    return left, right


def prepare_pair(left: np.ndarray, right: np.ndarray, size: tuple[int, int] | None = None) -> PreparedPair:
    """Turn a decoded stereo pair into the network feed dict.

    Args:
        left, right: decoded images (see ``as_rgb8`` for what is accepted).
        size: fixed network size, or None to pad to the next multiple of 32.

    Raises:
        InputError: images of different sizes or unusable pixel formats.
    """
    left, right = check_pair(left, right)
    geometry = plan_geometry(left.shape[:2], size)
    return PreparedPair({"left": to_network(left, geometry), "right": to_network(right, geometry)}, geometry)


def crop_to_source(grid: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Undo padding and resize for a per-pixel map on the network grid (no value scaling)."""
    grid = np.asarray(grid, dtype=np.float32).reshape(geometry.padded_hw)
    top, _, left, _ = geometry.pad
    rh, rw = geometry.resized_hw
    grid = grid[top : top + rh, left : left + rw]
    if geometry.resized_hw != geometry.source_hw:
        grid = cv2.resize(grid, geometry.source_hw[::-1], interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(grid)


def restore_disparity(disparity: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Network-grid disparity -> disparity in source pixels at source resolution."""
    return crop_to_source(disparity, geometry) * np.float32(geometry.disparity_scale)
