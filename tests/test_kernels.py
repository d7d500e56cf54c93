"""Compiled kernels against their oracle: each family's array code run with NumPy
(``compute_array``, the code the GPU backend runs), and for spectrum and residual
also against a plain reference that shares no table with the kernel."""
import numpy as np
import pytest
from _images import random_image, smooth_image

from ffeat import Gray, Hog, Lbp, Residual, Spectrum
from ffeat.families import CHANNELS, compute_families
from ffeat.families.residual import RESIDUAL_FILTERS, RESIDUAL_MARGIN
from ffeat.features import LBP_NEIGHBOURS, lbp_labels, radial_bins

FAMILIES = [
    Gray(), Gray(size=7), Gray(size=64),
    Spectrum(), Spectrum(n_bins=17), Spectrum(n_bins=128),
    Residual(), Residual(channels=("Y",)), Residual(channels=("R", "G", "B"), T=3, q=1.5),
    Residual(T=1, q=0.5),
    Hog(), Hog(cells=7), Hog(cells=5, orientations=4), Hog(cells=16, orientations=36),
    Lbp(), Lbp(cells=7), Lbp(cells=1),
]
SHAPES = [(64, 64), (33, 47), (100, 37), (32, 32), (80, 80), (160, 200), (256, 256),
          (41, 300)]

rng = np.random.default_rng(20261122)


def _random(shape):
    return random_image(rng, shape)


def _smooth(shape):
    return smooth_image(rng, shape)


def _checker(shape):
    """Alternating 0/255 pixels: every residual saturates."""
    y, x = np.mgrid[:shape[0], :shape[1]]
    return np.repeat(((x + y) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)


def _oracle(image, family):
    """The family's array code with NumPy on one image."""
    return compute_families(np, image[None], [family])[0]


# Plain references for the two families whose kernel and array code read the same
# precomputed tables: a wrong entry there would show identically in both and pass
# the oracle check. Spectrum: the half-spectrum layout (twin weights, Nyquist
# column, DC) of `spectrum._radial_layout` and the empty-bin filling; the reference
# takes the full float64 fft2 and averages every coefficient. Residual: the tap
# tables, divisors, scales and pairing directions of `residual._filter_bank`; the
# reference reads RESIDUAL_FILTERS and CHANNELS itself, in float64. (Replacing
# `weight[:, -1] = 1.0` by 2.0, or swapping the horizontal and vertical pairing
# bits, leaves kernel and oracle agreeing and fails these.)

def _spectrum_plain(rgb, family):
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    luma -= luma.mean()
    h, w = luma.shape
    power = np.abs(np.fft.fft2(luma, norm="ortho")) ** 2
    bins = radial_bins(h, w, family.n_bins).ravel()[1:]
    log_power = np.log(power.ravel() + family.eps)[1:]  # [0] is DC, left out
    counts = np.bincount(bins, minlength=family.n_bins)
    sums = np.bincount(bins, weights=log_power, minlength=family.n_bins)
    filled = counts > 0
    centres = np.arange(family.n_bins)
    return np.interp(centres, centres[filled], sums[filled] / counts[filled])


def _correlate_valid(plane, kernel, margin):
    h, w = plane.shape
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    out = np.zeros((h - 2 * margin, w - 2 * margin))
    for (i, j), v in np.ndenumerate(kernel):
        if v:
            dy, dx = i - ky, j - kx
            out += v * plane[margin + dy:h - margin + dy, margin + dx:w - margin + dx]
    return out


def _residual_plain(rgb, family):
    T, levels = family.T, 2 * family.T + 1
    features = []
    for channel in family.channels:
        plane = rgb.astype(np.int64) @ np.array(CHANNELS[channel])
        if channel in family.half_res:  # 2 x 2 block means, rounded half up
            h, w = plane.shape[0] // 2, plane.shape[1] // 2
            blocks = plane[:2 * h, :2 * w].reshape(h, 2, w, 2).sum(axis=(1, 3))
            plane = np.floor((blocks + 2) / 4)
        plane = plane.astype(np.float64)
        for kernel, denom, directional in RESIDUAL_FILTERS.values():
            oriented = [(kernel, "h"), (kernel.T, "v")] if directional else [(kernel, "hv")]
            counts = np.zeros(levels * levels)
            residuals = []
            for k, directions in oriented:
                raw = _correlate_valid(plane, k, RESIDUAL_MARGIN)  # exact integers
                residuals.append(raw / (denom * 256))
                q = np.clip(np.floor(raw / (denom * 256 * family.q) + 0.5), -T, T).astype(int)
                q += T
                for axis, d in ((1, "h"), (0, "v")):
                    if d in directions:
                        a, b = np.delete(q, -1, axis), np.delete(q, 0, axis)
                        counts += np.bincount((a * levels + b).ravel(), minlength=levels**2)
            r = np.concatenate([x.ravel() for x in residuals])
            m2 = np.mean(r**2)
            kurtosis = np.mean(r**4) / m2**2 if m2 > 0 else 0.0
            features += [counts / counts.sum(), [np.mean(np.abs(r)), np.sqrt(m2), kurtosis]]
    return np.concatenate(features)


PLAIN = {"spectrum": _spectrum_plain, "residual": _residual_plain}


def _check(family, image):
    got = family.compute(image)
    assert got.shape == (1, len(family.feature_names()))
    assert got.dtype == np.float32
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], _oracle(image, family), rtol=1e-5, atol=2e-5)
    if family.name in PLAIN:
        np.testing.assert_allclose(got[0], PLAIN[family.name](image, family), rtol=1e-5,
                                   atol=2e-5)


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_images_match_reference(family, shape):
    _check(family, _random(shape))


@pytest.mark.parametrize("family", [Residual(half_res=()), Residual(half_res=("Y", "Cb", "Cr")),
                                    Residual(channels=("R", "G", "B"), half_res=("G",), T=3)],
                         ids=repr)
@pytest.mark.parametrize("shape", [(64, 64), (33, 47), (41, 300), (12, 13)], ids=str)
def test_residual_planes_at_either_resolution_match_reference(family, shape):
    """Planes at full and half resolution (odd sides: the last row or column is left out
    of the halved plane) on random and smooth images. Its own draws: the shared ones of
    the tests above stay as they were."""
    draws = np.random.default_rng(sum(shape))
    _check(family, random_image(draws, shape))
    _check(family, smooth_image(draws, shape))


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("shape", [(64, 64), (45, 70)], ids=str)
def test_smooth_images_match_reference(family, shape):
    _check(family, _smooth(shape))


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_images_match_reference(family, value):
    _check(family, np.full((48, 40, 3), value, np.uint8))


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_saturating_checkerboard_matches_reference(family):
    _check(family, _checker((50, 66)))


def test_constant_image_residuals_are_all_zero():
    got = Residual(T=2).compute(np.full((40, 40, 3), 200, np.uint8))[0]
    per_group = got.reshape(3, 5, 25 + 3)
    centre = 12  # cell (0, 0) of the 5x5 co-occurrence matrix
    assert np.all(per_group[:, :, centre] == 1)
    assert np.all(per_group[:, :, 25:] == 0)


@pytest.mark.parametrize("family", [Gray(), Spectrum(), Residual(), Hog(), Lbp()], ids=repr)
def test_batch_and_threads_match_single_images(family):
    batch = np.stack([_random((72, 56)) for _ in range(5)])
    singles = np.vstack([family.compute(im) for im in batch])
    np.testing.assert_array_equal(family.compute(batch, n_threads=1), singles)
    np.testing.assert_array_equal(family.compute(batch, n_threads=3), singles)
    np.testing.assert_array_equal(family.compute(batch, n_threads=0), singles)


@pytest.mark.parametrize("family", [Gray(), Spectrum(), Residual(), Hog(), Lbp()], ids=repr)
def test_any_size_gives_the_same_length(family):
    lengths = {family.compute(_random(s)).shape[1] for s in SHAPES}
    assert lengths == {len(family.feature_names())}


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_column_groups_partition_the_columns(family):
    """Each family's groups are named once and cover its columns, none empty."""
    labels, widths = zip(*family.column_groups())
    assert len(set(labels)) == len(labels) and min(widths) >= 1
    assert sum(widths) == len(family.feature_names())


def test_residual_cooccurrences_are_distributions():
    got = Residual().compute(_random((64, 64)))[0].reshape(3, 5, 28)
    np.testing.assert_allclose(got[:, :, :25].sum(axis=2), 1.0, rtol=1e-6)


def test_halved_residual_planes_need_12_pixels():
    """Chroma at half resolution needs a 12 px image; luma alone still takes 6."""
    assert Residual(channels=("Y",)).compute(_random((6, 6))).shape == (1, 140)
    assert Residual().compute(_random((12, 12))).shape == (1, 420)
    for shape in [(11, 40), (40, 11)]:
        with pytest.raises(ValueError, match="too small .* at half resolution"):
            Residual().compute(_random(shape))
        with pytest.raises(ValueError, match="too small .* at half resolution"):
            compute_families(np, _random(shape)[None], [Residual()])


def test_model_files_from_before_half_res_keep_full_resolution_chroma():
    """A saved configuration without ``half_res`` (written before it existed) rebuilds
    the residual family the file's detector was trained with: every plane at full
    resolution."""
    from ffeat.families import describe_features
    from ffeat.models._persist import families_from
    saved = describe_features((Residual(),))
    assert saved[0]["half_res"] == ["Cb", "Cr"]
    assert families_from(saved, "model.npz") == (Residual(),)
    del saved[0]["half_res"]
    assert families_from(saved, "model.npz") == (Residual(half_res=()),)


def test_kernels_refuse_bad_arrays():
    with pytest.raises(ValueError, match="uint8 RGB"):
        Residual().compute(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        Spectrum().compute(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        Residual().compute(np.zeros((5, 64, 3), np.uint8))


@pytest.mark.parametrize("bad", [dict(T=0), dict(q=0.3), dict(channels=("X",)),
                                 dict(channels=()), dict(half_res=("Cb", "X"))])
def test_residual_config_is_validated(bad):
    with pytest.raises(ValueError, match="residual"):
        Residual(**bad)


@pytest.mark.parametrize("bad", [lambda: Gray(size=0), lambda: Spectrum(n_bins=2)])
def test_gray_and_spectrum_configs_are_validated(bad):
    with pytest.raises(ValueError, match="gray|spectrum"):
        bad()


# ----------------------------------------------------------------------- spectrum


def _ring_sums_float32_log(spec, bins, weight, n_bins, eps):
    """``radial_log_power`` with float32 ``np.log`` (correctly rounded or within an ulp)
    of float32 powers, summed in float64 per bin in order."""
    power = spec.real * spec.real + spec.imag * spec.imag + np.float32(eps)
    values = (weight * np.log(power.astype(np.float32))).astype(np.float64)
    return np.array([np.bincount(bins.ravel(), weights=v.ravel(), minlength=n_bins)
                     for v in values])


@pytest.mark.parametrize("eps", [0.01, 1e-30, 0.0])
def test_radial_log_power_takes_the_log_of_every_power(eps):
    """The vectorised log (``ffeat_log_power``) against float32 logs, on powers across the
    float range: zero, subnormal and huge ones (the logf fallback: -inf for a zero power
    with eps 0), ones on both sides of 1 and of sqrt(1/2), and random spectra."""
    from ffeat import _spectrum
    magnitudes = np.concatenate([
        [0.0, 1e-45, 1e-40, 1e-20, 0.7071067, 0.70710677, 0.7071068, 1.0, 1 + 2**-23,
         1 - 2**-24, 1e10, 1.8e19],
        np.exp(rng.uniform(-40, 40, 500))]).astype(np.float32)
    spec = np.sqrt(magnitudes).astype(np.complex64)
    spec = np.concatenate([spec, rng.normal(size=500).astype(np.float32)
                           + 1j * rng.normal(size=500).astype(np.float32)])
    spec = spec.astype(np.complex64)[None, None]
    bins = (np.arange(spec.shape[-1], dtype=np.int32) % 7)[None]
    weight = rng.uniform(0.5, 2, bins.shape).astype(np.float32)
    with np.errstate(divide="ignore"):
        want = _ring_sums_float32_log(spec[0], bins, weight, 7, eps)
        got = _spectrum.radial_log_power(spec, bins, weight, 7, eps)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Term by term: each weighted log within one float32 ulp of NumPy's.
    one = np.zeros((1, 1, 1), dtype=np.complex64)
    for z, w in zip(spec.ravel()[:50], weight.ravel()[:50]):
        one[0, 0, 0] = z
        with np.errstate(divide="ignore"):
            expected = np.float32(w) * np.log(np.float32(z.real * z.real + z.imag * z.imag
                                                         + np.float32(eps)))
            value = _spectrum.radial_log_power(one, np.zeros((1, 1), np.int32),
                                               np.full((1, 1), w, np.float32), 1, eps)[0, 0]
        if np.isfinite(expected):
            assert abs(value - expected) <= 2 * np.spacing(np.float32(abs(expected)))
        else:
            assert value == expected


def test_spectrum_kept_fft_output_is_per_thread_and_per_shape():
    """The FFT output each thread keeps for its next image (``spectrum._fft_buffer``):
    images of other sizes in turn, and the same images on several threads at once, give
    the features each image gives alone."""
    from concurrent.futures import ThreadPoolExecutor
    family = Spectrum()
    images = [_random(s) for s in [(64, 64), (33, 47), (64, 64), (100, 37)]] * 4
    alone = [family.compute(image) for image in images]
    for image, want in zip(images, alone):
        np.testing.assert_array_equal(family.compute(image), want)
    with ThreadPoolExecutor(4) as pool:
        for got, want in zip(pool.map(family.compute, images), alone):
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------- hog

TINY_SHAPES = [(1, 1), (2, 2), (3, 3), (2, 40), (40, 2), (5, 9), (20, 31), (31, 20),
               (300, 300)]


@pytest.mark.parametrize("family", [Hog(), Hog(cells=7, orientations=4), Lbp(), Lbp(cells=7)],
                         ids=repr)
@pytest.mark.parametrize("shape", TINY_SHAPES, ids=str)
def test_cell_grid_families_of_any_size_match_reference(family, shape):
    """Tiny images (no interior pixels under 3x3), fewer pixels than cells, non-square."""
    _check(family, _random(shape))


@pytest.mark.parametrize("family", [Hog(), Lbp()], ids=repr)
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 50), (50, 2)], ids=str)
def test_cell_grid_families_without_interior_pixels_are_all_zero(family, shape):
    got = family.compute(_random(shape))
    assert got.shape == (1, len(family.feature_names())) and not got.any()


@pytest.mark.parametrize("family", [Hog(), Lbp(radii=(1,))], ids=repr)
def test_cell_grid_cells_smaller_than_the_grid_stay_zero(family):
    got = family.compute(_random((10, 40)))[0].reshape(32, 32, -1)
    rows = np.arange(1, 9) * 32 // 10  # the cell rows of the interior pixels
    assert np.flatnonzero(got.any(axis=(1, 2))).tolist() == sorted(set(rows.tolist()))


@pytest.mark.parametrize("value", [0, 128, 255])
def test_hog_constant_image_is_all_zero(value):
    assert not Hog().compute(np.full((64, 64, 3), value, np.uint8)).any()


@pytest.mark.parametrize("orientations", [2, 4, 9, 36])
def test_hog_horizontal_ramp_is_all_in_bin_zero(orientations):
    ramp = np.repeat(np.repeat((np.arange(80) * 3).astype(np.uint8)[None, :], 48, 0)[..., None],
                     3, axis=2)
    got = Hog(cells=8, orientations=orientations).compute(ramp)[0].reshape(64, orientations)
    assert (got[:, 0] > 0).all() and not got[:, 1:].any()
    # A vertical ramp has gx = 0: all of it at pi / 2.
    got = Hog(cells=8, orientations=orientations).compute(np.ascontiguousarray(
        ramp.transpose(1, 0, 2)))[0].reshape(64, orientations)
    assert (got[:, orientations // 2] > 0).all()
    assert np.count_nonzero(got) == 64


def test_hog_cells_have_unit_norm_after_l2hys():
    got = Hog().compute(_smooth((256, 256)))[0].reshape(-1, 9).astype(np.float64)
    norms = np.linalg.norm(got, axis=1)
    assert (norms > 0).all()
    # eps**2 = 1e-6 against the clipped cell's squared norm (at least 0.2**2) leaves
    # it short of 1 by under 1e-6 / (2 * 0.04).
    np.testing.assert_allclose(norms, 1.0, atol=2e-5)


def test_hog_gradients_on_bin_edges_match_reference():
    """Diagonal and axis gradients lie exactly on inner bin edges for 4, 12 and 36
    orientations; the kernel decides those with atan2 like the oracle."""
    y, x = np.mgrid[:40, :40]
    images = [(x + y) * 3, (x - y) * 3 + 120, x * 5, y * 5, (x + 2 * y) * 2]
    for plane in images:
        image = np.repeat(plane.astype(np.uint8)[..., None], 3, axis=2)
        for n in (2, 4, 12, 36):
            family = Hog(cells=4, orientations=n)
            np.testing.assert_array_equal(family.compute(image)[0], _oracle(image, family))


def test_hog_feature_names():
    names = Hog(cells=2, orientations=3).feature_names()
    assert len(names) == 12 and names[:4] == ["hog_0_0_0", "hog_0_0_1", "hog_0_0_2", "hog_0_1_0"]
    assert len(Hog().feature_names()) == 9216


@pytest.mark.parametrize("bad", [dict(cells=0), dict(cells=257), dict(orientations=1),
                                 dict(orientations=37)])
def test_hog_config_is_validated(bad):
    with pytest.raises(ValueError, match="hog"):
        Hog(**bad)


# ---------------------------------------------------------------------------- lbp

# cells=64: more cell rows than some images have pixel rows (rows of cells skipped).
LBP_CONFIGS = [Lbp(), Lbp(cells=7), Lbp(cells=1, radii=(1,)), Lbp(cells=5, radii=(4, 2)),
               Lbp(cells=64, radii=(1, 3))]


@pytest.mark.parametrize("family", LBP_CONFIGS, ids=repr)
def test_lbp_matches_reference_exactly(family):
    """Integer labels and counts, float64 root frequencies: bit for bit the oracle,
    on images too small for some radii (zeros there) and larger ones."""
    for image in [_random(s) for s in TINY_SHAPES + SHAPES + [(5, 9), (7, 7)]] + [
            _smooth((64, 64)), _checker((50, 66))]:
        np.testing.assert_array_equal(family.compute(image)[0], _oracle(image, family))


def _one_radius(family: Lbp, image: np.ndarray) -> np.ndarray:
    """``(len(radii), cells**2, 10)`` features of one image."""
    return family.compute(image)[0].reshape(len(family.radii), -1, 10)


@pytest.mark.parametrize("value", [0, 128, 255])
@pytest.mark.parametrize("cells", [1, 7, 32])
def test_lbp_constant_image_is_all_label_8(value, cells):
    """Every neighbour is >= the centre: code 255, label 8, in every non-empty cell."""
    for got in _one_radius(Lbp(cells=cells), np.full((40, 64, 3), value, np.uint8)):
        filled = got.any(axis=1)
        assert filled.sum() > 0
        assert (got[filled, 8] == 1).all() and not np.delete(got[filled], 8, axis=1).any()


@pytest.mark.parametrize("r", [1, 2, 3])
def test_lbp_strict_local_maximum_is_label_0(r):
    """The one pixel with all its neighbours at radius r, against a flat field."""
    family = Lbp(cells=1, radii=(r,))
    image = np.full((2 * r + 1, 2 * r + 1, 3), 100, np.uint8)
    image[r, r] = 101
    np.testing.assert_array_equal(family.compute(image)[0], np.eye(10)[0])
    image[r, r] = 99  # a strict minimum: every bit set
    np.testing.assert_array_equal(family.compute(image)[0], np.eye(10)[8])


def test_lbp_radius_compares_neighbours_r_pixels_away():
    """A centre brighter than the pixels 1 and 3 away and darker than those 2 away:
    a strict maximum (label 0) at radii 1 and 3, a minimum (label 8) at radius 2.
    On a 7x7 grid of a 7x7 image every pixel is its own cell."""
    image = np.full((7, 7, 3), 100, np.uint8)
    image[1:6, 1:6] = 200
    image[2:5, 2:5] = 100
    image[3, 3] = 150
    got = _one_radius(Lbp(cells=7, radii=(1, 2, 3)), image)[:, 3 * 7 + 3]
    np.testing.assert_array_equal(got, np.eye(10)[[0, 8, 0]])


def test_lbp_label_table_matches_a_direct_count():
    table = lbp_labels()
    assert table.shape == (256,) and table.dtype == np.uint8
    for code in range(256):
        bits = [(code >> k) & 1 for k in range(8)]
        transitions = sum(bits[k] != bits[(k + 1) % 8] for k in range(8))
        assert table[code] == (sum(bits) if transitions <= 2 else 9), code
    # 58 uniform patterns: codes 0 and 255, and 8 rotations of each run of 1..7 ones.
    assert np.bincount(table, minlength=10).tolist() == [1, 8, 8, 8, 8, 8, 8, 8, 1, 198]


def test_lbp_neighbours_are_in_circular_order():
    """Two neighbours above the centre: adjacent ones (k, k + 1, wrapping 7 -> 0)
    make a uniform pattern (label 2), ones two apart a non-uniform one (label 9)."""
    assert LBP_NEIGHBOURS == ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1),
                              (0, -1))
    for k in range(8):
        for step, label in ((1, 2), (2, 9)):
            image = np.full((3, 3, 3), 50, np.uint8)
            image[1, 1] = 60
            for m in (k, (k + step) % 8):
                dy, dx = LBP_NEIGHBOURS[m]
                image[1 + dy, 1 + dx] = 70
            got = Lbp(cells=1, radii=(1,)).compute(image)[0]
            np.testing.assert_array_equal(got, np.eye(10)[label])


def test_lbp_non_empty_cells_are_unit_vectors():
    """Root frequencies: the squares of each non-empty cell's entries sum to one."""
    for image in (_random((256, 256)), _smooth((100, 37))):
        got = _one_radius(Lbp(), image).astype(np.float64)
        sums = (got**2).sum(axis=-1)
        np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-6)
    assert ((_one_radius(Lbp(), _random((256, 256)))**2).sum(axis=-1) > 0).all()


def test_lbp_feature_names():
    names = Lbp(cells=2, radii=(1, 3)).feature_names()
    assert len(names) == 80
    assert names[:11] == [f"lbp_r1_0_0_{k}" for k in range(10)] + ["lbp_r1_0_1_0"]
    assert names[40] == "lbp_r3_0_0_0"
    assert len(Lbp().feature_names()) == 30720


@pytest.mark.parametrize("bad", [dict(cells=0), dict(cells=257), dict(cells=-3), dict(radii=()),
                                 dict(radii=(0,)), dict(radii=(33,)), dict(radii=(1, 1)),
                                 dict(radii=(1.5,)), dict(radii=(True,))])
def test_lbp_config_is_validated(bad):
    with pytest.raises(ValueError, match="lbp"):
        Lbp(**bad)


@pytest.mark.parametrize("family", [Residual(), Residual(channels=("Y",)), Residual(T=1, q=0.5),
                                    Residual(channels=("R", "G", "B"), T=3, q=1.5),
                                    Residual(channels=("R", "G", "B"), half_res=("B",), T=3),
                                    Residual(half_res=()), Residual(half_res=("Y", "Cb", "Cr")),
                                    Residual(T=4, q=0.25), Residual(T=8, q=64)], ids=repr)
def test_fused_residual_kernel_is_bit_identical_to_the_tap_table_kernel(family):
    """The fused integer kernel of the shipped filters (``residual_srm``) gives the same
    bits as the generic tap-table kernel it replaced, which the oracle checks, on images
    down to the smallest each family takes (6 px, 12 px where a plane is halved) and of
    odd sides (a halved plane leaves the last row and column out)."""
    from ffeat import _residual
    from ffeat.families.residual import _filter_bank
    bank = _filter_bank(family.channels, family.half_res, family.T, family.q)
    assert "srm" in bank
    generic = {k: v for k, v in bank.items() if k != "srm"}
    side = 12 if set(family.channels) & set(family.half_res) else 6
    for image in [_random((64, 64)), _smooth((45, 70)), _checker((50, 66)),
                  _random((side, side)), _random((side + 1, side + 3)),
                  _random((257, 131)), np.full((side + 3, 30, 3), 200, np.uint8),
                  smooth_image(rng, (256, 256))]:
        batch = image[None]
        want = _residual.residual_features(batch, n_groups=5, T=family.T,
                                           margin=RESIDUAL_MARGIN, **generic)
        got = _residual.residual_srm(batch, T=family.T, **bank["srm"])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(family.compute(image), want.reshape(1, -1))
