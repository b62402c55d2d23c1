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

typedef struct {
    double first, best_last3[3];
    int64_t n;
} curve;

static int record_epoch(const fr_run_epoch_event *ev, void *user)
{
    curve *c = user;
    double r = fr_run_event_get(ev, "reward_mean");
    if (ev->epoch == 1) c->first = r;
    c->best_last3[c->n++ % 3] = r;
    return 0;
}

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
        curve c = {NAN, {NAN, NAN, NAN}, 0};
        fr_run_cb cb = {record_epoch, NULL, NULL, &c, NULL};
        ck_assert_msg(fr_rt_run(&o, "opt", 2, &cb, NULL) == FR_OK, "seed %u: %s", seed, fr_last_error());
        double last = (c.best_last3[0] + c.best_last3[1] + c.best_last3[2]) / 3.0;
        ck_assert_msg(last > c.first + 0.2, "seed %u: halfplane reward %g -> %g (mean of the last 3 epochs), expected > +0.2",
                      seed, c.first, last);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_awm_run(void)
{
    Suite *s = suite_create("awm_run");
    TCase *tc = tcase_create("awm_run");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_awm_learns_halfplane);
    suite_add_tcase(s, tc);
    return s;
}
