"""PyTorch runner and the runner factory, on the tiny stereo network and a tiny student checkpoint."""

from pathlib import Path

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


def test_fp16_model_keeps_in_fp32_what_export_fp16_keeps():
    from toolkit.backends.torch_runner import FP32_MODULE_OPS, half_model
    from toolkit.export_fp16 import KEEP_FP32_OPS
    from toolkit.model import StudentConfig, build_student

    assert set(FP32_MODULE_OPS.values()) <= KEEP_FP32_OPS  # the PyTorch mirror names only ops export keeps
    model, kept = half_model(build_student(StudentConfig(max_disp=32, iters=1)).eval())
    modules = dict(model.named_modules())
    assert kept and all(type(modules[name]).__name__.startswith("InstanceNorm") for name in kept)
    instance_norms = [n for n, m in modules.items() if type(m).__name__.startswith("InstanceNorm")]
    assert sorted(kept) == sorted(instance_norms)
    convs = [m for m in modules.values() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert convs and all(m.weight.dtype == torch.float16 for m in convs)
    # a kept module computes its statistics in FP32 whatever comes in
    norm = modules[kept[0]]
    channels = norm.num_features
    shape = (1, channels, 4, 4) if norm.__class__.__name__.endswith("2d") else (1, channels, 2, 4, 4)
    assert norm(torch.ones(shape, dtype=torch.float16)).dtype == torch.float32


def test_fp16_and_cuda_graph_are_refused_on_the_cpu():
    with pytest.raises(InputError, match="--precision fp16 needs a CUDA device"):
        TorchRunner(tiny_model(), precision="fp16")
    with pytest.raises(InputError, match="--cuda-graph needs a CUDA device"):
        TorchRunner(tiny_model(), cuda_graph=True, size=(64, 96))
    assert TorchRunner(tiny_model()).providers == ("eager",)


@pytest.mark.cuda
def test_fp16_cuda_graph_matches_eager_fp32_on_the_builtin_pair():
    from toolkit.data.builtin import builtin_pair
    from toolkit.paths import BUILTIN_CHECKPOINT

    left, right, _, _ = builtin_pair()
    size = (256, 384)
    with open_runner(BUILTIN_CHECKPOINT, device="cuda", size=size, iters=4) as eager:
        reference = eager.infer(left, right).disparity
    with open_runner(BUILTIN_CHECKPOINT, device="cuda", size=size, iters=4, precision="fp16") as half:
        eager_half = half.infer(left, right).disparity
    with open_runner(BUILTIN_CHECKPOINT, device="cuda", size=size, iters=4, precision="fp16", cuda_graph=True) as graph:
        assert graph.providers == ("CUDA graph",) and graph.precision == "fp16"
        graphed = graph.infer(left, right)
        shifted = graph.infer(np.ascontiguousarray(left[:, 16:]), np.ascontiguousarray(right[:, 16:]))
    assert float(np.mean(np.abs(graphed.disparity - reference))) < 0.1
    assert float(np.mean(np.abs(graphed.disparity - eager_half))) < 0.01  # the graph replays the same kernels
    assert shifted.disparity.shape == (left.shape[0], left.shape[1] - 16)  # new inputs reach the static buffers
    assert graphed.confidence is not None and graphed.infer_ms > 0


@pytest.mark.cuda
def test_cuda_index_is_kept():
    with open_runner(tiny_checkpoint_path(), device="cuda:0", size=(64, 96)) as runner:
        runner.infer(*scene_pair((64, 96)))
        assert next(runner.model.parameters()).device.index == 0


def tiny_checkpoint_path():
    import tempfile

    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    path = Path(tempfile.mkdtemp()) / "student.pth"
    return save_student(path, build_student(config, seed=0), config, {"note": "cuda index test"})
