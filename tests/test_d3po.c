/* D3PO (core/algo/d3po.c, docs/algorithms/d3po.md): a pair's two rows start from one x_T bit
 * for bit and then draw their own noise; the preference follows the rewards (ties (0, 0));
 * the first update of a run is at θ = ref (every ratio exactly 1, the loss softplus(0)); a
 * tied pair trains nothing (no gradient at all) while a decided one does; the checks' one-line
 * errors. The generic properties (ref = opt, resume, audit) are tests/test_algos.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/detmath.h"
#include "flowrl/run.h"
#include "flowrl/safetensors.h"
#include "flowrl/schedule.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

extern const fr_algo fr_algo_d3po;

static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    return step == 1 ? fr_st_add(user, name, t) : FR_OK;
}

static const float *rec(const fr_st_file *f, const char *name, int64_t n)
{
    const fr_tensor *t = fr_st_get(f, name);
    ck_assert_msg(t != NULL && t->dtype == FR_F32, "record %s missing", name);
    ck_assert_int_eq(fr_tensor_numel(t), n);
    return t->data;
}

/* One epoch of the tiny configuration (4 pairs, T 4, 3 steps trained) through the run loop
 * with an audit tap: x_T shared by pairs, pref from the rewards, the first update at θ = ref. */
START_TEST(test_pairs_one_epoch)
{
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_d3po, "run", 1);
    const int64_t N = o.ro.c.prompts * o.ro.c.group, T = o.ro.smp.num_steps, D = 2;
    ck_assert_int_eq(o.ro.c.group, 2);
    fr_st_file f;
    fr_st_init(&f);
    fr_run_result res;
    fr_run_env env = {fr_test_ref_be(), NULL, tap, &f};
    ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s", fr_last_error());
    const float *traj = rec(&f, "traj", (T + 1) * N * D), *rw = rec(&f, "rewards", N), *h = rec(&f, "pref", N);
    for (int64_t i = 0; i < N / 2; i++) {
        const float *a = traj + 2 * i * D, *b = a + D, *a1 = traj + N * D + 2 * i * D;
        ck_assert_msg(memcmp(a, b, D * sizeof *a) == 0, "pair %lld: x_T differs", (long long)i);
        ck_assert_msg(memcmp(a1, a1 + D, D * sizeof *a1) != 0, "pair %lld: x_1 equal (shared step noise?)", (long long)i);
        if (i > 0) ck_assert_msg(memcmp(a, traj, D * sizeof *a) != 0, "pairs 0 and %lld share x_T", (long long)i);
        const float r0 = rw[2 * i], r1 = rw[2 * i + 1];
        const float want = r0 > r1 ? 1.0f : r0 < r1 ? -1.0f : 0.0f;
        ck_assert_msg(h[2 * i] == want && h[2 * i + 1] == -want, "pair %lld: rewards %g %g, pref %g %g", (long long)i,
                      (double)r0, (double)r1, (double)h[2 * i], (double)h[2 * i + 1]);
        ck_assert(!signbit(h[2 * i]) || h[2 * i] != 0.0f);
        ck_assert(!signbit(h[2 * i + 1]) || h[2 * i + 1] != 0.0f);
    }
    /* the first optimiser step runs at θ = ref: every ratio exactly 1, the loss (a sum of
     * means of softplus(0) weighted by gouts summing to 1) softplus(0) to float rounding */
    const fr_tensor *u0 = fr_st_get(&f, "u0.ratio");
    ck_assert(u0 != NULL && fr_tensor_numel(u0) > 0);
    for (int64_t k = 0; k < fr_tensor_numel(u0); k++) ck_assert(((const float *)u0->data)[k] == 1.0f);
    const float loss = rec(&f, "u0.loss", 1)[0], sp0 = fr_softplusf(0.0f);
    ck_assert_msg(fabsf(loss - sp0) <= 4.0f * (nextafterf(sp0, INFINITY) - sp0), "u0.loss %a, softplus(0) %a",
                  (double)loss, (double)sp0);
    fr_st_free(&f);
    fr_rt_opts_free(&o);
}
END_TEST

/* A tied pair's rows (h = 0, 0) through fr_traj_micro_step at θ ≠ ref: the policy's gradient
 * stays exactly 0; a decided pair's does not. */
START_TEST(test_tie_trains_nothing)
{
    enum { N = 4, T = 4 };
    float ab[FR_TEST_DDPM_NT];
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    fr_test_ddim_cfg(&rc, &sch, ab, T, 1);
    rc.x_T_key = FR_XT_GROUP;
    rc.group_size = 2;
    fr_backend *be = fr_test_ref_be();
    fr_model pol, ref;
    fr_test_make_model(&pol, &fr_task_gmm2d, FR_PRED_EPSILON, 7);
    fr_test_make_model(&ref, &fr_task_gmm2d, FR_PRED_EPSILON, 7);
    uint64_t s = 99; /* θ = ref + U(−1e-3, 1e-3): ratios near 1 but not 1 (host memory: ref) */
    for (int i = 0; i < pol.n_params; i++) {
        float *v = pol.values[i].data;
        for (int64_t k = 0; k < fr_tensor_numel(&pol.values[i]); k++) v[k] += fr_test_uniform(&s, -1e-3f, 1e-3f);
    }
    const int64_t D = pol.cfg.D, A = fr_model_arena_floats(&pol);
    int pid[N] = {0, 0, 1, 1};
    uint32_t sid[N] = {0, 1, 2, 3};
    float *traj = fr_dev_floats(be, (T + 1) * N * D), *mean = fr_dev_floats(be, T * N * D),
          *dlogp = fr_dev_floats(be, T * N), *x = fr_dev_floats(be, N * D);
    ck_assert(traj && mean && dlogp && x);
    fr_rollout_traj tj = {traj, mean, dlogp, NULL, NULL};
    ck_assert_msg(fr_rollout(&pol, be, &fr_task_gmm2d, &rc, N, pid, sid, NULL, x, &tj) == FR_OK, "%s", fr_last_error());
    float logp_h[T * N], adv[N] = {0};
    ck_assert_int_eq(fr_d2h(be, logp_h, dlogp, sizeof logp_h), FR_OK);
    const float h[N] = {0, 0, -1, 1};
    const fr_traj_pair_params prm = {0.1f, 0.1, h};
    const fr_traj_trainer tr = {&pol, &ref, be, {1.0f, 0}, &fr_traj_pair_pref, &prm, 0.0f, FR_KL_CODE};
    const fr_traj_data d = {N, traj, mean, logp_h, adv, pid, &fr_task_gmm2d, &rc, NULL, NULL};
    fr_traj_ws w;
    ck_assert_msg(fr_traj_ws_alloc(&w, &tr, N) == FR_OK, "%s", fr_last_error());
    float *g = malloc((size_t)A * sizeof *g);
    ck_assert(g);
    for (int pair = 0; pair < 2; pair++) {
        const int64_t rows[2] = {2 * pair, 2 * pair + 1};
        float ratio[2];
        fr_traj_stats st;
        fr_model_zero_grad(&pol, be);
        ck_assert_msg(fr_traj_micro_step(&tr, &w, &d, rows, 2, 1, 1.0f, ratio, &st) == FR_OK, "%s", fr_last_error());
        ck_assert(ratio[0] != 1.0f && ratio[1] != 1.0f);
        ck_assert_msg(st.clipfrac == 0.0f, "ratios %g %g outside the band", (double)ratio[0], (double)ratio[1]);
        ck_assert_int_eq(fr_d2h(be, g, pol.arena_grads, (size_t)A * sizeof *g), FR_OK);
        int64_t nz = 0;
        for (int64_t k = 0; k < A; k++) nz += g[k] != 0.0f;
        if (pair == 0) {
            ck_assert_msg(nz == 0, "tied pair: %lld non-zero gradient entries", (long long)nz);
            ck_assert(st.obj == fr_softplusf(0.0f));
        } else
            ck_assert_msg(nz > A / 4, "decided pair: only %lld of %lld gradient entries non-zero", (long long)nz,
                          (long long)A);
    }
    free(g);
    fr_traj_ws_free(&w);
    fr_dev_free(be, traj);
    fr_dev_free(be, mean);
    fr_dev_free(be, dlogp);
    fr_dev_free(be, x);
    fr_model_free(&pol);
    fr_model_free(&ref);
    fr_rollout_schedule_free(&sch);
}
END_TEST

/* The CLI's one-line refusals: an odd group, batches that do not divide the pairs, a KL. */
START_TEST(test_d3po_errors)
{
    char out[4096], p[400];
    const char *base = fr_rt_base_eps;
    struct {
        const char *args, *want;
    } cases[] = {
        {"--group-size 3", "--group-size 3"},
        {"--prompts-per-epoch 3 --num-batches 2", "--num-batches 2"},
        {"--beta 0.04", "--beta"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = fr_rt_cli(out, sizeof out, "train --algo d3po --task gmm2d --base %s --out %s --epochs 1 %s", base,
                           fr_rt_path(p, sizeof p, "bad"), cases[i].args);
        ck_assert_msg(rc != 0, "%s: exit 0", cases[i].args);
        const char *line = strstr(out, "train: d3po: "), *end = line ? strchr(line, '\n') : NULL;
        const char *at = strstr(out, cases[i].want);
        ck_assert_msg(line && at && at > line && (!end || at < end), "%s: %s", cases[i].args, out);
    }
}
END_TEST

Suite *suite_d3po(void)
{
    Suite *s = suite_create("d3po");
    TCase *tc = tcase_create("d3po");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tc, test_pairs_one_epoch);
    tcase_add_test(tc, test_tie_trains_nothing);
    tcase_add_test(tc, test_d3po_errors);
    suite_add_tcase(s, tc);
    return s;
}
