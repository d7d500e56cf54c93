"""CuPy raw kernels for the feature families' hot spots (CUDA only).

``ffeat_residual_map`` computes one residual filter and its quantised levels
in one pass, one thread per pixel: exact integer sums in float32 and the same
IEEE division, so it is bit-identical to the generic tap-by-tap sums.

For the two scatter-adds (ring sums, co-occurrence counts), each block of a kernel works on a slice of one image (``blockIdx.y``), counts
into a histogram in shared memory, then adds its non-zero cells to the image's
row in global memory: one global atomic per cell and block instead of one per
coefficient or pixel, which matters because most values land in a few cells
(the central co-occurrence cell, the wide outer rings).

They compute what the generic functions of the spectrum and residual families
(``ffeat.families.spectrum``, ``ffeat.families.residual``) compute (the GPU
tests compare them); only the order of the floating-point additions of the
ring sums differs. The kernels are compiled by CuPy (NVRTC) on first use and
cached on disk by CuPy.
"""
from __future__ import annotations

import functools

__all__ = ["ring_sums", "pair_counts", "residual_map"]

_THREADS = 256

_SOURCE = r"""
extern "C" __global__
void ffeat_residual_map(const float* plane, const int* dy, const int* dx, const float* w,
                        const int n_taps, const int h, const int width, const int margin,
                        const float div, const int T, float* s_out, int* levels_out) {
    // plane is (B, h, width); s_out and levels_out are (B, h - 2 margin, width - 2 margin).
    const int hv = h - 2 * margin, wv = width - 2 * margin;
    const long long n = (long long)hv * wv;
    const float* p = plane + (long long)blockIdx.y * h * width;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const int y = (int)(i / wv) + margin, x = (int)(i % wv) + margin;
        float s = 0.0f;
        for (int t = 0; t < n_taps; ++t)
            s = __fadd_rn(s, __fmul_rn(w[t], p[(y + dy[t]) * width + x + dx[t]]));
        const float q = floorf(__fadd_rn(__fdiv_rn(s, div), 0.5f));
        const long long o = (long long)blockIdx.y * n + i;
        s_out[o] = s;
        levels_out[o] = (int)fminf(fmaxf(q, (float)-T), (float)T) + T;
    }
}

extern "C" __global__
void ffeat_ring_sums(const float2* spec, const int* bins, const float* weight,
                     double* sums, const long long n_coef, const int n_bins,
                     const float eps) {
    // Weighted sums of log(|F|^2 + eps) per radial bin; sums is (B, n_bins).
    extern __shared__ double part[];
    for (int k = threadIdx.x; k < n_bins; k += blockDim.x) part[k] = 0.0;
    __syncthreads();
    const float2* s = spec + (long long)blockIdx.y * n_coef;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_coef;
         i += (long long)gridDim.x * blockDim.x) {
        const float2 z = s[i];
        atomicAdd(&part[bins[i]], (double)(weight[i] * logf(z.x * z.x + z.y * z.y + eps)));
    }
    __syncthreads();
    double* row = sums + (long long)blockIdx.y * n_bins;
    for (int k = threadIdx.x; k < n_bins; k += blockDim.x)
        if (part[k] != 0.0) atomicAdd(&row[k], part[k]);
}

extern "C" __global__
void ffeat_pair_counts(const int* levels, unsigned long long* counts, const int h,
                       const int w, const int n_levels, const int pairs,
                       const int n_hist, const int base) {
    // Co-occurrences of neighbouring levels of a (B, h, w) map, added into
    // counts[b, base + first * n_levels + second] (counts is (B, n_hist)).
    extern __shared__ unsigned int cells[];
    const int n_cells = n_levels * n_levels;
    for (int k = threadIdx.x; k < n_cells; k += blockDim.x) cells[k] = 0u;
    __syncthreads();
    const long long n = (long long)h * w;
    const int* q = levels + (long long)blockIdx.y * n;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        const int x = (int)(i % w);
        const int first = q[i] * n_levels;
        if ((pairs & 1) && x + 1 < w) atomicAdd(&cells[first + q[i + 1]], 1u);
        if ((pairs & 2) && i + w < n) atomicAdd(&cells[first + q[i + w]], 1u);
    }
    __syncthreads();
    unsigned long long* row = counts + (long long)blockIdx.y * n_hist + base;
    for (int k = threadIdx.x; k < n_cells; k += blockDim.x)
        if (cells[k]) atomicAdd(&row[k], (unsigned long long)cells[k]);
}
"""


@functools.lru_cache(maxsize=None)
def _kernel(cp, name: str):
    return cp.RawModule(code=_SOURCE).get_function(name)


def _grid(n_items: int, n_images: int) -> tuple[int, int]:
    """Blocks per image (about 8 items per thread, at most 64) and images."""
    return max(1, min(64, -(-n_items // (8 * _THREADS)))), n_images


def ring_sums(cp, spec, bins, weight, n_bins: int, eps: float):
    """Raw-kernel twin of ``spectrum._ring_sums_generic`` (same arguments, result)."""
    b = spec.shape[0]
    n_coef = spec.shape[1] * spec.shape[2]
    spec = cp.ascontiguousarray(spec, dtype=cp.complex64)
    sums = cp.zeros((b, n_bins), dtype=cp.float64)
    _kernel(cp, "ffeat_ring_sums")(
        _grid(n_coef, b), (_THREADS,),
        (spec, cp.ascontiguousarray(bins, dtype=cp.int32),
         cp.ascontiguousarray(weight, dtype=cp.float32), sums,
         cp.int64(n_coef), cp.int32(n_bins), cp.float32(eps)),
        shared_mem=8 * n_bins)
    return sums


def pair_counts(cp, levels, counts, base: int, n_levels: int, pairs: int) -> None:
    """Raw-kernel twin of ``residual._pair_counts_generic`` (adds into ``counts``)."""
    b, h, w = levels.shape
    if counts.dtype != cp.int64 or not counts.flags.c_contiguous:
        raise ValueError("counts must be a C-contiguous int64 array")
    _kernel(cp, "ffeat_pair_counts")(
        _grid(h * w, b), (_THREADS,),
        (cp.ascontiguousarray(levels, dtype=cp.int32), counts, cp.int32(h), cp.int32(w),
         cp.int32(n_levels), cp.int32(pairs), cp.int32(counts.shape[1]), cp.int32(base)),
        shared_mem=4 * n_levels * n_levels)


def residual_map(cp, plane, taps, margin: int, div: float, T: int):
    """Raw-kernel twin of ``residual._residual_map_generic`` (same arguments, result)."""
    b, h, w = plane.shape
    hv, wv = h - 2 * margin, w - 2 * margin
    s = cp.empty((b, hv, wv), dtype=cp.float32)
    levels = cp.empty((b, hv, wv), dtype=cp.int32)
    dy, dx, weight = (cp.asarray(a, dtype=dtype) for a, dtype in
                      zip(taps, (cp.int32, cp.int32, cp.float32)))
    _kernel(cp, "ffeat_residual_map")(
        _grid(hv * wv, b), (_THREADS,),
        (cp.ascontiguousarray(plane, dtype=cp.float32), dy, dx, weight,
         cp.int32(len(weight)), cp.int32(h), cp.int32(w), cp.int32(margin),
         cp.float32(div), cp.int32(T), s, levels))
    return s, levels
