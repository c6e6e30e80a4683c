"""What the benchmark ran on: CPU, cores, threads, GPU, Jetson model and power mode, versions.

Only reads what is there; a probe that fails (no ``nvidia-smi``, no ``nvpmodel``) leaves
its field out rather than guessing.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from toolkit.provenance import tool_versions

PROBE_TIMEOUT_S = 10


def _run_probe(command: list) -> str | None:
    """Output of a short system command, or None when it is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (x86 "model name", Arm "Hardware"/"Model")."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers restrict)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def jetson_model() -> str | None:
    """The board name on a Jetson (device tree), else None."""
    model = Path("/proc/device-tree/model")
    if model.is_file():
        text = model.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
        return text if "jetson" in text.lower() or "nvidia" in text.lower() else None
    return None


def jetson_power_mode() -> str | None:
    """``nvpmodel -q`` output on one line (the active power mode), when nvpmodel exists."""
    text = _run_probe(["nvpmodel", "-q"])
    return " ".join(text.split()) if text else None


def gpu_names() -> list:
    """GPU names from ``nvidia-smi``, else from an already imported PyTorch with CUDA; [] when none."""
    text = _run_probe(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    if text:
        return [line.strip() for line in text.splitlines() if line.strip()]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def load_average() -> list | None:
    """System load over 1, 5 and 15 minutes (Unix), or None. A busy machine slows every row."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(value, 2) for value in os.getloadavg()]


def thread_settings(requested: int | None) -> dict:
    """Thread counts in effect: the requested one, and what PyTorch/OpenCV/OMP report."""
    import cv2

    settings = {"requested": requested, "opencv": cv2.getNumThreads(),
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    torch = sys.modules.get("torch")
    if torch is not None:
        settings["torch"] = torch.get_num_threads()
    return settings


def environment(threads: int | None = None, load_at_start: list | None = None) -> dict:
    """The environment block of a report.

    Args:
        threads: the thread count the run asked for (None = libraries' defaults).
        load_at_start: ``load_average()`` taken when the run started.
    """
    env = {
        "load_average": {"start": load_at_start, "end": load_average()},
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "threads": thread_settings(threads),
        "gpus": gpu_names(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "versions": tool_versions(),
    }
    board = jetson_model()
    if board:
        env["jetson"] = board
        env["power_mode"] = jetson_power_mode()
    return env
