"""Feature trunk: a MobileNetV2 (width 1.0) encoder to 1/32 and an instance-norm decoder back to 1/4.

The encoder reproduces the module layout of timm's ``mobilenetv2_100`` (stages of
depthwise-separable and inverted-residual blocks named ``conv_pw``/``conv_dw``/``conv_pwl``
with ``bn1``..``bn3``) so that published RT-IGEV checkpoints, which embed that layout under
``feature.block0`` .. ``feature.block4``, load unchanged, without depending on timm.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from toolkit.model.blocks import ConvIN, UpConcat

# (expansion, output channels, repeats, stride of the first block) for each inverted-residual
# stage of MobileNetV2; the first stage (a depthwise-separable block to 16 channels) and the
# final 320-channel stage are handled separately (the latter is unused by RT-IGEV).
STEM_CHANNELS = 32
SEPARABLE_CHANNELS = 16
INVERTED_STAGES = ((6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
# Which MobileNetV2 stages make up each RT-IGEV feature block (stage 0 is the separable one):
# block0 -> 1/2, block1 -> 1/4, block2 -> 1/8, block3 -> 1/16 (two stages), block4 -> 1/32.
BLOCK_STAGES = ((0,), (1,), (2,), (3, 4), (5,))


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv, BN + ReLU6, 1x1 pointwise conv, BN (no activation, no residual here)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv_dw = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.bn1(self.conv_dw(x)))
        y = self.bn2(self.conv_pw(y))
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + BN + ReLU6, 3x3 depthwise + BN + ReLU6, 1x1 linear project + BN.

    A residual is added when the block keeps resolution and channel count.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        mid = in_channels * expansion
        self.conv_pw = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv_dw = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv_pwl = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.bn1(self.conv_pw(x)))
        y = F.relu6(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


def _mobilenet_stages() -> list:
    """The six MobileNetV2 stages RT-IGEV uses, each an nn.Sequential of blocks."""
    stages = [nn.Sequential(DepthwiseSeparable(STEM_CHANNELS, SEPARABLE_CHANNELS))]
    channels = SEPARABLE_CHANNELS
    for expansion, out_channels, repeats, stride in INVERTED_STAGES:
        blocks = []
        for index in range(repeats):
            blocks.append(InvertedResidual(channels, out_channels, stride if index == 0 else 1, expansion))
            channels = out_channels
        stages.append(nn.Sequential(*blocks))
    return stages


class Feature(nn.Module):
    """Multi-scale image features: [1/4 (48 ch), 1/8 (64 ch), 1/16 (192 ch), 1/32 (160 ch)].

    Input: normalised image (B,3,H,W) with H, W multiples of 32.
    """

    def __init__(self):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        stages = _mobilenet_stages()
        for name, indices in zip(("block0", "block1", "block2", "block3", "block4"), BLOCK_STAGES):
            setattr(self, name, nn.Sequential(*(stages[i] for i in indices)))
        self.deconv32_16 = UpConcat(160, 96, instance_norm=True)
        self.deconv16_8 = UpConcat(96 * 2, 32, instance_norm=True)
        self.deconv8_4 = UpConcat(32 * 2, 24, instance_norm=True)
        self.conv4 = ConvIN(24 * 2, 24 * 2, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> list:
        x = F.relu6(self.bn1(self.conv_stem(x)))
        x2 = self.block0(x)
        x4 = self.block1(x2)
        x8 = self.block2(x4)
        x16 = self.block3(x8)
        x32 = self.block4(x16)
        x16 = self.deconv32_16(x32, x16)
        x8 = self.deconv16_8(x16, x8)
        x4 = self.deconv8_4(x8, x4)
        return [self.conv4(x4), x8, x16, x32]
