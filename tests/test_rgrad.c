/* Reward gradients through the sampler (docs/algorithms/draft.md; spec more.md §1): the §1.1
 * check values of Euler backprop and the continuous adjoint on dz/dt = θz and their convergence
 * with N, finite differences through a 2-layer MLP velocity (double), the reverse pass through
 * the model's backward op entries against finite differences of whole float rollouts, the
 * reward gradients of gmm2d and of a reward program (protocol version 2), the cut draws, and a
 * short DRaFT run that raises the reward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/draft.h"
#include "flowrl/adjoint.h"
#include "flowrl/guidance.h"
#include "flowrl/nrg.h"
#include "flowrl/optimize.h"
#include "flowrl/reward_cmd.h"
#include "flowrl/reward_grad.h"
#include "tests/model_testutil.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* ---- the generic scalar ODE (more.md §1.1) ------------------------------------------------ */

static void lin_f(const double *z, double t, const double *th, double *dz, void *u)
{
    (void)t;
    (void)u;
    dz[0] = th[0] * z[0];
}

static void lin_vjp(const double *z, double t, const double *th, const double *a, double *az, double *ath, void *u)
{
    (void)t;
    (void)u;
    if (az) az[0] = th[0] * a[0];
    if (ath) ath[0] = z[0] * a[0];
}

static void grid(int64_t N, double *t)
{
    for (int64_t k = 0; k <= N; k++) t[k] = (double)k / (double)N;
}

/* dL/dθ of L = z(1), z(0) = 1, θ = 0.5 by backprop and by the adjoint. */
static void lin_grads(int64_t N, double *bp, double *adj, double *z0_rec, double *zN)
{
    fr_ode o = {1, 1, lin_f, lin_vjp, NULL};
    double *t = malloc((size_t)(N + 1) * sizeof *t);
    grid(N, t);
    const double th = 0.5, z0 = 1.0, one = 1.0;
    ck_assert_int_eq(fr_ode_euler_backprop(&o, N, t, &th, &z0, &one, zN, bp, NULL), FR_OK);
    ck_assert_int_eq(fr_ode_euler_adjoint(&o, N, t, &th, zN, &one, adj, NULL, z0_rec), FR_OK);
    free(t);
}

START_TEST(test_ode_check_values)
{
    double bp, adj, z0, zN;
    lin_grads(4, &bp, &adj, &z0, &zN);
    /* exact values of the spec: 1.125^4 and 1.125^3 are exact in double; the adjoint's
     * 1.5646538 and 0.9389496 are given to 8 digits */
    ck_assert_msg(zN == 1.601806640625, "z_N %.17g", zN);
    ck_assert_msg(fabs(bp - 1.423828125) <= 1e-15, "backprop %.17g", bp);
    ck_assert_msg(fabs(adj - 1.5646538) <= 1e-7, "adjoint %.17g", adj);
    ck_assert_msg(fabs(z0 - 0.9389496) <= 1e-7, "reconstructed z(0) %.17g", z0);
    /* convergence with N (spec: 1.58657 / 1.63276 / 1.64471 and 1.62422 / 1.64236 / 1.64712, 6 digits) */
    const int64_t Ns[3] = {16, 64, 256};
    const double want_bp[3] = {1.58657, 1.63276, 1.64471}, want_adj[3] = {1.62422, 1.64236, 1.64712};
    const double exact = exp(0.5);
    double prev_bp = fabs(bp - exact), prev_adj = fabs(adj - exact);
    for (int i = 0; i < 3; i++) {
        lin_grads(Ns[i], &bp, &adj, &z0, &zN);
        ck_assert_msg(fabs(bp - want_bp[i]) <= 5e-6, "N %lld backprop %.9g", (long long)Ns[i], bp);
        ck_assert_msg(fabs(adj - want_adj[i]) <= 5e-6, "N %lld adjoint %.9g", (long long)Ns[i], adj);
        ck_assert(fabs(bp - exact) < prev_bp && fabs(adj - exact) < prev_adj);
        prev_bp = fabs(bp - exact), prev_adj = fabs(adj - exact);
    }
    ck_assert(prev_bp < 5e-3 && prev_adj < 2e-3);
}
END_TEST

/* A 2-layer MLP velocity f(z, t) = W2 tanh(W1 z + b1 + t·u) + b2, z in R², hidden 5; θ = [W1 | b1
 * | u | W2 | b2]. */
enum { MN = 2, MH = 5, MP = MH * MN + MH + MH + MN * MH + MN };

static void mlp_hidden(const double *z, double t, const double *th, double *h)
{
    for (int j = 0; j < MH; j++) {
        double s = th[MH * MN + j] + t * th[MH * MN + MH + j];
        for (int i = 0; i < MN; i++) s += th[j * MN + i] * z[i];
        h[j] = tanh(s);
    }
}

static void mlp_f(const double *z, double t, const double *th, double *dz, void *u)
{
    (void)u;
    double h[MH];
    mlp_hidden(z, t, th, h);
    const double *W2 = th + MH * MN + 2 * MH, *b2 = W2 + MN * MH;
    for (int i = 0; i < MN; i++) {
        dz[i] = b2[i];
        for (int j = 0; j < MH; j++) dz[i] += W2[i * MH + j] * h[j];
    }
}

static void mlp_vjp(const double *z, double t, const double *th, const double *a, double *az, double *ath, void *u)
{
    (void)u;
    double h[MH], gs[MH];
    mlp_hidden(z, t, th, h);
    const double *W2 = th + MH * MN + 2 * MH;
    for (int j = 0; j < MH; j++) {
        double gh = 0.0;
        for (int i = 0; i < MN; i++) gh += W2[i * MH + j] * a[i];
        gs[j] = gh * (1.0 - h[j] * h[j]);
    }
    if (az)
        for (int i = 0; i < MN; i++) {
            az[i] = 0.0;
            for (int j = 0; j < MH; j++) az[i] += th[j * MN + i] * gs[j];
        }
    if (ath) {
        for (int j = 0; j < MH; j++) {
            for (int i = 0; i < MN; i++) ath[j * MN + i] = gs[j] * z[i];
            ath[MH * MN + j] = gs[j];
            ath[MH * MN + MH + j] = gs[j] * t;
        }
        for (int i = 0; i < MN; i++) {
            for (int j = 0; j < MH; j++) ath[MH * MN + 2 * MH + i * MH + j] = a[i] * h[j];
            ath[MH * MN + 2 * MH + MN * MH + i] = a[i];
        }
    }
}

static double mlp_loss(const fr_ode *o, int64_t N, const double *t, const double *th, const double *z0, const double *c)
{
    double z[MN] = {z0[0], z0[1]};
    ck_assert_int_eq(fr_ode_euler(o, N, t, th, z), FR_OK);
    return c[0] * z[0] + c[1] * z[1];
}

START_TEST(test_ode_mlp_fd)
{
    fr_ode o = {MN, MP, mlp_f, mlp_vjp, NULL};
    double th[MP], z0[MN] = {0.3, -0.7}, c[MN] = {1.0, -2.0}, t[65];
    uint64_t s = 7;
    for (int k = 0; k < MP; k++) th[k] = fr_test_uniform(&s, -0.8f, 0.8f);
    const int64_t N = 12;
    grid(N, t);
    double g[MP], gz[MN], zN[MN];
    ck_assert_int_eq(fr_ode_euler_backprop(&o, N, t, th, z0, c, zN, g, gz), FR_OK);
    /* central differences in double, h = 1e-6: truncation ~h², rounding ~1e-16/h; 1e-7 of the
     * largest gradient is the spec's bar */
    double gmax = 0.0, worst = 0.0;
    for (int k = 0; k < MP; k++) gmax = fmax(gmax, fabs(g[k]));
    for (int k = 0; k < MP; k++) {
        const double keep = th[k], h = 1e-6;
        th[k] = keep + h;
        double lp = mlp_loss(&o, N, t, th, z0, c);
        th[k] = keep - h;
        double lm = mlp_loss(&o, N, t, th, z0, c);
        th[k] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2 * h) - g[k]));
    }
    for (int i = 0; i < MN; i++) {
        double zp[MN] = {z0[0], z0[1]}, zm[MN] = {z0[0], z0[1]};
        zp[i] += 1e-6, zm[i] -= 1e-6;
        worst = fmax(worst, fabs((mlp_loss(&o, N, t, th, zp, c) - mlp_loss(&o, N, t, th, zm, c)) / 2e-6 - gz[i]));
    }
    ck_assert_msg(gmax > 0.1 && worst <= 1e-7 * gmax, "worst FD error %g of max |g| %g", worst, gmax);
    /* the adjoint approaches backprop as O(h): its error halves (about) when N doubles */
    double e_prev = INFINITY;
    for (int64_t n = 8; n <= 64; n *= 2) {
        double tt[65], gb[MP], ga[MP], zz[MN];
        grid(n, tt);
        ck_assert_int_eq(fr_ode_euler_backprop(&o, n, tt, th, z0, c, zz, gb, NULL), FR_OK);
        ck_assert_int_eq(fr_ode_euler_adjoint(&o, n, tt, th, zz, c, ga, NULL, NULL), FR_OK);
        double e = 0.0;
        for (int k = 0; k < MP; k++) e = fmax(e, fabs(ga[k] - gb[k]));
        ck_assert_msg(e < 0.7 * e_prev, "N %lld: adjoint - backprop %g (previous %g)", (long long)n, e, e_prev);
        e_prev = e;
    }
}
END_TEST

/* ---- the reverse pass through the model against whole rollouts ---------------------------- */

/* L = Σ w ⊙ x_T of an ODE rollout of T steps from x_init, cfg g. */
static double rollout_loss(const fr_model *m, const fr_task *task, const fr_rollout_cfg *rc, int64_t B, const int *pid,
                           const uint32_t *sid, const float *x_init, const float *w, float *traj)
{
    const int64_t D = task->D;
    float *x = malloc((size_t)(B * D) * sizeof *x);
    fr_rollout_traj tj = {traj, NULL, NULL, NULL, NULL};
    ck_assert_msg(fr_rollout(m, fr_test_ref_be(), task, rc, B, pid, sid, x_init, x, traj ? &tj : NULL) == FR_OK, "%s",
                  fr_last_error());
    double l = 0.0;
    for (int64_t k = 0; k < B * D; k++) l += (double)w[k] * x[k];
    free(x);
    return l;
}

static void backprop_fd(float cfg)
{
    const fr_task *task = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, task, FR_PRED_VELOCITY, 5);
    fr_backend *be = fr_test_ref_be();
    const int64_t B = 3, D = task->D, T = 4;
    fr_rollout_cfg rc = fr_rollout_cfg_default(FR_SAMPLER_ODE);
    fr_rollout_schedule sch;
    rc.T = T;
    rc.cfg = cfg;
    ck_assert_int_eq(fr_rollout_schedule_make(&rc, FR_GRID_LINEAR, 1.0, 0, 0, &sch), FR_OK);
    int pid[3] = {0, 3, 6};
    uint32_t sid[3] = {0, 1, 2};
    float x0[6], w[6] = {1.0f, -0.5f, 0.25f, 2.0f, -1.0f, 0.75f};
    uint64_t s = 3;
    for (int k = 0; k < 6; k++) x0[k] = fr_test_uniform(&s, -1.5f, 1.5f);
    float *traj = malloc((size_t)((T + 1) * B * D) * sizeof *traj);
    rollout_loss(&m, task, &rc, B, pid, sid, x0, w, traj);
    fr_guided_ws gw;
    ck_assert_int_eq(fr_guided_ws_alloc(&gw, be, &m, B, fr_guidance_from_scale(cfg), 1), FR_OK);
    int32_t cond[3];
    ck_assert_int_eq(fr_cond_ids(task, B, pid, cond), FR_OK);
    float a[6], gv[6], dx[6], v[6];
    memcpy(a, w, sizeof a);
    fr_model_zero_grad(&m, be);
    ck_assert_int_eq(fr_rg_backprop(&m, be, &gw, B, D, rc.sigmas, T, 0, traj, B, cond, a, gv, dx, v, 1), FR_OK);
    /* central differences of float rollouts, h = 1e-2: the rollout's rounding (~1e-6 of L) over
     * 2h and the h² term stay under 1% of the largest gradient */
    double gmax = 0.0, worst = 0.0;
    for (int k = 0; k < 6; k++) gmax = fmax(gmax, fabs(a[k]));
    for (int k = 0; k < 6; k++) {
        const float keep = x0[k], h = 1e-2f;
        x0[k] = keep + h;
        double lp = rollout_loss(&m, task, &rc, B, pid, sid, x0, w, NULL);
        x0[k] = keep - h;
        double lm = rollout_loss(&m, task, &rc, B, pid, sid, x0, w, NULL);
        x0[k] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * h) - a[k]));
    }
    ck_assert_msg(gmax > 0.1 && worst <= 1e-2 * gmax, "cfg %g: dL/dx_T worst FD error %g of %g", (double)cfg, worst, gmax);
    /* parameters: a few elements of the input layer, a block and the output bias */
    const char *names[] = {"in.weight", "blocks.0.fc1.weight", "out.bias", "cond.weight"};
    for (int p = 0; p < 4; p++) {
        fr_param *pr = fr_model_param(&m, names[p]);
        ck_assert_ptr_nonnull(pr);
        const int idx = (int)(pr - m.params);
        float *val = m.values[idx].data, *grd = m.grads[idx].data;
        const int64_t n = fr_tensor_numel(&m.values[idx]);
        double gm = 0.0, wst = 0.0;
        for (int64_t k = 0; k < n && k < 6; k++) {
            const float keep = val[k], h = 1e-2f;
            val[k] = keep + h;
            double lp = rollout_loss(&m, task, &rc, B, pid, sid, x0, w, NULL);
            val[k] = keep - h;
            double lm = rollout_loss(&m, task, &rc, B, pid, sid, x0, w, NULL);
            val[k] = keep;
            gm = fmax(gm, fabs(grd[k]));
            wst = fmax(wst, fabs((lp - lm) / (2.0 * h) - grd[k]));
        }
        ck_assert_msg(wst <= 1e-2 * fmax(gm, 0.05), "cfg %g: %s worst FD error %g of %g", (double)cfg, names[p], wst, gm);
    }
    fr_guided_ws_free(&gw);
    fr_rollout_schedule_free(&sch);
    free(traj);
    fr_model_free(&m);
}

START_TEST(test_backprop_fd) { backprop_fd(1.0f); }
END_TEST

START_TEST(test_backprop_fd_cfg) { backprop_fd(1.5f); }
END_TEST

/* ---- reward gradients ------------------------------------------------------------------- */

START_TEST(test_gmm2d_reward_grad)
{
    const fr_task *t = &fr_task_gmm2d;
    int mode, sq, hp;
    ck_assert_int_eq(fr_task_reward_id(t, "mode", &mode), FR_OK);
    ck_assert_int_eq(fr_task_reward_id(t, "sqdist", &sq), FR_OK);
    ck_assert_int_eq(fr_task_reward_id(t, "halfplane", &hp), FR_OK);
    uint64_t s = 9;
    for (int k = 0; k < 40; k++) {
        const int p = k % 8;
        float x[2] = {fr_test_uniform(&s, -5, 5), fr_test_uniform(&s, -5, 5)}, g[2], sc, sc2;
        int ok;
        for (int rid = 0; rid < 3; rid += 2) {
            ck_assert_int_eq(t->reward_grad(rid, p, x, &sc, g), FR_OK);
            ck_assert_int_eq(t->reward(rid, p, x, &sc2, &ok), FR_OK);
            ck_assert(fr_test_bits_equal(sc, sc2)); /* the same score as the plain reward */
            for (int i = 0; i < 2; i++) {           /* central differences in double of the float score */
                double xp[2] = {x[0], x[1]}, h = 1e-3;
                float a[2] = {x[0], x[1]}, b[2] = {x[0], x[1]}, sa, sb;
                a[i] = (float)(xp[i] + h), b[i] = (float)(xp[i] - h);
                ck_assert_int_eq(t->reward(rid, p, a, &sa, &ok), FR_OK);
                ck_assert_int_eq(t->reward(rid, p, b, &sb, &ok), FR_OK);
                const double fd = ((double)sa - sb) / ((double)a[i] - b[i]);
                ck_assert_msg(fabs(fd - g[i]) <= 2e-2 * fmax(1.0, fabs(g[i])), "reward %d x (%g, %g) dim %d: %g vs FD %g",
                              rid, (double)x[0], (double)x[1], i, (double)g[i], fd);
            }
        }
    }
    float x[2] = {1, 1}, g[2], sc;
    ck_assert_int_eq(t->reward_grad(hp, 0, x, &sc, g), FR_ERR_UNSUPPORTED);
    ck_assert_int_eq(fr_task_reward_grad_batch(&fr_task_shapes, 0, 1, (int[]){0}, x, &sc, g), FR_ERR_UNSUPPORTED);
}
END_TEST

static fr_reward_cmd *open_mock(const char *mode)
{
    char prog[1024];
    snprintf(prog, sizeof prog, "%s '%s/tests/reward_progs/mock_reward.py' %s", fr_test_python(), fr_test_src(), mode);
    fr_reward_cmd *rc;
    ck_assert_msg(fr_reward_cmd_open(prog, NULL, &rc) == FR_OK, "%s", fr_last_error());
    return rc;
}

START_TEST(test_reward_cmd_gradients)
{
    const int B = 2, D = 3, ids[2] = {1, 4};
    const float x[6] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, -0.75f};
    float s1[2], s2[2], g[6];
    fr_reward_cmd *rc = open_mock("ok");
    ck_assert_int_eq(fr_reward_cmd_score(rc, 0, B, D, ids, NULL, x, s1), FR_OK);
    ck_assert_msg(fr_reward_cmd_score_grad(rc, 1, B, D, ids, NULL, x, s2, g) == FR_OK, "%s", fr_last_error());
    for (int b = 0; b < B; b++) {
        ck_assert(fr_test_bits_equal(s1[b], s2[b])); /* version 1 and 2 score alike */
        for (int d = 0; d < D; d++) ck_assert(g[b * D + d] == (float)(d + 1));
    }
    ck_assert_int_eq(fr_reward_cmd_score(rc, 2, B, D, ids, NULL, x, s1), FR_OK); /* and version 1 goes on */
    ck_assert_int_eq(fr_reward_cmd_close(rc), FR_OK);

    /* a version-1 program: one line naming the program, the batch and the version */
    rc = open_mock("v1_only");
    ck_assert_int_eq(fr_reward_cmd_score(rc, 0, B, D, ids, NULL, x, s1), FR_OK);
    ck_assert_int_eq(fr_reward_cmd_score_grad(rc, 1, B, D, ids, NULL, x, s2, g), FR_ERR_IO);
    const char *e = fr_last_error();
    ck_assert_msg(strstr(e, "mock_reward.py") && strstr(e, "batch 1") && strstr(e, "version 2") && !strchr(e, '\n'),
                  "%s", e);
    fr_reward_cmd_close(rc);

    /* a non-finite gradient */
    rc = open_mock("nan");
    float keep[6] = {7, 7, 7, 7, 7, 7};
    memcpy(g, keep, sizeof g);
    ck_assert_int_eq(fr_reward_cmd_score_grad(rc, 0, B, D, ids, NULL, x, s2, g), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "gradient of sample 0 (prompt 1) element 1 is nan"), "%s", fr_last_error());
    ck_assert(memcmp(g, keep, sizeof g) == 0); /* untouched */
    fr_reward_cmd_close(rc);
}
END_TEST

/* ---- the cut draws ---------------------------------------------------------------------- */

START_TEST(test_cut_draws)
{
    fr_draft_opts o = {0};
    o.cut_mean = 0.84, o.cut_std = 0.1, o.last_fraction = 0.25;
    int64_t c;
    o.truncate = 0;
    ck_assert_int_eq(fr_draft_cut(FR_RG_DRAFT, &o, 16, 1, 0, &c), FR_OK);
    ck_assert_int_eq(c, 0);
    o.truncate = 1;
    ck_assert_int_eq(fr_draft_cut(FR_RG_DRAFT, &o, 16, 1, 0, &c), FR_OK);
    ck_assert_int_eq(c, 15);
    for (int st = 0; st < 3; st++) {
        o.strategy = st;
        double sum = 0.0;
        int64_t lo = 100, hi = -1;
        for (uint32_t e = 0; e < 400; e++) {
            ck_assert_int_eq(fr_draft_cut(FR_RG_ALIGNPROP, &o, 50, 3, e, &c), FR_OK);
            sum += (double)c;
            lo = c < lo ? c : lo, hi = c > hi ? c : hi;
        }
        ck_assert(lo >= 1 && hi <= 49);
        if (st == FR_DRAFT_CUT_FIXED) ck_assert(lo == 49 && hi == 49);
        if (st == FR_DRAFT_CUT_GAUSSIAN) /* int(N(42, 5)) truncated toward zero: mean about 41.5 */
            ck_assert_msg(fabs(sum / 400.0 - 41.5) < 1.0, "gaussian mean %g", sum / 400.0);
        if (st == FR_DRAFT_CUT_UNIFORM) ck_assert_msg(fabs(sum / 400.0 - 25.0) < 2.5 && lo <= 3 && hi >= 47, "uniform");
    }
    /* ReFL: randint(30, 39) of 40 is the last quarter */
    int seen[40] = {0};
    for (uint32_t e = 0; e < 400; e++) {
        ck_assert_int_eq(fr_draft_cut(FR_RG_REFL, &o, 40, 3, e, &c), FR_OK);
        ck_assert(c >= 30 && c <= 39);
        seen[c]++;
    }
    for (int k = 30; k < 40; k++) ck_assert(seen[k] > 0);
}
END_TEST

/* ---- the adjoint through the model (flowrl optimize) ------------------------------------ */

/* The float adjoint's dL/dx_T approaches backprop's as T grows (O(h), the §1.1 behaviour through
 * the network), and Adam on the noise raises the reward by either gradient. */
START_TEST(test_optimize_adjoint)
{
    const fr_task *task = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, task, FR_PRED_VELOCITY, 33);
    fr_backend *be = fr_test_ref_be();
    enum { OB = 4, OD = 2 };
    int pid[OB] = {0, 2, 4, 6}, rid;
    ck_assert_int_eq(fr_task_reward_id(task, "sqdist", &rid), FR_OK);
    float xT[OB * OD], ga[OB * OD], gb[OB * OD];
    uint64_t s = 1;
    for (int k = 0; k < OB * OD; k++) xT[k] = fr_test_uniform(&s, -1.0f, 1.0f);
    double prev = INFINITY;
    for (int64_t T = 4; T <= 32; T *= 2) {
        fr_rollout_cfg rc = fr_rollout_cfg_default(FR_SAMPLER_ODE);
        fr_rollout_schedule sch;
        rc.T = T;
        ck_assert_int_eq(fr_rollout_schedule_make(&rc, FR_GRID_LINEAR, 1.0, 0, 0, &sch), FR_OK);
        double ra, rb;
        ck_assert_int_eq(fr_optimize_grad(&m, be, task, rid, &rc, FR_OPTIM_GRAD_ADJOINT, OB, pid, xT, ga, &ra, NULL), FR_OK);
        ck_assert_int_eq(fr_optimize_grad(&m, be, task, rid, &rc, FR_OPTIM_GRAD_BACKPROP, OB, pid, xT, gb, &rb, NULL), FR_OK);
        ck_assert(ra == rb); /* the same forward */
        double e = 0.0, gm = 0.0;
        for (int k = 0; k < OB * OD; k++) e = fmax(e, fabs((double)ga[k] - gb[k])), gm = fmax(gm, fabs((double)gb[k]));
        ck_assert_msg(gm > 0.01 && e < 0.8 * prev, "T %lld: |adjoint - backprop| %g (previous %g), |g| %g", (long long)T, e,
                      prev, gm);
        prev = e;
        if (T == 8)
            for (int how = 0; how < 2; how++) {
                float x[OB * OD];
                double curve[9];
                memcpy(x, xT, sizeof x);
                ck_assert_int_eq(fr_optimize(&m, be, task, rid, &rc, FR_OPTIM_TARGET_NOISE, (fr_optim_grad)how, 8, 0.05,
                                             OB, pid, x, curve), FR_OK);
                ck_assert_msg(curve[8] > curve[0], "grad %d: reward %g -> %g", how, curve[0], curve[8]);
            }
        fr_rollout_schedule_free(&sch);
    }
    fr_model_free(&m);
}
END_TEST

START_TEST(test_optimize_cli)
{
    /* a model whose every weight is nonzero (the fixture's base has a zero output layer: no
     * gradient reaches the condition rows) */
    fr_model m;
    fr_test_make_model(&m, &fr_task_gmm2d, FR_PRED_VELOCITY, 41);
    char ck[512];
    snprintf(ck, sizeof ck, "%s/dense.safetensors", fr_rt_dir);
    ck_assert_int_eq(fr_model_save(&m, ck), FR_OK);
    fr_model_free(&m);
    const char *tg[2] = {"noise", "cond"};
    for (int k = 0; k < 2; k++) {
        char out[16384];
        int rc = fr_rt_cli(out, sizeof out, "optimize --ckpt %s --task gmm2d --out %s/opt.png --n 8 --num-steps 8 "
                           "--reward sqdist --iters 6 --lr 0.05 --target %s --backend ref", ck, fr_rt_dir, tg[k]);
        const char *w = strstr(out, "mean reward before ");
        double before, after;
        ck_assert_msg(rc == 0 && w && sscanf(w, "mean reward before %lf, after %lf", &before, &after) == 2 && after > before,
                      "%s: exit %d: %s", tg[k], rc, out);
    }
}
END_TEST

/* ---- Flow-NRG ------------------------------------------------------------------------- */

/* w = 0 is the plain ODE rollout bit for bit (with and without CFG); w > 0 raises the reward it
 * follows; on opt the same bits as ref. */
START_TEST(test_nrg_sample)
{
    const fr_task *task = &fr_task_gmm2d;
    fr_model m;
    fr_test_make_model(&m, task, FR_PRED_VELOCITY, 21);
    fr_backend *be = fr_test_ref_be();
    enum { NB = 16 };
    int pid[NB];
    uint32_t sid[NB];
    for (int i = 0; i < NB; i++) pid[i] = i % 8, sid[i] = (uint32_t)i;
    int rid;
    ck_assert_int_eq(fr_task_reward_id(task, "sqdist", &rid), FR_OK);
    for (int k = 0; k < 2; k++) {
        fr_rollout_cfg rc = fr_rollout_cfg_default(FR_SAMPLER_ODE);
        fr_rollout_schedule sch;
        rc.T = 8;
        rc.cfg = k ? 1.5f : 1.0f;
        rc.seed = 5;
        rc.c0 = FR_ROLLOUT_C0_SAMPLE;
        ck_assert_int_eq(fr_rollout_schedule_make(&rc, FR_GRID_LINEAR, 1.0, 0, 0, &sch), FR_OK);
        float plain[NB * 2], g0[NB * 2], g2[NB * 2], g2o[NB * 2], sc[NB];
        ck_assert_int_eq(fr_rollout_to_host(&m, be, task, &rc, NB, pid, sid, plain), FR_OK);
        ck_assert_msg(fr_nrg_sample(&m, be, task, rid, &rc, 0.0f, NB, pid, sid, g0) == FR_OK, "%s", fr_last_error());
        ck_assert_msg(memcmp(plain, g0, sizeof plain) == 0, "cfg %g: w = 0 differs from the plain rollout", (double)rc.cfg);
        ck_assert_int_eq(fr_nrg_sample(&m, be, task, rid, &rc, 2.0f, NB, pid, sid, g2), FR_OK);
        double r0 = 0.0, r2 = 0.0;
        int ok;
        for (int i = 0; i < NB; i++) {
            ck_assert_int_eq(task->reward(rid, pid[i], plain + 2 * i, &sc[i], &ok), FR_OK);
            r0 += sc[i];
            ck_assert_int_eq(task->reward(rid, pid[i], g2 + 2 * i, &sc[i], &ok), FR_OK);
            r2 += sc[i];
        }
        ck_assert_msg(r2 > r0, "cfg %g: guided mean reward %g <= unguided %g", (double)rc.cfg, r2 / NB, r0 / NB);
        fr_backend opt = fr_test_backend("opt", 0, 2);
        fr_model mo;
        ck_assert_int_eq(fr_model_alloc(&mo, &opt, &m.cfg), FR_OK);
        for (int i = 0; i < m.n_params; i++)
            ck_assert_int_eq(fr_h2d(&opt, mo.values[i].data, m.values[i].data, fr_tensor_nbytes(&m.values[i])), FR_OK);
        ck_assert_int_eq(fr_nrg_sample(&mo, &opt, task, rid, &rc, 2.0f, NB, pid, sid, g2o), FR_OK);
        ck_assert_msg(memcmp(g2, g2o, sizeof g2) == 0, "cfg %g: opt differs from ref", (double)rc.cfg);
        fr_model_free(&mo);
        fr_backend_close(&opt);
        fr_rollout_schedule_free(&sch);
    }
    float x[2] = {0, 0};
    fr_rollout_cfg rc = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    ck_assert_int_eq(fr_nrg_sample(&m, be, task, rid, &rc, 1.0f, 1, pid, sid, x), FR_ERR_ARG);
    fr_model_free(&m);
}
END_TEST

/* ---- runs ------------------------------------------------------------------------------- */

START_TEST(test_draft_raises_reward)
{
    static const char *const keys[] = {"reward_mean", NULL};
    const char *algos[] = {"draft", "alignprop", "refl"};
    for (int i = 0; i < 3; i++) {
        const fr_algo *a;
        ck_assert_int_eq(fr_algo_find(algos[i], &a), FR_OK);
        fr_rt_opts o;
        char run[64];
        snprintf(run, sizeof run, "%s-raise", algos[i]);
        fr_rt_opts_init(&o, a, run, 12);
        snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "sqdist");
        o.ro.smp.num_steps = 8;
        o.ro.c.prompts = 4;
        o.ro.c.group = 8;
        o.ro.opt.lr = 1e-2;
        fr_rt_metrics m = {keys, {{0}}, 0};
        fr_run_cb cb = {fr_rt_metrics_record, NULL, NULL, &m, NULL};
        ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s: %s", algos[i], fr_last_error());
        const double first = (m.v[0][0] + m.v[0][1] + m.v[0][2]) / 3, last = (m.v[0][9] + m.v[0][10] + m.v[0][11]) / 3;
        ck_assert_msg(last > first, "%s: reward %g over the first 3 epochs, %g over the last 3", algos[i], first, last);
        fr_rt_opts_free(&o);
    }
}
END_TEST

START_TEST(test_step_reward_refused)
{
    char out[8192];
    int rc = fr_rt_cli(out, sizeof out, "train --algo draft --task gmm2d --base %s --out %s/hp --epochs 1 --reward halfplane "
                       "--backend ref", fr_rt_base, fr_rt_dir);
    ck_assert_msg(rc != 0 && strstr(out, "halfplane") && strstr(out, "no gradient"), "exit %d: %s", rc, out);
}
END_TEST

START_TEST(test_nrg_cli)
{
    char out[8192];
    int rc = fr_rt_cli(out, sizeof out, "sample --ckpt %s --task gmm2d --out %s/nrg.png --n 8 --num-steps 8 "
                       "--guidance nrg --guidance-weight 2 --guidance-reward sqdist --backend ref", fr_rt_base, fr_rt_dir);
    ck_assert_msg(rc == 0 && strstr(out, "guidance flow-nrg: weight 2, reward sqdist"), "exit %d: %s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "sample --ckpt %s --task gmm2d --out %s/nrg2.png --n 8 --num-steps 8 "
                   "--guidance nrg --guidance-reward halfplane --backend ref", fr_rt_base, fr_rt_dir);
    ck_assert_msg(rc != 0 && strstr(out, "halfplane"), "exit %d: %s", rc, out);
}
END_TEST

Suite *suite_rgrad(void)
{
    Suite *s = suite_create("rgrad");
    TCase *tc = tcase_create("math");
    tcase_add_test(tc, test_ode_check_values);
    tcase_add_test(tc, test_ode_mlp_fd);
    tcase_add_test(tc, test_backprop_fd);
    tcase_add_test(tc, test_backprop_fd_cfg);
    tcase_add_test(tc, test_gmm2d_reward_grad);
    tcase_add_test(tc, test_reward_cmd_gradients);
    tcase_add_test(tc, test_cut_draws);
    tcase_add_test(tc, test_nrg_sample);
    tcase_add_test(tc, test_optimize_adjoint);
    suite_add_tcase(s, tc);
    TCase *run = tcase_create("run");
    tcase_add_checked_fixture(run, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(run, 120);
    tcase_add_test(run, test_draft_raises_reward);
    tcase_add_test(run, test_step_reward_refused);
    tcase_add_test(run, test_nrg_cli);
    tcase_add_test(run, test_optimize_cli);
    suite_add_tcase(s, run);
    return s;
}
