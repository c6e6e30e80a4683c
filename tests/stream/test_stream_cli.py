"""`stereo-trt run` and `stereo-trt calibrate-camera` through click, and Ctrl-C in a real process."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from click.testing import CliRunner
from interrupted_run import interrupt_run

from stream_media import count_frames, side_by_side_video, write_video
from stream_rig import make_rig, render_board_pairs
from toolkit.cli import main
from toolkit.stream import sources
from toolkit.stream.rectify import load_calibration, save_calibration



def invoke(*args):
    return CliRunner().invoke(main, list(args))


def one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("name", ["run", "calibrate-camera"])
def test_help_has_an_example(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0 and "Example: stereo-trt " + name in result.output


def test_run_sgbm_on_a_video_records_every_frame(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 3, repeat=2)
    out = tmp_path / "view.mp4"
    result = invoke("run", "--source", str(video), "--rectified", "--backend", "sgbm", "--max-disp", "32",
                    "--headless", "--save", str(out), "--status-every", "0")
    assert result.exit_code == 0, result.output
    assert "end of source: 6 frames processed of 6 captured, 0 dropped" in result.output
    assert "sgbm fp32:" in result.output and "p99" in result.output
    assert count_frames(out) == 6


def test_run_lr_check_masks_by_confidence(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 2)
    result = invoke("run", "--source", str(video), "--rectified", "--backend", "sgbm", "--max-disp", "32",
                    "--lr-check", "--min-confidence", "0.5", "--headless", "--status-every", "0")
    assert result.exit_code == 0, result.output
    assert "sgbm+lr fp32:" in result.output and "ignored" not in result.output


def test_run_with_a_calibration_shows_depth(tmp_path):
    # Raw (unrectified) frames of the calibrated size, rectified with the calibration file.
    rig = make_rig()
    calibration = save_calibration(tmp_path / "rig.yaml", rig.calibration())
    frames = [np.hstack(pair) for pair in render_board_pairs(rig, 9, 6, 0.03, count=2)]
    video = write_video(tmp_path / "raw.mp4", frames)
    result = invoke("run", "--source", str(video), "--calibration", str(calibration), "--depth", "--backend", "sgbm",
                    "--max-disp", "48", "--headless", "--range", "0.3,3")
    assert result.exit_code == 0, result.output
    assert "2 frames processed" in result.output


@pytest.mark.parametrize("args, message", [
    (["--source", "63", "--rectified", "--backend", "sgbm"], "--source 63: camera 63 did not open"),
    (["--source", "X.mp4", "--rectified", "--backend", "sgbm"], "--source X.mp4: no such file or folder"),
    (["--source", "63", "--backend", "sgbm"], "give --calibration FILE to rectify raw camera frames, or --rectified"),
    (["--source", "63", "--rectified", "--backend", "trt"], "give --model"),
    (["--source", "63", "--rectified", "--backend", "sgbm", "--depth"], "--depth needs --calibration"),
    (["--source", "63", "--rectified", "--backend", "sgbm", "--range", "5,1"], "--range '5,1': LOW must be below HIGH"),
    (["--source", "63", "--rectified", "--backend", "sgbm", "--save", "x.gif"], "--save x.gif: expected a file ending in .avi, .m4v"),
    (["--source", "63", "--calibration", "none.yaml", "--backend", "sgbm"], "--calibration none.yaml: no such file"),
    (["--source", "63", "--rectified", "--backend", "sgbm", "--fourcc", "MJPEG"], "--fourcc 'MJPEG': expected four"),
    (["--source", "63", "--rectified", "--backend", "sgbm", "--camera-size", "720p"], "--camera-size '720p'"),
])
def test_run_errors_are_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke("run", *args, "--headless"))
    assert message in line


@pytest.mark.skipif(sources.gstreamer_available(), reason="this OpenCV has GStreamer; the refusal cannot happen")
def test_run_refuses_a_pipeline_without_gstreamer():
    line = one_line_error(invoke("run", "--source", "csi:0", "--source", "csi:1", "--rectified", "--backend", "sgbm",
                                 "--headless"))
    assert "built without GStreamer" in line


def test_run_trt_without_tensorrt_points_to_doctor(tmp_path):
    pytest.importorskip("toolkit.backends.tensorrt", reason="the TensorRT runner module is not in this tree")
    if sys.modules.get("tensorrt") is not None or _importable("tensorrt"):
        pytest.skip("TensorRT is importable here; the missing-module error cannot happen")
    engine = tmp_path / "student.engine"
    engine.write_bytes(b"\0" * 64)
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    line = one_line_error(invoke("run", "--source", str(video), "--rectified", "--backend", "trt", "--model",
                                 str(engine), "--headless"))
    assert "tensorrt" in line.lower() and "stereo-trt doctor" in line


def _importable(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_calibrate_camera_command(tmp_path):
    frames = [np.hstack(pair) for pair in render_board_pairs(make_rig(), 9, 6, 0.03, count=8)]
    video = write_video(tmp_path / "board.mp4", frames)
    out = tmp_path / "stereo.json"
    result = invoke("calibrate-camera", str(video), "--board", "9x6", "--square", "0.03", "--every", "1",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "board found in 8 of 8 pairs" in result.output and "baseline 0.12" in result.output
    assert load_calibration(out).baseline == pytest.approx(0.12, rel=0.02)
    assert (tmp_path / "stereo_preview.png").is_file() and (tmp_path / "stereo.json.json").is_file()


def test_calibrate_camera_without_a_board_is_a_failed_check(tmp_path):
    video = side_by_side_video(tmp_path / "noboard.mp4", 2)
    line = one_line_error(invoke("calibrate-camera", str(video), "--square", "0.03", "--every", "1",
                                 "--out", str(tmp_path / "c.yaml")))
    assert "the board was found in 0 pair(s)" in line
    assert not (tmp_path / "c.yaml").exists()


def test_ctrl_c_mid_run_leaves_a_playable_video(tmp_path):
    total = 1500
    video = side_by_side_video(tmp_path / "long.mp4", 6, repeat=total // 6)
    out = tmp_path / "interrupted.mp4"
    returncode, output = interrupt_run(["--source", str(video), "--rectified", "--backend", "sgbm", "--max-disp", "32",
                                        "--headless", "--status-every", "0", "--save", str(out)])
    assert returncode == 0, output
    assert "interrupted:" in output
    frames = count_frames(out)
    assert 0 < frames < total
    assert (tmp_path / "interrupted.mp4.json").is_file()
    assert not list(tmp_path.glob("*.partial*"))


def test_a_missing_source_is_named_before_the_calibration_it_would_need(tmp_path):
    # Without --rectified the missing calibration used to be reported, hiding the typo in --source.
    result = CliRunner().invoke(main, ["run", "--source", str(tmp_path / "nothere.mcap"), "--backend", "sgbm"])
    assert result.exit_code == 2
    assert "nothere.mcap: no such file or folder" in result.output and "ROS 2 bag" in result.output
