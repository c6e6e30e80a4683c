"""Ctrl-C in a real ``stereo-trt run`` process: the way users stop a long run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def interrupt_run(run_args: list[str], status_lines: int = 5, timeout_s: float = 120.0) -> tuple[int, str]:
    """Start ``python -m toolkit run RUN_ARGS``, send SIGINT after ``status_lines`` frame lines.

    The run must print a status line a frame (``--headless --status-every 0``).

    Returns:
        (exit code, everything the process printed).
    """
    command = [sys.executable, "-m", "toolkit", "run", *run_args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    shrink_pipe(process.stdout)
    try:
        deadline = time.monotonic() + timeout_s
        seen = 0
        while seen < status_lines and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen += line.startswith("frame ")
        assert seen == status_lines, "the run printed no status lines"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output


def shrink_pipe(stream) -> None:
    """Make a child's stdout pipe one page, so it can print at most a few hundred lines we have not read.

    The run blocks on a full pipe: however long this process is kept off the CPU on a busy
    machine, the run cannot reach the end of its source before the SIGINT this test sends.
    """
    import fcntl

    if hasattr(fcntl, "F_SETPIPE_SZ"):
        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, 4096)
