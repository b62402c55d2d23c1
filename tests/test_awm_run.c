/* AWM on the run loop (core/algo/awm*.c): it learns gmm2d's halfplane reward from a fresh
 * tiny base on each of 3 seeds (issue: mean reward +0.2 within 20 epochs). The objective's own properties (zero
 * advantages → zero gradient, Uniform = pretraining's gradient bit for bit, finite
 * differences) are tests/test_awm.c; the generic run properties tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/algo/awm.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

START_TEST(test_awm_learns_halfplane)
{
    for (uint32_t seed = 1; seed <= 3; seed++) {
        char run[32];
        snprintf(run, sizeof run, "learn%u", seed);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_awm, run, 20);
        snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
        o.ro.run.seed = seed;
        o.ro.c.prompts = 4;
        o.ro.c.group = 8;
        o.ro.smp.num_steps = 10;
        o.ro.c.num_batches = 2;
        o.ro.c.grad_accum = 2;
        ((fr_awm_opts *)o.ao)->train_timesteps = 4;
        o.ro.opt.lr = 1e-2;
        fr_rt_curve c = {NAN, {NAN, NAN, NAN}, 0};
        fr_run_cb cb = {fr_rt_curve_record, NULL, NULL, &c, NULL};
        ck_assert_msg(fr_rt_run(&o, "opt", 2, &cb, NULL) == FR_OK, "seed %u: %s", seed, fr_last_error());
        double last = fr_rt_curve_last3(&c);
        ck_assert_msg(last > c.first + 0.2, "seed %u: halfplane reward %g -> %g (mean of the last 3 epochs), expected > +0.2",
                      seed, c.first, last);
        fr_rt_opts_free(&o);
    }
}
END_TEST

/* The NFE metrics counted by the model (flowrl/backend.h fr_work_stats) equal AWM's budget
 * per epoch: the rollout N·T rows; per batch K·b rows (K times of b samples, K·N in all)
 * through the policy forward and backward, the reference (β > 0) and the EMA copy (ema_beta
 * > 0) forward; and the epoch-start policy's forward on the batches after the first
 * optimiser step (num_batches − grad_accum batches). */
static const char *const k_awm_nfe[] = {"nfe.forward_rows", "nfe.backward_rows", NULL};

START_TEST(test_awm_nfe_formula)
{
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_awm, "nfe", 2);
    const fr_awm_opts *ao = o.ao;
    ck_assert(o.ro.c.beta > 0.0f && ao->ema_beta > 0.0 && o.ro.smp.cfg == 1.0f);
    fr_rt_metrics m = {k_awm_nfe, {{0}}, 0};
    fr_run_cb cb = {fr_rt_metrics_record, NULL, NULL, &m, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(m.epochs, 2);
    const double N = (double)(o.ro.c.prompts * o.ro.c.group), T = (double)o.ro.smp.num_steps;
    const double K = (double)ao->train_timesteps, nb = (double)o.ro.c.num_batches, ga = (double)o.ro.c.grad_accum;
    const double KN = K * N, fwd = N * T + KN * 3.0 + (nb - ga) * KN / nb;
    for (int e = 0; e < 2; e++)
        ck_assert_msg(m.v[0][e] == fwd && m.v[1][e] == KN, "epoch %d: %g forward rows (want %g), %g backward (want %g)",
                      e + 1, m.v[0][e], fwd, m.v[1][e], KN);
    fr_rt_opts_free(&o);
}
END_TEST

Suite *suite_awm_run(void)
{
    Suite *s = suite_create("awm_run");
    TCase *tc = tcase_create("awm_run");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_awm_learns_halfplane);
    tcase_add_test(tc, test_awm_nfe_formula);
    suite_add_tcase(s, tc);
    return s;
}
