/* Loading a checkpoint for sampling and evaluation (flowrl/infer_ckpt.h). */
#include "flowrl/infer_ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/safetensors.h"
#include "flowrl/schedule.h"

/* DDPM's linear schedule (Ho et al. 2020): β from 1e-4 to 0.02 over 1000 steps. */
#define DDPM_BETA_START 1e-4
#define DDPM_BETA_END 0.02

static fr_status meta_double(const fr_st_file *f, const char *path, const char *key, double dflt, double *out)
{
    const char *s = fr_st_get_meta(f, key);
    *out = dflt;
    if (!s) return FR_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v > 0.0 && v < 1.0))
        return fr_fail(FR_ERR_FORMAT, "%s: metadata '%s' = '%s', expected a number in (0, 1)", path, key, s);
    *out = v;
    return FR_OK;
}

static fr_status load_ddpm(fr_infer_ckpt *c, const fr_st_file *f, const char *path)
{
    const char *sched = fr_st_get_meta(f, "ddpm.schedule");
    if (!sched) sched = "linear";
    c->n_train = FR_NUM_TRAIN_TIMESTEPS;
    const char *ns = fr_st_get_meta(f, "ddpm.n_train");
    if (ns) {
        char *end;
        errno = 0;
        long long v = strtoll(ns, &end, 10);
        if (end == ns || *end != '\0' || errno != 0 || v < 2 || v > 100000)
            return fr_fail(FR_ERR_FORMAT, "%s: metadata 'ddpm.n_train' = '%s', expected an integer in 2 .. 100000",
                           path, ns);
        c->n_train = v;
    }
    double b0 = 0.0, b1 = 0.0; /* printed below even when reading one failed */
    float *betas = fr_malloc((size_t)c->n_train * sizeof *betas);
    c->alpha_bar = fr_malloc((size_t)c->n_train * sizeof *c->alpha_bar);
    if (!betas || !c->alpha_bar) {
        free(betas);
        return FR_ERR_NOMEM;
    }
    fr_status s;
    if (strcmp(sched, "linear") == 0 || strcmp(sched, "scaled_linear") == 0) {
        int scaled = sched[0] == 's';
        s = meta_double(f, path, "ddpm.beta_start", scaled ? 0.00085 : DDPM_BETA_START, &b0);
        if (s == FR_OK) s = meta_double(f, path, "ddpm.beta_end", scaled ? 0.012 : DDPM_BETA_END, &b1);
        if (s == FR_OK)
            s = scaled ? fr_betas_scaled_linear(c->n_train, b0, b1, betas) : fr_betas_linear(c->n_train, b0, b1, betas);
        snprintf(c->schedule, sizeof c->schedule, "ddpm %s beta %g .. %g, %lld steps", sched, b0, b1,
                 (long long)c->n_train);
    } else if (strcmp(sched, "cosine") == 0) {
        s = fr_betas_cosine(c->n_train, 0.008, 0.999, betas); /* docs/algorithms/samplers.md §7 defaults */
        snprintf(c->schedule, sizeof c->schedule, "ddpm cosine, %lld steps", (long long)c->n_train);
    } else {
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata 'ddpm.schedule' = '%s', expected linear, scaled_linear or cosine",
                    path, sched);
    }
    if (s == FR_OK) s = fr_alphas_cumprod(c->n_train, betas, c->alpha_bar);
    free(betas);
    return s;
}

fr_status fr_infer_ckpt_load(fr_infer_ckpt *c, fr_backend *be, const char *path, int use_ema, const char *task_name)
{
    memset(c, 0, sizeof *c);
    fr_st_file f;
    FR_TRY(fr_st_read(&f, path));
    fr_status s = FR_OK;
    const char *tn = fr_st_get_meta(&f, "task");
    if (tn && task_name && strcmp(tn, task_name) != 0)
        s = fr_fail(FR_ERR_ARG, "%s: checkpoint is for task '%s', not '%s'", path, tn, task_name);
    else if (!tn && !task_name)
        s = fr_fail(FR_ERR_FORMAT, "%s: metadata 'task' is missing (name the task with --task)", path);
    if (s == FR_OK) s = fr_task_get(tn ? tn : task_name, &c->task);

    fr_model_config cfg;
    if (s == FR_OK) {
        s = fr_model_config_from_meta(&f, &cfg);
        if (s != FR_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fr_last_error());
            s = fr_fail(s, "%s: %s", path, msg);
        }
    }
    if (s == FR_OK) {
        int64_t n_cond, n_slots;
        fr_cond_dims(c->task, &n_cond, &n_slots);
        if (cfg.D != c->task->D || cfg.n_cond != n_cond || cfg.n_slots != n_slots)
            s = fr_fail(FR_ERR_FORMAT,
                        "%s: model (D %lld, n_cond %lld, n_slots %lld) does not fit task %s (D %d, n_cond %lld, "
                        "n_slots %lld)",
                        path, (long long)cfg.D, (long long)cfg.n_cond, (long long)cfg.n_slots, c->task->name,
                        c->task->D, (long long)n_cond, (long long)n_slots);
    }
    if (s == FR_OK) s = fr_model_alloc(&c->model, be, &cfg);
    if (s == FR_OK) {
        char ema0[80];
        snprintf(ema0, sizeof ema0, "ema.%s", c->model.params[0].name);
        c->ema = use_ema && fr_st_get(&f, ema0) != NULL;
        s = fr_model_values_from_st(&c->model, &f, c->ema ? "ema." : "");
        if (s != FR_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fr_last_error());
            s = fr_fail(s, "%s: %s", path, msg);
        }
    }
    if (s == FR_OK && cfg.pred == FR_PRED_EPSILON) s = load_ddpm(c, &f, path);
    fr_st_free(&f);
    if (s != FR_OK) fr_infer_ckpt_free(c);
    return s;
}

void fr_infer_ckpt_free(fr_infer_ckpt *c)
{
    if (c->model.params) fr_model_free(&c->model);
    free(c->alpha_bar);
    memset(c, 0, sizeof *c);
}
