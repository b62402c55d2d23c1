/* Reward gradients through the sampler (docs/algorithms/draft.md; spec more.md §1): DRaFT and
 * DRaFT-K (`flowrl train --algo draft [--truncate K]`), AlignProp's random cut (`alignprop`)
 * and ReFL's one-step x̂0 (`refl`), on the run loop (flowrl/run.h, flowrl/algo.h).
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts; N = P·G samples, sample id s = p·G + g, c0 = e
 *   2. rollout   the Euler ODE (ReFL: ODE or SDE) over T steps, the trajectory kept:
 *                x_{i+1} = x_i + (σ_{i+1} − σ_i)·v_θ(x_i, σ_i)
 *   3. rewards   fr_run_rewards of the final samples (the monitored reward)
 *   4. the cut   draft c = T − K (K = 0: c = 0, full backprop); alignprop c drawn once per
 *                epoch (Philox FR_RNG_RGRAD_CUT, (e, 0, 0)); refl the gradient step m
 *   5. backward  draft / alignprop: a_T = (loss_scale/N)·ℓ'(r)·∇r(x_T) (fr_run_reward_grad),
 *                then for i = T−1 down to c, per micro-batch, recomputing v_θ(x_i) with grad:
 *                  g_θ += J_θᵀ (dt_i·a),  a ← a + J_xᵀ (dt_i·a)
 *                (steps i < c carry a stop-gradient: x_c is a constant).
 *                refl: x̂0 = x_m − σ_m·v_θ(x_m, σ_m), a = (loss_scale/N)·ℓ'(r(x̂0))·∇r(x̂0),
 *                dL/dv = −σ_m·a (x_m detached).
 *   6. update    one optimiser step (fr_run_optimizer_step) over the num_batches micro-batches.
 *
 * audit.log records of an epoch: prompts, noise.x_T (N, D), traj (T+1, N, D), samples, rewards,
 * reward_mean, reward_std, cut, [refl: x0_hat (N, D)], reward_grad (N, D: ∇r of the scored
 * samples), loss, u0.grad_norm, u0.grad.<NAME>, then the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/draft.h"
#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"
#include "flowrl/reward_grad.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_draft_opts o;
    fr_rg_variant variant;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_guided_ws gw;
    int have_gw;
    int64_t N, D, S, b, T;
    fr_backend *be;
    /* backend */
    float *x;    /* (N, D) final samples */
    float *traj; /* (T+1, N, D) */
    float *a;    /* (N, D) the adjoint dL/dx of the current step */
    float *gv;   /* (b, D) dL/dv of a step */
    float *dx;   /* (b, D) J_xᵀ gv */
    float *v;    /* (b, D) the recomputed velocity */
    float *x0;   /* (b, D) ReFL's x̂0 */
    /* host */
    int *prompts, *pid, *correct; /* (P,), (N,), (N,) */
    uint32_t *sid;                /* (N,) */
    float *x_h, *xs_h, *reward, *score, *g_h; /* (N, D), (N, D) the scored samples, (N,), (N,), (N, D) */
    int32_t *c_h;                 /* (b, S) */
} rg_state;

void fr_draft_free(void *p)
{
    rg_state *t = p;
    if (!t) return;
    if (t->have_gw) fr_guided_ws_free(&t->gw);
    fr_rollout_schedule_free(&t->sched);
    void *dev[] = {t->x, t->traj, t->a, t->gv, t->dx, t->v, t->x0};
    void *host[] = {t->prompts, t->pid, t->correct, t->sid, t->x_h, t->xs_h, t->reward, t->score, t->g_h, t->c_h};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

fr_status fr_draft_setup_variant(fr_run *r, void **out, fr_rg_variant variant)
{
    const fr_run_opts *ro = r->o;
    rg_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_draft_opts *)r->ao;
    t->variant = variant;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    t->T = ro->smp.num_steps;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    fr_backend *be = t->be = r->be;
    FR_TRY(fr_guided_ws_alloc(&t->gw, be, &r->pol, t->b, fr_guidance_from_scale(t->rc.cfg), 1));
    t->have_gw = 1;
    const int64_t N = t->N, D = t->D, b = t->b, P = ro->c.prompts;
    if (!(t->x = fr_dev_floats(be, N * D)) || !(t->traj = fr_dev_floats(be, (t->T + 1) * N * D)) ||
        !(t->a = fr_dev_floats(be, N * D)) || !(t->gv = fr_dev_floats(be, b * D)) || !(t->dx = fr_dev_floats(be, b * D)) ||
        !(t->v = fr_dev_floats(be, b * D)) || !(t->x0 = fr_dev_floats(be, b * D)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->prompts, P) || !FR_ALLOC(t->pid, N) || !FR_ALLOC(t->correct, N) || !FR_ALLOC(t->sid, N) ||
        !FR_ALLOC(t->x_h, N * D) || !FR_ALLOC(t->xs_h, N * D) || !FR_ALLOC(t->reward, N) || !FR_ALLOC(t->score, N) ||
        !FR_ALLOC(t->g_h, N * D) || !FR_ALLOC(t->c_h, b * t->S))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* ---- the cut ------------------------------------------------------------------------------- */

fr_status fr_draft_cut(fr_rg_variant variant, const fr_draft_opts *o, int64_t T, uint32_t seed, uint32_t e,
                       int64_t *cut)
{
    if (variant == FR_RG_DRAFT) {
        *cut = T - (o->truncate > 0 && o->truncate < T ? o->truncate : T);
        return FR_OK;
    }
    if (variant == FR_RG_REFL) {
        /* m uniform over the last n steps (ReFL: randint(30, 39) of 40, the last quarter) */
        int64_t n = (int64_t)llround(o->last_fraction * (double)T);
        if (n < 1) n = 1;
        if (n > T) n = T;
        *cut = T - n + (int64_t)(fr_rng_u32(seed, FR_RNG_RGRAD_CUT, e, 0, 0, 0) % (uint32_t)n);
        return FR_OK;
    }
    if (o->strategy == FR_DRAFT_CUT_FIXED || T < 2) {
        *cut = T - 1; /* AP's fixed 49 of 50: the last step only */
        return FR_OK;
    }
    /* AP's backprop_strategy: redrawn until 1 <= c <= T − 1; int() truncates toward zero */
    for (uint32_t k = 0; k < 4096; k++) {
        int64_t c;
        if (o->strategy == FR_DRAFT_CUT_UNIFORM)
            c = (int64_t)(fr_rng_u32(seed, FR_RNG_RGRAD_CUT, e, 0, 0, k) % (uint32_t)T); /* torch.randint(0, T): [0, T) */
        else
            c = (int64_t)(o->cut_mean * (double)T +
                          o->cut_std * (double)T * (double)fr_rng_normal(seed, FR_RNG_RGRAD_CUT, e, 0, 0, k));
        if (c >= 1 && c <= T - 1) {
            *cut = c;
            return FR_OK;
        }
    }
    return fr_fail(FR_ERR_ARG, "train: alignprop: no cut in [1, %lld] after 4096 draws (--cut-mean %g, --cut-std %g)",
                   (long long)(T - 1), o->cut_mean, o->cut_std);
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* g_h (n, D) ← (loss_scale/N)·ℓ'(r_b)·∇r_b in place, from the scores; returns Σ ℓ. */
static double adjoint_rows(const rg_state *t, int64_t first, int64_t n, float *g)
{
    double sum = 0.0;
    for (int64_t s = first; s < first + n; s++) {
        double dl;
        sum += fr_rg_loss_value((fr_rg_loss)t->o.loss, t->o.target, (double)t->score[s], &dl);
        const float k = (float)(t->o.loss_scale / (double)t->N * dl);
        for (int64_t d = 0; d < t->D; d++) g[(s - first) * t->D + d] *= k;
    }
    return sum;
}

/* The conditions of micro-batch q (host, uploaded by the guided forward when they change). */
static fr_status batch_cond(fr_run *r, rg_state *t, int64_t q)
{
    return fr_cond_ids(r->task, t->b, t->pid + q * t->b, t->c_h);
}

/* DRaFT / AlignProp: the reverse pass of micro-batch q over steps T−1 .. c. */
static fr_status backward_batch(fr_run *r, rg_state *t, int64_t q, int64_t c)
{
    FR_TRY(batch_cond(r, t, q));
    return fr_rg_backprop(&r->pol, t->be, &t->gw, t->b, t->D, t->rc.sigmas, t->T, c, t->traj + q * t->b * t->D, t->N,
                          t->c_h, t->a + q * t->b * t->D, t->gv, t->dx, t->v, 0);
}

/* ReFL: x̂0 of micro-batch q at step m, scored, and its backward into θ. */
static fr_status refl_batch(fr_run *r, rg_state *t, int64_t q, int64_t m, double *loss)
{
    fr_backend *be = t->be;
    const int64_t N = t->N, D = t->D, b = t->b, n = b * D;
    const float sig = t->rc.sigmas[m];
    FR_TRY(batch_cond(r, t, q));
    FR_TRY(fr_guided_forward(&r->pol, be, &t->gw, b, t->traj + (m * N + q * b) * D, fr_timestep_diffusers(sig), t->c_h,
                             t->v));
    be->ops->flow_x0(n, sig, t->traj + (m * N + q * b) * D, t->v, t->x0);
    float *xs = t->xs_h + q * n, *g = t->g_h + q * n;
    FR_TRY(fr_run_reward_input(r, xs, t->x0, n));
    FR_TRY(fr_run_check_finite(r, "refl x0_hat", xs, n));
    FR_TRY(fr_run_reward_grad(r, b, t->pid + q * b, xs, t->score + q * b, g));
    /* the records hold ∇r; the upload dL/dv = −σ_m·(loss_scale/N)·ℓ'·∇r */
    memcpy(t->x_h, g, (size_t)n * sizeof *g); /* x_h is free after the rewards: scratch */
    *loss += adjoint_rows(t, q * b, b, t->x_h);
    for (int64_t k = 0; k < n; k++) t->x_h[k] *= -sig;
    FR_TRY(fr_h2d(be, t->gv, t->x_h, (size_t)n * sizeof(float)));
    return fr_guided_backward(&r->pol, be, &t->gw, t->gv);
}

fr_status fr_draft_epoch(fr_run *r, void *state)
{
    rg_state *t = state;
    const fr_run_opts *ro = r->o;
    const uint32_t e = (uint32_t)r->epoch;
    const int64_t N = t->N, D = t->D, G = ro->c.group, nb = ro->c.num_batches;

    /* 1. prompts, 2. rollout with the trajectory, 3. rewards */
    FR_TRY(fr_run_prompts(r, t->prompts));
    for (int64_t s = 0; s < N; s++) {
        t->pid[s] = t->prompts[s / G];
        t->sid[s] = (uint32_t)s;
    }
    t->rc.c0 = e;
    fr_rollout_traj tj = {t->traj, NULL, NULL, NULL, NULL};
    FR_TRY(fr_run_rollout(r, &r->pol, &t->rc, N, t->pid, t->sid, t->x, &tj));
    FR_TRY(fr_run_reward_input(r, t->x_h, t->x, N * D));
    FR_TRY(fr_run_check_finite(r, "rollout sample", t->x_h, N * D));
    FR_TRY(fr_run_rec_dev_f32(r, "noise.x_T", t->traj, 2, N, D, 1));
    FR_TRY(fr_run_rec_dev_f32(r, "traj", t->traj, 3, t->T + 1, N, D));
    FR_TRY(fr_run_rec_f32(r, "samples", t->x_h, 2, N, D, 1));
    FR_TRY(fr_run_rewards(r, N, t->pid, t->x_h, t->reward, t->correct));

    /* 4. the cut */
    int64_t c;
    FR_TRY(fr_draft_cut(t->variant, &t->o, t->T, ro->run.seed, e, &c));
    FR_TRY(fr_run_rec_scalar(r, "cut", (float)c));

    /* 5. the backward passes, 6. one optimiser step */
    double loss = 0.0;
    fr_model_zero_grad(&r->pol, r->be);
    if (t->variant == FR_RG_REFL) {
        for (int64_t q = 0; q < nb; q++) FR_TRY(refl_batch(r, t, q, c, &loss));
        FR_TRY(fr_run_rec_f32(r, "x0_hat", t->xs_h, 2, N, D, 1));
        fr_run_metric(r, "scored", (double)(2 * N));
        double m = 0.0;
        for (int64_t s = 0; s < N; s++) m += t->score[s];
        fr_run_metric(r, "reward_x0_mean", m / (double)N);
    } else {
        memcpy(t->xs_h, t->x_h, (size_t)(N * D) * sizeof *t->xs_h);
        FR_TRY(fr_run_reward_grad(r, N, t->pid, t->xs_h, t->score, t->g_h));
        memcpy(t->x_h, t->g_h, (size_t)(N * D) * sizeof *t->x_h);
        loss = adjoint_rows(t, 0, N, t->x_h);
        FR_TRY(fr_h2d(r->be, t->a, t->x_h, (size_t)(N * D) * sizeof(float)));
        for (int64_t q = 0; q < nb; q++) FR_TRY(backward_batch(r, t, q, c));
    }
    /* the gradients' crossing, N·D floats in (a per-sample budget does not cover it) */
    fr_run_metric(r, "copies.h2d_reward_grad_bytes", (double)(N * D) * sizeof(float));
    FR_TRY(fr_run_rec_f32(r, "reward_grad", t->g_h, 2, N, D, 1));
    loss *= t->o.loss_scale / (double)N;
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)loss));
    float gn = NAN;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    fr_run_metric(r, "loss", loss);
    fr_run_metric(r, "cut", (double)c);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", 1.0); /* one optimiser step per epoch (the bake-off's steps column) */
    return FR_OK;
}

void fr_draft_header(fr_run *r, void *state)
{
    rg_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), cfg %g; loss %s (target %g) x %g; %lld micro-batches",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid),
                ro->smp.shift, (double)ro->smp.cfg, fr_rg_loss_names[t->o.loss], t->o.target, t->o.loss_scale,
                (long long)ro->c.num_batches);
    if (t->variant == FR_RG_DRAFT)
        fr_run_info(r, "gradient through the last %lld of %lld steps%s", (long long)(t->o.truncate > 0 ? t->o.truncate : t->T),
                    (long long)t->T, t->o.truncate > 0 ? " (DRaFT-K)" : " (full backprop)");
    else if (t->variant == FR_RG_ALIGNPROP)
        fr_run_info(r, "cut %s (mean %g T, std %g T), redrawn into [1, T - 1]", fr_draft_cut_names[t->o.strategy],
                    t->o.cut_mean, t->o.cut_std);
    else
        fr_run_info(r, "one-step x0_hat at a step drawn from the last %g of the grid", t->o.last_fraction);
}
