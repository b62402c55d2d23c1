/* The pair preference objective of D3PO and SPO (fr_traj_pair_pref, flowrl/traj_objective.h;
 * docs/algorithms/d3po.md §2): its loss and gradient by hand against a double-precision
 * reimplementation (the clamp's zero gradient outside the band, ties training nothing), the
 * check at θ = ref through fr_traj_micro_step (logp_ref == logp_θ bitwise, every pair's term
 * softplus(0) bitwise, the loss within 1 ulp), and its one-line errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/detmath.h"
#include "flowrl/schedule.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* The public code's loss of one pair in double: −log σ(β·log r0·h0 + β·log r1·h1). */
static double pair_term_double(double beta, double eps, const double lp[2], const double lq[2], const float h[2])
{
    double z = 0.0;
    for (int k = 0; k < 2; k++) {
        double r = exp(lp[k] - lq[k]);
        r = r < 1.0 - eps ? 1.0 - eps : r > 1.0 + eps ? 1.0 + eps : r;
        z += beta * log(r) * h[k];
    }
    return log1p(exp(-z));
}

/* 3 pairs on a DDIM step: (+1, −1) inside the band, (−1, +1) with its second row outside it,
 * a tie (0, 0) with one row outside. Loss, ratios and dL/dlogp against the double form (finite differences). */
START_TEST(test_pair_by_hand)
{
    enum { B = 6, D = 3 };
    float ab[FR_TEST_DDPM_NT];
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    fr_test_ddim_cfg(&rc, &sch, ab, 4, 1); /* SD's steps_offset 1 */
    fr_backend *be = fr_test_ref_be();
    float xn[B * D], mu[B * D];
    uint64_t seed = 11;
    for (int i = 0; i < B * D; i++) xn[i] = fr_test_uniform(&seed, -1.0f, 1.0f), mu[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    const float logp[B] = {-1.25f, -0.5f, 0.75f, -0.3f, 0.125f, -2.0f};
    const float logp_ref[B] = {-1.28f, -0.46f, 0.7f, -0.6f, 0.0f, -1.9f}; /* row 3: e^0.3 > 1.1 */
    const float h_rows[B] = {1.0f, -1.0f, -1.0f, 1.0f, 0.0f, 0.0f};
    const int64_t rows[B] = {0, 1, 2, 3, 4, 5};
    float *dx = fr_dev_floats(be, B * D), *dm = fr_dev_floats(be, B * D), *dg = fr_dev_floats(be, B * D),
          *ds = fr_dev_floats(be, B);
    ck_assert(dx && dm && dg && ds);
    ck_assert_int_eq(fr_h2d(be, dx, xn, sizeof xn), FR_OK);
    ck_assert_int_eq(fr_h2d(be, dm, mu, sizeof mu), FR_OK);
    float scratch[B], ratio[B], g[B * D];
    fr_traj_batch tb = {B, D, fr_rollout_step(&rc, 1), NULL, dx, NULL, NULL, NULL, dm, logp, NULL, scratch, ds, rows,
                        logp_ref};
    const fr_traj_pair_params prm = {0.1f, 0.1, h_rows};
    const float gout = 0.5f;
    fr_traj_stats st;
    ck_assert_msg(fr_traj_pair_pref.loss(be, &tb, 1, &prm, gout, dg, ratio, &st) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_d2h(be, g, dg, sizeof g), FR_OK);
    ck_assert(fr_traj_pair_pref.wants_logp_ref);

    double want_loss = 0.0;
    for (int i = 0; i < B / 2; i++) {
        double lp[2] = {logp[2 * i], logp[2 * i + 1]}, lq[2] = {logp_ref[2 * i], logp_ref[2 * i + 1]};
        want_loss += pair_term_double(0.1, 0.1, lp, lq, h_rows + 2 * i) / (B / 2);
        /* dL/dlogp by central differences in double, times gout */
        for (int c = 0; c < 2; c++) {
            const double eh = 1e-6;
            double p1[2] = {lp[0], lp[1]}, p2[2] = {lp[0], lp[1]};
            p1[c] += eh;
            p2[c] -= eh;
            const double fd = (pair_term_double(0.1, 0.1, p1, lq, h_rows + 2 * i) -
                               pair_term_double(0.1, 0.1, p2, lq, h_rows + 2 * i)) / (2 * eh) * gout / (B / 2);
            const int k = 2 * i + c;
            ck_assert_msg(fabs(scratch[k] - fd) <= 1e-4 * fabs(fd) + 1e-7, "row %d: dL/dlogp %g, expected %g", k,
                          (double)scratch[k], fd);
            ck_assert_double_eq_tol(ratio[k], exp((double)logp[k] - logp_ref[k]), 1e-6);
        }
    }
    ck_assert_double_eq_tol(st.obj, want_loss, 1e-6);
    /* the quirk: row 3 outside the band, the tie's rows 4 and 5: exactly no gradient */
    for (int k = 3; k < B; k++) {
        ck_assert_msg(scratch[k] == 0.0f, "row %d: dL/dlogp %g, expected 0", k, (double)scratch[k]);
        for (int d = 0; d < D; d++) ck_assert_msg(g[k * D + d] == 0.0f, "row %d: g_mean %g", k, (double)g[k * D + d]);
    }
    for (int k = 0; k < 3; k++) ck_assert(scratch[k] != 0.0f);
    ck_assert_float_eq(st.clipfrac, 2.0f / B); /* rows 3 and 4 */
    /* the tie's term: softplus(0) bitwise, whatever the ratios */
    float r[2], gg[2];
    ck_assert(fr_traj_pair_term(&prm, logp + 4, logp_ref + 4, h_rows + 4, r, gg) == fr_softplusf(0.0f));
    fr_dev_free(be, dx);
    fr_dev_free(be, dm);
    fr_dev_free(be, dg);
    fr_dev_free(be, ds);
    fr_rollout_schedule_free(&sch);
}
END_TEST

/* θ = ref (spec objectives.md §17 "Check"): a policy equal to its frozen reference, guided
 * (CFG 2 in training), one micro-step of 4 pairs at each step of a DDIM rollout: logp_ref ==
 * logp_θ bitwise, every ratio 1, every pair's term softplus(0) bitwise, the loss within 1 ulp
 * of it, on ref and on opt at 2 threads. */
START_TEST(test_theta_ref)
{
    enum { N = 8, T = 4 };
    const char *bes[] = {"ref", "opt"};
    for (int bi = 0; bi < 2; bi++) {
        fr_backend be = fr_test_backend(bes[bi], 0, 2);
        float ab[FR_TEST_DDPM_NT];
        fr_rollout_cfg rc;
        fr_rollout_schedule sch;
        fr_test_ddim_cfg(&rc, &sch, ab, T, 1); /* SD's steps_offset 1 */
        rc.cfg = 2.0f;
        fr_model pol, ref;
        fr_test_make_model(&pol, &fr_task_gmm2d, FR_PRED_EPSILON, 5);
        fr_test_make_model(&ref, &fr_task_gmm2d, FR_PRED_EPSILON, 5);
        const int64_t D = pol.cfg.D;
        /* ref and opt share host memory: the models made on ref serve both */
        int pid[N];
        uint32_t sid[N];
        for (int s = 0; s < N; s++) pid[s] = s / 2 % fr_task_gmm2d.n_train, sid[s] = (uint32_t)s;
        float *traj = fr_dev_floats(&be, (T + 1) * N * D), *mean = fr_dev_floats(&be, T * N * D),
              *dlogp = fr_dev_floats(&be, T * N), *x = fr_dev_floats(&be, N * D);
        ck_assert(traj && mean && dlogp && x);
        fr_rollout_traj tj = {traj, mean, dlogp, NULL, NULL};
        ck_assert_msg(fr_rollout(&pol, &be, &fr_task_gmm2d, &rc, N, pid, sid, NULL, x, &tj) == FR_OK, "%s",
                      fr_last_error());
        float logp_h[T * N], adv[N] = {0};
        ck_assert_int_eq(fr_d2h(&be, logp_h, dlogp, sizeof logp_h), FR_OK);
        const float h[N] = {1, -1, -1, 1, 0, 0, 1, -1};
        const fr_traj_pair_params prm = {0.1f, 0.1, h};
        const fr_traj_trainer tr = {&pol, &ref, &be, {2.0f, 1}, &fr_traj_pair_pref, &prm, 0.0f, FR_KL_CODE};
        const fr_traj_data d = {N, traj, mean, logp_h, adv, pid, &fr_task_gmm2d, &rc, NULL, NULL};
        fr_traj_ws w;
        ck_assert_msg(fr_traj_ws_alloc(&w, &tr, N) == FR_OK, "%s", fr_last_error());
        const int64_t rows[N] = {0, 1, 2, 3, 4, 5, 6, 7};
        const float sp0 = fr_softplusf(0.0f);
        for (int64_t j = 0; j < T; j++) {
            float ratio[N];
            fr_traj_stats st;
            fr_model_zero_grad(&pol, &be);
            ck_assert_msg(fr_traj_micro_step(&tr, &w, &d, rows, N, j, 0.25f, ratio, &st) == FR_OK, "%s",
                          fr_last_error());
            for (int k = 0; k < N; k++) {
                ck_assert_msg(memcmp(&w.logp[k], &w.logp_ref[k], sizeof(float)) == 0, "%s j %lld row %d: %a vs %a",
                              bes[bi], (long long)j, k, (double)w.logp[k], (double)w.logp_ref[k]);
                ck_assert_msg(memcmp(&w.logp[k], &logp_h[j * N + k], sizeof(float)) == 0, "on-policy logp");
                ck_assert(ratio[k] == 1.0f);
            }
            for (int i = 0; i < N / 2; i++) {
                float r[2], gg[2];
                const float term = fr_traj_pair_term(&prm, w.logp + 2 * i, w.logp_ref + 2 * i, h + 2 * i, r, gg);
                ck_assert_msg(memcmp(&term, &sp0, sizeof term) == 0, "pair %d: term %a, softplus(0) %a", i,
                              (double)term, (double)sp0);
            }
            ck_assert_msg(fabsf(st.obj - sp0) <= nextafterf(sp0, INFINITY) - sp0, "loss %a vs %a", (double)st.obj,
                          (double)sp0);
            ck_assert_float_eq(st.clipfrac, 0.0f);
        }
        fr_traj_ws_free(&w);
        fr_dev_free(&be, traj);
        fr_dev_free(&be, mean);
        fr_dev_free(&be, dlogp);
        fr_dev_free(&be, x);
        fr_model_free(&pol);
        fr_model_free(&ref);
        fr_rollout_schedule_free(&sch);
        fr_backend_close(&be);
    }
}
END_TEST

/* One line each: an odd row count, rows that are not partners, no logp_ref; a trainer
 * without a reference for an objective that wants one. */
START_TEST(test_pair_errors)
{
    enum { B = 4, D = 2 };
    float ab[FR_TEST_DDPM_NT];
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    fr_test_ddim_cfg(&rc, &sch, ab, 4, 1); /* SD's steps_offset 1 */
    fr_backend *be = fr_test_ref_be();
    float *dx = fr_dev_floats(be, B * D), *dm = fr_dev_floats(be, B * D), *dg = fr_dev_floats(be, B * D),
          *ds = fr_dev_floats(be, B);
    ck_assert(dx && dm && dg && ds);
    const float logp[B] = {0}, logp_ref[B] = {0}, h_bad[B] = {1, 1, 0, 0};
    const int64_t rows[B] = {0, 1, 2, 3};
    float scratch[B], ratio[B];
    fr_traj_batch tb = {3, D, fr_rollout_step(&rc, 1), NULL, dx, NULL, NULL, NULL, dm, logp, NULL, scratch, ds, rows,
                        logp_ref};
    fr_traj_pair_params prm = {0.1f, 0.1, h_bad};
    fr_traj_stats st;
    ck_assert_int_eq(fr_traj_pair_pref.loss(be, &tb, 1, &prm, 1.0f, dg, ratio, &st), FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "even") && !strchr(fr_last_error(), '\n'));
    tb.b = B;
    ck_assert_int_eq(fr_traj_pair_pref.loss(be, &tb, 1, &prm, 1.0f, dg, ratio, &st), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "rows 0 and 1") != NULL, "%s", fr_last_error());
    tb.logp_ref = NULL;
    ck_assert_int_eq(fr_traj_pair_pref.loss(be, &tb, 1, &prm, 1.0f, dg, ratio, &st), FR_ERR_ARG);
    fr_model pol;
    fr_test_make_model(&pol, &fr_task_gmm2d, FR_PRED_EPSILON, 5);
    const fr_traj_trainer tr = {&pol, NULL, be, {1.0f, 0}, &fr_traj_pair_pref, &prm, 0.0f, FR_KL_CODE};
    fr_traj_ws w;
    ck_assert_int_eq(fr_traj_ws_alloc(&w, &tr, B), FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "logp_ref") != NULL);
    fr_model_free(&pol);
    fr_dev_free(be, dx);
    fr_dev_free(be, dm);
    fr_dev_free(be, dg);
    fr_dev_free(be, ds);
    fr_rollout_schedule_free(&sch);
}
END_TEST

Suite *suite_pair_pref(void)
{
    Suite *s = suite_create("pair_pref");
    TCase *tc = tcase_create("pair_pref");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pair_by_hand);
    tcase_add_test(tc, test_theta_ref);
    tcase_add_test(tc, test_pair_errors);
    suite_add_tcase(s, tc);
    return s;
}
