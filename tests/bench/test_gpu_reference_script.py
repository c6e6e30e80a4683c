"""The GPU reference script's plumbing, on this CPU at a tiny size: the README's CPU line.

The figures of such a run are not a GPU report; only the files and their fields are checked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_readme_cpu_line_writes_the_report_files(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "GPU_REF_SIZE": "64x96",
           "GPU_REF_ITERS": "1", "GPU_REF_FRAMES": "4", "GPU_REF_REPEATS": "1", "GPU_REF_DEVICE": "cpu",
           "GPU_REF_TESTS": "0"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu-reference/regenerate.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["bench_report.json", "bench_report.md", "gpu_reference.json", "gpu_reference.md",
                     "run.mp4", "run.mp4.json"]
    record = json.loads((tmp_path / "out/gpu_reference.json").read_text())
    assert record["ratios"]["run_frames"] == 4 and "run_overhead" in record["ratios"]
    assert record["versions"]["torch"] and record["knobs"]["device"] == "cpu"
    rows = json.loads((tmp_path / "out/bench_report.json").read_text())["rows"]
    assert [row["device"] for row in rows] == ["cpu", "cpu", "cpu"]
    assert rows[1]["providers"] == ["CPUExecutionProvider"]
