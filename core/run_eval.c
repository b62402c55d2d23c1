/* Held-out evaluation of a run (flowrl/run.h): before, every eval_every epochs, after. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/run_internal.h"
#include "flowrl/checkpoint.h"
#include "flowrl/env_ctl.h"

fr_status fr_run_evaluate(fr_run *r, const fr_model *m, const char *key, int64_t epoch, double *acc, double *score)
{
    const fr_run_opts *o = r->o;
    if (o->ev.eval_n <= 0 || !r->priv->writer) return FR_OK; /* rank 0 evaluates (flowrl/dist.h) */
    /* the deterministic sampler of the base: the ODE, or DDIM with η 0 for an epsilon base */
    const int eps = r->priv->alpha_bar != NULL;
    fr_rollout_cfg erc = fr_rollout_cfg_default(eps ? FR_SAMPLER_DDIM : FR_SAMPLER_ODE);
    erc.T = o->ev.eval_steps;
    erc.cfg = o->smp.cfg;
    erc.batch = o->smp.rollout_batch;
    if (eps) erc.alpha_bar = r->priv->alpha_bar;
    fr_rollout_schedule es;
    FR_TRY(fr_rollout_schedule_make(&erc, o->smp.grid, o->smp.shift, r->priv->ddpm_n_train, o->smp.ddim_offset, &es));
    fr_eval_opts eo = fr_eval_opts_default();
    eo.n = (int)o->ev.eval_n;
    eo.reward_id = r->priv->eval_reward_id;
    fr_eval_result res;
    fr_status s = fr_evaluate(m, r->be, r->task, &erc, &eo, &res);
    if (s == FR_OK) {
        *acc = res.samples ? (double)res.correct / (double)res.samples : 0.0;
        *score = res.score;
        s = fr_train_eval_json_set(r->dir, key, r->task, &res, epoch);
        fr_run_info(r, "eval %-8s (epoch %lld, %d held-out prompts x %d, %lld %s steps): accuracy %.1f%%, mean reward %.4f",
                    key, (long long)epoch, res.n_prompts, res.n, (long long)erc.T, eps ? "DDIM (eta 0)" : "ODE", 100.0 * *acc, res.score);
        for (int g = 0; g < res.n_groups; g++)
            if (res.group_samples[g])
                fr_run_info(r, "  %-10s accuracy %.1f%%, mean reward %.4f", r->task->group_names[g],
                            100.0 * (double)res.group_correct[g] / (double)res.group_samples[g], res.group_score[g]);
        fr_eval_result_free(&res);
    }
    char png[48];
    snprintf(png, sizeof png, "%s.png", key);
    int64_t k = o->ev.eval_n < 8 ? o->ev.eval_n : 8;
    const fr_model *ms[2] = {m, NULL};
    const char *titles[2] = {key, "after"};
    if (s == FR_OK) s = fr_train_sample_grid(r->dir, png, ms, titles, 1, r->be, r->task, r->priv->eval_reward_id, &erc, k);
    if (s == FR_OK && strcmp(key, "after") == 0) {
        /* before and after side by side: the base from its file, as the run started from it */
        fr_infer_ckpt ck;
        s = fr_infer_ckpt_load(&ck, r->be, o->c.base, !o->c.base_raw, r->task->name);
        if (s == FR_OK) {
            ms[0] = &ck.model;
            ms[1] = m;
            titles[0] = "before (base)";
            s = fr_train_sample_grid(r->dir, "before_after.png", ms, titles, 2, r->be, r->task,
                                     r->priv->eval_reward_id, &erc, k);
            fr_infer_ckpt_free(&ck);
        }
    }
    fr_rollout_schedule_free(&es);
    return s;
}

/* An algorithm's evaluation on its environment; on nav2d its episodes (fr_ctl_evaluate's
 * recording, flowrl/ctl.h) drawn to samples/KEY.png: the trajectories before, during and after. */
static fr_status eval_env(fr_run *r, const char *key, int64_t epoch, double *score)
{
    if (r->env.cls != &fr_env_nav2d) return r->algo->evaluate(r, r->priv->state, key, epoch, score);
    fr_demos rec;
    fr_demos_init(&rec, r->env.obs_dim, r->env.action_dim, 0, 1);
    r->env.eval_record = &rec;
    fr_status s = r->algo->evaluate(r, r->priv->state, key, epoch, score);
    r->env.eval_record = NULL;
    char dir[1200], path[1300], title[128];
    snprintf(dir, sizeof dir, "%s/samples", r->dir);
    snprintf(path, sizeof path, "%s/%s.png", dir, key);
    snprintf(title, sizeof title, "%s %s (epoch %lld)", r->algo->name, key, (long long)epoch);
    if (s == FR_OK && rec.E > 0 && mkdir(dir, 0777) != 0 && errno != EEXIST)
        s = fr_fail(FR_ERR_IO, "%s: %s", dir, strerror(errno));
    if (s == FR_OK && rec.E > 0) s = fr_ctl_plot_nav2d(path, r->env.impl, &rec, 512, title);
    fr_demos_free(&rec);
    return s;
}

/* The weights evaluated: the EMA's when it is on (FG evaluates the EMA). */
fr_status fr_run_eval_current(fr_run *r, const char *key, int64_t epoch, double *acc, double *score)
{
    if (!r->priv->writer) return FR_OK;
    if (r->algo->on_env) /* the algorithm's own evaluation (no held-out prompts, no accuracy) */
        return r->o->ev.eval_n > 0 ? eval_env(r, key, epoch, score) : FR_OK;
    if (!r->have_ema) return fr_run_evaluate(r, &r->pol, key, epoch, acc, score);
    fr_model em;
    FR_TRY(fr_run_model_like(r, "eval", &em));
    fr_status s = fr_ema_copy_to(r->be, &r->ema, em.params, em.n_params);
    if (s == FR_OK) s = fr_run_evaluate(r, &em, key, epoch, acc, score);
    fr_model_free(&em);
    return s;
}
