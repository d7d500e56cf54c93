"""Grayscale-pixel kernel: BT.601 luma box-downsampled to a fixed grid."""
import numpy as np
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.math cimport floor, ceil


cdef extern from "_simd.h" nogil:
    void ffeat_luma_axpy(double *row, const unsigned char *rgb, double w, Py_ssize_t n)


cdef inline void _band(Py_ssize_t u, double step, Py_ssize_t n, double *lo, double *hi,
                       Py_ssize_t *first, Py_ssize_t *stop) noexcept nogil:
    """Cell ``u`` of width ``step`` covers [lo, hi): pixels first..stop-1 of n."""
    lo[0] = u * step
    hi[0] = (u + 1) * step
    first[0] = <Py_ssize_t>floor(lo[0])
    stop[0] = <Py_ssize_t>ceil(hi[0])
    if stop[0] > n:
        stop[0] = n


cdef inline double _weight(Py_ssize_t k, double lo, double hi, double step) noexcept nogil:
    """Share of pixel [k, k+1) in the cell [lo, hi), over the cell's width."""
    cdef double a = k if k > lo else lo
    cdef double b = k + 1 if k + 1 < hi else hi
    return (b - a) / step if b > a else 0.0


cdef int _gray_one(const unsigned char[:, :, ::1] img, float[::1] out,
                   Py_ssize_t size) noexcept nogil:
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1]
    cdef double sy = <double>H / size, sx = <double>W / size
    cdef double *rows = <double *>malloc(size * W * sizeof(double))
    cdef double *wx = <double *>malloc(W * sizeof(double))
    cdef Py_ssize_t u, v, i, j, first, stop
    cdef double lo, hi, acc
    if rows == NULL or wx == NULL:
        free(rows)
        free(wx)
        return -1
    # Pass 1: area-average the luma of each band of rows into `rows` (size x W).
    for u in range(size):
        _band(u, sy, H, &lo, &hi, &first, &stop)
        for j in range(W):
            rows[u * W + j] = 0.0
        for i in range(first, stop):
            ffeat_luma_axpy(rows + u * W, &img[i, 0, 0], _weight(i, lo, hi, sy), W)
    # Pass 2: area-average each band along the columns.
    for v in range(size):
        _band(v, sx, W, &lo, &hi, &first, &stop)
        for j in range(first, stop):
            wx[j] = _weight(j, lo, hi, sx)
        for u in range(size):
            acc = 0.0
            for j in range(first, stop):
                acc += wx[j] * rows[u * W + j]
            out[u * size + v] = <float>acc
    free(rows)
    free(wx)
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
    if rgb.shape[1] < 1 or rgb.shape[2] < 1:
        raise ValueError(f"images of {rgb.shape[1]}x{rgb.shape[2]} pixels have no pixels")
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
