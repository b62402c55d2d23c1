/* SPO (docs/algorithms/spo.md; flowrl/spo.h): the margin rule, the ranking and the continuation
 * choice by hand; the step-wise rollout replayed on the host from its documented coordinates
 * (candidates from one shared x_t, their x̂0 scores, best / worst / next, the chain before the
 * divert step = fr_rollout's); determinism over batch, backend and threads; the network rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/detmath.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"
#include "flowrl/rollout.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"
#include "flowrl/spo.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0x5F0ull

static int same(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* ---- the margin rule, the ranking, the choice ---------------------------------------------- */

/* p0 − p1 = tanh(gap/2): the threshold 0.3 sits at gap 2·atanh(0.3) = 0.6190392... A gap of 1
 * (a binary reward's) is kept, 0.6 is not, 0.62 is; ties never are, whatever the threshold. The
 * rule agrees with tanh in double away from the boundary, and scaling the scores moves pairs
 * across it. */
START_TEST(test_margin_rule)
{
    ck_assert(fr_spo_keep(1.0f, 0.0f, 0.3f));
    ck_assert(fr_spo_keep(0.0f, -1.0f, 0.3f));
    ck_assert(!fr_spo_keep(0.6f, 0.0f, 0.3f));
    ck_assert(fr_spo_keep(0.62f, 0.0f, 0.3f));
    ck_assert(!fr_spo_keep(0.5f, 0.5f, 0.3f));
    ck_assert(!fr_spo_keep(0.5f, 0.5f, 0.0f));
    ck_assert(fr_spo_keep(1e-3f, 0.0f, 0.0f));
    ck_assert(fr_spo_keep(100.0f, -100.0f, 0.3f)); /* e1 underflows: p = [1, 0] */
    ck_assert(!fr_spo_keep(0.5f, 0.0f, 0.3f) && fr_spo_keep(0.5f * 2.0f, 0.0f, 0.3f)); /* a reward scale moves it */
    uint64_t s = SEED;
    const double gap0 = 2.0 * atanh(0.3);
    for (int i = 0; i < 2000; i++) {
        const float a = fr_test_uniform(&s, -2.0f, 2.0f), b = a - fr_test_uniform(&s, 0.0f, 1.5f);
        const double gap = (double)a - (double)b;
        if (fabs(gap - gap0) < 1e-5) continue;
        ck_assert_msg(fr_spo_keep(a, b, 0.3f) == (gap > gap0), "scores %a %a", (double)a, (double)b);
    }
}
END_TEST

START_TEST(test_rank)
{
    int64_t b, w;
    const float s1[4] = {0.5f, 2.0f, -1.0f, 2.0f};
    fr_spo_rank(4, s1, &b, &w);
    ck_assert(b == 1 && w == 2); /* the first of the maxima */
    const float s2[4] = {0.0f, 1.0f, 0.0f, 1.0f};
    fr_spo_rank(4, s2, &b, &w);
    ck_assert(b == 1 && w == 2); /* the last of the minima */
    const float s3[2] = {3.0f, 3.0f};
    fr_spo_rank(2, s3, &b, &w);
    ck_assert(b == 0 && w == 1); /* a tie: a pair that the margin rule drops */
    ck_assert(!fr_spo_keep(s3[b], s3[w], 0.3f));
}
END_TEST

/* The continuation is u32(seed, FR_RNG_SPO_CHOICE, c0, s, j, 0) mod K: a pure function of its
 * coordinates, about uniform over the K candidates, and different across chains and steps. */
START_TEST(test_choice)
{
    int64_t count[3] = {0, 0, 0};
    for (uint32_t s = 0; s < 300; s++)
        for (int64_t j = 0; j < 10; j++) {
            const int64_t q = fr_spo_choice(7, 3, s, j, 3);
            ck_assert(q >= 0 && q < 3);
            ck_assert_int_eq(q, (int64_t)(fr_rng_u32(7, FR_RNG_SPO_CHOICE, 3, s, (uint32_t)j, 0) % 3u));
            ck_assert_int_eq(q, fr_spo_choice(7, 3, s, j, 3));
            count[q]++;
        }
    for (int q = 0; q < 3; q++) ck_assert_msg(count[q] > 900 && count[q] < 1100, "candidate %d: %lld of 3000", q,
                                              (long long)count[q]);
    int differs = 0;
    for (uint32_t s = 0; s < 20; s++) differs += fr_spo_choice(7, 3, s, 0, 2) != fr_spo_choice(7, 4, s, 0, 2);
    ck_assert(differs > 0); /* another epoch (c0), other choices */
}
END_TEST

/* ---- the rollout ------------------------------------------------------------------------- */

/* ᾱ of DDPM's linear schedule over 1000 steps (owned by the caller). */
static float *alpha_bar(void)
{
    float *betas = malloc(1000 * sizeof *betas), *ab = malloc(1000 * sizeof *ab);
    ck_assert(betas && ab);
    ck_assert(fr_betas_linear(1000, 1e-4, 0.02, betas) == FR_OK);
    ck_assert(fr_alphas_cumprod(1000, betas, ab) == FR_OK);
    free(betas);
    return ab;
}

static fr_rollout_cfg ddim_cfg(int64_t T, float g, const float *ab, fr_rollout_schedule *sched)
{
    fr_rollout_cfg c = fr_rollout_cfg_default(FR_SAMPLER_DDIM);
    c.T = T;
    c.cfg = g;
    c.seed = 4321;
    c.c0 = 5;
    c.alpha_bar = ab;
    c.noise = 1.0f;
    ck_assert(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 1000, 1, sched) == FR_OK);
    return c;
}

/* −|x0 − (p/4, 0)|²/4 of x0 brought from backend be, recording the rows it was given (up to cap). */
typedef struct {
    int64_t D, seen, cap;
    float *x0;
    fr_backend *be;
} dist_reward;

static fr_status reward_dist(void *user, int64_t n, const int *pid, const float *x0_dev, float *rw)
{
    dist_reward *d = user;
    float *x0 = malloc((size_t)(n * d->D) * sizeof *x0);
    ck_assert(x0 && fr_d2h(d->be, x0, x0_dev, (size_t)(n * d->D) * sizeof *x0) == FR_OK);
    for (int64_t i = 0; i < n; i++) {
        const float *x = x0 + i * d->D;
        const float e0 = x[0] - 0.25f * (float)pid[i], e1 = x[1];
        rw[i] = -0.25f * fmaf(e0, e0, e1 * e1);
        if (d->x0 && d->seen < d->cap) memcpy(d->x0 + d->seen++ * d->D, x, (size_t)d->D * sizeof *x);
    }
    free(x0);
    return FR_OK;
}

/* The rollout's outputs, host copies. */
typedef struct {
    int64_t T, C, K, D;
    float *traj, *x_next, *mean, *logp, *x, *score;
    int64_t *pick;
    uint8_t *kept;
} result;

static void result_free(result *o)
{
    free(o->traj), free(o->x_next), free(o->mean), free(o->logp), free(o->x), free(o->score), free(o->pick),
        free(o->kept);
}

static void run_spo(const fr_model *m, fr_backend *be, const fr_task *t, const fr_rollout_cfg *rc, const fr_spo_cfg *sc,
                    int64_t C, const int *pid, const uint32_t *sid, dist_reward *rw, result *o)
{
    const int64_t T = rc->T, K = sc->candidates, D = m->cfg.D, N = 2 * C;
    *o = (result){T, C, K, D, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const size_t nt = (size_t)((T + 1) * N * D), ns = (size_t)(T * N * D);
    o->traj = malloc(nt * 4), o->x_next = malloc(ns * 4), o->mean = malloc(ns * 4);
    o->logp = malloc((size_t)(T * N) * 4), o->x = malloc((size_t)(C * D) * 4);
    o->score = malloc((size_t)(T * C * K) * 4), o->pick = malloc((size_t)(T * C * 3) * 8), o->kept = malloc((size_t)(T * C));
    ck_assert(o->traj && o->x_next && o->mean && o->logp && o->x && o->score && o->pick && o->kept);
    float *dt = fr_dev_floats(be, (int64_t)nt), *dn = fr_dev_floats(be, (int64_t)ns), *dm = fr_dev_floats(be, (int64_t)ns);
    float *dl = fr_dev_floats(be, T * N), *dx = fr_dev_floats(be, C * D);
    ck_assert(dt && dn && dm && dl && dx);
    const fr_spo_out out = {dt, dn, dm, dl, dx, o->score, o->pick, o->kept};
    rw->be = be;
    fr_status s = fr_spo_rollout(m, be, t, rc, sc, C, pid, sid, reward_dist, rw, &out);
    ck_assert_msg(s == FR_OK, "%s: %s", be->name, fr_last_error());
    ck_assert(fr_d2h(be, o->traj, dt, nt * 4) == FR_OK && fr_d2h(be, o->x_next, dn, ns * 4) == FR_OK &&
              fr_d2h(be, o->mean, dm, ns * 4) == FR_OK && fr_d2h(be, o->logp, dl, (size_t)(T * N) * 4) == FR_OK &&
              fr_d2h(be, o->x, dx, (size_t)(C * D) * 4) == FR_OK);
    void *dev[] = {dt, dn, dm, dl, dx};
    for (int i = 0; i < 5; i++) fr_dev_free(be, dev[i]);
}

static int same_result(const result *a, const result *b)
{
    const int64_t T = a->T, N = 2 * a->C, D = a->D;
    return same(a->traj, b->traj, (size_t)((T + 1) * N * D) * 4) && same(a->x_next, b->x_next, (size_t)(T * N * D) * 4) &&
           same(a->mean, b->mean, (size_t)(T * N * D) * 4) && same(a->logp, b->logp, (size_t)(T * N) * 4) &&
           same(a->x, b->x, (size_t)(a->C * D) * 4) && same(a->score, b->score, (size_t)(T * a->C * a->K) * 4) &&
           same(a->pick, b->pick, (size_t)(T * a->C * 3) * 8) && same(a->kept, b->kept, (size_t)(T * a->C));
}

/* The guided ε̂ of one row x (D,) at step i, on ref. */
static void eps_of(const fr_model *m, const fr_task *t, const fr_rollout_cfg *rc, int pid, const float *x, int64_t i,
                   float *eps)
{
    fr_guided_ws w;
    ck_assert(fr_guided_ws_alloc(&w, fr_test_ref_be(), m, 1, fr_guidance_from_scale(rc->cfg), 0) == FR_OK);
    int32_t c[8];
    ck_assert(m->cfg.n_slots <= 8 && fr_cond_ids(t, 1, &pid, c) == FR_OK);
    ck_assert(fr_guided_forward(m, fr_test_ref_be(), &w, 1, x, fr_rollout_time(rc, i), c, eps) == FR_OK);
    fr_guided_ws_free(&w);
}

/* The rollout on ref, replayed on the host one chain and one candidate at a time from the
 * documented coordinates (flowrl/spo.h): x_T and the steps before the divert step as fr_rollout
 * of sample id s·K; at each later step the K candidates from the one shared x_t (rows 2c, 2c+1
 * of traj[j] and of mean[j] equal), their x̂0 by the DDIM formula (what the reward saw), the
 * scores, best / worst into x_next with their log-probs, kept by the margin rule, the chain
 * continuing from candidate `next` (traj[j + 1]); the last step scores the candidates
 * themselves. Guided (g = 2) and not; some pairs kept, some dropped. */
START_TEST(test_rollout_replay)
{
    enum { C = 3, K = 3, T = 5, D = 2 };
    const fr_task *t = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_EPSILON, SEED + 1);
    float *ab = alpha_bar();
    const int pid[C] = {1, 4, 6};
    const uint32_t sid[C] = {0, 5, 9};
    int kept_any = 0, dropped_any = 0;
    for (int gi = 0; gi < 2; gi++) {
        fr_rollout_schedule sched;
        const fr_rollout_cfg rc = ddim_cfg(T, gi ? 2.0f : 1.0f, ab, &sched);
        const fr_spo_cfg sc = {2, K, 0.3f};
        float seen[T * C * K * D];
        dist_reward rw = {D, 0, T * C * K, seen, NULL};
        result o;
        fr_backend *be = fr_test_ref_be();
        const uint64_t f0 = be->work.fwd_rows;
        run_spo(&m, be, t, &rc, &sc, C, pid, sid, &rw, &o);
        ck_assert_int_eq((int64_t)(be->work.fwd_rows - f0), fr_spo_nfe(&rc, &sc, C));
        ck_assert_int_eq(fr_spo_nfe(&rc, &sc, C), (C * 3 + C * K * 2) * (gi ? 2 : 1));
        ck_assert_int_eq(rw.seen, (T - sc.divert) * C * K);
        /* the chains before the divert step: fr_rollout of sample ids s·K */
        float tr[(T + 1) * C * D], xr[C * D], mr[T * C * D], lr[T * C];
        uint32_t ids[C];
        for (int c = 0; c < C; c++) ids[c] = sid[c] * K;
        const fr_rollout_traj rt = {tr, mr, lr, NULL, NULL};
        ck_assert(fr_rollout(&m, be, t, &rc, C, pid, ids, NULL, xr, &rt) == FR_OK);
        const int64_t N = 2 * C;
        for (int64_t j = 0; j <= sc.divert; j++)
            for (int c = 0; c < C; c++)
                for (int h = 0; h < 2; h++) {
                    ck_assert(same(o.traj + (j * N + 2 * c + h) * D, tr + (j * C + c) * D, D * 4));
                    if (j < sc.divert) {
                        ck_assert(same(o.x_next + (j * N + 2 * c + h) * D, tr + ((j + 1) * C + c) * D, D * 4));
                        ck_assert(same(o.mean + (j * N + 2 * c + h) * D, mr + (j * C + c) * D, D * 4));
                        ck_assert(same(o.logp + j * N + 2 * c + h, lr + j * C + c, 4));
                        ck_assert(o.pick[(j * C + c) * 3] == -1 && !o.kept[j * C + c]);
                    }
                }
        /* the steps with candidates */
        int64_t n_seen = 0;
        for (int64_t j = sc.divert; j < T; j++) {
            const fr_step p = fr_rollout_step(&rc, j);
            for (int c = 0; c < C; c++) {
                const float *x = o.traj + (j * N + 2 * c) * D;
                ck_assert(same(x, o.traj + (j * N + 2 * c + 1) * D, D * 4)); /* one shared x_t */
                ck_assert(same(o.mean + (j * N + 2 * c) * D, o.mean + (j * N + 2 * c + 1) * D, D * 4));
                float eps[D], cand[K][D], mean[K][D], lp[K], sc_want[K];
                eps_of(&m, t, &rc, pid[c], x, j, eps);
                for (int q = 0; q < K; q++) {
                    float xi[D];
                    fr_rng_fill_normal(xi, D, rc.seed, FR_RNG_SAMPLER_NOISE, rc.c0, sid[c] * K + (uint32_t)q, (uint32_t)j);
                    ck_assert(fr_sampler_step(be, &p, 1, D, x, eps, NULL, xi, cand[q], mean[q], &lp[q], NULL) == FR_OK);
                    float x0[D];
                    if (j + 1 < T) {
                        float e2[D];
                        eps_of(&m, t, &rc, pid[c], cand[q], j + 1, e2);
                        const float a1 = fr_rollout_step(&rc, j + 1).alpha_bar;
                        for (int d = 0; d < D; d++) x0[d] = (cand[q][d] - sqrtf(1.0f - a1) * e2[d]) / sqrtf(a1);
                    } else
                        memcpy(x0, cand[q], sizeof x0);
                    ck_assert_msg(same(x0, seen + n_seen++ * D, D * 4), "x0 of step %lld chain %d candidate %d",
                                  (long long)j, c, q);
                    const float e0 = x0[0] - 0.25f * (float)pid[c];
                    sc_want[q] = -0.25f * fmaf(e0, e0, x0[1] * x0[1]);
                    ck_assert(same(&sc_want[q], o.score + (j * C + c) * K + q, 4));
                }
                const int64_t *pk = o.pick + (j * C + c) * 3;
                int64_t b, w;
                fr_spo_rank(K, sc_want, &b, &w);
                ck_assert(pk[0] == b && pk[1] == w && pk[2] == fr_spo_choice(rc.seed, rc.c0, sid[c], j, K));
                const int keep = fr_spo_keep(sc_want[b], sc_want[w], 0.3f);
                ck_assert_int_eq(o.kept[j * C + c], keep);
                kept_any |= keep, dropped_any |= !keep;
                ck_assert(same(o.x_next + (j * N + 2 * c) * D, cand[b], D * 4));
                ck_assert(same(o.x_next + (j * N + 2 * c + 1) * D, cand[w], D * 4));
                ck_assert(same(o.mean + (j * N + 2 * c) * D, mean[b], D * 4));
                ck_assert(same(o.logp + j * N + 2 * c, &lp[b], 4) && same(o.logp + j * N + 2 * c + 1, &lp[w], 4));
                ck_assert(same(o.traj + ((j + 1) * N + 2 * c) * D, cand[pk[2]], D * 4));
            }
        }
        for (int c = 0; c < C; c++) ck_assert(same(o.x + c * D, o.traj + (T * N + 2 * c) * D, D * 4));
        result_free(&o);
        fr_rollout_schedule_free(&sched);
    }
    ck_assert_msg(kept_any && dropped_any, "the case should keep some pairs and drop others");
    free(ab);
    fr_model_free(&m);
}
END_TEST

/* The same bits whatever the rows per forward, on every backend built in (opt at 1 and 3
 * threads, cuda-emu through guarded device memory); a chain's rollout does not depend on the
 * other chains (a chain alone = its rows of the whole). */
START_TEST(test_rollout_deterministic)
{
    enum { C = 4, K = 2, T = 6, D = 2 };
    const fr_task *t = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_EPSILON, SEED + 2);
    float *ab = alpha_bar();
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ddim_cfg(T, 1.5f, ab, &sched);
    const fr_spo_cfg sc = {1, K, 0.3f};
    const int pid[C] = {0, 2, 2, 7};
    const uint32_t sid[C] = {0, 1, 2, 3};
    dist_reward rw = {D, 0, 0, NULL, NULL};
    result want, got;
    run_spo(&m, fr_test_ref_be(), t, &rc, &sc, C, pid, sid, &rw, &want);
    rc.batch = 3;
    run_spo(&m, fr_test_ref_be(), t, &rc, &sc, C, pid, sid, &rw, &got);
    ck_assert(same_result(&want, &got));
    result_free(&got);
    /* chain 2 alone */
    run_spo(&m, fr_test_ref_be(), t, &rc, &sc, 1, pid + 2, sid + 2, &rw, &got);
    for (int64_t j = 0; j <= T; j++) ck_assert(same(got.traj + j * 2 * D, want.traj + (j * 2 * C + 4) * D, 2 * D * 4));
    for (int64_t j = 0; j < T; j++) ck_assert(same(got.x_next + j * 2 * D, want.x_next + (j * 2 * C + 4) * D, 2 * D * 4));
    result_free(&got);
    const char *names[] = {"opt", "opt", "cuda-emu"};
    const int threads[] = {1, 3, 1};
    for (int k = 0; k < 3; k++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "spo", names[k], threads[k])) continue;
        fr_model mb;
        ck_assert(fr_model_init(&mb, &be, &m.cfg, 1) == FR_OK);
        ck_assert(fr_h2d(&be, mb.arena_values, m.arena_values, (size_t)fr_model_arena_floats(&m) * sizeof(float)) == FR_OK);
        run_spo(&mb, &be, t, &rc, &sc, C, pid, sid, &rw, &got);
        ck_assert_msg(same_result(&want, &got), "%s at %d threads", names[k], threads[k]);
        result_free(&got);
        fr_model_free(&mb);
        fr_backend_close(&be);
    }
    result_free(&want);
    fr_rollout_schedule_free(&sched);
    free(ab);
    fr_model_free(&m);
}
END_TEST

/* ---- θ = ref ------------------------------------------------------------------------------ */

/* Spec objectives.md §22: at θ = ref every kept pair's term is softplus(0) as flowrl computes it,
 * bit for bit, and a batch's loss is within 1 ulp of it. The kept pairs of an SPO rollout on ref
 * (guided, g = 1.5) trained through fr_traj_micro_step with the pair objective (β 10, ε 0.1,
 * h = +1 / −1 on rows 2c / 2c + 1), the policy a copy of the reference: each pair alone
 * (its loss is its term), the ratios exactly 1; then each step's pairs as one micro-step, and
 * the batch loss of SPO's plan (Σ_j L_j·b_j/b over the steps' micro-steps). */
START_TEST(test_theta_ref)
{
    enum { C = 6, K = 2, T = 5, D = 2, N = 2 * C };
    const fr_task *t = &fr_task_gmm2d;
    fr_model pol, ref;
    fr_test_make_model(&pol, t, FR_PRED_EPSILON, SEED + 4);
    fr_test_make_model(&ref, t, FR_PRED_EPSILON, SEED + 4);
    float *ab = alpha_bar();
    fr_rollout_schedule sched;
    const fr_rollout_cfg rc = ddim_cfg(T, 1.5f, ab, &sched);
    const fr_spo_cfg sc = {1, K, 0.0f};
    const int pid[C] = {0, 1, 2, 3, 5, 7};
    const uint32_t sid[C] = {0, 1, 2, 3, 4, 5};
    dist_reward rw = {D, 0, 0, NULL, NULL};
    result o;
    run_spo(&ref, fr_test_ref_be(), t, &rc, &sc, C, pid, sid, &rw, &o);
    float h[N], adv[N] = {0};
    int rpid[N];
    for (int c = 0; c < C; c++) h[2 * c] = 1.0f, h[2 * c + 1] = -1.0f, rpid[2 * c] = rpid[2 * c + 1] = pid[c];
    const fr_traj_pair_params prm = {10.0f, 0.1, h};
    const fr_traj_trainer tr = {&pol, &ref, fr_test_ref_be(), {1.5f, 1}, &fr_traj_pair_pref, &prm, 0.0f, FR_KL_CODE};
    const fr_traj_data d = {N, o.traj, o.mean, o.logp, adv, rpid, t, &rc, o.x_next, NULL};
    fr_traj_ws w;
    ck_assert_msg(fr_traj_ws_alloc(&w, &tr, N) == FR_OK, "%s", fr_last_error());
    const float sp0 = fr_softplusf(0.0f);
    int64_t rows[N], n_all = 0, pairs_at[T] = {0};
    float ratio[N], batch = 0.0f;
    fr_traj_stats st;
    for (int64_t j = 0; j < T; j++)
        for (int c = 0; c < C; c++) pairs_at[j] += o.kept[j * C + c], n_all += o.kept[j * C + c];
    ck_assert_msg(n_all >= 8, "only %lld pairs kept", (long long)n_all);
    for (int64_t j = 0; j < T; j++) {
        int64_t b = 0;
        for (int c = 0; c < C; c++) {
            if (!o.kept[j * C + c]) continue;
            const int64_t one[2] = {2 * c, 2 * c + 1};
            ck_assert(fr_traj_micro_step(&tr, &w, &d, one, 2, j, 1.0f, ratio, &st) == FR_OK);
            ck_assert_msg(fr_test_bits_equal(st.obj, sp0), "step %lld chain %d: term %a, softplus(0) %a", (long long)j, c,
                          (double)st.obj, (double)sp0);
            ck_assert(ratio[0] == 1.0f && ratio[1] == 1.0f);
            rows[b++] = 2 * c, rows[b++] = 2 * c + 1;
        }
        if (!b) continue;
        ck_assert(fr_traj_micro_step(&tr, &w, &d, rows, b, j, 1.0f, ratio, &st) == FR_OK);
        ck_assert_msg(fr_test_ulps(st.obj, sp0) <= 1, "step %lld: loss %a", (long long)j, (double)st.obj);
        batch += st.loss * ((float)pairs_at[j] / (float)n_all); /* fr_tf_run_plan's sum, gout = b_j/b */
    }
    ck_assert_msg(fr_test_ulps(batch, sp0) <= 1, "batch loss %a, softplus(0) %a", (double)batch, (double)sp0);
    fr_traj_ws_free(&w);
    result_free(&o);
    fr_rollout_schedule_free(&sched);
    free(ab);
    fr_model_free(&pol);
    fr_model_free(&ref);
}
END_TEST

/* One line naming the field: candidates, divert step, threshold, sampler, a non-finite score. */
static fr_status reward_nan(void *user, int64_t n, const int *pid, const float *x0, float *rw)
{
    (void)user, (void)pid, (void)x0;
    for (int64_t i = 0; i < n; i++) rw[i] = i == 1 ? NAN : 0.0f;
    return FR_OK;
}

START_TEST(test_checks)
{
    const fr_spo_cfg ok = {1, 2, 0.3f};
    ck_assert_int_eq(fr_spo_cfg_check(&ok, 4), FR_OK);
    const fr_spo_cfg bad[] = {{1, 1, 0.3f}, {4, 2, 0.3f}, {-1, 2, 0.3f}, {1, 2, 1.0f}, {1, 2, NAN}};
    const char *word[] = {"candidates", "divert", "divert", "threshold", "threshold"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(fr_spo_cfg_check(&bad[i], 4), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), word[i]) && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    }
    enum { D = 2 };
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_EPSILON, SEED + 3);
    float *ab = alpha_bar();
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ddim_cfg(4, 1.0f, ab, &sched);
    const int pid[1] = {0};
    const uint32_t sid[1] = {0};
    float traj[5 * 2 * D], xn[4 * 2 * D], mean[4 * 2 * D], logp[8], x[D], score[4 * 2];
    int64_t pick[4 * 3];
    uint8_t kept[4];
    const fr_spo_out out = {traj, xn, mean, logp, x, score, pick, kept};
    ck_assert_int_eq(fr_spo_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &ok, 1, pid, sid, reward_nan, NULL, &out),
                     FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "candidate 1"), "%s", fr_last_error());
    rc.noise = 0.0f;
    ck_assert_int_eq(fr_spo_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &ok, 1, pid, sid, reward_nan, NULL, &out),
                     FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "eta"), "%s", fr_last_error());
    fr_rollout_schedule_free(&sched);
    free(ab);
    fr_model_free(&m);
}
END_TEST

Suite *suite_spo(void)
{
    Suite *s = suite_create("spo");
    TCase *tc = tcase_create("spo");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_margin_rule);
    tcase_add_test(tc, test_rank);
    tcase_add_test(tc, test_choice);
    tcase_add_test(tc, test_rollout_replay);
    tcase_add_test(tc, test_rollout_deterministic);
    tcase_add_test(tc, test_theta_ref);
    tcase_add_test(tc, test_checks);
    suite_add_tcase(s, tc);
    return s;
}
