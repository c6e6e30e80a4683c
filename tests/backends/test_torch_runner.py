"""PyTorch runner and the runner factory, on the tiny stereo network and a tiny student checkpoint."""

import numpy as np
import pytest
import torch

from tiny_models import scene_pair, tiny_model
from toolkit.backends import backend_for, open_runner
from toolkit.backends.torch_runner import TorchRunner
from toolkit.errors import InputError
from toolkit.preprocess import prepare_pair, restore_disparity


def test_infer_matches_the_module_on_the_shared_preprocessing():
    model = tiny_model()
    left, right = scene_pair((60, 90))
    with TorchRunner(model, iters=2) as runner:
        prediction = runner.infer(left, right)
    prepared = prepare_pair(left, right)
    with torch.no_grad():
        direct = model(torch.from_numpy(prepared.feed["left"]), torch.from_numpy(prepared.feed["right"]), iters=2)
    expected = restore_disparity(direct.numpy(), prepared.geometry)
    assert prediction.disparity.shape == (60, 90)
    np.testing.assert_allclose(prediction.disparity, expected, atol=1e-5)
    assert prediction.infer_ms > 0 and prediction.total_ms >= prediction.infer_ms


def test_fixed_size_resizes_and_restores_to_the_source_grid():
    left, right = scene_pair((50, 70))
    with TorchRunner(tiny_model(), size=(64, 96)) as runner:
        assert runner.infer(left, right).disparity.shape == (50, 70)


def test_iterations_change_the_result():
    left, right = scene_pair()
    with TorchRunner(tiny_model(), iters=1) as one, TorchRunner(tiny_model(), iters=3) as three:
        assert not np.allclose(one.infer(left, right).disparity, three.infer(left, right).disparity)


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="--iters 0"):
        TorchRunner(tiny_model(), iters=0)
    with pytest.raises(InputError, match="--max-disp needs a checkpoint"):
        TorchRunner(tiny_model(), max_disp=64)


def test_checkpoint_path_with_max_disp_override(tmp_path):
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    path = save_student(tmp_path / "student.pth", build_student(config), config, {"note": "test"})
    left, right = scene_pair((64, 96))
    with open_runner(path, max_disp=64) as runner:
        prediction = runner.infer(left, right)
        assert runner.config.max_disp == 64 and len(runner.info["sha256"]) == 64
    assert prediction.disparity.shape == (64, 96) and np.isfinite(prediction.disparity).all()


@pytest.mark.parametrize("name, backend", [("m.pth", "torch"), ("m.pt", "torch"), ("m.onnx", "onnxruntime"),
                                           ("m.engine", "tensorrt"), ("m.plan", "tensorrt")])
def test_backend_chosen_by_suffix(name, backend):
    assert backend_for(name) == backend


def test_factory_errors(tmp_path):
    with pytest.raises(InputError, match="no such model file"):
        open_runner(tmp_path / "missing.onnx")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(InputError, match="cannot tell the backend"):
        open_runner(odd)
    with pytest.raises(InputError, match="--backend"):
        open_runner(odd, backend="tflite")
