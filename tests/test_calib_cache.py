"""TensorRT calibration cache: header encoding, hex scales, round trip, malformed files."""

import struct

import pytest

from toolkit.calib_cache import (
    cache_header,
    header_version,
    read_calibration_cache,
    scale_to_hex,
    trt_version_code,
    write_calibration_cache,
)
from toolkit.errors import InputError


@pytest.mark.parametrize("version, code", [("8.5.2", 8502), ("8.6.1", 8601), ("10.3.0", 100300), ("10.3", 100300)])
def test_version_code_follows_nv_tensorrt_version(version, code):
    assert trt_version_code(version) == code
    assert header_version(cache_header(version)) == code


def test_scale_hex_is_big_endian_float32_bits():
    # 1.0 is 0x3f800000 in IEEE-754 single precision; TensorRT prints it most significant byte first.
    assert scale_to_hex(1.0) == "3f800000"
    assert scale_to_hex(2.0) == "40000000"
    assert scale_to_hex(1 / 127) == struct.pack(">f", 1 / 127).hex()


def test_round_trip_keeps_every_tensor(tmp_path):
    scales = {"left": 2.0, "right": 2.0, "/features/conv1/Conv_output_0": 0.0123, "weird:name": 0.5}
    path = write_calibration_cache(tmp_path / "m.cache", scales, cache_header("10.3.0"))
    header, parsed = read_calibration_cache(path)
    assert header == "TRT-100300-EntropyCalibration2"
    assert list(parsed) == list(scales)
    for name, scale in scales.items():
        assert parsed[name] == pytest.approx(scale, rel=1e-7)
    assert len(path.read_text().splitlines()) == len(scales) + 1


def test_reads_a_cache_as_tensorrt_writes_it(tmp_path):
    path = tmp_path / "trt.cache"
    path.write_text("TRT-8502-EntropyCalibration2\ninput: 3c010a14\n(Unnamed Layer* 0) [Convolution]_output: 3d2ad2f3")
    header, scales = read_calibration_cache(path)
    assert header == "TRT-8502-EntropyCalibration2"
    assert scales["input"] == pytest.approx(0.0078758, rel=1e-4)
    assert "(Unnamed Layer* 0) [Convolution]_output" in scales


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "first line"),
        ("not a header\nx: 3f800000\n", "first line"),
        ("TRT-8502-EntropyCalibration2\nx 3f800000\n", "expected 'tensor_name"),
        ("TRT-8502-EntropyCalibration2\nx: 3f80\n", "expected 'tensor_name"),
        ("TRT-8502-EntropyCalibration2\nx: 3f800000\nx: 3f800000\n", "appears twice"),
    ],
)
def test_malformed_caches_are_refused(tmp_path, text, message):
    path = tmp_path / "bad.cache"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_calibration_cache(path)


def test_bad_scale_leaves_no_file(tmp_path):
    with pytest.raises(InputError, match="finite positive"):
        write_calibration_cache(tmp_path / "x.cache", {"a": 0.0})
    assert list(tmp_path.iterdir()) == []


def test_bad_version_is_refused():
    with pytest.raises(InputError, match="TensorRT version"):
        cache_header("eight")
