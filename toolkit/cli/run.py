import click

from toolkit.cli.options import checkpoint_precision_option, model_device_option

BACKENDS = {"trt": "tensorrt", "onnx": "onnxruntime", "torch": "torch", "sgbm": "sgbm"}
FRAME_POLICIES = {"auto": None, "latest": True, "every": False}


@click.command("run")
@click.option("--source", "source_texts", multiple=True, required=True, metavar="SPEC",
              help="Camera index or /dev/videoN, csi:N (Jetson CSI sensor), a GStreamer pipeline (gst:...), "
                   "a video file, a folder of pairs, or a ROS 2 bag (.mcap, .db3 or a rosbag2 folder). "
                   "Once: side-by-side frames, a folder or a bag; twice: left then right.")
@click.option("--left-topic", metavar="TOPIC", help="Bag source: left image topic (Image or CompressedImage). "
              "Default: the bag's one left/right pair of image topics.")
@click.option("--right-topic", metavar="TOPIC", help="Bag source: right image topic.")
@click.option("--slop", type=click.FloatRange(0), help="Bag source: largest left/right header stamp difference of a "
              "pair, seconds. Default: 0.005.")
@click.option("--swap", is_flag=True, help="Exchange left and right (cameras wired the other way round).")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)),
              help="Inference backend. Default: from the model's suffix (.engine trt, .onnx onnx, .pth torch).")
@click.option("--model", type=click.Path(dir_okay=False),
              help="TensorRT engine, ONNX model or checkpoint. Default: the built-in student on the best backend here "
                   "(TensorRT, else PyTorch CUDA FP16 + CUDA graph, else ONNX Runtime CUDA, else CPU), said at start.")
@click.option("--size", "size_text", metavar="HxW", help="Network size for checkpoints (multiples of 32).")
@click.option("--max-disp", type=click.IntRange(16, 768), help="Maximum disparity, px (checkpoints and sgbm).")
@click.option("--iters", type=click.IntRange(1, 64), help="GRU iterations (checkpoints; exported models have theirs baked in).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for ONNX Runtime / PyTorch.")
@model_device_option
@checkpoint_precision_option
@click.option("--cuda-graph", is_flag=True,
              help="Checkpoints on CUDA (with --size) and engines: replay the forward pass as one CUDA graph.")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="Stereo calibration (OpenCV YAML/XML or JSON): frames are rectified with it.")
@click.option("--alpha", type=click.FloatRange(-1, 1), default=0.0, show_default=True,
              help="Rectification scaling: 0 valid pixels only, 1 all source pixels.")
@click.option("--rectified", is_flag=True, help="The source already delivers rectified pairs.")
@click.option("--depth", is_flag=True, help="Show depth instead of disparity (needs --calibration or --focal-px/--baseline).")
@click.option("--focal-px", type=float, help="Focal length of the rectified views, px (with --rectified).")
@click.option("--baseline", type=float, help="Baseline, in the unit depth should have (with --rectified).")
@click.option("--range", "range_text", metavar="LOW,HIGH", help="Fixed colour range (px or depth units). Default: follows the data.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), help="Black out pixels below this confidence.")
@click.option("--lr-check", is_flag=True, help="Confidence from a left-right consistency check (two inferences a frame).")
@click.option("--no-mask", is_flag=True, help="Show invalid (non-positive) disparities instead of blacking them out.")
@click.option("--save", type=click.Path(dir_okay=False), help="Record the view to a video (.mp4, .avi, .mkv).")
@click.option("--headless", is_flag=True, help="No window; print a status line every --status-every seconds.")
@click.option("--serve", "serve_port", type=click.IntRange(0, 65535), help="Serve the view as MJPEG on this port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address --serve binds (0.0.0.0: every interface).")
@click.option("--status-every", type=click.FloatRange(0), default=2.0, show_default=True, help="Seconds between status lines.")
@click.option("--camera-size", metavar="WxH", help="Capture size to request from cameras (side-by-side cameras: the whole frame).")
@click.option("--fps", type=click.FloatRange(1, 240), help="Capture rate to request from cameras (and of --save).")
@click.option("--fourcc", metavar="CODE", help="Camera pixel format, e.g. MJPG (two USB cameras on one bus need it).")
@click.option("--frames", "frame_policy", type=click.Choice(sorted(FRAME_POLICIES)), default="auto", show_default=True,
              help="latest: drop frames the model cannot keep up with; every: process all; auto: latest for cameras.")
@click.option("--max-frames", type=click.IntRange(1), help="Stop after this many frames.")
@click.option("--record-bag", type=click.Path(), metavar="OUT",
              help="Write disparity, depth (m), confidence, PointCloud2 and the rectified left image of every frame "
                   "to a ROS 2 bag: OUT.mcap (one MCAP file) or a new folder (rosbag2).")
@click.option("--ply-dir", type=click.Path(file_okay=False), help="Write a coloured point cloud (PLY) every --ply-every frames here (and when p is pressed in the window).")
@click.option("--ply-every", type=click.IntRange(1), help="Frames between --ply-dir clouds (default 30).")
@click.option("--min-depth", type=click.FloatRange(0), help="Point clouds: drop points nearer than this, metres.")
@click.option("--max-depth", type=click.FloatRange(0), help="Point clouds: drop points farther than this, metres.")
def command(source_texts, left_topic, right_topic, slop, swap, backend, model, size_text, max_disp, iters, threads, device,
            precision, cuda_graph, calibration, alpha, rectified, depth, focal_px, baseline, range_text, min_confidence,
            lr_check, no_mask, save, headless, serve_port, host, status_every, camera_size, fps, fourcc, frame_policy,
            max_frames, record_bag, ply_dir, ply_every, min_depth, max_depth):
    """Live disparity or depth from stereo cameras, videos, image folders or ROS 2 bags.

    Captures, rectifies, runs the model and shows the result with FPS and latency; a
    window when a display exists (q quits), --save to record, --serve for a browser
    view, a summary at the end. Ctrl-C stops cleanly and leaves a playable recording.

    A ROS 2 bag as --source is read in stamp order, left and right paired by header stamp,
    and rectified with its camera_info (or --calibration); --record-bag writes the results
    with the input stamps and frame ids.

    Example: stereo-trt run --source 0 --calibration stereo.yaml --model engines/student_fp16.engine --save out.mp4

    Example: stereo-trt run --source recording.mcap --backend sgbm --headless --record-bag depth.mcap
    """
    import signal

    from toolkit.device import parse_device
    from toolkit.stream import app

    signal.signal(signal.SIGTERM, _interrupt)
    config = app.RunConfig(
        sources=list(source_texts), swap=swap, backend=BACKENDS[backend] if backend else None, model=model,
        size_text=size_text, max_disp=max_disp, iters=iters, threads=threads,
        device=parse_device(device) if device else None, precision=precision,
        cuda_graph=cuda_graph, calibration=calibration, alpha=alpha,
        rectified=rectified, depth=depth, focal_px=focal_px, baseline=baseline, range_text=range_text,
        min_confidence=min_confidence, lr_check=lr_check, mask_invalid=not no_mask, save=save, headless=headless, serve_port=serve_port,
        host=host, status_every=status_every, camera_size=camera_size, fps=fps, fourcc=fourcc,
        latest_frame_wins=FRAME_POLICIES[frame_policy], max_frames=max_frames, left_topic=left_topic,
        right_topic=right_topic, slop=slop, record_bag=record_bag, ply_dir=ply_dir, ply_every=ply_every, min_depth=min_depth,
        max_depth=max_depth)
    summary = app.run(config, echo=click.echo)
    click.echo(summary.text())


def _interrupt(signum, frame):
    # SIGTERM (systemd, docker stop) ends the run like Ctrl-C: the recording gets finalised.
    raise KeyboardInterrupt
