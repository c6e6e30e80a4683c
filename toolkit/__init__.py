"""stereo-trt: from an RT-IGEV student checkpoint to a real-time depth stream on NVIDIA edge hardware."""

__version__ = "0.1.0"
