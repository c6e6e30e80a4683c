"""Review of runners, devices and reliability: hostile but realistic inputs, each one line + exit 2.

Every test goes through the CLI (click's CliRunner) and fails without the fix it names.
"""

from __future__ import annotations

import numpy as np
import pytest

from cli_checks import assert_clean_failure, invoke
from toolkit.data import io
from toolkit.data.synthetic import make_scene




@pytest.fixture
def ws(tmp_path):
    scene = make_scene(3, 64, 96, max_disp=16)
    io.write_image(tmp_path / "left.png", scene.left)
    io.write_image(tmp_path / "right.png", scene.right)
    return tmp_path


@pytest.mark.parametrize("args, option", [
    (["predict", "{ws}/left.png", "{ws}/right.png", "--focal", "100", "--baseline", "0.1", "--doffs", "nan"], "--doffs"),
    (["predict", "{ws}/left.png", "{ws}/right.png", "--ply", "--focal", "100", "--baseline", "0.1",
      "--max-depth", "nan"], "--max-depth"),
    (["run", "--source", "{ws}", "--rectified", "--headless", "--backend", "sgbm", "--depth",
      "--focal-px", "inf", "--baseline", "0.1"], "--focal-px"),
    (["calibrate-camera", "{ws}", "--board", "9x6", "--square", "nan", "--out", "{ws}/stereo.yaml"], "--square"),
])
def test_nan_and_inf_are_refused_by_every_float_option(ws, args, option):
    # click's float type accepts "nan" and "inf": they gave all-NaN depth, unfiltered clouds and
    # a calibration that read every pair before failing.
    before = sorted(ws.rglob("*"))
    result = invoke(*[a.format(ws=ws) for a in args])
    assert_clean_failure(result, option, "expected a finite number")
    assert sorted(ws.rglob("*")) == before


@pytest.mark.parametrize("content", [b"", b"xx"])
@pytest.mark.parametrize("command", [
    ["predict", "{ws}/left.png", "{ws}/right.png", "--model", "{model}", "--out", "{ws}/out"],
    ["quantize", "{model}", "-c", "{ws}", "--out", "{ws}/q.onnx"],
])
def test_an_empty_onnx_file_is_named_as_such_not_as_missing_metadata(ws, content, command):
    # an empty file parses as an empty protobuf: it used to be called a model without stereo-trt metadata
    model = ws / "model.onnx"
    model.write_bytes(content)
    result = invoke(*[a.format(ws=ws, model=model) for a in command])
    line = assert_clean_failure(result, "model.onnx", "without a graph (empty or truncated)")
    assert "metadata" not in line
    assert not (ws / "out").exists() and not (ws / "q.onnx").exists()


@pytest.mark.parametrize("text, modifier", [("student.pth+fp17", "+fp17"), ("sgbm+grahp", "+grahp"),
                                            ("model.onnx+lr+fp64", "+fp64"), ("model.onnx+fp64+lr", "+fp64")])
def test_a_typo_in_a_model_modifier_is_named(ws, text, modifier):
    # it used to read as a file suffix: "cannot tell the backend from suffix '.pth+fp17'"
    for name in ("student.pth", "model.onnx"):
        (ws / name).write_bytes(b"")
    model = text if text.startswith("sgbm") else str(ws / text)
    result = invoke("bench", "--model", model, "--no-memory", "--out", ws / "report")
    assert_clean_failure(result, f"unknown modifier {modifier}", "+fp16", "+graph")
    assert not (ws / "report").exists()


def test_a_model_file_whose_name_holds_a_plus_is_still_a_file(ws):
    from toolkit.backends.spec import parse_model_text

    (ws / "net+v2.onnx").write_bytes(b"")
    assert parse_model_text(str(ws / "net+v2.onnx")).model == str(ws / "net+v2.onnx")
    assert parse_model_text(str(ws / "net+v2.onnx") + "+lr").lr_check


def test_predict_refuses_a_left_image_given_twice(ws):
    # left.png has its right.png by name, so "left.png left.png" is a list of left images: the pair
    # was predicted twice into the same files and reported as "2 pair(s) written"
    result = invoke("predict", ws / "left.png", ws / "left.png", "--out", ws / "out")
    assert_clean_failure(result, "left.png", "given twice")
    assert not (ws / "out").exists()


def test_run_without_model_refuses_a_precision_before_exporting(ws, monkeypatch):
    # the built-in student on ONNX Runtime is an FP32 ONNX: --precision fp16 was refused by the runner,
    # after a 40 s export that left the ONNX behind
    from toolkit import demo

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the options were checked")

    monkeypatch.setattr(demo, "ensure_onnx", no_export)
    result = invoke("run", "--source", ws, "--rectified", "--headless", "--precision", "fp16", "--device", "cpu")
    assert_clean_failure(result, "--precision fp16", "fp32")


@pytest.mark.parametrize("modifiers, fragment", [("+graph", "--cuda-graph needs a CUDA device"),
                                                 ("+graph+cuda", "--device cuda")])
def test_bench_checks_a_graph_row_without_size_before_the_data_loads(ws, monkeypatch, modifiers, fragment):
    # a +graph row without --size skipped every check (its size might come from the exported rows):
    # a CPU-only machine read the whole dataset and loaded the other rows before hearing of it
    from tiny_models import exported_tiny_onnx
    from toolkit import paths
    from toolkit.bench import harness

    def no_data(*args, **kwargs):
        raise AssertionError("the data loaded before the rows were checked")

    monkeypatch.setattr(harness, "load_bench_data", no_data)
    monkeypatch.setattr("toolkit.device.require_torch_device", _no_cuda)
    result = invoke("bench", "--model", f"{paths.BUILTIN_CHECKPOINT}{modifiers}", "--model", exported_tiny_onnx(),
                    "--no-memory", "--out", ws / "report")
    assert_clean_failure(result, fragment)
    assert not (ws / "report").exists()


def _no_cuda(device, option="--device"):
    from toolkit.errors import DependencyError

    if device != "cpu":
        raise DependencyError(f"{option} {device}: no usable CUDA GPU here (test)")


@pytest.mark.parametrize("args, fragment", [(["predict", "--outt", "x"], "No such option '--outt'"),
                                            (["bench", "--model", "sgbm", "extra"], "unexpected extra argument"),
                                            (["predcit"], "No such command 'predcit'")])
def test_an_unknown_option_or_command_is_one_line_too(args, fragment):
    # only bad values were one line; a typo in an option name came with four lines of usage
    assert_clean_failure(invoke(*args), fragment)


@pytest.mark.parametrize("matrix", ["   rows: 3\n", "   rows: 3\n   cols: 3\n   dt: d\n   data: [1, 2]\n"])
def test_a_truncated_opencv_matrix_in_a_calibration_is_one_line(ws, matrix):
    # OpenCV's node.mat() raised cv2.error out of the YAML reader: a 40-line traceback
    calibration = ws / "stereo.yaml"
    calibration.write_text("%YAML:1.0\n---\nK1: !!opencv-matrix\n" + matrix)
    result = invoke("run", "--source", ws, "--calibration", calibration, "--backend", "sgbm", "--headless")
    assert_clean_failure(result, "stereo.yaml", "K1", "opencv-matrix")


@pytest.mark.parametrize("broken", ["im1.png", "disp0GT.pfm"])
def test_bench_decodes_every_pair_and_ground_truth_before_the_rows_load(ws, monkeypatch, broken):
    # images and ground truth were read during the timed passes: a damaged pair 40 of 50 ended the
    # run minutes in, after every row had loaded
    from toolkit.bench import harness

    scene = ws / "data" / "scene"
    scene.mkdir(parents=True)
    (scene / "im0.png").write_bytes((ws / "left.png").read_bytes())
    (scene / "im1.png").write_bytes((ws / "right.png").read_bytes())
    io.write_pfm(scene / "disp0GT.pfm", make_scene(3, 64, 96, max_disp=16).disparity)
    (scene / broken).write_bytes((scene / broken).read_bytes()[:40])

    def no_rows(*args, **kwargs):
        raise AssertionError("the rows loaded before the data was checked")

    monkeypatch.setattr(harness, "_open_rows", no_rows)
    result = invoke("bench", "--model", "sgbm", "--data", ws / "data", "--no-memory", "--out", ws / "report")
    assert_clean_failure(result, broken)
    assert not (ws / "report").exists()


@pytest.mark.parametrize("args, fragment", [
    (["export", "--dynamic", "32x32:64x64:9999x9999", "--out", "{ws}/e.onnx"], "--dynamic 9999x9999"),
    (["quantize", "{ws}/m.onnx", "-c", "{ws}", "--out", "{ws}/q.onnx", "--speed-runs", "-1"], "--speed-runs -1"),
    (["quantize", "{onnx}", "-c", "{ws}", "--out", "{ws}/q.onnx", "--n-calib", "0"], "--n-calib 0: expected"),
])
def test_a_bad_value_names_its_own_option(ws, args, fragment):
    # --dynamic's sizes were reported as "--size 9999x9999"; --speed-runs as "speed runs >= 0";
    # --n-calib 0 as "--n-calib 0 / --holdout None"
    from tiny_models import exported_tiny_onnx

    (ws / "m.onnx").write_bytes(b"")
    onnx = exported_tiny_onnx() if "{onnx}" in args else None
    result = invoke(*[a.format(ws=ws, onnx=onnx) for a in args])
    assert_clean_failure(result, fragment)
    assert not (ws / "e.onnx").exists() and not (ws / "q.onnx").exists()


def test_bench_names_a_missing_tensorrt_before_the_data_loads(ws, monkeypatch):
    # an engine row on a machine without TensorRT failed only when its runner opened, after the data
    import importlib.util

    from toolkit.bench import harness

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is importable here: the engine row would load")

    def no_data(*args, **kwargs):
        raise AssertionError("the data loaded before the rows were checked")

    monkeypatch.setattr(harness, "load_bench_data", no_data)
    (ws / "model.engine").write_bytes(b"")
    result = invoke("bench", "--model", ws / "model.engine", "--no-memory", "--out", ws / "report")
    assert_clean_failure(result, "tensorrt", "doctor")
    assert not (ws / "report").exists()


def test_cpu_and_cuda_modifiers_together_are_named_as_such(ws):
    # "+cpu+cuda" was reported as "+cpu given twice"
    (ws / "model.onnx").write_bytes(b"")
    result = invoke("bench", "--model", f"{ws / 'model.onnx'}+cpu+cuda", "--no-memory", "--out", ws / "report")
    assert_clean_failure(result, "+cpu and +cuda exclude each other")


def test_run_names_the_source_frame_the_network_cannot_take(ws):
    # the message came without the option or frame it was about ("image of 40x5000 px ... is larger ...")
    wide = np.zeros((40, 5000, 3), np.uint8)
    io.write_image(ws / "wide_left.png", wide)
    io.write_image(ws / "wide_right.png", wide)
    result = invoke("run", "--source", ws / "wide_left.png", "--source", ws / "wide_right.png", "--rectified",
                    "--headless", "--backend", "sgbm")
    assert_clean_failure(result, "--source frame 0", "40x5000", "--size")


def test_bench_results_csv_records_the_providers_each_row_ran_on():
    # report.json had them; results.csv dropped every list, the providers with the raw samples
    from toolkit.bench.report import flat_row

    flat = flat_row({"device": "cpu", "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                     "latency": {"samples": [1.0, 2.0], "p50": 1.5}})
    assert flat == {"device": "cpu", "providers": "CUDAExecutionProvider CPUExecutionProvider", "latency.p50": 1.5}
