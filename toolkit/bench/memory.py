"""Peak memory of one model, measured in a fresh process so rows do not blur into each other.

In the benchmark process every model is loaded at once and ONNX Runtime's arena,
PyTorch's caching allocator and glibc keep freed memory for reuse, so per-model numbers
read there would depend on the row order. Instead, for each row, a child process
(``python -m toolkit.bench.memory``) decodes the first pair, opens the model exactly as
the benchmark does, runs it ``calls`` times at the benchmark size and reports:

  * ``peak_rss_mb``: the child's peak resident set (VmHWM on Linux): what a
    process serving only this model needs, interpreter and libraries included;
  * ``baseline_rss_mb``: its resident set before the model was opened (Python, numpy,
    OpenCV and the toolkit), so ``peak - baseline`` is what the model and its backend
    library add;
  * ``gpu_mb`` (on a GPU only): ``torch.cuda.max_memory_allocated`` for PyTorch rows;
    otherwise device memory in use after the calls minus before opening the model
    (``cudaMemGetInfo``; counts the whole device, so other processes can add to it). On a
    Jetson, GPU and CPU share one memory, so the RSS figures already include it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.errors import StereoTrtError

MIB = 1024.0 * 1024.0
RESULT_PREFIX = "STEREO_TRT_MEMORY "


@dataclass
class MemoryUsage:
    """Memory of one row (see the module notes for what each figure counts)."""

    peak_rss_mb: float
    baseline_rss_mb: float
    model_rss_mb: float
    gpu_mb: float | None
    calls: int

    def as_dict(self) -> dict:
        return asdict(self)


def _proc_status_mb(field: str) -> float | None:
    """A kB field of /proc/self/status (Linux) in MiB, or None where there is no /proc."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return None


def current_rss_mb() -> float:
    """Resident set of this process now (VmRSS; elsewhere the peak so far)."""
    rss = _proc_status_mb("VmRSS")
    return rss if rss is not None else peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set of this process.

    Linux: VmHWM, the high-water mark of this program's own address space. ``ru_maxrss``
    is not used there: exec records the parent's resident set into it when the child is
    spawned (vfork), so a child of a large benchmark process would report the parent's size.
    Elsewhere ``ru_maxrss`` (bytes on macOS, KiB on other systems).
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024.0


def device_memory_used_mb() -> float | None:
    """Device memory in use on the current CUDA device (all processes), or None without CUDA.

    Tries cuda-python (``cuda.bindings.runtime``, older ``cuda.cudart``), then an active
    pycuda context; imports nothing that is not installed.
    """
    for module_name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            cudart = __import__(module_name, fromlist=["cudaMemGetInfo"])
        except ImportError:
            continue
        err, free, total = cudart.cudaMemGetInfo()
        if int(err) == 0:
            return (total - free) / MIB
    pycuda_driver = sys.modules.get("pycuda.driver")
    if pycuda_driver is not None and pycuda_driver.Context.get_current() is not None:
        free, total = pycuda_driver.mem_get_info()
        return (total - free) / MIB
    return None


def _torch_cuda_in_use():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        return torch
    return None


def measure_here(spec: str, options: dict, input_hw, left_path: str, right_path: str, calls: int) -> MemoryUsage:
    """Open one model in this process, run it ``calls`` times on one pair and read the peaks.

    Meant to run in a fresh child (see ``measure``); in a process that already ran other
    models the peak would include theirs.
    """
    from toolkit.backends import open_runner
    from toolkit.bench.models import spec_from_options
    from toolkit.data import io

    left, right = io.read_image(left_path), io.read_image(right_path)
    baseline = current_rss_mb()
    gpu_before = device_memory_used_mb()
    # options (``models.spec_options``) name the model and size themselves when the bench wrote them
    runner = open_runner(spec_from_options({"model": spec, "size": input_hw, **options}))
    with runner:
        for _ in range(calls):
            runner.infer(left, right)
        torch = _torch_cuda_in_use()
        if torch is not None:
            gpu = torch.cuda.max_memory_allocated() / MIB
        else:
            gpu_after = device_memory_used_mb()
            gpu = gpu_after - gpu_before if gpu_after is not None and gpu_before is not None else None
    peak = peak_rss_mb()
    return MemoryUsage(peak_rss_mb=peak, baseline_rss_mb=baseline, model_rss_mb=peak - baseline, gpu_mb=gpu,
                       calls=calls)


def measure(spec: str, options: dict, input_hw, left_path: Path, right_path: Path, calls: int = 2,
            timeout_s: float = 1800.0) -> MemoryUsage | str:
    """Measure one row's memory in a child process.

    Args:
        spec: the model as given to the benchmark (path or "sgbm").
        options: the row's ``RunnerSpec`` fields (``toolkit.bench.models.spec_options``).
        input_hw: the network size the benchmark runs at, or None.
        left_path, right_path: the pair to run (decoded by the child).
        calls: inferences to run (the first one allocates the workspaces).
        timeout_s: give up after this long.

    Returns:
        MemoryUsage, or a one-line reason when the child failed (the benchmark reports it).
    """
    request = {"spec": spec, "options": options, "input_hw": list(input_hw) if input_hw else None,
               "left": str(left_path), "right": str(right_path), "calls": calls}
    try:
        done = subprocess.run([sys.executable, "-m", "toolkit.bench.memory", json.dumps(request)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"memory probe timed out after {timeout_s:.0f} s"
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return MemoryUsage(**json.loads(line[len(RESULT_PREFIX):]))
    lines = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()
    return f"memory probe failed: {lines[-1][:200]}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="stereo-trt bench: peak memory of one model (internal)")
    parser.add_argument("request", help="JSON request written by toolkit.bench.memory.measure")
    request = json.loads(parser.parse_args(argv).request)
    try:
        usage = measure_here(request["spec"], request["options"], request["input_hw"], request["left"],
                             request["right"], request["calls"])
    except StereoTrtError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(RESULT_PREFIX + json.dumps(usage.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
