/* Kernels of the trajectory-objective entries (flowrl/ops.h "trajectory objectives"): one
 * thread per output element (per row for the row reductions, whose
 * canonical lane order one thread runs as ref does), each computed with the element function
 * ref loops over (ref/ref_traj.c), so the bits are ref's. */
#ifndef FLOWRL_KERN_K_TRAJ_H
#define FLOWRL_KERN_K_TRAJ_H

#include "flowrl/grpo_elem.h"
#include "flowrl/kernel.h"
#include "flowrl/ops.h"

#define FR_K_TRAJ_BLOCK 256u

/* ---- logp_backward: grad_mean (B, D) (+)= fr_logp_dmu_elem, one thread per element -------- */

typedef struct {
    int64_t B, D;
    int cps;
    float two_var;
    const float *x_next, *mean, *g_logp;
    float *grad;
    int accumulate;
} fr_k_traj_logp_bwd_args;

FR_KERNEL(fr_k_traj_logp_bwd, fr_k_traj_logp_bwd_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    const float gd = fr_logp_row_scale(a->cps, a->g_logp[i / a->D], (float)a->D, a->two_var);
    const float g = fr_logp_dmu_elem(a->cps, a->x_next[i], a->mean[i], gd);
    a->grad[i] = a->accumulate ? a->grad[i] + g : g;
}

static void k_logp_backward(int64_t B, int64_t D, int cps, float two_var, const float *x_next, const float *mean,
                            const float *g_logp, float *grad_mean, int accumulate)
{
    if (B <= 0 || D <= 0) return;
    FR_KARG(x_next, B * D, "x_next");
    FR_KARG(mean, B * D, "mean");
    FR_KARG(g_logp, B, "g_logp");
    FR_KARG(grad_mean, B * D, "grad_mean");
    fr_k_traj_logp_bwd_args a = {B, D, cps, two_var, x_next, mean, g_logp, grad_mean, accumulate};
    FR_LAUNCH(fr_k_traj_logp_bwd, fr_grid_1d(B * D, FR_K_TRAJ_BLOCK), fr_dim3_x(FR_K_TRAJ_BLOCK), a);
}

/* ---- row_sumsq_diff: out (R,), one thread per row (the canonical lanes in one chain) ---- */

typedef struct {
    int64_t R, D;
    const float *a, *b;
    float *out;
} fr_k_traj_sumsq_diff_args;

FR_KERNEL(fr_k_traj_sumsq_diff, fr_k_traj_sumsq_diff_args)
{
    const int64_t r = fr_kidx_global_x(k);
    if (r >= a->R) return;
    a->out[r] = fr_sumsq_diff_canonical(a->a + r * a->D, a->b + r * a->D, a->D);
}

static void k_row_sumsq_diff(int64_t R, int64_t D, const float *x, const float *y, float *out)
{
    if (R <= 0) return;
    FR_KARG(x, R * D, "a");
    FR_KARG(y, R * D, "b");
    FR_KARG(out, R, "out");
    fr_k_traj_sumsq_diff_args a = {R, D, x, y, out};
    FR_LAUNCH(fr_k_traj_sumsq_diff, fr_grid_1d(R, FR_K_TRAJ_BLOCK), fr_dim3_x(FR_K_TRAJ_BLOCK), a);
}

/* ---- kl_grad: grad (n) (+)= fr_kl_dmu_elem ------------------------------------------------ */

typedef struct {
    int64_t n;
    float gk;
    const float *mean, *mean_ref;
    float *grad;
    int accumulate;
} fr_k_traj_kl_grad_args;

FR_KERNEL(fr_k_traj_kl_grad, fr_k_traj_kl_grad_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->n) return;
    const float g = fr_kl_dmu_elem(a->mean[i], a->mean_ref[i], a->gk);
    a->grad[i] = a->accumulate ? a->grad[i] + g : g;
}

static void k_kl_grad(int64_t n, float gk, const float *mean, const float *mean_ref, float *grad, int accumulate)
{
    if (n <= 0) return;
    FR_KARG(mean, n, "mean");
    FR_KARG(mean_ref, n, "mean_ref");
    FR_KARG(grad, n, "grad");
    fr_k_traj_kl_grad_args a = {n, gk, mean, mean_ref, grad, accumulate};
    FR_LAUNCH(fr_k_traj_kl_grad, fr_grid_1d(n, FR_K_TRAJ_BLOCK), fr_dim3_x(FR_K_TRAJ_BLOCK), a);
}

/* ---- guard_grad: grad (B, D) (+)= fr_guard_dmu_elem ---------------------------------------- */

typedef struct {
    int64_t B, D;
    const float *x_next, *mean, *mean_old, *gd, *gm;
    float *grad;
    int accumulate;
} fr_k_traj_guard_grad_args;

FR_KERNEL(fr_k_traj_guard_grad, fr_k_traj_guard_grad_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->B * a->D) return;
    const int64_t b = i / a->D;
    const float g = fr_guard_dmu_elem(a->x_next[i], a->mean[i], a->mean_old[i], a->gd[b], a->gm[b]);
    a->grad[i] = a->accumulate ? a->grad[i] + g : g;
}

static void k_guard_grad(int64_t B, int64_t D, const float *x_next, const float *mean, const float *mean_old,
                         const float *gd, const float *gm, float *grad, int accumulate)
{
    if (B <= 0 || D <= 0) return;
    FR_KARG(x_next, B * D, "x_next");
    FR_KARG(mean, B * D, "mean");
    FR_KARG(mean_old, B * D, "mean_old");
    FR_KARG(gd, B, "gd");
    FR_KARG(gm, B, "gm");
    FR_KARG(grad, B * D, "grad");
    fr_k_traj_guard_grad_args a = {B, D, x_next, mean, mean_old, gd, gm, grad, accumulate};
    FR_LAUNCH(fr_k_traj_guard_grad, fr_grid_1d(B * D, FR_K_TRAJ_BLOCK), fr_dim3_x(FR_K_TRAJ_BLOCK), a);
}

static void fr_kern_fill_traj(fr_ops *t)
{
    t->logp_backward = k_logp_backward;
    t->row_sumsq_diff = k_row_sumsq_diff;
    t->kl_grad = k_kl_grad;
    t->guard_grad = k_guard_grad;
}

#endif
