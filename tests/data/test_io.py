import numpy as np
import pytest

from toolkit.data import io
from toolkit.errors import InputError


def test_pfm_round_trip_keeps_orientation_and_inf(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    data[0, 0] = np.inf
    io.write_pfm(tmp_path / "d.pfm", data)
    back = io.read_pfm(tmp_path / "d.pfm")
    np.testing.assert_array_equal(back, data)


def test_kitti_png_encodes_x256_with_zero_invalid(tmp_path):
    disparity = np.array([[1.5, 0.0], [np.nan, 200.25]], dtype=np.float32)
    io.write_disparity_png(tmp_path / "d.png", disparity)
    back, valid = io.read_disparity(tmp_path / "d.png")
    assert valid.tolist() == [[True, False], [False, True]]
    np.testing.assert_allclose(back[valid], [1.5, 200.25])


def test_instereo2k_scale_reads_x100(tmp_path):
    io.write_disparity_png(tmp_path / "d.png", np.full((2, 2), 12.34, np.float32), scale=io.INSTEREO2K_SCALE)
    back, _ = io.read_disparity(tmp_path / "d.png", scale=io.INSTEREO2K_SCALE)
    np.testing.assert_allclose(back, 12.34, atol=0.005)


def test_read_image_returns_rgb(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 200
    io.write_image(tmp_path / "a.png", image)
    assert io.read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]


def test_missing_and_unreadable_images_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such image"):
        io.read_image(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        io.read_image(tmp_path / "junk.png")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(InputError):
        io.write_image(tmp_path / "x.unknownext", np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_colorize_blacks_out_invalid():
    values = np.array([[1.0, 2.0], [3.0, np.inf]], dtype=np.float32)
    rgb = io.colorize(values)
    assert rgb.shape == (2, 2, 3) and rgb[1, 1].tolist() == [0, 0, 0]
