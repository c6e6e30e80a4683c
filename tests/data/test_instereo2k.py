import json
import shutil

import cv2
import numpy as np
import pytest

from toolkit.data import instereo2k
from toolkit.data.instereo2k import Instereo2K, load, read_manifest, sample_calibration, write_manifest
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.errors import InputError

SIZE = (48, 64)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """3 parts x 4 pairs + 2 test pairs of generated scenes, in the InStereo2K layout."""
    return write_instereo2k_tree(tmp_path_factory.mktemp("is2k"), n_train_parts=3, pairs_per_part=4, n_test=2,
                                 size=SIZE, seed=11, max_disp=16)


@pytest.fixture
def copy(tree, tmp_path):
    """A private copy of the tree to damage."""
    return shutil.copytree(tree, tmp_path / "copy")


def test_lists_train_and_test_pairs(tree):
    train, test = Instereo2K(tree, "train"), Instereo2K(tree, "test")
    assert len(train) == 12 and len(test) == 2
    assert train[0].name == "part1_000000" and test[0].name == "000012"
    assert all(s.disp_path is not None and s.right_path.is_file() for s in train)
    assert len({s.name for s in train}) == 12


def test_load_returns_images_and_ground_truth(tree):
    left, right, disparity, valid = load(Instereo2K(tree)[0])
    assert left.shape == right.shape == SIZE + (3,) and left.dtype == np.uint8
    assert disparity.shape == valid.shape == SIZE and disparity.dtype == np.float32
    assert 0 < disparity[valid].min() and disparity.max() < 16 and np.all(disparity[~valid] == 0)


def test_pair_without_ground_truth_loads_none(copy):
    (copy / "test/000012/left_disp.png").unlink()
    sample = Instereo2K(copy, "test")[0]
    assert sample.disp_path is None
    assert load(sample)[2:] == (None, None)


def test_missing_root(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        Instereo2K(tmp_path / "nowhere")


def test_no_pairs(tmp_path):
    (tmp_path / "train" / "part1").mkdir(parents=True)
    with pytest.raises(InputError, match=r"no InStereo2K pairs found \(expected train/part<N>/<id>/left.png"):
        Instereo2K(tmp_path)


def test_bad_split(tree):
    with pytest.raises(InputError, match="split 'val'"):
        Instereo2K(tree, "val")


def test_pair_missing_right_image(copy):
    (copy / "train/part2/000005/right.png").unlink()
    with pytest.raises(InputError, match=r"000005: has left.png but no right.png"):
        Instereo2K(copy)


def test_disparity_png_not_16_bit(copy):
    path = copy / "train/part1/000000/left_disp.png"
    cv2.imwrite(str(path), np.zeros(SIZE, np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        load(Instereo2K(copy)[0])


def test_sizes_mismatched(copy):
    path = copy / "train/part1/000001/right.png"
    cv2.imwrite(str(path), np.zeros((SIZE[0], SIZE[1] + 8, 3), np.uint8))
    with pytest.raises(InputError, match="72x48 differs from left.png 64x48"):
        load(Instereo2K(copy)[1])
    disp = copy / "train/part1/000002/left_disp.png"
    cv2.imwrite(str(disp), np.ones((SIZE[0] - 8, SIZE[1]), np.uint16))
    with pytest.raises(InputError, match="left_disp.png: 64x40 differs"):
        load(Instereo2K(copy)[2])


def test_error_messages_are_one_line(tmp_path):
    with pytest.raises(InputError) as info:
        Instereo2K(tmp_path)
    assert "\n" not in str(info.value)


def part_of(rel):
    return rel.split("/")[1]


def test_calibration_sample_is_spread_disjoint_and_seeded(tree):
    manifest = sample_calibration(tree, n=6, seed=3, holdout=3)
    assert len(manifest.pairs) == 6 and len(manifest.holdout) == 3
    assert not set(manifest.pairs) & set(manifest.holdout)
    assert sorted(part_of(p) for p in manifest.pairs) == ["part1", "part1", "part2", "part2", "part3", "part3"]
    assert sorted(part_of(p) for p in manifest.holdout) == ["part1", "part2", "part3"]
    again = sample_calibration(tree, n=6, seed=3, holdout=3)
    assert (again.pairs, again.holdout) == (manifest.pairs, manifest.holdout)
    others = [sample_calibration(tree, n=6, seed=s, holdout=3).pairs for s in range(4, 9)]
    assert any(set(o) != set(manifest.pairs) for o in others)


def test_calibration_needs_enough_pairs(tree):
    with pytest.raises(InputError, match="12 pairs, too few for 10 calibration \\+ 4 held-out pairs"):
        sample_calibration(tree, n=10, seed=0, holdout=4)


def test_manifest_round_trip_and_resolution(tree, tmp_path):
    manifest = sample_calibration(tree, n=4, seed=1, holdout=2, size=(32, 64))
    path = write_manifest(manifest, tmp_path / "calib.json")
    data = json.loads(path.read_text())
    assert data["preprocess"] == "toolkit.preprocess, RGB 0..255 float32, size 32x64"
    assert data["root"] == str(tree.resolve()) and "tool_versions" in data["provenance"]
    back = read_manifest(path)
    assert (back.pairs, back.holdout, back.seed, back.size) == (manifest.pairs, manifest.holdout, 1, "32x64")
    samples = back.calibration_samples()
    assert [s.left_path.parent.relative_to(tree).as_posix() for s in samples] == manifest.pairs
    assert len(back.holdout_samples()) == 2


def test_default_manifest_path_is_under_calibration(tree, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_manifest(sample_calibration(tree, n=2, seed=0, holdout=1))
    assert path.as_posix() == "calibration/instereo2k_n2_holdout1_seed0.json" and path.is_file()


def test_bad_manifests(tmp_path):
    with pytest.raises(InputError, match="no such calibration manifest"):
        read_manifest(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON"):
        read_manifest(bad)
    bad.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(InputError, match="not a calibration manifest"):
        read_manifest(bad)
    bad.write_text(json.dumps({"kind": instereo2k.MANIFEST_KIND, "root": "/r", "split": "train", "seed": 0,
                               "pairs": ["train/part1/a"], "holdout": ["train/part1/a"]}))
    with pytest.raises(InputError, match="both calibrate and are held out"):
        read_manifest(bad)
