"""The feature families on whole batches, written once against an array module ``xp``.

``xp`` is ``numpy`` or ``cupy``: the same code runs on the CPU (where the tests
hold it to :mod:`ffeat._reference`) and on a CUDA device. Everything is batched
over the leading axis of a ``(B, H, W, 3)`` uint8 array and computed in float32
(moment and ring sums, and the whole of hog, in float64; lbp in exact integers
up to its float64 root frequencies), like the compiled CPU kernels.

Three steps have a CuPy-only fast path (:mod:`._kernels`): the ring sums of
the spectrum and the co-occurrence counts of the residuals, scatter-adds into
small histograms that ``bincount`` does with global atomics on the device
(the raw kernels count into per-block shared-memory histograms first), and
each residual filter with its quantiser in one pass instead of one array
operation per tap.
``raw_kernels=False`` forces the generic path on the device too, which is how
the GPU tests check the raw kernels against it.
"""
from __future__ import annotations

import functools

import numpy as np

from . import _kernels
from ..features import (CHANNELS, LBP_NEIGHBOURS, RESIDUAL_FILTERS, RESIDUAL_MARGIN, Gray,
                        Hog, Lbp, Residual, Spectrum, _fill_empty_bins, _filter_bank,
                        _radial_layout, interior_cells, lbp_labels)

__all__ = ["compute_families", "is_cupy", "to_host"]


def is_cupy(xp) -> bool:
    """Whether ``xp`` is CuPy (checked by name: never imports CuPy)."""
    return xp.__name__ == "cupy"


def to_host(xp, a) -> np.ndarray:
    """A NumPy copy (or view) of an ``xp`` array."""
    return a.get() if is_cupy(xp) else np.asarray(a)


def _luma(xp, rgb):
    """BT.601 luma ``(B, H, W)`` float32 of a ``(B, H, W, 3)`` uint8 batch."""
    f = rgb.astype(xp.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


# ----------------------------------------------------------------------------- gray

@functools.lru_cache(maxsize=32)
def _box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 matrix that area-averages ``n_in`` pixels into ``n_out`` cells.

    Cell ``u`` covers ``[u s, (u + 1) s)`` with ``s = n_in / n_out``; pixel ``k``'s
    share is the coverage ``clip(x - k, 0, 1)`` of ``[k, k + 1)`` up to the cell's
    upper edge minus that up to its lower edge.
    """
    edges = np.arange(n_out + 1)[:, None] * (n_in / n_out)
    covered = np.clip(edges - np.arange(n_in)[None, :], 0.0, 1.0)
    m = (covered[1:] - covered[:-1]) / (n_in / n_out)
    m.setflags(write=False)
    return m.astype(np.float32)


def gray(xp, rgb, family: Gray):
    """``(B, size**2)`` float32: luma area-averaged to the grid, two matrix products."""
    b, h, w = rgb.shape[:3]
    wy = xp.asarray(_box_matrix(h, family.size))
    wx = xp.asarray(_box_matrix(w, family.size))
    return (wy @ _luma(xp, rgb) @ wx.T).reshape(b, -1)


# ------------------------------------------------------------------------- spectrum

@functools.lru_cache(maxsize=64)
def _ring_normaliser(h: int, w: int, n_bins: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-bin ``1 / total weight`` (0 for empty bins) and, when some bins are
    empty, the matrix ``A`` with ``means @ A`` = the means with empty bins
    filled (row ``k`` is the filling of the unit vector ``e_k``)."""
    totals = _radial_layout(h, w, n_bins)[2]
    inverse = np.divide(1.0, totals, out=np.zeros(n_bins), where=totals > 0)
    fill = _fill_empty_bins(np.eye(n_bins), totals) if (totals == 0).any() else None
    return inverse, fill


def _ring_sums_generic(xp, spec, bins, weight, n_bins: int, eps: float):
    """``(B, n_bins)`` float64 weighted sums of ``log(|F|^2 + eps)`` per ring."""
    b = spec.shape[0]
    log_power = xp.log(spec.real * spec.real + spec.imag * spec.imag + eps)
    values = (log_power * weight).astype(xp.float64)
    index = bins[None] + (n_bins * xp.arange(b, dtype=bins.dtype))[:, None, None]
    sums = xp.bincount(index.ravel(), weights=values.ravel(), minlength=b * n_bins)
    return sums.reshape(b, n_bins)


def spectrum(xp, rgb, family: Spectrum, raw_kernels: bool = True):
    """``(B, n_bins)`` float32 azimuthal averages of the log power spectrum."""
    h, w = rgb.shape[1:3]
    luma = _luma(xp, rgb)
    luma -= luma.mean(axis=(1, 2), dtype=xp.float64).astype(xp.float32)[:, None, None]
    spec = xp.fft.rfft2(luma, norm="ortho").astype(xp.complex64, copy=False)
    bins, weight, _ = _radial_layout(h, w, family.n_bins)
    bins, weight = xp.asarray(bins), xp.asarray(weight)
    ring_sums = _kernels.ring_sums if raw_kernels and is_cupy(xp) else _ring_sums_generic
    sums = ring_sums(xp, spec, bins, weight, family.n_bins, family.eps)
    inverse, fill = _ring_normaliser(h, w, family.n_bins)
    means = sums * xp.asarray(inverse)
    if fill is not None:
        means = means @ xp.asarray(fill)
    return means.astype(xp.float32)


# ------------------------------------------------------------------------- residual

def _residual_map_generic(xp, plane, taps, margin: int, div: float, T: int):
    """One filter's responses ``s`` (float32, exact integers) on the pixels at
    least ``margin`` from the border of a ``(B, H, W)`` plane, and their levels
    ``clip(floor(s / div + 1/2), -T, T) + T`` (int32). ``taps`` is a
    ``(dy, dx, w)`` int32/int32/float32 triple of host arrays."""
    b, h, w = plane.shape
    hv, wv = h - 2 * margin, w - 2 * margin
    s = xp.zeros((b, hv, wv), dtype=xp.float32)
    for dy, dx, weight in zip(*(a.tolist() for a in taps)):
        s += weight * plane[:, margin + dy:margin + dy + hv, margin + dx:margin + dx + wv]
    levels = xp.clip(xp.floor(s / div + 0.5), -T, T).astype(xp.int32) + T
    return s, levels


def _pair_counts_generic(xp, levels, counts, base: int, n_levels: int, pairs: int) -> None:
    """Add the co-occurrences of neighbouring ``levels`` (``(B, h, w)`` int32 in
    ``[0, n_levels)``) into ``counts[:, base:base + n_levels**2]`` (int64, in
    place): horizontal pairs if ``pairs & 1``, vertical ones if ``pairs & 2``."""
    b, n_hist = counts.shape
    offset = (xp.arange(b, dtype=xp.int64) * n_hist + base)[:, None, None]
    for bit, first, second in ((1, levels[:, :, :-1], levels[:, :, 1:]),
                               (2, levels[:, :-1, :], levels[:, 1:, :])):
        if pairs & bit:
            index = first * n_levels + second + offset
            counts += xp.bincount(index.ravel(), minlength=b * n_hist).reshape(b, n_hist)


def residual(xp, rgb, family: Residual, raw_kernels: bool = True):
    """``(B, C * n_filters * ((2T + 1)**2 + 3))`` float32 residual features.

    Channel planes and filter responses are exact integers in float32 (units of
    1/256 level, every partial sum below 2**24), as in the CPU kernel. The
    quantiser ``floor(s / D + 1/2)`` in float32 is exact too: ``s`` and ``D`` are
    integers below 2**24, so a non-tie ``s / D`` lies at least ``1 / (2 D) >=
    2.5e-6`` from a rounding edge, more than the two float32 roundings can move
    it below ``T + 1/2 <= 8.5``; beyond that the clip hides any difference.
    Moments are float64 sums of ``|s|``, ``s**2``, ``s**4``, scaled afterwards.
    """
    bank = _filter_bank(family.channels, family.T, family.q)
    b, h, w = rgb.shape[:3]
    m = RESIDUAL_MARGIN
    hv, wv = h - 2 * m, w - 2 * m
    if hv < 2 or wv < 2:
        raise ValueError(f"images of {h}x{w} pixels are too small for a margin of {m}")
    n_levels, n_groups, T = 2 * family.T + 1, len(RESIDUAL_FILTERS), family.T
    n_cells = n_levels * n_levels
    fast = raw_kernels and is_cupy(xp)
    residual_map = _kernels.residual_map if fast else _residual_map_generic
    pair_counts = _kernels.pair_counts if fast else _pair_counts_generic
    starts = bank["tap_start"]
    rgbf = rgb.astype(xp.float32)
    per_channel = []
    for c0, c1, c2 in bank["cmat"].tolist():
        plane = rgbf[..., 0] * c0 + rgbf[..., 1] * c1 + rgbf[..., 2] * c2
        counts = xp.zeros((b, n_groups * n_cells), dtype=xp.int64)
        moments = xp.zeros((b, n_groups, 3), dtype=xp.float64)
        n_values = np.zeros(n_groups)
        for k, g in enumerate(bank["map_group"].tolist()):
            taps = tuple(bank[key][starts[k]:starts[k + 1]]
                         for key in ("tap_dy", "tap_dx", "tap_w"))
            s, levels = residual_map(xp, plane, taps, m, float(bank["map_div"][k]), T)
            sc = float(bank["map_scale"][k])
            s2 = xp.square(s, dtype=xp.float64)
            moments[:, g, 0] += xp.abs(s).sum(axis=(1, 2), dtype=xp.float64) * sc
            moments[:, g, 1] += s2.sum(axis=(1, 2)) * sc**2
            moments[:, g, 2] += xp.square(s2).sum(axis=(1, 2)) * sc**4
            n_values[g] += hv * wv
            pair_counts(xp, levels, counts, g * n_cells, n_levels, int(bank["map_pairs"][k]))
        counts = counts.reshape(b, n_groups, n_cells)
        frequencies = counts / xp.maximum(counts.sum(axis=2, keepdims=True), 1)
        moments /= xp.asarray(n_values)[:, None]
        a2 = moments[..., 1:2]
        kurtosis = xp.where(a2 > 0, moments[..., 2:3] / xp.where(a2 > 0, a2 * a2, 1.0), 0.0)
        per_channel.append(xp.concatenate(
            [frequencies, moments[..., 0:1], xp.sqrt(a2), kurtosis], axis=2))
    return xp.stack(per_channel, axis=1).reshape(b, -1).astype(xp.float32)


# ------------------------------------------------------------------------------ hog

@functools.lru_cache(maxsize=32)
def _cell_offsets(h: int, w: int, cells: int, n: int, margin: int) -> np.ndarray:
    """(h - 2 margin, w - 2 margin) int32: ``(cell row * cells + cell column) * n``
    of each pixel at least ``margin`` from every border, cell
    ``(i * cells // h, j * cells // w)``."""
    offsets = interior_cells(h, w, cells, margin) * np.int32(n)
    offsets.setflags(write=False)
    return offsets


def _cell_sums(xp, index, weights, cells: int, n: int, margin: int = 1):
    """``(B, cells**2, n)`` sums per image, cell and bin over the pixels at least
    ``margin`` from every border: ``index`` the ``(B, H - 2 margin, W - 2 margin)``
    int32 bin of each (overwritten), ``weights`` float64 alike or ``None`` (counts,
    int64). One ``bincount`` for the batch."""
    b, hi, wi = index.shape
    n_hist = cells * cells * n
    offsets = _cell_offsets(hi + 2 * margin, wi + 2 * margin, cells, n, margin)
    index += xp.asarray(offsets)[None]
    index = index + (n_hist * xp.arange(b, dtype=xp.int64))[:, None, None]
    sums = xp.bincount(index.ravel(), weights=None if weights is None else weights.ravel(),
                       minlength=b * n_hist)
    return sums.reshape(b, cells * cells, n)


def _luma_int(xp, rgb):
    """Exact integer luma ``77 R + 150 G + 29 B`` ``(B, H, W)`` int32 of a batch."""
    return sum(rgb[..., c].astype(xp.int32) * weight for c, weight in enumerate(CHANNELS["Y"]))


def hog(xp, rgb, family: Hog):
    """``(B, cells**2 * orientations)`` float32 L2-Hys gradient-orientation histograms.

    Luma and central differences are exact int32; magnitude, ``arctan2`` and the
    bin ``theta * n / pi`` are float64, as in the CPU kernel and the reference.
    The cell sums are one float64 ``bincount`` over image, cell and bin.
    """
    b, h, w = rgb.shape[:3]
    n, cells = family.orientations, family.cells
    n_hist = cells * cells * n
    if h < 3 or w < 3:  # no interior pixels
        return xp.zeros((b, n_hist), dtype=xp.float32)
    luma = _luma_int(xp, rgb)
    gx = (luma[:, 1:-1, 2:] - luma[:, 1:-1, :-2]).astype(xp.float64)
    gy = (luma[:, 2:, 1:-1] - luma[:, :-2, 1:-1]).astype(xp.float64)
    del luma
    magnitude = xp.sqrt(gx * gx + gy * gy) / 256
    theta = xp.arctan2(gy, gx)
    del gx, gy
    theta += xp.where(theta < 0, np.pi, 0.0)  # unsigned: fold into [0, pi)
    theta -= xp.where(theta >= np.pi, np.pi, 0.0)
    index = xp.minimum((theta * n / np.pi).astype(xp.int32), n - 1)
    del theta
    sums = _cell_sums(xp, index, magnitude, cells, n)
    return _l2hys(xp, sums, family.eps, family.clip).reshape(b, -1).astype(xp.float32)


def _l2hys(xp, hist, eps: float, clip: float):
    """L2-Hys over the last axis: normalise, clip at ``clip``, normalise again."""
    clipped = xp.minimum(hist / xp.sqrt((hist * hist).sum(axis=-1, keepdims=True) + eps**2),
                         clip)
    return clipped / xp.sqrt((clipped * clipped).sum(axis=-1, keepdims=True) + eps**2)


# ------------------------------------------------------------------------------ lbp

def lbp(xp, rgb, family: Lbp):
    """``(B, len(radii) * cells**2 * 10)`` float32 root uniform LBP label frequencies
    per radius and cell.

    Integer luma, comparisons and label counts (one ``bincount`` per radius over
    image, cell and label) are exact; each count is divided by its cell's total
    and square-rooted in float64, as in the CPU kernel and the reference.
    """
    b, h, w = rgb.shape[:3]
    n, cells = family.n_labels, family.cells
    out = xp.zeros((b, len(family.radii), cells * cells, n), dtype=xp.float32)
    luma = _luma_int(xp, rgb)
    labels = xp.asarray(lbp_labels()).astype(xp.int32)
    for q, r in enumerate(family.radii):
        if h < 2 * r + 1 or w < 2 * r + 1:  # no pixel has all its neighbours
            continue
        centre = luma[:, r:h - r, r:w - r]
        code = xp.zeros(centre.shape, dtype=xp.int32)
        for k, (dy, dx) in enumerate(LBP_NEIGHBOURS):
            neighbour = luma[:, r + r * dy:h - r + r * dy, r + r * dx:w - r + r * dx]
            code |= (neighbour >= centre).astype(xp.int32) << k
        counts = _cell_sums(xp, labels[code], None, cells, n, margin=r)
        del code
        totals = counts.sum(axis=-1, keepdims=True)
        out[:, q] = xp.sqrt(counts / xp.maximum(totals, 1))
    return out.reshape(b, -1)


# ---------------------------------------------------------------------------- entry

def compute_families(xp, rgb, families, raw_kernels: bool = True) -> np.ndarray:
    """Feature rows of a batch for several families, on whichever device ``xp`` uses.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    rgb : xp array of uint8, shape (B, H, W, 3)
        The batch, already on the device; all images share one size.
    families : sequence of Gray, Spectrum, Residual, Hog, Lbp
        In column order.
    raw_kernels : bool, optional
        Use the CuPy raw kernels where there are some (ignored for NumPy).

    Returns
    -------
    ndarray of float32, shape (B, n_features)
        On the host, columns as ``np.concatenate([f.compute(rgb) for f in families], 1)``.
    """
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"device batches must be uint8 RGB of shape (B, H, W, 3); "
                         f"got {rgb.dtype} {rgb.shape}")
    parts = []
    for f in families:
        if isinstance(f, Gray):
            parts.append(gray(xp, rgb, f))
        elif isinstance(f, Spectrum):
            parts.append(spectrum(xp, rgb, f, raw_kernels))
        elif isinstance(f, Residual):
            parts.append(residual(xp, rgb, f, raw_kernels))
        elif isinstance(f, Hog):
            parts.append(hog(xp, rgb, f))
        elif isinstance(f, Lbp):
            parts.append(lbp(xp, rgb, f))
        else:
            raise TypeError(f"not a feature family: {f!r}")
    return to_host(xp, xp.concatenate(parts, axis=1).astype(xp.float32, copy=False))
