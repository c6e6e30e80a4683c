import click


@click.command("train")
@click.option("--data", default="synthetic", show_default=True,
              help="'synthetic' (generated scenes) or an InStereo2K-layout folder with ground truth or pseudo-labels.")
@click.option("--out", "out_dir", default="outputs/train", show_default=True, type=click.Path(file_okay=False))
@click.option("--steps", default=2000, show_default=True, type=int)
@click.option("--minutes", type=float, help="Wall-clock budget: the schedule ends at --steps or here, whichever is first.")
@click.option("--batch-size", default=2, show_default=True, type=int)
@click.option("--crop", "crop_text", default="192x320", show_default=True, metavar="HxW")
@click.option("--train-iters", default=4, show_default=True, type=int, help="GRU iterations while training.")
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--scene-max-disp", default=96, show_default=True, type=int, help="Largest disparity of synthetic scenes.")
@click.option("--photo-textures", is_flag=True,
              help="Texture synthetic scenes with scikit-image's bundled photographs (needs scikit-image).")
@click.option("--init", type=click.Path(dir_okay=False), help="Checkpoint to fine-tune from.")
@click.option("--resume", is_flag=True, help="Continue from OUT/train_state.pt.")
@click.option("--val-every", default=200, show_default=True, type=int)
@click.option("--ckpt-every", default=100, show_default=True, type=int, help="Write OUT/last.pth and the training state every N steps.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", type=int, help="PyTorch CPU threads.")
def command(data, out_dir, steps, minutes, batch_size, crop_text, train_iters, lr, scene_max_disp, photo_textures, init, resume,
            val_every,
            ckpt_every, seed, threads):
    """Train or fine-tune the student (runs on a CPU).

    Example: stereo-trt train --data synthetic --steps 3000 --crop 192x320 --out outputs/train
    """
    from toolkit import train
    from toolkit.preprocess import parse_size

    crop = parse_size(crop_text)
    config = train.TrainConfig(data=data, out_dir=out_dir, steps=steps, minutes=minutes, batch_size=batch_size, crop_hw=crop,
                               train_iters=train_iters, lr=lr, scene_max_disp=scene_max_disp,
                               photo_textures=photo_textures, init=init,
                               seed=seed, val_every=val_every, ckpt_every=ckpt_every, threads=threads)

    def show(log):
        if log.val is not None:
            click.echo(f"step {log.step}: held-out EPE {log.val['epe']:.3f} px, bad-2 {100 * log.val['bad2']:.1f}%")
        else:
            click.echo(f"step {log.step}/{steps}  loss {log.loss:.3f}  epe {log.epe:.2f}  lr {log.lr:.2e}  "
                       f"{log.seconds / 60:.1f} min", err=True)

    last = train.train(config, resume=resume, on_log=show)
    click.echo(f"checkpoint: {last}")
