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
