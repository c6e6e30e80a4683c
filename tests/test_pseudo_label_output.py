"""pseudo-label's output side: never into its input, never over earlier labels unless asked, atomic writes."""

import hashlib
import os

import pytest
from click.testing import CliRunner

from toolkit import pseudo_label
from toolkit.cli import main
from toolkit.data.pairs import discover_pairs
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.errors import InputError

SIZE = (64, 96)


@pytest.fixture
def tree(tmp_path):
    return write_instereo2k_tree(tmp_path / "is2k", n_train_parts=1, pairs_per_part=2, n_test=0, size=SIZE, seed=5,
                                 max_disp=24)


def snapshot(folder):
    """Every file under ``folder`` with its sha256: equal snapshots mean byte-for-byte the same tree."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_cli(*args):
    return CliRunner().invoke(main, ["pseudo-label", *map(str, args)])


def assert_one_line_error(result, message):
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("out", ["{tree}", "{tree}/labels", "{tree}/train/part1"])
def test_output_that_is_the_input_or_inside_it_exits_2_and_leaves_the_input_unchanged(tree, out):
    before = snapshot(tree)
    result = run_cli(tree, "--max-disp", 32, "--out", out.format(tree=tree))
    assert_one_line_error(result, "is the input folder")
    assert snapshot(tree) == before
    assert not (tree / "labels").exists()


def test_output_beside_the_input_images_of_a_named_pair_is_refused(tree):
    pair_dir = tree / "train/part1/000000"
    before = snapshot(tree)
    result = run_cli(pair_dir / "left.png", pair_dir / "right.png", "--out", pair_dir)
    assert_one_line_error(result, "is the input folder")
    assert snapshot(tree) == before


def test_an_output_holding_disparity_files_needs_overwrite(tree, tmp_path):
    out = tmp_path / "labels"
    assert run_cli(tree, "--max-disp", 32, "--out", out).exit_code == 0
    first = snapshot(out)
    again = run_cli(tree, "--max-disp", 32, "--out", out)
    assert_one_line_error(again, "already holds disparity files")
    assert snapshot(out) == first
    replaced = run_cli(tree, "--max-disp", 16, "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert '"max_disp": 16' in (out / pseudo_label.MANIFEST_NAME).read_text()


def test_overwrite_relinks_images_so_new_labels_never_pair_with_old_images(tree, tmp_path):
    # the same layout relabelled with --overwrite from changed images (or another input): the tree's
    # images must be the ones the new labels were computed on
    out = tmp_path / "labels"
    assert run_cli(tree, "--max-disp", 32, "--out", out).exit_code == 0
    other = write_instereo2k_tree(tmp_path / "other", n_train_parts=1, pairs_per_part=2, n_test=0, size=SIZE,
                                  seed=9, max_disp=24)
    assert run_cli(other, "--max-disp", 32, "--out", out, "--overwrite").exit_code == 0
    for image in sorted(other.glob("train/part1/*/*.png")):
        if image.name in ("left.png", "right.png"):
            assert (out / image.relative_to(other)).read_bytes() == image.read_bytes(), image


def test_overwrite_over_fewer_pairs_leaves_no_old_label_for_training_to_read(tree, tmp_path):
    # relabelling after taking a bad pair out of the input: its old label must not stay in the tree
    out = tmp_path / "labels"
    assert run_cli(tree, "--max-disp", 32, "--out", out).exit_code == 0
    dropped = sorted((tree / "train/part1").iterdir())[-1]
    for image in dropped.glob("*.png"):
        image.unlink()
    dropped.rmdir()
    assert run_cli(tree, "--max-disp", 32, "--out", out, "--overwrite").exit_code == 0
    labels = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_disp.png"))
    assert labels == ["train/part1/000000/left_disp.png"]
    assert not (out / "train/part1" / dropped.name / "left_valid.png").exists()


def test_overwrite_never_allows_the_input_itself(tree):
    before = snapshot(tree)
    assert_one_line_error(run_cli(tree, "--out", tree, "--overwrite"), "is the input folder")
    assert snapshot(tree) == before


def test_an_output_folder_that_merely_exists_is_fine(tree, tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_cli(tree, "--max-disp", 32, "--out", tmp_path / "empty").exit_code == 0


@pytest.mark.parametrize("out, message", [
    ("{file}/labels", "is a file, not a folder"),
    ("{readonly}/labels", "cannot write in"),
])
def test_impossible_output_is_refused_before_the_teacher_runs(tree, tmp_path, out, message, monkeypatch):
    (tmp_path / "file").write_text("x")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o500)
    if "readonly" in out and os.access(readonly, os.W_OK):  # root ignores permissions
        pytest.skip("running as a user who can write anywhere")
    monkeypatch.setattr(pseudo_label, "open_teacher", lambda *a, **k: pytest.fail("teacher opened before --out check"))
    result = run_cli(tree, "--out", out.format(file=tmp_path / "file", readonly=readonly))
    readonly.chmod(0o700)
    assert_one_line_error(result, message)


class FailingTeacher:
    """Labels the first pair with SGBM, then fails: what an interrupted run leaves behind."""

    def __init__(self):
        from toolkit.backends.sgbm import SGBMRunner

        self.sgbm = SGBMRunner(max_disp=32)
        self.calls = 0

    def infer(self, left, right):
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("teacher died")
        return self.sgbm.infer(left, right)


def test_an_interrupted_run_leaves_whole_files_only(tree, tmp_path):
    teacher = FailingTeacher()
    with teacher.sgbm:
        with pytest.raises(RuntimeError, match="teacher died"):
            pseudo_label.pseudo_label(teacher, discover_pairs(tree), tmp_path / "out", {}, root=tree)
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["train/part1/000000/left_disp.png", "train/part1/000000/left_valid.png"]


def test_library_refuses_the_input_as_output(tree):
    with pytest.raises(InputError, match="is the input folder"):
        pseudo_label.pseudo_label(None, discover_pairs(tree), tree, {}, root=tree)


def test_a_damaged_image_in_any_pair_is_refused_before_the_first_label(tree, tmp_path):
    # found at pair 40 of 50 it left a label tree without a manifest, which `train --data` reads all the same
    right = sorted(tree.glob("train/part1/*/right.png"))[-1]
    right.write_bytes(right.read_bytes()[:200])
    result = run_cli(tree, "--max-disp", 32, "--out", tmp_path / "labels")
    assert_one_line_error(result, f"{right}: not a readable image")
    assert not (tmp_path / "labels").exists() or not any((tmp_path / "labels").rglob("*.png"))
