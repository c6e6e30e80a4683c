"""Real photographs as texture sources for synthetic scenes (narrows the synthetic-to-real gap).

The photographs are the ones scikit-image ships inside its package (portraits, a cat,
coffee, bricks, grass, gravel, coins, text, microscopy, ...), so they load offline. The
Middlebury stereo pair that the model card evaluates on is not among them.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from toolkit.errors import DependencyError

# scikit-image's bundled photographs (no download); stereo_motorcycle is deliberately absent.
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "coins",
               "moon", "page", "text", "immunohistochemistry", "hubble_deep_field", "retina", "clock", "cell")


@functools.lru_cache(maxsize=1)
def bundled_photos() -> tuple:
    """The photographs as HxWx3 float32 arrays, each normalised to zero mean and unit spread per channel."""
    try:
        from skimage import data
    except ImportError:
        raise DependencyError("photo textures need scikit-image; expected `pip install scikit-image`") from None
    photos = []
    for name in PHOTO_NAMES:
        image = np.asarray(getattr(data, name)(), dtype=np.float32)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        image = image[:, :, :3]
        image = (image - image.mean(axis=(0, 1))) / np.maximum(image.std(axis=(0, 1)), 1.0)
        photos.append(np.ascontiguousarray(image))
    return tuple(photos)


def photo_texture(rng: np.random.Generator, photos, height: int, width: int) -> np.ndarray:
    """A HxWx3 texture: a random photograph, randomly scaled, flipped and mirrored out to the size."""
    photo = photos[int(rng.integers(len(photos)))]
    scale = float(rng.uniform(0.5, 1.5))
    resized = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        resized = resized[:, ::-1]
    pad_y, pad_x = max(0, height - resized.shape[0]), max(0, width - resized.shape[1])
    if pad_y or pad_x:
        resized = cv2.copyMakeBorder(np.ascontiguousarray(resized), 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT_101)
    y0 = int(rng.integers(resized.shape[0] - height + 1))
    x0 = int(rng.integers(resized.shape[1] - width + 1))
    return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])
