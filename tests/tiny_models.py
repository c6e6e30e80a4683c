"""A tiny but real stereo network with the student's I/O contract, for fast tests.

Same contract as ``toolkit.model.RTIGEVStereo`` in eval mode: ``forward(left, right,
iters=None)`` takes two (B, 3, H, W) float32 RGB 0..255 tensors (H, W multiples of 32) and
returns (B, 1, H, W) positive disparity. Inside: normalisation, a two-conv feature
extractor at 1/4 resolution, a group-wise correlation volume, a small 3D-conv aggregation,
softmax disparity regression, ``iters`` refinement steps that warp the right features with
a 4-D grid_sample, and a 4x bilinear upsampling. About 9 k parameters; a 64x96 pair runs in
milliseconds, so export, quantization and sensitivity tests stay quick.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TINY_SIZE = (64, 96)
TINY_ITERS = 2


def conv_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU(inplace=True))


def build_gwc_volume(left: torch.Tensor, right: torch.Tensor, planes: int, groups: int) -> torch.Tensor:
    """Group-wise correlation: (B, C, H, W) x2 -> (B, groups, planes, H, W)."""
    b, c, h, w = left.shape
    volume = []
    for d in range(planes):
        shifted = right if d == 0 else F.pad(right[:, :, :, : w - d], (d, 0))
        volume.append((left * shifted).reshape(b, groups, c // groups, h, w).mean(dim=2))
    return torch.stack(volume, dim=2)


def disparity_regression(logits: torch.Tensor) -> torch.Tensor:
    """Soft-argmax over the disparity planes: (B, D, H, W) -> (B, 1, H, W)."""
    prob = torch.softmax(logits, dim=1)
    values = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device).view(1, -1, 1, 1)
    return (prob * values).sum(dim=1, keepdim=True)


def warp_right(features: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """Sample right features at x - d with a 4-D grid_sample (what TensorRT >= 8.5 parses)."""
    b, _, h, w = features.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=features.dtype, device=features.device),
        torch.arange(w, dtype=features.dtype, device=features.device),
        indexing="ij",
    )
    x = xs.view(1, 1, h, w) - disparity
    grid = torch.cat([2 * x / (w - 1) - 1, (2 * ys / (h - 1) - 1).view(1, 1, h, w).expand_as(x)], dim=1)
    return F.grid_sample(features, grid.permute(0, 2, 3, 1), mode="bilinear", align_corners=True)


class TinyStereo(nn.Module):
    """Feature convs + group-wise correlation + 3D aggregation + softmax regression + refinement."""

    def __init__(self, max_disp: int = 32, iters: int = TINY_ITERS, groups: int = 4, channels: int = 16):
        super().__init__()
        self.max_disp, self.iters, self.groups = max_disp, iters, groups
        self.feature = nn.Sequential(conv_relu(3, 8, 2), conv_relu(8, channels, 2))
        self.cost_agg = nn.Sequential(
            nn.Conv3d(groups, 8, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv3d(8, 1, 3, 1, 1)
        )
        self.update = nn.Sequential(conv_relu(2 * channels + 1, channels), nn.Conv2d(channels, 1, 3, 1, 1))

    def forward(self, left: torch.Tensor, right: torch.Tensor, iters: int | None = None) -> torch.Tensor:
        fl = self.feature(2 * (left / 255.0) - 1)
        fr = self.feature(2 * (right / 255.0) - 1)
        volume = build_gwc_volume(fl, fr, self.max_disp // 4, self.groups)
        disparity = disparity_regression(self.cost_agg(volume).squeeze(1))
        for _ in range(self.iters if iters is None else iters):
            warped = warp_right(fr, disparity)
            disparity = F.relu(disparity + self.update(torch.cat([fl, warped, disparity], dim=1)))
        return 4 * F.interpolate(disparity, scale_factor=4, mode="bilinear", align_corners=False)


def tiny_model(seed: int = 0, **kwargs) -> TinyStereo:
    """A TinyStereo with seeded weights in eval mode."""
    torch.manual_seed(seed)
    return TinyStereo(**kwargs).eval()


def scene_pair(hw: tuple[int, int] = (60, 90), disparity: int = 6, seed: int = 0):
    """A textured synthetic pair with a constant shift: (left, right) HxWx3 uint8 RGB."""
    rng = np.random.default_rng(seed)
    h, w = hw
    texture = rng.integers(0, 256, size=(h, w + disparity, 3), dtype=np.uint8)
    left = np.ascontiguousarray(texture[:, disparity:])
    right = np.ascontiguousarray(texture[:, :w])
    return left, right


@functools.lru_cache(maxsize=None)
def exported_tiny_onnx(size: tuple[int, int] = TINY_SIZE, iters: int = TINY_ITERS) -> Path:
    """Export the tiny model once per test session through the library's exporter."""
    from toolkit.export import export_onnx

    out = Path(tempfile.mkdtemp(prefix="stereo-trt-tiny-")) / f"tiny_{size[0]}x{size[1]}_it{iters}_fp32.onnx"
    export_onnx(tiny_model(), out, size=size, iters=iters, lint_trt=None)
    return out
