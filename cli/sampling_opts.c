/* Options shared by flowrl sample and flowrl eval (cli/sampling_opts.h). */
#include "cli/sampling_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "flowrl/lora.h"
#include "flowrl/opt.h"
#include "flowrl/schedule.h"

static const fr_opt k_model_rows[] = {
    FR_OPT_ROW_(fr_cli_model_opts, ckpt, "ckpt", FR_OPT_STR, "", 0, 0, NULL,
                "checkpoint: safetensors with the model config and 'task' metadata (required)", FR_OPT_PATH, NULL,
                "FILE"),
    FR_OPT_ROW_(fr_cli_model_opts, task, "task", FR_OPT_STR, "", 0, 0, NULL,
                "the task, for a checkpoint without 'task' metadata (else a check)", 0, NULL, "NAME"),
    FR_OPT_ROW_(fr_cli_model_opts, adapter, "adapter", FR_OPT_STR, "", 0, 0, NULL,
                "a LoRA adapter file (a LoRA run's adapter_model.safetensors, PEFT keys; docs/lora.md) on the "
                "checkpoint's weights as its base", FR_OPT_PATH, NULL, "FILE"),
    FR_OPT_BOOL(fr_cli_model_opts, no_ema, "no_ema", "false",
                "use the raw weights even if EMA weights ('ema.*') are present", 0),
    FR_OPT_U32(fr_cli_model_opts, seed, "seed", "0", "key of the sampler noise streams (decimal or 0x hex)", 0),
};

void fr_cli_sampling_add(fr_opts *o, fr_cli_sampling_args *a, int first)
{
    /* fr_opts_add checks first + 2 < FR_OPTS_MAX_STRUCTS before o->s is written */
    fr_opts_add(o, "Checkpoint", k_model_rows, (int)(sizeof k_model_rows / sizeof k_model_rows[0]), first);
    fr_opts_add(o, "Sampling", fr_sampling_rows, fr_sampling_nrows, first + 1);
    fr_opts_add(o, "Backend", fr_backend_rows, fr_backend_nrows, first + 2);
    o->s[first] = &a->m;
    o->s[first + 1] = &a->s;
    o->s[first + 2] = &a->b;
}

double fr_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

int fr_cli_sampling_setup(const fr_opts *o, const fr_opts_seen *seen, const fr_cli_sampling_args *a,
                          fr_cli_sampling *s)
{
    const char *cmd = o->cmd;
    memset(s, 0, sizeof *s);
    if (!a->m.ckpt[0]) return fr_cli_usage(cmd, "--ckpt is required");
    const int noise_given = fr_opts_seen_key(o, seen, "noise_level"), eta_given = fr_opts_seen_key(o, seen, "eta");
    if (noise_given && eta_given) return fr_cli_usage(cmd, "--noise-level and --eta are the same value; give one");
    if (a->m.task[0]) {
        const fr_task *t;
        if (fr_task_get(a->m.task, &t) != FR_OK) return fr_cli_usage(cmd, "%s", fr_last_error());
    }
    int rc = fr_cli_resolve_backend(cmd, &a->b, &s->be);
    if (rc) return rc;

    fr_status ls = fr_infer_ckpt_load(&s->ck, &s->be, a->m.ckpt, !a->m.no_ema, a->m.task[0] ? a->m.task : NULL);
    if (ls != FR_OK) return fr_cli_status(cmd, ls); /* FR_ERR_ARG: --task disagrees with the checkpoint */
    if (a->m.adapter[0]) { /* the loaded weights become the base of the adapter, ck.model its view */
        ls = (s->lora = fr_calloc(1, sizeof *s->lora)) ? fr_lora_from_file(s->lora, &s->ck.model, a->m.adapter) : FR_ERR_NOMEM;
        if (ls == FR_OK) ls = fr_lora_view(&s->ck.model, s->lora, 0, 0);
        if (ls != FR_OK) {
            rc = fr_cli_status(cmd, ls);
            fr_cli_sampling_free(s);
            return rc;
        }
    }
    const int eps = s->ck.model.cfg.pred == FR_PRED_EPSILON;
    fr_sampler_kind kind = a->s.sampler;
    if (!fr_opts_seen_key(o, seen, "sampler")) kind = eps ? FR_SAMPLER_DDIM : FR_SAMPLER_ODE;
    if (eps != (kind == FR_SAMPLER_DDIM)) {
        fr_cli_usage(cmd,
                     eps ? "%s: an epsilon-prediction model samples with --sampler ddim only, not '%s'"
                         : "%s: a velocity (flow-matching) model samples with ode, sde, cps, dance or dpm, not '%s'",
                     a->m.ckpt, fr_sampler_name(kind));
        fr_cli_sampling_free(s);
        return 2;
    }
    s->grid = a->s.grid;
    s->shift = a->s.shift;
    s->rc = fr_rollout_cfg_default(kind);
    s->rc.T = a->s.num_steps;
    s->rc.dpm_order = (int)a->s.dpm_order;
    s->rc.batch = a->s.rollout_batch;
    s->rc.cfg = a->s.cfg;
    s->rc.seed = a->m.seed;
    s->seed = a->m.seed;
    /* one value: a of sde/cps/dance, eta of ddim, the sampler's own default unless given */
    if (noise_given) s->rc.noise = a->s.noise_level;
    else if (eta_given) s->rc.noise = a->s.eta;
    s->ddim_offset = a->s.ddim_offset;
    if (eps) s->rc.alpha_bar = s->ck.alpha_bar;
    fr_status st = fr_rollout_schedule_make(&s->rc, s->grid, s->shift, s->ck.n_train, s->ddim_offset, &s->sched);
    if (st != FR_OK) {
        rc = fr_cli_status(cmd, st);
        fr_cli_sampling_free(s);
        return rc;
    }
    return 0;
}

void fr_cli_sampling_free(fr_cli_sampling *s)
{
    fr_rollout_schedule_free(&s->sched);
    fr_infer_ckpt_free(&s->ck);
    if (s->lora) fr_lora_free(s->lora); /* after its view, ck.model */
    free(s->lora);
    fr_backend_close(&s->be);
}
