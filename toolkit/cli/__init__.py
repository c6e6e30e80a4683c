"""The ``stereo-trt`` command: a thin click skin over the library.

Each command parses its options, calls one library function and lets
``StereoTrtError`` become a one-line message with exit code 2. Command modules import
the library inside their function bodies so that ``stereo-trt --help`` never imports
PyTorch or TensorRT.
"""

from __future__ import annotations

import importlib
import math

import click

from toolkit import __version__
from toolkit.errors import StereoTrtError

# command name -> module under toolkit.cli that defines a click command called `command`
COMMANDS = {
    "demo": "demo",
    "export": "export",
    "lint": "lint",
    "quantize": "quantize",
    "predict": "predict",
    "run": "run",
    "ros2": "ros2",
    "calibrate-camera": "calibrate_camera",
    "bench": "bench",
    "build": "build",
    "doctor": "doctor",
    "pseudo-label": "pseudo_label",
    "train": "train",
}


class UserError(click.ClickException):
    """A StereoTrtError as the CLI shows it: 'Error: <message>', exit code 2."""

    exit_code = 2


class StereoGroup(click.Group):
    """Loads command modules on demand and turns library errors into exit code 2."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        command = importlib.import_module(f"toolkit.cli.{COMMANDS[name]}").command
        _refuse_non_finite(command)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except StereoTrtError as exc:
            raise UserError(str(exc)) from None
        except click.UsageError as exc:
            # click shows a bad value, an unknown option or command with the usage and a hint around
            # it: four lines where our promise is one naming the option ("Invalid value for '--fps':
            # 0.0 is not in the range ...", "No such option '--outt'. Did you mean '--out'?").
            raise UserError(exc.format_message()) from None


def _refuse_non_finite(command: click.Command) -> None:
    """Make every float option of ``command`` refuse nan and inf (click's float accepts both).

    No option of the toolkit means anything by them: ``--focal-px nan`` gave all-NaN depth,
    ``--min-depth nan`` an unfiltered cloud, ``--square nan`` a calibration that found no board.
    """
    for param in command.params:
        if isinstance(param.type, click.types.FloatParamType) and not getattr(param, "_finite_checked", False):
            param.callback = _finite(param.callback)
            param._finite_checked = True


def _finite(callback):
    def check(ctx, param, value):
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is not None and not math.isfinite(item):
                raise click.BadParameter(f"{item}: expected a finite number", ctx=ctx, param=param)
        return callback(ctx, param, value) if callback else value
    return check


@click.group(cls=StereoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stereo-trt")
def main():
    """stereo-trt: RT-IGEV stereo depth from a PyTorch checkpoint to a real-time stream.

    Example: stereo-trt predict left.png right.png --out outputs/
    """
