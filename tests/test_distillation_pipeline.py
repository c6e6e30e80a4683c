"""The distillation pipeline the README documents, run command by command on tiny generated data.

The README's "Distillation" block is read from the README itself, so the pipeline the
README shows is the pipeline this test runs: every line verbatim, in a folder laid out
like the README's paths, with options appended that shrink it to test size (click keeps
the last value of an option given twice).
"""

import hashlib
import json
import shlex
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from toolkit.cli import main
from toolkit.data.synthetic import write_instereo2k_tree
from toolkit.model import load_student

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = "toolkit/weights/rt_igev_student.pth"

# per command: what makes it tiny; nothing here changes which data, model or output a line uses
TINY = {
    "pseudo-label": ["--max-disp", "32"],
    "train": ["--steps", "2", "--crop", "64x96", "--batch-size", "1", "--train-iters", "2", "--val-pairs", "1"],
    "export": ["--size", "96x128", "--iters", "2"],
    "quantize": ["--n-calib", "2", "--holdout", "1", "--speed-runs", "0"],
    "bench": ["--warmup", "0", "--repeats", "1", "--no-memory", "--out", "report"],
}


def readme_commands(heading: str) -> list[list[str]]:
    """The ``stereo-trt`` command lines of the bash blocks in one README section, continuations joined."""
    text = (REPO / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    commands, in_block, pending = [], False, ""
    for line in section.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block or line.lstrip().startswith("#"):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if pending.startswith("stereo-trt "):
                commands.append(shlex.split(pending)[1:])
            pending = ""
    return commands


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A folder laid out like the README's paths: data/unlabelled (a tiny InStereo2K tree) and the weights."""
    write_instereo2k_tree(tmp_path / "data/unlabelled", n_train_parts=1, pairs_per_part=3, n_test=1, size=(96, 128),
                          seed=3, max_disp=24)
    (tmp_path / "toolkit/weights").mkdir(parents=True)
    (tmp_path / WEIGHTS).symlink_to(REPO / WEIGHTS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(args: list[str]):
    result = CliRunner().invoke(main, [*args, *TINY.get(args[0], [])])
    assert result.exit_code == 0, f"stereo-trt {' '.join(args)}\n{result.output}"
    return result


def test_readme_distillation_block_is_the_pipeline_under_test():
    commands = readme_commands("## Distillation")
    assert [c[0] for c in commands] == ["pseudo-label", "train", "export", "quantize", "bench", "train"]
    assert "--device" in commands[-1] and "cuda" in commands[-1]


@pytest.mark.slow
def test_pseudo_label_train_export_quantize_bench_through_the_cli(workspace):
    before = snapshot(workspace / "data/unlabelled")
    pipeline = readme_commands("## Distillation")[:-1]  # the last line is the GPU variant
    for args in pipeline:
        run(args)
    assert snapshot(workspace / "data/unlabelled") == before
    labels = workspace / "data/sgbm_labels"
    assert (labels / "train/part1/000000/left_disp.png").is_file()
    model, config, info = load_student(workspace / "outputs/finetune/last.pth")
    train_record = info["meta"]["train"]
    assert train_record["data"] == "data/sgbm_labels" and train_record["init"] == WEIGHTS
    assert info["meta"]["step"] == 2
    assert (workspace / "engines/finetune_480x640_it8_int8.onnx").is_file()
    report = json.loads((workspace / "report/report.json").read_text())
    assert len(report["rows"]) == 3
    assert all(row["vs_ground_truth"]["epe"] >= 0 for row in report["rows"])


def test_the_gpu_line_is_refused_with_one_line_where_there_is_no_gpu(workspace):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU; test_the_gpu_line_runs covers it")
    write_instereo2k_tree(workspace / "data/sgbm_labels", n_train_parts=1, pairs_per_part=1, n_test=0, size=(96, 128))
    args = readme_commands("## Distillation")[-1]
    result = CliRunner().invoke(main, [*args, *TINY["train"]])
    assert result.exit_code == 2, result.output
    assert "--device cuda" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (workspace / "outputs").exists()


@pytest.mark.cuda
def test_the_gpu_line_runs(workspace):
    write_instereo2k_tree(workspace / "data/sgbm_labels", n_train_parts=1, pairs_per_part=2, n_test=0, size=(96, 128))
    run(readme_commands("## Distillation")[-1] + ["--workers", "2"])
    _, _, info = load_student(workspace / "outputs/finetune_gpu/last.pth")
    assert info["meta"]["train"]["device"] == "cuda" and info["meta"]["step"] == 2
