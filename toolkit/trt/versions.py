"""Which build path each TensorRT version takes: pure Python, decided before anything slow.

TensorRT's build API moved twice under this toolkit's targets:

- 8.5 (JetPack 5): networks need ``EXPLICIT_BATCH``; precision comes from builder flags
  (``FP16``, ``INT8``); implicit INT8 through ``IInt8EntropyCalibrator2``; no builder
  optimization level (8.6+), no ``IProgressMonitor`` (10.0+), no ``STRONGLY_TYPED`` (10.0+).
- 10.x (JetPack 6.1/6.2 ship 10.3; desktop): ``EXPLICIT_BATCH`` is ignored, ``STRONGLY_TYPED``
  exists, the flags and calibrators still work (calibrators deprecated since 10.1).
- 11.x (desktop only): every network is strongly typed; ``BuilderFlag.FP16/INT8``, the
  calibrators, ``int8_calibrator`` and per-layer precision are gone, so precision comes from the
  ONNX itself: an FP16-typed graph (``export --fp16``) or Q/DQ nodes (``quantize``).

Each entry of ``FEATURES`` was checked against the Python bindings source of every release
(NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` on release/8.5 ... release/11.1); the
table with sources is docs/tensorrt_api.md.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from toolkit.errors import InputError, StereoTrtError

PRECISIONS = ("fp32", "fp16", "int8")
OLDEST_SUPPORTED = (8, 5)


@dataclass(frozen=True, order=True)
class TrtVersion:
    """A TensorRT version, compared numerically (``TrtVersion(10, 3) > TrtVersion(8, 6)``)."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "TrtVersion":
        """Parse ``tensorrt.__version__`` ("8.5.2.2", "10.3.0", "11.1.0.4").

        Raises:
            InputError: the text does not start with major.minor.
        """
        match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", str(text))
        if not match:
            raise InputError(f"TensorRT version {text!r}: expected major.minor[.patch], for example 10.3.0")
        major, minor, patch = match.groups()
        return cls(int(major), int(minor), int(patch or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def at_least(self, major: int, minor: int = 0) -> bool:
        return (self.major, self.minor) >= (major, minor)


# feature -> (first version that has it, first version that no longer has it); None = open end.
FEATURES = {
    # NetworkDefinitionCreationFlag.EXPLICIT_BATCH: required before 10, ignored in 10.x, removed in 11.
    "explicit_batch_flag": (None, (11, 0)),
    # NetworkDefinitionCreationFlag.STRONGLY_TYPED (always on, flag deprecated, in 11).
    "strongly_typed_flag": ((10, 0), None),
    # BuilderFlag.FP16 / BuilderFlag.INT8.
    "precision_flags": (None, (11, 0)),
    # IInt8EntropyCalibrator2, IBuilderConfig.int8_calibrator / set_calibration_profile.
    "int8_calibrator": (None, (11, 0)),
    # ILayer.precision / set_output_type and BuilderFlag.OBEY_PRECISION_CONSTRAINTS.
    "precision_constraints": (None, (11, 0)),
    # IBuilderConfig.builder_optimization_level.
    "builder_optimization_level": ((8, 6), None),
    # IProgressMonitor and IBuilderConfig.progress_monitor.
    "progress_monitor": ((10, 0), None),
}


def as_version(version) -> TrtVersion:
    return version if isinstance(version, TrtVersion) else TrtVersion.parse(version)


def supports(version, feature: str) -> bool:
    """Whether TensorRT ``version`` (text or TrtVersion) has ``feature`` (a key of FEATURES)."""
    first, gone = FEATURES[feature]
    v = as_version(version)
    if first is not None and not v.at_least(*first):
        return False
    return gone is None or not v.at_least(*gone)


@dataclass(frozen=True)
class BuildPlan:
    """How one engine gets built: the TensorRT flags by name, decided from versions and precisions.

    Attributes:
        trt_version: TensorRT version the plan is for.
        onnx_precision: what the ONNX carries ("fp32", "fp16" = FP16-typed graph, "int8" = Q/DQ).
        precision: the engine precision asked for.
        network_flags: ``NetworkDefinitionCreationFlag`` members to set.
        builder_flags: ``BuilderFlag`` members to set.
        cleared_flags: ``BuilderFlag`` members to clear (TF32 is on by default; an "fp32" engine
            should compute in FP32, as Polygraphy does).
        calibrator: whether an entropy calibrator (implicit INT8) is attached.
        pin_fp32_layers: keep softmax and reduce layers in FP32 under the FP16 flag (correlation
            accumulation and the disparity softmax overflow in FP16).
        strongly_typed: the network's own types decide precision.
    """

    trt_version: str
    onnx_precision: str
    precision: str
    network_flags: tuple = ()
    builder_flags: tuple = ()
    cleared_flags: tuple = ("TF32",)
    calibrator: bool = False
    pin_fp32_layers: bool = False
    strongly_typed: bool = False

    def as_dict(self) -> dict:
        record = asdict(self)
        for key in ("network_flags", "builder_flags", "cleared_flags"):
            record[key] = list(record[key])
        return record


def plan_build(trt_version, onnx_precision: str, requested_precision: str | None, has_calibration: bool) -> BuildPlan:
    """Decide the build path, or refuse with a message that says what to do instead.

    Args:
        trt_version: ``tensorrt.__version__`` or a TrtVersion.
        onnx_precision: the ONNX's metadata precision: "fp32", "fp16" (``export --fp16``) or
            "int8" (Q/DQ from ``quantize``).
        requested_precision: engine precision asked for; None = the ONNX's own.
        has_calibration: calibration pairs or a calibration cache were given.

    Returns:
        The BuildPlan.

    Raises:
        InputError: an unknown precision name.
        StereoTrtError: a TensorRT older than 8.5, or a combination this version cannot build.
    """
    version = as_version(trt_version)
    if not version.at_least(*OLDEST_SUPPORTED):
        raise StereoTrtError(
            f"TensorRT {version} is older than 8.5 (JetPack 5); the name-based I/O API this toolkit uses needs 8.5 or newer"
        )
    check_precision(onnx_precision, "ONNX metadata precision")
    requested = onnx_precision if requested_precision is None else requested_precision
    check_precision(requested, "--precision")
    if has_calibration and (requested != "int8" or onnx_precision == "int8"):
        raise StereoTrtError(calibration_misuse_message(onnx_precision, requested))
    if onnx_precision == "int8":
        return plan_qdq(version, requested)
    if onnx_precision == "fp16":
        return plan_fp16_typed(version, requested)
    return plan_fp32_onnx(version, requested, has_calibration)


def check_precision(value: str, what: str) -> None:
    if value not in PRECISIONS:
        raise InputError(f"{what} {value!r}: expected one of {', '.join(PRECISIONS)}")


def calibration_misuse_message(onnx_precision: str, requested: str) -> str:
    if onnx_precision == "int8":
        return "this ONNX is already quantized (Q/DQ scales inside); drop --calibration / --calib-cache"
    return f"--calibration / --calib-cache apply to --precision int8 only, not {requested}"


def strongly_typed_only(version: TrtVersion) -> bool:
    return not supports(version, "precision_flags")


def base_network_flags(version: TrtVersion) -> tuple:
    """EXPLICIT_BATCH where TensorRT still needs it (before 10)."""
    return ("EXPLICIT_BATCH",) if version.major < 10 else ()


def plan(version: TrtVersion, onnx_precision: str, precision: str, **fields) -> BuildPlan:
    return BuildPlan(trt_version=str(version), onnx_precision=onnx_precision, precision=precision, **fields)


def plan_fp32_onnx(version: TrtVersion, requested: str, has_calibration: bool) -> BuildPlan:
    """An FP32 ONNX: FP32 as is; FP16 / implicit INT8 through builder flags up to 10.x."""
    strong = strongly_typed_only(version)
    flags = base_network_flags(version)
    if requested == "fp32":
        return plan(version, "fp32", "fp32", network_flags=flags, strongly_typed=strong)
    if requested == "fp16":
        if strong:
            raise StereoTrtError(
                f"TensorRT {version} builds strongly typed networks only (no FP16 builder flag): "
                "export an FP16-typed ONNX with `stereo-trt export --fp16` and build that"
            )
        return plan(version, "fp32", "fp16", network_flags=flags,
                    builder_flags=("FP16", "OBEY_PRECISION_CONSTRAINTS"), pin_fp32_layers=True)
    if strong:
        raise StereoTrtError(
            f"TensorRT {version} removed implicit INT8 calibration; run `stereo-trt quantize` and build the Q/DQ ONNX"
        )
    if not has_calibration:
        raise StereoTrtError(
            "--precision int8 on an FP32 ONNX needs --calibration PAIRS or --calib-cache FILE; "
            "or run `stereo-trt quantize` and build the Q/DQ ONNX"
        )
    return plan(version, "fp32", "int8", network_flags=flags, builder_flags=("INT8",), calibrator=True)


def plan_fp16_typed(version: TrtVersion, requested: str) -> BuildPlan:
    """The FP16-typed ONNX of ``export --fp16``: its own types decide where TensorRT supports that."""
    if requested != "fp16":
        raise StereoTrtError(
            f"this ONNX is FP16-typed (`export --fp16`); build it with --precision fp16, or build the FP32 ONNX for {requested}"
        )
    if strongly_typed_only(version):
        return plan(version, "fp16", "fp16", strongly_typed=True)
    if supports(version, "strongly_typed_flag"):
        return plan(version, "fp16", "fp16", network_flags=("STRONGLY_TYPED",), strongly_typed=True)
    # 8.x has no strong typing: the FP16 flag lets the builder honour the graph's FP16 types.
    return plan(version, "fp16", "fp16", network_flags=base_network_flags(version), builder_flags=("FP16",))


def plan_qdq(version: TrtVersion, requested: str) -> BuildPlan:
    """The Q/DQ ONNX of ``quantize``: explicit INT8; weakly typed builds still need the INT8 flag."""
    if requested != "int8":
        raise StereoTrtError(
            f"this ONNX is a Q/DQ INT8 model from `stereo-trt quantize`; build it with --precision int8, "
            f"or build the FP32 ONNX for {requested}"
        )
    if strongly_typed_only(version):
        return plan(version, "int8", "int8", strongly_typed=True)
    return plan(version, "int8", "int8", network_flags=base_network_flags(version), builder_flags=("INT8",))


def require_feature(version, feature: str, option: str) -> None:
    """Refuse an option the running TensorRT lacks, instead of silently dropping it.

    Raises:
        StereoTrtError: naming the option and the version that introduced (or removed) it.
    """
    if supports(version, feature):
        return
    first, gone = FEATURES[feature]
    when = f"TensorRT {first[0]}.{first[1]} or newer" if first and not as_version(version).at_least(*first) \
        else f"TensorRT older than {gone[0]}.{gone[1]}"
    raise StereoTrtError(f"{option} needs {when}; this is TensorRT {as_version(version)}: drop {option}")
