/* OC-GFN pre-training on the GFlowNet trainer (flowrl/gfn_oc.h; docs/algorithms/gfn-oc.md; spec
 * more.md §8.1, paper only): each trajectory's outcome y, its encoding as the policy's extra
 * input, the sparse reward R(x | y) = 1[x = y] in log space, hindsight relabelling, and the exact
 * goal-reaching evaluation. The trainer's DB loss, network and sampler are used as they are. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_oc.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

double fr_oc_log_reward(int64_t x, int64_t y, double floor) { return x == y ? 0.0 : floor; }

int64_t fr_oc_relabel(int64_t y, int64_t x, double u, double p) { return u < p ? x : y; }

int64_t fr_oc_outcome_of(uint32_t v, int64_t n) { return (int64_t)(((uint64_t)v * (uint64_t)n) >> 32); }

double fr_oc_log_z(int64_t n, double floor) { return fr_awm_log(1.0 + (double)(n - 1) * fr_awm_exp(floor)); }

fr_status fr_gfn_oc_check(const fr_env *env, const fr_gfn_opts *o)
{
    if (o->loss != FR_GFN_DB) return fr_fail(FR_ERR_ARG, "gfn: --outcome is the DB baseline only, not %s", fr_gfn_loss_name(o->loss));
    if (o->preference || o->forward_looking || o->replay > 0 || o->ls_rounds > 0 || o->kl_weight > 0.0)
        return fr_fail(FR_ERR_ARG, "gfn: --outcome does not combine with --preference, --forward-looking, --replay-buffer, "
                                   "--local-search or --kl-weight");
    if (env->obs_dim > GFN_MAX_COND)
        return fr_fail(FR_ERR_ARG, "gfn: --outcome encodes the outcome like a state: %s's %d inputs exceed %d", env->desc,
                       env->obs_dim, GFN_MAX_COND);
    if (!isfinite(o->oc_log_floor) || !(o->oc_log_floor < 0.0))
        return fr_fail(FR_ERR_ARG, "gfn: --oc-log-floor %g must be finite and < 0", o->oc_log_floor);
    if (!(o->oc_relabel >= 0.0 && o->oc_relabel <= 1.0))
        return fr_fail(FR_ERR_ARG, "gfn: --oc-relabel %g is outside [0, 1]", o->oc_relabel);
    return FR_OK;
}

void fr_gfn_oc_encode(const fr_gfn_trainer *t, int64_t y, double *w)
{
    const fr_env *e = t->env;
    int32_t s[GFN_MAX_A];
    float obs[GFN_MAX_COND];
    e->gfn->state_at(e, y, s);
    e->gfn->encode(e, s, obs);
    for (int i = 0; i < e->obs_dim; i++) w[i] = (double)obs[i];
}

void fr_gfn_oc_draw_goals(fr_gfn_trainer *t)
{
    for (int64_t b = 0; b < t->o.batch; b++) {
        const uint32_t v = fr_rng_u32(t->o.seed, FR_RNG_OC_GOAL, (uint32_t)t->iter, (uint32_t)b, 0, 0);
        t->goal[b] = fr_oc_outcome_of(v, t->env->n_states);
        fr_gfn_oc_encode(t, t->goal[b], t->pref + b * t->ncw);
    }
}

void fr_gfn_oc_relabel(fr_gfn_trainer *t)
{
    const fr_env *e = t->env;
    const int64_t T = e->max_steps, D = e->state_dim;
    for (int64_t b = 0; b < t->o.batch; b++) {
        const int64_t x = e->gfn->index(e, t->st + (b * T + t->len[b] - 1) * D);
        const double u = fr_u32_to_uniform(fr_rng_u32(t->o.seed, FR_RNG_OC_RELABEL, (uint32_t)t->iter, (uint32_t)b, 0, 0));
        const int64_t y = fr_oc_relabel(t->goal[b], x, u, t->o.oc_relabel);
        if (y == t->goal[b]) continue;
        t->goal[b] = y;
        fr_gfn_oc_encode(t, y, t->pref + b * t->ncw);
    }
}

double fr_gfn_oc_log_reward(const fr_gfn_trainer *t, int64_t b)
{
    const fr_env *e = t->env;
    const int64_t T = e->max_steps, D = e->state_dim;
    return fr_oc_log_reward(e->gfn->index(e, t->st + (b * T + t->len[b] - 1) * D), t->goal[b], t->o.oc_log_floor);
}

void fr_gfn_oc_target(fr_gfn_trainer *t, int64_t y)
{
    const int64_t n = t->env->n_states;
    t->log_z_true = fr_oc_log_z(n, t->o.oc_log_floor);
    for (int64_t x = 0; x < n; x++) t->target[x] = fr_awm_exp(fr_oc_log_reward(x, y, t->o.oc_log_floor) - t->log_z_true);
    fr_gfn_oc_encode(t, y, t->eval_w);
}

const int64_t *fr_gfn_oc_goals(const fr_gfn_trainer *t) { return t->goal; }

fr_status fr_gfn_oc_eval(fr_gfn_trainer *t, double *rate, double *l1, double *log_z_err, double *pty)
{
    if (!t->o.outcome) return fr_fail(FR_ERR_ARG, "gfn: the goal-reaching evaluation needs an outcome-conditioned trainer");
    const int64_t n = t->env->n_states;
    double *pt = pty ? NULL : fr_malloc((size_t)n * sizeof *pt), sr = 0.0, sl = 0.0, sz = 0.0;
    if (!pty && !pt) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    for (int64_t y = 0; y < n && s == FR_OK; y++) {
        double *row = pty ? pty + y * n : pt, ly, zy;
        fr_gfn_oc_target(t, y);
        s = fr_gfn_trainer_eval(t, &ly, &zy, row);
        sr += row[y];
        sl += ly;
        sz += zy;
    }
    if (s == FR_OK) {
        if (rate) *rate = sr / (double)n;
        if (l1) *l1 = sl / (double)n;
        if (log_z_err) *log_z_err = sz / (double)n;
        fr_gfn_oc_target(t, 0);
    }
    free(pt);
    return s;
}
