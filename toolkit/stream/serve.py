"""A live view in the browser for headless devices: the loop's output as MJPEG over HTTP.

``http://HOST:PORT/`` is a page with the stream, ``/stream.mjpg`` the multipart stream
(``multipart/x-mixed-replace``, one JPEG per part), ``/frame.jpg`` the newest frame alone.
It binds the loopback address unless told otherwise: a camera feed is not something to
publish on every interface by accident. Each frame is encoded once, however many clients watch.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from toolkit.errors import InputError

BOUNDARY = "stereotrtframe"
PAGE = (b"<!doctype html><title>stereo-trt</title><body style='margin:0;background:#111'>"
        b"<img src='/stream.mjpg' style='max-width:100%'></body>")


class MjpegServer:
    """A sink that serves the newest view as MJPEG; start with ``start``, stop with ``close``.

    Args:
        port: TCP port; 0 picks a free one (see ``port`` after ``start``).
        host: address to bind, 127.0.0.1 by default.
        quality: JPEG quality 1..100.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", quality: int = 80) -> None:
        self.host, self.requested_port, self.quality = host, port, quality
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.sequence = 0
        self.stopping = False
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1] if self.httpd else self.requested_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> "MjpegServer":
        """Bind and serve in a daemon thread.

        Raises:
            InputError: the port cannot be bound (in use, or privileged).
        """
        try:
            self.httpd = ThreadingHTTPServer((self.host, self.requested_port), _handler_for(self))
        except OSError as exc:
            raise InputError(f"--serve {self.requested_port}: cannot listen on {self.host} ({exc.strerror}); "
                             "pick another port") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="mjpeg-server", daemon=True)
        self.thread.start()
        return self

    def publish(self, view: np.ndarray) -> bool:
        """Encode one RGB view as the newest frame and wake the streaming clients; always keeps going."""
        ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(view, cv2.COLOR_RGB2BGR),
                                  [int(cv2.IMWRITE_JPEG_QUALITY), int(self.quality)])
        if ok:
            with self.cond:
                self.jpeg, self.sequence = buffer.tobytes(), self.sequence + 1
                self.cond.notify_all()
        return True

    def next_frame(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        """Wait for a frame newer than sequence ``after``; (sequence, jpeg), jpeg None on timeout/stop."""
        with self.cond:
            self.cond.wait_for(lambda: self.sequence > after or self.stopping, timeout)
            if self.stopping or self.sequence <= after:
                return after, None
            return self.sequence, self.jpeg

    def close(self) -> None:
        """Stop serving: streaming clients end, the socket closes."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None


def _handler_for(server: MjpegServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?")[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html", PAGE)
            elif path == "/frame.jpg":
                _, jpeg = server.next_frame(0, timeout=5.0)
                if jpeg is None:
                    self._send(503, "text/plain", b"no frame yet\n")
                else:
                    self._send(200, "image/jpeg", jpeg)
            elif path == "/stream.mjpg":
                self._stream()
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            sequence = 0
            try:
                while not server.stopping:
                    sequence, jpeg = server.next_frame(sequence, timeout=1.0)
                    if jpeg is None:
                        continue
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(jpeg)}\r\n\r\n".encode("ascii"))
                    self.wfile.write(jpeg + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the viewer closed the page

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            return  # one line per request would drown the loop's status line

    return Handler
