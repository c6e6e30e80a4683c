"""RT-IGEV stereo network, rewritten for deployment (fp32, fixed iterations, exportable ops).

State-dict keys and shapes are those of the published IGEV++ ``core_rt`` network, so its
checkpoints load unchanged; the forward pass gives the same disparities.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from toolkit.errors import InputError
from toolkit.model.blocks import ConvBN, ConvIN, UpConcat
from toolkit.model.confidence import network_confidence
from toolkit.model.config import StudentConfig
from toolkit.model.features import Feature
from toolkit.model.geometry import GeometryLookup
from toolkit.model.update import GEOMETRY_GROUPS, UpdateBlock, context_upsample
from toolkit.model.volume import Hourglass, disparity_regression, groupwise_correlation_volume

# Channels of the 1/4-resolution feature map (24 decoded + 24 skip from MobileNet + 48 stem).
FEATURE_CHANNELS = 96
SIZE_MULTIPLE = 32


class Encoded(NamedTuple):
    """Everything the refinement loop needs, computed once per image pair."""

    geo_volume: torch.Tensor  # (B,8,D,H/4,W/4) geometry encoding volume
    prob: torch.Tensor  # (B,D,H/4,W/4) softmax over disparity planes of the initial estimate
    init_disp: torch.Tensor  # (B,1,H/4,W/4) initial disparity in 1/4-resolution pixels
    net: torch.Tensor  # (B,hidden,H/4,W/4) initial GRU hidden state
    context: torch.Tensor  # (B,3*hidden,H/4,W/4) GRU gate biases (z, r, q)
    features_4: torch.Tensor  # (B,96,H/4,W/4) left features at 1/4
    stem_2: torch.Tensor  # (B,32,H/2,W/2) left stem features at 1/2


def _stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """Stride-2 conv + IN + leaky ReLU, then 3x3 conv + IN + ReLU (fine detail for upsampling)."""
    return nn.Sequential(
        ConvIN(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
        nn.InstanceNorm2d(out_channels),
        nn.ReLU(),
    )


def _tracing() -> bool:
    """True while TorchScript tracing or torch.compile/dynamo export records the graph."""
    compiler = getattr(torch, "compiler", None)
    return torch.jit.is_tracing() or bool(compiler is not None and getattr(compiler, "is_compiling", lambda: False)())


def tap_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Convex-upsampling weights: (B,9,H,W) logits -> (B,H,W,9) softmax over the 3x3 taps.

    The taps go last before the softmax and stay there (``context_upsample`` reads them in that
    layout): ONNX Runtime's CPU Softmax on a non-last axis is several times slower, and its
    graph optimiser folds a Transpose -> Softmax -> Transpose sandwich back into exactly that
    (benchmarks/ort_vs_torch.md).
    """
    return F.softmax(logits.permute(0, 2, 3, 1), dim=-1)


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """RGB 0..255 -> -1..1."""
    return 2.0 * (image / 255.0) - 1.0


class RTIGEVStereo(nn.Module):
    """RT-IGEV student.

    ``forward(left, right, iters=None, confidence=False)``: inputs (B,3,H,W) float32 RGB
    0..255 with H, W multiples of 32. In eval mode returns the final disparity (B,1,H,W) in
    pixels, or ``(disparity, confidence)`` with ``confidence=True`` (see
    ``toolkit.model.confidence``). In training mode returns ``(init_disp_up, [disp_up for
    each iteration])`` for a sequence loss.
    """

    def __init__(self, config: StudentConfig | None = None):
        super().__init__()
        self.config = config = config or StudentConfig()
        hidden = config.hidden_dim
        geometry_channels = config.corr_levels * (2 * config.corr_radius + 1) * GEOMETRY_GROUPS
        self.update_block = UpdateBlock(hidden, geometry_channels)
        self.hnet = nn.Sequential(
            ConvBN(FEATURE_CHANNELS, hidden, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False),
        )
        self.cnet = ConvBN(FEATURE_CHANNELS, hidden, kernel_size=3, stride=1, padding=1)
        self.context_zqr_conv = nn.Conv2d(hidden, hidden * 3, 3, padding=1)
        self.feature = Feature()
        self.stem_2 = _stem(3, 32)
        self.stem_4 = _stem(32, 48)
        # Upsampling weights for the initial disparity (training only) ...
        self.spx = nn.Sequential(nn.ConvTranspose2d(2 * 32, 9, kernel_size=4, stride=2, padding=1))
        self.spx_2 = UpConcat(24, 32, instance_norm=True)
        self.spx_4 = nn.Sequential(
            ConvIN(FEATURE_CHANNELS, 24, kernel_size=3, stride=1, padding=1),
            nn.Conv2d(24, 24, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(24),
            nn.ReLU(),
        )
        # ... and for the refined disparity, driven by the GRU state.
        self.spx_2_gru = UpConcat(32, 32, instance_norm=False)
        self.spx_gru = nn.Sequential(nn.ConvTranspose2d(2 * 32, 9, kernel_size=4, stride=2, padding=1))
        self.conv = ConvIN(FEATURE_CHANNELS, FEATURE_CHANNELS, kernel_size=3, padding=1, stride=1)
        self.desc = nn.Conv2d(FEATURE_CHANNELS, FEATURE_CHANNELS, kernel_size=1, padding=0, stride=1)
        self.cost_agg = Hourglass(GEOMETRY_GROUPS)
        self.classifier = nn.Conv3d(GEOMETRY_GROUPS, 1, 3, 1, 1, bias=False)

    def _check_input(self, left: torch.Tensor, right: torch.Tensor) -> None:
        """Shape checks on the Python side only (they never enter a traced graph)."""
        if _tracing():
            return
        if left.dim() != 4 or left.shape[1] != 3 or left.shape != right.shape:
            raise InputError(
                f"stereo input shapes {tuple(left.shape)} and {tuple(right.shape)} are invalid; "
                "expected two equal (B,3,H,W) tensors"
            )
        if left.shape[2] % SIZE_MULTIPLE or left.shape[3] % SIZE_MULTIPLE:
            raise InputError(
                f"stereo input size {left.shape[2]}x{left.shape[3]} is invalid; expected H and W multiples of {SIZE_MULTIPLE}"
            )

    def image_features(self, image: torch.Tensor):
        """Features of one normalised image: ([1/4 (96 ch), 1/8, 1/16, 1/32], stem at 1/2)."""
        features = self.feature(image)
        stem_2 = self.stem_2(image)
        features[0] = torch.cat((features[0], self.stem_4(stem_2)), dim=1)
        return features, stem_2

    def initial_disparity(self, geo_volume: torch.Tensor):
        """Softmax over disparity planes and its expectation.

        Args:
            geo_volume: (B,8,D,h,w) geometry encoding volume.

        Returns:
            (prob (B,D,h,w), init_disp (B,1,h,w) in 1/4-resolution pixels).
        """
        prob = F.softmax(self.classifier(geo_volume).squeeze(1), dim=1)
        return prob, disparity_regression(prob)

    def encode(self, left: torch.Tensor, right: torch.Tensor) -> Encoded:
        """Features, cost volume, initial disparity and GRU state for a raw (0..255) image pair."""
        left, right = normalize_image(left), normalize_image(right)
        features_left, stem_2 = self.image_features(left)
        features_right, _ = self.image_features(right)
        match_left = self.desc(self.conv(features_left[0]))
        match_right = self.desc(self.conv(features_right[0]))
        volume = groupwise_correlation_volume(match_left, match_right, self.config.max_disp // 4, GEOMETRY_GROUPS)
        geo_volume = self.cost_agg(volume, features_left)
        prob, init_disp = self.initial_disparity(geo_volume)
        net = torch.tanh(self.hnet(features_left[0]))
        context = self.context_zqr_conv(self.cnet(features_left[0]))
        return Encoded(geo_volume, prob, init_disp, net, context, features_left[0], stem_2)

    def upsample_weights(self, net: torch.Tensor, stem_2: torch.Tensor) -> torch.Tensor:
        """Convex-upsampling weights (B,H,W,9) from the GRU state and the 1/2 stem."""
        mask_feat = self.update_block.mask_features(net)
        return tap_softmax(self.spx_gru(self.spx_2_gru(mask_feat, stem_2)))

    def upsample_initial(self, encoded: Encoded) -> torch.Tensor:
        """Full-resolution initial disparity (training supervision), with weights from image features."""
        weights = self.spx(self.spx_2(self.spx_4(encoded.features_4), encoded.stem_2))
        return context_upsample(encoded.init_disp * 4.0, tap_softmax(weights))

    def forward(self, left: torch.Tensor, right: torch.Tensor, iters: int | None = None, confidence: bool = False):
        """Estimate left-view disparity (x_right = x_left - d).

        Args:
            left: (B,3,H,W) float32 RGB 0..255, H and W multiples of 32.
            right: same shape as ``left``.
            iters: refinement iterations (default: ``config.iters``).
            confidence: also return the per-pixel confidence (eval mode only).

        Returns:
            eval mode: (B,1,H,W) disparity in pixels, or (disparity, confidence) both (B,1,H,W).
            Training mode: (init_disp_up, list of per-iteration disp_up), each (B,1,H,W).
        """
        self._check_input(left, right)
        iters = self.config.iters if iters is None else iters
        if iters < 1:
            raise InputError(f"iters={iters} is invalid; expected at least one refinement iteration")
        encoded = self.encode(left, right)
        lookup = GeometryLookup(encoded.geo_volume, self.config.corr_levels, self.config.corr_radius)
        net, disp = encoded.net, encoded.init_disp
        predictions = []
        for step in range(iters):
            if self.training:
                # Each iteration is supervised on its own; gradients do not flow through earlier estimates.
                disp = disp.detach()
            net, delta = self.update_block(net, encoded.context, lookup(disp), disp)
            disp = disp + delta
            if self.training or step == iters - 1:
                weights = self.upsample_weights(net, encoded.stem_2)
                predictions.append(context_upsample(disp * 4.0, weights))
        if self.training:
            return self.upsample_initial(encoded), predictions
        if confidence:
            return predictions[-1], context_upsample(network_confidence(encoded.prob, disp, delta), weights)
        return predictions[-1]
