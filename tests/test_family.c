/* The trajectory-GRPO family (core/algo/traj_family.h) across its registered members: the
 * on-policy invariant (every ratio of each epoch's first optimiser step is exactly 1), Chunk-GRPO
 * with one-step chunks equal to Flow-GRPO record for record, the backend rel-L1 equal to the
 * host one on every backend, DanceGRPO's per-sample step selection, MixGRPO-Flash's shorter
 * rollouts, every member on shapes (ref = opt, resumed), and DDPO-SF's gradient by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/chunk.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static const char *const k_members[] = {"flow-grpo",  "dance-grpo", "mix-grpo",    "tempflow-grpo",
                                        "chunk-grpo", "smart-grpo", "branch-grpo", "g2rpo",
                                        "ddpo",       NULL};

/* Sets the algorithm option `key` of o (its rows) from text. */
static void set_opt(fr_rt_opts *o, const char *key, const char *text)
{
    for (int i = 0; i < o->a->n_rows; i++)
        if (strcmp(o->a->rows[i].key, key) == 0) {
            ck_assert_msg(fr_opt_set(&o->a->rows[i], o->ao, text, "test") == FR_OK, "%s", fr_last_error());
            return;
        }
    ck_abort_msg("%s has no option %s", o->a->name, key);
}

typedef struct {
    int64_t first_updates, bad;
    float worst;
} onpolicy;

static void watch_update(const fr_run_update_event *ev, void *user)
{
    onpolicy *o = user;
    if (ev->update != 0) return;
    o->first_updates++;
    for (int64_t i = 0; i < ev->n_ratio; i++)
        if (ev->ratio[i] != 1.0f) {
            o->bad++;
            o->worst = ev->ratio[i];
        }
}

START_TEST(test_on_policy_ratio_exactly_one)
{
    int n = 0;
    for (const char *const *m = k_members; *m; m++) {
        const fr_algo *a;
        if (fr_algo_find(*m, &a) != FR_OK) continue; /* a member not (yet) registered */
        char run[64];
        snprintf(run, sizeof run, "%s-onpolicy", a->name);
        fr_rt_opts o;
        fr_rt_opts_init(&o, a, run, 3);
        onpolicy w = {0, 0, 1.0f};
        fr_run_cb cb = {NULL, watch_update, NULL, &w, NULL};
        ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(w.first_updates >= 2, "%s: %lld first updates in 3 epochs", a->name, (long long)w.first_updates);
        ck_assert_msg(w.bad == 0, "%s: %lld first-update ratios differ from 1 (e.g. %a)", a->name, (long long)w.bad,
                      (double)w.worst);
        fr_rt_opts_free(&o);
        n++;
    }
    ck_assert_int_ge(n, 6);
}
END_TEST

/* The audit records of run without the records named in skip (NULL-terminated) and without the
 * record counts of the end-step lines. */
static char *records_without(const char *run, const char *const *skip)
{
    char *r = fr_rt_records(run), *out = malloc(strlen(r) + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (char *line = strtok(r, "\n"); line; line = strtok(NULL, "\n")) {
        int drop = 0;
        char name[256];
        if (sscanf(line, "%*s %*s %255s", name) == 1)
            for (const char *const *s = skip; *s; s++) drop |= strcmp(name, *s) == 0;
        if (strncmp(line, "end-step ", 9) == 0) line[strcspn(line + 9, " ") + 9] = '\0'; /* drop its record count */
        if (!drop) o += sprintf(o, "%s\n", line);
    }
    *o = '\0';
    free(r);
    return out;
}

START_TEST(test_chunk_one_step_chunks_is_flow_grpo)
{
    const fr_algo *fg, *ch;
    ck_assert_int_eq(fr_algo_find("flow-grpo", &fg), FR_OK);
    ck_assert_int_eq(fr_algo_find("chunk-grpo", &ch), FR_OK);
    fr_rt_opts a, b;
    fr_rt_opts_init(&a, fg, "fg-vs-chunk", 3);
    fr_rt_opts_init(&b, ch, "chunk-vs-fg", 3);
    int64_t tt;
    ck_assert_int_eq(fr_train_steps(b.ro.smp.num_steps, b.ro.c.timestep_fraction, &tt), FR_OK);
    ck_assert_int_ge(tt, 2);
    char txt[32];
    snprintf(txt, sizeof txt, "%lld", (long long)tt);
    set_opt(&b, "chunks", txt); /* one step per chunk */
    /* chunk-grpo's defaults and tiny() are Flow-GRPO's (its tiny() adds only --chunks) */
    ck_assert_int_eq(a.ro.smp.num_steps, b.ro.smp.num_steps);
    ck_assert(a.ro.c.clip_range == b.ro.c.clip_range && a.ro.c.beta == b.ro.c.beta && a.ro.opt.lr == b.ro.opt.lr);
    ck_assert_msg(fr_rt_run(&a, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_rt_run(&b, "opt", 2, NULL, NULL) == FR_OK, "%s", fr_last_error());
    const char *const skip[] = {"rel_l1", "chunks", NULL};
    char *ra = records_without("fg-vs-chunk", skip), *rb = records_without("chunk-vs-fg", skip);
    ck_assert_ptr_nonnull(strstr(ra, "end-step 3\n"));
    size_t at = 0;
    while (ra[at] && ra[at] == rb[at]) at++;
    while (at > 0 && ra[at - 1] != '\n') at--;
    ck_assert_msg(strcmp(ra, rb) == 0, "Chunk-GRPO with %lld one-step chunks differs from Flow-GRPO at\n%.300s\nvs\n%.300s",
                  (long long)tt, ra + at, rb + at);
    free(ra);
    free(rb);
    /* and with 2 chunks it trains differently (the chunk ratio is really used) */
    fr_rt_opts c;
    fr_rt_opts_init(&c, ch, "chunk-two", 3);
    set_opt(&c, "chunks", "2");
    ck_assert_msg(fr_rt_run(&c, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    char *rc = records_without("chunk-two", skip);
    ra = records_without("fg-vs-chunk", skip);
    ck_assert_msg(strcmp(ra, rc) != 0, "two chunks train exactly as Flow-GRPO");
    free(ra);
    free(rc);
    fr_rt_opts_free(&a);
    fr_rt_opts_free(&b);
    fr_rt_opts_free(&c);
}
END_TEST

START_TEST(test_rel_l1_backend_equals_host)
{
    const int64_t T = 5, N = 7, D = 37;
    float *h = malloc((size_t)((T + 1) * N * D) * sizeof *h), want[5], got[5];
    ck_assert_ptr_nonnull(h);
    fr_rng_fill_normal(h, (T + 1) * N * D, 3, FR_RNG_TEST, 1, 2, 3);
    for (int64_t j = 0; j < D; j++) h[(2 * N + 3) * D + j] = 0.0f; /* a zero latent: the guard */
    ck_assert_int_eq(fr_traj_rel_l1(h, T, N, D, want), FR_OK);
    const char *names[] = {"ref", "opt", "cuda-emu"};
    for (int k = 0; k < 3; k++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "rel_l1", names[k], 2)) continue;
        float *d = fr_dev_floats(&be, (T + 1) * N * D);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(fr_h2d(&be, d, h, (size_t)((T + 1) * N * D) * sizeof *h), FR_OK);
        ck_assert_int_eq(fr_traj_rel_l1_dev(&be, d, T, N, D, got), FR_OK);
        for (int64_t i = 0; i < T; i++)
            ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s: d_%lld = %a, host %a", names[k], (long long)i,
                          (double)got[i], (double)want[i]);
        fr_dev_free(&be, d);
        fr_backend_close(&be);
    }
    free(h);
}
END_TEST

/* DanceGRPO's "steps" record: each sample trains n_train distinct steps of 0..T-2 — read back
 * from the audit log through the records' shapes, and the per-sample permutation is the
 * fr_rng_perm of its coordinates. */
START_TEST(test_dance_steps)
{
    const fr_algo *a;
    ck_assert_int_eq(fr_algo_find("dance-grpo", &a), FR_OK);
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, "dance-steps", 1);
    ck_assert_msg(fr_rt_run(&o, "ref", 1, NULL, NULL) == FR_OK, "%s", fr_last_error());
    const int64_t T = o.ro.smp.num_steps, N = o.ro.c.prompts * o.ro.c.group;
    int64_t n_train;
    ck_assert_int_eq(fr_train_steps(T - 1, o.ro.c.timestep_fraction, &n_train), FR_OK);
    char *rec = fr_rt_records("dance-steps"), want[64];
    snprintf(want, sizeof want, "step 1 steps I64 [%lld,%lld] ", (long long)N, (long long)n_train);
    ck_assert_msg(strstr(rec, want) != NULL, "no record '%s' in\n%.2000s", want, rec);
    free(rec);
    int64_t perm[64];
    for (int64_t s = 0; s < N; s++) {
        fr_rng_perm(perm, T - 1, o.ro.run.seed, FR_RNG_STEP_SELECT, 0, (uint32_t)s);
        uint8_t seen[64] = {0};
        for (int64_t k = 0; k < T - 1; k++) {
            ck_assert(perm[k] >= 0 && perm[k] < T - 1 && !seen[perm[k]]);
            seen[perm[k]] = 1;
        }
    }
    fr_rt_opts_free(&o);
}
END_TEST

/* metrics of a run's epochs (the family's window / rollout metrics) */
START_TEST(test_mix_flash_shorter_rollouts)
{
    const fr_algo *a;
    ck_assert_int_eq(fr_algo_find("mix-grpo", &a), FR_OK);
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, "mix-flash", 3);
    o.ro.smp.num_steps = 10;
    set_opt(&o, "mix_window", "2");
    set_opt(&o, "flash", "flash");
    const char *keys[] = {"rollout_steps", "window_start", "nfe.forward_rows", NULL};
    fr_rt_metrics m = {keys, {{0}}, 0};
    fr_run_cb cb = {fr_rt_metrics_record, NULL, NULL, &m, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    const double N = (double)(o.ro.c.prompts * o.ro.c.group);
    for (int e = 0; e < 3; e++) {
        /* window [c, c + 2): the tail from l + 1 = c + 2 has int(max((10 - l) 0.4, 1)) points */
        const int64_t l = (int64_t)m.v[1][e] + 1, n = (int64_t)fmax((double)(10 - l) * 0.4, 1.0);
        ck_assert_msg(m.v[0][e] == (double)(l + n) && m.v[0][e] < 10.0, "epoch %d: %g rollout steps, want %lld", e + 1,
                      m.v[0][e], (long long)(l + n));
        ck_assert_msg(m.v[2][e] >= N * m.v[0][e], "epoch %d: %g forward rows < the rollout's %g", e + 1, m.v[2][e],
                      N * m.v[0][e]);
    }
    fr_rt_opts_free(&o);
}
END_TEST

/* Every member trains on shapes (a small fresh model, the mock program's graded reward) end to
 * end: ref for 2 epochs equals opt at 2 threads for 1 epoch resumed to 2, record for record. */
START_TEST(test_shapes_ref_equals_opt_resumed)
{
    char base[400];
    int n = 0;
    for (const char *const *m = k_members; *m; m++) {
        const fr_algo *a;
        if (fr_algo_find(*m, &a) != FR_OK) continue;
        fr_rt_small_shapes_base(base, sizeof base, a->base_pred);
        char r1[64], r2[64];
        snprintf(r1, sizeof r1, "%s-shapes-ref", a->name);
        snprintf(r2, sizeof r2, "%s-shapes-opt", a->name);
        fr_rt_opts x, y;
        fr_rt_opts_init(&x, a, r1, 2);
        fr_rt_opts_init(&y, a, r2, 1);
        fr_rt_opts *both[] = {&x, &y};
        for (int k = 0; k < 2; k++) {
            snprintf(both[k]->ro.c.base, sizeof both[k]->ro.c.base, "%s", base);
            snprintf(both[k]->ro.c.task, sizeof both[k]->ro.c.task, "shapes");
            snprintf(both[k]->ro.c.reward, sizeof both[k]->ro.c.reward, "cmd:%s '%s/tests/reward_progs/mock_reward.py' ok",
                     fr_test_python(), fr_test_src());
        }
        ck_assert_msg(fr_rt_run(&x, "ref", 1, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        ck_assert_msg(fr_rt_run(&y, "opt", 2, NULL, NULL) == FR_OK, "%s: %s", a->name, fr_last_error());
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(r2, 2, 0, "opt", 2, &res) == FR_OK, "%s resume: %s", a->name, fr_last_error());
        fr_rt_assert_same_records(r1, r2, 2);
        fr_rt_opts_free(&x);
        fr_rt_opts_free(&y);
        n++;
    }
    ck_assert_int_ge(n, 8);
}
END_TEST

/* DDPO-SF (docs/algorithms/ddpo.md §3) by hand on two rows of a DDIM step: L = −mean(Â·logp),
 * Â clamped to ±5, g_μ = −Â·gout/b·(x' − μ)/(std²·D), ratios exp(logp − logp_old). */
START_TEST(test_ddpo_score_function_by_hand)
{
    enum { B = 2, D = 3 };
    float ab[FR_TEST_DDPM_NT];
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    fr_test_ddim_cfg(&rc, &sch, ab, 4, 0);
    fr_backend *be = fr_test_ref_be();
    const float xn[B * D] = {0.5f, -0.25f, 1.0f, 0.125f, 0.75f, -1.5f}, mu[B * D] = {0.25f, 0.0f, 0.5f, -0.125f, 1.0f, -1.0f};
    const float logp[B] = {-1.25f, -0.5f}, logp_old[B] = {-1.25f, -0.75f}, adv[B] = {7.0f, -0.5f};
    float *dx = fr_dev_floats(be, B * D), *dm = fr_dev_floats(be, B * D), *dg = fr_dev_floats(be, B * D),
          *ds = fr_dev_floats(be, B);
    ck_assert(dx && dm && dg && ds);
    ck_assert_int_eq(fr_h2d(be, dx, xn, sizeof xn), FR_OK);
    ck_assert_int_eq(fr_h2d(be, dm, mu, sizeof mu), FR_OK);
    float scratch[B], ratio[B], g[B * D];
    const int64_t rows[B] = {0, 1};
    fr_traj_batch tb = {B, D, fr_rollout_step(&rc, 1), NULL, dx, NULL, logp_old, adv, dm, logp, NULL, scratch, ds, rows, NULL};
    const fr_ppo_params prm = {1e-4, 5.0f};
    fr_traj_stats st;
    const float gout = 0.5f;
    ck_assert_int_eq(fr_traj_score_function.loss(be, &tb, 1, &prm, gout, dg, ratio, &st), FR_OK);
    ck_assert_int_eq(fr_d2h(be, g, dg, sizeof g), FR_OK);
    fr_step_std sd;
    ck_assert_int_eq(fr_sampler_std(&tb.step, &sd), FR_OK);
    const double var = (double)sd.std * sd.std, a[B] = {5.0, -0.5}; /* 7 clamped to 5 */
    ck_assert_double_eq_tol(st.obj, -(a[0] * logp[0] + a[1] * logp[1]) / B, 1e-6);
    for (int i = 0; i < B; i++) {
        ck_assert_double_eq_tol(ratio[i], exp((double)logp[i] - logp_old[i]), 1e-6);
        for (int d = 0; d < D; d++) {
            const double want = -a[i] * gout / B * (xn[i * D + d] - mu[i * D + d]) / (var * D);
            ck_assert_msg(fabs(g[i * D + d] - want) <= 1e-5 * fabs(want) + 1e-7, "row %d dim %d: %g, expected %g", i, d,
                          (double)g[i * D + d], want);
        }
    }
    ck_assert_float_eq(ratio[0], 1.0f); /* on-policy row: exactly 1 */
    ck_assert_float_eq(st.clipfrac, 0.0f);
    fr_dev_free(be, dx);
    fr_dev_free(be, dm);
    fr_dev_free(be, dg);
    fr_dev_free(be, ds);
    fr_rollout_schedule_free(&sch);
}
END_TEST

/* The audit tap's noise.x_T of audit step 1, copied: n rows of d; g the run's group size. */
typedef struct {
    float *x;
    int64_t n, d, g;
} xt_tap;

static fr_status tap_x_T(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    xt_tap *c = user;
    if (step != 1 || strcmp(name, "noise.x_T") != 0 || t->ndim != 2) return FR_OK;
    c->n = t->shape[0];
    c->d = t->shape[1];
    c->x = malloc((size_t)(c->n * c->d) * sizeof *c->x);
    ck_assert(c->x != NULL);
    memcpy(c->x, t->data, (size_t)(c->n * c->d) * sizeof *c->x);
    return FR_OK;
}

/* One tiny Flow-GRPO epoch on ref with init_same_noise = same_noise: its x_T. */
static xt_tap fg_x_T(const char *run, const char *same_noise)
{
    const fr_algo *a;
    ck_assert_int_eq(fr_algo_find("flow-grpo", &a), FR_OK);
    fr_rt_opts o;
    fr_rt_opts_init(&o, a, run, 1);
    set_opt(&o, "init_same_noise", same_noise);
    xt_tap c = {0};
    fr_run_result res;
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_run_env env = {&be, NULL, tap_x_T, &c};
    ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(c.x != NULL && c.n == o.ro.c.prompts * o.ro.c.group, "%s: no noise.x_T of P x G rows", run);
    c.g = o.ro.c.group;
    fr_rt_opts_free(&o);
    return c;
}

/* Flow-GRPO's --init-same-noise (DanceGRPO's init_same_noise): sample p·G + g starts from the x_T
 * that sample p·G draws without the option (x_T keyed by the group's first id), and without it
 * the G samples of a group start apart. */
START_TEST(test_fg_init_same_noise)
{
    xt_tap off = fg_x_T("fg-xt-off", "false"), on = fg_x_T("fg-xt-on", "true");
    ck_assert(on.n == off.n && on.d == off.d && off.g >= 2);
    const int64_t N = off.n, D = off.d, G = off.g;
    const size_t row = (size_t)D * sizeof(float);
    int64_t apart = 0;
    for (int64_t s = 0; s < N; s++) {
        const int64_t first = s / G * G;
        ck_assert_msg(memcmp(on.x + s * D, off.x + first * D, row) == 0,
                      "sample %lld: not the x_T of its group's first id %lld", (long long)s, (long long)first);
        if (s != first && memcmp(off.x + s * D, off.x + first * D, row) != 0) apart++;
    }
    ck_assert_int_eq(apart, N - N / G);
    free(off.x);
    free(on.x);
}
END_TEST

Suite *suite_family(void)
{
    Suite *s = suite_create("family");
    TCase *tc = tcase_create("family");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tc, test_on_policy_ratio_exactly_one);
    tcase_add_test(tc, test_chunk_one_step_chunks_is_flow_grpo);
    tcase_add_test(tc, test_rel_l1_backend_equals_host);
    tcase_add_test(tc, test_dance_steps);
    tcase_add_test(tc, test_fg_init_same_noise);
    tcase_add_test(tc, test_mix_flash_shorter_rollouts);
    tcase_add_test(tc, test_shapes_ref_equals_opt_resumed);
    tcase_add_test(tc, test_ddpo_score_function_by_hand);
    suite_add_tcase(s, tc);
    return s;
}
