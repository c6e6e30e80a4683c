"""The real-time loop: capture, rectify + preprocess, infer, draw, in four pipelined stages.

::

    capture thread ──buffer──▶ prepare thread ──1──▶ infer thread ──1──▶ main thread
    (source.read)   latest-    (rectify,             (runner.infer_     (restore disparity,
                    wins or     prepare_pair)         feed)              depth, colours, sinks)
                    FIFO

Live sources hand frames over latest-frame-wins (a frame not yet taken is replaced and
counted as dropped), files every frame (the capture thread waits). Between the other
stages sits a one-slot FIFO, so at most one frame waits at each hand-over and the
accelerator works on frame n while frame n+1 is being prepared and frame n-1 drawn.
The main thread presents, because GUI toolkits only draw from it.

``run_stream`` returns a ``Summary``; sinks (window, recorder, MJPEG server) are closed on
every exit path, Ctrl-C included, so a recording is always finalised.
"""

from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from toolkit import preprocess
from toolkit.backends.base import Runner
from toolkit.errors import InputError
from toolkit.stream import overlay
from toolkit.stream.buffers import CLOSED, FifoBuffer, FrameBuffer, make_buffer
from toolkit.stream.rectify import DepthConverter, Rectifier
from toolkit.stream.sources import StereoFrame, StereoSource

POLL_S = 0.1
JOIN_S = 10.0
RECENT_FRAMES = 30  # the on-screen FPS follows the last second or so
LATENCY_WINDOW = 10_000  # p99 over the last 10,000 frames: about 80 KB, minutes of a live run
# The first frames leave the pipeline back to back (each stage held one), so a rate over a
# handful of them is noise: 3 frames once gave "1572 FPS".
MIN_FPS_INTERVALS = 5


@dataclass
class StreamOptions:
    """How the loop processes and shows frames.

    Attributes:
        rectifier: rectify each pair first; None for sources that already are rectified.
        depth: show depth from this converter instead of disparity.
        value_range: fixed (low, high) of the colour scale; None follows the data.
        min_confidence: black out pixels whose confidence is below this (when the model has one).
        mask_invalid: black out pixels without a valid (positive, finite) disparity.
        latest_frame_wins: None lets the source decide (live: True, files: False).
        buffer_capacity: frames the capture hand-over holds.
        max_frames: stop after presenting this many frames.
        status_every_s: call ``on_status`` with a status line this often (None: never).
        on_status: receives status lines and notes.
        on_result: receives every processed frame's maps (``FrameResult``), on the main thread.
        warmup_frames: leading frames left out of the latency and FPS statistics.
    """

    rectifier: Rectifier | None = None
    depth: DepthConverter | None = None
    value_range: tuple[float, float] | None = None
    min_confidence: float | None = None
    mask_invalid: bool = True
    latest_frame_wins: bool | None = None
    buffer_capacity: int = 1
    max_frames: int | None = None
    status_every_s: float | None = None
    on_status: Callable[[str], None] | None = None
    on_result: Callable[["FrameResult"], None] | None = None
    warmup_frames: int = 1


@dataclass
class Summary:
    """What a run did.

    Attributes:
        backend: runner name and precision.
        frames_captured: pairs read from the source.
        frames_processed: pairs inferred and presented.
        frames_dropped: pairs replaced in the capture hand-over before being taken (live sources).
        latency_ms_mean, latency_ms_p99: capture to presented, after the warm-up frames (p99 over
            the last ``LATENCY_WINDOW`` of them).
        fps: presented frames per second after the warm-up frames; NaN when fewer than
            ``MIN_FPS_INTERVALS`` + 1 frames were timed.
        stage_ms: mean time per frame in each stage ("prepare", "infer", "present").
        wall_s: total run time, model loading excluded.
        stop_reason: "end of source", "max frames", "quit", "interrupted" or "error".
        buffer_high_water: the most frames the capture hand-over ever held.
    """

    backend: str
    frames_captured: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    latency_ms_mean: float = float("nan")
    latency_ms_p99: float = float("nan")
    fps: float = float("nan")
    stage_ms: dict = field(default_factory=dict)
    wall_s: float = 0.0
    stop_reason: str = ""
    buffer_high_water: int = 0

    def text(self) -> str:
        """A short human summary, a few lines."""
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        rate = "FPS not measured (too few frames)" if np.isnan(self.fps) else f"{self.fps:.2f} FPS"
        return (f"{self.stop_reason}: {self.frames_processed} frames processed of {self.frames_captured} captured, "
                f"{self.frames_dropped} dropped, in {self.wall_s:.1f} s\n"
                f"{self.backend}: {rate}, capture-to-display latency mean {self.latency_ms_mean:.1f} ms, "
                f"p99 {self.latency_ms_p99:.1f} ms (per-stage ms: {stages})")


@dataclass
class _Work:
    """One frame on its way through the stages."""

    frame: StereoFrame
    left: np.ndarray | None = None
    prepared: preprocess.PreparedPair | None = None
    outputs: dict | None = None
    prepare_ms: float = 0.0
    infer_ms: float = 0.0


class _Stats:
    """Rolling per-frame statistics in fixed memory, whatever the run's length (a live loop runs for days).

    Means and the FPS span are running sums; the p99 latency is over the last
    ``LATENCY_WINDOW`` frames; the on-screen FPS over the last ``RECENT_FRAMES`` frames.
    The first ``warmup`` frames are left out of the summary, unless the run is hardly longer.
    """

    def __init__(self, warmup: int = 0) -> None:
        self.warmup = warmup
        self.frames = 0
        self.last_latency_ms: float | None = None
        self.recent_done = collections.deque(maxlen=RECENT_FRAMES)
        self.latency_window = collections.deque(maxlen=LATENCY_WINDOW)
        self.latency_sum = 0.0
        self.stage_sum = {"prepare": 0.0, "infer": 0.0, "present": 0.0}
        self.counted = 0
        self.first_done: float | None = None
        self.last_done: float | None = None
        self.warm: list[tuple[float, dict]] = []

    def add(self, work: _Work, present_ms: float, now: float) -> None:
        latency_ms = (now - work.frame.captured) * 1000.0
        self.frames += 1
        self.last_latency_ms = latency_ms
        self.recent_done.append(now)
        stages = {"prepare": work.prepare_ms, "infer": work.infer_ms, "present": present_ms}
        if self.frames <= self.warmup:
            self.warm.append((latency_ms, stages))  # at most `warmup` entries
            return
        self._count(latency_ms, stages)
        if self.first_done is None:
            self.first_done = now
        self.last_done = now

    def _count(self, latency_ms: float, stages: dict) -> None:
        self.counted += 1
        self.latency_sum += latency_ms
        self.latency_window.append(latency_ms)
        for name, ms in stages.items():
            self.stage_sum[name] += ms

    def recent_fps(self) -> float:
        times = self.recent_done
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def fps(self) -> float:
        """Frames per second after the warm-up, or NaN over too few frames to mean anything."""
        if self.first_done is None or self.counted - 1 < MIN_FPS_INTERVALS:
            return float("nan")
        span = self.last_done - self.first_done
        return (self.counted - 1) / span if span > 0 else float("nan")

    def fill(self, summary: Summary) -> None:
        if self.counted < 2:
            # A run about as short as its warm-up: its latency and stage times are all there is.
            for latency_ms, stages in self.warm:
                self._count(latency_ms, stages)
        if self.counted:
            summary.latency_ms_mean = self.latency_sum / self.counted
            summary.latency_ms_p99 = float(np.percentile(np.fromiter(self.latency_window, np.float64), 99))
            summary.stage_ms = {k: v / self.counted for k, v in self.stage_sum.items()}
        summary.fps = self.fps()


class _Pipeline:
    """The threads, hand-overs and shared stop/error state of one run."""

    def __init__(self, source: StereoSource, runner: Runner, options: StreamOptions) -> None:
        self.source, self.runner, self.options = source, runner, options
        latest = source.live if options.latest_frame_wins is None else options.latest_frame_wins
        self.latest = latest
        self.captured_buffer: FrameBuffer = make_buffer(latest, options.buffer_capacity)
        self.prepared = FifoBuffer(1)
        self.inferred = FifoBuffer(1)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.captured = 0
        self.threads: dict[str, threading.Thread] = {}

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.halt()

    def halt(self) -> None:
        """Stop every stage: set the flag and wake whoever waits on a hand-over."""
        self.stop.set()
        for buffer in (self.captured_buffer, self.prepared, self.inferred):
            buffer.close()

    def start_inference(self) -> None:
        self._start("infer", self._infer_worker)

    def start_capture_and_prepare(self) -> None:
        self._start("prepare", lambda: self._stage(self.captured_buffer, self.prepared, self._prepare))
        self._start("capture", self._capture_worker)

    def _start(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"stream-{name}", daemon=True)
        self.threads[name] = thread
        thread.start()

    def join(self) -> None:
        for name in ("capture", "prepare", "infer"):
            if name in self.threads:
                self.threads[name].join(JOIN_S)

    def _capture_worker(self) -> None:
        limit = None if self.latest else self.options.max_frames
        try:
            while not self.stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.captured += 1
                if not self.captured_buffer.put(frame) or (limit is not None and self.captured >= limit):
                    break
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, re-raised there)
            self.fail(exc)
        finally:
            self.captured_buffer.close()

    def _stage(self, inbox: FrameBuffer, outbox: FrameBuffer, work: Callable) -> None:
        try:
            while True:
                item = inbox.get(POLL_S)
                if item is CLOSED or self.stop.is_set():
                    break
                if item is not None and not outbox.put(work(item)):
                    break
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, re-raised there)
            self.fail(exc)
        finally:
            outbox.close()

    def _prepare(self, frame: StereoFrame) -> _Work:
        start = time.perf_counter()
        left, right = frame.left, frame.right
        if self.options.rectifier is not None:
            left, right = self.options.rectifier.rectify(left, right)
        try:
            prepared = preprocess.prepare_pair(left, right, self.runner.input_hw)
        except InputError as exc:  # a frame the network cannot take: say which, and that it came from the source
            raise InputError(f"--source frame {frame.index}: {exc}") from None
        return _Work(frame, left, prepared, prepare_ms=(time.perf_counter() - start) * 1000.0)

    def _infer(self, work: _Work) -> _Work:
        work.outputs, work.infer_ms = self.runner.infer_feed(work.prepared.feed)
        return work

    def _infer_worker(self) -> None:
        # Activating here keeps the runner's device context on the thread that uses it
        # (pycuda contexts, for one, belong to the thread that created them).
        activated_here = False
        try:
            if not self.runner.is_active:
                self.runner.activate()
                activated_here = True
            self.ready.set()
            self._stage(self.prepared, self.inferred, self._infer)
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, re-raised there)
            self.fail(exc)
        finally:
            self.inferred.close()
            if activated_here:
                self.runner.deactivate()


@dataclass
class FrameResult:
    """One processed frame, as ``StreamOptions.on_result`` receives it.

    Attributes:
        index: the frame's number in its source.
        left: the left image the network saw (rectified when a rectifier is set), RGB.
        disparity: HxW disparity in source pixels (already undone from the network size).
        depth: HxW depth in the calibration's units, or None when depth is off.
        confidence: HxW confidence in [0, 1], or None when the model has none.
        valid: HxW bool, the pixels drawn (finite, positive unless masking is off, confident enough).
        infer_ms: the backend's inference time for this frame.
        meta: the source's ``StereoFrame.meta`` (a bag's stamps and frame ids), or None.
    """

    index: int
    left: np.ndarray
    disparity: np.ndarray
    depth: np.ndarray | None
    confidence: np.ndarray | None
    valid: np.ndarray
    infer_ms: float
    meta: object = None


def frame_result(work: _Work, options: StreamOptions) -> FrameResult:
    """Network outputs back to source pixels, plus depth and the validity mask."""
    geometry = work.prepared.geometry
    # restore_disparity undoes padding and resize and multiplies by Geometry.disparity_scale,
    # so depth below uses the rectified source's focal length and baseline unchanged.
    disparity = preprocess.restore_disparity(work.outputs["disparity"], geometry)
    confidence = work.outputs.get("confidence")
    if confidence is not None:
        confidence = preprocess.crop_to_source(confidence, geometry)
    valid = np.isfinite(disparity)
    if options.mask_invalid:
        valid &= disparity > 0
    if options.min_confidence is not None and confidence is not None:
        valid &= confidence >= options.min_confidence
    depth = None
    if options.depth is not None:
        depth, has_depth = options.depth.depth(disparity)
        valid &= has_depth
    return FrameResult(work.frame.index, work.left, disparity, depth, confidence, valid, work.infer_ms,
                       work.frame.meta)


class _Presenter:
    """Main-thread stage: results, colours, overlay, sinks."""

    def __init__(self, runner: Runner, options: StreamOptions, sinks: Sequence) -> None:
        self.runner, self.options, self.sinks = runner, options, list(sinks)
        fixed = options.value_range is not None
        low, high = options.value_range if fixed else (0.0, 1.0)
        self.range = overlay.ValueRange(low, high, fixed=fixed)
        self.show_depth = options.depth is not None
        units = f" [{options.depth.units}]" if self.show_depth and options.depth.units else ""
        self.label = f"depth{units}" if self.show_depth else "disp [px]"
        self.noted_confidence = False

    def present(self, work: _Work, status_lines: list[str]) -> bool:
        """Draw one frame and hand it to every sink; False when a sink asks to quit."""
        result = frame_result(work, self.options)
        if self.options.min_confidence is not None and result.confidence is None and not self.noted_confidence:
            self.noted_confidence = True
            _note(self.options, f"--min-confidence ignored: {self.runner.name} gives no confidence "
                                "(export with --confidence, or add --lr-check)")
        if self.options.on_result is not None:
            self.options.on_result(result)
        values = result.depth if self.show_depth else result.disparity
        low, high = self.range.update(values, result.valid)
        colored = overlay.colorize_map(values, result.valid, low, high, not self.show_depth)
        bar = overlay.colorbar(values.shape[0], low, high, self.label, not self.show_depth)
        view = overlay.draw_status(overlay.compose_view(result.left, colored, bar), status_lines)
        keep_going = True
        for sink in self.sinks:
            keep_going = sink.publish(view) and keep_going
        return keep_going


def _note(options: StreamOptions, text: str) -> None:
    if options.on_status is not None:
        options.on_status(text)


@contextlib.contextmanager
def _shield_from_sigint():
    """Ignore a second Ctrl-C while cleaning up, so the recording still gets finalised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_stream(source: StereoSource, runner: Runner, options: StreamOptions | None = None,
               sinks: Sequence = ()) -> Summary:
    """Run the loop until the source ends, ``max_frames``, a sink quits, or Ctrl-C.

    Args:
        source: an unopened source; opened and closed here.
        runner: a runner; an inactive one is activated (and later deactivated) on the inference
            thread, which device contexts bound to one thread need.
        options: processing and display options.
        sinks: objects with ``publish(view) -> bool`` (False: quit) and ``close()``: window,
            recorder, MJPEG server. All are closed before returning, Ctrl-C included.

    Returns:
        The run's summary; ``stop_reason`` says why it ended.

    Raises:
        StereoTrtError: the source or the runner failed (after the sinks were closed).
    """
    options = options or StreamOptions()
    pipeline = _Pipeline(source, runner, options)
    presenter = _Presenter(runner, options, sinks)
    summary = Summary(backend=f"{runner.name} {runner.precision}")
    stats = _Stats(options.warmup_frames)
    started = time.perf_counter()
    try:
        _await_runner(pipeline)
        with source:
            started = time.perf_counter()
            pipeline.start_capture_and_prepare()
            try:
                summary.stop_reason = _present_loop(pipeline, presenter, stats, summary)
            except KeyboardInterrupt:
                summary.stop_reason = "interrupted"
            finally:
                # The capture thread must be out of source.read() before the source closes.
                with _shield_from_sigint():
                    pipeline.halt()
                    pipeline.join()
    finally:
        with _shield_from_sigint():
            pipeline.halt()
            pipeline.join()
            for sink in sinks:
                sink.close()
    if pipeline.error is not None:
        raise pipeline.error
    summary.wall_s = time.perf_counter() - started
    summary.frames_captured = pipeline.captured
    summary.frames_dropped = pipeline.captured_buffer.dropped
    summary.buffer_high_water = pipeline.captured_buffer.high_water
    stats.fill(summary)
    return summary


def _await_runner(pipeline: _Pipeline) -> None:
    """Start the inference thread and wait until the model is loaded (or failed to load)."""
    pipeline.start_inference()
    while not pipeline.ready.wait(POLL_S):
        if pipeline.error is not None:
            raise pipeline.error
        if not pipeline.threads["infer"].is_alive():
            break


def _present_loop(pipeline: _Pipeline, presenter: _Presenter, stats: _Stats, summary: Summary) -> str:
    options = pipeline.options
    last_status = time.perf_counter()
    while True:
        work = pipeline.inferred.get(POLL_S)
        if work is None:
            continue
        if work is CLOSED:
            return "error" if pipeline.error is not None else "end of source"
        start = time.perf_counter()
        lines = _status_lines(summary.backend, stats, pipeline, work)
        keep_going = presenter.present(work, lines)
        now = time.perf_counter()
        stats.add(work, (now - start) * 1000.0, now)
        summary.frames_processed += 1
        if options.status_every_s is not None and now - last_status >= options.status_every_s:
            last_status = now
            _note(options, f"frame {summary.frames_processed}: " + " | ".join(lines[1:]))
        if not keep_going:
            return "quit"
        if options.max_frames is not None and summary.frames_processed >= options.max_frames:
            return "max frames"


def _status_lines(backend: str, stats: _Stats, pipeline: _Pipeline, work: _Work) -> list[str]:
    latency = "--" if stats.last_latency_ms is None else f"{stats.last_latency_ms:.0f}"
    return [
        backend,
        f"{stats.recent_fps():.1f} FPS",
        f"latency {latency} ms (infer {work.infer_ms:.0f} ms)",
        f"dropped {pipeline.captured_buffer.dropped}",
    ]
