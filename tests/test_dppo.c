/* DPPO (core/algo/dppo.c, docs/algorithms/dppo.md): the on-policy check (ρ = 1 bitwise on each
 * epoch's first minibatch, spec objectives.md §14) with the base / fine-tuned split of the chain,
 * ref = every other backend bit for bit, a behaviour-cloned checkpoint fine-tuned and resumed on
 * another backend with the same audit records, a run over the environment pipe, and the
 * checkpoint checks (kind, shapes). The generic registry tests (tests/test_algos.c) run its tiny
 * configuration too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "flowrl/algo.h"
#include "flowrl/dppo.h"
#include "tests/run_testutil.h"
#include "tests/testutil.h"

extern const fr_algo fr_algo_dppo;

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

/* fr_dppo_policy_loss's dL/dε̂ against central differences of its loss, on 8 pairs of a policy of
 * 6 denoising steps (K = 4, A = 3), the next states near the step means so that some elements sit
 * inside the [−5, 2] log-prob clamp and some outside, the old log-probs off by up to ±0.3 so that
 * some ratios leave the clip range (0.01 .. 0.2 over the steps). */
static double pg_loss_at(const fr_ddpm_policy *p, const fr_dppo_cfg *c, const float *eps, const float *x, const float *xn,
                         const int *i, const double *lo, const double *adv, float *deps)
{
    double ln[8], au[8], cl[8], g[8];
    float scratch[24];
    fr_ctl_ppo_stats st;
    ck_assert_int_eq(fr_dppo_policy_loss(p, c, 8, eps, x, xn, i, lo, adv, ln, au, cl, g, deps ? deps : scratch, &st), FR_OK);
    return st.loss;
}

START_TEST(test_dppo_loss_gradient_fd)
{
    fr_backend be;
    ck_assert(fr_test_backend_try(&be, "dppo", "ref", 1));
    fr_ddpm_policy p;
    ck_assert_int_eq(fr_ddpm_policy_new(&p, &be, 2, 3, 4, 1, 6, 8), FR_OK);
    const fr_dppo_cfg c = {4, 1.0, 0.1, 0.9, 0.2, 0.01, 3.0, 0.0, 1.0};
    uint64_t seed = 5;
    float eps[24], x[24], xn[24], deps[24];
    int i[8];
    double lo[8], adv[8], mu[3];
    for (int j = 0; j < 8; j++) {
        i[j] = j % 4;
        adv[j] = fr_test_uniform(&seed, -1.0f, 1.0f);
        for (int d = 0; d < 3; d++) {
            x[j * 3 + d] = fr_test_uniform(&seed, -1.0f, 1.0f);
            eps[j * 3 + d] = fr_test_uniform(&seed, -1.0f, 1.0f);
        }
        const int t = 3 - i[j];
        fr_dppo_step_mean(&p, t, 3, x + j * 3, eps + j * 3, c.x0_clip, mu, NULL);
        for (int d = 0; d < 3; d++) xn[j * 3 + d] = (float)(mu[d] + fr_test_uniform(&seed, -0.4f, 0.4f));
        lo[j] = fr_dppo_step_logp(&p, t, 3, xn + j * 3, mu, c.min_logp_std, NULL) + fr_test_uniform(&seed, -0.3f, 0.3f);
    }
    (void)pg_loss_at(&p, &c, eps, x, xn, i, lo, adv, deps);
    int nonzero = 0;
    for (int k = 0; k < 24; k++) {
        float e2[24];
        memcpy(e2, eps, sizeof e2);
        const float h = 1e-2f;
        e2[k] = eps[k] + h;
        const double up = pg_loss_at(&p, &c, e2, x, xn, i, lo, adv, NULL);
        e2[k] = eps[k] - h;
        const double dn = pg_loss_at(&p, &c, e2, x, xn, i, lo, adv, NULL);
        const double fd = (up - dn) / ((double)(eps[k] + h) - (double)(eps[k] - h));
        /* away from the clamps' kinks the loss is smooth in ε̂ (ρ = exp of a quadratic): the central
         * difference's O(h²) error at h = 1e-2 and the float32 dL/dε̂ stay within 1e-3 relative */
        ck_assert_msg(fabs(fd - (double)deps[k]) <= 1e-4 + 1e-3 * fabs(fd), "element %d: analytic %.8g, differences %.8g", k,
                      (double)deps[k], fd);
        nonzero += deps[k] != 0.0f;
    }
    ck_assert_msg(nonzero >= 6, "only %d of 24 gradient elements are nonzero: the check proves little", nonzero);
    fr_ddpm_policy_free(&p);
    fr_backend_close(&be);
}
END_TEST

/* The tiny configuration (a fresh policy of 4 denoising steps, the last 2 fine-tuned: the chain
 * crosses from the base to the fine-tuned copy) on nav2d. */
START_TEST(test_dppo_ratio_one_and_backends)
{
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_dppo, "dppo-ref", 3);
    ratio_watch w = {0, 0, 0};
    fr_run_cb cb = {NULL, watch_ratio, NULL, &w, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(w.first_seen, 3);
    ck_assert_msg(w.first_ok == 3, "the first minibatch's ratio was not exactly 1 in %d of 3 epochs", 3 - w.first_ok);
    ck_assert_int_eq(w.updates, 3 * 2 * 4); /* 3 epochs x 2 passes x (2·8·2 pairs / 8) minibatches */
    for (const char *const *b = fr_backend_names(); *b; b++) {
        if (strcmp(*b, "ref") == 0) continue;
        fr_backend be;
        if (!fr_test_backend_try(&be, "dppo", *b, 1)) continue;
        fr_backend_close(&be);
        char run[64];
        snprintf(run, sizeof run, "dppo-%s", *b);
        fr_rt_opts p = o;
        fr_rt_path(p.ro.run.out, sizeof p.ro.run.out, run);
        ck_assert_msg(fr_rt_run(&p, *b, 2, NULL, NULL) == FR_OK, "%s: %s", *b, fr_last_error());
        fr_rt_assert_same_records("dppo-ref", run, 3);
    }
    fr_rt_opts_free(&o);
}
END_TEST

/* A tiny behaviour-cloned DDPM policy on nav2d (flowrl expert + flowrl bc) into ckpt. */
static void tiny_bc(const char *name, const char *kind, char *ckpt, size_t n)
{
    char out[8192], demos[400];
    fr_rt_path(demos, sizeof demos, "nav.demos");
    fr_rt_path(ckpt, n, name);
    int rc = fr_rt_cli(out, sizeof out, "expert --env nav2d --episodes 8 --force --out %s", demos);
    ck_assert_msg(rc == 0, "expert exited %d:\n%.2000s", rc, out);
    rc = fr_rt_cli(out, sizeof out,
                   "bc --demos %s --out %s --policy %s --steps 40 --batch-size 16 --hidden-dim 8 --n-hidden 1 "
                   "--denoising-steps 5 --eval-episodes 2",
                   demos, ckpt, kind);
    ck_assert_msg(rc == 0, "bc exited %d:\n%.2000s", rc, out);
}

/* The checkpoint fine-tuned 4 epochs in one go, and 2 + a resume to 4 on another backend: the
 * same audit records (the frozen base is read from --policy again on resume). */
START_TEST(test_dppo_bc_resume)
{
    char out[16384], ckpt[400], whole[400], cut[400];
    tiny_bc("nav_ddpm.safetensors", "ddpm", ckpt, sizeof ckpt);
    fr_rt_path(whole, sizeof whole, "dppo-whole");
    fr_rt_path(cut, sizeof cut, "dppo-cut");
    const char *common = "--n-envs 2 --n-steps 8 --ft-denoising-steps 3 --minibatch-size 8 --update-epochs 2 "
                         "--hidden-dim 8 --n-hidden 1 --eval-episodes 3 --eval-every 2 --checkpoint-every 1 --seed 5";
    int rc = fr_rt_cli(out, sizeof out, "train --algo dppo --env nav2d --policy %s --out %s --epochs 4 %s --backend ref",
                       ckpt, whole, common);
    ck_assert_msg(rc == 0, "whole run exited %d:\n%.3000s", rc, out);
    ck_assert_msg(strstr(out, "last 3 of 5 denoising steps") != NULL && strstr(out, "eval after") != NULL,
                  "header or evaluation missing:\n%.3000s", out);
    rc = fr_rt_cli(out, sizeof out, "train --algo dppo --env nav2d --policy %s --out %s --epochs 2 %s --backend ref", ckpt,
                   cut, common);
    ck_assert_msg(rc == 0, "first half exited %d:\n%.3000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 4 --backend opt --threads 2", cut);
    ck_assert_msg(rc == 0, "resume exited %d:\n%.3000s", rc, out);
    fr_rt_assert_same_records("dppo-whole", "dppo-cut", 4);
}
END_TEST

/* A fresh policy over the environment pipe (tests/env_progs/mock_env.py: obs 3, actions 2). */
START_TEST(test_dppo_over_pipe)
{
    char out[16384], prog[600], run[400];
    snprintf(prog, sizeof prog, "cmd:%s %s/tests/env_progs/mock_env.py ok", fr_test_python(), fr_test_src());
    fr_rt_path(run, sizeof run, "dppo-pipe");
    int rc = fr_rt_cli(out, sizeof out,
                       "train --algo dppo --env '%s' --out %s --epochs 2 --n-envs 2 --n-steps 8 --denoising-steps 4 "
                       "--ft-denoising-steps 4 --minibatch-size 16 --update-epochs 1 --hidden-dim 8 --n-hidden 1 --policy-hidden-dim 8 "
                       "--policy-n-hidden 1 "
                       "--eval-episodes 2 --backend ref",
                       prog, run);
    ck_assert_msg(rc == 0, "pipe run exited %d:\n%.3000s", rc, out);
    ck_assert_msg(strstr(out, "last 4 of 4 denoising steps") != NULL && strstr(out, "eval after") != NULL,
                  "no header or evaluation:\n%.3000s", out);
}
END_TEST

/* One line and exit 1 for a checkpoint of the wrong kind or the wrong environment, exit 2 for
 * --ft-denoising-steps beyond a fresh policy's steps. */
START_TEST(test_dppo_policy_errors)
{
    char out[8192], flow[400], run[400];
    tiny_bc("nav_flow.safetensors", "flow", flow, sizeof flow);
    fr_rt_path(run, sizeof run, "dppo-err");
    int rc = fr_rt_cli(out, sizeof out, "train --algo dppo --env nav2d --policy %s --out %s --epochs 1", flow, run);
    ck_assert_msg(rc != 0 && strstr(out, "fine-tunes a ddpm one") != NULL, "flow checkpoint: exit %d:\n%.2000s", rc, out);
    char ddpm[400];
    tiny_bc("nav_ddpm2.safetensors", "ddpm", ddpm, sizeof ddpm);
    rc = fr_rt_cli(out, sizeof out, "train --algo dppo --env pendulum --policy %s --out %s-p --epochs 1", ddpm, run);
    ck_assert_msg(rc != 0 && strstr(out, "observations") != NULL, "nav2d checkpoint on pendulum: exit %d:\n%.2000s", rc,
                  out);
    rc = fr_rt_cli(out, sizeof out, "train --algo dppo --env nav2d --denoising-steps 4 --ft-denoising-steps 5 --out %s-k",
                   run);
    ck_assert_msg(rc == 2 && strstr(out, "--ft-denoising-steps 5 exceeds") != NULL, "K > T: exit %d:\n%.2000s", rc, out);
}
END_TEST

Suite *suite_dppo(void)
{
    Suite *s = suite_create("dppo");
    TCase *tc = tcase_create("run");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_dppo_loss_gradient_fd);
    tcase_add_test(tc, test_dppo_ratio_one_and_backends);
    tcase_add_test(tc, test_dppo_bc_resume);
    tcase_add_test(tc, test_dppo_over_pipe);
    tcase_add_test(tc, test_dppo_policy_errors);
    suite_add_tcase(s, tc);
    return s;
}
