"""Which runner ``run`` builds: the built-in student on the best backend when no --model is given
(said in one line), refusals through the CLI, and the README's GPU lines on a CUDA machine."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from stream_media import side_by_side_video
from toolkit.backends import choice as choice_module
from toolkit.cli import main
from toolkit.stream import app


@pytest.mark.slow
def test_no_model_streams_the_builtin_student_on_the_best_backend(tmp_path, monkeypatch):
    monkeypatch.setattr(choice_module, "choose_backend", lambda device=None: choice_module.BackendChoice(
        "onnxruntime", "cpu", None, False, "no TensorRT and no usable CUDA GPU (test)"))
    video = side_by_side_video(tmp_path / "sbs.mp4", 2)
    messages = []
    config = app.RunConfig(sources=[str(video)], rectified=True, headless=True, size_text="64x96",
                           engines_dir=str(tmp_path / "engines"), max_frames=2, status_every=60)
    summary = app.run(config, echo=messages.append)
    assert summary.frames_processed == 2 and summary.backend == "onnxruntime fp32"
    expected = "no --model: the built-in student on onnxruntime (cpu): no TensorRT and no usable CUDA GPU (test)"
    assert expected in messages
    assert list((tmp_path / "engines").glob("rt_igev_student_64x96_it*_fp32.onnx"))


def test_run_refuses_fp16_on_the_cpu_in_one_line(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    result = CliRunner().invoke(main, ["run", "--source", str(video), "--rectified", "--headless",
                                       "--backend", "sgbm", "--precision", "fp16"])
    assert result.exit_code == 2 and "--precision applies to networks only" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.cuda
def test_readme_gpu_lines(tmp_path, monkeypatch):
    """The README's "GPU without TensorRT" lines, at a tiny size and on generated media."""
    from toolkit.paths import BUILTIN_CHECKPOINT

    monkeypatch.chdir(tmp_path)
    video = side_by_side_video(tmp_path / "video.mp4", 3)
    checkpoint = str(BUILTIN_CHECKPOINT)
    lines = [
        ["predict", "--device", "cuda", "--precision", "fp16", "--size", "96x128", "--out", "outputs/predict"],
        ["run", "--source", str(video), "--rectified", "--headless", "--model", checkpoint, "--device", "cuda",
         "--precision", "fp16", "--cuda-graph", "--size", "64x96", "--save", "out.mp4"],
        ["run", "--source", str(video), "--rectified", "--headless", "--device", "cuda", "--size", "64x96"],
        ["bench", "--model", checkpoint, "--model", checkpoint + "+fp16+graph", "--model", "sgbm",
         "--device", "cuda", "--size", "64x96", "--data", "builtin", "--repeats", "1", "--no-memory",
         "--out", "bench"],
        ["demo", "--device", "cuda", "--frames", "2"],
    ]
    for line in lines:
        result = CliRunner().invoke(main, line)
        assert result.exit_code == 0, f"{line}: {result.output}"
