/* Row and element functions of the DiT's attention and adaLN ops (flowrl/ops.h, "model"
 * section; core/dit.c), written once for ref, opt and the kernels (docs/design.md §1.2). The
 * orders are docs/determinism.md "Softmax" and "adaLN": one thread of any backend computes a
 * whole row (softmax) or a whole (sample, channel) column (the reductions over tokens), so
 * these functions are the arithmetic every backend runs.
 *
 *   softmax   z_j = alpha·x_j, m = canonical max of z (ascending, NaN-propagating),
 *             e_j = fr_expf(z_j − m), S = fr_sum_canonical(e), p_j = e_j / S
 *   backward  g = fr_dot_canonical(p, dp), dx_j = alpha·(p_j·(dp_j − g))
 *   modulate  y = fmaf(x, 1 + scale, shift)        (DiT's x·(1 + scale) + shift)
 *   gate      out = fmaf(gate, y, h)                (DiT's h + gate·y)
 *   their reductions over the L tokens of a sample, l ascending from 0:
 *             dshift = chain of plain adds of dy, dscale = fmaf(dy, x, ·) chain,
 *             dgate = fmaf(dout, y, ·) chain (the batch-reduction / GEMM-chain orders of
 *             flowrl/reduce.h). */
#ifndef FLOWRL_ATTN_ELEM_H
#define FLOWRL_ATTN_ELEM_H

#include <math.h>
#include <stdint.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"
#include "flowrl/reduce.h"

/* The canonical max of alpha·x over a row of n >= 1: ascending j, m = z_0, then m = z_j
 * where z_j > m (strict, so among equal values, +0 and −0 included, the first is kept);
 * a NaN anywhere makes m NaN. Which zero is kept never matters: z − (±0) and fr_expf(±0)
 * give the same bits for every z. */
FR_HOSTDEV static inline float fr_softmax_max(const float *x, int64_t n, float alpha)
{
    float m = alpha * x[0];
    int nan = m != m;
    for (int64_t j = 1; j < n; j++) {
        const float z = alpha * x[j];
        if (z != z) nan = 1;
        if (z > m) m = z;
    }
    return nan ? (float)NAN : m;
}

/* p (n) = softmax(alpha·x) of one row; p may alias x. */
FR_HOSTDEV static inline void fr_softmax_row(const float *x, int64_t n, float alpha, float *p)
{
    const float m = fr_softmax_max(x, n, alpha);
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = 0; j < n; j++) {
        const float e = fr_expf(alpha * x[j] - m);
        p[j] = e;
        l[j % FR_LANES] += e;
    }
    const float s = fr_lanes_tree(l); /* = fr_sum_canonical(p, n, 1) */
    for (int64_t j = 0; j < n; j++) p[j] = p[j] / s;
}

/* dx (n) = d softmax(alpha·x) given p and dp = dL/dp; dx may alias dp. */
FR_HOSTDEV static inline void fr_softmax_bwd_row(const float *p, const float *dp, int64_t n, float alpha,
                                                 float *dx)
{
    const float g = fr_dot_canonical(p, dp, n);
    for (int64_t j = 0; j < n; j++) dx[j] = alpha * (p[j] * (dp[j] - g));
}

/* adaLN modulate: x·(1 + scale) + shift, one rounding for 1 + scale and one for the fma. */
FR_HOSTDEV static inline float fr_adaln_mod_elem(float x, float shift, float scale)
{
    return fmaf(x, 1.0f + scale, shift);
}

/* Its input gradient dy·(1 + scale). */
FR_HOSTDEV static inline float fr_adaln_mod_dx_elem(float dy, float scale)
{
    return dy * (1.0f + scale);
}

/* adaLN-zero gated residual: h + gate·y. */
FR_HOSTDEV static inline float fr_gate_elem(float h, float gate, float y)
{
    return fmaf(gate, y, h);
}

/* Column (b, j) of adaln_mod_bwd over its L tokens (stride H): dx, and dshift, dscale. */
FR_HOSTDEV static inline void fr_adaln_mod_bwd_col(int64_t L, int64_t H, const float *x, float scale,
                                                   const float *dy, float *dx, float *dshift, float *dscale)
{
    float ds = 0.0f, dc = 0.0f;
    for (int64_t l = 0; l < L; l++) {
        const float g = dy[l * H], xv = x[l * H];
        ds = ds + g;
        dc = fmaf(g, xv, dc);
        dx[l * H] = fr_adaln_mod_dx_elem(g, scale);
    }
    *dshift = ds;
    *dscale = dc;
}

/* Column (b, j) of gate_add_bwd: dy = dout·gate, dgate = the fmaf chain of dout·y. dy may
 * alias dout. */
FR_HOSTDEV static inline float fr_gate_bwd_col(int64_t L, int64_t H, float gate, const float *y,
                                               const float *dout, float *dy)
{
    float dg = 0.0f;
    for (int64_t l = 0; l < L; l++) {
        const float g = dout[l * H];
        dg = fmaf(g, y[l * H], dg);
        if (dy) dy[l * H] = g * gate;
    }
    return dg;
}

#endif
