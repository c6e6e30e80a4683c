import cv2
import numpy as np
import pytest

from toolkit.data import io, synthetic
from toolkit.data.synthetic import make_scene, write_instereo2k_tree

H, W, MAX_DISP = 64, 128, 32


def warp_error(scene, shift=0.0):
    """Mean abs difference between the left image and the right image warped by disparity + shift."""
    xs = np.arange(W, dtype=np.float32)[None, :] - scene.disparity - np.float32(shift)
    ys = np.repeat(np.arange(H, dtype=np.float32)[:, None], W, axis=1)
    warped = cv2.remap(scene.right.astype(np.float32), xs, ys, cv2.INTER_LINEAR)
    error = np.abs(warped - scene.left.astype(np.float32)).mean(axis=2)
    return float(error[scene.valid].mean())


def test_same_seed_same_scene_and_different_seed_different_scene():
    a, b, c = make_scene(3, H, W, MAX_DISP), make_scene(3, H, W, MAX_DISP), make_scene(4, H, W, MAX_DISP)
    for field in ("left", "right", "disparity", "valid", "right_disparity", "right_valid"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert not np.array_equal(a.left, c.left)
    assert not np.array_equal(a.disparity, c.disparity)


def test_arrays_have_the_documented_types():
    scene = make_scene(0, H, W, MAX_DISP)
    assert scene.left.shape == scene.right.shape == (H, W, 3)
    assert scene.left.dtype == scene.right.dtype == np.uint8
    assert scene.disparity.shape == scene.valid.shape == (H, W)
    assert scene.disparity.dtype == np.float32 and scene.valid.dtype == bool
    assert 0.3 < scene.valid.mean() < 1.0  # some occlusion, mostly visible


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_warping_right_by_disparity_reproduces_left(seed):
    scene = make_scene(seed, H, W, MAX_DISP, jitter=False)
    exact = warp_error(scene)
    # what is left is uint8 rounding and the second bilinear resampling of the warp;
    # a disparity off by one pixel (or half a pixel) must be clearly worse than the truth
    assert exact < 1.2
    assert warp_error(scene, 1.0) > 2.5 * exact
    assert warp_error(scene, 0.5) > 1.5 * exact


def test_warp_with_photometric_jitter_stays_close():
    scene = make_scene(1, H, W, MAX_DISP)
    assert warp_error(scene) < 15.0
    assert warp_error(scene, 2.0) > warp_error(scene)


def test_right_disparity_is_consistent_with_left():
    scene = make_scene(2, H, W, MAX_DISP, jitter=False)
    ys, xs = np.nonzero(scene.valid)
    x_right = np.round(xs - scene.disparity[ys, xs]).astype(int)
    # at the nearest right pixel the right-view disparity differs only by the surface slope
    gap = np.abs(scene.right_disparity[ys, x_right] - scene.disparity[ys, xs])
    assert np.median(gap) < 0.2 and np.percentile(gap, 95) < 0.5


def test_disparities_stay_positive_and_below_max_disp_and_use_the_range():
    tops = []
    for seed in range(24):
        scene = make_scene(seed, H, W, MAX_DISP)
        assert scene.disparity.min() > 0 and scene.disparity.max() < MAX_DISP
        assert scene.right_disparity.min() > 0 and scene.right_disparity.max() < MAX_DISP
        tops.append(scene.disparity.max() / MAX_DISP)
    assert np.mean(np.array(tops) > 0.5) > 0.5  # most scenes reach past half the range
    assert min(tops) < 0.5  # and some stay small


def test_instereo2k_tree_layout_and_encoding(tmp_path):
    root = write_instereo2k_tree(tmp_path / "is2k", n_train_parts=2, pairs_per_part=1, n_test=1,
                                 size=(H, W), seed=7, max_disp=MAX_DISP)
    pairs = sorted(p.parent for p in root.rglob("left.png"))
    assert [p.relative_to(root).parent.as_posix() for p in pairs] == ["test", "train/part1", "train/part2"]
    for pair in pairs:
        assert {f.name for f in pair.iterdir()} == {"left.png", "right.png", "left_disp.png", "right_disp.png"}
    encoded = cv2.imread(str(root / "train/part1/000000/left_disp.png"), cv2.IMREAD_UNCHANGED)
    assert encoded.dtype == np.uint16
    scene = make_scene(7, H, W, MAX_DISP)
    disparity, valid = io.read_disparity(root / "train/part1/000000/left_disp.png", io.INSTEREO2K_SCALE)
    assert np.array_equal(valid, scene.valid)
    assert np.abs(disparity[valid] - scene.disparity[valid]).max() <= 0.005 + 1e-6
    assert np.array_equal(io.read_image(root / "train/part1/000000/left.png"), scene.left)


def test_photo_textured_scenes_are_deterministic_and_geometrically_exact():
    from toolkit.data.photos import PHOTO_NAMES, bundled_photos

    assert "stereo_motorcycle" not in PHOTO_NAMES  # the evaluation pair never textures training scenes
    photos = bundled_photos()
    a, b = make_scene(7, H, W, MAX_DISP, jitter=False, photos=photos), make_scene(7, H, W, MAX_DISP, jitter=False, photos=photos)
    assert np.array_equal(a.left, b.left) and np.array_equal(a.disparity, b.disparity)
    plain = make_scene(7, H, W, MAX_DISP, jitter=False)
    assert np.array_equal(a.disparity, plain.disparity) and not np.array_equal(a.left, plain.left)
    assert warp_error(a) < 0.5 * warp_error(a, shift=1.0)


ALL = synthetic.HARD_CASES
NO_GLINTS = tuple(kind for kind in ALL if kind != "glints")


def hard_scene(seed, kinds=ALL, **kwargs):
    return make_scene(seed, H, W, MAX_DISP, hard_cases=kinds, **kwargs)


def test_hard_cases_are_deterministic_and_leave_plain_scenes_as_they_were():
    a, b = hard_scene(11), hard_scene(11)
    for field in ("left", "right", "disparity", "valid"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    plain = make_scene(11, H, W, MAX_DISP)
    assert not np.array_equal(a.disparity, plain.disparity)
    # the extras only ever come in front: wherever the plain scene's surface still shows, its disparity is kept
    kept = a.disparity == plain.disparity
    assert kept.mean() > 0.3 and np.all(a.disparity[~kept] > plain.disparity[~kept])


def test_a_selection_of_hard_cases_keeps_the_same_extras_and_unknown_names_are_refused():
    for seed in range(4):
        assert np.array_equal(hard_scene(seed, ("thin", "curved")).disparity, hard_scene(seed).disparity)
        assert np.array_equal(hard_scene(seed, ("tiled", "flat")).disparity, make_scene(seed, H, W, MAX_DISP).disparity)
    with pytest.raises(ValueError, match="unknown hard cases"):
        hard_scene(0, ("thin", "shiny"))


@pytest.mark.parametrize("seed", range(6))
def test_hard_case_geometry_stays_exact_without_glints(seed):
    scene = hard_scene(seed, NO_GLINTS, jitter=False)
    exact = warp_error(scene)
    assert exact < 1.5
    assert warp_error(scene, 1.0) > 2.0 * exact
    assert scene.disparity.min() > 0 and scene.disparity.max() < MAX_DISP


def test_glints_move_between_the_views_and_leave_the_disparity_alone():
    moved = 0
    for seed in range(24):
        with_glints, without = hard_scene(seed, jitter=False), hard_scene(seed, NO_GLINTS, jitter=False)
        assert np.array_equal(with_glints.disparity, without.disparity)
        moved += warp_error(with_glints) > warp_error(without) + 0.05
    assert moved >= 3


def test_hard_cases_add_what_plain_scenes_lack():
    rng = np.random.default_rng(0)
    thin = curved = steep = tiled = flat = 0
    for _ in range(40):
        base = synthetic._surfaces(rng, 256, 512, 96.0, (300, 700))
        surfaces = synthetic._hard_cases(rng, base, 256, 512, (300, 700), ALL)
        extra = surfaces[len(base):]
        thin += any(s.kind == "rect" and s.rect[3] <= 3.5 for s in extra)
        curved += any(s.kind == "rect" and s.h != 0 for s in extra)
        steep += any(abs(s.a) >= 0.6 * synthetic.MAX_X_SLOPE for s in extra)
        tiled += any(s.pattern is not None for s in surfaces)
        flat += any(s.colour[:, 3].sum() == 0 and np.abs(s.colour[:, :3]).max() <= 2.0 for s in surfaces)
        for s in surfaces:  # no surface folds in the right view
            xs = np.linspace(s.bbox[0], s.bbox[1], 64)[None, :]
            ys = np.linspace(s.bbox[2], s.bbox[3], 64)[:, None]
            slope = np.abs(np.diff(s.disparity(xs, ys), axis=1) / np.diff(xs, axis=1))
            assert slope[s.covers(xs, ys)[:, 1:]].max(initial=0) < synthetic.MAX_X_SLOPE
    assert min(thin, curved, steep, tiled, flat) >= 4, (thin, curved, steep, tiled, flat)
