/* The canonical reduction orders (docs/determinism.md §"Canonical orders"), written once.
 * Every backend must produce these exact bits; opt maps the 8 lanes onto one AVX2
 * register, cuda onto 8 threads. Do not "improve" the order here: golden files depend
 * on it.
 *
 *   dot / GEMM output   acc = init; for k = 0..K-1: acc = fmaf(a[k], b[k], acc)
 *                       (one fmaf chain along k; init is 0 or the old C value)
 *   batch reduction     (bias gradient, column sums) acc = init; for i: acc = acc + x[i]
 *   long sum (vector)   FR_LANES = 8 partial sums, lane j takes x[j], x[j+8], ...
 *                       (plain adds, lane j starting at 0), then the fixed tree
 *                       ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))
 *   sum of squares      the same lanes with lane = fmaf(x, x, lane)
 *   mean                long sum / (float)n
 */
#ifndef FLOWRL_REDUCE_H
#define FLOWRL_REDUCE_H

#include <math.h>
#include <stdint.h>

#include "flowrl/hostdev.h"

#define FR_LANES 8

FR_HOSTDEV static inline float fr_lanes_tree(const float l[FR_LANES])
{
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    float b0 = a0 + a2, b1 = a1 + a3;
    return b0 + b1;
}

/* sum_i x[i*stride], canonical order. */
FR_HOSTDEV static inline float fr_sum_canonical(const float *x, int64_t n, int64_t stride)
{
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) l[i % FR_LANES] += x[i * stride];
    return fr_lanes_tree(l);
}

/* sum_i x[i]^2, canonical order (fmaf per lane). */
FR_HOSTDEV static inline float fr_sumsq_canonical(const float *x, int64_t n)
{
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) l[i % FR_LANES] = fmaf(x[i], x[i], l[i % FR_LANES]);
    return fr_lanes_tree(l);
}

/* sum_i (x[i] - c)^2, canonical order: d = x - c, lane = fmaf(d, d, lane). */
FR_HOSTDEV static inline float fr_sumsq_centered_canonical(const float *x, int64_t n, float c)
{
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        float d = x[i] - c;
        l[i % FR_LANES] = fmaf(d, d, l[i % FR_LANES]);
    }
    return fr_lanes_tree(l);
}

/* sum_i a[i]*b[i] in the long-sum order (lane = fmaf(a, b, lane)); used where a dot
 * product is a reduction over a long vector rather than a GEMM output. */
FR_HOSTDEV static inline float fr_dot_canonical(const float *a, const float *b, int64_t n)
{
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) l[i % FR_LANES] = fmaf(a[i], b[i], l[i % FR_LANES]);
    return fr_lanes_tree(l);
}

FR_HOSTDEV static inline float fr_mean_canonical(const float *x, int64_t n)
{
    return n > 0 ? fr_sum_canonical(x, n, 1) / (float)n : 0.0f;
}

#endif
