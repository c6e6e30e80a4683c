"""Stereo sources: parsing, side-by-side split, videos, image folders, and their errors.

No camera exists here; camera code is tested where it is a pure function (pipeline
strings, the split, time pairing, backoff) and where failing is the true behaviour here
(a camera index that does not open, a pipeline on an OpenCV without GStreamer).
"""

from __future__ import annotations

import numpy as np
import pytest

from stream_media import HEIGHT, WIDTH, pair_folder, scenes, side_by_side_video, two_videos
from toolkit.errors import DependencyError, InputError
from toolkit.stream import sources

NO_SUCH_CAMERA = "63"  # /dev/video63: far above any index a test machine has


def read_all(source: sources.StereoSource) -> list[sources.StereoFrame]:
    frames = []
    with source:
        while True:
            frame = source.read()
            if frame is None:
                return frames
            frames.append(frame)


@pytest.mark.parametrize("text, kind, target", [
    ("0", "camera", 0),
    ("12", "camera", 12),
    ("/dev/video2", "camera", "/dev/video2"),
    ("csi:1", "csi", 1),
    ("gst:videotestsrc ! appsink", "gstreamer", "videotestsrc ! appsink"),
    ("v4l2src device=/dev/video0 ! videoconvert ! appsink", "gstreamer",
     "v4l2src device=/dev/video0 ! videoconvert ! appsink"),
])
def test_parse_source_kinds(text, kind, target):
    spec = sources.parse_source(text)
    assert (spec.kind, spec.target) == (kind, target)
    assert spec.live


def test_parse_source_files_and_folders(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    assert sources.parse_source(str(video)).kind == "video"
    assert sources.parse_source(str(tmp_path)).kind == "folder"
    assert not sources.parse_source(str(video)).live
    with pytest.raises(InputError, match=r"--source .*missing.mp4: no such file or folder"):
        sources.parse_source(str(tmp_path / "missing.mp4"))


def test_csi_pipeline_preset():
    pipeline = sources.csi_pipeline(1, 1920, 1080, 30)
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=1920,height=1080,framerate=30/1" in pipeline
    assert "nvvidconv flip-method=0" in pipeline
    assert pipeline.endswith("appsink drop=true max-buffers=1 sync=false")
    assert "format=BGR !" in pipeline  # what cv2.VideoCapture delivers without conversion


def test_gstreamer_detection_reads_the_build_information():
    assert sources.gstreamer_available("  Video I/O:\n    GStreamer:                   YES (1.20.3)\n")
    assert not sources.gstreamer_available("  Video I/O:\n    GStreamer:                   NO\n")
    assert not sources.gstreamer_available("no video i/o section at all")


@pytest.mark.skipif(sources.gstreamer_available(), reason="this OpenCV has GStreamer; the refusal cannot happen")
@pytest.mark.parametrize("text", ["csi:0", "gst:videotestsrc ! appsink"])
def test_pipeline_sources_are_refused_without_gstreamer(text):
    with pytest.raises(DependencyError, match=r"built without GStreamer.*JetPack's OpenCV"):
        sources.open_source([text]).open()


def test_split_side_by_side_even_and_odd_widths():
    frame = np.arange(4 * 21 * 3, dtype=np.uint8).reshape(4, 21, 3)
    left, right = sources.split_side_by_side(frame)
    assert left.shape == right.shape == (4, 10, 3)
    assert np.array_equal(left, frame[:, :10]) and np.array_equal(right, frame[:, 10:20])
    with pytest.raises(InputError, match="too narrow"):
        sources.split_side_by_side(np.zeros((4, 10, 3), np.uint8))


def test_time_pairing_and_backoff_are_pure_policies():
    assert sources.lagging_side(0.000, 0.005, 0.010) is None
    assert sources.lagging_side(0.000, 0.030, 0.010) == "left"
    assert sources.lagging_side(0.030, 0.000, 0.010) == "right"
    assert sources.backoff_delays(5, 0.5, 2.0, 4.0) == (0.5, 1.0, 2.0, 4.0, 4.0)


def test_a_camera_that_does_not_open_is_a_clear_error():
    with pytest.raises(InputError, match=r"--source 63: camera 63 did not open"):
        sources.open_source([NO_SUCH_CAMERA]).open()
    with pytest.raises(InputError, match=r"camera /dev/video63 did not open"):
        sources.open_source(["/dev/video63"]).open()


def test_reconnect_gives_up_after_its_attempts():
    waits = []
    capture = sources.Capture(sources.parse_source(NO_SUCH_CAMERA))
    assert not sources.reopen_with_backoff([capture], (0.0, 0.0, 0.0), sleep=waits.append)
    assert waits == [0.0, 0.0, 0.0]


def test_side_by_side_video_delivers_every_frame_split(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 3, repeat=2)
    frames = read_all(sources.open_source([str(video)]))
    assert [f.index for f in frames] == list(range(6))
    assert all(f.left.shape == f.right.shape == (HEIGHT, WIDTH, 3) and f.left.dtype == np.uint8 for f in frames)
    expected = scenes(1)[0]
    # mp4v is lossy: compare the decoded halves loosely with what was written
    assert np.abs(frames[0].left.astype(int) - expected.left).mean() < 12
    assert np.abs(frames[0].right.astype(int) - expected.right).mean() < 12


def test_swap_exchanges_the_views(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    plain = read_all(sources.open_source([str(video)]))[0]
    swapped = read_all(sources.open_source([str(video)], swap=True))[0]
    assert np.array_equal(plain.left, swapped.right) and np.array_equal(plain.right, swapped.left)


def test_two_videos_pair_frame_by_frame(tmp_path):
    left, right = two_videos(tmp_path, 4)
    source = sources.open_source([str(left), str(right)])
    assert isinstance(source, sources.PairSource) and not source.live
    frames = read_all(source)
    assert len(frames) == 4
    assert frames[0].left.shape == (HEIGHT, WIDTH, 3)
    assert np.abs(frames[2].right.astype(int) - scenes(3)[2].right).mean() < 12


def test_two_videos_of_different_sizes_are_refused(tmp_path):
    left, right = two_videos(tmp_path, 2, right_size=(HEIGHT, WIDTH + 32))
    with pytest.raises(InputError, match=r"gives 96x64 frames but .*right.mp4 gives 128x64"):
        read_all(sources.open_source([str(left), str(right)]))


def test_image_folder_source(tmp_path):
    folder = pair_folder(tmp_path / "pairs", 3)
    frames = read_all(sources.open_source([str(folder)]))
    assert len(frames) == 3
    assert np.array_equal(frames[1].left, scenes(2)[1].left)  # PNG is lossless


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no stereo pairs found"):
        sources.open_source([str(tmp_path / "empty")]).open()


def test_unreadable_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(InputError, match=r"--source .*broken.mp4: OpenCV cannot decode this file"):
        sources.open_source([str(bad)]).open()


def test_source_count_and_mixing_errors(tmp_path):
    video = side_by_side_video(tmp_path / "sbs.mp4", 1)
    with pytest.raises(InputError, match="given 3 times"):
        sources.open_source([str(video)] * 3)
    with pytest.raises(InputError, match="a folder of pairs is one source on its own"):
        sources.open_source([str(tmp_path), str(video)])
    with pytest.raises(InputError, match="pair two cameras or two files"):
        sources.open_source([NO_SUCH_CAMERA, str(video)])
