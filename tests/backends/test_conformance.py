"""One conformance suite, run against every runner present here: PyTorch, ONNX Runtime, SGBM,
each plain and left-right checked, TensorRT where it is importable (with a CUDA GPU)."""

import importlib.util

import numpy as np
import pytest

from tiny_models import TINY_SIZE, exported_tiny_onnx, scene_pair
from toolkit.backends import RunnerSpec, open_runner
from toolkit.errors import StereoTrtError


def tiny_checkpoint(tmp_path_factory) -> str:
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    path = tmp_path_factory.mktemp("conformance") / "student.pth"
    return str(save_student(path, build_student(config, seed=0), config, {"note": "conformance"}))


def tiny_engine(tmp_path_factory) -> str:
    from toolkit.trt.build import build_engine

    out = tmp_path_factory.mktemp("conformance") / "tiny_fp32.engine"
    return str(build_engine(exported_tiny_onnx(), precision="fp32", out=out).path)


TENSORRT = pytest.param("tensorrt", marks=[
    pytest.mark.cuda,
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="TensorRT is not importable here"),
])


@pytest.fixture(params=["torch", "onnxruntime", "sgbm", TENSORRT])
def spec(request, tmp_path_factory):
    models = {"torch": lambda: tiny_checkpoint(tmp_path_factory), "onnxruntime": lambda: str(exported_tiny_onnx()),
              "sgbm": lambda: "sgbm", "tensorrt": lambda: tiny_engine(tmp_path_factory)}
    model = models[request.param]()
    return RunnerSpec(model=model, size=TINY_SIZE, max_disp=32 if request.param in ("torch", "sgbm") else None)


@pytest.mark.parametrize("lr_check", [False, True])
def test_runner_contract(spec, lr_check):
    runner = open_runner(spec.with_(lr_check=lr_check))
    left, right = scene_pair((50, 80))
    with pytest.raises(StereoTrtError, match="before activate"):
        runner.infer(left, right)
    assert runner.input_hw == TINY_SIZE  # fitted at construction
    assert isinstance(runner.device, str) and runner.providers is not None
    for _ in range(2):  # a runner can be activated again after deactivation
        with runner:
            prediction = runner.infer(left, right)
            again = runner.infer(left, right)
        assert not runner.is_active
        assert prediction.disparity.shape == (50, 80) and prediction.disparity.dtype == np.float32
        assert np.isfinite(prediction.disparity).all() and (prediction.disparity >= 0).all()
        np.testing.assert_allclose(again.disparity, prediction.disparity, atol=1e-4)
        assert 0 < prediction.infer_ms <= prediction.total_ms
        if prediction.confidence is not None:
            assert prediction.confidence.shape == (50, 80)
            assert prediction.confidence.min() >= 0 and prediction.confidence.max() <= 1
    assert (prediction.confidence is not None) or not lr_check
    if runner.name.startswith("onnxruntime"):
        assert runner.providers == ("CPUExecutionProvider",)  # what the session really used
