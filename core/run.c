/* The one run loop (flowrl/run.h): setup, the epoch loop with its checkpoints, evaluations
 * and health checks, new runs and resumed ones. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/model_dist.h"
#include "core/run_internal.h"
#include "flowrl/checkpoint.h"
#include "flowrl/digest.h"
#include "flowrl/dist.h"
#include "flowrl/env_ctl.h"
#include "flowrl/file_util.h"
#include "flowrl/dir_lock.h"
#include "flowrl/progress.h"
#include "flowrl/reward_cmd.h"

/* ---- setup and teardown -------------------------------------------------------------------- */

/* An environment algorithm (fr_algo.on_env): the environment, the algorithm's state and its
 * parameter list, which r->pol views (values and gradients borrowed), and AdamW over the list. */
static fr_status setup_env(fr_run *r)
{
    const fr_run_opts *o = r->o;
    if (fr_dist_size() > 1)
        return fr_fail(FR_ERR_ARG, "train: --algo %s trains on an environment and does not shard its trajectories over "
                       "MPI ranks yet: run it as one process (without mpirun)", r->algo->name);
    if (!o->env_class) return fr_fail(FR_ERR_ARG, "train: --algo %s needs --env NAME (flowrl envs lists them)", r->algo->name);
    fr_env_spec_apply(o->env_class, o->env_opts, o->c.env, o->c.workdir); /* cmd:PROGRAM: program, directory */
    FR_TRY(fr_env_create(o->env_class, o->env_opts, &r->env));
    r->have_env = 1;
    FR_TRY(r->algo->setup(r, &r->priv->state));
    fr_param *ps;
    int n = 0;
    FR_TRY(r->algo->params(r, r->priv->state, &ps, &n, r->groups, &r->n_groups));
    struct fr_run_private *pv = r->priv;
    if (!FR_ALLOC(pv->env_values, n) || !FR_ALLOC(pv->env_grads, n)) return FR_ERR_NOMEM;
    for (int i = 0; i < n; i++) {
        pv->env_values[i] = *ps[i].value;
        pv->env_grads[i] = *ps[i].grad;
    }
    r->pol.params = ps;
    r->pol.n_params = n;
    r->pol.values = pv->env_values;
    r->pol.grads = pv->env_grads;
    return fr_adamw_state_init(r->be, &r->adam, ps, n);
}

/* Loads the base into the policy (and the frozen reference), the reward, the optimiser, the
 * EMA, the DDPO tracker and the algorithm's state. */
fr_status fr_run_setup(fr_run *r)
{
    const fr_run_opts *o = r->o;
    if (r->algo->on_env) return setup_env(r);
    FR_TRY(fr_run_dist_check(r));
    FR_TRY(fr_file_digest_hex(o->c.base, r->base_digest));
    fr_infer_ckpt ck;
    FR_TRY(fr_infer_ckpt_load(&ck, r->be, o->c.base, !o->c.base_raw, o->c.task[0] ? o->c.task : NULL));
    r->pol = ck.model;
    if (fr_dist_size() > 1) { /* each rank: its rows of the update's batches, of dW, its share of AdamW */
        r->pol.dw_part = fr_dist_rank();
        r->pol.dw_parts = fr_dist_size();
        r->pol.split_rows = 1;
    }
    FR_TRY(fr_model_dist_transport(FR_OK, r->be));
    r->task = ck.task;
    ck.model.params = NULL; /* ownership moved to r->pol */
    r->priv->alpha_bar = ck.alpha_bar; /* and the ᾱ table to the run */
    r->priv->ddpm_n_train = ck.n_train;
    ck.alpha_bar = NULL;
    fr_infer_ckpt_free(&ck);
    if ((int)r->pol.cfg.pred != r->algo->base_pred) {
        if (r->algo->base_pred == FR_PRED_EPSILON)
            return fr_fail(FR_ERR_ARG, "--base %s predicts %s: %s needs an epsilon-prediction base: flowrl pretrain --pred epsilon",
                           o->c.base, fr_pred_name(r->pol.cfg.pred), r->algo->name);
        return fr_fail(FR_ERR_ARG, "%s: training needs a velocity (flow-matching) model, this one predicts %s", o->c.base,
                       fr_pred_name(r->pol.cfg.pred));
    }

    if (o->c.lora_rank > 0) FR_TRY(fr_run_setup_lora(r));

    r->reward_id = 0;
    const char *prog = fr_reward_cmd_program(o->c.reward);
    if (prog) {
        r->reward_id = -1;
        fr_reward_cmd_opts ro = {o->rw.timeout_s, r->task->C, r->task->H, r->task->W,
                                 o->c.workdir[0] ? o->c.workdir : NULL};
        FR_TRY(fr_reward_cmd_open(prog, &ro, &r->rcmd));
    } else if (o->c.reward[0]) {
        FR_TRY(fr_task_reward_id(r->task, o->c.reward, &r->reward_id));
    }
    r->priv->eval_reward_id = r->reward_id >= 0 ? r->reward_id : 0;

    if (r->algo->needs_ref && r->algo->needs_ref(o, r->ao) && r->lora) {
        FR_TRY(fr_lora_view(&r->ref, r->lora, -1, 0)); /* adapter off: the base, no copy */
        r->have_ref = 1;
    } else if (r->algo->needs_ref && r->algo->needs_ref(o, r->ao)) {
        FR_TRY(fr_model_alloc(&r->ref, r->be, &r->pol.cfg));
        r->have_ref = 1;
        for (int i = 0; i < r->pol.n_params; i++)
            FR_TRY(fr_d2d(r->be, r->ref.values[i].data, r->pol.values[i].data, fr_tensor_nbytes(&r->pol.values[i])));
    }
    FR_TRY(fr_adamw_state_init(r->be, &r->adam, r->pol.params, r->pol.n_params));
    if (o->opt.ema_decay >= 0.0f) {
        FR_TRY(fr_ema_init(r->be, &r->ema, r->pol.params, r->pol.n_params));
        r->have_ema = 1;
    }
    if (o->c.adv == FR_TRAIN_ADV_DDPO)
        FR_TRY(fr_ddpo_tracker_new(o->c.ddpo_buffer, o->c.ddpo_min_count, FR_ADV_EPS_DDPO, &r->priv->ddpo));
    return r->algo->setup(r, &r->priv->state);
}

static void teardown(fr_run *r)
{
    fr_model_dist_transport_end();
    if (r->priv->state && r->algo->free) r->algo->free(r->priv->state);
    if (r->adam.m) fr_adamw_state_free(&r->adam);
    if (r->have_ema) fr_ema_free(&r->ema);
    if (r->pol.params && !r->algo->on_env) fr_model_free(&r->pol);
    free(r->priv->env_values);
    free(r->priv->env_grads);
    free(r->priv->rec_host);
    if (r->have_env) fr_env_free(&r->env);
    if (r->have_ref) fr_model_free(&r->ref);
    if (r->lora) fr_lora_free(r->lora); /* after every view of it */
    free(r->lora);
    fr_ddpo_tracker_free(r->priv->ddpo);
    free(r->priv->alpha_bar);
    fr_train_curve_free(&r->priv->curve);
}

/* The files a new run writes (removed again when it fails before its first checkpoint). */
static const char *const k_run_files[] = {FR_TRAIN_CONFIG_NAME, FR_AUDIT_LOG_NAME, FR_TRAIN_METRICS_NAME,
                                          FR_TRAIN_EVAL_NAME,   FR_TRAIN_CURVE_NAME, "samples/before.png",
                                          "samples/after.png",  "samples/before_after.png", NULL};

static void remove_new_run(const fr_run *r)
{
    char p[FR_TRAIN_PATH_MAX + 64];
    for (const char *const *f = k_run_files; *f; f++)
        if (fr_train_path(p, sizeof p, r->dir, *f) == FR_OK) remove(p);
    if (fr_train_path(p, sizeof p, r->dir, "samples") == FR_OK) rmdir(p);
    if (fr_train_path(p, sizeof p, r->dir, FR_CHECKPOINT_DIR) == FR_OK) rmdir(p);
}

static fr_status make_dirs(const fr_run *r)
{
    char p[FR_TRAIN_PATH_MAX + 32];
    if (mkdir(r->dir, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", r->dir, strerror(errno));
    FR_TRY(fr_train_path(p, sizeof p, r->dir, FR_CHECKPOINT_DIR));
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", p, strerror(errno));
    return FR_OK;
}

/* --force: the files of the run that was in the directory (other files are left alone). */
static fr_status clear_run(const fr_run *r)
{
    remove_new_run(r);
    char p[FR_TRAIN_PATH_MAX + 64];
    int64_t *steps, n;
    FR_TRY(fr_train_list_checkpoints(r->dir, &steps, &n));
    for (int64_t i = 0; i < n; i++) {
        char rel[64];
        fr_checkpoint_name(steps[i], rel, sizeof rel);
        if (fr_train_path(p, sizeof p, r->dir, rel) == FR_OK) remove(p);
    }
    free(steps);
    FR_TRY(fr_train_path(p, sizeof p, r->dir, "samples"));
    DIR *d = opendir(p);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t l = strlen(e->d_name);
        char q[FR_TRAIN_PATH_MAX + 400];
        if (l > 4 && strcmp(e->d_name + l - 4, ".png") == 0 && snprintf(q, sizeof q, "%s/%s", p, e->d_name) < (int)sizeof q)
            remove(q);
    }
    if (d) closedir(d);
    return make_dirs(r);
}

/* Closes everything; the first error is the one reported (closing the audit log or the
 * reward program must not replace it). */
fr_status fr_run_finish(fr_run *r, fr_status s, int fresh)
{
    /* every rank ends here: an error of any rank (or of none) becomes every rank's */
    s = fr_dist_agree(s);
    char first[1024] = "";
    if (s != FR_OK) snprintf(first, sizeof first, "%s", fr_last_error());
    if (r->priv->audit) {
        fr_status c = fr_audit_close(r->priv->audit);
        if (s == FR_OK) s = c;
    }
    if (r->rcmd) {
        fr_status c = fr_reward_cmd_close(r->rcmd);
        if (s == FR_OK) s = c;
    }
    /* only under its own lock: a start refused by another run's lock must not remove the
     * files of the run that holds it */
    if (s != FR_OK && fresh && r->priv->ckpt_written == 0 && first[0] && r->priv->lock.fd >= 0) remove_new_run(r);
    teardown(r);
    fr_dir_unlock(&r->priv->lock);
    if (first[0]) return fr_fail(s, "%s", first);
    return s;
}

fr_status fr_run_open_audit(fr_run *r)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, r->dir, FR_AUDIT_LOG_NAME));
    fr_audit_kv extra[] = {{"run.algo", r->algo->name}, {"run.base_digest", r->base_digest}};
    if (r->algo->on_env) extra[1] = (fr_audit_kv){"run.env", r->env.desc};
    fr_audit_opts ao = {r->be->name, r->be->threads, extra, 2, 0};
    return fr_audit_open(&r->priv->audit, path, &ao);
}

void fr_run_header(fr_run *r)
{
    const fr_run_opts *o = r->o;
    if (r->algo->on_env) {
        fr_run_info(r, "algo %s (%s), env %s", r->algo->name, r->algo->doc, r->env.desc);
        fr_run_info(r, "%lld params, %lld epochs, seed %u; lr %g, max grad norm %g; checkpoint every %lld epochs "
                       "(keep %lld), eval every %lld",
                    (long long)fr_model_num_params(&r->pol), (long long)o->run.epochs, o->run.seed, o->opt.lr,
                    (double)o->opt.max_grad_norm, (long long)o->run.checkpoint_every,
                    (long long)o->run.keep_checkpoints, (long long)o->ev.eval_every);
        if (r->algo->header) r->algo->header(r, r->priv->state);
        return;
    }
    fr_run_info(r, "algo %s (%s), task %s, base %s (digest %s, %s weights), reward %s", r->algo->name, r->algo->doc,
                r->task->name, o->c.base, r->base_digest, o->c.base_raw ? "raw" : "EMA",
                o->c.reward[0] ? o->c.reward : r->task->reward_names[0]);
    fr_run_info(r, "model %s: %lld params; %lld prompts x %lld samples per epoch, %lld epochs, seed %u",
                r->pol.cfg.preset, (long long)fr_model_num_params(&r->pol), (long long)o->c.prompts,
                (long long)o->c.group, (long long)o->run.epochs, o->run.seed);
    fr_run_info(r, "lr %g, max grad norm %g, ema %s; checkpoint every %lld epochs (keep %lld), eval every %lld",
                (double)o->opt.lr, (double)o->opt.max_grad_norm, o->opt.ema_decay >= 0.0f ? "on" : "off",
                (long long)o->run.checkpoint_every, (long long)o->run.keep_checkpoints, (long long)o->ev.eval_every);
    if (r->lora) {
        char tg[FR_LORA_TARGETS_MAX];
        if (fr_lora_targets_string(r->lora, tg, sizeof tg) != FR_OK) snprintf(tg, sizeof tg, "(%d layers)", r->lora->n_t);
        fr_run_info(r, "LoRA rank %lld, alpha %g (scale %g) on %s: %lld trained, the %lld of the base frozen; reference = adapter off",
                    (long long)r->lora->r, r->lora->alpha, (double)r->lora->scale, tg, (long long)fr_model_num_params(&r->pol),
                    (long long)fr_model_num_params(&r->lora->base));
    }
    if (r->algo->header) r->algo->header(r, r->priv->state);
}

/* ---- health checks (collapse, divergence) ----------------------------------------------- */

/* Whether x[0..FINITE_BLOCK) are all finite, without a branch per element (gcc -O2
 * vectorizes it): the scan below looks for the first bad element only in a bad block. */
enum { FINITE_BLOCK = 1024 };

static int block_finite(const float *x)
{
    int ok = 1;
    for (int j = 0; j < FINITE_BLOCK; j++) ok &= fabsf(x[j]) <= FLT_MAX;
    return ok;
}

static fr_status params_finite(const fr_run *r, const fr_tensor *host)
{
    for (int i = 0; i < r->pol.n_params; i++) {
        const float *p = host[i].data;
        int64_t n = fr_tensor_numel(&host[i]), k = 0;
        while (k + FINITE_BLOCK <= n && block_finite(p + k)) k += FINITE_BLOCK;
        for (; k < n; k++)
            if (!isfinite(p[k]))
                return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: parameter %s[%lld] is %g (the policy diverged)",
                               (long long)r->epoch + 1, r->pol.params[i].name, (long long)k, (double)p[k]);
    }
    return FR_OK;
}

/* The parameters after the epoch: copied out once (fr_d2h; a host backend's are read where
 * they are), checked finite, then recorded under the checkpoint's names. */
static fr_status check_and_record_policy(fr_run *r)
{
    const int n = r->pol.n_params;
    fr_tensor *h = fr_calloc((size_t)n, sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    for (int i = 0; i < n && s == FR_OK; i++) {
        if (r->be->device) {
            s = fr_run_host_copy(r, &r->pol.values[i], &h[i]);
        } else {
            h[i] = r->pol.values[i];
            h[i].owned = 0;
        }
    }
    if (s == FR_OK) s = params_finite(r, h);
    for (int i = 0; i < n && s == FR_OK; i++) s = fr_run_rec_tensor(r, r->pol.params[i].name, &h[i]);
    for (int i = 0; i < n; i++) fr_tensor_free(&h[i]);
    free(h);
    return s;
}

/* The state after the epoch: the parameters (checked finite), the EMA and the moments. A host
 * backend's records are one fr_run_rec_param_lists (its digests on the backend's threads). */
static fr_status record_state(fr_run *r)
{
    if (r->be->device) {
        FR_TRY(check_and_record_policy(r));
        if (r->have_ema) FR_TRY(fr_run_rec_params(r, "ema.", r->ema.shadow));
        FR_TRY(fr_run_rec_params(r, "optim.m.", r->adam.m));
        return fr_run_rec_params(r, "optim.v.", r->adam.v);
    }
    FR_TRY(params_finite(r, r->pol.values));
    const char *prefix[4];
    const fr_tensor *lists[4];
    int k = 0;
    prefix[k] = "", lists[k++] = r->pol.values;
    if (r->have_ema) prefix[k] = "ema.", lists[k++] = r->ema.shadow;
    prefix[k] = "optim.m.", lists[k++] = r->adam.m;
    prefix[k] = "optim.v.", lists[k++] = r->adam.v;
    return fr_run_rec_param_lists(r, k, prefix, lists);
}

static void health(fr_run *r, const fr_run_epoch_event *ev)
{
    const fr_run_common *c = &r->o->c;
    struct fr_run_private *pv = r->priv;
    double kept = fr_run_event_get(ev, "kept");
    pv->zero_adv_streak = kept == 0.0 ? pv->zero_adv_streak + 1 : 0;
    if (c->warn_zero_adv > 0 && pv->zero_adv_streak >= c->warn_zero_adv && !pv->warned_zero) {
        pv->warned_zero = 1;
        fr_run_info(r, "warning: every advantage was zero for %lld epochs in a row (epoch %lld): the reward does not "
                       "separate the samples of a group (constant reward or a collapsed policy), nothing is learned",
                    (long long)pv->zero_adv_streak, (long long)ev->epoch);
    }
    const char *keys[] = {"kl", "approx_kl"};
    for (int k = 0; k < 2 && c->warn_kl > 0.0 && !pv->warned_kl; k++) {
        double v = fr_run_event_get(ev, keys[k]);
        if (isfinite(v) && fabs(v) > c->warn_kl) {
            pv->warned_kl = 1;
            /* --beta is advice only where a KL term is on (beta > 0): D3PO's approx_kl, say, is
             * measured against the frozen base and no beta pulls it back */
            fr_run_info(r, "warning: epoch %lld: %s = %g exceeds --warn-kl %g: the policy moves fast (lower --lr%s)",
                        (long long)ev->epoch, keys[k], v, c->warn_kl, c->beta > 0.0f ? " or raise --beta" : "");
        }
    }
}

/* A divergence in epoch e: the checkpoint step-e produced it when the rollout itself was not
 * finite; it is renamed *.nonfinite so that --resume takes the one before. */
static void quarantine(fr_run *r, int64_t e)
{
    char rel[64], p[FR_TRAIN_PATH_MAX + 64], q[FR_TRAIN_PATH_MAX + 80];
    fr_checkpoint_name(e, rel, sizeof rel);
    if (e <= 0 || !r->priv->writer || fr_train_path(p, sizeof p, r->dir, rel) != FR_OK) return;
    snprintf(q, sizeof q, "%s.nonfinite", p);
    struct stat st;
    if (stat(p, &st) == 0 && rename(p, q) == 0)
        fr_run_info(r, "%s produced non-finite samples: renamed to %s", p, q);
}

/* ---- the loop ------------------------------------------------------------------------------ */

static fr_status end_epoch(fr_run *r, int64_t e, double t0, int *stop)
{
    struct fr_run_private *pv = r->priv;
    const fr_run_opts *o = r->o;
    fr_run_epoch_event *ev = &pv->ev;
    ev->seconds = fr_now_seconds() - t0;
    char path[FR_TRAIN_PATH_MAX + 32];
    /* order: audit end-step (done), metrics line, checkpoint: a crash anywhere leaves a log
     * at least as long as the newest checkpoint, which resume cuts back to it */
    if (pv->writer) FR_TRY(fr_train_metrics_append(r->dir, ev));
    const fr_run_cb *cb = pv->env->cb;
    int sig = cb && cb->stop && *cb->stop;
    int last = e + 1 == o->run.epochs;
    if (cb && cb->on_epoch && cb->on_epoch(ev, cb->user) && !last) {
        *stop = 1;
        sig = 1;
    }
    /* a stop seen by one rank stops every rank after this epoch, with its checkpoint */
    FR_TRY(fr_dist_max_int(FR_OK, &sig));
    FR_TRY(fr_dist_max_int(FR_OK, stop));
    if (!pv->writer) return FR_OK; /* the rest writes the run directory */
    if (sig || last || (o->run.checkpoint_every > 0 && (e + 1) % o->run.checkpoint_every == 0)) FR_TRY(fr_run_save_checkpoint(r, e + 1));
    FR_TRY(fr_train_curve_push(&pv->curve, fr_run_event_get(ev, "reward_mean"), fr_run_event_get(ev, "accuracy")));
    if (o->ev.eval_every > 0 && (e + 1) % o->ev.eval_every == 0 && !last && o->ev.eval_n > 0) {
        char key[32];
        double acc = NAN, score = NAN;
        snprintf(key, sizeof key, "epoch-%lld", (long long)e + 1);
        FR_TRY(fr_run_eval_current(r, key, e + 1, &acc, &score));
        FR_TRY(fr_train_curve_push_eval(&pv->curve, (double)(e + 1), acc));
    }
    FR_TRY(fr_train_path(path, sizeof path, r->dir, FR_TRAIN_CURVE_NAME));
    return fr_train_curve_write_svg(&pv->curve, r->algo->name, path);
}

static fr_status run_epoch(fr_run *r, int64_t e)
{
    struct fr_run_private *pv = r->priv;
    const fr_copy_stats start = r->be->copies;
    const fr_work_stats work0 = r->be->work;
    const uint64_t record0 = pv->record_bytes, reward0 = pv->reward_bytes, dist0 = fr_dist_recv_bytes();
    const uint64_t update0 = fr_model_dist_recv_bytes();
    const double comm0 = fr_dist_comm_seconds();
    pv->split_seconds = 0.0;
    memset(&pv->ev, 0, sizeof pv->ev);
    pv->ev.epoch = e + 1;
    pv->ev.epochs = r->o->run.epochs;
    r->epoch = e;
    if (pv->writer) FR_TRY(fr_audit_begin_step(pv->audit, e + 1));
    pv->rec_step = e + 1;
    FR_TRY(r->algo->epoch(r, pv->state));
    /* the state after the epoch, under the checkpoint's names (flowrl/audit.h convention) */
    FR_TRY(record_state(r));
    if (pv->writer) FR_TRY(fr_audit_end_step(pv->audit));
    fr_run_copy_metrics(r, &start, record0, reward0);
    fr_run_nfe_metrics(r, &work0);
    if (fr_dist_joined()) { /* under mpirun: the split work, what this rank received, the time in
                               collectives (docs/determinism.md "Many processes") */
        fr_run_metric(r, "dist.ranks", (double)fr_dist_size());
        fr_run_metric(r, "dist.recv_bytes", (double)(fr_dist_recv_bytes() - dist0));
        fr_run_metric(r, "dist.update_recv_bytes", (double)(fr_model_dist_recv_bytes() - update0));
        fr_run_metric(r, "dist.split_seconds", pv->split_seconds);
        fr_run_metric(r, "dist.comm_seconds", fr_dist_comm_seconds() - comm0);
    }
    return FR_OK;
}

fr_status fr_run_loop(fr_run *r, int64_t first, fr_run_result *res)
{
    const fr_run_cb *cb = r->priv->env->cb;
    res->first_epoch = first;
    res->epochs_done = first;
    for (int64_t e = first; e < r->o->run.epochs; e++) {
        int sig = cb && cb->stop ? (int)*cb->stop : 0;
        FR_TRY(fr_dist_max_int(FR_OK, &sig)); /* every rank stops at the same boundary */
        if (sig) {
            res->interrupted = sig;
            break;
        }
        double t0 = fr_now_seconds();
        fr_status s = run_epoch(r, e);
        if (s == FR_ERR_NUMERIC && r->priv->state_nonfinite) quarantine(r, e);
        FR_TRY(s);
        health(r, &r->priv->ev);
        int stop = 0;
        FR_TRY(end_epoch(r, e, t0, &stop));
        res->epochs_done = e + 1;
        if (stop) {
            res->interrupted = 1;
            break;
        }
    }
    if (!res->interrupted && cb && cb->stop && *cb->stop && res->epochs_done < r->o->run.epochs)
        res->interrupted = (int)*cb->stop;
    if (!res->interrupted && r->priv->writer) {
        FR_TRY(fr_run_eval_current(r, "after", res->epochs_done, &res->acc_after, &res->score_after));
        res->have_after = r->o->ev.eval_n > 0;
        if (res->have_after) FR_TRY(fr_train_curve_push_eval(&r->priv->curve, (double)res->epochs_done, res->acc_after));
        char path[FR_TRAIN_PATH_MAX + 32];
        FR_TRY(fr_train_path(path, sizeof path, r->dir, FR_TRAIN_CURVE_NAME));
        FR_TRY(fr_train_curve_write_svg(&r->priv->curve, r->algo->name, path));
    }
    return FR_OK;
}

fr_status fr_run_check_opts(const fr_run_opts *ro, const fr_algo *a, const void *ao)
{
    fr_opts o;
    fr_run_bind(&o, ro, a, ao);
    FR_TRY(fr_opts_check(&o));
    if (!ro->run.out[0]) return fr_fail(FR_ERR_ARG, "train: --out RUNDIR is required");
    if (a->on_env) {
        if (ro->opt.ema_decay >= 0.0f)
            return fr_fail(FR_ERR_ARG, "train: --ema-decay: --algo %s keeps no EMA of its parameters (leave it at -1)", a->name);
        if ((uint64_t)ro->run.epochs >= UINT32_MAX / 2)
            return fr_fail(FR_ERR_ARG, "train: --epochs %lld exceeds 2^31", (long long)ro->run.epochs);
        return a->check ? a->check(ro, ao) : FR_OK;
    }
    if (!ro->c.base[0]) return fr_fail(FR_ERR_ARG, "train: --base CKPT is required");
    if ((ro->c.prompts * ro->c.group) % ro->c.num_batches != 0)
        return fr_fail(FR_ERR_ARG, "train: --prompts-per-epoch x --group-size = %lld samples is not a multiple of "
                       "--num-batches %lld", (long long)(ro->c.prompts * ro->c.group), (long long)ro->c.num_batches);
    /* epoch and sample ids are Philox coordinates */
    if ((uint64_t)ro->run.epochs >= UINT32_MAX / 2 || (uint64_t)(ro->c.prompts * ro->c.group) > UINT32_MAX / 2)
        return fr_fail(FR_ERR_ARG, "train: --epochs %lld or %lld samples per epoch exceed 2^31",
                       (long long)ro->run.epochs, (long long)(ro->c.prompts * ro->c.group));
    if (ro->c.num_batches % ro->c.grad_accum != 0)
        return fr_fail(FR_ERR_ARG, "train: --num-batches %lld is not a multiple of --grad-accum %lld",
                       (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
    return a->check ? a->check(ro, ao) : FR_OK;
}

/* 1 if dir holds (part of) a run: config.json, audit.log or a file in checkpoints/. The
 * directory a SIGKILL during start-up leaves (the lock file, an empty checkpoints/, a
 * config.json.tmp.*) is not one: nothing there can be resumed, and --out may reuse it. */
static int holds_run(const char *dir)
{
    char p[FR_TRAIN_PATH_MAX + 32];
    struct stat st;
    const char *names[] = {FR_TRAIN_CONFIG_NAME, FR_AUDIT_LOG_NAME};
    for (int i = 0; i < 2; i++)
        if (fr_train_path(p, sizeof p, dir, names[i]) != FR_OK || stat(p, &st) == 0) return 1;
    if (fr_train_path(p, sizeof p, dir, FR_CHECKPOINT_DIR) != FR_OK) return 1;
    DIR *d = opendir(p);
    if (!d) return errno != ENOENT;
    int any = 0;
    for (struct dirent *e; !any && (e = readdir(d)) != NULL;) any = strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return any;
}


void fr_run_result_init(fr_run_result *res)
{
    memset(res, 0, sizeof *res);
    res->acc_before = res->acc_after = res->score_before = res->score_after = NAN;
}

/* r runs algorithm a with options ro / ao in ro->run.out, under env, its private part pv. */
void fr_run_init(fr_run *r, struct fr_run_private *pv, const fr_run_opts *ro, const fr_algo *a, const void *ao,
                 const fr_run_env *env)
{
    memset(r, 0, sizeof *r);
    memset(pv, 0, sizeof *pv);
    pv->lock.fd = -1;
    pv->writer = fr_dist_rank() == 0;
    pv->env = env;
    r->priv = pv;
    r->o = ro;
    r->ao = ao;
    r->algo = a;
    r->dir = ro->run.out;
    r->be = env->be;
}

fr_status fr_run_new(const fr_run_opts *ro_in, const void *ao, const fr_run_env *env, fr_run_result *res)
{
    fr_run_result_init(res);
    const fr_algo *a;
    FR_TRY(fr_algo_find(ro_in->c.algo, &a));
    fr_run_opts ro = *ro_in;
    /* a base given by a relative path is found again from any working directory */
    char absbase[FR_OPT_PATH_MAX];
    if (ro.c.base[0] && ro.c.base[0] != '/' && realpath(ro.c.base, absbase)) snprintf(ro.c.base, sizeof ro.c.base, "%s", absbase);
    /* a reward program's relative paths are the ones of this directory, on resume too */
    if (!getcwd(ro.c.workdir, sizeof ro.c.workdir)) ro.c.workdir[0] = '\0';
    FR_TRY(fr_run_check_opts(&ro, a, ao));
    fr_status s = FR_OK;
    if (fr_dist_rank() == 0 && holds_run(ro.run.out) && !ro.run.force)
        s = fr_fail(FR_ERR_ARG, "train: %s already holds a run (use --resume %s to continue it, or --force to "
                    "replace it)", ro.run.out, ro.run.out);
    FR_TRY(fr_dist_agree(s)); /* rank 0 looked */
    fr_run r;
    struct fr_run_private pv;
    fr_run_init(&r, &pv, &ro, a, ao, env);
    /* rank 0 alone makes, locks and writes the directory (flowrl/dist.h) */
    if (pv.writer) s = make_dirs(&r);
    if (s == FR_OK && pv.writer) s = fr_dir_lock(r.dir, &pv.lock);
    if (s == FR_OK && pv.writer && ro.run.force) s = clear_run(&r); /* under the lock: nobody is writing it */
    if (s == FR_OK) s = fr_run_setup(&r);
    if (s == FR_OK && pv.writer) s = fr_run_write_config(&r);
    if (s == FR_OK && pv.writer) s = fr_run_open_audit(&r);
    if (s == FR_OK) {
        fr_run_header(&r);
        s = fr_run_eval_current(&r, "before", 0, &res->acc_before, &res->score_before);
        if (s == FR_OK && ro.ev.eval_n > 0) s = fr_train_curve_push_eval(&pv.curve, 0.0, res->acc_before);
    }
    if (s == FR_OK) s = fr_run_loop(&r, 0, res);
    return fr_run_finish(&r, s, 1);
}
