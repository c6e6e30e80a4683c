"""Running a serialized engine: name-based I/O, pinned host buffers, one stream, optional CUDA graph.

One path covers TensorRT 8.5, 10.x and 11.x: the name-based tensor API (``num_io_tensors``,
``get_tensor_name``, ``get_tensor_mode``, ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) exists from 8.5 on, and the binding-index API it replaced is gone in 10.

Per call: copy the feed into pinned host buffers, copy them to the device asynchronously,
enqueue (or launch the captured CUDA graph), copy the outputs back asynchronously and
synchronize the stream, so the time a caller measures around ``run`` is the whole GPU work.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import ModelError, StereoTrtError
from toolkit.preprocess import INPUT_NAMES
from toolkit.trt import cuda_mem
from toolkit.trt.deps import import_tensorrt
from toolkit.trt.sidecar import DeviceIdentity, check_engine_compat, read_engine_sidecar

OUTPUT_NAME = "disparity"


@dataclass
class Binding:
    """One I/O tensor bound for the current input shape."""

    name: str
    is_input: bool
    dtype: np.dtype
    host: np.ndarray
    device: cuda_mem.DeviceBuffer


class EngineSession:
    """A deserialized engine with its execution context, stream and buffers.

    Args:
        engine_path: a .engine/.plan file from ``stereo-trt build``.
        cuda_graph: replay the enqueue as a CUDA graph (needs cuda-python); recaptured when the
            input shape changes.
        check_device: compare the sidecar's TensorRT version and GPU with this machine first.
        verbose: TensorRT's verbose log.
    """

    def __init__(self, engine_path: str | os.PathLike, cuda_graph: bool = False, check_device: bool = True,
                 verbose: bool = False):
        self.engine_path = Path(engine_path)
        self.use_graph = cuda_graph
        self.check_device = check_device
        self.verbose = verbose
        self.sidecar = read_engine_sidecar(self.engine_path)
        self.trt = None
        self.cuda = None
        self.runtime = None
        self.engine = None
        self.context = None
        self.stream = None
        self.bindings = {}
        self.shape = None
        self.profile = 0
        self.graph = None

    # -- lifetime ---------------------------------------------------------------------------
    def open(self) -> None:
        """Import TensorRT, check the device, deserialize, create the context and stream.

        Raises:
            DependencyError: TensorRT / pycuda / cuda-python missing.
            ModelError: the engine was built elsewhere, does not deserialize, or breaks the I/O contract.
        """
        if not self.engine_path.is_file():
            raise ModelError(f"{self.engine_path}: no such engine file")
        self.trt = import_tensorrt()
        self.cuda = cuda_mem.open_cuda(need_graphs=self.use_graph)
        if self.check_device and self.sidecar is not None:
            check_engine_compat(self.sidecar, self.identity(), str(self.engine_path))
        logger = self.trt.Logger(self.trt.Logger.VERBOSE if self.verbose else self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise ModelError(
                f"{self.engine_path}: TensorRT {self.trt.__version__} could not deserialize it; an engine runs only "
                "on the TensorRT version and GPU that built it: rebuild it on this device with `stereo-trt build`"
            )
        self.check_io()
        self.context = self.engine.create_execution_context()
        self.stream = self.cuda.create_stream()

    def close(self) -> None:
        """Free buffers, graph, stream and the CUDA context hold."""
        if self.cuda is None:
            return
        self.release_graph()
        self.free_bindings()
        if self.stream is not None:
            self.cuda.destroy_stream(self.stream)
        # Context before engine before runtime: the order TensorRT objects must be released in.
        self.context = None
        self.engine = None
        self.runtime = None
        self.stream = None
        self.profile = 0
        self.cuda.close()
        self.cuda = None

    def identity(self) -> DeviceIdentity:
        device = self.cuda.device_info()
        return DeviceIdentity(str(self.trt.__version__), device.name, device.compute_capability)

    # -- engine description -----------------------------------------------------------------
    def tensor_names(self) -> list:
        return [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]

    def is_input(self, name: str) -> bool:
        return self.engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT

    def check_io(self) -> None:
        """Refuse an engine whose inputs are not left/right or that has no disparity output."""
        names = self.tensor_names()
        inputs = sorted(n for n in names if self.is_input(n))
        if inputs != sorted(INPUT_NAMES) or OUTPUT_NAME not in names:
            raise ModelError(
                f"{self.engine_path}: tensors {names}; expected inputs left, right and a '{OUTPUT_NAME}' output"
            )

    def fixed_hw(self) -> tuple | None:
        """(H, W) when the engine has static input shapes, else None."""
        shape = tuple(self.engine.get_tensor_shape("left"))
        return None if any(dim < 0 for dim in shape) else (int(shape[2]), int(shape[3]))

    def profile_ranges(self) -> list:
        """[(min, opt, max) NCHW shapes of "left"] for each optimization profile."""
        return [tuple(tuple(s) for s in self.engine.get_tensor_profile_shape("left", p))
                for p in range(self.engine.num_optimization_profiles)]

    def warmup_hw(self) -> tuple:
        """A valid size to warm up with: the fixed size, or profile 0's opt size."""
        fixed = self.fixed_hw()
        if fixed is not None:
            return fixed
        opt = self.profile_ranges()[0][1]
        return int(opt[2]), int(opt[3])

    # -- binding ------------------------------------------------------------------------------
    def select_profile(self, shape: tuple) -> int:
        """The first profile whose range holds ``shape``.

        Raises:
            ModelError: no profile covers it (says which sizes the engine takes).
        """
        for index, (low, _, high) in enumerate(self.profile_ranges()):
            if all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
                return index
        ranges = ", ".join(f"{low[2]}x{low[3]}..{high[2]}x{high[3]}" for low, _, high in self.profile_ranges())
        raise ModelError(
            f"{self.engine_path}: input {shape[2]}x{shape[3]} is outside the engine's profiles ({ranges}); "
            "resize with --size or rebuild with a wider --profile"
        )

    def bind(self, shape: tuple) -> None:
        """Set input shapes and (re)allocate buffers for ``shape`` (1, 3, H, W); no-op when unchanged."""
        if shape == self.shape:
            return
        self.release_graph()
        self.free_bindings()
        fixed = self.fixed_hw()
        if fixed is None:
            profile = self.select_profile(shape)
            if profile != self.profile:
                self.context.set_optimization_profile_async(profile, self.stream.handle)
                self.profile = profile
            for name in INPUT_NAMES:
                if not self.context.set_input_shape(name, shape):
                    raise ModelError(f"{self.engine_path}: TensorRT refused input shape {shape} for '{name}'")
        elif tuple(shape[2:]) != fixed:
            raise ModelError(f"{self.engine_path}: built for {fixed[0]}x{fixed[1]} input, got {shape[2]}x{shape[3]}")
        for name in self.tensor_names():
            self.bindings[name] = self.allocate(name)
            if not self.context.set_tensor_address(name, self.bindings[name].device.ptr):
                raise ModelError(f"{self.engine_path}: TensorRT refused the device buffer for '{name}'")
        self.shape = shape

    def allocate(self, name: str) -> Binding:
        dims = tuple(int(d) for d in self.context.get_tensor_shape(name))
        dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
        host = self.cuda.pinned_empty(dims, dtype)
        return Binding(name, self.is_input(name), dtype, host, self.cuda.alloc(host.nbytes))

    def free_bindings(self) -> None:
        for binding in self.bindings.values():
            binding.device.free()
            cuda_mem.free_host(self.cuda, binding.host)
        self.bindings = {}
        self.shape = None

    # -- execution -----------------------------------------------------------------------------
    def enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise StereoTrtError(f"{self.engine_path}: TensorRT failed to enqueue inference (see its log above)")

    def capture(self) -> None:
        """Capture one enqueue as a CUDA graph; TensorRT needs one plain enqueue first for the shapes."""
        self.enqueue()
        self.cuda.synchronize(self.stream)
        try:
            self.graph = self.cuda.capture_graph(self.stream, self.enqueue)
        except StereoTrtError as exc:
            raise StereoTrtError(f"{self.engine_path}: CUDA-graph capture failed ({exc}); run without --cuda-graph") from None

    def release_graph(self) -> None:
        if self.graph is not None:
            self.cuda.destroy_graph(self.graph)
            self.graph = None

    def run(self, feed: dict) -> dict:
        """Run one feed dict {"left", "right": (1, 3, H, W)}; returns float32 copies of every output."""
        shape = tuple(int(d) for d in np.shape(feed["left"]))
        self.cuda.make_current()  # a runner may be used from another thread than the one that opened it
        self.bind(shape)
        if self.use_graph and self.graph is None:
            self.capture()
        for binding in self.bindings.values():
            if binding.is_input:
                np.copyto(binding.host, feed[binding.name], casting="same_kind")
                self.cuda.htod_async(binding.device.ptr, binding.host, self.stream)
        if self.graph is not None:
            self.cuda.launch_graph(self.graph, self.stream)
        else:
            self.enqueue()
        outputs = [b for b in self.bindings.values() if not b.is_input]
        for binding in outputs:
            self.cuda.dtoh_async(binding.host, binding.device.ptr, self.stream)
        self.cuda.synchronize(self.stream)
        return {b.name: b.host.astype(np.float32, copy=True) for b in outputs}
