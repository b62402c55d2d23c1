/* BalancedDPO (core/pair_dpo.c fr_pair_dpo_vote*, core/algo/dpo*.c; docs/algorithms/balanced-dpo.md):
 * the vote on a 3-metric truth table, ties, K = 1 as the single metric's labels (spec/more.md §5
 * check), the pairs, agreement shares and argument errors, the scorer list, and runs: at θ = ref the
 * first micro-batch's loss is softplus(0) (L = log 2) and the recorded labels are the vote of the
 * recorded scores. The DPO loss itself is tests/test_dpo.c; the generic run properties
 * tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dpo.h"
#include "flowrl/pair_dpo.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Every sign pattern of 3 metrics on one pair (a = 0, b = 1): the vote is the sign of their sum. */
START_TEST(test_vote_truth_table)
{
    const float d[3] = {-1.0f, 0.0f, 1.0f};
    for (int i = 0; i < 27; i++) {
        const int s0 = i % 3 - 1, s1 = i / 3 % 3 - 1, s2 = i / 9 - 1;
        /* score[k·2 + 0] (a) = d, score[k·2 + 1] (b) = 0 */
        const float sc[6] = {d[s0 + 1], 0.0f, d[s1 + 1], 0.0f, d[s2 + 1], 0.0f};
        const int sum = s0 + s1 + s2, want = (sum > 0) - (sum < 0);
        ck_assert_msg(fr_pair_dpo_vote(3, 2, sc, 0, 1) == want, "signs (%d, %d, %d): vote %d, want %d", s0, s1, s2,
                      fr_pair_dpo_vote(3, 2, sc, 0, 1), want);
        ck_assert_int_eq(fr_pair_dpo_vote(3, 2, sc, 1, 0), -want);
    }
    /* magnitudes do not count: one large win loses to two small losses */
    const float sc[6] = {100.0f, 0.0f, 0.0f, 0.01f, 0.0f, 0.01f};
    ck_assert_int_eq(fr_pair_dpo_vote(3, 2, sc, 0, 1), -1);
}
END_TEST

START_TEST(test_vote_pairs)
{
    enum { N = 8, G = 4 };
    /* K = 1: the metric's own order of each consecutive pair; an equal pair is dropped */
    const float one[N] = {0.1f, 0.5f, 0.9f, 0.2f, 0.3f, 0.3f, 0.0f, 1.0f};
    int64_t w[N / 2], l[N / 2], n;
    float label[N];
    double agree[3];
    ck_assert_int_eq(fr_pair_dpo_vote_pairs(1, N, G, one, w, l, label, agree, &n), FR_OK);
    ck_assert_int_eq(n, 3);
    ck_assert(w[0] == 1 && l[0] == 0 && w[1] == 2 && l[1] == 3 && w[2] == 7 && l[2] == 6);
    ck_assert(label[4] == 0.0f && label[5] == 0.0f && label[1] == 1.0f && label[0] == -1.0f);
    ck_assert(agree[0] == 1.0);
    /* K = 3: metric 2 disagrees on every pair, metric 1 ties on the second pair */
    const float three[3 * N] = {0.1f, 0.5f, 0.9f, 0.2f, 0.3f, 0.4f, 0.0f, 1.0f,  /* votes b, a, b, b */
                                0.0f, 1.0f, 0.5f, 0.5f, 0.1f, 0.2f, 0.0f, 1.0f,  /*       b, =, b, b */
                                1.0f, 0.0f, 0.0f, 1.0f, 0.2f, 0.1f, 1.0f, 0.0f}; /*       a, b, a, a */
    ck_assert_int_eq(fr_pair_dpo_vote_pairs(3, N, G, three, w, l, NULL, agree, &n), FR_OK);
    ck_assert_int_eq(n, 3); /* pair (2, 3): +1, 0, −1 → tie, dropped */
    ck_assert(w[0] == 1 && w[1] == 5 && w[2] == 7);
    ck_assert(agree[0] == 1.0 && agree[1] == 1.0 && agree[2] == 0.0);
    ck_assert_int_eq(fr_pair_dpo_vote_pairs(3, N, 3, three, w, l, NULL, NULL, &n), FR_ERR_ARG);
    ck_assert_int_eq(fr_pair_dpo_vote_pairs(0, N, G, three, w, l, NULL, NULL, &n), FR_ERR_ARG);
    ck_assert_int_eq(fr_pair_dpo_vote_pairs(3, 6, G, three, w, l, NULL, NULL, &n), FR_ERR_ARG);
}
END_TEST

START_TEST(test_scorer_list)
{
    const fr_task *t;
    ck_assert_int_eq(fr_task_get("gmm2d", &t), FR_OK);
    int ids[FR_DPO_MAX_SCORERS], K;
    /* gmm2d's rewards: mode, halfplane, sqdist (data/gmm2d.c) */
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "", "", ids, &K), FR_OK); /* the run's (mode), halfplane, sqdist */
    ck_assert(K == 3 && ids[0] == FR_DPO_SCORER_RUN && ids[1] == 1 && ids[2] == 2);
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "", "halfplane", ids, &K), FR_OK);
    ck_assert(K == 3 && ids[0] == FR_DPO_SCORER_RUN && ids[1] == 0 && ids[2] == 2);
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "", "cmd:x", ids, &K), FR_OK);
    ck_assert(K == 4 && ids[0] == FR_DPO_SCORER_RUN && ids[1] == 0 && ids[2] == 1 && ids[3] == 2);
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "halfplane,mode,reward", "", ids, &K), FR_OK);
    ck_assert(K == 3 && ids[0] == 1 && ids[1] == 0 && ids[2] == FR_DPO_SCORER_RUN);
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "mode,,halfplane", "", ids, &K), FR_ERR_ARG);
    ck_assert_int_eq(fr_dpo_scorer_ids(t, "mode,geneval", "", ids, &K), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "'geneval' is not a reward of task gmm2d"));
}
END_TEST

typedef struct {
    float scores[4 * 64], labels[64];
    int64_t ns, nl;
    int n_loss, bad_loss;
} b_tap;

static fr_status tap_b(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    b_tap *c = user;
    if (step != 1) return FR_OK;
    if (strcmp(name, "scores") == 0 && fr_tensor_numel(t) <= 4 * 64) memcpy(c->scores, t->data, (size_t)(c->ns = fr_tensor_numel(t)) * 4);
    if (strcmp(name, "labels") == 0 && fr_tensor_numel(t) <= 64) memcpy(c->labels, t->data, (size_t)(c->nl = fr_tensor_numel(t)) * 4);
    if (strcmp(name, "b0.k0.loss") == 0) {
        const float want = (float)fr_pair_dpo_softplus(0.0);
        c->n_loss++;
        c->bad_loss += memcmp(t->data, &want, sizeof want) != 0;
    }
    return FR_OK;
}

/* A run on ref and cuda-emu: the labels are the vote of the scores; before any update L = log 2. */
START_TEST(test_run)
{
    const char *bks[] = {"ref", "cuda-emu"};
    for (int k = 0; k < 2; k++) {
        char run[16];
        snprintf(run, sizeof run, "bal%d", k);
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_balanced_dpo, run, 1);
        fr_backend be;
        if (!fr_test_backend_try(&be, "balanced_dpo", bks[k], 1)) continue;
        b_tap c;
        memset(&c, 0, sizeof c);
        fr_run_env env = {&be, NULL, tap_b, &c};
        fr_run_result res;
        ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s: %s", bks[k], fr_last_error());
        const int64_t N = o.ro.c.prompts * o.ro.c.group;
        const fr_task *task; /* the default scorers: the run's reward and the task's others */
        ck_assert_int_eq(fr_task_get("gmm2d", &task), FR_OK);
        const int K = task->n_rewards;
        ck_assert_msg(c.nl == N && c.ns == K * N, "%s: %lld labels, %lld scores", bks[k], (long long)c.nl, (long long)c.ns);
        int64_t w[64], l[64], n;
        float want[64];
        ck_assert_int_eq(fr_pair_dpo_vote_pairs(K, N, o.ro.c.group, c.scores, w, l, want, NULL, &n), FR_OK);
        ck_assert(memcmp(want, c.labels, (size_t)N * 4) == 0);
        ck_assert_msg(c.n_loss == 1 && c.bad_loss == 0, "%s: the first micro-batch's loss is not softplus(0)", bks[k]);
        fr_rt_opts_free(&o);
    }
}
END_TEST

Suite *suite_balanced_dpo(void)
{
    Suite *s = suite_create("balanced_dpo");
    TCase *tc = tcase_create("vote");
    tcase_add_test(tc, test_vote_truth_table);
    tcase_add_test(tc, test_vote_pairs);
    tcase_add_test(tc, test_scorer_list);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_run);
    suite_add_tcase(s, tr);
    return s;
}
