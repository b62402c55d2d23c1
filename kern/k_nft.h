/* DiffusionNFT op entries (ref/ref_nft.c) over flowrl/nft_elem.h: one thread per row for
 * the float64 row means (ref's serial fr_awm_lanes loop, so its lane order), one thread per
 * element for the gradient. */
#ifndef FLOWRL_KERN_K_NFT_H
#define FLOWRL_KERN_K_NFT_H

#include "flowrl/kernel.h"
#include "flowrl/nft_elem.h"
#include "flowrl/ops.h"

#define FR_KN_BLOCK 256

typedef struct {
    int64_t R, B, D;
    fr_nft_coef c;
    const float *t;            // (R,)
    const float *xt, *v, *vo;  // (R,D)
    const float *x0;           // (B,D)
    const double *cpn;         // (2R,), nft_grad only
    double *out;               // (4R,), nft_rows only
    float *grad;               // (R,D), nft_grad only
} fr_k_nft_args;

FR_KERNEL(fr_k_nft_rows, fr_k_nft_args)
{
    int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    const int64_t D = a->D;
    const float *xt = a->xt + r * D, *v = a->v + r * D, *vo = a->vo + r * D, *x0 = a->x0 + (r % a->B) * D;
    fr_nft_row(D, a->c, a->t[r], xt, v, vo, x0, 1, &a->out[r], &a->out[2 * a->R + r]);
    fr_nft_row(D, a->c, a->t[r], xt, v, vo, x0, 0, &a->out[a->R + r], &a->out[3 * a->R + r]);
}

static void k_nft_rows(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt, const float *v,
                       const float *v_old, const float *x0, double *out)
{
    if (R <= 0) return;
    FR_KARG(t, R, "t");
    FR_KARG(xt, R * D, "xt");
    FR_KARG(v, R * D, "v");
    FR_KARG(v_old, R * D, "v_old");
    FR_KARG(x0, (R < B ? R : B) * D, "x0"); /* rows r mod B */
    FR_KARG(out, 4 * R, "out");
    fr_k_nft_args a = {R, B, D, c, t, xt, v, v_old, x0, NULL, out, NULL};
    FR_LAUNCH(fr_k_nft_rows, fr_grid_1d(R, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
}

FR_KERNEL(fr_k_nft_grad, fr_k_nft_args)
{
    int64_t j = fr_kidx_global_x(k);
    if (j >= a->R * a->D) return;
    int64_t r = j / a->D, i = j % a->D;
    float x = a->x0[(r % a->B) * a->D + i], t = a->t[r];
    float dp = fr_nft_x0err_elem(a->xt[j], t, fr_nft_pos_elem(a->v[j], a->vo[j], a->c), x);
    float dn = fr_nft_x0err_elem(a->xt[j], t, fr_nft_neg_elem(a->v[j], a->vo[j], a->c), x);
    a->grad[j] = fr_nft_grad_elem(dp, dn, a->cpn[r], a->cpn[a->R + r]);
}

static void k_nft_grad(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt, const float *v,
                       const float *v_old, const float *x0, const double *cpn, float *grad)
{
    if (R * D <= 0) return;
    FR_KARG(t, R, "t");
    FR_KARG(xt, R * D, "xt");
    FR_KARG(v, R * D, "v");
    FR_KARG(v_old, R * D, "v_old");
    FR_KARG(x0, (R < B ? R : B) * D, "x0");
    FR_KARG(cpn, 2 * R, "cpn");
    FR_KARG(grad, R * D, "grad");
    fr_k_nft_args a = {R, B, D, c, t, xt, v, v_old, x0, cpn, NULL, grad};
    FR_LAUNCH(fr_k_nft_grad, fr_grid_1d(R * D, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
}

static void fr_kern_fill_nft(fr_ops *t)
{
    t->nft_rows = k_nft_rows;
    t->nft_grad = k_nft_grad;
}

#endif
