import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(as_json):
    """Report what this machine can run and how to fix what is missing (exit code 0 always).

    Checks the Jetson model and JetPack/L4T release, power mode and clock lock, GPU and
    driver, CUDA, TensorRT, pycuda / cuda-python, ONNX Runtime providers, PyTorch and its
    CUDA, and whether OpenCV has GStreamer (needed for CSI cameras).

    Example: stereo-trt doctor --json > doctor.json
    """
    import json

    from toolkit import doctor

    report = doctor.collect()
    if as_json:
        click.echo(json.dumps(doctor.as_json(report), indent=2))
    else:
        click.echo(doctor.format_report(report))
