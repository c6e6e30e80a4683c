"""Building, saving and loading the student: our checkpoint format and published RT-IGEV weights.

Our format is a dict ``{"format": "stereo-trt/rt-igev", "config": ..., "state_dict": ...,
"meta": ...}``. Published checkpoints are plain state dicts, often with the ``module.``
prefix of DataParallel, sometimes wrapped under "state_dict"/"model"/"net".
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from toolkit.errors import CheckpointError
from toolkit.model.config import StudentConfig
from toolkit.model.network import RTIGEVStereo
from toolkit.provenance import atomic_path, sha256_file

FORMAT = "stereo-trt/rt-igev"
WRAPPER_KEYS = ("state_dict", "model", "net")
DATAPARALLEL_PREFIX = "module."
# How many key names an error message lists before summarising with a count.
KEYS_SHOWN = 5


def build_student(config: StudentConfig | None = None, seed: int = 0) -> RTIGEVStereo:
    """A freshly initialised student, identical for identical (config, seed).

    The global random state is left untouched.

    Args:
        config: network configuration (default: StudentConfig()).
        seed: seed of the weight initialisation.

    Returns:
        RTIGEVStereo in training mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RTIGEVStereo(config or StudentConfig())


def save_student(path: str | os.PathLike, model: RTIGEVStereo, config: StudentConfig, meta: dict,
                 half: bool = False) -> Path:
    """Write a checkpoint in our format, atomically.

    Args:
        path: destination file.
        model: the network whose state_dict is stored.
        config: its configuration.
        meta: free-form provenance (JSON-like values), stored as is.
        half: store floating-point tensors as fp16 (half the size; loaded back as fp32).

    Returns:
        the path written.
    """
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        state[key] = value.half() if half and value.is_floating_point() else value.clone()
    payload = {"format": FORMAT, "config": config.to_dict(), "state_dict": state, "meta": dict(meta)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:120]


def _read_checkpoint(path: Path):
    """torch.load with weights_only, turning every failure into a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; expected a .pth file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            # A real pickle holding arbitrary Python objects: unpickling it could run code.
            raise CheckpointError(
                f"checkpoint {path} holds Python objects besides tensors, which are not loaded for safety; "
                "expected a weights-only file (re-save it with torch.save(model.state_dict(), path))"
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch checkpoint ({_first_line(error)}); expected a file written by torch.save"
        ) from None
    except Exception as error:  # noqa: BLE001 - torch.load on arbitrary bytes raises many different types
        raise CheckpointError(
            f"checkpoint {path} is not a PyTorch checkpoint ({type(error).__name__}: {_first_line(error)}); "
            "expected a file written by torch.save"
        ) from None


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _unwrap(obj, path: Path):
    """Find the state dict and any stored config inside a loaded checkpoint.

    Returns:
        (state_dict, config dict or None, meta dict).
    """
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj.get("state_dict"), obj.get("config"), obj.get("meta") or {}
    if _is_state_dict(obj):
        return obj, None, {}
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if _is_state_dict(obj.get(key)):
                return obj[key], None, {}
    kind = f"dict with keys {sorted(map(str, obj))[:KEYS_SHOWN]}" if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(
        f"checkpoint {path} holds a {kind}; expected an RT-IGEV state dict (plain, or under 'state_dict'/'model'/'net')"
    )


def _strip_prefix(state: dict) -> dict:
    """Drop the DataParallel ``module.`` prefix when every key carries it."""
    if state and all(key.startswith(DATAPARALLEL_PREFIX) for key in state):
        return {key[len(DATAPARALLEL_PREFIX):]: value for key, value in state.items()}
    return state


def _describe(keys: list) -> str:
    shown = ", ".join(keys[:KEYS_SHOWN])
    more = f" and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else ""
    return f"{len(keys)} ({shown}{more})"


def _check_keys(state: dict, expected: dict, path: Path) -> None:
    """Raise one CheckpointError naming missing, unexpected and mis-shaped keys (with counts)."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{key} {tuple(state[key].shape)}!={tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key].shape
    )
    problems = [
        f"{label} keys: {_describe(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit the RT-IGEV student: {'; '.join(problems)}; "
            "expected the keys and shapes of the published core_rt network"
        )


def load_student(path: str | os.PathLike, config: StudentConfig | None = None, map_location="cpu"):
    """Load our checkpoints or published RT-IGEV weights into a student in eval mode.

    Args:
        path: checkpoint file.
        config: configuration to use; default: the one stored in the checkpoint (ours) or
            StudentConfig() (published weights, which store none).
        map_location: device for the model.

    Returns:
        (model in eval mode, config, info) where info has "path", "sha256", "format"
        ("stereo-trt" or "state_dict") and "meta".
    """
    path = Path(path)
    state, stored_config, meta = _unwrap(_read_checkpoint(path), path)
    if not _is_state_dict(state):
        raise CheckpointError(f"checkpoint {path} has an empty or malformed state_dict; expected tensors by key")
    if config is None:
        config = StudentConfig.from_dict(stored_config) if stored_config else StudentConfig()
    model = RTIGEVStereo(config)
    state = {key: value.float() if value.is_floating_point() else value for key, value in _strip_prefix(state).items()}
    _check_keys(state, model.state_dict(), path)
    model.load_state_dict(state, strict=True)
    model = model.to(map_location).eval()
    info = {
        "path": str(path),
        "sha256": sha256_file(path),
        "format": "stereo-trt" if stored_config is not None else "state_dict",
        "meta": meta,
    }
    return model, config, info
