"""Grayscale-pixel kernel: BT.601 luma box-downsampled to a fixed grid."""
import numpy as np
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.math cimport floor, ceil


cdef inline double _overlap(Py_ssize_t k, double lo, double hi) noexcept nogil:
    """Length of the overlap of pixel [k, k+1) with the interval [lo, hi)."""
    cdef double a = k if k > lo else lo
    cdef double b = k + 1 if k + 1 < hi else hi
    return b - a if b > a else 0.0


cdef int _gray_one(const unsigned char[:, :, ::1] img, float[::1] out,
                   Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1]
    cdef double sy = <double>H / size, sx = <double>W / size
    cdef double *rows = <double *>malloc(size * W * sizeof(double))
    cdef Py_ssize_t u, v, i, j, i0, i1, j0, j1
    cdef double lo, hi, w, acc, luma
    if rows == NULL:
        return -1
    # Pass 1: area-average the luma of each band of rows into `rows` (size x W).
    for u in range(size):
        lo = u * sy
        hi = (u + 1) * sy
        i0 = <Py_ssize_t>floor(lo)
        i1 = <Py_ssize_t>ceil(hi)
        if i1 > H:
            i1 = H
        for j in range(W):
            rows[u * W + j] = 0.0
        for i in range(i0, i1):
            w = _overlap(i, lo, hi) / sy
            if w <= 0.0:
                continue
            for j in range(W):
                luma = (0.299 * img[i, j, 0] + 0.587 * img[i, j, 1]
                        + 0.114 * img[i, j, 2])
                rows[u * W + j] += w * luma
    # Pass 2: area-average each band along the columns.
    for v in range(size):
        lo = v * sx
        hi = (v + 1) * sx
        j0 = <Py_ssize_t>floor(lo)
        j1 = <Py_ssize_t>ceil(hi)
        if j1 > W:
            j1 = W
        for u in range(size):
            acc = 0.0
            for j in range(j0, j1):
                acc += _overlap(j, lo, hi) / sx * rows[u * W + j]
            out[u * size + v] = <float>acc
    free(rows)
    return 0


def gray_grid(const unsigned char[:, :, :, ::1] rgb, Py_ssize_t size,
              int n_threads=1):
    """Luma of each image of an RGB batch, area-averaged to ``size x size``.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    size : int
        Side of the output grid.
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, size * size)
        Row-major grid of luma values in [0, 255].
    """
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    cdef Py_ssize_t B = rgb.shape[0], b
    out = np.empty((B, size * size), dtype=np.float32)
    cdef float[:, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if _gray_one(rgb[b], o[b], size) != 0:
            failed += 1
    if failed:
        raise MemoryError("gray_grid: out of memory for the row buffer")
    return out
