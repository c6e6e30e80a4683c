import click

from toolkit.cli.options import checkpoint_precision_option, model_device_option
from toolkit.cli.run import BACKENDS


@click.command("ros2")
@click.option("--left-topic", default="/left/image_raw", show_default=True, help="Left image topic.")
@click.option("--right-topic", default="/right/image_raw", show_default=True, help="Right image topic.")
@click.option("--compressed", is_flag=True, help="The topics carry sensor_msgs/CompressedImage.")
@click.option("--backend", type=click.Choice(sorted(BACKENDS)),
              help="Inference backend. Default: from the model's suffix (.engine trt, .onnx onnx, .pth torch).")
@click.option("--model", type=click.Path(dir_okay=False), help="TensorRT engine, ONNX model or checkpoint.")
@click.option("--size", "size_text", metavar="HxW", help="Network size for checkpoints (multiples of 32).")
@click.option("--max-disp", type=click.IntRange(16, 768), help="Maximum disparity, px (checkpoints and sgbm).")
@click.option("--threads", type=click.IntRange(1, 256), help="CPU threads for ONNX Runtime / PyTorch.")
@model_device_option
@checkpoint_precision_option
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="Stereo calibration file; default: the camera_info topics beside the image topics.")
@click.option("--rectified", is_flag=True, help="The image topics are rectified (image_rect): camera_info gives only the geometry.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), help="Publish pixels below this confidence as invalid.")
@click.option("--min-depth", type=click.FloatRange(0), help="Point cloud: drop points nearer than this, metres.")
@click.option("--max-depth", type=click.FloatRange(0), help="Point cloud: drop points farther than this, metres.")
@click.option("--slop", type=click.FloatRange(0), default=0.005, show_default=True,
              help="Largest left/right stamp difference of a pair, seconds.")
@click.option("--namespace", default="/stereo_trt", show_default=True, help="Prefix of the published topics.")
def command(left_topic, right_topic, compressed, backend, model, size_text, max_disp, threads, device, precision,
            calibration, rectified, min_confidence, min_depth, max_depth, slop, namespace):
    """Run as a ROS 2 node: stereo images in, disparity, depth, confidence and points out.

    Subscribes to two image topics (approximate time sync, QoS keep-last 1 best effort so
    stale frames drop) and their camera_info, and publishes under --namespace the same
    messages run --record-bag writes. Needs a ROS 2 installation (rclpy): source
    /opt/ros/<distro>/setup.bash first. See docs/ros2.md.

    Example: stereo-trt ros2 --left-topic /left/image_rect --right-topic /right/image_rect --rectified --model engines/student_fp16.engine
    """
    from toolkit.backends import check_spec
    from toolkit.device import parse_device
    from toolkit.errors import InputError
    from toolkit.pointcloud import CloudMask
    from toolkit.ros import node
    from toolkit.stream import app
    from toolkit.stream.rectify import Rectifier, load_calibration

    if calibration and rectified:  # as in run: a calibration rectifies raw frames, --rectified would be dropped
        raise InputError("--calibration and --rectified exclude each other: a calibration rectifies raw frames")
    config = node.NodeConfig(left_topic, right_topic, compressed, slop, namespace, rectified, min_confidence,
                             CloudMask(min_depth=min_depth, max_depth=max_depth))
    run_config = app.RunConfig(backend=BACKENDS[backend] if backend else None, model=model, size_text=size_text,
                               max_disp=max_disp, threads=threads, device=parse_device(device) if device else None,
                               precision=precision)
    if model is not None or backend == "sgbm":
        check_spec(app.runner_spec(run_config))  # the model's options and device, before rclpy is needed
    node.require_rclpy()
    rectifier = Rectifier(load_calibration(calibration)) if calibration else None
    runner = app.build_runner(run_config, echo=click.echo)
    summary = node.run_node(config, runner, rectifier, on_status=click.echo)
    click.echo(summary.text())
