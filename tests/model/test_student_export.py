"""The real student (not a stand-in) through ONNX export, at sizes that have broken it before."""

import pytest

from toolkit.export import export_onnx
from toolkit.model import StudentConfig, build_student, save_student


@pytest.mark.parametrize("size", [(64, 160), (96, 128)])
def test_student_exports_and_matches_pytorch_when_quarter_width_is_not_a_multiple_of_32(tmp_path, size):
    # 160/4 = 40 columns: the blocked correlation needs a ceil division that ONNX's truncating
    # integer division must not turn into a floor of a negative number.
    config = StudentConfig(max_disp=64, iters=1)
    checkpoint = tmp_path / "student.pth"
    save_student(checkpoint, build_student(config, seed=0), config, {"note": "export test"})
    result = export_onnx(checkpoint, out=tmp_path / "student.onnx", size=size)
    assert result.parity.passed and result.parity.max_abs_diff < 1e-2
