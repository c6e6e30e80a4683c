"""Where stereo frames come from: cameras, Jetson CSI sensors, GStreamer pipelines, videos, image folders.

A ``--source`` text is parsed into a ``SourceSpec``:

* ``0`` or ``/dev/video0``: a V4L2/UVC camera;
* ``csi:0``: a Jetson CSI sensor through the nvarguscamerasrc preset (``csi_pipeline``);
* ``gst:<pipeline>`` or any text containing ``!``: a GStreamer pipeline ending in appsink;
* a folder: image pairs (InStereo2K, Middlebury, KITTI or left/ + right/ layouts);
* any other existing file: a video.

One source delivers side-by-side frames (ZED/ELP style, split at the middle), or is a
folder of pairs; two sources are the left and right cameras (or videos). Live sources
(cameras, pipelines) are read latest-frame-wins by the loop, files every frame.
Frames come out as HxWx3 uint8 RGB, like everything else in the toolkit.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from toolkit.errors import DependencyError, InputError
from toolkit.quiet import native_quiet

LIVE_KINDS = ("camera", "csi", "gstreamer")
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
CSI_DEFAULT = (1280, 720, 30)


@dataclass(frozen=True)
class SourceSpec:
    """One parsed ``--source``.

    Attributes:
        kind: "camera", "csi", "gstreamer", "video" or "folder".
        target: camera index (int), device path, CSI sensor id (int), pipeline text or file path.
        text: the option as the user wrote it, for messages.
    """

    kind: str
    target: int | str
    text: str

    @property
    def live(self) -> bool:
        return self.kind in LIVE_KINDS


@dataclass(frozen=True)
class CameraSettings:
    """Requested capture size, rate and pixel format for cameras (None keeps the device's default).

    ``fourcc`` "MJPG" is what lets two 720p USB cameras share one USB 2 bus: uncompressed
    YUYV at that size needs more bandwidth than the bus has.
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None


@dataclass
class StereoFrame:
    """One stereo pair as captured.

    Attributes:
        left, right: HxWx3 uint8 RGB images.
        index: 0-based number of the pair in its source.
        captured: ``time.perf_counter()`` when the pair was grabbed (the latency clock).
        skew_ms: time between the left and right grabs (two cameras), else 0.
        meta: what the source knows about the pair besides pixels (a bag's stamps and frame ids), or None.
    """

    left: np.ndarray
    right: np.ndarray
    index: int
    captured: float
    skew_ms: float = 0.0
    meta: object = None


def parse_source(text: str) -> SourceSpec:
    """Classify one ``--source`` text.

    Raises:
        InputError: a path that does not exist.
    """
    text = text.strip()
    if text.isdigit():
        return SourceSpec("camera", int(text), text)
    if text.startswith("/dev/"):
        return SourceSpec("camera", text, text)
    csi = re.fullmatch(r"csi:(\d+)", text, flags=re.IGNORECASE)
    if csi:
        return SourceSpec("csi", int(csi.group(1)), text)
    if text.startswith("gst:"):
        return SourceSpec("gstreamer", text[4:].strip(), text)
    if "!" in text:
        return SourceSpec("gstreamer", text, text)
    path = Path(text)
    if path.is_dir():
        return SourceSpec("folder", str(path), text)
    if path.is_file():
        return SourceSpec("video", str(path), text)
    raise InputError(f"--source {text}: no such file or folder (expected a camera index, /dev/videoN, "
                     "csi:N, a GStreamer pipeline, a video file, a folder of image pairs or a ROS 2 bag)")


def csi_pipeline(sensor_id: int, width: int = CSI_DEFAULT[0], height: int = CSI_DEFAULT[1],
                 fps: float = CSI_DEFAULT[2], flip: int = 0) -> str:
    """The GStreamer pipeline for one Jetson CSI sensor, delivering BGR frames to OpenCV.

    ``appsink drop=true max-buffers=1`` keeps only the newest frame inside GStreamer too,
    so a slow consumer never reads a stale queued frame.

    Args:
        sensor_id: nvarguscamerasrc ``sensor-id`` (0 and 1 on a two-camera carrier board).
        width, height, fps: sensor mode to request.
        flip: nvvidconv ``flip-method`` (0 none, 2 rotate 180 degrees).
    """
    rate = f"{int(round(fps))}/1"
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={rate},format=NV12 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


def gstreamer_available(build_info: str | None = None) -> bool:
    """Whether this OpenCV was built with GStreamer, read from ``cv2.getBuildInformation()``."""
    info = cv2.getBuildInformation() if build_info is None else build_info
    match = re.search(r"^\s*GStreamer:\s*(\S+)", info, flags=re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NO"


def require_gstreamer(spec: SourceSpec, build_info: str | None = None) -> None:
    """Refuse a pipeline source up front when OpenCV cannot run GStreamer pipelines.

    Raises:
        DependencyError: OpenCV reports ``GStreamer: NO``.
    """
    if not gstreamer_available(build_info):
        raise DependencyError(
            f"--source {spec.text}: this OpenCV {cv2.__version__} was built without GStreamer "
            "(cv2.getBuildInformation() says GStreamer: NO); on a Jetson use JetPack's OpenCV "
            "and do not pip-install opencv-python over it"
        )


def split_side_by_side(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split one side-by-side frame at the middle into (left, right) views.

    An odd width drops its last column so both halves have one size.

    Raises:
        InputError: a frame too narrow to hold two views.
    """
    half = frame.shape[1] // 2
    if half < 8:
        raise InputError(f"side-by-side frame of {frame.shape[1]}x{frame.shape[0]} px is too narrow to split")
    return frame[:, :half], frame[:, half:2 * half]


def lagging_side(t_left: float, t_right: float, max_skew_s: float) -> str | None:
    """Which camera's grab is too old to pair with the other's: "left", "right" or None."""
    if t_right - t_left > max_skew_s:
        return "left"
    if t_left - t_right > max_skew_s:
        return "right"
    return None


def backoff_delays(attempts: int = len(RECONNECT_DELAYS_S), first_s: float = RECONNECT_DELAYS_S[0],
                   factor: float = 2.0, cap_s: float = 8.0) -> tuple[float, ...]:
    """Exponential reconnect delays: ``first_s``, ``first_s * factor``, ... capped at ``cap_s``."""
    return tuple(min(cap_s, first_s * factor ** i) for i in range(attempts))


class Capture:
    """One OpenCV ``VideoCapture`` for a camera, pipeline or video file; frames as RGB.

    Args:
        spec: what to open (not a folder).
        camera: requested size and rate for cameras and CSI sensors.
    """

    def __init__(self, spec: SourceSpec, camera: CameraSettings = CameraSettings()) -> None:
        self.spec = spec
        self.camera = camera
        self.cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        """Open the device or file.

        Raises:
            InputError: it does not open (no such camera, busy device, undecodable file).
            DependencyError: a pipeline on an OpenCV without GStreamer.
        """
        if self.spec.kind in ("csi", "gstreamer"):
            require_gstreamer(self.spec)
        with native_quiet():  # OpenCV/FFmpeg warnings around the one-line error below
            self.cap = self._create()
        if not self.cap.isOpened():
            self.close()
            raise InputError(self._open_error())
        if self.spec.kind == "camera":
            self._apply_camera_settings()

    def _create(self) -> cv2.VideoCapture:
        if self.spec.kind == "csi":
            width = self.camera.width or CSI_DEFAULT[0]
            height = self.camera.height or CSI_DEFAULT[1]
            pipeline = csi_pipeline(int(self.spec.target), width, height, self.camera.fps or CSI_DEFAULT[2])
            return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if self.spec.kind == "gstreamer":
            return cv2.VideoCapture(str(self.spec.target), cv2.CAP_GSTREAMER)
        return cv2.VideoCapture(self.spec.target)

    def _apply_camera_settings(self) -> None:
        # The pixel format first: the sizes and rates a camera offers depend on it.
        if self.camera.fourcc:
            self.cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.camera.fourcc))
        if self.camera.width:
            self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.camera.width)
        if self.camera.height:
            self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.camera.height)
        if self.camera.fps:
            self.cap.set(cv2.CAP_PROP_FPS, self.camera.fps)
        # Fewer driver buffers means a fresher frame at each grab; not every backend honours it.
        self.cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _open_error(self) -> str:
        if self.spec.kind == "camera":
            return (f"--source {self.spec.text}: camera {self.spec.target} did not open (no such device, "
                    "no permission, or busy in another program); list cameras with `v4l2-ctl --list-devices`")
        if self.spec.kind == "video":
            return (f"--source {self.spec.text}: OpenCV cannot decode this file "
                    "(expected a video readable by FFmpeg, e.g. MP4/H.264 or AVI/MJPG)")
        return (f"--source {self.spec.text}: the GStreamer pipeline did not start "
                "(check it with gst-launch-1.0; it must end in appsink and deliver BGR)")

    @property
    def fps(self) -> float | None:
        """Frame rate reported by OpenCV, or None when unknown."""
        value = self.cap.get(cv2.CAP_PROP_FPS) if self.cap is not None else 0.0
        return value if value and value > 0 and np.isfinite(value) else None

    def grab(self) -> bool:
        return self.cap is not None and self.cap.grab()

    def retrieve(self) -> np.ndarray | None:
        """Decode the last grabbed frame as RGB, or None when that fails."""
        ok, frame = self.cap.retrieve()
        if not ok or frame is None:
            return None
        if frame.ndim == 2:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def read(self) -> np.ndarray | None:
        """Grab and decode the next frame; None at the end of a file or when a camera stops."""
        return self.retrieve() if self.grab() else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


def reopen_with_backoff(captures: Sequence[Capture], delays: Sequence[float],
                        sleep: Callable[[float], None] = time.sleep) -> bool:
    """Try to reopen lost cameras, waiting ``delays[i]`` before attempt ``i``.

    Returns:
        True once every capture opened again and delivered a frame; False when all attempts failed.
    """
    for delay in delays:
        sleep(delay)
        for capture in captures:
            capture.close()
        try:
            for capture in captures:
                capture.open()
        except InputError:
            continue
        if all(capture.grab() for capture in captures):
            return True
    return False


class StereoSource(ABC):
    """A stream of ``StereoFrame``; a context manager that opens and closes its devices.

    Attributes:
        live: True for cameras and pipelines (read latest-frame-wins), False for files.
        name: short description for messages and provenance.
    """

    live: bool = False
    name: str = "source"

    def __enter__(self) -> "StereoSource":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None:
        """Open devices or files; raises InputError / DependencyError when that fails."""

    @abstractmethod
    def read(self) -> StereoFrame | None:
        """The next pair, or None at a clean end (end of file, end of folder)."""

    def close(self) -> None:
        """Release devices and files."""

    @property
    def fps(self) -> float | None:
        """Nominal frame rate, or None when unknown."""
        return None


class CaptureSource(StereoSource):
    """Shared logic of the capture-based sources: frame counting and camera reconnects.

    Args:
        captures: one (side-by-side) or two (left, right) captures.
        swap: exchange left and right (cameras wired the other way round).
        reconnect_delays: waits before each reconnect attempt of a live source.
    """

    def __init__(self, captures: Sequence[Capture], swap: bool = False,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS_S) -> None:
        self.captures = list(captures)
        self.swap = swap
        self.reconnect_delays = tuple(reconnect_delays)
        self.live = self.captures[0].spec.live
        self.name = " + ".join(c.spec.text for c in self.captures)
        self.count = 0

    def open(self) -> None:
        try:
            for capture in self.captures:
                capture.open()
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for capture in self.captures:
            capture.close()

    @property
    def fps(self) -> float | None:
        return self.captures[0].fps

    def read(self) -> StereoFrame | None:
        pair = self.read_pair()
        if pair is None and self.live:
            pair = self._reconnect()
        if pair is None:
            if self.count == 0:
                raise InputError(f"--source {self.name}: opened, but no frame could be decoded from it")
            return None
        left, right, captured, skew_ms = pair
        if self.swap:
            left, right = right, left
        frame = StereoFrame(left, right, self.count, captured, skew_ms)
        self.count += 1
        return frame

    def _reconnect(self):
        if not reopen_with_backoff(self.captures, self.reconnect_delays):
            raise InputError(
                f"--source {self.name}: camera disconnected after {self.count} frames and did not come back "
                f"after {len(self.reconnect_delays)} reconnect attempts over {sum(self.reconnect_delays):.1f} s; "
                "check the cable and the device path"
            )
        return self.read_pair()

    @abstractmethod
    def read_pair(self) -> tuple[np.ndarray, np.ndarray, float, float] | None:
        """(left, right, capture time, skew ms) before swapping, or None when no frame came."""


class SideBySideSource(CaptureSource):
    """One capture whose frames hold the left view in the left half and the right in the other."""

    def __init__(self, spec: SourceSpec, camera: CameraSettings = CameraSettings(), swap: bool = False,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS_S) -> None:
        super().__init__([Capture(spec, camera)], swap, reconnect_delays)

    def read_pair(self):
        frame = self.captures[0].read()
        captured = time.perf_counter()
        if frame is None:
            return None
        left, right = split_side_by_side(frame)
        return left, right, captured, 0.0


class PairSource(CaptureSource):
    """Two captures, left and right: paired by capture time when live, by frame number for files.

    Args:
        max_skew_s: live only; a grab more than this older than the other camera's is grabbed
            again (at most twice) so the pair shows one moment. None: half a frame period.
    """

    def __init__(self, left: SourceSpec, right: SourceSpec, camera: CameraSettings = CameraSettings(),
                 swap: bool = False, reconnect_delays: Sequence[float] = RECONNECT_DELAYS_S,
                 max_skew_s: float | None = None) -> None:
        if left.live != right.live:
            raise InputError(f"--source {left.text} --source {right.text}: pair two cameras or two files, not one of each")
        super().__init__([Capture(left, camera), Capture(right, camera)], swap, reconnect_delays)
        self.max_skew_s = max_skew_s
        self.first_shapes: tuple | None = None

    def read_pair(self):
        if self.live:
            return self._grab_by_time()
        left, right = self.captures[0].read(), self.captures[1].read()
        captured = time.perf_counter()
        if left is None or right is None:
            return None
        self._check_sizes(left, right)
        return left, right, captured, 0.0

    def _grab_by_time(self):
        left_cap, right_cap = self.captures
        max_skew = self.max_skew_s if self.max_skew_s is not None else 0.5 / (self.fps or 30.0)
        if not left_cap.grab():
            return None
        t_left = time.perf_counter()
        if not right_cap.grab():
            return None
        t_right = time.perf_counter()
        for _ in range(2):
            side = lagging_side(t_left, t_right, max_skew)
            if side == "left" and left_cap.grab():
                t_left = time.perf_counter()
            elif side == "right" and right_cap.grab():
                t_right = time.perf_counter()
            else:
                break
        left, right = left_cap.retrieve(), right_cap.retrieve()
        if left is None or right is None:
            return None
        self._check_sizes(left, right)
        return left, right, max(t_left, t_right), abs(t_left - t_right) * 1000.0

    def _check_sizes(self, left: np.ndarray, right: np.ndarray) -> None:
        if left.shape != right.shape:
            lt, rt = self.captures[0].spec.text, self.captures[1].spec.text
            raise InputError(f"--source {lt} gives {left.shape[1]}x{left.shape[0]} frames but {rt} gives "
                             f"{right.shape[1]}x{right.shape[0]}; left and right must have one size")


class FolderSource(StereoSource):
    """Image pairs from a folder, in the order ``toolkit.data.pairs.discover_pairs`` lists them."""

    def __init__(self, spec: SourceSpec, swap: bool = False) -> None:
        self.spec = spec
        self.swap = swap
        self.name = spec.text
        self.pairs: list = []
        self.position = 0

    def open(self) -> None:
        from toolkit.data.pairs import discover_pairs

        self.pairs = list(discover_pairs([self.spec.target]))
        if not self.pairs:
            raise InputError(f"--source {self.spec.text}: no image pairs found in this folder")
        self.position = 0

    def read(self) -> StereoFrame | None:
        from toolkit.data import io

        if self.position >= len(self.pairs):
            return None
        pair = self.pairs[self.position]
        left, right = io.read_image(pair.left), io.read_image(pair.right)
        if self.swap:
            left, right = right, left
        frame = StereoFrame(left, right, self.position, time.perf_counter())
        self.position += 1
        return frame


def open_source(texts: Sequence[str], swap: bool = False, camera: CameraSettings = CameraSettings(),
                reconnect_delays: Sequence[float] = RECONNECT_DELAYS_S) -> StereoSource:
    """Build the source for one or two ``--source`` texts (not opened yet; use it as a context manager).

    Args:
        texts: one side-by-side source or folder, or two sources (left, right).
        swap: exchange left and right.
        camera: requested camera size and rate.
        reconnect_delays: waits before each reconnect attempt when a camera stops delivering.

    Raises:
        InputError: wrong number of sources, missing paths, a folder given as one of two sources.
    """
    specs = [parse_source(text) for text in texts]
    if len(specs) == 1:
        if specs[0].kind == "folder":
            return FolderSource(specs[0], swap)
        return SideBySideSource(specs[0], camera, swap, reconnect_delays)
    if len(specs) == 2:
        folders = [s.text for s in specs if s.kind == "folder"]
        if folders:
            raise InputError(f"--source {folders[0]}: a folder of pairs is one source on its own, not the left or right of two")
        return PairSource(specs[0], specs[1], camera, swap, reconnect_delays)
    raise InputError(f"--source given {len(specs)} times: give one (side-by-side, or a folder of pairs) or two (left, right)")
