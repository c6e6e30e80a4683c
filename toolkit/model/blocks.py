"""Small 2D/3D convolution blocks shared by the feature trunk, the cost aggregation and the heads.

The attribute names (``conv``, ``bn``, ``conv1``, ``conv2``, ``feat_att``) are part of the
checkpoint format: they reproduce the published RT-IGEV state_dict keys.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# The published network uses nn.LeakyReLU() with its default slope everywhere.
LEAKY_SLOPE = 0.01


def _conv_layer(in_channels: int, out_channels: int, deconv: bool, is_3d: bool, **kwargs) -> nn.Module:
    """A bias-free 2D/3D convolution or transposed convolution."""
    if is_3d:
        layer = nn.ConvTranspose3d if deconv else nn.Conv3d
    else:
        layer = nn.ConvTranspose2d if deconv else nn.Conv2d
    return layer(in_channels, out_channels, bias=False, **kwargs)


class ConvBN(nn.Module):
    """Convolution, optional batch norm, optional leaky ReLU.

    The batch-norm module is created even when unused (``bn=False``) because published
    checkpoints carry its parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, deconv: bool = False, is_3d: bool = False,
                 bn: bool = True, relu: bool = True, **kwargs):
        super().__init__()
        self.use_bn = bn
        self.use_relu = relu
        self.conv = _conv_layer(in_channels, out_channels, deconv, is_3d, **kwargs)
        self.bn = nn.BatchNorm3d(out_channels) if is_3d else nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.use_bn:
            x = self.bn(x)
        if self.use_relu:
            x = F.leaky_relu(x, LEAKY_SLOPE)
        return x


class ConvIN(nn.Module):
    """Convolution, instance norm (no affine parameters), leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, deconv: bool = False, is_3d: bool = False,
                 relu: bool = True, **kwargs):
        super().__init__()
        self.use_relu = relu
        self.conv = _conv_layer(in_channels, out_channels, deconv, is_3d, **kwargs)
        self.IN = nn.InstanceNorm3d(out_channels) if is_3d else nn.InstanceNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.IN(self.conv(x))
        if self.use_relu:
            x = F.leaky_relu(x, LEAKY_SLOPE)
        return x


class UpConcat(nn.Module):
    """2x transposed-conv upsampling, concatenation with a skip tensor, 3x3 fusion conv.

    ``conv1`` (4x4, stride 2, pad 1) exactly doubles H and W, and the network only accepts
    sizes that are multiples of 32, so the upsampled tensor always matches its skip: no
    shape-dependent resize is needed (the published code resizes when they differ, which
    never happens for valid inputs and would export as a data-dependent branch).

    Args:
        in_channels: channels of the coarse input.
        out_channels: channels after upsampling (and of the skip); the output has twice that.
        instance_norm: instance norm (feature trunk) instead of batch norm (GRU upsampler).
    """

    def __init__(self, in_channels: int, out_channels: int, instance_norm: bool):
        super().__init__()
        block = ConvIN if instance_norm else ConvBN
        self.conv1 = block(in_channels, out_channels, deconv=True, kernel_size=4, stride=2, padding=1)
        self.conv2 = block(out_channels * 2, out_channels * 2, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.cat((self.conv1(x), skip), dim=1))


class FeatureAttention(nn.Module):
    """Gate a cost volume (B,C,D,H,W) channel-wise by a sigmoid computed from image features (B,F,H,W)."""

    def __init__(self, cost_channels: int, feature_channels: int):
        super().__init__()
        self.feat_att = nn.Sequential(
            ConvBN(feature_channels, feature_channels // 2, kernel_size=1, stride=1, padding=0),
            nn.Conv2d(feature_channels // 2, cost_channels, 1),
        )

    def forward(self, cost: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        gate = self.feat_att(features).unsqueeze(2)
        return torch.sigmoid(gate) * cost
