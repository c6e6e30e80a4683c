import click


@click.command("bench")
@click.option("--model", "models", multiple=True, required=True, metavar="PATH|sgbm[+cpu|+cuda][+fp16][+graph][+lr]",
              help="A row: checkpoint (.pth, PyTorch), .onnx (ONNX Runtime, FP32/FP16/INT8 Q/DQ), "
                   ".engine (TensorRT) or 'sgbm' (OpenCV). A checkpoint on --device cuda may end in +fp16 "
                   "(half weights) and +graph (CUDA graph; needs a fixed size); +cpu or +cuda pins a row's device; append +lr for the same model "
                   "with a left-right consistency confidence (two inferences per pair). Repeat for several rows.")
@click.option("--data", default="builtin", show_default=True,
              help="'builtin' (Middlebury Motorcycle with ground truth), an InStereo2K root, a KITTI- or "
                   "Middlebury-style folder, a folder of pairs without ground truth, or a glob of left images.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test"]),
              help="InStereo2K split.")
@click.option("--size", "size_text", metavar="HxW",
              help="Network size for every row (multiples of 32). Default: the exported models' size.")
@click.option("--warmup", default=2, show_default=True, type=int, help="Untimed calls per row before timing.")
@click.option("--repeats", type=int, help="Timed passes over all pairs. Default: enough for 20 calls per row.")
@click.option("--reference", type=click.Path(dir_okay=False),
              help="PyTorch FP32 checkpoint for 'EPE vs ref'. Default: the first checkpoint among the "
                   "rows, else the built-in weights if the ONNX models were exported from them.")
@click.option("--threads", type=int, help="CPU threads for PyTorch, ONNX Runtime and OpenCV.")
@click.option("--device", default="cpu", show_default=True, metavar="cpu|cuda|cuda:N",
              help="Device of the PyTorch and ONNX Runtime rows (cpu is CPU only; engines run on CUDA, "
                   "SGBM on the CPU).")
@click.option("--iters", type=int, help="GRU iterations for checkpoints. Default: what the ONNX models baked in.")
@click.option("--max-disp", type=int, help="Disparity range for checkpoints and SGBM. Default: the ONNX models'.")
@click.option("--limit", type=int, help="Use only the first N pairs.")
@click.option("--min-confidence", default=0.5, show_default=True, type=float,
              help="Threshold for 'EPE confident' of rows with a confidence output.")
@click.option("--memory/--no-memory", "measure_memory", default=True, show_default=True,
              help="Measure each row's peak memory in a fresh process.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Report folder. Default: benchmarks/<date-time>.")
def command(models, data, split, size_text, warmup, repeats, reference, threads, device, iters, max_disp, limit,
            min_confidence, measure_memory, out_dir):
    """Benchmark models side by side: latency/FPS, EPE vs the PyTorch reference and vs ground truth.

    Every row runs on the same pairs at the same size, interleaved pair by pair. Writes
    report.md (tables + plots), report.json, results.csv, per_pair.csv and plots/ under --out.

    \b
    Example:
      stereo-trt bench --model student.pth --model engines/student_480x640_it8_fp32.onnx \\
        --model engines/student_480x640_it8_int8.onnx --model sgbm \\
        --data datasets/InStereo2K --out benchmarks/cpu
    """
    from datetime import datetime

    from toolkit.bench import BenchConfig, run_bench
    from toolkit.device import parse_device
    from toolkit.paths import BENCHMARKS_DIR
    from toolkit.preprocess import parse_size

    config = BenchConfig(
        models=list(models), data=data, split=split, size=parse_size(size_text), warmup=warmup, repeats=repeats,
        reference=reference, threads=threads, device=parse_device(device), iters=iters, max_disp=max_disp, limit=limit,
        measure_memory=measure_memory, min_confidence=min_confidence,
    )
    out_dir = out_dir or str(BENCHMARKS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S"))
    report = run_bench(config, out_dir, progress=click.echo)
    click.echo(f"{len(report.rows)} row(s) benchmarked; open {out_dir}/report.md")
