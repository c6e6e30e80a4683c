"""export: round trip, metadata, sidecar, FP16 typing, parity failure, option checks, CLI errors."""

import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from tiny_models import TinyStereo, exported_tiny_onnx, scene_pair, tiny_model
from toolkit.cli import main
from toolkit.errors import CheckFailed, InputError
from toolkit.export import DynamicShapes, default_output_path, export_onnx, parse_dynamic
from toolkit.onnx_meta import get_stereo_metadata
from toolkit.provenance import sidecar_path


def test_round_trip_writes_metadata_sidecar_and_passes_parity(tmp_path):
    result = export_onnx(tiny_model(), tmp_path / "tiny.onnx", size=(64, 96), iters=2)
    model = onnx.load(str(result.path))
    meta = get_stereo_metadata(model)
    assert meta["input_hw"] == [64, 96] and meta["iters"] == 2 and meta["precision"] == "fp32"
    assert meta["opset"] == 17 and model.opset_import[0].version == 17
    assert len(meta["checkpoint_sha256"]) == 64 and meta["max_disp"] == 32
    assert [i.name for i in model.graph.input] == ["left", "right"]
    assert [o.name for o in model.graph.output] == ["disparity"]
    assert result.parity.passed and result.parity.epe <= 0.01
    assert result.parity.pair == "builtin-motorcycle"
    sidecar = json.loads(sidecar_path(result.path).read_text())
    assert sidecar["sha256"] and sidecar["parity"]["passed"] and sidecar["lint"]["trt"] == "8.5"
    assert [f for f in result.findings if f.severity == "error"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.onnx.json"]


def test_fp16_export_keeps_fragile_ops_in_fp32_and_io_in_fp32(tmp_path):
    result = export_onnx(tiny_model(), tmp_path / "tiny16.onnx", size=(64, 96), iters=2, fp16=True)
    model = onnx.shape_inference.infer_shapes(onnx.load(str(result.path)))
    types = {v.name: v.type.tensor_type.elem_type for v in list(model.graph.value_info) + list(model.graph.input)
             + list(model.graph.output)}
    conv_inputs = [types[n.input[0]] for n in model.graph.node if n.op_type == "Conv"]
    assert onnx.TensorProto.FLOAT16 in conv_inputs
    for node in model.graph.node:
        if node.op_type in ("Softmax", "ReduceMean", "ReduceSum"):
            assert types[node.input[0]] == onnx.TensorProto.FLOAT, node.name
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in model.graph.input)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert get_stereo_metadata(model)["precision"] == "fp16"
    assert result.parity.passed and result.lint_trt == "11"


class TracedDifferently(TinyStereo):
    """A model whose traced graph differs from its eager output: the parity check must catch it."""

    def forward(self, left, right, iters=None):
        out = super().forward(left, right, iters)
        return out + 5.0 if torch.jit.is_tracing() else out


def test_parity_failure_writes_nothing(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(CheckFailed, match="parity check failed on builtin-motorcycle: .* EPE 3[0-9.]+ px"):
        export_onnx(TracedDifferently().eval(), tmp_path / "bad.onnx", size=(64, 96), iters=1)
    assert list(tmp_path.iterdir()) == []


def test_dynamic_export_runs_at_other_sizes(tmp_path):
    import onnxruntime as ort

    dynamic = parse_dynamic("64x96:64x96:128x160")
    result = export_onnx(tiny_model(), tmp_path / "dyn.onnx", iters=1, dynamic=dynamic)
    meta = result.metadata
    assert meta["input_hw"] is None and meta["dynamic"] == {"min": [64, 96], "opt": [64, 96], "max": [128, 160]}
    session = ort.InferenceSession(str(result.path))
    left, right = scene_pair((96, 128))
    feed = {"left": left.transpose(2, 0, 1)[None].astype(np.float32), "right": right.transpose(2, 0, 1)[None].astype(np.float32)}
    with torch.no_grad():
        expected = tiny_model()(torch.from_numpy(feed["left"]), torch.from_numpy(feed["right"]), iters=1).numpy()
    np.testing.assert_allclose(session.run(None, feed)[0], expected, atol=1e-3)
    from toolkit.backends.onnxrt import OnnxRuntimeRunner

    with OnnxRuntimeRunner(result.path, size=(96, 128)) as runner:
        assert runner.input_hw == (96, 128) and runner.infer(left, right).disparity.shape == (96, 128)
    with pytest.raises(InputError, match="outside dyn.onnx's exported range 64x96..128x160"):
        OnnxRuntimeRunner(result.path, size=(160, 192))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": (65, 96)}, "multiples of 32"),
        ({"opset": 21}, "--opset 21"),
        ({"opset": 17, "exporter": "dynamo"}, "dynamo exporter supports opsets 18"),
        ({"dynamic": DynamicShapes((64, 96), (32, 96), (128, 160))}, "min <= opt <= max"),
        ({"iters": 0}, "--iters 0"),
        ({"lint_trt": "7.1"}, "--trt"),
    ],
)
def test_bad_options_fail_before_export(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        export_onnx(tiny_model(), tmp_path / "x.onnx", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_default_output_path_names_size_iterations_and_precision():
    assert str(default_output_path("student", (480, 640), None, 8, "fp16")) == "engines/student_480x640_it8_fp16.onnx"


def test_cli_errors_are_one_line_exit_2(tmp_path):
    out = tmp_path / "out.onnx"
    result = CliRunner().invoke(main, ["export", str(tmp_path / "missing.pth"), "--out", str(out)])
    assert result.exit_code == 2 and "missing.pth" in result.output and len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(main, ["export", str(exported_tiny_onnx()), "--size", "100x100", "--out", str(out)])
    assert result.exit_code == 2 and "multiples of 32" in result.output
    assert not out.exists()


def test_fp16_keeps_activation_matmul_and_its_scaling_in_fp32():
    from onnx import TensorProto, helper, numpy_helper

    from toolkit.export_fp16 import convert_to_fp16

    nodes = [
        helper.make_node("MatMul", ["a", "b"], ["scores"], name="corr/MatMul"),
        helper.make_node("Reshape", ["scores", "shape"], ["volume"], name="corr/Reshape"),
        helper.make_node("Div", ["volume", "groups"], ["scaled"], name="corr/Div"),
        helper.make_node("Conv", ["scaled", "w"], ["features"], name="agg/Conv"),
        helper.make_node("Relu", ["features"], ["out"], name="agg/Relu"),
    ]
    inits = [numpy_helper.from_array(np.array([1, 2, 4, 4], np.int64), "shape"),
             numpy_helper.from_array(np.array(12.0, np.float32), "groups"),
             numpy_helper.from_array(np.ones((3, 2, 3, 3), np.float32), "w")]
    graph = helper.make_graph(nodes, "corr", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 4, 12]),
                                              helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 12, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    model = convert_to_fp16(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    onnx.checker.check_model(model, full_check=True)
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    assert types["scores"] == types["scaled"] == TensorProto.FLOAT
    assert types["features"] == TensorProto.FLOAT16
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
