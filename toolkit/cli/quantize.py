import click


@click.command("quantize")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calibration", "-c", required=True, type=click.Path(),
              help="Calibration manifest (.json), InStereo2K root, or a folder of stereo pairs.")
@click.option("--out", type=click.Path(dir_okay=False), help="Output .onnx. Default: MODEL with _fp32 -> _int8.")
@click.option("--method", type=click.Choice(["minmax", "percentile", "entropy"]), default="minmax", show_default=True,
              help="How activation ranges are chosen; entropy clips tails that this network needs (see the report).")
@click.option("--n-calib", type=int, help="Calibration pairs. Default: all a manifest lists, else 32.")
@click.option("--holdout", type=int, help="Held-out pairs for the accuracy check. Default: the manifest's, else 8.")
@click.option("--max-epe-delta", type=float,
              help="EPE budget vs FP32 in px: keep the most sensitive layers in float until it is met "
                   "(and, for a model with a confidence output, its Spearman vs FP32 >= 0.95).")
@click.option("--sensitivity-pairs", type=click.IntRange(1), default=2, show_default=True,
              help="Held-out pairs each layer group is measured on in the --max-epe-delta search.")
@click.option("--target", type=click.Choice(["trt", "cpu"]), default="trt", show_default=True,
              help="trt: TensorRT Q/DQ rules; cpu: ONNX Runtime's uint8 placement (not for TensorRT).")
@click.option("--trt-version", default="8.5.2", show_default=True,
              help="TensorRT version for the calibration cache header (8.5.2 JetPack 5, 10.3.0 JetPack 6).")
@click.option("--cache", type=click.Path(dir_okay=False), help="Calibration cache path. Default: calibration/<out>.cache")
@click.option("--percentile", type=float, default=99.999, show_default=True, help="For --method percentile.")
@click.option("--seed", type=int, default=0, show_default=True, help="Pair sampling seed (folders, InStereo2K roots).")
@click.option("--threads", type=int, help="ONNX Runtime threads for evaluation and timing.")
@click.option("--speed-runs", type=int, default=3, show_default=True, help="Timed runs per model (0 skips timing).")
def command(model, calibration, out, method, n_calib, holdout, max_epe_delta, sensitivity_pairs, target, trt_version,
            cache, percentile, seed, threads, speed_runs):
    """Quantize an exported FP32 ONNX model to INT8 Q/DQ, calibrated on stereo pairs.

    Calibration pairs go through the same preprocessing as inference. Writes the Q/DQ
    model, its JSON report (sidecar: accuracy vs FP32 on held-out pairs, per-layer
    sensitivity, layers kept in float, speed), an error map PNG and, for --target trt, a
    TensorRT calibration cache for implicit INT8 on TensorRT 8.5/10.x.

    Example: stereo-trt quantize engines/student_480x640_it8_fp32.onnx -c calibration/instereo2k_n32_holdout8_seed0.json --max-epe-delta 0.2
    """
    from toolkit.quantize import quantize_onnx

    result = quantize_onnx(model, calibration, out, method=method, n_calib=n_calib, holdout=holdout,
                           max_epe_delta=max_epe_delta, target=target, trt_version=trt_version, cache=cache,
                           percentile=percentile, seed=seed, threads=threads, speed_runs=speed_runs,
                           sensitivity_pairs=sensitivity_pairs,
                           on_progress=lambda message: click.echo(message, err=True))
    report = result.report
    accuracy = report["accuracy_vs_fp32"]
    spearman = accuracy.get("confidence_spearman")
    ranked = "" if spearman is None else f", confidence Spearman {spearman:.4f}"
    click.echo(f"wrote {result.path} in {result.seconds:.0f} s; report {result.report_path}; error map {result.error_map_path}")
    click.echo(f"INT8 vs FP32 on {accuracy['pairs']} held-out pair(s): EPE {accuracy['epe']:.4f} px, "
               f"bad-1 {accuracy['bad1']:.3%}{ranked}; {len(report['kept_float'])} layer group(s) kept in float")
    if report["speed_ms"]:
        speed = report["speed_ms"]
        click.echo(f"ONNX Runtime: FP32 {speed['fp32']['median_ms']:.0f} ms, INT8 {speed['int8']['median_ms']:.0f} ms "
                   f"({speed['int8_speedup']:.2f}x)")
    if result.cache_path:
        click.echo(f"TensorRT calibration cache: {result.cache_path} ({report['tensorrt']['cache_header']}, "
                   f"{report['tensorrt']['quantized_activations']} tensors)")
