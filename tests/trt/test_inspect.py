"""Per-layer precision summary from the engine inspector's JSON (parsing only; the strings are
the documented ones: TensorRT's inspector docs and samples)."""

import json

from toolkit.trt.inspect import dtype_from_text, parse_engine_information, summarize_layers, tensor_dtype


def test_dtype_words_in_inspector_formats():
    # 11.x migration guide: "Row major linear FP32 format (kLINEAR)"; sampleEditableTimingCache README: "Float".
    assert dtype_from_text("Row major linear FP32 format (kLINEAR)") == "FP32"
    assert dtype_from_text("Float") == "FP32"
    assert dtype_from_text("Half") == "FP16"
    assert dtype_from_text("Int8") == "INT8"
    assert dtype_from_text("BFloat16") == "BF16"
    assert dtype_from_text("N/A due to dynamic shapes") is None


def test_both_schemas_are_read():
    assert tensor_dtype({"Name": "x", "Format/Datatype": "Float"}) == "FP32"  # up to 10.x
    assert tensor_dtype({"Name": "x", "DataType": "Half", "Format": "Row major linear FP16 format (kLINEAR)"}) == "FP16"


def layer(name, out_type):
    return {"Name": name, "LayerType": "CaskConvolution", "Inputs": [], "Outputs": [{"Name": name + "_out", "Format/Datatype": out_type}]}


def test_summary_counts_precisions_and_lists_fp32_fallbacks():
    text = json.dumps({"Layers": [layer("conv1", "Half"), layer("conv2", "Half"), layer("softmax", "Float")],
                       "Bindings": ["left", "right", "disparity"]})
    summary = summarize_layers(parse_engine_information(text), "fp16")
    assert summary == {"layers": 3, "by_precision": {"FP16": 2, "FP32": 1}, "fp32_layers": ["softmax"]}


def test_names_only_verbosity_gives_no_summary():
    # Without ProfilingVerbosity.DETAILED each layer is only its name.
    assert summarize_layers(parse_engine_information(json.dumps({"Layers": ["conv1", "conv2"]})), "fp16") is None
    assert parse_engine_information("not json") == []
