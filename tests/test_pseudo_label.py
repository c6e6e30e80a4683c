import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from toolkit import pseudo_label
from toolkit.cli import main
from toolkit.data import io
from toolkit.data.instereo2k import Instereo2K, load
from toolkit.data.pairs import discover_pairs
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.errors import InputError

SIZE = (64, 96)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_instereo2k_tree(tmp_path_factory.mktemp("is2k"), n_train_parts=2, pairs_per_part=1, n_test=1,
                                 size=SIZE, seed=21, max_disp=24)


def run_cli(*args):
    result = CliRunner().invoke(main, ["pseudo-label", *map(str, args)])
    return result


def test_sgbm_labels_via_cli_mirror_the_tree(tree, tmp_path):
    out = tmp_path / "labels"
    result = run_cli(tree, "--teacher", "sgbm", "--max-disp", 32, "--out", out)
    assert result.exit_code == 0, result.output
    assert "[3/3]" in result.output
    label = out / "train/part1/000000/left_disp.png"
    mask = out / "train/part1/000000/left_valid.png"
    encoded = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    flags = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
    assert encoded.dtype == np.uint16 and encoded.shape == SIZE
    assert flags.dtype == np.uint8 and set(np.unique(flags)) <= {0, 255}
    assert np.array_equal(encoded > 0, flags == 255)  # the mask is exactly the non-zero labels
    assert 0.2 < (flags == 255).mean() < 1.0
    # x100 encoding: labels agree with the generator's ground truth where both are valid
    truth, truth_valid = io.read_disparity(tree / "train/part1/000000/left_disp.png", io.INSTEREO2K_SCALE)
    labelled, valid = io.read_disparity(label, io.INSTEREO2K_SCALE)
    both = valid & truth_valid
    assert np.median(np.abs(labelled[both] - truth[both])) < 0.5
    # the output is itself an InStereo2K tree whose ground truth is the teacher's labels
    sample = Instereo2K(out, "train")[0]
    assert np.array_equal(load(sample)[2], labelled)
    record = json.loads((out / "pseudo_labels.json").read_text())
    assert record["teacher"] == {"kind": "sgbm", "max_disp": 32, "block_size": 5, "lr_threshold": 1.0}
    assert [p["label"] for p in record["pairs"]][0] == "test/000002/left_disp.png"
    assert "tool_versions" in record and record["label_encoding"].startswith("uint16 PNG, disparity x 100")


def test_no_lr_check_keeps_more_pixels(tree, tmp_path):
    pairs = discover_pairs([tree / "test/000002/left.png", tree / "test/000002/right.png"])
    fractions = []
    for check in (None, False):
        runner = pseudo_label.open_teacher("sgbm", max_disp=32, lr_check=check)
        with runner:
            manifest = pseudo_label.pseudo_label(runner, pairs, tmp_path / str(check),
                                                 pseudo_label.describe_teacher("sgbm", runner))
        fractions.append(json.loads(manifest.read_text())["pairs"][0]["valid_fraction"])
    assert fractions[1] > fractions[0]
    assert (tmp_path / "None" / "left_disp.png").is_file()  # one pair: its folder is the root


def test_kitti_layout_is_mirrored_with_both_images(tmp_path):
    scene_dir = tmp_path / "kitti"
    write_instereo2k_tree(tmp_path / "gen", n_train_parts=0, pairs_per_part=0, n_test=1, size=SIZE, seed=3, max_disp=24)
    for view, name in (("image_2", "left.png"), ("image_3", "right.png")):
        (scene_dir / view).mkdir(parents=True)
        (scene_dir / view / "000000_10.png").write_bytes((tmp_path / "gen/test/000000" / name).read_bytes())
    result = run_cli(scene_dir, "--max-disp", 32, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/image_2/000000_10_disp.png").is_file()
    assert (tmp_path / "out/image_2/000000_10_valid.png").is_file()
    left = io.read_image(tmp_path / "out/image_2/000000_10.png")
    right = io.read_image(tmp_path / "out/image_3/000000_10.png")
    assert np.array_equal(left, io.read_image(scene_dir / "image_2/000000_10.png"))
    assert np.array_equal(right, io.read_image(scene_dir / "image_3/000000_10.png"))


def constant_onnx(path, value=5.0, output="out"):
    """A tiny ONNX "stereo model" with no stereo-trt metadata: disparity = value everywhere, shape (1, H, W)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, "H", "W"]) for n in ("left", "right")]
    nodes = [
        helper.make_node("Sub", ["left", "right"], ["diff"]),
        helper.make_node("ReduceMean", ["diff"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "value"], [output]),
    ]
    graph = helper.make_graph(nodes, "constant", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, "H", "W"])],
                              [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                               helper.make_tensor("value", TensorProto.FLOAT, [], [value])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_onnx_teacher_without_metadata(tree, tmp_path):
    pytest.importorskip("onnxruntime")
    model = constant_onnx(tmp_path / "teacher.onnx", value=5.0)
    result = run_cli(tree / "test", "--teacher", model, "--out", tmp_path / "out", "--no-images")
    assert result.exit_code == 0, result.output
    encoded = cv2.imread(str(tmp_path / "out/000002/left_disp.png"), cv2.IMREAD_UNCHANGED)
    assert np.all(encoded == 500)
    assert not (tmp_path / "out/000002/left.png").exists()
    record = json.loads((tmp_path / "out/pseudo_labels.json").read_text())
    assert record["teacher"]["kind"] == "onnxruntime" and len(record["teacher"]["sha256"]) == 64


def test_lr_check_on_a_network_teacher_leaves_out_what_the_views_disagree_on(tree, tmp_path):
    pytest.importorskip("onnxruntime")
    model = constant_onnx(tmp_path / "teacher.onnx", value=5.0)
    result = run_cli(tree / "test", "--teacher", model, "--lr-check", "--out", tmp_path / "out", "--no-images")
    assert result.exit_code == 0, result.output
    encoded = cv2.imread(str(tmp_path / "out/000002/left_disp.png"), cv2.IMREAD_UNCHANGED)
    # a left pixel 5 px from the left edge has no match in the right view: nothing confirms it
    assert np.all(encoded[:, :5] == 0) and np.all(encoded[:, 6:] == 500)
    record = json.loads((tmp_path / "out/pseudo_labels.json").read_text())
    assert record["teacher"]["kind"] == "onnxruntime" and record["teacher"]["lr_check"] is True


@pytest.fixture
def one_torch_thread():
    """Run a PyTorch teacher on one thread (faster on a shared CPU) and restore the setting after."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield 1
    torch.set_num_threads(before)


@pytest.mark.slow
def test_checkpoint_teacher(tree, tmp_path, one_torch_thread):
    from toolkit.model import StudentConfig, build_student, save_student

    config = StudentConfig(max_disp=32, iters=1)
    checkpoint = save_student(tmp_path / "student.pth", build_student(config), config, {})
    pairs = discover_pairs(tree / "test")
    runner = pseudo_label.open_teacher(str(checkpoint), iters=1, threads=one_torch_thread)
    with runner:
        manifest = pseudo_label.pseudo_label(runner, pairs, tmp_path / "out",
                                             pseudo_label.describe_teacher(str(checkpoint), runner), root=tree)
    record = json.loads(manifest.read_text())
    assert record["teacher"]["kind"] == "torch" and record["teacher"]["iters"] == 1
    encoded = cv2.imread(str(tmp_path / "out/test/000002/left_disp.png"), cv2.IMREAD_UNCHANGED)
    assert encoded.dtype == np.uint16 and encoded.shape == SIZE


@pytest.mark.parametrize("args, message", [
    (["{tree}/nowhere", "--out", "{out}"], "no such file or folder"),
    (["{empty}", "--out", "{out}"], "no stereo pairs found"),
    (["{tree}", "--teacher", "{out}/missing.pth", "--out", "{out}"], "missing.pth: no such file"),
    (["{tree}", "--teacher", "magic", "--out", "{out}"], "expected sgbm, an .onnx model or a .pth/.pt checkpoint"),
    (["{tree}", "--iters", "4", "--out", "{out}"], "--iters applies to networks only"),
    (["{tree}", "--out", "{file}"], "is a file"),
])
def test_bad_input_exits_2_with_one_line(tree, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    filled = [a.format(tree=tree, out=tmp_path / "out", empty=tmp_path / "empty", file=tmp_path / "file") for a in args]
    result = run_cli(*filled)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_library_refuses_options_a_teacher_cannot_use(tmp_path):
    model = tmp_path / "t.onnx"
    model.write_bytes(b"")
    with pytest.raises(InputError, match="--max-disp applies to checkpoints only"):
        pseudo_label.open_teacher(str(model), max_disp=64)
    with pytest.raises(InputError, match="no stereo pairs"):
        pseudo_label.pseudo_label(None, [], tmp_path, {})


def test_pairs_outside_the_mirrored_root_are_refused(tree, tmp_path):
    pairs = discover_pairs(tree / "test")
    with pytest.raises(InputError, match="outside the input tree"):
        pseudo_label.pseudo_label(None, pairs, tmp_path / "out", {}, root=tree / "train")
    assert not (tmp_path / "out").exists()
