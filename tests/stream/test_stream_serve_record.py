"""MJPEG over HTTP on the loopback address, and recordings that are always finalised."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from stream_media import count_frames, side_by_side_video
from toolkit.backends.sgbm import SGBMRunner
from toolkit.errors import InputError
from toolkit.stream import sources
from toolkit.stream.loop import StreamOptions, run_stream
from toolkit.stream.record import VideoRecorder
from toolkit.stream.serve import BOUNDARY, MjpegServer

TIMEOUT_S = 10


def first_jpeg_from_stream(url: str) -> bytes:
    """Read the multipart stream until one whole JPEG part arrived; bounded in bytes and time."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        assert response.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        data = b""
        while len(data) < 5_000_000:
            data += response.read1(65536)
            start = data.find(b"\xff\xd8")
            end = data.find(b"\xff\xd9", start + 2)
            if start >= 0 and end > 0:
                return data[start:end + 2]
    raise AssertionError("no JPEG in the first 5 MB of the stream")


def test_server_streams_published_frames_to_a_loopback_client():
    server = MjpegServer(0).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        view = np.zeros((48, 64, 3), np.uint8)
        view[:, :32] = (255, 0, 0)
        server.publish(view)
        jpeg = first_jpeg_from_stream(server.url + "stream.mjpg")
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == (48, 64, 3)
        assert decoded[10, 5, 2] > 200 and decoded[10, 5, 0] < 60  # red on the left (BGR)
        with urllib.request.urlopen(server.url + "frame.jpg", timeout=TIMEOUT_S) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
        with urllib.request.urlopen(server.url, timeout=TIMEOUT_S) as response:
            assert b"/stream.mjpg" in response.read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + "nothing", timeout=TIMEOUT_S)
    finally:
        server.close()


def test_loop_output_reaches_a_browser_client(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 2)
    server = MjpegServer(0).start()
    try:
        run_stream(sources.open_source([str(video)]), SGBMRunner(max_disp=32), StreamOptions(), [_KeepOpen(server)])
        jpeg = first_jpeg_from_stream(server.url + "stream.mjpg")
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[0] == 64
    finally:
        server.close()


class _KeepOpen:
    """Passes views to the server but leaves closing it to the test (run_stream closes its sinks)."""

    def __init__(self, server):
        self.server = server

    def publish(self, view):
        return self.server.publish(view)

    def close(self):
        pass


def test_a_busy_port_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=rf"--serve {port}: cannot listen on 127.0.0.1"):
            MjpegServer(port).start()


def test_recorder_writes_a_playable_file_with_a_sidecar(tmp_path):
    recorder = VideoRecorder(tmp_path / "run.mp4", 12.0, {"source": ["x"]})
    frame = np.zeros((40, 60, 3), np.uint8)
    for k in range(5):
        frame[:] = 40 * k
        recorder.publish(frame)
    recorder.publish(np.zeros((20, 30, 3), np.uint8))  # another size: resized, not refused
    assert recorder.close() == tmp_path / "run.mp4"
    assert count_frames(tmp_path / "run.mp4") == 6
    capture = cv2.VideoCapture(str(tmp_path / "run.mp4"))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    assert (tmp_path / "run.mp4.json").is_file()
    assert not list(tmp_path.glob("*.partial*"))


def test_recorder_without_frames_leaves_nothing_and_checks_the_suffix(tmp_path):
    recorder = VideoRecorder(tmp_path / "empty.mp4", 10.0)
    assert recorder.close() is None and not list(tmp_path.iterdir())
    with pytest.raises(InputError, match=r"--save .*out.gif: unsupported video suffix '.gif'"):
        VideoRecorder(tmp_path / "out.gif", 10.0)


def test_recorder_asks_for_the_rate_at_the_first_frame(tmp_path):
    asked = []
    recorder = VideoRecorder(tmp_path / "r.avi", lambda: asked.append(1) or 7.0)
    assert not asked
    recorder.publish(np.zeros((16, 16, 3), np.uint8))
    recorder.close()
    assert asked == [1] and recorder.fps == 7.0 and count_frames(tmp_path / "r.avi") == 1
