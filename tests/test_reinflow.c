/* ReinFlow (core/algo/reinflow.c, flowrl/reinflow.h; docs/algorithms/reinflow.md): the chain's
 * log-prob and entropy against the formula computed here with libm, their gradient by finite
 * differences, the noise bound and its learn_decay schedule; on the run loop from a behaviour-
 * cloned nav2d flow policy: ratio = 1 bitwise on every epoch's first minibatch, ref = opt
 * bitwise, a stopped and resumed run equal to a whole one; over the pipe (tests/env_progs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "flowrl/algo.h"
#include "flowrl/reinflow.h"
#include "tests/run_testutil.h"
#include "tests/testutil.h"

extern const fr_algo fr_algo_reinflow;

/* K = 2 steps of A = 2: x (3, 2), μ (2, 2), σ (2, 2) */
static const float k_x[6] = {0.5f, -1.0f, 0.7f, -0.8f, 0.9f, -0.6f};
static const double k_mu[4] = {0.6, -0.9, 0.95, -0.5};
static const double k_sig[4] = {0.1, 0.2, 0.15, 0.24};

START_TEST(test_chain_logp_by_hand)
{
    double ls[4], lp, h;
    for (int j = 0; j < 4; j++) ls[j] = log(k_sig[j]);
    fr_reinflow_chain_logp(2, 2, k_x, k_mu, ls, &lp, &h);
    /* log N(x; 0, 1) of x_0, then log N(x_{k+1}; μ_k, σ_k²), over (K + 1)·A = 6 */
    const double c = 0.5 * log(2.0 * M_PI);
    double want = 0.0, went = 2.0 * (0.5 + c);
    for (int d = 0; d < 2; d++) want += -0.5 * (double)k_x[d] * (double)k_x[d] - c;
    for (int j = 0; j < 4; j++) {
        const double z = ((double)k_x[2 + j] - k_mu[j]) / k_sig[j];
        want += -0.5 * z * z - log(k_sig[j]) - c;
        went += log(k_sig[j]) + 0.5 + c;
    }
    want /= 6.0;
    went /= 6.0;
    /* fr_awm_exp against libm: a few ulps */
    ck_assert_msg(fabs(lp - want) <= 1e-12 * fabs(want) && fabs(h - went) <= 1e-12 * fabs(went),
                  "logp %.17g want %.17g, entropy %.17g want %.17g", lp, want, h, went);
    /* the decimals by hand (z = (1, 0.5), then (−1/3, −0.1/0.24)); 1e-5: x is float (0.7f ≠ 0.7) */
    ck_assert_msg(fabs(lp - (-0.625 - 2 * c - 0.5 - log(0.1) - c - 0.125 - log(0.2) - c - 0.5 * (0.0025 / 0.0225) -
                             log(0.15) - c - 0.5 * (0.01 / 0.0576) - log(0.24) - c) / 6.0) < 1e-5,
                  "logp %.17g against the hand sum", lp);
}
END_TEST

START_TEST(test_chain_grad_fd)
{
    double ls[4], dmu[4], dls[4];
    for (int j = 0; j < 4; j++) ls[j] = log(k_sig[j]);
    const double gl = 0.7, ge = -0.3;
    fr_reinflow_chain_grad(2, 2, k_x, k_mu, ls, gl, ge, dmu, dls);
    for (int j = 0; j < 4; j++)
        for (int which = 0; which < 2; which++) {
            double p[4], q[4], lpp, hp, lpm, hm;
            const double e = 1e-6;
            memcpy(p, which ? ls : k_mu, sizeof p);
            memcpy(q, which ? ls : k_mu, sizeof q);
            p[j] += e;
            q[j] -= e;
            fr_reinflow_chain_logp(2, 2, k_x, which ? k_mu : p, which ? p : ls, &lpp, &hp);
            fr_reinflow_chain_logp(2, 2, k_x, which ? k_mu : q, which ? q : ls, &lpm, &hm);
            const double fd = (gl * (lpp - lpm) + ge * (hp - hm)) / (2 * e), an = which ? dls[j] : dmu[j];
            /* central differences in double: about 1e-9 of the derivative's scale */
            ck_assert_msg(fabs(fd - an) <= 1e-6 * (1.0 + fabs(an)), "%s[%d]: analytic %.12g, fd %.12g",
                          which ? "log_sigma" : "mu", j, an, fd);
        }
}
END_TEST

START_TEST(test_noise_bound_and_schedule)
{
    const double lmin = 2.0 * log(0.1), lmax = 2.0 * log(0.24);
    double th;
    /* h = 0: the geometric mean √(σmin σmax); h → ±∞: the bounds */
    ck_assert(fabs(exp(fr_reinflow_log_sigma(0.0f, lmin, lmax, &th)) - sqrt(0.1 * 0.24)) < 1e-14 && th == 0.0);
    ck_assert(fabs(exp(fr_reinflow_log_sigma(40.0f, lmin, lmax, &th)) - 0.24) < 1e-14 && th == 1.0);
    ck_assert(fabs(exp(fr_reinflow_log_sigma(-400.0f, lmin, lmax, &th)) - 0.1) < 1e-14 && th == -1.0);
    const double v = fr_reinflow_log_sigma(0.5f, lmin, lmax, &th);
    ck_assert(fabs(th - tanh(0.5)) < 1e-15 && fabs(v - 0.5 * (lmin + (lmax - lmin) * (tanh(0.5) + 1.0) / 2.0)) < 1e-14);
    /* E = 20, hold 0.35, decay 0.7: hold ⌊7⌋ epochs, anneal ⌊13⌋; lo = 0.3·0.1 + 0.7·0.24 = 0.198 */
    const double lo = 0.198;
    for (int64_t e = 0; e <= 25; e++) {
        const double x = e < 1 ? 0.0 : (double)(e - 1);
        double p = (x - 7.0) / 13.0;
        p = p < 0 ? 0 : p > 1 ? 1 : p;
        const double want = e < 1 ? 0.24 : lo + (0.24 - lo) * 0.5 * (1.0 + cos(M_PI * p));
        const double got = fr_reinflow_sigma_max(e, 20, 0.1, 0.24, 0.35, 0.7);
        ck_assert_msg(fabs(got - want) < 1e-14, "epoch %lld: %.17g want %.17g", (long long)e, got, want);
    }
}
END_TEST

/* ---- on the run loop --------------------------------------------------------------------- */

/* A tiny nav2d flow policy (8 expert episodes, 60 BC steps, 8 x 1, 3 Euler steps) at DIR/nav-flow. */
static void nav_bc(char *ckpt, size_t n)
{
    char demos[400], out[8192];
    fr_rt_path(demos, sizeof demos, "nav.demos");
    fr_rt_path(ckpt, n, "nav-flow.safetensors");
    int rc = fr_rt_cli(out, sizeof out, "expert --env nav2d --episodes 8 --out %s", demos);
    ck_assert_msg(rc == 0, "expert exited %d:\n%.2000s", rc, out);
    rc = fr_rt_cli(out, sizeof out,
                   "bc --demos %s --out %s --policy flow --env nav2d --steps 60 --batch-size 16 --hidden-dim 8 "
                   "--n-hidden 1 --flow-steps 3 --eval-episodes 2",
                   demos, ckpt);
    ck_assert_msg(rc == 0, "bc exited %d:\n%.2000s", rc, out);
}

typedef struct {
    int updates, first_ok, first_seen;
} ratio_watch;

static void watch_ratio(const fr_run_update_event *ev, void *user)
{
    ratio_watch *w = user;
    w->updates++;
    if (ev->update != 0) return;
    w->first_seen++;
    int ok = ev->n_ratio > 0;
    for (int64_t i = 0; i < ev->n_ratio; i++) ok = ok && ev->ratio[i] == 1.0f;
    w->first_ok += ok;
}

START_TEST(test_ratio_one_from_bc_and_backends)
{
    char ckpt[400];
    nav_bc(ckpt, sizeof ckpt);
    const fr_algo *a = &fr_algo_reinflow;
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, "rf-ref", 3);
    fr_opts bo;
    ck_assert_int_eq(fr_run_opts_defaults(&bo, &o.ro, a, o.ao), FR_OK);
    a->tiny(&o.ro, o.ao);
    /* the log-prob clamps wide open: ratio = 1 must come from equal log-probs, not from two clamps */
    char *argv[] = {"train", "--bc", ckpt, "--denoising-steps", "0", "--logprob-min", "-1e9", "--logprob-max", "1e9"};
    ck_assert_msg(fr_opts_parse(&bo, 9, argv, 1, NULL, 0, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_rt_path(o.ro.run.out, sizeof o.ro.run.out, "rf-ref");
    o.ro.run.epochs = 3;
    o.ro.run.seed = 11;
    o.ro.ev.eval_n = 0;
    ratio_watch w = {0, 0, 0};
    fr_run_cb cb = {NULL, watch_ratio, NULL, &w, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(w.first_seen, 3);
    ck_assert_msg(w.first_ok == 3, "the first minibatch's ratio was not exactly 1 in %d of 3 epochs", 3 - w.first_ok);
    ck_assert_int_eq(w.updates, 3 * 2 * 8); /* 3 epochs x 2 passes x (16 rows x 2 copies)/4 minibatches */
    fr_rt_opts p = o;
    fr_rt_path(p.ro.run.out, sizeof p.ro.run.out, "rf-opt");
    ck_assert_msg(fr_rt_run(&p, "opt", 2, NULL, NULL) == FR_OK, "opt: %s", fr_last_error());
    fr_rt_assert_same_records("rf-ref", "rf-opt", 3);
    fr_rt_opts_free(&o);
}
END_TEST

/* From the BC checkpoint on nav2d, and over the pipe (tests/env_progs/mock_env.py: obs 3, actions
 * 2, a fresh policy): 4 epochs in one go against 2 + a resume to 4 on another backend. */
static void whole_and_resumed(const char *env, const char *extra, const char *name)
{
    char out[16384], whole[400], cut[400], w[64], c[64];
    snprintf(w, sizeof w, "%s-whole", name);
    snprintf(c, sizeof c, "%s-cut", name);
    fr_rt_path(whole, sizeof whole, w);
    fr_rt_path(cut, sizeof cut, c);
    const char *common = "--n-envs 2 --n-steps 8 --minibatch-size 4 --update-epochs 2 --hidden-dim 8 --n-hidden 1 "
                         "--eval-episodes 2 --eval-every 2 --checkpoint-every 1 --seed 5";
    int rc = fr_rt_cli(out, sizeof out, "train --algo reinflow --env '%s' %s --out %s --epochs 4 %s --backend ref", env,
                       extra, whole, common);
    ck_assert_msg(rc == 0, "whole run exited %d:\n%.3000s", rc, out);
    ck_assert_msg(strstr(out, "eval after") != NULL, "no evaluation:\n%.2000s", out);
    rc = fr_rt_cli(out, sizeof out, "train --algo reinflow --env '%s' %s --out %s --epochs 2 %s --backend ref", env, extra,
                   cut, common);
    ck_assert_msg(rc == 0, "first half exited %d:\n%.3000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 4 --backend opt --threads 2", cut);
    ck_assert_msg(rc == 0, "resume exited %d:\n%.3000s", rc, out);
    fr_rt_assert_same_records(w, c, 4);
}

START_TEST(test_bc_resume_and_pipe)
{
    char ckpt[400], extra[480], prog[600];
    nav_bc(ckpt, sizeof ckpt);
    snprintf(extra, sizeof extra, "--bc %s", ckpt);
    whole_and_resumed("nav2d", extra, "rf-nav");
    snprintf(prog, sizeof prog, "cmd:%s %s/tests/env_progs/mock_env.py ok", fr_test_python(), fr_test_src());
    whole_and_resumed(prog, "--denoising-steps 2", "rf-pipe");
}
END_TEST

/* A DDPM checkpoint, or one of other widths, is refused in one line naming the file. */
START_TEST(test_bc_refused)
{
    char demos[400], ddpm[400], out[8192], run[400];
    fr_rt_path(demos, sizeof demos, "nav.demos");
    fr_rt_path(ddpm, sizeof ddpm, "nav-ddpm.safetensors");
    fr_rt_path(run, sizeof run, "rf-refused");
    int rc = fr_rt_cli(out, sizeof out, "expert --env nav2d --episodes 2 --out %s", demos);
    ck_assert_int_eq(rc, 0);
    rc = fr_rt_cli(out, sizeof out,
                   "bc --demos %s --out %s --policy ddpm --env nav2d --steps 2 --batch-size 8 --hidden-dim 8 "
                   "--n-hidden 1 --eval-episodes 1",
                   demos, ddpm);
    ck_assert_msg(rc == 0, "bc exited %d:\n%.2000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --algo reinflow --env nav2d --bc %s --out %s --epochs 1", ddpm, run);
    ck_assert_msg(rc != 0 && strstr(out, "fine-tunes a flow policy") != NULL && strstr(out, ddpm) != NULL,
                  "exit %d:\n%.2000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --algo reinflow --env pendulum --bc %s --out %s --epochs 1 --force", ddpm, run);
    ck_assert_msg(rc != 0 && strstr(out, ddpm) != NULL, "exit %d:\n%.2000s", rc, out);
}
END_TEST

Suite *suite_reinflow(void)
{
    Suite *s = suite_create("reinflow");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_chain_logp_by_hand);
    tcase_add_test(tc, test_chain_grad_fd);
    tcase_add_test(tc, test_noise_bound_and_schedule);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 180);
    tcase_add_test(tr, test_ratio_one_from_bc_and_backends);
    tcase_add_test(tr, test_bc_resume_and_pipe);
    tcase_add_test(tr, test_bc_refused);
    suite_add_tcase(s, tr);
    return s;
}
