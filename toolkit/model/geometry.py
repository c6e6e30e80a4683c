"""Geometry lookup: sample the geometry encoding volume around the current disparity estimate.

The published code reshapes the volume to one 1-pixel-high image per pixel and calls
``grid_sample`` on it. Here the same bilinear (zero-padded) interpolation along the
disparity axis is a gather of integer planes plus a linear blend. All 2r+1 taps at one
pixel share the same fractional part, so 2r+2 gathered planes serve all of them. The
pyramid is stored once per pair with disparity as the last (contiguous) axis and a zero
plane at each end, so every lookup reads a few adjacent values per pixel. The export uses
Floor, Clip, GatherElements and element-wise ops, all supported by TensorRT 8.5+ and ONNX
Runtime (no GridSample, let alone a 5-D one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def volume_pyramid(volume: torch.Tensor, levels: int) -> list:
    """Average-pool the volume along disparity by 2 per level.

    Args:
        volume: (B,C,D,H,W) geometry encoding volume.
        levels: number of levels.

    Returns:
        list of ``levels`` tensors (B,C,D/2**i,H,W); an odd plane left over at a level is
        dropped, as 2-wide average pooling with stride 2 does.
    """
    pyramid = [volume]
    for _ in range(levels - 1):
        batch, channels, planes, height, width = volume.shape
        even = planes - planes % 2
        volume = volume[:, :, :even].reshape(batch, channels, even // 2, 2, height, width).mean(dim=3)
        pyramid.append(volume)
    return pyramid


def lookup_level(padded: torch.Tensor, position: torch.Tensor, radius: int) -> torch.Tensor:
    """Linear interpolation along the last axis at ``position + k`` for k in -radius..radius.

    Args:
        padded: (B,C,H,W,D+2) one pyramid level, disparity last, with one zero plane at
            each end so that any tap outside [0, D-1] reads zero (as grid_sample's zero
            padding does).
        position: (B,1,H,W) disparity in this level's plane units.
        radius: lookup radius r.

    Returns:
        (B, C*(2r+1), H, W), channel index c*(2r+1) + (k + r).
    """
    batch, channels, height, width, padded_planes = padded.shape
    position = position.squeeze(1).unsqueeze(-1)
    base = torch.floor(position)
    frac = position - base
    offsets = torch.arange(-radius, radius + 2, dtype=position.dtype, device=position.device)
    # Plane p sits at padded index p + 1; clipping to [-1, D] lands out-of-range taps on a zero plane.
    index = (torch.clamp(base + offsets, -1.0, float(padded_planes - 2)) + 1.0).long()
    index = index.unsqueeze(1).expand(batch, channels, height, width, 2 * radius + 2)
    taps = torch.gather(padded, 4, index)
    frac = frac.unsqueeze(1)
    sampled = taps[..., :-1] * (1.0 - frac) + taps[..., 1:] * frac
    return sampled.permute(0, 1, 4, 2, 3).reshape(batch, channels * (2 * radius + 1), height, width)


class GeometryLookup:
    """Pyramid of the geometry encoding volume, queried once per refinement iteration.

    Args:
        volume: (B,C,D,H,W) geometry encoding volume at 1/4 resolution.
        levels: pyramid levels.
        radius: lookup radius per level.
    """

    def __init__(self, volume: torch.Tensor, levels: int, radius: int):
        self.radius = radius
        self.pyramid = [F.pad(level.permute(0, 1, 3, 4, 2), (1, 1)) for level in volume_pyramid(volume, levels)]

    def __call__(self, disp: torch.Tensor) -> torch.Tensor:
        """Features around ``disp`` (B,1,H,W, in 1/4-resolution pixels): (B, levels*C*(2r+1), H, W)."""
        samples = [lookup_level(level, disp / 2 ** i, self.radius) for i, level in enumerate(self.pyramid)]
        return torch.cat(samples, dim=1)
