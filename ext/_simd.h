/* Small loops with restrict-qualified pointers, so that the compiler vectorises
 * them without run-time alias checks. Used by the Cython kernels.
 *
 * They are kept out of line (inlining into the Cython code loses the restrict
 * qualifiers), and where GCC's function multi-versioning works they are also
 * compiled for AVX2, picked at load time on CPUs that have it, so the same
 * binary runs on any x86-64 and uses wider vectors where they exist. */
#ifndef FFEAT_SIMD_H
#define FFEAT_SIMD_H
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FFEAT_KERNEL __attribute__((noinline, target_clones("avx2", "default"))) static
#else
#define FFEAT_KERNEL __attribute__((noinline)) static
#endif

/* y[i] += a * x[i] */
FFEAT_KERNEL void ffeat_axpy(float *restrict y, const float *restrict x, float a,
                              ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] += a * x[i];
}

/* q[i] = clip(floor(s[i] / d + 1/2), -t, t) + t, exactly, by threshold counting. */
FFEAT_KERNEL void ffeat_quantise(int *restrict q, const float *restrict s, float d,
                                  int t, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) q[i] = t;
    for (int k = 1; k <= t; k++) {
        const float thr = (k - 0.5f) * d;
        for (ptrdiff_t i = 0; i < n; i++) q[i] += (s[i] >= thr) - (s[i] < -thr);
    }
}

/* idx[i] = base + a[i] * l + b[i] */
FFEAT_KERNEL void ffeat_pair_index(int *restrict idx, const int *restrict a,
                                    const int *restrict b, int base, int l, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) idx[i] = base + a[i] * l + b[i];
}

/* Count idx into four interleaved histograms of stride n_hist. */
FFEAT_KERNEL void ffeat_count4(long long *restrict hist, const int *restrict idx,
                                ptrdiff_t n_hist, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + 4 <= n; i += 4) {
        hist[idx[i]] += 1;
        hist[n_hist + idx[i + 1]] += 1;
        hist[2 * n_hist + idx[i + 2]] += 1;
        hist[3 * n_hist + idx[i + 3]] += 1;
    }
    for (; i < n; i++) hist[idx[i]] += 1;
}

/* Sums of |s|, s^2 and s^4 in double precision. */
FFEAT_KERNEL void ffeat_moments(const float *restrict s, ptrdiff_t n, double *a1,
                                 double *a2, double *a4) {
    double m1 = 0.0, m2 = 0.0, m4 = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const double v = s[i], v2 = v * v;
        m1 += v < 0 ? -v : v;
        m2 += v2;
        m4 += v2 * v2;
    }
    *a1 = m1; *a2 = m2; *a4 = m4;
}
#endif
