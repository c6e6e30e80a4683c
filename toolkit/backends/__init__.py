"""Runners: one interface, ``infer(left, right) -> Prediction``, and the one place that builds them.

A command describes what it wants as a ``RunnerSpec`` (``toolkit.backends.spec``) and calls
``open_runner(spec)``, which resolves the backend, checks the device before anything slow
(CUDA asked for but unusable is one line pointing to ``doctor``), maps the device to ONNX
Runtime providers (``cpu`` is CPU only, ``cuda:N`` keeps N), fits the network size at
construction, applies the one set of SGBM defaults, wraps the left-right check and refuses
what a backend cannot honour. Each backend module is imported only when chosen, so ONNX
Runtime users never import PyTorch and nobody imports TensorRT by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.backends.spec import RunnerSpec, backend_for, parse_model_text, resolve
from toolkit.errors import InputError

__all__ = ["RunnerSpec", "backend_for", "check_spec", "open_runner", "parse_model_text", "resolve"]


def check_spec(spec: RunnerSpec) -> tuple[str, RunnerSpec]:
    """``resolve`` plus the device check: what ``open_runner`` checks before it reads any file.

    Commands whose slow work comes before the runner (a dataset to load, an export) call it first.

    Returns:
        (backend, resolved spec).

    Raises:
        InputError: see ``resolve``; a model file that does not exist.
        DependencyError: CUDA asked for and the backend cannot use it here, or TensorRT is not
            importable for an engine (the message points to doctor).
    """
    from toolkit.device import onnxruntime_providers, require_torch_device

    backend, spec = resolve(spec)
    if backend == "torch":
        require_torch_device(spec.device)
    elif backend == "onnxruntime":
        onnxruntime_providers(spec.device)
    elif backend == "tensorrt":
        from toolkit.trt.deps import import_tensorrt

        import_tensorrt()  # a missing TensorRT is named before a dataset loads, not after
    # after the device: what this machine lacks is the more useful news than a path to fix
    if backend != "sgbm" and not Path(spec.model).is_file():
        raise InputError(f"{spec.model}: no such model file; expected a checkpoint, ONNX model or TensorRT engine")
    return backend, spec


def open_runner(spec: RunnerSpec | str | os.PathLike, **fields):
    """Create (not activate) the runner a spec describes.

    Args:
        spec: a ``RunnerSpec``, or a model path / "sgbm" with ``fields`` as its other fields.
        **fields: ``RunnerSpec`` fields when ``spec`` is a path (ignored values of None keep
            the default).

    Returns:
        A Runner (wrapped in ``LRCheckRunner`` with ``lr_check``); use it as a context manager.

    Raises:
        InputError: missing file, unknown suffix or backend, an option the backend cannot
            honour, a size the model cannot take.
        DependencyError: the device asks for CUDA this machine cannot give the backend.
    """
    if not isinstance(spec, RunnerSpec):
        spec = RunnerSpec(model=str(spec), **{key: value for key, value in fields.items() if value is not None})
    elif fields:
        raise InputError("open_runner takes a RunnerSpec or a model path with fields, not both")
    backend, spec = check_spec(spec)
    runner = OPENERS[backend](spec)
    if spec.lr_check:
        from toolkit.backends.lr_check import LRCheckRunner

        runner = LRCheckRunner(runner)
    return runner


def _open_torch(spec: RunnerSpec):
    from toolkit.backends.torch_runner import TorchRunner

    return TorchRunner(spec.model, iters=spec.iters, device=spec.device, size=spec.size, threads=spec.threads,
                       max_disp=spec.max_disp, precision=spec.precision or "fp32", cuda_graph=spec.cuda_graph)


def _open_onnxruntime(spec: RunnerSpec):
    from toolkit.backends.onnxrt import OnnxRuntimeRunner
    from toolkit.device import onnxruntime_providers

    runner = OnnxRuntimeRunner(spec.model, threads=spec.threads, providers=onnxruntime_providers(spec.device),
                               size=spec.size, any_onnx=spec.any_onnx, device=spec.device)
    _check_baked_precision(spec, runner)
    return runner


def _open_tensorrt(spec: RunnerSpec):
    from toolkit.backends.tensorrt import TensorRTRunner

    runner = TensorRTRunner(spec.model, size=spec.size, cuda_graph=spec.cuda_graph)
    _check_baked_precision(spec, runner)
    return runner


def _check_baked_precision(spec: RunnerSpec, runner) -> None:
    """An exported model's precision is fixed: a different one asked for is refused, not dropped."""
    if spec.precision is not None and spec.precision != runner.precision:
        raise InputError(f"--precision {spec.precision}: {Path(spec.model).name} is {runner.precision} "
                         "(fixed at export/build); export or build it at that precision")


def _open_sgbm(spec: RunnerSpec):
    from toolkit.backends.sgbm import SGBMRunner

    threshold = spec.lr_threshold if spec.sgbm_lr_check else None
    return SGBMRunner(max_disp=spec.max_disp, lr_threshold=threshold, size=spec.size)


OPENERS = {"torch": _open_torch, "onnxruntime": _open_onnxruntime, "tensorrt": _open_tensorrt,
           "sgbm": _open_sgbm}
