import numpy as np
import pytest
import torch

from toolkit import train
from toolkit.data.training import synthetic_batches
from toolkit.errors import InputError
from toolkit.model import StudentConfig, build_student, load_student

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
    batch = next(synthetic_batches((64, 96), 1, 16, False, np.random.default_rng(0)))
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


def test_bad_options_are_refused_before_any_work(tmp_path):
    with pytest.raises(InputError, match="--crop"):
        train.train(train.TrainConfig(out_dir=str(tmp_path), crop_hw=(60, 96)))
    with pytest.raises(InputError, match="--data"):
        train.train(train.TrainConfig(out_dir=str(tmp_path), data=str(tmp_path / "missing")))
