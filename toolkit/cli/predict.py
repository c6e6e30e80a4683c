import click

from toolkit.cli.options import checkpoint_precision_option, model_device_option


@click.command("predict")
@click.argument("inputs", nargs=-1)
@click.option("--checkpoint", "--model", "model", type=click.Path(dir_okay=False),
              help="Student checkpoint (.pth), or an exported .onnx / TensorRT engine. Default: the built-in student.")
@click.option("--iters", type=click.IntRange(1, 64), help="GRU iterations (checkpoints only; ONNX/engines have theirs baked in).")
@click.option("--max-disp", type=click.IntRange(32, 768),
              help="Maximum disparity in px, a multiple of 32 from 32 to 768 (checkpoints only).")
@click.option("--size", "size_text", metavar="HxW", help="Fixed network size (multiples of 32). Default: pad each image to a multiple of 32.")
@model_device_option
@checkpoint_precision_option
@click.option("--focal", type=float, help="Focal length in pixels (with --baseline: writes depth in metres).")
@click.option("--baseline", type=float, help="Stereo baseline in metres.")
@click.option("--cx", type=float, help="Principal point x of the left view, px (--ply; default: image centre).")
@click.option("--cy", type=float, help="Principal point y of the left view, px (--ply; default: image centre).")
@click.option("--doffs", type=float, default=0.0, show_default=True,
              help="Principal point x difference right minus left, px (Middlebury's doffs): depth = f*B/(d+doffs).")
@click.option("--ply", is_flag=True, help="Also write <name>.ply, the coloured point cloud (needs --focal/--baseline; "
              "the built-in pair brings its own calibration).")
@click.option("--min-depth", type=click.FloatRange(0), help="--ply: drop points nearer than this, metres.")
@click.option("--max-depth", type=click.FloatRange(0), help="--ply: drop points farther than this, metres.")
@click.option("--min-confidence", type=float, help="Write pixels below this confidence (0..1) as invalid.")
@click.option("--lr-check", is_flag=True, help="Confidence from a left-right consistency check (a second inference).")
@click.option("--out", "out_dir", default="outputs/predict", show_default=True, type=click.Path(file_okay=False))
def command(inputs, model, iters, max_disp, size_text, device, precision, focal, baseline, cx, cy, doffs, ply, min_depth,
            max_depth, min_confidence, lr_check, out_dir):
    """Predict disparity (and depth) for stereo pairs.

    INPUTS is LEFT RIGHT (two images), a folder of pairs (InStereo2K, Middlebury,
    KITTI or left/ + right/ layouts), or a glob of left images; nothing means the
    built-in Middlebury pair from scikit-image.

    Writes <name>_disp.pfm, <name>_disp.png (uint16, x256), <name>_disp_color.png and,
    with --focal and --baseline, <name>_depth.pfm / <name>_depth_color.png. Models with a
    confidence output (checkpoints; ONNX/engines exported with --confidence; any model with
    --lr-check) also give <name>_conf.pfm / <name>_conf.png. --ply adds <name>.ply, a
    coloured point cloud in metres (x right, y down, z forward).

    Example: stereo-trt predict left.png right.png --focal 721.5 --baseline 0.54 --out outputs/

    Example: stereo-trt predict --ply --max-depth 3 --out outputs/motorcycle
    """
    from toolkit import predict
    from toolkit.backends import RunnerSpec, check_spec, open_runner
    from toolkit.device import parse_device
    from toolkit.errors import InputError
    from toolkit.outputs import check_output_dir
    from toolkit.paths import resolve_checkpoint
    from toolkit.preprocess import parse_size

    # Everything that can be checked is checked before the model loads or the first file is written.
    cloud = predict.cloud_options(bool(inputs), focal, baseline, cx, cy, doffs, min_depth, max_depth) if ply else None
    if not ply and (min_depth is not None or max_depth is not None):
        raise InputError("--min-depth/--max-depth apply to --ply point clouds")
    if not ply and (cx is not None or cy is not None):
        raise InputError("--cx/--cy apply to --ply point clouds")
    if doffs and focal is None:
        raise InputError("--doffs applies to depth and point clouds: give it with --focal and --baseline")
    if cloud is not None and focal is None:
        focal, baseline = cloud.focal_px, cloud.baseline_m
        doffs = cloud.doffs
        click.echo(f"built-in pair: focal {focal} px, baseline {baseline} m, doffs {doffs} px")
    predict.check_options(focal, baseline, min_confidence)
    size = parse_size(size_text)
    spec = RunnerSpec(model=str(resolve_checkpoint(model)), device=parse_device(device) if device else None,
                      precision=precision, size=size, iters=iters, max_disp=max_disp, lr_check=lr_check)
    check_spec(spec)  # the device, before any pair is read
    stereo_pairs = _stereo_pairs(inputs)
    check_output_dir(out_dir, "--out")
    named_pairs = _named_pairs(stereo_pairs, size, out_dir)
    with open_runner(spec) as runner:
        outputs = predict.predict_pairs(
            runner, named_pairs, out_dir, focal, baseline, min_confidence=min_confidence, doffs=doffs, cloud=cloud,
            on_pair=lambda o: click.echo(f"{o.name}: {o.infer_ms:.0f} ms -> {o.files[0].parent}/{o.name}_disp.*"),
        )
    click.echo(f"{len(outputs)} pair(s) written under {out_dir}")


def _stereo_pairs(inputs) -> list:
    """The pairs INPUTS names (none for the built-in pair)."""
    from toolkit.data import pairs

    return list(pairs.discover_pairs(list(inputs))) if inputs else []


def _named_pairs(stereo_pairs, size, out_dir):
    from toolkit import predict

    if not stereo_pairs:
        from toolkit.data.builtin import builtin_pair

        left, right, _, _ = builtin_pair()
        return [("motorcycle", left, right)]
    predict.check_pairs(stereo_pairs, size, out_dir)
    return predict.read_pairs(stereo_pairs)
