import json

import cv2
import pytest

from toolkit import demo
from toolkit.model import StudentConfig, build_student, save_student


def test_builtin_clip_pans_a_rectified_window_with_ground_truth():
    clip = demo.builtin_clip(frames=3, size=(96, 128))
    assert len(clip) == 3
    assert clip[0].left.shape == (96, 128, 3) and clip[0].disparity.shape == (96, 128)
    assert (clip[0].left != clip[-1].left).any()  # the window moves
    assert clip[0].valid.any()


@pytest.mark.slow
def test_demo_streams_the_clip_and_writes_video_panel_and_report(tmp_path):
    checkpoint = tmp_path / "tiny.pth"
    config = StudentConfig(iters=2)
    save_student(checkpoint, build_student(config, seed=0), config, {"note": "seeded init for the demo test"})
    result = demo.run_demo(out_dir=tmp_path / "out", engines_dir=tmp_path / "engines", checkpoint=checkpoint,
                           frames=2, size=(96, 128), backend="onnxruntime", log=lambda text: None)
    assert result.summary.frames_processed == 2
    assert result.epe_vs_reference < 0.01  # ONNX Runtime reproduces the PyTorch reference
    capture = cv2.VideoCapture(str(result.video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    assert cv2.imread(str(result.panel)).shape == (96, 3 * 128, 3)
    report = json.loads(result.report.read_text())
    assert report["frames"] == 2 and report["checkpoint_sha256"]
    # A second run reuses the exported ONNX instead of exporting again.
    messages = []
    demo.run_demo(out_dir=tmp_path / "out", engines_dir=tmp_path / "engines", checkpoint=checkpoint,
                  frames=1, size=(96, 128), backend="onnxruntime", log=messages.append)
    assert any(message.startswith("reusing") for message in messages)
