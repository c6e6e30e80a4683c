"""The student's confidence output: the window mass on hand-made distributions, the forward
contract, ranking quality on the built-in weights, and survival through ONNX export."""

import numpy as np
import pytest
import torch

from toolkit.bench.metrics import pixel_errors, sparsification, valid_mask
from toolkit.data.synthetic import make_scene
from toolkit.export import export_onnx
from toolkit.model import StudentConfig, build_student, load_student, save_student
from toolkit.model.confidence import network_confidence, probability_mass
from toolkit.paths import BUILTIN_CHECKPOINT
from toolkit.preprocess import crop_to_source, prepare_pair

D = 12


def one_hot(plane: int) -> torch.Tensor:
    prob = torch.zeros(1, D, 1, 1)
    prob[0, plane] = 1.0
    return prob


def test_mass_is_one_for_a_peak_on_the_answer_and_falls_with_distance():
    assert probability_mass(one_hot(5), torch.full((1, 1, 1, 1), 5.0)).item() == pytest.approx(1.0)
    assert probability_mass(one_hot(5), torch.full((1, 1, 1, 1), 6.0)).item() == pytest.approx(0.5)
    assert probability_mass(one_hot(5), torch.full((1, 1, 1, 1), 8.0)).item() == pytest.approx(0.0)


def test_flat_and_bimodal_distributions_score_low():
    disp = torch.full((1, 1, 1, 1), 5.0)
    flat = torch.full((1, D, 1, 1), 1.0 / D)
    bimodal = 0.5 * (one_hot(5) + one_hot(10))
    assert probability_mass(flat, disp).item() == pytest.approx(2.0 / D)  # 1 + 2 x 0.5 planes of weight
    assert probability_mass(bimodal, disp).item() == pytest.approx(0.5)


def test_an_unconverged_last_update_lowers_confidence():
    disp = torch.full((1, 1, 1, 1), 5.0)
    still = network_confidence(one_hot(5), disp, torch.zeros(1, 1, 1, 1)).item()
    moving = network_confidence(one_hot(5), disp, torch.full((1, 1, 1, 1), 0.5)).item()
    assert still == pytest.approx(1.0) and moving == pytest.approx(np.exp(-2.0))


def test_forward_with_confidence_returns_the_same_disparity_and_a_bounded_map():
    model = build_student(StudentConfig(max_disp=64, iters=2), seed=0).eval()
    left, right = torch.rand(1, 3, 64, 96) * 255, torch.rand(1, 3, 64, 96) * 255
    with torch.no_grad():
        plain = model(left, right)
        disparity, confidence = model(left, right, confidence=True)
    assert torch.equal(plain, disparity)
    assert confidence.shape == (1, 1, 64, 96)
    assert float(confidence.min()) >= 0.0 and float(confidence.max()) <= 1.0


def test_builtin_confidence_removes_error_much_faster_than_random_removal():
    model = load_student(BUILTIN_CHECKPOINT)[0]
    scene = make_scene(20_000_001, 128, 256, 96)  # a seed the training stream never draws
    prepared = prepare_pair(scene.left, scene.right, None)
    with torch.no_grad():
        disparity, confidence = model(torch.from_numpy(prepared.feed["left"]), torch.from_numpy(prepared.feed["right"]),
                                      confidence=True)
    disparity = crop_to_source(disparity.numpy(), prepared.geometry)
    confidence = crop_to_source(confidence.numpy(), prepared.geometry)
    errors = pixel_errors(disparity, scene.disparity, scene.valid)
    result = sparsification(errors, confidence[valid_mask(scene.disparity, scene.valid)])
    assert result.ause < 0.7 * result.ause_random
    assert result.epe_at_density["0.5"] < 0.7 * float(errors.mean())


def test_confidence_export_keeps_the_ranking(tmp_path):
    config = StudentConfig(max_disp=64, iters=1)
    checkpoint = tmp_path / "student.pth"
    save_student(checkpoint, build_student(config, seed=0), config, {"note": "confidence export test"})
    result = export_onnx(checkpoint, out=tmp_path / "student.onnx", size=(64, 160), confidence=True)
    import onnx

    proto = onnx.load(str(result.path))
    assert [o.name for o in proto.graph.output] == ["disparity", "confidence"]
    assert set(result.metadata["outputs"]) == {"disparity", "confidence"} and result.metadata["confidence"]
    assert result.parity.passed and result.parity.confidence["spearman"] >= 0.999
    assert result.parity.confidence["max_abs_diff"] < 1e-3
