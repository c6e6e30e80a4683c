"""Training and fine-tuning the student on a CPU or a CUDA GPU.

Data: synthetic scenes generated on the fly, or an InStereo2K-layout folder whose
``left_disp.png`` is ground truth or a teacher's pseudo-labels (``stereo-trt pseudo-label``),
batched in the training process or in worker processes (``toolkit.data.training``).
Loss: the RT-IGEV sequence loss (smooth-L1 on the initial disparity plus exponentially
weighted L1 over the GRU iterations). Optimiser: AdamW with a one-cycle schedule.
On a GPU the forward pass runs under bf16 autocast where the GPU supports it, else fp16
autocast with a gradient scaler. Checkpoints are written in the toolkit's format (config
travels with the weights) and a training state beside them allows ``--resume``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from toolkit import provenance
from toolkit.data import synthetic
from toolkit.data.training import (Batch, BatchStream, collate, dataset_batches, labelled_samples,
                                   synthetic_batches, worker_batches)
from toolkit.device import is_cuda, require_torch_device
from toolkit.errors import DependencyError, InputError
from toolkit.model import StudentConfig, build_student, load_student, save_student
from toolkit.outputs import check_output_dir, check_output_file

STATE_NAME = "train_state.pt"
CHECKPOINT_NAME = "last.pth"
MAX_TRAIN_ITERS = 16
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# DataLoader workers on a GPU when --workers is not given: one core stays with the training loop
MAX_DEFAULT_WORKERS = 16


@dataclass
class TrainConfig:
    """Everything a training run depends on; recorded in every checkpoint it writes.

    Attributes:
        data: "synthetic", or the root of an InStereo2K-layout folder (ground truth or pseudo-labels).
        out_dir: where checkpoints, the training state and the log go.
        steps: optimiser steps in total (the one-cycle schedule spans them).
        minutes: optional wall-clock budget, counted from the start of ``train`` (model and
            data start-up included); the schedule then spans whichever of steps and minutes
            runs out first, so a run ends on time with a fully annealed rate.
        batch_size: pairs per step.
        crop_hw: training crop (multiples of 32).
        train_iters: GRU iterations while training (1..16; inference uses the model config's).
        scene_max_disp: largest disparity of synthetic scenes, px.
        photo_textures: texture synthetic scenes with scikit-image's bundled photographs.
        hard_cases: names from ``synthetic.HARD_CASES`` to add to synthetic scenes (thin
            structures, curved and steep surfaces, repetitive and textureless patches, moving
            glints; ``synthetic.make_scene``).
        init: checkpoint to fine-tune from (None: seeded random init).
        seed: seeds the init, the data order and the augmentation.
        val_every, val_pairs: held-out evaluation cadence and size.
        ckpt_every: checkpoint cadence in steps.
        threads: torch CPU threads (None: torch's default).
        device: "cpu", "cuda" or "cuda:N" (``toolkit.device.parse_device``).
        precision: "auto" (bf16 autocast on a GPU that supports it, else fp16 autocast with a
            gradient scaler; fp32 on a CPU), or "fp32", "bf16", "fp16" (the last two on a GPU).
        workers: data worker processes; 0 batches in the training process; None: 0 on a CPU
            (the training step already uses every core), one fewer than the cores on a GPU.
        fp16_weights: store checkpoints' weights in fp16 (half the size, as the built-in
            weights; loaded back as fp32). The training state for ``--resume`` stays fp32.
        model: the network's configuration; with ``init``, the checkpoint's own (stored, or
            the default for published weights) replaces it.
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
    hard_cases: tuple[str, ...] = ()
    init: str | None = None
    seed: int = 0
    val_every: int = 200
    val_pairs: int = 8
    ckpt_every: int = 100
    threads: int | None = None
    device: str = "cpu"
    precision: str = "auto"
    workers: int | None = None
    fp16_weights: bool = False
    model: StudentConfig = field(default_factory=StudentConfig)


@dataclass
class StepLog:
    """One step's record.

    Attributes:
        step: steps done (a resumed run counts on from its state).
        loss, epe: this step's training loss and EPE (px) on its batch.
        lr: the learning rate used.
        seconds: wall time since the run started (a resumed run adds its earlier time).
        steps_per_s, pairs_per_s: throughput of this session so far.
        eta_s: seconds until the steps or the time budget run out.
        val: held-out metrics when this step evaluated.
    """

    step: int
    loss: float
    epe: float
    lr: float
    seconds: float
    steps_per_s: float = 0.0
    pairs_per_s: float = 0.0
    eta_s: float = 0.0
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


def validation_set(config: TrainConfig) -> list[Batch]:
    """A fixed held-out set of synthetic scenes (seeds the training stream never draws)."""
    h, w = config.crop_hw
    scenes = [synthetic.make_scene(10_000_000 + i, h, w, config.scene_max_disp) for i in range(config.val_pairs)]
    return [collate([(s.left, s.right, s.disparity, s.valid)]) for s in scenes]


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: list[Batch], iters: int) -> dict:
    """EPE and bad-2 (share of valid pixels off by more than 2 px) over held-out batches, in fp32."""
    was_training = model.training
    model.eval()
    device = str(next(model.parameters()).device)
    errors = []
    for batch in batches:
        batch = batch.on(device)
        prediction = model(batch.left, batch.right, iters=iters)
        errors.append((prediction - batch.disparity).abs()[batch.valid].cpu().numpy())
    model.train(was_training)
    errors = np.concatenate(errors)
    return {"epe": float(errors.mean()), "bad2": float((errors > 2.0).mean())}


def _initial_model(config: TrainConfig) -> tuple[torch.nn.Module, StudentConfig]:
    """The network to train and its configuration: ``config.model``, or the --init checkpoint's own."""
    if config.init is None:
        return build_student(config.model, seed=config.seed), config.model
    model, model_config, _ = load_student(config.init)
    return model, model_config


def autocast_dtype(config: TrainConfig) -> torch.dtype | None:
    """The autocast dtype a run uses, or None for plain fp32 (see ``TrainConfig.precision``)."""
    precision = config.precision
    if precision == "auto":
        if not is_cuda(config.device):
            return None
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def data_workers(config: TrainConfig) -> int:
    """Worker processes for the batches (see ``TrainConfig.workers``)."""
    if config.workers is not None:
        return config.workers
    if not is_cuda(config.device):
        return 0
    return max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 2) - 1))


def _batches(config: TrainConfig, samples, rng: np.random.Generator, first_step: int) -> Iterator[Batch]:
    """The run's batch stream: in this process with ``rng`` (0 workers), else in worker processes."""
    workers = data_workers(config)
    if workers == 0:
        if samples is None:
            return synthetic_batches(config.crop_hw, config.batch_size, config.scene_max_disp, config.photo_textures,
                                     config.hard_cases, rng)
        return dataset_batches(samples, config.crop_hw, config.batch_size, rng)
    stream = BatchStream("synthetic" if samples is None else samples, config.crop_hw, config.batch_size,
                         config.scene_max_disp, config.photo_textures, config.hard_cases, config.seed, first_step)
    return worker_batches(stream, workers, pin_memory=is_cuda(config.device))


class _Optimiser:
    """AdamW with gradient clipping, and the gradient scaler fp16 autocast needs (a no-op otherwise)."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, amp: torch.dtype | None) -> None:
        self.params = list(model.parameters())
        self.adamw = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay, eps=1e-8)
        self.scaler = torch.amp.GradScaler("cuda" if is_cuda(config.device) else "cpu",
                                           enabled=amp == torch.float16)

    def step(self, loss: torch.Tensor, lr: float) -> None:
        for group in self.adamw.param_groups:
            group["lr"] = lr
        self.adamw.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.adamw)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.scaler.step(self.adamw)
        self.scaler.update()

    def state_dict(self) -> dict:
        return {"optimizer": self.adamw.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.adamw.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def _forward_loss(model, batch: Batch, config: TrainConfig, amp: torch.dtype | None) -> tuple[torch.Tensor, dict]:
    device_type = "cuda" if is_cuda(config.device) else "cpu"
    with torch.autocast(device_type, dtype=amp or torch.float32, enabled=amp is not None):
        init_disp, iter_disps = model(batch.left, batch.right, iters=config.train_iters)
    # the loss in fp32: small per-pixel errors vanish in bf16
    return sequence_loss(init_disp.float(), [d.float() for d in iter_disps], batch.disparity, batch.valid,
                         config.loss_gamma, config.model.max_disp)


def train(config: TrainConfig, resume: bool = False, on_log: Callable[[StepLog], None] | None = None,
          overwrite: bool = False, on_message: Callable[[str], None] | None = None) -> Path:
    """Train the student; returns the path of the last checkpoint.

    Args:
        config: the run's configuration (validated, with the output folder, the data and
            the device, before any slow work starts).
        resume: continue from ``out_dir/train_state.pt`` (which must exist).
        on_log: called with a StepLog after every step (``val`` set after each validation).
        overwrite: start a new run in an ``out_dir`` that already holds one, replacing it.
        on_message: called with one-line notes on the data (such as pairs left out).

    Raises:
        InputError: a bad option, data folder or output folder, an ``out_dir`` that holds a
            run while neither ``resume`` nor ``overwrite`` is set, or --resume without a
            state or with nothing left to train (the state already at --steps / --minutes).
        DependencyError: the device cannot run here.
    """
    started = time.perf_counter()
    _validate(config, resume, overwrite)
    samples = None
    if config.data != "synthetic":
        samples, unlabelled = labelled_samples(config.data, config.crop_hw)
        if unlabelled and on_message is not None:
            on_message(f"--data {config.data}: training on {len(samples)} labelled pairs; {unlabelled} without "
                       "left_disp.png left out")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out_dir = Path(config.out_dir)
    state_path = out_dir / STATE_NAME
    state = _load_state(state_path) if resume else None
    step, elapsed, rng = (0, 0.0, np.random.default_rng(config.seed)) if state is None else _restore_rng(state)
    if state is not None and training_progress(step, elapsed, config) >= 1.0:
        budget = f"--steps {config.steps}" + (f" or --minutes {config.minutes:g}" if config.minutes else "")
        raise InputError(f"--resume: {state_path} is at step {step} after {elapsed / 60:.1f} min, already the end "
                         f"of {budget}; expected a larger --steps or --minutes to train on")
    started -= elapsed
    inputs = _inputs_record(config, step if state is not None else None)
    amp = autocast_dtype(config)
    model, model_config = _initial_model(config)
    # the checkpoints, the loss's disparity range and the held-out iterations follow the weights' own config
    config = dataclasses.replace(config, model=model_config)
    model = model.to(config.device).train()
    optimiser = _Optimiser(model, config, amp)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state)
    held_out = validation_set(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        # the replaced run's files go now: a --resume after this run is cut off must not continue that one
        for name in (CHECKPOINT_NAME, STATE_NAME):
            (out_dir / name).unlink(missing_ok=True)
    last = out_dir / CHECKPOINT_NAME
    session = (time.perf_counter(), step)
    progress = training_progress(step, elapsed, config)
    batches = _batches(config, samples, rng, step)
    try:
        while progress < 1.0:
            lr = one_cycle_lr(progress, config.lr)
            batch = next(batches).on(config.device)
            loss, metrics = _forward_loss(model, batch, config, amp)
            optimiser.step(loss, lr)
            step += 1
            elapsed = time.perf_counter() - started
            progress = training_progress(step, elapsed, config)
            log = _step_log(step, float(loss.detach()), metrics["epe"], lr, elapsed, progress, session, config)
            if step % config.val_every == 0 or progress >= 1.0:
                log.val = evaluate(model, held_out, config.model.iters)
            if step % config.ckpt_every == 0 or progress >= 1.0:
                _save(model, config, step, log, last, inputs)
                _save_state(state_path, step, elapsed, rng, model, optimiser)
            if on_log is not None:
                on_log(log)
    finally:
        batches.close()  # stops the data workers now, not whenever the iterator is collected
    return last


def _step_log(step: int, loss: float, epe: float, lr: float, elapsed: float, progress: float,
              session: tuple[float, int], config: TrainConfig) -> StepLog:
    """A StepLog with this session's throughput and the time left (from the share of the run done)."""
    session_s = max(time.perf_counter() - session[0], 1e-9)
    steps_per_s = (step - session[1]) / session_s
    eta = elapsed * (1.0 - progress) / progress if progress > 0 else math.inf
    return StepLog(step, loss, epe, lr, elapsed, steps_per_s, steps_per_s * config.batch_size, eta)


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


def _validate(config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Every option, the output folder, the inputs and the device, before any slow work."""
    h, w = config.crop_hw
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise InputError(f"--crop {h}x{w}: both sides must be positive multiples of 32")
    _check_counts(config)
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise InputError(f"--lr {config.lr}: expected a positive learning rate, e.g. 2e-4")
    if config.minutes is not None and not (math.isfinite(config.minutes) and config.minutes > 0):
        raise InputError(f"--minutes {config.minutes}: expected a positive time budget in minutes")
    if config.data != "synthetic" and not Path(config.data).is_dir():
        raise InputError(f"--data {config.data}: expected 'synthetic' or an InStereo2K-layout folder")
    unknown = [name for name in config.hard_cases if name not in synthetic.HARD_CASES]
    if unknown:
        raise InputError(f"--hard-cases {','.join(config.hard_cases)}: unknown {', '.join(unknown)}; expected "
                         f"'all' or names from {','.join(synthetic.HARD_CASES)}")
    if config.init is not None and not Path(config.init).is_file():
        raise InputError(f"--init {config.init}: no such checkpoint")
    inputs = [config.init] + ([] if config.data == "synthetic" else [config.data])
    check_output_dir(config.out_dir, "--out", inputs=inputs)
    # the files the run writes: fine-tuning from OUT/last.pth would silently replace its own --init
    for name in (CHECKPOINT_NAME, STATE_NAME):
        check_output_file(Path(config.out_dir) / name, "--out", inputs=[config.init])
    state_path = Path(config.out_dir) / STATE_NAME
    if resume and not state_path.is_file():
        raise InputError(f"--resume: {state_path} does not exist; expected the state of an earlier run "
                         "with the same --out (train without --resume to start a new run)")
    if resume and overwrite:
        raise InputError("--resume and --overwrite: expected one of them (continue the run in --out, or replace it)")
    earlier = [name for name in (CHECKPOINT_NAME, STATE_NAME) if (Path(config.out_dir) / name).exists()]
    if earlier and not (resume or overwrite):
        raise InputError(f"--out {config.out_dir}: already holds a run ({', '.join(earlier)}); expected --resume "
                         "to continue it, --overwrite to start over, or another --out")
    _check_device(config)


def _check_counts(config: TrainConfig) -> None:
    at_least = {"--steps": (config.steps, 1), "--batch-size": (config.batch_size, 1),
                "--val-every": (config.val_every, 1), "--val-pairs": (config.val_pairs, 1),
                "--ckpt-every": (config.ckpt_every, 1), "--scene-max-disp": (config.scene_max_disp, 2),
                "--workers": (config.workers, 0), "--threads": (config.threads, 1)}
    for option, (value, least) in at_least.items():
        if value is not None and value < least:
            raise InputError(f"{option} {value}: expected an integer of at least {least}")
    if not 1 <= config.train_iters <= MAX_TRAIN_ITERS:
        raise InputError(f"--train-iters {config.train_iters}: expected 1 to {MAX_TRAIN_ITERS}")


def _check_device(config: TrainConfig) -> None:
    if config.precision not in PRECISIONS:
        raise InputError(f"--precision {config.precision}: expected one of {', '.join(PRECISIONS)}")
    require_torch_device(config.device)
    if config.precision in ("bf16", "fp16") and not is_cuda(config.device):
        raise InputError(f"--precision {config.precision}: mixed precision is for --device cuda; "
                         "on a CPU expected auto or fp32")
    if config.precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise DependencyError(f"--precision bf16: {config.device} has no bf16 support; expected fp16 or auto")


def _inputs_record(config: TrainConfig, resumed_from: int | None) -> dict:
    """What the weights come from: the data folder and the --init checkpoint, absolute, with its sha256.

    The paths as given stay in the ``train`` record; relative paths and a checkpoint later
    rewritten at the same path would not say which data and weights a run started from.
    """
    record = {"data": config.data if config.data == "synthetic" else str(Path(config.data).resolve()),
              "init": None, "init_sha256": None, "resumed_from_step": resumed_from}
    if config.init is not None:
        record.update(init=str(Path(config.init).resolve()), init_sha256=provenance.sha256_file(config.init))
    return record


def _save(model, config: TrainConfig, step: int, log: StepLog, path: Path, inputs: dict) -> None:
    amp = autocast_dtype(config)
    meta = provenance.record(kind="student-checkpoint", step=step, train=_config_dict(config), inputs=inputs,
                             last_loss=log.loss, last_val=log.val, device=_device_name(config.device),
                             autocast=None if amp is None else str(amp).replace("torch.", ""),
                             elapsed_s=round(log.seconds, 1))
    save_student(path, model, config.model, meta, half=config.fp16_weights)


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name(torch.device(device)) if is_cuda(device) else "cpu"


def _config_dict(config: TrainConfig) -> dict:
    data = dataclasses.asdict(config)
    data["model"] = config.model.to_dict()
    return data


def _save_state(path: Path, step: int, elapsed: float, rng: np.random.Generator, model,
                optimiser: _Optimiser) -> None:
    state = {"step": step, "elapsed": elapsed, "rng": rng.bit_generator.state, "model": model.state_dict(),
             **optimiser.state_dict()}
    with provenance.atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file; one line is what the user needs
        raise InputError(f"--resume: {path} is not a readable training state ({type(exc).__name__})") from None


def _restore_rng(state: dict) -> tuple[int, float, np.random.Generator]:
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    return int(state["step"]), float(state["elapsed"]), rng
