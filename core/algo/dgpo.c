/* DGPO, Direct Group Preference Optimization (docs/algorithms/dgpo.md) on the run loop
 * (flowrl/run.h, flowrl/algo.h): `flowrl train --algo dgpo`. The objective itself is
 * core/dgpo.c (flowrl/dgpo.h); this file is its epoch.
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts; G samples per prompt, sample id s = p·G + g
 *   2. rollout   any flow sampler (ODE by default: deterministic) over T steps, from the policy
 *                or, once more than switch_ema_ref optimiser steps are done, from the EMA
 *                reference; only the final x0 is kept
 *   3. rewards   fr_run_rewards;   4. advantages   fr_run_advantages (global std by default)
 *   5. times     M sampler indices of 0..trunc_steps without replacement (fr_dgpo_times), the
 *                same for every micro-batch of the epoch; t = σ[idx] (timestep 1000·σ / 1000)
 *   6. updates   micro-batch q = the samples q·b .. q·b + b − 1 (b = N / num_batches: whole
 *                prompt groups, as the public sampler's batches), rows k·b + i: ε and x_t
 *                (fr_dgpo_noise, one ε per group and time with use_shared_noise), v of the
 *                policy, v_ref of the base, v_old of the EMA reference, all conditional;
 *                fr_dgpo_loss with gout = 1/grad_accum → dL/dv → backward; after every
 *                grad_accum micro-batches one optimiser step, then the EMA reference ←
 *                lerp(d = min(ema_ref_decay, 0.001·global step before the step))
 *
 * audit.log records of an epoch: prompts, samples (N, D), rewards, reward_mean, reward_std,
 * adv, times (I64 (M,)), per micro-batch q: b<q>.t (M·b), b<q>.d (M·b, F64 d_θ), b<q>.w
 * (M·b, F64 group weights), b<q>.loss; per optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>;
 * then dgpo_ema_ref.<NAME> and the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dgpo.h"
#include "flowrl/audit.h"
#include "flowrl/awm.h"
#include "flowrl/cond.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_dgpo_opts o;
    fr_dgpo_params prm;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model ema; /* the EMA reference θ_ema (the code's ema_ref) */
    int have_ema;
    fr_model_ws ws, ws_ref, ws_ema;
    int have_ws, have_ws_ref, have_ws_ema;
    int need_old;
    int64_t N, D, S, K, b;
    fr_backend *be;
    fr_run_samples fin;             /* the epoch's final samples, rewards, advantages */
    /* backend memory: the rollout's samples, and one micro-batch of K·b rows with its inputs */
    float *eps, *xt, *v, *v_ref, *v_old, *gv; /* (K·b, D) */
    float *d_t, *d_tin;                 /* (K·b,) */
    uint32_t *d_nid;                    /* (b,) */
    int32_t *c;                         /* (K·b, S) */
    /* host */
    uint32_t *nid;                      /* (b,) */
    int *bpid;                          /* (b,) */
    float *t, *tin;                     /* (K·b,) */
    int32_t *c_h;                       /* (K·b, S) */
    double *d, *w;                      /* (K·b,) */
    int64_t *idx;                       /* (K,) */
} dgpo_state;

void fr_dgpo_algo_free(void *p)
{
    dgpo_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_ws_ema) fr_model_ws_free(&t->ws_ema);
    if (t->have_ema) fr_model_free(&t->ema);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->eps, t->xt, t->v, t->v_ref, t->v_old, t->gv, t->d_t, t->d_tin, t->d_nid, t->c};
    fr_run_samples_free(&t->fin);
    void *bufs[] = {t->nid, t->bpid, t->t, t->tin, t->c_h, t->d, t->w, t->idx};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    free(t);
}

fr_status fr_dgpo_algo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    dgpo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_dgpo_opts *)r->ao;
    FR_TRY(fr_dgpo_opts_params(ro, &t->o, &t->prm));
    t->need_old = fr_dgpo_needs_old(&t->prm);
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->K = t->o.num_train_timesteps;
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    const int64_t D = t->D, R = t->K * t->b;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    if (r->have_ref) {
        FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
        t->have_ws_ref = 1;
    }
    /* the EMA reference starts at the policy (the code clones the trainable parameters) */
    FR_TRY(fr_run_model_like(r, "ema", &t->ema)); /* LoRA: a second adapter on the base */
    t->have_ema = 1;
    for (int i = 0; i < r->pol.n_params; i++)
        FR_TRY(fr_d2d(r->be, t->ema.values[i].data, r->pol.values[i].data, fr_tensor_nbytes(&r->pol.values[i])));
    FR_TRY(fr_model_ws_alloc(&t->ws_ema, &t->ema, R, 0));
    t->have_ws_ema = 1;
    fr_backend *be = t->be = r->be;
    FR_TRY(fr_run_samples_alloc(r, &t->fin));
    if (!(t->eps = fr_dev_floats(be, R * D)) ||
        !(t->xt = fr_dev_floats(be, R * D)) || !(t->v = fr_dev_floats(be, R * D)) ||
        !(t->v_ref = fr_dev_floats(be, R * D)) || !(t->v_old = fr_dev_floats(be, R * D)) ||
        !(t->gv = fr_dev_floats(be, R * D)) || !(t->d_t = fr_dev_floats(be, R)) || !(t->d_tin = fr_dev_floats(be, R)) ||
        !(t->d_nid = fr_dev_alloc(be, (size_t)t->b * sizeof(uint32_t))) || !(t->c = fr_dev_i32(be, R * t->S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->nid, t->b) || !FR_ALLOC(t->bpid, t->b) || !FR_ALLOC(t->t, R) || !FR_ALLOC(t->tin, R) ||
        !FR_ALLOC(t->c_h, R * t->S) || !FR_ALLOC(t->d, R) || !FR_ALLOC(t->w, R) || !FR_ALLOC(t->idx, t->K))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Micro-batch q's rows (r = k·b + i over the epoch's times): the per-row values formed on the
 * host cross once; ε and x_t are drawn on the backend. */
static fr_status batch_inputs(fr_run *r, dgpo_state *t, uint32_t e, int64_t q, const float **bx0)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, S = t->S, K = t->K, R = K * b, s0 = q * b;
    for (int64_t i = 0; i < b; i++) {
        t->bpid[i] = t->fin.pid[s0 + i];
        t->nid[i] = t->o.use_shared_noise ? (uint32_t)t->fin.pid[s0 + i] : t->fin.sid[s0 + i];
    }
    for (int64_t k = 0; k < K; k++) {
        const float ts = fr_timestep_diffusers(t->rc.sigmas[t->idx[k]]); /* sample["timesteps"][:, j] */
        for (int64_t i = 0; i < b; i++) {
            t->t[k * b + i] = ts / 1000.0f;
            t->tin[k * b + i] = ts;
        }
        FR_TRY(fr_cond_ids(r->task, b, t->bpid, t->c_h + k * b * S));
    }
    FR_TRY(fr_h2d(be, t->d_nid, t->nid, (size_t)b * sizeof(uint32_t)));
    FR_TRY(fr_h2d(be, t->d_t, t->t, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    *bx0 = t->fin.x + s0 * t->D; /* the micro-batch's samples are contiguous rows of x */
    return fr_dgpo_noise(be, r->o->run.seed, e, (uint32_t)q, t->d_nid, K, b, t->D, *bx0, t->d_t, t->eps, t->xt);
}

static fr_status forward(fr_run *r, dgpo_state *t, const fr_model *m, fr_model_ws *ws, float *v)
{
    return fr_model_forward(m, r->be, ws, t->K * t->b, t->xt, t->d_tin, t->c, v);
}

typedef struct {
    double loss, dgpo_loss, kl, clipfrac, dsm, w_mean;
    double wmin, wmax, rmin, rmax;
    int64_t n;
} epoch_stats;

static fr_status update_batch(fr_run *r, dgpo_state *t, uint32_t e, int64_t q, epoch_stats *es)
{
    const int64_t b = t->b, R = t->K * b, D = t->D;
    char name[FR_AUDIT_MAX_NAME + 1];
    const float *bx0;
    FR_TRY(batch_inputs(r, t, e, q, &bx0));
    FR_TRY(forward(r, t, &r->pol, &t->ws, t->v));
    if (r->have_ref) FR_TRY(forward(r, t, &r->ref, &t->ws_ref, t->v_ref));
    if (t->need_old) FR_TRY(forward(r, t, &t->ema, &t->ws_ema, t->v_old));
    const double gout = 1.0 / (double)r->o->c.grad_accum;
    fr_dgpo_stats st;
    FR_TRY(fr_dgpo_loss(r->be, &t->prm, t->K, b, D, bx0, t->eps, t->v, r->have_ref ? t->v_ref : NULL,
                        t->need_old ? t->v_old : NULL, t->fin.group + q * b, t->fin.adv + q * b, gout, t->gv, t->d, t->w, NULL,
                        &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: DGPO loss %g in micro-batch %lld: the policy diverged",
                       (long long)r->epoch + 1, st.loss, (long long)q);
    FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
    snprintf(name, sizeof name, "b%lld.t", (long long)q);
    FR_TRY(fr_run_rec_f32(r, name, t->t, 1, R, 1, 1));
    int64_t sh = R;
    snprintf(name, sizeof name, "b%lld.d", (long long)q);
    fr_tensor dt = fr_tensor_view(t->d, FR_F64, 1, &sh);
    FR_TRY(fr_run_rec_tensor(r, name, &dt));
    snprintf(name, sizeof name, "b%lld.w", (long long)q);
    fr_tensor wt = fr_tensor_view(t->w, FR_F64, 1, &sh);
    FR_TRY(fr_run_rec_tensor(r, name, &wt));
    snprintf(name, sizeof name, "b%lld.loss", (long long)q);
    FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
    es->loss += st.loss * gout;
    es->dgpo_loss += st.dgpo_loss;
    es->kl += st.kl;
    es->clipfrac += st.clipfrac;
    es->dsm += st.dsm;
    es->w_mean += st.w_mean;
    if (st.w_min < es->wmin) es->wmin = st.w_min;
    if (st.w_max > es->wmax) es->wmax = st.w_max;
    if (st.ratio_min < es->rmin) es->rmin = st.ratio_min;
    if (st.ratio_max > es->rmax) es->rmax = st.ratio_max;
    es->n++;
    return FR_OK;
}

fr_status fr_dgpo_algo_epoch(fr_run *r, void *state)
{
    dgpo_state *t = state;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t N = t->N, nb = ro->c.num_batches, ga = ro->c.grad_accum;

    /* 1. prompts, 2. rollout (the final samples), from the EMA reference after switch_ema_ref
     * steps, 3. rewards, 4. advantages */
    const int ema_rollout = r->adam.step > t->o.switch_ema_ref;
    FR_TRY(fr_run_samples_epoch(r, ema_rollout ? &t->ema : &r->pol, &t->rc, &t->fin));
    fr_run_metric(r, "ema_rollout", (double)ema_rollout);

    /* 5. the epoch's training times */
    int64_t kept = 0;
    for (int64_t s = 0; s < N; s++) kept += t->fin.adv[s] != 0.0f;
    fr_run_metric(r, "kept", (double)kept);
    FR_TRY(fr_dgpo_times(ro->run.seed, e, t->K, t->o.trunc_steps, t->idx));
    fr_tensor it = fr_tensor_view(t->idx, FR_I64, 1, &t->K);
    FR_TRY(fr_run_rec_tensor(r, "times", &it));

    /* 6. updates; the EMA reference after every optimiser step */
    epoch_stats es = {0, 0, 0, 0, 0, 0, INFINITY, -INFINITY, INFINITY, -INFINITY, 0};
    int64_t u = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) FR_TRY(update_batch(r, t, e, q, &es));
        const int64_t global_step = r->adam.step; /* before this step */
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
        const double d = fr_dgpo_ema_decay(t->o.ema_ref_decay, global_step);
        for (int i = 0; i < r->pol.n_params; i++)
            FR_TRY(fr_awm_ema_update(r->be, fr_tensor_numel(&r->pol.values[i]), d, r->pol.values[i].data,
                                     t->ema.values[i].data));
    }
    FR_TRY(fr_run_rec_params(r, "dgpo_ema_ref.", t->ema.values));
    const double n = es.n ? (double)es.n : NAN;
    fr_run_metric(r, "loss", es.loss / (double)(u ? u : 1));
    fr_run_metric(r, "dgpo_loss", es.dgpo_loss / n);
    fr_run_metric(r, "kl", es.kl / n);
    fr_run_metric(r, "clipfrac", es.clipfrac / n);
    fr_run_metric(r, "dsm", es.dsm / n);
    fr_run_metric(r, "w_mean", es.w_mean / n);
    fr_run_metric(r, "w_min", es.n ? es.wmin : NAN);
    fr_run_metric(r, "w_max", es.n ? es.wmax : NAN);
    fr_run_metric(r, "ratio_min", es.n && t->need_old ? es.rmin : NAN);
    fr_run_metric(r, "ratio_max", es.n && t->need_old ? es.rmax : NAN);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

/* The EMA reference is part of the run's state. */
fr_status fr_dgpo_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    return fr_run_save_params(r, f, "dgpo_ema_ref.", ((dgpo_state *)state)->ema.values);
}

fr_status fr_dgpo_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    return fr_run_load_params(r, f, path, "dgpo_ema_ref.", ((dgpo_state *)state)->ema.values);
}

void fr_dgpo_algo_header(fr_run *r, void *state)
{
    dgpo_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), cfg %g; %lld times of 0..%lld without replacement, %s noise",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid),
                ro->smp.shift, (double)ro->smp.cfg, (long long)t->K, (long long)t->o.trunc_steps,
                t->o.use_shared_noise ? "group-shared" : "per-sample");
    fr_run_info(r,
                "beta_dpo %g, group %lld, clip %g (dsm %s, kl %s), beta %g, d_ref of the %s, EMA reference decay "
                "min(%g, 0.001 step), rolls out after %lld steps; %lld batches, grad accum %lld",
                t->prm.beta_dpo, (long long)t->prm.group_size, t->prm.clip_range, t->prm.clip_dsm ? "on" : "off",
                t->prm.clip_kl ? "on" : "off", t->prm.beta, t->prm.use_ema_ref ? "EMA reference" : "base",
                t->o.ema_ref_decay, (long long)t->o.switch_ema_ref, (long long)ro->c.num_batches,
                (long long)ro->c.grad_accum);
}
