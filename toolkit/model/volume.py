"""Cost volume: group-wise correlation, 3D hourglass aggregation, soft-argmin regression."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from toolkit.model.blocks import ConvBN, FeatureAttention


# Columns per block of the blocked correlation below: large enough that each small matrix
# product is efficient, small enough that little of each product falls outside the band.
CORRELATION_BLOCK = 32


def _shifted_windows(right: torch.Tensor, planes: int, block: int, blocks: int) -> torch.Tensor:
    """For every block of ``block`` left columns, the right columns any of them can match, reversed.

    Args:
        right: (B,C,H,W) right features.
        planes: number of disparity planes D.
        block: columns per block.
        blocks: number of blocks (ceil(W / block)).

    Returns:
        (B,C,H,blocks,block+D-1) where window column j of block b holds
        right[..., b*block + block-1 - j], or zero where that falls off the image.
    """
    width = right.shape[-1]
    padded = F.pad(right, (0, 1))  # column ``width`` is the zero column
    starts = torch.arange(blocks, device=right.device).view(-1, 1) * block + (block - 1)
    columns = starts - torch.arange(block + planes - 1, device=right.device).view(1, -1)
    columns = torch.where((columns < 0) | (columns >= width), torch.full_like(columns, width), columns)
    return padded[..., columns.reshape(-1)].reshape(*right.shape[:3], blocks, block + planes - 1)


def groupwise_correlation_volume(left: torch.Tensor, right: torch.Tensor, planes: int, groups: int) -> torch.Tensor:
    """Group-wise correlation volume: mean over each channel group of left x right shifted by d.

    Computed without a loop over disparities: per block of 32 left columns, one small matrix
    product against the right columns it can match gives all left-right dot products of
    the block; the band holding disparities 0..D-1 is then cut out with a flat reshape. The
    export is Pad, Gather (constant index), MatMul, Reshape and Slice: no ScatterND and no
    volume-sized constant.

    Args:
        left: (B,C,H,W) left features (C divisible by ``groups``).
        right: (B,C,H,W) right features.
        planes: number of disparity planes D.
        groups: number of channel groups G.

    Returns:
        (B,G,D,H,W) volume; plane d holds the correlation at disparity d (x_right = x_left - d),
        zero where x_left < d.
    """
    batch, channels, height, width = left.shape
    per_group = channels // groups
    block = CORRELATION_BLOCK
    # (w + b - 1) // b, not -(-w // b): ONNX integer division truncates, which breaks the negative form.
    blocks = (width + block - 1) // block
    span = block + planes - 1
    # Scaling the (small) left features once turns the sums below into group means.
    left = F.pad(left / per_group, (0, blocks * block - width))
    left = left.reshape(batch, groups, per_group, height, blocks, block).permute(0, 1, 3, 4, 5, 2)
    windows = _shifted_windows(right, planes, block, blocks)
    windows = windows.reshape(batch, groups, per_group, height, blocks, span).permute(0, 1, 3, 4, 2, 5)
    # scores[..., u, j] = <left[x0 + u], right[x0 + block-1 - j]>: disparity d of row u is
    # column j = block-1 - u + d, i.e. flat offset u*(span-1) + d once the first block-1
    # entries are dropped, so rows of span-1 entries put disparity d at column d.
    scores = torch.matmul(left, windows).reshape(batch, groups, height, blocks, block * span)
    band = scores[..., block - 1:block - 1 + block * (span - 1)]
    band = band.reshape(batch, groups, height, blocks, block, span - 1)[..., :planes]
    band = band.reshape(batch, groups, height, blocks * block, planes)[:, :, :, :width]
    return band.permute(0, 1, 4, 2, 3).contiguous()


def disparity_regression(prob: torch.Tensor) -> torch.Tensor:
    """Expected disparity plane under a per-pixel distribution over planes.

    Args:
        prob: (B,D,H,W) probabilities summing to one over D.

    Returns:
        (B,1,H,W) expected plane index (in units of the volume's resolution).
    """
    values = torch.arange(prob.shape[1], dtype=prob.dtype, device=prob.device).view(1, -1, 1, 1)
    return torch.sum(prob * values, dim=1, keepdim=True)


def _down_pair(in_channels: int, out_channels: int) -> nn.Sequential:
    """Stride-2 then stride-1 3x3x3 conv, both BN + leaky ReLU."""
    return nn.Sequential(
        ConvBN(in_channels, out_channels, is_3d=True, kernel_size=3, padding=1, stride=2),
        ConvBN(out_channels, out_channels, is_3d=True, kernel_size=3, padding=1, stride=1),
    )


def _aggregate(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1x1 channel reduction followed by two 3x3x3 convs."""
    return nn.Sequential(
        ConvBN(in_channels, out_channels, is_3d=True, kernel_size=1, padding=0, stride=1),
        ConvBN(out_channels, out_channels, is_3d=True, kernel_size=3, padding=1, stride=1),
        ConvBN(out_channels, out_channels, is_3d=True, kernel_size=3, padding=1, stride=1),
    )


def _up(in_channels: int, out_channels: int, norm_act: bool = True) -> ConvBN:
    """2x transposed 4x4x4 conv (BN + leaky ReLU unless ``norm_act`` is False)."""
    return ConvBN(in_channels, out_channels, deconv=True, is_3d=True, bn=norm_act, relu=norm_act,
                  kernel_size=(4, 4, 4), padding=(1, 1, 1), stride=(2, 2, 2))


class Hourglass(nn.Module):
    """3D encoder-decoder over the cost volume, gated by image features at 1/8, 1/16, 1/32.

    Turns the (B,8,D,H,W) correlation volume into the (B,8,D,H,W) geometry encoding volume.
    """

    def __init__(self, in_channels: int = 8):
        super().__init__()
        c = in_channels
        self.conv1 = _down_pair(c, c * 2)
        self.conv2 = _down_pair(c * 2, c * 4)
        self.conv3 = _down_pair(c * 4, c * 6)
        self.conv3_up = _up(c * 6, c * 4)
        self.conv2_up = _up(c * 4, c * 2)
        self.conv1_up = _up(c * 2, 8, norm_act=False)
        self.agg_0 = _aggregate(c * 8, c * 4)
        self.agg_1 = _aggregate(c * 4, c * 2)
        self.feature_att_8 = FeatureAttention(c * 2, 64)
        self.feature_att_16 = FeatureAttention(c * 4, 192)
        self.feature_att_32 = FeatureAttention(c * 6, 160)
        self.feature_att_up_16 = FeatureAttention(c * 4, 192)
        self.feature_att_up_8 = FeatureAttention(c * 2, 64)

    def forward(self, cost: torch.Tensor, features: list) -> torch.Tensor:
        conv1 = self.feature_att_8(self.conv1(cost), features[1])
        conv2 = self.feature_att_16(self.conv2(conv1), features[2])
        conv3 = self.feature_att_32(self.conv3(conv2), features[3])
        conv2 = self.agg_0(torch.cat((self.conv3_up(conv3), conv2), dim=1))
        conv2 = self.feature_att_up_16(conv2, features[2])
        conv1 = self.agg_1(torch.cat((self.conv2_up(conv2), conv1), dim=1))
        conv1 = self.feature_att_up_8(conv1, features[1])
        return self.conv1_up(conv1)
