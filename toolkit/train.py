"""Training and fine-tuning the student on a CPU (or a GPU when there is one).

Data: synthetic scenes generated on the fly, or an InStereo2K-layout folder whose
``left_disp.png`` is ground truth or a teacher's pseudo-labels (``stereo-trt pseudo-label``).
Loss: the RT-IGEV sequence loss (smooth-L1 on the initial disparity plus exponentially
weighted L1 over the GRU iterations). Optimiser: AdamW with a one-cycle schedule.
Checkpoints are written in the toolkit's format (config travels with the weights) and a
training state beside them allows ``--resume``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from toolkit import provenance
from toolkit.data import synthetic
from toolkit.errors import InputError
from toolkit.model import StudentConfig, build_student, load_student, save_student

STATE_NAME = "train_state.pt"


@dataclass
class TrainConfig:
    """Everything a training run depends on; recorded in every checkpoint it writes.

    Attributes:
        data: "synthetic", or the root of an InStereo2K-layout folder (ground truth or pseudo-labels).
        out_dir: where checkpoints, the training state and the log go.
        steps: optimiser steps in total (the one-cycle schedule spans them).
        minutes: optional wall-clock budget; the schedule then spans whichever of steps and
            minutes runs out first, so a CPU run ends on time with a fully annealed rate.
        batch_size: pairs per step.
        crop_hw: training crop (multiples of 32).
        train_iters: GRU iterations while training (inference uses the model config's).
        scene_max_disp: largest disparity of synthetic scenes, px.
        photo_textures: texture synthetic scenes with scikit-image's bundled photographs.
        init: checkpoint to fine-tune from (None: seeded random init).
        seed: seeds the init, the data order and the augmentation.
        val_every, val_pairs: held-out evaluation cadence and size.
        ckpt_every: checkpoint cadence in steps.
        threads: torch CPU threads (None: torch's default).
    """

    data: str = "synthetic"
    out_dir: str = "outputs/train"
    steps: int = 2000
    minutes: float | None = None
    batch_size: int = 2
    crop_hw: tuple[int, int] = (192, 320)
    train_iters: int = 4
    lr: float = 2e-4
    weight_decay: float = 1e-5
    loss_gamma: float = 0.9
    scene_max_disp: int = 96
    photo_textures: bool = False
    init: str | None = None
    seed: int = 0
    val_every: int = 200
    val_pairs: int = 8
    ckpt_every: int = 100
    threads: int | None = None
    model: StudentConfig = field(default_factory=StudentConfig)


@dataclass
class Batch:
    left: torch.Tensor  # (B, 3, H, W) RGB 0..255
    right: torch.Tensor
    disparity: torch.Tensor  # (B, 1, H, W)
    valid: torch.Tensor  # (B, 1, H, W) bool


@dataclass
class StepLog:
    step: int
    loss: float
    epe: float
    lr: float
    seconds: float
    val: dict | None = None


def sequence_loss(init_disp: torch.Tensor, iter_disps: list[torch.Tensor], target: torch.Tensor,
                  valid: torch.Tensor, gamma: float, max_disp: int) -> tuple[torch.Tensor, dict]:
    """RT-IGEV loss: smooth-L1 on the initial disparity + gamma-weighted L1 per iteration.

    The gamma is re-based so the weights over n iterations match those the paper uses over 16,
    whatever the number of training iterations.
    """
    mask = valid & (target < max_disp) & (target > 0)
    if not bool(mask.any()):
        zero = init_disp.sum() * 0.0
        return zero, {"epe": 0.0}
    loss = F.smooth_l1_loss(init_disp[mask], target[mask])
    n = len(iter_disps)
    adjusted = gamma ** (15.0 / max(n - 1, 1))
    for i, disp in enumerate(iter_disps):
        loss = loss + adjusted ** (n - i - 1) * (disp - target).abs()[mask].mean()
    epe = (iter_disps[-1].detach() - target).abs()[mask].mean().item()
    return loss, {"epe": epe}


def photometric_augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, gamma and colour balance, the same kind of change a camera makes."""
    x = image.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.8, 1.25)
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    x = x * rng.uniform(0.9, 1.1, size=3)
    return (np.clip(x, 0, 1) * 255.0).astype(np.uint8)


def synthetic_batches(config: TrainConfig, rng: np.random.Generator) -> Iterator[Batch]:
    """Endless batches of freshly generated synthetic scenes at the crop size."""
    h, w = config.crop_hw
    photos = None
    if config.photo_textures:
        from toolkit.data.photos import bundled_photos

        photos = bundled_photos()
    while True:
        scenes = [synthetic.make_scene(int(rng.integers(1 << 31)), h, w, config.scene_max_disp, photos=photos)
                  for _ in range(config.batch_size)]
        yield _collate([(s.left, s.right, s.disparity, s.valid) for s in scenes])


def dataset_batches(config: TrainConfig, rng: np.random.Generator) -> Iterator[Batch]:
    """Endless batches of random crops from an InStereo2K-layout folder, with photometric augmentation."""
    from toolkit.data.instereo2k import Instereo2K

    dataset = Instereo2K(config.data, split="train")
    samples = [s for s in dataset.samples if s.disp_path is not None]
    if not samples:
        raise InputError(f"{config.data}: no pairs with left_disp.png to train on")
    h, w = config.crop_hw
    while True:
        items = []
        for index in rng.integers(len(samples), size=config.batch_size):
            left, right, disparity, valid = dataset.load(samples[int(index)])
            if left.shape[0] < h or left.shape[1] < w:
                raise InputError(f"{samples[int(index)].left_path}: smaller than the {h}x{w} training crop")
            y = int(rng.integers(left.shape[0] - h + 1))
            x = int(rng.integers(left.shape[1] - w + 1))
            window = (slice(y, y + h), slice(x, x + w))
            items.append((photometric_augment(left[window], rng), photometric_augment(right[window], rng),
                          disparity[window], valid[window]))
        yield _collate(items)


def _collate(items) -> Batch:
    def images(index):
        return torch.from_numpy(np.stack([it[index] for it in items]).transpose(0, 3, 1, 2).astype(np.float32))

    disparity = torch.from_numpy(np.stack([it[2] for it in items]).astype(np.float32))[:, None]
    valid = torch.from_numpy(np.stack([it[3] for it in items]).astype(bool))[:, None]
    return Batch(images(0), images(1), disparity, valid)


def validation_set(config: TrainConfig) -> list[Batch]:
    """A fixed held-out set of synthetic scenes (seeds far from the training stream)."""
    h, w = config.crop_hw
    scenes = [synthetic.make_scene(10_000_000 + i, h, w, config.scene_max_disp) for i in range(config.val_pairs)]
    return [_collate([(s.left, s.right, s.disparity, s.valid)]) for s in scenes]


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[Batch], iters: int) -> dict:
    """EPE and bad-2 (share of valid pixels off by more than 2 px) over held-out batches."""
    was_training = model.training
    model.eval()
    errors = []
    for batch in batches:
        prediction = model(batch.left, batch.right, iters=iters)
        errors.append((prediction - batch.disparity).abs()[batch.valid].numpy())
    model.train(was_training)
    errors = np.concatenate(errors)
    return {"epe": float(errors.mean()), "bad2": float((errors > 2.0).mean())}


def _initial_model(config: TrainConfig) -> torch.nn.Module:
    if config.init is None:
        return build_student(config.model, seed=config.seed)
    model, _, _ = load_student(config.init)
    return model


def train(config: TrainConfig, resume: bool = False, on_log: Callable[[StepLog], None] | None = None) -> Path:
    """Train the student; returns the path of the last checkpoint.

    Args:
        config: the run's configuration (validated before any work starts).
        resume: continue from ``out_dir/train_state.pt`` when it exists.
        on_log: called with a StepLog every few steps and after each validation.
    """
    _validate(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _initial_model(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-8)
    step, elapsed, rng = 0, 0.0, np.random.default_rng(config.seed)
    state_path = out_dir / STATE_NAME
    if resume and state_path.is_file():
        step, elapsed, rng = _load_state(state_path, model, optimizer)
    batches = synthetic_batches(config, rng) if config.data == "synthetic" else dataset_batches(config, rng)
    held_out = validation_set(config)
    last = out_dir / "last.pth"
    started = time.perf_counter() - elapsed
    progress = 0.0
    while progress < 1.0:
        lr = one_cycle_lr(progress, config.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        init_disp, iter_disps = model(batch.left, batch.right, iters=config.train_iters)
        loss, metrics = sequence_loss(init_disp, iter_disps, batch.disparity, batch.valid,
                                      config.loss_gamma, config.model.max_disp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        elapsed = time.perf_counter() - started
        progress = training_progress(step, elapsed, config)
        log = StepLog(step, float(loss.detach()), metrics["epe"], lr, elapsed)
        if step % config.val_every == 0 or progress >= 1.0:
            log.val = evaluate(model, held_out, config.model.iters)
        if step % config.ckpt_every == 0 or progress >= 1.0:
            _save(model, config, step, log, last)
            _save_state(state_path, step, elapsed, rng, model, optimizer)
        if on_log is not None:
            on_log(log)
    return last


def one_cycle_lr(progress: float, max_lr: float, warmup: float = 0.05) -> float:
    """One-cycle learning rate at ``progress`` in [0, 1]: linear warm-up, then linear decay to zero."""
    if progress < warmup:
        return max_lr * (0.04 + 0.96 * progress / warmup)
    return max_lr * max(0.0, 1.0 - (progress - warmup) / (1.0 - warmup))


def training_progress(step: int, elapsed_s: float, config: TrainConfig) -> float:
    """Fraction of the run done: by steps, or by the time budget when that runs out first."""
    progress = step / config.steps
    if config.minutes is not None:
        progress = max(progress, elapsed_s / (60.0 * config.minutes))
    return min(progress, 1.0)


def _validate(config: TrainConfig) -> None:
    h, w = config.crop_hw
    if h % 32 or w % 32:
        raise InputError(f"--crop {h}x{w}: both sides must be multiples of 32")
    if config.steps < 1 or config.batch_size < 1 or config.train_iters < 1:
        raise InputError("--steps, --batch-size and --train-iters must be at least 1")
    if config.data != "synthetic" and not Path(config.data).is_dir():
        raise InputError(f"--data {config.data}: expected 'synthetic' or an InStereo2K-layout folder")
    if config.init is not None and not Path(config.init).is_file():
        raise InputError(f"--init {config.init}: no such checkpoint")


def _save(model, config: TrainConfig, step: int, log: StepLog, path: Path) -> None:
    meta = provenance.record(kind="student-checkpoint", step=step, train=_config_dict(config),
                             last_loss=log.loss, last_val=log.val)
    save_student(path, model, config.model, meta)


def _config_dict(config: TrainConfig) -> dict:
    data = dataclasses.asdict(config)
    data["model"] = config.model.to_dict()
    return data


def _save_state(path: Path, step: int, elapsed: float, rng: np.random.Generator, model, optimizer) -> None:
    state = {"step": step, "elapsed": elapsed, "rng": rng.bit_generator.state, "model": model.state_dict(),
             "optimizer": optimizer.state_dict()}
    with provenance.atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path, model, optimizer) -> tuple[int, float, np.random.Generator]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    return int(state["step"]), float(state["elapsed"]), rng
