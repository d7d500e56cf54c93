"""``spectrum``: azimuthal average of the log power spectrum of the luma (Durall et
al. 2020).

Mean luma removed, orthonormal 2-D FFT, ``log(|F|^2 + 0.01)`` averaged without
the DC coefficient over rings of normalised radius
``sqrt((ky/H)^2 + (kx/W)^2)`` in ``n_bins`` equal bins over ``[0, sqrt(1/2)]``
(the corners hold the diagonal Nyquist). Bins that no coefficient falls into
(small images, low radii) are linearly interpolated from their neighbours
(beyond the ends: the nearest filled bin). The 0.01 level^2 floor lies below
the 1/12 level^2 noise of 8-bit quantisation and far above float32 round-off.

The FFT is NumPy's (``numpy.fft.rfft2`` on float32, which NumPy 2 keeps in single
precision). The compiled kernel takes the float32 logarithms in one vectorised pass per
row (``ffeat_log_power`` in ``ext/_simd.h``: computed in double and rounded once to
float, so within an ulp of libm's ``logf``, as NumPy's float32 ``log`` in the array code
is). The compiled kernel and the array code both read the half-spectrum layout of
:func:`_radial_layout`; the plain full-spectrum reference in
``tests/test_kernels.py`` checks that layout.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _spectrum
from .._gpu import _kernels
from ._common import as_batch, is_cupy, luma

__all__ = ["Spectrum", "radial_bins"]

#: Radial bands the bins are pooled into as column groups (for the report).
N_BANDS = 8
_NYQUIST_DIAG = np.sqrt(0.5)  # the bins cover normalised radius [0, sqrt(1/2)]


def radial_bins(h: int, w: int, n_bins: int) -> np.ndarray:
    """Radial bin of every coefficient of an ``h x w`` 2-D FFT (NumPy order).

    The bin of normalised radius ``sqrt((ky/h)^2 + (kx/w)^2) / sqrt(1/2)`` among
    ``n_bins`` equal bins on ``[0, 1]``. The kernels and the references all take
    their bins from here, so a coefficient on a bin edge lands on the same side.
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fy**2 + fx**2) / np.sqrt(0.5)
    return np.minimum((radius * n_bins).astype(np.int32), n_bins - 1)


@functools.lru_cache(maxsize=64)
def _radial_layout(h: int, w: int, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin and weight of each half-spectrum coefficient, and per-bin weight totals."""
    # Columns 0..w//2 of the full layout; |fftfreq| there equals rfftfreq.
    bins = np.ascontiguousarray(radial_bins(h, w, n_bins)[:, : w // 2 + 1])
    if bins.size and (bins.min() < 0 or bins.max() >= n_bins):  # checked once, not per image
        raise ValueError(f"radial bins outside [0, {n_bins})")
    weight = np.full(bins.shape, 2.0, dtype=np.float32)  # each stands for itself and its twin
    weight[:, 0] = 1.0
    if w % 2 == 0:
        weight[:, -1] = 1.0  # the Nyquist column has no mirrored twin
    weight[0, 0] = 0.0  # DC: mean brightness is no forensic trace
    totals = np.bincount(bins.ravel(), weights=weight.ravel(), minlength=n_bins)
    for a in (bins, weight, totals):
        a.setflags(write=False)
    return bins, weight, totals


def _fill_empty_bins(means: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Fill bins no coefficient fell into (in place): linear interpolation
    between filled neighbours, the nearest filled value beyond the ends."""
    empty = totals == 0
    if empty.any():
        centres = np.arange(means.shape[-1])
        for row in means:
            row[empty] = np.interp(centres[empty], centres[~empty], row[~empty])
    return means


@functools.lru_cache(maxsize=64)
def _ring_normaliser(h: int, w: int, n_bins: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-bin ``1 / total weight`` (0 for empty bins) and, when some bins are
    empty, the matrix ``A`` with ``means @ A`` = the means with empty bins
    filled (row ``k`` is the filling of the unit vector ``e_k``)."""
    totals = _radial_layout(h, w, n_bins)[2]
    inverse = np.divide(1.0, totals, out=np.zeros(n_bins), where=totals > 0)
    fill = _fill_empty_bins(np.eye(n_bins), totals) if (totals == 0).any() else None
    return inverse, fill


#: Largest FFT output kept for the next image of a thread (bytes): a 1448 px image.
_KEPT_FFT_BYTES = 1 << 24
_fft_buffers = threading.local()


def _fft_buffer(shape: tuple[int, int, int]) -> np.ndarray | None:
    """This thread's complex64 output array of ``shape`` for ``rfft2``, kept between
    calls up to :data:`_KEPT_FFT_BYTES` (None above: NumPy allocates one): a new array
    for every image, freed after it, had its pages faulted in again each time (a
    twentieth of the family's time at 256 px, a fifth at 1024 px)."""
    if 8 * shape[0] * shape[1] * shape[2] > _KEPT_FFT_BYTES:
        return None
    buffer = getattr(_fft_buffers, "spec", None)
    if buffer is None or buffer.shape != shape:
        buffer = _fft_buffers.spec = np.empty(shape, dtype=np.complex64)
    return buffer


def _ring_sums_generic(xp, spec, bins, weight, n_bins: int, eps: float):
    """``(B, n_bins)`` float64 weighted sums of ``log(|F|^2 + eps)`` per ring."""
    b = spec.shape[0]
    log_power = xp.log(spec.real * spec.real + spec.imag * spec.imag + eps)
    values = (log_power * weight).astype(xp.float64)
    index = bins[None] + (n_bins * xp.arange(b, dtype=bins.dtype))[:, None, None]
    sums = xp.bincount(index.ravel(), weights=values.ravel(), minlength=b * n_bins)
    return sums.reshape(b, n_bins)


@dataclass(frozen=True)
class Spectrum:
    """Azimuthally averaged log power spectrum of the luma.

    Parameters
    ----------
    n_bins : int
        Number of radial bins; the feature length.
    """

    n_bins: int = 64
    name: ClassVar[str] = "spectrum"
    eps: ClassVar[float] = 0.01

    def __post_init__(self) -> None:
        if not 4 <= self.n_bins <= 1024:
            raise ValueError(f"spectrum n_bins must lie in [4, 1024], got {self.n_bins}")

    def feature_names(self) -> list[str]:
        """Names of the output columns, from the lowest radius outwards."""
        return [f"spectrum_{k:03d}" for k in range(self.n_bins)]

    def column_groups(self) -> list[tuple[str, int]]:
        """The bins pooled into ``N_BANDS`` radial bands, low to high frequency:
        ``[(label, number of columns)]``."""
        widths: dict[int, int] = {}
        for k in range(self.n_bins):
            band = k * N_BANDS // self.n_bins
            widths[band] = widths.get(band, 0) + 1
        edges = np.arange(N_BANDS + 1) / N_BANDS * _NYQUIST_DIAG
        return [(f"spectrum {edges[band]:.2f}-{edges[band + 1]:.2f} cyc/px", width)
                for band, width in widths.items()]

    def compute(self, rgb: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """Features of a batch with the compiled kernel; see the module docstring."""
        rgb = as_batch(rgb)
        n_threads = max(n_threads, 1)
        plane = _spectrum.luma(rgb, centre=True, n_threads=n_threads)
        # NumPy's FFT (float32 in, complex64 out), not scipy.fft: importing scipy.fft
        # (and scipy.special with it) doubled the start-up of `ffeat predict`.
        b, h, w = plane.shape
        spec = np.fft.rfft2(plane, norm="ortho", out=_fft_buffer((b, h, w // 2 + 1)))
        bins, weight, totals = _radial_layout(rgb.shape[1], rgb.shape[2], self.n_bins)
        sums = _spectrum.radial_log_power(spec, bins, weight, self.n_bins, self.eps,
                                          n_threads,
                                          check_bins=False)  # _radial_layout checked them
        means = np.divide(sums, totals, out=np.zeros_like(sums), where=totals > 0)
        return _fill_empty_bins(means, totals).astype(np.float32)

    def compute_array(self, xp, rgb, raw_kernels: bool = True):
        """``(B, n_bins)`` float32 on ``xp``: ``rfft2`` of the centred luma, ring sums
        in float64 (on CuPy by a raw kernel unless ``raw_kernels`` is false)."""
        h, w = rgb.shape[1:3]
        plane = luma(xp, rgb)
        plane -= plane.mean(axis=(1, 2), dtype=xp.float64).astype(xp.float32)[:, None, None]
        spec = xp.fft.rfft2(plane, norm="ortho").astype(xp.complex64, copy=False)
        bins, weight, _ = _radial_layout(h, w, self.n_bins)
        bins, weight = xp.asarray(bins), xp.asarray(weight)
        ring_sums = _kernels.ring_sums if raw_kernels and is_cupy(xp) else _ring_sums_generic
        sums = ring_sums(xp, spec, bins, weight, self.n_bins, self.eps)
        inverse, fill = _ring_normaliser(h, w, self.n_bins)
        means = sums * xp.asarray(inverse)
        if fill is not None:
            means = means @ xp.asarray(fill)
        return means.astype(xp.float32)
