import click


@click.command("train")
@click.option("--data", default="synthetic", show_default=True,
              help="'synthetic' (generated scenes) or an InStereo2K-layout folder with ground truth or pseudo-labels "
                   "(train/part<N>/<id>/left_disp.png, as `stereo-trt pseudo-label` writes).")
@click.option("--out", "out_dir", default="outputs/train", show_default=True,
              help="Folder for last.pth and the training state (train_state.pt).")
@click.option("--steps", default=2000, show_default=True, type=int)
@click.option("--minutes", type=float,
              help="Wall-clock budget, start-up included: the schedule ends at --steps or here, whichever is first.")
@click.option("--batch-size", default=2, show_default=True, type=int)
@click.option("--crop", "crop_text", default="192x320", show_default=True, metavar="HxW",
              help="Training crop (multiples of 32).")
@click.option("--train-iters", default=4, show_default=True, type=int, help="GRU iterations while training (1-16).")
@click.option("--lr", default=2e-4, show_default=True, type=float, help="Peak learning rate of the one-cycle schedule.")
@click.option("--scene-max-disp", default=96, show_default=True, type=int, help="Largest disparity of synthetic scenes.")
@click.option("--photo-textures", is_flag=True,
              help="Texture synthetic scenes with scikit-image's bundled photographs (needs scikit-image).")
@click.option("--hard-cases", "hard_cases_text", metavar="NAMES",
              help="Add to synthetic scenes, by name (comma-separated) or 'all': thin (poles, wires, railings), "
                   "curved (cylinders, steep plates), tiled (repetitive patterns), flat (near-textureless surfaces), "
                   "glints (reflections that move between the views).")
@click.option("--init", type=click.Path(dir_okay=False), help="Checkpoint to fine-tune from.")
@click.option("--resume", is_flag=True, help="Continue from OUT/train_state.pt (an error if there is none).")
@click.option("--overwrite", is_flag=True, help="Start a new run in an --out that holds one, replacing it.")
@click.option("--val-every", default=200, show_default=True, type=int, help="Evaluate on held-out synthetic scenes every N steps.")
@click.option("--val-pairs", default=8, show_default=True, type=int, help="Held-out synthetic scenes (at the crop size).")
@click.option("--ckpt-every", default=100, show_default=True, type=int, help="Write OUT/last.pth and the training state every N steps.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", type=int, help="PyTorch CPU threads.")
@click.option("--device", "device_text", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
              help="auto: bf16 autocast on a GPU that supports it, else fp16 autocast with a gradient scaler; fp32 on a CPU.")
@click.option("--workers", type=int,
              help="Data worker processes (scene generation, decoding); 0 = in the training process.  "
                   "[default: 0 on a CPU, cores - 1 (at most 16) on a GPU]")
@click.option("--fp16-weights", is_flag=True, help="Store checkpoints' weights in fp16 (half the size; loaded as fp32).")
@click.option("--log-every", default=1, show_default=True, type=click.IntRange(1),
              help="Print the progress line every N steps.")
def command(data, out_dir, steps, minutes, batch_size, crop_text, train_iters, lr, scene_max_disp, photo_textures,
            hard_cases_text, init, resume, overwrite, val_every, val_pairs, ckpt_every, seed, threads, device_text, precision, workers, fp16_weights, log_every):
    """Train or fine-tune the student on a CPU or a CUDA GPU.

    \b
    Examples:
      stereo-trt train --data synthetic --steps 3000 --crop 192x320 --out outputs/train
      stereo-trt train --data data/sgbm_labels --init toolkit/weights/rt_igev_student.pth --out outputs/finetune
    """
    from toolkit import train
    from toolkit.device import parse_device
    from toolkit.preprocess import parse_size

    config = train.TrainConfig(data=data, out_dir=out_dir, steps=steps, minutes=minutes, batch_size=batch_size,
                               crop_hw=parse_size(crop_text, "--crop"), train_iters=train_iters, lr=lr,
                               scene_max_disp=scene_max_disp, photo_textures=photo_textures,
                               hard_cases=parse_hard_cases(hard_cases_text),
                               init=init, seed=seed,
                               val_every=val_every, val_pairs=val_pairs, ckpt_every=ckpt_every, threads=threads,
                               device=parse_device(device_text), precision=precision, workers=workers,
                               fp16_weights=fp16_weights)

    done = {"step": None, "saved": None}

    def show(log):
        done["step"] = log.step
        if log.step % ckpt_every == 0:
            done["saved"] = log.step
        if log.val is not None:
            click.echo(f"step {log.step}: held-out EPE {log.val['epe']:.3f} px, bad-2 {100 * log.val['bad2']:.1f}%")
        if log.step % log_every == 0:
            click.echo(progress_line(log, steps), err=True)

    try:
        last = train.train(config, resume=resume, on_log=show, overwrite=overwrite,
                           on_message=lambda text: click.echo(text, err=True))
    except KeyboardInterrupt:
        # click would print only "Aborted!": say what a --resume continues from
        click.echo(interrupted_line(done["step"], done["saved"], out_dir, ckpt_every, resume), err=True)
        raise SystemExit(130) from None
    click.echo(f"checkpoint: {last}")


def parse_hard_cases(text: str | None) -> tuple[str, ...]:
    """--hard-cases: 'all', or comma-separated names (checked by ``train``)."""
    from toolkit.data.synthetic import HARD_CASES

    if text is None:
        return ()
    if text.strip() == "all":
        return HARD_CASES
    return tuple(name.strip() for name in text.split(",") if name.strip())


def interrupted_line(step, saved, out_dir: str, ckpt_every: int, resume: bool) -> str:
    """What a Ctrl-C left: the step reached and the step the checkpoint and training state hold."""
    from toolkit.train import CHECKPOINT_NAME, STATE_NAME

    reached = "before the first step" if step is None else f"after step {step}"
    if saved is not None:
        kept = (f"{out_dir}/{CHECKPOINT_NAME} and {out_dir}/{STATE_NAME} hold step {saved}; "
                "continue with the same command and --resume")
    elif resume:
        kept = f"{out_dir}/{STATE_NAME} is as it was; continue with the same command"
    else:
        kept = f"nothing saved (a checkpoint every --ckpt-every {ckpt_every} steps)"
    return f"interrupted {reached}: {kept}"


def progress_line(log, steps: int) -> str:
    """One step's progress: loss, EPE, rate, throughput and time left."""
    return (f"step {log.step}/{steps}  loss {log.loss:.3f}  epe {log.epe:.2f}  lr {log.lr:.2e}  "
            f"{log.steps_per_s:.2f} steps/s  {log.pairs_per_s:.1f} pairs/s  "
            f"{log.seconds / 60:.1f} min, ETA {log.eta_s / 60:.1f} min")
