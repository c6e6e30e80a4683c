"""Regression against the published RT-IGEV code: same weights and input, same disparity.

tests/fixtures/golden_rt_igev.npz holds the output of the published core_rt network,
computed once (see golden_rt_igev.json for how); this test rebuilds the same weights and
input with our code and compares.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model_fixtures import GOLDEN_ITERS, golden_pair, golden_student

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_matches_published_network_on_golden_pair():
    pytest.importorskip("skimage")
    record = json.loads((FIXTURES / "golden_rt_igev.json").read_text())
    expected = np.load(FIXTURES / "golden_rt_igev.npz")["disparity"]
    assert record["iterations"] == GOLDEN_ITERS
    left, right = golden_pair()
    with torch.inference_mode():
        disparity = golden_student()(left, right, iters=GOLDEN_ITERS)[0, 0].numpy()
    assert disparity.shape == expected.shape
    assert np.abs(disparity - expected).max() <= record["tolerance_px"]
