"""Device memory, pinned host memory, one stream and CUDA graphs: the one CUDA module.

TensorRT leaves memory to the application. pycuda is the design card's choice (on JetPack it
builds against the CUDA toolkit that JetPack installs); NVIDIA's own samples moved to
cuda-python (``cuda.bindings.runtime``, older ``cuda.cudart``), which is the fallback here and
the only one of the two with CUDA-graph capture. Both sit behind the same small interface
(``CudaBackend``), so the runtime and the calibrator never touch either directly.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import ctypes
import importlib
from dataclasses import dataclass

import numpy as np

from toolkit.errors import DependencyError, StereoTrtError
from toolkit.trt.deps import DOCTOR_HINT

BACKENDS = ("pycuda", "cuda-python")


@dataclass(frozen=True)
class DeviceInfo:
    """The CUDA device TensorRT runs on.

    Attributes:
        name: device name ("Orin", "NVIDIA GeForce RTX 4090").
        compute_capability: "8.7".
        total_memory_mb: device (on Jetson: shared) memory in MiB.
    """

    name: str
    compute_capability: str
    total_memory_mb: int


class DeviceBuffer:
    """A device allocation: ``ptr`` is the address TensorRT's ``set_tensor_address`` takes."""

    def __init__(self, ptr: int, nbytes: int, free):
        self.ptr = int(ptr)
        self.nbytes = nbytes
        self._free = free

    def free(self) -> None:
        if self._free is not None:
            self._free()
            self._free = None


class Stream:
    """A CUDA stream: ``obj`` for the backend's own calls, ``handle`` (int) for TensorRT's."""

    def __init__(self, obj, handle: int):
        self.obj = obj
        self.handle = int(handle)


class PycudaBackend:
    """pycuda, on the device's primary context (the one TensorRT's runtime API uses too)."""

    name = "pycuda"
    supports_graphs = False  # pycuda has no stream-capture API

    def __init__(self, device: int = 0):
        self.cuda = importlib.import_module("pycuda.driver")
        self.cuda.init()
        self.device = self.cuda.Device(device)
        self.context = self.device.retain_primary_context()
        self.context.push()

    def make_current(self) -> None:
        """Make the context current in the calling thread (pycuda's driver calls need one)."""
        if self.cuda.Context.get_current() != self.context:
            self.context.push()

    def device_info(self) -> DeviceInfo:
        major, minor = self.device.compute_capability()
        return DeviceInfo(self.device.name(), f"{major}.{minor}", self.device.total_memory() // (1 << 20))

    def alloc(self, nbytes: int) -> DeviceBuffer:
        allocation = self.cuda.mem_alloc(max(1, nbytes))
        return DeviceBuffer(int(allocation), nbytes, allocation.free)

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(tuple(shape), np.dtype(dtype))

    def create_stream(self) -> Stream:
        stream = self.cuda.Stream()
        return Stream(stream, stream.handle)

    def htod(self, device_ptr: int, host: np.ndarray) -> None:
        """Blocking copy from ordinary (pageable) host memory."""
        self.cuda.memcpy_htod(device_ptr, np.ascontiguousarray(host))

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Stream) -> None:
        self.cuda.memcpy_htod_async(device_ptr, host, stream.obj)

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Stream) -> None:
        self.cuda.memcpy_dtoh_async(host, device_ptr, stream.obj)

    def synchronize(self, stream: Stream) -> None:
        stream.obj.synchronize()

    def destroy_stream(self, stream: Stream) -> None:
        """pycuda frees the stream with its Python object."""

    def close(self) -> None:
        self.context.pop()


class CudaPythonBackend:
    """cuda-python's runtime bindings (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self, device: int = 0):
        self.rt = import_cudart()
        self.device = device
        self.call("cudaSetDevice", device)
        self._pinned = {}

    def call(self, function: str, *args):
        """Call a runtime function; raise on an error code, return the remaining results."""
        result = getattr(self.rt, function)(*args)
        error, values = result[0], result[1:]
        if error != self.rt.cudaError_t.cudaSuccess:
            raise StereoTrtError(f"CUDA {function} failed with {getattr(error, 'name', error)}; {DOCTOR_HINT}")
        return values[0] if len(values) == 1 else values

    def make_current(self) -> None:
        """Select the device in the calling thread (the runtime API keeps one per thread)."""
        self.call("cudaSetDevice", self.device)

    def device_info(self) -> DeviceInfo:
        props = self.call("cudaGetDeviceProperties", self.device)
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return DeviceInfo(name.split("\x00")[0], f"{props.major}.{props.minor}", int(props.totalGlobalMem) // (1 << 20))

    def alloc(self, nbytes: int) -> DeviceBuffer:
        ptr = int(self.call("cudaMalloc", max(1, nbytes)))
        return DeviceBuffer(ptr, nbytes, lambda: self.call("cudaFree", ptr))

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
        ptr = int(self.call("cudaMallocHost", nbytes))
        raw = (ctypes.c_byte * nbytes).from_address(ptr)
        array = np.frombuffer(raw, dtype=np.uint8, count=nbytes)[: int(np.prod(shape)) * dtype.itemsize]
        array = array.view(dtype).reshape(shape)
        self._pinned[id(array)] = ptr
        return array

    def create_stream(self) -> Stream:
        stream = self.call("cudaStreamCreate")
        return Stream(stream, int(stream))

    def htod(self, device_ptr: int, host: np.ndarray) -> None:
        """Blocking copy from ordinary (pageable) host memory."""
        host = np.ascontiguousarray(host)
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call("cudaMemcpy", device_ptr, host.ctypes.data, host.nbytes, kind)

    def htod_async(self, device_ptr: int, host: np.ndarray, stream: Stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call("cudaMemcpyAsync", device_ptr, host.ctypes.data, host.nbytes, kind, stream.obj)

    def dtoh_async(self, host: np.ndarray, device_ptr: int, stream: Stream) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.call("cudaMemcpyAsync", host.ctypes.data, device_ptr, host.nbytes, kind, stream.obj)

    def synchronize(self, stream: Stream) -> None:
        self.call("cudaStreamSynchronize", stream.obj)

    def destroy_stream(self, stream: Stream) -> None:
        self.call("cudaStreamDestroy", stream.obj)

    def capture_graph(self, stream: Stream, enqueue):
        """Record what ``enqueue()`` puts on ``stream`` into an executable CUDA graph.

        Thread-local capture mode: only this thread's CUDA calls must be capturable, so a
        camera thread elsewhere does not break the capture.
        """
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self.call("cudaStreamBeginCapture", stream.obj, mode)
        try:
            enqueue()
        except BaseException:
            # close the capture so the stream stays usable, and free what it recorded
            _, partial = self.rt.cudaStreamEndCapture(stream.obj)
            if partial:
                self.rt.cudaGraphDestroy(partial)
            raise
        graph = self.call("cudaStreamEndCapture", stream.obj)
        # cudaGraphInstantiateWithFlags(graph, flags) exists with this signature from CUDA 11.4 on.
        executable = self.call("cudaGraphInstantiateWithFlags", graph, 0)
        self.call("cudaGraphDestroy", graph)
        return executable

    def launch_graph(self, executable, stream: Stream) -> None:
        self.call("cudaGraphLaunch", executable, stream.obj)

    def destroy_graph(self, executable) -> None:
        self.call("cudaGraphExecDestroy", executable)

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._pinned.pop(id(array), None)
        if ptr is not None:
            self.call("cudaFreeHost", ptr)

    def close(self) -> None:
        for ptr in self._pinned.values():
            self.call("cudaFreeHost", ptr)
        self._pinned.clear()


def import_cudart():
    """cuda-python's runtime module under its current name, or its pre-12.6 name."""
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        return importlib.import_module("cuda.cudart")


def backend_available(name: str) -> bool:
    """Whether ``name`` ("pycuda" or "cuda-python") can be imported here (no GPU needed to say)."""
    try:
        if name == "pycuda":
            importlib.import_module("pycuda.driver")
        else:
            import_cudart()
    except ImportError:
        return False
    return True


def require_backend(need_graphs: bool = False) -> str:
    """The CUDA backend ``open_cuda`` would use: "pycuda" first, else "cuda-python".

    Checks importability only (no GPU needed), so callers can fail fast before any work.

    Raises:
        DependencyError: neither module is installed (or, with ``need_graphs``, no cuda-python).
    """
    order = ("cuda-python",) if need_graphs else BACKENDS
    for name in order:
        if backend_available(name):
            return name
    if need_graphs:
        raise DependencyError(
            "CUDA-graph capture needs the Python module `cuda-python` (pycuda has no graph API); "
            f"install it or run without --cuda-graph; {DOCTOR_HINT}"
        )
    raise DependencyError(
        "neither the Python module `pycuda` nor `cuda-python` is installed (TensorRT needs one for GPU memory); "
        + DOCTOR_HINT
    )


def open_cuda(need_graphs: bool = False, device: int = 0):
    """Open the CUDA backend ``require_backend`` picks, on ``device``.

    Raises:
        DependencyError: see ``require_backend``.
    """
    if require_backend(need_graphs) == "pycuda":
        return PycudaBackend(device)
    return CudaPythonBackend(device)


def free_host(backend, array: np.ndarray) -> None:
    """Release a pinned array from ``pinned_empty`` (pycuda frees it with the array itself)."""
    if isinstance(backend, CudaPythonBackend):
        backend.free_pinned(array)
