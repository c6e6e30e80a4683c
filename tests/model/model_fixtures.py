"""Shared inputs and weights for the student-network tests (plain functions, imported by the tests).

The golden fixture (tests/fixtures/golden_rt_igev.npz) was produced by the published
core_rt code from exactly these weights and this input; see its JSON for how.
"""

from __future__ import annotations

import numpy as np
import torch

from toolkit.model import StudentConfig, build_student

GOLDEN_SEED = 0
GOLDEN_ITERS = 3


def perturb_batchnorm(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters (seeded).

    Freshly built networks have mean 0 / var 1 / weight 1 / bias 0, which would hide a
    wrong eps, a swapped mean/var or a missing norm layer.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                count = module.num_features
                module.running_mean.copy_(torch.randn(count, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(count, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(count, generator=generator) * 0.1)
    return model


def golden_student() -> torch.nn.Module:
    """build_student(seed=0) with perturbed batch norms, in eval mode."""
    return perturb_batchnorm(build_student(StudentConfig(), seed=GOLDEN_SEED), seed=GOLDEN_SEED + 1).eval()


def motorcycle_pair(step: int, top: int, left: int, height: int, width: int):
    """A crop of scikit-image's Middlebury motorcycle pair (every ``step``-th pixel), as (1,3,H,W) float32 0..255."""
    from skimage.data import stereo_motorcycle

    images = stereo_motorcycle()[:2]
    crops = [image[::step, ::step][top:top + height, left:left + width] for image in images]
    return [torch.from_numpy(np.ascontiguousarray(c.transpose(2, 0, 1))).float().unsqueeze(0) for c in crops]


def golden_pair():
    """The 64x128 golden input: the motorcycle pair subsampled by 4, cropped at (16, 24)."""
    return motorcycle_pair(step=4, top=16, left=24, height=64, width=128)
