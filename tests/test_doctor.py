"""`stereo-trt doctor`: probes parsed from real sample text in the documented formats, and the
real report on this machine (no GPU, no TensorRT)."""

import json

import cv2
from click.testing import CliRunner

from toolkit import doctor
from toolkit.cli import main

# Real outputs as printed on devices (quoted in public setup notes and bug reports).
ORIN_MODEL = "NVIDIA Jetson AGX Orin Developer Kit\x00"
R35_4_1 = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023"
R36_3_0 = "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024"
NVPMODEL_MAXN = "NV Power Mode: MAXN\n0\n"
NVPMODEL_15W = "NV Power Mode: 15W\n0\n"
CLOCKS_FREE = """SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Developer Kit
Online CPUs: 0-5
cpu0:  Online=1 Governor=ondemand MinFreq=729600 MaxFreq=1510400 CurrentFreq=960000 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=624750000 CurrentFreq=306000000
Active GPU TPCs: 4
EMC MinFreq=204000000 MaxFreq=2133000000 CurrentFreq=665600000 FreqOverride=0
"""
CLOCKS_LOCKED = """SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super
Online CPUs: 0-5
cpu0: Online=1 Governor=schedutil MinFreq=1728000 MaxFreq=1728000 CurrentFreq=1728000
GPU MinFreq=1020000000 MaxFreq=1020000000 CurrentFreq=1020000000
Active GPU TPCs: 8
EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1
NV Power Mode: MAXN_SUPER
"""
CLOCKS_NOT_ROOT = "Error: Run this script(/usr/bin/jetson_clocks) as a root user\n"
NVCC = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.6, V12.6.68\n"
JETPACK_OPENCV_LINE = "    GStreamer:                   YES (1.16.3)\n"


def test_l4t_release_and_jetpack():
    assert doctor.parse_l4t_release(R35_4_1) == "35.4.1"
    assert doctor.parse_l4t_release(R36_3_0) == "36.3.0"
    assert doctor.jetpack_for_l4t("35.4.1") == "5.1.2"
    assert doctor.jetpack_for_l4t("36.3.0") == "6.0"
    assert doctor.parse_l4t_release("Ubuntu 22.04") is None


def test_device_model_drops_the_nul_terminator():
    assert doctor.parse_device_model(ORIN_MODEL) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert doctor.parse_device_model(None) is None


def test_power_mode_and_clocks():
    assert doctor.parse_nvpmodel(NVPMODEL_MAXN) == ("MAXN", 0)
    assert doctor.parse_nvpmodel(NVPMODEL_15W) == ("15W", 0)
    assert doctor.parse_jetson_clocks(CLOCKS_FREE) is False
    assert doctor.parse_jetson_clocks(CLOCKS_LOCKED) is True
    assert doctor.parse_jetson_clocks(CLOCKS_NOT_ROOT) is None


def test_power_rows_say_how_to_fix():
    rows = {r.name: r for r in doctor.check_power(NVPMODEL_15W, CLOCKS_FREE)}
    assert rows["power mode"].status == "warn" and "nvpmodel -m" in rows["power mode"].hint
    assert rows["clocks locked"].status == "warn" and "sudo jetson_clocks" in rows["clocks locked"].hint
    rows = {r.name: r for r in doctor.check_power(NVPMODEL_MAXN, CLOCKS_NOT_ROOT)}
    assert rows["power mode"].status == "ok"
    assert rows["clocks locked"].value == "unknown" and "root" in rows["clocks locked"].hint


def test_cuda_and_gpu_parsers():
    assert doctor.parse_nvcc_version(NVCC) == "12.6"
    # nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader
    gpus = doctor.parse_nvidia_smi("NVIDIA GeForce RTX 3090, 535.104.05, 8.6\n")
    assert gpus == [{"name": "NVIDIA GeForce RTX 3090", "driver": "535.104.05", "compute_capability": "8.6"}]
    assert doctor.parse_nvidia_smi("") == []


def test_gstreamer_from_opencv_build_information():
    assert doctor.parse_gstreamer(JETPACK_OPENCV_LINE) == (True, "1.16.3")
    has_gst, _ = doctor.parse_gstreamer(cv2.getBuildInformation())  # this machine's real OpenCV
    assert has_gst is ("GStreamer:                   YES" in cv2.getBuildInformation())


def test_simulated_jetpack5_device_uses_real_modules_of_this_machine():
    files = {doctor.MODEL_FILE: ORIN_MODEL, doctor.L4T_FILE: R35_4_1}
    outputs = {"nvpmodel": NVPMODEL_MAXN, "jetson_clocks": CLOCKS_LOCKED, "nvcc": NVCC}
    report = doctor.collect(read=files.get, run=lambda argv: outputs.get(argv[0]))
    rows = {r.name: r for r in report["checks"]}
    assert report["machine"]["jetson"] is True
    assert rows["JetPack"].value == "5.1.2 (L4T R35.4.1)"
    assert rows["Jetson model"].value == "NVIDIA Jetson AGX Orin Developer Kit"
    assert rows["clocks locked"].status == "ok"
    assert rows["GPU"].status == "info"  # JetPack 5 has no nvidia-smi
    if rows["TensorRT"].status == "missing":
        assert "do not pip-install tensorrt on a Jetson" in rows["TensorRT"].hint
    if "GStreamer NO" in rows["OpenCV"].value:
        assert rows["OpenCV"].status == "warn" and "pip uninstall opencv-python" in rows["OpenCV"].hint


def test_desktop_without_jetson_files_has_no_jetson_rows():
    report = doctor.collect(read=lambda path: None, run=lambda argv: None)
    names = [r.name for r in report["checks"]]
    assert "JetPack" not in names and "power mode" not in names
    assert {r.status for r in report["checks"]} <= set(doctor.STATUSES)


def test_doctor_json_runs_here_and_exits_0():
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = {c["name"]: c for c in data["checks"]}
    for name in ("TensorRT", "pycuda", "cuda-python", "ONNX Runtime", "PyTorch", "OpenCV", "CUDA toolkit"):
        assert name in names
    assert data["ready"]["onnxruntime"] is True
    if names["TensorRT"]["status"] == "missing":
        assert data["ready"]["tensorrt"] is False and names["TensorRT"]["hint"]


def test_doctor_text_report_exits_0():
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 0
    assert "TensorRT backend:" in result.output
