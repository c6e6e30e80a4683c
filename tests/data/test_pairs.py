import numpy as np
import pytest

from toolkit.data import io
from toolkit.data.pairs import discover_pairs, parse_rule
from toolkit.errors import InputError

IMAGE = np.zeros((16, 24, 3), np.uint8)


def touch(path):
    io.write_image(path, IMAGE)
    return path


def test_two_files_are_left_right(tmp_path):
    left, right = touch(tmp_path / "a.png"), touch(tmp_path / "b.png")
    (pair,) = discover_pairs([str(left), str(right)])
    assert (pair.name, pair.left, pair.right, pair.gt_path) == ("a", left, right, None)


def test_two_generic_names_take_the_folder_name_and_sibling_ground_truth(tmp_path):
    left, right = touch(tmp_path / "scene" / "left.png"), touch(tmp_path / "scene" / "right.png")
    io.write_disparity_png(tmp_path / "scene" / "left_disp.png", np.ones((16, 24)), io.INSTEREO2K_SCALE)
    (pair,) = discover_pairs([left, right])
    assert pair.name == "scene" and pair.gt_path == tmp_path / "scene" / "left_disp.png" and pair.gt_scale == 100


def test_instereo2k_folder(tmp_path):
    for part, ident in (("part1", "000001"), ("part2", "000002")):
        touch(tmp_path / "train" / part / ident / "left.png")
        touch(tmp_path / "train" / part / ident / "right.png")
    io.write_disparity_png(tmp_path / "train/part1/000001/left_disp.png", np.ones((16, 24)), io.INSTEREO2K_SCALE)
    pairs = discover_pairs(str(tmp_path))
    assert [p.name for p in pairs] == ["train_part1_000001", "train_part2_000002"]
    assert pairs[0].gt_scale == 100 and pairs[0].gt_path.name == "left_disp.png" and pairs[1].gt_path is None


def test_middlebury_folder(tmp_path):
    for scene in ("Motorcycle", "Piano"):
        touch(tmp_path / scene / "im0.png")
        touch(tmp_path / scene / "im1.png")
        io.write_pfm(tmp_path / scene / "disp0.pfm", np.ones((16, 24)))
    pairs = discover_pairs(tmp_path)
    assert [p.name for p in pairs] == ["Motorcycle", "Piano"]
    assert pairs[0].right.name == "im1.png" and pairs[0].gt_path.name == "disp0.pfm"


def test_single_pair_folder_is_named_after_itself(tmp_path):
    touch(tmp_path / "Piano" / "im0.png")
    touch(tmp_path / "Piano" / "im1.png")
    (pair,) = discover_pairs(tmp_path / "Piano")
    assert pair.name == "Piano"


def test_kitti_folder(tmp_path):
    for name in ("000000_10.png", "000001_10.png"):
        touch(tmp_path / "image_2" / name)
        touch(tmp_path / "image_3" / name)
    io.write_disparity_png(tmp_path / "disp_occ_0" / "000000_10.png", np.ones((16, 24)))
    pairs = discover_pairs(tmp_path)
    assert [p.name for p in pairs] == ["000000_10", "000001_10"]
    assert pairs[0].right == tmp_path / "image_3" / "000000_10.png"
    assert pairs[0].gt_scale == 256 and pairs[0].gt_path.parent.name == "disp_occ_0" and pairs[1].gt_path is None


def test_left_right_subfolders(tmp_path):
    touch(tmp_path / "left" / "0001.png")
    touch(tmp_path / "right" / "0001.png")
    (pair,) = discover_pairs([tmp_path])
    assert pair.name == "0001" and pair.right == tmp_path / "right" / "0001.png"


def test_left_right_subfolder_missing_right(tmp_path):
    touch(tmp_path / "left" / "0001.png")
    (tmp_path / "right").mkdir()
    with pytest.raises(InputError, match="0001.png has no right image of the same name"):
        discover_pairs(tmp_path)


def test_glob_with_default_rules(tmp_path):
    for stem in ("a", "b"):
        touch(tmp_path / f"{stem}_left.png")
        touch(tmp_path / f"{stem}_right.png")
    pairs = discover_pairs(str(tmp_path / "*.png"))  # matches right images too: they are skipped
    assert [(p.name, p.right.name) for p in pairs] == [("a", "a_right.png"), ("b", "b_right.png")]


def test_glob_with_explicit_rule(tmp_path):
    touch(tmp_path / "shot1_cam_A.png")
    touch(tmp_path / "shot1_cam_B.png")
    (pair,) = discover_pairs(str(tmp_path / "*_A.png"), rule=parse_rule("_A->_B"))
    assert pair.right.name == "shot1_cam_B.png" and pair.name == "shot1_cam"


def test_shell_expanded_lefts(tmp_path):
    lefts = []
    for stem in ("x", "y"):
        lefts.append(touch(tmp_path / f"{stem}_im0.png"))
        touch(tmp_path / f"{stem}_im1.png")
    pairs = discover_pairs(lefts)
    assert [(p.name, p.right.name) for p in pairs] == [("x", "x_im1.png"), ("y", "y_im1.png")]


def test_empty_folder_names_folder_and_layouts(tmp_path):
    with pytest.raises(InputError) as info:
        discover_pairs(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "InStereo2K" in message and "KITTI" in message and "\n" not in message


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        discover_pairs(tmp_path / "missing")
    with pytest.raises(InputError, match="matches no files"):
        discover_pairs(str(tmp_path / "*.png"))
    lone = touch(tmp_path / "lone.png")
    with pytest.raises(InputError, match="no right image found"):
        discover_pairs(lone)
    with pytest.raises(InputError, match="no such image file"):
        discover_pairs([lone, tmp_path / "missing.png"])
    with pytest.raises(InputError, match="expected LEFT->RIGHT"):
        parse_rule("left")
