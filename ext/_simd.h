/* Small loops with restrict-qualified pointers, so that the compiler vectorises
 * them without run-time alias checks. Used by the Cython kernels.
 *
 * They are kept out of line (inlining into the Cython code loses the restrict
 * qualifiers), and where GCC's function multi-versioning works they are also
 * compiled for AVX2 and for x86-64-v4 (AVX-512: masked and wider conversions, about
 * 15% less time in hog, lbp and spectrum, half in gray), picked at load time on CPUs
 * that have them, so the same binary runs on any x86-64 and uses wider vectors where
 * they exist. Integer results are the same on every version; a float one may differ in
 * its last bit where the compiler reassociates (see each function). */
#ifndef FFEAT_SIMD_H
#define FFEAT_SIMD_H
#include <math.h>
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FFEAT_KERNEL \
    __attribute__((noinline, target_clones("arch=x86-64-v4", "avx2", "default"))) static
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

/* y[i] = 77 R + 150 G + 29 B: integer luma in 1/256 levels of n RGB pixels. */
FFEAT_KERNEL void ffeat_luma_int(int *restrict y, const unsigned char *restrict rgb,
                                  ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = 77 * rgb[3 * i] + 150 * rgb[3 * i + 1] + 29 * rgb[3 * i + 2];
}

/* off[j] = ((j + margin) * cells / size) * stride for the n = size - 2 * margin
 * interior columns (or rows) of an image side of `size` pixels: the offset of
 * each one's cell, of `stride` entries, along a `cells`-wide grid. */
FFEAT_KERNEL void ffeat_cell_offsets(int *restrict off, ptrdiff_t size, int margin,
                                      int cells, int stride) {
    for (ptrdiff_t j = 0; j + 2 * margin < size; j++)
        off[j] = (int)((j + margin) * cells / size) * stride;
}

/* Central differences of the n interior pixels of a luma row (mid[1..n]; up and
 * down are the rows above and below), their magnitudes sqrt(gx^2 + gy^2) / 256
 * in double, and the orientation bin among n_bins over [0, pi) from a float
 * arctangent (Abramowitz & Stegun 4.4.49, |error| <= 2e-8 rad; about 1e-7 rad
 * in float). A guess within `margin` bins of an inner bin edge is marked -1 for
 * the caller to decide exactly with atan2. */
FFEAT_KERNEL void ffeat_hog_row(const int *restrict up, const int *restrict mid,
                                 const int *restrict down, ptrdiff_t n, int n_bins,
                                 float margin, int *restrict gx_out,
                                 int *restrict gy_out, double *restrict mag,
                                 int *restrict bin) {
    const float bins_per_rad = (float)(n_bins / 3.14159265358979323846);
    const float pi = 3.14159265358979323846f, half_pi = 1.57079632679489661923f;
    for (ptrdiff_t i = 0; i < n; i++) {
        const int gx = mid[i + 2] - mid[i], gy = down[i + 1] - up[i + 1];
        gx_out[i] = gx;
        gy_out[i] = gy;
        mag[i] = sqrt((double)gx * gx + (double)gy * gy) / 256.0;
        const float ax = (float)(gx < 0 ? -gx : gx), ay = (float)(gy < 0 ? -gy : gy);
        const float lo = ax < ay ? ax : ay, hi = ax < ay ? ay : ax;
        const float a = lo / (hi > 1.0f ? hi : 1.0f), a2 = a * a;
        float r = a * (1.0f + a2 * (-0.3333314528f + a2 * (0.1999355085f + a2 * (
            -0.1420889944f + a2 * (0.1065626393f + a2 * (-0.0752896400f + a2 * (
            0.0429096138f + a2 * (-0.0161657367f + a2 * 0.0028662257f))))))));
        r = ay > ax ? half_pi - r : r;
        /* Quadrants II and IV fold to pi - angle; the axes stay as they are. */
        const int flip = ((gx < 0) & (gy > 0)) | ((gx > 0) & (gy < 0));
        r = flip ? pi - r : r;
        const float t = r * bins_per_rad;
        const int k = (int)t;
        const int near_edge = ((k > 0) & (t - (float)k < margin))
                              | ((k < n_bins - 1) & ((float)(k + 1) - t < margin));
        bin[i] = near_edge ? -1 : (k < n_bins - 1 ? k : n_bins - 1);
    }
}

/* Local binary pattern codes at radius r of the n interior pixels of a luma row
 * (mid[r..r+n-1]; up and down are the rows r above and below): bit k is set when
 * neighbour k of the square of side 2r + 1, counted clockwise from the top left,
 * r * (-1,-1), (-1,0), (-1,1), (0,1), (1,1), (1,0), (1,-1), (0,-1), is at least
 * the centre. */
FFEAT_KERNEL void ffeat_lbp_row(const int *restrict up, const int *restrict mid,
                                 const int *restrict down, ptrdiff_t n, int r,
                                 int *restrict code) {
    for (ptrdiff_t i = 0; i < n; i++) {
        const int c = mid[i + r];
        code[i] = (up[i] >= c) | (up[i + r] >= c) << 1 | (up[i + 2 * r] >= c) << 2
                  | (mid[i + 2 * r] >= c) << 3 | (down[i + 2 * r] >= c) << 4
                  | (down[i + r] >= c) << 5 | (down[i] >= c) << 6 | (mid[i] >= c) << 7;
    }
}
/* o[i] = 0.299 R + 0.587 G + 0.114 B of n RGB pixels (in double, stored as float), and
 * the sum of the o[i] in double. Each o[i] is below 2^8 and a multiple of 2^-27 (the
 * smallest non-zero one is 0.114), so for n <= 2^18 every partial sum is exact and the
 * vectorised reduction gives the sequential sum bit for bit; larger n: see the caller. */
FFEAT_KERNEL double ffeat_luma_f32(float *restrict o, const unsigned char *restrict rgb,
                                   ptrdiff_t n) {
    double total = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float v = (float)(0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1]
                                + 0.114 * rgb[3 * i + 2]);
        o[i] = v;
        total += v;
    }
    return total;
}

/* row[i] += w * (0.299 R + 0.587 G + 0.114 B) of n RGB pixels, in double. */
FFEAT_KERNEL void ffeat_luma_axpy(double *restrict row, const unsigned char *restrict rgb,
                                  double w, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        row[i] += w * (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]);
}

/* out[i] = w[i] * log(re^2 + im^2 + eps) of n complex values z (re, im interleaved),
 * in float as ``w * logf(p)`` with p = re^2 + im^2 + eps in float, the logarithm taken in
 * double and rounded once to float: p = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) =
 * 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^17 (truncation below
 * 1e-14 relative; s itself to about 1e-14), so that the float is the correctly rounded logarithm but where the
 * exact value lies within about 1e-13 of a rounding edge. A libm's logf is within an ulp
 * of it (glibc's 0.82 ulp), so a value may differ from logf's by one ulp. Vectorises;
 * returns the number of p that are not positive normal floats (zero, subnormal, inf,
 * NaN), whose out[i] the caller recomputes with logf. */
FFEAT_KERNEL ptrdiff_t ffeat_log_power(float *restrict out, const float *restrict z,
                                       const float *restrict w, float eps, ptrdiff_t n) {
    ptrdiff_t special = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const float re = z[2 * i], im = z[2 * i + 1];
        union { float f; unsigned int u; } p = { re * re + im * im + eps }, m;
        special += p.u - 0x00800000u >= 0x7f800000u - 0x00800000u;
        /* Exponent relative to sqrt(1/2) (0x3f3504f3), and the mantissa in range. */
        const int e = (int)(p.u - 0x3f3504f3u) >> 23;
        m.u = p.u - ((unsigned int)e << 23);
        const double f = (double)m.f - 1.0, s = f / (2.0 + f), s2 = s * s;
        const double series = 1.0 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (
            1.0 / 9 + s2 * (1.0 / 11 + s2 * (1.0 / 13 + s2 * (1.0 / 15 + s2 / 17)))))));
        out[i] = w[i] * (float)(e * 0.69314718055994530942 + 2.0 * s * series);
    }
    return special;
}

/* o[i] -= m */
FFEAT_KERNEL void ffeat_sub_f32(float *restrict o, float m, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) o[i] -= m;
}
#endif
