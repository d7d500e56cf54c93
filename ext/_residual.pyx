"""Noise-residual kernel: high-pass filter bank, quantisation, co-occurrences and moments.

One fused pass per colour channel and image row: the filter responses of the row
are computed, quantised to ``[-T, T]``, their moments accumulated, and the pairs
they form with their right neighbour (same row) and lower neighbour (previous
row, kept in a rolling buffer) counted into co-occurrence histograms.

Arithmetic is exact: channel planes and filter taps are small integers (planes in
units of 1/256 of an 8-bit level), every partial sum stays below 2**24, so the
float32 sums are exact integers whatever the order, and quantisation compares
``S`` against ``(k - 1/2) D`` for ``k = 1..T``, which is ``floor(S / D + 1/2)``
clipped to ``[-T, T]``.
"""
import numpy as np
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memset


cdef extern from "_simd.h" nogil:
    void ffeat_axpy(float *y, const float *x, float a, Py_ssize_t n)
    void ffeat_quantise(int *q, const float *s, float d, int t, Py_ssize_t n)
    void ffeat_pair_index(int *idx, const int *a, const int *b, int base, int l,
                          Py_ssize_t n)
    void ffeat_count4(long long *hist, const int *idx, Py_ssize_t n_hist, Py_ssize_t n)
    void ffeat_moments(const float *s, Py_ssize_t n, double *a1, double *a2, double *a4)


cdef extern from "_srm.h" nogil:
    int ffeat_srm_image(const unsigned char *rgb, Py_ssize_t H, Py_ssize_t W,
                        const int *cmat, const int *half, Py_ssize_t C, const int *div,
                        const double *scale, int T, float *out)
    void ffeat_srm_rows_add(unsigned short *sum, const unsigned char *a,
                            const unsigned char *b, Py_ssize_t m)
    void ffeat_srm_plane_half(int *out, const unsigned short *sum, int c0, int c1, int c2,
                              Py_ssize_t n)


cdef int _residual_one(
    const unsigned char[:, :, ::1] img, const float[:, ::1] cmat, const int[::1] half,
    const int[::1] tap_start, const int[::1] tap_dy, const int[::1] tap_dx,
    const float[::1] tap_w, const float[::1] map_div, const double[::1] map_scale,
    const int[::1] map_group, const int[::1] map_pairs,
    Py_ssize_t n_groups, int T, Py_ssize_t margin, float[:, :, ::1] out,
) noexcept nogil:
    cdef Py_ssize_t H0 = img.shape[0], W0 = img.shape[1], H, W, Wv
    cdef Py_ssize_t C = cmat.shape[0], M = map_div.shape[0]
    cdef Py_ssize_t L = 2 * T + 1, L2 = L * L, Wmax = W0 - 2 * margin
    cdef Py_ssize_t c, i, j, m, t, g, p, row, n_hist = n_groups * L2
    cdef float *plane = <float *>malloc(H0 * W0 * sizeof(float))
    cdef float *s = <float *>malloc(Wmax * sizeof(float))
    cdef int *qbuf = <int *>malloc(2 * M * Wmax * sizeof(int))
    cdef int *idx = <int *>malloc(Wmax * sizeof(int))
    # Four interleaved sub-histograms break the store-to-load dependency of
    # repeated increments of the same (mostly the central) bin.
    cdef long long *hist = <long long *>malloc(4 * n_hist * sizeof(long long))
    cdef double *mom = <double *>malloc(3 * n_groups * sizeof(double))
    cdef long long *n_vals = <long long *>malloc(n_groups * sizeof(long long))
    # A halved plane's rows: two image rows added, then the block means (as _srm.h).
    cdef unsigned short *rowsum = <unsigned short *>malloc(3 * W0 * sizeof(unsigned short))
    cdef int *irow = <int *>malloc((W0 // 2 + 1) * sizeof(int))
    cdef int *qcur
    cdef int *qprev
    cdef int *qrow
    cdef int *qup
    cdef double a1, a2, a4, sc, total
    cdef float c0, c1, c2
    cdef const unsigned char *px
    cdef int pairs

    if (plane == NULL or s == NULL or qbuf == NULL or idx == NULL or hist == NULL
            or mom == NULL or n_vals == NULL or rowsum == NULL or irow == NULL):
        free(plane); free(s); free(qbuf); free(idx); free(hist); free(mom); free(n_vals)
        free(rowsum); free(irow)
        return -1

    for c in range(C):
        memset(hist, 0, 4 * n_hist * sizeof(long long))
        memset(mom, 0, 3 * n_groups * sizeof(double))
        memset(n_vals, 0, n_groups * sizeof(long long))
        c0 = cmat[c, 0]
        c1 = cmat[c, 1]
        c2 = cmat[c, 2]
        px = &img[0, 0, 0]
        if half[c]:  # 2 x 2 block means, floor((block sum + 2) / 4), in int32
            H = H0 // 2
            W = W0 // 2
            for i in range(H):
                ffeat_srm_rows_add(rowsum, px + 3 * (2 * i) * W0, px + 3 * (2 * i + 1) * W0,
                                   6 * W)
                ffeat_srm_plane_half(irow, rowsum, <int>c0, <int>c1, <int>c2, W)
                for j in range(W):
                    plane[i * W + j] = irow[j]
        else:
            H = H0
            W = W0
            for j in range(H * W):
                plane[j] = c0 * px[3 * j] + c1 * px[3 * j + 1] + c2 * px[3 * j + 2]
        Wv = W - 2 * margin
        for row in range(margin, H - margin):
            qcur = qbuf + ((row - margin) % 2) * M * Wv
            qprev = qbuf + ((row - margin + 1) % 2) * M * Wv
            for m in range(M):
                g = map_group[m]
                pairs = map_pairs[m]
                qrow = qcur + m * Wv
                qup = qprev + m * Wv
                # Filter response of the row: exact integer sums in float32.
                memset(s, 0, Wv * sizeof(float))
                for t in range(tap_start[m], tap_start[m + 1]):
                    ffeat_axpy(s, plane + (row + tap_dy[t]) * W + margin + tap_dx[t],
                               tap_w[t], Wv)
                # Moments of the unquantised residual, then its quantised levels.
                ffeat_moments(s, Wv, &a1, &a2, &a4)
                sc = map_scale[m]
                mom[3 * g] += a1 * sc
                mom[3 * g + 1] += a2 * sc * sc
                mom[3 * g + 2] += a4 * (sc * sc) * (sc * sc)
                n_vals[g] += Wv
                ffeat_quantise(qrow, s, map_div[m], T, Wv)
                # Horizontal pairs (j, j + 1) within the row.
                if pairs & 1:
                    ffeat_pair_index(idx, qrow, qrow + 1, g * L2, L, Wv - 1)
                    ffeat_count4(hist, idx, n_hist, Wv - 1)
                # Vertical pairs (row - 1, row).
                if pairs & 2 and row > margin:
                    ffeat_pair_index(idx, qup, qrow, g * L2, L, Wv)
                    ffeat_count4(hist, idx, n_hist, Wv)
        # Fold the sub-histograms, then normalise: co-occurrence frequencies,
        # mean |r|, RMS and kurtosis.
        for p in range(n_hist):
            hist[p] += hist[n_hist + p] + hist[2 * n_hist + p] + hist[3 * n_hist + p]
        for g in range(n_groups):
            total = 0.0
            for p in range(g * L2, (g + 1) * L2):
                total += hist[p]
            for p in range(L2):
                out[c, g, p] = <float>(hist[g * L2 + p] / total if total > 0 else 0.0)
            a1 = mom[3 * g] / n_vals[g]
            a2 = mom[3 * g + 1] / n_vals[g]
            a4 = mom[3 * g + 2] / n_vals[g]
            out[c, g, L2] = <float>a1
            out[c, g, L2 + 1] = <float>(a2 ** 0.5)
            out[c, g, L2 + 2] = <float>(a4 / (a2 * a2) if a2 > 0 else 0.0)
    free(plane); free(s); free(qbuf); free(idx); free(hist); free(mom); free(n_vals)
    free(rowsum); free(irow)
    return 0


def residual_features(
    const unsigned char[:, :, :, ::1] rgb, const float[:, ::1] cmat, const int[::1] half,
    const int[::1] tap_start, const int[::1] tap_dy, const int[::1] tap_dx,
    const float[::1] tap_w, const float[::1] map_div, const double[::1] map_scale,
    const int[::1] map_group, const int[::1] map_pairs,
    Py_ssize_t n_groups, int T, Py_ssize_t margin, int n_threads=1,
):
    """Co-occurrences and moments of quantised filter residuals of an RGB batch.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    cmat : ndarray of float32, shape (C, 3)
        Integer RGB weights of each channel plane (units of 1/256 level).
    half : ndarray of int32, shape (C,)
        Non-zero where a channel's plane is taken at half resolution, as in
        :func:`residual_srm`.
    tap_start : ndarray of int32, shape (M + 1,)
        Taps of residual map ``m`` are ``tap_start[m]:tap_start[m + 1]``.
    tap_dy, tap_dx : ndarray of int32, shape (n_taps,)
        Tap offsets, each within ``[-margin, margin]``.
    tap_w : ndarray of float32, shape (n_taps,)
        Integer tap weights.
    map_div : ndarray of float32, shape (M,)
        Quantisation divisor of each map (filter denominator x step x 256).
    map_scale : ndarray of float64, shape (M,)
        Factor turning a raw sum into a residual in 8-bit levels.
    map_group : ndarray of int32, shape (M,)
        Output group (filter) each map is accumulated into.
    map_pairs : ndarray of int32, shape (M,)
        Bit 1: count horizontal pairs; bit 2: count vertical pairs.
    n_groups : int
    T : int
        Truncation threshold: quantised values lie in ``[-T, T]``.
    margin : int
        Border left out on every side (the largest tap offset).
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, C, n_groups, (2T + 1)**2 + 3)
        Per channel and group: the normalised co-occurrence matrix (row-major,
        first value the left/upper one), then mean |r|, RMS and kurtosis.
    """
    cdef Py_ssize_t B = rgb.shape[0], H = rgb.shape[1], W = rgb.shape[2]
    cdef Py_ssize_t M = map_div.shape[0], L = 2 * T + 1, b
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    _check_sizes(H, W, half, cmat.shape[0], margin)
    if T < 1 or T > 60:
        raise ValueError(f"T must lie in [1, 60], got {T}")
    n_taps = tap_w.shape[0]
    if (tap_start.shape[0] != M + 1 or map_scale.shape[0] != M or map_group.shape[0] != M
            or map_pairs.shape[0] != M or cmat.shape[1] != 3 or tap_dy.shape[0] != n_taps
            or tap_dx.shape[0] != n_taps or tap_start[0] != 0 or tap_start[M] != n_taps
            or np.any(np.diff(tap_start) < 0)
            or (n_taps and max(np.max(np.abs(tap_dy)), np.max(np.abs(tap_dx))) > margin)
            or (M and (np.min(map_group) < 0 or np.max(map_group) >= n_groups))):
        raise ValueError("inconsistent filter-bank description")
    out = np.zeros((B, cmat.shape[0], n_groups, L * L + 3), dtype=np.float32)
    cdef float[:, :, :, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if _residual_one(rgb[b], cmat, half, tap_start, tap_dy, tap_dx, tap_w, map_div,
                         map_scale, map_group, map_pairs, n_groups, T, margin,
                         o[b]) != 0:
            failed += 1
    if failed:
        raise MemoryError("residual_features: out of memory for the per-image buffers")
    return out


def _check_sizes(Py_ssize_t H, Py_ssize_t W, const int[::1] half, Py_ssize_t C,
                 Py_ssize_t margin):
    """ValueError unless every channel's plane (half resolution where ``half``) leaves
    at least 2 x 2 residuals inside ``margin``."""
    if half.shape[0] != C:
        raise ValueError(f"half needs one flag per channel ({C}), got {half.shape[0]}")
    cdef Py_ssize_t c, need = 2 * margin + 2
    for c in range(C):
        if (H // 2 if half[c] else H) < need or (W // 2 if half[c] else W) < need:
            raise ValueError(f"images of {H}x{W} pixels are too small for a margin of "
                             f"{margin}" + (" at half resolution" if half[c] else ""))


def residual_srm(const unsigned char[:, :, :, ::1] rgb, const int[:, ::1] cmat,
                 const int[::1] half, const int[::1] group_div, const double[::1] map_scale,
                 int T, int n_threads=1):
    """``residual_features`` of the standard bank (``RESIDUAL_FILTERS`` as shipped: o1,
    o2, o3 directional, kb, kv isotropic; margin 2), fused in integer arithmetic.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    cmat : ndarray of int32, shape (C, 3)
        Integer RGB weights of each channel plane (units of 1/256 level).
    half : ndarray of int32, shape (C,)
        Non-zero where a channel's plane is taken at half resolution: ``floor((sum of
        the plane over each 2 x 2 block + 2) / 4)``, the last odd row and column left out.
    group_div : ndarray of int32, shape (5,)
        Integer quantisation divisor of each filter (denominator x step x 256).
    map_scale : ndarray of float64, shape (8,)
        Factor turning a raw sum of each map (o1h, o1v, o2h, o2v, o3h, o3v, kb, kv)
        into a residual in 8-bit levels.
    T : int
        Truncation threshold, 1 to 8.
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, C, 5, (2T + 1)**2 + 3)
        As ``residual_features``.
    """
    cdef Py_ssize_t B = rgb.shape[0], H = rgb.shape[1], W = rgb.shape[2], b
    cdef Py_ssize_t C = cmat.shape[0], L = 2 * T + 1
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    _check_sizes(H, W, half, C, 2)
    if T < 1 or T > 8:
        raise ValueError(f"T must lie in [1, 8], got {T}")
    cdef int bad = cmat.shape[1] != 3 or group_div.shape[0] != 5 or map_scale.shape[0] != 8
    cdef Py_ssize_t k
    if not bad:  # C loops: NumPy reductions cost more than the check per image
        for k in range(C):
            bad = bad or abs(cmat[k, 0]) > 256 or abs(cmat[k, 1]) > 256 or abs(cmat[k, 2]) > 256
        for k in range(5):
            bad = bad or group_div[k] < 1 or group_div[k] > 12 * 64 * 256
    if bad:
        raise ValueError("inconsistent channel weights, divisors or scales")
    out = np.zeros((B, C, 5, L * L + 3), dtype=np.float32)
    cdef float[:, :, :, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if ffeat_srm_image(&rgb[b, 0, 0, 0], H, W, &cmat[0, 0], &half[0], C, &group_div[0],
                           &map_scale[0], T, &o[b, 0, 0, 0]) != 0:
            failed += 1
    if failed:
        raise MemoryError("residual_srm: out of memory for the per-image buffers")
    return out
