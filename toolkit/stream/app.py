"""``stereo-trt run`` as a function: check the options, build source, runner, rectifier and sinks, run the loop.

Every option is checked before the model loads or a camera opens (a typo should not
cost a TensorRT engine deserialisation), then ``loop.run_stream`` does the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from toolkit.confidence import with_lr_check
from toolkit.errors import InputError
from toolkit.outputs import check_output_file
from toolkit.stream import display, loop, sources
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
    threads: int | None = None
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


def build_geometry(config: RunConfig) -> tuple[Rectifier | None, DepthConverter | None]:
    """The rectifier (from --calibration) and the depth converter (from Q, or --focal-px/--baseline).

    Raises:
        InputError: neither or both of --calibration / --rectified, --depth without what it needs.
    """
    if config.calibration and config.rectified:
        raise InputError("--calibration and --rectified exclude each other: a calibration rectifies raw frames")
    if not config.calibration and not config.rectified:
        raise InputError("give --calibration FILE to rectify raw camera frames, or --rectified when the source "
                         "already delivers rectified pairs (stereo matching needs rectified input)")
    if (config.focal_px is None) != (config.baseline is None):
        raise InputError("--focal-px and --baseline go together")
    rectifier = Rectifier(load_calibration(config.calibration), config.alpha) if config.calibration else None
    if not config.depth:
        return rectifier, None
    if config.focal_px is not None:
        return rectifier, DepthConverter.from_focal_baseline(config.focal_px, config.baseline)
    if rectifier is None:
        raise InputError("--depth needs --calibration, or --focal-px and --baseline for a rectified source")
    return rectifier, rectifier.depth_converter()


def build_runner(config: RunConfig):
    """The (inactive) runner: SGBM for --backend sgbm, else ``open_runner`` on --model;
    wrapped in the left-right check with --lr-check.

    Raises:
        InputError: no --model for a network backend, options the backend cannot use.
    """
    from toolkit.preprocess import parse_size

    size = parse_size(config.size_text)
    if config.backend == "sgbm":
        if config.model or size:
            raise InputError("--backend sgbm takes no --model or --size (it matches the frames as they come)")
        from toolkit.backends.sgbm import SGBMRunner

        return with_lr_check(SGBMRunner(max_disp=config.max_disp or 128), config.lr_check)
    if not config.model:
        raise InputError("give --model (a TensorRT .engine, an .onnx or a .pth checkpoint), "
                         "or --backend sgbm to run without a network")
    from toolkit.backends import open_runner

    runner = open_runner(config.model, config.backend, size=size, max_disp=config.max_disp, threads=config.threads)
    return with_lr_check(runner, config.lr_check)


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
    if config.save:
        from toolkit.stream.record import FOURCC_BY_SUFFIX

        check_output_file(config.save, "--save", suffixes=sorted(FOURCC_BY_SUFFIX),
                          inputs=[*config.sources, config.model, config.calibration])
    camera_size = parse_camera_size(config.camera_size)
    value_range = parse_range(config.range_text)
    rectifier, depth = build_geometry(config)
    if config.fourcc is not None and len(config.fourcc) != 4:
        raise InputError(f"--fourcc {config.fourcc!r}: expected four characters, for example MJPG or YUYV")
    camera = sources.CameraSettings(*(camera_size or (None, None)), fps=config.fps, fourcc=config.fourcc)
    source = sources.open_source(config.sources, config.swap, camera)
    runner = build_runner(config)
    headless = not wants_window(config)
    options = loop.StreamOptions(
        rectifier=rectifier, depth=depth, value_range=value_range, min_confidence=config.min_confidence,
        mask_invalid=config.mask_invalid, latest_frame_wins=config.latest_frame_wins, max_frames=config.max_frames,
        status_every_s=config.status_every if headless else None, on_status=echo)
    fields = {"source": config.sources, "backend": runner.name, "model": config.model,
              "calibration": config.calibration, "view": "depth" if depth else "disparity"}
    # The recording plays at --fps, else at the rate the open source reports (a file's, a camera's).
    sinks = build_sinks(config, config.fps or (lambda: source.fps), fields, echo)
    return loop.run_stream(source, runner, options, sinks)
