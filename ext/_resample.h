/* Pillow's 8-bit resampling (libImaging/Resample.c, ImagingResampleInner with the
 * 8bpc passes) of RGB images, vectorised: the same fixed-point coefficients (given by
 * the caller, computed as Pillow computes them), the same int32 sums with the same
 * rounding and clipping after each pass, horizontal pass first; so the same bytes.
 *
 * Both passes run as "row passes": out[o][j] = clip8((2^21 + sum_t src[b_o + t][j] *
 * k_o[t]) >> 22) over whole rows j, which vectorises; the horizontal pass runs on the
 * transposed image (its columns as rows) and transposes back. */
#ifndef FFEAT_RESAMPLE_H
#define FFEAT_RESAMPLE_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_simd.h"

#define FFEAT_PRECISION_BITS 22

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FFEAT_RS_KERNEL \
    __attribute__((noinline, target_clones("arch=x86-64-v4", "avx2", "default"))) static
#else
#define FFEAT_RS_KERNEL __attribute__((noinline)) static
#endif

/* out[o][j], o < n_out, j < L: rows of src (stride L) b[2o] .. b[2o] + b[2o + 1] - 1
 * weighted by k[o * ks + t]. acc: L int32. */
FFEAT_RS_KERNEL void ffeat_rs_rows(uint8_t *restrict out, const uint8_t *restrict src,
                                   ptrdiff_t L, ptrdiff_t n_out, const int32_t *restrict b,
                                   const int32_t *restrict k, int ks, int32_t *restrict acc) {
    for (ptrdiff_t o = 0; o < n_out; o++) {
        const uint8_t *base = src + (ptrdiff_t)b[2 * o] * L;
        const int32_t *ko = k + (ptrdiff_t)o * ks;
        for (ptrdiff_t j = 0; j < L; j++) acc[j] = 1 << (FFEAT_PRECISION_BITS - 1);
        for (int t = 0; t < b[2 * o + 1]; t++) {
            const uint8_t *restrict row = base + (ptrdiff_t)t * L;
            const int32_t w = ko[t];
            for (ptrdiff_t j = 0; j < L; j++) acc[j] += (int32_t)row[j] * w;
        }
        uint8_t *restrict dst = out + o * L;
        for (ptrdiff_t j = 0; j < L; j++) {
            const int32_t v = acc[j] >> FFEAT_PRECISION_BITS;  /* Pillow's clip8 */
            dst[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* dst (w x n x 3) = the transpose of src (n x w x 3), n <= 16; pixels moved as 4 bytes
 * (the 4th overwritten by the next pixel, or by the next column: dst needs 1 byte more
 * and src 1 readable byte past its last pixel unless `last` says otherwise). */
FFEAT_RS_KERNEL void ffeat_rs_transpose3(uint8_t *restrict dst, const uint8_t *restrict src,
                                         ptrdiff_t n, ptrdiff_t w, ptrdiff_t stride,
                                         int last) {
    for (ptrdiff_t x = 0; x < w; x++) {
        uint8_t *d = dst + x * n * 3;
        for (ptrdiff_t r = 0; r < n; r++, d += 3) {
            const uint8_t *p = src + r * stride + x * 3;
            if (last && r == n - 1 && x == w - 1) {
                d[0] = p[0]; d[1] = p[1]; d[2] = p[2];
            } else {
                uint32_t v;
                memcpy(&v, p, 4);
                memcpy(d, &v, 4);
            }
        }
    }
}

/* out (oh x ow x 3) from in (h x w x 3), both passes (Pillow's need_horizontal and
 * need_vertical). hb/hk, ksh: horizontal bounds (first, count) and coefficients per
 * output column; vb/vk, ksv: vertical ones per output row, unshifted. The horizontal
 * pass runs on blocks of 16 rows, transposed. -1: no memory. */
static int ffeat_resample_rgb(const uint8_t *in, ptrdiff_t h, ptrdiff_t w, uint8_t *out,
                              ptrdiff_t oh, ptrdiff_t ow, const int32_t *hb,
                              const int32_t *hk, int ksh, const int32_t *vb,
                              const int32_t *vk, int ksv) {
    const ptrdiff_t first = vb[0], last = vb[2 * (oh - 1)] + vb[2 * (oh - 1) + 1];
    const ptrdiff_t rows = last - first;
    const ptrdiff_t La = ow * 3 > 48 ? ow * 3 : 48;
    uint8_t *t_in = malloc((size_t)w * 48 + 4);    /* 16 rows, transposed */
    uint8_t *t_out = malloc((size_t)ow * 48 + 4);  /* their horizontal pass, transposed */
    uint8_t *tmp = malloc((size_t)rows * ow * 3 + 4);  /* the horizontal pass */
    int32_t *acc = malloc((size_t)La * sizeof(int32_t));
    int32_t *vbs = malloc((size_t)oh * 2 * sizeof(int32_t));
    if (!t_in || !t_out || !tmp || !acc || !vbs) {
        free(t_in); free(t_out); free(tmp); free(acc); free(vbs);
        return -1;
    }
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += 16) {
        const ptrdiff_t n = rows - r0 < 16 ? rows - r0 : 16;
        ffeat_rs_transpose3(t_in, in + (first + r0) * w * 3, n, w, w * 3,
                            first + r0 + n == h);
        ffeat_rs_rows(t_out, t_in, n * 3, ow, hb, hk, ksh, acc);
        ffeat_rs_transpose3(tmp + r0 * ow * 3, t_out, ow, n, n * 3, 1);
    }
    for (ptrdiff_t o = 0; o < oh; o++) {  /* bounds of the vertical pass, shifted */
        vbs[2 * o] = vb[2 * o] - (int32_t)first;
        vbs[2 * o + 1] = vb[2 * o + 1];
    }
    ffeat_rs_rows(out, tmp, ow * 3, oh, vbs, vk, ksv, acc);
    free(t_in); free(t_out); free(tmp); free(acc); free(vbs);
    return 0;
}
#endif
