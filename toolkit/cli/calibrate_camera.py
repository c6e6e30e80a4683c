import click


@click.command("calibrate-camera")
@click.argument("sources", nargs=-1, required=True)
@click.option("--board", "board_text", default="9x6", show_default=True, metavar="COLSxROWS",
              help="Chessboard inner corners (a 10x7-square board is 9x6), or ChArUco squares.")
@click.option("--square", type=click.FloatRange(0, min_open=True), required=True,
              help="Side of one board square, in the unit the baseline and depth should have.")
@click.option("--units", default="m", show_default=True, help="Name of the unit of --square.")
@click.option("--board-type", type=click.Choice(["chessboard", "charuco"]), default="chessboard", show_default=True)
@click.option("--marker", type=click.FloatRange(0, min_open=True), help="ChArUco marker side, units of --square.")
@click.option("--dictionary", default="DICT_4X4_50", show_default=True, help="ChArUco ArUco dictionary.")
@click.option("--out", default="stereo_calibration.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Calibration file to write: .yaml/.yml/.xml (OpenCV FileStorage) or .json.")
@click.option("--preview", type=click.Path(dir_okay=False),
              help="Rectified preview with horizontal lines. Default: <out>_preview.png.")
@click.option("--max-view-rms", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Reject views whose reprojection RMS exceeds this, px, and calibrate again without them.")
@click.option("--every", type=click.IntRange(1), default=10, show_default=True, help="From videos: one frame in N.")
@click.option("--max-views", type=click.IntRange(5), default=60, show_default=True, help="Use at most this many views.")
@click.option("--alpha", type=click.FloatRange(-1, 1), default=0.0, show_default=True, help="Rectification scaling of the preview.")
def command(sources, board_text, square, units, board_type, marker, dictionary, out, preview, max_view_rms, every,
            max_views, alpha):
    """Stereo calibration from views of a chessboard (or ChArUco board).

    SOURCES is a folder of image pairs, a side-by-side video, or two videos (left, right)
    of the board held at several angles and distances, fully visible to both cameras.
    Prints the per-view and total reprojection RMS, rejects views above --max-view-rms,
    writes the calibration (what `run --calibration` reads) with a .json provenance
    sidecar and a rectified preview: a feature must sit on one green line in both halves.

    Example: stereo-trt calibrate-camera board_pairs/ --board 9x6 --square 0.025 --out stereo.yaml
    """
    from pathlib import Path

    from toolkit.stream import calibrate

    cols, rows = calibrate.parse_board_size(board_text)
    board = calibrate.Board(board_type, cols, rows, square, marker, dictionary, units)
    preview = preview or str(Path(out).with_name(Path(out).stem + "_preview.png"))
    result = calibrate.calibrate_camera(list(sources), board, out, preview, max_view_rms, every, max_views, alpha)
    for view in result.views:
        mark = "  rejected" if view.rejected else ""
        click.echo(f"{view.name}: RMS left {view.left_rms:.3f} px, right {view.right_rms:.3f} px{mark}")
    calib = result.calibration
    click.echo(f"board found in {len(result.views)} of {result.pairs_read} pairs; {result.used} used, "
               f"{len(result.views) - result.used} rejected above {max_view_rms} px")
    click.echo(f"RMS: stereo {calib.rms:.3f} px, left {result.left_rms:.3f} px, right {result.right_rms:.3f} px; "
               f"baseline {calib.baseline:.4g} {calib.units}")
    click.echo(f"wrote {out} and {preview}")
