"""Gradient-orientation histogram kernel: integer-luma gradients binned per cell."""
import numpy as np
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.math cimport atan2, sqrt, M_PI


cdef inline int _orientation_bin(int gx, int gy, int n) noexcept nogil:
    """Bin of the unsigned orientation of (gx, gy): atan2 folded into [0, pi),
    then ``min(int(theta * n / pi), n - 1)``, in double like the reference."""
    cdef double theta = atan2(<double>gy, <double>gx)
    cdef int k
    if theta < 0:
        theta = theta + M_PI
    if theta >= M_PI:
        theta = theta - M_PI
    k = <int>(theta * n / M_PI)
    return k if k < n - 1 else n - 1


cdef void _l2hys(double *h, int n, double eps2, double clip) noexcept nogil:
    """L2-Hys in place: L2-normalise, clip at ``clip``, L2-normalise again."""
    cdef int k
    cdef double ss = 0.0, norm
    for k in range(n):
        ss = ss + h[k] * h[k]
    if ss == 0.0:
        return  # an empty or flat cell stays zero
    norm = sqrt(ss + eps2)
    ss = 0.0
    for k in range(n):
        h[k] = h[k] / norm
        if h[k] > clip:
            h[k] = clip
        ss = ss + h[k] * h[k]
    norm = sqrt(ss + eps2)
    for k in range(n):
        h[k] = h[k] / norm


cdef int _hog_one(const unsigned char[:, :, ::1] img, float[::1] out, int cells, int n,
                  double eps, double clip) noexcept nogil:
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1]
    cdef Py_ssize_t n_out = <Py_ssize_t>cells * cells * n
    cdef int *luma = <int *>malloc(H * W * sizeof(int))
    cdef int *col_cell = <int *>malloc(W * sizeof(int))
    cdef double *hist = <double *>malloc(n_out * sizeof(double))
    cdef Py_ssize_t i, j, c
    cdef int gx, gy
    cdef const int *up
    cdef const int *mid
    cdef const int *down
    cdef double *row_hist
    if H < 3 or W < 3:  # no interior pixels
        for c in range(n_out):
            out[c] = 0.0
        return 0
    if luma == NULL or col_cell == NULL or hist == NULL:
        free(luma)
        free(col_cell)
        free(hist)
        return -1
    for c in range(n_out):
        hist[c] = 0.0
    # Integer luma in 1/256 levels (CHANNELS["Y"]).
    for i in range(H):
        for j in range(W):
            luma[i * W + j] = 77 * img[i, j, 0] + 150 * img[i, j, 1] + 29 * img[i, j, 2]
    for j in range(W):
        col_cell[j] = <int>(j * cells // W) * n
    # Central differences at interior pixels, in row-major order (as the reference).
    for i in range(1, H - 1):
        up = luma + (i - 1) * W
        mid = luma + i * W
        down = luma + (i + 1) * W
        row_hist = hist + (i * cells // H) * cells * n
        for j in range(1, W - 1):
            gx = mid[j + 1] - mid[j - 1]
            gy = down[j] - up[j]
            if gx == 0 and gy == 0:
                continue  # zero magnitude: adds nothing
            row_hist[col_cell[j] + _orientation_bin(gx, gy, n)] += (
                sqrt(<double>gx * gx + <double>gy * gy) / 256.0)
    for c in range(cells * cells):
        _l2hys(hist + c * n, n, eps * eps, clip)
    for c in range(n_out):
        out[c] = <float>hist[c]
    free(luma)
    free(col_cell)
    free(hist)
    return 0


def hog_cells(const unsigned char[:, :, :, ::1] rgb, int cells, int orientations,
              int n_threads=1, double eps=1e-3, double clip=0.2):
    """Histograms of gradient orientations of the luma on a ``cells x cells`` grid.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    cells : int
        Side of the cell grid; pixel (i, j) is in cell
        ``(i * cells // H, j * cells // W)``.
    orientations : int
        Unsigned orientation bins over [0, pi).
    n_threads : int
        OpenMP threads across the images of the batch.
    eps, clip : float
        Regulariser and clipping level of the L2-Hys normalisation.

    Returns
    -------
    ndarray of float32, shape (B, cells * cells * orientations)
        Row-major over cell row, cell column, orientation; each non-empty cell
        L2-Hys normalised, empty or flat cells zero.
    """
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    if cells < 1 or orientations < 1:
        raise ValueError(f"cells and orientations must be at least 1, got {cells}, "
                         f"{orientations}")
    cdef Py_ssize_t B = rgb.shape[0], b
    out = np.empty((B, cells * cells * orientations), dtype=np.float32)
    cdef float[:, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if _hog_one(rgb[b], o[b], cells, orientations, eps, clip) != 0:
            failed += 1
    if failed:
        raise MemoryError("hog_cells: out of memory for the luma and histogram buffers")
    return out
