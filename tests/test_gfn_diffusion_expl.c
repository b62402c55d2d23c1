/* Exploration of the diffusion samplers (flowrl/gfn_diffusion.h `exploration`,
 * docs/algorithms/gfn-diffusion.md §1): the behaviour policy's std against the Philox draws, off
 * by default and bit for bit the on-policy path at e = 0, and a short run with --exploration the
 * same bytes on every backend. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/philox.h"
#include "tests/gfn_diffusion_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Exploration (gfn-diffusion@255b499 utils.py get_exploration_std, models/gfn.py
 * get_trajectory_fwd): the behaviour policy's step is x_{k+1} = x_k + Δt·f + √(σ²Δt + e_i²)·ε with
 * e_i = e·max(0, 1 − i/decay) at iteration i. With zero_init (f = 0, no optimiser step between the
 * iterations) x_T = √(σ²Δt + e_i²)·Σ_k ε_k is known from the Philox draws, so the batch's mean
 * log R pins the std; the default is e = 0, and e_i = 0 gives the on-policy gradient bit for bit. */
static double mean_log_r_by_hand(const fr_env *e, const fr_gfnd_opts *o, uint32_t it, double expl)
{
    const double dt = 1.0 / (double)o->steps, sd = sqrt(o->t_scale * dt + expl * expl);
    double s = 0.0, x[2];
    for (int64_t b = 0; b < o->batch; b++) {
        for (int d = 0; d < 2; d++) {
            x[d] = 0.0;
            for (int64_t k = 0; k < o->steps; k++)
                x[d] += sd * (double)fr_rng_normal(o->seed, FR_RNG_GFND_NOISE, it, (uint32_t)b, (uint32_t)k, (uint32_t)d);
        }
        s += e->energy->log_reward(e, x);
    }
    return s / (double)o->batch;
}

START_TEST(test_exploration_std_and_off)
{
    ck_assert(fr_gfnd_opts_default().exploration == 0.0 && fr_gfnd_opts_default().exploration_decay == 5000);
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    fr_gfnd_opts o0 = tiny_opts(FR_GFND_TB), o1 = o0;
    o1.exploration = 0.5;
    o1.exploration_decay = 4;
    fr_gfnd_trainer *t0, *t1;
    ck_assert_msg(fr_gfnd_trainer_new(&t0, &be, &e, &o0) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_gfnd_trainer_new(&t1, &be, &e, &o1) == FR_OK, "%s", fr_last_error());
    for (uint32_t it = 0; it < 6; it++) {
        const double want_e = it < 4 ? 0.5 * (1.0 - it / 4.0) : 0.0;
        fr_gfnd_step_info i0, i1;
        ck_assert_msg(fr_gfnd_trainer_grad(t0, &i0) == FR_OK, "%s", fr_last_error());
        const uint64_t d0 = grads_digest(&be, t0);
        ck_assert_msg(fr_gfnd_trainer_grad(t1, &i1) == FR_OK, "%s", fr_last_error());
        const uint64_t d1 = grads_digest(&be, t1);
        ck_assert_msg(i0.exploration == 0.0 && i1.exploration == want_e, "iteration %u: e %g, want %g", it,
                      i1.exploration, want_e);
        const double h0 = mean_log_r_by_hand(&e, &o0, it, 0.0), h1 = mean_log_r_by_hand(&e, &o1, it, want_e);
        ck_assert_msg(fabs(i0.log_r_mean - h0) < 1e-9 * (1.0 + fabs(h0)) && fabs(i1.log_r_mean - h1) < 1e-9 * (1.0 + fabs(h1)),
                      "iteration %u: mean log R %.12g / %.12g, by hand %.12g / %.12g", it, i0.log_r_mean, i1.log_r_mean,
                      h0, h1);
        /* e_i = 0: the on-policy path, bit for bit; e_i > 0: other states, other gradients */
        ck_assert_msg((d0 == d1) == (want_e == 0.0) && (i0.loss == i1.loss) == (want_e == 0.0),
                      "iteration %u (e %g): gradients %s", it, want_e, d0 == d1 ? "equal" : "differ");
    }
    fr_gfnd_trainer_free(t0);
    fr_gfnd_trainer_free(t1);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* A short whole run with exploration (and the Langevin drift, VarGrad) through the CLI: the final
 * evaluation line and the parameters' digest are the same bytes on ref, opt at 1 and 3 threads and
 * cuda-emu where built; without --exploration the run differs (the option is not a no-op). */
START_TEST(test_cli_exploration_backends)
{
    gfnd_option_same_on_backends("gfnd_expl",
                                 "--algo gfn-diffusion --env funnel --loss tb-avg --langevin --batch-size 8 --steps 10 "
                                 "--hidden-dim 16 --harmonics 4 --epochs 5 --eval-samples 50 --eval-every 0 "
                                 "--checkpoint-every 0",
                                 "--exploration 0.3 --exploration-decay 3");
}
END_TEST

Suite *suite_gfn_diffusion_expl(void)
{
    Suite *s = suite_create("gfn_diffusion_expl");
    TCase *tc = tcase_create("exploration");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_exploration_std_and_off);
    tcase_add_test(tc, test_cli_exploration_backends);
    suite_add_tcase(s, tc);
    return s;
}
