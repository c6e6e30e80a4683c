"""The loop on generated videos and folders, with OpenCV SGBM as a real (classical) stereo runner."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from stream_media import HEIGHT, SGBM_RANGE, WIDTH, count_frames, pair_folder, scenes, side_by_side_video, two_videos
from toolkit.backends.base import Runner
from toolkit.backends.sgbm import SGBMRunner
from toolkit.errors import InputError, ModelError
from toolkit.stream import overlay, sources
from toolkit.stream.loop import StreamOptions, run_stream
from toolkit.stream.record import VideoRecorder
from toolkit.stream.rectify import DepthConverter

VIEW_WIDTH = 2 * WIDTH + overlay.BAR_WIDTH


class Collect:
    """A sink that keeps what it is shown; ``stop_after`` makes it ask to quit like the window's q."""

    def __init__(self, stop_after: int | None = None):
        self.views, self.stop_after, self.closed = [], stop_after, False

    def publish(self, view):
        self.views.append(view)
        return self.stop_after is None or len(self.views) < self.stop_after

    def close(self):
        self.closed = True


def sgbm() -> SGBMRunner:
    return SGBMRunner(max_disp=SGBM_RANGE)


def test_every_frame_mode_loses_nothing_on_a_side_by_side_video(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 4, repeat=2)
    sink = Collect()
    summary = run_stream(sources.open_source([str(video)]), sgbm(), StreamOptions(), [sink])
    assert summary.stop_reason == "end of source"
    assert summary.frames_captured == summary.frames_processed == len(sink.views) == 8
    assert summary.frames_dropped == 0
    assert sink.closed
    assert sink.views[0].shape == (HEIGHT, VIEW_WIDTH, 3) and sink.views[0].dtype == np.uint8
    assert summary.latency_ms_p99 >= summary.latency_ms_mean > 0 and summary.fps > 0
    assert set(summary.stage_ms) == {"prepare", "infer", "present"}


def test_two_videos_and_an_image_folder(tmp_path):
    left, right = two_videos(tmp_path, 3)
    summary = run_stream(sources.open_source([str(left), str(right)]), sgbm())
    assert (summary.frames_captured, summary.frames_processed) == (3, 3)
    folder = pair_folder(tmp_path / "pairs", 3)
    summary = run_stream(sources.open_source([str(folder)]), sgbm())
    assert (summary.frames_captured, summary.frames_processed, summary.frames_dropped) == (3, 3, 0)


def test_latest_frame_mode_drops_instead_of_queueing(tmp_path):
    # The file is read as fast as it decodes, far faster than SGBM with its LR check runs:
    # every frame is either processed or counted as dropped, and the hand-over never holds more than one.
    video = side_by_side_video(tmp_path / "sbs.mp4", 4, repeat=6)
    summary = run_stream(sources.open_source([str(video)]), sgbm(), StreamOptions(latest_frame_wins=True))
    assert summary.frames_captured == 24
    assert summary.frames_processed + summary.frames_dropped == 24
    assert summary.buffer_high_water == 1


def test_results_are_in_source_pixels_through_a_smaller_engine_size(tmp_path):
    # SGBM runs on the frame shrunk to a fixed 64x96 "engine" size; the loop hands back
    # disparity in source pixels and depth from it.
    frames = [np.hstack([s.left, s.right]) for s in scenes(2, 96, 128)]
    from stream_media import write_video

    video = write_video(tmp_path / "big.mp4", frames)
    runner = sgbm()
    runner.input_hw = (64, 96)
    results = []
    converter = DepthConverter.from_focal_baseline(200.0, 0.1)
    options = StreamOptions(depth=converter, on_result=results.append)
    run_stream(sources.open_source([str(video)]), runner, options)
    truth = scenes(2, 96, 128)
    assert len(results) == 2
    for result, scene in zip(results, truth):
        assert result.disparity.shape == (96, 128)
        good = result.valid & scene.valid & (result.confidence > 0)
        assert good.sum() > 500
        error = np.median(np.abs(result.disparity[good] - scene.disparity[good]))
        assert error < 0.6, f"median disparity error {error:.2f} px"
        assert np.allclose(result.depth[good], 200.0 * 0.1 / result.disparity[good], rtol=1e-5)


def test_min_confidence_masks_pixels_and_recording_keeps_every_frame(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 3)
    results = []
    recorder = VideoRecorder(tmp_path / "out" / "view.mp4", 10.0, {"backend": "sgbm"})
    options = StreamOptions(min_confidence=0.5, mask_invalid=False, on_result=results.append)
    summary = run_stream(sources.open_source([str(video)]), sgbm(), options, [recorder])
    assert all(np.array_equal(r.valid, np.isfinite(r.disparity) & (r.confidence >= 0.5)) for r in results)
    assert all((~r.valid).any() for r in results)  # SGBM's LR check always rejects some pixels
    assert count_frames(tmp_path / "out" / "view.mp4") == summary.frames_processed == 3
    assert (tmp_path / "out" / "view.mp4.json").is_file()


def test_max_frames_and_a_sink_that_quits(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 3, repeat=3)
    summary = run_stream(sources.open_source([str(video)]), sgbm(), StreamOptions(max_frames=4))
    assert summary.stop_reason == "max frames" and summary.frames_processed == 4
    sink = Collect(stop_after=2)
    summary = run_stream(sources.open_source([str(video)]), sgbm(), StreamOptions(), [sink])
    assert summary.stop_reason == "quit" and summary.frames_processed == 2 and sink.closed


def test_a_source_error_mid_run_surfaces_and_still_finalises_the_recording(tmp_path):
    # Two videos whose sizes differ: the pair source fails at its first frame; the error
    # reaches the caller as the one-line InputError, and the recorder is closed (no file, no temp).
    left, right = two_videos(tmp_path, 2, right_size=(HEIGHT, WIDTH + 32))
    recorder = VideoRecorder(tmp_path / "rec.mp4", 10.0)
    with pytest.raises(InputError, match="left and right must have one size"):
        run_stream(sources.open_source([str(left), str(right)]), sgbm(), StreamOptions(), [recorder])
    assert not (tmp_path / "rec.mp4").exists() and not list(tmp_path.glob(".rec*"))


class BrokenModel(Runner):
    """A runner whose model cannot load, as a corrupt engine would fail."""

    name = "broken"

    def activate_impl(self):
        raise ModelError("model.engine: not a TensorRT engine")

    def infer_impl(self, feed):
        raise AssertionError("never reached")


def test_a_model_that_does_not_load_fails_before_the_source_opens(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    source = sources.open_source([str(video)])
    with pytest.raises(ModelError, match="not a TensorRT engine"):
        run_stream(source, BrokenModel())
    assert source.captures[0].cap is None  # never opened


class ThreadRecordingRunner(SGBMRunner):
    """SGBM that notes which thread activates, infers and deactivates it."""

    def activate_impl(self):
        self.threads = {"activate": threading.get_ident()}
        super().activate_impl()

    def infer_impl(self, feed):
        self.threads["infer"] = threading.get_ident()
        return super().infer_impl(feed)

    def deactivate_impl(self):
        self.threads["deactivate"] = threading.get_ident()
        super().deactivate_impl()


def test_an_inactive_runner_lives_on_one_thread(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 2)
    runner = ThreadRecordingRunner(max_disp=SGBM_RANGE)
    run_stream(sources.open_source([str(video)]), runner)
    assert len(set(runner.threads.values())) == 1
    assert runner.threads["infer"] != threading.get_ident()
    assert not runner.is_active


def test_status_lines_come_at_the_requested_rate(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 3)
    lines = []
    run_stream(sources.open_source([str(video)]), sgbm(), StreamOptions(status_every_s=0.0, on_status=lines.append))
    assert len(lines) == 3 and lines[-1].startswith("frame 3: ") and "FPS" in lines[-1] and "dropped 0" in lines[-1]


def test_overlay_colorbar_and_range():
    bar = overlay.colorbar(64, 0.0, 24.0, "disp [px]", near_is_high=True)
    assert bar.shape == (64, overlay.BAR_WIDTH, 3)
    top, bottom = bar[21, 14], bar[40, 14]
    assert top[0] > top[2] and bottom[2] > bottom[0]  # warm (red) at the near end on top
    values = np.array([[1.0, 2.0], [3.0, np.nan]], np.float32)
    rng = overlay.ValueRange()
    low, high = rng.update(values, np.isfinite(values))
    assert 1.0 <= low < high <= 3.0
    fixed = overlay.ValueRange(0.0, 10.0, fixed=True)
    assert fixed.update(values, np.isfinite(values)) == (0.0, 10.0)
    colored = overlay.colorize_map(values, np.isfinite(values), 0.0, 3.0, near_is_high=False)
    assert colored[1, 1].tolist() == [0, 0, 0]
    assert cv2.cvtColor(colored, cv2.COLOR_RGB2GRAY).shape == (2, 2)
