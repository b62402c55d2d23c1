/* SmPO (core/smpo.c, core/algo/smpo.c, flowrl/smpo.h; docs/algorithms/smpo.md): the spec's example
 * (spec/more.md §4: s_w 0.25, s_l 0.20 on PickScore's range give p = 0.574480, (2p − 1)·10 =
 * 1.489610), the check at θ = ref (L = log 2, ∇L = (10β(2p − 1)/4)·(∇e_w − ∇e_l), no gradient
 * where p = 1/2), the loss against a direct evaluation and the gradient against central finite
 * differences in double, the inverse grid and the inverse step against diffusers' two-stage
 * formula, and the check as runs on ref and cuda-emu (the first micro-batch's z are 0, its loss
 * softplus(0), its labels those of the file's scores). The generic run properties are
 * tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/philox.h"
#include "flowrl/prefs.h"
#include "flowrl/smpo.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

extern const fr_algo fr_algo_smpo;

enum { NP = 5, DD = 7, NR = 2 * NP };

/* The spec's example: PickScore's range of the public code (`min_val`, `max_val`). */
START_TEST(test_prob_example)
{
    const double lo = 0.11543526500463486, hi = 0.28201571106910706;
    ck_assert_msg(fabs((0.25 - lo) / (hi - lo) - 0.807806) < 5e-7 && fabs((0.20 - lo) / (hi - lo) - 0.507651) < 5e-7,
                  "normalised scores");
    const double p = fr_smpo_prob(0.25, 0.20, lo, hi);
    ck_assert_msg(fabs(p - 0.574480) < 5e-7, "p = %.9f, spec 0.574480", p);
    ck_assert_msg(fabs((2.0 * p - 1.0) * 10.0 - 1.489610) < 5e-6, "(2p - 1)*10 = %.9f, spec 1.489610", (2 * p - 1) * 10);
    /* exp(a)/(exp(a) + exp(b)), the public form */
    const double a = (0.25 - lo) / (hi - lo), b = (0.20 - lo) / (hi - lo);
    ck_assert(fabs(p - exp(a) / (exp(a) + exp(b))) < 1e-15);
    ck_assert(fr_smpo_prob(0.3, 0.3, 0.0, 1.0) == 0.5); /* a tie: σ(0) */
}
END_TEST

typedef struct {
    float out[NR * DD], ref[NR * DD], target[NR * DD];
    double p[NP];
} rows_in;

static void make_rows(rows_in *m, uint32_t c0, float off)
{
    float u[NR * DD];
    fr_rng_fill_uniform(m->target, NR * DD, 17, FR_RNG_TEST, c0, 0, 0);
    fr_rng_fill_uniform(u, NR * DD, 17, FR_RNG_TEST, c0, 1, 0);
    for (int j = 0; j < NR * DD; j++) {
        m->ref[j] = m->target[j] + 0.3f * (u[j] - 0.5f);
        m->out[j] = m->ref[j] + off * (u[(j * 7) % (NR * DD)] - 0.5f);
    }
    const double p[NP] = {0.5, 0.574480, 0.62, 0.7310585786300049, 0.51};
    memcpy(m->p, p, sizeof p);
}

/* L from outputs in double, the direct formula: −mean log σ(z), z = −½β(2p − 1)10·Δ */
static double loss_direct(const rows_in *m, const double *out, double beta)
{
    double e[NR], er[NR], s = 0.0;
    for (int r = 0; r < NR; r++) {
        double a = 0.0, b = 0.0;
        for (int i = 0; i < DD; i++) {
            const double d = out[r * DD + i] - m->target[r * DD + i], g = (double)m->ref[r * DD + i] - m->target[r * DD + i];
            a += d * d;
            b += g * g;
        }
        e[r] = a / DD;
        er[r] = b / DD;
    }
    for (int i = 0; i < NP; i++) {
        const double z = -0.5 * beta * (2 * m->p[i] - 1) * 10 * ((e[i] - e[NP + i]) - (er[i] - er[NP + i]));
        s += log1p(exp(-z));
    }
    return s / NP;
}

/* At θ = ref: every z is ±0, the loss is softplus(0) within 1 ulp of log 2, the coefficient of
 * pair i is gout·(10β(2p_i − 1)/4)/n (0 for p = 1/2), and the gradient is its (2/D)(out − ε̃). */
START_TEST(test_at_ref)
{
    rows_in m;
    make_rows(&m, 1, 0.0f);
    const double beta = 2000.0, gout = 0.5;
    float grad[NR * DD];
    double e[NR], er[NR], z[NP];
    fr_pair_dpo_stats st;
    ck_assert_int_eq(fr_smpo_rows(REF, NP, DD, beta, m.p, m.out, m.out, m.target, gout, grad, e, er, z, &st), FR_OK);
    for (int i = 0; i < NP; i++) ck_assert_msg(z[i] == 0.0, "z[%d] = %g", i, z[i]);
    ck_assert_msg(fabs(st.loss - M_LN2) <= 2.3e-16, "loss %.17g, log 2 %.17g", st.loss, M_LN2);
    ck_assert(fabs(st.loss - fr_pair_dpo_softplus(0.0)) <= 1.2e-16); /* the 8-lane mean of n equal terms: 1 ulp */
    double coef[NR];
    ck_assert_int_eq(fr_smpo_loss(NP, beta, m.p, e, er, gout, NULL, coef, NULL), FR_OK);
    for (int i = 0; i < NP; i++) {
        const double want = gout * (10.0 * beta * (2.0 * m.p[i] - 1.0) / 4.0) / NP;
        ck_assert_msg(fabs(coef[i] - want) <= 1e-15 * fabs(want) && coef[NP + i] == -coef[i], "pair %d: coef %.17g, want %.17g",
                      i, coef[i], want);
        for (int r = i; r < NR; r += NP)
            for (int k = 0; k < DD; k++) {
                const double g = coef[r] * (2.0 / DD) * ((double)m.out[r * DD + k] - m.target[r * DD + k]);
                ck_assert_msg(fabs(grad[r * DD + k] - g) <= 4e-7 * fabs(g) + 1e-12, "row %d elem %d: grad %.9g, want %.9g",
                              r, k, (double)grad[r * DD + k], g);
            }
    }
    ck_assert(coef[0] == 0.0 && coef[NP] == 0.0); /* p = 1/2: equal scores give no gradient */
}
END_TEST

/* Off θ = ref: the loss against the direct formula, the gradient against central differences. */
START_TEST(test_loss_and_gradient)
{
    rows_in m;
    make_rows(&m, 2, 0.2f);
    const double beta = 3.0;
    float grad[NR * DD];
    fr_pair_dpo_stats st;
    ck_assert_int_eq(fr_smpo_rows(REF, NP, DD, beta, m.p, m.out, m.ref, m.target, 1.0, grad, NULL, NULL, NULL, &st), FR_OK);
    double out[NR * DD];
    for (int j = 0; j < NR * DD; j++) out[j] = m.out[j];
    ck_assert_msg(fabs(st.loss - loss_direct(&m, out, beta)) <= 1e-12, "loss %.17g, direct %.17g", st.loss,
                  loss_direct(&m, out, beta));
    for (int j = 0; j < NR * DD; j++) {
        const double h = 1e-5, x = out[j];
        out[j] = x + h;
        const double lp = loss_direct(&m, out, beta);
        out[j] = x - h;
        const double lm = loss_direct(&m, out, beta);
        out[j] = x;
        const double fd = (lp - lm) / (2 * h);
        /* through a float32 row scale and product: 1e-5 relative */
        ck_assert_msg(fabs(grad[j] - fd) <= 1e-5 * (fabs(fd) + 1e-3), "element %d: grad %.9g, finite difference %.9g", j,
                      (double)grad[j], fd);
    }
    /* bad input: one line naming the function */
    double e[NR] = {0}, bad_p[NP] = {0.5, 0.5, 1.5, 0.5, 0.5};
    ck_assert_int_eq(fr_smpo_loss(NP, beta, bad_p, e, e, 1.0, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "fr_smpo_loss"));
    ck_assert_int_eq(fr_smpo_loss(0, beta, m.p, e, e, 1.0, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_smpo_loss(NP, -1.0, m.p, e, e, 1.0, NULL, NULL, NULL), FR_ERR_ARG);
}
END_TEST

/* The inverse grid of set_timesteps(5 | 10) (leading, offset 1) and the step against diffusers'
 * DDIMInverseScheduler.step in double: x̂0 = (x − √(1−ᾱ_from)ε)/√ᾱ_from, x' = √ᾱ_τ x̂0 + √(1−ᾱ_τ)ε. */
START_TEST(test_inverse_step)
{
    int64_t tau[10];
    ck_assert_int_eq(fr_smpo_inv_times(1000, 5, tau), FR_OK);
    const int64_t want5[5] = {1, 201, 401, 601, 801};
    ck_assert(memcmp(tau, want5, sizeof want5) == 0);
    ck_assert_int_eq(fr_smpo_inv_times(1000, 10, tau), FR_OK);
    ck_assert(tau[0] == 1 && tau[1] == 101 && tau[9] == 901);
    ck_assert_int_eq(fr_smpo_inv_times(1000, 0, tau), FR_ERR_ARG);
    ck_assert_int_eq(fr_smpo_inv_times(10, 10, tau), FR_ERR_ARG);
    /* SD's scaled-linear betas 0.00085 .. 0.012 */
    float ab[1000];
    double prod = 1.0;
    for (int i = 0; i < 1000; i++) {
        const double b = sqrt(0.00085) + (sqrt(0.012) - sqrt(0.00085)) * i / 999.0;
        prod *= 1.0 - b * b;
        ab[i] = (float)prod;
    }
    const int64_t taus[] = {1, 201, 801};
    for (size_t k = 0; k < sizeof taus / sizeof taus[0]; k++) {
        float A, B;
        fr_smpo_inv_coefs(ab, taus[k], 200, &A, &B);
        const int64_t from = taus[k] - 200;
        const double af = from >= 0 ? ab[from] : ab[0], at = ab[taus[k]];
        for (int j = 0; j < 5; j++) {
            const double x = 0.3 * j - 0.7, eps = 1.1 - 0.4 * j;
            const double x0 = (x - sqrt(1 - af) * eps) / sqrt(af), want = sqrt(at) * x0 + sqrt(1 - at) * eps;
            ck_assert_msg(fabs(A * x + B * eps - want) <= 1e-6 * (fabs(want) + 1), "tau %lld: %.9g, diffusers %.9g",
                          (long long)taus[k], A * x + B * eps, want);
        }
    }
}
END_TEST

/* ---- runs ------------------------------------------------------------------------------------ */

typedef struct {
    int n_z, bad, n_loss, bad_loss, n_p, n_eps;
    double p[64];
    int64_t pairs[64];
} at_ref_tap;

/* audit step 1: "pairs" and "p" of the epoch, then micro-batch 0 (before any optimiser step) */
static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    at_ref_tap *c = user;
    if (step != 1) return FR_OK;
    if (strcmp(name, "pairs") == 0 && fr_tensor_numel(t) <= 64)
        memcpy(c->pairs, t->data, (size_t)fr_tensor_numel(t) * sizeof(int64_t));
    if (strcmp(name, "p") == 0 && fr_tensor_numel(t) <= 64) {
        c->n_p = (int)fr_tensor_numel(t);
        memcpy(c->p, t->data, (size_t)c->n_p * sizeof(double));
    }
    if (strcmp(name, "b0.z") == 0)
        for (int64_t i = 0; i < fr_tensor_numel(t); i++, c->n_z++) c->bad += ((const double *)t->data)[i] != 0.0;
    if (strcmp(name, "b0.loss") == 0) {
        const float want = (float)fr_pair_dpo_softplus(0.0);
        c->n_loss++;
        c->bad_loss += memcmp(t->data, &want, sizeof want) != 0;
    }
    if (strcmp(name, "b0.eps_inv") == 0) {
        const float *x = t->data;
        for (int64_t i = 0; i < fr_tensor_numel(t); i++) c->n_eps += isfinite(x[i]) ? 1 : -1000;
    }
    return FR_OK;
}

START_TEST(test_run_at_ref)
{
    const char *bks[] = {"ref", "cuda-emu"};
    for (int b = 0; b < 2; b++) {
        char run[32];
        snprintf(run, sizeof run, "smpo-atref%d", b);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_smpo, run, 1);
        fr_backend be;
        if (!fr_test_backend_try(&be, "smpo", bks[b], 1)) {
            fr_rt_opts_free(&o);
            continue;
        }
        at_ref_tap c;
        memset(&c, 0, sizeof c);
        fr_run_env env = {&be, NULL, tap, &c};
        fr_run_result res;
        ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "smpo on %s: %s", bks[b], fr_last_error());
        ck_assert_msg(c.n_z > 0 && c.bad == 0, "smpo on %s: %d of %d first-batch z differ from 0", bks[b], c.bad, c.n_z);
        ck_assert_msg(c.n_loss == 1 && c.bad_loss == 0, "smpo on %s: the first-batch loss is not softplus(0)", bks[b]);
        ck_assert_msg(c.n_eps > 0, "smpo on %s: the inverted noise is not finite", bks[b]);
        /* the labels: the file's scores (fr_rt's synthetic file: r_w 1, r_l i/32) on their range [0, 1] */
        fr_prefs pf;
        char path[400];
        ck_assert_int_eq(fr_prefs_read(fr_rt_path(path, sizeof path, "prefs-gmm2d.safetensors"), NULL, &pf), FR_OK);
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < pf.N; i++) {
            lo = fmin(lo, fmin(pf.r_w[i], pf.r_l[i]));
            hi = fmax(hi, fmax(pf.r_w[i], pf.r_l[i]));
        }
        ck_assert(c.n_p > 0);
        for (int i = 0; i < c.n_p; i++) {
            const int64_t row = c.pairs[i];
            ck_assert_msg(c.p[i] == fr_smpo_prob(pf.r_w[row], pf.r_l[row], lo, hi) && c.p[i] > 0.5,
                          "pair %d (file row %lld): p %.17g", i, (long long)row, c.p[i]);
        }
        fr_prefs_free(&pf);
        fr_backend_close(&be);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_smpo(void)
{
    Suite *s = suite_create("smpo");
    TCase *tc = tcase_create("math");
    tcase_add_test(tc, test_prob_example);
    tcase_add_test(tc, test_at_ref);
    tcase_add_test(tc, test_loss_and_gradient);
    tcase_add_test(tc, test_inverse_step);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("runs");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_run_at_ref);
    suite_add_tcase(s, tr);
    return s;
}
