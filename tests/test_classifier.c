/* The shapes classifier (flowrl/classifier.h): its reward's gradient against central differences
 * of a double-precision forward; training is deterministic and `flowrl classifier train` writes
 * the library's weights; save/load round trip; the default classifier's agreement with the
 * detector on held-out images; `--reward classifier` through DRaFT on shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/classifier.h"
#include "flowrl/philox.h"
#include "flowrl/task.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static const fr_clf_config k_tiny = {96, 3, 16, 8, 1e-2f, 5};

/* log σ(z_p) in double from the float weights (the test's own forward, u = (x + 1)/2). */
static double logprob_f64(const fr_clf *m, int p, const double *x)
{
    double z = m->b2[p];
    for (int64_t j = 0; j < m->H; j++) {
        double a = m->b1[j];
        for (int64_t d = 0; d < m->D; d++) a += (double)m->w1[j * m->D + d] * ((x[d] + 1.0) * 0.5);
        z += (double)m->w2[p * m->H + j] * tanh(a);
    }
    return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
}

START_TEST(test_grad_fd)
{
    fr_clf m;
    ck_assert_msg(fr_clf_train(&k_tiny, &m) == FR_OK, "%s", fr_last_error());
    float x[FR_SHAPES_D], g[FR_SHAPES_D], s;
    double xd[FR_SHAPES_D];
    for (int p = 0; p < FR_SHAPES_N_PROMPTS; p += 23) {
        ck_assert(fr_shapes_sample(p, 9, 1, x) == FR_OK);
        for (int d = 0; d < FR_SHAPES_D; d++) x[d] += 0.3f * fr_rng_normal(9, 0, 0, (uint32_t)p, 0, (uint32_t)d);
        ck_assert(fr_clf_logprob(&m, p, x, &s, g) == FR_OK);
        for (int d = 0; d < FR_SHAPES_D; d++) xd[d] = x[d];
        const double s64 = logprob_f64(&m, p, xd);
        ck_assert_msg(fabs(s64 - (double)s) <= 1e-5 * (1.0 + fabs(s64)), "prompt %d: score %g, double %g", p, (double)s,
                      s64);
        double gmax = 0.0, emax = 0.0;
        for (int d = 0; d < FR_SHAPES_D; d++) {
            const double h = 1e-4, x0 = xd[d];
            xd[d] = x0 + h;
            const double up = logprob_f64(&m, p, xd);
            xd[d] = x0 - h;
            const double dn = logprob_f64(&m, p, xd);
            xd[d] = x0;
            const double fd = (up - dn) / (2.0 * h);
            gmax = fmax(gmax, fabs(fd));
            emax = fmax(emax, fabs(fd - (double)g[d]));
        }
        /* float32 sums of ~768 products against double: 1e-4 of the largest entry */
        ck_assert_msg(gmax > 0.0 && emax <= 1e-4 * gmax, "prompt %d: max |fd - grad| %g of max |fd| %g", p, emax, gmax);
    }
    /* a non-finite pixel is one line */
    x[7] = NAN;
    ck_assert_int_eq(fr_clf_logprob(&m, 0, x, &s, g), FR_ERR_NUMERIC);
    fr_clf_free(&m);
}
END_TEST

/* Two trainings of one config give the same bits; `flowrl classifier train` writes them; load
 * gives the same scores bit for bit. */
START_TEST(test_deterministic_cli_roundtrip)
{
    fr_clf a, b, c;
    ck_assert(fr_clf_train(&k_tiny, &a) == FR_OK);
    ck_assert(fr_clf_train(&k_tiny, &b) == FR_OK);
    const size_t bytes = (size_t)(a.H * a.D + a.H + a.K * a.H + a.K) * sizeof(float);
    ck_assert(memcmp(a.w1, b.w1, bytes) == 0);
    char out[4096], path[400];
    fr_rt_path(path, sizeof path, "clf.safetensors");
    int rc = fr_rt_cli(out, sizeof out, "classifier train --out %s --images 96 --epochs 3 --batch 16 --hidden 8 --lr 1e-2 "
                                        "--seed 5 --eval-images 64",
                       path);
    ck_assert_msg(rc == 0 && strstr(out, "agreement with the detector"), "%s", out);
    ck_assert_msg(fr_clf_load(path, &c) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(c.H, 8);
    ck_assert_msg(memcmp(a.w1, c.w1, bytes) == 0, "the CLI's weights differ from fr_clf_train's");
    rc = fr_rt_cli(out, sizeof out, "classifier eval %s --eval-images 64", path);
    ck_assert_msg(rc == 0 && strstr(out, "64 held-out images"), "%s", out);
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "classifier train --out %s --seed 1 --eval-seed 1", path), 2);
    fr_clf_free(&a);
    fr_clf_free(&b);
    fr_clf_free(&c);
}
END_TEST

/* The reward's classifier (the default config) against the detector on 512 held-out images
 * (seed 1): measured 98.26% of all (image, prompt) verdicts and 77.34% on the image's own prompt,
 * where always answering "no" scores about 97.4% and 56.2% (the detector passes 43.8% of the own
 * prompts). Training is deterministic, so the bars (97.5%, 75%) only guard against a change. */
START_TEST(test_builtin_agreement)
{
    const fr_clf *m;
    ck_assert_msg(fr_clf_builtin(&m) == FR_OK, "%s", fr_last_error());
    fr_clf_eval ev;
    ck_assert(fr_clf_evaluate(m, 1, 512, &ev) == FR_OK);
    printf("shapes classifier vs detector, 512 held-out images: %.2f%% of all verdicts, %.2f%% on own prompts "
           "(detector passes %.1f%%)\n",
           100.0 * ev.acc_all, 100.0 * ev.acc_own, 100.0 * ev.pos_rate_own);
    ck_assert_msg(ev.acc_all >= 0.975 && ev.acc_own >= 0.75, "agreement %g / %g", ev.acc_all, ev.acc_own);
    /* the task's reward "classifier" is this model's log-probability, with the detector's correct */
    const fr_task *t = &fr_task_shapes;
    int id;
    ck_assert(fr_task_reward_id(t, "classifier", &id) == FR_OK);
    float x[FR_SHAPES_D], s1, s2, g[FR_SHAPES_D];
    int ok;
    ck_assert(fr_shapes_sample(3, 4, 0, x) == FR_OK);
    ck_assert(t->reward(id, 3, x, &s1, &ok) == FR_OK);
    ck_assert(t->reward_grad(id, 3, x, &s2, g) == FR_OK);
    ck_assert(s1 == s2 && s1 <= 0.0f && ok == 1);
    ck_assert_int_eq(t->reward_grad(0, 3, x, &s2, g), FR_ERR_UNSUPPORTED);
}
END_TEST

/* DRaFT-K on shapes with --reward classifier through the CLI. */
START_TEST(test_draft_classifier_reward)
{
    char out[8192], base[400], run[400];
    fr_rt_small_shapes_base(base, sizeof base, FR_PRED_VELOCITY);
    const int rc = fr_rt_cli(out, sizeof out,
                             "train --algo draft --truncate 1 --task shapes --reward classifier --base %s --out %s "
                             "--epochs 1 --prompts-per-epoch 2 --group-size 2 --num-steps 3 --eval-every 0",
                             base, fr_rt_path(run, sizeof run, "draft-clf"));
    ck_assert_msg(rc == 0, "%s", out);
}
END_TEST

Suite *suite_classifier(void)
{
    Suite *s = suite_create("classifier");
    TCase *tc = tcase_create("classifier");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tc, test_grad_fd);
    tcase_add_test(tc, test_deterministic_cli_roundtrip);
    tcase_add_test(tc, test_builtin_agreement);
    tcase_add_test(tc, test_draft_classifier_reward);
    suite_add_tcase(s, tc);
    return s;
}
