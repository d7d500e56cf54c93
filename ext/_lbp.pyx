"""Local binary pattern kernel: square roots of the uniform (riu2) LBP label
frequencies of the integer luma per cell, at one or more radii."""
import numpy as np
from cython.parallel cimport prange
from libc.math cimport sqrt
from libc.stdlib cimport malloc, free


cdef extern from "_simd.h" nogil:
    void ffeat_luma_int(int *y, const unsigned char *rgb, Py_ssize_t n)
    void ffeat_cell_offsets(int *off, Py_ssize_t size, int margin, int cells, int stride)
    void ffeat_lbp_row(const int *up, const int *mid, const int *down, Py_ssize_t n, int r,
                       int *code)


cdef inline void _count_row(int *sub, Py_ssize_t n_row, const int *col_cell,
                            const int *code, const unsigned char[::1] labels,
                            Py_ssize_t n) noexcept nogil:
    """Count the labels of ``n`` pixels of a row into four interleaved sub-histograms
    of ``n_row`` entries (pixel ``j`` into ``sub + (j % 4) * n_row``): neighbours, often
    of one cell and label, do not wait on each other's increment of one counter."""
    cdef Py_ssize_t j = 0
    while j + 4 <= n:
        sub[col_cell[j] + labels[code[j]]] += 1
        sub[n_row + col_cell[j + 1] + labels[code[j + 1]]] += 1
        sub[2 * n_row + col_cell[j + 2] + labels[code[j + 2]]] += 1
        sub[3 * n_row + col_cell[j + 3] + labels[code[j + 3]]] += 1
        j += 4
    while j < n:
        sub[col_cell[j] + labels[code[j]]] += 1
        j += 1


cdef inline void _fold4(int *counts, int *sub, Py_ssize_t n_row) noexcept nogil:
    """Add the four sub-histograms into ``counts`` (``n_row`` entries) and zero them."""
    cdef Py_ssize_t c
    for c in range(n_row):
        counts[c] += sub[c] + sub[n_row + c] + sub[2 * n_row + c] + sub[3 * n_row + c]
        sub[c] = 0
        sub[n_row + c] = 0
        sub[2 * n_row + c] = 0
        sub[3 * n_row + c] = 0


cdef int _lbp_one(const unsigned char[:, :, ::1] img, float[::1] out, int cells,
                  const unsigned char[::1] labels, int n,
                  const int[::1] radii) noexcept nogil:
    cdef Py_ssize_t H = img.shape[0], W = img.shape[1], Wi
    cdef Py_ssize_t n_cell = <Py_ssize_t>cells * cells * n
    cdef Py_ssize_t i, c, q
    cdef int k, r, total
    cdef int *luma
    cdef int *col_cell
    cdef int *code
    cdef int *counts
    cdef int *sub
    cdef Py_ssize_t n_row = <Py_ssize_t>cells * n, row_cell, cur
    cdef float *block
    for c in range(n_cell * radii.shape[0]):
        out[c] = 0.0
    if H < 3 or W < 3:  # no interior pixels at any radius
        return 0
    # One block: luma, then the cell offsets and codes of one row, the counts, and
    # four sub-histograms of one row of cells (see _count_row).
    luma = <int *>malloc((H * W + 2 * W + n_cell + 4 * n_row) * sizeof(int))
    if luma == NULL:
        return -1
    col_cell, code, counts = luma + H * W, luma + H * W + W, luma + H * W + 2 * W
    sub = counts + n_cell
    ffeat_luma_int(luma, &img[0, 0, 0], H * W)
    for q in range(radii.shape[0]):
        r = radii[q]
        if H < 2 * r + 1 or W < 2 * r + 1:  # no interior pixels at this radius
            continue
        Wi = W - 2 * r
        for c in range(n_cell):
            counts[c] = 0
        ffeat_cell_offsets(col_cell, W, r, cells, n)  # of each interior column's histogram
        for c in range(4 * n_row):
            sub[c] = 0
        cur = r * cells // H
        for i in range(r, H - r):
            row_cell = i * cells // H
            if row_cell != cur:
                _fold4(counts + cur * n_row, sub, n_row)
                cur = row_cell
            ffeat_lbp_row(luma + (i - r) * W, luma + i * W, luma + (i + r) * W, Wi, r, code)
            _count_row(sub, n_row, col_cell, code, labels, Wi)
        _fold4(counts + cur * n_row, sub, n_row)
        block = &out[q * n_cell]
        for c in range(cells * cells):
            total = 0
            for k in range(n):
                total = total + counts[c * n + k]
            if total > 0:  # empty cells stay zero
                for k in range(n):
                    block[c * n + k] = <float>sqrt(<double>counts[c * n + k] / <double>total)
    free(luma)
    return 0


cdef dict _RADII = {}


cdef _radii_array(radii):
    """``radii`` as int32, kept per tuple (a family passes the same tuple every image)."""
    if isinstance(radii, tuple):
        a = _RADII.get(radii)
        if a is None:
            a = np.ascontiguousarray(radii, dtype=np.int32)
            a.setflags(write=False)
            if len(_RADII) < 64:
                _RADII[radii] = a
        return a
    return np.ascontiguousarray(radii, dtype=np.int32)


def lbp_cells(const unsigned char[:, :, :, ::1] rgb, int cells,
              const unsigned char[::1] labels, int n_labels, radii, int n_threads=1):
    """Root frequencies of local binary pattern labels of the luma on a ``cells x cells``
    grid, at each radius.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    cells : int
        Side of the cell grid; pixel (i, j) is in cell
        ``(i * cells // H, j * cells // W)``.
    labels : ndarray of uint8, shape (256,)
        Label of each 8-bit code, all below ``n_labels``.
    n_labels : int
        Histogram bins per cell.
    radii : sequence of int
        Neighbour distances, each at least 1: neighbour ``k`` of a pixel is
        ``r * LBP_NEIGHBOURS[k]`` away; only pixels at least ``r`` from every
        border have a code.
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, len(radii) * cells * cells * n_labels)
        Row-major over radius, cell row, cell column, label; the square roots
        of each non-empty cell's label frequencies among its coded pixels,
        empty cells zero.
    """
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    if cells < 1:
        raise ValueError(f"cells must be at least 1, got {cells}")
    cdef Py_ssize_t k
    cdef int bad = labels.shape[0] != 256 or n_labels < 1
    if not bad:  # C loops: NumPy reductions cost more than the check per image
        for k in range(256):
            bad = bad or labels[k] >= n_labels
    if bad:
        raise ValueError(f"labels must map the 256 codes into [0, {n_labels})")
    cdef const int[::1] radii_c = _radii_array(radii)
    bad = radii_c.shape[0] < 1
    for k in range(radii_c.shape[0]):
        bad = bad or radii_c[k] < 1
    if bad:
        raise ValueError(f"radii must be one or more integers of at least 1, got {radii}")
    cdef Py_ssize_t B = rgb.shape[0], b
    out = np.empty((B, radii_c.shape[0] * cells * cells * n_labels), dtype=np.float32)
    cdef float[:, ::1] o = out
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1), schedule='dynamic'):
        if _lbp_one(rgb[b], o[b], cells, labels, n_labels, radii_c) != 0:
            failed += 1
    if failed:
        raise MemoryError("lbp_cells: out of memory for the luma and histogram buffers")
    return out
