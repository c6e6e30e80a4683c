"""The left-right checked runner: two inferences, confidence low in the occlusion band."""

import pytest

from tests.backends.test_sgbm import H, W, banded_pair
from tests.test_confidence import BACKGROUND, BAND, FOREGROUND, ROWS, X0, X1
from toolkit.backends.lr_check import LRCheckRunner
from toolkit.backends.sgbm import SGBMRunner
from toolkit.errors import InputError


def test_lr_check_runner_runs_the_model_twice_and_finds_the_occlusion_band():
    left, right = banded_pair(BACKGROUND, FOREGROUND, X0, X1)
    inner = SGBMRunner(max_disp=32, lr_threshold=None)
    calls = []
    original = inner.infer_impl
    inner.infer_impl = lambda feed: calls.append(1) or original(feed)
    with LRCheckRunner(inner) as runner:
        prediction = runner.infer(left, right)
    assert len(calls) == 2 and runner.name == "sgbm+lr"
    assert prediction.confidence.shape == (H, W)
    band = prediction.confidence[ROWS, BAND]
    inside = prediction.confidence[ROWS, X0 + 8:X1 - 8]
    assert band.mean() < 0.2 and inside.mean() > 0.8


def test_bad_scale_is_refused():
    with pytest.raises(InputError, match="LR scale"):
        LRCheckRunner(SGBMRunner(), scale_px=0)
