"""Engine sidecars: the device check that refuses an engine built elsewhere, and artifact names."""

import json

import pytest

from toolkit.errors import ModelError
from toolkit.trt.sidecar import (
    ENGINE_FORMAT,
    DeviceIdentity,
    check_engine_compat,
    default_calib_cache_path,
    default_engine_path,
    default_timing_cache_path,
    device_tag,
    identity_from_sidecar,
    read_engine_sidecar,
)

ORIN_JP6 = DeviceIdentity("10.3.0.30", "Orin", "8.7")


def sidecar_for(identity):
    return {"format": ENGINE_FORMAT, **identity.as_dict(), "precision": "fp16"}


def test_same_device_and_version_passes():
    check_engine_compat(sidecar_for(ORIN_JP6), DeviceIdentity("10.3.0.30", "Orin", "8.7"))


def test_other_tensorrt_version_is_refused_with_both_sides_named():
    built = sidecar_for(DeviceIdentity("8.5.2.2", "Orin", "8.7"))
    with pytest.raises(ModelError) as info:
        check_engine_compat(built, ORIN_JP6, "engines/m.engine")
    message = str(info.value)
    assert "engine built with TensorRT 8.5.2.2 on Orin" in message
    assert "this is TensorRT 10.3.0.30 on Orin" in message
    assert "rebuild it on this device with `stereo-trt build`" in message
    assert "\n" not in message


def test_other_gpu_is_refused_even_with_the_same_tensorrt():
    built = sidecar_for(DeviceIdentity("10.3.0.30", "NVIDIA GeForce RTX 4090", "8.9"))
    with pytest.raises(ModelError, match="on NVIDIA GeForce RTX 4090 .*; this is TensorRT 10.3.0.30 on Orin"):
        check_engine_compat(built, ORIN_JP6)


def test_sidecar_without_gpu_fields_is_a_clear_error():
    with pytest.raises(ModelError, match="no 'compute_capability' field"):
        identity_from_sidecar({"tensorrt": "10.3.0", "gpu": {"name": "Orin"}})


def test_read_engine_sidecar(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0")
    assert read_engine_sidecar(engine) is None
    (tmp_path / "m.engine.json").write_text(json.dumps(sidecar_for(ORIN_JP6)))
    assert identity_from_sidecar(read_engine_sidecar(engine)) == ORIN_JP6


def test_foreign_or_broken_sidecar_is_refused(tmp_path):
    engine = tmp_path / "m.engine"
    (tmp_path / "m.engine.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_engine_sidecar(engine)
    (tmp_path / "m.engine.json").write_text(json.dumps({"format": "stereo-trt/onnx"}))
    with pytest.raises(ModelError, match="not an engine sidecar"):
        read_engine_sidecar(engine)


def test_artifact_names_say_which_device_they_belong_to(tmp_path):
    assert device_tag(ORIN_JP6) == "orin-sm87-trt10.3.0"
    rtx = DeviceIdentity("10.16.0.1", "NVIDIA GeForce RTX 4090", "8.9")
    engine = default_engine_path("exports/student_480x640.onnx", "fp16", rtx, tmp_path)
    assert engine == tmp_path / "student_480x640_fp16_nvidia-geforce-rtx-4090-sm89-trt10.16.0.engine"
    assert default_timing_cache_path(engine, rtx) == tmp_path / "timing_nvidia-geforce-rtx-4090-sm89-trt10.16.0.cache"
    assert default_calib_cache_path("x/student.onnx", ORIN_JP6, "calibration").as_posix() == \
        "calibration/student_trt10.3.0.cache"
