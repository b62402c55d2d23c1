/* Flow-RWR, reward-weighted regression on flow matching (spec/more.md §7.2 [secondary; no public
 * code], docs/algorithms/flow-rwr.md): `flowrl train --algo flow-rwr`. The weights and the loss
 * are core/rwr.c (flowrl/rwr.h); this file is the epoch and the registry row.
 *
 * Per epoch e (audit step e + 1):
 *   1. samples  fr_run_samples_epoch: P prompts × G samples of the current policy (any flow
 *               sampler, ODE by default), rewards (the loop's advantages are recorded, unused)
 *   2. weights  fr_rwr_weights over the epoch's samples (exp(r/τ), or G·softmax(r/τ) per prompt)
 *   3. batches  the N samples in the order of fr_run_shuffle, cut into num_batches batches of b
 *   4. rows     per batch K draws per sample, row r = k·b + i: t = sigmoid(n), n ~ N(0, 1) from
 *               (seed, FR_RNG_RWR_TIME, e, sample id, k), ε from (seed, FR_RNG_RWR_NOISE, e,
 *               sample id, k) (fr_noise_fm), x_t = (1 − t)·x0 + t·ε, target ε − x0
 *   5. update   v = policy(x_t, t), fr_rwr_rows with gout = 1/grad_accum, backward; one optimiser
 *               step per grad_accum batches
 *
 * audit.log records of an epoch: the loop's prompts, samples, rewards, reward_mean, reward_std,
 * adv; rwr_w (F64 (N,)), order (I64 (N,)); per batch q: b<q>.t (K·b), b<q>.e (F64 (K·b)),
 * b<q>.loss; per optimiser step u: u<u>.grad_norm, u<u>.grad.<NAME>; the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "flowrl/algo.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/noising.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/rwr.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_rwr_weighting weighting; /* exp */
    double temperature;         /* τ, 1 */
    int64_t train_timesteps;    /* K draws per sample per batch, 1 */
} rwr_opts;

typedef struct {
    rwr_opts o;
    fr_backend *be;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model_ws ws;
    int have_ws;
    int64_t N, D, S, K, b;
    fr_run_samples fin;
    float *x0, *eps, *xt, *target, *v, *gv; /* (K·b, D) backend */
    float *d_tin;                           /* (K·b,) */
    int32_t *d_rows, *c;                    /* (K·b,), (K·b, S) */
    double *w, *rw, *e;                     /* (N,), (K·b,), (K·b,) host */
    int64_t *order;                         /* (N,) */
    int32_t *rows, *c_h;                    /* (K·b,), (K·b, S) */
    uint32_t *bsid;                         /* (b,) */
    int *rpid;                              /* (K·b,) */
    float *t, *tin;                         /* (K·b,) */
} rwr_state;

static void rwr_free(void *p)
{
    rwr_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    fr_rollout_schedule_free(&t->sched);
    fr_run_samples_free(&t->fin);
    void *dev[] = {t->x0, t->eps, t->xt, t->target, t->v, t->gv, t->d_tin, t->d_rows, t->c};
    void *host[] = {t->w, t->rw, t->e, t->order, t->rows, t->c_h, t->bsid, t->rpid, t->t, t->tin};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

static fr_status rwr_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    rwr_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const rwr_opts *)r->ao;
    fr_backend *be = t->be = r->be;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->K = t->o.train_timesteps;
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    const int64_t N = t->N, D = t->D, S = t->S, R = t->K * t->b;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    FR_TRY(fr_run_samples_alloc(r, &t->fin));
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    if (!(t->x0 = fr_dev_floats(be, R * D)) || !(t->eps = fr_dev_floats(be, R * D)) || !(t->xt = fr_dev_floats(be, R * D)) ||
        !(t->target = fr_dev_floats(be, R * D)) || !(t->v = fr_dev_floats(be, R * D)) || !(t->gv = fr_dev_floats(be, R * D)) ||
        !(t->d_tin = fr_dev_floats(be, R)) || !(t->d_rows = fr_dev_i32(be, R)) || !(t->c = fr_dev_i32(be, R * S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->w, N) || !FR_ALLOC(t->rw, R) || !FR_ALLOC(t->e, R) || !FR_ALLOC(t->order, N) || !FR_ALLOC(t->rows, R) ||
        !FR_ALLOC(t->c_h, R * S) || !FR_ALLOC(t->bsid, t->b) || !FR_ALLOC(t->rpid, R) || !FR_ALLOC(t->t, R) ||
        !FR_ALLOC(t->tin, R))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* Batch q's K·b rows on the backend: x0 gathered from the samples, then per draw k the times and
 * x_t of its b rows; the targets ε − x0. */
static fr_status batch_rows(fr_run *r, rwr_state *t, int64_t q)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, D = t->D, S = t->S, K = t->K, R = K * b;
    const uint32_t seed = r->o->run.seed, e = (uint32_t)r->epoch;
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < b; i++) {
            const int64_t s = t->order[q * b + i], row = k * b + i;
            const uint32_t sid = t->fin.sid[s];
            t->bsid[i] = sid;
            t->rows[row] = (int32_t)s;
            t->rpid[row] = t->fin.pid[s];
            t->rw[row] = t->w[s];
            t->t[row] = fr_logit_normal_sigma(fr_rng_normal(seed, FR_RNG_RWR_TIME, e, sid, (uint32_t)k, 0), 0.0f, 1.0f);
            t->tin[row] = fr_timestep_diffusers(t->t[row]);
        }
    FR_TRY(fr_cond_ids(r->task, R, t->rpid, t->c_h));
    FR_TRY(fr_h2d(be, t->d_rows, t->rows, (size_t)R * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    be->ops->gather_rows(R, D, t->d_rows, t->N, t->fin.x, t->x0);
    for (int64_t k = 0; k < K; k++) {
        const fr_noise_coord nc = {seed, FR_RNG_RWR_NOISE, e, (uint32_t)k};
        FR_TRY(fr_noise_fm(be, b, D, nc, t->bsid, t->x0 + k * b * D, t->t + k * b, t->xt + k * b * D, t->eps + k * b * D));
    }
    be->ops->flow_target(R, R, D, t->x0, t->eps, t->target);
    return FR_OK;
}

static fr_status rwr_epoch(fr_run *r, void *state)
{
    rwr_state *t = state;
    const fr_run_opts *ro = r->o;
    const int64_t N = t->N, K = t->K, b = t->b, R = K * b, nb = ro->c.num_batches, ga = ro->c.grad_accum;
    char name[FR_AUDIT_MAX_NAME + 1];

    FR_TRY(fr_run_samples_epoch(r, &r->pol, &t->rc, &t->fin));
    FR_TRY(fr_rwr_weights(t->o.weighting, t->o.temperature, N, ro->c.group, t->fin.reward, t->w));
    fr_tensor wt = fr_tensor_view(t->w, FR_F64, 1, &t->N);
    FR_TRY(fr_run_rec_tensor(r, "rwr_w", &wt));
    int64_t n_order;
    FR_TRY(fr_run_shuffle(r, N, NULL, t->order, &n_order));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &t->N);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));

    double loss = 0.0, e_mean = 0.0, wmax = 0.0;
    for (int64_t s = 0; s < N; s++) /* not fmax: aarch64 gcc 12.2 ICEs vectorising fmax reductions (Makefile) */
        if (t->w[s] > wmax) wmax = t->w[s];
    int64_t u = 0;
    float gn = NAN;
    const double gout = 1.0 / (double)ga;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) {
            FR_TRY(batch_rows(r, t, q));
            FR_TRY(fr_model_forward(&r->pol, r->be, &t->ws, R, t->xt, t->d_tin, t->c, t->v));
            fr_rwr_stats st;
            FR_TRY(fr_rwr_rows(r->be, R, t->D, t->rw, t->v, t->target, gout, t->gv, t->e, &st));
            if (!isfinite(st.loss))
                return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: Flow-RWR loss %g in batch %lld: the policy diverged",
                               (long long)r->epoch + 1, st.loss, (long long)q);
            FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
            snprintf(name, sizeof name, "b%lld.t", (long long)q);
            FR_TRY(fr_run_rec_f32(r, name, t->t, 1, R, 1, 1));
            int64_t sh = R;
            fr_tensor et = fr_tensor_view(t->e, FR_F64, 1, &sh);
            snprintf(name, sizeof name, "b%lld.e", (long long)q);
            FR_TRY(fr_run_rec_tensor(r, name, &et));
            snprintf(name, sizeof name, "b%lld.loss", (long long)q);
            FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
            loss += st.loss;
            e_mean += st.e_mean;
        }
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
    }
    fr_run_metric(r, "loss", loss / (double)nb);
    fr_run_metric(r, "fm_err", e_mean / (double)nb);
    fr_run_metric(r, "w_max", wmax);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

static void rwr_header(fr_run *r, void *state)
{
    rwr_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps, noise %g, cfg %g; weights %s (temperature %g); K %lld draws per sample "
                "(t = sigmoid(N(0,1))); %lld batches, grad accum %lld",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, (double)ro->smp.noise_level,
                (double)ro->smp.cfg, fr_rwr_weighting_name(t->o.weighting), t->o.temperature, (long long)t->K,
                (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options and the registry row ---------------------------------------------------------- */

static const char *const k_weighting[] = {"exp", "softmax", NULL};

#define O rwr_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(O, weighting, "weighting", "exp", k_weighting,
                "exp: w = exp(r/T) (VideoAlign, secondary); softmax: G * softmax(r/T) per prompt (Flow-GRPO appendix)", 0),
    FR_OPT_F64(O, temperature, "temperature", "1", 1e-6, 1e6, "T of the weights (flowrl choice; 1 is exp(r))", 0),
    FR_OPT_I64(O, train_timesteps, "train_timesteps", "1", 1, 1024, "K: (t, noise) draws per sample and batch", 0),
};
#undef O

/* flowrl choices (no public code): the ODE sampler's final samples of the current policy (online),
 * 10 steps, 8 prompts x 8 samples in 2 batches of one optimiser step each, lr 1e-4, no KL. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_ODE;
    ro->smp.num_steps = 10;
    ro->c.prompts = 8;
    ro->c.group = 8;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->c.beta = 0.0f;
    ro->opt.lr = 1e-4;
    ro->opt.max_grad_norm = 1.0f;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    if (ro->c.beta != 0.0f)
        return fr_fail(FR_ERR_ARG, "train: flow-rwr: --beta %g, expected 0 (Flow-RWR has no KL term)", (double)ro->c.beta);
    if (ro->smp.sampler == FR_SAMPLER_DDIM || ro->smp.sampler == FR_SAMPLER_DPM)
        return fr_fail(FR_ERR_ARG, "train: flow-rwr: --sampler %s is a diffusion (epsilon) sampler; Flow-RWR trains flow "
                                   "models", fr_sampler_name(ro->smp.sampler));
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 0;
}

/* two batches of one optimiser step each (the second sees a moved policy), two draws, softmax
 * weights (every part of fr_rwr_weights but the exp branch, which the unit tests cover) */
static void tiny(fr_run_opts *ro, void *ao)
{
    rwr_opts *o = ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->opt.lr = 3e-3;
    o->weighting = FR_RWR_SOFTMAX;
    o->train_timesteps = 2;
}

static const char *const k_progress[] = {"loss", "w_max", NULL};

const fr_algo fr_algo_flow_rwr = {
    .name = "flow-rwr",
    .summary = "Flow-RWR: flow matching on the policy's own samples weighted by exp(reward) (or a per-prompt softmax)",
    .doc = "docs/algorithms/flow-rwr.md",
    .help = "Flow-RWR, reward-weighted regression on flow matching (VideoAlign, arXiv 2501.13918; no public code:\n"
            "the formula is [secondary], every setting a [flowrl choice]): per epoch P prompts x G samples of the\n"
            "current policy (ODE), scored; the loss mean_r w_r * mean_D (v_theta(x_t, t) - (eps - x0))^2 at K draws\n"
            "t = sigmoid(N(0,1)) per sample, with w = exp(r/T) (the paper's exp(r) at T = 1, its (1-t)^2 factor\n"
            "dropped as the paper does) or --weighting softmax: G * softmax(r/T) within each prompt's group (the\n"
            "Flow-GRPO paper's appendix baseline [secondary]; the factor G is a flowrl choice).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(rwr_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = rwr_setup,
    .header = rwr_header,
    .epoch = rwr_epoch,
    .progress_keys = k_progress,
    .free = rwr_free,
    .tiny = tiny,
};
