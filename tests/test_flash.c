/* MixGRPO-Flash (docs/algorithms/samplers.md §9): the re-gridded tail after the SDE window
 * (fr_sigmas_flash_tail) and its DPM-Solver++ 2M steps in one rollout (fr_rollout_cfg's
 * dpm_from). Grid values by hand; the rollout against a loop of fr_sampler_step written
 * here, against the plain rollout up to the window, across backends, and its NFE. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/philox.h"
#include "flowrl/rollout.h"
#include "flowrl/schedule.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0xF1A5ull

static int same(const float *a, const float *b, int64_t n) { return memcmp(a, b, (size_t)n * sizeof(float)) == 0; }

/* ---- the grid ---------------------------------------------------------------------------- */

/* T 25, ℓ 3, c 0.4: n = int(22·0.4) = int(8.8) = 8 points, 7 DPM steps, 11 steps in all.
 * u_4 = 21/25 = 0.84 and the tail's u_k = 0.84 − 0.12·k, so σ = 3u/(1 + 2u) is a small
 * fraction: 0.84 -> 2.52/2.68 = 63/67, 0.72 -> 54/61, 0.6 -> 9/11, 0.48 -> 36/49,
 * 0.36 -> 27/43, 0.24 -> 18/37, 0.12 -> 9/31, 0 -> 0. Each value is rounded once from
 * float64, so within 1 ulp of the fraction (the float64 error is ~1e-16). */
START_TEST(test_grid_by_hand)
{
    float g[26], lin[26];
    int64_t Tn = -1;
    ck_assert_int_eq(fr_sigmas_linspace(25, 3.0, lin), FR_OK);
    ck_assert_msg(fr_sigmas_flash_tail(25, 3, 0.4, 3.0, g, 26, &Tn) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(Tn, 11);
    ck_assert(same(g, lin, 5)); /* σ_0..σ_3 and the tail's first value σ_4, bit for bit */
    const double want[7] = {63.0 / 67, 54.0 / 61, 9.0 / 11, 36.0 / 49, 27.0 / 43, 18.0 / 37, 9.0 / 31};
    for (int k = 0; k < 7; k++)
        ck_assert_msg(fr_test_ulps(g[4 + k], (float)want[k]) <= 1, "tail %d: %.9g vs %.9g", k, (double)g[4 + k],
                      want[k]);
    ck_assert(g[11] == 0.0f);

    /* Flash*: ℓ 3, c 0.2: n = int(22·0.2) = int(4.4) = 4; u 0.84, 0.56, 0.28, 0 */
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 3, 0.2, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 7);
    ck_assert(same(g, lin, 5));
    ck_assert_int_le(fr_test_ulps(g[5], (float)(42.0 / 53)), 1); /* 1.68 / 2.12 */
    ck_assert_int_le(fr_test_ulps(g[6], (float)(7.0 / 13)), 1);  /* 0.84 / 1.56 */
    ck_assert(g[7] == 0.0f);
}
END_TEST

/* n counts grid points, from (T − ℓ) as MIX's sigma_schedule.size(0) − 1 − ℓ: ℓ 5 gives
 * int(20·0.4) = 8 (the spec's (T − 1 − ℓ)·c would give int(7.6) = 7). The edges: ℓ 20,
 * 5·0.4 = 2 in float64, one DPM step to 0; ℓ 21 and ℓ = T − 2 = 23, n = 1: the grid stops at
 * σ_{ℓ+1} (MIX's quirk); ℓ = T − 1: the plain grid. */
START_TEST(test_grid_points_and_edges)
{
    float g[26], lin[26];
    int64_t Tn;
    ck_assert_int_eq(fr_sigmas_linspace(25, 3.0, lin), FR_OK);
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 5, 0.4, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 5 + 8);
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 20, 0.4, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 22);
    ck_assert(same(g, lin, 22) && g[22] == 0.0f);
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 21, 0.4, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 22);
    ck_assert(same(g, lin, 23));
    ck_assert_int_le(fr_test_ulps(g[22], (float)(9.0 / 31)), 1); /* s(0.12), not 0 */
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 23, 0.4, 3.0, g, 25, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 24);
    ck_assert(same(g, lin, 25));
    ck_assert_int_le(fr_test_ulps(g[24], (float)(1.0 / 9)), 1); /* s(0.04) = 0.12/1.08 */
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 24, 0.4, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 25);
    ck_assert(same(g, lin, 26));
    /* c = 1 re-grids the tail on the same u's: the plain grid within 1 ulp */
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 3, 1.0, 3.0, g, 26, &Tn), FR_OK);
    ck_assert_int_eq(Tn, 25);
    for (int i = 0; i <= 25; i++) ck_assert_int_le(fr_test_ulps(g[i], lin[i]), 1);
}
END_TEST

/* Every T, ℓ and ratio: strictly decreasing from 1, the prefix is the plain grid bit for bit,
 * T + 1 values are always room enough, the last value is 0 exactly when a tail step exists. */
START_TEST(test_grid_sweep)
{
    static float g[64], lin[64];
    const double cs[4] = {0.2, 0.4, 0.7, 1.0};
    for (int64_t T = 1; T <= 60; T++) {
        ck_assert_int_eq(fr_sigmas_linspace(T, 3.0, lin), FR_OK);
        for (int ci = 0; ci < 4; ci++)
            for (int64_t l = 0; l < T; l++) {
                int64_t Tn;
                ck_assert_int_eq(fr_sigmas_flash_tail(T, l, cs[ci], 3.0, g, T + 1, &Tn), FR_OK);
                const double pts = (double)(T - l) * cs[ci];
                const int64_t n = pts < 1.0 ? 1 : (int64_t)pts;
                ck_assert_int_eq(Tn, l + n);
                ck_assert(Tn <= T && same(g, lin, l + 2));
                for (int64_t i = 0; i < Tn; i++)
                    ck_assert_msg(g[i + 1] < g[i], "T %lld l %lld c %g: step %lld %.9g -> %.9g", (long long)T,
                                  (long long)l, cs[ci], (long long)i, (double)g[i], (double)g[i + 1]);
                ck_assert((g[Tn] == 0.0f) == (n >= 2 || l == T - 1));
            }
    }
}
END_TEST

START_TEST(test_grid_errors)
{
    float g[26];
    int64_t Tn;
    struct {
        int64_t T, l;
        double c, S;
        int64_t cap;
        const char *says;
    } bad[] = {
        {0, 0, 0.4, 3.0, 26, "last SDE step"}, {25, -1, 0.4, 3.0, 26, "last SDE step"},
        {25, 25, 0.4, 3.0, 26, "last SDE step"}, {25, 3, 0.0, 3.0, 26, "compress"},
        {25, 3, 1.5, 3.0, 26, "compress"},      {25, 3, NAN, 3.0, 26, "compress"},
        {25, 3, 0.4, 0.0, 26, "shift"},          {25, 3, 0.4, 3.0, 11, "cap 11"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(fr_sigmas_flash_tail(bad[k].T, bad[k].l, bad[k].c, bad[k].S, g, bad[k].cap, &Tn),
                         FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), bad[k].says) && !strchr(fr_last_error(), '\n'), "case %zu: %s", k,
                      fr_last_error());
    }
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 3, 0.4, 3.0, g, 12, &Tn), FR_OK); /* exactly room */
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 3, 0.4, 3.0, NULL, 26, &Tn), FR_ERR_ARG);
    ck_assert_int_eq(fr_sigmas_flash_tail(25, 3, 0.4, 3.0, g, 26, NULL), FR_ERR_ARG);
}
END_TEST

/* ---- the rollout ------------------------------------------------------------------------- */

enum { T_PLAIN = 25, LAST = 3, B = 5 };

/* A Flash rollout config: sde, noise 0.7 in the window [1, LAST], ODE (level 0) at step 0,
 * the Flash grid for ratio c, dpm_from = LAST + 1. */
typedef struct {
    float grid[T_PLAIN + 1], noise[T_PLAIN];
    fr_rollout_cfg c;
} flash_cfg;

static void flash_make(flash_cfg *f, int64_t last, double compress, float g)
{
    f->c = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    ck_assert(fr_sigmas_flash_tail(T_PLAIN, last, compress, 3.0, f->grid, T_PLAIN + 1, &f->c.T) == FR_OK);
    for (int i = 0; i < T_PLAIN; i++) f->noise[i] = i >= 1 && i <= last ? 0.7f : 0.0f;
    f->c.sigmas = f->grid;
    f->c.step_noise = f->noise;
    f->c.dpm_from = last + 1;
    f->c.cfg = g;
    f->c.seed = 99;
    f->c.c0 = 4;
    f->c.batch = 2;
}

typedef struct {
    float x[B * 2], traj[(T_PLAIN + 1) * B * 2], mean[T_PLAIN * B * 2], logp[T_PLAIN * B];
} outs;

static const int k_pid[B] = {3, 0, 7, 7, -1};
static const uint32_t k_sid[B] = {20, 21, 22, 23, 24};

static void roll(const fr_model *m, fr_backend *be, const fr_rollout_cfg *c, const float *x_init, outs *o)
{
    fr_rollout_traj tr = {o->traj, o->mean, o->logp, NULL, NULL};
    ck_assert_msg(fr_rollout(m, be, &fr_task_gmm2d, c, B, k_pid, k_sid, x_init, o->x, &tr) == FR_OK, "%s",
                  fr_last_error());
}

/* The Flash rollout equals a loop over fr_sampler_step: steps 0..ℓ the sde step (noise by
 * coordinate in the window), then DPM-Solver++ 2M whose first step reads the x̂0 of step ℓ
 * and σ_prev = σ_ℓ, as MIX's DPMState carries it out of the window; order 1 on the last
 * step. Trajectory, means, log-probs (0 outside the window) and the sample, bit for bit. */
static void check_by_hand(float g)
{
    const fr_task *t = &fr_task_gmm2d;
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED);
    const int64_t D = 2;
    flash_cfg f;
    flash_make(&f, LAST, 0.4, g);
    ck_assert_int_eq(f.c.T, 11);
    outs o;
    roll(&m, be, &f.c, NULL, &o);

    float x[B * 2], xn[B * 2], vc[B * 2], vu[B * 2], v[B * 2], xi[B * 2], mu[B * 2], x0[B * 2], lp[B], tin[B];
    int32_t cc[B * 8], cu[B * 8];
    const int nulls[B] = {-1, -1, -1, -1, -1};
    ck_assert(m.cfg.n_slots <= 8);
    ck_assert(fr_cond_ids(t, B, k_pid, cc) == FR_OK && fr_cond_ids(t, B, nulls, cu) == FR_OK);
    fr_model_ws ws;
    ck_assert(fr_model_ws_alloc(&ws, &m, B, 0) == FR_OK);
    for (int b = 0; b < B; b++) fr_rng_fill_normal(x + b * D, D, 99, FR_RNG_SAMPLER_INIT, 4, k_sid[b], 0);
    ck_assert(same(x, o.traj, B * D));
    int dpm2 = 0;
    for (int64_t i = 0; i < f.c.T; i++) {
        fr_step p;
        memset(&p, 0, sizeof p);
        p.kind = i <= LAST ? FR_SAMPLER_SDE : FR_SAMPLER_DPM;
        p.noise = f.noise[i];
        p.sigma = f.grid[i];
        p.sigma_next = f.grid[i + 1];
        p.sigma1 = f.grid[1];
        p.order = i <= LAST ? 1 : 2;
        p.sigma_prev = f.grid[i - 1 < 0 ? 0 : i - 1];
        for (int b = 0; b < B; b++) tin[b] = 1000.0f * f.grid[i];
        ck_assert(fr_model_forward(&m, be, &ws, B, x, tin, cc, vc) == FR_OK);
        if (g != 1.0f) {
            ck_assert(fr_model_forward(&m, be, &ws, B, x, tin, cu, vu) == FR_OK);
            for (int k = 0; k < B * D; k++) v[k] = vu[k] + g * (vc[k] - vu[k]);
        } else {
            memcpy(v, vc, sizeof v);
        }
        fr_step_std sd;
        ck_assert(fr_sampler_std(&p, &sd) == FR_OK);
        const float *xip = NULL;
        if (sd.std != 0.0f) {
            for (int b = 0; b < B; b++)
                fr_rng_fill_normal(xi + b * D, D, 99, FR_RNG_SAMPLER_NOISE, 4, k_sid[b], (uint32_t)i);
            xip = xi;
        }
        fr_step_coef q;
        ck_assert(fr_sampler_coef(&p, &q) == FR_OK);
        dpm2 += p.kind == FR_SAMPLER_DPM && q.dpm.order == 2;
        ck_assert(fr_sampler_step(be, &p, B, D, x, v, p.kind == FR_SAMPLER_DPM ? x0 : NULL, xip, xn, mu,
                                  sd.std != 0.0f ? lp : NULL, NULL) == FR_OK);
        for (int k = 0; k < B * D; k++) x0[k] = x[k] - p.sigma * v[k];
        ck_assert_msg(same(xn, o.traj + (i + 1) * B * D, B * D), "cfg %g: x_%lld", (double)g, (long long)i + 1);
        ck_assert_msg(same(mu, o.mean + i * B * D, B * D), "cfg %g: mean %lld", (double)g, (long long)i);
        for (int b = 0; b < B; b++)
            ck_assert_msg(sd.std != 0.0f ? fr_test_bits_equal(lp[b], o.logp[i * B + b]) : o.logp[i * B + b] == 0.0f,
                          "cfg %g: logp %lld", (double)g, (long long)i);
        memcpy(x, xn, sizeof x);
    }
    ck_assert_int_eq(dpm2, 6); /* 7 tail steps: 2M, order 1 on the step to 0 */
    ck_assert(same(x, o.x, B * D) && f.grid[f.c.T] == 0.0f);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
}

START_TEST(test_rollout_by_hand)
{
    check_by_hand(1.0f);
    check_by_hand(3.0f);
}
END_TEST

/* Up to σ_{ℓ+1} the Flash rollout is the plain one (same x, means, log-probs: the window's
 * training data does not depend on the tail). The tail is not a fresh DPM rollout from
 * x_{ℓ+1} (whose first step would be order 1), except with one tail step (ℓ 20), where
 * both are the order-1 step to 0. With n = 1 (ℓ 23) there is no DPM step at all. */
START_TEST(test_rollout_window_and_tail)
{
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 1);
    const int64_t D = 2;
    const int64_t lasts[3] = {LAST, 20, 23};
    for (int li = 0; li < 3; li++) {
        const int64_t l = lasts[li];
        flash_cfg f, p;
        flash_make(&f, l, 0.4, 2.0f);
        flash_make(&p, l, 0.4, 2.0f);
        ck_assert(fr_sigmas_linspace(T_PLAIN, 3.0, p.grid) == FR_OK);
        p.c.T = T_PLAIN;
        p.c.dpm_from = 0;
        outs a, b;
        roll(&m, be, &f.c, NULL, &a);
        roll(&m, be, &p.c, NULL, &b);
        ck_assert_msg(same(a.traj, b.traj, (l + 2) * B * D), "l %lld: x_0..x_{l+1}", (long long)l);
        ck_assert(same(a.mean, b.mean, (l + 1) * B * D) && same(a.logp, b.logp, (l + 1) * B));
        /* the tail alone, from x_{ℓ+1}, on the tail grid */
        fr_rollout_cfg tc = fr_rollout_cfg_default(FR_SAMPLER_DPM);
        tc.T = f.c.T - (l + 1);
        tc.sigmas = f.grid + l + 1;
        tc.cfg = 2.0f;
        tc.batch = 2;
        if (tc.T == 0) {
            ck_assert(same(a.x, a.traj + (l + 1) * B * D, B * D));
            continue;
        }
        float xt[B * 2];
        ck_assert(fr_rollout(&m, be, &fr_task_gmm2d, &tc, B, k_pid, NULL, a.traj + (l + 1) * B * D, xt, NULL) ==
                  FR_OK);
        ck_assert_msg(same(xt, a.x, B * D) == (tc.T == 1), "l %lld: tail of %lld steps", (long long)l,
                      (long long)tc.T);
    }
    fr_model_free(&m);
}
END_TEST

/* The NFE of a Flash rollout is B·(ℓ + n) (twice that guided), 11/25 of the plain one for
 * T 25, ℓ 3, c 0.4: fr_rollout_nfe says so and the backend's forward-row count agrees. */
START_TEST(test_rollout_nfe)
{
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 2);
    const float gs[2] = {1.0f, 4.5f};
    for (int gi = 0; gi < 2; gi++) {
        flash_cfg f;
        flash_make(&f, LAST, 0.4, gs[gi]);
        int64_t nfe = -1, plain = -1;
        ck_assert(fr_rollout_nfe(&f.c, B, k_pid, k_sid, &nfe) == FR_OK);
        const int64_t per_row = gs[gi] == 1.0f ? 1 : 2;
        ck_assert_int_eq(nfe, B * (LAST + 8) * per_row);
        fr_rollout_cfg pc = f.c;
        pc.T = T_PLAIN;
        ck_assert(fr_rollout_nfe(&pc, B, k_pid, k_sid, &plain) == FR_OK);
        ck_assert_int_eq(plain, B * T_PLAIN * per_row);
        const uint64_t before = be->work.fwd_rows;
        outs o;
        roll(&m, be, &f.c, NULL, &o);
        ck_assert_int_eq((int64_t)(be->work.fwd_rows - before), nfe);
    }
    fr_model_free(&m);
}
END_TEST

/* Every backend built in (opt at 1 and 3 threads, cuda-emu) gives ref's bits, through its
 * own memory. */
START_TEST(test_rollout_backends)
{
    fr_model mr;
    fr_test_make_model(&mr, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 3);
    flash_cfg f;
    flash_make(&f, LAST, 0.4, 1.5f);
    outs want;
    roll(&mr, fr_test_ref_be(), &f.c, NULL, &want);
    const int64_t D = 2, nx = B * D, nt = (f.c.T + 1) * B * D, nm = f.c.T * B * D;
    fr_backend bes[8];
    int nb = 0;
    for (const char *const *nm_ = fr_backend_names(); *nm_ && nb < 7; nm_++)
        if (strcmp(*nm_, "ref") != 0) nb += fr_test_backend_try(&bes[nb], "flash", *nm_, 3);
    nb += fr_test_backend_try(&bes[nb], "flash", "opt", 1);
    for (int k = 0; k < nb; k++) {
        fr_backend *be = &bes[k];
        fr_model mb;
        ck_assert(fr_model_init(&mb, be, &mr.cfg, 1) == FR_OK);
        ck_assert(fr_h2d(be, mb.arena_values, mr.arena_values, (size_t)fr_model_arena_floats(&mr) * sizeof(float)) ==
                  FR_OK);
        float *x = fr_dev_floats(be, nx), *tr = fr_dev_floats(be, nt), *mn = fr_dev_floats(be, nm);
        float *lp = fr_dev_floats(be, f.c.T * B);
        ck_assert(x && tr && mn && lp);
        fr_rollout_traj tj = {tr, mn, lp, NULL, NULL};
        ck_assert_msg(fr_rollout(&mb, be, &fr_task_gmm2d, &f.c, B, k_pid, k_sid, NULL, x, &tj) == FR_OK, "%s: %s",
                      be->name, fr_last_error());
        outs got;
        ck_assert(fr_d2h(be, got.x, x, (size_t)nx * sizeof(float)) == FR_OK);
        ck_assert(fr_d2h(be, got.traj, tr, (size_t)nt * sizeof(float)) == FR_OK);
        ck_assert(fr_d2h(be, got.mean, mn, (size_t)nm * sizeof(float)) == FR_OK);
        ck_assert(fr_d2h(be, got.logp, lp, (size_t)(f.c.T * B) * sizeof(float)) == FR_OK);
        ck_assert_msg(same(got.traj, want.traj, nt) && same(got.mean, want.mean, nm) &&
                          same(got.logp, want.logp, f.c.T * B) && same(got.x, want.x, nx),
                      "%s (%d threads) differs from ref (seed %llx)", be->name, be->threads, SEED + 3);
        fr_dev_free(be, x), fr_dev_free(be, tr), fr_dev_free(be, mn), fr_dev_free(be, lp);
        fr_model_free(&mb);
        fr_backend_close(be);
    }
    fr_model_free(&mr);
}
END_TEST

START_TEST(test_rollout_errors)
{
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, SEED + 4);
    flash_cfg f;
    flash_make(&f, LAST, 0.4, 1.0f);
    float x[B * 2];
    const int64_t bad[3] = {-1, 12, 100};
    for (int k = 0; k < 3; k++) {
        fr_rollout_cfg c = f.c;
        c.dpm_from = bad[k];
        ck_assert_int_eq(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &c, B, k_pid, k_sid, NULL, x, NULL),
                         FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "dpm_from") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    }
    fr_rollout_cfg c = f.c;
    c.dpm_from = c.T; /* no DPM step: allowed */
    ck_assert(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &c, B, k_pid, k_sid, NULL, x, NULL) == FR_OK);
    c.dpm_order = 3;
    c.dpm_from = LAST + 1;
    ck_assert_int_eq(fr_rollout(&m, fr_test_ref_be(), &fr_task_gmm2d, &c, B, k_pid, k_sid, NULL, x, NULL),
                     FR_ERR_ARG);
    fr_model_free(&m);
}
END_TEST

Suite *suite_flash(void)
{
    Suite *s = suite_create("flash");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grid_by_hand);
    tcase_add_test(tc, test_grid_points_and_edges);
    tcase_add_test(tc, test_grid_sweep);
    tcase_add_test(tc, test_grid_errors);
    tcase_add_test(tc, test_rollout_by_hand);
    tcase_add_test(tc, test_rollout_window_and_tail);
    tcase_add_test(tc, test_rollout_nfe);
    tcase_add_test(tc, test_rollout_backends);
    tcase_add_test(tc, test_rollout_errors);
    suite_add_tcase(s, tc);
    return s;
}
