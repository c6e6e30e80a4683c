import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data import io
from toolkit.data.synthetic import make_scene
from toolkit.model import StudentConfig, build_student, save_student
from toolkit.predict import depth_from_disparity


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    config = StudentConfig(max_disp=64, iters=1)
    save_student(path, build_student(config, seed=0), config, {"note": "seeded init for CLI tests"})
    return path


@pytest.fixture
def pair(tmp_path):
    scene = make_scene(3, 50, 70, max_disp=16)  # not a multiple of 32: exercises pad + crop
    return (io.write_image(tmp_path / "scene_left.png", scene.left),
            io.write_image(tmp_path / "scene_right.png", scene.right))


def test_predict_writes_every_output_at_source_resolution(tmp_path, tiny_checkpoint, pair):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(pair[1]), "--checkpoint", str(tiny_checkpoint),
                                       "--focal", "500", "--baseline", "0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert names == {"scene_depth.pfm", "scene_depth_color.png", "scene_disp.png", "scene_disp.pfm", "scene_disp_color.png",
                     "scene_conf.pfm", "scene_conf.png"}
    confidence = io.read_pfm(out / "scene_conf.pfm")
    assert confidence.shape == (50, 70) and 0.0 <= confidence.min() and confidence.max() <= 1.0
    disparity = io.read_pfm(out / "scene_disp.pfm")
    assert disparity.shape == (50, 70)
    png, valid = io.read_disparity(out / "scene_disp.png")
    np.testing.assert_allclose(png[valid], disparity[valid], atol=1 / 256)


def test_depth_is_focal_times_baseline_over_disparity():
    depth = depth_from_disparity(np.array([[10.0, 0.0]], np.float32), focal_px=500, baseline_m=0.1)
    assert depth[0, 0] == pytest.approx(5.0) and np.isinf(depth[0, 1])


def _assert_clean_failure(result, out, fragment):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_image_is_one_line_exit_2(tmp_path, tiny_checkpoint, pair):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(tmp_path / "nope.png"),
                                       "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    _assert_clean_failure(result, out, "nope.png")


def test_mismatched_sizes_are_refused(tmp_path, tiny_checkpoint, pair):
    other = io.write_image(tmp_path / "small.png", np.zeros((40, 60, 3), np.uint8))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(other), "--checkpoint", str(tiny_checkpoint),
                                       "--out", str(out)])
    _assert_clean_failure(result, out, "differ in size")


def test_a_checkpoint_that_is_not_one_is_refused(tmp_path, pair):
    fake = tmp_path / "weights.pth"
    fake.write_text("definitely not a checkpoint")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(pair[1]), "--checkpoint", str(fake), "--out", str(out)])
    _assert_clean_failure(result, out, "weights.pth")


def test_focal_without_baseline_is_refused(tmp_path, tiny_checkpoint, pair):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(pair[1]), "--checkpoint", str(tiny_checkpoint),
                                       "--focal", "500", "--out", str(out)])
    _assert_clean_failure(result, out, "--baseline")


def test_min_confidence_writes_unconfident_pixels_as_invalid(tmp_path, tiny_checkpoint, pair):
    args = ["predict", str(pair[0]), str(pair[1]), "--checkpoint", str(tiny_checkpoint), "--focal", "500",
            "--baseline", "0.1"]
    assert CliRunner().invoke(main, args + ["--out", str(tmp_path / "all")]).exit_code == 0
    confidence = io.read_pfm(tmp_path / "all" / "scene_conf.pfm")
    threshold = float(np.median(confidence))
    result = CliRunner().invoke(main, args + ["--min-confidence", str(threshold), "--out", str(tmp_path / "masked")])
    assert result.exit_code == 0, result.output
    disparity = io.read_pfm(tmp_path / "masked" / "scene_disp.pfm")
    depth = io.read_pfm(tmp_path / "masked" / "scene_depth.pfm")
    dropped = confidence < threshold
    assert 0 < dropped.sum() < dropped.size
    assert np.all(disparity[dropped] == 0) and np.all(np.isinf(depth[dropped]))
    colour = io.read_image(tmp_path / "masked" / "scene_disp_color.png")
    assert np.all(colour[dropped] == 0)


def test_min_confidence_needs_a_confidence_output_or_the_lr_check(tmp_path, pair):
    from tiny_models import exported_tiny_onnx

    model = exported_tiny_onnx()  # exported without a confidence output
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(pair[1]), "--model", str(model),
                                       "--min-confidence", "0.5", "--out", str(out)])
    _assert_clean_failure(result, out, "no confidence")
    result = CliRunner().invoke(main, ["predict", str(pair[0]), str(pair[1]), "--model", str(model), "--lr-check",
                                       "--min-confidence", "0.5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "scene_conf.pfm").is_file()
