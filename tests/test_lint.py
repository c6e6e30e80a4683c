"""TensorRT lint: planted faults in tiny hand-built graphs, a clean export, the CLI's exit codes."""

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from tiny_models import exported_tiny_onnx
from toolkit.cli import main
from toolkit.errors import InputError, ModelError
from toolkit.lint import errors, lint_onnx


def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "lint-test", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def grid_sample_model(rank: int):
    spatial = [4] * (rank - 2)
    return model_of(
        [helper.make_node("GridSample", ["x", "grid"], ["y"], name="lookup/GridSample")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2] + spatial),
         helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1] + spatial + [rank - 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        opset=20,
    )


def qdq_model(zero_point: np.ndarray, dq_input_type=np.int8):
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "scale")
    zp = numpy_helper.from_array(zero_point, "zp")
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["xq"], name="act/QuantizeLinear"),
             helper.make_node("DequantizeLinear", ["xq", "scale", "zp"], ["y"], name="act/DequantizeLinear")]
    return model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])], [scale, zp])


def test_five_d_grid_sample_is_an_error_naming_the_node():
    findings = errors(lint_onnx(grid_sample_model(5), trt="11"))
    assert [(f.node, f.op) for f in findings] == [("lookup/GridSample", "GridSample")]
    assert "5-D GridSample" in findings[0].message


def test_four_d_grid_sample_passes_but_opset_20_is_too_new_for_8_5():
    assert errors(lint_onnx(grid_sample_model(4), trt="11")) == []
    messages = [f.message for f in errors(lint_onnx(grid_sample_model(4), trt="8.5"))]
    assert len(messages) == 1 and "opset 20" in messages[0] and "7..17" in messages[0]


def test_non_zero_zero_point_is_an_error():
    findings = errors(lint_onnx(qdq_model(np.array(3, np.int8)), trt="8.5"))
    assert {f.node for f in findings} == {"act/QuantizeLinear", "act/DequantizeLinear"}
    assert all("needs it to be 0" in f.message for f in findings)


def test_uint8_zero_point_is_an_error():
    findings = errors(lint_onnx(qdq_model(np.array(0, np.uint8)), trt="10"))
    assert findings and all("uint8" in f.message.lower() for f in findings)


def test_symmetric_int8_qdq_is_clean():
    assert errors(lint_onnx(qdq_model(np.array(0, np.int8)), trt="8.5")) == []


def test_int32_quantized_bias_is_an_error():
    bias = numpy_helper.from_array(np.array([5, -3], np.int32), "bias_q")
    scale = numpy_helper.from_array(np.array([0.01, 0.02], np.float32), "bias_scale")
    node = helper.make_node("DequantizeLinear", ["bias_q", "bias_scale"], ["bias"], name="conv/bias/DequantizeLinear", axis=0)
    model = model_of([node], [], [helper.make_tensor_value_info("bias", TensorProto.FLOAT, [2])], [bias, scale])
    findings = errors(lint_onnx(model, trt="11"))
    assert [f.node for f in findings] == ["conv/bias/DequantizeLinear"] and "int32" in findings[0].message


def test_layer_norm_needs_tensorrt_newer_than_8_5():
    scale = numpy_helper.from_array(np.ones(8, np.float32), "gamma")
    node = helper.make_node("LayerNormalization", ["x", "gamma"], ["y"], name="ln", axis=-1)
    model = model_of([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])], [scale])
    assert [f.node for f in errors(lint_onnx(model, trt="8.5"))] == ["ln"]
    assert errors(lint_onnx(model, trt="10")) == []


def test_size_not_a_multiple_of_32_is_an_error():
    model = model_of([helper.make_node("Relu", ["left"], ["y"], name="r")],
                     [helper.make_tensor_value_info("left", TensorProto.FLOAT, [1, 3, 50, 64])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 50, 64])])
    assert any("50x64" in f.message for f in errors(lint_onnx(model)))


def test_clean_export_has_no_errors_for_any_target():
    for trt in ("8.5", "10", "11"):
        assert errors(lint_onnx(exported_tiny_onnx(), trt=trt)) == [], trt


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="--trt"):
        lint_onnx(exported_tiny_onnx(), trt="7")
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    with pytest.raises(ModelError, match="not an ONNX model"):
        lint_onnx(junk)


def test_cli_exit_codes(tmp_path):
    bad = tmp_path / "bad.onnx"
    onnx.save(grid_sample_model(5), bad)
    result = CliRunner().invoke(main, ["lint", str(bad), "--trt", "11"])
    assert result.exit_code == 1 and "lookup/GridSample" in result.output
    result = CliRunner().invoke(main, ["lint", str(exported_tiny_onnx()), "--trt", "8.5"])
    assert result.exit_code == 0 and "0 error(s)" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    result = CliRunner().invoke(main, ["lint", str(junk)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["export", "lint", "quantize"])
def test_commands_have_help_with_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Example: stereo-trt " + name in result.output
