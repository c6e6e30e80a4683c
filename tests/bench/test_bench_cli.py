"""`stereo-trt bench` through click: a real run on the built-in pair, and one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from toolkit.cli import main


def invoke(*args):
    return CliRunner().invoke(main, ["bench", *args])


def test_help_has_an_example():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and "--model" in result.output


def test_builtin_pair_with_sgbm(tmp_path):
    out = tmp_path / "report"
    result = invoke("--model", "sgbm", "--size", "64x96", "--max-disp", "32", "--warmup", "0", "--repeats", "1",
                    "--no-memory", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "pass 1/1 pair 1/1 motorcycle" in result.output
    markdown = (out / "report.md").read_text()
    assert "| `sgbm` | OpenCV | cpu (OpenCV StereoSGBM) | classical |" in markdown
    assert "stereo-trt bench --model sgbm --data builtin --size 64x96" in markdown


def test_missing_model_is_one_line_exit_2(tmp_path):
    result = invoke("--model", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: --model")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_size_is_one_line_exit_2(tmp_path):
    result = invoke("--model", "sgbm", "--size", "65x96", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "multiples of 32" in result.output
    assert not (tmp_path / "out").exists()
