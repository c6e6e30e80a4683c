"""Training batches: synthetic scenes generated on the fly, or random crops of a labelled folder.

Both sources are endless streams of ``Batch``es at the training crop. They run in the
training process (``workers=0``: one random generator whose state a resumed run restores)
or in ``torch.utils.data.DataLoader`` worker processes, each worker with its own seeded
generator, so scene generation and PNG decoding keep up with a GPU.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch

from toolkit.data import synthetic
from toolkit.data.instereo2k import Instereo2K, Sample, load
from toolkit.data.io import INSTEREO2K_SCALE, read_disparity
from toolkit.errors import InputError, StereoTrtError

# make_scene seeds the held-out sets use (the training run's validation scenes from 10_000_000,
# the model card's held-out scenes from 20_000_000): the training stream never draws them.
RESERVED_SEEDS = range(10_000_000, 30_000_000)


class Batch(NamedTuple):
    """A training batch (a NamedTuple, so DataLoader can pass it between processes and pin it).

    Attributes:
        left, right: (B, 3, H, W) uint8 RGB: images travel between processes and to the GPU
            as a quarter of the bytes of float32; ``on`` makes them float.
        disparity: (B, 1, H, W) float32 in px.
        valid: (B, 1, H, W) bool.
    """

    left: torch.Tensor
    right: torch.Tensor
    disparity: torch.Tensor
    valid: torch.Tensor

    def on(self, device: str) -> "Batch":
        """The batch on ``device`` with float32 RGB 0..255 images, as the network takes them."""
        non_blocking = device != "cpu"
        left, right, disparity, valid = (t.to(device, non_blocking=non_blocking) for t in self)
        return Batch(left.float(), right.float(), disparity, valid)


def photometric_augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, gamma and colour balance, the same kind of change a camera makes."""
    x = image.astype(np.float32) / 255.0
    x = x ** rng.uniform(0.8, 1.25)
    x = (x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.08, 0.08)
    x = x * rng.uniform(0.9, 1.1, size=3)
    return (np.clip(x, 0, 1) * 255.0).astype(np.uint8)


def training_seed(rng: np.random.Generator) -> int:
    """A scene seed for the training stream, never one of the held-out sets' seeds."""
    while True:
        seed = int(rng.integers(1 << 31))
        if seed not in RESERVED_SEEDS:
            return seed


def synthetic_batches(crop_hw: tuple[int, int], batch_size: int, max_disp: float, photo_textures: bool,
                      hard_cases: tuple[str, ...], rng: np.random.Generator) -> Iterator[Batch]:
    """Endless batches of freshly generated synthetic scenes at the crop size."""
    h, w = crop_hw
    photos = None
    if photo_textures:
        from toolkit.data.photos import bundled_photos

        photos = bundled_photos()
    while True:
        scenes = [synthetic.make_scene(training_seed(rng), h, w, max_disp, photos=photos, hard_cases=hard_cases)
                  for _ in range(batch_size)]
        yield collate([(s.left, s.right, s.disparity, s.valid) for s in scenes])


def labelled_samples(root: str, crop_hw: tuple[int, int]) -> tuple[list[Sample], int]:
    """The train-split pairs of an InStereo2K-layout folder that carry a ``left_disp.png``, and how many do not.

    The first pair is decoded here, so a folder whose images are smaller than the crop is
    refused before training starts, and so is every label (about 10 ms each at InStereo2K's
    size): a damaged or wrongly encoded label found only when the random crops reach it
    would end the run hours in, with everything since the last checkpoint lost.

    Raises:
        InputError: no such folder or layout, no labelled pair, pairs smaller than the crop,
            or a label that is not a readable 16-bit PNG.
    """
    every = Instereo2K(root, split="train").samples
    samples = [s for s in every if s.disp_path is not None]
    if not samples:
        raise InputError(f"--data {root}: no train/part<N>/<id>/left_disp.png to train on "
                         "(expected ground truth or `stereo-trt pseudo-label` output)")
    left = load(samples[0])[0]
    _check_fits(left, samples[0], crop_hw)
    for sample in samples[1:]:
        read_disparity(sample.disp_path, INSTEREO2K_SCALE)
    return samples, len(every) - len(samples)


def _check_fits(left: np.ndarray, sample: Sample, crop_hw: tuple[int, int]) -> None:
    h, w = crop_hw
    if left.shape[0] < h or left.shape[1] < w:
        raise InputError(f"{sample.left_path}: {left.shape[0]}x{left.shape[1]} is smaller than the "
                         f"--crop {h}x{w}; expected a crop no larger than the images")


def dataset_batches(samples: Sequence[Sample], crop_hw: tuple[int, int], batch_size: int,
                    rng: np.random.Generator) -> Iterator[Batch]:
    """Endless batches of random crops of labelled pairs, with photometric augmentation."""
    h, w = crop_hw
    while True:
        items = []
        for index in rng.integers(len(samples), size=batch_size):
            sample = samples[int(index)]
            left, right, disparity, valid = load(sample)
            _check_fits(left, sample, crop_hw)
            y = int(rng.integers(left.shape[0] - h + 1))
            x = int(rng.integers(left.shape[1] - w + 1))
            window = (slice(y, y + h), slice(x, x + w))
            items.append((photometric_augment(left[window], rng), photometric_augment(right[window], rng),
                          disparity[window], valid[window]))
        yield collate(items)


def collate(items) -> Batch:
    """(left, right, disparity, valid) numpy tuples -> one Batch."""
    def images(index):
        return torch.from_numpy(np.ascontiguousarray(np.stack([it[index] for it in items]).transpose(0, 3, 1, 2)))

    disparity = torch.from_numpy(np.stack([it[2] for it in items]).astype(np.float32))[:, None]
    valid = torch.from_numpy(np.stack([it[3] for it in items]).astype(bool))[:, None]
    return Batch(images(0), images(1), disparity, valid)


class BatchStream(torch.utils.data.IterableDataset):
    """One of the two batch sources, run inside DataLoader workers.

    Each worker seeds its own generator from (seed, first step, worker id): workers draw
    different scenes, and a resumed run (a later first step) draws new ones.

    Args:
        source: "synthetic", or the labelled samples to crop from.
        crop_hw, batch_size, max_disp, photo_textures, hard_cases: as in ``TrainConfig``.
        seed: the run's seed; first_step: the step this stream starts at.
    """

    def __init__(self, source, crop_hw, batch_size, max_disp, photo_textures, hard_cases, seed, first_step):
        super().__init__()
        self.source, self.crop_hw, self.batch_size = source, crop_hw, batch_size
        self.max_disp, self.photo_textures, self.hard_cases = max_disp, photo_textures, hard_cases
        self.seed, self.first_step = seed, first_step

    def __iter__(self) -> Iterator[Batch]:
        import cv2

        # each worker is one of many processes: one OpenCV thread each, as PyTorch does for itself
        cv2.setNumThreads(1)
        info = torch.utils.data.get_worker_info()
        if info is not None:
            _exit_with_the_training_process()
        rng = np.random.default_rng([self.seed, self.first_step, 0 if info is None else info.id])
        if self.source == "synthetic":
            return synthetic_batches(self.crop_hw, self.batch_size, self.max_disp, self.photo_textures,
                                     self.hard_cases, rng)
        return dataset_batches(self.source, self.crop_hw, self.batch_size, rng)


def _exit_with_the_training_process() -> None:
    """End this worker process as soon as the training process is gone, however it ended.

    DataLoader's own watchdog watches a worker's parent, which under a fork server is the
    server, not the training process; after the trainer is killed (SIGTERM, SIGKILL, the OOM
    killer) the server and its workers would wait on each other forever. The worker's
    ``parent_process`` is the training process, and its sentinel becomes ready when that ends.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-the-training-process", daemon=True).start()


def worker_batches(stream: BatchStream, workers: int, pin_memory: bool) -> Iterator[Batch]:
    """Batches from ``workers`` processes, started now.

    The workers come from a fork server, not a fork of this process: a child forked after
    OpenCV's or OpenMP's thread pools have run here can hang in them (seen with
    cv2.setNumThreads), and one forked after CUDA started cannot use it.
    """
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                                         persistent_workers=False,
                                         multiprocessing_context="forkserver")
    return _one_line_errors(iter(loader))


def _one_line_errors(batches: Iterator[Batch]) -> Iterator[Batch]:
    """Re-raise our errors from a worker with their own one-line message.

    DataLoader re-raises a worker's exception as the same type with the worker's whole
    traceback as its message; the user needs only the last line, the original message.
    """
    try:
        yield from batches
    except StereoTrtError as exc:
        last = str(exc).strip().splitlines()[-1]
        raise type(exc)(last.split(f"{type(exc).__name__}: ", 1)[-1]) from None
