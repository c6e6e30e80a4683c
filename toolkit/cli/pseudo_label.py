import click


@click.command("pseudo-label")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--teacher", default="sgbm", show_default=True,
              help="sgbm (OpenCV SGBM with a left-right check), an ONNX stereo model (.onnx), "
                   "or a student checkpoint (.pth).")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              help="Output root; the input tree is mirrored below it.")
@click.option("--max-disp", type=click.IntRange(1, 1024), help="SGBM search range in px.  [default: 192]")
@click.option("--lr-threshold", type=click.FloatRange(min=0, min_open=True),
              help="SGBM left-right check: largest disagreement in px that still counts as valid.  [default: 1.0]")
@click.option("--lr-check/--no-lr-check", default=None,
              help="Label only pixels the left and right views agree on. SGBM: its own check, on by default "
                   "(--no-lr-check keeps every matched pixel). ONNX and checkpoint teachers: off by default; on, the "
                   "teacher runs again on the mirrored, swapped pair and pixels that disagree by more than 0.7 px "
                   "are left out (this replaces a checkpoint's own confidence as the mask).")
@click.option("--iters", type=click.IntRange(1, 64), help="Refinement iterations (checkpoint teachers only).")
@click.option("--device", metavar="cpu|cuda|cuda:N",
              help="Where checkpoint (PyTorch) and ONNX (ONNX Runtime) teachers run.  [default: cpu]")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for ONNX Runtime / PyTorch.")
@click.option("--rule", metavar="LEFT->RIGHT",
              help="Naming rule pairing left images given as a glob, e.g. _left->_right.")
@click.option("--with-images/--no-images", default=True, show_default=True,
              help="Link (or copy) each pair's images to their mirrored places, so the output is a complete tree.")
@click.option("--overwrite", is_flag=True,
              help="Allow an --out folder that already holds disparity files (never the input itself); "
                   "labels an earlier run listed in its manifest and this run does not write are removed.")
def command(inputs, teacher, out_dir, max_disp, lr_threshold, lr_check, iters, device, threads, rule, with_images,
            overwrite):
    """Write a teacher's disparities as InStereo2K-style training labels.

    INPUTS is LEFT RIGHT, a folder of pairs (InStereo2K, Middlebury, KITTI or left/ +
    right/), or a glob of left images. For each pair, beside its place in the input tree
    mirrored under --out: <left>_disp.png (uint16, disparity x 100, 0 = invalid) and
    <left>_valid.png (255 = trusted), plus pseudo_labels.json with the teacher's provenance.
    --out must be a new folder outside the input (or, with --overwrite, an earlier output).

    Example: stereo-trt pseudo-label data/unlabelled --teacher sgbm --max-disp 192 --out data/sgbm_labels
    """
    from pathlib import Path

    from toolkit import pseudo_label
    from toolkit.data.pairs import discover_pairs, parse_rule
    from toolkit.device import parse_device
    from toolkit.outputs import check_output_dir

    # cheap checks first: where the labels go, then the teacher (and its device), then the input tree
    check_output_dir(out_dir)
    runner = pseudo_label.open_teacher(teacher, max_disp=max_disp, lr_threshold=lr_threshold, lr_check=lr_check,
                                       iters=iters, device=parse_device(device) if device else None, threads=threads)
    pairs = discover_pairs(list(inputs), parse_rule(rule) if rule else None)
    # a folder named on the command line is the tree the output mirrors
    root = inputs[0] if len(inputs) == 1 and Path(inputs[0]).is_dir() else None
    named_folders = [item for item in inputs if Path(item).is_dir()]
    pseudo_label.check_label_output(out_dir, root or pseudo_label.pairs_root(pairs), named_folders, overwrite)

    def progress(index, label):
        click.echo(f"[{index + 1}/{len(pairs)}] {label.name}: {label.valid_fraction:.0%} valid -> {label.label}")

    with runner:
        manifest = pseudo_label.pseudo_label(runner, pairs, out_dir, pseudo_label.describe_teacher(teacher, runner),
                                             root=root, with_images=with_images, on_pair=progress, overwrite=overwrite)
    click.echo(f"{len(pairs)} pair(s) labelled; manifest: {manifest}")
