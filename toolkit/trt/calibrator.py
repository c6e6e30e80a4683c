"""Implicit INT8 calibration for TensorRT 8.5 and 10.x: an ``IInt8EntropyCalibrator2`` fed by the
toolkit's own preprocessed feed dicts.

The calibrator never preprocesses: it receives the float32 ``{"left", "right"}`` feeds that
``toolkit.preprocess.prepare_pair`` makes for every backend, so calibration sees exactly what
inference will see (the classic silent INT8 failure is a calibrator that normalises twice).
TensorRT 11 has no calibrators; ``versions.plan_build`` refuses this path there.

Runtime module: stays valid on Python 3.8 (JetPack 5).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from toolkit.provenance import atomic_path


def create_entropy_calibrator(trt, feeds: Iterable[dict], cuda, cache_path: str | os.PathLike | None,
                              read_cache: bool, on_batch: Callable[[int], None] | None = None):
    """Build the calibrator object TensorRT's builder calls back into.

    Args:
        trt: the imported ``tensorrt`` module (8.5 or 10.x).
        feeds: iterable of feed dicts, each {"left": (1, 3, H, W), "right": ...} float32, at the
            calibration profile's size (TensorRT calibrates at the profile's opt shape).
        cuda: an open ``cuda_mem`` backend.
        cache_path: where TensorRT's calibration cache is written; None = not written.
        read_cache: hand an existing cache at ``cache_path`` to TensorRT (skips calibration).
        on_batch: called with the running batch count, for progress.

    Returns:
        An ``IInt8EntropyCalibrator2`` instance; after the build call its ``free()``, then
        ``raise_error()``.
    """

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        # TensorRT's Python trampoline catches any exception raised in these callbacks, prints
        # it and reads it as "no more batches" / "no cache": a bad pair would silently cut
        # calibration short. Each callback therefore keeps its first exception in ``error``
        # and ``raise_error()`` re-raises it once the build returns.
        def __init__(self):
            # pybind11 trampolines need the base initialised explicitly.
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(feeds)
            self.buffers = {}
            self.count = 0
            self.error = None

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            try:
                feed = next(self.batches, None)
                if feed is None:
                    return None
                self.count += 1
                if on_batch is not None:
                    on_batch(self.count)
                return [self.upload(name, feed[name]) for name in names]
            except Exception as exc:
                self.error = self.error or exc
                return None

        def upload(self, name, array):
            array = np.ascontiguousarray(array, dtype=np.float32)
            buffer = self.buffers.get(name)
            if buffer is None or buffer.nbytes != array.nbytes:
                if buffer is not None:
                    buffer.free()
                buffer = self.buffers[name] = cuda.alloc(array.nbytes)
            cuda.htod(buffer.ptr, array)
            return buffer.ptr

        def read_calibration_cache(self):
            try:
                if read_cache and cache_path is not None and Path(cache_path).is_file():
                    return Path(cache_path).read_bytes()
            except Exception as exc:
                self.error = self.error or exc
            return None

        def write_calibration_cache(self, cache):
            if cache_path is None or self.error is not None:
                return  # a cache from a calibration cut short by an error must not be kept
            try:
                with atomic_path(cache_path) as tmp:
                    tmp.write_bytes(bytes(cache))
            except Exception as exc:
                self.error = self.error or exc

        def raise_error(self):
            """Re-raise the first exception a callback met (TensorRT itself only printed it)."""
            if self.error is not None:
                raise self.error

        def free(self):
            for buffer in self.buffers.values():
                buffer.free()
            self.buffers.clear()

    return EntropyCalibrator()
