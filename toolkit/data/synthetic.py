"""Seeded synthetic rectified stereo pairs with exact disparity, fast enough to generate while training.

A scene is a stack of textured surfaces seen by two rectified cameras: a slanted
background plane, sometimes a ground plane, and several slanted rectangles and ellipses
(flat or domed) at different depths. Every surface is described in left-view pixel
coordinates by its disparity field

    d(x, y) = c + a*(x - cx) + b*(y - cy) + h*(1 - q(x - cx, y - cy)),

where q is the quadratic form of its ellipse (h = 0 for planes), and it is painted with a
texture that is a continuous function of its own surface coordinates. A point at left
pixel x appears in the right view at x_right = x - d, so:

  * the left view renders each pixel from the nearest surface covering it (largest d,
    a z-buffer);
  * the right view inverts x_right = x - d(x, y) in closed form (a quadratic in x) for
    each surface and samples the same texture there, nearest surface winning. Both views
    sample one continuous texture by inverse mapping, so warping the right image by the
    left disparity reproduces the left image wherever the point is visible in both.

Disparity is positive, x_right = x_left - d, and exact everywhere, occluded pixels
included; ``valid`` marks the pixels whose point is seen by the right camera (inside
its frame, on the same surface at both pixels of its bilinear footprint there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.data import io

# |dd/dx| stays below this on every surface: the right view never folds, and textures
# are stretched or squeezed by at most this fraction between the views.
MAX_X_SLOPE = 0.3
# Finest texture cell in pixels: finer detail would alias under bilinear resampling
# and make the two views disagree for reasons other than disparity.
FINEST_CELL = 3.0
# What make_scene(hard_cases=...) can add: thin poles, wires and railings; cylinders and steeply
# slanted plates; repetitive patterns; near-textureless surfaces; glints that move between the views.
HARD_CASES = ("thin", "curved", "tiled", "flat", "glints")


@dataclass
class Scene:
    """One synthetic stereo pair.

    Attributes:
        left, right: HxWx3 uint8 RGB images.
        disparity: HxW float32 left-view disparity (positive, x_right = x_left - d), exact
            at every pixel, occluded ones included.
        valid: HxW bool, True where the left pixel is visible in the right view.
        right_disparity: HxW float32 right-view disparity (x_left = x_right + d).
        right_valid: HxW bool, True where the right pixel is visible in the left view.
        max_disp: the max_disp the scene was generated for (all disparities are below it).
    """

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    valid: np.ndarray
    right_disparity: np.ndarray
    right_valid: np.ndarray
    max_disp: float


@dataclass
class Surface:
    """One textured surface: its disparity field, its outline and its texture mapping.

    Attributes:
        kind: "all" (covers everything), "halfplane", "ellipse" or "rect".
        cx, cy: centre in left-view pixels.
        c, a, b, h: disparity at the centre, x and y gradients, dome height.
        quad: (A, B, C) of q(X, Y) = A X^2 + B X Y + C Y^2 (ellipse outline and dome).
        rect: (cos, sin, half_u, half_v) of a rotated rectangle outline.
        normal: (nx, ny) of a half-plane outline, covering nx X + ny Y > 0.
        bbox: (x0, x1, y0, y1) of the outline in the left view.
        d_range: (lowest, highest) disparity over the outline.
        tex_affine: 2x3 map from (x_left, y) to texture atlas coordinates.
        colour: 3x5 map from the 4 atlas channels (and 1) to RGB.
        pattern: an optional strictly periodic texture painted over the colour.
    """

    kind: str
    cx: float
    cy: float
    c: float
    a: float
    b: float
    h: float
    quad: tuple
    rect: tuple
    normal: tuple
    bbox: tuple
    d_range: tuple
    tex_affine: np.ndarray
    colour: np.ndarray
    pattern: "Pattern | None" = None

    def disparity(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Disparity at left-view points (broadcasting arrays of x and y)."""
        X, Y = x - self.cx, y - self.cy
        d = self.c + self.a * X + self.b * Y
        if self.h:
            A, B, C = self.quad
            d = d + self.h * (1.0 - (A * X * X + B * X * Y + C * Y * Y))
        return d

    def covers(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether left-view points lie on the surface's outline."""
        X, Y = x - self.cx, y - self.cy
        if self.kind == "ellipse":
            A, B, C = self.quad
            return A * X * X + B * X * Y + C * Y * Y < 1.0
        if self.kind == "rect":
            cos, sin, hu, hv = self.rect
            return (np.abs(cos * X + sin * Y) < hu) & (np.abs(cos * Y - sin * X) < hv)
        if self.kind == "halfplane":
            nx, ny = self.normal
            return nx * X + ny * Y > 0
        return np.ones(np.broadcast(X, Y).shape, dtype=bool)

    def left_x(self, x_right: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Solve x - d(x, y) = x_right for the left-view x of the surface point seen there.

        The equation is quadratic in X = x - cx (linear for planes); the root with
        d(x - d)/dx > 0 is the one on the unfolded surface. Written in the form
        X = -2g / (beta + sqrt(D)) that stays exact when the quadratic term vanishes.
        Returns NaN where there is no solution (far outside a dome).
        """
        Y = y - self.cy
        A, B, C = self.quad if self.h else (0.0, 0.0, 0.0)
        alpha = self.h * A
        beta = (1.0 - self.a) + self.h * B * Y
        gamma = self.cx - x_right - self.c - self.b * Y - self.h * (1.0 - C * Y * Y)
        disc = beta * beta - 4.0 * alpha * gamma
        with np.errstate(invalid="ignore", divide="ignore"):
            root = np.sqrt(disc)
            return self.cx + (-2.0 * gamma) / (beta + root)


@dataclass
class Pattern:
    """A strictly periodic texture (tiles, bricks, railings, grilles): every period looks alike.

    It is a function of the surface's texture coordinates, like the atlas, so both views
    sample it at the same surface points and the disparity stays exact.

    Attributes:
        period: (along u, along v) in atlas pixels; 0 along v gives stripes, else a checkerboard.
        phase: (u, v) offsets in atlas pixels.
        rgb: half the colour difference between the pattern's two phases.
    """

    period: tuple
    phase: tuple
    rgb: np.ndarray

    def paint(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """HxWx3 float32 colour offsets at atlas coordinates (u, v)."""
        value = _square_wave(u + self.phase[0], self.period[0])
        if self.period[1]:
            value = value * _square_wave(v + self.phase[1], self.period[1])
        return value[:, :, None] * self.rgb.astype(np.float32)


def _square_wave(t: np.ndarray, period: float) -> np.ndarray:
    """A +-1 wave with edges about 2 atlas pixels wide, so bilinear sampling in both views agrees."""
    gain = min(3.0, period / (2.0 * math.pi))
    return np.tanh(np.float32(gain) * np.sin(t * np.float32(2.0 * math.pi / period)))


def _rotation(rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0, math.pi)
    return math.cos(angle), math.sin(angle)


def _ellipse_quad(cos: float, sin: float, ru: float, rv: float) -> tuple[tuple, float, float]:
    """Quadratic form of a rotated ellipse and its half extents in x and y."""
    A = cos * cos / ru**2 + sin * sin / rv**2
    B = 2.0 * cos * sin * (1.0 / ru**2 - 1.0 / rv**2)
    C = sin * sin / ru**2 + cos * cos / rv**2
    half_x = math.sqrt((ru * cos) ** 2 + (rv * sin) ** 2)
    half_y = math.sqrt((ru * sin) ** 2 + (rv * cos) ** 2)
    return (A, B, C), half_x, half_y


def _texture_mapping(rng: np.random.Generator, atlas_hw: tuple[int, int], bbox: tuple) -> np.ndarray:
    """A random rotation, scale and offset from left-view pixels into the texture atlas.

    The surface's bounding box is placed inside the atlas, so no surface shows the
    atlas's mirrored border (mirrored texture is an unnatural, ambiguous pattern). Large
    surfaces that fit no other way get a near-horizontal texture orientation.
    """
    box_w, box_h = bbox[1] - bbox[0], bbox[3] - bbox[2]
    room_h, room_w = atlas_hw[0] - 3, atlas_hw[1] - 3
    cos, sin = _rotation(rng)
    scale = rng.uniform(0.75, 1.3)
    if scale * (abs(sin) * box_w + abs(cos) * box_h) > room_h or scale * (abs(cos) * box_w + abs(sin) * box_h) > room_w:
        angle = rng.uniform(-0.1, 0.1) + math.pi * (rng.random() < 0.5)
        cos, sin = math.cos(angle), math.sin(angle)
    extent_w = abs(cos) * box_w + abs(sin) * box_h
    extent_h = abs(sin) * box_w + abs(cos) * box_h
    scale = min(scale, room_w / extent_w, room_h / extent_h)
    corners_x = np.array([bbox[0], bbox[1], bbox[0], bbox[1]])
    corners_y = np.array([bbox[2], bbox[2], bbox[3], bbox[3]])
    us = scale * (cos * corners_x - sin * corners_y)
    vs = scale * (sin * corners_x + cos * corners_y)
    offset_u = rng.uniform(1 - us.min(), max(1 - us.min(), room_w + 1 - us.max()))
    offset_v = rng.uniform(1 - vs.min(), max(1 - vs.min(), room_h + 1 - vs.max()))
    return np.array([[scale * cos, -scale * sin, offset_u], [scale * sin, scale * cos, offset_v]], np.float32)


def _colour_map(rng: np.random.Generator) -> np.ndarray:
    """Random 3x5 colour map: base colour, textured contrast, and a weight for the sharp pattern."""
    base = rng.uniform(50, 205, size=3)
    contrast = rng.uniform(18, 45)
    mixing = contrast * (0.6 * np.eye(3) + 0.4 * rng.uniform(-1, 1, size=(3, 3)))
    sharp = rng.uniform(15, 55) * rng.uniform(0.3, 1.0, size=3) * (rng.random() < 0.6)
    return np.concatenate([mixing, sharp[:, None], base[:, None]], axis=1).astype(np.float32)


def _limit_slopes(a: float, b: float, h: float, half_x: float, half_y: float,
                  budget: float) -> tuple[float, float, float]:
    """Shrink slants and dome height so the disparity spread over the outline fits ``budget``."""
    spread = abs(a) * half_x + abs(b) * half_y + abs(h)
    if spread > budget > 0:
        factor = budget / spread
        return a * factor, b * factor, h * factor
    return a, b, h


def _object_surface(rng, kind, cx, cy, half_x, half_y, quad, rect, normal, lo, hi, atlas_hw,
                    slope_scale=1.0, near_top=False) -> Surface:
    """A surface with random slants (and, for ellipses, maybe a dome) on an outline, within [lo, hi].

    Args:
        half_x, half_y: half extents of the outline's bounding box around (cx, cy).
        lo, hi: allowed disparity range; ``near_top`` pushes the surface's maximum to ``hi``.
    """
    a = rng.uniform(-0.4, 0.4) * MAX_X_SLOPE * slope_scale if rng.random() < 0.7 else 0.0
    b = rng.uniform(-0.25, 0.25) * slope_scale if rng.random() < 0.7 else 0.0
    h = 0.0
    if kind == "ellipse" and rng.random() < 0.5:
        # the dome's x slope over the ellipse is at most 2|h|sqrt(A): keep it to half of MAX_X_SLOPE
        h = rng.uniform(-1.0, 1.0) * 0.25 * MAX_X_SLOPE / math.sqrt(quad[0])
    return _placed_surface(rng, kind, cx, cy, half_x, half_y, quad, rect, normal, (a, b, h), lo, hi, atlas_hw,
                           near_top)


def _placed_surface(rng, kind, cx, cy, half_x, half_y, quad, rect, normal, slopes, lo, hi, atlas_hw,
                    near_top=False) -> Surface:
    """Place the disparity field with slopes (a, b, h) on an outline so it stays within [lo, hi] over it."""
    a, b, h = _limit_slopes(*slopes, half_x, half_y, 0.45 * (hi - lo))
    linear = abs(a) * half_x + abs(b) * half_y
    low_off, high_off = -linear + min(h, 0.0), linear + max(h, 0.0)
    c_lo, c_hi = lo - low_off, hi - high_off
    c = c_hi - rng.uniform(0, 0.05) * (c_hi - c_lo) if near_top else rng.uniform(c_lo, c_hi)
    bbox = (cx - half_x, cx + half_x, cy - half_y, cy + half_y)
    return Surface(kind, cx, cy, float(c), float(a), float(b), float(h), quad, rect, normal, bbox,
                   (c + low_off, c + high_off), _texture_mapping(rng, atlas_hw, bbox), _colour_map(rng))


def _background(rng, height, width, lo, hi, atlas_hw) -> Surface:
    """A slanted plane behind everything, spanning [lo, hi] over the frame the right view can see."""
    # the right view looks at left-view x up to width + hi, so size the plane for that span
    half_x, half_y = (width + hi) / 2.0, height / 2.0
    return _object_surface(rng, "all", half_x, half_y, half_x, half_y, (0.0, 0.0, 0.0), (), (), lo, hi, atlas_hw, 0.5)


def _ground(rng, height, width, lo, hi, atlas_hw) -> Surface:
    """A floor below a tilted horizon, its disparity growing from ``lo`` towards ``hi`` at the bottom edge."""
    half_x = (width + hi) / 2.0
    horizon = rng.uniform(0.35, 0.7) * height
    tilt = rng.uniform(-0.15, 0.15)
    a = rng.uniform(-1.0, 1.0) * min(0.05, 0.15 * (hi - lo) / half_x)
    # covered: Y > tilt * X, so Y runs from -|tilt| half_x down to the bottom edge
    rows = abs(tilt) * half_x + height - horizon
    b = rng.uniform(0.6, 1.0) * (hi - lo - 2.0 * abs(a) * half_x) / rows
    c = lo + (abs(a) + abs(tilt) * b) * half_x
    norm = math.hypot(tilt, 1.0)
    bbox = (0.0, width + hi, horizon - abs(tilt) * half_x, float(height))
    d_range = (lo, c + b * (height - horizon) + abs(a) * half_x)
    return Surface("halfplane", half_x, horizon, float(c), float(a), float(b), 0.0, (0.0, 0.0, 0.0), (),
                   (-tilt / norm, 1.0 / norm), bbox, d_range, _texture_mapping(rng, atlas_hw, bbox), _colour_map(rng))


def _random_object(rng, height, width, lo, hi, atlas_hw, near_top) -> Surface:
    """An ellipse (flat, slanted or domed) or a rotated rectangle somewhere in or near the frame."""
    size = min(height, width)
    # the nearest object stays inside the frame so the scene's disparity range is seen
    reach = (0.1, 0.9) if near_top else (-0.1, 1.1)
    cx = rng.uniform(*reach) * width
    cy = rng.uniform(*reach) * height
    cos, sin = _rotation(rng)
    ru = size * rng.uniform(0.05, 0.35)
    rv = ru * rng.uniform(0.15, 1.0) if rng.random() < 0.3 else ru * rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        quad, half_x, half_y = _ellipse_quad(cos, sin, ru, rv)
        return _object_surface(rng, "ellipse", cx, cy, half_x, half_y, quad, (), (), lo, hi, atlas_hw,
                               near_top=near_top)
    half_x = abs(cos) * ru + abs(sin) * rv
    half_y = abs(sin) * ru + abs(cos) * rv
    return _object_surface(rng, "rect", cx, cy, half_x, half_y, (0.0, 0.0, 0.0), (cos, sin, ru, rv), (),
                           lo, hi, atlas_hw, near_top=near_top)


def _scene_range(rng: np.random.Generator, max_disp: float) -> tuple[float, float, float]:
    """Nearest disparity of the scene, and the background's range.

    Three scenes in four reach most of ``max_disp``; the rest stay small, so both
    regimes are seen in training.
    """
    top = max_disp * (rng.uniform(0.6, 0.97) if rng.random() < 0.75 else rng.uniform(0.08, 0.6))
    top = max(top, min(4.0, 0.9 * max_disp))
    bg_lo = rng.uniform(0.5, max(0.6, 0.1 * top))
    bg_hi = bg_lo + rng.uniform(0.05, 0.35) * top
    return top, bg_lo, bg_hi


def _surfaces(rng, height, width, max_disp, atlas_hw) -> list[Surface]:
    """The background, maybe a ground plane, and 4 to 11 objects."""
    top, bg_lo, bg_hi = _scene_range(rng, max_disp)
    surfaces = [_background(rng, height, width, bg_lo, bg_hi, atlas_hw)]
    if rng.random() < 0.4:
        surfaces.append(_ground(rng, height, width, bg_lo, rng.uniform(0.5, 1.0) * top, atlas_hw))
    count = int(rng.integers(4, 12))
    for index in range(count):
        near_top = index == count - 1
        lo = rng.uniform(bg_lo, 0.5 * (bg_lo + top)) if not near_top else 0.5 * top
        surfaces.append(_random_object(rng, height, width, lo, top, atlas_hw, near_top))
    return surfaces


def _hard_cases(rng, surfaces, height, width, atlas_hw, kinds) -> list[Surface]:
    """The scene with the ``kinds`` of HARD_CASES that are surfaces or textures, all in front of its background.

    Every kind is drawn whether or not it is asked for, so one seed gives the same thin bars,
    cylinders and patterns under any selection.
    """
    top = max(surface.d_range[1] for surface in surfaces)
    floor = min(surfaces[0].d_range[1], 0.5 * top)
    thin = _thin_bars(rng, height, width, floor, top, atlas_hw) if rng.random() < 0.7 else []
    curved = [_curved_or_steep(rng, height, width, floor, top, atlas_hw) for _ in range(int(rng.integers(1, 3)))]
    surfaces = surfaces + (thin if "thin" in kinds else []) + (curved if "curved" in kinds else [])
    for surface in surfaces:
        flat = _flat_colour(rng)
        if rng.random() < 0.12 and "flat" in kinds:
            surface.colour = flat
    tiled = surfaces[int(rng.integers(len(surfaces)))]
    period = rng.uniform(5, 24)
    pattern = Pattern((period, period * rng.uniform(0.5, 2.0) if rng.random() < 0.5 else 0.0),
                      tuple(rng.uniform(0, 24, size=2)), rng.uniform(20, 60) * rng.uniform(0.5, 1.0, size=3))
    if rng.random() < 0.6 and "tiled" in kinds:
        tiled.colour = tiled.colour * np.array([0.15, 0.15, 0.15, 0.0, 1.0], np.float32)
        tiled.pattern = pattern
    return surfaces


def _bar(rng, cx, cy, cos, sin, half_length, half_width, lo, hi, atlas_hw) -> Surface:
    """A rotated thin rectangle, its length along (cos, sin), slightly slanted within [lo, hi]."""
    half_x = abs(cos) * half_length + abs(sin) * half_width
    half_y = abs(sin) * half_length + abs(cos) * half_width
    slopes = (rng.uniform(-0.1, 0.1), rng.uniform(-0.2, 0.2), 0.0)
    return _placed_surface(rng, "rect", cx, cy, half_x, half_y, (0.0, 0.0, 0.0), (cos, sin, half_length, half_width),
                           (), slopes, lo, hi, atlas_hw)


def _thin_bars(rng, height, width, lo, hi, atlas_hw) -> list[Surface]:
    """One to three poles or wires 2 to 7 px wide, or a railing of 3 to 8 evenly spaced bars at one depth."""
    size = min(height, width)
    angle = math.pi / 2 + rng.uniform(-0.2, 0.2) if rng.random() < 0.5 else rng.uniform(0, math.pi)
    cos, sin = math.cos(angle), math.sin(angle)
    if rng.random() < 0.35:
        near = rng.uniform(lo, hi)
        spacing = rng.uniform(6, 24)
        count = int(rng.integers(3, 9))
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        half_length, half_width = size * rng.uniform(0.2, 0.6), rng.uniform(1.0, 3.0)
        offsets = (np.arange(count) - (count - 1) / 2) * spacing
        return [_bar(rng, cx - sin * k, cy + cos * k, cos, sin, half_length, half_width,
                     max(lo, near - 1.0), near, atlas_hw) for k in offsets]
    bars = []
    for _ in range(int(rng.integers(1, 4))):
        near = rng.uniform(lo, hi)
        bars.append(_bar(rng, rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height, cos, sin,
                         size * rng.uniform(0.25, 0.9), rng.uniform(1.0, 3.5), max(lo, near - 0.2 * (hi - lo)),
                         near, atlas_hw))
        angle += rng.uniform(-0.5, 0.5)
        cos, sin = math.cos(angle), math.sin(angle)
    return bars


def _curved_or_steep(rng, height, width, lo, hi, atlas_hw) -> Surface:
    """A cylinder (a rectangle curved across its width) or a plate slanted almost to MAX_X_SLOPE."""
    size = min(height, width)
    cos, sin = _rotation(rng)
    across, along = size * rng.uniform(0.1, 0.4), size * rng.uniform(0.1, 0.5)
    half_x = abs(cos) * across + abs(sin) * along
    half_y = abs(sin) * across + abs(cos) * along
    if rng.random() < 0.5:
        # h (1 - u^2 / across^2) with u along (cos, sin): its x slope is at most 2|h| sqrt(A)
        quad = (cos * cos / across**2, 2.0 * cos * sin / across**2, sin * sin / across**2)
        bound = 0.45 * MAX_X_SLOPE / max(math.sqrt(quad[0]), 1e-6)
        slopes = (0.0, rng.uniform(-0.2, 0.2), (1 if rng.random() < 0.6 else -1) * rng.uniform(0.3, 1.0) * bound)
    else:
        quad = (0.0, 0.0, 0.0)
        slopes = ((1 if rng.random() < 0.5 else -1) * rng.uniform(0.6, 0.95) * MAX_X_SLOPE, rng.uniform(-0.5, 0.5), 0.0)
    return _placed_surface(rng, "rect", rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height,
                           half_x, half_y, quad, (cos, sin, across, along), (), slopes, lo, hi, atlas_hw)


def _flat_colour(rng: np.random.Generator) -> np.ndarray:
    """A near-uniform colour map (walls, sky, painted metal): only sensor noise tells the views apart there."""
    mixing = rng.uniform(0.0, 2.0) * np.eye(3)
    return np.concatenate([mixing, np.zeros((3, 1)), rng.uniform(40, 215, size=(3, 1))], axis=1).astype(np.float32)


def _add_highlights(rng, surfaces, left, disparity, owner, right, owner_right) -> None:
    """Glints on one or two surfaces that move across them between the views, as reflections do.

    A glint is a bright blob at a surface point in the left view and, in the right view,
    at that point's position shifted along the row: the reflection is not where the
    surface is. The disparity stays the surface's, as a scanner would measure it.
    """
    for _ in range(int(rng.integers(1, 3))):
        index = int(rng.integers(len(surfaces)))
        ys, xs = np.nonzero(owner == index)
        if len(ys) < 16:
            continue
        pick = int(rng.integers(len(ys)))
        y, x = float(ys[pick]), float(xs[pick])
        sigma = rng.uniform(2.0, 10.0)
        shift = (1 if rng.random() < 0.5 else -1) * rng.uniform(1.5, 3.0) * sigma
        colour = rng.uniform(60, 160) * rng.uniform(0.85, 1.0, size=3)
        _add_blob(left, owner == index, x, y, sigma, colour)
        _add_blob(right, owner_right == index, x - float(disparity[int(y), int(x)]) + shift, y, sigma, colour)


def _add_blob(image, mask, x, y, sigma, colour) -> None:
    """Add a Gaussian blob of ``colour`` at (x, y) to the pixels of ``image`` under ``mask``."""
    height, width = mask.shape
    reach = 4.0 * sigma
    rows = slice(max(0, int(y - reach)), min(height, int(y + reach) + 1))
    cols = slice(max(0, int(x - reach)), min(width, int(x + reach) + 1))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return
    ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None] - np.float32(y)
    xs = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :] - np.float32(x)
    weight = np.exp((xs * xs + ys * ys) * np.float32(-0.5 / sigma**2)) * mask[rows, cols]
    image[rows, cols] += weight[:, :, None] * colour.astype(np.float32)


def _fractal_noise(rng: np.random.Generator, height: int, width: int, channels: int, roughness: float) -> np.ndarray:
    """Multi-scale value noise of unit spread: octaves built coarse to fine by cubic upsampling.

    Octave k has cells of FINEST_CELL * 2**k pixels; each finer octave has 2**-roughness
    the amplitude of the one above.
    """
    levels = max(1, int(math.log2(max(height, width) / FINEST_CELL / 4)))
    grids = [(math.ceil(height / (FINEST_CELL * 2**k)) + 2, math.ceil(width / (FINEST_CELL * 2**k)) + 2)
             for k in range(levels + 1)]
    noise = rng.standard_normal(grids[-1] + (channels,), dtype=np.float32)
    amplitude = 1.0
    for grid in reversed(grids[:-1]):
        amplitude *= 2.0**-roughness
        noise = cv2.resize(noise, grid[::-1], interpolation=cv2.INTER_CUBIC).reshape(grid + (channels,))
        noise += np.float32(amplitude) * rng.standard_normal(noise.shape, dtype=np.float32)
    full = (int(grids[0][0] * FINEST_CELL), int(grids[0][1] * FINEST_CELL))
    noise = cv2.resize(noise, full[::-1], interpolation=cv2.INTER_CUBIC).reshape(full + (channels,))
    noise = np.ascontiguousarray(noise[:height, :width])
    return noise / np.float32(max(float(noise.std()), 1e-6))


def _atlas(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The scene's 4-channel texture atlas: three smooth noise channels and one sharp pattern.

    The sharp channel saturates noise plus stripes through a steep ramp, giving spots,
    wavy stripes and hard edges that still change over a pixel or more, so bilinear
    sampling in both views stays faithful.
    """
    noise = _fractal_noise(rng, height, width, 4, rng.uniform(0.1, 0.6))
    cos, sin = _rotation(rng)
    period = rng.uniform(6, 30)
    xs = np.arange(width, dtype=np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None]
    stripes = np.sin((cos * xs + sin * ys) * np.float32(2 * math.pi / period))
    mix = noise[:, :, 3] + rng.uniform(0.0, 1.5) * stripes
    noise[:, :, 3] = np.clip(2.5 * mix, -1.0, 1.0)
    return noise


def _render_view(surfaces, atlas, height, width, view) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view with a z-buffer (largest disparity wins).

    Returns:
        (image float32 HxWx3, disparity float32 HxW, index of the visible surface int16 HxW).
    """
    best = np.full((height, width), -np.inf, dtype=np.float32)
    owner = np.zeros((height, width), dtype=np.int16)
    map_u = np.zeros((height, width), dtype=np.float32)
    map_v = np.zeros((height, width), dtype=np.float32)
    windows = [_window(surface, height, width, view) for surface in surfaces]
    for index, (surface, window) in enumerate(zip(surfaces, windows)):
        if window is None:
            continue
        rows, cols = window
        xs = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :]
        ys = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        x_left = np.broadcast_to(xs, shape) if view == "left" else surface.left_x(xs, ys)
        d = surface.disparity(x_left, ys) if view == "left" else x_left - xs
        with np.errstate(invalid="ignore"):
            wins = surface.covers(x_left, ys) & (d > best[rows, cols])
        m = surface.tex_affine
        np.copyto(best[rows, cols], d, where=wins)
        np.copyto(owner[rows, cols], np.int16(index), where=wins)
        np.copyto(map_u[rows, cols], m[0, 0] * x_left + (m[0, 1] * ys + m[0, 2]), where=wins)
        np.copyto(map_v[rows, cols], m[1, 0] * x_left + (m[1, 1] * ys + m[1, 2]), where=wins)
    raw = cv2.remap(atlas, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    image = np.empty((height, width, 3), dtype=np.float32)
    for index, (surface, window) in enumerate(zip(surfaces, windows)):
        if window is not None:
            # each surface colours the atlas its own way; only its visible pixels keep it
            painted = cv2.transform(raw[window], surface.colour)
            if surface.pattern is not None:
                painted += surface.pattern.paint(map_u[window], map_v[window])
            np.copyto(image[window], painted, where=(owner[window] == index)[:, :, None])
    return image, best, owner


def _window(surface: Surface, height: int, width: int, view: str) -> tuple[slice, slice] | None:
    """Rows and columns of the view where the surface may show, or None when off-frame."""
    x0, x1, y0, y1 = surface.bbox
    if view == "right":
        x0, x1 = x0 - surface.d_range[1], x1 - surface.d_range[0]
    cols = slice(max(0, int(math.floor(x0))), min(width, int(math.ceil(x1)) + 1))
    rows = slice(max(0, int(math.floor(y0))), min(height, int(math.ceil(y1)) + 1))
    if cols.start >= cols.stop or rows.start >= rows.stop:
        return None
    return rows, cols


def _seen_from_other(disparity, owner, other_owner, sign) -> np.ndarray:
    """Pixels whose point lands, in the other view, on the same surface at both bilinear neighbours.

    Args:
        sign: -1 for left -> right (x_right = x - d), +1 for right -> left.
    """
    height, width = disparity.shape
    target = np.arange(width, dtype=np.float32)[None, :] + sign * disparity
    inside = (target >= 0) & (target <= width - 1)
    lo = np.clip(np.floor(target), 0, width - 1).astype(np.intp)
    hi = np.minimum(lo + 1, width - 1)
    rows = np.arange(height)[:, None]
    return inside & (other_owner[rows, lo] == owner) & (other_owner[rows, hi] == owner)


def _photometric(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    """Gain, bias and gamma per channel (as a lookup table) then sensor noise; uint8 out."""
    image = np.clip(image, 0, 255).astype(np.uint8)
    if strength <= 0:
        return image
    levels = np.arange(256, dtype=np.float32)[:, None]
    gain = 1.0 + strength * rng.uniform(-0.15, 0.15, size=3)
    bias = strength * rng.uniform(-12, 12, size=3)
    gamma = 1.0 + strength * rng.uniform(-0.15, 0.15, size=3)
    curve = 255.0 * (np.clip(levels * gain + bias, 0, 255) / 255.0) ** gamma
    lut = np.clip(np.round(curve), 0, 255).astype(np.uint8).reshape(1, 256, 3)
    image = cv2.LUT(image, lut)
    # difference of two uniform bytes: a cheap zero-mean noise (std 104.5 before scaling);
    # Gaussian draws would cost more than rendering the scene
    sigma = strength * rng.uniform(0.0, 2.5)
    draws = np.frombuffer(rng.bytes(2 * image.size), dtype=np.uint8).reshape((2,) + image.shape)
    noise = cv2.subtract(draws[0], draws[1], dtype=cv2.CV_16S).astype(np.float32) * np.float32(sigma / 104.5)
    return cv2.add(image, noise, dtype=cv2.CV_8U)


def make_scene(seed: int, height: int = 256, width: int = 512, max_disp: float = 192,
               jitter: bool = True, photos=None, hard_cases: tuple[str, ...] = ()) -> Scene:
    """Generate one synthetic stereo scene; the same arguments always give the same arrays.

    Args:
        seed: random seed (any non-negative int).
        height, width: image size in pixels.
        max_disp: every disparity in the scene is below this.
        jitter: apply photometric differences between the views (gain, bias, gamma,
            noise); False gives views that differ by geometry only.
        photos: optional sequence of normalised HxWx3 photographs
            (``toolkit.data.photos.bundled_photos()``); the smooth atlas channels then come
            from one of them instead of noise, so surfaces carry real-image texture.
        hard_cases: names from HARD_CASES to add what real scenes have and plain ones
            rarely do: "thin" poles, wires and railings; "curved" cylinders and steeply
            slanted plates; "tiled" repetitive patterns; "flat" near-textureless surfaces;
            "glints" that move between the views. The scene under them is the one
            ``hard_cases=()`` gives for the same seed.

    Returns:
        A ``Scene``.
    """
    if height < 8 or width < 8 or max_disp <= 1:
        raise ValueError(f"make_scene needs at least 8x8 pixels and max_disp > 1, got {height}x{width}, {max_disp}")
    rng = np.random.default_rng([int(seed), 0x5733])
    # room for the widest surface (frame plus what the right view sees beyond it) at a slight tilt
    span = width + int(max_disp)
    atlas_hw = (height + span // 6 + 8, span + height // 6 + 8)
    surfaces = _surfaces(rng, height, width, float(max_disp), atlas_hw)
    atlas = _atlas(rng, *atlas_hw)
    if photos:
        from toolkit.data.photos import photo_texture

        atlas[:, :, :3] = photo_texture(rng, photos, *atlas_hw)
    unknown = set(hard_cases) - set(HARD_CASES)
    if unknown:
        raise ValueError(f"make_scene: unknown hard cases {sorted(unknown)}; expected names from {HARD_CASES}")
    # hard cases draw from their own stream, so the plain scene under them stays the same
    hard = np.random.default_rng([int(seed), 0x5733, 1]) if hard_cases else None
    if hard is not None:
        surfaces = _hard_cases(hard, surfaces, height, width, atlas_hw, hard_cases)
    left, disp, owner = _render_view(surfaces, atlas, height, width, "left")
    right, disp_r, owner_r = _render_view(surfaces, atlas, height, width, "right")
    if hard is not None and hard.random() < 0.4 and "glints" in hard_cases:
        _add_highlights(hard, surfaces, left, disp, owner, right, owner_r)
    valid = _seen_from_other(disp, owner, owner_r, -1.0)
    valid_r = _seen_from_other(disp_r, owner_r, owner, 1.0)
    strength = 1.0 if jitter else 0.0
    left = _photometric(rng, left, 0.3 * strength)
    right = _photometric(rng, right, strength)
    return Scene(left, right, disp, valid, disp_r, valid_r, float(max_disp))


def write_instereo2k_tree(root: str | Path, n_train_parts: int = 2, pairs_per_part: int = 3, n_test: int = 2,
                          size: tuple[int, int] = (96, 128), seed: int = 0, max_disp: float = 32,
                          hard_cases: tuple[str, ...] = ()) -> Path:
    """Write synthetic scenes in the InStereo2K layout, for tests and offline demos.

    Layout: ``train/part<N>/<id>/{left,right,left_disp,right_disp}.png`` and
    ``test/<id>/...``; disparity PNGs are uint16, disparity x 100, 0 where not visible
    in the other view. Ids are six-digit numbers, unique over the whole tree.

    Args:
        root: folder to create (may exist).
        n_train_parts, pairs_per_part: train/part1..part<n> with that many pairs each.
        n_test: pairs under test/.
        size: (height, width) of every image.
        seed: scene k uses seed + k.
        max_disp, hard_cases: passed to ``make_scene``.

    Returns:
        The root path.
    """
    root = Path(root)
    folders = [root / "train" / f"part{part + 1}" for part in range(n_train_parts) for _ in range(pairs_per_part)]
    folders += [root / "test"] * n_test
    for index, parent in enumerate(folders):
        scene = make_scene(seed + index, size[0], size[1], max_disp, hard_cases=hard_cases)
        pair_dir = parent / f"{index:06d}"
        io.write_image(pair_dir / "left.png", scene.left)
        io.write_image(pair_dir / "right.png", scene.right)
        io.write_disparity_png(pair_dir / "left_disp.png", np.where(scene.valid, scene.disparity, 0),
                               io.INSTEREO2K_SCALE)
        io.write_disparity_png(pair_dir / "right_disp.png", np.where(scene.right_valid, scene.right_disparity, 0),
                               io.INSTEREO2K_SCALE)
    return root
