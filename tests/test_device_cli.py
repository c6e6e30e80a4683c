"""--device through every command that runs a model: a bad name or a CUDA device this machine
cannot use ends in one line, exit code 2, no traceback, before any slow work.

``cuda:7`` is out of reach on a CPU-only machine and on a one-GPU machine alike.
"""

import pytest
from click.testing import CliRunner

from toolkit.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    path = tmp_path_factory.mktemp("device") / "student.pth"
    return str(save_student(path, build_student(config, seed=0), config, {"note": "device test"}))


def command_lines(checkpoint, tmp_path, device):
    out = str(tmp_path / "out")
    return {
        "predict": ["predict", "--model", checkpoint, "--device", device, "--out", out],
        "run": ["run", "--source", str(tmp_path), "--rectified", "--headless", "--model", checkpoint,
                "--device", device],
        "bench": ["bench", "--model", checkpoint, "--device", device, "--no-memory", "--out", out],
        "pseudo-label": ["pseudo-label", str(tmp_path), "--teacher", checkpoint, "--device", device, "--out", out],
        "demo": ["demo", "--device", device, "--out", out],
    }


COMMANDS = ["predict", "run", "bench", "pseudo-label", "demo"]


def one_line_exit_2(result):
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_device_is_one_line(command, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever happens, nothing lands in the repository's engines/ or outputs/
    result = CliRunner().invoke(main, command_lines(checkpoint, tmp_path, "banana")[command])
    assert "--device 'banana': expected cpu, cuda or cuda:N" in one_line_exit_2(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_unusable_cuda_device_names_what_is_missing_and_points_to_doctor(command, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, command_lines(checkpoint, tmp_path, "cuda:7")[command])
    output = one_line_exit_2(result)
    assert "--device cuda:7" in output and "stereo-trt doctor" in output
    assert not (tmp_path / "out").exists()


def test_fp16_on_the_cpu_is_refused_in_one_line(checkpoint, tmp_path):
    result = CliRunner().invoke(main, ["predict", "--model", checkpoint, "--precision", "fp16",
                                       "--out", str(tmp_path / "out")])
    assert "--precision fp16 needs a CUDA device" in one_line_exit_2(result)
