/* Diffusion-DRO, denoising ranking optimization (docs/algorithms/dro.md; spec/objectives.md
 * §19; basiclab/DiffusionDRO @ b0693ec train.py, misc/buffer.py) on the run loop (flowrl/run.h):
 * `flowrl train --algo diffusion-dro`. The loss is core/dro.c (flowrl/dro.h); this file is the
 * replay buffer, the lagged sampler and the epoch.
 *
 * An epoch is num_batches micro-batches of b = P·G / num_batches rows (the public `step`s of
 * batch_size rows), one optimiser step per grad_accum of them; micro-batch m (global, 0-based):
 *   1. refresh   (m = 0 or (m + 1) % buffer_every == 0) b expert items x0 (the winners of
 *                --prefs, in a shuffled order per pass), each row's prompt dropped with
 *                probability cond_drop; b trajectories of the lagged sampler from fresh x_T,
 *                DDIM with η = 0 over T steps at the timesteps (T−1−k)·(n_train/T) + p_i, p_i a
 *                per-row jitter; per step (t, x_t, ε̂) is stored; the last buffer_size rows of
 *                the buffer are kept (FIFO). The trajectories' end points are scored (the run's
 *                reward curve: nothing in the loss reads them).
 *   2. pick      b (trajectory, step) rows of the buffer (fr_dro_pick)
 *   3. rows      expert rows x̄_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε̄ (fresh ε̄) and policy rows (x_t, ε̂)
 *                at the picked t with the trajectory's condition, forward through the policy
 *                and the frozen base; fr_dro_loss with gout = 1/grad_accum; backward
 *   4. after every grad_accum micro-batches one optimiser step; after micro-batch m with
 *      (m + 1) % lag_steps == 0 the lagged sampler copies the policy.
 *
 * Randomness (Philox, key (seed, purpose); flowrl/dro.h for the picks):
 *   FR_RNG_DRO_DATA   expert order of pass k: fr_rng_perm(c0 = k, c1 = 0) over the N_pairs
 *                     winners, item m·b + i of the stream; drop u(m, i, 1, 0) < cond_drop;
 *                     jitter below(u32(m, i, 2, 0), n_train/T)
 *   FR_RNG_DRO_NOISE  ε̄ row j of micro-batch m: normals (m, j, 0); x_T row i: (m, i, 1)
 *
 * audit.log records of an epoch, per micro-batch q: q<q>.refresh (I64 (b, 3): expert item,
 * condition prompt (−1 null), jitter) when it refreshed, q<q>.pick (I64 (b, 2): buffer
 * position, step), q<q>.e (F64 (4, b): e_θ^exp, e_θ^pol, e_ref^exp, e_ref^pol), q<q>.loss; per
 * optimiser step u<u>.grad_norm, u<u>.grad.<NAME>; then samples (the refreshed end points),
 * rewards, reward_mean, reward_std, buffer.x0, buffer.xt, buffer.eps, buffer.t, dro_lag.<NAME>
 * and the loop's state records. The checkpoint holds the buffer and the lagged sampler, so a
 * resumed run writes the same records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dro.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/digest.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/safetensors.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_dro_opts o;
    fr_backend *be;
    int64_t D, S, T, b, C, n_pairs, n_train, ratio;
    const float *alpha_bar;       /* (n_train,) the base's DDPM table (the run's) */
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model lag;                 /* the lagged sampler (the code's unet_policy) */
    int have_lag;
    fr_model_ws ws, ws_ref, ws_lag;
    int have_ws, have_ws_ref, have_ws_lag;
    char prefs_digest[17];
    /* expert data: backend (n_pairs, D); host prompts (n_pairs,), the order of the current pass */
    float *xw;
    int32_t *xw_prompt;
    int64_t *perm, perm_pass;
    /* the replay buffer: backend rows, host times / conditions; position j lives in slot
     * (head + j) mod C, j = 0 the oldest */
    float *bx0, *bxt, *beps;      /* (C, D), (C·T, D), (C·T, D) */
    int32_t *bt, *bc;             /* (C·T,), (C,) host */
    int64_t head, n;
    /* one micro-batch (2b rows: expert, then policy) and one refresh (b rows), backend */
    float *X, *E, *out, *out_ref, *grad; /* (2b, D) */
    float *tin, *coef;            /* (2b,), (2b,): √ᾱ, √(1 − ᾱ) of the expert rows */
    float *x0s;                   /* (b, D) the picked rows' expert samples */
    int32_t *cd, *gidx;           /* (2b, S), (2b,) */
    uint32_t *ids;                /* (b,) 0..b−1: the noise rows' counter c1 */
    float *rx, *reps, *rtin;      /* (b, D), (b, D), (b,) */
    int32_t *rc_dev;              /* (b, S) */
    /* host */
    float *tin_h, *coef_h, *rtin_h;
    int32_t *cd_h, *gidx_h, *rc_h;
    int *prow, *pcond;            /* (b,) prompts of a refresh: the expert's, and after the drop */
    int64_t *jit, *item, *pick_pos, *pick_step, *rec;
    double *e;                    /* (4, b) */
    /* the epoch's refreshed end points: host (N, D), their prompts, rewards */
    float *xe_h, *rew;
    int *pe, *correct;
} dro_state;

void fr_dro_algo_free(void *p)
{
    dro_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    if (t->have_ws_lag) fr_model_ws_free(&t->ws_lag);
    if (t->have_lag) fr_model_free(&t->lag);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->xw, t->bx0, t->bxt, t->beps, t->X, t->E, t->out, t->out_ref, t->grad, t->tin, t->coef, t->x0s,
                   t->cd, t->gidx, t->ids, t->rx, t->reps, t->rtin, t->rc_dev};
    void *host[] = {t->xw_prompt, t->perm, t->bt, t->bc, t->tin_h, t->coef_h, t->rtin_h, t->cd_h, t->gidx_h,
                    t->rc_h, t->prow, t->pcond, t->jit, t->item, t->pick_pos, t->pick_step, t->rec, t->e,
                    t->xe_h, t->rew, t->pe, t->correct};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

fr_status fr_dro_algo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    dro_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_dro_opts *)r->ao;
    fr_backend *be = t->be = r->be;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->b = ro->c.prompts * ro->c.group / ro->c.num_batches;
    t->C = t->o.buffer_size;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    t->T = t->rc.T;
    t->n_train = t->rc.n_train;
    t->alpha_bar = t->rc.alpha_bar;
    t->ratio = t->n_train / t->T;
    const int64_t D = t->D, S = t->S, b = t->b, C = t->C, T = t->T;
    /* the expert data: the winners of the preference file, on the backend once */
    FR_TRY(fr_prefs_load_dev(be, t->o.prefs, r->task, 0, &t->xw, &t->xw_prompt, &t->n_pairs, t->prefs_digest));
    if (!FR_ALLOC(t->perm, t->n_pairs)) return FR_ERR_NOMEM;
    t->perm_pass = -1;
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, 2 * b, 1));
    t->have_ws = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, 2 * b, 0));
    t->have_ws_ref = 1;
    /* the lagged sampler starts at the policy (`unet_policy.load_state_dict(unet)`) */
    FR_TRY(fr_model_alloc(&t->lag, be, &r->pol.cfg));
    t->have_lag = 1;
    FR_TRY(fr_model_copy_values(&t->lag, &r->pol));
    FR_TRY(fr_model_ws_alloc(&t->ws_lag, &t->lag, b, 0));
    t->have_ws_lag = 1;
    const int64_t N = ro->c.prompts * ro->c.group;
    if (!(t->bx0 = fr_dev_floats(be, C * D)) || !(t->bxt = fr_dev_floats(be, C * T * D)) ||
        !(t->beps = fr_dev_floats(be, C * T * D)) || !(t->X = fr_dev_floats(be, 2 * b * D)) ||
        !(t->E = fr_dev_floats(be, 2 * b * D)) || !(t->out = fr_dev_floats(be, 2 * b * D)) ||
        !(t->out_ref = fr_dev_floats(be, 2 * b * D)) || !(t->grad = fr_dev_floats(be, 2 * b * D)) ||
        !(t->tin = fr_dev_floats(be, 2 * b)) || !(t->coef = fr_dev_floats(be, 2 * b)) ||
        !(t->x0s = fr_dev_floats(be, b * D)) || !(t->cd = fr_dev_i32(be, 2 * b * S)) ||
        !(t->gidx = fr_dev_i32(be, 2 * b)) || !(t->ids = fr_dev_alloc(be, (size_t)b * sizeof(uint32_t))) ||
        !(t->rx = fr_dev_floats(be, b * D)) || !(t->reps = fr_dev_floats(be, b * D)) ||
        !(t->rtin = fr_dev_floats(be, b)) || !(t->rc_dev = fr_dev_i32(be, b * S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->bt, C * T) || !FR_ALLOC(t->bc, C) || !FR_ALLOC(t->tin_h, 2 * b) || !FR_ALLOC(t->coef_h, 2 * b) ||
        !FR_ALLOC(t->rtin_h, b) || !FR_ALLOC(t->cd_h, 2 * b * S) || !FR_ALLOC(t->gidx_h, 2 * b) ||
        !FR_ALLOC(t->rc_h, b * S) || !FR_ALLOC(t->prow, b) || !FR_ALLOC(t->pcond, b) || !FR_ALLOC(t->jit, b) ||
        !FR_ALLOC(t->item, b) || !FR_ALLOC(t->pick_pos, b) || !FR_ALLOC(t->pick_step, b) || !FR_ALLOC(t->rec, 3 * b) ||
        !FR_ALLOC(t->e, 4 * b) || !FR_ALLOC(t->xe_h, N * D) || !FR_ALLOC(t->rew, N) || !FR_ALLOC(t->pe, N) ||
        !FR_ALLOC(t->correct, N))
        return FR_ERR_NOMEM;
    uint32_t *ids = fr_malloc((size_t)b * sizeof *ids);
    if (!ids) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < b; i++) ids[i] = (uint32_t)i;
    fr_status s = fr_h2d(be, t->ids, ids, (size_t)b * sizeof *ids);
    free(ids);
    return s;
}

/* ---- the replay buffer ------------------------------------------------------------------------ */

static int64_t slot_of(const dro_state *t, int64_t pos) { return (t->head + pos) % t->C; }

/* Expert item g of the stream: the winner perm_k[g mod N_pairs] of pass k = g / N_pairs. */
static int64_t expert_item(fr_run *r, dro_state *t, int64_t g)
{
    const int64_t k = g / t->n_pairs;
    if (k != t->perm_pass) {
        fr_rng_perm(t->perm, t->n_pairs, r->o->run.seed, FR_RNG_DRO_DATA, (uint32_t)k, 0);
        t->perm_pass = k;
    }
    return t->perm[g % t->n_pairs];
}

/* Refresh at micro-batch m: b trajectories of the lagged sampler; the last min(b, C) enter the
 * buffer (the code's cat + trim to the last buffer_size). Their end points go to xe_h + off·D. */
static fr_status refresh(fr_run *r, dro_state *t, int64_t m, int64_t q, int64_t off)
{
    fr_backend *be = t->be;
    const uint32_t seed = r->o->run.seed, um = (uint32_t)m;
    const int64_t b = t->b, D = t->D, S = t->S, T = t->T, C = t->C;
    for (int64_t i = 0; i < b; i++) {
        const uint32_t ui = (uint32_t)i;
        t->item[i] = expert_item(r, t, m * b + i);
        t->prow[i] = t->xw_prompt[t->item[i]];
        t->pcond[i] = fr_rng_uniform(seed, FR_RNG_DRO_DATA, um, ui, 1, 0) < t->o.cond_drop ? -1 : t->prow[i];
        t->jit[i] = t->o.jitter ? fr_rng_below(fr_rng_u32(seed, FR_RNG_DRO_DATA, um, ui, 2, 0), (uint32_t)t->ratio) : 0;
        t->rec[3 * i] = t->item[i], t->rec[3 * i + 1] = t->pcond[i], t->rec[3 * i + 2] = t->jit[i];
        t->pe[off + i] = t->prow[i];
    }
    char name[FR_AUDIT_MAX_NAME + 1];
    snprintf(name, sizeof name, "q%lld.refresh", (long long)q);
    int64_t sh[2] = {b, 3};
    fr_tensor rt = fr_tensor_view(t->rec, FR_I64, 2, sh);
    FR_TRY(fr_run_rec_tensor(r, name, &rt));
    /* the kept rows' slots, in order (the oldest are overwritten once the buffer is full) */
    const int64_t keep = b < C ? b : C, first = b - keep;
    int64_t slot[64], *slots = keep <= 64 ? slot : fr_malloc((size_t)keep * sizeof *slots);
    if (!slots) return FR_ERR_NOMEM;
    for (int64_t k = 0; k < keep; k++) {
        if (t->n < C) {
            slots[k] = (t->head + t->n) % C;
            t->n++;
        } else {
            slots[k] = t->head;
            t->head = (t->head + 1) % C;
        }
        t->bc[slots[k]] = t->pcond[first + k];
    }
    fr_status s = fr_cond_ids(r->task, b, t->pcond, t->rc_h);
    if (s == FR_OK) s = fr_h2d(be, t->rc_dev, t->rc_h, (size_t)(b * S) * sizeof(int32_t));
    for (int64_t k = 0; k < keep && s == FR_OK; k++)
        s = fr_d2d(be, t->bx0 + slots[k] * D, t->xw + t->item[first + k] * D, (size_t)D * sizeof(float));
    /* x_T row i: normals (m, i, 1) */
    if (s == FR_OK) be->ops->rng_normal_rows(b, D, seed, FR_RNG_DRO_NOISE, um, b, t->ids, 1, t->rx);
    for (int64_t k = 0; k < T && s == FR_OK; k++) {
        for (int64_t i = 0; i < b; i++)
            t->rtin_h[i] = (float)(t->o.jitter ? (T - 1 - k) * t->ratio + t->jit[i] : t->rc.timesteps[k]);
        s = fr_h2d(be, t->rtin, t->rtin_h, (size_t)b * sizeof(float));
        if (s == FR_OK) s = fr_model_forward(&t->lag, be, &t->ws_lag, b, t->rx, t->rtin, t->rc_dev, t->reps);
        for (int64_t j = 0; j < keep && s == FR_OK; j++) { /* (t, x_t, ε̂) of the step, before it */
            const int64_t row = (slots[j] * T + k) * D, i = first + j;
            t->bt[slots[j] * T + k] = (int32_t)t->rtin_h[i];
            s = fr_d2d(be, t->bxt + row, t->rx + i * D, (size_t)D * sizeof(float));
            if (s == FR_OK) s = fr_d2d(be, t->beps + row, t->reps + i * D, (size_t)D * sizeof(float));
        }
        for (int64_t i = 0; i < b && s == FR_OK; i++) { /* DDIM η = 0 at the row's own times */
            const int64_t ts = (int64_t)t->rtin_h[i], prev = fr_ddim_prev_timestep(ts, T, t->n_train);
            fr_step p;
            memset(&p, 0, sizeof p);
            p.kind = FR_SAMPLER_DDIM;
            p.alpha_bar = t->alpha_bar[ts];
            p.alpha_bar_prev = t->alpha_bar[prev];
            p.x0_clip = t->rc.x0_clip;
            s = fr_sampler_step(be, &p, 1, D, t->rx + i * D, t->reps + i * D, NULL, NULL, t->rx + i * D, NULL, NULL,
                                NULL);
        }
    }
    if (slots != slot) free(slots);
    FR_TRY(s);
    return fr_run_reward_input(r, t->xe_h + off * D, t->rx, b * D);
}

/* ---- one micro-batch ------------------------------------------------------------------------- */

typedef struct {
    double loss, diff, active, e_exp, e_pol, e_exp_ref, e_pol_ref;
    int64_t n;
} epoch_stats;

static fr_status micro_batch(fr_run *r, dro_state *t, int64_t m, int64_t q, epoch_stats *es)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, D = t->D, S = t->S, T = t->T;
    char name[FR_AUDIT_MAX_NAME + 1];
    FR_TRY(fr_dro_pick(r->o->run.seed, (uint32_t)m, t->n, T, b, t->pick_pos, t->pick_step));
    int *cp = fr_malloc((size_t)(2 * b) * sizeof *cp);
    fr_status s = cp ? FR_OK : FR_ERR_NOMEM;
    for (int64_t j = 0; j < b && s == FR_OK; j++) {
        const int64_t sl = slot_of(t, t->pick_pos[j]), row = sl * T + t->pick_step[j];
        const int32_t ts = t->bt[row];
        t->gidx_h[j] = (int32_t)row;         /* policy rows from the (C·T, D) tables */
        t->gidx_h[b + j] = (int32_t)sl;      /* the trajectory's expert sample */
        t->tin_h[j] = t->tin_h[b + j] = (float)ts;
        fr_ddpm_coefs(t->alpha_bar[ts], &t->coef_h[j], &t->coef_h[b + j]);
        cp[j] = cp[b + j] = t->bc[sl];
        t->rec[2 * j] = t->pick_pos[j], t->rec[2 * j + 1] = t->pick_step[j];
    }
    if (s == FR_OK) s = fr_cond_ids(r->task, 2 * b, cp, t->cd_h);
    free(cp);
    FR_TRY(s);
    snprintf(name, sizeof name, "q%lld.pick", (long long)q);
    int64_t sh[2] = {b, 2};
    fr_tensor pt = fr_tensor_view(t->rec, FR_I64, 2, sh);
    FR_TRY(fr_run_rec_tensor(r, name, &pt));
    FR_TRY(fr_h2d(be, t->gidx, t->gidx_h, (size_t)(2 * b) * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->tin, t->tin_h, (size_t)(2 * b) * sizeof(float)));
    FR_TRY(fr_h2d(be, t->coef, t->coef_h, (size_t)(2 * b) * sizeof(float)));
    FR_TRY(fr_h2d(be, t->cd, t->cd_h, (size_t)(2 * b * S) * sizeof(int32_t)));
    /* policy rows [b, 2b): (x_t, ε̂) of the buffer; expert rows [0, b): x̄_t of x0 with fresh ε̄ */
    be->ops->gather_rows(b, D, t->gidx, t->C * T, t->bxt, t->X + b * D);
    be->ops->gather_rows(b, D, t->gidx, t->C * T, t->beps, t->E + b * D);
    be->ops->gather_rows(b, D, t->gidx + b, t->C, t->bx0, t->x0s);
    be->ops->rng_normal_rows(b, D, r->o->run.seed, FR_RNG_DRO_NOISE, (uint32_t)m, b, t->ids, 0, t->E);
    be->ops->noise_mix(b, b, D, t->x0s, t->E, t->coef, t->coef + b, t->X); /* noise_scheduler.add_noise */
    FR_TRY(fr_model_forward(&r->ref, be, &t->ws_ref, 2 * b, t->X, t->tin, t->cd, t->out_ref));
    FR_TRY(fr_model_forward(&r->pol, be, &t->ws, 2 * b, t->X, t->tin, t->cd, t->out));
    const double gout = 1.0 / (double)r->o->c.grad_accum;
    fr_dro_stats st;
    FR_TRY(fr_dro_loss(be, t->o.margin, b, D, t->out, t->out_ref, t->E, gout, t->grad, t->e, NULL, NULL, &st));
    if (!isfinite(st.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: DRO loss %g in micro-batch %lld: the policy diverged",
                       (long long)r->epoch + 1, st.loss, (long long)q);
    FR_TRY(fr_model_backward(&r->pol, be, &t->ws, t->grad, NULL));
    snprintf(name, sizeof name, "q%lld.e", (long long)q);
    int64_t se[2] = {4, b};
    fr_tensor et = fr_tensor_view(t->e, FR_F64, 2, se);
    FR_TRY(fr_run_rec_tensor(r, name, &et));
    snprintf(name, sizeof name, "q%lld.loss", (long long)q);
    FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
    es->loss += st.loss, es->diff += st.diff_mean, es->active += st.active;
    es->e_exp += st.e_exp, es->e_pol += st.e_pol, es->e_exp_ref += st.e_exp_ref, es->e_pol_ref += st.e_pol_ref;
    es->n++;
    return FR_OK;
}

static fr_status rec_buffer(fr_run *r, dro_state *t)
{
    const int64_t C = t->C, T = t->T, D = t->D;
    int64_t s0[2] = {C, D}, s1[2] = {C * T, D}, s2[1] = {C * T};
    fr_tensor x0 = fr_tensor_view(t->bx0, FR_F32, 2, s0), xt = fr_tensor_view(t->bxt, FR_F32, 2, s1),
              ep = fr_tensor_view(t->beps, FR_F32, 2, s1), tt = fr_tensor_view(t->bt, FR_I32, 1, s2);
    FR_TRY(fr_run_rec_dev(r, "buffer.x0", &x0));
    FR_TRY(fr_run_rec_dev(r, "buffer.xt", &xt));
    FR_TRY(fr_run_rec_dev(r, "buffer.eps", &ep));
    return fr_run_rec_tensor(r, "buffer.t", &tt);
}

fr_status fr_dro_algo_epoch(fr_run *r, void *state)
{
    dro_state *t = state;
    const fr_run_opts *ro = r->o;
    const int64_t nb = ro->c.num_batches, ga = ro->c.grad_accum, b = t->b, D = t->D;
    epoch_stats es = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t u = 0, scored = 0;
    float gn = NAN;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) {
            const int64_t m = r->epoch * nb + q;
            if (t->n == 0 || (m + 1) % t->o.buffer_every == 0) {
                FR_TRY(refresh(r, t, m, q, scored));
                scored += b;
            }
            FR_TRY(micro_batch(r, t, m, q, &es));
            if (q == q0 + ga - 1) FR_TRY(fr_run_optimizer_step(r, u, &gn));
            /* after the (accumulating) optimiser step: `if step % buffer_update_steps == 0` */
            if ((m + 1) % t->o.lag_steps == 0) FR_TRY(fr_model_copy_values(&t->lag, &r->pol));
        }
    }
    FR_TRY(fr_run_check_finite(r, "buffer sample", t->xe_h, scored * D));
    FR_TRY(fr_run_rec_f32(r, "samples", t->xe_h, 2, scored, D, 1));
    FR_TRY(fr_run_rewards(r, scored, t->pe, t->xe_h, t->rew, t->correct));
    FR_TRY(rec_buffer(r, t));
    FR_TRY(fr_run_rec_params(r, "dro_lag.", t->lag.values));
    const double n = es.n ? (double)es.n : NAN;
    fr_run_metric(r, "scored", (double)scored);
    /* the expert rows it trained on: winners of the file, one per pair (bench_algos counts its budget in pairs) */
    fr_run_metric(r, "pairs", (double)(nb * b));
    fr_run_metric(r, "loss", es.loss / n);
    fr_run_metric(r, "diff", es.diff / n);
    fr_run_metric(r, "active", es.active / n);
    fr_run_metric(r, "e_exp", es.e_exp / n);
    fr_run_metric(r, "e_pol", es.e_pol / n);
    fr_run_metric(r, "e_exp_ref", es.e_exp_ref / n);
    fr_run_metric(r, "e_pol_ref", es.e_pol_ref / n);
    fr_run_metric(r, "buffer", (double)t->n);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

/* ---- checkpoint: the lagged sampler and the buffer ---------------------------------------------- */

fr_status fr_dro_algo_save(fr_run *r, void *state, fr_st_file *f)
{
    dro_state *t = state;
    const int64_t C = t->C, T = t->T, D = t->D;
    FR_TRY(fr_run_save_params(r, f, "dro_lag.", t->lag.values));
    int64_t s0[2] = {C, D}, s1[2] = {C * T, D};
    const struct {
        const char *name;
        float *p;
        int64_t *shape;
    } dev[] = {{"dro_buffer.x0", t->bx0, s0}, {"dro_buffer.xt", t->bxt, s1}, {"dro_buffer.eps", t->beps, s1}};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) {
        fr_tensor v = fr_tensor_view(dev[i].p, FR_F32, 2, dev[i].shape), h;
        FR_TRY(fr_run_host_copy(r, &v, &h));
        fr_status s = fr_st_add_take(f, dev[i].name, &h);
        fr_tensor_free(&h);
        FR_TRY(s);
    }
    int64_t st[2] = {t->head, t->n}, sc[1] = {C}, stt[1] = {C * T}, s2[1] = {2};
    fr_tensor a = fr_tensor_view(t->bt, FR_I32, 1, stt), c = fr_tensor_view(t->bc, FR_I32, 1, sc),
              hn = fr_tensor_view(st, FR_I64, 1, s2);
    FR_TRY(fr_st_add(f, "dro_buffer.t", &a));
    FR_TRY(fr_st_add(f, "dro_buffer.c", &c));
    return fr_st_add(f, "dro_buffer.head_n", &hn);
}

static fr_status get_exact(const fr_st_file *f, const char *path, const char *name, fr_dtype dt, int64_t numel,
                           const fr_tensor **out)
{
    const fr_tensor *v = fr_st_get(f, name);
    if (!v || v->dtype != dt || fr_tensor_numel(v) != numel)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor %s missing or of the wrong shape (%lld values expected)", path, name,
                       (long long)numel);
    *out = v;
    return FR_OK;
}

fr_status fr_dro_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    dro_state *t = state;
    const int64_t C = t->C, T = t->T, D = t->D;
    FR_TRY(fr_run_load_params(r, f, path, "dro_lag.", t->lag.values));
    const fr_tensor *v;
    FR_TRY(get_exact(f, path, "dro_buffer.x0", FR_F32, C * D, &v));
    FR_TRY(fr_h2d(r->be, t->bx0, v->data, fr_tensor_nbytes(v)));
    FR_TRY(get_exact(f, path, "dro_buffer.xt", FR_F32, C * T * D, &v));
    FR_TRY(fr_h2d(r->be, t->bxt, v->data, fr_tensor_nbytes(v)));
    FR_TRY(get_exact(f, path, "dro_buffer.eps", FR_F32, C * T * D, &v));
    FR_TRY(fr_h2d(r->be, t->beps, v->data, fr_tensor_nbytes(v)));
    FR_TRY(get_exact(f, path, "dro_buffer.t", FR_I32, C * T, &v));
    memcpy(t->bt, v->data, fr_tensor_nbytes(v));
    FR_TRY(get_exact(f, path, "dro_buffer.c", FR_I32, C, &v));
    memcpy(t->bc, v->data, fr_tensor_nbytes(v));
    FR_TRY(get_exact(f, path, "dro_buffer.head_n", FR_I64, 2, &v));
    const int64_t *hn = v->data;
    if (hn[0] < 0 || hn[0] >= C || hn[1] < 0 || hn[1] > C)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor dro_buffer.head_n (%lld, %lld) outside a buffer of %lld", path,
                       (long long)hn[0], (long long)hn[1], (long long)C);
    t->head = hn[0];
    t->n = hn[1];
    return FR_OK;
}

void fr_dro_algo_header(fr_run *r, void *state)
{
    dro_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "expert data: the %lld winners of %s (digest %s)", (long long)t->n_pairs, t->o.prefs,
                t->prefs_digest);
    fr_run_info(r,
                "buffer: %lld trajectories, DDIM eta 0 over %lld steps%s, %lld new every %lld micro-batches (prompt "
                "drop %g); lagged sampler copied every %lld micro-batches",
                (long long)t->C, (long long)t->T, t->o.jitter ? " (timesteps jittered per trajectory)" : "",
                (long long)t->b, (long long)t->o.buffer_every, t->o.cond_drop, (long long)t->o.lag_steps);
    fr_run_info(r, "hinge margin %g; %lld micro-batches of %lld rows, grad accum %lld", t->o.margin,
                (long long)ro->c.num_batches, (long long)t->b, (long long)ro->c.grad_accum);
}
