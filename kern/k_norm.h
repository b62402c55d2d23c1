/* Layer norm and row reductions (ref/ref_layernorm.c, ref_reduce.c). A row statistic is one
 * thread per row running ref's serial canonical loop (flowrl/reduce.h), so its order is ref's
 * by construction; the per-element work that follows runs one thread per element (forward
 * y) or per column (dgamma, dbeta: ref's chains over the rows in order). */
#ifndef FLOWRL_KERN_K_NORM_H
#define FLOWRL_KERN_K_NORM_H

#include <math.h>

#include "flowrl/elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"
#include "flowrl/reduce.h"

#define FR_KN_BLOCK 256

/* ---- row sum / mean ---------------------------------------------------------------------- */

typedef struct {
    int64_t M, N;
    const float *x; // (M,N)
    float *out;     // (M,)
    int mean;       // 1: divide by N (fr_mean_canonical)
} fr_k_rows_args;

FR_KERNEL(fr_k_row_reduce, fr_k_rows_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->M) return;
    const float *xr = a->x + i * a->N;
    a->out[i] = a->mean ? fr_mean_canonical(xr, a->N) : fr_sum_canonical(xr, a->N, 1);
}

static void k_row_reduce(int64_t M, int64_t N, const float *x, float *out, int mean)
{
    if (M <= 0) return;
    fr_k_rows_args a = {M, N, x, out, mean};
    FR_LAUNCH(fr_k_row_reduce, fr_grid_1d(M, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
}

static void k_row_sum(int64_t M, int64_t N, const float *x, float *out)
{
    FR_KARG(x, M * N, "x");
    FR_KARG(out, M, "out");
    k_row_reduce(M, N, x, out, 0);
}

static void k_row_mean(int64_t M, int64_t N, const float *x, float *out)
{
    FR_KARG(x, M * N, "x");
    FR_KARG(out, M, "out");
    k_row_reduce(M, N, x, out, 1);
}

/* ---- layer norm forward ------------------------------------------------------------------ */

typedef struct {
    int64_t M, D;
    const float *x;            // (M,D)
    const float *gamma, *beta; // (D,) or NULL
    float eps;
    float *y;          // (M,D), may alias x
    float *mean, *rstd; // (M,)
} fr_k_ln_fwd_args;

/* mean and rstd of row i (ref's statistics, in its order). */
FR_KERNEL(fr_k_ln_stats, fr_k_ln_fwd_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->M) return;
    const float *xr = a->x + i * a->D;
    float mu = fr_mean_canonical(xr, a->D);
    float var = a->D > 0 ? fr_sumsq_centered_canonical(xr, a->D, mu) / (float)a->D : 0.0f;
    a->mean[i] = mu;
    a->rstd[i] = fr_layernorm_rstd(var, a->eps);
}

FR_KERNEL(fr_k_ln_apply, fr_k_ln_fwd_args)
{
    int64_t e = fr_kidx_global_x(k);
    if (e >= a->M * a->D) return;
    int64_t i = e / a->D, j = e % a->D;
    float xhat = fr_layernorm_xhat(a->x[e], a->mean[i], a->rstd[i]);
    a->y[e] = fr_layernorm_y(xhat, a->gamma ? a->gamma[j] : 1.0f, a->beta ? a->beta[j] : 0.0f);
}

static void k_layernorm_fwd(int64_t M, int64_t D, const float *x, const float *gamma, const float *beta, float eps,
                            float *y, float *mean, float *rstd)
{
    if (M <= 0) return;
    FR_KARG(x, M * D, "x");
    FR_KARG_OPT(gamma, D, "gamma");
    FR_KARG_OPT(beta, D, "beta");
    FR_KARG(y, M * D, "y");
    FR_KARG(mean, M, "mean");
    FR_KARG(rstd, M, "rstd");
    fr_k_ln_fwd_args a = {M, D, x, gamma, beta, eps, y, mean, rstd};
    FR_LAUNCH(fr_k_ln_stats, fr_grid_1d(M, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
    if (D > 0) FR_LAUNCH(fr_k_ln_apply, fr_grid_1d(M * D, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
}

/* ---- layer norm backward ----------------------------------------------------------------- */

typedef struct {
    int64_t M, D;
    const float *x;            // (M,D)
    const float *gamma;        // (D,) or NULL
    const float *mean, *rstd;  // (M,)
    const float *dy;           // (M,D)
    float *dx;                 // (M,D)
    float *dgamma, *dbeta;     // (D,) or NULL
    int accumulate;
} fr_k_ln_bwd_args;

/* dx of row i: mg, mgx as ref's lane sums (fr_sum_canonical / fr_dot_canonical order over g
 * and (g, xhat) recomputed per element), then fr_layernorm_dx per element. */
FR_KERNEL(fr_k_ln_bwd_dx, fr_k_ln_bwd_args)
{
    int64_t i = fr_kidx_global_x(k);
    if (i >= a->M) return;
    const int64_t D = a->D;
    const float *xr = a->x + i * D, *dyr = a->dy + i * D;
    float *dxr = a->dx + i * D;
    fr_layernorm_dx_row(D, xr, dyr, a->gamma, a->mean[i], a->rstd[i], dxr, a->accumulate);
}

/* dgamma[j] = fmaf(dy, xhat, .) and dbeta[j] = . + dy over the rows in order, from 0 or the
 * old values. */
FR_KERNEL(fr_k_ln_bwd_params, fr_k_ln_bwd_args)
{
    int64_t j = fr_kidx_global_x(k);
    if (j >= a->D) return;
    const int64_t D = a->D;
    float dg = (a->accumulate && a->dgamma) ? a->dgamma[j] : 0.0f;
    float db = (a->accumulate && a->dbeta) ? a->dbeta[j] : 0.0f;
    for (int64_t i = 0; i < a->M; i++) {
        float dyv = a->dy[i * D + j];
        if (a->dgamma) dg = fmaf(dyv, fr_layernorm_xhat(a->x[i * D + j], a->mean[i], a->rstd[i]), dg);
        db = db + dyv;
    }
    if (a->dgamma) a->dgamma[j] = dg;
    if (a->dbeta) a->dbeta[j] = db;
}

static void k_layernorm_bwd(int64_t M, int64_t D, const float *x, const float *gamma, const float *mean,
                            const float *rstd, const float *dy, float *dx, float *dgamma, float *dbeta, int accumulate)
{
    if (D <= 0) return;
    FR_KARG(x, M * D, "x");
    FR_KARG_OPT(gamma, D, "gamma");
    FR_KARG(mean, M, "mean");
    FR_KARG(rstd, M, "rstd");
    FR_KARG(dy, M * D, "dy");
    FR_KARG(dx, M * D, "dx");
    FR_KARG_OPT(dgamma, D, "dgamma");
    FR_KARG_OPT(dbeta, D, "dbeta");
    fr_k_ln_bwd_args a = {M, D, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate};
    if (M > 0) FR_LAUNCH(fr_k_ln_bwd_dx, fr_grid_1d(M, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
    if (dgamma || dbeta) FR_LAUNCH(fr_k_ln_bwd_params, fr_grid_1d(D, FR_KN_BLOCK), fr_dim3_x(FR_KN_BLOCK), a);
}

static void fr_kern_fill_norm(fr_ops *t)
{
    t->row_sum = k_row_sum;
    t->row_mean = k_row_mean;
    t->layernorm_fwd = k_layernorm_fwd;
    t->layernorm_bwd = k_layernorm_bwd;
}

#endif
