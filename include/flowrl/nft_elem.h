/* Per-element formulas of DiffusionNFT, Negative-aware FineTuning (docs/algorithms/nft.md),
 * written once for ref, opt and cuda (docs/design.md §1.2). The loops are the nft_rows and
 * nft_grad op entries (ref/ref_nft.c, kern/k_nft.h); the rest is core/nft.c (flowrl/nft.h).
 *
 * Precision follows the public code (NVlabs/DiffusionNFT @ 24af555,
 * scripts/train_nft_sd3.py): the implicit policies v± and the x̂0 predictions are float32
 * tensors (β, 1 − β and 1 + β are Python floats, so float32 scalars in the products);
 * the adaptive weight w = mean |x̂0.double() − x0.double()| is float64; the loss element
 * (x̂0 − x0)² is a float32 square divided by the float64 w, so the row mean is float64.
 * One rounding per operation, left to right (-ffp-contract=off). */
#ifndef FLOWRL_NFT_ELEM_H
#define FLOWRL_NFT_ELEM_H

#include <stdint.h>

#include "flowrl/awm_elem.h"
#include "flowrl/hostdev.h"

/* β of the implicit policies and its two companions, each rounded once to float32 as
 * torch multiplies a float32 tensor by a Python float. */
typedef struct {
    float b;   /* β */
    float omb; /* 1 − β (formed in float64) */
    float opb; /* 1 + β (formed in float64) */
} fr_nft_coef;

/* v⁺ = β·v_θ + (1 − β)·v_old (`config.beta * forward_prediction + (1 - config.beta) * old`). */
FR_HOSTDEV static inline float fr_nft_pos_elem(float v, float v_old, fr_nft_coef c)
{
    return c.b * v + c.omb * v_old;
}

/* v⁻ = (1 + β)·v_old − β·v_θ (`(1.0 + config.beta) * old - config.beta * forward_prediction`). */
FR_HOSTDEV static inline float fr_nft_neg_elem(float v, float v_old, fr_nft_coef c)
{
    return c.opb * v_old - c.b * v;
}

/* x̂0 − x0 of a policy's velocity vp at (x_t, t): (x_t − t·vp) − x0, float32
 * (`xt - t_expanded * prediction`, then `- x0`). */
FR_HOSTDEV static inline float fr_nft_x0err_elem(float xt, float t, float vp, float x0)
{
    return (xt - t * vp) - x0;
}

/* The loss element (x̂0 − x0)²/w: the float32 square promoted by the float64 division. */
FR_HOSTDEV static inline double fr_nft_sqw_elem(float d, double w)
{
    return (double)(d * d) / w;
}

/* The adaptive weight from the float64 mean absolute error: `.clip(min=0.00001)`. */
FR_HOSTDEV static inline double fr_nft_weight_clip(double mean_abs)
{
    return mean_abs < 1e-5 ? 1e-5 : mean_abs;
}

/* One gradient element: (float)(cp·(x̂0⁺ − x0) + cn·(x̂0⁻ − x0)) in float64. */
FR_HOSTDEV static inline float fr_nft_grad_elem(float dp, float dn, double cp, double cn)
{
    return (float)(cp * (double)dp + cn * (double)dn);
}

/* One row's w and L of one policy (pos: v⁺, else v⁻), D elements of x_t, v, v_old and the
 * row's x0 at time t: w = fr_nft_weight_clip(mean |d|), L = mean fr_nft_sqw_elem(d, w), each
 * mean the 8-lane float64 sum of fr_awm_lanes over D, divided by D. Serial per row: ref's
 * loop and the kernel's thread run this same code. */
FR_HOSTDEV static inline void fr_nft_row(int64_t D, fr_nft_coef c, float t, const float *xt, const float *v,
                                         const float *vo, const float *x0, int pos, double *w, double *L)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < D; i++) {
        float vp = pos ? fr_nft_pos_elem(v[i], vo[i], c) : fr_nft_neg_elem(v[i], vo[i], c);
        fr_awm_lanes_add(&acc, i, fabs((double)fr_nft_x0err_elem(xt[i], t, vp, x0[i])));
    }
    double wr = fr_nft_weight_clip(fr_awm_lanes_sum(&acc) / (double)D);
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < D; i++) {
        float vp = pos ? fr_nft_pos_elem(v[i], vo[i], c) : fr_nft_neg_elem(v[i], vo[i], c);
        fr_awm_lanes_add(&acc, i, fr_nft_sqw_elem(fr_nft_x0err_elem(xt[i], t, vp, x0[i]), wr));
    }
    *w = wr;
    *L = fr_awm_lanes_sum(&acc) / (double)D;
}

#endif
