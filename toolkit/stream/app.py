"""``stereo-trt run`` as a function: check the options, build source, runner, rectifier and sinks, run the loop.

Every option is checked before the model loads or a camera opens (a typo should not
cost a TensorRT engine deserialisation), then ``loop.run_stream`` does the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from toolkit.errors import InputError
from toolkit.outputs import check_output_file
from toolkit.ros import bag
from toolkit.stream import clouds, display, loop, sources
from toolkit.stream.rectify import DepthConverter, Rectifier, load_calibration


@dataclass
class RunConfig:
    """The options of ``stereo-trt run`` (see its --help); None means the default."""

    sources: list[str] = field(default_factory=list)
    swap: bool = False
    backend: str | None = None
    model: str | None = None
    size_text: str | None = None
    max_disp: int | None = None
    iters: int | None = None
    threads: int | None = None
    device: str | None = None
    precision: str | None = None
    cuda_graph: bool = False
    calibration: str | None = None
    alpha: float = 0.0
    rectified: bool = False
    depth: bool = False
    focal_px: float | None = None
    baseline: float | None = None
    range_text: str | None = None
    min_confidence: float | None = None
    lr_check: bool = False
    mask_invalid: bool = True
    save: str | None = None
    headless: bool = False
    serve_port: int | None = None
    host: str = "127.0.0.1"
    status_every: float = 2.0
    camera_size: str | None = None
    fps: float | None = None
    fourcc: str | None = None
    latest_frame_wins: bool | None = None
    max_frames: int | None = None
    left_topic: str | None = None
    right_topic: str | None = None
    slop: float | None = None
    record_bag: str | None = None
    ply_dir: str | None = None
    ply_every: int | None = None  # None: clouds.DEFAULT_PLY_EVERY
    min_depth: float | None = None
    max_depth: float | None = None
    engines_dir: str = "engines"


def parse_range(text: str | None) -> tuple[float, float] | None:
    """``"0.5,8"`` -> (0.5, 8.0).

    Raises:
        InputError: not two numbers with LOW < HIGH.
    """
    if not text:
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--range {text!r}: expected LOW,HIGH, for example 0,128 or 0.5,8") from None
    if not low < high:
        raise InputError(f"--range {text!r}: LOW must be below HIGH")
    return low, high


def parse_camera_size(text: str | None) -> tuple[int, int] | None:
    """``"2560x720"`` -> (2560, 720), width first as camera modes are written.

    Raises:
        InputError: not WxH with positive numbers.
    """
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise InputError(f"--camera-size {text!r}: expected WIDTHxHEIGHT, for example 1280x720")
    return int(match.group(1)), int(match.group(2))


def build_geometry(config: RunConfig, plan=None) -> tuple[Rectifier | None, DepthConverter | None]:
    """The rectifier (from --calibration, else a bag's camera_info) and the depth converter
    (from Q, or --focal-px/--baseline).

    Args:
        plan: the ``toolkit.ros.bag.BagPlan`` of a bag source, or None.

    Raises:
        InputError: neither or both of --calibration / --rectified (a bag's camera_info stands
            in for --calibration), --depth without what it needs, --focal-px/--baseline
            beside a calibration or camera_info.
    """
    if config.calibration and config.rectified:
        raise InputError("--calibration and --rectified exclude each other: a calibration rectifies raw frames")
    infos = plan.camera_infos if plan is not None else None
    if not config.calibration and not config.rectified and infos is None:
        if plan is not None:
            found = (f"uncalibrated camera_info (K or P is zero) for {plan.left} and {plan.right} in the bag"
                     if plan.uncalibrated else
                     f"no camera_info for {plan.left} and {plan.right} in the bag (looked in their namespaces)")
            raise InputError(f"--source {plan.path}: {found}; give --calibration FILE, or --rectified with "
                             "--focal-px/--baseline for rectified images")
        raise InputError("give --calibration FILE to rectify raw camera frames, or --rectified when the source "
                         "already delivers rectified pairs (stereo matching needs rectified input)")
    if (config.focal_px is None) != (config.baseline is None):
        raise InputError("--focal-px and --baseline go together")
    rectifier = None
    if config.calibration:
        rectifier = Rectifier(load_calibration(config.calibration), config.alpha)
    elif infos is not None:
        from toolkit.ros.camera_info import CameraInfoRectifier

        # With --rectified the image topics are rectified already; camera_info still gives the geometry.
        rectifier = CameraInfoRectifier(*infos, topics=plan.info_topics, remap=not config.rectified)
    if rectifier is not None and config.focal_px is not None:
        # One geometry for the view, the bag and the clouds: never a second one silently ignored.
        origin = "--calibration" if config.calibration else f"the camera_info of {plan.left} and {plan.right}"
        raise InputError(f"--focal-px/--baseline: the geometry already comes from {origin}; give one or the other")
    if not config.depth:
        return rectifier, None
    if config.focal_px is not None:
        return rectifier, DepthConverter.from_focal_baseline(config.focal_px, config.baseline)
    if rectifier is None:
        raise InputError("--depth needs --calibration, or --focal-px and --baseline for a rectified source")
    return rectifier, rectifier.depth_converter()


def runner_spec(config: RunConfig, echo: Callable[[str], None] = print):
    """The ``RunnerSpec`` of the run: SGBM for --backend sgbm, --model when given, else the
    built-in student on the best backend here (``builtin_spec``).

    Raises:
        InputError: --backend trt/onnx without --model.
    """
    from toolkit.backends import RunnerSpec
    from toolkit.preprocess import parse_size

    if config.model is None and config.backend in (None, "torch"):
        return builtin_spec(config, echo)
    if config.backend != "sgbm" and not config.model:
        raise InputError("give --model (a TensorRT .engine, an .onnx or a .pth checkpoint), "
                         "or --backend sgbm to run without a network")
    return RunnerSpec(model=config.model or "sgbm", backend=config.backend, device=config.device,
                      precision=config.precision, cuda_graph=config.cuda_graph, size=parse_size(config.size_text),
                      threads=config.threads, iters=config.iters, max_disp=config.max_disp, lr_check=config.lr_check)


def builtin_spec(config: RunConfig, echo: Callable[[str], None]):
    """No --model: the built-in student on the best backend here (TensorRT, else PyTorch on CUDA
    in FP16 + CUDA graph, else ONNX Runtime on CUDA, else on the CPU), said in one line.

    The ONNX (and engine) is made once under ``engines_dir`` at --size (default 480x640) and
    reused; --backend torch keeps the checkpoint.

    Raises:
        DependencyError: --device asks for CUDA no backend can use here.
    """
    from toolkit import demo, paths
    from toolkit.backends import check_spec
    from toolkit.backends import choice as backend_choice
    from toolkit.backends.choice import BackendChoice
    from toolkit.preprocess import parse_size

    if config.backend == "torch":
        gpu = (config.device or "cpu") != "cpu"
        choice = BackendChoice("torch", config.device or "cpu", "fp16" if gpu else None, gpu,
                               f"--backend torch on {config.device or 'cpu'}")
    else:
        choice = backend_choice.choose_backend(config.device)
    size = parse_size(config.size_text) or demo.DEMO_SIZE
    echo(f"no --model: the built-in student on {choice.backend} ({choice.device}): {choice.reason}")
    choice = BackendChoice(choice.backend, choice.device, config.precision or choice.precision,
                           config.cuda_graph or choice.cuda_graph, choice.reason)
    options = {"threads": config.threads, "iters": config.iters, "max_disp": config.max_disp,
               "lr_check": config.lr_check}
    check_spec(demo.choice_spec(choice, paths.BUILTIN_CHECKPOINT, size, **options))  # before any export
    return demo.choice_spec(choice, paths.BUILTIN_CHECKPOINT, size, engines_dir=config.engines_dir, log=echo,
                            **options)


def build_runner(config: RunConfig, echo: Callable[[str], None] = print):
    """The (inactive) runner of the run, from ``open_runner``: the device is checked before any model loads.

    Raises:
        InputError: no --model for --backend trt/onnx, options the backend cannot use.
        DependencyError: --device asks for CUDA this machine cannot give.
    """
    from toolkit.backends import open_runner

    return open_runner(runner_spec(config, echo))


def wants_window(config: RunConfig) -> bool:
    """A window unless --headless, and only where a display and an OpenCV GUI exist."""
    return not config.headless and display.has_display() and display.gui_available()


def build_sinks(config: RunConfig, fps, fields: dict, echo: Callable[[str], None]) -> list:
    """Recorder (--save), MJPEG server (--serve) and window (see ``wants_window``).

    Args:
        config: the run's options.
        fps: frame rate for the recording, or a function returning it (see ``VideoRecorder``).
        fields: provenance fields for the recording's sidecar.
        echo: where notes go.
    """
    from toolkit.stream.record import VideoRecorder
    from toolkit.stream.serve import MjpegServer

    sinks = []
    if config.save:
        sinks.append(VideoRecorder(config.save, fps, fields))
    if config.serve_port is not None:
        try:
            server = MjpegServer(config.serve_port, config.host).start()
        except Exception:
            for sink in sinks:
                sink.close()
            raise
        echo(f"serving the view at {server.url}")
        sinks.append(server)
    if wants_window(config):
        sinks.append(display.Window())
        echo("press q in the window to stop")
    elif not config.headless:
        echo("no display (or no OpenCV GUI): running headless; use --save or --serve to see the output")
    return sinks


def run(config: RunConfig, echo: Callable[[str], None] = print) -> loop.Summary:
    """Run ``stereo-trt run`` with ``config``; returns the loop's summary.

    Raises:
        StereoTrtError: a bad option, a source that does not open, a model that does not load.
    """
    for text in config.sources:
        sources.parse_source(text)  # a missing file is named before any option that depends on it
    if config.save:
        from toolkit.stream.record import FOURCC_BY_SUFFIX

        check_output_file(config.save, "--save", suffixes=sorted(FOURCC_BY_SUFFIX),
                          inputs=[*config.sources, config.model, config.calibration])
    camera_size = parse_camera_size(config.camera_size)
    value_range = parse_range(config.range_text)
    clouds.check_outputs(config)
    plan = bag.plan_for(config)
    rectifier, depth = build_geometry(config, plan)
    q_for = clouds.geometry(config, rectifier)
    if config.fourcc is not None and len(config.fourcc) != 4:
        raise InputError(f"--fourcc {config.fourcc!r}: expected four characters, for example MJPG or YUYV")
    camera = sources.CameraSettings(*(camera_size or (None, None)), fps=config.fps, fourcc=config.fourcc)
    if plan is not None:
        source = bag.BagSource(plan, tolerance_s=config.slop)  # --swap already swapped the plan's topics
    else:
        source = sources.open_source(config.sources, config.swap, camera)  # checks paths, opens nothing
    runner = build_runner(config, echo)
    headless = not wants_window(config)
    options = loop.StreamOptions(
        rectifier=rectifier, depth=depth, value_range=value_range, min_confidence=config.min_confidence,
        mask_invalid=config.mask_invalid, latest_frame_wins=config.latest_frame_wins, max_frames=config.max_frames,
        status_every_s=config.status_every if headless else None, on_status=echo)
    fields = {"source": config.sources, "backend": runner.name, "model": config.model, "device": runner.device,
              "precision": runner.precision,
              "calibration": config.calibration, "view": "depth" if depth else "disparity"}
    if plan is not None:
        fields.update(left_topic=plan.left, right_topic=plan.right, camera_info=plan.info_topics)
    writers = clouds.result_writers(config, q_for, fields)
    if writers:
        options.on_result = clouds.write_to_all(writers)
    # The recording plays at --fps, else at the rate the open source reports (a file's, a camera's).
    sinks = build_sinks(config, config.fps or (lambda: source.fps), fields, echo)
    clouds.bind_keys(writers, sinks)
    # The bag recorder is a sink too: the loop closes sinks on every exit path, Ctrl-C included.
    sinks += [writer for writer in writers if hasattr(writer, "publish")]
    return loop.run_stream(source, runner, options, sinks)
