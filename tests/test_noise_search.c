/* Smart-GRPO's noise search (flowrl/noise_search.h, docs/algorithms/samplers.md §14): the
 * refit on a hand case, the whole search against a host replay of its documented formula on
 * a model whose velocity is a known constant, determinism (batch, prompt set, backend), the
 * effect on gmm2d, and the checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/noise_search.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain.h"
#include "flowrl/rollout.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/schedule.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0x5A4A7ull

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

/* An ode rollout config of T steps on the diffusers grid (σ_0 = 1), guidance g. */
static fr_rollout_cfg ode_cfg(int64_t T, float g, fr_rollout_schedule *sched)
{
    fr_rollout_cfg c = fr_rollout_cfg_default(FR_SAMPLER_ODE);
    c.T = T;
    c.cfg = g;
    c.seed = 77;
    c.c0 = 3;
    ck_assert(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 1000, 1, sched) == FR_OK);
    return c;
}

/* ---- rewards ------------------------------------------------------------------------ */

/* −|x0 − target_p|², target_p = (p, −p/2, 0, ...); records the rows it saw (up to cap). */
typedef struct {
    int64_t D, calls, seen, cap;
    float *x0; /* (cap, D) the rows of the calls, in order */
} dist_reward;

static fr_status reward_dist(void *user, int64_t n, const int *pid, const float *x0, float *rw)
{
    dist_reward *d = user;
    d->calls++;
    for (int64_t i = 0; i < n; i++) {
        const float *x = x0 + i * d->D;
        float s = 0.0f;
        for (int64_t j = 0; j < d->D; j++) {
            const float t = j == 0 ? (float)pid[i] : j == 1 ? -0.5f * (float)pid[i] : 0.0f, e = x[j] - t;
            s = fmaf(e, e, s);
        }
        rw[i] = -s;
        if (d->x0 && d->seen < d->cap) memcpy(d->x0 + d->seen++ * d->D, x, (size_t)d->D * sizeof *x);
    }
    return FR_OK;
}

/* The task's reward reward_id (gmm2d: 0 "mode", 1 "halfplane"). */
typedef struct {
    const fr_task *t;
    int id;
} task_reward;

static fr_status reward_task(void *user, int64_t n, const int *pid, const float *x0, float *rw)
{
    const task_reward *r = user;
    return fr_task_reward_batch(r->t, r->id, (int)n, pid, x0, rw, NULL);
}

static fr_status reward_nan(void *user, int64_t n, const int *pid, const float *x0, float *rw)
{
    (void)user, (void)pid, (void)x0;
    for (int64_t i = 0; i < n; i++) rw[i] = i == n - 1 ? NAN : 0.0f;
    return FR_OK;
}

/* ---- the search on a backend, x_T back on the host ------------------------------------- */

static void search(const fr_model *m, fr_backend *be, const fr_task *t, const fr_rollout_cfg *rc,
                   const fr_noise_search_cfg *c, int64_t P, const int *pid, const uint32_t *ids,
                   fr_noise_reward_fn rf, void *user, int64_t G, float *x_T, fr_noise_search_out *out)
{
    const int64_t n = P * G * m->cfg.D;
    float *xd = fr_dev_floats(be, n);
    ck_assert(xd);
    fr_status s = fr_noise_search(m, be, t, rc, c, P, pid, ids, rf, user, G, xd, out);
    ck_assert_msg(s == FR_OK, "%s: %s", be->name, fr_last_error());
    ck_assert(fr_d2h(be, x_T, xd, (size_t)n * sizeof *x_T) == FR_OK);
    fr_dev_free(be, xd);
}

/* ---- the refit -------------------------------------------------------------------------- */

/* Six candidates in D = 3, E = 4. Rewards {0.5, 2, 0.5, 1, -1, 0.5} rank 1, 3, then the tie
 * 0.5 by index: 0, 2 (5 is left out by the tie rule, 4 is last). The elites' rows are chosen
 * so that every statistic is exact: dim 0 {1, 3, 1, 3} -> μ 2, σ 1; dim 1 {0, 4, 0, 0} ->
 * μ 1, σ √3; dim 2 all 5 -> μ 5, σ 0, floored to 0.5. Rows 4 and 5 hold 100: any of them in
 * the elite set would show. */
START_TEST(test_refit_hand)
{
    enum { K = 6, E = 4, D = 3 };
    const float z[K * D] = {1, 0, 5, 3, 4, 5, 1, 0, 5, 3, 0, 5, 100, 100, 100, 100, 100, 100};
    const float rw[K] = {0.5f, 2.0f, 0.5f, 1.0f, -1.0f, 0.5f};
    float mu[D], sd[D];
    int64_t el[E];
    ck_assert_int_eq(fr_noise_search_refit(K, E, D, z, rw, 0.5f, mu, sd, el), FR_OK);
    const int64_t want_el[E] = {1, 3, 0, 2};
    for (int e = 0; e < E; e++) ck_assert_int_eq(el[e], want_el[e]);
    ck_assert(mu[0] == 2.0f && sd[0] == 1.0f);
    ck_assert(mu[1] == 1.0f && sd[1] == sqrtf(3.0f));
    ck_assert(mu[2] == 5.0f && sd[2] == 0.5f);
    /* E = 1: the best alone, σ all at the floor */
    ck_assert_int_eq(fr_noise_search_refit(K, 1, D, z, rw, 0.25f, mu, sd, NULL), FR_OK);
    ck_assert(mu[0] == 3.0f && mu[1] == 4.0f && mu[2] == 5.0f);
    ck_assert(sd[0] == 0.25f && sd[1] == 0.25f && sd[2] == 0.25f);
    /* a non-finite reward is named */
    const float bad[K] = {0, 0, INFINITY, 0, 0, 0};
    ck_assert_int_eq(fr_noise_search_refit(K, E, D, z, bad, 0.5f, mu, sd, NULL), FR_ERR_NUMERIC);
    ck_assert(strstr(fr_last_error(), "candidate 2") != NULL);
    ck_assert_int_eq(fr_noise_search_refit(K, K + 1, D, z, rw, 0.5f, mu, sd, NULL), FR_ERR_ARG);
}
END_TEST

/* ---- the whole search against its formula ---------------------------------------------- */

/* A fresh model has a zero output layer; with out.bias = b its velocity is b for every input
 * (velocity head), so x̂0 = z − σ_0·b is known. The search on ref, with guidance 1.5 (v_u +
 * 1.5·(v_c − v_u) = b exactly), is replayed on the host from the documented coordinates,
 * decode and refit: the decoded rows the reward saw, the final μ, σ and x_T agree bit for
 * bit, and the network rows are R·P·K·2. */
START_TEST(test_search_replay)
{
    enum { P = 3, G = 5, D = 2 };
    const fr_task *t = &fr_task_gmm2d;
    fr_model m;
    fr_model_config mc;
    ck_assert(fr_model_preset("gmm2d-s", D, FR_GMM2D_MODES, &mc) == FR_OK);
    mc.H = 16, mc.F = 16, mc.n_blocks = 1, mc.E = 8;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &mc, 5) == FR_OK);
    const float b[D] = {0.5f, -0.25f};
    fr_param *ob = fr_model_param(&m, "out.bias");
    ck_assert(ob != NULL);
    ck_assert(fr_h2d(fr_test_ref_be(), ob->value->data, b, sizeof b) == FR_OK);
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ode_cfg(6, 1.5f, &sched);
    rc.batch = 4;
    fr_noise_search_cfg c = fr_noise_search_cfg_default();
    c.rounds = 3, c.candidates = 6, c.elites = 2, c.min_std = 0.125f;
    const int64_t R = c.rounds, K = c.candidates;
    const int pid[P] = {1, 4, 4};
    const uint32_t ids[P] = {10, 20, 30};
    dist_reward dr = {D, 0, 0, R * P * K, malloc((size_t)(R * P * K * D) * sizeof(float))};
    float x_T[P * G * D], mu[P * D], sd[P * D], mean_rw[3], top_rw[3];
    fr_noise_search_out out = {mean_rw, top_rw, mu, sd, 0};
    const uint64_t rows0 = fr_test_ref_be()->work.fwd_rows;
    search(&m, fr_test_ref_be(), t, &rc, &c, P, pid, ids, reward_dist, &dr, G, x_T, &out);
    ck_assert_int_eq(out.rows, R * P * K * 2);
    ck_assert_uint_eq(fr_test_ref_be()->work.fwd_rows - rows0, (uint64_t)out.rows);
    ck_assert_int_eq(dr.calls, R);
    ck_assert_int_eq(dr.seen, R * P * K);

    /* the replay */
    const float s0 = rc.sigmas[0];
    float hm[P * D], hs[P * D], z[6 * D], x0[6 * D], rw[6];
    for (int i = 0; i < P * D; i++) hm[i] = 0.0f, hs[i] = c.init_std;
    for (int64_t r = 0; r < R; r++) {
        double sum = 0.0, top = 0.0;
        for (int p = 0; p < P; p++) {
            for (int64_t k = 0; k < K; k++)
                for (int j = 0; j < D; j++) {
                    const float e = fr_rng_normal(rc.seed, FR_RNG_NOISE_SEARCH, rc.c0, ids[p], (uint32_t)(r * K + k), j);
                    z[k * D + j] = fmaf(hs[p * D + j], e, hm[p * D + j]);
                    x0[k * D + j] = fr_flow_x0_elem(z[k * D + j], b[j], s0);
                }
            ck_assert_msg(same(x0, dr.x0 + ((r * P + p) * K) * D, K * D), "round %lld prompt %d: decoded rows",
                          (long long)r, p);
            int pk[6];
            for (int k = 0; k < K; k++) pk[k] = pid[p];
            ck_assert(reward_dist(&(dist_reward){D, 0, 0, 0, NULL}, K, pk, x0, rw) == FR_OK);
            int64_t el[6];
            ck_assert(fr_noise_search_refit(K, c.elites, D, z, rw, c.min_std, hm + p * D, hs + p * D, el) == FR_OK);
            top += rw[el[0]];
            for (int k = 0; k < K; k++) sum += rw[k];
        }
        ck_assert(mean_rw[r] == (float)(sum / (double)(P * K)));
        ck_assert(top_rw[r] == (float)(top / P));
    }
    ck_assert(same(mu, hm, P * D) && same(sd, hs, P * D));
    for (int p = 0; p < P; p++)
        for (int g = 0; g < G; g++)
            for (int j = 0; j < D; j++) {
                const float e = fr_rng_normal(rc.seed, FR_RNG_NOISE_SEARCH, rc.c0, ids[p], (uint32_t)(R * K + g), j);
                ck_assert(fr_test_bits_equal(x_T[(p * G + g) * D + j], fmaf(hs[p * D + j], e, hm[p * D + j])));
            }
    /* prompts 1 and 2 share the prompt but not the id: they search apart */
    ck_assert(!same(mu + D, mu + 2 * D, D));
    /* the search found its target: −|x̂0 − target|² rose from round 0 to the last */
    ck_assert_msg(top_rw[R - 1] > top_rw[0] && mean_rw[R - 1] > mean_rw[0] + 0.5f, "mean %g -> %g",
                  (double)mean_rw[0], (double)mean_rw[R - 1]);
    free(dr.x0);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* ---- determinism -------------------------------------------------------------------------- */

/* A random gmm2d model with guidance 2: the x_T of a prompt depends on (prompt, id) only —
 * the same bytes with every row in one forward, in forwards of 5 rows, twice, and for a
 * prompt searched alone or in another position. */
START_TEST(test_batch_independent)
{
    enum { P = 3, G = 4, D = 2 };
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 1);
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ode_cfg(5, 2.0f, &sched);
    fr_noise_search_cfg c = fr_noise_search_cfg_default();
    c.candidates = 7, c.elites = 3;
    task_reward tr = {&fr_task_gmm2d, 0};
    const int pid[P] = {0, 5, 2};
    const uint32_t ids[P] = {100, 101, 102};
    float a[P * G * D], b[P * G * D], one[G * D];
    rc.batch = 0;
    search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, P, pid, ids, reward_task, &tr, G, a, NULL);
    rc.batch = 5;
    search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, P, pid, ids, reward_task, &tr, G, b, NULL);
    ck_assert(same(a, b, P * G * D));
    search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, P, pid, ids, reward_task, &tr, G, b, NULL);
    ck_assert(same(a, b, P * G * D));
    for (int p = 0; p < P; p++) {
        search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, 1, &pid[p], &ids[p], reward_task, &tr, G, one, NULL);
        ck_assert_msg(same(one, a + p * G * D, G * D), "prompt %d alone", p);
    }
    /* another id, another search */
    const uint32_t other = 7;
    search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, 1, &pid[0], &other, reward_task, &tr, G, one, NULL);
    ck_assert(!same(one, a, G * D));
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* Every backend built in (opt at 2 threads, cuda-emu through guarded device memory) gives
 * ref's x_T bit for bit: gmm2d with guidance 1.5 and shapes (D = 768) without, in chunks of
 * 3 rows. */
START_TEST(test_every_backend)
{
    enum { P = 2, G = 3 };
    fr_backend bes[8];
    int nb = 0;
    for (const char *const *nm = fr_backend_names(); *nm && nb < 8; nm++)
        nb += fr_test_backend_try(&bes[nb], "noise_search", *nm, 2);
    const fr_task *tasks[2] = {&fr_task_gmm2d, &fr_task_shapes};
    for (int ti = 0; ti < 2; ti++) {
        const fr_task *t = tasks[ti];
        const int64_t D = t->D;
        fr_model mr;
        fr_test_make_model(&mr, t, FR_PRED_VELOCITY, SEED + 2 + (uint64_t)ti);
        fr_rollout_schedule sched;
        fr_rollout_cfg rc = ode_cfg(4, ti == 0 ? 1.5f : 1.0f, &sched);
        rc.batch = 3;
        fr_noise_search_cfg c = fr_noise_search_cfg_default();
        c.candidates = 5, c.elites = 2;
        task_reward tr = {t, 0};
        const int pid[P] = {1, 3};
        const uint32_t ids[P] = {4, 8};
        float *want = malloc((size_t)(P * G * D) * sizeof(float)), *got = malloc((size_t)(P * G * D) * sizeof(float));
        ck_assert(want && got);
        search(&mr, fr_test_ref_be(), t, &rc, &c, P, pid, ids, reward_task, &tr, G, want, NULL);
        for (int k = 0; k < nb; k++) {
            fr_model mb;
            ck_assert(fr_model_init(&mb, &bes[k], &mr.cfg, 1) == FR_OK);
            ck_assert(fr_h2d(&bes[k], mb.arena_values, mr.arena_values,
                             (size_t)fr_model_arena_floats(&mr) * sizeof(float)) == FR_OK);
            search(&mb, &bes[k], t, &rc, &c, P, pid, ids, reward_task, &tr, G, got, NULL);
            ck_assert_msg(same(got, want, P * G * D), "%s on %s (seed %llx)", bes[k].name, t->name,
                          (unsigned long long)SEED + 2 + (unsigned long long)ti);
            fr_model_free(&mb);
        }
        free(want);
        free(got);
        fr_rollout_schedule_free(&sched);
        fr_model_free(&mr);
    }
    for (int k = 0; k < nb; k++) fr_backend_close(&bes[k]);
}
END_TEST

/* ---- the effect on gmm2d ------------------------------------------------------------------- */

/* The mean gmm2d "mode" reward of the rollouts of B rows from x_init (backend), or from the
 * rollout's own x_T when x_init is NULL. */
static double rollout_reward(const fr_model *m, const fr_rollout_cfg *rc, int64_t B, const int *pid,
                             const uint32_t *sid, const float *x_init)
{
    fr_backend *be = fr_test_ref_be();
    float *xd = fr_dev_floats(be, B * 2), *x = malloc((size_t)(B * 2) * sizeof *x), *rw = malloc((size_t)B * sizeof *rw);
    ck_assert(xd && x && rw);
    ck_assert(fr_rollout(m, be, &fr_task_gmm2d, rc, B, pid, sid, x_init, xd, NULL) == FR_OK);
    ck_assert(fr_d2h(be, x, xd, (size_t)(B * 2) * sizeof *x) == FR_OK);
    ck_assert(fr_task_reward_batch(&fr_task_gmm2d, 0, (int)B, pid, x, rw, NULL) == FR_OK);
    double s = 0.0;
    for (int64_t i = 0; i < B; i++) s += rw[i];
    fr_dev_free(be, xd);
    free(x);
    free(rw);
    return s / (double)B;
}

/* A gmm2d base pretrained for 200 steps (H 32, one block; under a second on ref) and the
 * dense "mode" reward: with the default search (2 rounds, K 16, E 4) the candidates' mean
 * reward rises from round 0 to round 1, and the ode rollouts (T 10) of the searched x_T score
 * higher than those of the rollout's own N(0, I) draws at the same sample ids. Measured
 * (pretrain seed 7): one-step 0.663 -> 0.888, rollouts 0.907 against 0.716; the bounds ask
 * for half of each gain. */
START_TEST(test_gmm2d_moves)
{
    enum { P = 8, G = 32, D = 2 };
    char dir[64], path[128];
    fr_test_mkdtemp(dir, sizeof dir, "noise-search");
    snprintf(path, sizeof path, "%s/base.safetensors", dir);
    fr_pretrain_cfg pc = fr_pretrain_defaults();
    pc.task = "gmm2d", pc.steps = 200, pc.batch = 64, pc.seed = 7, pc.lr = 3e-3, pc.H = 32, pc.F = 64;
    pc.n_blocks = 1, pc.out = path;
    ck_assert_msg(fr_pretrain(&pc, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_model m;
    ck_assert_msg(fr_model_load(&m, fr_test_ref_be(), path) == FR_OK, "%s", fr_last_error());
    fr_test_rmtree(dir);
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ode_cfg(10, 1.0f, &sched);
    const fr_noise_search_cfg c = fr_noise_search_cfg_default();
    task_reward tr = {&fr_task_gmm2d, 0};
    int pid[P], rp[P * G];
    uint32_t ids[P], sid[P * G];
    for (int p = 0; p < P; p++) pid[p] = p, ids[p] = (uint32_t)(p * G);
    for (int i = 0; i < P * G; i++) rp[i] = pid[i / G], sid[i] = (uint32_t)i;
    float mean_rw[2], top_rw[2];
    fr_noise_search_out out = {mean_rw, top_rw, NULL, NULL, 0};
    float *xT = fr_dev_floats(fr_test_ref_be(), P * G * D);
    ck_assert(xT);
    ck_assert(fr_noise_search(&m, fr_test_ref_be(), &fr_task_gmm2d, &rc, &c, P, pid, ids, reward_task, &tr, G, xT,
                              &out) == FR_OK);
    ck_assert_msg(mean_rw[1] > mean_rw[0] + 0.14f, "one-step reward %g -> %g", (double)mean_rw[0], (double)mean_rw[1]);
    const double searched = rollout_reward(&m, &rc, P * G, rp, sid, xT), plain = rollout_reward(&m, &rc, P * G, rp, sid, NULL);
    ck_assert_msg(searched > plain + 0.094, "rollout reward searched %g, plain %g", searched, plain);
    fr_dev_free(fr_test_ref_be(), xT);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

/* ---- checks --------------------------------------------------------------------------------- */

/* Each bad field of the config, a ddim rollout, a bad group size and a NaN reward: the
 * status, and a one-line message naming what was wrong. */
START_TEST(test_bad_config)
{
    ck_assert_int_eq(fr_noise_search_cfg_check(&(fr_noise_search_cfg){2, 16, 4, 1.0f, 0.25f}), FR_OK);
    const fr_noise_search_cfg d = fr_noise_search_cfg_default();
    ck_assert(d.rounds == 2 && d.candidates == 16 && d.elites == 4 && d.init_std == 1.0f && d.min_std == 0.25f);
    struct {
        fr_noise_search_cfg c;
        const char *word;
    } bad[] = {
        {{0, 16, 4, 1.0f, 0.25f}, "rounds"},      {{2, 1, 1, 1.0f, 0.25f}, "candidates"},
        {{2, 16, 0, 1.0f, 0.25f}, "elites"},      {{2, 16, 17, 1.0f, 0.25f}, "elites"},
        {{2, 16, 4, 0.0f, 0.0f}, "init_std"},     {{2, 16, 4, NAN, 0.25f}, "init_std"},
        {{2, 16, 4, 1.0f, -0.5f}, "min_std"},     {{2, 16, 4, 1.0f, 2.0f}, "min_std"},
        {{2, 16, 4, 1.0f, NAN}, "min_std"},       {{5000, 16, 4, 1.0f, 0.25f}, "rounds"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(fr_noise_search_cfg_check(&bad[i].c), FR_ERR_ARG);
        const char *e = fr_last_error();
        ck_assert_msg(strstr(e, bad[i].word) && !strchr(e, '\n'), "case %zu: %s", i, e);
    }

    enum { P = 1, G = 2, D = 2 };
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 3);
    fr_rollout_schedule sched;
    fr_rollout_cfg rc = ode_cfg(3, 1.0f, &sched);
    task_reward tr = {&fr_task_gmm2d, 0};
    const int pid[P] = {2};
    const uint32_t ids[P] = {0};
    float *xd = fr_dev_floats(fr_test_ref_be(), P * G * D);
    ck_assert(xd);
    fr_backend *be = fr_test_ref_be();
    ck_assert_int_eq(fr_noise_search(&m, be, &fr_task_gmm2d, &rc, &bad[0].c, P, pid, ids, reward_task, &tr, G, xd,
                                     NULL),
                     FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "rounds") != NULL);
    ck_assert_int_eq(fr_noise_search(&m, be, &fr_task_gmm2d, &rc, &d, P, pid, ids, reward_task, &tr, 0, xd, NULL),
                     FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "group size") != NULL);
    { /* an epsilon model with the ddim sampler passes the rollout's checks, not the search's */
        fr_model me;
        fr_test_make_model(&me, &fr_task_gmm2d, FR_PRED_EPSILON, SEED + 4);
        float betas[1000], ab[1000];
        ck_assert(fr_betas_linear(1000, 1e-4, 0.02, betas) == FR_OK);
        ck_assert(fr_alphas_cumprod(1000, betas, ab) == FR_OK);
        fr_rollout_cfg dd = fr_rollout_cfg_default(FR_SAMPLER_DDIM);
        fr_rollout_schedule ds;
        dd.T = 3, dd.alpha_bar = ab;
        ck_assert(fr_rollout_schedule_make(&dd, FR_GRID_DIFFUSERS, 3.0, 1000, 1, &ds) == FR_OK);
        ck_assert_int_eq(fr_noise_search(&me, be, &fr_task_gmm2d, &dd, &d, P, pid, ids, reward_task, &tr, G, xd, NULL),
                         FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "flow sampler") && !strchr(fr_last_error(), '\n'), "%s",
                      fr_last_error());
        fr_rollout_schedule_free(&ds);
        fr_model_free(&me);
    }
    ck_assert_int_eq(fr_noise_search(&m, be, &fr_task_gmm2d, &rc, &d, P, pid, ids, reward_nan, NULL, G, xd, NULL),
                     FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "round 0") && strstr(fr_last_error(), "candidate 15"), "%s",
                  fr_last_error());
    const int badp[P] = {99};
    ck_assert_int_eq(fr_noise_search(&m, be, &fr_task_gmm2d, &rc, &d, P, badp, ids, reward_task, &tr, G, xd, NULL),
                     FR_ERR_ARG);
    fr_dev_free(be, xd);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
}
END_TEST

Suite *suite_noise_search(void)
{
    Suite *s = suite_create("noise_search");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_refit_hand);
    tcase_add_test(tc, test_search_replay);
    tcase_add_test(tc, test_batch_independent);
    tcase_add_test(tc, test_every_backend);
    tcase_add_test(tc, test_gmm2d_moves);
    tcase_add_test(tc, test_bad_config);
    suite_add_tcase(s, tc);
    return s;
}
