/* The Flow-GRPO PPO-clip and GRPO-Guard policy terms as trajectory objectives
 * (flowrl/traj_objective.h; docs/algorithms/flow-grpo.md §2, §3). */
#include <math.h>
#include <stdlib.h>

#include "flowrl/grpo_elem.h"
#include "flowrl/reduce.h"
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

const fr_traj_objective fr_traj_ppo = {"ppo", ppo_loss, 0, 0};

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

const fr_traj_objective fr_traj_guard = {"grpo-guard", guard_loss, 0, 1};

/* Chunk-GRPO: fr_ppo_policy on the chunk's mean log-ratio (as logp_new, logp_old 0, so the
 * ratio is exp(lr) exactly) with gout/cs; its gradient is dL/dlr, and dlr/dlogp_θ,j = 1/cs. */
static fr_status chunk_loss(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                            float *g_mean, float *ratio, fr_traj_stats *st)
{
    const fr_traj_chunk_params *c = params;
    const int64_t ch = c->chunk[j];
    const float cs = (float)c->size[ch];
    /* the b rows' chunk log-ratios (tb->scratch), zeros as their "old" log-probs, the gradient */
    float *lr = tb->scratch;
    for (int64_t k = 0; k < tb->b; k++) lr[k] = c->lr[ch * c->N + tb->rows[k]];
    float *zero = fr_calloc((size_t)tb->b, sizeof *zero), *g = fr_malloc((size_t)tb->b * sizeof *g);
    if (!zero || !g) {
        free(zero);
        free(g);
        return FR_ERR_NOMEM;
    }
    fr_ppo_stats p;
    fr_status s = fr_ppo_policy(tb->b, &c->ppo, lr, zero, tb->adv, gout / cs, g, ratio, &p);
    free(zero);
    if (s == FR_OK) s = fr_h2d(be, tb->dscratch, g, (size_t)tb->b * sizeof(float));
    free(g);
    FR_TRY(s);
    FR_TRY(fr_logp_backward(be, &tb->step, tb->b, tb->D, tb->x_next, tb->mean, tb->dscratch, g_mean, 0));
    copy_stats(&p, st);
    st->obj = p.loss / cs;
    return FR_OK;
}

const fr_traj_objective fr_traj_chunk = {"chunk-ppo", chunk_loss, 0, 0};

fr_status fr_traj_rows_finish(fr_backend *be, const fr_traj_batch *tb, const float *dlogp, const float *ratio,
                              int64_t n_clip, float *g_mean, fr_traj_stats *st)
{
    const int64_t b = tb->b;
    float rmin = INFINITY, rmax = -INFINITY;
    for (int64_t i = 0; i < b; i++) {
        if (ratio[i] != ratio[i]) rmin = rmax = ratio[i];
        else if (rmin == rmin) {
            rmin = ratio[i] < rmin ? ratio[i] : rmin;
            rmax = ratio[i] > rmax ? ratio[i] : rmax;
        }
    }
    st->approx_kl = 0.5f * (fr_sumsq_canonical(dlogp, b) / (float)b);
    st->clipfrac = (float)n_clip / (float)b;
    st->ratio_min = rmin;
    st->ratio_max = rmax;
    st->ratio_mean = fr_mean_canonical(ratio, b);
    FR_TRY(fr_h2d(be, tb->dscratch, tb->scratch, (size_t)b * sizeof(float)));
    return fr_logp_backward(be, &tb->step, b, tb->D, tb->x_next, tb->mean, tb->dscratch, g_mean, 0);
}

/* DDPO-SF (score function, no ratio): L = −mean_b(Â·logp_θ), Â = clamp(A, ±adv_clip);
 * g_logp = −Â·gout/b; the ratios exp(logp_θ − logp_old) are reported only (1 on-policy). */
static fr_status sf_loss(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                         float *g_mean, float *ratio, fr_traj_stats *st)
{
    (void)j;
    const fr_ppo_params *prm = params;
    const int64_t b = tb->b;
    float *term = fr_malloc((size_t)b * 2 * sizeof *term);
    if (!term) return FR_ERR_NOMEM;
    float *dlogp = term + b, *g = tb->scratch;
    const float gb = gout / (float)b;
    for (int64_t i = 0; i < b; i++) {
        const float a = fr_adv_clamp_elem(tb->adv[i], prm->adv_clip_max);
        term[i] = -(a * tb->logp[i]);
        g[i] = -(a * gb);
        dlogp[i] = tb->logp[i] - tb->logp_old[i];
        ratio[i] = fr_ppo_ratio_elem(tb->logp[i], tb->logp_old[i]);
    }
    st->obj = fr_mean_canonical(term, b);
    fr_status s = fr_traj_rows_finish(be, tb, dlogp, ratio, 0, g_mean, st);
    free(term);
    return s;
}

const fr_traj_objective fr_traj_score_function = {"score-function", sf_loss, 0, 0};
