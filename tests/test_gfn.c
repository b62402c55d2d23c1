/* GFlowNets (flowrl/env.h, flowrl/gfn.h; docs/algorithms/gfn.md, docs/envs.md): HyperGrid's
 * masks, transitions, encoding and reward; the exact target and log Z against spec
 * gflownets.md §1.4; the exact P_T of a uniform policy by hand; each loss's residual against a
 * by-hand float64 computation and its gradient by central differences; `flowrl envs`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/backend.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_train.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_env grid(int D, int H, double r0)
{
    fr_hypergrid_opts o;
    ck_assert_int_eq(fr_env_defaults(&fr_env_hypergrid, &o), FR_OK);
    o.ndim = D;
    o.height = H;
    o.r0 = r0;
    fr_env e;
    ck_assert_msg(fr_env_create(&fr_env_hypergrid, &o, &e) == FR_OK, "%s", fr_last_error());
    return e;
}

START_TEST(test_hypergrid_masks_transitions)
{
    fr_env e = grid(2, 8, 0.1);
    ck_assert_int_eq(e.n_actions, 3);
    ck_assert_int_eq(e.exit_action, 2);
    ck_assert_int_eq(e.obs_dim, 16);
    ck_assert_int_eq(e.max_steps, 15); /* D·(H−1) + 1, exit included */
    ck_assert_int_eq(e.n_states, 64);
    int32_t s[2], t[2];
    uint8_t fwd[3], bwd[2];
    e.gfn->initial(&e, s);
    ck_assert(s[0] == 0 && s[1] == 0);
    e.gfn->forward_mask(&e, s, fwd);
    ck_assert(fwd[0] && fwd[1] && fwd[2]); /* exit allowed at s0 */
    e.gfn->backward_mask(&e, s, bwd);
    ck_assert(!bwd[0] && !bwd[1]);
    s[0] = 7;
    s[1] = 3;
    e.gfn->forward_mask(&e, s, fwd);
    ck_assert(!fwd[0] && fwd[1] && fwd[2]);  /* at the edge: no increment of d0, never forced to exit */
    e.gfn->backward_mask(&e, s, bwd);
    ck_assert(bwd[0] && bwd[1]);
    e.gfn->step(&e, s, 1, t);
    ck_assert(t[0] == 7 && t[1] == 4);
    e.gfn->back_step(&e, t, 1, t);
    ck_assert(t[0] == 7 && t[1] == 3);
    ck_assert_int_eq(e.gfn->index(&e, s), 7 * 8 + 3);
    for (int64_t i = 0; i < e.n_states; i++) {
        e.gfn->state_at(&e, i, t);
        ck_assert_int_eq(e.gfn->index(&e, t), i);
    }
    float obs[16];
    e.gfn->encode(&e, s, obs);
    for (int k = 0; k < 16; k++) ck_assert(obs[k] == (k == 7 || k == 8 + 3 ? 1.0f : 0.0f));
    fr_env_free(&e);
}
END_TEST

/* The ring and band of OriginalReward at H = 8 (band indices {1, 6}) and the float32 trap at
 * H = 16 (band {2, 13}, not {2, 3, 12, 13}: spec gflownets.md §1.2). */
START_TEST(test_hypergrid_reward)
{
    fr_hypergrid_opts o = {2, 8, 0.1, 0.5, 2.0};
    int32_t x[2] = {1, 6};
    ck_assert(fr_hypergrid_reward(&o, x) == (0.1f + 0.5f) + 2.0f);
    x[0] = 0;
    ck_assert(fr_hypergrid_reward(&o, x) == 0.1f + 0.5f);
    x[0] = 3;
    ck_assert(fr_hypergrid_reward(&o, x) == 0.1f);
    o.height = 16;
    x[0] = 3;
    x[1] = 3;
    ck_assert(fr_hypergrid_reward(&o, x) == 0.1f + 0.5f); /* ring, not band */
    x[0] = 2;
    x[1] = 13;
    ck_assert(fr_hypergrid_reward(&o, x) == (0.1f + 0.5f) + 2.0f);
}
END_TEST

/* spec gflownets.md §1.4: Z, log Z, mode cells and the target's mass on modes. */
START_TEST(test_hypergrid_target_table)
{
    static const struct {
        int D, H;
        double r0, z, log_z;
        int64_t modes;
        /* the table's mode mass, half a unit of its last digit; its one value 0.057 for both
         * H = 12 rows is the R0 = 1e-3 row's, the 1e-4 row's is 16·2.5001/Z */
        double mass, half_unit;
    } rows[] = {
        {2, 8, 0.1, 22.4, 3.109061, 4, 0.4643, 5e-5},      {2, 16, 0.1, 65.6, 4.183576, 4, 0.1585, 5e-5},
        {2, 64, 0.1, 1209.6, 7.098045, 144, 0.31, 5e-3},   {2, 64, 0.01, 840.96, 6.734544, 144, 0.43, 5e-3},
        {2, 64, 0.001, 804.096, 6.689719, 144, 0.45, 5e-3}, {4, 8, 0.1, 569.6, 6.344934, 16, 0.07, 5e-3},
        {4, 8, 0.01, 200.96, 5.303106, 16, 0.20, 5e-3},    {4, 8, 0.001, 164.096, 5.100452, 16, 0.24, 5e-3},
        {4, 16, 0.1, 8633.6, 9.063417, 16, 0.0048, 5e-5},  {4, 12, 1e-3, 700.736, 6.552131, 16, 0.057, 5e-4},
        {4, 12, 1e-4, 682.0736, 6.525138, 16, 16 * 2.5001 / 682.0736, 1e-6},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fr_env e = grid(rows[i].D, rows[i].H, rows[i].r0);
        double *p = malloc((size_t)e.n_states * sizeof *p), log_z, mass;
        int64_t modes;
        ck_assert_int_eq(fr_env_target(&e, p, &log_z, &modes, &mass), FR_OK);
        double sum = 0.0;
        for (int64_t k = 0; k < e.n_states; k++) sum += p[k];
        /* the table's 6 decimals; the float32 rewards move log Z by < 1e-7 */
        ck_assert_msg(fabs(log_z - rows[i].log_z) < 6e-7, "row %zu: log Z %.9f, table %.6f", i, log_z, rows[i].log_z);
        ck_assert_msg(fabs(exp(log_z) / rows[i].z - 1.0) < 1e-6, "row %zu: Z %.9g, table %g", i, exp(log_z), rows[i].z);
        ck_assert_msg(modes == rows[i].modes, "row %zu: %lld modes, table %lld", i, (long long)modes,
                      (long long)rows[i].modes);
        ck_assert_msg(fabs(mass - rows[i].mass) <= rows[i].half_unit, "row %zu: mode mass %.6f, table %g", i, mass, rows[i].mass);
        /* n roundings of the division and n of the sum, each <= 2^-53 relative */
        ck_assert_msg(fabs(sum - 1.0) < 2.3e-16 * (double)e.n_states, "row %zu: sum %.17g", i, sum);
        free(p);
        fr_env_free(&e);
    }
    /* spec §13: D = 7, H = 9 has 128 mode cells (torchgfn issue #307) */
    fr_env e = grid(7, 9, 0.01);
    int64_t modes;
    ck_assert_int_eq(fr_env_target(&e, NULL, NULL, &modes, NULL), FR_OK);
    ck_assert_int_eq(modes, 128);
    fr_env_free(&e);
}
END_TEST

/* log P_F of the uniform policy over each state's allowed actions. */
static double *uniform_logpf(const fr_env *e)
{
    double *lp = malloc((size_t)(e->n_states * e->n_actions) * sizeof *lp);
    int32_t s[8];
    uint8_t fwd[9];
    for (int64_t i = 0; i < e->n_states; i++) {
        e->gfn->state_at(e, i, s);
        e->gfn->forward_mask(e, s, fwd);
        int n = 0;
        for (int a = 0; a < e->n_actions; a++) n += fwd[a];
        for (int a = 0; a < e->n_actions; a++) lp[i * e->n_actions + a] = fwd[a] ? -log((double)n) : -INFINITY;
    }
    return lp;
}

START_TEST(test_exact_pt_uniform_by_hand)
{
    /* D = 1, H = 3: exit or step at 0 and 1 (½ each), exit only at 2: P_T = (½, ¼, ¼) */
    fr_env e = grid(1, 3, 0.1);
    double *lp = uniform_logpf(&e), pt[3];
    ck_assert_int_eq(fr_env_exact_pt(&e, lp, pt), FR_OK);
    ck_assert(fabs(pt[0] - 0.5) < 1e-15 && fabs(pt[1] - 0.25) < 1e-15 && fabs(pt[2] - 0.25) < 1e-15);
    free(lp);
    fr_env_free(&e);
    /* D = 2, H = 2: ⅓ at (0,0); (0,1), (1,0) reached with ⅓, exit ½: ⅙ each; (1,1) ⅓ */
    e = grid(2, 2, 0.1);
    lp = uniform_logpf(&e);
    double q[4];
    ck_assert_int_eq(fr_env_exact_pt(&e, lp, q), FR_OK);
    const double want[4] = {1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 3};
    for (int k = 0; k < 4; k++) ck_assert_msg(fabs(q[k] - want[k]) < 1e-15, "P_T[%d] = %.17g", k, q[k]);
    free(lp);
    fr_env_free(&e);
    /* 2D H8: P_T sums to 1 and its L1 to the target is the uniform policy's (> 0) */
    e = grid(2, 8, 0.1);
    lp = uniform_logpf(&e);
    double pt64[64], p[64], sum = 0.0;
    ck_assert_int_eq(fr_env_exact_pt(&e, lp, pt64), FR_OK);
    ck_assert_int_eq(fr_env_target(&e, p, NULL, NULL, NULL), FR_OK);
    for (int k = 0; k < 64; k++) sum += pt64[k];
    ck_assert(fabs(sum - 1.0) < 1e-12);
    ck_assert(fr_env_l1(pt64, p, 64) > 0.3);
    ck_assert(fr_env_l1(p, p, 64) == 0.0);
    free(lp);
    fr_env_free(&e);
}
END_TEST

/* A tiny batch: trajectory 0 of 3 actions (2 steps + exit), trajectory 1 of 1 (exit at s0). */
enum { TB_B = 2, TB_L = 3 };
static const int32_t k_len[TB_B] = {3, 1};
static double k_pf[TB_B * TB_L] = {-0.7, -1.1, -0.4, -1.3, 0, 0};
static double k_pb[TB_B * TB_L] = {-0.2, -0.6, 0, 0, 0, 0};
static double k_f[TB_B * TB_L] = {1.5, 0.9, 0.3, 1.2, 0, 0};
static double k_r[TB_B] = {0.8, -0.5};

static fr_gfn_batch tiny(void)
{
    fr_gfn_batch b = {.B = TB_B, .L = TB_L, .len = k_len, .logpf = k_pf, .logpb = k_pb, .logf = k_f, .logr = k_r,
                      .log_z = 0.25, .lambda = 0.9};
    return b;
}

START_TEST(test_losses_by_hand)
{
    fr_gfn_batch b = tiny();
    double loss, res[TB_B * TB_L];
    /* TB: r0 = 0.25 + (−0.7 −1.1 −0.4) − (−0.2 −0.6) − 0.8, r1 = 0.25 − 1.3 + 0.5 */
    double r0 = 0.25 + (-0.7 - 1.1 - 0.4) - (-0.2 - 0.6) - 0.8, r1 = 0.25 - 1.3 + 0.5;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - r0) < 1e-14 && fabs(res[1] - r1) < 1e-14);
    ck_assert(fabs(loss - (r0 * r0 + r1 * r1) / 2) < 1e-14);
    /* ZVar: s = r − logZ; loss = mean (s − mean s)²; equals TB at logZ = −mean s (spec §13) */
    double s0 = r0 - 0.25, s1 = r1 - 0.25, m = (s0 + s1) / 2;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_ZVAR, &b, &loss, NULL, NULL), FR_OK);
    ck_assert(fabs(loss - ((s0 - m) * (s0 - m) + (s1 - m) * (s1 - m)) / 2) < 1e-14);
    double zvar = loss;
    b.log_z = -m;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &b, &loss, NULL, NULL), FR_OK);
    ck_assert(fabs(loss - zvar) < 1e-14);
    b.log_z = 0.25;
    /* DB: 4 transitions: F(s0)+pf0−F(s1)−pb0, F(s1)+pf1−F(s2)−pb1, F(s2)+pf2−R, and F'(s0)+pf'−R' */
    double d[4] = {1.5 - 0.7 - 0.9 + 0.2, 0.9 - 1.1 - 0.3 + 0.6, 0.3 - 0.4 - 0.8, 1.2 - 1.3 + 0.5};
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_DB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - d[0]) < 1e-14 && fabs(res[1] - d[1]) < 1e-14 && fabs(res[2] - d[2]) < 1e-14 &&
              fabs(res[3] - d[3]) < 1e-14);
    ck_assert(fabs(loss - (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + d[3] * d[3]) / 4) < 1e-14);
    /* SubTB geometric_within, λ = 0.9: trajectory 0 (n = 3) has pairs of length 1 (d0, d1, d2),
     * length 2 ((0,2), (1,3)) and 3 ((0,3)), weights 1, 0.9, 0.81 over 3 + 2·0.9 + 0.81 = 5.61;
     * trajectory 1 (n = 1) only d3 with weight 1/1; then / B */
    double r02 = 1.5 - 0.7 - 1.1 + 0.2 + 0.6 - 0.3, r13 = 0.9 - 1.1 - 0.4 + 0.6 - 0.8;
    double r03 = 1.5 - 0.7 - 1.1 - 0.4 + 0.2 + 0.6 - 0.8;
    double t0 = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + 0.9 * (r02 * r02 + r13 * r13) + 0.81 * r03 * r03) / 5.61;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_SUBTB, &b, &loss, res, NULL), FR_OK);
    ck_assert_msg(fabs(loss - (t0 + d[3] * d[3]) / 2) < 1e-14, "subtb %.17g want %.17g", loss, (t0 + d[3] * d[3]) / 2);
    ck_assert(fabs(res[0] - r03) < 1e-14 && fabs(res[1] - d[3]) < 1e-14);
    /* SubTB's whole-trajectory residual with F(s0) = logZ is TB's residual */
    ck_assert(fabs(res[0] - (r0 - 0.25 + 1.5)) < 1e-14);
}
END_TEST

/* Every gradient against central differences (float64, step 1e-6). */
START_TEST(test_loss_gradients_fd)
{
    for (int k = 0; k < 4; k++) {
        fr_gfn_batch b = tiny();
        double gpf[TB_B * TB_L], gpb[TB_B * TB_L], gf[TB_B * TB_L], loss, lp, lm;
        fr_gfn_grad g = {.logpf = gpf, .logpb = gpb, .logf = gf};
        ck_assert_int_eq(fr_gfn_loss((fr_gfn_loss_kind)k, &b, &loss, NULL, &g), FR_OK);
        double *arrs[3] = {k_pf, k_pb, k_f}, *grads[3] = {gpf, gpb, gf};
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < TB_B * TB_L; i++) {
                int row = i / TB_L, t = i % TB_L;
                int used = t < k_len[row] - (a == 1 ? 1 : 0);
                double keep = arrs[a][i], h = 1e-6;
                arrs[a][i] = keep + h;
                ck_assert_int_eq(fr_gfn_loss((fr_gfn_loss_kind)k, &b, &lp, NULL, NULL), FR_OK);
                arrs[a][i] = keep - h;
                ck_assert_int_eq(fr_gfn_loss((fr_gfn_loss_kind)k, &b, &lm, NULL, NULL), FR_OK);
                arrs[a][i] = keep;
                double fd = (lp - lm) / (2 * h), an = (k == FR_GFN_TB || k == FR_GFN_ZVAR) && a == 2 ? 0.0 : grads[a][i];
                ck_assert_msg(fabs(fd - an) < 1e-8, "%s: array %d slot %d: fd %.12g analytic %.12g",
                              fr_gfn_loss_name((fr_gfn_loss_kind)k), a, i, fd, an);
                if (!used) ck_assert(grads[a][i] == 0.0);
            }
        if (k == FR_GFN_TB) {
            b.log_z += 1e-6;
            ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &b, &lp, NULL, NULL), FR_OK);
            b.log_z -= 2e-6;
            ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &b, &lm, NULL, NULL), FR_OK);
            ck_assert(fabs((lp - lm) / 2e-6 - g.log_z) < 1e-8);
        }
    }
}
END_TEST

/* FM by hand: two states, the first with incoming (0.2, −0.4) and outgoing (0.1, 0.3, −1),
 * the second with incoming (0.5) and outgoing (0.7); three terminating states; α = 1. */
START_TEST(test_fm_by_hand)
{
    const int32_t n_in[2] = {2, 1}, n_out[2] = {3, 1};
    double fin[3] = {0.2, -0.4, 0.5}, fout[4] = {0.1, 0.3, -1.0, 0.7}, fx[3] = {0.4, -0.2, 1.1}, lr[3] = {0.5, 0.5, 0.9};
    double loss, gin[3], gout[4], gx[3];
    ck_assert_int_eq(fr_gfn_fm_loss(2, n_in, fin, n_out, fout, 3, fx, lr, 1.0, &loss, gin, gout, gx), FR_OK);
    double r0 = log(exp(0.2) + exp(-0.4)) - log(exp(0.1) + exp(0.3) + exp(-1.0)), r1 = 0.5 - 0.7;
    double rm = (0.1 * 0.1 + 0.7 * 0.7 + 0.2 * 0.2) / 3;
    ck_assert_msg(fabs(loss - ((r0 * r0 + r1 * r1) / 2 + rm)) < 1e-14, "fm %.17g", loss);
    /* central differences of every input */
    double *arrs[3] = {fin, fout, fx}, *grads[3] = {gin, gout, gx};
    const int n[3] = {3, 4, 3};
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < n[a]; i++) {
            double keep = arrs[a][i], lp, lm;
            arrs[a][i] = keep + 1e-6;
            ck_assert_int_eq(fr_gfn_fm_loss(2, n_in, fin, n_out, fout, 3, fx, lr, 1.0, &lp, NULL, NULL, NULL), FR_OK);
            arrs[a][i] = keep - 1e-6;
            ck_assert_int_eq(fr_gfn_fm_loss(2, n_in, fin, n_out, fout, 3, fx, lr, 1.0, &lm, NULL, NULL, NULL), FR_OK);
            arrs[a][i] = keep;
            ck_assert_msg(fabs((lp - lm) / 2e-6 - grads[a][i]) < 1e-8, "fm: array %d slot %d", a, i);
        }
    /* no flow in: torchgfn's NaN, here one line */
    const int32_t none[2] = {0, 1};
    ck_assert_int_eq(fr_gfn_fm_loss(2, none, fin, n_out, fout, 3, fx, lr, 1.0, &loss, NULL, NULL, NULL), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "state 0 has 0 incoming"), "%s", fr_last_error());
    fr_gfn_batch b = tiny();
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_FM, &b, &loss, NULL, NULL), FR_ERR_ARG);
}
END_TEST

START_TEST(test_errors_one_line)
{
    fr_hypergrid_opts o;
    fr_env e;
    ck_assert_int_eq(fr_env_defaults(&fr_env_hypergrid, &o), FR_OK);
    o.r0 = 0.0;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &o, &e), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--r0") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    o.r0 = 0.1;
    o.height = 1;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &o, &e), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "height"), "%s", fr_last_error());
    const fr_env_class *c;
    ck_assert_int_eq(fr_env_find("grid", &c), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "hypergrid"), "%s", fr_last_error());
    ck_assert_int_eq(fr_env_find("hypergrid", &c), FR_OK);
    fr_gfn_batch b = tiny();
    double loss;
    b.logf = NULL;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_DB, &b, &loss, NULL, NULL), FR_ERR_ARG);
    b = tiny();
    k_pf[1] = NAN;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &b, &loss, NULL, NULL), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "logpf[0, 1]"), "%s", fr_last_error());
    k_pf[1] = -1.1;
}
END_TEST

static char g_out[1 << 14];

START_TEST(test_cli_envs)
{
    ck_assert_int_eq(fr_test_run_cli("envs", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "hypergrid (gfn)") && strstr(g_out, "--height") && strstr(g_out, "64 states"), "%s",
                  g_out);
    ck_assert_int_eq(fr_test_run_cli("envs --json", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "\"name\":\t\"hypergrid\"") && strstr(g_out, "\"flag\":\t\"--r2\""), "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("envs --bogus", g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "flowrl envs: unexpected argument '--bogus'"), "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("envs --help", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "Usage: flowrl envs"), "%s", g_out);
}
END_TEST

/* A short run of loss k on backend `name` (threads): its parameter digest, loss and exact L1. */
/* A trainer of o on HyperGrid (D, H) on backend `name` (threads), and its teardown. */
typedef struct {
    fr_backend be;
    fr_env e;
    fr_gfn_trainer *t;
} fixture;

static void fix_open(fixture *f, const char *name, int threads, int D, int H, const fr_gfn_opts *o)
{
    ck_assert_msg(fr_backend_open(&f->be, name, 0, threads) == FR_OK, "%s: %s", name, fr_last_error());
    f->e = grid(D, H, 0.1);
    ck_assert_msg(fr_gfn_trainer_new(&f->t, &f->be, &f->e, o) == FR_OK, "%s", fr_last_error());
}

static void fix_close(fixture *f)
{
    fr_gfn_trainer_free(f->t);
    fr_env_free(&f->e);
    fr_backend_close(&f->be);
}

static uint64_t short_run(const char *name, int threads, fr_gfn_loss_kind k, int iters, double *l1, double *loss)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.loss = k;
    o.batch = 16;
    o.hidden = 32;
    o.epsilon = k == FR_GFN_DB ? 0.1 : 0.0; /* one loss with the exploration mixture */
    o.uniform_pb = k == FR_GFN_ZVAR;
    fixture f;
    fix_open(&f, name, threads, 2, 5, &o);
    fr_gfn_step_info info = {0};
    for (int i = 0; i < iters; i++) ck_assert_msg(fr_gfn_trainer_step(f.t, &info) == FR_OK, "%s", fr_last_error());
    double zerr;
    ck_assert_int_eq(fr_gfn_trainer_eval(f.t, l1, &zerr, NULL), FR_OK);
    *loss = info.loss;
    ck_assert_int_eq(info.trajectories, 16 * iters);
    uint64_t d;
    ck_assert_int_eq(fr_gfn_trainer_digest(f.t, &d, NULL), FR_OK);
    fix_close(&f);
    return d;
}

/* ref = opt at 1 and 3 threads = cuda-emu, bit for bit, for every loss; and the same twice. */
START_TEST(test_trainer_backends_bitwise)
{
    for (int k = 0; k < 5; k++) {
        double l1r, lr_, l1, l;
        uint64_t want = short_run("ref", 1, (fr_gfn_loss_kind)k, 3, &l1r, &lr_);
        ck_assert(isfinite(lr_) && l1r > 0.0 && l1r < 2.0);
        const struct {
            const char *name;
            int threads;
        } bk[] = {{"ref", 1}, {"opt", 1}, {"opt", 3}, {"cuda-emu", 1}};
        for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++) {
            fr_backend probe;
            if (strcmp(bk[i].name, "cuda-emu") == 0 && fr_backend_open(&probe, "cuda-emu", 0, 1) != FR_OK) continue;
            if (strcmp(bk[i].name, "cuda-emu") == 0) fr_backend_close(&probe);
            uint64_t got = short_run(bk[i].name, bk[i].threads, (fr_gfn_loss_kind)k, 3, &l1, &l);
            ck_assert_msg(got == want && l1 == l1r && l == lr_, "%s: %s at %d threads differs from ref",
                          fr_gfn_loss_name((fr_gfn_loss_kind)k), bk[i].name, bk[i].threads);
        }
    }
}
END_TEST

/* TB learns: on 2D H5 the exact L1 falls from the initial policy's to below 0.1 in 600 steps
 * of 16 trajectories (measured 2026-12-06: see the message on failure). */
START_TEST(test_trainer_tb_learns)
{
    double l1_0, l1, loss;
    short_run("opt", 2, FR_GFN_TB, 0, &l1_0, &loss);
    short_run("opt", 2, FR_GFN_TB, 600, &l1, &loss);
    ck_assert_msg(l1_0 > 0.3 && l1 < 0.1, "exact L1 %.4f at start, %.4f after 600 steps (0.029 measured)", l1_0, l1);
}
END_TEST

/* The sampler and the exact P_T describe one policy: the terminal histogram of 25,600 fresh
 * trajectories of the initial policy is within its noise of P_T (mean L1 = Σ √(2p(1−p)/(πn)),
 * spec gflownets.md §5.4; the bound 2x of it fails with probability far below 1e-6 for these
 * 64 cells), and the draws are the same at every call. */
START_TEST(test_sampled_vs_exact)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.hidden = 32;
    fixture f;
    fix_open(&f, "opt", 2, 2, 8, &o);
    fr_gfn_trainer *t = f.t;
    const int64_t n = 25600;
    double pt[64], l1_exact, l1_s, l1_s2, zerr;
    int64_t hist[64];
    ck_assert_int_eq(fr_gfn_trainer_eval(t, &l1_exact, &zerr, pt), FR_OK);
    ck_assert_int_eq(fr_gfn_trainer_sampled_l1(t, n, &l1_s, hist), FR_OK);
    ck_assert_int_eq(fr_gfn_trainer_sampled_l1(t, n, &l1_s2, NULL), FR_OK);
    ck_assert(l1_s == l1_s2);
    double d = 0.0, floor = 0.0;
    int64_t total = 0;
    for (int i = 0; i < 64; i++) {
        d += fabs((double)hist[i] / (double)n - pt[i]);
        floor += sqrt(2.0 * pt[i] * (1.0 - pt[i]) / (M_PI * (double)n));
        total += hist[i];
    }
    ck_assert_int_eq(total, n);
    ck_assert_msg(d < 2.0 * floor, "sampled vs exact P_T: L1 %.5f, noise %.5f", d, floor);
    /* the sampled L1 to the target is near the exact one (both measure the initial policy) */
    ck_assert_msg(fabs(l1_s - l1_exact) < 2.0 * floor, "sampled L1 %.5f, exact %.5f", l1_s, l1_exact);
    fix_close(&f);
}
END_TEST

/* sf_bias steers the sampler only: a large one never exits before (7, 7), a large negative one
 * always exits at s0, so neither finds a mode cell of 2D H8 in a step of 128 trajectories; the
 * initial policy does. */
START_TEST(test_sf_bias_exploration)
{
    const double bias[3] = {1e3, -1e3, 0.0};
    for (int i = 0; i < 3; i++) {
        fr_gfn_opts o = fr_gfn_opts_default();
        o.hidden = 32;
        o.sf_bias = bias[i];
        fixture f;
        fix_open(&f, "opt", 2, 2, 8, &o);
        fr_gfn_step_info info;
        ck_assert_int_eq(fr_gfn_trainer_step(f.t, &info), FR_OK);
        ck_assert_msg(i < 2 ? info.modes_found == 0 : info.modes_found > 0, "sf_bias %g: %lld modes", bias[i],
                      (long long)info.modes_found);
        fix_close(&f);
    }
}
END_TEST

START_TEST(test_trainer_errors)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = grid(2, 5, 0.1);
    fr_gfn_opts o = fr_gfn_opts_default();
    fr_gfn_trainer *t;
    o.epsilon = 2.0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--epsilon") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    o = fr_gfn_opts_default();
    o.temperature = 0.0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--temperature"), "%s", fr_last_error());
    o = fr_gfn_opts_default();
    o.n_hidden = 0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--n-hidden"), "%s", fr_last_error());
    fr_env_free(&e);
    fr_backend_close(&be);
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-xx", g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "gfn-tb, gfn-db") && strstr(g_out, "'gfn-xx'"), "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-tb --env nowhere", g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "unknown environment 'nowhere'"), "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-tb --height 1", g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "--height"), "%s", g_out);
    char dir[256], cmd[512];
    fr_test_mkdtemp(dir, sizeof dir, "gfncli");
    snprintf(cmd, sizeof cmd, "train --algo gfn-subtb --epochs 2 --batch-size 4 --hidden-dim 8 --height 4 --backend ref "
                              "--validation-samples 8 --out %s/run", dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "eval after    (epoch 2): trajectories 8 exact_l1") && strstr(g_out, "sampled_l1"), "%s", g_out);
    fr_test_rmtree(dir);
}
END_TEST

/* The run loop's gfn-tb (core/algo/gfn.c: its AdamW groups, the network at --lr and log Z at
 * --lr-z without decay) trains the bits of the trainer's own steps (fr_gfn_trainer_step). */
START_TEST(test_loop_equals_trainer)
{
    char dir[256], cmd[512], want[64];
    fr_test_mkdtemp(dir, sizeof dir, "gfnloop");
    snprintf(cmd, sizeof cmd, "train --algo gfn-tb --epochs 3 --batch-size 4 --hidden-dim 8 --height 4 --backend ref "
                              "--eval-every 0 --out %s/run", dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 0);
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_hypergrid_opts ho = {2, 4, 0.1, 0.5, 2.0};
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &ho, &e), FR_OK);
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 4;
    o.hidden = 8;
    fr_gfn_trainer *t;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_OK);
    for (int k = 0; k < 3; k++) ck_assert_int_eq(fr_gfn_trainer_step(t, NULL), FR_OK);
    uint64_t d;
    int64_t np;
    char hex[17];
    ck_assert_int_eq(fr_gfn_trainer_digest(t, &d, &np), FR_OK);
    fr_digest_hex(d, hex);
    snprintf(want, sizeof want, "parameters %lld, digest %s", (long long)np, hex);
    ck_assert_msg(strstr(g_out, want) != NULL, "the loop's run does not end with '%s':\n%s", want, g_out);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_gfn(void)
{
    Suite *s = suite_create("gfn");
    TCase *tc = tcase_create("env");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hypergrid_masks_transitions);
    tcase_add_test(tc, test_hypergrid_reward);
    tcase_add_test(tc, test_hypergrid_target_table);
    tcase_add_test(tc, test_exact_pt_uniform_by_hand);
    tcase_add_test(tc, test_losses_by_hand);
    tcase_add_test(tc, test_loss_gradients_fd);
    tcase_add_test(tc, test_fm_by_hand);
    tcase_add_test(tc, test_loop_equals_trainer);
    tcase_add_test(tc, test_errors_one_line);
    tcase_add_test(tc, test_cli_envs);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("trainer");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_trainer_backends_bitwise);
    tcase_add_test(tr, test_trainer_tb_learns);
    tcase_add_test(tr, test_sampled_vs_exact);
    tcase_add_test(tr, test_sf_bias_exploration);
    tcase_add_test(tr, test_trainer_errors);
    suite_add_tcase(s, tr);
    return s;
}
