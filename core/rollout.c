/* The rollout loop (flowrl/rollout.h): model forward with optional CFG, then one
 * sampler step, T times, over chunks of cfg->batch rows. spec/samplers.md §0, §15. */
#include "flowrl/rollout.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/enum_names.h"
#include "flowrl/cond.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"

fr_rollout_cfg fr_rollout_cfg_default(fr_sampler_kind kind)
{
    fr_rollout_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.T = 40; /* FG's evaluation steps (spec §2) */
    switch (kind) {
    case FR_SAMPLER_SDE: c.noise = 0.7f; break;   /* FG sample.noise_level, spec §3 */
    case FR_SAMPLER_CPS: c.noise = 0.8f; break;   /* FG fast/CPS configs, spec §4 */
    case FR_SAMPLER_DANCE: c.noise = 0.3f; break; /* DanceGRPO η, spec §5 */
    default: c.noise = 0.0f; break;               /* ddim: η = 0, deterministic DDIM */
    }
    c.dpm_order = 2;
    c.cfg = 1.0f;
    c.batch = 64;
    return c;
}

/* ---- checks ---------------------------------------------------------------------- */

static int is_flow(fr_sampler_kind k) { return k != FR_SAMPLER_DDIM; }

static fr_status check_cfg(const fr_model *m, const fr_task *task, const fr_rollout_cfg *c)
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
    return FR_OK;
}

/* The scalars of step i (flowrl/sampler.h: which fields each kind reads). */
fr_step fr_rollout_step(const fr_rollout_cfg *c, int64_t i)
{
    fr_step p;
    memset(&p, 0, sizeof p);
    p.kind = c->kind;
    p.noise = c->step_noise ? c->step_noise[i] : c->noise;
    if (is_flow(c->kind)) {
        p.sigma = c->sigmas[i];
        p.sigma_next = c->sigmas[i + 1];
        p.sigma1 = c->sigmas[1]; /* spec §3: σ == 1 uses σ_1 (T >= 1, so sigmas[1] exists) */
        p.order = (c->kind == FR_SAMPLER_DPM && i > 0) ? c->dpm_order : 1;
        p.sigma_prev = i > 0 ? c->sigmas[i - 1] : 1.0f;
    } else {
        int64_t t = c->timesteps[i];
        int64_t prev = fr_ddim_prev_timestep(t, c->T, c->n_train); /* spec §6 */
        p.alpha_bar = c->alpha_bar[t];
        p.alpha_bar_prev = c->alpha_bar[prev];
        p.x0_clip = c->x0_clip;
    }
    return p;
}

/* Model input time of step i. */
float fr_rollout_time(const fr_rollout_cfg *c, int64_t i)
{
    return is_flow(c->kind) ? fr_timestep_diffusers(c->sigmas[i]) : (float)c->timesteps[i];
}

/* ---- the loop -------------------------------------------------------------------- */

typedef struct {
    fr_model_ws ws;
    float *x, *xn, *xin, *tin, *out, *v, *xi, *mean, *x0, *logp;
    int32_t *c;
    void *blk;
} buffers;

static void buffers_free(buffers *w)
{
    fr_model_ws_free(&w->ws);
    free(w->blk);
    memset(w, 0, sizeof *w);
}

static fr_status buffers_alloc(buffers *w, const fr_model *m, int64_t cap, int cfg2)
{
    memset(w, 0, sizeof *w);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots, R = cfg2 ? 2 * cap : cap;
    /* x, xn, v, xi, mean, x0: cap·D; xin, out: R·D; tin, logp: R; c: R·S ints */
    size_t nf = (size_t)(6 * cap * D + 2 * R * D + 2 * R);
    size_t bytes = nf * sizeof(float) + (size_t)(R * S) * sizeof(int32_t);
    w->blk = fr_malloc(bytes);
    if (!w->blk) return FR_ERR_NOMEM;
    float *f = w->blk;
    w->x = f, f += cap * D;
    w->xn = f, f += cap * D;
    w->v = f, f += cap * D;
    w->xi = f, f += cap * D;
    w->mean = f, f += cap * D;
    w->x0 = f, f += cap * D;
    w->xin = f, f += R * D;
    w->out = f, f += R * D;
    w->tin = f, f += R;
    w->logp = f, f += R;
    w->c = (int32_t *)f;
    fr_status s = fr_model_ws_alloc(&w->ws, m, R, 0);
    if (s != FR_OK) {
        free(w->blk);
        w->blk = NULL;
    }
    return s;
}

/* Rows [r0, r0 + b) of the batch; B is the full batch (for the trajectory layout). */
static fr_status run_chunk(const fr_model *m, const fr_ops *ops, const fr_task *task, const fr_rollout_cfg *c,
                           buffers *w, int64_t B, int64_t r0, int64_t b, const int *prompt_ids,
                           const uint32_t *sample_ids, const float *x_init, float *x_out,
                           const fr_rollout_traj *traj)
{
    const int64_t D = m->cfg.D, S = m->cfg.n_slots, T = c->T;
    const int guided = c->cfg != 1.0f;
    const int64_t R = guided ? 2 * b : b;
    const int stochastic = fr_sampler_is_stochastic(c->kind);

    for (int64_t j = 0; j < b; j++) {
        if (x_init)
            memcpy(w->x + j * D, x_init + (r0 + j) * D, (size_t)D * sizeof(float));
        else
            fr_rng_fill_normal(w->x + j * D, D, c->seed, FR_RNG_SAMPLER_INIT, c->c0, sample_ids[r0 + j], 0);
    }
    FR_TRY(fr_cond_ids(task, b, prompt_ids + r0, w->c));
    if (guided)
        for (int64_t k = 0; k < b * S; k++) w->c[b * S + k] = (int32_t)m->cfg.n_cond; /* null, model.h */
    if (traj && traj->traj) memcpy(traj->traj + r0 * D, w->x, (size_t)(b * D) * sizeof(float));

    for (int64_t i = 0; i < T; i++) {
        const fr_step p = fr_rollout_step(c, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        const float t_in = fr_rollout_time(c, i);
        for (int64_t k = 0; k < R; k++) w->tin[k] = t_in;
        const float *v;
        if (guided) {
            memcpy(w->xin, w->x, (size_t)(b * D) * sizeof(float));
            memcpy(w->xin + b * D, w->x, (size_t)(b * D) * sizeof(float));
            FR_TRY(fr_model_forward(m, ops, &w->ws, R, w->xin, w->tin, w->c, w->out));
            /* rows [0, b) conditional, [b, 2b) unconditional */
            FR_TRY(fr_cfg_combine(b * D, c->cfg, w->out + b * D, w->out, w->v));
            v = w->v;
        } else {
            FR_TRY(fr_model_forward(m, ops, &w->ws, b, w->x, w->tin, w->c, w->out));
            v = w->out;
        }
        const float *xi = NULL;
        if (stochastic && sd.std != 0.0f) {
            for (int64_t j = 0; j < b; j++)
                fr_rng_fill_normal(w->xi + j * D, D, c->seed, FR_RNG_SAMPLER_NOISE, c->c0, sample_ids[r0 + j],
                                   (uint32_t)i);
            xi = w->xi;
        }
        /* a step of std 0 (level 0 in a window, CPS's last step) has no density */
        const int want_logp = traj && traj->logp && sd.std != 0.0f;
        if (traj && traj->logp && !want_logp)
            for (int64_t j = 0; j < b; j++) traj->logp[i * B + r0 + j] = 0.0f;
        const float *x0_prev = p.kind == FR_SAMPLER_DPM && p.order == 2 ? w->x0 : NULL;
        FR_TRY(fr_sampler_step(&p, b, D, w->x, v, x0_prev, xi, w->xn, w->mean, want_logp ? w->logp : NULL,
                               NULL));
        if (c->kind == FR_SAMPLER_DPM) FR_TRY(fr_flow_x0(b * D, p.sigma, w->x, v, w->x0)); /* m1 of step i+1 */
        if (traj) {
            if (traj->traj)
                memcpy(traj->traj + ((i + 1) * B + r0) * D, w->xn, (size_t)(b * D) * sizeof(float));
            if (traj->mean) memcpy(traj->mean + (i * B + r0) * D, w->mean, (size_t)(b * D) * sizeof(float));
            if (want_logp) memcpy(traj->logp + i * B + r0, w->logp, (size_t)b * sizeof(float));
            if (traj->std) traj->std[i] = sd;
        }
        float *tmp = w->x;
        w->x = w->xn;
        w->xn = tmp;
    }
    memcpy(x_out + r0 * D, w->x, (size_t)(b * D) * sizeof(float));
    return FR_OK;
}

fr_status fr_rollout(const fr_model *m, const fr_ops *ops, const fr_task *task, const fr_rollout_cfg *cfg,
                     int64_t B, const int *prompt_ids, const uint32_t *sample_ids, const float *x_init, float *x,
                     const fr_rollout_traj *traj)
{
    if (!m || !ops || !task || !cfg) return fr_fail(FR_ERR_ARG, "fr_rollout: NULL model, ops, task or cfg");
    if (B < 0) return fr_fail(FR_ERR_ARG, "fr_rollout: batch %lld < 0", (long long)B);
    if (B == 0) return FR_OK;
    FR_TRY(check_cfg(m, task, cfg));
    float max_noise = cfg->noise;
    if (cfg->step_noise) {
        max_noise = 0.0f;
        for (int64_t i = 0; i < cfg->T; i++) {
            float a = cfg->step_noise[i];
            if (!(a >= 0.0f && a <= 100.0f))
                return fr_fail(FR_ERR_ARG, "fr_rollout: step %lld noise level %g, expected 0 .. 100", (long long)i,
                               (double)a);
            if (a > max_noise) max_noise = a;
        }
    }
    if (!prompt_ids || !x || (!sample_ids && !x_init) ||
        (!sample_ids && fr_sampler_is_stochastic(cfg->kind) && max_noise != 0.0f))
        return fr_fail(FR_ERR_ARG, "fr_rollout: prompt_ids, x or sample_ids is NULL");
    if (traj && traj->logp) {
        if (!fr_sampler_is_stochastic(cfg->kind))
            return fr_fail(FR_ERR_ARG, "fr_rollout: sampler '%s' is deterministic and has no log-probs",
                           fr_sampler_name(cfg->kind));
        if (max_noise == 0.0f)
            return fr_fail(FR_ERR_ARG, "fr_rollout: log-probs need a noise level > 0 ('%s' with 0 has std 0)",
                           fr_sampler_name(cfg->kind));
    }
    const int64_t cap = cfg->batch > 0 && cfg->batch < B ? cfg->batch : B;
    buffers w;
    FR_TRY(buffers_alloc(&w, m, cap, cfg->cfg != 1.0f));
    fr_status s = FR_OK;
    for (int64_t r0 = 0; r0 < B && s == FR_OK; r0 += cap) {
        const int64_t b = B - r0 < cap ? B - r0 : cap;
        s = run_chunk(m, ops, task, cfg, &w, B, r0, b, prompt_ids, sample_ids, x_init, x, traj);
    }
    buffers_free(&w);
    return s;
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
