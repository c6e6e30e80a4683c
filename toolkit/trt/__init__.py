"""TensorRT: engine building and the engine runtime, for TensorRT 8.5 (JetPack 5), 10.x (JetPack 6,
desktop) and 11.x (desktop).

Nothing here imports ``tensorrt`` at module level: the pure parts (``versions``, ``sidecar``,
``inspect`` parsing) are used and tested without it, and the parts that need it
(``build``, ``runtime``, ``calibrator``) import it through ``deps.import_tensorrt`` so that a
machine without TensorRT gets one line naming the missing module and pointing to
``stereo-trt doctor``. Every TensorRT call used is listed, per version, in docs/tensorrt_api.md.
"""
