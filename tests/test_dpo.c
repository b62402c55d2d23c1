/* Diffusion-DPO and Flow-DPO (core/pair_dpo.c, core/algo/dpo*.c, flowrl/pair_dpo.h;
 * docs/algorithms/dpo.md): the checks at θ = ref of spec/objectives.md §15 and spec/more.md §7.1
 * (every pair's term is softplus(0) as flowrl computes it, bit for bit; the batch loss within
 * 1 ulp of log 2; ∇L = (β/4)(∇e_θ^w − ∇e_θ^l)), the loss against a direct evaluation, the
 * gradient against finite differences in double, flowrl's float64 softplus, Flow-DPO's
 * best-vs-worst labelling and its tie rule, the checks at θ = ref as whole runs (every z of
 * the first micro-batch is zero), the errors of --prefs, and Flow-DPO trained from a
 * preference file (resume, ref = opt). The generic run properties are tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/algo/dpo.h"
#include "flowrl/pair_dpo.h"
#include "flowrl/philox.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

static int64_t ord64(double x)
{
    int64_t i;
    memcpy(&i, &x, sizeof i);
    return i < 0 ? INT64_MIN - i : i;
}
static int64_t ulps64(double a, double b)
{
    int64_t d = ord64(a) - ord64(b);
    return d < 0 ? -d : d;
}

/* ---- float64 softplus ----------------------------------------------------------------------- */

START_TEST(test_softplus)
{
    ck_assert_msg(ulps64(fr_pair_dpo_softplus(0.0), M_LN2) <= 1, "softplus(0) = %.17g, log 2 = %.17g",
                  fr_pair_dpo_softplus(0.0), M_LN2);
    ck_assert(fr_pair_dpo_softplus(0.0) == fr_pair_dpo_softplus(-0.0));
    ck_assert(fr_pair_dpo_sigmoid(0.0) == 0.5 && fr_pair_dpo_sigmoid(-0.0) == 0.5);
    /* against libm's log1p(exp(x)) (x <= 0) and x + log1p(exp(−x)): a few ulp, also where
     * softplus is ~e^x (x = −40) and where it is ~x (x = 40) */
    int64_t worst = 0;
    for (int i = -400; i <= 400; i++) {
        const double x = i / 10.0 + 0.0123;
        const double want = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
        const int64_t u = ulps64(fr_pair_dpo_softplus(x), want);
        worst = u > worst ? u : worst;
        ck_assert_msg(u <= 8, "softplus(%g) = %.17g, libm %.17g (%lld ulp)", x, fr_pair_dpo_softplus(x), want, (long long)u);
        ck_assert_msg(fabs(fr_pair_dpo_sigmoid(x) - 1.0 / (1.0 + exp(-x))) <= 4e-16, "sigmoid(%g)", x);
    }
    ck_assert(worst <= 8);
}
END_TEST

/* ---- the loss ---------------------------------------------------------------------------------- */

enum { NP = 5, DD = 7, NR = 2 * NP };

static void rand_d(double *x, int n, uint32_t c0, double lo, double hi)
{
    float u[64];
    fr_rng_fill_uniform(u, n, 13, FR_RNG_TEST, c0, 0, 0);
    for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * (double)u[i];
}

/* At θ = ref (e = e_ref bit for bit) every z is zero, every term is softplus(0) bit for bit,
 * the loss is within 1 ulp of it, and the coefficients are ±gout·β/4/n exactly. */
START_TEST(test_at_ref_softplus0)
{
    double e[NR];
    rand_d(e, NR, 1, 0.01, 2.0);
    const double sp0 = fr_pair_dpo_softplus(0.0);
    for (int form = 0; form < 2; form++)
        for (int n = 1; n <= NP; n++) {
            double ee[NR];
            for (int i = 0; i < n; i++) {
                ee[i] = e[i];
                ee[n + i] = e[NP + i];
            }
            double z[NP], term[NP], coef[NR];
            fr_pair_dpo_stats st;
            const double beta = form ? 100.0 : 5000.0, gout = 0.25;
            ck_assert_int_eq(fr_pair_dpo_loss(n, beta, (fr_pair_dpo_form)form, ee, ee, gout, z, term, coef, &st), FR_OK);
            for (int i = 0; i < n; i++) {
                ck_assert_msg(z[i] == 0.0, "form %d pair %d: z = %g", form, i, z[i]);
                ck_assert_msg(memcmp(&term[i], &sp0, sizeof sp0) == 0, "form %d pair %d: term %.17g, softplus(0) %.17g",
                              form, i, term[i], sp0);
                const double c = (gout * (0.5 * beta) * 0.5) / (double)n;
                ck_assert_msg(coef[i] == c && coef[n + i] == -c, "form %d pair %d: coef %.17g / %.17g, want ±%.17g", form,
                              i, coef[i], coef[n + i], c);
            }
            ck_assert_msg(ulps64(st.loss, sp0) <= 1, "form %d n %d: loss %.17g, softplus(0) %.17g", form, n, st.loss, sp0);
            ck_assert(st.acc == 0.0 && st.z_mean == 0.0);
        }
}
END_TEST

/* Off the reference point: z, the terms and the coefficients against a direct evaluation; the
 * two forms agree to rounding. */
START_TEST(test_loss_direct)
{
    double e[NR], er[NR];
    rand_d(e, NR, 2, 0.1, 0.3);
    rand_d(er, NR, 3, 0.1, 0.3);
    const double beta = 40.0, gout = 0.5;
    double z[2][NP], term[NP], coef[NR];
    fr_pair_dpo_stats st;
    for (int form = 0; form < 2; form++) {
        ck_assert_int_eq(fr_pair_dpo_loss(NP, beta, (fr_pair_dpo_form)form, e, er, gout, z[form], term, coef, &st), FR_OK);
        double L = 0.0;
        for (int i = 0; i < NP; i++) {
            const double want = -0.5 * beta * ((e[i] - e[NP + i]) - (er[i] - er[NP + i]));
            ck_assert_msg(fabs(z[form][i] - want) <= 1e-12 * (1.0 + fabs(want)), "form %d z[%d] %.17g, want %.17g", form, i,
                          z[form][i], want);
            const double t = log1p(exp(-want));
            ck_assert_msg(fabs(term[i] - t) <= 1e-12, "term[%d] %.17g, want %.17g", i, term[i], t);
            L += t / NP;
            const double c = gout * (beta / 2.0) / (1.0 + exp(want)) / NP;
            ck_assert_msg(fabs(coef[i] - c) <= 1e-12 && coef[NP + i] == -coef[i], "coef[%d] %.17g, want %.17g", i, coef[i], c);
        }
        ck_assert_msg(fabs(st.loss - L) <= 1e-12, "loss %.17g, want %.17g", st.loss, L);
    }
    for (int i = 0; i < NP; i++) ck_assert(fabs(z[0][i] - z[1][i]) <= 1e-12);
    /* bad arguments: one line naming the function */
    ck_assert_int_eq(fr_pair_dpo_loss(0, beta, FR_PAIR_DPO_MODEL_DIFF, e, er, 1.0, NULL, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_pair_dpo_loss(NP, -1.0, FR_PAIR_DPO_MODEL_DIFF, e, er, 1.0, NULL, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_pair_dpo_loss(NP, beta, (fr_pair_dpo_form)7, e, er, 1.0, NULL, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "fr_pair_dpo_loss"));
}
END_TEST

/* ---- from model outputs: errors and gradient --------------------------------------------------- */

typedef struct {
    float out[NR * DD], ref[NR * DD], target[NR * DD];
} rows_in;

static void make_rows(rows_in *m, uint32_t seed, float spread)
{
    float a[NR * DD], b[NR * DD];
    fr_rng_fill_normal(m->target, NR * DD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(a, NR * DD, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(b, NR * DD, seed, FR_RNG_TEST, 2, 0, 0);
    for (int j = 0; j < NR * DD; j++) {
        m->out[j] = m->target[j] + 0.4f * a[j];
        m->ref[j] = m->out[j] + spread * b[j];
    }
}

/* L(out) in double, directly from the definition (form MODEL_DIFF) */
static double loss_direct(const rows_in *m, const double *out, double beta)
{
    double e[NR], er[NR];
    for (int r = 0; r < NR; r++) {
        double s = 0.0, sr = 0.0;
        for (int i = 0; i < DD; i++) {
            const double d = out[r * DD + i] - m->target[r * DD + i], dr = (double)m->ref[r * DD + i] - m->target[r * DD + i];
            s += d * d;
            sr += dr * dr;
        }
        e[r] = s / DD;
        er[r] = sr / DD;
    }
    double L = 0.0;
    for (int i = 0; i < NP; i++) {
        const double z = -0.5 * beta * ((e[i] - e[NP + i]) - (er[i] - er[NP + i]));
        L += log1p(exp(-z)) / NP;
    }
    return L;
}

/* The errors equal the float64 row means; at θ = ref the gradient is
 * (β/4)/n·(∇e_w − ∇e_l), ∇e = (2/D)(out − target) (spec/more.md §7.1); off it, the gradient
 * against central finite differences of the double-precision loss. */
START_TEST(test_rows_gradient)
{
    fr_backend *be = REF;
    rows_in m;
    const double beta = 30.0, gout = 1.0;
    float grad[NR * DD];
    double e[NR], er[NR], z[NP];
    fr_pair_dpo_stats st;
    /* at θ = ref */
    make_rows(&m, 5, 0.0f);
    ck_assert_int_eq(fr_pair_dpo_rows(be, NP, DD, beta, FR_PAIR_DPO_REF_DIFF, m.out, m.ref, m.target, gout, grad, e, er, z,
                                      &st),
                     FR_OK);
    ck_assert(memcmp(e, er, sizeof e) == 0);
    for (int r = 0; r < NR; r++) {
        double s = 0.0;
        for (int i = 0; i < DD; i++) {
            const double d = (double)m.out[r * DD + i] - (double)m.target[r * DD + i];
            s += d * d;
        }
        ck_assert_msg(fabs(e[r] - s / DD) <= 1e-15 * (s / DD), "row %d: e %.17g, want %.17g", r, e[r], s / DD);
        const double sign = r < NP ? 1.0 : -1.0;
        for (int i = 0; i < DD; i++) {
            const double want = sign * (beta / 4.0) / NP * (2.0 / DD) * ((double)m.out[r * DD + i] - m.target[r * DD + i]);
            /* float32 row scale and a float32 product: a few float ulp */
            ck_assert_msg(fabs(grad[r * DD + i] - want) <= 4e-7 * fabs(want) + 1e-12, "row %d elem %d: grad %.9g, want %.9g",
                          r, i, (double)grad[r * DD + i], want);
        }
    }
    ck_assert(ulps64(st.loss, fr_pair_dpo_softplus(0.0)) <= 1);
    /* off it: finite differences of the double loss */
    make_rows(&m, 6, 0.1f);
    ck_assert_int_eq(fr_pair_dpo_rows(be, NP, DD, beta, FR_PAIR_DPO_MODEL_DIFF, m.out, m.ref, m.target, gout, grad, e, er,
                                      z, &st),
                     FR_OK);
    double out[NR * DD];
    for (int j = 0; j < NR * DD; j++) out[j] = m.out[j];
    ck_assert_msg(fabs(st.loss - loss_direct(&m, out, beta)) <= 1e-12, "loss %.17g, direct %.17g", st.loss,
                  loss_direct(&m, out, beta));
    double worst = 0.0;
    for (int j = 0; j < NR * DD; j++) {
        const double h = 1e-5, x = out[j];
        out[j] = x + h;
        const double lp = loss_direct(&m, out, beta);
        out[j] = x - h;
        const double lm = loss_direct(&m, out, beta);
        out[j] = x;
        const double fd = (lp - lm) / (2 * h), err = fabs(grad[j] - fd) / (fabs(fd) + 1e-3);
        worst = err > worst ? err : worst;
        /* the analytic gradient goes through a float32 row scale and product: 1e-5 relative */
        ck_assert_msg(err <= 1e-5, "element %d: grad %.9g, finite difference %.9g", j, (double)grad[j], fd);
    }
    ck_assert(worst <= 1e-5);
}
END_TEST

/* ---- Flow-DPO's labelling ------------------------------------------------------------------------ */

START_TEST(test_label_dpo_tracker)
{
    /* prompts 5, 2, 5, 2 (pooled duplicates), 9; rewards with a tie at the maximum of prompt 2
     * (the first index wins), an all-equal prompt 9 (index 1 wins, index 0 loses) */
    const int pid[] = {5, 5, 2, 2, 5, 2, 2, 9, 9, 9};
    const float rw[] = {0.3f, 0.1f, 0.7f, 0.2f, 0.9f, 0.7f, 0.1f, 0.5f, 0.5f, 0.5f};
    int64_t w[10], l[10], n;
    float label[10];
    ck_assert_int_eq(fr_pair_dpo_label(10, pid, rw, w, l, label, &n), FR_OK);
    ck_assert_int_eq(n, 3);
    /* in increasing prompt id: 2, 5, 9 */
    ck_assert(w[0] == 2 && l[0] == 6);
    ck_assert(w[1] == 4 && l[1] == 1);
    ck_assert(w[2] == 8 && l[2] == 7);
    const float want[] = {0, -1, 1, 0, 1, 0, -1, -1, 1, 0};
    for (int k = 0; k < 10; k++) ck_assert_msg(label[k] == want[k], "label[%d] %g, want %g", k, label[k], want[k]);
    /* one sample of a prompt gives no pair */
    const int p1[] = {3, 4, 4};
    const float r1[] = {1.0f, 0.0f, 1.0f};
    ck_assert_int_eq(fr_pair_dpo_label(3, p1, r1, w, l, NULL, &n), FR_OK);
    ck_assert(n == 1 && w[0] == 2 && l[0] == 1);
}
END_TEST

/* ---- runs ------------------------------------------------------------------------------------------ */

typedef struct {
    int n_z, bad;
    double first_bad;
    int n_loss, bad_loss;
} z_tap;

/* every b<q>.k<k>.z of audit step 1 before its first optimiser step: micro-batch 0 */
static fr_status tap_z(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    z_tap *c = user;
    if (step != 1 || strncmp(name, "b0.k", 4) != 0) return FR_OK;
    size_t l = strlen(name);
    if (l > 2 && strcmp(name + l - 2, ".z") == 0) {
        ck_assert(t->dtype == FR_F64);
        const double *z = t->data;
        for (int64_t i = 0; i < fr_tensor_numel(t); i++, c->n_z++)
            if (z[i] != 0.0 && !c->bad++) c->first_bad = z[i];
    }
    if (l > 5 && strcmp(name + l - 5, ".loss") == 0) {
        const float want = (float)fr_pair_dpo_softplus(0.0);
        c->n_loss++;
        c->bad_loss += memcmp(t->data, &want, sizeof want) != 0;
    }
    return FR_OK;
}

/* The check as runs: the first micro-batch of epoch 1 comes before any optimiser step, so
 * θ = ref, every z is exactly zero and its loss is (float)softplus(0), for both algorithms
 * (Flow-DPO online and from a file) on ref and on cuda-emu. */
START_TEST(test_run_at_ref)
{
    const fr_algo *algos[] = {&fr_algo_diffusion_dpo, &fr_algo_flow_dpo, &fr_algo_flow_dpo};
    const char *bks[] = {"ref", "cuda-emu"};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            char run[32];
            snprintf(run, sizeof run, "atref%d%d", a, b);
            fr_rt_opts o;
            fr_rt_opts_init(&o, algos[a], run, 1);
            snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
            if (a == 2) {
                char p[400];
                fr_rt_opts q;
                fr_rt_opts_init(&q, &fr_algo_diffusion_dpo, "unused", 1); /* writes the gmm2d file */
                snprintf(((fr_dpo_opts *)o.ao)->prefs, sizeof ((fr_dpo_opts *)o.ao)->prefs, "%s",
                         fr_rt_path(p, sizeof p, "prefs-gmm2d.safetensors"));
                fr_rt_opts_free(&q);
            }
            fr_backend be;
            if (!fr_test_backend_try(&be, "dpo", bks[b], 1)) continue;
            z_tap c = {0, 0, 0.0, 0, 0};
            fr_run_env env = {&be, NULL, tap_z, &c};
            fr_run_result res;
            ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s on %s: %s", algos[a]->name, bks[b],
                          fr_last_error());
            ck_assert_msg(c.n_z > 0 && c.n_loss > 0, "%s on %s: no z recorded", algos[a]->name, bks[b]);
            ck_assert_msg(c.bad == 0, "%s on %s: %d z differ from 0 (first %.17g)", algos[a]->name, bks[b], c.bad,
                          c.first_bad);
            ck_assert_msg(c.bad_loss == 0, "%s on %s: a first-batch loss is not softplus(0)", algos[a]->name, bks[b]);
            fr_rt_opts_free(&o);
        }
}
END_TEST

/* --prefs: missing (diffusion-dpo), of another task, not a file; an epsilon algorithm on a
 * velocity base: one line each, exit status 2 or 1, nothing left behind. */
START_TEST(test_prefs_errors)
{
    char out[8192], p[FR_OPT_PATH_MAX], q[400];
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_diffusion_dpo, "unused", 1);
    fr_rt_set_prefs(&o, "shapes");
    snprintf(p, sizeof p, "%s", ((fr_dpo_opts *)o.ao)->prefs);
    fr_rt_opts_free(&o);
    struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"--algo diffusion-dpo --task gmm2d --base %s --out %s/bad", "--prefs FILE is required"},
        {"--algo diffusion-dpo --task gmm2d --base %s --out %s/bad --prefs %s", "shapes"},
        {"--algo diffusion-dpo --task gmm2d --base %s --out %s/bad --prefs %s.missing", "--prefs"},
        {"--algo flow-dpo --task gmm2d --base %s --out %s/bad --prefs %s", "shapes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048];
        const char *base = strstr(cases[i].args, "flow-dpo") ? fr_rt_base : fr_rt_base_eps;
        snprintf(cmd, sizeof cmd, cases[i].args, base, fr_rt_dir, p);
        int rc = fr_rt_cli(out, sizeof out, "train %s", cmd);
        ck_assert_msg(rc != 0, "case %zu: exit 0:\n%s", i, out);
        /* the run's header lines may come first; the error is the one last line */
        const char *last = out;
        int errs = 0;
        for (const char *c = out; *c; c++)
            if (*c == '\n' && c[1]) last = c + 1;
        for (const char *c = strstr(out, "flowrl train:"); c; c = strstr(c + 1, "flowrl train:")) errs++;
        ck_assert_msg(errs == 1 && strncmp(last, "flowrl train:", 13) == 0 && strstr(last, cases[i].want),
                      "case %zu: want one last line naming '%s':\n%s", i, cases[i].want, out);
        /* nothing that blocks a retry (the loop may leave the locked empty directory) */
        ck_assert_msg(access(fr_rt_path(q, sizeof q, "bad/config.json"), F_OK) != 0, "case %zu left %s", i, q);
    }
    int rc = fr_rt_cli(out, sizeof out, "train --algo diffusion-dpo --task gmm2d --base %s --out %s/bad --prefs %s", fr_rt_base,
                       fr_rt_dir, p);
    ck_assert_msg(rc != 0 && strstr(out, "epsilon"), "a velocity base:\n%s", out);
}
END_TEST

/* Flow-DPO from a preference file: resumed = uninterrupted, opt (2 threads) = ref. */
START_TEST(test_flow_dpo_prefs_resume)
{
    char p[400];
    fr_rt_opts q;
    fr_rt_opts_init(&q, &fr_algo_diffusion_dpo, "unused", 1);
    fr_rt_path(p, sizeof p, "prefs-gmm2d.safetensors");
    fr_rt_opts_free(&q);
    fr_rt_opts w, part;
    fr_rt_opts_init(&w, &fr_algo_flow_dpo, "fwhole", 3);
    fr_rt_opts_init(&part, &fr_algo_flow_dpo, "fpart", 1);
    snprintf(((fr_dpo_opts *)w.ao)->prefs, FR_OPT_PATH_MAX, "%s", p);
    snprintf(((fr_dpo_opts *)part.ao)->prefs, FR_OPT_PATH_MAX, "%s", p);
    w.ro.c.group = 4; /* 16 samples: 8 pairs in 2 batches */
    part.ro.c.group = 4;
    ck_assert_msg(fr_rt_run(&w, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_rt_run(&part, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_run_result res;
    ck_assert_msg(fr_rt_resume("fpart", 3, 0, "opt", 2, &res) == FR_OK, "%s", fr_last_error());
    fr_rt_assert_same_records("fwhole", "fpart", 3);
    char *rec = fr_rt_records("fwhole");
    ck_assert_ptr_nonnull(strstr(rec, " pairs "));
    ck_assert_ptr_nonnull(strstr(rec, " b1.k1.z "));
    free(rec);
    fr_rt_opts_free(&w);
    fr_rt_opts_free(&part);
}
END_TEST

Suite *suite_dpo(void)
{
    Suite *s = suite_create("dpo");
    TCase *tc = tcase_create("math");
    tcase_add_test(tc, test_softplus);
    tcase_add_test(tc, test_at_ref_softplus0);
    tcase_add_test(tc, test_loss_direct);
    tcase_add_test(tc, test_rows_gradient);
    tcase_add_test(tc, test_label_dpo_tracker);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("runs");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_run_at_ref);
    tcase_add_test(tr, test_prefs_errors);
    tcase_add_test(tr, test_flow_dpo_prefs_resume);
    suite_add_tcase(s, tr);
    return s;
}
