/* Flow-RWR (core/rwr.c, core/algo/flow_rwr.c, flowrl/rwr.h; docs/algorithms/flow-rwr.md): the
 * weights (exp(r/τ) against libm, the per-prompt softmax's sums, shift invariance and ties), the
 * loss against a direct evaluation in double, its gradient against the formula, the §3 check
 * (every weight 1 gives pretraining's flow-matching gradient bit for bit), the argument errors,
 * and a run whose recorded weights are the function of its recorded rewards. The generic run
 * properties (same bytes, resume, ref = opt, cuda-emu) are tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/fm_loss.h"
#include "flowrl/philox.h"
#include "flowrl/rwr.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

START_TEST(test_weights)
{
    enum { N = 12, G = 4 };
    float r[N];
    double w[N], w2[N];
    for (int s = 0; s < N; s++) r[s] = fr_rng_uniform(7, FR_RNG_TEST, 0, 0, 0, (uint32_t)s) * 3.0f - 1.0f;
    /* exp: exp(r/τ) within 2 ulp-ish of libm */
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_EXP, 0.5, N, G, r, w), FR_OK);
    for (int s = 0; s < N; s++) {
        const double want = exp((double)r[s] / 0.5);
        ck_assert_msg(fabs(w[s] - want) <= 4e-16 * want, "exp weight %d: %.17g, libm %.17g", s, w[s], want);
    }
    /* softmax: G·softmax per group, every group sums to G, order follows the rewards; adding a
     * constant to a group's rewards changes nothing beyond rounding */
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_SOFTMAX, 0.5, N, G, r, w), FR_OK);
    float r2[N];
    for (int s = 0; s < N; s++) r2[s] = r[s] + (s < G ? 0.25f : 0.0f);
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_SOFTMAX, 0.5, N, G, r2, w2), FR_OK);
    for (int g = 0; g < N / G; g++) {
        double sum = 0.0, z = 0.0, m = -INFINITY;
        for (int j = 0; j < G; j++) /* not fmax: aarch64 gcc 12.2 ICEs vectorising fmax reductions */
            if (r[g * G + j] > m) m = r[g * G + j];
        for (int j = 0; j < G; j++) z += exp(((double)r[g * G + j] - m) / 0.5);
        for (int j = 0; j < G; j++) {
            const int s = g * G + j;
            sum += w[s];
            const double want = G * exp(((double)r[s] - m) / 0.5) / z;
            ck_assert_msg(fabs(w[s] - want) <= 1e-14 * want, "softmax weight %d: %.17g, want %.17g", s, w[s], want);
            ck_assert_msg(fabs(w2[s] - w[s]) <= 1e-6 * w[s], "softmax weight %d moved with a shift: %.17g %.17g", s, w2[s], w[s]);
        }
        ck_assert_msg(fabs(sum - G) <= 1e-14, "group %d sums to %.17g", g, sum);
    }
    /* a group of equal rewards: every weight exactly 1 */
    const float eq[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_SOFTMAX, 1.0, 4, 4, eq, w), FR_OK);
    for (int j = 0; j < 4; j++) ck_assert(w[j] == 1.0);
    /* errors */
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_SOFTMAX, 1.0, 6, 4, r, w), FR_ERR_ARG);
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_EXP, 0.0, 4, 4, r, w), FR_ERR_ARG);
    ck_assert_int_eq(fr_rwr_weights((fr_rwr_weighting)9, 1.0, 4, 4, r, w), FR_ERR_ARG);
    const float bad[2] = {0.0f, NAN};
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_EXP, 1.0, 2, 1, bad, w), FR_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "sample 1"));
    const float big[1] = {800.0f};
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_EXP, 1.0, 1, 1, big, w), FR_ERR_NUMERIC);
}
END_TEST

enum { NR = 6, DD = 5 };

static void make_rows(float *v, float *target, uint32_t seed)
{
    float a[NR * DD];
    fr_rng_fill_normal(target, NR * DD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(a, NR * DD, seed, FR_RNG_TEST, 1, 0, 0);
    for (int j = 0; j < NR * DD; j++) v[j] = target[j] + 0.5f * a[j];
}

/* L = Σ w e / R against a direct double evaluation; dL/dv = gout·w·(2/(R·D))·(v − target). */
START_TEST(test_rows)
{
    fr_backend *be = REF;
    float v[NR * DD], target[NR * DD], grad[NR * DD];
    double w[NR], e[NR];
    make_rows(v, target, 3);
    for (int r = 0; r < NR; r++) w[r] = 0.25 + 0.5 * r;
    fr_rwr_stats st;
    const double gout = 0.5;
    ck_assert_int_eq(fr_rwr_rows(be, NR, DD, w, v, target, gout, grad, e, &st), FR_OK);
    double L = 0.0, em = 0.0;
    for (int r = 0; r < NR; r++) {
        double s = 0.0;
        for (int i = 0; i < DD; i++) {
            const double d = (double)v[r * DD + i] - target[r * DD + i];
            s += d * d;
        }
        ck_assert_msg(fabs(e[r] - s / DD) <= 1e-15 * s, "row %d: e %.17g, want %.17g", r, e[r], s / DD);
        L += w[r] * s / DD / NR;
        em += s / DD / NR;
        const float sc = (float)(gout * w[r] * (2.0 / (NR * DD)));
        for (int i = 0; i < DD; i++) {
            const float want = sc * (v[r * DD + i] - target[r * DD + i]);
            ck_assert_msg(grad[r * DD + i] == want, "grad[%d,%d] %.9g, want %.9g", r, i, (double)grad[r * DD + i], (double)want);
        }
    }
    ck_assert_msg(fabs(st.loss - L) <= 1e-14 * L, "loss %.17g, direct %.17g", st.loss, L);
    ck_assert_msg(fabs(st.e_mean - em) <= 1e-14 * em, "e_mean %.17g, direct %.17g", st.e_mean, em);
    ck_assert_int_eq(fr_rwr_rows(be, 0, DD, w, v, target, gout, grad, e, &st), FR_ERR_ARG);
    ck_assert_int_eq(fr_rwr_rows(be, NR, DD, w, v, target, NAN, grad, e, &st), FR_ERR_ARG);
}
END_TEST

/* The check (flow-rwr.md §3): with every weight 1 and gout 1 the gradient is pretraining's
 * flow-matching gradient (fr_fm_loss without row scales) bit for bit, and L its loss to float64
 * rounding. */
START_TEST(test_unit_weights_are_fm)
{
    fr_backend *be = REF;
    float v[NR * DD], target[NR * DD], g1[NR * DD], g2[NR * DD], fl;
    double w[NR];
    make_rows(v, target, 11);
    for (int r = 0; r < NR; r++) w[r] = 1.0;
    fr_rwr_stats st;
    ck_assert_int_eq(fr_rwr_rows(be, NR, DD, w, v, target, 1.0, g1, NULL, &st), FR_OK);
    ck_assert_int_eq(fr_fm_loss(be, NR, DD, v, target, NULL, &fl, g2), FR_OK);
    ck_assert_msg(memcmp(g1, g2, sizeof g1) == 0, "unit-weight RWR gradient differs from fm_loss's");
    ck_assert_msg(fabs(st.loss - fl) <= 1e-6 * fl, "loss %.9g, fm_loss %.9g", st.loss, (double)fl);
}
END_TEST

typedef struct {
    float rew[64];
    double w[64];
    int64_t n_rew, n_w;
    int steps;
} w_tap;

static fr_status tap_w(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    w_tap *c = user;
    if (step != 1) return FR_OK;
    if (strcmp(name, "rewards") == 0 && fr_tensor_numel(t) <= 64) {
        c->n_rew = fr_tensor_numel(t);
        memcpy(c->rew, t->data, (size_t)c->n_rew * sizeof(float));
    }
    if (strcmp(name, "rwr_w") == 0 && fr_tensor_numel(t) <= 64) {
        c->n_w = fr_tensor_numel(t);
        memcpy(c->w, t->data, (size_t)c->n_w * sizeof(double));
    }
    return FR_OK;
}

/* A run's recorded weights are fr_rwr_weights of its recorded rewards (exp, τ 0.5, dense
 * halfplane reward), bit for bit. */
START_TEST(test_run_weights)
{
    const fr_algo *a;
    ck_assert_int_eq(fr_algo_find("flow-rwr", &a), FR_OK);
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, "rwrw", 1);
    snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
    for (int i = 0; i < a->n_rows; i++) {
        if (strcmp(a->rows[i].key, "weighting") == 0) ck_assert_int_eq(fr_opt_set(&a->rows[i], o.ao, "exp", "test"), FR_OK);
        if (strcmp(a->rows[i].key, "temperature") == 0)
            ck_assert_int_eq(fr_opt_set(&a->rows[i], o.ao, "0.5", "test"), FR_OK);
    }
    w_tap c;
    memset(&c, 0, sizeof c);
    fr_run_env env = {REF, NULL, tap_w, &c};
    fr_run_result res;
    ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s", fr_last_error());
    ck_assert(c.n_rew > 0 && c.n_w == c.n_rew);
    double want[64];
    ck_assert_int_eq(fr_rwr_weights(FR_RWR_EXP, 0.5, c.n_rew, o.ro.c.group, c.rew, want), FR_OK);
    ck_assert(memcmp(want, c.w, (size_t)c.n_w * sizeof(double)) == 0);
    fr_rt_opts_free(&o);
}
END_TEST

Suite *suite_rwr(void)
{
    Suite *s = suite_create("rwr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_weights);
    tcase_add_test(tc, test_rows);
    tcase_add_test(tc, test_unit_weights_are_fm);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_run_weights);
    suite_add_tcase(s, tr);
    return s;
}
