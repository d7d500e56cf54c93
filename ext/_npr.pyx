"""Neighbouring-pixel differences per 2x2 phase: histograms and moments.

One pass per channel plane: for each pixel and each neighbour offset, the exact
integer difference (units of 1/256 level) is added to its group's sums of
``|D|`` and ``D**2`` (int64) and its clipped level counted.
"""
import numpy as np
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free


cdef inline void _row(const int *x0, const int *x1, Py_ssize_t n, int T,
                      long long *a) noexcept nogil:
    """Add the differences ``x1[j] - x0[j]`` for ``j = 0, 2, 4, ... < n`` to the
    group accumulator ``a`` (count, sum |D|, sum D**2, level counts)."""
    cdef Py_ssize_t j, k
    cdef int diff, level
    cdef long long s1 = 0, s2 = 0
    # Two interleaved level histograms break the store-to-load dependency of
    # repeated increments of the same (mostly the central) bin.
    cdef int h[2][33]
    for k in range(2 * T + 1):
        h[0][k] = 0
        h[1][k] = 0
    for j in range(0, n, 2):
        diff = x1[j] - x0[j]
        s1 += diff if diff >= 0 else -diff
        s2 += <long long>diff * diff
        # floor(diff / 256 + 1/2) with a non-negative numerator, then clipped.
        level = (diff + 128 + 256 * 256) // 256 - 256
        level = -T if level < -T else level
        level = T if level > T else level
        h[(j >> 1) & 1][T + level] += 1
    for k in range(2 * T + 1):
        a[3 + k] += h[0][k] + h[1][k]
    a[0] += (n + 1) // 2
    a[1] += s1
    a[2] += s2


cdef int _npr_one(const unsigned char[:, :, ::1] img, const int[:, ::1] cmat,
                  const int[:, ::1] offsets, int T, double[:, :, :, ::1] out) noexcept nogil:
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1]
    cdef Py_ssize_t C = cmat.shape[0], D = offsets.shape[0], L = 2 * T + 1
    cdef Py_ssize_t n_groups = D * 4, c, d, g, i, j, k, dy, dx
    cdef int *plane = <int *>malloc(H * W * sizeof(int))
    # Per group (offset, phase): count, sum |D|, sum D**2, then L level counts.
    cdef long long *acc = <long long *>malloc(n_groups * (L + 3) * sizeof(long long))
    cdef long long n
    cdef long long *a
    cdef const unsigned char *px
    if plane == NULL or acc == NULL:
        free(plane)
        free(acc)
        return -1
    px = &img[0, 0, 0]
    for c in range(C):
        for j in range(H * W):
            plane[j] = (cmat[c, 0] * px[3 * j] + cmat[c, 1] * px[3 * j + 1]
                        + cmat[c, 2] * px[3 * j + 2])
        for k in range(n_groups * (L + 3)):
            acc[k] = 0
        for d in range(D):
            dy = offsets[d, 0]
            dx = offsets[d, 1]
            if W - dx < 1:
                continue
            for i in range(H - dy):
                # Phase (i % 2, 0): even anchors; (i % 2, 1): odd anchors.
                a = acc + (d * 4 + (i % 2) * 2) * (L + 3)
                _row(plane + i * W, plane + (i + dy) * W + dx, W - dx, T, a)
                _row(plane + i * W + 1, plane + (i + dy) * W + dx + 1, W - dx - 1, T,
                     a + L + 3)
        for g in range(n_groups):
            a = acc + g * (L + 3)
            n = a[0]
            if n == 0:
                for k in range(L + 2):
                    out[c, g // 4, g % 4, k] = 0.0
                continue
            out[c, g // 4, g % 4, 0] = a[1] / (256.0 * n)
            out[c, g // 4, g % 4, 1] = sqrt(<double>a[2] / n) / 256.0
            for k in range(L):
                out[c, g // 4, g % 4, 2 + k] = <double>a[3 + k] / n
    free(plane)
    free(acc)
    return 0


def npr_features(const unsigned char[:, :, :, ::1] rgb, const int[:, ::1] cmat,
                 const int[:, ::1] offsets, int T, int n_threads=1):
    """Phase-split statistics of neighbouring-pixel differences of an RGB batch.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    cmat : ndarray of int32, shape (C, 3)
        Integer RGB weights of each channel plane (units of 1/256 level).
    offsets : ndarray of int32, shape (D, 2)
        Neighbour offsets ``(dy, dx)``, each 0 or 1.
    T : int
        Levels are clipped to ``[-T, T]``.
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, C, D, 4, 2T + 3)
        Per channel, offset and anchor phase ``(i % 2) * 2 + j % 2``: mean |D|,
        RMS (8-bit levels), then the level frequencies from -T to T.
    """
    cdef Py_ssize_t B = rgb.shape[0], b
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    if rgb.shape[1] < 1 or rgb.shape[2] < 1:
        raise ValueError(f"images of {rgb.shape[1]}x{rgb.shape[2]} pixels have no pixels")
    if not 1 <= T <= 16:
        raise ValueError(f"T must lie in [1, 16], got {T}")
    if cmat.shape[1] != 3 or offsets.shape[1] != 2 or np.any(np.asarray(offsets) < 0) \
            or np.any(np.asarray(offsets) > 1) or np.any(np.abs(np.asarray(cmat)) > 256):
        raise ValueError("inconsistent channel weights or offsets")
    out = np.zeros((B, cmat.shape[0], offsets.shape[0], 4, 2 * T + 3), dtype=np.float64)
    cdef double[:, :, :, :, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if _npr_one(rgb[b], cmat, offsets, T, o[b]) != 0:
            failed += 1
    if failed:
        raise MemoryError("npr_features: out of memory for the per-image buffers")
    return out.astype(np.float32)
