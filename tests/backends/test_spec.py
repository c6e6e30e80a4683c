"""The one runner specification: resolution, device -> providers, refusals, size fitting at construction,
and the backend choice of demo."""

from pathlib import Path

import pytest

from tiny_models import TINY_SIZE, exported_tiny_onnx
from toolkit.backends import RunnerSpec, check_spec, open_runner, parse_model_text, resolve
from toolkit.backends import choice as choice_module
from toolkit.backends.lr_check import LRCheckRunner
from toolkit.backends.spec import SGBM_MAX_DISP, model_label
from toolkit.device import onnxruntime_providers
from toolkit.errors import DependencyError, InputError


@pytest.mark.parametrize("text, backend_arg, backend, fields", [
    ("m.pth", None, "torch", {}),
    ("m.PT", None, "torch", {}),
    ("m.onnx", None, "onnxruntime", {}),
    ("m.engine", None, "tensorrt", {}),
    ("m.plan", None, "tensorrt", {}),
    ("sgbm", None, "sgbm", {"max_disp": SGBM_MAX_DISP, "lr_threshold": 1.0}),
    ("SGBM+lr", None, "sgbm", {"lr_check": True}),
    ("m.pth+lr", None, "torch", {"lr_check": True}),
    ("m.pth+fp16+graph", None, "torch", {"precision": "fp16", "cuda_graph": True}),
    ("m.bin", "onnx", None, {}),  # an unknown alias is refused below
    ("m.bin", "ort", "onnxruntime", {}),
    ("m.onnx", "trt", "tensorrt", {}),
    ("dir+x/m.pth", None, "torch", {}),  # a '+' that is no modifier stays in the path
])
def test_spec_resolution_table(text, backend_arg, backend, fields):
    spec = parse_model_text(text, backend=backend_arg)
    if spec.precision or spec.cuda_graph:
        spec = spec.with_(device="cuda", size=(64, 96))
    if backend is None:
        with pytest.raises(InputError, match="--backend 'onnx': expected one of"):
            resolve(spec)
        return
    name, resolved = resolve(spec)
    assert name == backend
    for key, value in fields.items():
        assert getattr(resolved, key) == value
    assert resolved.device == ("cuda" if backend == "tensorrt" or spec.device == "cuda" else "cpu")


def test_model_label_keeps_the_modifiers():
    assert model_label(parse_model_text("a/student.pth+fp16+graph+lr")) == "student.pth+fp16+graph+lr"
    assert model_label(parse_model_text("sgbm")) == "sgbm"
    pinned = parse_model_text("m.onnx+cpu", device="cuda")
    assert pinned.device == "cpu" and model_label(pinned) == "m.onnx+cpu"
    with pytest.raises(InputError, match=r"\+lr given twice"):
        parse_model_text("m.pth+lr+lr")


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot tell the backend"):
        resolve(RunnerSpec(str(tmp_path / "model.bin")))
    with pytest.raises(InputError, match="no such model file"):
        open_runner(RunnerSpec(str(tmp_path / "missing.onnx")))


@pytest.mark.parametrize("spec, message", [
    (RunnerSpec("m.onnx", iters=4), "--iters applies to checkpoints only; m.onnx has it baked in"),
    (RunnerSpec("m.onnx", max_disp=64), "--max-disp applies to checkpoints only"),
    (RunnerSpec("m.onnx", cuda_graph=True), "--cuda-graph applies to checkpoints and TensorRT engines"),
    (RunnerSpec("m.onnx", lr_threshold=2.0), "--lr-threshold applies to SGBM only"),
    (RunnerSpec("m.pth", sgbm_lr_check=False), "--no-lr-check applies to SGBM only"),
    (RunnerSpec("m.pth", precision="fp16"), "--precision fp16 needs a CUDA device"),
    (RunnerSpec("m.pth", precision="fp16", device="cpu"), "--precision fp16 needs a CUDA device"),
    (RunnerSpec("m.pth", cuda_graph=True), "--cuda-graph needs a CUDA device"),
    (RunnerSpec("m.pth", cuda_graph=True, device="cuda"), "--cuda-graph needs --size HxW"),
    (RunnerSpec("m.pth", precision="int8"), "--precision int8: expected one of fp32, fp16"),
    (RunnerSpec("m.pth", size=(50, 64)), "multiples of 32"),
    (RunnerSpec("m.engine", threads=2), "--threads applies to ONNX Runtime and PyTorch"),
    (RunnerSpec("m.engine", device="cpu"), "a TensorRT engine runs on a CUDA GPU only"),
    (RunnerSpec("m.engine", device="cuda:1"), "CUDA_VISIBLE_DEVICES"),
    (RunnerSpec("sgbm", iters=2), "--iters applies to networks only"),
    (RunnerSpec("sgbm", threads=2), "--threads does not apply to SGBM"),
    (RunnerSpec("sgbm", device="cuda"), "SGBM (OpenCV) runs on the CPU only"),
    (RunnerSpec("sgbm", precision="fp16"), "--precision applies to networks only"),
    (RunnerSpec("m.onnx", backend="sgbm"), "--backend sgbm takes no model file"),
])
def test_options_a_backend_cannot_honour_are_refused(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(spec)


def test_exported_precision_is_fixed():
    with pytest.raises(InputError, match="--precision fp16: .* is fp32"):
        open_runner(RunnerSpec(str(exported_tiny_onnx()), precision="fp16"))
    assert open_runner(RunnerSpec(str(exported_tiny_onnx()), precision="fp32")).precision == "fp32"


def fake_cuda_provider(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])


@pytest.mark.parametrize("device, expected", [
    ("cpu", ["CPUExecutionProvider"]),
    ("cuda", [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]),
    ("cuda:1", [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]),
])
def test_provider_list_where_cuda_exists(monkeypatch, device, expected):
    fake_cuda_provider(monkeypatch)
    assert onnxruntime_providers(device) == expected


def test_cpu_stays_cpu_in_the_runner_even_where_cuda_exists(monkeypatch):
    fake_cuda_provider(monkeypatch)
    runner = open_runner(RunnerSpec(str(exported_tiny_onnx())))
    assert runner.requested_providers == ["CPUExecutionProvider"] and runner.device == "cpu"
    cuda1 = open_runner(RunnerSpec(str(exported_tiny_onnx()), device="cuda:1"))
    assert cuda1.requested_providers[0] == ("CUDAExecutionProvider", {"device_id": 1}) and cuda1.device == "cuda:1"


def test_cuda_without_a_cuda_provider_points_to_doctor(monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(DependencyError, match="no CUDAExecutionProvider .* doctor"):
        open_runner(RunnerSpec(str(exported_tiny_onnx()), device="cuda"))


def test_size_is_fitted_at_construction(tmp_path):
    onnx_path = str(exported_tiny_onnx())
    assert open_runner(RunnerSpec(onnx_path)).input_hw == TINY_SIZE
    with pytest.raises(InputError, match="--size 96x128: .* exported for 64x96"):
        open_runner(RunnerSpec(onnx_path, size=(96, 128)))
    assert open_runner(RunnerSpec("sgbm", size=(64, 96))).input_hw == (64, 96)
    checkpoint = tiny_checkpoint(tmp_path)
    wrapped = open_runner(RunnerSpec(str(checkpoint), size=(64, 96), lr_check=True))
    assert isinstance(wrapped, LRCheckRunner) and wrapped.input_hw == (64, 96)
    with pytest.raises(AttributeError):
        wrapped.input_hw = (32, 32)  # no resizing behind the runner's back after construction


def tiny_checkpoint(folder: Path) -> Path:
    from toolkit.model import StudentConfig, build_student, save_student

    path = folder / "student.pth"
    if not path.is_file():
        config = StudentConfig(max_disp=32, iters=1)
        save_student(path, build_student(config, seed=0), config, {"note": "spec test"})
    return path


def test_open_runner_takes_a_spec_or_a_path_with_fields_not_both():
    with pytest.raises(InputError, match="not both"):
        open_runner(RunnerSpec("sgbm"), max_disp=32)
    assert open_runner("sgbm", max_disp=32).max_disp == 32


def test_check_spec_checks_the_torch_device_before_any_file(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DependencyError, match="--device cuda: .*doctor"):
        check_spec(RunnerSpec("not-read.pth", device="cuda"))


@pytest.fixture
def no_accelerators(monkeypatch):
    import onnxruntime
    import torch

    monkeypatch.setattr(choice_module, "tensorrt_importable", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])


def test_choice_falls_back_to_onnxruntime_on_the_cpu_and_says_why(no_accelerators):
    chosen = choice_module.choose_backend()
    assert (chosen.backend, chosen.device) == ("onnxruntime", "cpu")
    assert "no TensorRT and no usable CUDA GPU" in chosen.reason
    assert choice_module.choose_backend("cpu").reason == "--device cpu: ONNX Runtime on the CPU"
    with pytest.raises(DependencyError, match="doctor"):
        choice_module.choose_backend("cuda:1")


def test_choice_order(monkeypatch, no_accelerators):
    fake_cuda_provider(monkeypatch)
    assert choice_module.choose_backend().backend == "onnxruntime"
    assert choice_module.choose_backend().device == "cuda"
    monkeypatch.setattr(choice_module, "_torch_cuda_problem", lambda device: None)
    chosen = choice_module.choose_backend("cuda:1")
    assert (chosen.backend, chosen.device, chosen.precision, chosen.cuda_graph) == ("torch", "cuda:1", "fp16", True)
    monkeypatch.setattr(choice_module, "tensorrt_importable", lambda: True)
    assert choice_module.choose_backend().backend == "tensorrt"
