"""The provenance record stored inside every ONNX model the toolkit writes.

One metadata_props entry, key ``stereo_trt``, holds a JSON object:
``format`` ("stereo-trt/onnx"), ``checkpoint_sha256``, ``input_hw`` ([H, W], or None when
dynamic), ``dynamic`` ({"min": [H, W], "opt": [H, W], "max": [H, W]} or None), ``iters``,
``max_disp``, ``precision`` ("fp32" | "fp16" | "int8"), ``inputs``, ``outputs``,
``normalisation``, ``opset`` and ``tool_versions``. Engines and reports copy it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from toolkit.errors import ModelError

METADATA_KEY = "stereo_trt"
FORMAT = "stereo-trt/onnx"
NORMALISATION = "RGB 0..255 float32 in; 2*(x/255)-1 applied inside the network"


def set_stereo_metadata(model, record: dict) -> None:
    """Store ``record`` (JSON-serialisable) in an ``onnx.ModelProto``, replacing any earlier one."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({"format": FORMAT, **record}, sort_keys=True, default=str)


def get_stereo_metadata(model, source: str = "model") -> dict:
    """Return the record stored in an ``onnx.ModelProto``.

    Raises:
        ModelError: the model carries no stereo-trt record (not exported by this toolkit).
    """
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                return json.loads(prop.value)
            except json.JSONDecodeError:
                raise ModelError(f"{source}: its '{METADATA_KEY}' metadata is not valid JSON") from None
    raise ModelError(
        f"{source}: no '{METADATA_KEY}' metadata; expected an ONNX model written by `stereo-trt export` or `quantize`"
    )


def read_stereo_metadata(path: str | os.PathLike) -> dict:
    """Read the record from an ONNX file without loading its weights."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError / OSError depending on the damage
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None
    # An empty or damaged file can parse as an empty protobuf message: say so, not "no metadata".
    if not model.graph.node:
        raise ModelError(f"{path}: an ONNX file without a graph (empty or truncated); expected a model from "
                         "`stereo-trt export` or `quantize`")
    return get_stereo_metadata(model, str(path))
