"""Build options checked before anything slow: profiles, config fields, calibration caches, and
the real missing-TensorRT path of ``build_engine`` on this machine."""

import importlib.util

import numpy as np
from types import SimpleNamespace

import pytest

from toolkit.calib_cache import cache_header, write_calibration_cache
from toolkit.errors import DependencyError, InputError, StereoTrtError
from toolkit.trt.build import BuildConfig, ProfileSpec, build_engine, calibration_feeds, resolve_profiles, usable_calib_cache
from toolkit.trt.sidecar import DeviceIdentity
from trt_fixtures import contract_onnx

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def test_profile_parses_min_opt_max_and_single_size():
    spec = ProfileSpec.parse("256x320:480x640:736x1280")
    assert spec.shapes() == ((1, 3, 256, 320), (1, 3, 480, 640), (1, 3, 736, 1280))
    assert ProfileSpec.parse("480x640").as_dict() == {"min": [480, 640], "opt": [480, 640], "max": [480, 640]}


@pytest.mark.parametrize("text, message", [
    ("256x300:480x640:736x1280", "multiples of 32"),
    ("480x640:256x320:736x1280", "min <= opt <= max"),
    ("256x320:480x640", "MIN:OPT:MAX"),
    ("big:480x640:736x1280", "HxW"),
])
def test_bad_profiles_are_refused(text, message):
    with pytest.raises(InputError, match=message):
        ProfileSpec.parse(text)


def test_profiles_come_from_the_onnx_metadata(tmp_path):
    meta = {"dynamic": {"min": [256, 320], "opt": [480, 640], "max": [736, 1280]}, "input_hw": None}
    (profile,) = resolve_profiles(meta, None, tmp_path / "m.onnx")
    assert profile.opt_hw == (480, 640)
    assert resolve_profiles({"dynamic": None, "input_hw": [64, 96]}, None, tmp_path / "m.onnx") is None


def test_profile_for_a_static_onnx_is_refused(tmp_path):
    with pytest.raises(InputError, match="fixed size"):
        resolve_profiles({"dynamic": None, "input_hw": [64, 96]}, (ProfileSpec.parse("64x96"),), tmp_path / "m.onnx")


@pytest.mark.parametrize("fields, message", [
    ({"precision": "int4"}, "--precision 'int4'"),
    ({"out": "engines/m.trt"}, "ending in .engine or .plan"),
    ({"workspace_mb": 0}, "--workspace 0"),
    ({"opt_level": 7}, "--opt-level 7"),
    ({"calib_cache": "missing.cache"}, "no such file, and no --calibration"),
    ({"calibration_limit": 0}, "--calib-limit 0"),
])
def test_config_fields_are_checked_first(tmp_path, fields, message):
    onnx_path = contract_onnx(tmp_path / "m.onnx")
    fields = {k: (tmp_path / v if k in ("out", "calib_cache") else v) for k, v in fields.items()}
    with pytest.raises(InputError, match=message):
        BuildConfig(onnx_path, **fields).validate()


def test_missing_onnx_is_named(tmp_path):
    with pytest.raises(InputError, match="no such ONNX file"):
        build_engine(tmp_path / "absent.onnx")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here, so the missing-module path cannot happen")
def test_build_without_tensorrt_names_the_module_and_doctor(tmp_path):
    with pytest.raises(DependencyError) as info:
        build_engine(contract_onnx(tmp_path / "m.onnx"), precision="fp16")
    assert "`tensorrt`" in str(info.value) and "stereo-trt doctor" in str(info.value)
    assert not list(tmp_path.glob("*.engine"))


ORIN_JP6 = DeviceIdentity("10.3.0.30", "Orin", "8.7")


def test_cache_from_this_tensorrt_is_used(tmp_path):
    path = write_calibration_cache(tmp_path / "c.cache", {"left": 2.0, "right": 2.0}, cache_header("10.3.0"))
    messages = []
    assert usable_calib_cache(path, ORIN_JP6, has_pairs=False, on_progress=messages.append)
    assert "using calibration cache" in messages[0]


def test_cache_from_another_tensorrt_recalibrates_when_pairs_are_given(tmp_path):
    path = write_calibration_cache(tmp_path / "c.cache", {"left": 2.0}, cache_header("8.5.2"))
    messages = []
    assert not usable_calib_cache(path, ORIN_JP6, has_pairs=True, on_progress=messages.append)
    assert "8502" in messages[0] and "recalibrating" in messages[0]


def test_cache_from_another_tensorrt_without_pairs_is_refused(tmp_path):
    path = write_calibration_cache(tmp_path / "c.cache", {"left": 2.0}, cache_header("8.5.2"))
    with pytest.raises(StereoTrtError, match="written by TensorRT version code 8502.*recalibrate with --calibration"):
        usable_calib_cache(path, ORIN_JP6, has_pairs=False, on_progress=print)


def test_malformed_cache_is_refused_by_the_cache_reader(tmp_path):
    path = tmp_path / "c.cache"
    path.write_text("not a cache\n")
    with pytest.raises(InputError, match="not a TensorRT cache header"):
        usable_calib_cache(path, ORIN_JP6, has_pairs=True, on_progress=print)


def test_calibration_feeds_use_the_shared_preprocessing(tmp_path):
    import numpy as np

    from toolkit.data import io

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    io.write_image(tmp_path / "l.png", image)
    io.write_image(tmp_path / "r.png", image)
    pairs = [SimpleNamespace(name=f"p{i}", left=tmp_path / "l.png", right=tmp_path / "r.png") for i in range(3)]
    feeds = list(calibration_feeds(pairs, (64, 96), limit=2))
    assert len(feeds) == 2
    assert feeds[0]["left"].shape == (1, 3, 64, 96) and feeds[0]["left"].dtype == np.float32
    # 0..255, not normalised: the network normalises inside.
    assert feeds[0]["left"].max() > 1.0


def test_calibration_pairs_from_a_manifest_keep_its_size(tmp_path):
    from toolkit.data.instereo2k import sample_calibration, write_manifest
    from toolkit.data.synthetic import write_instereo2k_tree
    from toolkit.trt.build import resolve_calibration_pairs

    root = write_instereo2k_tree(tmp_path / "instereo2k", n_train_parts=2, pairs_per_part=2, n_test=1, size=(64, 96))
    manifest = write_manifest(sample_calibration(root, n=3, size=(64, 96)), tmp_path / "calib.json")
    pairs, size = resolve_calibration_pairs(manifest)
    assert len(pairs) == 3 and size == (64, 96)
    assert all(p.left.name == "left.png" and p.right.name == "right.png" for p in pairs)


def test_calibration_pairs_from_a_glob_of_left_images(tmp_path):
    from toolkit.data import io
    from toolkit.trt.build import resolve_calibration_pairs

    image = np.zeros((40, 60, 3), dtype=np.uint8)
    for name in ("a", "b"):
        io.write_image(tmp_path / f"{name}_left.png", image)
        io.write_image(tmp_path / f"{name}_right.png", image)
    pairs, size = resolve_calibration_pairs(str(tmp_path / "*_left.png"))
    assert [p.right.name for p in pairs] == ["a_right.png", "b_right.png"] and size is None


def test_calibrating_at_another_size_than_the_manifest_is_refused():
    from toolkit.trt.build import check_calibration_hw

    check_calibration_hw((64, 96), (64, 96))
    check_calibration_hw(None, (64, 96))
    with pytest.raises(InputError, match="prepares pairs at 96x128 but this engine calibrates at 64x96"):
        check_calibration_hw((96, 128), (64, 96))
