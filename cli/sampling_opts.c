/* Options shared by flowrl sample and flowrl eval (cli/sampling_opts.h). */
#include "cli/sampling_opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "flowrl/opt.h"
#include "flowrl/schedule.h"

int fr_cli_parse_opts(const char *cmd, int argc, char **argv, const fr_cli_opt *opts, int n)
{
    for (int i = 1; i < argc; i++) {
        const fr_cli_opt *o = NULL;
        for (int k = 0; k < n; k++)
            if (strcmp(argv[i], opts[k].name) == 0) o = &opts[k];
        if (!o) {
            fr_cli_error(cmd, "unknown option '%s' (flowrl %s --help)", argv[i], cmd);
            return 2;
        }
        if (o->flag) {
            *o->flag = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fr_cli_error(cmd, "%s needs a value", argv[i]);
            return 2;
        }
        *o->value = argv[++i];
    }
    return 0;
}

int fr_cli_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fr_cli_error(cmd, "%s '%s': expected an integer in %ld .. %ld", opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int fr_cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
        fr_cli_error(cmd, "%s '%s': expected a number in [%g, %g]", opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int fr_cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out)
{
    double v;
    if (fr_cli_double(cmd, opt, s, lo, hi, &v)) return 2;
    *out = (float)v;
    return 0;
}

int fr_cli_sampling_opts(fr_cli_sampling_args *a, fr_cli_opt *o)
{
    memset(a, 0, sizeof *a);
    const fr_cli_opt rows[FR_CLI_SAMPLING_NOPTS] = {
        {"--ckpt", &a->ckpt, NULL},         {"--task", &a->task, NULL},
        {"--backend", &a->backend, NULL},   {"--sampler", &a->sampler, NULL},
        {"--steps", &a->steps, NULL},       {"--grid", &a->grid, NULL},
        {"--shift", &a->shift, NULL},       {"--noise", &a->noise, NULL},
        {"--eta", &a->eta, NULL},           {"--dpm-order", &a->dpm_order, NULL},
        {"--cfg", &a->cfg, NULL},           {"--batch", &a->batch, NULL},
        {"--ddim-offset", &a->ddim_offset, NULL}, {"--seed", &a->seed, NULL},
        {"--threads", &a->threads, NULL},   {"--no-ema", NULL, &a->no_ema},
        {"--fast", NULL, &a->fast},
    };
    memcpy(o, rows, sizeof rows);
    return FR_CLI_SAMPLING_NOPTS;
}

const char fr_cli_sampling_help[] =
    "  --ckpt FILE        checkpoint (safetensors with the model config and 'task' metadata)\n"
    "  --task NAME        the task, for a checkpoint without 'task' metadata (else a check)\n"
    "  --no-ema           use the raw weights even if EMA weights ('ema.*') are present\n"
    "  --backend NAME     ref, opt, cuda (default: opt if built in, else ref)\n"
    "  --threads N        opt threads, 0 = all CPUs (default 0); ref runs on one thread\n"
    "  --fast             opt with OpenBLAS/oneDNN kernels: deterministic run to run on\n"
    "                     one machine and thread count, within docs/determinism.md's\n"
    "                     tolerance of ref (not bitwise)\n"
    "  --sampler KIND     ode (Euler), sde (Flow-GRPO), cps, dance, dpm (DPM-Solver++ 2M)\n"
    "                     for velocity models (default ode); ddim for epsilon models\n"
    "  --steps N          sampler steps (default 40)\n"
    "  --grid G           sigma grid: diffusers (Flow-GRPO, default) or linear\n"
    "  --shift S          grid shift s(u) = S u / (1 + (S - 1) u) (default 3)\n"
    "  --noise A, --eta A noise level: sde 0.7, cps 0.8, dance 0.3, ddim 0 (defaults)\n"
    "  --dpm-order K      1 or 2 (default 2)\n"
    "  --ddim-offset K    DDIM steps_offset (default 1, Stable Diffusion's)\n"
    "  --cfg G            classifier-free guidance scale (default 1: conditional only)\n"
    "  --batch B          rows per model forward (default 64; results do not depend on it)\n"
    "  --seed S           key of the sampler noise streams\n";

double fr_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fr_cli_backend_line(const fr_cli_sampling *s, char *buf, size_t n)
{
    /* STYLE.md: backend, threads and mode at the top of every run */
    fr_cli_backend_describe(s->ops, s->threads, buf, n);
}

void fr_cli_sampler_line(const fr_cli_sampling *s, char *buf, size_t n)
{
    const fr_rollout_cfg *c = &s->rc;
    int w = snprintf(buf, n, "%s, %lld steps", fr_sampler_name(c->kind), (long long)c->T);
    if (w < 0 || (size_t)w >= n) return;
    if (c->kind == FR_SAMPLER_DDIM)
        w += snprintf(buf + w, n - (size_t)w, ", eta %g, offset %lld, %s", (double)c->noise,
                      (long long)s->ddim_offset, s->ck.schedule);
    else
        w += snprintf(buf + w, n - (size_t)w, ", grid %s shift %g", fr_grid_name(s->grid), s->shift);
    if (w < 0 || (size_t)w >= n) return;
    if (c->kind == FR_SAMPLER_SDE || c->kind == FR_SAMPLER_CPS)
        w += snprintf(buf + w, n - (size_t)w, ", noise %g", (double)c->noise);
    else if (c->kind == FR_SAMPLER_DANCE)
        w += snprintf(buf + w, n - (size_t)w, ", eta %g", (double)c->noise);
    else if (c->kind == FR_SAMPLER_DPM)
        w += snprintf(buf + w, n - (size_t)w, ", order %d", c->dpm_order);
    if (w < 0 || (size_t)w >= n) return;
    snprintf(buf + w, n - (size_t)w, ", cfg %g", (double)c->cfg);
}

int fr_cli_sampling_setup(const char *cmd, const fr_cli_sampling_args *a, uint32_t default_seed,
                          fr_cli_sampling *s)
{
    memset(s, 0, sizeof *s);
    if (!a->ckpt) {
        fr_cli_error(cmd, "--ckpt is required (flowrl %s --help)", cmd);
        return 2;
    }
    if (a->noise && a->eta) {
        fr_cli_error(cmd, "--noise and --eta are the same option; give one");
        return 2;
    }
    if (a->task) {
        const fr_task *t;
        if (fr_task_get(a->task, &t) != FR_OK) {
            fr_cli_error(cmd, "%s", fr_last_error());
            return 2;
        }
    }
    long threads = 0;
    if (a->threads && fr_cli_long(cmd, "--threads", a->threads, 0, 4096, &threads)) return 2;
    int rc = fr_cli_backend(cmd, a->backend, a->fast, threads, &s->ops, &s->threads);
    if (rc) return rc;

    /* the cheap option checks first, so a usage error does not wait for the checkpoint */
    fr_sampler_kind kind = FR_SAMPLER_ODE;
    if (a->sampler && fr_sampler_from_name(a->sampler, &kind) != FR_OK) {
        fr_cli_error(cmd, "%s", fr_last_error());
        return 2;
    }
    long steps = 40, order = 2, batch = 64, offset = 1, seed = (long)default_seed;
    if (a->steps && fr_cli_long(cmd, "--steps", a->steps, 1, 100000, &steps)) return 2;
    if (a->dpm_order && fr_cli_long(cmd, "--dpm-order", a->dpm_order, 1, 2, &order)) return 2;
    if (a->batch && fr_cli_long(cmd, "--batch", a->batch, 1, 1L << 20, &batch)) return 2;
    if (a->ddim_offset && fr_cli_long(cmd, "--ddim-offset", a->ddim_offset, 0, 1000, &offset)) return 2;
    if (a->seed && fr_cli_long(cmd, "--seed", a->seed, 0, (long)UINT32_MAX, &seed)) return 2;
    s->grid = FR_GRID_DIFFUSERS;
    if (a->grid && fr_grid_from_name(a->grid, &s->grid) != FR_OK) {
        fr_cli_error(cmd, "%s", fr_last_error());
        return 2;
    }
    s->shift = FR_DEFAULT_SHIFT;
    if (a->shift && fr_cli_double(cmd, "--shift", a->shift, 1e-6, 1e6, &s->shift)) return 2;
    float cfg = 1.0f, noise = -1.0f;
    if (a->cfg && fr_cli_float(cmd, "--cfg", a->cfg, -1e6, 1e6, &cfg)) return 2;
    const char *noise_s = a->noise ? a->noise : a->eta;
    if (noise_s && fr_cli_float(cmd, a->noise ? "--noise" : "--eta", noise_s, 0.0, 100.0, &noise)) return 2;

    fr_status ls = fr_infer_ckpt_load(&s->ck, a->ckpt, !a->no_ema, a->task);
    if (ls != FR_OK) {
        fr_cli_error(cmd, "%s", fr_last_error());
        return ls == FR_ERR_ARG ? 2 : 1; /* FR_ERR_ARG: --task disagrees with the checkpoint */
    }
    const int eps = s->ck.model.cfg.pred == FR_PRED_EPSILON;
    if (!a->sampler) kind = eps ? FR_SAMPLER_DDIM : FR_SAMPLER_ODE;
    if (eps != (kind == FR_SAMPLER_DDIM)) {
        fr_cli_error(cmd,
                     eps ? "%s: an epsilon-prediction model samples with --sampler ddim only, not '%s'"
                         : "%s: a velocity (flow-matching) model samples with ode, sde, cps, dance or dpm, not '%s'",
                     a->ckpt, fr_sampler_name(kind));
        fr_cli_sampling_free(s);
        return 2;
    }
    s->rc = fr_rollout_cfg_default(kind);
    s->rc.T = steps;
    s->rc.dpm_order = (int)order;
    s->rc.batch = batch;
    s->rc.cfg = cfg;
    s->rc.seed = (uint32_t)seed;
    s->seed = (uint32_t)seed;
    if (noise >= 0.0f) s->rc.noise = noise;
    s->ddim_offset = offset;
    if (eps) s->rc.alpha_bar = s->ck.alpha_bar;
    if (fr_rollout_schedule_make(&s->rc, s->grid, s->shift, s->ck.n_train, offset, &s->sched) != FR_OK) {
        fr_cli_error(cmd, "%s", fr_last_error());
        fr_cli_sampling_free(s);
        return 2;
    }
    return 0;
}

void fr_cli_sampling_free(fr_cli_sampling *s)
{
    fr_rollout_schedule_free(&s->sched);
    fr_infer_ckpt_free(&s->ck);
}
