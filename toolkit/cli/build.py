import click


@click.command("build")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]),
              help="Engine precision. Default: the ONNX's own (fp32, the FP16-typed ONNX of `export --fp16`, "
                   "or the Q/DQ ONNX of `quantize`).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Engine path (.engine/.plan). Default: engines/<model>_<precision>_<gpu>-sm<cc>-trt<version>.engine")
@click.option("--calibration", metavar="PAIRS",
              help="Implicit INT8 (TensorRT 8.5/10.x): a folder of pairs, a glob of left images or a manifest .json.")
@click.option("--calib-cache", type=click.Path(dir_okay=False),
              help="TensorRT calibration cache to reuse, or to write after calibrating. "
                   "Default when calibrating: calibration/<model>_trt<version>.cache")
@click.option("--calib-limit", default=100, show_default=True, type=int, help="Calibrate on at most this many pairs.")
@click.option("--workspace", "workspace_mb", type=int, metavar="MiB",
              help="Builder workspace limit. Default: TensorRT's (all device memory); 1024-2048 on 8 GB Jetsons.")
@click.option("--opt-level", type=int, help="Builder optimization level 0-5 (TensorRT 8.6+). Default: TensorRT's (3).")
@click.option("--timing-cache", type=click.Path(dir_okay=False),
              help="Timing cache file. Default: one per device next to the engine, reused by later builds.")
@click.option("--no-timing-cache", is_flag=True, help="Build without reading or writing a timing cache.")
@click.option("--profile", "profiles", multiple=True, metavar="MIN:OPT:MAX",
              help="Optimization profile for a dynamic-shape ONNX, e.g. 256x320:480x640:736x1280 "
                   "(repeatable). Default: the range recorded at export.")
@click.option("--verbose", is_flag=True, help="Show TensorRT's verbose log.")
def command(model, precision, out, calibration, calib_cache, calib_limit, workspace_mb, opt_level, timing_cache,
            no_timing_cache, profiles, verbose):
    """Build a TensorRT engine for this device from an exported ONNX model.

    Engines only run on the GPU model and TensorRT version that built them, so build on the
    target (the Jetson itself). Writes the engine and a JSON sidecar recording TensorRT, GPU,
    precision, profiles, the ONNX hash and a per-layer precision summary.

    Example: stereo-trt build engines/student_480x640_it8_fp32.onnx --precision fp16 --workspace 2048
    """
    from toolkit.trt.build import build_engine, resolve_calibration_pairs

    pairs, prepared_hw = resolve_calibration_pairs(calibration) if calibration else ((), None)
    with _Ticker() as ticker:
        result = build_engine(
            model, precision=precision, out=out, calibration=pairs, calib_cache=calib_cache,
            workspace_mb=workspace_mb, opt_level=opt_level, timing_cache=timing_cache,
            profiles=list(profiles) or None, calibration_limit=calib_limit, calibration_hw=prepared_hw,
            reuse_timing_cache=not no_timing_cache, verbose=verbose, on_progress=ticker.say,
        )
    summary = result.sidecar.get("layer_precision") or {}
    counts = ", ".join(f"{k} {v}" for k, v in (summary.get("by_precision") or {}).items())
    click.echo(f"{result.engine_path} ({result.plan.precision}, built in {result.build_seconds:.0f} s"
               + (f"; layers: {counts}" if counts else "") + ")")


class _Ticker:
    """Progress lines on stderr, plus an elapsed-time line every 30 s while TensorRT is silent
    (TensorRT 8.5 has no progress monitor, and a Jetson build takes minutes)."""

    interval = 30.0

    def __enter__(self):
        import threading
        import time

        self.start = time.monotonic()
        self.last = self.start
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()
        return self

    def say(self, message: str) -> None:
        import time

        self.last = time.monotonic()
        click.echo(f"[{self.last - self.start:5.0f} s] {message}", err=True)

    def _tick(self) -> None:
        import time

        while not self.done.wait(5.0):
            if time.monotonic() - self.last >= self.interval:
                self.say("still building ...")

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
