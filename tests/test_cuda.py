"""The CUDA backend: its array code (run here with NumPy) against the CPU kernels,
backend resolution, the batched pipeline, and, on a machine with a GPU and CuPy,
the same on the device plus the raw kernels against the generic code."""
from __future__ import annotations

import functools
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import ffeat
from ffeat import Gray, Hog, Lbp, Residual, Spectrum
from ffeat._gpu import _backend, _pipeline
from ffeat.features import resolve_features
from ffeat.reading._rows import feature_error, iter_rows, read_views
from ffeat.families import compute_families
from ffeat.families._common import is_cupy, to_host
from ffeat.families.residual import _filter_bank, _pair_counts_generic, _residual_map_generic
from ffeat.families.spectrum import _ring_sums_generic

FAMILIES = [Gray(), Gray(size=7), Spectrum(), Spectrum(n_bins=17), Residual(),
            Residual(channels=("R", "G", "B"), T=3, q=1.5), Residual(T=1, q=0.5),
            Hog(), Hog(cells=7), Hog(cells=5, orientations=4), Lbp(), Lbp(cells=7),
            Lbp(cells=1, radii=(1,)), Lbp(cells=5, radii=(4, 2))]
SHAPES = [(64, 64), (33, 47), (100, 37), (12, 12), (13, 31), (80, 80)]
TOLERANCE = dict(rtol=1e-5, atol=2e-5)  # as for the CPU kernels (tests/test_kernels.py)

rng = np.random.default_rng(20261207)


def _random(n, shape):
    return rng.integers(0, 256, (n,) + shape + (3,), dtype=np.uint8)


def _checker(shape):
    y, x = np.mgrid[:shape[0], :shape[1]]
    return np.repeat(((x + y) % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)


def _check_batch(xp, batch, family):
    """The array code on ``xp`` against its CPU counterpart: with NumPy (the oracle)
    the compiled kernel, itself held to the oracle one image at a time in
    tests/test_kernels.py; with CuPy the oracle."""
    got = compute_families(xp, xp.asarray(batch), [family])
    assert got.shape == (len(batch), len(family.feature_names()))
    assert got.dtype == np.float32 and isinstance(got, np.ndarray)
    want = compute_families(np, batch, [family]) if is_cupy(xp) else family.compute(batch)
    np.testing.assert_allclose(got, want, **TOLERANCE)


# ---------------------------------------------------------- array code, xp = numpy

@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_numpy_batches_match_cpu_kernels(family, shape):
    _check_batch(np, _random(3, shape), family)


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_numpy_constant_and_saturating_images_match_cpu_kernels(family):
    batch = np.stack([np.full((40, 52, 3), v, np.uint8) for v in (0, 77, 255)]
                     + [_checker((40, 52))])
    _check_batch(np, batch, family)


def test_numpy_path_matches_cpu_kernels_for_several_families():
    batch = _random(4, (72, 56))
    families = (Spectrum(), Residual(), Gray(size=16), Hog(), Lbp())
    want = np.concatenate([f.compute(batch) for f in families], axis=1)
    got = compute_families(np, batch, families)
    np.testing.assert_allclose(got, want, **TOLERANCE)
    # The residual counts are exact integers on both paths: bit-identical.
    res = slice(64, 64 + len(Residual().feature_names()))
    np.testing.assert_array_equal(got[:, res], want[:, res])


def test_numpy_batch_rows_equal_single_images():
    batch = _random(5, (45, 61))
    families = (Gray(), Spectrum(), Residual(), Hog(), Lbp())
    singles = np.vstack([compute_families(np, image[None], families) for image in batch])
    np.testing.assert_allclose(compute_families(np, batch, families), singles, rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (3, 3), (5, 40), (300, 300)], ids=str)
def test_numpy_hog_of_tiny_and_large_images_matches_cpu_kernel(shape):
    batch = _random(2, shape)
    for family in (Hog(), Hog(cells=7, orientations=4)):
        np.testing.assert_allclose(compute_families(np, batch, [family]),
                                   family.compute(batch), **TOLERANCE)


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (3, 3), (5, 40), (300, 300)], ids=str)
def test_numpy_lbp_of_tiny_and_large_images_equals_cpu_kernel(shape):
    """Integer codes and counts, float64 frequencies: bit-identical."""
    batch = _random(2, shape)
    for family in (Lbp(), Lbp(cells=7), Lbp(cells=5, radii=(4, 2))):
        np.testing.assert_array_equal(compute_families(np, batch, [family]),
                                      family.compute(batch))


def test_device_batches_are_validated():
    with pytest.raises(ValueError, match="uint8 RGB"):
        compute_families(np, np.zeros((2, 16, 16), np.uint8), [Gray()])
    with pytest.raises(ValueError, match="too small"):
        compute_families(np, np.zeros((1, 5, 64, 3), np.uint8), [Residual()])


# ------------------------------------------------------------- backend resolution

@pytest.fixture
def no_device(monkeypatch):
    monkeypatch.setattr(_backend, "_probe",
                        lambda: (False, "CuPy cannot be imported (ModuleNotFoundError)"))


@pytest.fixture
def numpy_device(monkeypatch):
    """Pretend a device is present, with NumPy standing in for CuPy."""
    monkeypatch.setattr(_backend, "_probe", lambda: (True, ""))
    monkeypatch.setattr(_backend, "import_cupy", lambda: np)


def test_auto_falls_back_to_cpu_and_cuda_explains(no_device):
    assert not _backend.cuda_available()
    assert _backend.resolve_backend("cpu") == "cpu"
    assert _backend.resolve_backend("auto") == "cpu"
    with pytest.raises(RuntimeError) as info:
        _backend.resolve_backend("cuda")
    message = str(info.value)
    assert 'pip install "ffeat[cuda]"' in message
    assert "no usable device was found" in message and "ModuleNotFoundError" in message
    with pytest.raises(RuntimeError, match="ffeat\\[cuda\\]"):
        ffeat.extract(_random(1, (32, 32)), backend="cuda")


def test_auto_picks_cuda_when_a_device_is_found(numpy_device):
    assert _backend.cuda_available()
    assert _backend.resolve_backend("auto") == "cuda"
    assert _backend.resolve_backend("cuda") == "cuda"
    assert _backend.resolve_backend("cpu") == "cpu"


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of 'cpu', 'cuda', 'auto'"):
        _backend.resolve_backend("gpu")
    with pytest.raises(ValueError, match="backend"):
        ffeat.extract(_random(1, (32, 32)), backend="GPU")


def test_probe_without_cupy_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    _backend._probe.cache_clear()
    try:
        assert _backend.cuda_available() is False
        assert "cannot be imported" in _backend._probe()[1]
    finally:
        _backend._probe.cache_clear()


def test_import_ffeat_never_imports_cupy(tmp_path):
    """A `cupy` that raises on import must not disturb importing or using ffeat."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise RuntimeError('cupy imported')\n")
    code = ("import sys, numpy as np, ffeat\n"
            "r = ffeat.extract(np.zeros((1, 32, 32, 3), np.uint8), backend='auto')\n"
            "assert r.X.shape == (1, len(r.names)) and 'cupy' not in sys.modules\n"
            "print('ok')\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------- the batched pipeline, on NumPy

def _write_images(folder) -> list[str]:
    """Two sizes interleaved, under real/ and fake/, plus unreadable files."""
    paths = []
    for k in range(7):
        label = ("real", "fake")[k % 2]
        shape = (64, 64) if k % 3 else (48, 80)
        path = folder / label / f"im{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_random(1, shape)[0]).save(path)
        paths.append(str(path))
    (folder / "fake" / "broken.jpg").write_bytes(b"not a jpeg")
    buf = io.BytesIO()
    Image.fromarray(_random(1, (20, 20))[0]).save(buf, "PNG")
    (folder / "real" / "tiny.png").write_bytes(buf.getvalue())
    return paths


def _assert_same_extraction(got, want):
    assert got.names == want.names
    assert got.sources == want.sources
    assert got.errors == want.errors
    np.testing.assert_array_equal(got.labels, want.labels)
    assert got.X.dtype == np.float32 and got.X.shape == want.X.shape
    np.testing.assert_allclose(got.X, want.X, **TOLERANCE)


@pytest.mark.parametrize("budget", [_pipeline.PIXEL_BUDGET, 64 * 64 * 2])
def test_cuda_pipeline_on_numpy_matches_cpu_extract(tmp_path, numpy_device, monkeypatch,
                                                    budget):
    monkeypatch.setattr(_pipeline, "PIXEL_BUDGET", budget)  # small: groups split in batches
    _write_images(tmp_path)
    features = ("gray", "spectrum", "residual")
    want = ffeat.extract(tmp_path, features, jobs=2)
    got = ffeat.extract(tmp_path, features, jobs=2, backend="cuda")
    assert len(want.errors) == 2 and len(want.sources) == 7
    _assert_same_extraction(got, want)


def test_cuda_pipeline_frames_images_as_the_cpu_does(tmp_path, numpy_device):
    _write_images(tmp_path)  # 64 and 48x80 px: both framed to 40 px, in one batch
    at40 = ffeat.Reading(frame=40)
    want = ffeat.extract(tmp_path, ("gray", "spectrum"), jobs=2, reading=at40)
    got = ffeat.extract(tmp_path, ("gray", "spectrum"), jobs=2, backend="cuda", reading=at40)
    assert not np.array_equal(want.X, ffeat.extract(tmp_path, ("gray", "spectrum")).X)
    _assert_same_extraction(got, want)


def test_cuda_pipeline_reads_each_aligned_face_as_the_cpu_does(numpy_device):
    pytest.importorskip("dlib")
    from skimage import data

    astronaut = data.astronaut()
    two = np.concatenate([astronaut, astronaut[:, ::-1]], axis=1)  # two faces
    images = [astronaut, np.full((90, 90, 3), 90, np.uint8), two]
    aligned = ffeat.Reading(faces="align", frame=64)
    want = ffeat.extract(images, ("gray", "lbp"), jobs=2, reading=aligned)
    got = ffeat.extract(images, ("gray", "lbp"), jobs=2, backend="cuda", reading=aligned)
    assert len(want.X) == 2 and len(want.errors) == 1
    _assert_same_extraction(got, want)
    families = resolve_features(("gray", "lbp"))
    items = ffeat.extraction.expand_inputs(images)
    cpu = [row for _, row in iter_rows(items, families, aligned, jobs=1)]
    gpu = [row for _, row in iter_rows(items, families, aligned, jobs=1, backend="cuda")]
    assert len(cpu[2].boxes) == 2
    for a, b in ((cpu[0], gpu[0]), (cpu[2], gpu[2])):
        assert a.boxes == b.boxes and a.quads == b.quads
        np.testing.assert_allclose(b.rows, a.rows, **TOLERANCE)


def test_pipeline_keeps_input_order_across_chunks(tmp_path):
    paths = _write_images(tmp_path)
    items = ffeat.extraction.expand_inputs(paths + [str(tmp_path / "missing.png")] + paths)
    read = functools.partial(read_views, reading=ffeat.Reading(max_pixels=10**8))
    results = list(_pipeline.batched_results(
        items, (Spectrum(),), read=read, fail=feature_error, jobs=2,
        assemble=lambda views, rows: rows[0], xp=np, batch_size=3))
    assert [item.name for item, _ in results] == [item.name for item in items]
    rows = [f.result() for item, f in results if f.exception() is None]
    assert len(rows) == 14
    want = [Spectrum().compute(ffeat.load_image(p))[0] for p in paths]
    np.testing.assert_allclose(np.array(rows), np.array(want + want), **TOLERANCE)
    assert isinstance(results[7][1].exception(), ffeat.ImageReadError)


def test_pipeline_failed_batch_gives_an_error_record_per_image(tmp_path, numpy_device,
                                                                monkeypatch):
    def out_of_memory(*args):
        raise MemoryError("device out of memory")

    monkeypatch.setattr(_pipeline, "compute_families", out_of_memory)
    paths = _write_images(tmp_path)
    result = ffeat.extract(paths, "spectrum", backend="cuda")
    assert result.X.shape == (0, 64)
    assert [e.source for e in result.errors] == paths
    assert {e.reason for e in result.errors} == {"features failed: device out of memory"}
    with pytest.raises(ffeat.ImageReadError, match="features failed"):
        ffeat.extract(paths, "spectrum", backend="cuda", on_error="raise")


def test_pipeline_raises_at_the_first_unreadable_file(tmp_path, numpy_device):
    _write_images(tmp_path)
    with pytest.raises(ffeat.ImageReadError, match="broken.jpg"):
        ffeat.extract(tmp_path, "gray", backend="cuda", on_error="raise")


# ------------------------------------------------------ on a GPU, with CuPy only

@pytest.fixture(scope="module")
def cp():
    cupy = pytest.importorskip("cupy")
    if not _backend.cuda_available():
        pytest.skip(f"no CUDA device: {_backend._probe()[1]}")
    return cupy


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("shape", [(64, 64), (33, 47), (12, 12), (256, 256), (300, 211)],
                         ids=str)
def test_gpu_batches_match_numpy_oracle(cp, family, shape):
    _check_batch(cp, _random(3, shape), family)


@pytest.mark.parametrize("raw_kernels", [True, False])
def test_gpu_matches_numpy_path(cp, raw_kernels):
    batch = np.concatenate([_random(5, (96, 80)), _checker((96, 80))[None],
                            np.full((1, 96, 80, 3), 201, np.uint8)])
    got = compute_families(cp, cp.asarray(batch), FAMILIES, raw_kernels=raw_kernels)
    np.testing.assert_allclose(got, compute_families(np, batch, FAMILIES), **TOLERANCE)


@pytest.mark.parametrize("shape", [(1, 7, 5), (3, 64, 33), (2, 1024, 513)], ids=str)
def test_raw_ring_sums_equal_generic(cp, shape):
    from ffeat._gpu._kernels import ring_sums
    b, h, wr = shape
    spec = (cp.asarray(rng.normal(size=shape)) + 1j * cp.asarray(rng.normal(size=shape)))
    spec = spec.astype(cp.complex64)
    n_bins = 37
    bins = cp.asarray(rng.integers(0, n_bins, (h, wr)), dtype=cp.int32)
    weight = cp.asarray(rng.choice([0.0, 1.0, 2.0], (h, wr)), dtype=cp.float32)
    got = to_host(cp, ring_sums(cp, spec, bins, weight, n_bins, 0.01))
    want = to_host(cp, _ring_sums_generic(cp, spec, bins, weight, n_bins, 0.01))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("pairs", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 2, 2), (3, 61, 47), (2, 1020, 1020)], ids=str)
def test_raw_pair_counts_equal_generic(cp, shape, pairs):
    from ffeat._gpu._kernels import pair_counts
    n_levels, base, n_hist = 5, 25, 3 * 25
    skewed = np.clip(np.rint(rng.normal(2, 0.7, shape)), 0, n_levels - 1)
    levels = cp.asarray(skewed, dtype=cp.int32)
    got = cp.ones((shape[0], n_hist), dtype=cp.int64)  # adds to what is there
    want = got.copy()
    pair_counts(cp, levels, got, base, n_levels, pairs)
    _pair_counts_generic(cp, levels, want, base, n_levels, pairs)
    np.testing.assert_array_equal(to_host(cp, got), to_host(cp, want))


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 67, 41), (2, 1024, 1030)], ids=str)
def test_raw_residual_map_is_bit_identical_to_generic(cp, shape):
    from ffeat._gpu._kernels import residual_map
    bank = _filter_bank(("Y", "Cr"), ("Cr",), 2, 1.0)
    plane = cp.asarray(rng.integers(-255 * 128, 255 * 128, shape), dtype=cp.float32)
    for k in range(len(bank["map_div"])):
        lo, hi = bank["tap_start"][k], bank["tap_start"][k + 1]
        taps = (bank["tap_dy"][lo:hi], bank["tap_dx"][lo:hi], bank["tap_w"][lo:hi])
        args = (plane, taps, 2, float(bank["map_div"][k]), 2)
        for got, want in zip(residual_map(cp, *args), _residual_map_generic(cp, *args)):
            np.testing.assert_array_equal(to_host(cp, got), to_host(cp, want))


def test_gpu_extract_matches_cpu(cp, tmp_path):
    _write_images(tmp_path)
    features = ("gray", "spectrum", "residual")
    _assert_same_extraction(ffeat.extract(tmp_path, features, backend="cuda"),
                            ffeat.extract(tmp_path, features))
