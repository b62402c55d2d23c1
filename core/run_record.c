/* What an algorithm calls on its run (flowrl/run.h "the run as an algorithm sees it"):
 * audit records and the tap, metrics, info lines, the optimiser step, rewards, advantages,
 * prompts and the finiteness check. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model_dist.h"
#include "core/run_internal.h"
#include "flowrl/advantage.h"
#include "flowrl/digest.h"
#include "flowrl/dist.h"
#include "flowrl/optim_step.h"
#include "flowrl/philox.h"
#include "flowrl/profile.h"
#include "flowrl/reward_cmd.h"

/* Whether a record is written (rank 0) or tapped: the other ranks skip its copy and digest. */
static int recorded(const fr_run *r) { return r->priv->writer || r->priv->env->tap; }

static fr_status rec_tensor(fr_run *r, const char *name, const fr_tensor *v)
{
    if (r->priv->writer) FR_TRY(fr_audit_tensor(r->priv->audit, name, v));
    const fr_run_env *env = r->priv->env;
    return env->tap ? env->tap(r->priv->rec_step, name, v, env->tap_user) : FR_OK;
}

fr_status fr_run_rec_tensor(fr_run *r, const char *name, const fr_tensor *v)
{
    fr_profile_begin(FR_PROF_AUDIT);
    fr_status s = rec_tensor(r, name, v);
    fr_profile_end(FR_PROF_AUDIT);
    return s;
}

static fr_status rec_scalar(fr_run *r, const char *name, float x)
{
    if (r->priv->writer) FR_TRY(fr_audit_scalar_f32(r->priv->audit, name, x));
    const fr_run_env *env = r->priv->env;
    fr_tensor v = fr_tensor_f32(&x, 0, NULL);
    return env->tap ? env->tap(r->priv->rec_step, name, &v, env->tap_user) : FR_OK;
}

fr_status fr_run_rec_scalar(fr_run *r, const char *name, float x)
{
    fr_profile_begin(FR_PROF_AUDIT);
    fr_status s = rec_scalar(r, name, x);
    fr_profile_end(FR_PROF_AUDIT);
    return s;
}

fr_status fr_run_rec_f32(fr_run *r, const char *name, const float *p, int nd, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t sh[3] = {d0, d1, d2};
    fr_tensor v = fr_tensor_f32((float *)p, nd, sh); /* digested and tapped, never written */
    return fr_run_rec_tensor(r, name, &v);
}

fr_status fr_run_host_copy(fr_run *r, const fr_tensor *v, fr_tensor *host)
{
    FR_TRY(fr_tensor_alloc(host, v->dtype, v->ndim, v->shape));
    fr_status s = fr_d2h(r->be, host->data, v->data, fr_tensor_nbytes(v));
    if (s != FR_OK) fr_tensor_free(host);
    else r->priv->record_bytes += fr_tensor_nbytes(v);
    return s;
}

fr_status fr_run_save_params(fr_run *r, fr_st_file *f, const char *prefix, const fr_tensor *vals)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < r->pol.n_params; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, r->pol.params[i].name);
        fr_tensor h; /* copied out of backend memory */
        FR_TRY(fr_run_host_copy(r, &vals[i], &h));
        fr_status s = fr_st_add_take(f, name, &h);
        fr_tensor_free(&h);
        FR_TRY(s);
    }
    return FR_OK;
}

fr_status fr_run_load_params(fr_run *r, const fr_st_file *f, const char *path, const char *prefix, fr_tensor *vals)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < r->pol.n_params; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, r->pol.params[i].name);
        const fr_tensor *v = fr_st_get(f, name);
        if (!v || v->dtype != FR_F32 || fr_tensor_numel(v) != fr_tensor_numel(&vals[i]))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor %s missing or of the wrong shape", path, name);
        FR_TRY(fr_h2d(r->be, vals[i].data, v->data, fr_tensor_nbytes(v)));
    }
    return FR_OK;
}

fr_status fr_run_reward_input(fr_run *r, float *host, const float *dev, int64_t n)
{
    const size_t bytes = (size_t)n * sizeof *host;
    FR_TRY(fr_d2h(r->be, host, dev, bytes));
    r->priv->reward_bytes += bytes;
    return FR_OK;
}

/* v copied out into the run's record buffer (grown as needed, kept for the next record): what
 * fr_run_host_copy does, without a fresh allocation per record. A backend whose memory is the
 * host's (ref, opt) lends v itself: the digest reads the same bytes, and nothing crosses. */
static fr_status rec_host_copy(fr_run *r, const fr_tensor *v, fr_tensor *host)
{
    const size_t nb = fr_tensor_nbytes(v);
    struct fr_run_private *pv = r->priv;
    *host = *v;
    host->owned = 0;
    host->device = FR_DEVICE_CPU;
    if (!r->be->device) return FR_OK;
    if (nb > pv->rec_host_cap) {
        void *p = malloc(nb);
        if (!p) return fr_fail(FR_ERR_NOMEM, "out of memory for a %zu-byte audit record", nb);
        free(pv->rec_host);
        pv->rec_host = p;
        pv->rec_host_cap = nb;
    }
    host->data = pv->rec_host;
    if (nb) FR_TRY(fr_d2h(r->be, host->data, v->data, nb));
    pv->record_bytes += nb;
    return FR_OK;
}

fr_status fr_run_rec_dev(fr_run *r, const char *name, const fr_tensor *v)
{
    if (!recorded(r)) return FR_OK;
    fr_tensor h;
    fr_profile_begin(FR_PROF_AUDIT); /* its copy out is a copy (flowrl/profile.h: self times) */
    fr_status s = rec_host_copy(r, v, &h);
    if (s == FR_OK) s = fr_run_rec_tensor(r, name, &h);
    fr_profile_end(FR_PROF_AUDIT);
    return s;
}

fr_status fr_run_rec_dev_f32(fr_run *r, const char *name, const float *p, int nd, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t sh[3] = {d0, d1, d2};
    fr_tensor v = fr_tensor_f32((float *)p, nd, sh); /* read through fr_d2h only */
    return fr_run_rec_dev(r, name, &v);
}

static fr_status rec_params_one_by_one(fr_run *r, const char *prefix, const fr_tensor *vals)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < r->pol.n_params; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, r->pol.params[i].name);
        FR_TRY(fr_run_rec_dev(r, name, &vals[i]));
    }
    return FR_OK;
}

typedef struct {
    char name[FR_AUDIT_MAX_NAME + 1];
    fr_tensor t; /* a view of host memory */
    uint64_t digest;
} rec_job;

typedef struct {
    rec_job *jobs;
    const int64_t *order; /* the largest first: a thread that finishes early takes the small ones */
} rec_jobs;

static void digest_job(void *ctx, int64_t i)
{
    const rec_jobs *js = ctx;
    rec_job *j = &js->jobs[js->order[i]];
    if (fr_tensor_numel(&j->t) == 0 || j->t.data) j->digest = fr_tensor_digest(&j->t); /* else refused when written */
}

/* order: 0 .. n-1 by tensor size, the largest first (ties in order): an insertion sort, as a
 * step's records are tens. */
static void larger_first(const rec_job *jobs, int64_t *order, int64_t n)
{
    for (int64_t q = 0; q < n; q++) {
        const size_t b = fr_tensor_nbytes(&jobs[q].t);
        int64_t k = q;
        for (; k > 0 && fr_tensor_nbytes(&jobs[order[k - 1]].t) < b; k--) order[k] = order[k - 1];
        order[k] = q;
    }
}

/* The records of n jobs on a host backend whose run writes the log: every tensor's digest
 * first, as jobs on the backend's host threads (fr_host_for: the digests are independent),
 * then the records in order, each written with its digest and tapped, as the one-by-one
 * path writes them. */
static fr_status rec_jobs_host(fr_run *r, rec_job *jobs, int64_t n)
{
    int64_t *order = fr_malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return FR_ERR_NOMEM;
    larger_first(jobs, order, n);
    rec_jobs js = {jobs, order};
    fr_host_for(r->be, n, digest_job, &js);
    free(order);
    const fr_run_env *env = r->priv->env;
    for (int64_t q = 0; q < n; q++) {
        FR_TRY(fr_audit_tensor_digested(r->priv->audit, jobs[q].name, &jobs[q].t, jobs[q].digest));
        if (env->tap) FR_TRY(env->tap(r->priv->rec_step, jobs[q].name, &jobs[q].t, env->tap_user));
    }
    return FR_OK;
}

static void job_set(rec_job *j, const char *prefix, const char *name, const fr_tensor *t)
{
    snprintf(j->name, sizeof j->name, "%s%s", prefix, name);
    j->t = *t;
    j->t.owned = 0;
    j->t.device = FR_DEVICE_CPU; /* a host backend's memory (rec_host_copy lends it the same way) */
    j->digest = 0;
}

/* Whether the records go through rec_jobs_host: a host backend (its memory is read in place)
 * and a run that writes the log. */
static int digests_on_threads(const fr_run *r) { return !r->be->device && r->priv->writer; }

fr_status fr_run_rec_many(fr_run *r, int n, const fr_run_rec_item *items)
{
    if (!digests_on_threads(r)) { /* a device backend's tensors copied out one by one (fr_d2h), or only tapped */
        for (int i = 0; i < n; i++)
            FR_TRY(items[i].dev ? fr_run_rec_dev(r, items[i].name, &items[i].t) : fr_run_rec_tensor(r, items[i].name, &items[i].t));
        return FR_OK;
    }
    rec_job *jobs = fr_malloc((size_t)(n ? n : 1) * sizeof *jobs);
    if (!jobs) return FR_ERR_NOMEM;
    for (int i = 0; i < n; i++) job_set(&jobs[i], "", items[i].name, &items[i].t);
    fr_profile_begin(FR_PROF_AUDIT);
    const fr_status s = rec_jobs_host(r, jobs, n);
    fr_profile_end(FR_PROF_AUDIT);
    free(jobs);
    return s;
}

fr_status fr_run_rec_param_lists(fr_run *r, int k, const char *const *prefix, const fr_tensor *const *vals)
{
    if (!recorded(r)) return FR_OK;
    if (!digests_on_threads(r)) {
        for (int l = 0; l < k; l++) FR_TRY(rec_params_one_by_one(r, prefix[l], vals[l]));
        return FR_OK;
    }
    const int n = r->pol.n_params;
    const int64_t nj = (int64_t)k * n;
    rec_job *jobs = fr_malloc((size_t)(nj ? nj : 1) * sizeof *jobs);
    if (!jobs) return FR_ERR_NOMEM;
    for (int64_t q = 0; q < nj; q++) job_set(&jobs[q], prefix[q / n], r->pol.params[q % n].name, &vals[q / n][q % n]);
    fr_profile_begin(FR_PROF_AUDIT);
    const fr_status s = rec_jobs_host(r, jobs, nj);
    fr_profile_end(FR_PROF_AUDIT);
    free(jobs);
    return s;
}

fr_status fr_run_rec_params(fr_run *r, const char *prefix, const fr_tensor *vals)
{
    return fr_run_rec_param_lists(r, 1, &prefix, &vals);
}

void fr_run_metric(fr_run *r, const char *key, double value)
{
    fr_run_epoch_event *ev = &r->priv->ev;
    for (int k = 0; k < ev->n; k++)
        if (strcmp(ev->m[k].key, key) == 0) {
            ev->m[k].value = value;
            return;
        }
    if (ev->n < FR_RUN_MAX_METRICS && strlen(key) < sizeof r->priv->metric_keys[0]) {
        char *copy = r->priv->metric_keys[ev->n];
        strcpy(copy, key);
        ev->m[ev->n++] = (fr_metric){copy, value};
        return;
    }
    /* a programming error (an algorithm records more keys than the event holds): loud, never silent */
    fprintf(stderr, "flowrl: internal error: metric '%s' dropped: an epoch holds at most %d metrics (FR_RUN_MAX_METRICS) "
            "of at most %zu characters\n", key, FR_RUN_MAX_METRICS, sizeof r->priv->metric_keys[0] - 1);
    abort();
}

/* The epoch's crossings of the host/backend boundary (flowrl/backend.h), as metrics: what a
 * device backend pays per epoch beyond its kernels. */
void fr_run_copy_metrics(fr_run *r, const fr_copy_stats *start, uint64_t record0, uint64_t reward0)
{
    const fr_copy_stats d = fr_copy_stats_since(&r->be->copies, start);
    fr_run_metric(r, "copies.h2d_calls", (double)d.h2d_calls);
    fr_run_metric(r, "copies.h2d_bytes", (double)d.h2d_bytes);
    fr_run_metric(r, "copies.d2h_calls", (double)d.d2h_calls);
    fr_run_metric(r, "copies.d2h_bytes", (double)d.d2h_bytes);
    /* of which: the audit log's and checkpoints' tensors, and the reward's input */
    fr_run_metric(r, "copies.d2h_record_bytes", (double)(r->priv->record_bytes - record0));
    fr_run_metric(r, "copies.d2h_reward_bytes", (double)(r->priv->reward_bytes - reward0));
}

/* The epoch's rows through the network (flowrl/backend.h fr_work_stats), and the run's
 * forward-equivalents so far (a backward row costs two forwards), kept across --resume by
 * the checkpoints (fr_run_save_checkpoint). The held-out evaluations run outside the epoch
 * and are not counted. */
void fr_run_nfe_metrics(fr_run *r, const fr_work_stats *start)
{
    const fr_work_stats d = fr_work_stats_since(&r->be->work, start);
    r->priv->nfe_total += d.fwd_rows + 2 * d.bwd_rows;
    fr_run_metric(r, "nfe.forward_rows", (double)d.fwd_rows);
    fr_run_metric(r, "nfe.backward_rows", (double)d.bwd_rows);
    fr_run_metric(r, "nfe.total", (double)r->priv->nfe_total);
}

void fr_run_free_bufs(fr_backend *be, void *const *dev, size_t n_dev, void *const *host, size_t n_host)
{
    for (size_t i = 0; be && i < n_dev; i++) fr_dev_free(be, dev[i]);
    for (size_t i = 0; i < n_host; i++) free(host[i]);
}

double fr_run_event_get(const fr_run_epoch_event *ev, const char *key)
{
    for (int k = 0; k < ev->n; k++)
        if (strcmp(ev->m[k].key, key) == 0) return ev->m[k].value;
    return NAN;
}

void fr_run_info(const fr_run *r, const char *fmt, ...)
{
    const fr_run_cb *cb = r->priv->env->cb;
    if (!cb || !cb->on_info) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cb->on_info(line, cb->user);
}

void fr_run_update(const fr_run *r, const fr_run_update_event *ev)
{
    const fr_run_cb *cb = r->priv->env->cb;
    if (cb && cb->on_update) cb->on_update(ev, cb->user);
}

/* ---- the optimiser step ------------------------------------------------------------------ */

typedef struct {
    fr_run *r;
    int64_t u;
} step_tap;

/* u<k>.grad_norm and the clipped gradients u<k>.grad.<NAME>, before AdamW */
static fr_status audit_grads(float gn, void *user)
{
    step_tap *st = user;
    char name[FR_AUDIT_MAX_NAME + 1];
    snprintf(name, sizeof name, "u%lld.grad_norm", (long long)st->u);
    FR_TRY(fr_run_rec_scalar(st->r, name, gn));
    snprintf(name, sizeof name, "u%lld.grad.", (long long)st->u);
    return fr_run_rec_params(st->r, name, st->r->pol.grads);
}

/* An environment algorithm's step over its AdamW groups: the global-norm clip of the whole list,
 * the records, then AdamW on each group's slice of the list and of the moments at the group's lr
 * and weight decay; the groups share one step count (no EMA: check_opts refuses it). */
static fr_status group_step(fr_run *r, const fr_optim_step_cfg *c, step_tap *st, const char *what, float *gn)
{
    *gn = NAN;
    if (c->max_grad_norm > 0.0f) {
        fr_status s = fr_clip_grad_norm(r->be, r->pol.params, r->pol.n_params, c->max_grad_norm, gn);
        if (s != FR_OK) return fr_fail(s, "%s: the gradient norm is %g", what, (double)*gn);
    }
    FR_TRY(audit_grads(*gn, st));
    const int64_t step = r->adam.step;
    for (int g = 0; g < r->n_groups; g++) {
        const fr_run_group *gr = &r->groups[g];
        fr_adamw_state view = r->adam;
        view.n = gr->n;
        view.m = r->adam.m + gr->first;
        view.v = r->adam.v + gr->first;
        view.step = step;
        fr_adamw_cfg a = c->adamw;
        if (gr->weight_decay >= 0.0) a.weight_decay = gr->weight_decay;
        FR_TRY(fr_adamw_step(r->be, &view, r->pol.params + gr->first, gr->n, &a, gr->lr > 0.0 ? gr->lr : c->lr));
    }
    r->adam.step = step + 1;
    return FR_OK;
}

static fr_status whole_params(void *user)
{
    fr_run *r = ((step_tap *)user)->r;
    return fr_model_dist_whole_params(FR_OK, &r->pol, &r->adam);
}

fr_status fr_run_optimizer_step(fr_run *r, int64_t u, float *gn)
{
    const fr_optim_opts *o = &r->o->opt;
    fr_optim_step_cfg c;
    memset(&c, 0, sizeof c);
    c.max_grad_norm = o->max_grad_norm;
    c.adamw = (fr_adamw_cfg){o->adam_beta1, o->adam_beta2, o->adam_eps, o->weight_decay};
    /* the schedule runs over the run's nominal optimiser steps: epochs × ⌈num_batches /
     * grad_accum⌉ (an epoch whose samples were all filtered out takes fewer) */
    const fr_run_common *rc = &r->o->c;
    /* an environment algorithm steps once per epoch */
    const int64_t per_epoch = r->algo->on_env ? 1 : (rc->num_batches + rc->grad_accum - 1) / rc->grad_accum;
    const int64_t total = per_epoch * r->o->run.epochs;
    /* --warmup -1: min(100, total / 10), pretraining's rule */
    const int64_t warmup = o->warmup >= 0 ? o->warmup : (total / 10 < 100 ? total / 10 : 100);
    c.lr = fr_lr_at(o->lr, o->lr_min, (int)o->lr_schedule, warmup, r->adam.step, total);
    c.ema_decay = r->have_ema ? o->ema_decay : -1.0f;
    c.ema_every = o->ema_every;
    c.ema_rule = FR_EMA_FIXED;
    char what[64];
    snprintf(what, sizeof what, "train: epoch %lld, update %lld", (long long)r->epoch + 1, (long long)u);
    step_tap st = {r, u};
    if (r->n_groups > 0) return group_step(r, &c, &st, what, gn);
    /* many processes: each rank computed its rows of the weight gradients and updates its share
     * of every tensor (docs/determinism.md "Many processes") */
    c.part = r->pol.dw_part;
    c.parts = r->pol.dw_parts;
    c.whole = whole_params;
    if (c.parts > 1) FR_TRY(fr_model_dist_whole_grads(FR_OK, &r->pol));
    return fr_optim_step(r->be, r->pol.params, r->pol.n_params, &r->adam, r->have_ema ? &r->ema : NULL, &c,
                         audit_grads, &st, what, gn);
}

/* ---- rewards, advantages, prompts --------------------------------------------------------- */

fr_status fr_run_rewards(fr_run *r, int64_t N, const int *pid, const float *x, float *reward, int *correct)
{
    double acc = NAN;
    fr_profile_begin(FR_PROF_REWARDS);
    fr_status rs = fr_run_reward_split(r, N, pid, x, reward, correct);
    fr_profile_end(FR_PROF_REWARDS);
    FR_TRY(rs);
    if (!r->rcmd) {
        int64_t c = 0;
        for (int64_t s = 0; s < N; s++) c += correct[s] != 0;
        acc = (double)c / (double)N;
    }
    FR_TRY(fr_run_rec_f32(r, "rewards", reward, 1, N, 1, 1));
    float mean, std;
    FR_TRY(fr_adv_mean_std(reward, N, &mean, &std));
    FR_TRY(fr_run_rec_scalar(r, "reward_mean", mean));
    FR_TRY(fr_run_rec_scalar(r, "reward_std", std));
    fr_run_metric(r, "reward_mean", mean);
    fr_run_metric(r, "reward_std", std);
    fr_run_metric(r, "accuracy", acc);
    return FR_OK;
}

static fr_status score(fr_run *r, int64_t n, const int *pid, const float *x, float *reward)
{
    if (r->rcmd) return fr_reward_cmd_score_task(r->rcmd, r->task, (uint32_t)r->epoch, n, pid, x, reward);
    int *correct = fr_malloc((size_t)n * sizeof *correct);
    if (!correct) return FR_ERR_NOMEM;
    fr_status s = fr_task_reward_batch(r->task, r->reward_id, n, pid, x, reward, correct);
    free(correct);
    return s;
}

fr_status fr_run_score(fr_run *r, int64_t n, const int *pid, const float *x, float *reward)
{
    fr_profile_begin(FR_PROF_REWARDS);
    fr_status s = score(r, n, pid, x, reward);
    fr_profile_end(FR_PROF_REWARDS);
    return s;
}

fr_status fr_run_advantages(fr_run *r, int64_t N, const float *reward, const int64_t *group, float *adv)
{
    const fr_run_common *c = &r->o->c;
    if (c->adv == FR_TRAIN_ADV_PROMPT)
        FR_TRY(fr_adv_per_prompt(N, reward, group, c->global_std, FR_ADV_EPS_FLOW_GRPO, adv));
    else if (c->adv == FR_TRAIN_ADV_BATCH)
        FR_TRY(fr_adv_batch(N, reward, FR_ADV_EPS_FLOW_GRPO, adv));
    else
        FR_TRY(fr_ddpo_tracker_update(r->priv->ddpo, N, reward, group, adv));
    return fr_run_rec_f32(r, "adv", adv, 1, N, 1, 1);
}

fr_status fr_run_rollout_cfg(const fr_run *r, fr_rollout_cfg *rc, fr_rollout_schedule *sched)
{
    const fr_sampling_opts *smp = &r->o->smp;
    *rc = fr_rollout_cfg_default(smp->sampler);
    rc->T = smp->num_steps;
    rc->noise = smp->noise_level;
    rc->cfg = smp->cfg;
    rc->seed = r->o->run.seed;
    rc->batch = smp->rollout_batch;
    if (smp->sampler == FR_SAMPLER_DDIM) rc->alpha_bar = r->priv->alpha_bar;
    return fr_rollout_schedule_make(rc, smp->grid, smp->shift, r->priv->ddpm_n_train, smp->ddim_offset, sched);
}

const float *fr_run_alpha_bar(const fr_run *r, int64_t *n_train)
{
    *n_train = r->priv->alpha_bar ? r->priv->ddpm_n_train : 0;
    return r->priv->alpha_bar;
}

fr_status fr_run_prompts(fr_run *r, int *prompts)
{
    const uint32_t e = (uint32_t)r->epoch;
    int64_t P = r->o->c.prompts;
    for (int64_t p = 0; p < P; p++)
        prompts[p] = (int)(fr_rng_u32(r->o->run.seed, FR_RNG_PROMPTS, e, (uint32_t)p, 0, 0) % (uint32_t)r->task->n_train);
    fr_tensor pt = fr_tensor_view(prompts, FR_I32, 1, &P);
    return fr_run_rec_tensor(r, "prompts", &pt);
}

typedef struct {
    uint32_t w;
    int64_t i;
} shuf_key;

static int shuf_cmp(const void *a, const void *b)
{
    const shuf_key *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

fr_status fr_run_shuffle(const fr_run *r, int64_t N, const uint8_t *keep, int64_t *order, int64_t *K)
{
    shuf_key *k = fr_malloc((size_t)(N ? N : 1) * sizeof *k);
    if (!k) return FR_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t i = 0; i < N; i++)
        if (!keep || keep[i])
            k[n++] = (shuf_key){fr_rng_u32(r->o->run.seed, FR_RNG_SHUFFLE, (uint32_t)r->epoch, 0, 0, (uint32_t)i), i};
    qsort(k, (size_t)n, sizeof *k, shuf_cmp);
    for (int64_t j = 0; j < n; j++) order[j] = k[j].i;
    free(k);
    *K = n;
    return FR_OK;
}

fr_status fr_run_check_finite(fr_run *r, const char *what, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            r->priv->state_nonfinite = 1;
            return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: %s[%lld] is %g (the policy diverged)",
                           (long long)r->epoch + 1, what, (long long)i, (double)x[i]);
        }
    return FR_OK;
}

fr_status fr_run_samples_alloc(fr_run *r, fr_run_samples *s)
{
    memset(s, 0, sizeof *s);
    const int64_t P = r->o->c.prompts, N = P * r->o->c.group, D = r->pol.cfg.D;
    s->N = N, s->D = D, s->be = r->be;
    if (!(s->x = fr_dev_floats(r->be, N * D)) || !(s->prompts = fr_calloc((size_t)P, sizeof *s->prompts)) ||
        !(s->pid = fr_calloc((size_t)N, sizeof *s->pid)) || !(s->correct = fr_calloc((size_t)N, sizeof *s->correct)) ||
        !(s->sid = fr_calloc((size_t)N, sizeof *s->sid)) || !(s->group = fr_calloc((size_t)N, sizeof *s->group)) ||
        !(s->x_h = fr_calloc((size_t)(N * D), sizeof *s->x_h)) || !(s->reward = fr_calloc((size_t)N, sizeof *s->reward)) ||
        !(s->adv = fr_calloc((size_t)N, sizeof *s->adv))) {
        fr_run_samples_free(s);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_run_samples_free(fr_run_samples *s)
{
    if (s->be) fr_dev_free(s->be, s->x);
    void *h[] = {s->prompts, s->pid, s->correct, s->sid, s->group, s->x_h, s->reward, s->adv};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    memset(s, 0, sizeof *s);
}

fr_status fr_run_samples_epoch(fr_run *r, const fr_model *m, fr_rollout_cfg *rc, fr_run_samples *s)
{
    const int64_t N = s->N, D = s->D, G = r->o->c.group;
    FR_TRY(fr_run_prompts(r, s->prompts));
    for (int64_t k = 0; k < N; k++) {
        s->pid[k] = s->prompts[k / G];
        s->sid[k] = (uint32_t)k;
        s->group[k] = s->pid[k];
    }
    rc->c0 = (uint32_t)r->epoch;
    FR_TRY(fr_run_rollout(r, m, rc, N, s->pid, s->sid, s->x, NULL));
    FR_TRY(fr_run_reward_input(r, s->x_h, s->x, N * D));
    FR_TRY(fr_run_check_finite(r, "rollout sample", s->x_h, N * D));
    FR_TRY(fr_run_rec_f32(r, "samples", s->x_h, 2, N, D, 1));
    FR_TRY(fr_run_rewards(r, N, s->pid, s->x_h, s->reward, s->correct));
    return fr_run_advantages(r, N, s->reward, s->group, s->adv);
}
