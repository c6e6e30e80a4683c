"""ONNX Runtime runner: metadata-driven, thread count settable, checked against the PyTorch runner."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tiny_models import TINY_ITERS, TINY_SIZE, exported_tiny_onnx, scene_pair, tiny_model
from toolkit.backends import open_runner
from toolkit.backends.onnxrt import OnnxRuntimeRunner
from toolkit.backends.torch_runner import TorchRunner
from toolkit.errors import InputError, ModelError


def test_reads_size_and_precision_from_metadata():
    runner = OnnxRuntimeRunner(exported_tiny_onnx())
    assert runner.input_hw == TINY_SIZE
    assert runner.precision == "fp32"
    assert runner.metadata["iters"] == TINY_ITERS


def test_matches_the_pytorch_runner_on_a_resized_pair():
    left, right = scene_pair((50, 80))
    with OnnxRuntimeRunner(exported_tiny_onnx(), threads=1) as ort_runner:
        assert ort_runner.session.get_session_options().intra_op_num_threads == 1
        ort_prediction = ort_runner.infer(left, right)
    with TorchRunner(tiny_model(), iters=TINY_ITERS, size=TINY_SIZE) as torch_runner:
        torch_prediction = torch_runner.infer(left, right)
    assert ort_prediction.disparity.shape == (50, 80)
    np.testing.assert_allclose(ort_prediction.disparity, torch_prediction.disparity, atol=1e-3)


def test_factory_opens_onnx_and_refuses_baked_options():
    with open_runner(exported_tiny_onnx(), threads=1, device="cpu", size=TINY_SIZE, iters=None) as runner:
        assert isinstance(runner, OnnxRuntimeRunner)
    with pytest.raises(InputError, match="--iters applies to checkpoints only"):
        open_runner(exported_tiny_onnx(), iters=4)
    with pytest.raises(InputError, match="--size 96x128: .* exported for 64x96"):
        open_runner(exported_tiny_onnx(), size=(96, 128))


def test_non_onnx_file_is_refused(tmp_path):
    path = tmp_path / "fake.onnx"
    path.write_bytes(b"this is not protobuf \x00\xff")
    with pytest.raises(ModelError, match="not an ONNX model"):
        OnnxRuntimeRunner(path)


def test_onnx_without_stereo_metadata_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ModelError, match="no 'stereo_trt' metadata"):
        OnnxRuntimeRunner(path)
