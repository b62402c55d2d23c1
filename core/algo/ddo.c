/* DDO, Direct Discriminative Optimization (spec/more.md §2, its verified parts; no public training
 * code, the formulas [secondary]; docs/algorithms/ddo.md): `flowrl train --algo ddo`. The loss is
 * core/ddo.c (flowrl/ddo.h); this file is the epoch and the registry row.
 *
 * Per epoch e (audit step e + 1):
 *   0. rounds     when e > 0 is a multiple of round_epochs, the reference ← the policy (self-play;
 *                 record ddo_ref.<NAME>)
 *   1. negatives  fr_run_samples_epoch with the frozen reference: P prompts × G samples (the run's
 *                 sampler, ODE by default), scored for the progress line (the loss reads no reward)
 *   2. positives  the task's real data: a pool of data_per_prompt samples of each training prompt
 *                 (task data index j of prompt p at the run's seed; pool row p + n_train·j), drawn
 *                 and put on the backend once at setup; sample s of the epoch (prompt p) takes pool
 *                 row p + n_train·j, j = u32(seed, FR_RNG_DDO_TIME, e, s, 1, 0) mod data_per_prompt
 *                 (record "data_rows")
 *   3. batches    one order (fr_run_shuffle) for both; batch q takes rows order[q·b .. q·b + b) of each
 *   4. rows       [positives | negatives], 2b rows; row j of the batch has c1 = s (positive) or N + s
 *                 (negative): t = sigmoid(n), n ~ N(0, 1) from (seed, FR_RNG_DDO_TIME, e, c1, 0, 0),
 *                 ε from (seed, FR_RNG_DDO_NOISE, e, c1, 0) element d; x_t = (1 − t)·x0 + t·ε, target
 *                 ε − x0, the same (t, ε) for the policy and the reference
 *   5. update     both forwards, fr_ddo_rows with gout = 1/grad_accum, backward; one optimiser step per
 *                 grad_accum batches
 *
 * audit.log records: the loop's prompts, samples (the negatives), rewards, adv; data_rows, order;
 * per batch q: b<q>.t (2b), b<q>.e, b<q>.e_ref (F64 (2b,)), b<q>.loss; per optimiser step the
 * gradient records; ddo_ref.<NAME> after a round. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "flowrl/algo.h"
#include "flowrl/audit.h"
#include "flowrl/cond.h"
#include "flowrl/ddo.h"
#include "flowrl/noising.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/schedule.h"
#include "flowrl/task.h"

typedef struct {
    double alpha;          /* 4 (the miniature's; the paper's grid [0.5, 6]) */
    double beta_ddo;       /* 0.05 (the paper's grid [0.01, 0.1]) */
    int64_t round_epochs;  /* epochs per self-play round: ref ← θ after each */
    int64_t data_per_prompt; /* the data pool's samples per training prompt */
} ddo_opts;

typedef struct {
    ddo_opts o;
    fr_backend *be;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_model_ws ws, ws_ref;
    int have_ws, have_ws_ref;
    int64_t N, D, S, b;
    fr_run_samples neg;
    int64_t n_pool;
    float *pool;                               /* (n_pool, D) backend: the task's data */
    int64_t *data_rows;                        /* (N,) host: the epoch's pool rows */
    float *x0, *eps, *xt, *target, *v, *v_ref, *gv; /* (2b, D) backend */
    float *d_tin;                              /* (2b,) */
    int32_t *d_idx, *d_nidx, *c;               /* (b,), (b,), (2b, S) */
    float *t, *tin;                            /* (2b,), (2b,) host */
    int64_t *order;                            /* (N,) */
    int32_t *idx, *nidx, *c_h;                 /* (b,), (b,), (2b, S) */
    uint32_t *ids;                             /* (2b,) */
    int *rpid;                                 /* (2b,) */
    double *e, *e_ref;                         /* (2b,) */
} ddo_state;

static void ddo_free(void *p)
{
    ddo_state *t = p;
    if (!t) return;
    if (t->have_ws) fr_model_ws_free(&t->ws);
    if (t->have_ws_ref) fr_model_ws_free(&t->ws_ref);
    fr_rollout_schedule_free(&t->sched);
    fr_run_samples_free(&t->neg);
    void *dev[] = {t->pool, t->x0, t->eps, t->xt, t->target, t->v, t->v_ref, t->gv, t->d_tin, t->d_idx, t->d_nidx, t->c};
    void *host[] = {t->data_rows, t->t, t->tin, t->order, t->idx, t->nidx, t->c_h, t->ids, t->rpid, t->e, t->e_ref};
    fr_run_free_bufs(t->be, dev, sizeof dev / sizeof dev[0], host, sizeof host / sizeof host[0]);
    free(t);
}

static fr_status ddo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    ddo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const ddo_opts *)r->ao;
    fr_backend *be = t->be = r->be;
    t->D = r->pol.cfg.D;
    t->S = r->pol.cfg.n_slots;
    t->N = ro->c.prompts * ro->c.group;
    t->b = t->N / ro->c.num_batches;
    const int64_t N = t->N, D = t->D, S = t->S, R = 2 * t->b;
    FR_TRY(fr_run_rollout_cfg(r, &t->rc, &t->sched));
    FR_TRY(fr_run_samples_alloc(r, &t->neg));
    FR_TRY(fr_model_ws_alloc(&t->ws, &r->pol, R, 1));
    t->have_ws = 1;
    FR_TRY(fr_model_ws_alloc(&t->ws_ref, &r->ref, R, 0));
    t->have_ws_ref = 1;
    const int64_t nt = r->task->n_train;
    t->n_pool = nt * t->o.data_per_prompt;
    float *pool_h = fr_malloc((size_t)(t->n_pool * D) * sizeof(float));
    if (!pool_h || !(t->pool = fr_dev_floats(be, t->n_pool * D))) {
        free(pool_h);
        return FR_ERR_NOMEM;
    }
    fr_status st = FR_OK;
    for (int64_t k = 0; k < t->n_pool && st == FR_OK; k++)
        st = r->task->sample((int)(k % nt), ro->run.seed, (uint32_t)(k / nt), pool_h + k * D);
    if (st == FR_OK) st = fr_h2d(be, t->pool, pool_h, (size_t)(t->n_pool * D) * sizeof(float));
    free(pool_h);
    FR_TRY(st);
    if (!(t->x0 = fr_dev_floats(be, R * D)) || !(t->eps = fr_dev_floats(be, R * D)) ||
        !(t->xt = fr_dev_floats(be, R * D)) || !(t->target = fr_dev_floats(be, R * D)) || !(t->v = fr_dev_floats(be, R * D)) ||
        !(t->v_ref = fr_dev_floats(be, R * D)) || !(t->gv = fr_dev_floats(be, R * D)) || !(t->d_tin = fr_dev_floats(be, R)) ||
        !(t->d_idx = fr_dev_i32(be, t->b)) || !(t->d_nidx = fr_dev_i32(be, t->b)) || !(t->c = fr_dev_i32(be, R * S)))
        return FR_ERR_NOMEM;
    if (!FR_ALLOC(t->data_rows, N) || !FR_ALLOC(t->t, R) || !FR_ALLOC(t->tin, R) || !FR_ALLOC(t->order, N) ||
        !FR_ALLOC(t->idx, t->b) || !FR_ALLOC(t->nidx, t->b) || !FR_ALLOC(t->c_h, R * S) || !FR_ALLOC(t->ids, R) || !FR_ALLOC(t->rpid, R) ||
        !FR_ALLOC(t->e, R) || !FR_ALLOC(t->e_ref, R))
        return FR_ERR_NOMEM;
    return FR_OK;
}

/* Batch q's 2b rows [positives | negatives] on the backend. */
static fr_status batch_rows(fr_run *r, ddo_state *t, int64_t q)
{
    fr_backend *be = t->be;
    const int64_t b = t->b, D = t->D, S = t->S, R = 2 * b, N = t->N;
    const uint32_t seed = r->o->run.seed, e = (uint32_t)r->epoch;
    for (int64_t i = 0; i < b; i++) {
        const int64_t s = t->order[q * b + i];
        t->idx[i] = (int32_t)t->data_rows[s];
        t->nidx[i] = (int32_t)s;
        t->ids[i] = (uint32_t)s;
        t->ids[b + i] = (uint32_t)(N + s);
        t->rpid[i] = t->rpid[b + i] = t->neg.pid[s];
    }
    for (int64_t j = 0; j < R; j++) {
        t->t[j] = fr_logit_normal_sigma(fr_rng_normal(seed, FR_RNG_DDO_TIME, e, t->ids[j], 0, 0), 0.0f, 1.0f);
        t->tin[j] = fr_timestep_diffusers(t->t[j]);
    }
    FR_TRY(fr_cond_ids(r->task, R, t->rpid, t->c_h));
    FR_TRY(fr_h2d(be, t->d_idx, t->idx, (size_t)b * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->d_nidx, t->nidx, (size_t)b * sizeof(int32_t)));
    FR_TRY(fr_h2d(be, t->d_tin, t->tin, (size_t)R * sizeof(float)));
    FR_TRY(fr_h2d(be, t->c, t->c_h, (size_t)(R * S) * sizeof(int32_t)));
    be->ops->gather_rows(b, D, t->d_idx, t->n_pool, t->pool, t->x0);
    be->ops->gather_rows(b, D, t->d_nidx, N, t->neg.x, t->x0 + b * D);
    const fr_noise_coord nc = {seed, FR_RNG_DDO_NOISE, e, 0};
    FR_TRY(fr_noise_fm(be, R, D, nc, t->ids, t->x0, t->t, t->xt, t->eps));
    be->ops->flow_target(R, R, D, t->x0, t->eps, t->target);
    return FR_OK;
}

static fr_status ddo_epoch(fr_run *r, void *state)
{
    ddo_state *t = state;
    const fr_run_opts *ro = r->o;
    const int64_t N = t->N, D = t->D, b = t->b, R = 2 * b, nb = ro->c.num_batches, ga = ro->c.grad_accum;
    char name[FR_AUDIT_MAX_NAME + 1];

    const int update = r->epoch > 0 && r->epoch % t->o.round_epochs == 0;
    if (update) {
        FR_TRY(fr_model_copy_values(&r->ref, &r->pol));
        FR_TRY(fr_run_rec_params(r, "ddo_ref.", r->ref.values));
    }
    fr_run_metric(r, "ref_update", update ? 1.0 : 0.0);
    FR_TRY(fr_run_samples_epoch(r, &r->ref, &t->rc, &t->neg));
    const int64_t nt = r->task->n_train, per = t->o.data_per_prompt;
    for (int64_t s = 0; s < N; s++) {
        const uint32_t j = fr_rng_u32(ro->run.seed, FR_RNG_DDO_TIME, (uint32_t)r->epoch, (uint32_t)s, 1, 0) % (uint32_t)per;
        t->data_rows[s] = t->neg.pid[s] + nt * (int64_t)j;
    }
    fr_tensor dt = fr_tensor_view(t->data_rows, FR_I64, 1, &t->N);
    FR_TRY(fr_run_rec_tensor(r, "data_rows", &dt));
    int64_t n_order;
    FR_TRY(fr_run_shuffle(r, N, NULL, t->order, &n_order));
    fr_tensor ot = fr_tensor_view(t->order, FR_I64, 1, &t->N);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));

    fr_ddo_stats sum = {0, 0, 0, 0, 0};
    int64_t u = 0;
    float gn = NAN;
    const double gout = 1.0 / (double)ga;
    for (int64_t q0 = 0; q0 < nb; q0 += ga, u++) {
        fr_model_zero_grad(&r->pol, r->be);
        for (int64_t q = q0; q < q0 + ga; q++) {
            FR_TRY(batch_rows(r, t, q));
            FR_TRY(fr_model_forward(&r->pol, r->be, &t->ws, R, t->xt, t->d_tin, t->c, t->v));
            FR_TRY(fr_model_forward(&r->ref, r->be, &t->ws_ref, R, t->xt, t->d_tin, t->c, t->v_ref));
            fr_ddo_stats st;
            FR_TRY(fr_ddo_rows(r->be, b, b, D, t->o.alpha, t->o.beta_ddo, t->v, t->v_ref, t->target, gout, t->gv, t->e,
                               t->e_ref, &st));
            if (!isfinite(st.loss))
                return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: DDO loss %g in batch %lld: the policy diverged",
                               (long long)r->epoch + 1, st.loss, (long long)q);
            FR_TRY(fr_model_backward(&r->pol, r->be, &t->ws, t->gv, NULL));
            int64_t sh = R;
            snprintf(name, sizeof name, "b%lld.t", (long long)q);
            FR_TRY(fr_run_rec_f32(r, name, t->t, 1, R, 1, 1));
            fr_tensor et = fr_tensor_view(t->e, FR_F64, 1, &sh), rt = fr_tensor_view(t->e_ref, FR_F64, 1, &sh);
            snprintf(name, sizeof name, "b%lld.e", (long long)q);
            FR_TRY(fr_run_rec_tensor(r, name, &et));
            snprintf(name, sizeof name, "b%lld.e_ref", (long long)q);
            FR_TRY(fr_run_rec_tensor(r, name, &rt));
            snprintf(name, sizeof name, "b%lld.loss", (long long)q);
            FR_TRY(fr_run_rec_scalar(r, name, (float)st.loss));
            sum.loss += st.loss;
            sum.d_pos += st.d_pos;
            sum.d_neg += st.d_neg;
            sum.delta_pos += st.delta_pos;
            sum.delta_neg += st.delta_neg;
        }
        FR_TRY(fr_run_optimizer_step(r, u, &gn));
    }
    fr_run_metric(r, "loss", sum.loss / (double)nb);
    fr_run_metric(r, "d_pos", sum.d_pos / (double)nb);
    fr_run_metric(r, "d_neg", sum.d_neg / (double)nb);
    fr_run_metric(r, "delta_pos", sum.delta_pos / (double)nb);
    fr_run_metric(r, "delta_neg", sum.delta_neg / (double)nb);
    fr_run_metric(r, "grad_norm", gn);
    fr_run_metric(r, "updates", (double)u);
    return FR_OK;
}

/* The reference is part of the state once a round has copied the policy into it. */
static fr_status ddo_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)state;
    return fr_run_save_params(r, f, "ddo_ref.", r->ref.values);
}

static fr_status ddo_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)state;
    return fr_run_load_params(r, f, path, "ddo_ref.", r->ref.values);
}

static void ddo_header(fr_run *r, void *state)
{
    ddo_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "negatives: the reference's samples (%s, %lld steps); positives: the task's data; alpha %g, beta_ddo %g; "
                "reference <- policy every %lld epochs; t = sigmoid(N(0,1)), one noise per row shared by policy and reference",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, t->o.alpha, t->o.beta_ddo,
                (long long)t->o.round_epochs);
}

/* ---- options and the registry row ---------------------------------------------------------- */

#define O ddo_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, alpha, "alpha", "4", 0, 1e6, "weight of the reference's samples (paper grid 0.5-6)", 0),
    FR_OPT_F64(O, beta_ddo, "beta_ddo", "0.05", 1e-9, 1e9, "beta of the implicit discriminator (paper grid 0.01-0.1)", 0),
    FR_OPT_I64(O, round_epochs, "round_epochs", "20", 1, 1e12, "epochs per self-play round (reference <- policy after each)",
               0),
    FR_OPT_I64(O, data_per_prompt, "data_per_prompt", "64", 1, 1 << 20,
               "the data pool: samples of the task's data per training prompt (the positives)", 0),
};
#undef O

/* flowrl choices: ODE negatives of 10 steps, 8 prompts x 8 samples (and as many data rows) in 2
 * batches of one optimiser step each, lr 1e-4, clip 1, no KL term. */
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
        return fr_fail(FR_ERR_ARG, "train: ddo: --beta %g, expected 0 (no KL term; DDO's beta is --beta-ddo)", (double)ro->c.beta);
    if (ro->smp.sampler == FR_SAMPLER_DDIM || ro->smp.sampler == FR_SAMPLER_DPM)
        return fr_fail(FR_ERR_ARG, "train: ddo: --sampler %s is a diffusion (epsilon) sampler; DDO here trains flow models",
                       fr_sampler_name(ro->smp.sampler));
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 1;
}

/* two batches of one optimiser step each; a round after the first epoch */
static void tiny(fr_run_opts *ro, void *ao)
{
    ddo_opts *o = ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->opt.lr = 3e-3;
    o->round_epochs = 1;
    o->data_per_prompt = 4;
}

static const char *const k_progress[] = {"loss", "d_pos", "d_neg", NULL};

const fr_algo fr_algo_ddo = {
    .name = "ddo",
    .summary = "DDO: the policy's likelihood ratio to a frozen reference as an implicit discriminator, real data against "
               "the reference's samples",
    .doc = "docs/algorithms/ddo.md",
    .help = "Direct Discriminative Optimization (Zheng et al., arXiv 2503.01103; training code not public: the loss\n"
            "is [secondary], its flow form a [flowrl choice]): L = -E_data log sigmoid(beta*D) - alpha*E_ref log\n"
            "sigmoid(-beta*D), D = -(e_theta - e_ref) the velocity-error difference at one (t, noise) per row shared\n"
            "by the policy and the reference; positives are the task's data, negatives the reference's samples; every\n"
            "--round-epochs epochs the reference becomes the policy (multi-round self-play). The paper's time\n"
            "weighting w(t) for flow models is [unverified] and left out (w = 1).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(ddo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = ddo_setup,
    .header = ddo_header,
    .epoch = ddo_epoch,
    .save = ddo_save,
    .load = ddo_load,
    .progress_keys = k_progress,
    .free = ddo_free,
    .tiny = tiny,
    .no_lora = 1, /* the reference is a full copy, the policy copied into it every round */
};
