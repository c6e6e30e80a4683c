"""What this machine can do for stereo-trt, and how to fix what is missing.

Each probe is split in two: a pure parser that takes the file contents or command output
(tested on real sample text in the documented formats) and a thin reader. ``collect`` runs
them all and returns ``Check`` rows; ``format_report`` prints them; ``stereo-trt doctor``
exits 0 whatever it finds, since a report is not a failure.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

MODEL_FILE = "/proc/device-tree/model"
L4T_FILE = "/etc/nv_tegra_release"

# L4T (Jetson Linux) release -> JetPack, from NVIDIA's JetPack archive (as tabulated in
# rbonghi/jetson_stats jtop/core/jetson_variables.py). JetPack 5 ships TensorRT 8.5,
# JetPack 6.1/6.2 ship TensorRT 10.3.
JETPACK_FOR_L4T = {
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "35.6.1": "5.1.5", "35.6.2": "5.1.5", "35.6.3": "5.1.5", "35.6.4": "5.1.6",
    "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.2": "6.1", "36.4.3": "6.2",
    "36.4.4": "6.2.1", "36.4.7": "6.2.1", "36.5.0": "6.2.2",
}
STATUSES = ("ok", "warn", "missing", "info")


@dataclass
class Check:
    """One row of the report.

    Attributes:
        name: what was checked ("TensorRT", "power mode" ...).
        status: "ok", "warn" (works, but not as it should for this toolkit), "missing", "info".
        value: what was found ("10.3.0", "MAXN (mode 0)", "not installed").
        hint: how to fix it, or None.
    """

    name: str
    status: str
    value: str
    hint: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# ---- pure parsers (real formats) ----------------------------------------------------------

def parse_device_model(text: str | None) -> str | None:
    """/proc/device-tree/model: a NUL-terminated string such as "NVIDIA Jetson AGX Orin Developer Kit"."""
    if not text:
        return None
    model = text.replace("\x00", "").strip()
    return model or None


def parse_l4t_release(text: str | None) -> str | None:
    """/etc/nv_tegra_release "# R35 (release), REVISION: 4.1, GCID: ..." -> "35.4.1"."""
    if not text:
        return None
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)", text)
    if not match:
        return None
    return ".".join(match.groups())


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """The JetPack release of an L4T release ("35.4.1" -> "5.1.2"); None when not in the table."""
    return JETPACK_FOR_L4T.get(l4t or "")


def parse_nvpmodel(text: str | None) -> tuple | None:
    """``nvpmodel -q`` output "NV Power Mode: MAXN\\n0" -> ("MAXN", 0); the id may be absent."""
    if not text:
        return None
    match = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not match:
        return None
    mode_id = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    return match.group(1), int(mode_id.group(1)) if mode_id else None


def parse_jetson_clocks(text: str | None) -> bool | None:
    """``jetson_clocks --show``: clocks are locked when the GPU's MinFreq equals its MaxFreq.

    Returns None when the output has no GPU line (for example the not-root error).
    """
    if not text:
        return None
    match = re.search(r"^\s*GPU MinFreq=(\d+) MaxFreq=(\d+)", text, re.MULTILINE)
    if not match:
        return None
    return match.group(1) == match.group(2)


def parse_nvidia_smi(text: str | None) -> list:
    """``nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader`` rows."""
    gpus = []
    for line in (text or "").splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) >= 3 and fields[0]:
            gpus.append({"name": fields[0], "driver": fields[1], "compute_capability": fields[2]})
    return gpus


def parse_nvcc_version(text: str | None) -> str | None:
    """``nvcc --version`` "... Cuda compilation tools, release 12.6, V12.6.68" -> "12.6"."""
    match = re.search(r"release (\d+\.\d+)", text or "")
    return match.group(1) if match else None


def parse_gstreamer(build_information: str | None) -> tuple:
    """From ``cv2.getBuildInformation()``: (has GStreamer, its version or None)."""
    match = re.search(r"GStreamer:\s*(YES|NO)(?:\s*\(([^)]*)\))?", build_information or "")
    if not match:
        return False, None
    return match.group(1) == "YES", match.group(2)


# ---- readers ------------------------------------------------------------------------------

def read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def run_command(argv: list, timeout: float = 10.0) -> str | None:
    """stdout + stderr of a command, or None when it is not installed or cannot run."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              universal_newlines=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def module_version(module, distribution: str | None = None) -> str:
    version = getattr(module, "__version__", None)
    if version is None and distribution:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            version = None
    return str(version or "unknown version")


def import_module(name: str):
    """The module, or the one-line reason it cannot be imported (a string)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except OSError as exc:  # a wheel whose shared libraries are missing
        return str(exc).splitlines()[0]


# ---- checks -------------------------------------------------------------------------------

def check_jetson(model_text: str | None, release_text: str | None) -> list:
    """Jetson model and L4T/JetPack release rows (nothing on a non-Jetson machine)."""
    model = parse_device_model(model_text)
    l4t = parse_l4t_release(release_text)
    if l4t is None and not (model and "jetson" in model.lower()):
        return []
    rows = [Check("Jetson model", "info", model or "unknown (no /proc/device-tree/model)")]
    if l4t is None:
        rows.append(Check("JetPack", "warn", "unknown (no /etc/nv_tegra_release)",
                          "install JetPack with SDK Manager or `sudo apt install nvidia-jetpack`"))
        return rows
    jetpack = jetpack_for_l4t(l4t)
    major = int(l4t.split(".")[0])
    supported = major in (35, 36)
    rows.append(Check(
        "JetPack", "ok" if supported else "warn",
        f"{jetpack or 'unknown'} (L4T R{l4t})",
        None if supported else "stereo-trt targets JetPack 5 (L4T R35) and JetPack 6 (L4T R36)",
    ))
    return rows


def check_power(nvpmodel_text: str | None, clocks_text: str | None) -> list:
    """Power mode and clock-lock rows (Jetson only: both tools ship with L4T)."""
    rows = []
    mode = parse_nvpmodel(nvpmodel_text)
    if nvpmodel_text is not None:
        if mode is None:
            rows.append(Check("power mode", "warn", "unreadable", "run `sudo nvpmodel -q`"))
        else:
            name, mode_id = mode
            rows.append(Check("power mode", "ok" if "MAXN" in name.upper() else "warn",
                              f"{name}" + ("" if mode_id is None else f" (mode {mode_id})"),
                              None if "MAXN" in name.upper() else
                              "for full speed: `sudo nvpmodel -q --verbose` lists the modes; pick MAXN with `sudo nvpmodel -m <id>`"))
    if clocks_text is not None:
        locked = parse_jetson_clocks(clocks_text)
        if locked is None:
            rows.append(Check("clocks locked", "info", "unknown", "run `sudo jetson_clocks --show` (needs root)"))
        else:
            rows.append(Check("clocks locked", "ok" if locked else "warn", "yes" if locked else "no",
                              None if locked else "lock clocks before benchmarking: `sudo jetson_clocks`"))
    return rows


def check_gpu(smi_text: str | None, is_jetson: bool) -> list:
    """GPU and driver from nvidia-smi (desktop; JetPack 5 has no nvidia-smi)."""
    gpus = parse_nvidia_smi(smi_text)
    if gpus:
        return [Check("GPU", "ok", f"{g['name']} (compute capability {g['compute_capability']}, driver {g['driver']})")
                for g in gpus]
    if is_jetson:
        return [Check("GPU", "info", "integrated Jetson GPU (see the CUDA module row for its name)")]
    return [Check("GPU", "missing", "no NVIDIA GPU / driver found (nvidia-smi missing or silent)",
                  "TensorRT needs an NVIDIA GPU and driver; ONNX Runtime on the CPU still runs every stage")]


def check_cuda_toolkit(nvcc_text: str | None, is_jetson: bool) -> Check:
    version = parse_nvcc_version(nvcc_text)
    if version:
        return Check("CUDA toolkit", "ok", f"nvcc {version}")
    hint = ("JetPack installs it under /usr/local/cuda: `export PATH=/usr/local/cuda/bin:$PATH`" if is_jetson
            else "only needed to pip-install pycuda; cuda-python needs no toolkit")
    return Check("CUDA toolkit", "info", "nvcc not on PATH", hint)


def check_tensorrt(trt, is_jetson: bool) -> Check:
    """TensorRT's Python bindings: version and which build path this toolkit takes with them."""
    if isinstance(trt, str):
        hint = ("TensorRT comes with JetPack (`sudo apt install nvidia-jetpack`); in a venv use "
                "--system-site-packages; do not pip-install tensorrt on a Jetson") if is_jetson else \
            "`pip install tensorrt` (NVIDIA's wheels), or NVIDIA's deb/tar packages"
        return Check("TensorRT", "missing", f"not importable ({trt})", hint)
    from toolkit.errors import InputError
    from toolkit.trt.versions import TrtVersion, supports

    version = module_version(trt)
    try:
        parsed = TrtVersion.parse(version)
    except InputError:
        return Check("TensorRT", "warn", version, "unrecognised version string")
    if not parsed.at_least(8, 5):
        return Check("TensorRT", "warn", version, "stereo-trt needs TensorRT 8.5 or newer (JetPack 5+)")
    if is_jetson and parsed.major >= 11:
        return Check("TensorRT", "warn", version, "TensorRT 11 does not support JetPack; use JetPack's TensorRT")
    path = "strongly typed: FP16 via `export --fp16`, INT8 via `quantize`" if not supports(parsed, "precision_flags") \
        else "FP16 flag and INT8 calibration available"
    return Check("TensorRT", "ok", f"{version} ({path})")


def check_cuda_modules(pycuda, cuda_python, is_jetson: bool) -> list:
    rows = []
    for label, module in (("pycuda", pycuda), ("cuda-python", cuda_python)):
        if isinstance(module, str):
            rows.append(Check(label, "missing", f"not importable ({module})"))
        else:
            distribution = "pycuda" if label == "pycuda" else "cuda-python"
            rows.append(Check(label, "ok", module_version(module, distribution)))
    if all(row.status == "missing" for row in rows):
        hint = ("`pip install pycuda` (builds against JetPack's CUDA; needs nvcc on PATH) or `pip install cuda-python`"
                if is_jetson else "`pip install cuda-python` (or pycuda, which needs the CUDA toolkit to build)")
        for row in rows:
            row.hint = hint
    elif rows[1].status == "missing":
        rows[1].status, rows[1].hint = "info", "needed only for --cuda-graph: `pip install cuda-python`"
    elif rows[0].status == "missing":
        rows[0].status, rows[0].hint = "info", "optional: cuda-python is used instead"
    return rows


def check_onnxruntime(ort) -> Check:
    if isinstance(ort, str):
        return Check("ONNX Runtime", "missing", f"not importable ({ort})",
                     "`pip install onnxruntime` (CPU) or `onnxruntime-gpu`")
    providers = ", ".join(ort.get_available_providers())
    return Check("ONNX Runtime", "ok", f"{module_version(ort)} (providers: {providers})")


def check_torch(torch) -> Check:
    if isinstance(torch, str):
        return Check("PyTorch", "info", "not installed",
                     "needed only to export/train (workstation); the device runs ONNX/TensorRT without it")
    cuda = torch.version.cuda
    available = bool(torch.cuda.is_available()) if cuda else False
    return Check("PyTorch", "ok", f"{torch.__version__} (CUDA {cuda or 'none'}, GPU {'usable' if available else 'not used'})")


def check_opencv(cv2, is_jetson: bool) -> Check:
    if isinstance(cv2, str):
        return Check("OpenCV", "missing", f"not importable ({cv2})",
                     "JetPack's python3-opencv on a Jetson; `pip install opencv-python` elsewhere")
    has_gst, gst_version = parse_gstreamer(cv2.getBuildInformation())
    value = f"{cv2.__version__} (GStreamer {'YES ' + (gst_version or '') if has_gst else 'NO'})".replace(" )", ")")
    if has_gst:
        return Check("OpenCV", "ok", value)
    if is_jetson:
        return Check("OpenCV", "warn", value,
                     "this OpenCV cannot open CSI cameras: `pip uninstall opencv-python` so JetPack's OpenCV "
                     "(built with GStreamer) is used")
    return Check("OpenCV", "info", value, "fine for USB cameras and video files; CSI cameras need GStreamer")


def check_polygraphy(polygraphy) -> Check:
    if isinstance(polygraphy, str):
        return Check("Polygraphy", "info", "not installed", "optional, for the GPU tests: `pip install polygraphy`")
    return Check("Polygraphy", "ok", module_version(polygraphy))


# ---- report -------------------------------------------------------------------------------

def collect(read: Callable = read_text, run: Callable = run_command, load: Callable = import_module) -> dict:
    """Run every probe.

    Args:
        read: path -> file text or None.
        run: argv -> command output or None.
        load: module name -> module, or the reason it cannot be imported.

    Returns:
        {"machine": {...}, "checks": [Check, ...]}.
    """
    model_text, release_text = read(MODEL_FILE), read(L4T_FILE)
    jetson_rows = check_jetson(model_text, release_text)
    is_jetson = bool(jetson_rows)
    checks = list(jetson_rows)
    if is_jetson:
        checks += check_power(run(["nvpmodel", "-q"]), run(["jetson_clocks", "--show"]))
    checks += check_gpu(run(["nvidia-smi", "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"]),
                        is_jetson)
    checks.append(check_cuda_toolkit(run(["nvcc", "--version"]), is_jetson))
    checks.append(check_tensorrt(load("tensorrt"), is_jetson))
    checks += check_cuda_modules(load("pycuda.driver"), load_cuda_python(load), is_jetson)
    checks.append(check_onnxruntime(load("onnxruntime")))
    checks.append(check_torch(load("torch")))
    checks.append(check_opencv(load("cv2"), is_jetson))
    checks.append(check_polygraphy(load("polygraphy")))
    machine = {"python": platform.python_version(), "machine": platform.machine(), "system": platform.system(),
               "jetson": is_jetson}
    return {"machine": machine, "checks": checks}


def load_cuda_python(load: Callable):
    """cuda-python under its current module name, else its pre-12.6 one."""
    module = load("cuda.bindings.runtime")
    return load("cuda.cudart") if isinstance(module, str) else module


def as_json(report: dict) -> dict:
    """The report as plain JSON data, with a one-word readiness summary per backend."""
    checks = report["checks"]
    status = {c.name: c.status for c in checks}
    trt_ready = status.get("TensorRT") == "ok" and "ok" in (status.get("pycuda"), status.get("cuda-python"))
    return {
        "machine": report["machine"],
        "ready": {"tensorrt": trt_ready, "onnxruntime": status.get("ONNX Runtime") == "ok"},
        "checks": [c.as_dict() for c in checks],
    }


def format_report(report: dict) -> str:
    """Aligned text, one row per check, each hint on the line below its row."""
    marks = {"ok": "ok", "warn": "!!", "missing": "--", "info": ".."}
    width = max(len(c.name) for c in report["checks"])
    lines = []
    for check in report["checks"]:
        lines.append(f"[{marks[check.status]}] {check.name:<{width}}  {check.value}")
        if check.hint:
            lines.append(f"     {'':<{width}}  fix: {check.hint}")
    ready = as_json(report)["ready"]
    lines.append("")
    lines.append(f"TensorRT backend: {'ready' if ready['tensorrt'] else 'not ready'}; "
                 f"ONNX Runtime backend: {'ready' if ready['onnxruntime'] else 'not ready'}")
    return "\n".join(lines)
