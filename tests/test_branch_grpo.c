/* BranchGRPO on the run loop (core/algo/branch_grpo.c, docs/algorithms/flow-grpo.md §6): the
 * on-policy ratio at the first optimiser step of every epoch, every tree transition trained once
 * (one row per node and step), the shared prefixes of the leaves, depth and width pruning, and
 * the checks of the split and pruning lists. The properties every algorithm shares are in
 * tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/branch_grpo.h"
#include "flowrl/run.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_branch_opts *bo(fr_rt_opts *o) { return o->ao; }

/* T 6, splits at 0 and 2 of width 2 (4 leaves), P 4 trees in 2 batches, grad accum 2. */
static void init(fr_rt_opts *o, const char *run, int64_t epochs)
{
    fr_rt_opts_init(o, &fr_algo_branch_grpo, run, epochs);
    bo(o)->width = 2;
    o->ro.c.group = 4;
    o->ro.smp.num_steps = 6;
    o->ro.c.prompts = 4;
    o->ro.c.num_batches = 2;
    o->ro.c.grad_accum = 2;
    o->ro.c.clip_range = 1e-3;
}

/* ---- the records of the first epoch ------------------------------------------------------- */

typedef struct {
    float *traj, *adv;     /* (T+1, N, D), (n_split + 1, N) */
    uint8_t *trained;      /* (T, N) */
    int64_t D, N, T;
    int64_t ratio_rows[2]; /* epoch 1, 2: ratios over all optimiser steps */
    int64_t n_first, n_first_bad;
    float first_bad;
} recs;

static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    recs *c = user;
    if (step != 1) return FR_OK;
    const size_t n = (size_t)fr_tensor_numel(t);
    if (strcmp(name, "traj") == 0) {
        c->traj = malloc(n * sizeof *c->traj);
        memcpy(c->traj, t->data, n * sizeof *c->traj);
        c->N = t->shape[1];
        c->D = t->shape[2];
    } else if (strcmp(name, "adv_tree") == 0) {
        c->adv = malloc(n * sizeof *c->adv);
        memcpy(c->adv, t->data, n * sizeof *c->adv);
    } else if (strcmp(name, "trained") == 0) {
        c->trained = malloc(n);
        memcpy(c->trained, t->data, n);
        c->T = t->shape[0];
    }
    return FR_OK;
}

static void on_update(const fr_run_update_event *ev, void *user)
{
    recs *c = user;
    if (ev->epoch <= 2) c->ratio_rows[ev->epoch - 1] += ev->n_ratio;
    if (ev->update != 0) return; /* before the epoch's first optimiser step: on-policy */
    for (int64_t i = 0; i < ev->n_ratio; i++) {
        c->n_first++;
        if (!fr_test_bits_equal(ev->ratio[i], 1.0f)) {
            if (!c->n_first_bad) c->first_bad = ev->ratio[i];
            c->n_first_bad++;
        }
    }
}

static void run_recs(fr_rt_opts *o, recs *c)
{
    memset(c, 0, sizeof *c);
    fr_run_cb cb = {NULL, on_update, NULL, c, NULL};
    fr_run_env env = {fr_test_ref_be(), &cb, tap, c};
    fr_run_result res;
    ck_assert_msg(fr_run_new(&o->ro, o->ao, &env, &res) == FR_OK, "%s", fr_last_error());
    ck_assert_ptr_nonnull(c->traj);
    ck_assert_ptr_nonnull(c->trained);
    ck_assert_ptr_nonnull(c->adv);
}

static void free_recs(recs *c)
{
    free(c->traj);
    free(c->adv);
    free(c->trained);
}

static int64_t trained_at(const recs *c, int64_t i)
{
    int64_t n = 0;
    for (int64_t s = 0; s < c->N; s++) n += c->trained[i * c->N + s];
    return n;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* The first optimiser step of each epoch sees the policy that rolled the epoch out: ratio
 * exactly 1 on every transition, split steps (ξ ×4, nominal std in the log-prob) included. */
START_TEST(test_on_policy_each_epoch)
{
    fr_rt_opts o;
    init(&o, "onpol", 3);
    recs c;
    run_recs(&o, &c);
    ck_assert_msg(c.n_first > 0 && c.n_first_bad == 0, "%lld of %lld first-update ratios are not 1.0f (first %a)",
                  (long long)c.n_first_bad, (long long)c.n_first, (double)c.first_bad);
    free_recs(&c);
    fr_rt_opts_free(&o);
}
END_TEST

/* One transition per node and step: 1 row per tree before the first split, 2 after split 0, 4
 * after split 1; each trained row owns its noise (the node's first leaf); the optimiser steps
 * see every one of them once. */
START_TEST(test_every_transition_once)
{
    fr_rt_opts o;
    init(&o, "once", 1);
    recs c;
    run_recs(&o, &c);
    const int64_t P = o.ro.c.prompts, L = 4, nodes[6] = {2, 2, 4, 4, 4, 4}; /* splits at 0, 2 */
    ck_assert_int_eq(c.T, 6);
    int64_t total = 0;
    for (int64_t i = 0; i < c.T; i++) {
        ck_assert_msg(trained_at(&c, i) == P * nodes[i], "step %lld: %lld rows trained, want %lld", (long long)i,
                      (long long)trained_at(&c, i), (long long)(P * nodes[i]));
        const int64_t span = L / nodes[i];
        for (int64_t s = 0; s < c.N; s++) ck_assert(c.trained[i * c.N + s] == (s % span == 0));
        total += trained_at(&c, i);
    }
    ck_assert_int_eq(c.ratio_rows[0], total);
    free_recs(&c);
    fr_rt_opts_free(&o);
}
END_TEST

/* Two leaves of a tree share x_0..x_{at_c} bit for bit, at_c the split that separates them, and
 * differ from x_{at_c + 1}; leaves of different trees differ from x_0 (one x_T per tree). */
START_TEST(test_shared_prefixes)
{
    fr_rt_opts o;
    init(&o, "prefix", 1);
    recs c;
    run_recs(&o, &c);
    const int64_t L = 4, at[2] = {0, 2};
    for (int64_t a = 0; a < c.N; a++)
        for (int64_t b = a + 1; b < c.N; b++) {
            int64_t last_equal; /* the last state both hold */
            if (a / L != b / L)
                last_equal = -1;
            else
                last_equal = (a % L) / 2 == (b % L) / 2 ? at[1] : at[0];
            for (int64_t j = 0; j <= c.T; j++) {
                const float *xa = c.traj + (j * c.N + a) * c.D, *xb = c.traj + (j * c.N + b) * c.D;
                const int eq = memcmp(xa, xb, (size_t)c.D * sizeof *xa) == 0;
                if (j <= last_equal)
                    ck_assert_msg(eq, "leaves %lld, %lld differ at x_%lld (shared through x_%lld)", (long long)a,
                                  (long long)b, (long long)j, (long long)last_equal);
                else if (j == last_equal + 1)
                    ck_assert_msg(!eq, "leaves %lld, %lld equal at x_%lld (split at %lld)", (long long)a, (long long)b,
                                  (long long)j, (long long)last_equal);
            }
        }
    free_recs(&c);
    fr_rt_opts_free(&o);
}
END_TEST

/* Depth pruning drops the listed child step-depths (depth 2 = step 1, depth 6 = step 5); width
 * mode 1 keeps each leaf's first max(1, int(3 × 0.5)) = 1 step after the last split (step 3);
 * mode 2 keeps, of the 16 transitions at step 3 of the T 4 tree, the 4 best and 4 worst. */
START_TEST(test_pruning)
{
    fr_rt_opts o;
    recs c;
    init(&o, "depth", 1);
    snprintf(bo(&o)->depth_pruning, sizeof bo(&o)->depth_pruning, "2, 6");
    run_recs(&o, &c);
    const int64_t want_d[6] = {8, 0, 16, 16, 16, 0};
    for (int64_t i = 0; i < 6; i++) ck_assert_int_eq(trained_at(&c, i), want_d[i]);
    free_recs(&c);
    fr_rt_opts_free(&o);

    init(&o, "width1", 1);
    bo(&o)->width_mode = 1;
    run_recs(&o, &c);
    const int64_t want_w[6] = {8, 8, 16, 16, 0, 0};
    for (int64_t i = 0; i < 6; i++) ck_assert_int_eq(trained_at(&c, i), want_w[i]);
    free_recs(&c);
    fr_rt_opts_free(&o);

    init(&o, "width2", 1);
    o.ro.smp.num_steps = 4;
    bo(&o)->width_mode = 2;
    run_recs(&o, &c);
    ck_assert_int_eq(trained_at(&c, 3), 8);
    const float *leaf = c.adv + 2 * c.N; /* the leaves' advantages */
    for (int64_t s = 0; s < c.N; s++) {
        int64_t above = 0, below = 0; /* leaves ranked strictly before / after s */
        for (int64_t u = 0; u < c.N; u++) {
            above += leaf[u] > leaf[s] || (leaf[u] == leaf[s] && u < s);
            below += leaf[u] < leaf[s] || (leaf[u] == leaf[s] && u > s);
        }
        ck_assert_msg(c.trained[3 * c.N + s] == (above < 4 || below < 4), "leaf %lld (adv %g, rank %lld): trained %d",
                      (long long)s, (double)leaf[s], (long long)above, c.trained[3 * c.N + s]);
    }
    free_recs(&c);
    fr_rt_opts_free(&o);
}
END_TEST

/* Each bad list is refused with one line naming its flag. */
START_TEST(test_bad_lists)
{
    static const struct {
        const char *splits, *depths;
        int64_t group;
        const char *want;
    } cases[] = {
        {"", "", 4, "--tree-split-points"},         {"2,0", "", 4, "--tree-split-points"},
        {"0,0", "", 4, "--tree-split-points"},      {"0,6", "", 4, "--tree-split-points"},
        {"0,x", "", 4, "--tree-split-points"},      {"0,,2", "", 4, "--tree-split-points"},
        {"0;2", "", 4, "--tree-split-points"},      {"-1,2", "", 4, "--tree-split-points"},
        {"0,2", "0", 4, "--depth-pruning"},         {"0,2", "7", 4, "--depth-pruning"},
        {"0,2", "1,y", 4, "--depth-pruning"},       {"0,2", "", 8, "--group-size"},
        {"0,2,4", "", 4, "--group-size"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fr_rt_opts o;
        init(&o, "bad", 1);
        snprintf(bo(&o)->split_points, sizeof bo(&o)->split_points, "%s", cases[k].splits);
        snprintf(bo(&o)->depth_pruning, sizeof bo(&o)->depth_pruning, "%s", cases[k].depths);
        o.ro.c.group = cases[k].group;
        const fr_status s = fr_algo_branch_grpo.check(&o.ro, o.ao);
        ck_assert_msg(s == FR_ERR_ARG, "splits '%s' depths '%s' G %lld: accepted", cases[k].splits, cases[k].depths,
                      (long long)cases[k].group);
        ck_assert_msg(strstr(fr_last_error(), cases[k].want) && !strchr(fr_last_error(), '\n'), "%s",
                      fr_last_error());
        fr_rt_opts_free(&o);
    }
    fr_rt_opts o;
    init(&o, "good", 1);
    snprintf(bo(&o)->split_points, sizeof bo(&o)->split_points, " 0 , 5");
    ck_assert_msg(fr_algo_branch_grpo.check(&o.ro, o.ao) == FR_OK, "%s", fr_last_error());
    fr_rt_opts_free(&o);
}
END_TEST

Suite *suite_branch_grpo(void)
{
    Suite *s = suite_create("branch_grpo");
    TCase *tc = tcase_create("branch_grpo_run");
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_on_policy_each_epoch);
    tcase_add_test(tc, test_every_transition_once);
    tcase_add_test(tc, test_shared_prefixes);
    tcase_add_test(tc, test_pruning);
    tcase_add_test(tc, test_bad_lists);
    suite_add_tcase(s, tc);
    return s;
}
