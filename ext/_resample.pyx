"""Pillow's BICUBIC resize of RGB images, bit for bit, in vectorised passes (_resample.h).

The analysis frame (``ffeat._framing``) resizes every image whose centre square is
not already the frame's size with Pillow's ``Image.resize(..., BICUBIC)``; at 1024 px
that cost more than decoding the image. This kernel gives the same bytes (the same
fixed-point coefficients, sums, rounding and pass order as Pillow's Resample.c).
"""
import functools
import math

import numpy as np


cdef extern from "_resample.h" nogil:
    int ffeat_resample_rgb(const unsigned char *inp, Py_ssize_t h, Py_ssize_t w,
                           unsigned char *out, Py_ssize_t oh, Py_ssize_t ow, const int *hb,
                           const int *hk, int ksh, const int *vb, const int *vk, int ksv)


def _bicubic(x):
    # Pillow's bicubic_filter, a = -0.5, operation for operation.
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * -0.5
    return 0.0


@functools.lru_cache(maxsize=32)
def bicubic_coefficients(in_size, out_size):
    """Pillow's ``precompute_coeffs`` and ``normalize_coeffs_8bpc`` for BICUBIC over the
    whole axis (box ``0 .. in_size``): int32 ``(first, count)`` per output pixel, the
    int32 coefficients (``ksize`` per output pixel) and ``ksize``. Plain Python floats
    (untyped here on purpose: the C of this module is compiled with reassociation
    allowed) are the C doubles Pillow computes with, in the same order of operations;
    ``int()`` truncates as C's casts do."""
    in1 = float(np.float32(in_size))  # the box is float in Pillow
    scale = (in1 - 0.0) / out_size
    filterscale = scale if scale >= 1.0 else 1.0
    support = 2.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int32)
    kk = np.zeros((out_size, ksize), dtype=np.int32)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ww = 0.0
        ss = 1.0 / filterscale
        xmin = int(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        k = []
        for x in range(xmax):
            w = _bicubic((float(x + xmin) - center + 0.5) * ss)
            k.append(w)
            ww += w
        for x in range(xmax):
            if ww != 0.0:
                k[x] /= ww
            kk[xx, x] = int(-0.5 + k[x] * (1 << 22)) if k[x] < 0 else int(0.5 + k[x] * (1 << 22))
        bounds[xx, 0] = xmin
        bounds[xx, 1] = xmax
    for a in (bounds, kk):
        a.setflags(write=False)
    return bounds, kk, ksize


def resize_bicubic(const unsigned char[:, :, ::1] rgb, Py_ssize_t out_h, Py_ssize_t out_w):
    """``np.asarray(Image.fromarray(rgb).resize((out_w, out_h), Image.BICUBIC))`` for an
    ``(H, W, 3)`` uint8 image whose height and width both change, bit for bit.

    Returns
    -------
    ndarray of uint8, shape (out_h, out_w, 3)
    """
    cdef Py_ssize_t H = rgb.shape[0], W = rgb.shape[1]
    if rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image (last axis 3), got {rgb.shape[2]}")
    if H < 1 or W < 1 or out_h < 1 or out_w < 1 or out_h == H or out_w == W:
        raise ValueError(f"resize_bicubic resizes both sides: {H}x{W} -> {out_h}x{out_w}")
    hb, hk, ksh = bicubic_coefficients(W, out_w)
    vb, vk, ksv = bicubic_coefficients(H, out_h)
    cdef const int[:, ::1] hb_ = hb
    cdef const int[:, ::1] hk_ = hk
    cdef const int[:, ::1] vb_ = vb
    cdef const int[:, ::1] vk_ = vk
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    cdef unsigned char[:, :, ::1] o = out
    cdef int status
    cdef int ksh_ = ksh, ksv_ = ksv
    with nogil:
        status = ffeat_resample_rgb(&rgb[0, 0, 0], H, W, &o[0, 0, 0], out_h, out_w,
                                    &hb_[0, 0], &hk_[0, 0], ksh_, &vb_[0, 0], &vk_[0, 0],
                                    ksv_)
    if status != 0:
        raise MemoryError("resize_bicubic: out of memory")
    return out
