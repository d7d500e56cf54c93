"""Plain-NumPy reference implementations of the feature families.

They define what the compiled kernels must compute, one image at a time, with
no shortcut the kernels take (no half spectra, no rolling row buffers, no
threshold counting, no guessed orientation bins). Tests hold the kernels to them;
benchmarks time them as the baseline the speed-ups are quoted against.
"""
from __future__ import annotations

import functools

import numpy as np

from .features import (CHANNELS, LBP_NEIGHBOURS, RESIDUAL_FILTERS, RESIDUAL_MARGIN, Gray, Hog,
                       Lbp, Residual, Spectrum, interior_cells, lbp_labels, radial_bins)

_LUMA = np.array([0.299, 0.587, 0.114])


def _box_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging each output cell's share of the input."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(n_in)[None, :] + 1)
    return np.clip(hi - lo, 0, None) / (n_in / n_out)


def gray_reference(rgb: np.ndarray, family: Gray = Gray()) -> np.ndarray:
    """Luma of one ``(H, W, 3)`` uint8 image, area-averaged to a grid."""
    luma = rgb.astype(np.float64) @ _LUMA
    grid = _box_weights(luma.shape[0], family.size) @ luma @ _box_weights(
        luma.shape[1], family.size).T
    return grid.ravel().astype(np.float32)


def spectrum_reference(rgb: np.ndarray, family: Spectrum = Spectrum()) -> np.ndarray:
    """Azimuthal average of the log power spectrum of one image's luma."""
    luma = rgb.astype(np.float64) @ _LUMA
    luma -= luma.mean()
    h, w = luma.shape
    power = np.abs(np.fft.fft2(luma, norm="ortho")) ** 2
    bins = radial_bins(h, w, family.n_bins).ravel()[1:]
    log_power = np.log(power.ravel() + family.eps)[1:]  # [0] is DC, left out
    counts = np.bincount(bins, minlength=family.n_bins)
    sums = np.bincount(bins, weights=log_power, minlength=family.n_bins)
    filled = counts > 0
    centres = np.arange(family.n_bins)
    means = np.interp(centres, centres[filled], sums[filled] / counts[filled])
    return means.astype(np.float32)


def _correlate_valid(plane: np.ndarray, kernel: np.ndarray, margin: int) -> np.ndarray:
    """Correlate with a centred kernel on the pixels at least ``margin`` from the border."""
    h, w = plane.shape
    ky, kx = kernel.shape[0] // 2, kernel.shape[1] // 2
    out = np.zeros((h - 2 * margin, w - 2 * margin))
    for (i, j), v in np.ndenumerate(kernel):
        if v:
            dy, dx = i - ky, j - kx
            out += v * plane[margin + dy:h - margin + dy, margin + dx:w - margin + dx]
    return out


def _cooc(a: np.ndarray, b: np.ndarray, levels: int) -> np.ndarray:
    return np.bincount((a * levels + b).ravel(), minlength=levels * levels)


def residual_reference(rgb: np.ndarray, family: Residual = Residual()) -> np.ndarray:
    """Co-occurrences and moments of quantised filter residuals of one image."""
    T, levels = family.T, 2 * family.T + 1
    features = []
    for channel in family.channels:
        plane = rgb.astype(np.float64) @ np.array(CHANNELS[channel], dtype=np.float64)
        for kernel, denom, directional in RESIDUAL_FILTERS.values():
            oriented = [(kernel, "h"), (kernel.T, "v")] if directional else [(kernel, "hv")]
            counts = np.zeros(levels * levels)
            residuals = []
            for k, directions in oriented:
                raw = _correlate_valid(plane, k, RESIDUAL_MARGIN)  # exact integers
                residuals.append(raw / (denom * 256))
                divisor = denom * 256 * family.q
                q = np.clip(np.floor(raw / divisor + 0.5), -T, T).astype(int) + T
                if "h" in directions:
                    counts += _cooc(q[:, :-1], q[:, 1:], levels)
                if "v" in directions:
                    counts += _cooc(q[:-1, :], q[1:, :], levels)
            r = np.concatenate([x.ravel() for x in residuals])
            m2 = np.mean(r**2)
            kurtosis = np.mean(r**4) / m2**2 if m2 > 0 else 0.0
            features += [counts / counts.sum(), [np.mean(np.abs(r)), np.sqrt(m2), kurtosis]]
    return np.concatenate(features).astype(np.float32)


def _cell_histograms(rgb: np.ndarray, cells: int, n: int, bins_and_weights,
                     margin: int = 1) -> np.ndarray:
    """``(cells**2, n)`` float64 per-cell sums over one image's pixels at least
    ``margin`` from every border.

    ``bins_and_weights(luma)`` takes the exact integer luma ``77 R + 150 G + 29 B``
    (int32) and gives each such pixel's bin and weight (``None``: count 1).
    Images under ``2 margin + 1`` pixels a side have none: all zeros.
    """
    h, w = rgb.shape[:2]
    if h < 2 * margin + 1 or w < 2 * margin + 1:
        return np.zeros((cells * cells, n))
    bins, weights = bins_and_weights(rgb.astype(np.int32) @ np.array(CHANNELS["Y"], np.int32))
    index = interior_cells(h, w, cells, margin) * n + bins
    return np.bincount(index.ravel(), weights=None if weights is None else weights.ravel(),
                       minlength=cells * cells * n).reshape(cells * cells, n).astype(np.float64)


def hog_reference(rgb: np.ndarray, family: Hog = Hog()) -> np.ndarray:
    """L2-Hys normalised gradient-orientation histograms of one image's luma per cell."""
    n = family.orientations

    def orientation_bins(luma):
        gx = (luma[1:-1, 2:] - luma[1:-1, :-2]).astype(np.float64)
        gy = (luma[2:, 1:-1] - luma[:-2, 1:-1]).astype(np.float64)
        theta = np.arctan2(gy, gx)
        theta = np.where(theta < 0, theta + np.pi, theta)
        theta = np.where(theta >= np.pi, theta - np.pi, theta)
        k = np.minimum((theta * n / np.pi).astype(np.int64), n - 1)
        return k, np.sqrt(gx**2 + gy**2) / 256

    hist = _cell_histograms(rgb, family.cells, n, orientation_bins)
    eps2 = family.eps**2
    v = hist / np.sqrt((hist**2).sum(axis=1, keepdims=True) + eps2)
    v = np.minimum(v, family.clip)
    v = v / np.sqrt((v**2).sum(axis=1, keepdims=True) + eps2)
    return v.ravel().astype(np.float32)


def _lbp_bins(luma: np.ndarray, r: int) -> tuple[np.ndarray, None]:
    """riu2 label of each pixel at least ``r`` from every border, from its code at radius r."""
    h, w = luma.shape
    centre = luma[r:h - r, r:w - r]
    code = np.zeros(centre.shape, dtype=np.int64)
    for k, (dy, dx) in enumerate(LBP_NEIGHBOURS):
        neighbour = luma[r + r * dy:h - r + r * dy, r + r * dx:w - r + r * dx]
        code += (neighbour >= centre).astype(np.int64) << k
    return lbp_labels()[code], None


def lbp_reference(rgb: np.ndarray, family: Lbp = Lbp()) -> np.ndarray:
    """Root frequencies of the uniform LBP labels of one image's luma per cell and radius."""
    blocks = []
    for r in family.radii:
        counts = _cell_histograms(rgb, family.cells, family.n_labels,
                                  functools.partial(_lbp_bins, r=r), margin=r)
        totals = counts.sum(axis=1, keepdims=True)
        blocks.append(np.sqrt(np.divide(counts, totals, out=np.zeros(counts.shape),
                                        where=totals > 0)))
    return np.concatenate(blocks).ravel().astype(np.float32)


REFERENCES = {"gray": gray_reference, "spectrum": spectrum_reference,
              "residual": residual_reference, "hog": hog_reference, "lbp": lbp_reference}
