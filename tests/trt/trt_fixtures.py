"""A minimal ONNX with the toolkit's I/O contract and metadata, for tests that stop before TensorRT
builds anything (option checks, the missing-TensorRT path). Real ONNX, real metadata."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from toolkit.onnx_meta import set_stereo_metadata


def contract_onnx(path: Path, hw=(64, 96), precision: str = "fp32", dynamic: dict | None = None) -> Path:
    """left/right (1, 3, H, W) -> disparity (1, 1, H, W): mean of |left - right| over channels."""
    dims = [1, 3, "H", "W"] if dynamic else [1, 3, *hw]
    out_dims = [1, 1, "H", "W"] if dynamic else [1, 1, *hw]
    graph = helper.make_graph(
        [helper.make_node("Sub", ["left", "right"], ["diff"]),
         helper.make_node("Abs", ["diff"], ["absdiff"]),
         helper.make_node("ReduceMean", ["absdiff"], ["disparity"], axes=[1], keepdims=1)],
        "contract",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("left", "right")],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, out_dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    set_stereo_metadata(model, {
        "checkpoint_sha256": "0" * 64, "input_hw": None if dynamic else list(hw), "dynamic": dynamic,
        "iters": 1, "max_disp": 32, "precision": precision,
    })
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
