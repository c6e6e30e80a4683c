"""The student through TensorRT on a real GPU: FP32, FP16 and INT8 engines built by ``build_engine``,
run by ``TensorRTRunner``, checked against PyTorch, ONNX Runtime and Polygraphy's own runner.

Runs wherever TensorRT is importable (tests/conftest.py skips it elsewhere, with the reason):
    pytest -m tensorrt tests/trt -v
Engines are built once per session at 96x128 with 4 iterations; expect a few minutes on a
desktop GPU and longer on a Jetson.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from toolkit.backends.tensorrt import TensorRTRunner
from toolkit.backends.torch_runner import TorchRunner
from toolkit.data.builtin import builtin_pair
from toolkit.errors import ModelError
from toolkit.export import DynamicShapes, export_onnx
from toolkit.onnx_meta import get_stereo_metadata, set_stereo_metadata
from toolkit.paths import BUILTIN_CHECKPOINT
from toolkit.preprocess import prepare_pair
from toolkit.trt import cuda_mem
from toolkit.trt.build import build_engine
from toolkit.trt.versions import supports

pytestmark = pytest.mark.tensorrt

SIZE = (96, 128)
ITERS = 4
FP32_EPE = 0.02  # TF32 is cleared, so FP32 engines compute in FP32
FP16_EPE = 0.05  # issue 5: EPE vs PyTorch <= 0.05 px for FP16
INT8_EPE = 0.2   # issue 4: the quantize budget, INT8 vs PyTorch <= 0.2 px
INT8_VS_ORT_EPE = 0.1  # TensorRT and ONNX Runtime running the same Q/DQ scales

# The FP16/INT8 budgets are defined on the trained weights: a randomly initialised student
# regresses disparities of hundreds of pixels, where FP16/INT8 rounding alone exceeds them.
needs_weights = pytest.mark.skipif(
    not BUILTIN_CHECKPOINT.is_file(),
    reason=f"the FP16/INT8 accuracy budgets need the trained built-in weights ({BUILTIN_CHECKPOINT} is missing)",
)


@functools.lru_cache(maxsize=None)
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="stereo-trt-gpu-"))


@functools.lru_cache(maxsize=None)
def student():
    """The built-in weights when they ship, else a seeded student (FP32 parity holds for any weights)."""
    import torch

    from toolkit.model import build_student, load_student

    if BUILTIN_CHECKPOINT.is_file():
        model, _, _ = load_student(BUILTIN_CHECKPOINT)
    else:
        model = build_student(seed=0)
    torch.set_grad_enabled(False)
    return model.eval()


@functools.lru_cache(maxsize=None)
def exported(kind: str) -> Path:
    """'fp32', 'fp16' (FP16-typed), 'dynamic', or 'fp32_conf' / 'fp16_conf' (with the confidence output)."""
    out = workdir() / f"student_{kind}.onnx"
    if kind == "dynamic":
        export_onnx(student(), out, iters=ITERS, lint_trt=None,
                    dynamic=DynamicShapes(min=(64, 96), opt=SIZE, max=(128, 160)))
    else:
        export_onnx(student(), out, size=SIZE, iters=ITERS, fp16=kind.startswith("fp16"), lint_trt=None,
                    confidence=kind.endswith("_conf"))
    return out


@functools.lru_cache(maxsize=None)
def engine(onnx_kind: str, precision: str | None, **options) -> Path:
    out = workdir() / f"student_{onnx_kind}_{precision}.engine"
    build_engine(exported(onnx_kind) if onnx_kind in ("fp32", "fp16", "dynamic", "fp32_conf", "fp16_conf")
                 else onnx_kind,
                 precision=precision, out=out, workspace_mb=2048, engines_dir=workdir(), **options)
    return out


def trt_version() -> str:
    import tensorrt

    return tensorrt.__version__


def pair(hw=None):
    left, right, _, _ = builtin_pair()
    if hw is not None:
        left, right = left[: hw[0], : hw[1]], right[: hw[0], : hw[1]]
    return left, right


def torch_disparity(left, right, size=SIZE):
    with TorchRunner(student(), iters=ITERS, size=size) as runner:
        return runner.infer(left, right).disparity


def epe(a, b) -> float:
    return float(np.mean(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))


def engine_disparity(path, left, right, **options):
    with TensorRTRunner(path, **options) as runner:
        return runner.infer(left, right).disparity


# ---- FP32 ----------------------------------------------------------------------------------

def test_fp32_engine_matches_pytorch_and_records_its_device():
    path = engine("fp32", "fp32")
    left, right = pair()
    assert epe(engine_disparity(path, left, right), torch_disparity(left, right)) <= FP32_EPE
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["tensorrt"] == trt_version()
    assert sidecar["precision"] == "fp32" and sidecar["input_hw"] == list(SIZE)
    assert sidecar["onnx"]["metadata"]["iters"] == ITERS
    assert sidecar["layer_precision"]["layers"] > 0


def test_runner_agrees_with_polygraphy_on_the_same_engine():
    polygraphy_trt = pytest.importorskip("polygraphy.backend.trt", reason="Polygraphy is not installed")
    path = engine("fp32", "fp32")
    feed = prepare_pair(*pair(), SIZE).feed
    with TensorRTRunner(path, warmup=0) as runner:
        ours, _ = runner.infer_feed(feed)
    with polygraphy_trt.TrtRunner(polygraphy_trt.EngineFromBytes(path.read_bytes())) as reference:
        theirs = reference.infer(feed)
    np.testing.assert_allclose(ours["disparity"], np.asarray(theirs["disparity"], np.float32), atol=1e-4)


def test_fp32_engine_matches_onnx_runtime():
    from toolkit.backends.onnxrt import OnnxRuntimeRunner

    left, right = pair()
    with OnnxRuntimeRunner(exported("fp32")) as runner:
        reference = runner.infer(left, right).disparity
    assert epe(engine_disparity(engine("fp32", "fp32"), left, right), reference) <= FP32_EPE


# ---- confidence ----------------------------------------------------------------------------

@needs_weights
@pytest.mark.parametrize("onnx_kind, precision", [("fp32_conf", "fp32"), ("fp16_conf", None)])
def test_confidence_output_keeps_its_ranking_in_the_engine(onnx_kind, precision):
    from toolkit.bench.metrics import spearman

    left, right = pair()
    with TorchRunner(student(), iters=ITERS, size=SIZE) as runner:
        reference = runner.infer(left, right).confidence
    with TensorRTRunner(engine(onnx_kind, precision)) as runner:
        confidence = runner.infer(left, right).confidence
    assert confidence is not None and confidence.shape == reference.shape
    assert spearman(confidence, reference) >= 0.95  # issue 8: ranking survives export and reduced precision


# ---- FP16 ----------------------------------------------------------------------------------

@needs_weights
def test_fp16_from_fp32_onnx_via_builder_flag():
    if not supports(trt_version(), "precision_flags"):
        pytest.skip(f"TensorRT {trt_version()} has no FP16 builder flag (strongly typed only)")
    path = engine("fp32", "fp16")
    left, right = pair()
    assert epe(engine_disparity(path, left, right), torch_disparity(left, right)) <= FP16_EPE
    summary = json.loads(path.with_name(path.name + ".json").read_text())["layer_precision"]
    assert summary["by_precision"].get("FP16", 0) > 0


@needs_weights
def test_fp16_typed_onnx_on_every_version():
    path = engine("fp16", None)
    left, right = pair()
    assert epe(engine_disparity(path, left, right), torch_disparity(left, right)) <= FP16_EPE


# ---- INT8 ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def calibration_pairs() -> tuple:
    """Eight synthetic scenes in the InStereo2K layout, as (name, left, right) pairs."""
    from toolkit.data.instereo2k import Instereo2K
    from toolkit.data.pairs import StereoPair
    from toolkit.data.synthetic import write_instereo2k_tree

    root = write_instereo2k_tree(workdir() / "instereo2k", n_train_parts=2, pairs_per_part=4, n_test=0,
                                 size=SIZE, max_disp=32)
    return tuple(StereoPair(s.name, s.left_path, s.right_path) for s in Instereo2K(root, "train"))


@needs_weights
def test_implicit_int8_with_entropy_calibration():
    if not supports(trt_version(), "int8_calibrator"):
        pytest.skip(f"TensorRT {trt_version()} removed implicit INT8 calibration")
    cache = workdir() / "student_calib.cache"
    path = engine("fp32", "int8", calibration=calibration_pairs(), calib_cache=cache)
    left, right = pair()
    assert epe(engine_disparity(path, left, right), torch_disparity(left, right)) <= INT8_EPE
    from toolkit.calib_cache import read_calibration_cache

    header, scales = read_calibration_cache(cache)
    assert header.endswith("EntropyCalibration2") and "left" in scales


@needs_weights
def test_a_pair_that_fails_to_decode_stops_the_build_instead_of_shortening_calibration(tmp_path):
    # TensorRT's calibrator trampoline only prints an exception raised in get_batch and reads
    # it as "no more batches"; the build must fail with the decoding error instead.
    if not supports(trt_version(), "int8_calibrator"):
        pytest.skip(f"TensorRT {trt_version()} removed implicit INT8 calibration")
    from toolkit.data.pairs import StereoPair
    from toolkit.errors import InputError

    good = calibration_pairs()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    pairs = good[:2] + (StereoPair("broken", broken, good[0].right),) + good[2:]
    out = tmp_path / "never.engine"
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        build_engine(exported("fp32"), precision="int8", out=out, calibration=pairs, calib_cache=tmp_path / "never.cache",
                     workspace_mb=2048, engines_dir=tmp_path, reuse_timing_cache=False)
    assert not out.exists() and not (tmp_path / "never.cache").exists()


@functools.lru_cache(maxsize=None)
def qdq_onnx() -> Path:
    """A TensorRT-style Q/DQ model made independently with ONNX Runtime's quantizer: symmetric
    int8, per-channel weights, no quantized bias, Conv inputs only (DESIGN.md's Q/DQ rules)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from toolkit.data import io

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([prepare_pair(io.read_image(p.left), io.read_image(p.right), SIZE).feed
                               for p in calibration_pairs()])

        def get_next(self):
            return next(self.feeds, None)

    out = workdir() / "student_qdq.onnx"
    quantize_static(str(exported("fp32")), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=["Conv"],
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
    model = onnx.load(str(out))
    meta = get_stereo_metadata(onnx.load(str(exported("fp32")), load_external_data=False))
    set_stereo_metadata(model, {**meta, "precision": "int8"})
    onnx.save(model, str(out))
    return out


@needs_weights
def test_explicit_int8_from_qdq_onnx_on_every_version():
    from toolkit.backends.onnxrt import OnnxRuntimeRunner

    path = engine(str(qdq_onnx()), None)
    left, right = pair()
    ours = engine_disparity(path, left, right)
    with OnnxRuntimeRunner(qdq_onnx()) as runner:
        assert epe(ours, runner.infer(left, right).disparity) <= INT8_VS_ORT_EPE
    assert epe(ours, torch_disparity(left, right)) <= INT8_EPE


# ---- dynamic shapes, CUDA graph, device check, timing cache --------------------------------

def test_dynamic_engine_runs_two_sizes_inside_its_profile():
    path = engine("dynamic", "fp32")
    for hw in ((90, 120), (60, 90)):  # padded to 96x128 and 64x96
        left, right = pair(hw)
        assert epe(engine_disparity(path, left, right), torch_disparity(left, right, size=None)) <= FP32_EPE


def test_dynamic_engine_refuses_a_size_outside_its_profile():
    left, right = pair((200, 300))
    with pytest.raises(ModelError, match="outside the engine's profiles"):
        engine_disparity(engine("dynamic", "fp32"), left, right)


def test_cuda_graph_replay_matches_plain_execution():
    if not cuda_mem.backend_available("cuda-python"):
        pytest.skip("CUDA-graph capture needs cuda-python, which is not installed")
    path = engine("fp32", "fp32")
    left, right = pair()
    plain = engine_disparity(path, left, right)
    graphed = engine_disparity(path, left, right, cuda_graph=True)
    np.testing.assert_allclose(graphed, plain, atol=1e-5)


def test_engine_from_another_gpu_is_refused_before_deserializing(tmp_path):
    source = engine("fp32", "fp32")
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    sidecar = json.loads(source.with_name(source.name + ".json").read_text())
    sidecar["gpu"]["name"] = "Some Other GPU"
    copy.with_name(copy.name + ".json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="rebuild it on this device with `stereo-trt build`"):
        TensorRTRunner(copy).activate()


def test_timing_cache_is_kept_next_to_the_engine_and_reused(tmp_path):
    messages = []
    first = build_engine(exported("fp32"), out=tmp_path / "a.engine", on_progress=messages.append)
    assert first.timing_cache is not None and first.timing_cache.is_file()
    assert first.timing_cache.parent == tmp_path
    messages.clear()
    build_engine(exported("fp32"), out=tmp_path / "b.engine", on_progress=messages.append)
    assert any("reusing timing cache" in m for m in messages)
