"""The loop's statistics stay in fixed memory and its FPS means something (issue 15, mechanism 4)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from stream_media import SGBM_RANGE, pair_folder, scenes
from toolkit.backends.sgbm import SGBMRunner
from toolkit.stream import loop, sources
from toolkit.stream.loop import StreamOptions, run_stream
from toolkit.stream.sources import StereoFrame, StereoSource


class RepeatSource(StereoSource):
    """One small pair served ``count`` times, as fast as it is asked for (a file-like source)."""

    name = "repeat"

    def __init__(self, count: int, height: int = 32, width: int = 64) -> None:
        scene = scenes(1, height, width)[0]
        self.left, self.right, self.count, self.position = scene.left, scene.right, count, 0

    def open(self) -> None:
        self.position = 0

    def read(self) -> StereoFrame | None:
        if self.position >= self.count:
            return None
        self.position += 1
        return StereoFrame(self.left, self.right, self.position - 1, time.perf_counter())


class RssProbe:
    """A sink that reads the process's resident memory after ``warmup`` frames and at the end."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.frames, self.after_warmup, self.at_end = warmup, 0, None, None

    def publish(self, view) -> bool:
        self.frames += 1
        if self.frames == self.warmup:
            self.after_warmup = rss_bytes()
        return True

    def close(self) -> None:
        self.at_end = rss_bytes()


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_statistics_keep_fixed_memory_over_any_run_length():
    stats = loop._Stats(warmup=1)
    frame = StereoFrame(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), 0, 0.0)
    for i in range(3 * loop.LATENCY_WINDOW):
        stats.add(loop._Work(frame, prepare_ms=1.0, infer_ms=2.0), 3.0, now=1.0 + i * 0.01)
    assert len(stats.latency_window) == loop.LATENCY_WINDOW
    assert len(stats.recent_done) == loop.RECENT_FRAMES
    summary = loop.Summary("x")
    stats.fill(summary)
    assert summary.fps == pytest.approx(100.0)
    assert summary.stage_ms == pytest.approx({"prepare": 1.0, "infer": 2.0, "present": 3.0})


def test_a_three_frame_run_reports_no_fps(tmp_path):
    summary = run_stream(sources.open_source([str(pair_folder(tmp_path / "pairs", 3))]), SGBMRunner(max_disp=SGBM_RANGE))
    assert summary.frames_processed == 3
    assert math.isnan(summary.fps)
    assert "FPS not measured (too few frames)" in summary.text()
    assert summary.latency_ms_mean > 0


@pytest.mark.slow
@pytest.mark.soak
def test_soak_50000_frames_of_sgbm_keep_memory_flat():
    # Run with: pytest -m soak (about a minute on a 2-core CPU). 50,000 frames, because the
    # per-frame lists this replaced grew by 4 MB over 18,000 frames: under the 5 MB bar at 20,000.
    frames, warmup = 50_000, 5_000
    probe = RssProbe(warmup)
    summary = run_stream(RepeatSource(frames), SGBMRunner(max_disp=16), StreamOptions(), [probe])
    assert summary.frames_processed == frames
    growth = probe.at_end - probe.after_warmup
    assert growth < 5 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MB over {frames - warmup} frames"
