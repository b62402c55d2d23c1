/* The Flow-GRPO PPO-clip and GRPO-Guard policy terms as trajectory objectives
 * (flowrl/traj_objective.h; docs/algorithms/flow-grpo.md §2, §3). */
#include "flowrl/traj_objective.h"

static void copy_stats(const fr_ppo_stats *p, fr_traj_stats *st)
{
    st->obj = p->loss;
    st->approx_kl = p->approx_kl;
    st->clipfrac = p->clipfrac;
    st->ratio_min = p->ratio_min;
    st->ratio_max = p->ratio_max;
    st->ratio_mean = p->ratio_mean;
}

/* L = mean_b max(−Â r, −Â clip(r)), r = exp(logp_θ − logp_old); g_μ through logp_θ (the
 * per-sample gradient crosses to the backend for the D-wide backward). */
static fr_status ppo_loss(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                          float *g_mean, float *ratio, fr_traj_stats *st)
{
    (void)j;
    fr_ppo_stats p;
    FR_TRY(fr_ppo_policy(tb->b, params, tb->logp, tb->logp_old, tb->adv, gout, tb->scratch, ratio, &p));
    FR_TRY(fr_h2d(be, tb->dscratch, tb->scratch, (size_t)tb->b * sizeof(float)));
    FR_TRY(fr_logp_backward(be, &tb->step, tb->b, tb->D, tb->x_next, tb->mean, tb->dscratch, g_mean, 0));
    copy_stats(&p, st);
    return FR_OK;
}

const fr_traj_objective fr_traj_ppo = {"ppo", ppo_loss};

/* The ratio with the μ-bias term, reweighted by 1/(−dt); g_μ through logp_θ and the bias. */
static fr_status guard_loss(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                            float *g_mean, float *ratio, fr_traj_stats *st)
{
    (void)j;
    const fr_traj_guard_params *g = params;
    fr_ppo_stats p;
    FR_TRY(fr_guard_policy(be, &tb->step, tb->b, tb->D, g->bias, &g->ppo, tb->x_next, tb->mean, tb->mean_old, tb->logp,
                           tb->logp_old, tb->adv, gout, g_mean, 0, ratio, NULL, &p));
    copy_stats(&p, st);
    return FR_OK;
}

const fr_traj_objective fr_traj_guard = {"grpo-guard", guard_loss};
