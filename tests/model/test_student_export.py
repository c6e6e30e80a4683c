"""The real student (not a stand-in) through ONNX export, at sizes that have broken it before."""

import onnx
import pytest

from toolkit.export import export_onnx
from toolkit.model import StudentConfig, build_student, save_student


def small_student(tmp_path):
    """A seeded student checkpoint with a short cost volume and one iteration."""
    config = StudentConfig(max_disp=64, iters=1)
    checkpoint = tmp_path / "student.pth"
    save_student(checkpoint, build_student(config, seed=0), config, {"note": "export test"})
    return checkpoint

@pytest.mark.parametrize("size", [(64, 160), (96, 128)])
def test_student_exports_and_matches_pytorch_when_quarter_width_is_not_a_multiple_of_32(tmp_path, size):
    # 160/4 = 40 columns: the blocked correlation needs a ceil division that ONNX's truncating
    # integer division must not turn into a floor of a negative number.
    checkpoint = small_student(tmp_path)
    result = export_onnx(checkpoint, out=tmp_path / "student.onnx", size=size)
    assert result.parity.passed and result.parity.max_abs_diff < 1e-2


def test_exported_upsampling_softmax_stays_on_the_last_axis_in_onnx_runtime(tmp_path):
    # ONNX Runtime's CPU Softmax on a non-last axis is several times slower (80 vs 11 ms for
    # the upsampling weights at 480x640), and its optimiser turns Transpose-Softmax-Transpose
    # back into that: check the graph ONNX Runtime actually runs.
    from toolkit.backends.onnxrt import import_onnxruntime, session_options

    checkpoint = small_student(tmp_path)
    result = export_onnx(checkpoint, out=tmp_path / "student.onnx", size=(64, 96))
    assert result.parity.passed
    options = session_options(1)
    options.optimized_model_filepath = str(tmp_path / "as_run.onnx")
    import_onnxruntime().InferenceSession(str(result.path), sess_options=options, providers=["CPUExecutionProvider"])
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(tmp_path / "as_run.onnx"))).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    taps = [n for n in graph.node if n.op_type == "Softmax" and shapes[n.input[0]][-1] == 9]
    assert len(taps) == 1
    assert next(a.i for a in taps[0].attribute if a.name == "axis") in (-1, len(shapes[taps[0].input[0]]) - 1)
