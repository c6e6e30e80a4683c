"""Version policy: which build path TensorRT 8.5 (JetPack 5), 8.6, 10.3 (JetPack 6), 10.x and 11.x take."""

import pytest

from toolkit.errors import InputError, StereoTrtError
from toolkit.trt.versions import TrtVersion, plan_build, require_feature, supports

JETPACK5, JETPACK6, DESKTOP10, DESKTOP11 = "8.5.2.2", "10.3.0.30", "10.16.0", "11.1.0"


@pytest.mark.parametrize("text, expected", [
    ("8.5.2.2", TrtVersion(8, 5, 2)), ("10.3.0", TrtVersion(10, 3, 0)), ("11.1", TrtVersion(11, 1, 0)),
    ("10.16.1.11", TrtVersion(10, 16, 1)),
])
def test_parse_trt_version(text, expected):
    assert TrtVersion.parse(text) == expected


def test_versions_compare_numerically_not_as_text():
    assert TrtVersion.parse("10.16.0") > TrtVersion.parse("10.3.0") > TrtVersion.parse("8.6.1")


def test_unparsable_version_is_an_input_error():
    with pytest.raises(InputError, match="expected major.minor"):
        TrtVersion.parse("ten")


@pytest.mark.parametrize("feature, present_in, absent_in", [
    ("builder_optimization_level", ["8.6.1", JETPACK6, DESKTOP11], [JETPACK5]),
    ("progress_monitor", ["10.0.1", JETPACK6, DESKTOP11], [JETPACK5, "8.6.1"]),
    ("strongly_typed_flag", [JETPACK6, DESKTOP11], [JETPACK5, "8.6.1"]),
    ("precision_flags", [JETPACK5, JETPACK6, DESKTOP10], [DESKTOP11, "11.0.0"]),
    ("int8_calibrator", [JETPACK5, JETPACK6, DESKTOP10], [DESKTOP11]),
    ("explicit_batch_flag", [JETPACK5, JETPACK6], [DESKTOP11]),
])
def test_feature_table_matches_the_bindings(feature, present_in, absent_in):
    assert all(supports(v, feature) for v in present_in)
    assert not any(supports(v, feature) for v in absent_in)


# --- FP32 ONNX -----------------------------------------------------------------------------

def test_fp32_on_jetpack5_needs_explicit_batch_and_no_precision_flags():
    plan = plan_build(JETPACK5, "fp32", "fp32", False)
    assert plan.network_flags == ("EXPLICIT_BATCH",)
    assert plan.builder_flags == ()
    assert plan.cleared_flags == ("TF32",)
    assert not plan.calibrator


def test_fp32_on_tensorrt10_sets_no_network_flags():
    assert plan_build(JETPACK6, "fp32", None, False).network_flags == ()


def test_fp32_on_tensorrt11_is_strongly_typed_without_flags():
    plan = plan_build(DESKTOP11, "fp32", "fp32", False)
    assert plan.network_flags == () and plan.builder_flags == () and plan.strongly_typed


@pytest.mark.parametrize("version", [JETPACK5, JETPACK6, DESKTOP10])
def test_fp16_from_fp32_onnx_uses_the_flag_and_pins_softmax(version):
    plan = plan_build(version, "fp32", "fp16", False)
    assert plan.builder_flags == ("FP16", "OBEY_PRECISION_CONSTRAINTS")
    assert plan.pin_fp32_layers and plan.precision == "fp16"


def test_fp16_from_fp32_onnx_on_tensorrt11_says_export_fp16():
    with pytest.raises(StereoTrtError, match=r"export --fp16"):
        plan_build(DESKTOP11, "fp32", "fp16", False)


@pytest.mark.parametrize("version", [JETPACK5, JETPACK6, DESKTOP10])
def test_implicit_int8_with_calibration_on_8_and_10(version):
    plan = plan_build(version, "fp32", "int8", True)
    assert plan.builder_flags == ("INT8",) and plan.calibrator


def test_implicit_int8_on_tensorrt11_says_quantize():
    with pytest.raises(StereoTrtError, match=r"TensorRT 11.1.0 removed implicit INT8 calibration; run `stereo-trt quantize`"):
        plan_build(DESKTOP11, "fp32", "int8", True)


def test_int8_without_calibration_or_qdq_is_refused():
    with pytest.raises(StereoTrtError, match=r"needs --calibration PAIRS or --calib-cache FILE"):
        plan_build(JETPACK6, "fp32", "int8", False)


# --- FP16-typed ONNX (export --fp16) -------------------------------------------------------

def test_fp16_typed_onnx_on_jetpack5_uses_the_fp16_flag():
    plan = plan_build(JETPACK5, "fp16", None, False)
    assert plan.network_flags == ("EXPLICIT_BATCH",) and plan.builder_flags == ("FP16",)
    assert not plan.strongly_typed


def test_fp16_typed_onnx_on_tensorrt10_is_strongly_typed():
    plan = plan_build(JETPACK6, "fp16", "fp16", False)
    assert plan.network_flags == ("STRONGLY_TYPED",) and plan.builder_flags == () and plan.strongly_typed


def test_fp16_typed_onnx_on_tensorrt11_needs_no_flag():
    plan = plan_build(DESKTOP11, "fp16", "fp16", False)
    assert plan.network_flags == () and plan.builder_flags == ()


@pytest.mark.parametrize("requested", ["fp32", "int8"])
def test_fp16_typed_onnx_cannot_become_another_precision(requested):
    with pytest.raises(StereoTrtError, match="FP16-typed"):
        plan_build(JETPACK6, "fp16", requested, False)


# --- Q/DQ ONNX (quantize) ------------------------------------------------------------------

@pytest.mark.parametrize("version, network, builder", [
    (JETPACK5, ("EXPLICIT_BATCH",), ("INT8",)),
    (JETPACK6, (), ("INT8",)),
    (DESKTOP11, (), ()),
])
def test_qdq_onnx_builds_int8_on_every_version(version, network, builder):
    plan = plan_build(version, "int8", None, False)
    assert (plan.network_flags, plan.builder_flags, plan.calibrator) == (network, builder, False)


def test_qdq_onnx_refuses_calibration():
    with pytest.raises(StereoTrtError, match="already quantized"):
        plan_build(JETPACK6, "int8", "int8", True)


def test_qdq_onnx_refuses_fp16():
    with pytest.raises(StereoTrtError, match="Q/DQ INT8"):
        plan_build(JETPACK6, "int8", "fp16", False)


def test_calibration_with_fp16_is_refused_rather_than_ignored():
    with pytest.raises(StereoTrtError, match="apply to --precision int8 only"):
        plan_build(JETPACK6, "fp32", "fp16", True)


def test_tensorrt_older_than_8_5_is_refused():
    with pytest.raises(StereoTrtError, match="older than 8.5"):
        plan_build("8.4.1", "fp32", "fp32", False)


def test_unknown_precision_names_the_option():
    with pytest.raises(InputError, match="--precision 'bf16'"):
        plan_build(JETPACK6, "fp32", "bf16", False)


def test_opt_level_on_jetpack5_is_refused_not_dropped():
    with pytest.raises(StereoTrtError, match=r"--opt-level needs TensorRT 8.6 or newer; this is TensorRT 8.5.2"):
        require_feature(JETPACK5, "builder_optimization_level", "--opt-level")
    require_feature(JETPACK6, "builder_optimization_level", "--opt-level")


def test_plan_records_as_plain_json():
    record = plan_build(JETPACK6, "fp32", "fp16", False).as_dict()
    assert record["builder_flags"] == ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
    assert record["trt_version"] == "10.3.0"
