"""What produced an artifact, and writing artifacts so nothing half-written is left behind.

Every artifact (ONNX, Q/DQ ONNX, engine, calibration cache, report, checkpoint) carries a
record built here: checkpoint hash, input size, iterations, max disparity, precision and
tool versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from toolkit import __version__

TRACKED_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxslim", "tensorrt", "polygraphy", "pycuda", "opencv-python", "numpy")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the toolkit, Python and every tracked package that is installed."""
    versions = {"stereo-trt": __version__, "python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def record(**fields) -> dict:
    """A provenance record: the given fields plus creation time, host and tool versions."""
    return {
        **fields,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "system": platform.system(), "node": platform.node()},
        "tool_versions": tool_versions(),
    }


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix so that writers choosing a format by extension
    (OpenCV, ONNX) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; artifacts get the permissions any other new file would.
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return Path(path)


def sidecar_path(artifact: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.onnx.json``: the JSON record that travels with an artifact."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")
