import click


@click.command("demo")
@click.option("--out", "out_dir", default="outputs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Student checkpoint. Default: the built-in student.")
@click.option("--frames", default=8, show_default=True, type=click.IntRange(1, 64), help="Frames in the built-in clip.")
@click.option("--backend", type=click.Choice(["onnxruntime", "tensorrt", "torch"]),
              help="Default: TensorRT if importable, else PyTorch on CUDA (FP16 + CUDA graph), else ONNX Runtime "
                   "on CUDA, else ONNX Runtime on the CPU; the demo says which and why.")
@click.option("--device", metavar="cpu|cuda|cuda:N", help="Device to run on.  [default: the best one here]")
def command(out_dir, checkpoint, frames, backend, device):
    """Run the whole pipeline on built-in data: export, stream, measure.

    Loads the built-in checkpoint, exports (or reuses) its ONNX under engines/, streams a
    short built-in clip (a pan over the Middlebury Motorcycle pair) through the best
    available backend, and writes OUT/demo.mp4, OUT/demo_side_by_side.png (left |
    disparity | depth) and OUT/demo.json, printing FPS and EPE against the PyTorch
    reference and the ground truth.

    Example: stereo-trt demo
    """
    from toolkit.demo import run_demo
    from toolkit.device import parse_device

    result = run_demo(out_dir=out_dir, checkpoint=checkpoint, frames=frames, backend=backend,
                      device=parse_device(device) if device else None,
                      log=lambda text: click.echo(text, err=True))
    summary = result.summary
    click.echo(summary.text())
    click.echo(f"EPE vs PyTorch reference: {result.epe_vs_reference:.4f} px")
    click.echo(f"EPE vs ground truth: {result.epe_vs_gt:.3f} px (PyTorch reference: {result.reference_epe_vs_gt:.3f} px)")
    click.echo(f"wrote {result.video}, {result.panel}, {result.report}")
