/* The Flow-GRPO training loop (flowrl/grpo_train.h; spec/objectives.md §1.1, §2, §3, §22;
 * spec/samplers.md §3, §4, §10, §15).
 *
 * audit.log records of epoch e (step N = e + 1), in this order:
 *   window (I64 [start, len]), prompts (I32 (P,)), noise.x_T (N, D), noise.xi (T, N, D: ξ_i of
 *   each step by coordinate, 0 where the step draws none), traj (T+1, N, D), mean (T, N, D),
 *   logp_old (T, N), rewards (N,), reward_mean, reward_std, adv (N,), keep (U8 (N,)),
 *   order (I64 (K,), the kept samples in batch order; absent when K = 0), then for each
 *   optimizer step k: u<k>.ratio ((grad_accum, n_trained, b)), u<k>.loss, u<k>.grad_norm,
 *   u<k>.grad.<NAME> (after clipping); then kl, clipfrac, approx_kl and the state after the
 *   epoch under the checkpoint's names: <NAME>, ema.<NAME> (EMA on), optim.m.<NAME>,
 *   optim.v.<NAME>. */
#include "flowrl/grpo_train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/grpo_train_internal.h"
#include "flowrl/advantage.h"
#include "flowrl/audit.h"
#include "flowrl/buildinfo.h"
#include "flowrl/checkpoint.h"
#include "flowrl/cond.h"
#include "flowrl/digest.h"
#include "flowrl/evaluate.h"
#include "flowrl/philox.h"
#include "flowrl/progress.h"
#include "flowrl/reward_cmd.h"

typedef struct {
    fr_grpo_train_opts o;
    const char *dir;
    const fr_ops *ops;
    int threads;
    const fr_grpo_train_cb *cb;
    const fr_task *task;
    int reward_id;      /* built-in reward; -1 with an external program */
    int eval_reward_id;
    fr_reward_cmd *rcmd;
    fr_model pol, ref;
    int have_pol, have_ref, have_ws, have_ws_ref, have_opt, have_ema;
    fr_model_ws ws, ws_ref;
    fr_adamw_state opt;
    fr_ema ema;
    fr_ddpo_tracker *ddpo;
    fr_mix_window mix;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    char base_digest[17];
    fr_audit *audit;
    fr_train_record_fn tap; /* fr_grpo_train_run_tap; NULL otherwise */
    void *tap_user;
    int64_t rec_step;       /* the audit step being written */
    fr_train_curve curve;
    int cfg_on;
    int64_t N, D, S, T, bmax;
    /* epoch buffers */
    float *step_noise;               /* (T,) */
    int *prompts, *pid, *correct;    /* (P,), (N,), (N,) */
    uint32_t *sid;                   /* (N,) */
    int64_t *group, *order;          /* (N,) */
    float *traj, *mean, *logp, *x, *xi; /* (T+1,N,D), (T,N,D), (T,N), (N,D), (T,N,D) */
    float *reward, *adv;             /* (N,) */
    uint8_t *keep;                   /* (N,) */
    /* micro-batch buffers, b <= bmax rows (2b with CFG) */
    float *bx, *bxn, *bmo, *blo, *badv, *bin, *bt, *bout, *bv, *bmean, *blogp, *bglogp, *bgmean, *bdout,
        *bvref, *bmref, *ratios;
    int32_t *bc;
} tr;

/* ---- setup ------------------------------------------------------------------------------- */

static fr_status file_digest(const char *path, char hex[17])
{
    char *buf;
    size_t len;
    FR_TRY(fr_train_read_file(path, &buf, &len));
    fr_digest_hex(fr_digest_bytes(buf, len), hex);
    free(buf);
    return FR_OK;
}

static void tr_free(tr *t)
{
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_opt) fr_adamw_state_free(&t->opt);
    if (t->have_ema) fr_ema_free(&t->ema);
    if (t->have_pol) fr_model_free(&t->pol);
    if (t->have_ref) fr_model_free(&t->ref);
    fr_ddpo_tracker_free(t->ddpo);
    fr_rollout_schedule_free(&t->sched);
    fr_train_curve_free(&t->curve);
    void *bufs[] = {t->step_noise, t->prompts, t->pid, t->correct, t->sid, t->group, t->order, t->traj, t->mean,
                    t->logp, t->x, t->xi, t->reward, t->adv, t->keep, t->bx, t->bxn, t->bmo, t->blo, t->badv,
                    t->bin, t->bt, t->bout, t->bv, t->bmean, t->blogp, t->bglogp, t->bgmean, t->bdout,
                    t->bvref, t->bmref, t->ratios, t->bc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

static void info(const tr *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void info(const tr *t, const char *fmt, ...)
{
    if (!t->cb || !t->cb->on_info) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    t->cb->on_info(line, t->cb->user);
}

#define ALLOC(p, n) (((p) = fr_calloc((size_t)(n), sizeof *(p))) != NULL)

/* Loads the base into the policy (and the frozen reference), builds the sampler config
 * and allocates every buffer. */
static fr_status tr_setup(tr *t)
{
    const fr_grpo_train_opts *o = &t->o;
    FR_TRY(file_digest(o->base, t->base_digest));
    fr_infer_ckpt ck;
    FR_TRY(fr_infer_ckpt_load(&ck, o->base, !o->base_raw, o->task[0] ? o->task : NULL));
    t->pol = ck.model;
    t->have_pol = 1;
    t->task = ck.task;
    ck.model.params = NULL; /* ownership moved to t->pol */
    fr_infer_ckpt_free(&ck);
    if (t->pol.cfg.pred != FR_PRED_VELOCITY)
        return fr_fail(FR_ERR_ARG, "%s: training needs a velocity (flow-matching) model, this one predicts %s", o->base,
                       fr_pred_name(t->pol.cfg.pred));
    snprintf(t->o.task, sizeof t->o.task, "%s", t->task->name);

    /* reward */
    t->reward_id = 0;
    const char *prog = fr_reward_cmd_program(o->reward);
    if (prog) {
        t->reward_id = -1;
        fr_reward_cmd_opts ro = {0.0, t->task->C, t->task->H, t->task->W};
        FR_TRY(fr_reward_cmd_open(prog, &ro, &t->rcmd));
    } else if (o->reward[0]) {
        FR_TRY(fr_task_reward_id(t->task, o->reward, &t->reward_id));
    }
    t->eval_reward_id = t->reward_id >= 0 ? t->reward_id : 0;

    t->D = t->pol.cfg.D;
    t->S = t->pol.cfg.n_slots;
    t->T = o->T;
    t->N = o->P * o->G;
    t->bmax = t->N / o->num_batches;
    t->cfg_on = fr_train_cfg_on(o);
    const int64_t N = t->N, D = t->D, T = t->T, R = t->cfg_on ? 2 * t->bmax : t->bmax;

    if (o->beta > 0.0f) {
        FR_TRY(fr_model_alloc(&t->ref, &t->pol.cfg));
        t->have_ref = 1;
        for (int i = 0; i < t->pol.n_params; i++)
            memcpy(t->ref.values[i].data, t->pol.values[i].data, fr_tensor_nbytes(&t->pol.values[i]));
        FR_TRY(fr_model_ws_alloc(&t->ws_ref, &t->ref, R, 0));
        t->have_ws_ref = 1;
    }
    FR_TRY(fr_model_ws_alloc(&t->ws, &t->pol, R, 1));
    t->have_ws = 1;
    FR_TRY(fr_adamw_state_init(&t->opt, t->pol.params, t->pol.n_params));
    t->have_opt = 1;
    if (o->ema >= 0.0f) {
        FR_TRY(fr_ema_init(t->ops, &t->ema, t->pol.params, t->pol.n_params));
        t->have_ema = 1;
    }
    if (o->adv == FR_TRAIN_ADV_DDPO)
        FR_TRY(fr_ddpo_tracker_new(o->ddpo_buffer, o->ddpo_min_count, FR_ADV_EPS_DDPO, &t->ddpo));
    if (o->window == FR_TRAIN_WINDOW_MIX) {
        FR_TRY(fr_mix_window_init(&t->mix, T));
        t->mix.window = o->mix_w;
        t->mix.iters_per_group = o->mix_iters;
    }

    t->rc = fr_rollout_cfg_default(o->sampler);
    t->rc.T = T;
    t->rc.noise = o->noise;
    t->rc.cfg = o->cfg;
    t->rc.seed = o->seed;
    t->rc.batch = o->rollout_batch;
    FR_TRY(fr_rollout_schedule_make(&t->rc, o->grid, o->shift, 0, 0, &t->sched));

    int64_t nt_max = T; /* trained steps per epoch are at most T */
    if (!ALLOC(t->step_noise, T) || !ALLOC(t->prompts, o->P) || !ALLOC(t->pid, N) || !ALLOC(t->correct, N) ||
        !ALLOC(t->sid, N) || !ALLOC(t->group, N) || !ALLOC(t->order, N) || !ALLOC(t->traj, (T + 1) * N * D) ||
        !ALLOC(t->mean, T * N * D) || !ALLOC(t->logp, T * N) || !ALLOC(t->x, N * D) || !ALLOC(t->xi, T * N * D) ||
        !ALLOC(t->reward, N) || !ALLOC(t->adv, N) || !ALLOC(t->keep, N) || !ALLOC(t->bx, t->bmax * D) ||
        !ALLOC(t->bxn, t->bmax * D) || !ALLOC(t->bmo, t->bmax * D) || !ALLOC(t->blo, t->bmax) ||
        !ALLOC(t->badv, t->bmax) || !ALLOC(t->bin, R * D) || !ALLOC(t->bt, R) || !ALLOC(t->bout, R * D) ||
        !ALLOC(t->bv, t->bmax * D) || !ALLOC(t->bmean, t->bmax * D) || !ALLOC(t->blogp, t->bmax) ||
        !ALLOC(t->bglogp, t->bmax) || !ALLOC(t->bgmean, t->bmax * D) || !ALLOC(t->bdout, R * D) ||
        !ALLOC(t->bvref, R * D) || !ALLOC(t->bmref, t->bmax * D) || !ALLOC(t->ratios, o->grad_accum * nt_max * t->bmax) ||
        !ALLOC(t->bc, R * t->S))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- one epoch --------------------------------------------------------------------------- */

/* Trained steps [start, start + len) and the per-step noise of epoch e. */
static fr_status epoch_window(tr *t, uint32_t e, int64_t *start, int64_t *len)
{
    const fr_grpo_train_opts *o = &t->o;
    if (o->window == FR_TRAIN_WINDOW_NONE) {
        *start = 0;
        FR_TRY(fr_train_steps(t->T, o->timestep_fraction, len));
        t->rc.step_noise = NULL; /* FG: every step stochastic, the first T_train trained */
        return FR_OK;
    }
    if (o->window == FR_TRAIN_WINDOW_FAST)
        /* one draw per epoch: flowrl rolls out an epoch in one call (call = 0, rank = 0) */
        FR_TRY(fr_fast_window(o->seed, e, 0, 0, t->T, o->fast_r0, fr_train_fast_r1(o), o->fast_w, start, len));
    else
        fr_mix_window_get(&t->mix, start, len);
    for (int64_t i = 0; i < t->T; i++) t->step_noise[i] = (i >= *start && i < *start + *len) ? o->noise : 0.0f;
    t->rc.step_noise = t->step_noise;
    return FR_OK;
}

/* Every audit record goes through these two, so that fr_grpo_train_run_tap's tap sees each
 * one with the bits that were digested. */
static fr_status rec_tensor(tr *t, const char *name, const fr_tensor *v)
{
    FR_TRY(fr_audit_tensor(t->audit, name, v));
    return t->tap ? t->tap(t->rec_step, name, v, t->tap_user) : FR_OK;
}

static fr_status rec_scalar(tr *t, const char *name, float x)
{
    FR_TRY(fr_audit_scalar_f32(t->audit, name, x));
    fr_tensor v = fr_tensor_f32(&x, 0, NULL);
    return t->tap ? t->tap(t->rec_step, name, &v, t->tap_user) : FR_OK;
}

static fr_status audit_f32(tr *t, const char *name, float *p, int nd, int64_t d0, int64_t d1, int64_t d2)
{
    int64_t sh[3] = {d0, d1, d2};
    fr_tensor v = fr_tensor_f32(p, nd, sh);
    return rec_tensor(t, name, &v);
}

static fr_status audit_params(tr *t, const char *prefix, const fr_tensor *vals)
{
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < t->pol.n_params; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, t->pol.params[i].name);
        FR_TRY(rec_tensor(t, name, &vals[i]));
    }
    return FR_OK;
}

/* ξ of every step by coordinate, as fr_rollout draws it (zero where it draws none). */
static fr_status regen_noise(tr *t, uint32_t e)
{
    const int64_t N = t->N, D = t->D;
    for (int64_t i = 0; i < t->T; i++) {
        fr_step p = fr_rollout_step(&t->rc, i);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        float *dst = t->xi + i * N * D;
        if (sd.std == 0.0f) {
            memset(dst, 0, (size_t)(N * D) * sizeof *dst);
            continue;
        }
        for (int64_t s = 0; s < N; s++)
            fr_rng_fill_normal(dst + s * D, D, t->o.seed, FR_RNG_SAMPLER_NOISE, e, t->sid[s], (uint32_t)i);
    }
    return FR_OK;
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

/* FG re-batches the kept samples in a random order (objectives.md §2 "The batch is shuffled
 * before re-batching"): here the order of the keys u32(seed, FR_RNG_SHUFFLE, e, 0, 0, i). */
static fr_status shuffle_kept(tr *t, uint32_t e, int64_t *K)
{
    shuf_key *k = fr_malloc((size_t)t->N * sizeof *k);
    if (!k) return FR_ERR_NOMEM;
    int64_t n = 0;
    for (int64_t i = 0; i < t->N; i++)
        if (t->keep[i]) k[n++] = (shuf_key){fr_rng_u32(t->o.seed, FR_RNG_SHUFFLE, e, 0, 0, (uint32_t)i), i};
    qsort(k, (size_t)n, sizeof *k, shuf_cmp);
    for (int64_t j = 0; j < n; j++) t->order[j] = k[j].i;
    free(k);
    *K = n;
    return FR_OK;
}

typedef struct {
    double kl, clipfrac, approx_kl, loss;
    float rmin, rmax;
    int64_t n_terms;
    float last_gn;
} epoch_stats;

/* Model output v (b rows) for the rows in bx under CFG as the rollout forms it. */
static fr_status velocity(tr *t, const fr_model *m, fr_model_ws *ws, int64_t b, float tin, const float *x,
                          float *out, float *v)
{
    const int64_t D = t->D, R = t->cfg_on ? 2 * b : b;
    for (int64_t k = 0; k < R; k++) t->bt[k] = tin;
    memcpy(t->bin, x, (size_t)(b * D) * sizeof(float));
    if (t->cfg_on) memcpy(t->bin + b * D, x, (size_t)(b * D) * sizeof(float));
    FR_TRY(fr_model_forward(m, t->ops, ws, R, t->bin, t->bt, t->bc, out));
    if (t->cfg_on)
        /* rows [0, b) conditional, [b, 2b) unconditional, as core/rollout.c */
        FR_TRY(fr_cfg_combine(b * D, t->o.cfg, out + b * D, out, v));
    else
        memcpy(v, out, (size_t)(b * D) * sizeof(float));
    return FR_OK;
}

/* Loss and gradient of one (batch, step j): objectives.md §2 (or §3 with Guard), chained
 * as flowrl/grpo.h describes. ratio receives the b ratios. */
static fr_status micro_step(tr *t, const int64_t *rows, int64_t b, int64_t j, float gout, float *ratio,
                            epoch_stats *es, float *loss_acc)
{
    const fr_grpo_train_opts *o = &t->o;
    const int64_t N = t->N, D = t->D, S = t->S;
    for (int64_t k = 0; k < b; k++) {
        const int64_t r = rows[k];
        memcpy(t->bx + k * D, t->traj + (j * N + r) * D, (size_t)D * sizeof(float));
        memcpy(t->bxn + k * D, t->traj + ((j + 1) * N + r) * D, (size_t)D * sizeof(float));
        memcpy(t->bmo + k * D, t->mean + (j * N + r) * D, (size_t)D * sizeof(float));
        t->blo[k] = t->logp[j * N + r];
        t->badv[k] = t->adv[r];
        FR_TRY(fr_cond_ids(t->task, 1, &t->pid[r], t->bc + k * S));
    }
    if (t->cfg_on)
        for (int64_t k = 0; k < b * S; k++) t->bc[b * S + k] = (int32_t)t->pol.cfg.n_cond; /* null condition */

    const fr_step step = fr_rollout_step(&t->rc, j);
    const float tin = fr_rollout_time(&t->rc, j);
    FR_TRY(velocity(t, &t->pol, &t->ws, b, tin, t->bx, t->bout, t->bv));
    FR_TRY(fr_sampler_logprob(&step, b, D, t->bx, t->bv, NULL, t->bxn, t->bmean, t->blogp));

    fr_ppo_params prm = {o->clip_range, o->adv_clip};
    fr_ppo_stats st;
    if (o->guard == FR_TRAIN_GUARD_OFF) {
        FR_TRY(fr_ppo_policy(b, &prm, t->blogp, t->blo, t->badv, gout, t->bglogp, ratio, &st));
        FR_TRY(fr_logp_backward(&step, b, D, t->bxn, t->bmean, t->bglogp, t->bgmean, 0));
    } else {
        fr_guard_bias mode = o->guard == FR_TRAIN_GUARD_BATCH ? FR_GUARD_BIAS_BATCH : FR_GUARD_BIAS_SAMPLE;
        FR_TRY(fr_guard_policy(&step, b, D, mode, &prm, t->bxn, t->bmean, t->bmo, t->blogp, t->blo, t->badv, gout,
                               t->bgmean, 0, ratio, NULL, &st));
    }
    float kl = 0.0f;
    if (o->beta > 0.0f) {
        /* the frozen base under the same CFG (objectives.md §2: LoRA off = the base model) */
        FR_TRY(velocity(t, &t->ref, &t->ws_ref, b, tin, t->bx, t->bdout, t->bvref));
        FR_TRY(fr_sampler_mean(&step, b, D, t->bx, t->bvref, NULL, t->bmref));
        float ks;
        FR_TRY(fr_kl_std(&step, o->kl_form, &ks));
        FR_TRY(fr_kl_loss(b, D, ks, t->bmean, t->bmref, gout * o->beta, &kl, t->bgmean, 1));
    }
    float dm;
    FR_TRY(fr_grpo_dmean_dv(&step, &dm));
    /* g_v = g_μ·dμ/dv; with CFG g_c = g_v·g and g_u = g_v + (−(g_v·g)) (flowrl/grpo.h step 5;
     * a − b is a + (−b) in IEEE arithmetic) */
    float *gv = t->bgmean;
    t->ops->scale(b * D, dm, t->bgmean, gv);
    if (t->cfg_on) {
        t->ops->scale(b * D, o->cfg, gv, t->bdout);
        t->ops->binary(FR_BIN_SUB, b * D, gv, t->bdout, t->bdout + b * D);
    } else {
        memcpy(t->bdout, gv, (size_t)(b * D) * sizeof(float));
    }
    FR_TRY(fr_model_backward(&t->pol, t->ops, &t->ws, t->bdout, NULL));

    const float loss = st.loss + o->beta * kl;
    if (!isfinite(loss))
        return fr_fail(FR_ERR_NUMERIC, "train: loss %g at step %lld (policy %g, KL %g)", (double)loss, (long long)j,
                       (double)st.loss, (double)kl);
    *loss_acc += loss * gout; /* FG logs loss / divisor (grpo.h "averaging") */
    es->kl += kl;
    es->clipfrac += st.clipfrac;
    es->approx_kl += st.approx_kl;
    es->n_terms++;
    if (st.ratio_min < es->rmin) es->rmin = st.ratio_min;
    if (st.ratio_max > es->rmax) es->rmax = st.ratio_max;
    return FR_OK;
}

static fr_status optimizer_step(tr *t, int64_t u, float *gn)
{
    const fr_grpo_train_opts *o = &t->o;
    char name[FR_AUDIT_MAX_NAME + 1];
    *gn = NAN;
    if (o->max_grad_norm > 0.0f) {
        fr_status s = fr_clip_grad_norm(t->ops, t->pol.params, t->pol.n_params, o->max_grad_norm, gn);
        if (s != FR_OK) return fr_fail(s, "train: update %lld: gradient norm %g", (long long)u, (double)*gn);
    }
    snprintf(name, sizeof name, "u%lld.grad_norm", (long long)u);
    FR_TRY(rec_scalar(t, name, *gn));
    snprintf(name, sizeof name, "u%lld.grad.", (long long)u);
    FR_TRY(audit_params(t, name, t->pol.grads));
    fr_adamw_cfg ac = {o->beta1, o->beta2, o->adam_eps, o->weight_decay};
    FR_TRY(fr_adamw_step(t->ops, &t->opt, t->pol.params, t->pol.n_params, &ac, o->lr));
    /* FG: EMA (decay 0.9) every 8 optimizer steps */
    if (t->have_ema && t->opt.step % o->ema_every == 0)
        FR_TRY(fr_ema_update(t->ops, &t->ema, t->pol.params, t->pol.n_params, o->ema));
    return FR_OK;
}

static fr_status run_epoch(tr *t, int64_t e64, fr_train_epoch_event *ev)
{
    const fr_grpo_train_opts *o = &t->o;
    const uint32_t e = (uint32_t)e64;
    const int64_t N = t->N, D = t->D, T = t->T, P = o->P, G = o->G;
    char name[FR_AUDIT_MAX_NAME + 1];
    memset(ev, 0, sizeof *ev);
    ev->epoch = e64 + 1;
    ev->epochs = o->epochs;
    ev->n_samples = N;
    fr_audit *a = t->audit;
    FR_TRY(fr_audit_begin_step(a, e64 + 1));
    t->rec_step = e64 + 1;

    int64_t ws0, wl;
    FR_TRY(epoch_window(t, e, &ws0, &wl));
    for (int64_t j = ws0; j < ws0 + wl; j++) {
        fr_step p = fr_rollout_step(&t->rc, j);
        fr_step_std sd;
        FR_TRY(fr_sampler_std(&p, &sd));
        if (!(sd.std > 0.0f))
            return fr_fail(FR_ERR_ARG, "train: trained step %lld has std 0 (no density; e.g. cps's last step): "
                                       "lower timestep_fraction", (long long)j);
    }
    ev->win_start = ws0;
    ev->win_len = wl;
    int64_t wv[2] = {ws0, wl};
    int64_t sh2 = 2;
    fr_tensor wt = fr_tensor_view(wv, FR_I64, 1, &sh2);
    FR_TRY(rec_tensor(t, "window", &wt));

    /* 1. prompts, 2. rollout */
    for (int64_t p = 0; p < P; p++)
        t->prompts[p] = (int)(fr_rng_u32(o->seed, FR_RNG_PROMPTS, e, (uint32_t)p, 0, 0) % (uint32_t)t->task->n_train);
    for (int64_t s = 0; s < N; s++) {
        t->pid[s] = t->prompts[s / G];
        t->sid[s] = (uint32_t)s;
        t->group[s] = t->pid[s];
    }
    fr_tensor pt = fr_tensor_view(t->prompts, FR_I32, 1, &P);
    FR_TRY(rec_tensor(t, "prompts", &pt));
    t->rc.c0 = e;
    fr_rollout_traj tj = {t->traj, t->mean, t->logp, NULL};
    FR_TRY(fr_rollout(&t->pol, t->ops, t->task, &t->rc, N, t->pid, t->sid, NULL, t->x, &tj));
    FR_TRY(audit_f32(t, "noise.x_T", t->traj, 2, N, D, 1));
    FR_TRY(regen_noise(t, e));
    FR_TRY(audit_f32(t, "noise.xi", t->xi, 3, T, N, D));
    FR_TRY(audit_f32(t, "traj", t->traj, 3, T + 1, N, D));
    FR_TRY(audit_f32(t, "mean", t->mean, 3, T, N, D));
    FR_TRY(audit_f32(t, "logp_old", t->logp, 2, T, N, 1));

    /* 3. rewards */
    if (t->rcmd) {
        FR_TRY(fr_reward_cmd_score_task(t->rcmd, t->task, e, (int)N, t->pid, t->x, t->reward));
        ev->accuracy = NAN;
    } else {
        FR_TRY(fr_task_reward_batch(t->task, t->reward_id, (int)N, t->pid, t->x, t->reward, t->correct));
        int64_t c = 0;
        for (int64_t s = 0; s < N; s++) c += t->correct[s] != 0;
        ev->accuracy = (double)c / (double)N;
    }
    FR_TRY(audit_f32(t, "rewards", t->reward, 1, N, 1, 1));
    FR_TRY(fr_adv_mean_std(t->reward, N, &ev->reward_mean, &ev->reward_std));
    FR_TRY(rec_scalar(t, "reward_mean", ev->reward_mean));
    FR_TRY(rec_scalar(t, "reward_std", ev->reward_std));

    /* 4. advantages and the zero filter (objectives.md §1.1) */
    if (o->adv == FR_TRAIN_ADV_PROMPT)
        FR_TRY(fr_adv_per_prompt(N, t->reward, t->group, o->global_std, FR_ADV_EPS_FLOW_GRPO, t->adv));
    else if (o->adv == FR_TRAIN_ADV_BATCH)
        FR_TRY(fr_adv_batch(N, t->reward, FR_ADV_EPS_FLOW_GRPO, t->adv));
    else
        FR_TRY(fr_ddpo_tracker_update(t->ddpo, N, t->reward, t->group, t->adv));
    FR_TRY(audit_f32(t, "adv", t->adv, 1, N, 1, 1));
    int64_t kept;
    FR_TRY(fr_adv_filter_zero(N, t->adv, o->num_batches, o->seed, FR_RNG_ADV_FILTER, e, 0, t->keep, &kept));
    fr_tensor kt = fr_tensor_view(t->keep, FR_U8, 1, &N);
    FR_TRY(rec_tensor(t, "keep", &kt));

    /* 5. batches */
    int64_t K;
    FR_TRY(shuffle_kept(t, e, &K));
    if (K > 0) {
        fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &K);
        FR_TRY(rec_tensor(t, "order", &ot));
    }
    ev->kept = K;

    /* 6. inner updates (objectives.md §2 "Averaging") */
    epoch_stats es = {0, 0, 0, 0, INFINITY, -INFINITY, 0, NAN};
    const int64_t nb = o->num_batches, ga = o->grad_accum, b = K / nb;
    int64_t u = 0;
    if (b > 0 && wl > 0) {
        int64_t divisor;
        FR_TRY(fr_grpo_accum_divisor(ga, wl, &divisor));
        const float gout = 1.0f / (float)divisor;
        for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
            fr_model_zero_grad(&t->pol, t->ops);
            float uloss = 0.0f;
            for (int64_t q = q0; q < q0 + ga; q++)
                for (int64_t j = ws0; j < ws0 + wl; j++)
                    FR_TRY(micro_step(t, t->order + q * b, b, j, gout,
                                      t->ratios + ((q - q0) * wl + (j - ws0)) * b, &es, &uloss));
            snprintf(name, sizeof name, "u%lld.ratio", (long long)u);
            FR_TRY(audit_f32(t, name, t->ratios, 3, ga, wl, b));
            snprintf(name, sizeof name, "u%lld.loss", (long long)u);
            FR_TRY(rec_scalar(t, name, uloss));
            if (t->cb && t->cb->on_update) {
                fr_train_update_event ue = {e64 + 1, u, ga * wl * b, t->ratios, uloss};
                t->cb->on_update(&ue, t->cb->user);
            }
            FR_TRY(optimizer_step(t, u, &es.last_gn));
            es.loss += uloss;
        }
    }
    ev->n_updates = u;
    const double nterm = es.n_terms ? (double)es.n_terms : NAN;
    ev->kl = (float)(es.kl / nterm);
    ev->clipfrac = (float)(es.clipfrac / nterm);
    ev->approx_kl = (float)(es.approx_kl / nterm);
    ev->ratio_min = es.n_terms ? es.rmin : NAN;
    ev->ratio_max = es.n_terms ? es.rmax : NAN;
    ev->loss = u ? (float)(es.loss / (double)u) : NAN;
    ev->grad_norm = es.last_gn;
    FR_TRY(rec_scalar(t, "kl", ev->kl));
    FR_TRY(rec_scalar(t, "clipfrac", ev->clipfrac));
    FR_TRY(rec_scalar(t, "approx_kl", ev->approx_kl));

    /* the state after the epoch, under the checkpoint's names (flowrl/audit.h convention) */
    FR_TRY(audit_params(t, "", t->pol.values));
    if (t->have_ema) FR_TRY(audit_params(t, "ema.", t->ema.shadow));
    FR_TRY(audit_params(t, "optim.m.", t->opt.m));
    FR_TRY(audit_params(t, "optim.v.", t->opt.v));
    FR_TRY(fr_audit_end_step(a));
    if (o->window == FR_TRAIN_WINDOW_MIX) fr_mix_window_update(&t->mix);
    return FR_OK;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static fr_status run_meta(const tr *t, fr_st_file *f)
{
    FR_TRY(fr_st_set_meta(f, "task", t->task->name));
    FR_TRY(fr_st_set_meta(f, "base.digest", t->base_digest));
    FR_TRY(fr_st_set_meta(f, "algo", "flow-grpo"));
    return fr_train_opts_to_meta(&t->o, f);
}

/* DDPO's history as a (n_train, buffer) table and its lengths, so a resumed tracker has it. */
static fr_status ddpo_to_st(const tr *t, fr_st_file *f)
{
    const int64_t ng = t->task->n_train, cap = t->o.ddpo_buffer;
    fr_tensor h, n;
    int64_t sh[2] = {ng, cap};
    FR_TRY(fr_tensor_alloc(&h, FR_F32, 2, sh));
    fr_status s = fr_tensor_alloc(&n, FR_I64, 1, &ng);
    for (int64_t g = 0; g < ng && s == FR_OK; g++)
        s = fr_ddpo_tracker_history(t->ddpo, g, (float *)h.data + g * cap, cap, (int64_t *)n.data + g);
    if (s == FR_OK) s = fr_st_add(f, "ddpo.history", &h);
    if (s == FR_OK) s = fr_st_add(f, "ddpo.count", &n);
    fr_tensor_free(&h);
    fr_tensor_free(&n);
    return s;
}

static fr_status ddpo_from_st(tr *t, const fr_st_file *f, const char *path)
{
    const int64_t ng = t->task->n_train, cap = t->o.ddpo_buffer;
    const fr_tensor *h = fr_st_get(f, "ddpo.history"), *n = fr_st_get(f, "ddpo.count");
    if (!h || !n || h->dtype != FR_F32 || h->ndim != 2 || h->shape[0] != ng || h->shape[1] != cap ||
        n->dtype != FR_I64 || n->ndim != 1 || n->shape[0] != ng)
        return fr_fail(FR_ERR_FORMAT, "%s: ddpo.history / ddpo.count missing or of the wrong shape", path);
    for (int64_t g = 0; g < ng; g++) {
        int64_t len = ((const int64_t *)n->data)[g];
        if (len < 0 || len > cap) return fr_fail(FR_ERR_FORMAT, "%s: ddpo.count[%lld] = %lld", path, (long long)g, (long long)len);
        if (len == 0) continue;
        /* appending the history oldest first rebuilds the deque exactly */
        int64_t *grp = fr_malloc((size_t)len * sizeof *grp);
        float *tmp = fr_malloc((size_t)len * sizeof *tmp);
        fr_status s = (grp && tmp) ? FR_OK : FR_ERR_NOMEM;
        for (int64_t k = 0; k < len && s == FR_OK; k++) grp[k] = g;
        if (s == FR_OK) s = fr_ddpo_tracker_update(t->ddpo, len, (const float *)h->data + g * cap, grp, tmp);
        free(grp);
        free(tmp);
        FR_TRY(s);
    }
    return FR_OK;
}

static fr_status save_checkpoint(tr *t, int64_t epoch)
{
    char rel[64], path[FR_TRAIN_PATH_MAX + 64], b[32];
    fr_checkpoint_name(epoch, rel, sizeof rel);
    FR_TRY(fr_train_path(path, sizeof path, t->dir, rel));
    fr_st_file f;
    fr_st_init(&f);
    fr_status s = fr_checkpoint_to_st(&f, &t->pol, t->have_ema ? &t->ema : NULL, &t->opt);
    if (s == FR_OK && t->ddpo) s = ddpo_to_st(t, &f);
    if (s == FR_OK) s = run_meta(t, &f);
    snprintf(b, sizeof b, "%lld", (long long)epoch);
    if (s == FR_OK) s = fr_st_set_meta(&f, "epoch", b);
    if (s == FR_OK) s = fr_st_set_meta(&f, "step", b);
    /* RNG coordinates of the next epoch: key (seed, purpose), c0 = epoch */
    snprintf(b, sizeof b, "%u", t->o.seed);
    if (s == FR_OK) s = fr_st_set_meta(&f, "seed", b);
    snprintf(b, sizeof b, "%lld", (long long)epoch);
    if (s == FR_OK) s = fr_st_set_meta(&f, "rng.next_c0", b);
    if (s == FR_OK) s = fr_st_write(&f, path);
    fr_st_free(&f);
    if (s == FR_OK) s = fr_train_prune_checkpoints(t->dir, epoch, t->o.keep_checkpoints);
    return s;
}

static fr_status load_checkpoint(tr *t, int64_t epoch)
{
    char rel[64], path[FR_TRAIN_PATH_MAX + 64];
    fr_checkpoint_name(epoch, rel, sizeof rel);
    FR_TRY(fr_train_path(path, sizeof path, t->dir, rel));
    fr_st_file f, want;
    FR_TRY(fr_st_read(&f, path));
    fr_st_init(&want);
    fr_status s = run_meta(t, &want);
    for (size_t i = 0; s == FR_OK && i < want.n_meta; i++) {
        const char *have = fr_st_get_meta(&f, want.meta[i].key);
        if (!have || strcmp(have, want.meta[i].value) != 0)
            s = fr_fail(FR_ERR_MISMATCH, "%s: metadata '%s' is '%s', config.json and the base give '%s'", path,
                        want.meta[i].key, have ? have : "(absent)", want.meta[i].value);
    }
    fr_st_free(&want);
    if (s == FR_OK) s = fr_checkpoint_from_st(&f, &t->pol, t->have_ema ? &t->ema : NULL, &t->opt);
    if (s == FR_OK && t->ddpo) s = ddpo_from_st(t, &f, path);
    fr_st_free(&f);
    return s;
}

/* ---- evaluation -------------------------------------------------------------------------- */

static fr_status evaluate(tr *t, const fr_model *m, const char *key, int64_t epoch, double *acc, double *score)
{
    if (t->o.eval_n <= 0) return FR_OK;
    fr_rollout_cfg erc = fr_rollout_cfg_default(FR_SAMPLER_ODE);
    erc.T = t->o.eval_steps;
    erc.cfg = t->o.cfg;
    erc.batch = t->o.rollout_batch;
    fr_rollout_schedule es;
    FR_TRY(fr_rollout_schedule_make(&erc, t->o.grid, t->o.shift, 0, 0, &es));
    fr_eval_opts eo = fr_eval_opts_default();
    eo.n = (int)t->o.eval_n;
    eo.reward_id = t->eval_reward_id;
    fr_eval_result r;
    fr_status s = fr_evaluate(m, t->ops, t->task, &erc, &eo, &r);
    if (s == FR_OK) {
        *acc = r.samples ? (double)r.correct / (double)r.samples : 0.0;
        *score = r.score;
        s = fr_train_eval_json_set(t->dir, key, t->task, &r, epoch);
        info(t, "eval %-6s (epoch %lld, %d held-out prompts x %d, %lld ODE steps): accuracy %.1f%%, mean reward %.4f",
             key, (long long)epoch, r.n_prompts, r.n, (long long)erc.T, 100.0 * *acc, r.score);
        for (int g = 0; g < r.n_groups; g++)
            if (r.group_samples[g])
                info(t, "  %-10s accuracy %.1f%%, mean reward %.4f", t->task->group_names[g],
                     100.0 * (double)r.group_correct[g] / (double)r.group_samples[g], r.group_score[g]);
        fr_eval_result_free(&r);
    }
    char png[32];
    snprintf(png, sizeof png, "%s.png", key);
    int64_t k = t->o.eval_n < 8 ? t->o.eval_n : 8;
    if (s == FR_OK) s = fr_train_sample_grid(t->dir, png, m, t->ops, t->task, &erc, k);
    fr_rollout_schedule_free(&es);
    return s;
}

/* The weights evaluated: the EMA's when it is on (objectives.md §2 table: FG evaluates EMA). */
static fr_status eval_current(tr *t, const char *key, int64_t epoch, double *acc, double *score)
{
    if (!t->have_ema) return evaluate(t, &t->pol, key, epoch, acc, score);
    fr_model em;
    FR_TRY(fr_model_alloc(&em, &t->pol.cfg));
    fr_status s = fr_ema_copy_to(t->ops, &t->ema, em.params, em.n_params);
    if (s == FR_OK) s = evaluate(t, &em, key, epoch, acc, score);
    fr_model_free(&em);
    return s;
}

/* ---- the run ----------------------------------------------------------------------------- */

static fr_status open_audit(tr *t)
{
    char path[FR_TRAIN_PATH_MAX + 32], th[16];
    FR_TRY(fr_train_path(path, sizeof path, t->dir, FR_AUDIT_LOG_NAME));
    snprintf(th, sizeof th, "%d", t->threads);
    fr_audit_kv extra[] = {{"run.algo", "flow-grpo"}, {"run.base_digest", t->base_digest}};
    fr_audit_opts ao = {t->ops->name, t->threads, extra, 2, 0};
    return fr_audit_open(&t->audit, path, &ao);
}

static fr_status train_loop(tr *t, int64_t first, fr_grpo_train_result *res)
{
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, t->dir, FR_TRAIN_CURVE_NAME));
    res->first_epoch = first;
    res->epochs_done = first;
    for (int64_t e = first; e < t->o.epochs; e++) {
        if (t->cb && t->cb->stop && *t->cb->stop) {
            res->interrupted = 1;
            break;
        }
        double t0 = fr_now_seconds();
        fr_train_epoch_event ev;
        FR_TRY(run_epoch(t, e, &ev));
        ev.seconds = fr_now_seconds() - t0;
        /* order: audit end-step (done), metrics line, checkpoint: a crash anywhere leaves a
         * log at least as long as the newest checkpoint, which resume cuts back to it */
        FR_TRY(fr_train_metrics_append(t->dir, &ev));
        FR_TRY(save_checkpoint(t, e + 1));
        FR_TRY(fr_train_curve_push(&t->curve, ev.reward_mean, ev.accuracy));
        FR_TRY(fr_train_curve_write_svg(&t->curve, path));
        res->epochs_done = e + 1;
        int stop = 0;
        if (t->cb && t->cb->on_epoch) stop = t->cb->on_epoch(&ev, t->cb->user);
        if (stop && e + 1 < t->o.epochs) {
            res->interrupted = 1;
            break;
        }
    }
    if (!res->interrupted && t->cb && t->cb->stop && *t->cb->stop && res->epochs_done < t->o.epochs)
        res->interrupted = 1;
    if (!res->interrupted) {
        FR_TRY(eval_current(t, "after", res->epochs_done, &res->acc_after, &res->score_after));
        res->have_after = t->o.eval_n > 0;
    }
    return FR_OK;
}

static void header(tr *t)
{
    const fr_grpo_train_opts *o = &t->o;
    int64_t tt = 0;
    fr_train_steps(o->T, o->timestep_fraction, &tt);
    info(t, "task %s, base %s (digest %s, %s weights), reward %s", t->task->name, o->base, t->base_digest,
         o->base_raw ? "raw" : "EMA", o->reward[0] ? o->reward : t->task->reward_names[0]);
    info(t, "model %s: %lld params; %lld prompts x %lld samples per epoch, %lld epochs, seed %u", t->pol.cfg.preset,
         (long long)fr_model_num_params(&t->pol), (long long)o->P, (long long)o->G, (long long)o->epochs, o->seed);
    info(t, "sampler %s, %lld steps (%s grid, shift %g), noise %g, cfg %g (train cfg %s); window %s, %lld trained steps",
         fr_sampler_name(o->sampler), (long long)o->T, fr_grid_name(o->grid), o->shift, (double)o->noise,
         (double)o->cfg, t->cfg_on ? "on" : "off", fr_train_window_name(o->window),
         o->window == FR_TRAIN_WINDOW_NONE ? (long long)tt
         : o->window == FR_TRAIN_WINDOW_FAST ? (long long)(o->fast_w > 0 ? o->fast_w : o->T - 1)
                                             : (long long)o->mix_w);
    info(t, "clip %g, beta %g (%s form), adv %s%s, guard %s; %lld batches, grad accum %lld, lr %g, max grad norm %g, "
            "ema %s",
         o->clip_range, (double)o->beta, fr_kl_form_name(o->kl_form), fr_train_adv_name(o->adv),
         o->adv == FR_TRAIN_ADV_PROMPT ? (o->global_std ? " (global std)" : " (group std)") : "",
         fr_train_guard_name(o->guard), (long long)o->num_batches, (long long)o->grad_accum, (double)o->lr,
         (double)o->max_grad_norm, o->ema >= 0.0f ? "on" : "off");
}

static fr_status finish(tr *t, fr_status s)
{
    if (t->audit) {
        fr_status c = fr_audit_close(t->audit);
        if (s == FR_OK) s = c;
    }
    if (t->rcmd) {
        fr_status c = fr_reward_cmd_close(t->rcmd);
        if (s == FR_OK) s = c;
    }
    tr_free(t);
    return s;
}

static int dir_is_empty(const char *dir)
{
    char cmd_probe[FR_TRAIN_PATH_MAX + 32];
    /* config.json or audit.log present: a run is there */
    if (fr_train_path(cmd_probe, sizeof cmd_probe, dir, FR_TRAIN_CONFIG_NAME) != FR_OK) return 0;
    struct stat st;
    if (stat(cmd_probe, &st) == 0) return 0;
    if (fr_train_path(cmd_probe, sizeof cmd_probe, dir, FR_AUDIT_LOG_NAME) != FR_OK) return 0;
    return stat(cmd_probe, &st) != 0;
}

static fr_status make_dirs(const char *dir)
{
    char p[FR_TRAIN_PATH_MAX + 32];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", dir, strerror(errno));
    FR_TRY(fr_train_path(p, sizeof p, dir, FR_CHECKPOINT_DIR));
    if (mkdir(p, 0777) != 0 && errno != EEXIST) return fr_fail(FR_ERR_IO, "%s: %s", p, strerror(errno));
    return FR_OK;
}

fr_status fr_grpo_train_run(const fr_grpo_train_opts *o, const fr_ops *ops, int threads, const fr_grpo_train_cb *cb,
                            fr_grpo_train_result *res)
{
    return fr_grpo_train_run_tap(o, ops, threads, cb, NULL, NULL, res);
}

fr_status fr_grpo_train_run_tap(const fr_grpo_train_opts *o, const fr_ops *ops, int threads,
                                const fr_grpo_train_cb *cb, fr_train_record_fn tap, void *tap_user,
                                fr_grpo_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->acc_before = res->acc_after = res->score_before = res->score_after = NAN;
    FR_TRY(fr_grpo_train_check(o));
    if (!dir_is_empty(o->out))
        return fr_fail(FR_ERR_ARG, "train: %s already holds a run (use --resume %s to continue it)", o->out, o->out);
    tr t;
    memset(&t, 0, sizeof t);
    t.o = *o;
    t.dir = o->out;
    t.ops = ops;
    t.threads = threads;
    t.cb = cb;
    t.tap = tap;
    t.tap_user = tap_user;
    fr_status s = tr_setup(&t);
    if (s == FR_OK) s = make_dirs(t.dir);
    char path[FR_TRAIN_PATH_MAX + 32];
    if (s == FR_OK) s = fr_train_path(path, sizeof path, t.dir, FR_TRAIN_CONFIG_NAME);
    if (s == FR_OK) s = fr_grpo_train_opts_write_json(&t.o, t.base_digest, path);
    if (s == FR_OK) s = open_audit(&t);
    if (s == FR_OK) {
        header(&t);
        s = eval_current(&t, "before", 0, &res->acc_before, &res->score_before);
    }
    if (s == FR_OK) s = train_loop(&t, 0, res);
    return finish(&t, s);
}

fr_status fr_grpo_train_resume(const char *dir, int64_t epochs, const fr_ops *ops, int threads,
                               const fr_grpo_train_cb *cb, fr_grpo_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->acc_before = res->acc_after = res->score_before = res->score_after = NAN;
    tr t;
    memset(&t, 0, sizeof t);
    char path[FR_TRAIN_PATH_MAX + 32];
    FR_TRY(fr_train_path(path, sizeof path, dir, FR_TRAIN_CONFIG_NAME));
    FR_TRY(fr_grpo_train_opts_read_json(&t.o, path));
    if (epochs > 0) t.o.epochs = epochs;
    if (strlen(dir) >= sizeof t.o.out) return fr_fail(FR_ERR_ARG, "train: path '%s' is too long", dir);
    snprintf(t.o.out, sizeof t.o.out, "%s", dir); /* the run may have moved */
    FR_TRY(fr_grpo_train_check(&t.o));
    t.dir = t.o.out;
    t.ops = ops;
    t.threads = threads;
    t.cb = cb;
    fr_status s = tr_setup(&t);
    int64_t last = 0;
    if (s == FR_OK) s = fr_train_last_checkpoint(t.dir, &last);
    if (s == FR_OK && last > 0) s = load_checkpoint(&t, last);
    char alog[FR_TRAIN_PATH_MAX + 32];
    if (s == FR_OK) s = fr_train_path(alog, sizeof alog, t.dir, FR_AUDIT_LOG_NAME);
    if (s == FR_OK) s = fr_audit_truncate_to_step(alog, last);
    if (s == FR_OK) s = fr_train_metrics_truncate(t.dir, last, &t.curve);
    if (s == FR_OK && epochs > 0) s = fr_grpo_train_opts_write_json(&t.o, t.base_digest, path);
    if (s == FR_OK) s = open_audit(&t);
    /* MixGRPO's window after `last` epochs (one update per epoch) */
    for (int64_t e = 0; s == FR_OK && t.o.window == FR_TRAIN_WINDOW_MIX && e < last; e++) fr_mix_window_update(&t.mix);
    if (s == FR_OK) {
        header(&t);
        info(&t, "resuming %s at epoch %lld of %lld", t.dir, (long long)last, (long long)t.o.epochs);
        int found = 0;
        s = fr_train_eval_json_get(t.dir, "before", &found, &res->acc_before, &res->score_before);
        if (s == FR_OK && !found && t.o.eval_n > 0) {
            /* the run stopped before its first evaluation finished: evaluate the base */
            fr_infer_ckpt ck;
            s = fr_infer_ckpt_load(&ck, t.o.base, !t.o.base_raw, t.o.task);
            if (s == FR_OK) s = evaluate(&t, &ck.model, "before", 0, &res->acc_before, &res->score_before);
            fr_infer_ckpt_free(&ck);
        }
    }
    if (s == FR_OK) s = train_loop(&t, last, res);
    return finish(&t, s);
}
