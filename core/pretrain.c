/* Base-model pretraining: rectified flow / DDPM on a built-in task (flowrl/pretrain.h).
 * The per-element math is in flowrl/pretrain_elem.h; the network runs through the op
 * table, so any backend that equals ref gives the same checkpoint bytes. */
#include "flowrl/pretrain.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/checkpoint.h"
#include "flowrl/cond.h"
#include "core/model_dist.h"
#include "flowrl/detmath.h"
#include "flowrl/dist.h"
#include "flowrl/fm_loss.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/optim_step.h"
#include "flowrl/schedule.h"
#include "flowrl/task.h"

#define TAIL 100 /* steps averaged into result.tail_loss */

fr_pretrain_cfg fr_pretrain_defaults(void)
{
    fr_pretrain_cfg c;
    memset(&c, 0, sizeof c);
    c.pred = FR_PRED_VELOCITY;
    c.n_blocks = -1;
    c.steps = 2000;
    c.batch = 128;
    c.seed = 0;
    c.lr = 1e-3;
    c.lr_min = 0.0;
    c.warmup = -1;
    c.schedule = FR_LR_COSINE;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.adam_eps = 1e-8;
    c.weight_decay = 0.0; /* DiT trains without weight decay */
    c.clip = 1.0f;
    c.ema = 0.999f;
    c.sigma = FR_SIGMA_LOGIT_NORMAL;
    c.logit_mean = 0.0f;
    c.logit_std = 1.0f;
    c.cfg_dropout = 0.1f;
    c.betas = FR_BETAS_LINEAR;
    c.head = -1;
    c.eps_weight = FR_EPS_WEIGHT_NONE;
    c.snr_gamma = 5.0f;
    return c;
}

const char *fr_pretrain_default_preset(const char *task)
{
    if (!task) return NULL;
    if (strcmp(task, "gmm2d") == 0 || strcmp(task, "checkerboard") == 0) return "gmm2d-s";
    if (strcmp(task, "shapes") == 0) return "shapes-s";
    return NULL;
}

int64_t fr_pretrain_warmup(const fr_pretrain_cfg *cfg)
{
    if (cfg->warmup >= 0) return cfg->warmup;
    int64_t w = cfg->steps / 10;
    return w < 100 ? w : 100;
}

double fr_pretrain_lr(const fr_pretrain_cfg *cfg, int64_t s)
{
    return fr_lr_at(cfg->lr, cfg->lr_min, (int)cfg->schedule, fr_pretrain_warmup(cfg), s, cfg->steps);
}

fr_status fr_pretrain_step_path(const char *out, int64_t step, char *buf, size_t n)
{
    static const char ext[] = ".safetensors";
    size_t len = strlen(out), el = sizeof ext - 1;
    int stem = (int)(len >= el && strcmp(out + len - el, ext) == 0 ? len - el : len);
    int w = snprintf(buf, n, "%.*s-step%06lld%s", stem, out, (long long)step,
                     stem < (int)len ? ext : "");
    if (w < 0 || (size_t)w >= n) return fr_fail(FR_ERR_ARG, "pretrain: path '%s' is too long", out);
    return FR_OK;
}

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static fr_status check_cfg(const fr_pretrain_cfg *c)
{
    if (!c->task) return fr_fail(FR_ERR_ARG, "pretrain: no task");
    if (c->steps < 1 || c->steps > 100000000)
        return fr_fail(FR_ERR_ARG, "pretrain: steps = %lld, expected 1..1e8", (long long)c->steps);
    if (c->batch < 1 || c->batch > 65536)
        return fr_fail(FR_ERR_ARG, "pretrain: batch = %lld, expected 1..65536", (long long)c->batch);
    /* data index s·B + b and the Philox coordinates are 32-bit */
    if ((uint64_t)c->steps * (uint64_t)c->batch > UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "pretrain: steps x batch = %lld exceeds 2^32 samples",
                       (long long)(c->steps * c->batch));
    if (!finite_in(c->lr, 0.0f, 10.0f) || !(c->lr > 0.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: lr = %g, expected 0 < lr <= 10", (double)c->lr);
    if (!finite_in(c->lr_min, 0.0f, c->lr))
        return fr_fail(FR_ERR_ARG, "pretrain: lr_min = %g, expected 0..lr", (double)c->lr_min);
    if (c->warmup > c->steps)
        return fr_fail(FR_ERR_ARG, "pretrain: warmup = %lld exceeds steps = %lld",
                       (long long)c->warmup, (long long)c->steps);
    if ((int)c->schedule < 0 || c->schedule > FR_LR_CONSTANT)
        return fr_fail(FR_ERR_ARG, "pretrain: unknown lr schedule %d", (int)c->schedule);
    if (!finite_in(c->beta1, 0.0f, 1.0f) || !(c->beta1 < 1.0f) || !finite_in(c->beta2, 0.0f, 1.0f) ||
        !(c->beta2 < 1.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: AdamW betas (%g, %g), expected each in [0, 1)",
                       (double)c->beta1, (double)c->beta2);
    if (!finite_in(c->adam_eps, 0.0f, 1.0f) || !(c->adam_eps > 0.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: AdamW eps = %g, expected 0 < eps <= 1", (double)c->adam_eps);
    if (!finite_in(c->weight_decay, 0.0f, 1.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: weight decay = %g, expected 0..1", (double)c->weight_decay);
    if (!isfinite(c->clip))
        return fr_fail(FR_ERR_ARG, "pretrain: clip = %g, expected a finite number", (double)c->clip);
    if (!finite_in(c->ema, 0.0f, 1.0f) || !(c->ema < 1.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: ema = %g, expected 0 <= decay < 1", (double)c->ema);
    if ((int)c->sigma < 0 || c->sigma > FR_SIGMA_LOGIT_NORMAL)
        return fr_fail(FR_ERR_ARG, "pretrain: unknown sigma sampling %d", (int)c->sigma);
    if (!finite_in(c->logit_mean, -10.0f, 10.0f) || !finite_in(c->logit_std, 0.0f, 10.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: logit-normal (%g, %g), expected |m| <= 10, 0 <= s <= 10",
                       (double)c->logit_mean, (double)c->logit_std);
    if (!finite_in(c->cfg_dropout, 0.0f, 1.0f) || !(c->cfg_dropout < 1.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: cfg dropout = %g, expected 0 <= p < 1",
                       (double)c->cfg_dropout);
    if ((int)c->betas < 0 || c->betas > FR_BETAS_SCALED_LINEAR)
        return fr_fail(FR_ERR_ARG, "pretrain: unknown beta schedule %d", (int)c->betas);
    if ((int)c->eps_weight < 0 || c->eps_weight > FR_EPS_WEIGHT_X0)
        return fr_fail(FR_ERR_ARG, "pretrain: eps_weight = %d, expected none, min-snr or x0", (int)c->eps_weight);
    if (c->eps_weight != FR_EPS_WEIGHT_NONE && c->pred != FR_PRED_EPSILON)
        return fr_fail(FR_ERR_ARG, "pretrain: eps_weight weights the epsilon loss, expected pred epsilon");
    if (!finite_in(c->snr_gamma, 0.0f, 1e6f) || !(c->snr_gamma > 0.0f))
        return fr_fail(FR_ERR_ARG, "pretrain: snr_gamma = %g, expected 0 < gamma <= 1e6", (double)c->snr_gamma);
    if (c->save_every < 0)
        return fr_fail(FR_ERR_ARG, "pretrain: save_every = %lld, expected >= 0", (long long)c->save_every);
    if (c->save_every > 0 && !c->out)
        return fr_fail(FR_ERR_ARG, "pretrain: save_every needs an output path");
    return FR_OK;
}

fr_status fr_pretrain_model_config(const fr_pretrain_cfg *cfg, fr_model_config *mcfg)
{
    FR_TRY(check_cfg(cfg));
    const fr_task *t;
    FR_TRY(fr_task_get(cfg->task, &t));
    const char *preset = cfg->preset ? cfg->preset : fr_pretrain_default_preset(cfg->task);
    if (!preset) return fr_fail(FR_ERR_ARG, "pretrain: task '%s' has no default preset", cfg->task);
    int64_t n_cond, n_slots;
    fr_cond_dims(t, &n_cond, &n_slots);
    FR_TRY(fr_model_preset(preset, t->D, n_cond, mcfg));
    mcfg->n_slots = n_slots;
    if (cfg->H > 0 || cfg->F > 0 || cfg->n_blocks >= 0) {
        if (cfg->H > 0) mcfg->H = cfg->H;
        if (cfg->F > 0) mcfg->F = cfg->F;
        if (cfg->n_blocks >= 0) mcfg->n_blocks = cfg->n_blocks;
        snprintf(mcfg->preset, sizeof mcfg->preset, "custom");
    }
    if ((int)cfg->pred < 0 || cfg->pred >= FR_PRED_COUNT)
        return fr_fail(FR_ERR_ARG, "pretrain: pred = %d, expected velocity or epsilon", (int)cfg->pred);
    mcfg->pred = cfg->pred;
    if (cfg->head < -1 || cfg->head >= FR_HEAD_COUNT)
        return fr_fail(FR_ERR_ARG, "pretrain: head = %d, expected -1 (the preset's), velocity or x0", cfg->head);
    if (cfg->head == FR_HEAD_VELOCITY) {
        mcfg->head = FR_HEAD_VELOCITY;
        mcfg->sigma_min = 0.0f;
    } else if (cfg->head == FR_HEAD_X0 && mcfg->head != FR_HEAD_X0) {
        mcfg->head = FR_HEAD_X0;
        mcfg->sigma_min = FR_X0_HEAD_SIGMA_MIN;
    }
    if (cfg->sigma_min != 0.0f) {
        if (mcfg->head != FR_HEAD_X0 || !(cfg->sigma_min > 0.0f && cfg->sigma_min <= 1.0f))
            return fr_fail(FR_ERR_ARG, "pretrain: sigma_min = %g, expected 0 < sigma_min <= 1 with the x0 head",
                           (double)cfg->sigma_min);
        mcfg->sigma_min = cfg->sigma_min;
    }
    if (fr_model_eps_head(mcfg)) { /* the head reads ᾱ_t of the schedule the loop trains with */
        mcfg->ddpm_betas = cfg->betas == FR_BETAS_LINEAR ? FR_DDPM_LINEAR : FR_DDPM_SCALED_LINEAR;
        mcfg->beta_start = cfg->betas == FR_BETAS_LINEAR ? 1e-4 : 0.00085;
        mcfg->beta_end = cfg->betas == FR_BETAS_LINEAR ? 0.02 : 0.012;
        mcfg->n_train = FR_NUM_TRAIN_TIMESTEPS;
    }
    return fr_model_config_check(mcfg);
}

double fr_eps_loss_weight(fr_eps_weight kind, float gamma, float alpha_bar)
{
    const double ab = (double)alpha_bar;
    if (kind == FR_EPS_WEIGHT_X0) return 1.0 / ab;
    if (kind == FR_EPS_WEIGHT_MIN_SNR) {
        const double snr = ab / (1.0 - ab);
        return snr > (double)gamma ? (double)gamma / snr : 1.0;
    }
    return 1.0;
}

/* ---- checkpoint metadata ------------------------------------------------------------ */

/* The shortest "%.Ng" that reads back as v (at most 9 digits, which always round-trip). */
static void fmt_float(char *buf, size_t n, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

static const char *k_sigma_names[] = {"uniform", "logit-normal"};
static const char *k_sched_names[] = {"cosine", "constant"};
static const char *k_betas_names[] = {"linear", "scaled_linear"};
static const char *k_eps_weight_names[] = {"none", "min-snr", "x0"};

/* Everything that determines the run's bits, except the step reached and its loss. */
static fr_status run_meta(fr_st_file *f, const fr_pretrain_cfg *c, const fr_model_config *mc)
{
    char b[64];
    FR_TRY(fr_st_set_meta(f, "task", c->task));
    FR_TRY(fr_st_set_meta(f, "preset", mc->preset));
    snprintf(b, sizeof b, "%" PRIu32, c->seed);
    FR_TRY(fr_st_set_meta(f, "seed", b));
    struct {
        const char *key;
        int64_t v;
    } ints[] = {{"pretrain.steps", c->steps},
                {"pretrain.batch", c->batch},
                {"pretrain.warmup", fr_pretrain_warmup(c)}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(b, sizeof b, "%" PRId64, ints[i].v);
        FR_TRY(fr_st_set_meta(f, ints[i].key, b));
    }
    struct {
        const char *key;
        float v;
    } fl[] = {{"pretrain.lr", c->lr},
              {"pretrain.lr_min", c->lr_min},
              {"pretrain.adam_beta1", c->beta1},
              {"pretrain.adam_beta2", c->beta2},
              {"pretrain.adam_eps", c->adam_eps},
              {"pretrain.weight_decay", c->weight_decay},
              {"pretrain.clip", c->clip},
              {"pretrain.ema", c->ema},
              {"pretrain.cfg_dropout", c->cfg_dropout}};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        fmt_float(b, sizeof b, fl[i].v);
        FR_TRY(fr_st_set_meta(f, fl[i].key, b));
    }
    FR_TRY(fr_st_set_meta(f, "pretrain.schedule", k_sched_names[c->schedule]));
    FR_TRY(fr_st_set_meta(f, "pretrain.pred", fr_pred_name(c->pred)));
    if (c->pred == FR_PRED_VELOCITY) {
        FR_TRY(fr_st_set_meta(f, "pretrain.sigma", k_sigma_names[c->sigma]));
        if (c->sigma == FR_SIGMA_LOGIT_NORMAL) {
            fmt_float(b, sizeof b, c->logit_mean);
            FR_TRY(fr_st_set_meta(f, "pretrain.logit_mean", b));
            fmt_float(b, sizeof b, c->logit_std);
            FR_TRY(fr_st_set_meta(f, "pretrain.logit_std", b));
        }
    } else {
        /* the keys a DDIM / DDPM sampler of this model reads (core/infer_ckpt.c) */
        FR_TRY(fr_st_set_meta(f, "ddpm.schedule", k_betas_names[c->betas]));
        FR_TRY(fr_st_set_meta(f, "ddpm.beta_start", c->betas == FR_BETAS_LINEAR ? "0.0001" : "0.00085"));
        FR_TRY(fr_st_set_meta(f, "ddpm.beta_end", c->betas == FR_BETAS_LINEAR ? "0.02" : "0.012"));
        snprintf(b, sizeof b, "%d", FR_NUM_TRAIN_TIMESTEPS);
        FR_TRY(fr_st_set_meta(f, "ddpm.n_train", b));
        /* only when weighted: the unweighted run's checkpoint keeps its bytes */
        if (c->eps_weight != FR_EPS_WEIGHT_NONE)
            FR_TRY(fr_st_set_meta(f, "pretrain.eps_weight", k_eps_weight_names[c->eps_weight]));
        if (c->eps_weight == FR_EPS_WEIGHT_MIN_SNR) {
            fmt_float(b, sizeof b, c->snr_gamma);
            FR_TRY(fr_st_set_meta(f, "pretrain.snr_gamma", b));
        }
    }
    return FR_OK;
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct {
    const fr_task *task;
    fr_model m;
    fr_model_ws ws;
    fr_adamw_state opt;
    fr_ema ema;
    int have_ws, have_opt, have_ema;
    float alpha_bar[FR_NUM_TRAIN_TIMESTEPS];
    fr_backend *be;
    /* host: the step's draws, per sample (B,) and the task's samples and noise (B, D) */
    int *prompts, *cond_prompts;
    int32_t *c_h;                /* (B, S) */
    float *tas_h;                /* (3, B): t, then noise_mix's a and s */
    float *rs_h;                 /* (B,) fm_loss's row scales (eps_weight != none) */
    float *x0_h;                 /* (B, D): the task's samples, the training data */
    /* backend memory: the same, then the model's inputs, targets and outputs */
    int32_t *c;                  /* (B, S) */
    float *tas;                  /* (3, B) */
    uint32_t *ids;               /* (B,) 0 .. B−1: the noise rows' sample coordinate */
    float *x0, *eps, *x, *target, *out, *sq; /* (B, D) */
    float *rs;                   /* (B,) or NULL: fm_loss's 2/(B·D) for every row */
} run_state;

static void run_free(run_state *r)
{
    if (r->have_ws) fr_model_ws_free(&r->ws);
    if (r->have_opt) fr_adamw_state_free(&r->opt);
    if (r->have_ema) fr_ema_free(&r->ema);
    fr_model_free(&r->m);
    void *host[] = {r->prompts, r->cond_prompts, r->c_h, r->tas_h, r->x0_h, r->rs_h};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    if (!r->be) return;
    void *dev[] = {r->c, r->tas, r->ids, r->x0, r->eps, r->x, r->target, r->out, r->sq, r->rs};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(r->be, dev[i]);
}

static fr_status run_alloc(run_state *r, const fr_pretrain_cfg *cfg, const fr_model_config *mc,
                           fr_backend *be)
{
    FR_TRY(fr_task_get(cfg->task, &r->task));
    FR_TRY(fr_model_init(&r->m, be, mc, cfg->seed));
    FR_TRY(fr_model_ws_alloc(&r->ws, &r->m, cfg->batch, 1));
    r->have_ws = 1;
    FR_TRY(fr_adamw_state_init(be, &r->opt, r->m.params, r->m.n_params));
    r->have_opt = 1;
    FR_TRY(fr_ema_init(be, &r->ema, r->m.params, r->m.n_params));
    r->have_ema = 1;
    r->be = be;
    const int64_t B = cfg->batch, BD = B * mc->D, BS = B * mc->n_slots;
    if (!(r->prompts = fr_calloc((size_t)B, sizeof(int))) || !(r->cond_prompts = fr_calloc((size_t)B, sizeof(int))) ||
        !(r->c_h = fr_calloc((size_t)BS, sizeof(int32_t))) || !(r->tas_h = fr_calloc((size_t)(3 * B), sizeof(float))) ||
        !(r->x0_h = fr_calloc((size_t)BD, sizeof(float))))
        return FR_ERR_NOMEM;
    if (!(r->c = fr_dev_i32(be, BS)) || !(r->ids = (uint32_t *)fr_dev_alloc(be, (size_t)B * sizeof(uint32_t))) ||
        !(r->tas = fr_dev_floats(be, 3 * B)) || !(r->x0 = fr_dev_floats(be, BD)) || !(r->eps = fr_dev_floats(be, BD)) ||
        !(r->x = fr_dev_floats(be, BD)) || !(r->target = fr_dev_floats(be, BD)) || !(r->out = fr_dev_floats(be, BD)) ||
        !(r->sq = fr_dev_floats(be, BD)))
        return FR_ERR_NOMEM;
    if (cfg->pred == FR_PRED_EPSILON && cfg->eps_weight != FR_EPS_WEIGHT_NONE &&
        (!(r->rs_h = fr_calloc((size_t)B, sizeof(float))) || !(r->rs = fr_dev_floats(be, B))))
        return FR_ERR_NOMEM;
    for (int64_t b = 0; b < B; b++) r->prompts[b] = (int)b; /* staging for the ids, once */
    FR_TRY(fr_h2d(be, r->ids, r->prompts, (size_t)B * sizeof(uint32_t)));
    if (cfg->pred == FR_PRED_EPSILON) {
        float betas[FR_NUM_TRAIN_TIMESTEPS];
        if (cfg->betas == FR_BETAS_LINEAR)
            FR_TRY(fr_betas_linear(FR_NUM_TRAIN_TIMESTEPS, 1e-4, 0.02, betas));
        else
            FR_TRY(fr_betas_scaled_linear(FR_NUM_TRAIN_TIMESTEPS, 0.00085, 0.012, betas));
        FR_TRY(fr_alphas_cumprod(FR_NUM_TRAIN_TIMESTEPS, betas, r->alpha_bar));
    }
    return FR_OK;
}

/* The inputs, times and targets of step s (all from Philox coordinates (s, b)): the
 * per-sample draws and the task's samples on the host, copied over once; the noised inputs
 * and targets in backend memory (noise_mix with a = 1 − σ, s = σ or √ᾱ, √(1−ᾱ): the bits of
 * fr_flow_noised_elem / fr_ddpm_noised_elem). */
static fr_status make_batch(run_state *r, const fr_pretrain_cfg *cfg, int64_t s)
{
    fr_backend *be = r->be;
    const int64_t B = cfg->batch, D = r->m.cfg.D;
    const uint32_t seed = cfg->seed, us = (uint32_t)s;
    float *t = r->tas_h, *a = r->tas_h + B, *sc = r->tas_h + 2 * B;
    for (int64_t b = 0; b < B; b++) {
        uint32_t ub = (uint32_t)b;
        uint32_t w = fr_rng_u32(seed, FR_RNG_PROMPTS, us, ub, FR_PRETRAIN_TAG, 0);
        r->prompts[b] = (int)fr_rng_below(w, (uint32_t)r->task->n_train);
        float u = fr_rng_uniform(seed, FR_RNG_CFG_DROPOUT, us, ub, 0, 0);
        r->cond_prompts[b] = u < cfg->cfg_dropout ? -1 : r->prompts[b];
    }
    FR_TRY(fr_task_sample_batch(r->task, (int)B, r->prompts, seed, (uint32_t)(s * B), r->x0_h));
    FR_TRY(fr_cond_ids(r->task, B, r->cond_prompts, r->c_h));
    for (int64_t b = 0; b < B; b++) {
        uint32_t ub = (uint32_t)b;
        if (cfg->pred == FR_PRED_VELOCITY) {
            float sigma = cfg->sigma == FR_SIGMA_UNIFORM
                              ? fr_rng_uniform(seed, FR_RNG_PRETRAIN_TIME, us, ub, 0, 0)
                              : fr_logit_normal_sigma(
                                    fr_rng_normal(seed, FR_RNG_PRETRAIN_TIME, us, ub, 0, 0),
                                    cfg->logit_mean, cfg->logit_std);
            t[b] = fr_timestep_diffusers(sigma);
            a[b] = 1.0f - sigma;
            sc[b] = sigma;
        } else {
            uint32_t ti = fr_rng_below(fr_rng_u32(seed, FR_RNG_PRETRAIN_TIME, us, ub, 0, 0),
                                       FR_NUM_TRAIN_TIMESTEPS);
            fr_ddpm_coefs(r->alpha_bar[ti], &a[b], &sc[b]);
            t[b] = (float)ti;
            if (r->rs_h)
                r->rs_h[b] = (float)(fr_eps_loss_weight(cfg->eps_weight, cfg->snr_gamma, r->alpha_bar[ti]) *
                                     (2.0 / (double)(B * D)));
        }
    }
    if (r->rs_h) FR_TRY(fr_h2d(be, r->rs, r->rs_h, (size_t)B * sizeof(float)));
    const size_t bd = (size_t)(B * D) * sizeof(float);
    FR_TRY(fr_h2d(be, r->x0, r->x0_h, bd));
    /* ε row b = fr_rng_fill_normal(seed, PRETRAIN_NOISE, s, b, 0), drawn on the backend */
    be->ops->rng_normal_rows(B, D, seed, FR_RNG_PRETRAIN_NOISE, us, B, r->ids, 0, r->eps);
    FR_TRY(fr_h2d(be, r->tas, r->tas_h, (size_t)(3 * B) * sizeof(float)));
    FR_TRY(fr_h2d(be, r->c, r->c_h, (size_t)(B * r->m.cfg.n_slots) * sizeof(int32_t)));
    be->ops->noise_mix(B, B, D, r->x0, r->eps, r->tas + B, r->tas + 2 * B, r->x);
    if (cfg->pred == FR_PRED_VELOCITY) be->ops->flow_target(B, B, D, r->x0, r->eps, r->target);
    else FR_TRY(fr_d2d(be, r->target, r->eps, bd));
    return FR_OK;
}

static fr_status whole_params(void *user)
{
    run_state *r = user;
    return fr_model_dist_whole_params(FR_OK, &r->m, &r->opt);
}

static fr_status train_step(run_state *r, const fr_pretrain_cfg *cfg, fr_backend *be,
                            const fr_adamw_cfg *acfg, int64_t s, double lr, float *loss,
                            float *gnorm)
{
    const int64_t B = cfg->batch;
    FR_TRY(make_batch(r, cfg, s));
    FR_TRY(fr_model_forward(&r->m, be, &r->ws, B, r->x, r->tas, r->c, r->out));
    /* loss = canonical long sum of (out − target)² / n, dL/dout = (2/n)·(out − target), row b
     * times w_b when weighted: the flow-matching loss shared with AWM (flowrl/fm_loss.h) */
    FR_TRY(fr_fm_loss(be, B, r->m.cfg.D, r->out, r->target, r->rs, loss, r->sq)); /* loss: host */
    if (!isfinite(*loss))
        return fr_fail(FR_ERR_NUMERIC, "pretrain: step %lld: the loss is %g", (long long)s + 1,
                       (double)*loss);
    fr_model_zero_grad(&r->m, be);
    FR_TRY(fr_model_backward(&r->m, be, &r->ws, r->sq, NULL));
    /* the one optimiser step (flowrl/optim_step.h): clip, AdamW, EMA with warm-up */
    /* many processes: this rank's rows of dW gathered whole, AdamW on its share of every tensor */
    if (r->m.dw_parts > 1) FR_TRY(fr_model_dist_whole_grads(FR_OK, &r->m));
    fr_optim_step_cfg oc = {cfg->clip, *acfg, lr, cfg->ema, 1, FR_EMA_WARMUP, r->m.dw_part, r->m.dw_parts, whole_params};
    char what[64];
    snprintf(what, sizeof what, "pretrain: step %lld", (long long)s + 1);
    return fr_optim_step(be, r->m.params, r->m.n_params, &r->opt, &r->ema, &oc, NULL, r, what, gnorm);
}

static fr_status save(const run_state *r, const fr_pretrain_cfg *cfg, int64_t step, float loss,
                      const char *path)
{
    fr_st_file f;
    fr_st_init(&f);
    char b[32];
    fr_status st = fr_checkpoint_to_st(&f, &r->m, &r->ema, &r->opt);
    if (st == FR_OK) st = run_meta(&f, cfg, &r->m.cfg);
    snprintf(b, sizeof b, "%" PRId64, step);
    if (st == FR_OK) st = fr_st_set_meta(&f, "step", b);
    fmt_float(b, sizeof b, loss);
    if (st == FR_OK) st = fr_st_set_meta(&f, "pretrain.loss", b);
    if (st == FR_OK) st = fr_st_write(&f, path);
    fr_st_free(&f);
    return st;
}

/* Loads a checkpoint of the same run (every run_meta key equal) and returns its step. */
static fr_status resume(run_state *r, const fr_pretrain_cfg *cfg, int64_t *step, float *loss)
{
    fr_st_file f, want;
    FR_TRY(fr_st_read(&f, cfg->resume));
    fr_st_init(&want);
    fr_status st = run_meta(&want, cfg, &r->m.cfg);
    for (size_t i = 0; st == FR_OK && i < want.n_meta; i++) {
        const char *have = fr_st_get_meta(&f, want.meta[i].key);
        if (!have || strcmp(have, want.meta[i].value) != 0)
            st = fr_fail(FR_ERR_MISMATCH, "%s: '%s' is %s%s%s, this run has '%s'", cfg->resume,
                         want.meta[i].key, have ? "'" : "missing", have ? have : "",
                         have ? "'" : "", want.meta[i].value);
    }
    fr_st_free(&want);
    if (st == FR_OK) {
        st = fr_checkpoint_from_st(&f, &r->m, &r->ema, &r->opt);
        if (st != FR_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fr_last_error());
            st = fr_fail(st, "%s: %s", cfg->resume, msg);
        }
    }
    const char *sv = st == FR_OK ? fr_st_get_meta(&f, "step") : NULL;
    if (st == FR_OK) {
        char *end;
        long long v = sv ? strtoll(sv, &end, 10) : -1;
        if (!sv || end == sv || *end || v < 0 || v > cfg->steps || v != r->opt.step)
            st = fr_fail(FR_ERR_FORMAT, "%s: 'step' = '%s', expected 0..%lld equal to optim.step",
                         cfg->resume, sv ? sv : "(missing)", (long long)cfg->steps);
        else
            *step = v;
        const char *ls = fr_st_get_meta(&f, "pretrain.loss");
        *loss = ls ? strtof(ls, NULL) : NAN;
    }
    fr_st_free(&f);
    return st;
}

static fr_status run_loop(run_state *r, const fr_pretrain_cfg *cfg, fr_backend *be,
                          fr_pretrain_cb cb, void *user, fr_pretrain_result *res)
{
    fr_adamw_cfg acfg = {cfg->beta1, cfg->beta2, cfg->adam_eps, cfg->weight_decay};
    int64_t s = 0;
    float loss = NAN;
    if (cfg->resume) FR_TRY(resume(r, cfg, &s, &loss));
    res->first_step = s;
    res->steps_done = s;
    res->final_loss = loss;
    float tail[TAIL];
    int n_tail = 0;
    char path[4096];
    for (; s < cfg->steps; s++) {
        double lr = fr_pretrain_lr(cfg, s);
        float gnorm = NAN;
        FR_TRY(train_step(r, cfg, be, &acfg, s, lr, &loss, &gnorm));
        tail[n_tail++ % TAIL] = loss;
        res->steps_done = s + 1;
        res->final_loss = loss;
        const char *saved = NULL;
        /* under mpirun rank 0 alone writes (every rank holds the same bits) */
        const int writer = fr_dist_rank() == 0;
        if (cfg->save_every > 0 && (s + 1) % cfg->save_every == 0 && s + 1 < cfg->steps) {
            FR_TRY(fr_pretrain_step_path(cfg->out, s + 1, path, sizeof path));
            if (writer) FR_TRY(save(r, cfg, s + 1, loss, path));
            saved = path;
        }
        if (cfg->out && s + 1 == cfg->steps) {
            if (writer) FR_TRY(save(r, cfg, s + 1, loss, cfg->out));
            saved = cfg->out;
        }
        fr_pretrain_event ev = {s + 1, cfg->steps, loss, gnorm, lr, saved};
        int stop = cb && cb(&ev, user);
        if (fr_dist_size() > 1) FR_TRY(fr_dist_max_int(FR_OK, &stop)); /* a stop seen by one rank stops all */
        if (stop) break;
    }
    if (res->steps_done == cfg->steps && res->first_step == cfg->steps && cfg->out && fr_dist_rank() == 0)
        FR_TRY(save(r, cfg, s, loss, cfg->out)); /* resumed at the end: the same file again */
    int k = n_tail < TAIL ? n_tail : TAIL;
    double sum = 0.0;
    for (int i = 0; i < k; i++) sum += tail[i];
    res->tail_loss = k ? (float)(sum / k) : NAN;
    return FR_OK;
}

/* Fails before training when the checkpoint could not be written at the end. */
static fr_status check_out_dir(const char *out)
{
    char dir[4096];
    const char *slash = strrchr(out, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == out) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - out), out);
    if (access(dir, W_OK) != 0)
        return fr_fail(FR_ERR_IO, "%s: cannot write in directory '%s': %s", out, dir, strerror(errno));
    return FR_OK;
}

fr_status fr_pretrain(const fr_pretrain_cfg *cfg, fr_backend *be, fr_pretrain_cb cb,
                      void *user, fr_pretrain_result *result)
{
    fr_pretrain_result res;
    memset(&res, 0, sizeof res);
    res.final_loss = NAN;
    res.tail_loss = NAN;
    if (!be) return fr_fail(FR_ERR_ARG, "pretrain: no op table");
    FR_TRY(fr_pretrain_model_config(cfg, &res.model));
    res.n_params = fr_model_config_num_params(&res.model);
    if (cfg->out) FR_TRY(check_out_dir(cfg->out));
    run_state r;
    memset(&r, 0, sizeof r);
    fr_status st = run_alloc(&r, cfg, &res.model, be);
    if (st == FR_OK && fr_dist_size() > 1) { /* each rank: its rows of the update's batches, of dW, its share of AdamW */
        r.m.dw_part = fr_dist_rank();
        r.m.dw_parts = fr_dist_size();
        r.m.split_rows = 1;
    }
    st = fr_model_dist_transport(st, be);
    if (st == FR_OK) st = run_loop(&r, cfg, be, cb, user, &res);
    fr_model_dist_transport_end();
    /* many processes: a rank that failed between collectives meets the others' next one here */
    st = fr_dist_agree(st);
    run_free(&r);
    if (result) *result = res;
    return st;
}
