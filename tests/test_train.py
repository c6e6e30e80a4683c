import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from cli_checks import assert_clean_failure
from interrupted_run import shrink_pipe

from toolkit import provenance, train
from toolkit.cli import main
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.data.training import BatchStream, synthetic_batches, training_seed
from toolkit.errors import InputError
from toolkit.model import StudentConfig, build_student, load_student, save_student

TINY = StudentConfig(max_disp=32, iters=2)


def test_sequence_loss_weights_later_iterations_more_and_ignores_invalid():
    target = torch.full((1, 1, 4, 4), 5.0)
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[..., 0] = False
    good, bad = target.clone(), target + 2.0
    bad[..., 0] = 1000.0  # invalid pixels must not count
    loss_late_error, _ = train.sequence_loss(target, [good, bad], target, valid, 0.9, 192)
    loss_early_error, metrics = train.sequence_loss(target, [bad, good], target, valid, 0.9, 192)
    assert loss_late_error > loss_early_error
    assert metrics["epe"] == pytest.approx(0.0)
    assert float(loss_late_error) == pytest.approx(2.0)


def test_one_cycle_schedule_warms_up_then_anneals_to_zero():
    rates = [train.one_cycle_lr(p, 1e-3) for p in (0.0, 0.05, 0.5, 1.0)]
    assert rates[0] < rates[1] == pytest.approx(1e-3) and rates[2] < rates[1] and rates[3] == 0.0


def test_a_few_steps_on_a_fixed_batch_lower_the_loss():
    torch.manual_seed(0)
    batch = next(synthetic_batches((64, 96), 1, 16, False, (), np.random.default_rng(0))).on("cpu")
    model = build_student(TINY, seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    losses = []
    for _ in range(6):
        init, iters = model(batch.left, batch.right, iters=2)
        loss, _ = train.sequence_loss(init, iters, batch.disparity, batch.valid, 0.9, TINY.max_disp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.slow
def test_train_writes_a_loadable_checkpoint_and_resumes(tmp_path):
    config = train.TrainConfig(out_dir=str(tmp_path), steps=2, crop_hw=(64, 96), batch_size=1, train_iters=1,
                               scene_max_disp=16, val_every=2, val_pairs=1, ckpt_every=1, model=TINY)
    logs = []
    last = train.train(config, on_log=logs.append)
    assert [log.step for log in logs] == [1, 2] and logs[-1].val is not None
    model, loaded_config, info = load_student(last)
    assert loaded_config == TINY and info["sha256"]
    config.steps = 3
    train.train(config, resume=True, on_log=logs.append)
    assert logs[-1].step == 3


def test_resuming_a_finished_run_says_there_is_nothing_left_instead_of_succeeding_silently(tmp_path):
    config = train.TrainConfig(out_dir=str(tmp_path / "out"), steps=1, crop_hw=(64, 96), batch_size=1, train_iters=1,
                               scene_max_disp=16, val_pairs=1, threads=1, model=TINY)
    train.train(config)
    before = (tmp_path / "out/last.pth").read_bytes()
    result = invoke(*TINY_ARGS, "--steps", 1, "--resume", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "--resume: " in result.output and "is at step 1 " in result.output
    assert "already the end of --steps 1; expected a larger --steps or --minutes" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (tmp_path / "out/last.pth").read_bytes() == before


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(InputError, match="--crop"):
        train.train(train.TrainConfig(out_dir=str(tmp_path), crop_hw=(60, 96)))
    with pytest.raises(InputError, match="--data"):
        train.train(train.TrainConfig(out_dir=str(tmp_path), data=str(tmp_path / "missing")))


def invoke(*args):
    return CliRunner().invoke(main, ["train", *map(str, args)])


# what keeps a CLI training run small: two steps of one 64x96 pair, two iterations, one held-out scene
TINY_ARGS = ["--steps", 2, "--crop", "64x96", "--batch-size", 1, "--train-iters", 2, "--val-pairs", 1,
             "--scene-max-disp", 16]


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr -1.0: expected a positive learning rate"),
    (["--lr", "0"], "--lr 0.0: expected a positive learning rate"),
    (["--minutes", "-1"], "--minutes -1.0: expected a positive time budget"),
    (["--crop", "10x10"], "--crop 10x10"),
    (["--crop", "big"], "--crop 'big': expected HxW"),
    (["--train-iters", "17"], "--train-iters 17: expected 1 to 16"),
    (["--ckpt-every", "0"], "--ckpt-every 0: expected an integer of at least 1"),
    (["--workers", "-1"], "--workers -1: expected an integer of at least 0"),
    (["--batch-size", "0"], "--batch-size 0"),
    (["--device", "gpu"], "--device 'gpu': expected cpu, cuda or cuda:N"),
    (["--precision", "bf16"], "--precision bf16: mixed precision is for --device cuda"),
    (["--resume"], "--resume: {out}/train_state.pt does not exist"),
    (["--hard-cases", "thin,shiny"], "--hard-cases thin,shiny: unknown shiny; expected 'all' or names from thin,"),
    (["--out", "{file}/run"], "is a file, not a folder"),
    (["--out", "{file}"], "is a file; expected a folder"),
    (["--data", "{file}"], "--data {file}: expected 'synthetic' or an InStereo2K-layout folder"),
    (["--data", "{empty}"], "no InStereo2K pairs found"),
    (["--init", "{out}/missing.pth"], "--init {out}/missing.pth: no such checkpoint"),
])
def test_bad_options_exit_2_with_one_line_and_write_nothing(tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    paths = {"out": tmp_path / "out", "file": tmp_path / "file", "empty": tmp_path / "empty"}
    filled = [a.format(**paths) for a in args]
    result = invoke("--out", tmp_path / "out", *filled)
    assert result.exit_code == 2, result.output
    assert message.format(**paths) in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_device_cuda_without_a_gpu_is_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    result = invoke("--device", "cuda", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "--device cuda:" in result.output and "doctor" in result.output
    assert not (tmp_path / "out").exists()


def test_out_may_not_be_the_data_folder(tmp_path):
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=1, n_test=0, size=(64, 96))
    result = invoke("--data", data, "--out", data)
    assert result.exit_code == 2 and "is one of this command's inputs" in result.output


def test_init_from_the_checkpoint_the_run_would_write_is_refused_and_left_unchanged(tmp_path):
    # fine-tuning on from OUT/last.pth into the same --out would replace the --init checkpoint itself
    out = tmp_path / "out"
    init = save_student(out / "last.pth", build_student(TINY), TINY, {})
    before = init.read_bytes()
    result = invoke(*TINY_ARGS, "--init", init, "--out", out)
    assert result.exit_code == 2, result.output
    assert f"--out {init}: is one of this command's inputs" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert init.read_bytes() == before and sorted(out.iterdir()) == [init]


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(path.read_bytes()[:300]), "not a readable image (damaged or truncated?)"),
    (lambda path: cv2.imwrite(str(path), np.zeros((64, 96, 3), np.uint8)), "a 3-channel uint8 image"),
])
def test_a_broken_label_anywhere_in_the_folder_is_refused_before_training(tmp_path, damage, message):
    # found only when a random crop reaches it, it would end a run hours in
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=3, n_test=0, size=(64, 96))
    label = sorted(data.glob("train/part1/*/left_disp.png"))[-1]
    damage(label)
    result = invoke("--data", data, *TINY_ARGS, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert f"{label}: {message}; expected a single-channel 16-bit disparity PNG" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_crop_larger_than_the_images_is_refused_before_training(tmp_path):
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=1, n_test=0, size=(64, 96))
    result = invoke("--data", data, "--crop", "96x128", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "smaller than the --crop 96x128" in result.output


def test_autocast_and_worker_defaults_keep_the_cpu_path_unchanged():
    config = train.TrainConfig()
    assert train.autocast_dtype(config) is None and train.data_workers(config) == 0
    assert train.data_workers(train.TrainConfig(workers=3)) == 3
    assert train.autocast_dtype(train.TrainConfig(precision="fp32", device="cuda")) is None


@pytest.mark.slow
def test_workers_fp16_weights_and_progress_line_on_a_labelled_folder(tmp_path):
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=2, n_test=0, size=(64, 96),
                                 max_disp=16)
    result = invoke("--data", data, *TINY_ARGS, "--workers", 1, "--fp16-weights", "--log-every", 2,
                    "--out", tmp_path / "out", "--threads", 1)
    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if line.startswith("step 2/2")]
    assert len(progress) == 1 and "steps/s" in progress[0] and "pairs/s" in progress[0] and "ETA" in progress[0]
    assert not any(line.startswith("step 1/2") for line in result.output.splitlines())  # --log-every 2
    stored = torch.load(tmp_path / "out/last.pth", map_location="cpu", weights_only=False)
    floats = [v for v in stored["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    model, _, info = load_student(tmp_path / "out/last.pth")
    assert info["meta"]["train"]["workers"] == 1 and info["meta"]["device"] == "cpu"
    assert next(model.parameters()).dtype == torch.float32


def test_checkpoints_record_the_data_folder_and_the_init_checkpoint_they_came_from(tmp_path, monkeypatch):
    # relative paths as typed, and an --init rewritten later, must not leave a checkpoint's origin unknown
    monkeypatch.chdir(tmp_path)
    write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=1, n_test=0, size=(64, 96), max_disp=16)
    init = save_student(tmp_path / "init.pth", build_student(TINY, seed=1), TINY, {})
    config = train.TrainConfig(data="data", init="init.pth", out_dir="out", steps=1, crop_hw=(64, 96), batch_size=1,
                               train_iters=1, val_pairs=1, threads=1, model=TINY)
    _, _, info = load_student(train.train(config))
    inputs = info["meta"]["inputs"]
    assert inputs["data"] == str((tmp_path / "data").resolve()) and inputs["init"] == str(init.resolve())
    assert inputs["init_sha256"] == provenance.sha256_file(init) and inputs["resumed_from_step"] is None
    config.steps = 2
    _, _, info = load_student(train.train(config, resume=True))
    assert info["meta"]["inputs"]["resumed_from_step"] == 1 and info["meta"]["step"] == 2


def test_fine_tuning_keeps_the_init_checkpoints_network_config(tmp_path):
    # the config travels with the weights: a max_disp 64 / 3-iteration network stays one after fine-tuning
    own = StudentConfig(max_disp=64, iters=3)
    init = save_student(tmp_path / "init.pth", build_student(own), own, {})
    config = train.TrainConfig(init=str(init), out_dir=str(tmp_path / "out"), steps=1, crop_hw=(64, 96),
                               batch_size=1, train_iters=1, scene_max_disp=16, val_pairs=1, threads=1)
    _, loaded_config, info = load_student(train.train(config))
    assert loaded_config == own and info["meta"]["train"]["model"] == own.to_dict()


@pytest.mark.slow
def test_synthetic_scenes_from_worker_processes(tmp_path):
    logs = []
    config = train.TrainConfig(out_dir=str(tmp_path), steps=2, crop_hw=(64, 96), batch_size=1, train_iters=1,
                               scene_max_disp=16, val_every=2, val_pairs=1, workers=2, threads=1, model=TINY)
    train.train(config, on_log=logs.append)
    assert [log.step for log in logs] == [1, 2] and all(np.isfinite(log.loss) for log in logs)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from Linux /proc")
def test_data_workers_end_when_the_training_process_is_killed(tmp_path):
    # under a fork server the workers' parent is the server, not the trainer: after SIGKILL/SIGTERM
    # (a scheduler, a time limit, the OOM killer) server and workers waited on each other forever
    command = [sys.executable, "-m", "toolkit", "train", "--steps", "1000", "--crop", "64x96", "--batch-size", "1",
               "--train-iters", "1", "--val-pairs", "1", "--scene-max-disp", "16", "--threads", "1",
               "--workers", "2", "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        for line in process.stdout:
            if line.startswith("step 1/"):
                break
        workers = _descendants(process.pid)
        assert len(workers) >= 2, "the run started no worker processes"
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    for pid in left:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} data worker process(es) outlived the training process"


@pytest.mark.slow
def test_ctrl_c_says_which_step_the_checkpoint_holds_and_resume_continues_from_it(tmp_path):
    # a real SIGINT to a real process: click alone printed "Aborted!" and nothing about what was kept
    out = tmp_path / "out"
    command = [sys.executable, "-m", "toolkit", "train", "--steps", "1000", "--crop", "64x96", "--batch-size", "1",
               "--train-iters", "1", "--val-pairs", "1", "--scene-max-disp", "16", "--threads", "1",
               "--ckpt-every", "2", "--out", str(out)]
    # a test run in a background job inherits an ignored SIGINT: give the child the default back
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    shrink_pipe(process.stdout)  # the run cannot get far ahead of what this test has read
    try:
        for line in process.stdout:
            if line.startswith("step 3/"):
                break
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    # step 2's checkpoint, or a later one when this test was kept off a busy CPU for a few steps
    where = re.escape(f"{out}/last.pth and {out}/train_state.pt hold step ")
    held = re.search(where + r"(\d+); continue with the same command and --resume", output)
    assert held and int(held.group(1)) >= 2 and "Traceback" not in output, output
    step = int(held.group(1)) + 1
    result = invoke(*TINY_ARGS, "--steps", step, "--scene-max-disp", 16, "--resume", "--out", out)
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.output.splitlines() if line.startswith("step ") and "/" in line] \
        == [f"{step}/{step}"]


@pytest.mark.slow
def test_the_time_budget_counts_start_up(tmp_path):
    # a budget shorter than building the model and the held-out set: the first step already ends the run
    config = train.TrainConfig(out_dir=str(tmp_path), steps=1000, minutes=1e-4, crop_hw=(64, 96), batch_size=1,
                               train_iters=1, scene_max_disp=16, val_pairs=1, threads=1, model=TINY)
    logs = []
    train.train(config, on_log=logs.append)
    assert [log.step for log in logs] == [1] and logs[0].val is not None and logs[0].eta_s == 0.0


def test_worker_streams_differ_per_worker_and_per_start_step():
    def first_left(worker_id, first_step):
        stream = BatchStream("synthetic", (32, 64), 1, 16, False, (), seed=0, first_step=first_step)
        rng_seed = [stream.seed, stream.first_step, worker_id]
        return next(synthetic_batches((32, 64), 1, 16, False, (), np.random.default_rng(rng_seed))).left

    assert not torch.equal(first_left(0, 0), first_left(1, 0))
    assert not torch.equal(first_left(0, 0), first_left(0, 5))


def test_training_stream_never_draws_held_out_seeds():
    class Draws:
        def __init__(self, values):
            self.values = iter(values)

        def integers(self, high):
            return next(self.values)

    assert training_seed(Draws([10_000_003, 20_000_000, 7])) == 7


@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_on_the_gpu(tmp_path, precision):
    config = train.TrainConfig(out_dir=str(tmp_path), steps=3, crop_hw=(64, 96), batch_size=2, train_iters=2,
                               scene_max_disp=16, val_every=3, val_pairs=1, workers=2, device="cuda",
                               precision=precision, model=TINY)
    logs = []
    last = train.train(config, on_log=logs.append)
    assert all(np.isfinite(log.loss) for log in logs) and logs[-1].val is not None
    _, _, info = load_student(last)
    assert info["meta"]["train"]["precision"] == precision
    config.steps = 4
    train.train(config, resume=True, on_log=logs.append)  # the scaler's state round-trips
    assert logs[-1].step == 4


@pytest.mark.slow
def test_an_error_in_a_data_worker_is_one_line(tmp_path):
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=4, n_test=0, size=(64, 96))
    small = write_instereo2k_tree(tmp_path / "small", n_train_parts=1, pairs_per_part=1, n_test=0, size=(32, 64))
    for pair in ("000001", "000002", "000003"):  # the first pair, which is checked up front, keeps its size
        for name in ("left.png", "right.png", "left_disp.png"):
            (data / "train/part1" / pair / name).write_bytes((small / "train/part1/000000" / name).read_bytes())
    result = invoke("--data", data, *TINY_ARGS, "--batch-size", 4, "--workers", 1, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "smaller than the --crop 64x96" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_batches_carry_uint8_images_and_become_float_on_the_device():
    batch = next(synthetic_batches((32, 64), 2, 16, False, (), np.random.default_rng(1)))
    assert batch.left.dtype == torch.uint8 and batch.left.shape == (2, 3, 32, 64)
    ready = batch.on("cpu")
    assert ready.left.dtype == torch.float32 and torch.equal(ready.left, batch.left.float())
    assert ready.disparity.dtype == torch.float32 and ready.valid.dtype == torch.bool


def test_hard_cases_reach_the_training_batches_in_and_out_of_worker_processes():
    def first(hard_cases, rng):
        return next(synthetic_batches((64, 96), 1, 16, False, hard_cases, rng)).disparity

    assert not torch.equal(first((), np.random.default_rng(4)), first(("thin", "curved"), np.random.default_rng(4)))
    stream = BatchStream("synthetic", (64, 96), 1, 16, False, ("thin",), seed=0, first_step=0)
    # outside a worker the stream draws from the generator seeded (seed, first step, worker 0)
    assert torch.equal(next(iter(stream)).disparity, first(("thin",), np.random.default_rng([0, 0, 0])))


def test_train_cli_hard_cases_is_recorded_in_the_checkpoint(tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", "synthetic", "--hard-cases", "all", "--steps", "1",
                                       "--crop", "64x96",
                                       "--batch-size", "1", "--train-iters", "1", "--scene-max-disp", "16",
                                       "--val-every", "1", "--val-pairs", "1", "--threads", "1",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    _, _, info = load_student(tmp_path / "run" / "last.pth")
    assert list(info["meta"]["train"]["hard_cases"]) == ["thin", "curved", "tiled", "flat", "glints"]


def test_a_second_run_into_the_same_out_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "out"
    assert invoke(*TINY_ARGS, "--out", out, "--threads", 1).exit_code == 0
    first = (out / "last.pth").read_bytes()
    again = invoke(*TINY_ARGS, "--out", out, "--threads", 1)
    assert_clean_failure(again, f"--out {out}: already holds a run (last.pth, train_state.pt)", "--overwrite")
    assert (out / "last.pth").read_bytes() == first
    assert_clean_failure(invoke(*TINY_ARGS, "--out", out, "--resume", "--overwrite"), "--resume and --overwrite")
    replaced = invoke(*TINY_ARGS, "--out", out, "--threads", 1, "--overwrite", "--seed", 5)
    assert replaced.exit_code == 0, replaced.output
    _, _, info = load_student(out / "last.pth")
    assert info["meta"]["train"]["seed"] == 5


def test_an_overwriting_run_cut_off_before_its_first_checkpoint_leaves_nothing_to_resume(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert invoke(*TINY_ARGS, "--out", out, "--threads", 1).exit_code == 0

    def cut_off(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_forward_loss", cut_off)
    result = invoke(*TINY_ARGS, "--out", out, "--threads", 1, "--overwrite")
    assert result.exit_code == 130 and "nothing saved" in result.stderr
    assert not (out / "train_state.pt").exists() and not (out / "last.pth").exists()


def test_pairs_without_a_label_are_counted_when_left_out(tmp_path):
    data = write_instereo2k_tree(tmp_path / "data", n_train_parts=1, pairs_per_part=3, n_test=0, size=(64, 96),
                                 max_disp=16)
    (data / "train/part1/000001/left_disp.png").unlink()
    result = invoke("--data", data, *TINY_ARGS, "--out", tmp_path / "out", "--threads", 1)
    assert result.exit_code == 0, result.output
    assert f"--data {data}: training on 2 labelled pairs; 1 without left_disp.png left out" in result.stderr
