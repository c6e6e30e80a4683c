"""The student network: layout of its weights, its outputs, and its deployment rewrites."""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode, resolve_name

from toolkit.errors import CheckpointError, InputError
from toolkit.model import RTIGEVStereo, StudentConfig, build_student
from toolkit.model.geometry import GeometryLookup
from toolkit.model.update import context_upsample
from toolkit.model.volume import groupwise_correlation_volume

# Parameter count of the published core_rt network (timm mobilenetv2_100 trunk), measured.
PUBLISHED_PARAMETERS = 4_165_162
SIZE = (64, 96)


def random_pair(height: int = SIZE[0], width: int = SIZE[1], seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, height, width, generator=generator) * 255 for _ in range(2)]


def test_parameter_count_matches_published_network():
    model = build_student()
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS


def test_state_dict_uses_published_key_names():
    keys = build_student().state_dict()
    for key in (
        "feature.conv_stem.weight",
        "feature.bn1.running_var",
        "feature.block0.0.0.conv_dw.weight",
        "feature.block0.0.0.bn2.weight",
        "feature.block3.1.2.conv_pwl.weight",
        "feature.block4.0.2.bn3.running_mean",
        "feature.deconv32_16.conv1.conv.weight",
        "cost_agg.conv1_up.bn.running_mean",
        "update_block.gru.convq.weight",
        "update_block.mask_feat_4.0.bias",
        "spx_2_gru.conv2.bn.weight",
        "classifier.weight",
    ):
        assert key in keys
    assert tuple(keys["feature.block3.0.0.conv_pw.weight"].shape) == (192, 32, 1, 1)
    assert tuple(keys["update_block.encoder.convc1.weight"].shape) == (64, 144, 1, 1)


def test_build_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = build_student(seed=3).state_dict()
    assert torch.equal(torch.rand(1), expected_next)
    second = build_student(seed=3).state_dict()
    other = build_student(seed=4).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["classifier.weight"], other["classifier.weight"])


def test_eval_returns_one_disparity_map():
    model = build_student(StudentConfig(iters=2)).eval()
    left, right = random_pair()
    with torch.inference_mode():
        disparity = model(left, right)
    assert isinstance(disparity, torch.Tensor)
    assert disparity.shape == (1, 1, *SIZE)
    assert torch.isfinite(disparity).all()


def test_training_returns_initial_and_one_prediction_per_iteration():
    model = build_student().train()
    left, right = random_pair()
    init_up, predictions = model(left, right, iters=3)
    assert init_up.shape == (1, 1, *SIZE)
    assert len(predictions) == 3
    assert all(p.shape == (1, 1, *SIZE) for p in predictions)
    predictions[-1].mean().backward()
    assert model.update_block.gru.convq.weight.grad is not None


def test_probability_volume_is_reachable_and_normalised():
    model = build_student().eval()
    left, right = random_pair()
    with torch.inference_mode():
        encoded = model.encode(left, right)
        prob, init_disp = model.initial_disparity(encoded.geo_volume)
    planes = model.config.max_disp // 4
    assert encoded.prob.shape == (1, planes, SIZE[0] // 4, SIZE[1] // 4)
    assert torch.allclose(encoded.prob.sum(dim=1), torch.ones(1, SIZE[0] // 4, SIZE[1] // 4), atol=1e-5)
    assert torch.equal(prob, encoded.prob) and torch.equal(init_disp, encoded.init_disp)


@pytest.mark.parametrize("size", [(64, 100), (50, 96)])
def test_rejects_sizes_that_are_not_multiples_of_32(size):
    model = build_student().eval()
    left, right = random_pair(*size)
    with pytest.raises(InputError, match="multiples of 32"):
        model(left, right)


@pytest.mark.parametrize("field, value", [("max_disp", 100), ("iters", 0), ("corr_levels", 2.5)])
def test_config_rejects_invalid_fields(field, value):
    with pytest.raises(CheckpointError, match=field):
        StudentConfig(**{field: value})


def test_config_round_trips_through_dict():
    config = StudentConfig(max_disp=128, iters=5)
    assert StudentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(CheckpointError, match="unknown fields"):
        StudentConfig.from_dict({**config.to_dict(), "mixed_precision": True})


def reference_gwc(left, right, planes, groups):
    """The textbook definition, one disparity at a time."""
    batch, channels, height, width = left.shape
    volume = left.new_zeros(batch, groups, planes, height, width)
    for d in range(min(planes, width)):  # planes at or beyond the width stay zero
        product = left[..., d:] * right[..., : width - d]
        volume[:, :, d, :, d:] = product.reshape(batch, groups, channels // groups, height, width - d).mean(dim=2)
    return volume


@pytest.mark.parametrize("width, planes", [(24, 48), (40, 8), (72, 16)])
def test_groupwise_correlation_matches_definition(width, planes):
    generator = torch.Generator().manual_seed(1)
    left, right = (torch.randn(2, 16, 3, width, generator=generator) for _ in range(2))
    expected = reference_gwc(left, right, planes, 4)
    assert torch.allclose(groupwise_correlation_volume(left, right, planes, 4), expected, atol=1e-5)


def reference_lookup(volume, disp, levels, radius):
    """grid_sample on one 1-pixel-high image per pixel, as the published code samples."""
    batch, channels, planes, height, width = volume.shape
    level = volume.permute(0, 3, 4, 1, 2).reshape(batch * height * width, channels, 1, planes)
    offsets = torch.linspace(-radius, radius, 2 * radius + 1).view(1, 1, -1, 1)
    outputs = []
    for i in range(levels):
        x = offsets + disp.reshape(-1, 1, 1, 1) / 2 ** i
        grid = torch.cat([2 * x / (level.shape[-1] - 1) - 1, torch.zeros_like(x)], dim=-1)
        sampled = F.grid_sample(level, grid, align_corners=True)
        outputs.append(sampled.view(batch, height, width, -1))
        level = F.avg_pool2d(level, [1, 2], stride=[1, 2])
    return torch.cat(outputs, dim=-1).permute(0, 3, 1, 2)


def test_geometry_lookup_matches_grid_sample_with_zero_padding():
    generator = torch.Generator().manual_seed(2)
    volume = torch.randn(1, 8, 24, 5, 7, generator=generator)
    # Includes positions beyond both ends of the volume, where taps read zeros.
    disp = torch.rand(1, 1, 5, 7, generator=generator) * 34 - 5
    expected = reference_lookup(volume, disp, levels=2, radius=4)
    assert torch.allclose(GeometryLookup(volume, 2, 4)(disp), expected, atol=1e-5)


def test_context_upsample_matches_unfold_definition():
    generator = torch.Generator().manual_seed(3)
    disp = torch.randn(2, 1, 5, 6, generator=generator)
    weights = torch.softmax(torch.randn(2, 9, 20, 24, generator=generator), dim=1)
    neighbours = F.unfold(disp, 3, 1, 1).reshape(2, 9, 5, 6)
    expected = (F.interpolate(neighbours, (20, 24), mode="nearest") * weights).sum(dim=1, keepdim=True)
    assert torch.allclose(context_upsample(disp, weights.permute(0, 2, 3, 1)), expected, atol=1e-6)


class CallCounter(TorchFunctionMode):
    """Counts every torch function and tensor method a forward pass calls."""

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls[resolve_name(func) or repr(func)] += 1
        return func(*args, **(kwargs or {}))


def recorded_calls(max_disp: int) -> collections.Counter:
    """Torch calls of one eval forward pass (1 iteration, 32x256) on the meta device (shapes only, no compute)."""
    model = RTIGEVStereo(StudentConfig(max_disp=max_disp, iters=1)).eval().to("meta")
    image = torch.empty(1, 3, 32, 256, device="meta")
    with torch.no_grad(), CallCounter() as counter:
        assert model(image, image).shape == (1, 1, 32, 256)
    return counter.calls


def test_no_disparity_loop_scatter_or_unsupported_sampling():
    small, large = recorded_calls(64), recorded_calls(128)
    # Doubling the disparity range must not add a single call: no per-disparity loop.
    assert small == large
    # Slice assignment (exports as ScatterND), a zero-initialised volume, grid_sample (5-D is
    # unsupported by TensorRT), unfold (Im2Col) and resizes are what the rewrite removed.
    forbidden = {"torch.Tensor.__setitem__", "torch.Tensor.index_put_", "torch.Tensor.index_put",
                 "torch.Tensor.new_zeros", "torch.zeros", "torch.nn.functional.grid_sample",
                 "torch.nn.functional.unfold", "torch.Tensor.unfold", "torch.nn.functional.interpolate"}
    assert not forbidden & set(large)


def test_rejects_zero_iterations():
    model = build_student().eval()
    left, right = random_pair()
    with pytest.raises(InputError, match="iters=0"):
        model(left, right, iters=0)
