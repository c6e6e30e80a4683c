"""Issue 15: every bad input a clean error, nothing overwritten, nothing half-written.

Each test goes through the CLI: exit code 2, one line on stderr, no traceback, and the
folder the command would write into unchanged. Outputs are checked before slow work, so
these run in milliseconds wherever a model or a calibration would otherwise load first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tiny_models import exported_tiny_onnx
from cli_checks import assert_clean_failure, invoke
from toolkit.data import io
from toolkit.data.synthetic import make_scene

sys.path.insert(0, str(Path(__file__).parent / "stream"))
from stream_media import side_by_side_video  # noqa: E402
from stream_rig import make_rig, render_board_pairs  # noqa: E402

UNDER_A_FILE = "blocker/sub/out"  # a path below an existing file: cannot be created


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}




@pytest.fixture
def ws(tmp_path):
    """A workspace with a scene pair, a file to put outputs under, and the tiny ONNX."""
    scene = make_scene(3, 64, 96, max_disp=16)
    io.write_image(tmp_path / "left.png", scene.left)
    io.write_image(tmp_path / "right.png", scene.right)
    (tmp_path / "blocker").write_text("a file, not a folder")
    return tmp_path


def write_pairs(folder: Path, count: int) -> Path:
    for index in range(count):
        scene = make_scene(index, 64, 96, max_disp=16)
        io.write_image(folder / "left" / f"{index:03d}.png", scene.left)
        io.write_image(folder / "right" / f"{index:03d}.png", scene.right)
    return folder


# --- mechanism 1: outputs checked before work -------------------------------------------------

@pytest.mark.parametrize("command, option", [
    (["predict", "{ws}/left.png", "{ws}/right.png"], "--out"),
    (["export", "--size", "64x96"], "--out"),
    (["quantize", "{onnx}", "-c", "{ws}"], "--out"),
    (["build", "{onnx}"], "--out"),
    (["run", "--source", "{ws}/video.mp4", "--rectified", "--backend", "sgbm", "--headless"], "--save"),
    (["calibrate-camera", "{ws}", "--square", "0.025"], "--out"),
    (["calibrate-camera", "{ws}", "--square", "0.025", "--out", "{ws}/ok.yaml"], "--preview"),
    (["bench", "--model", "sgbm"], "--out"),
    (["demo"], "--out"),
])
def test_an_impossible_output_fails_first_and_writes_nothing(ws, command, option):
    suffix = {"export": ".onnx", "quantize": ".onnx", "build": ".engine", "run": ".mp4", "calibrate-camera": ".yaml"}
    side_by_side_video(ws / "video.mp4", 2)
    target = f"{ws}/{UNDER_A_FILE}{suffix.get(command[0], '')}"
    if option == "--preview":
        target = target[:-len(".yaml")] + ".png"
    args = [a.format(ws=ws, onnx=exported_tiny_onnx()) for a in command] + [option, target]
    before = snapshot(ws)
    assert_clean_failure(invoke(*args), option, "is a file, not a folder")
    assert snapshot(ws) == before


def test_export_refuses_a_non_onnx_out_and_size_with_dynamic(ws):
    before = snapshot(ws)
    assert_clean_failure(invoke("export", "--size", "64x96", "--out", ws / "model.txt"), "--out", "ending in .onnx")
    assert_clean_failure(invoke("export", "--size", "64x96", "--dynamic", "64x96:64x96:128x128", "--out", ws / "m.onnx"),
                         "--size 64x96 and --dynamic exclude each other")
    assert snapshot(ws) == before


def test_quantize_checks_outputs_before_calibrating(ws):
    result = invoke("quantize", exported_tiny_onnx(), "-c", ws, "--cache", f"{ws}/{UNDER_A_FILE}.cache",
                    "--out", ws / "q.onnx")
    assert_clean_failure(result, "--cache")
    assert "calibration" not in result.stdout  # no progress line: calibration never started


def test_quantize_names_a_file_that_is_not_a_manifest(ws):
    assert_clean_failure(invoke("quantize", exported_tiny_onnx(), "-c", ws / "left.png", "--out", ws / "q.onnx"),
                         "left.png: is a file but not a calibration manifest")


def test_run_save_gets_the_umask_mode(ws):
    side_by_side_video(ws / "video.mp4", 2)
    old = os.umask(0o022)
    try:
        result = invoke("run", "--source", ws / "video.mp4", "--rectified", "--backend", "sgbm", "--max-disp", "32",
                        "--headless", "--save", ws / "out.mp4")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert (ws / "out.mp4").stat().st_mode & 0o777 == 0o644


# --- mechanism 2: errors at the boundary ------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"x" * 64, b"not an image at all"])
def test_corrupt_or_empty_images_are_one_line_without_codec_noise(ws, content):
    # A subprocess, so that what libpng or OpenCV print on descriptor 2 is seen too.
    (ws / "bad.png").write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "toolkit", "predict", str(ws / "bad.png"), str(ws / "right.png"),
                             "--out", str(ws / "out")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.png" in lines[0], result.stderr
    assert not (ws / "out").exists()


def test_a_unicode_path_is_read(ws):
    folder = ws / "données_стерео"
    folder.mkdir()
    image = io.read_image(ws / "left.png")
    io.write_image(folder / "gauche.png", image)
    assert np.array_equal(io.read_image(folder / "gauche.png"), image)


@pytest.mark.parametrize("field, value, message", [
    ("D1", np.zeros((1, 3)), "D1 has 3 coefficients"),
    ("K2", np.eye(2), "K2 has shape (2, 2)"),
    ("T", np.array([[np.nan], [0.0], [0.0]]), "T holds non-finite values"),
])
def test_a_calibration_with_a_malformed_matrix_is_one_line(ws, field, value, message):
    from toolkit.stream.rectify import save_calibration

    calibration = make_rig().calibration()
    setattr(calibration, field, value)
    save_calibration(ws / "bad.yaml", calibration)
    side_by_side_video(ws / "video.mp4", 1)
    assert_clean_failure(invoke("run", "--source", ws / "video.mp4", "--calibration", ws / "bad.yaml",
                                "--backend", "sgbm", "--headless"), "bad.yaml", message)


def board_folder(folder: Path, gray: bool = False, count: int = 8) -> Path:
    for index, pair in enumerate(render_board_pairs(make_rig(), 9, 6, 0.025, count=count)):
        for side, image in zip(("left", "right"), pair):
            io.write_image(folder / side / f"{index:02d}.png", cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if gray else image)
    return folder


def test_calibrate_camera_takes_grayscale_boards_and_every_pair_of_a_folder(tmp_path):
    # Mono stereo cameras deliver grayscale; --every is for videos, so a folder's 8 pairs are all used.
    folder = board_folder(tmp_path / "boards", gray=True)
    result = invoke("calibrate-camera", folder, "--square", "0.025", "--every", "5", "--out", tmp_path / "s.yaml")
    assert result.exit_code == 0, result.output
    assert "board found in 8 of 8 pairs" in result.output
    assert (tmp_path / "s.yaml").is_file() and (tmp_path / "s_preview.png").is_file()


def test_calibrate_camera_leaves_nothing_when_the_preview_cannot_be_written(tmp_path, monkeypatch):
    from toolkit.errors import InputError
    from toolkit.stream import calibrate

    folder = board_folder(tmp_path / "boards")

    def refuse(path, image):
        raise InputError(f"{path}: disk full")

    monkeypatch.setattr(calibrate.io, "write_image", refuse)
    before = snapshot(tmp_path)
    assert_clean_failure(invoke("calibrate-camera", folder, "--square", "0.025", "--out", tmp_path / "s.yaml"),
                         "disk full")
    assert snapshot(tmp_path) == before


def test_doctor_exits_0_when_stdout_is_full():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "toolkit", "doctor"], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=120)
    assert result.returncode == 0
    assert result.stderr.strip().splitlines() == ["doctor: cannot write the report to stdout (No space left on device)"]


# --- mechanism 3: all or nothing --------------------------------------------------------------

def test_predict_checks_options_before_writing(ws):
    before = snapshot(ws)
    assert_clean_failure(invoke("predict", ws / "left.png", ws / "right.png", "--focal", "-700", "--baseline", "0.1",
                                "--out", ws / "out"), "--focal -700.0: expected a positive number")
    assert_clean_failure(invoke("predict", ws / "left.png", ws / "right.png", "--max-disp", "48", "--out", ws / "out"),
                         "--max-disp 48: expected a multiple of 32")
    assert snapshot(ws) == before


def test_predict_help_states_the_enforced_max_disp():
    assert "a multiple of 32" in invoke("predict", "--help").output


def test_a_folder_with_a_corrupt_pair_fails_before_the_first_file(tmp_path):
    folder = write_pairs(tmp_path / "pairs", 3)
    (folder / "right" / "001.png").write_bytes(b"truncated")
    assert_clean_failure(invoke("predict", folder, "--out", tmp_path / "out"), "001.png")
    assert not (tmp_path / "out").exists()


def test_a_folder_with_mismatched_sizes_fails_before_the_first_file(tmp_path):
    folder = write_pairs(tmp_path / "pairs", 2)
    io.write_image(folder / "right" / "001.png", np.zeros((32, 48, 3), np.uint8))
    assert_clean_failure(invoke("predict", folder, "--out", tmp_path / "out"), "pair 001", "differ in size")
    assert not (tmp_path / "out").exists()


def test_a_run_that_fails_midway_names_the_pairs_it_wrote(tmp_path):
    from toolkit import predict
    from toolkit.backends.sgbm import SGBMRunner
    from toolkit.errors import InputError

    class FailsOnThird(SGBMRunner):
        calls = 0

        def infer(self, left, right):
            FailsOnThird.calls += 1
            if FailsOnThird.calls == 3:
                raise InputError("the device went away")
            return super().infer(left, right)

    pairs = [(f"p{i}", *(lambda s: (s.left, s.right))(make_scene(i, 64, 96, max_disp=16))) for i in range(4)]
    with FailsOnThird(max_disp=32) as runner, pytest.raises(InputError) as caught:
        predict.predict_pairs(runner, pairs, tmp_path / "out")
    assert str(caught.value) == (f"the device went away; stopped at p2; 2 pair(s) written under {tmp_path / 'out'}: "
                                 "p0, p1")
    assert sorted(p.name for p in (tmp_path / "out").glob("*_disp.pfm")) == ["p0_disp.pfm", "p1_disp.pfm"]


def test_predict_never_writes_over_its_inputs(tmp_path):
    scene = make_scene(0, 64, 96, max_disp=16)
    left = io.write_image(tmp_path / "x_disp.png", scene.left)  # the name predict gives pair "x"'s disparity
    right = io.write_image(tmp_path / "x_right.png", scene.right)
    from toolkit import predict
    from toolkit.data.pairs import StereoPair
    from toolkit.errors import InputError

    with pytest.raises(InputError, match="would overwrite an input"):
        predict.check_pairs([StereoPair("x", left, right)], out_dir=tmp_path)


# --- mechanism 4 and the small items ----------------------------------------------------------

def test_network_size_has_an_upper_bound_that_the_message_states(ws):
    line = assert_clean_failure(invoke("predict", ws / "left.png", ws / "right.png", "--size", "8192x8192",
                                       "--out", ws / "out"), "--size 8192x8192")
    assert "at most 4096 px a side" in line


def test_sgbm_refuses_a_range_that_is_not_a_multiple_of_16(ws):
    side_by_side_video(ws / "video.mp4", 1)
    assert_clean_failure(invoke("run", "--source", ws / "video.mp4", "--rectified", "--backend", "sgbm",
                                "--max-disp", "17", "--headless"), "--max-disp 17", "multiple of 16")



# --- found beyond the list -------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["run", "--source", "v.mp4", "--rectified", "--fps", "0"], "Invalid value for '--fps'"),
    (["predict", "--out", "blocker"], "Invalid value for '--out'"),
    (["lint", "."], "Invalid value for 'MODEL'"),
])
def test_click_value_errors_are_one_line_too(ws, monkeypatch, args, message):
    monkeypatch.chdir(ws)
    assert_clean_failure(invoke(*args), message)


def test_lint_refuses_an_empty_onnx_file(ws):
    (ws / "empty.onnx").write_bytes(b"")
    assert_clean_failure(invoke("lint", ws / "empty.onnx"), "empty.onnx: an ONNX file without a graph")


def test_a_one_frame_run_still_reports_its_latency(ws):
    from toolkit.backends.sgbm import SGBMRunner
    from toolkit.stream import sources
    from toolkit.stream.loop import run_stream

    side_by_side_video(ws / "video.mp4", 1)
    summary = run_stream(sources.open_source([str(ws / "video.mp4")]), SGBMRunner(max_disp=32))
    assert summary.frames_processed == 1 and summary.latency_ms_mean > 0
    assert set(summary.stage_ms) == {"prepare", "infer", "present"}


def test_a_pair_whose_last_file_fails_leaves_none_of_its_files(tmp_path, monkeypatch):
    from toolkit import predict
    from toolkit.backends.sgbm import SGBMRunner
    from toolkit.errors import InputError

    write_image = io.write_image

    def refuse_confidence(path, image):
        if str(path).endswith("_conf.png"):
            raise InputError(f"{path}: disk full")
        return write_image(path, image)

    monkeypatch.setattr(predict.io, "write_image", refuse_confidence)
    scene = make_scene(0, 64, 96, max_disp=16)
    with SGBMRunner(max_disp=32) as runner, pytest.raises(InputError, match="disk full; stopped at p0, nothing written"):
        predict.predict_pairs(runner, [("p0", scene.left, scene.right)], tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_run_names_max_disp_for_a_checkpoint(ws):
    from toolkit.paths import BUILTIN_CHECKPOINT

    side_by_side_video(ws / "video.mp4", 1)
    assert_clean_failure(invoke("run", "--source", ws / "video.mp4", "--rectified", "--model", BUILTIN_CHECKPOINT,
                                "--max-disp", "40", "--headless"), "--max-disp 40: expected a multiple of 32")
