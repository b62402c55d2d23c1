/* DiffusionNFT (docs/algorithms/nft.md) on the run loop (flowrl/run.h, flowrl/algo.h):
 * `flowrl train --algo nft`. The objective is core/nft.c (flowrl/nft.h); this file is its
 * epoch.
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts; G samples per prompt, sample id s = p·G + g
 *   2. rollout   the OLD policy θ_old with a deterministic solver (dpm by default) over T
 *                steps; only the final x0 is kept
 *   3. rewards   fr_run_rewards;   4. advantages   fr_run_advantages (global std by default)
 *   5. batches   all N samples in the order of fr_run_shuffle, cut into num_batches of b
 *   6. updates   per batch q: J = int(T·fraction) times per sample (fr_nft_times: the first
 *                J of the sample's permutation of the grid), ε and x_t (fr_nft_noise), v, v_old
 *                and v_ref (β_KL > 0) on the J·b rows (the conditional model, CFG 1),
 *                fr_nft_loss with gout = 1/grad_accum → backward; one optimiser step after
 *                every grad_accum batches
 *   7. old policy θ_old ← d·θ_old + (1 − d)·θ, d = fr_nft_decay(decay_type, global step)
 *
 * audit.log records of an epoch: prompts, noise.x_T, samples (N, D), rewards, reward_mean,
 * reward_std, adv, order (I64 (N,)), per batch q: b<q>.t (J·b), b<q>.r (F64 (b,)),
 * b<q>.loss; per optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>; then nft_old.<NAME>
 * and the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/nft.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_nft_opts o;
    fr_nft_params prm;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model old; /* θ_old: rolls out, and v_old */
    int have_old;
    fr_model_ws ws, ws_old, ws_ref;
    int have_ws, have_ws_old, have_ws_ref;
    int64_t N, D, S, J, b;
    fr_backend *be;
    fr_run_samples fin;             /* the epoch's final samples, rewards, advantages */
    /* backend memory */
    float *bx0;                        /* (b, D) */
    float *eps, *xt, *v, *v_old, *v_ref, *gv; /* (J·b, D) */
    float *d_t, *d_tin;                /* (J·b,) */
    uint32_t *d_bsid;                  /* (b,) */
    int32_t *d_rows;                   /* (b,) */
    int32_t *c;                        /* (J·b, S) */
    /* host */
    int64_t *order;            /* (N,) */
    uint32_t *bsid;                    /* (b,) */
    int32_t *brows;                    /* (b,) */
    int *bpid;                         /* (b,) */
    float *badv;                       /* (b,) */
    double *br;                        /* (b,) */
    float *t, *tin;                    /* (J·b,) */
    int32_t *c_h;                      /* (J·b, S) */
} nft_state;

void fr_nft_algo_free(void *p)
{
    nft_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_old) fr_model_ws_free(&t->ws_old);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_old) fr_model_free(&t->old);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->bx0,  t->eps, t->xt,     t->v,      t->v_old, t->v_ref,
                   t->gv, t->d_t,  t->d_tin, t->d_bsid, t->d_rows, t->c};
    fr_run_samples_free(&t->fin);
    void *bufs[] = {t->order, t->bsid, t->brows, t->bpid, t->badv, t->br, t->t, t->tin, t->c_h};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], bufs, sizeof bufs / sizeof bufs[0]);
    free(t);
}

fr_status fr_nft_algo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    nft_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_nft_opts *)r->ao;
    FR_TRY(fr_nft_opts_params(ro, &t->o, &t->prm));
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->J = (int64_t)((double)ro->smp.num_steps * ro->c.timestep_fraction);
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    const int64_t N = t->N, D = t->D, R = t->J * t->b;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    /* the old policy starts at the policy (the code's "old" adapter copies "default") */
    FR_TRY(fr_run_model_like(r, "old", &t->old)); /* LoRA: a second adapter on the base */
    t->have_old = 1;
    for (int i = 0; i < r->pol.n_params; i++)
        FR_TRY(fr_d2d(r->be, t->old.values[i].data, r->pol.values[i].data, fr_tensor_nbytes(&r->pol.values[i])));
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_old, &t->old, R, 0));
    t->have_ws_old = 1;
    if (r->have_ref) {
        FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
        t->have_ws_ref = 1;
    }
    fr_backend *be = t->be = r->be;
    FR_TRY(fr_run_samples_alloc(r, &t->fin));
    if (!(t->bx0 = fr_dev_floats(be, t->b * D)) ||
        !(t->eps = fr_dev_floats(be, R * D)) || !(t->xt = fr_dev_floats(be, R * D)) ||
        !(t->v = fr_dev_floats(be, R * D)) || !(t->v_old = fr_dev_floats(be, R * D)) ||
        !(t->v_ref = fr_dev_floats(be, R * D)) || !(t->gv = fr_dev_floats(be, R * D)) ||
        !(t->d_t = fr_dev_floats(be, R)) || !(t->d_tin = fr_dev_floats(be, R)) ||
        !(t->d_bsid = fr_dev_alloc(be, (size_t)t->b * sizeof(uint32_t))) || !(t->d_rows = fr_dev_i32(be, t->b)) ||
        !(t->c = fr_dev_i32(be, R * t->S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->order, N) || !FR_ALLOC(t->bsid, t->b) || !FR_ALLOC(t->brows, t->b) || !FR_ALLOC(t->bpid, t->b) ||
        !FR_ALLOC(t->badv, t->b) || !FR_ALLOC(t->br, t->b) || !FR_ALLOC(t->t, R) || !FR_ALLOC(t->tin, R) || !FR_ALLOC(t->c_h, R * t->S))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Batch q's rows r = j·b + i: the samples gathered backend to backend, times, noise,
 * conditions and model times formed on the host and uploaded once. */
static fr_status batch_inputs(fr_run *r, nft_state *t, uint32_t e, int64_t q)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, D = t->D, S = t->S, J = t->J, R = J * b;
    const int64_t *rows = t->order + q * b;
    for (int64_t i = 0; i < b; i++) {
        t->brows[i] = (int32_t)rows[i];
        t->bsid[i] = t->fin.sid[rows[i]];
        t->bpid[i] = t->fin.pid[rows[i]];
        t->badv[i] = t->fin.adv[rows[i]];
    }
    FR_TRY(fr_h2d(be, t->d_rows, t->brows, (size_t)b * sizeof(int32_t)));
    be->ops->gather_rows(b, D, t->d_rows, t->N, t->fin.x, t->bx0);
    FR_TRY(fr_nft_times(r->o->run.seed, e, t->bsid, b, t->rc.T, J, t->rc.sigmas, t->t));
    for (int64_t j = 0; j < J; j++) FR_TRY(fr_cond_ids(r->task, b, t->bpid, t->c_h + j * b * S));
    for (int64_t i = 0; i < R; i++) t->tin[i] = fr_timestep_diffusers(t->t[i]);
    FR_TRY(fr_h2d(be, t->d_bsid, t->bsid, (size_t)b * sizeof(uint32_t)));
    FR_TRY(fr_h2d(be, t->d_t, t->t, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    return fr_nft_noise(be, r->o->run.seed, e, t->d_bsid, J, b, D, t->bx0, t->d_t, t->eps, t->xt);
}

static fr_status forward(fr_run *r, nft_state *t, const fr_model *m, fr_model_ws *ws, float *v)
{
    return fr_model_forward(m, r->be, ws, t->J * t->b, t->xt, t->d_tin, t->c, v);
}

typedef struct {
    double loss, kl, r_mean, pos, neg;
    int64_t n;
} epoch_stats;

static fr_status update_batch(fr_run *r, nft_state *t, uint32_t e, int64_t q, epoch_stats *es)
{
    const int64_t R = t->J * t->b, D = t->D;
    char name[FR_AUDIT_MAX_NAME + 1];
    FR_TRY(batch_inputs(r, t, e, q));
    FR_TRY(forward(r, t, &t->old, &t->ws_old, t->v_old));
    FR_TRY(forward(r, t, &r->pol, &t->ws, t->v));
    if (r->have_ref) FR_TRY(forward(r, t, &r->ref, &t->ws_ref, t->v_ref));
    const double gout = 1.0 / (double)r->o->c.grad_accum;
    fr_nft_stats st;
    FR_TRY(fr_nft_loss(r->be, &t->prm, t->J, t->b, D, t->t, t->d_t, t->bx0, t->xt, t->v, t->v_old,
                       r->have_ref ? t->v_ref : NULL, t->badv, gout, t->gv, t->br, &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: NFT loss %g in batch %lld: the policy diverged",
                       (long long)r->epoch + 1, st.loss, (long long)q);
    FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
    snprintf(name, sizeof name, "b%lld.t", (long long)q);
    FR_TRY(fr_run_rec_f32(r, name, t->t, 1, R, 1, 1));
    snprintf(name, sizeof name, "b%lld.r", (long long)q);
    fr_tensor rt = fr_tensor_view(t->br, FR_F64, 1, &t->b);
    FR_TRY(fr_run_rec_tensor(r, name, &rt));
    snprintf(name, sizeof name, "b%lld.loss", (long long)q);
    FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
    es->loss += st.loss * gout;
    es->kl += st.kl;
    es->r_mean += st.r_mean;
    es->pos += st.pos_loss;
    es->neg += st.neg_loss;
    es->n++;
    return FR_OK;
}

fr_status fr_nft_algo_epoch(fr_run *r, void *state)
{
    nft_state *t = state;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t N = t->N, nb = ro->c.num_batches, ga = ro->c.grad_accum;

    /* 1. prompts, 2. rollout of the old policy (the final samples), 3. rewards, 4. advantages */
    FR_TRY(fr_run_samples_epoch(r, &t->old, &t->rc, &t->fin));

    /* 5. batches */
    int64_t n_order;
    FR_TRY(fr_run_shuffle(r, N, NULL, t->order, &n_order));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &N);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));

    /* 6. updates */
    epoch_stats es = {0, 0, 0, 0, 0, 0};
    int64_t u = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) FR_TRY(update_batch(r, t, e, q, &es));
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
    }
    /* 7. the old policy after the epoch (global step = optimiser steps so far) */
    const double d = fr_nft_decay((int)t->o.decay_type, r->adam.step);
    for (int i = 0; i < r->pol.n_params; i++)
        r->be->ops->ema_lerp(fr_tensor_numel(&r->pol.values[i]), d, r->pol.values[i].data, t->old.values[i].data);
    FR_TRY(fr_run_rec_params(r, "nft_old.", t->old.values));
    const double n = es.n ? (double)es.n : NAN;
    fr_run_metric(r, "loss", es.loss / (double)(u ? u : 1));
    fr_run_metric(r, "kl", es.kl / n);
    fr_run_metric(r, "r_mean", es.r_mean / n);
    fr_run_metric(r, "pos_loss", es.pos / n);
    fr_run_metric(r, "neg_loss", es.neg / n);
    fr_run_metric(r, "old_decay", d);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

/* The old policy is part of the run's state. */
fr_status fr_nft_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    nft_state *t = state;
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < r->pol.n_params; i++) {
        snprintf(name, sizeof name, "nft_old.%s", r->pol.params[i].name);
        fr_tensor h;
        FR_TRY(fr_run_host_copy(r, &t->old.values[i], &h));
        fr_status s = fr_st_add_take(f, name, &h);
        fr_tensor_free(&h);
        FR_TRY(s);
    }
    return FR_OK;
}

fr_status fr_nft_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    nft_state *t = state;
    char name[FR_AUDIT_MAX_NAME + 1];
    for (int i = 0; i < r->pol.n_params; i++) {
        snprintf(name, sizeof name, "nft_old.%s", r->pol.params[i].name);
        const fr_tensor *v = fr_st_get(f, name);
        if (!v || v->dtype != FR_F32 || fr_tensor_numel(v) != fr_tensor_numel(&t->old.values[i]))
            return fr_fail(FR_ERR_FORMAT, "%s: tensor %s missing or of the wrong shape", path, name);
        FR_TRY(fr_h2d(r->be, t->old.values[i].data, v->data, fr_tensor_nbytes(v)));
    }
    return FR_OK;
}

void fr_nft_algo_header(fr_run *r, void *state)
{
    nft_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "old policy rolls out: sampler %s, %lld steps (%s grid, shift %g), cfg %g; J %lld times per sample",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid),
                ro->smp.shift, (double)ro->smp.cfg, (long long)t->J);
    fr_run_info(r, "nft_beta %g, adv_mode %s, adv_clip %g, beta (KL) %g, decay_type %lld; %lld batches, grad accum %lld",
                t->prm.beta, fr_nft_adv_mode_name(t->prm.adv_mode), t->prm.adv_clip_max, t->prm.kl_beta,
                (long long)t->o.decay_type, (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}
