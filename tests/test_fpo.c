/* FPO (core/algo/fpo.c, docs/algorithms/fpo.md): the on-policy check of spec objectives.md §12
 * (ρ̂ = 1 bit for bit on every epoch's first minibatch, in both averaging modes and both output
 * modes, and the stored CFM losses recomputed to the bit), ref = opt = cuda-emu records from a
 * behaviour-cloned checkpoint, a run over an environment program (the pipe) resumed on another
 * backend, and one-line errors for a policy FPO cannot fine-tune. The generic registry properties
 * (tests/test_algos.c) run its tiny configuration from a fresh policy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ctl_bc.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

extern const fr_algo fr_algo_fpo;

/* A flow (or DDPM) policy checkpoint of O observations and A actions, width 8 x 2, seeded weights,
 * observation statistics of 8 seeded rows and an action range [−2, 2] (the scaling exercised). */
static void make_policy(const char *path, fr_gen_kind kind, int64_t O, int64_t A)
{
    fr_gen_policy g;
    fr_rms rms;
    ck_assert_int_eq(fr_gen_policy_new(&g, kind, fr_test_ref_be(), O, A, 8, 2, kind == FR_GEN_FLOW ? 4 : 5, 4), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(g.net, 3, 4, 1.0f), FR_OK);
    ck_assert_int_eq(fr_rms_init(&rms, O), FR_OK);
    float obs[8 * 8];
    uint64_t st = 17;
    for (int64_t i = 0; i < 8 * O; i++) obs[i] = fr_test_uniform(&st, -1.0f, 1.0f);
    fr_rms_update_f32(&rms, 8, obs);
    g.act_scaled = 1;
    for (int64_t j = 0; j < A; j++) {
        g.act_lo[j] = -2.0;
        g.act_hi[j] = 2.0;
    }
    fr_bc_opts bo = {.steps = 0, .batch = 4, .lr = 1e-3, .seed = 3, .action_scale = 1};
    ck_assert_msg(fr_bc_save(path, &g, &rms, "nav2d", "test", &bo) == FR_OK, "%s", fr_last_error());
    fr_gen_policy_free(&g);
    fr_rms_free(&rms);
}

/* The tiny configuration on nav2d (the registry's first control environment) with argv on top. */
static void fpo_opts(fr_rt_opts *o, const char *run, int64_t epochs, int argc, char **argv)
{
    const fr_algo *a = &fr_algo_fpo;
    fr_rt_opts_init(o, a, run, epochs);
    fr_opts bo;
    ck_assert_int_eq(fr_run_opts_defaults(&bo, &o->ro, a, o->ao), FR_OK);
    a->tiny(&o->ro, o->ao);
    ck_assert_msg(fr_opts_parse(&bo, argc, argv, 1, NULL, 0, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_rt_path(o->ro.run.out, sizeof o->ro.run.out, run);
    o->ro.run.epochs = epochs;
    o->ro.run.seed = 11;
    o->ro.ev.eval_n = 0;
}

typedef struct {
    int updates, first_ok, first_seen, later_off; /* later_off: ratios != 1 after the first minibatch */
    int epochs, dl_zero;
} watch;

static void watch_update(const fr_run_update_event *ev, void *user)
{
    watch *w = user;
    w->updates++;
    if (ev->update != 0) {
        for (int64_t i = 0; i < ev->n_ratio; i++) w->later_off += ev->ratio[i] != 1.0f;
        return;
    }
    w->first_seen++;
    int ok = ev->n_ratio > 0;
    for (int64_t i = 0; i < ev->n_ratio; i++) ok = ok && ev->ratio[i] == 1.0f;
    w->first_ok += ok;
}

static int watch_epoch(const fr_run_epoch_event *ev, void *user)
{
    watch *w = user;
    w->epochs++;
    /* the first minibatch's recomputed CFM losses equal the stored ones exactly: ρ̂ = exp(0) */
    w->dl_zero += fr_run_event_get(ev, "onpolicy_dl") == 0.0;
    return 0;
}

START_TEST(test_fpo_ratio_one_and_backends)
{
    char pol[512];
    fr_rt_path(pol, sizeof pol, "flow-nav.safetensors");
    make_policy(pol, FR_GEN_FLOW, 4, 2);
    /* the default (averaged, u_but_supervise_as_eps, τ on the grid), one ratio per pair with τ
     * uniform, and output mode u */
    static const char *const variants[3][4] = {
        {"", "", "", ""},
        {"--no-average-losses-before-exp", "--no-discretize-t", "", ""},
        {"--output-mode", "u", "", ""},
    };
    for (int v = 0; v < 3; v++) {
        char *argv[8] = {"train", "--policy", pol};
        int argc = 3;
        for (int k = 0; k < 4 && variants[v][k][0]; k++) argv[argc++] = (char *)variants[v][k];
        char run[32];
        snprintf(run, sizeof run, "fpo-ratio-%d", v);
        fr_rt_opts o;
        fpo_opts(&o, run, 3, argc, argv);
        watch w = {0};
        fr_run_cb cb = {watch_epoch, watch_update, NULL, &w, NULL};
        ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "variant %d: %s", v, fr_last_error());
        ck_assert_int_eq(w.epochs, 3);
        ck_assert_int_eq(w.first_seen, 3);
        ck_assert_msg(w.first_ok == 3, "variant %d: the first minibatch's ratio was not exactly 1 in %d of 3 epochs", v,
                      3 - w.first_ok);
        ck_assert_msg(w.dl_zero == 3, "variant %d: the recomputed CFM losses differ from the stored ones in %d epochs", v,
                      3 - w.dl_zero);
        ck_assert_int_eq(w.updates, 3 * 2 * 4); /* 3 epochs x 2 passes x 16/4 minibatches */
        /* the check is not vacuous: the updates moved the policy off the rollout's */
        ck_assert_msg(w.later_off > 0, "variant %d: every later ratio is 1 too", v);
        if (v == 0)
            for (const char *const *b = fr_backend_names(); *b; b++) {
                if (strcmp(*b, "ref") == 0) continue;
                fr_backend be;
                if (!fr_test_backend_try(&be, "fpo", *b, 1)) continue;
                fr_backend_close(&be);
                char other[64];
                snprintf(other, sizeof other, "fpo-ratio-0-%s", *b);
                fr_rt_opts p = o;
                fr_rt_path(p.ro.run.out, sizeof p.ro.run.out, other);
                ck_assert_msg(fr_rt_run(&p, *b, 2, NULL, NULL) == FR_OK, "%s: %s", *b, fr_last_error());
                fr_rt_assert_same_records(run, other, 3);
            }
        fr_rt_opts_free(&o);
    }
}
END_TEST

/* FPO on an environment program over the pipe (tests/env_progs/mock_env.py: obs 3, actions 2, 5
 * steps) from a behaviour-cloning checkpoint: 4 epochs in one go, and 2 + a resume to 4 on opt at 2
 * threads, the same audit records; config.json keeps the program and the policy. */
START_TEST(test_fpo_over_pipe_resume)
{
    char out[16384], prog[600], whole[400], cut[400], cfg[512], pol[512];
    fr_rt_path(pol, sizeof pol, "flow-mock.safetensors");
    make_policy(pol, FR_GEN_FLOW, 3, 2);
    snprintf(prog, sizeof prog, "cmd:%s %s/tests/env_progs/mock_env.py ok", fr_test_python(), fr_test_src());
    fr_rt_path(whole, sizeof whole, "fpo-pipe-whole");
    fr_rt_path(cut, sizeof cut, "fpo-pipe-cut");
    const char *common = "--n-envs 2 --n-steps 8 --minibatch-size 4 --update-epochs 2 --n-samples 3 "
                         "--critic-hidden-dim 8 --critic-n-hidden 1 --eval-episodes 2 --eval-every 2 "
                         "--checkpoint-every 1 --seed 5";
    int rc = fr_rt_cli(out, sizeof out, "train --algo fpo --env '%s' --policy %s --out %s --epochs 4 %s --backend ref",
                       prog, pol, whole, common);
    ck_assert_msg(rc == 0, "whole run exited %d:\n%.3000s", rc, out);
    ck_assert_msg(strstr(out, "eval after") != NULL, "no evaluation:\n%.2000s", out);
    rc = fr_rt_cli(out, sizeof out, "train --algo fpo --env '%s' --policy %s --out %s --epochs 2 %s --backend ref", prog,
                   pol, cut, common);
    ck_assert_msg(rc == 0, "first half exited %d:\n%.3000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 4 --backend opt --threads 2", cut);
    ck_assert_msg(rc == 0, "resume exited %d:\n%.3000s", rc, out);
    fr_rt_assert_same_records("fpo-pipe-whole", "fpo-pipe-cut", 4);
    size_t n;
    snprintf(cfg, sizeof cfg, "%s/config.json", cut);
    char *text = fr_test_slurp(cfg, &n);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "mock_env.py ok") != NULL && strstr(text, "flow-mock.safetensors") != NULL,
                  "config.json lost the program or the policy:\n%.2000s", text);
    free(text);
}
END_TEST

/* A DDPM policy, a policy of other widths and a missing file: one line each, exit 1. */
START_TEST(test_fpo_policy_errors)
{
    char out[4096], ddpm[512], narrow[512], run[512];
    fr_rt_path(ddpm, sizeof ddpm, "ddpm-nav.safetensors");
    fr_rt_path(narrow, sizeof narrow, "flow-3x2.safetensors");
    make_policy(ddpm, FR_GEN_DDPM, 4, 2);
    make_policy(narrow, FR_GEN_FLOW, 3, 2);
    const struct {
        const char *path, *want;
    } cases[] = {{ddpm, "fine-tunes a flow policy"}, {narrow, "3 observations and 2 actions"},
                 {"/nonexistent/p.safetensors", "/nonexistent/p.safetensors"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(run, sizeof run, "%s/fpo-err-%zu", fr_rt_dir, i);
        int rc = fr_rt_cli(out, sizeof out, "train --algo fpo --env nav2d --policy %s --out %s --epochs 1 --backend ref",
                           cases[i].path, run);
        const char *last = out;
        for (const char *l = strchr(out, '\n'); l && l[1]; l = strchr(l + 1, '\n')) last = l + 1;
        ck_assert_msg(rc == 1 && strstr(last, cases[i].want) != NULL, "case %zu: exit %d, last line: %s", i, rc, last);
    }
}
END_TEST

Suite *suite_fpo(void)
{
    Suite *s = suite_create("fpo");
    TCase *tc = tcase_create("runs");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tc, test_fpo_ratio_one_and_backends);
    tcase_add_test(tc, test_fpo_over_pipe_resume);
    tcase_add_test(tc, test_fpo_policy_errors);
    suite_add_tcase(s, tc);
    return s;
}
