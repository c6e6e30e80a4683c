"""Per-layer precision of a built engine, from TensorRT's engine inspector.

``IEngineInspector.get_engine_information(LayerInformationFormat.JSON)`` (8.2+) returns
``{"Layers": [...], ...}``. With ``ProfilingVerbosity.DETAILED`` each layer is an object whose
``Inputs``/``Outputs`` entries carry the tensor type: ``"Format/Datatype"`` up to 10.x
("Row major linear FP32 format (kLINEAR)", "Float"), and from 11.x the field is split
(``"DataType"``, ``"Format"``); without DETAILED a layer is only its name. Parsing is pure
and tested on those documented strings; only ``engine_layer_summary`` touches TensorRT.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import json
from collections import Counter

# Checked in order: a longer name first where a shorter one is inside it (BFLOAT16 holds FLOAT).
DTYPE_WORDS = (
    ("BFLOAT16", "BF16"), ("BF16", "BF16"), ("UINT8", "UINT8"), ("INT8", "INT8"), ("INT4", "INT4"),
    ("FP8", "FP8"), ("FP16", "FP16"), ("HALF", "FP16"), ("FP32", "FP32"), ("FLOAT", "FP32"),
    ("INT32", "INT32"), ("INT64", "INT64"), ("BOOL", "BOOL"),
)
MAX_LISTED = 50


def dtype_from_text(text: str) -> str | None:
    """"Channel major FP16 format where channel % 8 == 0" -> "FP16"; None when no type is named."""
    upper = str(text).upper()
    for word, dtype in DTYPE_WORDS:
        if word in upper:
            return dtype
    return None


def tensor_dtype(entry: dict) -> str | None:
    """The type of one inspector tensor entry, whichever schema (10.x or 11.x) it follows."""
    for key in ("DataType", "Format/Datatype", "Format"):
        if key in entry:
            dtype = dtype_from_text(entry[key])
            if dtype is not None:
                return dtype
    return None


def layer_precision(layer: dict) -> str:
    """A layer's precision as the type of its first typed output (what it writes)."""
    for entry in layer.get("Outputs", []):
        dtype = tensor_dtype(entry)
        if dtype is not None:
            return dtype
    return "unknown"


def summarize_layers(layers: list, engine_precision: str) -> dict | None:
    """Count layers per precision and list the ones that stayed FP32 in a reduced-precision engine.

    Args:
        layers: the inspector's "Layers" list.
        engine_precision: "fp32", "fp16" or "int8".

    Returns:
        {"layers": n, "by_precision": {...}, "fp32_layers": [names, at most 50]}, or None when
        the engine was built without detailed profiling verbosity (layers are bare names).
    """
    if not layers or not all(isinstance(layer, dict) for layer in layers):
        return None
    by_precision = Counter(layer_precision(layer) for layer in layers)
    summary = {"layers": len(layers), "by_precision": dict(sorted(by_precision.items()))}
    if engine_precision != "fp32":
        names = [str(layer.get("Name", "?")) for layer in layers if layer_precision(layer) == "FP32"]
        summary["fp32_layers"] = names[:MAX_LISTED]
    return summary


def parse_engine_information(text: str) -> list:
    """The "Layers" list of ``get_engine_information(JSON)``; [] when the text has none."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return []
    layers = record.get("Layers", []) if isinstance(record, dict) else []
    return layers if isinstance(layers, list) else []


def engine_layer_summary(engine, trt, engine_precision: str) -> dict | None:
    """Per-layer precision summary of a deserialized engine (see ``summarize_layers``)."""
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    return summarize_layers(parse_engine_information(text), engine_precision)
