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
    text = json.dumps(doctor.as_json(report), indent=2) if as_json else doctor.format_report(report)
    _write_or_note(text)


def _write_or_note(text: str) -> None:
    """Print the report; where stdout cannot take it (a full disk, /dev/full, a closed pipe) say so
    on stderr in one line and still exit 0, as promised: doctor is what one runs when things are broken."""
    import os
    import sys

    try:
        click.echo(text)
        sys.stdout.flush()
    except OSError as exc:
        click.echo(f"doctor: cannot write the report to stdout ({exc.strerror or exc})", err=True)
        # Python flushes stdout again at exit and would fail there; point it at /dev/null first.
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        finally:
            os.close(null)
