"""The ``npr`` family: its compiled kernel against its array code (the oracle) on
random, smooth, constant, saturating, odd and tiny images, and what its columns
mean on images whose differences are known."""
import numpy as np
import pytest
from _images import random_image, smooth_image

import ffeat
from ffeat import Npr
from ffeat.models._persist import families_from
from ffeat.families import (CHANNELS, NPR_DIRECTIONS, compute_families, describe_features,
                            resolve_features)

rng = np.random.default_rng(20261130)

CONFIGS = [Npr(), Npr(channels=("Y",), T=1), Npr(channels=("R", "G", "B"), T=16)]
SHAPES = [(64, 64), (33, 47), (100, 37), (256, 256), (1, 1), (1, 9), (9, 1), (2, 2), (3, 3),
          (2, 5)]


def _random(shape):
    return random_image(rng, shape)


def _smooth(shape):
    return smooth_image(rng, shape)


def _check(family, image):
    got = family.compute(image)
    assert got.shape == (1, len(family.feature_names())) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], compute_families(np, image[None], [family])[0],
                               rtol=1e-6, atol=1e-7)
    return got[0]


def _groups(family, row):
    """Row as (channel, direction, phase, statistic)."""
    return row.reshape(len(family.channels), len(NPR_DIRECTIONS), 4, 2 * family.T + 3)


@pytest.mark.parametrize("family", CONFIGS, ids=repr)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_images_match_the_array_code(family, shape):
    _check(family, _random(shape))


@pytest.mark.parametrize("family", CONFIGS, ids=repr)
def test_smooth_and_saturating_images_match_the_array_code(family):
    _check(family, _smooth((45, 70)))
    y, x = np.mgrid[:50, :67]
    _check(family, np.repeat(((x + y) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2))


@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_image_has_only_zero_differences(value):
    family = Npr()
    groups = _groups(family, _check(family, np.full((31, 20, 3), value, np.uint8)))
    assert np.all(groups[..., :2] == 0)
    assert np.all(groups[..., 2 + family.T] == 1)  # the level-0 bin


def test_nearest_upsampled_image_has_zero_differences_inside_its_blocks():
    """x - up_nearest(down_nearest(x)) is zero: within each 2x2 block, the right,
    lower and diagonal neighbours of the top-left pixel (phase 00) equal it, and
    so do the lower neighbours of phase 01 and the right ones of phase 10; the
    pairs that cross block borders differ."""
    small = _random((20, 24))
    family = Npr(channels=("R", "G", "B"))
    groups = _groups(family, _check(family, small.repeat(2, axis=0).repeat(2, axis=1)))
    mean_abs = groups[..., 0]  # (channel, direction h/v/d, phase 00/01/10/11)
    inside = {("h", 0), ("h", 2), ("v", 0), ("v", 1), ("d", 0)}
    for d, name in enumerate(NPR_DIRECTIONS):
        for phase in range(4):
            if (name, phase) in inside:
                assert np.all(mean_abs[:, d, phase] == 0), (name, phase)
            else:
                assert np.all(mean_abs[:, d, phase] > 10), (name, phase)


def test_values_on_a_hand_computed_image():
    """One grey 2x3 image: Y differences in levels, by direction and phase."""
    grey = np.array([[0, 1, 3], [5, 5, 5]], np.uint8)
    family = Npr(channels=("Y",), T=2)
    groups = _groups(family, _check(family, np.repeat(grey[..., None], 3, axis=2)))[0]
    # h: phase 00 (0,0)->(0,1) = 1; 01 (0,1)->(0,2) = 2; 10 and 11 = 0.
    np.testing.assert_allclose(groups[0, :, :2], [[1, 1], [2, 2], [0, 0], [0, 0]])
    np.testing.assert_allclose(groups[0, 1, 2:], [0, 0, 0, 0, 1])  # level 2
    # v: 00 = 5 and 2, 01 = 4 (clipped to level 2 in the histogram), 10 and 11 none.
    np.testing.assert_allclose(groups[1, :, :2], [[3.5, 14.5 ** 0.5], [4, 4], [0, 0], [0, 0]],
                               rtol=1e-6)
    np.testing.assert_allclose(groups[1, 1, 2:], [0, 0, 0, 0, 1])
    # d: 00 (0,0)->(1,1) = 5, 01 (0,1)->(1,2) = 4.
    np.testing.assert_allclose(groups[2, :2, :2], [[5, 5], [4, 4]])


def test_rounding_of_half_levels_and_negative_differences():
    """Levels are floor(D + 1/2), D in 1/256 level: 0.5 -> 1, -0.504 -> -1."""
    family = Npr(channels=("Cb",), T=3)
    w = np.array(CHANNELS["Cb"]) / 256
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 1] = (0, 0, 1)  # Cb difference +0.5 level
    row = _groups(family, _check(family, image))[0]
    assert row[0, 0, 2 + 3 + 1] == 1 and w[2] == 0.5
    image[0, 1] = (3, 0, 0)  # -43 * 3 / 256 = -0.504 -> level -1
    assert _groups(family, _check(family, image))[0][0, 0, 2 + 3 - 1] == 1


def test_images_one_pixel_high_have_no_vertical_groups():
    family = Npr()
    groups = _groups(family, _check(family, _random((1, 40))))
    assert np.all(groups[:, 1:] == 0)  # v and d: no pairs
    assert np.all(groups[:, 0, :2, 2:].sum(axis=-1) == pytest.approx(1))  # h frequencies


def test_batch_and_threads_match_single_images():
    family = Npr()
    batch = np.stack([_random((41, 38)) for _ in range(5)])
    singles = np.vstack([family.compute(im) for im in batch])
    np.testing.assert_array_equal(family.compute(batch, n_threads=1), singles)
    np.testing.assert_array_equal(family.compute(batch, n_threads=3), singles)


def test_names_groups_and_registry():
    family = Npr()
    names = family.feature_names()
    assert len(names) == 3 * 3 * 4 * 9 == len(set(names))
    assert names[0] == "npr_Y_h_00_mean_abs" and names[-1] == "npr_Cr_d_11_hist(3)"
    labels, widths = zip(*family.column_groups())
    assert len(set(labels)) == 9 and sum(widths) == len(names)
    assert resolve_features("npr") == (Npr(),)
    configured = (Npr(channels=("Y", "Cr"), T=5),)
    assert families_from(describe_features(configured), "model.npz") == configured
    rows = ffeat.extract(_random((30, 30))[None], features=("lbp", "npr"))
    assert rows.X.shape[1] == len(ffeat.Lbp().feature_names()) + len(names)


@pytest.mark.parametrize("bad", [dict(T=0), dict(T=17), dict(T=2.5), dict(T=True),
                                 dict(channels=()), dict(channels=("X",)),
                                 dict(channels=("Y", "Y"))])
def test_config_is_validated(bad):
    with pytest.raises(ValueError, match="npr"):
        Npr(**bad)


def test_kernel_refuses_bad_arrays():
    with pytest.raises(ValueError, match="uint8 RGB"):
        Npr().compute(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        Npr().compute(np.zeros((4, 4, 3), np.float32))


def test_cupy_array_code_matches_numpy():
    """The GPU path (the same array code on CuPy), where a CUDA device is found."""
    cp = pytest.importorskip("cupy")
    try:
        cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError:
        pytest.skip("no CUDA device")
    batch = np.stack([_random((33, 47)) for _ in range(3)])
    family = Npr()
    np.testing.assert_allclose(compute_families(cp, cp.asarray(batch), [family]),
                               compute_families(np, batch, [family]), rtol=1e-6, atol=1e-7)
