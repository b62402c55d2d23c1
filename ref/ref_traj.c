/* Trajectory-objective loops of the op table (flowrl/ops.h "trajectory objectives"; the
 * chain of flowrl/grpo.h): plain loops over the FR_HOSTDEV element functions of grpo_elem.h. */
#include "flowrl/grpo_elem.h"
#include "ref/ref_internal.h"

static void ref_logp_backward(int64_t B, int64_t D, int cps, float two_var, const float *x_next, const float *mean,
                              const float *g_logp, float *grad_mean, int accumulate)
{
    for (int64_t b = 0; b < B; b++) {
        const float gd = fr_logp_row_scale(cps, g_logp[b], (float)D, two_var);
        for (int64_t i = b * D; i < (b + 1) * D; i++) {
            float g = fr_logp_dmu_elem(cps, x_next[i], mean[i], gd);
            grad_mean[i] = accumulate ? grad_mean[i] + g : g;
        }
    }
}

static void ref_row_sumsq_diff(int64_t R, int64_t D, const float *a, const float *b, float *out)
{
    for (int64_t r = 0; r < R; r++) out[r] = fr_sumsq_diff_canonical(a + r * D, b + r * D, D);
}

static void ref_kl_grad(int64_t n, float gk, const float *mean, const float *mean_ref, float *grad, int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float g = fr_kl_dmu_elem(mean[i], mean_ref[i], gk);
        grad[i] = accumulate ? grad[i] + g : g;
    }
}

static void ref_guard_grad(int64_t B, int64_t D, const float *x_next, const float *mean, const float *mean_old,
                           const float *gd, const float *gm, float *grad, int accumulate)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = b * D; i < (b + 1) * D; i++) {
            float g = fr_guard_dmu_elem(x_next[i], mean[i], mean_old[i], gd[b], gm[b]);
            grad[i] = accumulate ? grad[i] + g : g;
        }
}

void fr_ref_fill_traj(fr_ops *ops)
{
    ops->logp_backward = ref_logp_backward;
    ops->row_sumsq_diff = ref_row_sumsq_diff;
    ops->kl_grad = ref_kl_grad;
    ops->guard_grad = ref_guard_grad;
}
