/* DDO (core/ddo.c, core/algo/ddo.c, flowrl/ddo.h; docs/algorithms/ddo.md): the check of
 * spec/more.md §2 [derived] (at θ = ref, L = (1 + α)·log 2 and ∇L = (β/2)(E_data ∇e − α·E_ref ∇e)),
 * the loss against a direct evaluation and its gradient against central finite differences in
 * double, the argument errors, and the check as a run (the first batch of epoch 1 comes before any
 * update: every Δ is 0 and the loss is (1 + α)·log 2). The generic run properties are
 * tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/ddo.h"
#include "flowrl/pair_dpo.h"
#include "flowrl/philox.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

enum { NP = 3, NN = 4, NR = NP + NN, DD = 5 };

static void make_rows(float *out, float *ref, float *target, uint32_t seed, float spread)
{
    float a[NR * DD], b[NR * DD];
    fr_rng_fill_normal(target, NR * DD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(a, NR * DD, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(b, NR * DD, seed, FR_RNG_TEST, 2, 0, 0);
    for (int j = 0; j < NR * DD; j++) {
        out[j] = target[j] + 0.5f * a[j];
        ref[j] = out[j] + spread * b[j];
    }
}

static double loss_direct(const double *out, const float *ref, const float *target, double alpha, double beta)
{
    double L = 0.0;
    for (int r = 0; r < NR; r++) {
        double s = 0.0, sr = 0.0;
        for (int i = 0; i < DD; i++) {
            const double d = out[r * DD + i] - target[r * DD + i], dr = (double)ref[r * DD + i] - target[r * DD + i];
            s += d * d;
            sr += dr * dr;
        }
        const double delta = -(s / DD - sr / DD);
        L += r < NP ? log1p(exp(-beta * delta)) / NP : alpha * log1p(exp(beta * delta)) / NN;
    }
    return L;
}

START_TEST(test_at_ref)
{
    fr_backend *be = REF;
    float out[NR * DD], ref[NR * DD], target[NR * DD], grad[NR * DD];
    double e[NR], er[NR];
    const double alpha = 4.0, beta = 0.05;
    make_rows(out, ref, target, 2, 0.0f);
    fr_ddo_stats st;
    ck_assert_int_eq(fr_ddo_rows(be, NP, NN, DD, alpha, beta, out, ref, target, 1.0, grad, e, er, &st), FR_OK);
    ck_assert_msg(fabs(st.loss - (1.0 + alpha) * M_LN2) <= 4e-16 * st.loss, "L %.17g, (1 + alpha) log 2 %.17g", st.loss,
                  (1.0 + alpha) * M_LN2);
    ck_assert(st.d_pos == 0.5 && st.d_neg == 0.5 && st.delta_pos == 0.0 && st.delta_neg == 0.0);
    /* ∇L = (β/2)(E_data ∇e − α E_ref ∇e), ∇e = (2/D)(out − target) */
    for (int r = 0; r < NR; r++) {
        const double c = r < NP ? (beta / 2) / NP : -(alpha * beta / 2) / NN;
        const float sc = (float)(c * (2.0 / DD));
        for (int i = 0; i < DD; i++)
            ck_assert_msg(grad[r * DD + i] == sc * (out[r * DD + i] - target[r * DD + i]), "grad[%d,%d]", r, i);
    }
}
END_TEST

START_TEST(test_loss_and_gradient)
{
    fr_backend *be = REF;
    float out[NR * DD], ref[NR * DD], target[NR * DD], grad[NR * DD];
    const double alpha = 2.0, beta = 3.0, gout = 0.5;
    make_rows(out, ref, target, 9, 0.3f);
    fr_ddo_stats st;
    ck_assert_int_eq(fr_ddo_rows(be, NP, NN, DD, alpha, beta, out, ref, target, gout, grad, NULL, NULL, &st), FR_OK);
    double od[NR * DD];
    for (int j = 0; j < NR * DD; j++) od[j] = out[j];
    const double L = loss_direct(od, ref, target, alpha, beta);
    ck_assert_msg(fabs(st.loss - L) <= 1e-12 * L, "loss %.17g, direct %.17g", st.loss, L);
    const double h = 1e-6;
    for (int j = 0; j < NR * DD; j++) {
        const double o = od[j];
        od[j] = o + h;
        const double lp = loss_direct(od, ref, target, alpha, beta);
        od[j] = o - h;
        const double lm = loss_direct(od, ref, target, alpha, beta);
        od[j] = o;
        const double fd = gout * (lp - lm) / (2 * h);
        ck_assert_msg(fabs(grad[j] - fd) <= 1e-5 * fabs(fd) + 1e-8, "grad[%d] %.9g, finite difference %.9g", j,
                      (double)grad[j], fd);
    }
    double e[NR], er[NR];
    for (int r = 0; r < NR; r++) e[r] = er[r] = 1.0;
    ck_assert_int_eq(fr_ddo_loss(0, NN, alpha, beta, e, er, 1.0, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_ddo_loss(NP, NN, -1.0, beta, e, er, 1.0, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_ddo_loss(NP, NN, alpha, 0.0, e, er, 1.0, NULL, NULL), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "fr_ddo_loss"));
}
END_TEST

typedef struct {
    int n_loss, bad;
    float want;
} l_tap;

static fr_status tap_loss(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    l_tap *c = user;
    if (step == 1 && strcmp(name, "b0.loss") == 0) {
        c->n_loss++;
        c->bad += memcmp(t->data, &c->want, sizeof c->want) != 0;
    }
    return FR_OK;
}

/* The check as a run, on ref and cuda-emu: batch 0 of epoch 1 is before any update (θ = ref). */
START_TEST(test_run_at_ref)
{
    const fr_algo *a;
    ck_assert_int_eq(fr_algo_find("ddo", &a), FR_OK);
    const char *bks[] = {"ref", "cuda-emu"};
    for (int k = 0; k < 2; k++) {
        char run[16];
        snprintf(run, sizeof run, "ddo%d", k);
        fr_rt_opts o;
        fr_rt_opts_init(&o, a, run, 1);
        fr_backend be;
        if (!fr_test_backend_try(&be, "ddo", bks[k], 1)) continue;
        const double sp = fr_pair_dpo_softplus(0.0);
        l_tap c = {0, 0, (float)(sp + 4.0 * sp)};
        fr_run_env env = {&be, NULL, tap_loss, &c};
        fr_run_result res;
        ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s: %s", bks[k], fr_last_error());
        ck_assert_msg(c.n_loss == 1 && c.bad == 0, "%s: the first batch's loss is not (1 + alpha) log 2", bks[k]);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_ddo(void)
{
    Suite *s = suite_create("ddo");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_at_ref);
    tcase_add_test(tc, test_loss_and_gradient);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_run_at_ref);
    suite_add_tcase(s, tr);
    return s;
}
