/* Flow-matching and AWM op entries (ref/ref_flow.c) over the element functions of
 * flowrl/pretrain_elem.h and awm_elem.h: one thread per element, or per row for the float64
 * row means (ref's serial fr_awm_lanes loop, so its lane order). fm_loss's loss is the
 * 8-lane long sum of kern/k_lanes.h over the rounded squares. */
#ifndef FLOWRL_KERN_K_FLOW_H
#define FLOWRL_KERN_K_FLOW_H

#include "flowrl/awm_elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"
#include "flowrl/pretrain_elem.h"
#include "kern/k_lanes.h"

#define FR_KF_BLOCK 256

/* ---- flow matching ------------------------------------------------------------------------- */

typedef struct {
    int64_t R, D;
    const float *v, *target; // (R,D)
    const float *row_scale;  // (R,) or NULL
    float uniform;           // 2/(R·D) rounded once, without row_scale
    float *grad;             // (R,D)
} fr_k_mse_grad_args;

FR_KERNEL(fr_k_mse_grad, fr_k_mse_grad_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    float s = a->row_scale ? a->row_scale[i / a->D] : a->uniform;
    a->grad[i] = fr_mse_grad_elem(a->v[i], a->target[i], s);
}

static void k_fm_loss(int64_t R, int64_t D, const float *v, const float *target, const float *row_scale, float *loss,
                      float *grad)
{
    const int64_t n = R * D;
    FR_KARG(v, n, "v");
    FR_KARG(target, n, "target");
    FR_KARG_OPT(row_scale, grad ? R : 0, "row_scale");
    FR_KARG_OPT(loss, 1, "loss");
    FR_KARG_OPT(grad, n, "grad");
    if (loss) k_lanes(FR_KL_MSE, n, v, target, loss, 1, 1);
    if (grad && n > 0) {
        fr_k_mse_grad_args a = {R, D, v, target, row_scale, (float)(2.0 / (double)n), grad};
        FR_LAUNCH(fr_k_mse_grad, fr_grid_1d(n, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
    }
}

typedef struct {
    int64_t R, B, D;
    const float *x0;  // (B,D)
    const float *eps; // (R,D)
    float *target;    // (R,D)
} fr_k_flow_target_args;

FR_KERNEL(fr_k_flow_target, fr_k_flow_target_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->D) return;
    int64_t r = i / a->D, j = i % a->D;
    a->target[i] = fr_flow_target_elem(a->x0[(r % a->B) * a->D + j], a->eps[i]);
}

static void k_flow_target(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, float *target)
{
    if (R * D <= 0) return;
    FR_KARG(x0, (R < B ? R : B) * D, "x0"); /* rows r mod B */
    FR_KARG(eps, R * D, "eps");
    FR_KARG(target, R * D, "target");
    fr_k_flow_target_args a = {R, B, D, x0, eps, target};
    FR_LAUNCH(fr_k_flow_target, fr_grid_1d(R * D, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
}

/* ---- AWM float64 row means ------------------------------------------------------------------ */

typedef struct {
    int64_t R, B, D;
    const float *v, *eps; // (R,D); awm_sqerr: v, eps; row_msd_f64: a, b
    const float *x0;      // (B,D), awm_sqerr only
    double *m;            // (R,)
} fr_k_awm_rows_args;

FR_KERNEL(fr_k_awm_sqerr, fr_k_awm_rows_args)
{
    int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    const int64_t D = a->D;
    const float *xr = a->x0 + (r % a->B) * D, *er = a->eps + r * D, *vr = a->v + r * D;
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < D; i++) fr_awm_lanes_add(&acc, i, fr_awm_sqerr_elem(vr[i], er[i], xr[i]));
    a->m[r] = fr_awm_lanes_sum(&acc) / (double)D;
}

FR_KERNEL(fr_k_row_msd_f64, fr_k_awm_rows_args)
{
    int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    const int64_t D = a->D;
    const float *ar = a->v + r * D, *br = a->eps + r * D;
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < D; i++) {
        double d = fr_awm_diff_elem(ar[i], br[i]);
        fr_awm_lanes_add(&acc, i, d * d);
    }
    a->m[r] = fr_awm_lanes_sum(&acc) / (double)D;
}

static void k_awm_sqerr(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0, double *m)
{
    if (R <= 0) return;
    FR_KARG(v, R * D, "v");
    FR_KARG(eps, R * D, "eps");
    FR_KARG(x0, (R < B ? R : B) * D, "x0"); /* rows r mod B */
    FR_KARG(m, R, "m");
    fr_k_awm_rows_args a = {R, B, D, v, eps, x0, m};
    FR_LAUNCH(fr_k_awm_sqerr, fr_grid_1d(R, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
}

static void k_row_msd_f64(int64_t R, int64_t D, const float *a_, const float *b, double *m)
{
    if (R <= 0) return;
    FR_KARG(a_, R * D, "a");
    FR_KARG(b, R * D, "b");
    FR_KARG(m, R, "m");
    fr_k_awm_rows_args a = {R, 1, D, a_, b, NULL, m};
    FR_LAUNCH(fr_k_row_msd_f64, fr_grid_1d(R, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
}

/* ---- AWM KL gradient, EMA --------------------------------------------------------------------- */

typedef struct {
    int64_t R, D;
    const float *a, *b1, *b2; // (R,D); b1, b2 may be NULL
    const double *cb, *ce;    // (R,)
    float *grad;              // (R,D)
} fr_k_kl_grad_args;

FR_KERNEL(fr_k_kl_grad_add, fr_k_kl_grad_args)
{
    int64_t j = fr_kidx_global_x(k);
    if (j >= a->R * a->D) return;
    int64_t r = j / a->D;
    double g = 0.0;
    if (a->b1) g = a->cb[r] * fr_awm_diff_elem(a->a[j], a->b1[j]);
    if (a->b2) g = g + a->ce[r] * fr_awm_diff_elem(a->a[j], a->b2[j]);
    a->grad[j] = a->grad[j] + (float)g;
}

static void k_kl_grad_add(int64_t R, int64_t D, const float *a_, const float *b1, const double *cb, const float *b2,
                          const double *ce, float *grad)
{
    if (R * D <= 0) return;
    FR_KARG(a_, R * D, "a");
    FR_KARG_OPT(b1, R * D, "b1");
    FR_KARG(cb, b1 ? R : 0, "cb"); /* read only with b1 */
    FR_KARG_OPT(b2, R * D, "b2");
    FR_KARG(ce, b2 ? R : 0, "ce");
    FR_KARG(grad, R * D, "grad");
    fr_k_kl_grad_args a = {R, D, a_, b1, b2, cb, ce, grad};
    FR_LAUNCH(fr_k_kl_grad_add, fr_grid_1d(R * D, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
}

typedef struct {
    int64_t n;
    float d, omd;       // d and 1 − d, each rounded from double once
    const float *theta; // (n,)
    float *ema;         // (n,)
} fr_k_ema_args;

FR_KERNEL(fr_k_ema_lerp, fr_k_ema_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i < a->n) a->ema[i] = fr_awm_ema_elem(a->ema[i], a->theta[i], a->d, a->omd);
}

static void k_ema_lerp(int64_t n, double d, const float *theta, float *ema)
{
    if (n <= 0) return;
    FR_KARG(theta, n, "theta");
    FR_KARG(ema, n, "ema");
    fr_k_ema_args a = {n, (float)d, (float)(1.0 - d), theta, ema};
    FR_LAUNCH(fr_k_ema_lerp, fr_grid_1d(n, FR_KF_BLOCK), fr_dim3_x(FR_KF_BLOCK), a);
}

static void fr_kern_fill_flow(fr_ops *t)
{
    t->fm_loss = k_fm_loss;
    t->flow_target = k_flow_target;
    t->awm_sqerr = k_awm_sqerr;
    t->row_msd_f64 = k_row_msd_f64;
    t->kl_grad_add = k_kl_grad_add;
    t->ema_lerp = k_ema_lerp;
}

#endif
