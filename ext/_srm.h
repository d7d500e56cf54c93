/* The residual family's standard filter bank (o1, o2, o3 directional, kb and kv
 * isotropic; see ffeat/families/residual.py) in one fused pass per channel and row,
 * in exact int32 arithmetic. Used by _residual.pyx's `residual_srm`.
 *
 * Per channel: plane rows (integer RGB weights; for a channel taken at half resolution,
 * floored means of 2 x 2 blocks, from two image rows added) in a ring of 8 rows; per interior
 * row the 8 maps' responses from shared intermediates (the kb kernel is minus the
 * outer product of [1 -2 1] with itself, i.e. minus the horizontal second difference
 * of the vertical one; the symmetric kv kernel is three column combinations of
 * vertical sums, filtered horizontally); then per map the row's sum of |s| (exact,
 * int64) and of s^2 and s^4 (double: each s^2 is exact, and so is a row's sum of them
 * below 2^53, as the generic kernel's), and the quantised levels (int32, by exact
 * integer threshold comparisons: the level counts the thresholds (2k - 1) D / 2 at or
 * below s); then, one row later, the co-occurrences. The generic kernel sums in float32
 * the same integers (exact below 2^24), so levels, counts and the sums of |s| and s^2
 * are the same numbers; the sums of s^4 differ in their order of addition (a relative
 * 1e-16, far below the float32 of the features: bit-identical on every image tested).
 *
 * Co-occurrences: for a directional filter the horizontal pair of its horizontal map
 * and the vertical pair of its vertical map at the same pixel are counted as one
 * joint index of L^4 cells; for an isotropic filter the pixel, its right and its lower
 * neighbour as one index of L^3 cells (L = 2T + 1, joint tables when T <= 3). The
 * pairs of the last row (horizontal) and last column (vertical) are counted alone;
 * the tables are summed to pair counts at the end. The five tables are incremented
 * in turn, pixel by pixel, so that two increments of one cell are five apart (no
 * store-to-load stall on the central cell). Counts are the same integers as one
 * increment per pair. */
#ifndef FFEAT_SRM_H
#define FFEAT_SRM_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_simd.h"

#define FFEAT_SRM_MAPS 8
#define FFEAT_SRM_GROUPS 5
/* Largest T counted through joint tables (L^4 = 2401 cells). */
#define FFEAT_SRM_JOINT_T 3

/* The kernels below are also compiled for x86-64-v4 (AVX-512) where GCC's function
 * multi-versioning works: the vector code is written for 16 lanes. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FFEAT_SRM_KERNEL \
    __attribute__((noinline, target_clones("arch=x86-64-v4", "avx2", "default"))) static
#else
#define FFEAT_SRM_KERNEL __attribute__((noinline)) static
#endif

/* out[i] = c0 R + c1 G + c2 B of n RGB pixels. */
FFEAT_SRM_KERNEL void ffeat_srm_plane(int32_t *restrict out, const uint8_t *restrict rgb,
                                  int32_t c0, int32_t c1, int32_t c2, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = c0 * rgb[3 * i] + c1 * rgb[3 * i + 1] + c2 * rgb[3 * i + 2];
}

/* sum[k] = a[k] + b[k]: two RGB rows added (m bytes). */
FFEAT_SRM_KERNEL void ffeat_srm_rows_add(uint16_t *restrict sum, const uint8_t *restrict a,
                                     const uint8_t *restrict b, ptrdiff_t m) {
    for (ptrdiff_t k = 0; k < m; k++) sum[k] = (uint16_t)(a[k] + b[k]);
}

/* The plane at half resolution from two added RGB rows (ffeat_srm_rows_add): out[i] =
 * floor((c0 R + c1 G + c2 B of the 2 x 2 block of pixels 2i, 2i + 1) + 2) / 4) for n
 * output pixels, i.e. of the sum of the plane over the block (exact: the sums fit int32,
 * the shift floors). */
FFEAT_SRM_KERNEL void ffeat_srm_plane_half(int32_t *restrict out, const uint16_t *restrict sum,
                                       int32_t c0, int32_t c1, int32_t c2, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        const int32_t r = sum[6 * i] + sum[6 * i + 3], g = sum[6 * i + 1] + sum[6 * i + 4],
                      bl = sum[6 * i + 2] + sum[6 * i + 5];
        out[i] = (c0 * r + c1 * g + c2 * bl + 2) >> 2;
    }
}

/* GCC vector types: 16 int32 lanes (one AVX-512 register, two AVX2 or four SSE ones),
 * loads and stores at any alignment; ffeat_v8i for the generic moments. */
#define FFEAT_LANES 16
typedef int32_t ffeat_v16i __attribute__((vector_size(64)));
typedef int32_t ffeat_v16iu __attribute__((vector_size(64), aligned(4)));
typedef int32_t ffeat_v8i __attribute__((vector_size(32)));
typedef int32_t ffeat_v8iu __attribute__((vector_size(32), aligned(4)));
typedef int32_t ffeat_v4i __attribute__((vector_size(16)));
typedef double ffeat_v4d __attribute__((vector_size(32)));
#define FFEAT_LD(p) (*(const ffeat_v16iu *)(p))
#define FFEAT_ST(p, v) (*(ffeat_v16iu *)(p) = (v))
#define FFEAT_LD8(p) (*(const ffeat_v8iu *)(p))

/* The 8 maps (o1h o1v o2h o2v o3h o3v kb kv) of the interior row whose plane row is
 * p0, from plane rows m2 m1 p0 p1 p2 (W wide, readable to W + 16), into s (8 rows of
 * stride `stride` >= n rounded up to 8, n = W - 4). tmp: 4 rows of W + 16. Computed in
 * whole vectors: values past n are not meaningful. */
FFEAT_SRM_KERNEL void ffeat_srm_row(const int32_t *restrict m2, const int32_t *restrict m1,
                                const int32_t *restrict p0, const int32_t *restrict p1,
                                const int32_t *restrict p2, ptrdiff_t W,
                                int32_t *restrict s, ptrdiff_t stride,
                                int32_t *restrict tmp) {
    const ptrdiff_t n = W - 4, Wp = W + 16;
    int32_t *o2v = tmp, *c2 = tmp + Wp, *c1 = tmp + 2 * Wp, *c0 = tmp + 3 * Wp;
    for (ptrdiff_t x = 0; x < W; x += FFEAT_LANES) {
        const ffeat_v16i v1 = FFEAT_LD(m1 + x) + FFEAT_LD(p1 + x);
        const ffeat_v16i v02 = FFEAT_LD(m2 + x) + FFEAT_LD(p2 + x), v0 = FFEAT_LD(p0 + x);
        const ffeat_v16i v0x2 = v0 + v0, v1x2 = v1 + v1, v02x2 = v02 + v02;
        FFEAT_ST(o2v + x, v1 - v0x2);
        FFEAT_ST(c2 + x, v1x2 - v0x2 - v02);                       /* columns x +- 2 of kv */
        const ffeat_v16i v0x8 = v0x2 * 4, v1x2x3 = v1x2 + v1x2 + v1x2;
        FFEAT_ST(c1 + x, v02x2 - v1x2x3 + v0x8);                   /* 2 v02 - 6 v1 + 8 v0 */
        FFEAT_ST(c0 + x, v1x2 * 4 - v02x2 - v0x8 - v0x2 - v0x2);   /* 8 v1 - 2 v02 - 12 v0 */
    }
    for (ptrdiff_t j = 0; j < n; j += FFEAT_LANES) {
        const ptrdiff_t x = j + 2;
        const ffeat_v16i a = FFEAT_LD(p0 + x), l1 = FFEAT_LD(p0 + x - 1);
        const ffeat_v16i r1 = FFEAT_LD(p0 + x + 1), r2 = FFEAT_LD(p0 + x + 2);
        const ffeat_v16i dh = r1 - a, dv = FFEAT_LD(p1 + x) - a;
        const ffeat_v16i ov = FFEAT_LD(o2v + x);
        FFEAT_ST(s + j, dh);                                                /* o1h */
        FFEAT_ST(s + stride + j, dv);                                       /* o1v */
        FFEAT_ST(s + 2 * stride + j, l1 + r1 - a - a);                      /* o2h */
        FFEAT_ST(s + 3 * stride + j, ov);                                   /* o2v */
        FFEAT_ST(s + 4 * stride + j, (r2 - l1) - dh - dh - dh);             /* o3h */
        FFEAT_ST(s + 5 * stride + j, (FFEAT_LD(p2 + x) - FFEAT_LD(m1 + x)) - dv - dv - dv);
        FFEAT_ST(s + 6 * stride + j, ov + ov - FFEAT_LD(o2v + x - 1) - FFEAT_LD(o2v + x + 1));
        FFEAT_ST(s + 7 * stride + j, FFEAT_LD(c0 + x) + FFEAT_LD(c1 + x - 1)
                 + FFEAT_LD(c1 + x + 1) + FFEAT_LD(c2 + x - 2) + FFEAT_LD(c2 + x + 2));
    }
}

/* Sums over a row of n responses: |s| exactly (int64), s^2 and s^4 in double (each s^2
 * is exact, s^2 < 2^46, and so are their sums below 2^53: a row of a natural image). */
FFEAT_KERNEL void ffeat_srm_moments(const int32_t *restrict s, ptrdiff_t n, int64_t *a1,
                                    double *a2, double *a4) {
    int64_t m1 = 0;
    ffeat_v4d q2 = {0, 0, 0, 0}, q4 = {0, 0, 0, 0};
    ptrdiff_t i = 0;
    for (; i + 8 <= n;) {
        ffeat_v8i part = {0, 0, 0, 0, 0, 0, 0, 0};  /* |s| < 2^23: 128 per lane fit in int32 */
        const ptrdiff_t stop = i + 1024 < n ? i + 1024 : n;
        for (; i + 8 <= stop; i += 8) {
            const ffeat_v8i v = FFEAT_LD8(s + i);
            const ffeat_v8i sign = v >> 31;
            part += (v ^ sign) - sign;
            const ffeat_v4i lo = {v[0], v[1], v[2], v[3]}, hi = {v[4], v[5], v[6], v[7]};
            const ffeat_v4d dl = __builtin_convertvector(lo, ffeat_v4d);
            const ffeat_v4d dh = __builtin_convertvector(hi, ffeat_v4d);
            const ffeat_v4d sl = dl * dl, sh = dh * dh;
            q2 += sl + sh;
            q4 += sl * sl + sh * sh;
        }
        for (int k = 0; k < 8; k++) m1 += part[k];
    }
    double m2 = (q2[0] + q2[2]) + (q2[1] + q2[3]), m4 = (q4[0] + q4[2]) + (q4[1] + q4[3]);
    for (; i < n; i++) {
        const double v = s[i], v2 = v * v;
        m1 += s[i] < 0 ? -(int64_t)s[i] : s[i];
        m2 += v2;
        m4 += v2 * v2;
    }
    *a1 = m1; *a2 = m2; *a4 = m4;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>
#define FFEAT_SRM_AVX2 1
/* ffeat_srm_moments with AVX2 and with AVX-512 intrinsics (GCC's lowering of the vector
 * code converts int32 to double two at a time). The sums of s^2 and s^4 go to two
 * accumulators each, so that the adds do not wait on each other: another order of the
 * double sums than the generic code's, a difference of about 1e-16 relative in s^4 (s^2
 * is exact), far below the float32 the features are given in. */
__attribute__((target("avx2"), noinline)) static void
ffeat_srm_moments_avx2(const int32_t *restrict s, ptrdiff_t n, int64_t *a1, double *a2,
                       double *a4) {
    int64_t m1 = 0;
    __m256d q2a = _mm256_setzero_pd(), q4a = _mm256_setzero_pd();
    __m256d q2b = _mm256_setzero_pd(), q4b = _mm256_setzero_pd();
    ptrdiff_t i = 0;
    for (; i + 8 <= n;) {
        __m256i part = _mm256_setzero_si256();  /* |s| < 2^23: 128 per lane fit in int32 */
        const ptrdiff_t stop = i + 1024 < n ? i + 1024 : n;
        for (; i + 8 <= stop; i += 8) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
            part = _mm256_add_epi32(part, _mm256_abs_epi32(v));
            const __m256d dl = _mm256_cvtepi32_pd(_mm256_castsi256_si128(v));
            const __m256d dh = _mm256_cvtepi32_pd(_mm256_extracti128_si256(v, 1));
            const __m256d sl = _mm256_mul_pd(dl, dl), sh = _mm256_mul_pd(dh, dh);
            q2a = _mm256_add_pd(q2a, sl);
            q2b = _mm256_add_pd(q2b, sh);
            q4a = _mm256_add_pd(q4a, _mm256_mul_pd(sl, sl));
            q4b = _mm256_add_pd(q4b, _mm256_mul_pd(sh, sh));
        }
        int32_t p[8];
        _mm256_storeu_si256((__m256i *)p, part);
        for (int k = 0; k < 8; k++) m1 += p[k];
    }
    double l2[4], l4[4];
    _mm256_storeu_pd(l2, _mm256_add_pd(q2a, q2b));
    _mm256_storeu_pd(l4, _mm256_add_pd(q4a, q4b));
    double m2 = (l2[0] + l2[2]) + (l2[1] + l2[3]), m4 = (l4[0] + l4[2]) + (l4[1] + l4[3]);
    for (; i < n; i++) {
        const double v = s[i], v2 = v * v;
        m1 += s[i] < 0 ? -(int64_t)s[i] : s[i];
        m2 += v2;
        m4 += v2 * v2;
    }
    *a1 = m1; *a2 = m2; *a4 = m4;
}

/* The same sums with AVX-512 intrinsics and, where `level` is not NULL (T = 2), in the
 * same pass the levels of ffeat_srm_levels2 (d2: its four thresholds): the count of
 * thresholds at or below 2 s[i], by mask compares and masked adds. Levels are written in
 * whole vectors (n rounded up to 16); those past n are not meaningful. */
__attribute__((target("avx512f"), noinline)) static void
ffeat_srm_stats_avx512(const int32_t *restrict s, ptrdiff_t n, const int32_t *d2,
                       int32_t *restrict level, int64_t *a1, double *a2, double *a4) {
    int64_t m1 = 0;
    __m512d q2a = _mm512_setzero_pd(), q4a = _mm512_setzero_pd();
    __m512d q2b = _mm512_setzero_pd(), q4b = _mm512_setzero_pd();
    const __m512i one = _mm512_set1_epi32(1);
    const __m512i t0 = _mm512_set1_epi32(level ? d2[0] : 0);
    const __m512i t1 = _mm512_set1_epi32(level ? d2[1] : 0);
    const __m512i t2 = _mm512_set1_epi32(level ? d2[2] : 0);
    const __m512i t3 = _mm512_set1_epi32(level ? d2[3] : 0);
    ptrdiff_t i = 0;
    for (; i < n;) {
        __m512i part = _mm512_setzero_si512();  /* |s| < 2^23: 128 per lane fit in int32 */
        const ptrdiff_t stop = i + 2048 < n ? i + 2048 : n;
        for (; i < stop; i += 16) {
            /* The last vector of a row loads zeros past n: they add nothing. */
            const __mmask16 keep = stop - i >= 16 ? 0xFFFF : (__mmask16)((1u << (stop - i)) - 1);
            const __m512i v = _mm512_maskz_loadu_epi32(keep, (const void *)(s + i));
            part = _mm512_add_epi32(part, _mm512_abs_epi32(v));
            const __m512d dl = _mm512_cvtepi32_pd(_mm512_castsi512_si256(v));
            const __m512d dh = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(v, 1));
            const __m512d sl = _mm512_mul_pd(dl, dl), sh = _mm512_mul_pd(dh, dh);
            q2a = _mm512_add_pd(q2a, sl);
            q2b = _mm512_add_pd(q2b, sh);
            q4a = _mm512_add_pd(q4a, _mm512_mul_pd(sl, sl));
            q4b = _mm512_add_pd(q4b, _mm512_mul_pd(sh, sh));
            if (level) {
                const __m512i v2 = _mm512_add_epi32(v, v);
                __m512i q = _mm512_maskz_mov_epi32(_mm512_cmpge_epi32_mask(v2, t0), one);
                q = _mm512_mask_add_epi32(q, _mm512_cmpge_epi32_mask(v2, t1), q, one);
                q = _mm512_mask_add_epi32(q, _mm512_cmpge_epi32_mask(v2, t2), q, one);
                q = _mm512_mask_add_epi32(q, _mm512_cmpge_epi32_mask(v2, t3), q, one);
                _mm512_storeu_si512((void *)(level + i), q);
            }
        }
        m1 += _mm512_reduce_add_epi32(part);
        i = stop;
    }
    double l2[8], l4[8];
    _mm512_storeu_pd(l2, _mm512_add_pd(q2a, q2b));
    _mm512_storeu_pd(l4, _mm512_add_pd(q4a, q4b));
    double m2 = ((l2[0] + l2[4]) + (l2[2] + l2[6])) + ((l2[1] + l2[5]) + (l2[3] + l2[7]));
    double m4 = ((l4[0] + l4[4]) + (l4[2] + l4[6])) + ((l4[1] + l4[5]) + (l4[3] + l4[7]));
    *a1 = m1; *a2 = m2; *a4 = m4;
}
#endif

/* level[i] = clip(floor(s[i] / D + 1/2), -2, 2) + 2 with d2[k] = (2k - 3) D, k = 0..3:
 * the number of thresholds 2 s[i] >= d2[k]. Whole vectors (n rounded up to 16). */
FFEAT_SRM_KERNEL void ffeat_srm_levels2(int32_t *restrict level, const int32_t *restrict s,
                                    const int32_t *restrict d2, ptrdiff_t n) {
    /* 2 s >= d2[k] as 2 s > d2[k] - 1 (one comparison instruction). */
    const ffeat_v16i one = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const ffeat_v16i t0 = d2[0] - one, t1 = d2[1] - one, t2 = d2[2] - one, t3 = d2[3] - one;
    for (ptrdiff_t i = 0; i < n; i += FFEAT_LANES) {
        const ffeat_v16i v = FFEAT_LD(s + i) * 2;
        /* Comparisons give -1 for true. */
        FFEAT_ST(level + i, -((v > t0) + (v > t1) + (v > t2) + (v > t3)));
    }
}

/* The same for any T: nt = 2T thresholds d2[k] = (2k - 2T + 1) D. */
FFEAT_SRM_KERNEL void ffeat_srm_levels(int32_t *restrict level, const int32_t *restrict s,
                                   const int32_t *restrict d2, int nt, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        const int32_t v = 2 * s[i];
        int q = 0;
        for (int k = 0; k < nt; k++) q += v >= d2[k];
        level[i] = q;
    }
}

/* idx[j] = ((a[j] L + a[j + 1]) L + b[j]) L + c[j] for j < n (directional joint index:
 * a the horizontal map's row, b and c the vertical map's row and the next). */
FFEAT_SRM_KERNEL void ffeat_srm_index4(int32_t *restrict idx, const int32_t *restrict a,
                                   const int32_t *restrict b, const int32_t *restrict c,
                                   int L, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++)
        idx[j] = (((a[j] * L + a[j + 1]) * L + b[j]) * L + c[j]);
}

/* idx[j] = (a[j] L + a[j + 1]) L + c[j] (isotropic: a row and the next, c). */
FFEAT_SRM_KERNEL void ffeat_srm_index3(int32_t *restrict idx, const int32_t *restrict a,
                                   const int32_t *restrict c, int L, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++)
        idx[j] = ((a[j] * L + a[j + 1]) * L + c[j]);
}

/* idx[j] = a[j] L + b[j] (one pair). */
FFEAT_SRM_KERNEL void ffeat_srm_index2(int32_t *restrict idx, const int32_t *restrict a,
                                   const int32_t *restrict b, int L, ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++) idx[j] = (a[j] * L + b[j]);
}

/* Count n indices of each of the five rows of idx (stride `stride`) into its table. */
FFEAT_SRM_KERNEL void ffeat_srm_count5(uint32_t *restrict t0, uint32_t *restrict t1,
                                   uint32_t *restrict t2, uint32_t *restrict t3,
                                   uint32_t *restrict t4, const int32_t *restrict idx,
                                   ptrdiff_t stride, ptrdiff_t n) {
    const int32_t *restrict i0 = idx, *restrict i1 = idx + stride,
                   *restrict i2 = idx + 2 * stride, *restrict i3 = idx + 3 * stride,
                   *restrict i4 = idx + 4 * stride;
    for (ptrdiff_t j = 0; j < n; j++) {
        t0[i0[j]]++;
        t1[i1[j]]++;
        t2[i2[j]]++;
        t3[i3[j]]++;
        t4[i4[j]]++;
    }
}

/* Count n indices into one table. */
FFEAT_SRM_KERNEL void ffeat_srm_count1(uint32_t *restrict t, const int32_t *restrict idx,
                                   ptrdiff_t n) {
    for (ptrdiff_t j = 0; j < n; j++) t[idx[j]]++;
}

/* Map m of the bank: its group, and whether it is a group's horizontal (0),
 * vertical (1) or isotropic (2) map. */
static const int ffeat_srm_group[FFEAT_SRM_MAPS] = {0, 0, 1, 1, 2, 2, 3, 4};
static const int ffeat_srm_kind[FFEAT_SRM_MAPS] = {0, 1, 0, 1, 0, 1, 2, 2};

/* One plane row y of channel weights c0 c1 c2 (half: of the 2 x 2 block means, rows 2y
 * and 2y + 1 of the image, added in `sum`, 3 W wide) for a plane Wc wide. */
static void ffeat_srm_plane_row(int32_t *out, const uint8_t *rgb, ptrdiff_t W, ptrdiff_t y,
                                int half, int32_t c0, int32_t c1, int32_t c2, ptrdiff_t Wc,
                                uint16_t *sum) {
    if (half) {
        ffeat_srm_rows_add(sum, rgb + 3 * (2 * y) * W, rgb + 3 * (2 * y + 1) * W, 6 * Wc);
        ffeat_srm_plane_half(out, sum, c0, c1, c2, Wc);
    } else
        ffeat_srm_plane(out, rgb + 3 * y * W, c0, c1, c2, Wc);
}

/* Features of one H x W RGB image: out[c][g] holds the L^2 co-occurrence frequencies
 * then mean |r|, RMS and kurtosis, as the generic kernel. cmat: C x 3 integer weights;
 * half[c]: channel c's plane is taken at half resolution (2 x 2 block means, see
 * ffeat_srm_plane_half; its plane is H / 2 x W / 2, the last odd row and column left
 * out); every plane at least 6 x 6. div[g]: the integer quantisation divisor of group
 * g; scale[m]: the factor of map m's raw sums. Returns -1 when out of memory. */
static int ffeat_srm_image(const uint8_t *rgb, ptrdiff_t H, ptrdiff_t W,
                           const int32_t *cmat, const int32_t *half, ptrdiff_t C,
                           const int32_t *div, const double *scale, int T, float *out) {
    const ptrdiff_t nmax = W - 4, L = 2 * T + 1, L2 = L * L;
    const int joint = T <= FFEAT_SRM_JOINT_T;
    /* Table of each group: directional L^4 (or L^2 pairs), isotropic L^3 (or L^2). */
    ptrdiff_t tsize[FFEAT_SRM_GROUPS], toff[FFEAT_SRM_GROUPS + 1];
    toff[0] = 0;
    for (int g = 0; g < FFEAT_SRM_GROUPS; g++) {
        tsize[g] = joint ? (g < 3 ? L2 * L2 : L2 * L) : L2;
        toff[g + 1] = toff[g] + tsize[g];
    }
    const ptrdiff_t n_tab = toff[FFEAT_SRM_GROUPS];
    /* Padded rows: whole vectors of FFEAT_LANES. */
    const ptrdiff_t Wp = W + FFEAT_LANES,
                    ns = (nmax + FFEAT_LANES - 1) / FFEAT_LANES * FFEAT_LANES + FFEAT_LANES;
    int32_t *ring = calloc(8 * Wp + 4 * Wp + FFEAT_SRM_MAPS * ns, sizeof(int32_t));
    int32_t *lev = malloc(2 * FFEAT_SRM_MAPS * ns * sizeof(int32_t));
    int32_t *idx = malloc(FFEAT_SRM_MAPS * 2 * (nmax + 1) * sizeof(int32_t));
    uint32_t *tab = malloc(n_tab * sizeof(uint32_t));
    uint16_t *sum = malloc(3 * W * sizeof(uint16_t));
    if (ring == NULL || lev == NULL || idx == NULL || tab == NULL || sum == NULL) {
        free(ring); free(lev); free(idx); free(tab); free(sum);
        return -1;
    }
    int32_t *tmp = ring + 8 * Wp, *s = ring + 12 * Wp;
    int32_t d2[FFEAT_SRM_GROUPS][16];
    for (int g = 0; g < FFEAT_SRM_GROUPS; g++)
        for (int k = 0; k < 2 * T; k++) d2[g][k] = (2 * k - 2 * T + 1) * div[g];
#ifdef FFEAT_SRM_AVX2
    const int avx2 = __builtin_cpu_supports("avx2"), avx512 = __builtin_cpu_supports("avx512f");
#endif
    for (ptrdiff_t c = 0; c < C; c++) {
        const int32_t w0 = cmat[3 * c], w1 = cmat[3 * c + 1], w2 = cmat[3 * c + 2];
        const int hf = half[c] != 0;
        const ptrdiff_t Wc = hf ? W / 2 : W, n = Wc - 4, Hv = (hf ? H / 2 : H) - 4;
        uint64_t pairs[FFEAT_SRM_GROUPS][17 * 17];
        double mom[FFEAT_SRM_GROUPS][3];
        memset(pairs, 0, sizeof(pairs));
        memset(mom, 0, sizeof(mom));
        memset(tab, 0, n_tab * sizeof(uint32_t));
        for (ptrdiff_t y = 0; y < 4; y++)
            ffeat_srm_plane_row(ring + (y & 7) * Wp, rgb, W, y, hf, w0, w1, w2, Wc, sum);
        for (ptrdiff_t r = 0; r < Hv; r++) {
            const ptrdiff_t y = r + 2;
            ffeat_srm_plane_row(ring + ((y + 2) & 7) * Wp, rgb, W, y + 2, hf, w0, w1, w2, Wc,
                                sum);
            ffeat_srm_row(ring + ((y - 2) & 7) * Wp, ring + ((y - 1) & 7) * Wp,
                          ring + (y & 7) * Wp, ring + ((y + 1) & 7) * Wp,
                          ring + ((y + 2) & 7) * Wp, Wc, s, ns, tmp);
            int32_t *cur = lev + (r & 1) * FFEAT_SRM_MAPS * ns;
            int32_t *prev = lev + ((r + 1) & 1) * FFEAT_SRM_MAPS * ns;
            for (int m = 0; m < FFEAT_SRM_MAPS; m++) {
                const int g = ffeat_srm_group[m];
                const double sc = scale[m];
                int64_t a1;
                double a2, a4;
                int levelled = 0;  /* levels written by the moments' pass */
#ifdef FFEAT_SRM_AVX2
                if (avx512) {
                    levelled = T == 2;
                    ffeat_srm_stats_avx512(s + m * ns, n, d2[g], levelled ? cur + m * ns : NULL,
                                           &a1, &a2, &a4);
                } else if (avx2)
                    ffeat_srm_moments_avx2(s + m * ns, n, &a1, &a2, &a4);
                else
#endif
                    ffeat_srm_moments(s + m * ns, n, &a1, &a2, &a4);
                mom[g][0] += (double)a1 * sc;
                mom[g][1] += a2 * sc * sc;
                mom[g][2] += a4 * (sc * sc) * (sc * sc);
                if (levelled)
                    continue;
                if (T == 2)
                    ffeat_srm_levels2(cur + m * ns, s + m * ns, d2[g], n);
                else
                    ffeat_srm_levels(cur + m * ns, s + m * ns, d2[g], 2 * T, n);
            }
            if (r == 0)
                continue;
            /* Pairs of row r - 1: its horizontal pairs and its vertical pairs with row r. */
            if (joint) {
                for (int g = 0; g < FFEAT_SRM_GROUPS; g++) {
                    int32_t *ix = idx + g * (n + 1);
                    if (g < 3) {
                        const int32_t *h = prev + (2 * g) * ns;
                        const int32_t *v0 = prev + (2 * g + 1) * ns;
                        const int32_t *v1 = cur + (2 * g + 1) * ns;
                        ffeat_srm_index4(ix, h, v0, v1, (int)L, n - 1);
                        pairs[g][v0[n - 1] * L + v1[n - 1]]++;  /* last column, vertical */
                    } else {
                        const int32_t *q0 = prev + (g + 3) * ns;
                        const int32_t *q1 = cur + (g + 3) * ns;
                        ffeat_srm_index3(ix, q0, q1, (int)L, n - 1);
                        pairs[g][q0[n - 1] * L + q1[n - 1]]++;
                    }
                }
                ffeat_srm_count5(tab + toff[0], tab + toff[1], tab + toff[2], tab + toff[3],
                                 tab + toff[4], idx, n + 1, n - 1);
            } else {
                for (int m = 0; m < FFEAT_SRM_MAPS; m++) {
                    const int g = ffeat_srm_group[m], kind = ffeat_srm_kind[m];
                    const int32_t *q0 = prev + m * ns, *q1 = cur + m * ns;
                    if (kind != 1) {  /* horizontal pairs of row r - 1 */
                        ffeat_srm_index2(idx, q0, q0 + 1, (int)L, n - 1);
                        ffeat_srm_count1(tab + toff[g], idx, n - 1);
                    }
                    if (kind != 0) {  /* vertical pairs (r - 1, r) */
                        ffeat_srm_index2(idx, q0, q1, (int)L, n);
                        ffeat_srm_count1(tab + toff[g], idx, n);
                    }
                }
            }
        }
        /* Horizontal pairs of the last row. */
        {
            const int32_t *last = lev + ((Hv - 1) & 1) * FFEAT_SRM_MAPS * ns;
            for (int m = 0; m < FFEAT_SRM_MAPS; m++) {
                if (ffeat_srm_kind[m] == 1)
                    continue;
                const int32_t *q = last + m * ns;
                for (ptrdiff_t j = 0; j + 1 < n; j++)
                    pairs[ffeat_srm_group[m]][q[j] * L + q[j + 1]]++;
            }
        }
        /* Tables to pair counts. */
        for (int g = 0; g < FFEAT_SRM_GROUPS; g++) {
            const uint32_t *t = tab + toff[g];
            if (!joint) {
                for (ptrdiff_t p = 0; p < L2; p++) pairs[g][p] += t[p];
            } else if (g < 3) {  /* (h pair) x L^2 + (v pair) */
                for (ptrdiff_t hp = 0; hp < L2; hp++)
                    for (ptrdiff_t vp = 0; vp < L2; vp++) {
                        const uint32_t k = t[hp * L2 + vp];
                        pairs[g][hp] += k;
                        pairs[g][vp] += k;
                    }
            } else {  /* (a, right) x L + below */
                for (ptrdiff_t a = 0; a < L; a++)
                    for (ptrdiff_t b = 0; b < L; b++)
                        for (ptrdiff_t d = 0; d < L; d++) {
                            const uint32_t k = t[(a * L + b) * L + d];
                            pairs[g][a * L + b] += k;
                            pairs[g][a * L + d] += k;
                        }
            }
        }
        /* Normalise, as the generic kernel. */
        for (int g = 0; g < FFEAT_SRM_GROUPS; g++) {
            float *o = out + (c * FFEAT_SRM_GROUPS + g) * (L2 + 3);
            double total = 0.0;
            for (ptrdiff_t p = 0; p < L2; p++) total += (double)pairs[g][p];
            for (ptrdiff_t p = 0; p < L2; p++)
                o[p] = (float)(total > 0 ? (double)pairs[g][p] / total : 0.0);
            /* Values per group: Hv x n per map, two maps per directional group. */
            const double n_vals = (double)(Hv * n) * (g < 3 ? 2 : 1);
            const double a1 = mom[g][0] / n_vals, a2 = mom[g][1] / n_vals,
                         a4 = mom[g][2] / n_vals;
            o[L2] = (float)a1;
            o[L2 + 1] = (float)pow(a2, 0.5);  /* as the generic kernel's a2 ** 0.5 */
            o[L2 + 2] = (float)(a2 > 0 ? a4 / (a2 * a2) : 0.0);
        }
    }
    free(ring); free(lev); free(idx); free(tab); free(sum);
    return 0;
}
#endif
