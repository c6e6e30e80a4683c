"""Options that several commands share, defined once so their meaning and help stay the same."""

import click

# predict, run and ros2: where a model runs and, for checkpoints on CUDA, in which precision
model_device_option = click.option(
    "--device", metavar="cpu|cuda|cuda:N",
    help="Where checkpoints (PyTorch) and .onnx models (ONNX Runtime) run.  [default: cpu; engines: cuda]")
checkpoint_precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "fp16"]),
    help="Checkpoints on CUDA: fp16 runs half weights (normalisation kept in FP32). Default: fp32.")
