"""The shared up-front checks: output paths and --device text."""

import os

import pytest

from toolkit.device import cuda_index, onnxruntime_providers, parse_device, require_torch_device
from toolkit.errors import DependencyError, InputError
from toolkit.outputs import check_output_dir, check_output_file


def test_output_file_under_an_existing_file_names_the_option_and_creates_nothing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"--save .*a_file is a file, not a folder"):
        check_output_file(blocker / "sub" / "out.mp4", option="--save")
    assert sorted(os.listdir(tmp_path)) == ["a_file"]


def test_output_in_a_place_nobody_can_write_is_refused():
    with pytest.raises(InputError, match="--out /proc/stereo-trt-x/y.json: cannot write in /proc"):
        check_output_file("/proc/stereo-trt-x/y.json")


def test_output_file_suffix_and_folder_checks(tmp_path):
    with pytest.raises(InputError, match=r"--out .*model.txt: expected a file ending in .onnx"):
        check_output_file(tmp_path / "model.txt", suffixes=(".onnx",))
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(tmp_path)
    assert check_output_file(tmp_path / "new" / "deeper" / "m.onnx", suffixes=(".onnx",)).name == "m.onnx"
    assert not (tmp_path / "new").exists()


def test_output_that_is_an_input_is_refused(tmp_path):
    source = tmp_path / "in.onnx"
    source.write_text("x")
    with pytest.raises(InputError, match="is one of this command's inputs"):
        check_output_file(tmp_path / "." / "in.onnx", inputs=[source])


def test_output_dir_checks(tmp_path):
    existing = tmp_path / "f"
    existing.write_text("x")
    with pytest.raises(InputError, match="is a file; expected a folder"):
        check_output_dir(existing)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_dir(existing / "sub")
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert sorted(os.listdir(tmp_path)) == ["f"]


@pytest.mark.parametrize("text, expected", [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:1", "cuda:1"), (None, "cpu")])
def test_parse_device_normalises(text, expected):
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["banana", "cpu:0", "cuda:", "cuda:x", "gpu"])
def test_parse_device_refuses_unknown_text(text):
    with pytest.raises(InputError, match=r"--device .*expected cpu, cuda or cuda:N"):
        parse_device(text)


def test_cuda_index_and_cpu_providers():
    assert cuda_index("cpu") is None and cuda_index("cuda") == 0 and cuda_index("cuda:3") == 3
    assert onnxruntime_providers("cpu") == ["CPUExecutionProvider"]


def test_cuda_on_a_machine_without_one_points_to_doctor():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a usable CUDA GPU")
    with pytest.raises(DependencyError, match="stereo-trt doctor"):
        require_torch_device("cuda")
    require_torch_device("cpu")
