"""The JSON record that travels with every engine, and the check that an engine fits this device.

A TensorRT engine only runs on the TensorRT version and GPU model that built it. The
sidecar (``model.engine.json``) records both, plus the precision, profiles, the source
ONNX's hash and metadata, the build settings and a per-layer precision summary, so that a
mismatch is refused with a message that says to rebuild, instead of a deserialization crash.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ModelError
from toolkit.provenance import sidecar_path

ENGINE_FORMAT = "stereo-trt/engine"


@dataclass(frozen=True)
class DeviceIdentity:
    """What an engine is tied to: the TensorRT version and the GPU model.

    Attributes:
        tensorrt: ``tensorrt.__version__`` ("10.3.0.30").
        gpu: CUDA device name ("Orin", "NVIDIA GeForce RTX 4090").
        compute_capability: "8.7".
    """

    tensorrt: str
    gpu: str
    compute_capability: str

    def describe(self) -> str:
        return f"TensorRT {self.tensorrt} on {self.gpu} (compute capability {self.compute_capability})"

    def as_dict(self) -> dict:
        return {"tensorrt": self.tensorrt, "gpu": {"name": self.gpu, "compute_capability": self.compute_capability}}


def identity_from_sidecar(sidecar: dict, source: str = "engine sidecar") -> DeviceIdentity:
    """Read the build identity from a sidecar dict.

    Raises:
        ModelError: the sidecar lacks the TensorRT version or GPU fields.
    """
    gpu = sidecar.get("gpu") or {}
    try:
        return DeviceIdentity(str(sidecar["tensorrt"]), str(gpu["name"]), str(gpu["compute_capability"]))
    except KeyError as missing:
        raise ModelError(
            f"{source}: no {missing.args[0]!r} field; expected a sidecar written by `stereo-trt build`"
        ) from None


def check_engine_compat(sidecar: dict, current: DeviceIdentity, source: str = "engine") -> None:
    """Refuse an engine built by another TensorRT version or on another GPU model.

    Args:
        sidecar: the engine's sidecar record.
        current: this machine's TensorRT version and GPU.
        source: the engine path, for the message.

    Raises:
        ModelError: "engine built with TensorRT X on <GPU>; this is TensorRT Y on <GPU>: rebuild ...".
    """
    built = identity_from_sidecar(sidecar, f"{source}.json")
    if built == current:
        return
    raise ModelError(
        f"{source}: engine built with {built.describe()}; this is {current.describe()}: "
        "rebuild it on this device with `stereo-trt build`"
    )


def read_engine_sidecar(engine: str | os.PathLike) -> dict | None:
    """The sidecar of an engine file, or None when there is none (an engine from trtexec, say).

    Raises:
        ModelError: a sidecar exists but is not JSON, or is not an engine record.
    """
    path = sidecar_path(engine)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{path}: not valid JSON; expected the sidecar `stereo-trt build` writes") from None
    if not isinstance(record, dict) or record.get("format") != ENGINE_FORMAT:
        raise ModelError(f"{path}: not an engine sidecar (format {ENGINE_FORMAT!r} expected)")
    return record


def slug(text: str) -> str:
    """A file-name-safe lowercase tag: "NVIDIA GeForce RTX 4090" -> "nvidia-geforce-rtx-4090"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def device_tag(identity: DeviceIdentity) -> str:
    """Tag for artifacts tied to a device: "orin-sm87-trt10.3.0"."""
    short = ".".join(identity.tensorrt.split(".")[:3])
    return f"{slug(identity.gpu)}-sm{identity.compute_capability.replace('.', '')}-trt{short}"


def default_engine_path(onnx_path: str | os.PathLike, precision: str, identity: DeviceIdentity,
                        engines_dir: str | os.PathLike = "engines") -> Path:
    """``engines/<onnx stem>_<precision>_<device tag>.engine``: the name says what it only runs on."""
    return Path(engines_dir) / f"{Path(onnx_path).stem}_{precision}_{device_tag(identity)}.engine"


def default_timing_cache_path(engine_path: str | os.PathLike, identity: DeviceIdentity) -> Path:
    """One timing cache per device next to the engines, reused by every build there."""
    return Path(engine_path).parent / f"timing_{device_tag(identity)}.cache"


def default_calib_cache_path(onnx_path: str | os.PathLike, identity: DeviceIdentity,
                             calibration_dir: str | os.PathLike = "calibration") -> Path:
    """``calibration/<onnx stem>_trt<version>.cache``: a legacy cache is tied to one TensorRT version."""
    short = ".".join(identity.tensorrt.split(".")[:3])
    return Path(calibration_dir) / f"{Path(onnx_path).stem}_trt{short}.cache"
