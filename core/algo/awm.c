/* AWM, Advantage Weighted Matching (docs/algorithms/awm.md) on the run loop (flowrl/run.h,
 * flowrl/algo.h): `flowrl train --algo awm`. The objective itself is core/awm.c
 * (flowrl/awm.h); this file is its epoch.
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts; G samples per prompt, sample id s = p·G + g
 *   2. rollout   any sampler (ODE by default) over T steps; only the final x0 is kept
 *   3. rewards   fr_run_rewards;   4. advantages   fr_run_advantages (global std by default)
 *   5. batches   all N samples in the order of the keys u32(seed, FR_RNG_SHUFFLE, e, 0, 0, k)
 *                (ties by index), cut into num_batches batches of b = N / num_batches
 *   6. updates   per batch q: K times (fr_awm_times, stratified over the sampler grid),
 *                ε and x_t (fr_awm_noise), v = policy(x_t, t) on the K·b rows (the
 *                conditional model: AWM trains at CFG 1), v_ref (β > 0) and v_ema (EMA-KL),
 *                fr_awm_loss with gout = 1/grad_accum → dL/dv → backward; after every
 *                grad_accum batches one optimiser step. ℓ_old: on-policy (ρ ≡ 1) for the
 *                batches before the first optimiser step, else the epoch-start policy's ℓ
 *                on the same (t, ε) (computed before any update when num_batches > grad_accum).
 *   7. EMA-KL    θ_ema ← d·θ_ema + (1 − d)·θ with d = fr_awm_ema_decay(global step)
 *
 * audit.log records of an epoch: prompts, noise.x_T (N, D), samples (N, D), rewards,
 * reward_mean, reward_std, adv, order (I64 (N,)), per batch q: b<q>.t (K·b), b<q>.logp
 * (K·b, F64 ℓ_θ), b<q>.loss; per optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>; then
 * awm_ema.<NAME> (EMA-KL on) and the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/awm.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/philox.h"

typedef struct {
    fr_awm_opts o;
    fr_awm_params prm;
    fr_awm_time_cfg tc;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model ema;              /* the EMA-KL adapter θ_ema (ema_beta > 0) */
    int have_ema;
    fr_model_ws ws, ws_ref, ws_ema;
    int have_ws, have_ws_ref, have_ws_ema;
    int64_t N, D, S, K, b;
    fr_backend *be;
    fr_run_samples fin;             /* the epoch's final samples, rewards, advantages */
    /* backend memory: the rollout's samples, and one batch of K·b rows with its inputs */
    float *bx0;                     /* (b, D) */
    float *eps, *xt, *v, *v_ref, *v_ema, *gv; /* (K·b, D) */
    float *d_t, *d_tin;             /* (K·b,) */
    uint32_t *d_bsid;               /* (b,) */
    int32_t *d_rows;                /* (b,) */
    int32_t *c;                     /* (K·b, S) */
    /* host: per-sample and per-row values, the samples copied out (the reward's input) */
    int64_t *order;         /* (N,) */
    uint32_t *bsid;                 /* (b,) */
    int32_t *brows;                 /* (b,) */
    int *bpid;                      /* (b,) */
    float *badv;                    /* (b,) */
    float *t, *tin;                 /* (K·b,) */
    int32_t *c_h;                   /* (K·b, S) */
    double *logp, *logp_old;        /* (K·b), (num_batches·K·b) */
    int64_t *idx;                   /* (K,) */
} awm_state;

void fr_awm_algo_free(void *p)
{
    awm_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_ws_ema) fr_model_ws_free(&t->ws_ema);
    if (t->have_ema) fr_model_free(&t->ema);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->bx0, t->eps, t->xt,     t->v,      t->v_ref, t->v_ema,
                   t->gv, t->d_t, t->d_tin, t->d_bsid, t->d_rows, t->c};
    fr_run_samples_free(&t->fin);
    void *bufs[] = {t->order, t->bsid, t->brows, t->bpid, t->badv, t->t, t->tin, t->c_h, t->logp, t->logp_old, t->idx};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    free(t);
}

fr_status fr_awm_algo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    awm_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_awm_opts *)r->ao;
    FR_TRY(fr_awm_opts_params(ro, &t->o, &t->prm, &t->tc));
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->K = t->o.train_timesteps;
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    const int64_t N = t->N, D = t->D, R = t->K * t->b;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    if (r->have_ref) {
        FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
        t->have_ws_ref = 1;
    }
    if (t->prm.ema_beta > 0.0) {
        /* the EMA adapter starts at the base (the code's second LoRA, zero-initialised) */
        FR_TRY(fr_run_model_like(r, "ema", &t->ema)); /* LoRA: a second adapter on the base */
        t->have_ema = 1;
        for (int i = 0; i < r->pol.n_params; i++)
            FR_TRY(fr_d2d(r->be, t->ema.values[i].data, r->pol.values[i].data, fr_tensor_nbytes(&r->pol.values[i])));
        FR_TRY(fr_model_ws_alloc(&t->ws_ema, &t->ema, R, 0));
        t->have_ws_ema = 1;
    }
    fr_backend *be = t->be = r->be;
    FR_TRY(fr_run_samples_alloc(r, &t->fin));
    if (!(t->bx0 = fr_dev_floats(be, t->b * D)) ||
        !(t->eps = fr_dev_floats(be, R * D)) || !(t->xt = fr_dev_floats(be, R * D)) ||
        !(t->v = fr_dev_floats(be, R * D)) || !(t->v_ref = fr_dev_floats(be, R * D)) ||
        !(t->v_ema = fr_dev_floats(be, R * D)) || !(t->gv = fr_dev_floats(be, R * D)) ||
        !(t->d_t = fr_dev_floats(be, R)) || !(t->d_tin = fr_dev_floats(be, R)) ||
        !(t->d_bsid = fr_dev_alloc(be, (size_t)t->b * sizeof(uint32_t))) || !(t->d_rows = fr_dev_i32(be, t->b)) ||
        !(t->c = fr_dev_i32(be, R * t->S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->order, N) || !FR_ALLOC(t->bsid, t->b) || !FR_ALLOC(t->brows, t->b) || !FR_ALLOC(t->bpid, t->b) || !FR_ALLOC(t->badv, t->b) ||
        !FR_ALLOC(t->t, R) || !FR_ALLOC(t->tin, R) || !FR_ALLOC(t->c_h, R * t->S) || !FR_ALLOC(t->logp, R) ||
        !FR_ALLOC(t->logp_old, ro->c.num_batches * R) || !FR_ALLOC(t->idx, t->K))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Batch q's rows: times, noise, conditions (rows r = k·b + i), the x_t and the model inputs.
 * The final samples' rows are gathered backend to backend; the per-sample and per-row values
 * (row indices, sample ids, times, model times, condition ids) are formed on the host and
 * cross once. */
static fr_status batch_inputs(fr_run *r, awm_state *t, uint32_t e, int64_t q)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, D = t->D, S = t->S, K = t->K, R = K * b;
    const int64_t *rows = t->order + q * b;
    for (int64_t i = 0; i < b; i++) {
        t->brows[i] = (int32_t)rows[i]; /* < N < 2^31 (the run's checks) */
        t->bsid[i] = t->fin.sid[rows[i]];
        t->bpid[i] = t->fin.pid[rows[i]];
        t->badv[i] = t->fin.adv[rows[i]];
    }
    FR_TRY(fr_h2d(be, t->d_rows, t->brows, (size_t)b * sizeof(int32_t)));
    be->ops->gather_rows(b, D, t->d_rows, t->N, t->fin.x, t->bx0);
    const int discrete = t->tc.type <= FR_AWM_TIME_DISCRETE_WITH_INIT;
    FR_TRY(fr_awm_times(&t->tc, r->o->run.seed, e, (uint32_t)q, b, t->rc.T, discrete ? t->rc.sigmas : NULL,
                        discrete ? t->idx : NULL, t->t));
    for (int64_t k = 0; k < K; k++) FR_TRY(fr_cond_ids(r->task, b, t->bpid, t->c_h + k * b * S));
    for (int64_t i = 0; i < R; i++) t->tin[i] = fr_timestep_diffusers(t->t[i]);
    FR_TRY(fr_h2d(be, t->d_bsid, t->bsid, (size_t)b * sizeof(uint32_t)));
    FR_TRY(fr_h2d(be, t->d_t, t->t, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    return fr_awm_noise(be, r->o->run.seed, e, t->d_bsid, K, b, D, t->bx0, t->d_t, t->eps, t->xt);
}

/* v of a model on the batch's K·b rows. */
static fr_status forward(fr_run *r, awm_state *t, const fr_model *m, fr_model_ws *ws, float *v)
{
    return fr_model_forward(m, r->be, ws, t->K * t->b, t->xt, t->d_tin, t->c, v);
}

typedef struct {
    double loss, kl, ema_kl, clipfrac;
    double rmin, rmax;
    int64_t n;
} epoch_stats;

static fr_status update_batch(fr_run *r, awm_state *t, uint32_t e, int64_t q, int off_policy, epoch_stats *es)
{
    const int64_t R = t->K * t->b, D = t->D;
    char name[FR_AUDIT_MAX_NAME + 1];
    FR_TRY(batch_inputs(r, t, e, q));
    FR_TRY(forward(r, t, &r->pol, &t->ws, t->v));
    if (r->have_ref) FR_TRY(forward(r, t, &r->ref, &t->ws_ref, t->v_ref));
    if (t->have_ema) FR_TRY(forward(r, t, &t->ema, &t->ws_ema, t->v_ema));
    const double gout = 1.0 / (double)r->o->c.grad_accum;
    fr_awm_stats st;
    FR_TRY(fr_awm_loss(r->be, &t->prm, t->K, t->b, D, t->t, t->bx0, t->eps, t->v, r->have_ref ? t->v_ref : NULL,
                       t->have_ema ? t->v_ema : NULL, off_policy ? t->logp_old + q * R : NULL, t->badv, gout, t->gv,
                       t->logp, NULL, &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: AWM loss %g in batch %lld: the policy diverged",
                       (long long)r->epoch + 1, st.loss, (long long)q);
    FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
    snprintf(name, sizeof name, "b%lld.t", (long long)q);
    FR_TRY(fr_run_rec_f32(r, name, t->t, 1, R, 1, 1));
    snprintf(name, sizeof name, "b%lld.logp", (long long)q);
    int64_t sh = R;
    fr_tensor lt = fr_tensor_view(t->logp, FR_F64, 1, &sh);
    FR_TRY(fr_run_rec_tensor(r, name, &lt));
    snprintf(name, sizeof name, "b%lld.loss", (long long)q);
    FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
    es->loss += st.loss * gout;
    es->kl += st.kl;
    es->ema_kl += st.ema_kl;
    es->clipfrac += st.clipfrac;
    if (st.ratio_min < es->rmin) es->rmin = st.ratio_min;
    if (st.ratio_max > es->rmax) es->rmax = st.ratio_max;
    es->n++;
    return FR_OK;
}

fr_status fr_awm_algo_epoch(fr_run *r, void *state)
{
    awm_state *t = state;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t N = t->N, D = t->D, nb = ro->c.num_batches, ga = ro->c.grad_accum;

    /* 1. prompts, 2. rollout (the final samples), 3. rewards, 4. advantages */
    FR_TRY(fr_run_samples_epoch(r, &r->pol, &t->rc, &t->fin));

    /* 5. batches */
    int64_t n_order;
    FR_TRY(fr_run_shuffle(r, N, NULL, t->order, &n_order));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &N);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    int64_t kept = 0;
    for (int64_t s = 0; s < N; s++) kept += t->fin.adv[s] != 0.0f;
    fr_run_metric(r, "kept", (double)kept);

    /* 6. updates; ℓ_old of the epoch-start policy where a batch follows an optimiser step */
    const int64_t R = t->K * t->b;
    if (nb > ga)
        for (int64_t q = ga; q < nb; q++) {
            FR_TRY(batch_inputs(r, t, e, q));
            FR_TRY(forward(r, t, &r->pol, &t->ws, t->v));
            FR_TRY(fr_awm_logprob(r->be, &t->prm, t->K, t->b, D, t->t, t->bx0, t->eps, t->v, NULL, t->logp_old + q * R, NULL));
        }
    epoch_stats es = {0, 0, 0, 0, INFINITY, -INFINITY, 0};
    int64_t u = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) FR_TRY(update_batch(r, t, e, q, q0 > 0, &es));
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
    }
    /* 7. the EMA-KL adapter after the epoch (global step = optimiser steps so far) */
    if (t->have_ema) {
        double d = fr_awm_ema_decay(t->o.kl_ema_decay_type, t->o.kl_ema_decay, r->adam.step);
        for (int i = 0; i < r->pol.n_params; i++)
            FR_TRY(fr_awm_ema_update(r->be, fr_tensor_numel(&r->pol.values[i]), d, r->pol.values[i].data,
                                     t->ema.values[i].data));
        FR_TRY(fr_run_rec_params(r, "awm_ema.", t->ema.values));
    }
    const double n = es.n ? (double)es.n : NAN;
    fr_run_metric(r, "loss", es.loss / (double)(u ? u : 1));
    fr_run_metric(r, "kl", es.kl / n);
    fr_run_metric(r, "ema_kl", es.ema_kl / n);
    fr_run_metric(r, "clipfrac", es.clipfrac / n);
    fr_run_metric(r, "ratio_min", es.n ? es.rmin : NAN);
    fr_run_metric(r, "ratio_max", es.n ? es.rmax : NAN);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

/* The EMA-KL adapter is part of the run's state. */
fr_status fr_awm_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    awm_state *t = state;
    return t->have_ema ? fr_run_save_params(r, f, "awm_ema.", t->ema.values) : FR_OK;
}

fr_status fr_awm_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    awm_state *t = state;
    return t->have_ema ? fr_run_load_params(r, f, path, "awm_ema.", t->ema.values) : FR_OK;
}

void fr_awm_algo_header(fr_run *r, void *state)
{
    awm_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), cfg %g; K %lld times (%s), weighting %s, ratio %s",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid),
                ro->smp.shift, (double)ro->smp.cfg, (long long)t->K, fr_awm_time_name(t->tc.type),
                fr_awm_weighting_name(t->prm.weighting), fr_awm_ratio_name(t->prm.ratio_mode));
    fr_run_info(r, "clip %g, beta %g (%s), ema_beta %g (%s), adv %s; %lld batches, grad accum %lld", t->prm.clip_range,
                t->prm.beta, fr_awm_kl_weight_name(t->prm.kl_weight), t->prm.ema_beta,
                fr_awm_kl_weight_name(t->prm.kl_ema_weight), fr_train_adv_name(ro->c.adv), (long long)ro->c.num_batches,
                (long long)ro->c.grad_accum);
}
