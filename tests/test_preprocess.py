import numpy as np
import pytest

from toolkit import preprocess
from toolkit.errors import InputError


def test_pad_to_multiple_and_crop_round_trip_is_exact():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 75, 3), dtype=np.uint8)
    prepared = preprocess.prepare_pair(image, image)
    assert prepared.feed["left"].shape == (1, 3, 64, 96)
    assert prepared.geometry.pad == (7, 7, 10, 11)
    restored = preprocess.crop_to_source(prepared.feed["left"][0, 0], prepared.geometry)
    np.testing.assert_array_equal(restored, image[:, :, 0].astype(np.float32))


def test_feed_is_rgb_0_255_float32_nchw_without_normalisation():
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[..., 0] = 255  # pure red
    feed = preprocess.prepare_pair(image, image).feed
    assert feed["left"].dtype == np.float32
    assert feed["left"][0, 0].max() == 255.0 and feed["left"][0, 1].max() == 0.0


def test_resize_keeps_aspect_and_scales_disparity_back_to_source_pixels():
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    geometry = preprocess.prepare_pair(image, image, size=(96, 160)).geometry
    assert geometry.resized_hw == (96, 128)
    assert geometry.pad == (0, 0, 16, 16)
    grid = np.full(geometry.padded_hw, 10.0, dtype=np.float32)
    disparity = preprocess.restore_disparity(grid, geometry)
    assert disparity.shape == (240, 320)
    np.testing.assert_allclose(disparity, 25.0)  # 10 px on a 128-wide grid is 25 px at 320


def test_grayscale_rgba_and_16bit_are_accepted():
    gray = np.full((40, 40), 128, dtype=np.uint8)
    rgba = np.full((40, 40, 4), 128, dtype=np.uint8)
    deep = np.full((40, 40, 3), 128 << 8, dtype=np.uint16)
    feeds = [preprocess.prepare_pair(x, x).feed["left"] for x in (gray, rgba, deep)]
    for feed in feeds:
        assert feed.shape == (1, 3, 64, 64)
        assert np.all(feed == 128.0)


@pytest.mark.parametrize(
    "left,right,message",
    [
        (np.zeros((40, 40, 3), np.uint8), np.zeros((40, 48, 3), np.uint8), "differ in size"),
        (np.zeros((40, 40, 3), np.float32), np.zeros((40, 40, 3), np.float32), "8- or 16-bit"),
        (np.zeros((40, 40, 2), np.uint8), np.zeros((40, 40, 2), np.uint8), "grayscale, RGB or RGBA"),
    ],
)
def test_bad_pairs_raise_one_line_input_errors(left, right, message):
    with pytest.raises(InputError, match=message) as info:
        preprocess.prepare_pair(left, right)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["480x641", "abc", "480"])
def test_parse_size_rejects_bad_sizes(text):
    with pytest.raises(InputError, match="--size"):
        preprocess.parse_size(text)


def test_parse_size_accepts_multiples_of_32():
    assert preprocess.parse_size("480x640") == (480, 640)
    assert preprocess.parse_size(None) is None
