/* G²RPO (core/algo/g2rpo.c, docs/algorithms/flow-grpo.md §7): the granularity grids by hand, the
 * list options, and a live run (audit tap): ratio exactly 1 in each epoch's first update (the
 * later ones follow an optimiser step), the members of one (k, prompt) sharing x_0..x_k bit for bit
 * and parting at x_{k+1}, granularity 2's samples equal to an independent rollout of the tree on
 * its own grid (whose x_{k+1} is granularity 1's, bit for bit), and the advantages equal to the sum
 * of the local-group advantages of the recorded rewards. Then the refused options, one line each. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/algo/g2rpo.h"
#include "flowrl/advantage.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/task.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static void assert_grid(const float *sig, int64_t T, int64_t k, int64_t g, const float *want, int64_t n)
{
    float out[16];
    int64_t len = -1;
    fr_g2rpo_grid(sig, T, k, g, out, &len);
    ck_assert_msg(len == n, "k %lld g %lld: %lld points, want %lld", (long long)k, (long long)g, (long long)len,
                  (long long)n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(out[i] == want[i], "k %lld g %lld: point %lld = %g, want %g", (long long)k, (long long)g,
                      (long long)i, (double)out[i], (double)want[i]);
}

/* σ[:k+2] ++ σ[k+2::g] as Python slices it, the last point set to 0. */
START_TEST(test_g2rpo_grid)
{
    const float s[7] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.0f}; /* T 6 */
    assert_grid(s, 6, 0, 1, s, 7);
    assert_grid(s, 6, 0, 2, (const float[]){1.0f, 0.9f, 0.8f, 0.6f, 0.0f}, 5);        /* ends at σ_6 = 0 */
    assert_grid(s, 6, 1, 2, (const float[]){1.0f, 0.9f, 0.8f, 0.7f, 0.0f}, 5);        /* σ_5 = 0.5 set to 0 */
    assert_grid(s, 6, 4, 3, s, 7);                                                      /* σ[6::3] = [0] */
    assert_grid(s, 6, 1, 10, (const float[]){1.0f, 0.9f, 0.8f, 0.0f}, 4);              /* σ[3::10] = [σ_3] */
    assert_grid(s, 6, 2, 3, (const float[]){1.0f, 0.9f, 0.8f, 0.7f, 0.0f}, 5);         /* σ[4::3] = [σ_4] */
}
END_TEST

START_TEST(test_g2rpo_parse)
{
    int64_t v[4], n;
    ck_assert_int_eq(fr_g2rpo_parse_list("0,1,5", "--x", 0, 5, v, 4, &n), FR_OK);
    ck_assert(n == 3 && v[0] == 0 && v[1] == 1 && v[2] == 5);
    ck_assert_int_eq(fr_g2rpo_parse_list("7", "--x", 0, 9, v, 4, &n), FR_OK);
    ck_assert(n == 1 && v[0] == 7);
    const char *bad[] = {"", "1,", ",1", "1,,2", "a", "1 2", "-1", "6", "2,1", "1,1", "0,1,2,3,4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(fr_g2rpo_parse_list(bad[i], "--x", 0, 5, v, 4, &n) == FR_ERR_ARG, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(fr_last_error(), "--x") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    }
}
END_TEST

/* ---- a live run ------------------------------------------------------------------------------ */

enum { P = 2, G = 4, NK = 2, T = 4, B = P * G, N = NK * B };
static const int64_t k_steps[NK] = {0, 1};

typedef struct {
    int64_t D;
    int prompts[P];
    float *traj, *logp, *rew, *rew2, *x2, *adv; /* of audit step 1 */
    int n_update[3], bad_ratio[3], moved[3];     /* per epoch: updates, update-0 ratios != 1, update-1 ratios != 1 */
} g2_tap;

static float *grab(const fr_tensor *t, int64_t want)
{
    ck_assert_msg(t->dtype == FR_F32 && fr_tensor_numel(t) == want, "record of %lld values, want %lld",
                  (long long)fr_tensor_numel(t), (long long)want);
    float *p = malloc((size_t)want * sizeof *p);
    ck_assert_ptr_nonnull(p);
    memcpy(p, t->data, (size_t)want * sizeof *p);
    return p;
}

static fr_status tap(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    g2_tap *c = user;
    if (step != 1) return FR_OK;
    const int64_t D = c->D;
    if (strcmp(name, "prompts") == 0) {
        ck_assert(t->dtype == FR_I32 && fr_tensor_numel(t) == P);
        memcpy(c->prompts, t->data, sizeof c->prompts);
    } else if (strcmp(name, "traj") == 0)
        c->traj = grab(t, (T + 1) * N * D);
    else if (strcmp(name, "logp_old") == 0)
        c->logp = grab(t, T * N);
    else if (strcmp(name, "rewards") == 0)
        c->rew = grab(t, N);
    else if (strcmp(name, "rewards.g2") == 0)
        c->rew2 = grab(t, N);
    else if (strcmp(name, "x.g2") == 0)
        c->x2 = grab(t, N * D);
    else if (strcmp(name, "adv") == 0)
        c->adv = grab(t, N);
    return FR_OK;
}

static void on_update(const fr_run_update_event *ev, void *user)
{
    g2_tap *c = user;
    ck_assert(ev->epoch >= 1 && ev->epoch <= 2);
    ck_assert_int_eq(ev->n_ratio, B);
    c->n_update[ev->epoch]++;
    for (int64_t i = 0; i < ev->n_ratio; i++) {
        if (ev->update == 0) c->bad_ratio[ev->epoch] += ev->ratio[i] != 1.0f;
        if (ev->update == 1) c->moved[ev->epoch] += ev->ratio[i] != 1.0f;
    }
}

static const float *X(const g2_tap *c, int64_t j, int64_t s)
{
    return c->traj + (j * N + s) * c->D;
}

static int same(const float *a, const float *b, int64_t D)
{
    return memcmp(a, b, (size_t)D * sizeof *a) == 0;
}

START_TEST(test_g2rpo_run)
{
    /* the fixture's base has v = 0 (zero output layer): every grid would give the same ODE
     * samples. A base with every parameter moved a little tells the grids apart. */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_model m;
    ck_assert_int_eq(fr_model_load(&m, &be, fr_rt_base), FR_OK);
    uint64_t rs = 0x62B0ull;
    for (int i = 0; i < m.n_params; i++) {
        float *v = m.values[i].data; /* ref: host memory */
        for (int64_t j = 0; j < fr_tensor_numel(&m.values[i]); j++) v[j] += fr_test_uniform(&rs, -0.3f, 0.3f);
    }
    char base[400];
    snprintf(base, sizeof base, "%s/g2-base.safetensors", fr_rt_dir);
    ck_assert_int_eq(fr_model_save(&m, base), FR_OK);
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_g2rpo, "live", 2);
    snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", base);
    ck_assert(o.ro.smp.num_steps == T && o.ro.c.prompts == P && o.ro.c.group == G);
    ck_assert_str_eq(((fr_g2rpo_opts *)o.ao)->eta_steps, ""); /* 0..T/2 − 1 */
    ck_assert_str_eq(((fr_g2rpo_opts *)o.ao)->granular, "1,2");
    snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "halfplane");
    g2_tap c;
    memset(&c, 0, sizeof c);
    c.D = fr_task_gmm2d.D;
    const int64_t D = c.D;
    fr_run_cb cb = {NULL, on_update, NULL, &c, NULL};
    fr_run_env env = {&be, &cb, tap, &c};
    fr_run_result res;
    ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s", fr_last_error());
    ck_assert(c.traj && c.logp && c.rew && c.rew2 && c.x2 && c.adv);

    /* one optimiser step per k; the first on-policy, the second after a step */
    for (int e = 1; e <= 2; e++) {
        ck_assert_int_eq(c.n_update[e], NK);
        ck_assert_msg(c.bad_ratio[e] == 0, "epoch %d: %d ratios of update 0 differ from 1", e, c.bad_ratio[e]);
        ck_assert_msg(c.moved[e] > 0, "epoch %d: update 1 is on-policy too: the first step moved nothing", e);
    }

    /* rows [k][p][m]: shared x_T per prompt across k, the anchor x_0..x_k per (k, p), apart at x_{k+1};
     * a log-prob at step k only */
    for (int64_t i = 0; i < NK; i++) {
        const int64_t k = k_steps[i];
        for (int64_t p = 0; p < P; p++) {
            const int64_t s0 = (i * P + p) * G;
            for (int64_t g = 0; g < G; g++) {
                ck_assert(same(X(&c, 0, s0 + g), X(&c, 0, p * G), D)); /* x_T: one per prompt, every k */
                for (int64_t j = 0; j <= k; j++) ck_assert_msg(same(X(&c, j, s0 + g), X(&c, j, s0), D), "x_%lld", (long long)j);
                for (int64_t q = 0; q < g; q++) ck_assert(!same(X(&c, k + 1, s0 + g), X(&c, k + 1, s0 + q), D));
                for (int64_t j = 0; j < T; j++) ck_assert((c.logp[j * N + s0 + g] != 0.0f) == (j == k));
            }
        }
    }

    /* advantages: Σ over granularities of the local-group advantages (groups of G), in g order */
    float a1[N], a2[N];
    ck_assert_int_eq(fr_adv_local_group(N, c.rew, G, FR_ADV_EPS_LOCAL, a1), FR_OK);
    ck_assert_int_eq(fr_adv_local_group(N, c.rew2, G, FR_ADV_EPS_LOCAL, a2), FR_OK);
    int nonzero = 0;
    for (int64_t s = 0; s < N; s++) {
        const float want = (0.0f + a1[s]) + a2[s];
        ck_assert_msg(memcmp(&want, &c.adv[s], sizeof want) == 0, "adv[%lld] = %.9g, want %.9g", (long long)s,
                      (double)c.adv[s], (double)want);
        nonzero += c.adv[s] != 0.0f;
    }
    ck_assert_msg(nonzero > 0, "every advantage is 0: the test would not see a wrong sum");

    /* granularity 2: the tree rolled out alone on σ[:k+2] ++ σ[k+2::2] (last point 0) by the base
     * model gives the recorded x.g2, and its x_{k+1} is granularity 1's */
    fr_rollout_schedule sched;
    fr_rollout_cfg full = fr_rollout_cfg_default(FR_SAMPLER_SDE);
    full.T = T;
    ck_assert_int_eq(fr_rollout_schedule_make(&full, FR_GRID_LINEAR, 3.0, 0, 0, &sched), FR_OK);
    const float *sg = full.sigmas;
    const float grids[NK][T + 1] = {{sg[0], sg[1], sg[2], sg[4]}, {sg[0], sg[1], sg[2], 0.0f}};
    ck_assert(sg[4] == 0.0f && sg[3] > 0.0f); /* k = 1: σ[3::2] = [σ_3], set to 0 */
    int pid[B];
    uint32_t sid[B];
    for (int64_t s = 0; s < B; s++) pid[s] = c.prompts[s / G], sid[s] = (uint32_t)s;
    float *tr = fr_dev_floats(&be, T * B * D), *x = fr_dev_floats(&be, B * D);
    ck_assert(tr && x);
    for (int64_t i = 0; i < NK; i++) {
        const int64_t k = k_steps[i];
        float lev[T - 1] = {0};
        lev[k] = 0.7f;
        const fr_rollout_branch br = {k, G, 1.0f};
        fr_rollout_cfg rc = full;
        rc.T = T - 1;
        rc.sigmas = grids[i];
        rc.step_noise = lev;
        rc.branch = &br;
        rc.n_branch = 1;
        rc.seed = o.ro.run.seed;
        rc.time_quantized = 1;
        rc.c0 = 0;
        fr_rollout_traj tj = {tr, NULL, NULL, NULL, NULL};
        ck_assert_msg(fr_rollout(&m, &be, &fr_task_gmm2d, &rc, B, pid, sid, NULL, x, &tj) == FR_OK, "%s", fr_last_error());
        for (int64_t s = 0; s < B; s++) {
            ck_assert_msg(same(tr + ((k + 1) * B + s) * D, X(&c, k + 1, i * B + s), D), "k %lld row %lld: x_{k+1}",
                          (long long)k, (long long)s);
            ck_assert_msg(same(x + s * D, c.x2 + (i * B + s) * D, D), "k %lld row %lld: granularity 2's sample",
                          (long long)k, (long long)s);
        }
        /* the continuation differs from granularity 1's (a coarser grid) */
        ck_assert(!same(x, X(&c, T, i * B), D));
    }
    fr_dev_free(&be, tr);
    fr_dev_free(&be, x);
    fr_rollout_schedule_free(&sched);
    fr_model_free(&m);
    void *bufs[] = {c.traj, c.logp, c.rew, c.rew2, c.x2, c.adv};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    fr_backend_close(&be);
    fr_rt_opts_free(&o);
}
END_TEST

/* Refused before anything is written: one line naming the option, exit status 2. */
START_TEST(test_g2rpo_bad_options)
{
    const char *const cases[][2] = {
        {"--eta-step-list 0,9", "--eta-step-list"}, /* 9 > T − 2 = 8 */
        {"--eta-step-list 1,0", "--eta-step-list"},
        {"--eta-step-list x", "--eta-step-list"},
        {"--eta-step-list ,", "--eta-step-list"},
        {"--granular-list 2", "--granular-list"},
        {"--granular-list 1,1", "--granular-list"},
        {"--granular-list 1,0", "--granular-list"},
        {"--beta 0.1", "--beta"},
        {"--sampler dance", "--sampler"},
        {"--group-size 1", "--group-size"},
        {"--noise-level 0", "--noise-level"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[4096];
        int rc = fr_rt_cli(out, sizeof out, "train --algo g2rpo --base %s --out %s/bad --num-steps 10 %s", fr_rt_base,
                           fr_rt_dir, cases[i][0]);
        ck_assert_msg(rc == 2, "%s: exit %d:\n%s", cases[i][0], rc, out);
        ck_assert_msg(strstr(out, cases[i][1]) != NULL, "%s: the message does not name %s:\n%s", cases[i][0],
                      cases[i][1], out);
        /* the run header (stdout) may come first; the error is one line */
        int errs = 0;
        for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
            if (strncmp(p, "flowrl train:", 13) == 0) {
                errs++;
                const char *e = strchr(p, '\n');
                ck_assert_msg(e && e[1] == '\0', "%s: the error is not the last line:\n%s", cases[i][0], out);
                ck_assert_msg(memmem(p, (size_t)(e - p), cases[i][1], strlen(cases[i][1])) != NULL,
                              "%s: the error line does not name %s:\n%s", cases[i][0], cases[i][1], out);
            }
        ck_assert_msg(errs == 1, "%s: %d error lines:\n%s", cases[i][0], errs, out);
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/bad/config.json", fr_rt_dir);
        ck_assert_msg(stat(p, &st) != 0, "%s: a refused run wrote %s", cases[i][0], p);
    }
}
END_TEST

Suite *suite_g2rpo(void)
{
    Suite *s = suite_create("g2rpo");
    TCase *tc = tcase_create("g2rpo");
    tcase_add_test(tc, test_g2rpo_grid);
    tcase_add_test(tc, test_g2rpo_parse);
    suite_add_tcase(s, tc);
    TCase *run = tcase_create("g2rpo_run");
    tcase_add_checked_fixture(run, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(run, 120);
    tcase_add_test(run, test_g2rpo_run);
    tcase_add_test(run, test_g2rpo_bad_options);
    suite_add_tcase(s, run);
    return s;
}
