import click


@click.command("export")
@click.argument("checkpoint", required=False, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False),
              help="Output .onnx. Default: engines/<checkpoint>_<H>x<W>_it<iters>_<precision>.onnx")
@click.option("--size", "size_text", default="480x640", show_default=True, metavar="HxW",
              help="Static network input size (multiples of 32).")
@click.option("--dynamic", "dynamic_text", metavar="MIN:OPT:MAX",
              help="Dynamic height/width instead, e.g. 256x320:480x640:544x960 (recorded for TensorRT profiles).")
@click.option("--iters", type=click.IntRange(1, 64), help="Refinement iterations baked in. Default: the checkpoint's.")
@click.option("--max-disp", type=int, help="Cost-volume range baked in (multiple of 32). Default: the checkpoint's.")
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset (17 lets TensorRT 8.5 parse it).")
@click.option("--fp16", is_flag=True, help="FP16-typed graph for strongly typed TensorRT 10/11 (correlation, "
              "softmax and regression stay FP32).")
@click.option("--exporter", type=click.Choice(["torchscript", "dynamo"]), default="torchscript", show_default=True)
@click.option("--trt", "trt", default="auto", show_default=True,
              help="TensorRT version to lint against: 8.5, 10, 11, auto (8.5 for FP32, 11 for FP16) or none.")
@click.option("--confidence", is_flag=True, help="Add the per-pixel confidence as a second output, 'confidence'.")
@click.option("--no-simplify", is_flag=True, help="Skip onnxslim.")
@click.option("--no-check", is_flag=True, help="Skip the ONNX Runtime vs PyTorch parity check.")
def command(checkpoint, out, size_text, dynamic_text, iters, max_disp, opset, fp16, exporter, trt, confidence,
            no_simplify, no_check):
    """Export a student checkpoint to ONNX, checked against PyTorch.

    Bakes in size, iterations and max disparity, writes the stereo-trt metadata and a JSON
    sidecar, lints the graph for TensorRT and fails if ONNX Runtime and PyTorch disagree on
    a real pair (EPE > 0.01 px in FP32). CHECKPOINT defaults to the built-in student.

    Example: stereo-trt export weights/student.pth --size 480x640 --iters 8
    """
    from toolkit.errors import InputError
    from toolkit.export import export_onnx, parse_dynamic
    from toolkit.paths import resolve_checkpoint
    from toolkit.preprocess import parse_size

    size_given = click.get_current_context().get_parameter_source("size_text") != click.core.ParameterSource.DEFAULT
    if dynamic_text and size_given:
        raise InputError(f"--size {size_text} and --dynamic exclude each other: a dynamic export takes its sizes "
                         "from MIN:OPT:MAX; drop --size")
    size = parse_size(size_text)
    dynamic = parse_dynamic(dynamic_text)
    lint_trt = None if trt.lower() == "none" else trt
    result = export_onnx(resolve_checkpoint(checkpoint), out, size=size, iters=iters, max_disp=max_disp, opset=opset,
                         dynamic=dynamic, fp16=fp16, simplify=not no_simplify, check=not no_check,
                         exporter=exporter, lint_trt=lint_trt, confidence=confidence)
    meta = result.metadata
    click.echo(f"wrote {result.path} ({meta['precision']}, it{meta['iters']}, max_disp {meta['max_disp']}, "
               f"opset {meta['opset']}) in {result.seconds:.1f} s; sidecar {result.sidecar}")
    if result.parity is not None:
        p = result.parity
        ranked = f", confidence Spearman {p.confidence['spearman']:.4f}" if p.confidence else ""
        click.echo(f"parity vs PyTorch on {p.pair}: EPE {p.epe:.5f} px, bad-1 {p.bad1:.3%}, "
                   f"max diff {p.max_abs_diff:.4f} px{ranked}")
    for finding in result.findings:
        click.echo(f"lint (TensorRT {result.lint_trt}) {finding}")
