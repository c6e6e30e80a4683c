"""Build a TensorRT engine from one of the toolkit's ONNX models, on the device that will run it.

The pipeline is a row of small steps, each named for what it turns into what:
``BuildConfig.validate`` -> ``read_stereo_metadata`` -> ``plan_build`` (version policy) ->
``create_network`` -> ``parse_onnx`` -> ``configure`` (flags, workspace, optimization level,
profiles, calibrator, timing cache, progress) -> ``serialize_network`` -> ``engine_layer_summary``
-> ``write_engine`` (engine + sidecar, atomically). Everything that can be refused is refused
before TensorRT starts building (minutes on a Jetson) or calibrating.

Runtime module: stays valid on Python 3.8 (JetPack 5), where engines are built on the device.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from toolkit import calib_cache
from toolkit.errors import CheckFailed, InputError, ModelError, StereoTrtError
from toolkit.onnx_meta import read_stereo_metadata
from toolkit.outputs import check_output_file
from toolkit.preprocess import INPUT_NAMES, PAD_MULTIPLE, check_network_size, prepare_pair
from toolkit.provenance import atomic_path, record, sha256_file, sidecar_path
from toolkit.trt import cuda_mem
from toolkit.trt.deps import import_tensorrt
from toolkit.trt.inspect import engine_layer_summary
from toolkit.trt.sidecar import (
    ENGINE_FORMAT,
    DeviceIdentity,
    default_calib_cache_path,
    default_engine_path,
    default_timing_cache_path,
)
from toolkit.trt.versions import PRECISIONS, BuildPlan, TrtVersion, plan_build, require_feature, supports

OUTPUT_NAME = "disparity"
ENGINE_SUFFIXES = (".engine", ".plan")
OPT_LEVELS = range(0, 6)


@dataclass(frozen=True)
class ProfileSpec:
    """One optimization profile for a dynamic-shape ONNX: (H, W) of min, opt and max, multiples of 32."""

    min_hw: tuple
    opt_hw: tuple
    max_hw: tuple

    @classmethod
    def parse(cls, text: str) -> "ProfileSpec":
        """``"256x320:480x640:736x1280"`` (min:opt:max) or ``"480x640"`` (one size).

        Raises:
            InputError: malformed text, sizes not multiples of 32, or not min <= opt <= max.
        """
        parts = text.lower().split(":")
        if len(parts) not in (1, 3):
            raise InputError(f"--profile {text!r}: expected MIN:OPT:MAX sizes, for example 256x320:480x640:736x1280")
        try:
            sizes = [tuple(int(v) for v in part.split("x")) for part in parts]
        except ValueError:
            raise InputError(f"--profile {text!r}: sizes are HxW, for example 480x640") from None
        if any(len(size) != 2 for size in sizes):
            raise InputError(f"--profile {text!r}: sizes are HxW, for example 480x640")
        spec = cls(*(sizes * 3 if len(sizes) == 1 else sizes))
        spec.validate(f"--profile {text}")
        return spec

    @classmethod
    def from_metadata(cls, dynamic: dict) -> "ProfileSpec":
        return cls(tuple(dynamic["min"]), tuple(dynamic["opt"]), tuple(dynamic["max"]))

    def validate(self, what: str) -> None:
        for size in (self.min_hw, self.opt_hw, self.max_hw):
            check_network_size(tuple(size), what)
        if not all(self.min_hw[i] <= self.opt_hw[i] <= self.max_hw[i] for i in (0, 1)):
            raise InputError(f"{what}: expected min <= opt <= max in both height and width")

    def shapes(self) -> tuple:
        """(min, opt, max) NCHW shapes of one input."""
        return tuple((1, 3, int(h), int(w)) for h, w in (self.min_hw, self.opt_hw, self.max_hw))

    def as_dict(self) -> dict:
        return {"min": list(self.min_hw), "opt": list(self.opt_hw), "max": list(self.max_hw)}


@dataclass(frozen=True)
class BuildConfig:
    """Everything one build needs; None means "the default" (documented per field).

    Attributes:
        onnx_path: ONNX written by ``stereo-trt export`` or ``quantize``.
        precision: "fp32", "fp16" or "int8"; None = the ONNX's own precision.
        out: engine path (.engine or .plan); None = ``engines/<stem>_<precision>_<device>.engine``.
        calibration: stereo pairs (objects with ``left``/``right`` image paths) for implicit INT8.
        calib_cache: legacy calibration cache to read, and to write after calibrating; None =
            ``calibration/<stem>_trt<version>.cache`` when calibrating.
        calibration_limit: use at most this many pairs; None = all.
        calibration_hw: the (H, W) a calibration manifest was prepared for; the build refuses to
            calibrate at another size. None = not fixed.
        workspace_mb: builder workspace limit; None = TensorRT's default (the device's memory).
        opt_level: builder optimization level 0-5 (TensorRT 8.6+); None = TensorRT's default (3).
        timing_cache: timing cache file; None = one per device next to the engine.
        reuse_timing_cache: read and update the timing cache (False: build without one).
        profiles: optimization profiles for a dynamic ONNX; None = the ONNX metadata's range.
        engines_dir: where default engine names go.
        verbose: TensorRT's verbose log.
    """

    onnx_path: Path
    precision: str | None = None
    out: Path | None = None
    calibration: tuple = ()
    calib_cache: Path | None = None
    calibration_limit: int | None = None
    calibration_hw: tuple | None = None
    workspace_mb: int | None = None
    opt_level: int | None = None
    timing_cache: Path | None = None
    reuse_timing_cache: bool = True
    profiles: tuple | None = None
    engines_dir: Path = Path("engines")
    verbose: bool = False

    def validate(self) -> None:
        """Check every option that needs neither TensorRT nor a GPU.

        Raises:
            InputError: naming the option or file at fault.
        """
        if not Path(self.onnx_path).is_file():
            raise InputError(f"{self.onnx_path}: no such ONNX file; expected one written by `stereo-trt export`")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InputError(f"--precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        if self.out is not None:
            check_output_file(self.out, "--out", suffixes=ENGINE_SUFFIXES, inputs=[self.onnx_path])
        if self.timing_cache is not None and self.reuse_timing_cache:
            check_output_file(self.timing_cache, "--timing-cache", inputs=[self.onnx_path, self.out])
        if self.calib_cache is not None and self.calibration:
            check_output_file(self.calib_cache, "--calib-cache", inputs=[self.onnx_path, self.out])
        if self.workspace_mb is not None and self.workspace_mb <= 0:
            raise InputError(f"--workspace {self.workspace_mb}: expected a positive number of MiB")
        if self.opt_level is not None and self.opt_level not in OPT_LEVELS:
            raise InputError(f"--opt-level {self.opt_level}: expected 0 to 5")
        if self.calibration_limit is not None and self.calibration_limit <= 0:
            raise InputError(f"--calib-limit {self.calibration_limit}: expected a positive number of pairs")
        if self.calib_cache is not None and not self.calibration and not Path(self.calib_cache).is_file():
            raise InputError(f"--calib-cache {self.calib_cache}: no such file, and no --calibration pairs to create it")
        for profile in self.profiles or ():
            profile.validate("--profile")

    @property
    def has_calibration(self) -> bool:
        return bool(self.calibration) or (self.calib_cache is not None and Path(self.calib_cache).is_file())


@dataclass
class BuildResult:
    """What a build wrote.

    Attributes:
        engine_path: the engine file.
        sidecar_path: its JSON record.
        sidecar: the record itself.
        plan: the version-dependent build path taken.
        build_seconds: wall time of TensorRT's build (calibration included).
        timing_cache: the timing cache used and updated, or None.
        calib_cache: the calibration cache read or written, or None.
    """

    engine_path: Path
    sidecar_path: Path
    sidecar: dict
    plan: BuildPlan
    build_seconds: float
    timing_cache: Path | None = None
    calib_cache: Path | None = None


@dataclass(frozen=True)
class BuildPaths:
    """Where one build writes: engine, timing cache (or None), calibration cache (or None)."""

    engine: Path
    timing_cache: Path | None
    calib_cache: Path | None


def build_engine(onnx_path: str | os.PathLike, precision: str | None = None, out: str | os.PathLike | None = None,
                 calibration: Sequence = (), calib_cache: str | os.PathLike | None = None,
                 workspace_mb: int | None = None, opt_level: int | None = None,
                 timing_cache: str | os.PathLike | None = None, profiles: Sequence | None = None,
                 on_progress: Callable[[str], None] | None = None, **options) -> BuildResult:
    """Build an engine for this device from an ONNX model; see ``BuildConfig`` for each option.

    Args:
        onnx_path, precision, out, calibration, calib_cache, workspace_mb, opt_level, timing_cache:
            as in ``BuildConfig``.
        profiles: ``ProfileSpec`` objects or "MIN:OPT:MAX" strings.
        on_progress: called with one-line progress messages.
        **options: the other ``BuildConfig`` fields (calibration_limit, reuse_timing_cache,
            engines_dir, verbose).

    Returns:
        BuildResult.

    Raises:
        InputError / ModelError: bad options or model; DependencyError: TensorRT, pycuda or
        cuda-python missing; StereoTrtError: a precision this TensorRT cannot build;
        CheckFailed: TensorRT failed to build.
    """
    specs = None if profiles is None else tuple(
        p if isinstance(p, ProfileSpec) else ProfileSpec.parse(p) for p in profiles
    )
    config = BuildConfig(
        Path(onnx_path), precision, None if out is None else Path(out), tuple(calibration),
        None if calib_cache is None else Path(calib_cache), workspace_mb=workspace_mb, opt_level=opt_level,
        timing_cache=None if timing_cache is None else Path(timing_cache), profiles=specs, **options,
    )
    return run_build(config, on_progress or (lambda message: None))


def run_build(config: BuildConfig, on_progress: Callable[[str], None]) -> BuildResult:
    """The pipeline: validate, plan, then build (see the module docstring)."""
    config.validate()
    meta = read_stereo_metadata(config.onnx_path)
    profiles = resolve_profiles(meta, config.profiles, config.onnx_path)
    trt = import_tensorrt()
    cuda = cuda_mem.open_cuda()
    try:
        identity = current_identity(trt, cuda)
        plan = plan_build(trt.__version__, meta.get("precision", "fp32"), config.precision, config.has_calibration)
        if config.opt_level is not None:
            require_feature(trt.__version__, "builder_optimization_level", "--opt-level")
        paths = plan_paths(config, plan, identity)
        read_cache = plan.calibrator and usable_calib_cache(paths.calib_cache, identity, bool(config.calibration), on_progress)
        on_progress(f"TensorRT {identity.tensorrt} on {identity.gpu}: building {plan.precision} "
                    f"from {config.onnx_path.name} ({plan.onnx_precision} ONNX)")
        return build_and_write(trt, cuda, config, meta, plan, profiles, paths, identity, read_cache, on_progress)
    finally:
        cuda.close()


def resolve_profiles(meta: dict, given: tuple | None, onnx_path: Path) -> tuple | None:
    """The profiles to build: given ones, else the metadata's dynamic range, else None (static ONNX).

    Raises:
        InputError: profiles given for an ONNX exported at a fixed size.
    """
    dynamic = meta.get("dynamic")
    if given:
        if not dynamic:
            raise InputError(
                f"{onnx_path}: exported at a fixed size {meta.get('input_hw')}; --profile applies to a dynamic-shape "
                "ONNX (export it with a size range)"
            )
        return given
    if dynamic:
        return (ProfileSpec.from_metadata(dynamic),)
    return None


def current_identity(trt, cuda) -> DeviceIdentity:
    """This machine's TensorRT version and GPU, as the sidecar records them."""
    device = cuda.device_info()
    return DeviceIdentity(str(trt.__version__), device.name, device.compute_capability)


def plan_paths(config: BuildConfig, plan: BuildPlan, identity: DeviceIdentity) -> BuildPaths:
    """Engine, timing-cache and calibration-cache paths: given ones, else the per-device defaults."""
    engine = config.out or default_engine_path(config.onnx_path, plan.precision, identity, config.engines_dir)
    timing = None
    if config.reuse_timing_cache:
        timing = config.timing_cache or default_timing_cache_path(engine, identity)
    calib = None
    if plan.calibrator:
        calib = config.calib_cache or default_calib_cache_path(config.onnx_path, identity)
    return BuildPaths(Path(engine), timing, calib)


def usable_calib_cache(path: Path, identity: DeviceIdentity, has_pairs: bool, on_progress) -> bool:
    """Whether TensorRT should read the calibration cache at ``path`` instead of calibrating.

    A legacy cache names the TensorRT version that wrote it and TensorRT ignores one from
    another version, so a mismatch recalibrates (when pairs are given) or is refused.

    Raises:
        InputError: the cache is malformed (via ``toolkit.calib_cache``).
        StereoTrtError: the cache is from another TensorRT version and no pairs were given.
    """
    if not path.is_file():
        return False
    header, _ = calib_cache.read_calibration_cache(path)
    written = calib_cache.header_version(header)
    expected = calib_cache.trt_version_code(str(TrtVersion.parse(identity.tensorrt)))
    if written == expected:
        on_progress(f"using calibration cache {path}")
        return True
    if has_pairs:
        on_progress(f"{path} is from TensorRT version code {written}, not {expected}: recalibrating and rewriting it")
        return False
    raise StereoTrtError(
        f"{path}: calibration cache written by TensorRT version code {written}, this is TensorRT {identity.tensorrt} "
        f"({expected}), which ignores it; recalibrate with --calibration PAIRS"
    )


def build_and_write(trt, cuda, config, meta, plan, profiles, paths, identity, read_cache, on_progress) -> BuildResult:
    """The slow part: parse, configure, build, inspect, write."""
    logger = trt.Logger(trt.Logger.VERBOSE if config.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = create_network(trt, builder, plan)
    parser = parse_onnx(trt, network, logger, config.onnx_path)
    input_shapes = check_network_io(network, config.onnx_path, profiles)
    builder_config = configure(trt, builder, network, plan, config, on_progress)
    profile_objects = add_profiles(trt, builder, builder_config, profiles)
    calibrator = None
    if plan.calibrator:
        size = calibration_size(input_shapes, profiles)
        check_calibration_hw(config.calibration_hw, size)
        calibrator = attach_calibrator(trt, cuda, builder_config, config, paths.calib_cache, read_cache,
                                       size, profile_objects, on_progress)
    if paths.timing_cache is not None:
        attach_timing_cache(builder_config, paths.timing_cache, on_progress)
    # TensorRT holds only raw pointers to the monitor and the parser's weights: both must
    # outlive the build, which these locals guarantee.
    monitor = attach_progress_monitor(trt, builder_config, on_progress) \
        if supports(trt.__version__, "progress_monitor") else None
    start = time.perf_counter()
    try:
        serialized = serialize_network(builder, network, builder_config, config.onnx_path)
    finally:
        if calibrator is not None:
            calibrator.free()
            calibrator.raise_error()
    seconds = time.perf_counter() - start
    del monitor, parser
    if paths.timing_cache is not None:
        save_timing_cache(builder_config, paths.timing_cache)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(serialized)
    summary = engine_layer_summary(engine, trt, plan.precision) if engine is not None else None
    sidecar = make_sidecar(config, meta, plan, profiles, paths, identity, seconds, summary, network)
    write_engine(paths.engine, serialized, sidecar)
    on_progress(f"wrote {paths.engine} ({seconds:.0f} s)")
    return BuildResult(paths.engine, sidecar_path(paths.engine), sidecar, plan, seconds,
                       paths.timing_cache, paths.calib_cache)


def create_network(trt, builder, plan: BuildPlan):
    """An empty network with the plan's creation flags (EXPLICIT_BATCH on 8.x, STRONGLY_TYPED ...)."""
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    return builder.create_network(flags)


def parse_onnx(trt, network, logger, onnx_path: Path):
    """Fill ``network`` from the ONNX file (external weights beside it are found by path).

    Raises:
        ModelError: with the parser's first error.
    """
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        first = " ".join(errors[0].split()) if errors else "no detail given"
        raise ModelError(f"{onnx_path}: TensorRT's ONNX parser refused it: {first}{more}")
    return parser


def check_network_io(network, onnx_path: Path, profiles: tuple | None) -> dict:
    """Check the parsed network against the input contract; return {input name: shape}.

    Raises:
        ModelError: other inputs than left/right, no disparity output, or a dynamic shape
            without a profile (and the reverse).
    """
    shapes = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if sorted(shapes) != sorted(INPUT_NAMES) or OUTPUT_NAME not in outputs:
        raise ModelError(
            f"{onnx_path}: inputs {sorted(shapes)} and outputs {outputs}; expected inputs left, right and a "
            f"'{OUTPUT_NAME}' output (a model from `stereo-trt export`)"
        )
    dynamic = any(dim < 0 for shape in shapes.values() for dim in shape)
    if dynamic and not profiles:
        raise ModelError(f"{onnx_path}: dynamic input shapes but no size range in its metadata; pass --profile MIN:OPT:MAX")
    if profiles and not dynamic:
        raise ModelError(f"{onnx_path}: its inputs have fixed shapes {shapes['left']}; drop --profile")
    return shapes


def configure(trt, builder, network, plan: BuildPlan, config: BuildConfig, on_progress):
    """A builder config carrying the plan's flags and the build options."""
    builder_config = builder.create_builder_config()
    for name in plan.builder_flags:
        builder_config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.cleared_flags:
        builder_config.clear_flag(getattr(trt.BuilderFlag, name))
    if plan.pin_fp32_layers:
        count = pin_fp32_layers(trt, network)
        on_progress(f"kept {count} softmax/reduce layer(s) in FP32")
    if config.workspace_mb is not None:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_mb) << 20)
    if config.opt_level is not None:
        builder_config.builder_optimization_level = int(config.opt_level)
    # DETAILED lets the engine inspector report each layer's precision for the sidecar.
    builder_config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    return builder_config


def pin_fp32_layers(trt, network) -> int:
    """Ask for FP32 in softmax and reduce layers (disparity softmax, correlation means) under the FP16 flag.

    Only floating-point outputs are pinned: a reduce over an integer shape tensor keeps its type.
    """
    kinds = (trt.LayerType.SOFTMAX, trt.LayerType.REDUCE)
    floating = (trt.float32, trt.float16)
    count = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if layer.type not in kinds:
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not all(tensor.dtype in floating for tensor in outputs):
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        count += 1
    return count


def add_profiles(trt, builder, builder_config, profiles: tuple | None) -> list:
    """One optimization profile per ProfileSpec, the same range for left and right."""
    objects = []
    for spec in profiles or ():
        profile = builder.create_optimization_profile()
        for name in INPUT_NAMES:
            profile.set_shape(name, *spec.shapes())
        builder_config.add_optimization_profile(profile)
        objects.append(profile)
    return objects


def calibration_size(input_shapes: dict, profiles: tuple | None) -> tuple:
    """The (H, W) calibration runs at: the fixed input size, or the first profile's opt size."""
    if profiles:
        return tuple(profiles[0].opt_hw)
    shape = input_shapes["left"]
    return int(shape[2]), int(shape[3])


def check_calibration_hw(prepared_hw: tuple | None, size: tuple) -> None:
    """Refuse to calibrate at another size than the calibration manifest was prepared for.

    Raises:
        InputError: naming both sizes.
    """
    if prepared_hw is not None and tuple(prepared_hw) != tuple(size):
        raise InputError(
            f"--calibration: the manifest prepares pairs at {prepared_hw[0]}x{prepared_hw[1]} but this engine "
            f"calibrates at {size[0]}x{size[1]}; write a manifest for that size"
        )


def calibration_feeds(pairs: Sequence, size: tuple, limit: int | None) -> Iterator[dict]:
    """Feed dicts for the calibrator, decoded and preprocessed one pair at a time."""
    from toolkit.data import io

    for pair in list(pairs)[:limit]:
        yield prepare_pair(io.read_image(pair.left), io.read_image(pair.right), size).feed


def attach_calibrator(trt, cuda, builder_config, config, cache_path, read_cache, size, profile_objects, on_progress):
    """Attach an entropy calibrator (TensorRT <= 10) reading/writing ``cache_path``."""
    from toolkit.trt.calibrator import create_entropy_calibrator

    count = len(config.calibration[: config.calibration_limit])
    feeds = calibration_feeds(config.calibration, size, config.calibration_limit)
    if not read_cache:
        on_progress(f"calibrating INT8 on {count} pair(s) at {size[0]}x{size[1]}; cache -> {cache_path}")
    calibrator = create_entropy_calibrator(
        trt, feeds, cuda, cache_path, read_cache, on_batch=lambda n: on_progress(f"calibration batch {n}/{count}")
    )
    builder_config.int8_calibrator = calibrator
    if profile_objects:
        # A dynamic network calibrates at one profile's opt shape, which must be named.
        builder_config.set_calibration_profile(profile_objects[0])
    return calibrator


def attach_timing_cache(builder_config, path: Path, on_progress) -> None:
    """Load the device's timing cache (or start one): later builds skip most kernel timing."""
    data = path.read_bytes() if path.is_file() else b""
    cache = builder_config.create_timing_cache(data)
    # set_timing_cache takes a reference: a None (unreadable blob) must not reach it.
    if cache is None or not builder_config.set_timing_cache(cache, False):
        on_progress(f"{path} does not match this device; starting a new timing cache there")
        builder_config.set_timing_cache(builder_config.create_timing_cache(b""), False)
    elif data:
        on_progress(f"reusing timing cache {path}")


def save_timing_cache(builder_config, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(builder_config.get_timing_cache().serialize()))


def attach_progress_monitor(trt, builder_config, on_progress):
    """Report top-level build phases through ``on_progress`` (TensorRT 10.0+)."""

    class PhaseReporter(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                on_progress(f"{phase_name} ({num_steps} step{'s' if num_steps != 1 else ''})")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            """Nothing to report: the next phase_start says where the build is."""

    monitor = PhaseReporter()
    builder_config.progress_monitor = monitor
    return monitor


def serialize_network(builder, network, builder_config, onnx_path: Path):
    """Run TensorRT's build (and calibration).

    Raises:
        CheckFailed: TensorRT returned no engine.
    """
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        raise CheckFailed(f"TensorRT could not build an engine from {onnx_path}; rerun with --verbose to see its log")
    return serialized


def make_sidecar(config, meta, plan, profiles, paths, identity, seconds, summary, network) -> dict:
    """The engine's provenance record (see ``toolkit.trt.sidecar``)."""
    return record(
        format=ENGINE_FORMAT,
        engine=paths.engine.name,
        tensorrt=identity.tensorrt,
        gpu={"name": identity.gpu, "compute_capability": identity.compute_capability},
        precision=plan.precision,
        input_hw=meta.get("input_hw"),
        profiles=None if not profiles else [p.as_dict() for p in profiles],
        inputs=list(INPUT_NAMES),
        outputs=[network.get_output(i).name for i in range(network.num_outputs)],
        onnx={"path": str(config.onnx_path), "sha256": sha256_file(config.onnx_path), "metadata": meta},
        build={
            "seconds": round(seconds, 1),
            "plan": plan.as_dict(),
            "workspace_mb": config.workspace_mb,
            "opt_level": config.opt_level,
            "timing_cache": None if paths.timing_cache is None else str(paths.timing_cache),
        },
        calibration=None if not plan.calibrator else {
            "cache": str(paths.calib_cache),
            "pairs": len(config.calibration[: config.calibration_limit]),
            "pad_multiple": PAD_MULTIPLE,
        },
        layer_precision=summary,
    )


def write_engine(engine_path: Path, serialized, sidecar: dict) -> None:
    """Write engine and sidecar through temporary files; neither appears unless both were written."""
    with atomic_path(engine_path) as engine_tmp, atomic_path(sidecar_path(engine_path)) as sidecar_tmp:
        with open(engine_tmp, "wb") as handle:
            handle.write(serialized)
        sidecar["engine_sha256"] = sha256_file(engine_tmp)
        sidecar_tmp.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")


def resolve_calibration_pairs(spec: str | os.PathLike) -> tuple:
    """Calibration pairs and the size they were prepared for.

    Args:
        spec: a calibration manifest ``.json`` (``toolkit.data.instereo2k.write_manifest``), or
            anything ``discover_pairs`` accepts (a folder of pairs, a glob of left images).

    Returns:
        (pairs with ``name``/``left``/``right``, (H, W) from the manifest or None).

    Raises:
        InputError: nothing usable found.
    """
    from toolkit.data.pairs import StereoPair, discover_pairs
    from toolkit.preprocess import parse_size

    path = Path(spec)
    if path.is_file() and path.suffix.lower() == ".json":
        from toolkit.data.instereo2k import read_manifest

        manifest = read_manifest(path)
        pairs = [StereoPair(s.name, s.left_path, s.right_path) for s in manifest.calibration_samples()]
        size = parse_size(manifest.size) if manifest.size else None
    else:
        pairs, size = list(discover_pairs(str(spec))), None
    if not pairs:
        raise InputError(f"--calibration {spec}: no stereo pairs found")
    return pairs, size
