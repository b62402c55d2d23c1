/* Flow-GRPO on the run loop (core/algo/flow_grpo*.c): the on-policy ratio invariant
 * (docs/algorithms/flow-grpo.md "Check"), learning on gmm2d, its option checks and the
 * deprecated spellings of cff6d07. The properties every algorithm shares are in
 * tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/flow_grpo.h"
#include "flowrl/model.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_flow_grpo_opts *fg(fr_rt_opts *o) { return o->ao; }

static void init(fr_rt_opts *o, const char *run, int64_t epochs)
{
    fr_rt_opts_init(o, &fr_algo_flow_grpo, run, epochs);
    /* the defaults, not tiny(): the on-policy property must hold for FG's own clip range */
    o->ro.smp.num_steps = 10;
    o->ro.c.prompts = 8;
    o->ro.c.group = 8;
    o->ro.c.num_batches = 4;
    o->ro.c.grad_accum = 2;
    o->ro.c.clip_range = 1e-4;
    o->ro.opt.lr = 3e-4;
}

/* A base whose output layer is not zero, so that v_c != v_u. */
static void perturb_base(const char *path)
{
    fr_model m;
    ck_assert_int_eq(fr_model_load(&m, fr_test_ref_be(), fr_rt_base), FR_OK);
    fr_param *w = fr_model_param(&m, "out.weight");
    ck_assert_ptr_nonnull(w);
    float *v = w->value->data;
    for (int64_t i = 0; i < fr_tensor_numel(w->value); i++) v[i] = 0.05f * (float)((i * 37) % 11 - 5);
    ck_assert_int_eq(fr_model_save(&m, path), FR_OK);
    fr_model_free(&m);
}

/* ---- on-policy: the first ratio is exactly 1 --------------------------------------------- */

typedef struct {
    int64_t n_checked, n_bad, n_updates;
    float bad;
} ratio_check;

static void check_ratio(const fr_run_update_event *ev, void *user)
{
    ratio_check *rc = user;
    rc->n_updates++;
    /* every batch before the first optimizer step of the run is on-policy */
    if (ev->epoch != 1 || ev->update != 0) return;
    for (int64_t i = 0; i < ev->n_ratio; i++) {
        rc->n_checked++;
        if (!fr_test_bits_equal(ev->ratio[i], 1.0f)) {
            if (!rc->n_bad) rc->bad = ev->ratio[i];
            rc->n_bad++;
        }
    }
}

static void on_policy_case(const char *label, fr_rt_opts *o)
{
    ratio_check rc = {0, 0, 0, 0.0f};
    fr_run_cb cb = {NULL, check_ratio, NULL, &rc, NULL};
    ck_assert_msg(fr_rt_run(o, "ref", 1, &cb, NULL) == FR_OK, "%s: %s", label, fr_last_error());
    ck_assert_msg(rc.n_updates >= 1, "%s: no update ran", label);
    ck_assert_msg(rc.n_checked > 0 && rc.n_bad == 0, "%s: %lld of %lld on-policy ratios are not 1.0f (first %a)",
                  label, (long long)rc.n_bad, (long long)rc.n_checked, (double)rc.bad);
    fr_rt_opts_free(o);
}

START_TEST(test_on_policy_ratio_is_one)
{
    fr_rt_opts o;
    char b2[512];
    init(&o, "fg", 1);
    on_policy_case("flow-grpo sde", &o);

    init(&o, "fg1", 1); /* FG README's setting: one batch, no accumulation */
    o.ro.c.num_batches = 1;
    o.ro.c.grad_accum = 1;
    on_policy_case("flow-grpo 1 batch", &o);

    init(&o, "cfg", 1);
    fr_rt_path(b2, sizeof b2, "base2.safetensors");
    perturb_base(b2);
    snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", b2);
    o.ro.smp.cfg = 2.5f; /* CFG in rollouts and in training, with v_c != v_u */
    on_policy_case("cfg 2.5", &o);

    init(&o, "guard", 1);
    fg(&o)->guard = FR_FG_GUARD_BATCH;
    o.ro.c.clip_range = 2e-6;
    on_policy_case("guard batch", &o);

    init(&o, "guards", 1);
    fg(&o)->guard = FR_FG_GUARD_SAMPLE;
    on_policy_case("guard sample", &o);

    init(&o, "fast", 1);
    fg(&o)->window = FR_FG_WINDOW_FAST;
    o.ro.smp.sampler = FR_SAMPLER_CPS;
    o.ro.smp.noise_level = 0.8f;
    fg(&o)->window_size = 3;
    on_policy_case("fast window + cps", &o);

    init(&o, "cps", 1);
    o.ro.smp.sampler = FR_SAMPLER_CPS;
    o.ro.smp.noise_level = 0.8f;
    o.ro.c.clip_range = 1e-5;
    on_policy_case("cps", &o);

    init(&o, "mix", 1);
    fg(&o)->window = FR_FG_WINDOW_MIX;
    fg(&o)->kl_form = FR_KL_PAPER;
    o.ro.c.adv = FR_TRAIN_ADV_DDPO;
    o.ro.c.ddpo_min_count = 2;
    o.ro.opt.ema_decay = 0.9f;
    o.ro.opt.ema_every = 1;
    on_policy_case("mix + ddpo + ema + paper KL", &o);
}
END_TEST

/* The check above can fail: without recomputing CFG in training the ratios are not 1. */
START_TEST(test_ratio_differs_without_train_cfg)
{
    fr_rt_opts o;
    char b2[512];
    init(&o, "nocfg", 1);
    fr_rt_path(b2, sizeof b2, "base2.safetensors");
    perturb_base(b2);
    snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", b2);
    o.ro.smp.cfg = 2.5f;
    fg(&o)->train_cfg = 0;
    ratio_check rc = {0, 0, 0, 0.0f};
    fr_run_cb cb = {NULL, check_ratio, NULL, &rc, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(rc.n_bad > 0, "rollout CFG 2.5 but training without CFG: every ratio was still 1");
    fr_rt_opts_free(&o);
}
END_TEST

typedef struct {
    double first, last;
} curve;

static int record_epoch(const fr_run_epoch_event *ev, void *user)
{
    curve *c = user;
    double r = fr_run_event_get(ev, "reward_mean");
    if (ev->epoch == 1) c->first = r;
    c->last = r;
    return 0;
}

START_TEST(test_reward_improves_halfplane)
{
    fr_rt_opts o;
    init(&o, "learn", 20);
    snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
    o.ro.c.clip_range = 0.2; /* 1e-4 moves a tiny model too slowly */
    o.ro.opt.lr = 3e-3;
    o.ro.c.beta = 0.0f;
    o.ro.ev.eval_n = 8;
    curve c = {NAN, NAN};
    fr_run_cb cb = {record_epoch, NULL, NULL, &c, NULL};
    fr_run_result res;
    ck_assert_msg(fr_rt_run(&o, "opt", 2, &cb, &res) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(c.last > c.first + 0.2, "halfplane reward %g -> %g in 20 epochs, expected a rise > 0.2", c.first,
                  c.last);
    ck_assert_msg(res.have_after && res.score_after > res.score_before, "held-out halfplane %g -> %g",
                  res.score_before, res.score_after);
    fr_rt_opts_free(&o);
}
END_TEST

/* The NFE metrics counted by the model (flowrl/backend.h fr_work_stats) equal Flow-GRPO's
 * hand-derived budget per epoch: the rollout N·T rows, then per trained step j of the window
 * (wl steps) and per batch of b = kept / num_batches rows the policy's forward and backward
 * and, with β > 0, the reference's forward; a guided (CFG) forward or backward counts 2b. */
static const char *const k_fg_nfe[] = {"nfe.forward_rows", "nfe.backward_rows", "kept", "window_len", NULL};

START_TEST(test_nfe_formula)
{
    const struct {
        float cfg, beta;
    } cases[] = {{1.0f, 0.04f}, {2.0f, 0.0f}};
    for (int c = 0; c < 2; c++) {
        char run[32];
        snprintf(run, sizeof run, "nfe%d", c);
        fr_rt_opts o;
        init(&o, run, 2);
        o.ro.smp.cfg = cases[c].cfg;
        o.ro.c.beta = cases[c].beta;
        fr_rt_metrics m = {k_fg_nfe, {{0}}, 0};
        fr_run_cb cb = {fr_rt_metrics_record, NULL, NULL, &m, NULL};
        ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
        ck_assert_int_eq(m.epochs, 2);
        const double N = (double)(o.ro.c.prompts * o.ro.c.group), T = (double)o.ro.smp.num_steps;
        const double g = cases[c].cfg != 1.0f ? 2.0 : 1.0, nb = (double)o.ro.c.num_batches;
        for (int e = 0; e < 2; e++) {
            const double kept = m.v[2][e], wl = m.v[3][e];
            ck_assert_msg(kept > 0.0 && wl == floor(T * o.ro.c.timestep_fraction), "epoch %d: kept %g, window %g", e + 1,
                          kept, wl);
            const double rows = floor(kept / nb) * nb * wl * g;
            const double fwd = N * T * g + rows * (cases[c].beta > 0.0f ? 2.0 : 1.0);
            ck_assert_msg(m.v[0][e] == fwd && m.v[1][e] == rows, "cfg %g beta %g epoch %d: %g forward rows (want %g), "
                          "%g backward rows (want %g)", (double)cases[c].cfg, (double)cases[c].beta, e + 1, m.v[0][e],
                          fwd, m.v[1][e], rows);
        }
        fr_rt_opts_free(&o);
    }
}
END_TEST

START_TEST(test_checks)
{
    char out[8192];
    /* GRPO-Guard needs the sde sampler; num_batches must divide the samples; clip in (0, 1) */
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --base %s --out %s/x --sampler cps --guard batch", fr_rt_base,
                               fr_rt_dir), 2);
    ck_assert_ptr_nonnull(strstr(out, "GRPO-Guard"));
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --base %s --out %s/x --num-batches 3", fr_rt_base, fr_rt_dir),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--num-batches"));
    /* cff6d07: --clip-range 1 passed the CLI and failed at the first PPO step, leaving a run
     * directory that blocked --out */
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --base %s --out %s/x --clip-range 1", fr_rt_base, fr_rt_dir),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--clip-range"));
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --base %s --out %s/x --sampler ode", fr_rt_base, fr_rt_dir), 2);
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --base %s --out %s/x --noise-level 0", fr_rt_base, fr_rt_dir),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--noise-level"));
    ck_assert_int_eq(fr_rt_cli(out, sizeof out, "train --help"), 0);
    ck_assert_ptr_nonnull(strstr(out, "--clip-range"));
    ck_assert_ptr_nonnull(strstr(out, "--window-range-lo"));
}
END_TEST

/* cff6d07's spellings still work (with a warning) and mean the same run. */
START_TEST(test_deprecated_spellings)
{
    char out[16384];
    int rc = fr_rt_cli(out, sizeof out,
                       "train --base %s --task gmm2d --out %s/old --epochs 2 --prompts 2 --group 4 --steps 4 "
                       "--noise 0.8 --ema 0.9 --ema-every 1 --window fast --fast-window 1 --fast-range 0,2 "
                       "--global-std off --seed 3 --eval-n 0 --backend ref",
                       fr_rt_base, fr_rt_dir);
    ck_assert_msg(rc == 0, "old spellings exited %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "--steps is deprecated") && strstr(out, "--fast-range is deprecated") &&
                      strstr(out, "--global-std on|off is deprecated"),
                  "no deprecation warnings:\n%s", out);
    rc = fr_rt_cli(out, sizeof out,
                   "train --base %s --task gmm2d --out %s/new --epochs 2 --prompts-per-epoch 2 --group-size 4 "
                   "--num-steps 4 --noise-level 0.8 --ema-decay 0.9 --ema-every 1 --window fast --window-size 1 "
                   "--window-range-lo 0 --window-range-hi 2 --no-global-std --seed 3 --eval-n 0 --backend ref",
                   fr_rt_base, fr_rt_dir);
    ck_assert_msg(rc == 0, "new spellings exited %d:\n%s", rc, out);
    fr_rt_assert_same_records("old", "new", 2);
}
END_TEST

Suite *suite_train(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_on_policy_ratio_is_one);
    tcase_add_test(tc, test_ratio_differs_without_train_cfg);
    tcase_add_test(tc, test_reward_improves_halfplane);
    tcase_add_test(tc, test_checks);
    tcase_add_test(tc, test_nfe_formula);
    tcase_add_test(tc, test_deprecated_spellings);
    suite_add_tcase(s, tc);
    return s;
}
