"""Every command line of the README, and every ``Example:`` of every command's --help, runs here.

The lines are read from the README and from the commands themselves, so a documented
workflow cannot break unnoticed. Each runs through click's CliRunner in a workspace of
tiny generated data (a 64x96 export of the built-in student, a small InStereo2K tree,
chessboard views rendered through a synthetic rig), after the substitutions in ``LINES``.

``LINES`` is the one place to extend: a README line or an example it does not know fails
with the line quoted. Its values say how the line runs here:
  * a string: the line to run instead (the same command, paths and sizes substituted);
  * ``NEEDS_TENSORRT + line``: a TensorRT line; where TensorRT is not importable it must end
    in our one-line DependencyError (exit 2), elsewhere it must succeed;
  * ``NEEDS_CUDA + line``: a line for a CUDA GPU; where PyTorch sees none it must end in our
    one-line error pointing to ``stereo-trt doctor`` (exit 2), elsewhere it must succeed;
  * ``NEEDS_RCLPY + line``: the ROS 2 node; without rclpy it must end in our one-line error,
    with rclpy it is left to tests/ros/test_node.py (a live node runs until stopped);
  * ``COVERED + "tests/FILE.py::TEST"``: a line whose test needs its own setting (a workflow
    whose lines build on each other, a check of the output against ground truth); that test
    runs the documented line as written, and this file checks that it exists;
  * ``SETUP + reason``: an installation or test-runner line (make, pip, pytest), not a
    stereo-trt command; the reason says where it is exercised.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import COMMANDS, main

sys.path.insert(0, str(Path(__file__).parent / "stream"))
from stream_media import side_by_side_video, write_video  # noqa: E402
from stream_rig import make_rig, render_board_pairs  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
NEEDS_TENSORRT = "tensorrt:"
NEEDS_CUDA = "cuda:"
NEEDS_RCLPY = "rclpy:"
COVERED = "covered:"
SETUP = "setup:"
DISTILLATION = COVERED + "tests/test_distillation_pipeline.py::test_pseudo_label_train_export_quantize_bench_through_the_cli"
SMALL = "64x96"  # every 480x640 of the docs runs at this size ...
SMALL_MODEL = f"rt_igev_student_{SMALL}_it1"  # ... and models are exported with 1 iteration instead of 8
# Benchmarks: one timed pass at the small size, no per-row memory process (each imports PyTorch afresh).
QUICK_BENCH = f"--size {SMALL} --warmup 1 --repeats 1 --no-memory"

# documented line -> how it runs here (see the module docstring). {ws} is the workspace folder.
LINES = {
    # README: quick start and tests
    "make demo": "stereo-trt demo",
    "make test": SETUP + "the Makefile target that runs this very suite",
    # README: the pipeline, command by command
    "stereo-trt export --size 480x640 --iters 8": f"stereo-trt export --size {SMALL} --iters 1",
    "stereo-trt quantize engines/rt_igev_student_480x640_it8_fp32.onnx -c /data/InStereo2K --max-epe-delta 0.2":
        f"stereo-trt quantize engines/{SMALL_MODEL}_fp32.onnx -c {{ws}}/InStereo2K --max-epe-delta 0.2",
    "stereo-trt build engines/rt_igev_student_480x640_it8_fp32.onnx --precision fp16":
        NEEDS_TENSORRT + f"stereo-trt build engines/{SMALL_MODEL}_fp32.onnx --precision fp16",
    "stereo-trt build engines/rt_igev_student_480x640_it8_int8.onnx --precision int8":
        NEEDS_TENSORRT + f"stereo-trt build engines/{SMALL_MODEL}_int8.onnx --precision int8",
    "stereo-trt calibrate-camera board_pairs/ --board 9x6 --square 0.025 --out stereo.yaml":
        "stereo-trt calibrate-camera board_pairs/ --board 9x6 --square 0.025 --out stereo.yaml",
    # a camera and an engine cannot be had here: a recorded side-by-side video of the rig, the exported ONNX
    "stereo-trt run --source 0 --calibration stereo.yaml --backend trt --model engines/<engine> --depth --save out.mp4":
        f"stereo-trt run --source rig_sbs.mp4 --calibration rig.yaml --backend onnx "
        f"--model engines/{SMALL_MODEL}_fp32.onnx --depth --save out.mp4",
    "stereo-trt bench --model toolkit/weights/rt_igev_student.pth --model engines/rt_igev_student_480x640_it8_fp32.onnx "
    "--model engines/rt_igev_student_480x640_it8_int8.onnx --model sgbm --data builtin":
        f"stereo-trt bench --model {{builtin}} --model engines/{SMALL_MODEL}_fp32.onnx "
        f"--model engines/{SMALL_MODEL}_int8.onnx --model sgbm --data builtin {QUICK_BENCH}",
    # README: per-pixel confidence
    "stereo-trt export --size 480x640 --confidence": f"stereo-trt export --size {SMALL} --iters 1 --confidence",
    "stereo-trt predict left.png right.png --min-confidence 0.5": "stereo-trt predict left.png right.png --min-confidence 0.5",
    "stereo-trt run --source video.mp4 --rectified --model engines/<model> --lr-check --min-confidence 0.5":
        f"stereo-trt run --source video.mp4 --rectified --model engines/{SMALL_MODEL}_fp32.onnx "
        "--lr-check --min-confidence 0.5",
    "stereo-trt bench --model toolkit/weights/rt_igev_student.pth --model toolkit/weights/rt_igev_student.pth+lr "
    "--model sgbm --model sgbm+lr --data builtin":
        "stereo-trt bench --model {builtin} --model {builtin}+lr --model sgbm --model sgbm+lr --data builtin "
        + QUICK_BENCH,
    # README: running the TensorRT tests on a GPU machine
    'pip install -e ".[torch,tensorrt,dev]"': SETUP + "installation; `make test` installs the same extras but tensorrt",
    "pip install cuda-python": SETUP + "installation of an optional CUDA binding",
    "stereo-trt doctor": "stereo-trt doctor",
    "pytest -m tensorrt tests/trt -v -rs": SETUP + "runs tests/trt, skipped with the reason where TensorRT is missing",
    ".venv/bin/python -m pytest -m soak": SETUP + "runs the soak test, tests/stream/test_stream_bounded.py",
    # README: a GPU without TensorRT
    "stereo-trt predict --device cuda --precision fp16":
        NEEDS_CUDA + "stereo-trt predict --device cuda --precision fp16 --size 96x128 --out outputs/predict_gpu",
    "stereo-trt run --source video.mp4 --rectified --model toolkit/weights/rt_igev_student.pth --device cuda "
    "--precision fp16 --cuda-graph --size 480x640 --save out.mp4":
        NEEDS_CUDA + f"stereo-trt run --source video.mp4 --rectified --model {{builtin}} --device cuda --precision fp16 "
        f"--cuda-graph --size {SMALL} --save out_gpu.mp4",
    "stereo-trt run --source video.mp4 --rectified --device cuda":
        NEEDS_CUDA + f"stereo-trt run --source video.mp4 --rectified --device cuda --size {SMALL}",
    "stereo-trt bench --model toolkit/weights/rt_igev_student.pth --model toolkit/weights/rt_igev_student.pth+fp16+graph "
    "--model sgbm --device cuda --size 480x640 --data builtin":
        NEEDS_CUDA + "stereo-trt bench --model {builtin} --model {builtin}+fp16+graph --model sgbm --device cuda "
        f"--data builtin {QUICK_BENCH} --out outputs/bench_gpu",
    "stereo-trt demo --device cuda": NEEDS_CUDA + "stereo-trt demo --device cuda --out outputs/demo_gpu",
    # README: distillation (the lines build on each other: one test runs the block in order)
    "stereo-trt pseudo-label data/unlabelled --teacher sgbm --max-disp 192 --out data/sgbm_labels":
        "stereo-trt pseudo-label data/unlabelled --teacher sgbm --max-disp 192 --out data/sgbm_labels",
    "stereo-trt train --data data/sgbm_labels --init toolkit/weights/rt_igev_student.pth --steps 2000 --crop 256x512 "
    "--out outputs/finetune": DISTILLATION,
    "stereo-trt export outputs/finetune/last.pth --size 480x640 --iters 8 --out engines/finetune_480x640_it8_fp32.onnx":
        DISTILLATION,
    "stereo-trt quantize engines/finetune_480x640_it8_fp32.onnx -c data/sgbm_labels": DISTILLATION,
    "stereo-trt bench --model outputs/finetune/last.pth --model engines/finetune_480x640_it8_fp32.onnx "
    "--model engines/finetune_480x640_it8_int8.onnx --data builtin": DISTILLATION,
    "stereo-trt train --data data/sgbm_labels --init toolkit/weights/rt_igev_student.pth --device cuda --batch-size 8 "
    "--crop 256x512 --train-iters 8 --minutes 30 --out outputs/finetune_gpu":
        NEEDS_CUDA + f"stereo-trt train --data {{ws}}/InStereo2K --init {{builtin}} --device cuda --batch-size 2 "
        f"--crop {SMALL} --train-iters 2 --steps 2 --out outputs/finetune_gpu",
    # README: ROS 2 bags and point clouds (checked against the bag's and the pair's ground truth there)
    "pip install -e '.[ros]'": SETUP + "installation of the ros extra; `make test` installs it through dev",
    "stereo-trt run --source recording.mcap --backend sgbm --headless --record-bag depth.mcap":
        COVERED + "tests/ros/test_record_bag.py::test_the_help_example_runs_end_to_end",
    "stereo-trt predict --ply --max-depth 3 --out outputs/motorcycle":
        COVERED + "tests/test_predict_ply.py::test_predict_ply_on_the_builtin_pair_matches_ground_truth_depth",
    "stereo-trt ros2 --left-topic /left/image_rect --right-topic /right/image_rect --rectified "
    "--model engines/student_fp16.engine":
        NEEDS_RCLPY + "stereo-trt ros2 --left-topic /left/image_rect --right-topic /right/image_rect --rectified "
        f"--model engines/{SMALL_MODEL}_fp32.onnx",
    # --help examples
    "stereo-trt predict left.png right.png --out outputs/": "stereo-trt predict left.png right.png --out outputs/",
    "stereo-trt predict left.png right.png --focal 721.5 --baseline 0.54 --out outputs/":
        "stereo-trt predict left.png right.png --focal 721.5 --baseline 0.54 --out outputs/",
    "stereo-trt export weights/student.pth --size 480x640 --iters 8":
        f"stereo-trt export {{builtin}} --size {SMALL} --iters 1 --out engines/student_{SMALL}_it1_fp32.onnx",
    "stereo-trt lint engines/student_480x640_it8_int8.onnx --trt 8.5":
        f"stereo-trt lint engines/{SMALL_MODEL}_int8.onnx --trt 8.5",
    "stereo-trt quantize engines/student_480x640_it8_fp32.onnx -c calibration/instereo2k_n32_holdout8_seed0.json "
    "--max-epe-delta 0.2":
        f"stereo-trt quantize engines/{SMALL_MODEL}_fp32.onnx "
        "-c calibration/instereo2k_n32_holdout8_seed0.json --max-epe-delta 0.2 --out engines/student_int8.onnx",
    "stereo-trt build engines/student_480x640_it8_fp32.onnx --precision fp16 --workspace 2048":
        NEEDS_TENSORRT + f"stereo-trt build engines/{SMALL_MODEL}_fp32.onnx --precision fp16 --workspace 2048",
    "stereo-trt run --source 0 --calibration stereo.yaml --model engines/student_fp16.engine --save out.mp4":
        f"stereo-trt run --source rig_sbs.mp4 --calibration rig.yaml "
        f"--model engines/{SMALL_MODEL}_fp32.onnx --save out.mp4",
    "stereo-trt bench --model student.pth --model engines/student_480x640_it8_fp32.onnx "
    "--model engines/student_480x640_it8_int8.onnx --model sgbm --data datasets/InStereo2K --out benchmarks/cpu":
        f"stereo-trt bench --model {{builtin}} --model engines/{SMALL_MODEL}_fp32.onnx "
        f"--model engines/{SMALL_MODEL}_int8.onnx --model sgbm --data {{ws}}/InStereo2K --out benchmarks/cpu {QUICK_BENCH}",
    "stereo-trt demo": "stereo-trt demo",
    "stereo-trt doctor --json > doctor.json": "stereo-trt doctor --json > doctor.json",
    "stereo-trt train --data synthetic --steps 3000 --crop 192x320 --out outputs/train":
        f"stereo-trt train --data synthetic --steps 2 --crop {SMALL} --out outputs/train",
    "stereo-trt train --data data/sgbm_labels --init toolkit/weights/rt_igev_student.pth --out outputs/finetune":
        f"stereo-trt train --data {{ws}}/InStereo2K --init {{builtin}} --steps 2 --crop {SMALL} --out outputs/finetune_help",
}


def join_continuations(lines: list[str]) -> list[str]:
    joined, pending = [], ""
    for line in lines:
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        joined.append((pending + stripped.strip()).strip())
        pending = ""
    return joined


def strip_comment(line: str) -> str:
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip() if not line.startswith("#") else ""


def readme_lines() -> list[str]:
    """Command lines in the README's ```bash blocks, continuations joined, comments dropped."""
    lines, inside = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash" if not inside else False
            continue
        if inside:
            lines.append(line)
    return [c for c in (strip_comment(line) for line in join_continuations(lines)) if c]


def help_examples() -> list[str]:
    """The ``Example:`` / ``Examples:`` lines of the group's and every command's help."""
    texts = [main.help] + [importlib.import_module(f"toolkit.cli.{module}").command.help for module in COMMANDS.values()]
    examples = []
    for text in texts:
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"Examples?:", line.strip()):
                rest = line.split(":", 1)[1].strip()
                block = [rest] if rest else []
                for follow in lines[i + 1:]:
                    if not follow.strip():
                        break
                    block.append(follow)
                examples.extend(c for c in join_continuations(block) if c)
    return examples


DOCUMENTED = sorted(set(readme_lines()) | set(help_examples()))


def test_every_documented_line_is_known():
    unknown = [line for line in DOCUMENTED if line not in LINES]
    assert not unknown, "documented command lines this test does not know; add them to LINES:\n" + "\n".join(unknown)


def test_every_known_line_is_still_documented():
    stale = [line for line in LINES if line not in DOCUMENTED]
    assert not stale, "LINES holds lines no longer in the README or a --help; remove them:\n" + "\n".join(stale)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny inputs under the names the docs use, plus the exported and quantized student at 64x96."""
    from toolkit.data import io
    from toolkit.data.instereo2k import sample_calibration, write_manifest
    from toolkit.data.synthetic import write_instereo2k_tree
    from toolkit.export import export_onnx
    from toolkit.paths import BUILTIN_CHECKPOINT
    from toolkit.quantize import quantize_onnx
    from toolkit.stream.rectify import save_calibration

    ws = tmp_path_factory.mktemp("readme")
    size = tuple(int(v) for v in SMALL.split("x"))
    tree = write_instereo2k_tree(ws / "InStereo2K", n_train_parts=2, pairs_per_part=20, n_test=2, size=size, max_disp=24)
    write_manifest(sample_calibration(tree, 32, holdout=8, size=size),
                   ws / "calibration" / "instereo2k_n32_holdout8_seed0.json")
    left, right = io.read_image(next((tree / "test").iterdir()) / "left.png"), None
    right = io.read_image(next((tree / "test").iterdir()) / "right.png")
    io.write_image(ws / "left.png", left)
    io.write_image(ws / "right.png", right)
    for index, sample in enumerate(sorted((tree / "train" / "part1").iterdir())[:3]):
        for side in ("left", "right"):
            io.write_image(ws / "data" / "unlabelled" / side / f"{index:03d}.png", io.read_image(sample / f"{side}.png"))
    rig = make_rig()
    boards = render_board_pairs(rig, 9, 6, 0.025, count=8)
    for index, (board_left, board_right) in enumerate(boards):
        io.write_image(ws / "board_pairs" / "left" / f"{index:02d}.png", board_left)
        io.write_image(ws / "board_pairs" / "right" / f"{index:02d}.png", board_right)
    write_video(ws / "rig_sbs.mp4", [np.hstack(pair) for pair in boards[:2]])
    save_calibration(ws / "rig.yaml", rig.calibration())
    side_by_side_video(ws / "video.mp4", 2)
    fp32 = ws / "engines" / f"{SMALL_MODEL}_fp32.onnx"
    export_onnx(BUILTIN_CHECKPOINT, fp32, size=size, iters=1, lint_trt=None)
    quantize_onnx(fp32, tree, fp32.with_name(f"{SMALL_MODEL}_int8.onnx"), n_calib=4, holdout=2,
                  speed_runs=0, cache=ws / "calibration" / "int8.cache")
    return ws


def argv_for(line: str, ws: Path) -> tuple[list[str], str | None]:
    """(arguments after `stereo-trt`, file that stdout is redirected to or None)."""
    from toolkit.paths import BUILTIN_CHECKPOINT

    line = line.replace("{ws}", str(ws)).replace("{builtin}", str(BUILTIN_CHECKPOINT))
    redirect = None
    if " > " in line:
        line, redirect = (part.strip() for part in line.split(" > ", 1))
    words = shlex.split(line)
    assert words[0] == "stereo-trt", line
    return words[1:], redirect


def run_line(line: str, ws: Path, monkeypatch):
    import toolkit.demo

    monkeypatch.chdir(ws)
    # The demo's clip and export run at the small size, its engines stay in the workspace.
    run_demo = toolkit.demo.run_demo
    monkeypatch.setattr(toolkit.demo, "run_demo",
                        lambda **kw: run_demo(**kw, size=tuple(int(v) for v in SMALL.split("x")), engines_dir=ws / "engines"))
    args, redirect = argv_for(line, ws)
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    if redirect:
        (ws / redirect).write_text(result.stdout)
    return result


RUNNABLE = [line for line in DOCUMENTED if line in LINES and not LINES[line].startswith((SETUP, COVERED))]
# where a line for another machine must fail here: (prefix, is that machine's part missing here, word in the error)
ELSEWHERE = {
    NEEDS_TENSORRT: (lambda: importlib.util.find_spec("tensorrt") is None, "TensorRT"),
    NEEDS_CUDA: (lambda: not _cuda_usable(), "stereo-trt doctor"),
    NEEDS_RCLPY: (lambda: importlib.util.find_spec("rclpy") is None, "rclpy"),
}


def _cuda_usable() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def _params() -> list:
    """RUNNABLE as parameters; on a CUDA machine the GPU lines also carry the ``cuda`` marker, so
    ``pytest -m cuda`` runs them there (elsewhere they run unmarked, checking the one-line refusal)."""
    on_gpu = _cuda_usable()
    return [pytest.param(line, id=line[:100],
                         marks=[pytest.mark.cuda] if on_gpu and LINES[line].startswith(NEEDS_CUDA) else [])
            for line in RUNNABLE]


@pytest.mark.parametrize("documented", _params())
def test_documented_line_runs(documented, workspace, monkeypatch):
    how = LINES[documented]
    prefix = next((p for p in ELSEWHERE if how.startswith(p)), "")
    missing, word = ELSEWHERE.get(prefix, (lambda: False, ""))
    if prefix == NEEDS_RCLPY and not missing():
        pytest.skip("rclpy is here: a live node runs until stopped; tests/ros/test_node.py runs it")
    result = run_line(how[len(prefix):], workspace, monkeypatch)
    details = f"{documented}\n-> exit {result.exit_code}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(details) from result.exception
    if missing():
        assert result.exit_code == 2, details
        assert word in result.stderr and len(result.stderr.strip().splitlines()) == 1, details
        return
    assert result.exit_code == 0, details
    if documented.endswith("> doctor.json"):
        assert json.loads((workspace / "doctor.json").read_text())


def test_covering_tests_exist():
    root = Path(__file__).resolve().parents[1]
    for line, how in LINES.items():
        if how.startswith(COVERED):
            path, _, name = how[len(COVERED):].partition("::")
            assert f"def {name}(" in (root / path).read_text(), f"{line}: {how} names no test"


def test_setup_lines_say_why_they_are_not_run():
    for line, how in LINES.items():
        if how.startswith(SETUP):
            assert len(how) > len(SETUP) + 10, line
