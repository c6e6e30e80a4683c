import click


@click.command("lint")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--trt", "trt", default="8.5", show_default=True, help="TensorRT version: 8.5 (JetPack 5), 10 (JetPack 6), 11.")
def command(model, trt):
    """Check an ONNX model against a TensorRT version's ONNX parser.

    Prints every finding with the offending node; exits 1 when there are errors, 0 when
    the model is clean (warnings alone do not fail).

    Example: stereo-trt lint engines/student_480x640_it8_int8.onnx --trt 8.5
    """
    from toolkit.lint import errors, lint_onnx

    findings = lint_onnx(model, trt=trt)
    for finding in findings:
        click.echo(str(finding))
    failed = errors(findings)
    click.echo(f"{model}: {len(failed)} error(s), {len(findings) - len(failed)} warning(s) for TensorRT {trt}")
    if failed:
        raise click.exceptions.Exit(1)
