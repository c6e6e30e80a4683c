"""Iterative refinement: motion encoder, ConvGRU, disparity head, and learned convex upsampling."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GEOMETRY_GROUPS = 8


class MotionEncoder(nn.Module):
    """Encode the looked-up geometry features and the current disparity into GRU input.

    Args:
        geometry_channels: channels of one lookup (levels * groups * (2r+1)).
        out_channels: channels of the output; the last one is the disparity itself.
    """

    def __init__(self, geometry_channels: int, out_channels: int):
        super().__init__()
        self.convc1 = nn.Conv2d(geometry_channels, 64, 1, padding=0)
        self.convc2 = nn.Conv2d(64, 64, 3, padding=1)
        self.convd1 = nn.Conv2d(1, 64, 7, padding=3)
        self.convd2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv = nn.Conv2d(64 + 64, out_channels - 1, 3, padding=1)

    def forward(self, disp: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
        cor = F.relu(self.convc2(F.relu(self.convc1(geometry))))
        dsp = F.relu(self.convd2(F.relu(self.convd1(disp))))
        out = F.relu(self.conv(torch.cat([cor, dsp], dim=1)))
        return torch.cat([out, disp], dim=1)


class ConvGRU(nn.Module):
    """3x3 convolutional GRU whose gates also receive a fixed per-pixel context bias."""

    def __init__(self, hidden_dim: int, input_dim: int):
        super().__init__()
        self.convz = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convr = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)
        self.convq = nn.Conv2d(hidden_dim + input_dim, hidden_dim, 3, padding=1)

    def forward(self, h: torch.Tensor, context: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One GRU step.

        Args:
            h: (B,Hd,H,W) hidden state.
            context: (B,3*Hd,H,W) biases for the z, r and q gates, in that order.
            x: (B,Ci,H,W) input.

        Returns:
            new hidden state (B,Hd,H,W).
        """
        hidden = h.shape[1]
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.convz(hx) + context[:, :hidden])
        r = torch.sigmoid(self.convr(hx) + context[:, hidden:2 * hidden])
        q = torch.tanh(self.convq(torch.cat([r * h, x], dim=1)) + context[:, 2 * hidden:])
        return (1 - z) * h + z * q


class DispHead(nn.Module):
    """Two 3x3 convolutions from the hidden state to a disparity update."""

    def __init__(self, input_dim: int, hidden_dim: int = 128, output_dim: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, output_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """One refinement step: encode motion, step the GRU, predict a disparity update.

    Args:
        hidden_dim: GRU hidden channels.
        geometry_channels: channels of one geometry lookup.
    """

    def __init__(self, hidden_dim: int, geometry_channels: int):
        super().__init__()
        self.encoder = MotionEncoder(geometry_channels, hidden_dim)
        self.gru = ConvGRU(hidden_dim, hidden_dim)
        self.disp_head = DispHead(hidden_dim, hidden_dim=128, output_dim=1)
        self.mask_feat_4 = nn.Sequential(nn.Conv2d(hidden_dim, 32, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, net: torch.Tensor, context: torch.Tensor, geometry: torch.Tensor, disp: torch.Tensor):
        """Returns (new hidden state, disparity update), both at 1/4 resolution."""
        net = self.gru(net, context, self.encoder(disp, geometry))
        return net, self.disp_head(net)

    def mask_features(self, net: torch.Tensor) -> torch.Tensor:
        """Features (B,32,H,W) that steer the convex upsampling; only needed when a prediction is upsampled."""
        return self.mask_feat_4(net)


def context_upsample(disp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """4x upsampling: each fine pixel is a convex combination of its coarse pixel's 3x3 neighbourhood.

    Equivalent to unfolding the 3x3 neighbourhoods (zero-padded) and repeating them 4x4
    (nearest), but built from a fixed one-hot 3x3 convolution and reshapes, which export to
    plain Conv/Reshape/Transpose/Mul/ReduceSum (no Im2Col, no Resize).

    Args:
        disp: (B,1,h,w) coarse disparity, already scaled to fine pixels.
        weights: (B,4h,4w,9) softmax weights over the 3x3 neighbourhood (row-major taps), taps
            last (see ``network.tap_softmax``).

    Returns:
        (B,1,4h,4w) disparity.
    """
    batch, _, height, width = disp.shape
    taps = torch.eye(9, dtype=disp.dtype, device=disp.device).view(9, 1, 3, 3)
    neighbours = F.conv2d(disp, taps, padding=1).permute(0, 2, 3, 1).reshape(batch, height, 1, width, 1, 9)
    weights = weights.reshape(batch, height, 4, width, 4, 9)
    return (neighbours * weights).sum(dim=-1).reshape(batch, 1, height * 4, width * 4)
