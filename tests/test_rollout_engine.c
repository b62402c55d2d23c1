/* The rollout engine's noise sharing (flowrl/rollout.h "Shared noise"): a shared x_T per
 * group, one stochastic step with ODE elsewhere, prefix trees (BranchGRPO) and candidate
 * branching at one step; and the forward-process noising (flowrl/noising.h). Tiny random
 * gmm2d models; every comparison is bitwise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/noising.h"
#include "flowrl/opt.h"
#include "flowrl/philox.h"
#include "flowrl/rollout.h"
#include "flowrl/schedule.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0xB4A7C4ull

typedef struct {
    int64_t T, B, D;
    float *x, *traj, *mean, *logp, *xi;
    fr_rollout_traj tr;
} run_out;

static void out_alloc(run_out *o, int64_t T, int64_t B, int64_t D)
{
    o->T = T, o->B = B, o->D = D;
    o->x = calloc((size_t)(B * D), sizeof(float));
    o->traj = calloc((size_t)((T + 1) * B * D), sizeof(float));
    o->mean = calloc((size_t)(T * B * D), sizeof(float));
    o->logp = calloc((size_t)(T * B), sizeof(float));
    o->xi = calloc((size_t)(T * B * D), sizeof(float));
    ck_assert(o->x && o->traj && o->mean && o->logp && o->xi);
    o->tr = (fr_rollout_traj){o->traj, o->mean, o->logp, NULL, o->xi};
}

static void out_free(run_out *o)
{
    free(o->x);
    free(o->traj);
    free(o->mean);
    free(o->logp);
    free(o->xi);
}

/* Row r of trajectory slot i (0 <= i <= T). */
static const float *at(const run_out *o, int64_t i, int64_t r) { return o->traj + (i * o->B + r) * o->D; }

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

static void run(const fr_model *m, const fr_rollout_cfg *c, int64_t B, const int *pid, const uint32_t *sid,
                run_out *o)
{
    out_alloc(o, c->T, B, m->cfg.D);
    fr_status s = fr_rollout(m, fr_test_ref_be(), &fr_task_gmm2d, c, B, pid, sid, NULL, o->x, &o->tr);
    ck_assert_msg(s == FR_OK, "%s", fr_last_error());
}

/* Every output of rollout a row ra equals rollout b row rb bit for bit. */
static void assert_same_row(const run_out *a, int64_t ra, const run_out *b, int64_t rb, const char *ctx)
{
    const int64_t D = a->D;
    for (int64_t i = 0; i <= a->T; i++)
        ck_assert_msg(same(at(a, i, ra), at(b, i, rb), D), "%s: x_%lld of row %lld", ctx, (long long)i, (long long)ra);
    for (int64_t i = 0; i < a->T; i++) {
        ck_assert_msg(same(a->mean + (i * a->B + ra) * D, b->mean + (i * b->B + rb) * D, D), "%s: mean %lld", ctx,
                      (long long)i);
        ck_assert_msg(fr_test_bits_equal(a->logp[i * a->B + ra], b->logp[i * b->B + rb]), "%s: logp %lld", ctx,
                      (long long)i);
        ck_assert_msg(same(a->xi + (i * a->B + ra) * D, b->xi + (i * b->B + rb) * D, D), "%s: xi %lld", ctx,
                      (long long)i);
    }
    ck_assert_msg(same(a->x + ra * D, b->x + rb * D, D), "%s: sample of row %lld", ctx, (long long)ra);
}

static fr_rollout_cfg sde_cfg(int64_t T, float g, fr_rollout_schedule *sched)
{
    fr_rollout_cfg c = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    c.T = T;
    c.cfg = g;
    c.seed = 77;
    c.c0 = 3;
    ck_assert(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 0, 0, sched) == FR_OK);
    return c;
}

/* x_T_key group: the G rows of a group start from one x_T (the unshared x_T of the group's
 * first id), then diverge; the groups differ; batch sizes do not matter. */
START_TEST(test_shared_x_T)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED);
    enum { B = 8, T = 4, G = 4 };
    const int64_t D = m.cfg.D;
    int pid[B] = {1, 1, 1, 1, 6, 6, 6, 6};
    uint32_t sid[B] = {0, 1, 2, 3, 4, 5, 6, 7};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 1.5f, &sched);
    run_out plain, sh, sh1;
    run(&m, &c, B, pid, sid, &plain);
    c.x_T_key = FR_XT_GROUP;
    c.group_size = G;
    run(&m, &c, B, pid, sid, &sh);
    c.batch = 1;
    run(&m, &c, B, pid, sid, &sh1);
    for (int r = 0; r < B; r++) {
        const int first = r - r % G;
        ck_assert_msg(same(at(&sh, 0, r), at(&plain, 0, first), D), "row %d: x_T is not its group's", r);
        ck_assert_msg(!same(at(&sh, 1, r), at(&sh, 1, (r + 1) % G + first), D), "row %d: no divergence", r);
        assert_same_row(&sh, r, &sh1, r, "shared x_T, batch 1 vs all");
        ck_assert_int_eq(fr_rollout_noise_owner(&c, sid[r], -1), (uint32_t)first);
        ck_assert_int_eq(fr_rollout_noise_owner(&c, sid[r], 0), sid[r]);
    }
    assert_same_row(&sh, 0, &plain, 0, "a group's first row is its unshared sample");
    ck_assert(!same(at(&sh, 0, 0), at(&sh, 0, G), D));
    c.group_size = 0;
    ck_assert_int_eq(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &c, B, pid, sid, NULL, sh.x, NULL), FR_ERR_ARG);
    out_free(&plain);
    out_free(&sh);
    out_free(&sh1);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* step_noise zero except at step j: steps before j are the ODE rollout bit for bit, step j
 * draws noise and has a log-prob, the steps after are the ODE rollout started from
 * x_{j+1} on the rest of the grid (sde's level-0 step is Euler's, sampler_elem.h). */
START_TEST(test_single_stochastic_step)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 1);
    enum { B = 5, T = 6, J = 2 };
    const int64_t D = m.cfg.D;
    int pid[B] = {0, 2, 4, 6, -1};
    uint32_t sid[B] = {10, 11, 12, 13, 14};
    float lev[T] = {0, 0, 0.9f, 0, 0, 0};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 2.0f, &sched);
    c.step_noise = lev;
    fr_rollout_cfg ode = c;
    ode.kind = FR_SAMPLER_ODE;
    ode.step_noise = NULL;
    run_out s, o, tail;
    run(&m, &c, B, pid, sid, &s);
    out_alloc(&o, T, B, D);
    o.tr.logp = NULL;
    ck_assert(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &ode, B, pid, sid, NULL, o.x, &o.tr) == FR_OK);
    /* the tail: the ODE from x_{J+1} over σ_{J+1..T} */
    fr_rollout_cfg tc = ode;
    tc.T = T - (J + 1);
    tc.sigmas = c.sigmas + J + 1;
    out_alloc(&tail, tc.T, B, D);
    tail.tr.logp = NULL;
    ck_assert(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &tc, B, pid, NULL, at(&s, J + 1, 0), tail.x, &tail.tr) ==
              FR_OK);
    for (int r = 0; r < B; r++) {
        for (int i = 0; i <= J; i++) ck_assert_msg(same(at(&s, i, r), at(&o, i, r), D), "x_%d of row %d", i, r);
        ck_assert_msg(!same(at(&s, J + 1, r), at(&o, J + 1, r), D), "row %d: step %d drew no noise", r, J);
        for (int i = J + 1; i <= T; i++)
            ck_assert_msg(same(at(&s, i, r), at(&tail, i - (J + 1), r), D), "x_%d of row %d is not the ODE's", i, r);
        for (int i = 0; i < T; i++)
            ck_assert_msg(i == J ? isfinite(s.logp[i * B + r]) && s.logp[i * B + r] != 0.0f : s.logp[i * B + r] == 0.0f,
                          "logp of step %d row %d = %g", i, r, (double)s.logp[i * B + r]);
    }
    out_free(&s);
    out_free(&o);
    out_free(&tail);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* A counting op table: the final layer norm runs once per forward over all its rows. */
static int64_t g_ln_rows;
static void (*g_ln_fwd)(int64_t, int64_t, const float *, const float *, const float *, float, float *, float *,
                        float *);
static void counting_ln(int64_t M, int64_t D, const float *x, const float *gamma, const float *beta, float eps,
                        float *y, float *mean, float *rstd)
{
    g_ln_rows += M;
    g_ln_fwd(M, D, x, gamma, beta, eps, y, mean, rstd);
}

/* Two trees of 6 leaves (split 2 ways at step 1, 3 ways at step 3 with ξ·4): siblings
 * share the prefix up to their split bit for bit and diverge right after it; each leaf
 * equals the leaf rolled out alone (so the shared prefix, computed once, is what the leaf
 * would compute); batch 1 vs 7 give the same bits; the network sees 46 rows, not 72. */
START_TEST(test_tree)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 2);
    enum { B = 12, T = 6, L = 6 };
    const int64_t D = m.cfg.D;
    int pid[B];
    uint32_t sid[B];
    for (int r = 0; r < B; r++) pid[r] = r < L ? 2 : 5, sid[r] = (uint32_t)(24 + r); /* trees 4 and 5 */
    const fr_rollout_branch br[2] = {{1, 2, 1.0f}, {3, 3, 4.0f}};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 1.0f, &sched);
    c.branch = br;
    c.n_branch = 2;
    c.batch = 7;
    run_out tr, tr1;
    run(&m, &c, B, pid, sid, &tr);
    c.batch = 1;
    run(&m, &c, B, pid, sid, &tr1);
    for (int r = 0; r < B; r++) {
        char ctx[64];
        snprintf(ctx, sizeof ctx, "tree leaf %d (seed %llx)", r, SEED + 2);
        assert_same_row(&tr, r, &tr1, r, ctx);
        run_out one;
        run(&m, &c, 1, &pid[r], &sid[r], &one);
        assert_same_row(&tr, r, &one, 0, ctx);
        out_free(&one);
        const int l = r % L, base = r - l;
        for (int o = base; o < base + L; o++) {
            if (o == r) continue;
            /* the depth at which leaves l and o part: 1 (first split, step 1) or 2 (step 3) */
            const int split = l / 3 != (o % L) / 3 ? 1 : 3;
            for (int i = 0; i <= split; i++) ck_assert_msg(same(at(&tr, i, r), at(&tr, i, o), D), "%s vs %d: x_%d", ctx, o, i);
            ck_assert_msg(!same(at(&tr, split + 1, r), at(&tr, split + 1, o), D), "%s vs %d: no divergence", ctx, o);
        }
        ck_assert(!same(at(&tr, 0, r), at(&tr, 0, (r + L) % B), D)); /* the trees differ */
    }
    /* owners: s = 34 is leaf 4 of tree 5 (ids 30..35) */
    const uint32_t want[T + 1] = {30, 30, 33, 33, 34, 34, 34};
    for (int i = -1; i < T; i++) ck_assert_int_eq(fr_rollout_noise_owner(&c, 34, i), want[i + 1]);
    /* the first leaf owns its noise throughout: unscaled, it is the unbranched sample */
    const fr_rollout_branch br1[2] = {{1, 2, 1.0f}, {3, 3, 1.0f}};
    fr_rollout_cfg u = c;
    run_out a, p;
    u.branch = br1;
    run(&m, &u, B, pid, sid, &a);
    u.n_branch = 0;
    run(&m, &u, B, pid, sid, &p);
    assert_same_row(&a, 0, &p, 0, "leaf 0 vs unbranched");
    assert_same_row(&a, 6, &p, 6, "leaf 0 vs unbranched");
    /* ξ·4 at the second split: x_4 − μ_3 is 4 times the unscaled one's */
    for (int d = 0; d < D; d++) {
        const float q = (at(&tr, 4, 1)[d] - tr.mean[(3 * B + 1) * D + d]) / (at(&a, 4, 1)[d] - a.mean[(3 * B + 1) * D + d]);
        ck_assert_msg(fabsf(q - 4.0f) < 1e-3f, "xi_scale: ratio %g", (double)q);
    }
    /* model evaluations: (1·1 + 2·2 + 6·3) per tree; the engine computes that many rows */
    int64_t nfe;
    ck_assert(fr_rollout_nfe(&c, B, pid, sid, &nfe) == FR_OK);
    ck_assert_int_eq(nfe, 46);
    fr_ops counting = *fr_test_ref_be()->ops;
    g_ln_fwd = counting.layernorm_fwd;
    counting.layernorm_fwd = counting_ln;
    fr_backend counting_be = *fr_test_ref_be();
    counting_be.ops = &counting;
    g_ln_rows = 0;
    ck_assert(fr_rollout(&m, &counting_be, &fr_task_gmm2d, &c, B, pid, sid, NULL, a.x, NULL) == FR_OK);
    ck_assert_int_eq(g_ln_rows, 46 * (m.cfg.n_blocks + 1));
    u.n_branch = 0;
    u.cfg = 1.5f;
    ck_assert(fr_rollout_nfe(&u, B, pid, sid, &nfe) == FR_OK);
    ck_assert_int_eq(nfe, 2 * B * T);
    out_free(&tr);
    out_free(&tr1);
    out_free(&a);
    out_free(&p);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* Candidate branching: 4 candidates from one state x_J, one stochastic step at J, ODE
 * elsewhere (G²RPO / TempFlow-GRPO): they share x_0..x_J, differ from x_{J+1}, and only
 * step J has a log-prob. Then the refusals of bad trees. */
START_TEST(test_candidates)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 3);
    enum { B = 4, T = 5, J = 2 };
    const int64_t D = m.cfg.D;
    int pid[B] = {3, 3, 3, 3};
    uint32_t sid[B] = {8, 9, 10, 11};
    float lev[T] = {0, 0, 0.7f, 0, 0};
    const fr_rollout_branch br = {J, B, 1.0f};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 1.5f, &sched);
    c.step_noise = lev;
    c.branch = &br;
    c.n_branch = 1;
    run_out o;
    run(&m, &c, B, pid, sid, &o);
    for (int r = 1; r < B; r++) {
        for (int i = 0; i <= J; i++) ck_assert_msg(same(at(&o, i, 0), at(&o, i, r), D), "candidate %d: x_%d", r, i);
        for (int q = 0; q < r; q++) ck_assert_msg(!same(at(&o, J + 1, q), at(&o, J + 1, r), D), "candidates %d, %d", q, r);
    }
    for (int r = 0; r < B; r++)
        for (int i = 0; i < T; i++) ck_assert((o.logp[i * B + r] != 0.0f) == (i == J));
    int64_t nfe;
    ck_assert(fr_rollout_nfe(&c, B, pid, sid, &nfe) == FR_OK);
    ck_assert_int_eq(nfe, 2 * (J + B * (T - J)));

    fr_backend *be = fr_test_ref_be();
    float x0[B * 2];
    fr_rollout_branch bad[2] = {{2, 2, 1.0f}, {2, 2, 1.0f}};
    c.branch = bad;
    c.n_branch = 2;
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_ERR_ARG); /* not increasing */
    bad[1].at = 3;
    bad[1].width = 0;
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_ERR_ARG);
    bad[1].width = 2;
    bad[1].xi_scale = 0.0f;
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_ERR_ARG);
    bad[1].xi_scale = 1.0f;
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_OK);
    memset(x0, 0, sizeof x0);
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, x0, o.x, NULL), FR_ERR_ARG); /* x_init */
    c.x_T_key = FR_XT_GROUP;
    c.group_size = 6; /* not a multiple of the 4 leaves */
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_ERR_ARG);
    c.group_size = 8;
    ck_assert_int_eq(fr_rollout(&m, be, &fr_task_gmm2d, &c, B, pid, sid, NULL, o.x, NULL), FR_OK);
    out_free(&o);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* A tree with guidance on shapes (D = 768): the opt backend at 1 and 3 threads, batch 7,
 * gives ref's bits at batch 1. */
START_TEST(test_tree_opt_threads)
{
    fr_backend opt;
    if (fr_backend_open(&opt, "opt", 0, 0) != FR_OK) return; /* not built in */
    const fr_task *t;
    ck_assert(fr_task_get("shapes", &t) == FR_OK);
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 5);
    enum { B = 8, T = 4 };
    const int64_t D = m.cfg.D;
    int pid[B] = {3, 3, 3, 3, 9, 9, 9, 9};
    uint32_t sid[B] = {0, 1, 2, 3, 4, 5, 6, 7};
    const fr_rollout_branch br[2] = {{1, 2, 1.0f}, {2, 2, 4.0f}};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 3.0f, &sched);
    c.branch = br;
    c.n_branch = 2;
    c.x_T_key = FR_XT_GROUP;
    c.group_size = 4;
    run_out a, b;
    out_alloc(&a, T, B, D);
    c.batch = 1;
    ck_assert(fr_rollout(&m, fr_test_ref_be(), t, &c, B, pid, sid, NULL, a.x, &a.tr) == FR_OK);
    const int threads[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        opt = fr_test_backend("opt", 0, threads[k]);
        out_alloc(&b, T, B, D);
        c.batch = 7;
        ck_assert(fr_rollout(&m, &opt, t, &c, B, pid, sid, NULL, b.x, &b.tr) == FR_OK);
        for (int r = 0; r < B; r++) assert_same_row(&a, r, &b, r, threads[k] == 1 ? "opt 1 thread" : "opt 3 threads");
        out_free(&b);
    }
    fr_opt_set_threads(0);
    out_free(&a);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* fr_noise_fm: pretraining's noising of the Philox normals at the documented coordinates,
 * per row independent of the row's position; t = 0 gives x0 and t = 1 gives ε exactly. */
START_TEST(test_noise_fm)
{
    enum { B = 5, D = 7 };
    uint64_t rs = SEED + 4;
    float x0[B * D], t[B] = {0.0f, 1.0f, 0.25f, 0.5f, 0.875f}, xt[B * D], eps[B * D], xt2[B * D];
    uint32_t sid[B] = {3, 1, 4, 15, 92};
    for (int i = 0; i < B * D; i++) x0[i] = fr_test_uniform(&rs, -2.0f, 2.0f);
    const fr_noise_coord k = {42, FR_RNG_PRETRAIN_NOISE, 9, 2};
    ck_assert(fr_noise_fm(fr_test_ref_be(), B, D, k, sid, x0, t, xt, eps) == FR_OK);
    for (int b = 0; b < B; b++) {
        float e[D];
        fr_rng_fill_normal(e, D, 42, FR_RNG_PRETRAIN_NOISE, 9, sid[b], 2);
        for (int d = 0; d < D; d++) {
            const int i = b * D + d;
            ck_assert(fr_test_bits_equal(eps[i], e[d]));
            ck_assert(fr_test_bits_equal(xt[i], fr_flow_noised_elem(x0[i], e[d], t[b])));
        }
    }
    ck_assert(same(xt, x0, D));          /* t = 0 */
    ck_assert(same(xt + D, eps + D, D)); /* t = 1 */
    /* row 3 alone, and x_t written over x0, without ε */
    memcpy(xt2, x0 + 3 * D, D * sizeof(float));
    ck_assert(fr_noise_fm(fr_test_ref_be(), 1, D, k, &sid[3], xt2, &t[3], xt2, NULL) == FR_OK);
    ck_assert(same(xt2, xt + 3 * D, D));
    fr_noise_coord k2 = k;
    k2.c2 = 3;
    ck_assert(fr_noise_fm(fr_test_ref_be(), 1, D, k2, &sid[3], x0 + 3 * D, &t[3], xt2, NULL) == FR_OK);
    ck_assert(!same(xt2, xt + 3 * D, D));
    t[2] = 1.5f;
    ck_assert(fr_noise_fm(fr_test_ref_be(), B, D, k, sid, x0, t, xt, eps) == FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "row 2") != NULL);
}
END_TEST

/* ---- every backend ---------------------------------------------------------------------- */

/* The outputs of one rollout on backend be (model m there), copied to the host. */
static void run_on(fr_backend *be, const fr_model *m, const fr_task *t, const fr_rollout_cfg *c, int64_t B,
                   const int *pid, const uint32_t *sid, const float *x_init, run_out *o)
{
    const int64_t D = t->D, T = c->T, nx = B * D, nt = (T + 1) * B * D, nm = T * B * D;
    const int logp = fr_sampler_is_stochastic(c->kind) && c->noise > 0.0f;
    out_alloc(o, T, B, D);
    float *x = fr_dev_floats(be, nx), *tr = fr_dev_floats(be, nt), *mn = fr_dev_floats(be, nm);
    float *lp = fr_dev_floats(be, T * B), *xi = x_init ? fr_dev_floats(be, nx) : NULL, *nz = fr_dev_floats(be, nm);
    ck_assert(x && tr && mn && lp && nz && (!x_init || xi));
    if (x_init) ck_assert(fr_h2d(be, xi, x_init, (size_t)nx * sizeof *xi) == FR_OK);
    fr_rollout_traj tj = {tr, mn, logp ? lp : NULL, NULL, nz};
    fr_status st = fr_rollout(m, be, t, c, B, pid, sid, xi, x, &tj);
    ck_assert_msg(st == FR_OK, "%s: %s", be->name, fr_last_error());
    ck_assert(fr_d2h(be, o->x, x, (size_t)nx * sizeof(float)) == FR_OK);
    ck_assert(fr_d2h(be, o->traj, tr, (size_t)nt * sizeof(float)) == FR_OK);
    ck_assert(fr_d2h(be, o->mean, mn, (size_t)nm * sizeof(float)) == FR_OK);
    ck_assert(fr_d2h(be, o->logp, lp, (size_t)(T * B) * sizeof(float)) == FR_OK);
    ck_assert(fr_d2h(be, o->xi, nz, (size_t)nm * sizeof(float)) == FR_OK);
    fr_dev_free(be, x), fr_dev_free(be, tr), fr_dev_free(be, mn), fr_dev_free(be, lp), fr_dev_free(be, xi);
    fr_dev_free(be, nz);
}

/* Every kind (ddim on an ε model) with guidance 1.5 in chunks of 5 rows, from x_init, and in
 * trees (ξ·4 at the second split, x_T shared by a group): each backend built in gives ref's
 * trajectory, means, log-probs and samples bit for bit, through its own memory. */
START_TEST(test_every_backend)
{
    enum { B = 12, T = 5 };
    const fr_rollout_branch br[2] = {{1, 2, 1.0f}, {3, 3, 4.0f}};
    int pid[B];
    uint32_t sid[B];
    float x_init[B * 2];
    uint64_t rs = SEED + 6;
    for (int r = 0; r < B; r++) pid[r] = r / 6 * 3 + 1, sid[r] = (uint32_t)(12 + r);
    for (int i = 0; i < B * 2; i++) x_init[i] = fr_test_uniform(&rs, -1.5f, 1.5f);
    float betas[1000], ab[1000];
    ck_assert(fr_betas_linear(1000, 1e-4, 0.02, betas) == FR_OK);
    ck_assert(fr_alphas_cumprod(1000, betas, ab) == FR_OK);
    fr_backend bes[8];
    int nb = 0;
    for (const char *const *nm = fr_backend_names(); *nm && nb < 8; nm++)
        nb += fr_test_backend_try(&bes[nb], "rollout_engine", *nm, 2);
    for (int kind = 0; kind < FR_SAMPLER_COUNT; kind++) {
        const fr_pred pred = kind == FR_SAMPLER_DDIM ? FR_PRED_EPSILON : FR_PRED_VELOCITY;
        fr_model mr;
        fr_test_make_model(&mr, &fr_task_gmm2d, pred, SEED + 6 + (uint64_t)kind);
        fr_rollout_schedule sched;
        fr_rollout_cfg c = fr_rollout_cfg_default((fr_sampler_kind)kind);
        c.T = T;
        c.cfg = 1.5f;
        c.seed = 5;
        c.c0 = 8;
        c.batch = 5;
        if (kind == FR_SAMPLER_DDIM) c.noise = 0.8f, c.alpha_bar = ab;
        ck_assert(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 1000, 1, &sched) == FR_OK);
        for (int v = 0; v < 3; v++) { /* plain, x_init, tree */
            fr_rollout_cfg cv = c;
            if (v == 2) cv.branch = br, cv.n_branch = 2, cv.x_T_key = FR_XT_GROUP, cv.group_size = 6;
            const float *xi = v == 1 ? x_init : NULL;
            run_out want;
            run_on(fr_test_ref_be(), &mr, &fr_task_gmm2d, &cv, B, pid, sid, xi, &want);
            for (int k = 0; k < nb; k++) {
                fr_model mb;
                ck_assert(fr_model_init(&mb, &bes[k], &mr.cfg, 1) == FR_OK);
                ck_assert(fr_h2d(&bes[k], mb.arena_values, mr.arena_values,
                                 (size_t)fr_model_arena_floats(&mr) * sizeof(float)) == FR_OK);
                run_out got;
                run_on(&bes[k], &mb, &fr_task_gmm2d, &cv, B, pid, sid, xi, &got);
                char ctx[96];
                snprintf(ctx, sizeof ctx, "%s %s variant %d (seed %llx)", bes[k].name, fr_sampler_name(c.kind), v,
                         SEED + 6);
                for (int r = 0; r < B; r++) assert_same_row(&got, r, &want, r, ctx);
                out_free(&got);
                fr_model_free(&mb);
            }
            out_free(&want);
        }
        fr_rollout_schedule_free(&sched);
        fr_model_free(&mr);
    }
    for (int k = 0; k < nb; k++) fr_backend_close(&bes[k]);
}
END_TEST

/* fr_rollout_traj.xi: row r's ξ at step i is the normals its noise owner draws there
 * (fr_rng_fill_normal of (seed, FR_RNG_SAMPLER_NOISE, c0, owner, i), before a branch's
 * xi_scale: the audit record's "noise.xi" that core/algo/traj_family.c drew again on the host
 * before), and 0 at a step of std 0; in a tree with a scaled split, in chunks of 5 rows, with
 * level 0 at steps 0 and 4. */
START_TEST(test_xi_output)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 7);
    enum { B = 12, T = 6 };
    const int64_t D = m.cfg.D;
    int pid[B];
    uint32_t sid[B];
    for (int r = 0; r < B; r++) pid[r] = r < 6 ? 2 : 5, sid[r] = (uint32_t)(24 + r);
    const fr_rollout_branch br[2] = {{1, 2, 1.0f}, {3, 3, 4.0f}};
    const float lev[T] = {0.0f, 1.0f, 0.7f, 1.0f, 0.0f, 0.5f};
    fr_rollout_schedule sched;
    fr_rollout_cfg c = sde_cfg(T, 1.0f, &sched);
    c.branch = br, c.n_branch = 2, c.batch = 5, c.step_noise = lev;
    run_out o;
    run(&m, &c, B, pid, sid, &o);
    float *want = calloc((size_t)D, sizeof *want);
    ck_assert(want != NULL);
    int drawn = 0;
    for (int64_t i = 0; i < T; i++)
        for (int r = 0; r < B; r++) {
            if (lev[i] != 0.0f) {
                fr_rng_fill_normal(want, D, c.seed, FR_RNG_SAMPLER_NOISE, c.c0, fr_rollout_noise_owner(&c, sid[r], i),
                                   (uint32_t)i);
                drawn++;
            } else {
                memset(want, 0, (size_t)D * sizeof *want);
            }
            ck_assert_msg(same(o.xi + (i * B + r) * D, want, D), "xi of row %d at step %lld", r, (long long)i);
        }
    ck_assert_int_eq(drawn, 4 * B);
    free(want);
    out_free(&o);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

Suite *suite_rollout_engine(void)
{
    Suite *s = suite_create("rollout_engine");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shared_x_T);
    tcase_add_test(tc, test_single_stochastic_step);
    tcase_add_test(tc, test_tree);
    tcase_add_test(tc, test_candidates);
    tcase_add_test(tc, test_tree_opt_threads);
    tcase_add_test(tc, test_noise_fm);
    tcase_add_test(tc, test_every_backend);
    tcase_add_test(tc, test_xi_output);
    suite_add_tcase(s, tc);
    return s;
}
