/* The rollout loop (flowrl/rollout.h): model forward with optional CFG, then one
 * sampler step, T times, over chunks of cfg->batch rows. docs/algorithms/samplers.md §0, §15. */
#include "flowrl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"
#include "flowrl/cond.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"
#include "core/rollout_internal.h"

fr_rollout_cfg fr_rollout_cfg_default(fr_sampler_kind kind)
{
    fr_rollout_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.T = 40; /* FG's evaluation steps (docs/algorithms/samplers.md §2) */
    switch (kind) {
    case FR_SAMPLER_SDE: c.noise = 0.7f; break;   /* FG sample.noise_level, docs/algorithms/samplers.md §3 */
    case FR_SAMPLER_CPS: c.noise = 0.8f; break;   /* FG fast/CPS configs, docs/algorithms/samplers.md §4 */
    case FR_SAMPLER_DANCE: c.noise = 0.3f; break; /* DanceGRPO η, docs/algorithms/samplers.md §5 */
    default: c.noise = 0.0f; break;               /* ddim: η = 0, deterministic DDIM */
    }
    c.dpm_order = 2;
    c.cfg = 1.0f;
    c.batch = 64;
    return c;
}

/* ---- checks ---------------------------------------------------------------------- */

static int is_flow(fr_sampler_kind k) { return k != FR_SAMPLER_DDIM; }

/* Leaves per tree, Π width (1 without a tree). */
static int64_t tree_leaves(const fr_rollout_cfg *c)
{
    int64_t L = 1;
    for (int64_t k = 0; k < c->n_branch; k++) L *= c->branch[k].width;
    return L;
}

fr_status fr_rollout_check_sharing(const fr_rollout_cfg *c)
{
    if (c->n_branch < 0 || c->n_branch > 64 || (c->n_branch > 0 && !c->branch))
        return fr_fail(FR_ERR_ARG, "rollout: %lld branch points (or a NULL branch list), expected 0 .. 64",
                       (long long)c->n_branch);
    int64_t L = 1;
    for (int64_t k = 0; k < c->n_branch; k++) {
        const fr_rollout_branch *b = &c->branch[k];
        if (b->at < 0 || b->at >= c->T || (k > 0 && b->at <= c->branch[k - 1].at))
            return fr_fail(FR_ERR_ARG, "rollout: branch %lld at step %lld, expected increasing steps in [0, %lld)",
                           (long long)k, (long long)b->at, (long long)c->T);
        if (b->width < 1 || b->width > ((int64_t)1 << 31) / L)
            return fr_fail(FR_ERR_ARG, "rollout: branch %lld width %lld, expected >= 1 and at most 2^31 leaves",
                           (long long)k, (long long)b->width);
        if (!(b->xi_scale > 0.0f && b->xi_scale <= 1e6f))
            return fr_fail(FR_ERR_ARG, "rollout: branch %lld xi_scale %g, expected in (0, 1e6] (1 = none)",
                           (long long)k, (double)b->xi_scale);
        L *= b->width;
    }
    if (c->x_T_key != FR_XT_SAMPLE && c->x_T_key != FR_XT_GROUP)
        return fr_fail(FR_ERR_ARG, "rollout: x_T_key %d, expected sample (0) or group (1)", (int)c->x_T_key);
    if (c->x_T_key == FR_XT_GROUP && (c->group_size < 1 || c->group_size > ((int64_t)1 << 31) || c->group_size % L))
        return fr_fail(FR_ERR_ARG, "rollout: group_size %lld, expected >= 1 and a multiple of the %lld leaves of a tree",
                       (long long)c->group_size, (long long)L);
    return FR_OK;
}

fr_status fr_rollout_check_cfg(const fr_model *m, const fr_task *task, const fr_rollout_cfg *c)
{
    const char *name = fr_sampler_name(c->kind);
    if (!name) return fr_fail(FR_ERR_ARG, "rollout: invalid sampler kind %d", (int)c->kind);
    if (is_flow(c->kind) && m->cfg.pred != FR_PRED_VELOCITY)
        return fr_fail(FR_ERR_ARG,
                       "sampler '%s' needs a velocity (flow-matching) model, but this model predicts %s: "
                       "use the ddim sampler",
                       name, fr_pred_name(m->cfg.pred));
    if (!is_flow(c->kind) && m->cfg.pred != FR_PRED_EPSILON)
        return fr_fail(FR_ERR_ARG,
                       "sampler 'ddim' needs an epsilon-prediction model, but this model predicts %s: "
                       "use ode, sde, cps, dance or dpm",
                       fr_pred_name(m->cfg.pred));
    int64_t n_cond, n_slots;
    fr_cond_dims(task, &n_cond, &n_slots);
    if (m->cfg.D != task->D || m->cfg.n_cond != n_cond || m->cfg.n_slots != n_slots)
        return fr_fail(FR_ERR_ARG,
                       "rollout: model (D %lld, n_cond %lld, n_slots %lld) does not fit task %s "
                       "(D %d, n_cond %lld, n_slots %lld)",
                       (long long)m->cfg.D, (long long)m->cfg.n_cond, (long long)m->cfg.n_slots, task->name,
                       task->D, (long long)n_cond, (long long)n_slots);
    if (c->T < 1 || c->T > (int64_t)1 << 24)
        return fr_fail(FR_ERR_ARG, "rollout: %lld steps, expected 1 .. 2^24", (long long)c->T);
    if (!(c->cfg == c->cfg) || c->cfg - c->cfg != 0.0f)
        return fr_fail(FR_ERR_ARG, "rollout: guidance scale %g is not finite", (double)c->cfg);
    if (is_flow(c->kind)) {
        if (!c->sigmas) return fr_fail(FR_ERR_ARG, "rollout: sampler '%s' needs a sigma grid", name);
        for (int64_t i = 0; i < c->T; i++)
            if (!(c->sigmas[i + 1] >= 0.0f && c->sigmas[i + 1] < c->sigmas[i] && c->sigmas[i] <= 1.0f))
                return fr_fail(FR_ERR_ARG, "rollout: sigma grid is not decreasing in [0, 1] at step %lld (%g -> %g)",
                               (long long)i, (double)c->sigmas[i], (double)c->sigmas[i + 1]);
    } else {
        if (!c->alpha_bar || !c->timesteps || c->n_train < 1)
            return fr_fail(FR_ERR_ARG, "rollout: ddim needs alpha_bar, n_train and timesteps");
        for (int64_t i = 0; i < c->T; i++) {
            int64_t t = c->timesteps[i];
            if (t < 0 || t >= c->n_train || (i > 0 && t >= c->timesteps[i - 1]))
                return fr_fail(FR_ERR_ARG, "rollout: ddim timestep %lld = %lld, expected descending values in [0, %lld)",
                               (long long)i, (long long)t, (long long)c->n_train);
        }
    }
    if (c->dpm_from < 0 || c->dpm_from > c->T || (c->dpm_from > 0 && !is_flow(c->kind)))
        return fr_fail(FR_ERR_ARG, "rollout: dpm_from %lld with sampler '%s' and %lld steps, expected 0 (none) "
                                   "or 1 .. steps with a flow sampler",
                       (long long)c->dpm_from, name, (long long)c->T);
    return fr_rollout_check_sharing(c);
}

/* The scalars of step i (flowrl/sampler.h: which fields each kind reads). */
fr_step fr_rollout_step(const fr_rollout_cfg *c, int64_t i)
{
    fr_step p;
    memset(&p, 0, sizeof p);
    p.kind = c->dpm_from > 0 && i >= c->dpm_from ? FR_SAMPLER_DPM : c->kind; /* Flash's tail */
    p.noise = c->step_noise ? c->step_noise[i] : c->noise;
    if (is_flow(c->kind)) {
        p.sigma = c->sigmas[i];
        p.sigma_next = c->sigmas[i + 1];
        p.sigma1 = c->sigmas[1]; /* docs/algorithms/samplers.md §3: σ == 1 uses σ_1 (T >= 1, so sigmas[1] exists) */
        p.order = (p.kind == FR_SAMPLER_DPM && i > 0) ? c->dpm_order : 1;
        p.sigma_prev = i > 0 ? c->sigmas[i - 1] : 1.0f;
    } else {
        int64_t t = c->timesteps[i];
        int64_t prev = fr_ddim_prev_timestep(t, c->T, c->n_train); /* docs/algorithms/samplers.md §6 */
        p.alpha_bar = c->alpha_bar[t];
        p.alpha_bar_prev = c->alpha_bar[prev];
        p.x0_clip = c->x0_clip;
    }
    return p;
}

/* Model input time of step i. */
float fr_rollout_time(const fr_rollout_cfg *c, int64_t i)
{
    if (!is_flow(c->kind)) return (float)c->timesteps[i];
    /* ⌊1000σ⌋ as an integer-valued float: (float)(int32)(σ·1000), the numerator of
     * fr_timestep_quantized before its division by 1000 */
    return c->time_quantized ? (float)(int32_t)(c->sigmas[i] * 1000.0f) : fr_timestep_diffusers(c->sigmas[i]);
}

/* owner(s, i) = s − (s mod span(i)) (flowrl/rollout.h "Shared noise"). */
uint32_t fr_rollout_noise_owner(const fr_rollout_cfg *c, uint32_t s, int64_t i)
{
    int64_t span = 1;
    if (i < 0) {
        span = c->x_T_key == FR_XT_GROUP ? c->group_size : tree_leaves(c);
    } else {
        for (int64_t k = c->n_branch - 1; k >= 0 && c->branch[k].at > i; k--) span *= c->branch[k].width;
    }
    return s - (uint32_t)((int64_t)s % span);
}

/* ---- schedules ------------------------------------------------------------------- */

const char *const fr_grid_names[] = {"diffusers", "linear", NULL};

const char *fr_grid_name(fr_grid g) { return fr_enum_name(fr_grid_names, (int)g); }

fr_status fr_grid_from_name(const char *s, fr_grid *out)
{
    int v;
    FR_TRY(fr_enum_parse(fr_grid_names, s, &v, "grid"));
    *out = (fr_grid)v;
    return FR_OK;
}

fr_status fr_rollout_schedule_make(fr_rollout_cfg *cfg, fr_grid grid, double shift, int64_t n_train,
                                   int64_t ddim_offset, fr_rollout_schedule *s)
{
    memset(s, 0, sizeof *s);
    if (cfg->T < 1 || cfg->T > (int64_t)1 << 24)
        return fr_fail(FR_ERR_ARG, "rollout schedule: %lld steps, expected 1 .. 2^24", (long long)cfg->T);
    if (is_flow(cfg->kind)) {
        s->sigmas = fr_malloc((size_t)(cfg->T + 1) * sizeof *s->sigmas);
        if (!s->sigmas) return FR_ERR_NOMEM;
        fr_status st = grid == FR_GRID_DIFFUSERS ? fr_sigmas_diffusers(cfg->T, shift, s->sigmas)
                                                 : fr_sigmas_linspace(cfg->T, shift, s->sigmas);
        if (st != FR_OK) {
            fr_rollout_schedule_free(s);
            return st;
        }
        cfg->sigmas = s->sigmas;
    } else {
        s->timesteps = fr_malloc((size_t)cfg->T * sizeof *s->timesteps);
        if (!s->timesteps) return FR_ERR_NOMEM;
        fr_status st = fr_ddim_timesteps(cfg->T, n_train, ddim_offset, s->timesteps);
        if (st == FR_OK && s->timesteps[0] >= n_train)
            st = fr_fail(FR_ERR_ARG, "ddim: %lld steps with offset %lld reach t = %lld >= %lld",
                         (long long)cfg->T, (long long)ddim_offset, (long long)s->timesteps[0],
                         (long long)n_train);
        if (st != FR_OK) {
            fr_rollout_schedule_free(s);
            return st;
        }
        cfg->timesteps = s->timesteps;
        cfg->n_train = n_train;
    }
    return FR_OK;
}

void fr_rollout_schedule_free(fr_rollout_schedule *s)
{
    free(s->sigmas);
    free(s->timesteps);
    s->sigmas = NULL;
    s->timesteps = NULL;
}
