"""The TensorRT commands through click: help texts, and the real missing-TensorRT path on this
machine (exit 2, one line naming the module and pointing to `stereo-trt doctor`)."""

import importlib.util

import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import io
from trt_fixtures import contract_onnx

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
needs_no_tensorrt = pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here: the missing-module path cannot happen")


@pytest.mark.parametrize("name", ["build", "doctor"])
def test_help_has_an_example(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert f"Example: stereo-trt {name}" in result.output


def assert_one_line_missing_tensorrt(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "`tensorrt`" in lines[0] and "stereo-trt doctor" in lines[0]
    assert "Traceback" not in result.output


@needs_no_tensorrt
def test_build_without_tensorrt_exits_2(tmp_path):
    onnx_path = contract_onnx(tmp_path / "m.onnx")
    result = CliRunner().invoke(main, ["build", str(onnx_path), "--precision", "fp16", "--out", str(tmp_path / "m.engine")])
    assert_one_line_missing_tensorrt(result)
    assert not (tmp_path / "m.engine").exists()


def test_build_checks_options_before_looking_for_tensorrt(tmp_path):
    onnx_path = contract_onnx(tmp_path / "m.onnx")
    result = CliRunner().invoke(main, ["build", str(onnx_path), "--profile", "64x96"])
    assert result.exit_code == 2
    assert "--profile applies to a dynamic-shape ONNX" in result.output


def engine_and_pair(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"never deserialized: TensorRT is checked first")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    io.write_image(tmp_path / "left.png", image)
    io.write_image(tmp_path / "right.png", image)
    return engine


@needs_no_tensorrt
def test_predict_with_an_engine_without_tensorrt_exits_2(tmp_path):
    engine = engine_and_pair(tmp_path)
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "left.png"), str(tmp_path / "right.png"),
                                       "--model", str(engine), "--out", str(tmp_path / "out")])
    assert_one_line_missing_tensorrt(result)


@needs_no_tensorrt
def test_run_backend_trt_without_tensorrt_exits_2(tmp_path):
    engine = engine_and_pair(tmp_path)
    result = CliRunner().invoke(main, ["run", "--backend", "trt", "--model", str(engine), "--headless", "--rectified",
                                       "--source", str(tmp_path / "left.png"), "--source", str(tmp_path / "right.png"),
                                       "--max-frames", "1"])
    assert_one_line_missing_tensorrt(result)
