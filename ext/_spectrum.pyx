"""Spectral kernels: BT.601 luma planes and the radial (azimuthal) log-power average."""
import numpy as np
from cython.parallel cimport prange
from libc.math cimport logf
from libc.stdlib cimport malloc, free


cdef extern from "_simd.h" nogil:
    double ffeat_luma_f32(float *o, const unsigned char *rgb, Py_ssize_t n)
    void ffeat_sub_f32(float *o, float m, Py_ssize_t n)
    Py_ssize_t ffeat_log_power(float *out, const float *z, const float *w, float eps,
                               Py_ssize_t n)


def luma(const unsigned char[:, :, :, ::1] rgb, bint centre=False, int n_threads=1):
    """BT.601 luma of an RGB batch as float32 planes.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (B, H, W, 3), C-contiguous
    centre : bool
        Subtract each image's mean luma, so that a following float32 FFT's
        round-off scales with the image's contrast, not its brightness.
    n_threads : int
        OpenMP threads across the images of the batch.

    Returns
    -------
    ndarray of float32, shape (B, H, W)
        ``0.299 R + 0.587 G + 0.114 B``, in [0, 255] unless centred.
    """
    if rgb.shape[3] != 3:
        raise ValueError(f"expected RGB images (last axis 3), got {rgb.shape[3]}")
    cdef Py_ssize_t B = rgb.shape[0], H = rgb.shape[1], W = rgb.shape[2]
    cdef Py_ssize_t b
    cdef double total
    cdef float mean
    out = np.empty((B, H, W), dtype=np.float32)
    cdef float[:, :, ::1] o = out
    if H == 0 or W == 0:
        return out
    cdef Py_ssize_t i, j
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1)):
        if H * W <= (1 << 18):  # the vectorised sum is exact (see _simd.h)
            total = ffeat_luma_f32(&o[b, 0, 0], &rgb[b, 0, 0, 0], H * W)
        else:  # pixel by pixel: the rounding of the sum as it always was
            total = 0.0
            for i in range(H):
                for j in range(W):
                    o[b, i, j] = (0.299 * rgb[b, i, j, 0] + 0.587 * rgb[b, i, j, 1]
                                  + 0.114 * rgb[b, i, j, 2])
                    total = total + o[b, i, j]
        if centre:
            mean = <float>(total / (H * W))
            ffeat_sub_f32(&o[b, 0, 0], mean, H * W)
    return out


def radial_log_power(const float complex[:, :, ::1] spec,
                     const int[:, ::1] bins, const float[:, ::1] weight,
                     Py_ssize_t n_bins, float eps, int n_threads=1, bint check_bins=True):
    """Weighted sums of ``log(|F|^2 + eps)`` over radial bins of half spectra.

    Parameters
    ----------
    spec : ndarray of complex64, shape (B, H, W // 2 + 1)
        Output of a real 2-D FFT over the last two axes.
    bins : ndarray of int32, shape (H, W // 2 + 1)
        Radial bin of every coefficient, in ``[0, n_bins)``.
    weight : ndarray of float32, shape (H, W // 2 + 1)
        How many coefficients of the full spectrum each half-spectrum one
        stands for (2 where it has a mirrored twin, else 1; 0 leaves it out).
    n_bins : int
    eps : float
        Added to the power before the logarithm.
    n_threads : int
        OpenMP threads across the images of the batch.
    check_bins : bool
        Check that every bin lies in ``[0, n_bins)``; a caller whose layout was
        checked when it was built (``spectrum._radial_layout``) leaves it out.

    Returns
    -------
    ndarray of float64, shape (B, n_bins)
        Per-bin weighted sums; divide by the per-bin weight totals for means.
    """
    cdef Py_ssize_t B = spec.shape[0], H = spec.shape[1], Wr = spec.shape[2]
    if (bins.shape[0] != H or bins.shape[1] != Wr or weight.shape[0] != H
            or weight.shape[1] != Wr):
        raise ValueError("bins and weight must match the spectrum's shape")
    if check_bins and H and Wr and (np.min(bins) < 0 or np.max(bins) >= n_bins):
        raise ValueError(f"bins must lie in [0, {n_bins})")
    out = np.zeros((B, n_bins), dtype=np.float64)
    cdef double[:, ::1] o = out
    cdef Py_ssize_t b, i
    cdef int failed = 0
    for b in prange(B, nogil=True, num_threads=max(n_threads, 1)):
        if _ring_sums(&o[b, 0], &spec[b, 0, 0], &bins[0, 0], &weight[0, 0], H, Wr, eps) != 0:
            failed += 1
    if failed:
        raise MemoryError("radial_log_power: out of memory for a row buffer")
    return out


cdef int _ring_sums(double *o, const float complex *spec, const int *bins,
                    const float *weight, Py_ssize_t H, Py_ssize_t Wr,
                    float eps) noexcept nogil:
    """The ring sums of one image's half spectrum (``H x Wr``) into ``o``, row by row:
    each row's weighted log powers in one vectorised pass (``ffeat_log_power``; logf
    where a power is not a positive normal float), then added into their bins in order."""
    cdef float *values = <float *>malloc(Wr * sizeof(float))
    cdef Py_ssize_t i, j, k
    cdef float re, im
    if values == NULL:
        return -1
    for i in range(H):
        k = i * Wr
        if ffeat_log_power(values, <const float *>&spec[k], &weight[k], eps, Wr):
            for j in range(Wr):
                re = spec[k + j].real
                im = spec[k + j].imag
                values[j] = weight[k + j] * logf(re * re + im * im + eps)
        for j in range(Wr):
            o[bins[k + j]] += values[j]
    free(values)
    return 0
