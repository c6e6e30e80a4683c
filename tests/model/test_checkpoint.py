"""Saving and loading the student: our format and published RT-IGEV state dicts."""

from __future__ import annotations

import pytest
import torch

from toolkit.errors import CheckpointError
from toolkit.model import StudentConfig, build_student, load_student, save_student
from toolkit.provenance import sha256_file


@pytest.fixture(scope="module")
def weights():
    """A seeded state dict, as the published code would save it (no prefix)."""
    return build_student(seed=5).state_dict()


def assert_same_weights(model, weights):
    loaded = model.state_dict()
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)


def test_our_format_round_trips_weights_config_and_meta(tmp_path, weights):
    config = StudentConfig(max_disp=128, iters=5)
    model = build_student(config, seed=5)
    path = save_student(tmp_path / "student.pth", model, config, meta={"epoch": 3})
    loaded, loaded_config, info = load_student(path)
    assert loaded_config == config
    assert not loaded.training
    assert_same_weights(loaded, model.state_dict())
    assert info["sha256"] == sha256_file(path)
    assert info["format"] == "stereo-trt" and info["meta"] == {"epoch": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["student.pth"]  # no temporary left behind


def test_half_storage_is_smaller_and_loads_as_float32(tmp_path, weights):
    model = build_student(seed=5)
    full = save_student(tmp_path / "full.pth", model, StudentConfig(), meta={})
    half = save_student(tmp_path / "half.pth", model, StudentConfig(), meta={}, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _, _ = load_student(half)
    state = loaded.state_dict()
    assert state["classifier.weight"].dtype == torch.float32
    assert state["feature.bn1.num_batches_tracked"].dtype == torch.int64
    assert torch.allclose(state["classifier.weight"], weights["classifier.weight"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("wrap", [
    lambda sd: sd,
    lambda sd: {f"module.{k}": v for k, v in sd.items()},
    lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 7},
    lambda sd: {"model": sd},
    lambda sd: {"net": sd, "optimizer_step": 10},
], ids=["plain", "dataparallel", "wrapped-state_dict", "wrapped-model", "wrapped-net"])
def test_published_state_dicts_load(tmp_path, weights, wrap):
    path = tmp_path / "official.pth"
    torch.save(wrap(weights), path)
    model, config, info = load_student(path)
    assert config == StudentConfig()
    assert info["format"] == "state_dict"
    assert_same_weights(model, weights)


def test_missing_key_is_named(tmp_path, weights):
    broken = {k: v for k, v in weights.items() if k != "classifier.weight"}
    torch.save(broken, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"missing keys: 1 \(classifier.weight\)") as error:
        load_student(tmp_path / "c.pth")
    assert "\n" not in str(error.value)


def test_unexpected_and_misshaped_keys_are_named_with_counts(tmp_path, weights):
    broken = dict(weights)
    for i in range(7):
        broken[f"extra.layer{i}.weight"] = torch.zeros(1)
    broken["desc.bias"] = torch.zeros(5)
    torch.save(broken, tmp_path / "c.pth")
    with pytest.raises(CheckpointError) as error:
        load_student(tmp_path / "c.pth")
    message = str(error.value)
    assert "unexpected keys: 7 (extra.layer0.weight" in message and "and 2 more" in message
    assert "mis-shaped keys: 1 (desc.bias (5,)!=(96,))" in message
    assert "\n" not in message


def test_non_checkpoint_file_gives_one_line_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint\n" * 20)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as error:
        load_student(path)
    assert "\n" not in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_student(tmp_path / "absent.pth")


def test_checkpoint_without_state_dict_is_refused(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="expected an RT-IGEV state dict"):
        load_student(tmp_path / "c.pth")


def test_explicit_config_overrides_stored_one(tmp_path):
    model = build_student(seed=1)
    path = save_student(tmp_path / "s.pth", model, StudentConfig(iters=4), meta={})
    _, config, _ = load_student(path, config=StudentConfig(iters=12))
    assert config.iters == 12


def test_pickle_with_python_objects_is_refused_without_unpickling(tmp_path):
    import argparse

    torch.save({"args": argparse.Namespace(lr=0.1), "model": build_student().state_dict()}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="weights-only"):
        load_student(tmp_path / "c.pth")
