/* The rollout loop (flowrl/rollout.h), the evaluation (flowrl/evaluate.h) and the
 * `flowrl sample` / `flowrl eval` commands. Models are tiny and randomly initialised
 * (every parameter, the zero-initialised output layer included, drawn from a seeded
 * generator), so the tests exercise the wiring, not the quality. */
#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flowrl/cond.h"
#include "flowrl/evaluate.h"
#include "flowrl/philox.h"
#include "flowrl/png.h"
#include "flowrl/rollout.h"
#include "flowrl/safetensors.h"
#include "flowrl/schedule.h"
#include "tests/model_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0x5EEDull

static const fr_task *task(const char *name)
{
    const fr_task *t;
    ck_assert(fr_task_get(name, &t) == FR_OK);
    return t;
}

/* ᾱ of DDPM's linear schedule over n_train steps. */
static float *ddpm_alpha_bar(int64_t n_train)
{
    float *betas = malloc((size_t)n_train * sizeof *betas), *ab = malloc((size_t)n_train * sizeof *ab);
    ck_assert(betas && ab);
    ck_assert(fr_betas_linear(n_train, 1e-4, 0.02, betas) == FR_OK);
    ck_assert(fr_alphas_cumprod(n_train, betas, ab) == FR_OK);
    free(betas);
    return ab;
}

/* A rollout config with its grids (owned by sched / *ab). */
static fr_rollout_cfg make_cfg(fr_sampler_kind kind, int64_t T, float g, fr_rollout_schedule *sched, float **ab)
{
    fr_rollout_cfg c = fr_rollout_cfg_default(kind);
    c.T = T;
    c.cfg = g;
    c.seed = 1234;
    c.c0 = 7;
    *ab = NULL;
    if (kind == FR_SAMPLER_DDIM) {
        *ab = ddpm_alpha_bar(1000);
        c.alpha_bar = *ab;
        c.noise = 1.0f; /* DDPO's η: a stochastic DDIM with log-probs */
    }
    ck_assert_msg(fr_rollout_schedule_make(&c, FR_GRID_DIFFUSERS, 3.0, 1000, 1, sched) == FR_OK, "%s",
                  fr_last_error());
    return c;
}

typedef struct {
    float *x, *traj, *mean, *logp;
    fr_step_std *std;
    fr_rollout_traj tr;
} outputs;

static void outputs_alloc(outputs *o, int64_t T, int64_t B, int64_t D, int want_logp)
{
    o->x = calloc((size_t)(B * D), sizeof(float));
    o->traj = calloc((size_t)((T + 1) * B * D), sizeof(float));
    o->mean = calloc((size_t)(T * B * D), sizeof(float));
    o->logp = want_logp ? calloc((size_t)(T * B), sizeof(float)) : NULL;
    o->std = calloc((size_t)T, sizeof(fr_step_std));
    ck_assert(o->x && o->traj && o->mean && o->std && (!want_logp || o->logp));
    o->tr.traj = o->traj;
    o->tr.mean = o->mean;
    o->tr.logp = o->logp;
    o->tr.std = o->std;
    o->tr.xi = NULL;
}

static void outputs_free(outputs *o)
{
    free(o->x);
    free(o->traj);
    free(o->mean);
    free(o->logp);
    free(o->std);
}

/* Bitwise equality of n floats; prints the first difference. */
static void assert_bits(const char *what, const float *a, const float *b, int64_t n, const char *ctx)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(a[i], b[i]) && a[i] == a[i], "%s: %s[%lld] %a vs %a", ctx, what,
                      (long long)i, (double)a[i], (double)b[i]);
}

static const fr_sampler_kind k_kinds[] = {FR_SAMPLER_ODE, FR_SAMPLER_SDE, FR_SAMPLER_CPS,
                                          FR_SAMPLER_DANCE, FR_SAMPLER_DPM, FR_SAMPLER_DDIM};
#define N_KINDS (int)(sizeof k_kinds / sizeof k_kinds[0])

/* Every kind, with and without CFG: the same call twice gives the same bits, and batch
 * sizes 1, 3 and B give the same samples, trajectories, means, log-probs and std's.
 * A permuted batch gives the permuted rows (batch composition does not matter). */
START_TEST(test_batch_independence)
{
    const fr_task *t = task("gmm2d");
    fr_backend *be = fr_test_ref_be();
    fr_model mv, me;
    fr_test_make_model(&mv, t, FR_PRED_VELOCITY, SEED);
    fr_test_make_model(&me, t, FR_PRED_EPSILON, SEED + 1);
    enum { B = 7, T = 6 };
    const int64_t D = t->D;
    int prompts[B] = {0, 3, 7, -1, 5, 3, 1};
    uint32_t ids[B] = {0, 1, 2, 3, 4, 5, 1000000};
    int perm_p[B];
    uint32_t perm_i[B];
    for (int b = 0; b < B; b++) {
        perm_p[b] = prompts[B - 1 - b];
        perm_i[b] = ids[B - 1 - b];
    }
    const float gs[2] = {1.0f, 2.5f};
    for (int k = 0; k < N_KINDS; k++) {
        for (int gi = 0; gi < 2; gi++) {
            char ctx[96];
            snprintf(ctx, sizeof ctx, "sampler %s cfg %g (seed %llx)", fr_sampler_name(k_kinds[k]), (double)gs[gi],
                     SEED);
            const fr_model *m = k_kinds[k] == FR_SAMPLER_DDIM ? &me : &mv;
            fr_rollout_schedule sched;
            float *ab;
            fr_rollout_cfg c = make_cfg(k_kinds[k], T, gs[gi], &sched, &ab);
            const int lp = fr_sampler_is_stochastic(c.kind);
            outputs ref, o;
            outputs_alloc(&ref, T, B, D, lp);
            c.batch = 0;
            ck_assert_msg(fr_rollout(m, be, t, &c, B, prompts, ids, NULL, ref.x, &ref.tr) == FR_OK, "%s: %s", ctx,
                          fr_last_error());
            for (int64_t i = 0; i < B * D; i++) ck_assert_msg(ref.x[i] == ref.x[i], "%s: NaN sample", ctx);
            const int64_t batches[4] = {B, 1, 3, 2};
            for (int bi = 0; bi < 4; bi++) {
                outputs_alloc(&o, T, B, D, lp);
                c.batch = batches[bi];
                ck_assert(fr_rollout(m, be, t, &c, B, prompts, ids, NULL, o.x, &o.tr) == FR_OK);
                assert_bits("x", ref.x, o.x, B * D, ctx);
                assert_bits("traj", ref.traj, o.traj, (T + 1) * B * D, ctx);
                assert_bits("mean", ref.mean, o.mean, T * B * D, ctx);
                if (lp) assert_bits("logp", ref.logp, o.logp, T * B, ctx);
                for (int i = 0; i < T; i++)
                    ck_assert(fr_test_bits_equal(ref.std[i].std, o.std[i].std) &&
                              fr_test_bits_equal(ref.std[i].std_dev, o.std[i].std_dev));
                outputs_free(&o);
            }
            /* reversed rows, batch 2 */
            outputs_alloc(&o, T, B, D, lp);
            c.batch = 2;
            ck_assert(fr_rollout(m, be, t, &c, B, perm_p, perm_i, NULL, o.x, &o.tr) == FR_OK);
            for (int b = 0; b < B; b++) {
                assert_bits("x (permuted)", ref.x + b * D, o.x + (B - 1 - b) * D, D, ctx);
                for (int i = 0; lp && i < T; i++)
                    assert_bits("logp (permuted)", ref.logp + i * B + b, o.logp + i * B + (B - 1 - b), 1, ctx);
            }
            outputs_free(&o);
            /* a different seed changes the samples (the noise is really used) */
            float *x2 = malloc((size_t)(B * D) * sizeof *x2);
            c.seed ^= 1;
            ck_assert(fr_rollout(m, be, t, &c, B, prompts, ids, NULL, x2, NULL) == FR_OK);
            ck_assert_msg(memcmp(x2, ref.x, (size_t)(B * D) * sizeof *x2) != 0, "%s: seed has no effect", ctx);
            free(x2);
            outputs_free(&ref);
            fr_rollout_schedule_free(&sched);
            free(ab);
        }
    }
    fr_model_free(&mv);
    fr_model_free(&me);
}
END_TEST

/* The rollout's trajectory, means, log-probs and std's equal a loop written by hand over
 * fr_model_forward, fr_cfg_combine, the Philox noise and fr_sampler_step, bit for bit. */
static void check_by_hand(fr_sampler_kind kind, float g)
{
    const fr_task *t = task("gmm2d");
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, t, kind == FR_SAMPLER_DDIM ? FR_PRED_EPSILON : FR_PRED_VELOCITY, SEED + 2);
    enum { B = 5, T = 5 };
    const int64_t D = t->D, S = m.cfg.n_slots;
    int prompts[B] = {2, 0, 6, 6, -1};
    uint32_t ids[B] = {10, 11, 12, 13, 14};
    fr_rollout_schedule sched;
    float *ab;
    fr_rollout_cfg c = make_cfg(kind, T, g, &sched, &ab);
    c.batch = 2;
    const int lp = fr_sampler_is_stochastic(kind);
    outputs o;
    outputs_alloc(&o, T, B, D, lp);
    ck_assert_msg(fr_rollout(&m, be, t, &c, B, prompts, ids, NULL, o.x, &o.tr) == FR_OK, "%s", fr_last_error());

    char ctx[64];
    snprintf(ctx, sizeof ctx, "by hand: %s cfg %g", fr_sampler_name(kind), (double)g);
    float x[B * 2], xn[B * 2], vc[B * 2], vu[B * 2], v[B * 2], xi[B * 2], mu[B * 2], x0[B * 2], logp[B], tin[B];
    int32_t cc[B * 8], cu[B * 8];
    int nulls[B] = {-1, -1, -1, -1, -1};
    ck_assert(D == 2 && S <= 8);
    ck_assert(fr_cond_ids(t, B, prompts, cc) == FR_OK);
    ck_assert(fr_cond_ids(t, B, nulls, cu) == FR_OK);
    fr_model_ws ws;
    ck_assert(fr_model_ws_alloc(&ws, &m, B, 0) == FR_OK);
    for (int b = 0; b < B; b++) fr_rng_fill_normal(x + b * D, D, c.seed, FR_RNG_SAMPLER_INIT, c.c0, ids[b], 0);
    assert_bits("traj[0]", x, o.traj, B * D, ctx);
    for (int i = 0; i < T; i++) {
        fr_step p;
        memset(&p, 0, sizeof p);
        p.kind = kind;
        p.noise = c.noise;
        if (kind == FR_SAMPLER_DDIM) {
            int64_t tt = c.timesteps[i], prev = tt - 1000 / T < 0 ? 0 : tt - 1000 / T;
            p.alpha_bar = ab[tt];
            p.alpha_bar_prev = ab[prev];
            for (int b = 0; b < B; b++) tin[b] = (float)tt;
        } else {
            p.sigma = c.sigmas[i];
            p.sigma_next = c.sigmas[i + 1];
            p.sigma1 = c.sigmas[1];
            p.order = kind == FR_SAMPLER_DPM && i > 0 ? 2 : 1;
            p.sigma_prev = i > 0 ? c.sigmas[i - 1] : 1.0f;
            for (int b = 0; b < B; b++) tin[b] = 1000.0f * c.sigmas[i];
        }
        ck_assert(fr_model_forward(&m, be, &ws, B, x, tin, cc, vc) == FR_OK);
        if (g != 1.0f) {
            ck_assert(fr_model_forward(&m, be, &ws, B, x, tin, cu, vu) == FR_OK);
            for (int k = 0; k < B * D; k++) v[k] = vu[k] + g * (vc[k] - vu[k]);
        } else {
            memcpy(v, vc, sizeof v);
        }
        fr_step_std sd;
        ck_assert(fr_sampler_std(&p, &sd) == FR_OK);
        const float *xip = NULL;
        if (lp && sd.std != 0.0f) {
            for (int b = 0; b < B; b++)
                fr_rng_fill_normal(xi + b * D, D, c.seed, FR_RNG_SAMPLER_NOISE, c.c0, ids[b], (uint32_t)i);
            xip = xi;
        }
        ck_assert(fr_sampler_step(fr_test_ref_be(), &p, B, D, x, v, p.order == 2 ? x0 : NULL, xip, xn, mu,
                                  lp ? logp : NULL, NULL) == FR_OK);
        if (kind == FR_SAMPLER_DPM)
            for (int k = 0; k < B * D; k++) x0[k] = x[k] - p.sigma * v[k];
        assert_bits("traj", xn, o.traj + (i + 1) * B * D, B * D, ctx);
        assert_bits("mean", mu, o.mean + i * B * D, B * D, ctx);
        if (lp) assert_bits("logp", logp, o.logp + i * B, B, ctx);
        ck_assert(fr_test_bits_equal(sd.std, o.std[i].std) && fr_test_bits_equal(sd.std_dev, o.std[i].std_dev));
        memcpy(x, xn, sizeof x);
    }
    assert_bits("x", x, o.x, B * D, ctx);
    fr_model_ws_free(&ws);
    outputs_free(&o);
    fr_rollout_schedule_free(&sched);
    free(ab);
    fr_model_free(&m);
}

START_TEST(test_matches_hand_loop)
{
    for (int k = 0; k < N_KINDS; k++) {
        check_by_hand(k_kinds[k], 1.0f);
        check_by_hand(k_kinds[k], 3.0f);
    }
}
END_TEST

/* CFG wiring: g = 0 is the unconditional velocity exactly (v_u + 0·(v_c − v_u) = v_u),
 * so it equals the plain path with the null prompt; g = 1 is the plain conditional path
 * (checked against the hand loop above); g = 2.5 differs from both. */
START_TEST(test_cfg)
{
    const fr_task *t = task("gmm2d");
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 3);
    enum { B = 6, T = 4 };
    const int64_t D = t->D;
    int prompts[B] = {0, 1, 2, 3, 4, 5}, nulls[B] = {-1, -1, -1, -1, -1, -1};
    uint32_t ids[B] = {0, 1, 2, 3, 4, 5};
    const fr_sampler_kind kinds[2] = {FR_SAMPLER_ODE, FR_SAMPLER_SDE};
    for (int k = 0; k < 2; k++) {
        fr_rollout_schedule s0, s1, s2;
        float *ab;
        fr_rollout_cfg c0 = make_cfg(kinds[k], T, 0.0f, &s0, &ab);
        fr_rollout_cfg c1 = make_cfg(kinds[k], T, 1.0f, &s1, &ab);
        fr_rollout_cfg c2 = make_cfg(kinds[k], T, 2.5f, &s2, &ab);
        float xg0[B * 2], xnull[B * 2], xc[B * 2], xg2[B * 2];
        ck_assert(fr_rollout(&m, be, t, &c0, B, prompts, ids, NULL, xg0, NULL) == FR_OK);
        ck_assert(fr_rollout(&m, be, t, &c1, B, nulls, ids, NULL, xnull, NULL) == FR_OK);
        ck_assert(fr_rollout(&m, be, t, &c1, B, prompts, ids, NULL, xc, NULL) == FR_OK);
        ck_assert(fr_rollout(&m, be, t, &c2, B, prompts, ids, NULL, xg2, NULL) == FR_OK);
        assert_bits("cfg 0 vs null prompt", xg0, xnull, B * D, fr_sampler_name(kinds[k]));
        ck_assert(memcmp(xc, xnull, sizeof xc) != 0);
        ck_assert(memcmp(xg2, xc, sizeof xc) != 0);
        fr_rollout_schedule_free(&s0);
        fr_rollout_schedule_free(&s1);
        fr_rollout_schedule_free(&s2);
    }
    fr_model_free(&m);
}
END_TEST

/* x_init replaces the drawn x_T: passing the drawn one back reproduces the run, and a
 * deterministic sampler then needs no sample ids. */
START_TEST(test_x_init)
{
    const fr_task *t = task("gmm2d");
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 4);
    enum { B = 4, T = 3 };
    int prompts[B] = {1, 2, 3, 4};
    uint32_t ids[B] = {9, 8, 7, 6};
    fr_rollout_schedule s;
    float *ab;
    fr_rollout_cfg c = make_cfg(FR_SAMPLER_DPM, T, 1.5f, &s, &ab);
    outputs o;
    outputs_alloc(&o, T, B, 2, 0);
    float x2[B * 2];
    ck_assert(fr_rollout(&m, be, t, &c, B, prompts, ids, NULL, o.x, &o.tr) == FR_OK);
    ck_assert(fr_rollout(&m, be, t, &c, B, prompts, NULL, o.traj, x2, NULL) == FR_OK);
    assert_bits("x from x_init", o.x, x2, B * 2, "dpm");
    outputs_free(&o);
    fr_rollout_schedule_free(&s);
    free(ab);
    fr_model_free(&m);
}
END_TEST

/* The opt backend gives ref's bits (docs/design.md §1) through the whole rollout, with CFG
 * and noise, on an image-sized task (shapes, D = 768). */
START_TEST(test_opt_equals_ref)
{
    const fr_task *t = task("shapes");
    fr_backend *ref = fr_test_ref_be(), opt;
    if (fr_backend_open(&opt, "opt", 0, 0) != FR_OK) return; /* not built in */
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 7);
    enum { B = 5, T = 3 };
    const int64_t D = t->D;
    int prompts[B] = {52, 60, 69, -1, 3};
    uint32_t ids[B] = {0, 1, 2, 3, 4};
    fr_rollout_schedule s;
    float *ab;
    fr_rollout_cfg c = make_cfg(FR_SAMPLER_SDE, T, 4.5f, &s, &ab);
    outputs a, b;
    outputs_alloc(&a, T, B, D, 1);
    outputs_alloc(&b, T, B, D, 1);
    ck_assert(fr_rollout(&m, ref, t, &c, B, prompts, ids, NULL, a.x, &a.tr) == FR_OK);
    c.batch = 2;
    ck_assert(fr_rollout(&m, &opt, t, &c, B, prompts, ids, NULL, b.x, &b.tr) == FR_OK);
    assert_bits("traj", a.traj, b.traj, (T + 1) * B * D, "opt vs ref, sde cfg 4.5");
    assert_bits("logp", a.logp, b.logp, T * B, "opt vs ref, sde cfg 4.5");
    outputs_free(&a);
    outputs_free(&b);
    fr_rollout_schedule_free(&s);
    fr_model_free(&m);
}
END_TEST

/* Refusals: sampler / prediction mismatch, log-probs of a deterministic sampler or of
 * noise 0, a model that does not fit the task, a bad grid. */
START_TEST(test_errors)
{
    const fr_task *t = task("gmm2d");
    fr_backend *be = fr_test_ref_be();
    fr_model mv, me, ms;
    fr_test_make_model(&mv, t, FR_PRED_VELOCITY, SEED);
    fr_test_make_model(&me, t, FR_PRED_EPSILON, SEED);
    fr_test_make_model(&ms, task("shapes"), FR_PRED_VELOCITY, SEED);
    int prompts[2] = {0, 1};
    uint32_t ids[2] = {0, 1};
    float x[2 * 2], logp[4 * 2];
    fr_rollout_schedule s1, s2;
    float *ab;
    fr_rollout_cfg cf = make_cfg(FR_SAMPLER_ODE, 4, 1.0f, &s1, &ab);
    fr_rollout_cfg cd = make_cfg(FR_SAMPLER_DDIM, 4, 1.0f, &s2, &ab);
    ck_assert(fr_rollout(&me, be, t, &cf, 2, prompts, ids, NULL, x, NULL) == FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "ddim") != NULL);
    ck_assert(fr_rollout(&mv, be, t, &cd, 2, prompts, ids, NULL, x, NULL) == FR_ERR_ARG);
    ck_assert(fr_rollout(&ms, be, t, &cf, 2, prompts, ids, NULL, x, NULL) == FR_ERR_ARG);
    fr_rollout_traj tr = {NULL, NULL, logp, NULL, NULL};
    ck_assert(fr_rollout(&mv, be, t, &cf, 2, prompts, ids, NULL, x, &tr) == FR_ERR_ARG);
    cd.noise = 0.0f;
    ck_assert(fr_rollout(&me, be, t, &cd, 2, prompts, ids, NULL, x, &tr) == FR_ERR_ARG);
    int bad[2] = {0, 99};
    ck_assert(fr_rollout(&mv, be, t, &cf, 2, bad, ids, NULL, x, NULL) == FR_ERR_ARG);
    float sig[5] = {1.0f, 0.5f, 0.5f, 0.2f, 0.0f};
    cf.sigmas = sig;
    ck_assert(fr_rollout(&mv, be, t, &cf, 2, prompts, ids, NULL, x, NULL) == FR_ERR_ARG);
    fr_rollout_schedule_free(&s1);
    fr_rollout_schedule_free(&s2);
    free(ab);
    fr_model_free(&mv);
    fr_model_free(&me);
    fr_model_free(&ms);
}
END_TEST

/* Evaluation of a random model: counts add up, accuracies are in [0, 1], every group of
 * the task appears, and the result does not depend on the batch size. shapes has four
 * groups over its 18 held-out prompts. */
static void check_eval(const char *task_name, int n, int64_t T)
{
    const fr_task *t = task(task_name);
    fr_backend *be = fr_test_ref_be();
    fr_model m;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 5);
    fr_rollout_schedule s;
    float *ab;
    fr_rollout_cfg c = make_cfg(FR_SAMPLER_ODE, T, 1.0f, &s, &ab);
    fr_eval_opts o = fr_eval_opts_default();
    o.n = n;
    fr_eval_result r1, r2;
    c.batch = 64;
    ck_assert_msg(fr_evaluate(&m, be, t, &c, &o, &r1) == FR_OK, "%s", fr_last_error());
    c.batch = 5;
    ck_assert(fr_evaluate(&m, be, t, &c, &o, &r2) == FR_OK);
    ck_assert_int_eq(r1.n_prompts, t->n_eval);
    ck_assert_int_eq(r1.n_groups, t->n_groups);
    ck_assert_int_eq(r1.samples, (int64_t)t->n_eval * n);
    int64_t sum_s = 0, sum_c = 0;
    int sum_p = 0;
    for (int g = 0; g < r1.n_groups; g++) {
        ck_assert_msg(r1.group_prompts[g] > 0, "%s: group %s has no eval prompt", task_name, t->group_names[g]);
        ck_assert(r1.group_correct[g] >= 0 && r1.group_correct[g] <= r1.group_samples[g]);
        ck_assert(r1.group_score[g] >= 0.0 && r1.group_score[g] <= 1.0);
        sum_p += r1.group_prompts[g];
        sum_s += r1.group_samples[g];
        sum_c += r1.group_correct[g];
        ck_assert_int_eq(r1.group_correct[g], r2.group_correct[g]);
        ck_assert(memcmp(&r1.group_score[g], &r2.group_score[g], sizeof(double)) == 0);
    }
    ck_assert_int_eq(sum_p, r1.n_prompts);
    ck_assert_int_eq(sum_s, r1.samples);
    ck_assert_int_eq(sum_c, r1.correct);
    ck_assert(r1.score >= 0.0 && r1.score <= 1.0 && memcmp(&r1.score, &r2.score, sizeof(double)) == 0);
    for (int i = 0; i < r1.n_prompts; i++) {
        ck_assert_int_eq(r1.prompt_ids[i], t->eval_first + i);
        ck_assert(r1.prompt_correct[i] >= 0 && r1.prompt_correct[i] <= n);
    }
    /* diversity: the same bits at every batch size (5 splits prompts across chunks), and
     * per prompt the mean over ordered pairs i != j of ||x_i - x_j|| / sqrt(D) of the samples
     * drawn again here at the eval's coordinates */
    ck_assert(memcmp(&r1.diversity, &r2.diversity, sizeof(double)) == 0 && r1.diversity > 0.0);
    const int64_t D = t->D;
    float *xs = malloc((size_t)(n * D) * sizeof *xs);
    int *pids = malloc((size_t)n * sizeof *pids);
    uint32_t *sids = malloc((size_t)n * sizeof *sids);
    ck_assert(xs && pids && sids);
    fr_rollout_cfg ce = c;
    ce.seed = o.seed;
    ce.c0 = FR_ROLLOUT_C0_EVAL;
    double div_sum = 0.0, gsum[16] = {0};
    ck_assert(t->n_groups <= 16);
    for (int i = 0; i < r1.n_prompts; i++) {
        ck_assert(memcmp(&r1.prompt_diversity[i], &r2.prompt_diversity[i], sizeof(double)) == 0);
        for (int k = 0; k < n; k++) {
            pids[k] = r1.prompt_ids[i];
            sids[k] = (uint32_t)pids[k] * FR_EVAL_MAX_N + (uint32_t)k;
        }
        ck_assert(fr_rollout_to_host(&m, be, t, &ce, n, pids, sids, xs) == FR_OK);
        double want = 0.0;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                if (a == b) continue;
                double ss = 0.0;
                for (int64_t d = 0; d < D; d++) ss += ((double)xs[a * D + d] - xs[b * D + d]) * ((double)xs[a * D + d] - xs[b * D + d]);
                want += sqrt(ss / (double)D);
            }
        want /= (double)n * (double)(n - 1);
        ck_assert_msg(fabs(r1.prompt_diversity[i] - want) <= 1e-12 * want, "prompt %d: diversity %.17g, direct %.17g",
                      r1.prompt_ids[i], r1.prompt_diversity[i], want);
        div_sum += r1.prompt_diversity[i];
        gsum[t->prompt_group(r1.prompt_ids[i])] += r1.prompt_diversity[i];
    }
    ck_assert(fabs(r1.diversity - div_sum / r1.n_prompts) <= 1e-15 * div_sum);
    for (int g = 0; g < r1.n_groups; g++)
        ck_assert(fabs(r1.group_diversity[g] - gsum[g] / r1.group_prompts[g]) <= 1e-15 * gsum[g]);
    free(xs);
    free(pids);
    free(sids);
    /* the train split has its own prompts */
    fr_eval_result r3;
    o.split = FR_SPLIT_TRAIN;
    o.n = 1;
    ck_assert(fr_evaluate(&m, be, t, &c, &o, &r3) == FR_OK);
    ck_assert_int_eq(r3.n_prompts, t->n_train);
    ck_assert_int_eq(r3.prompt_ids[0], 0);
    ck_assert(r3.diversity == 0.0 && r3.prompt_diversity[0] == 0.0); /* one sample per prompt: no pair */
    fr_eval_result_free(&r1);
    fr_eval_result_free(&r2);
    fr_eval_result_free(&r3);
    o.n = 0;
    ck_assert(fr_evaluate(&m, be, t, &c, &o, &r1) == FR_ERR_ARG);
    fr_rollout_schedule_free(&s);
    fr_model_free(&m);
}

START_TEST(test_eval_gmm2d) { check_eval("gmm2d", 16, 8); }
END_TEST

START_TEST(test_eval_shapes) { check_eval("shapes", 2, 3); }
END_TEST

/* fr_eval_kl (flowrl/evaluate.h): the KL of a model to itself is exactly 0; to another
 * model it is > 0 and, with guidance 1 on gmm2d, within 1e-5 (relative) of a direct
 * computation (one rollout of all n samples of a prompt, the reference's forward over them at
 * every step, Σ_d (μ − μ_ref)² / (2σ²) summed in double here instead of the op's float row
 * sums); the same bits at batch 5 on opt as at batch 64 on ref. */
static void check_eval_kl(const char *task_name, int n, int64_t T, float g, int direct)
{
    const fr_task *t = task(task_name);
    fr_backend *be = fr_test_ref_be(), opt;
    const int have_opt = fr_backend_open(&opt, "opt", 0, 0) == FR_OK;
    fr_model m, ref;
    fr_test_make_model(&m, t, FR_PRED_VELOCITY, SEED + 5);
    fr_test_make_model(&ref, t, FR_PRED_VELOCITY, SEED + 9);
    fr_rollout_schedule s, sk;
    float *ab, *abk;
    fr_rollout_cfg c = make_cfg(FR_SAMPLER_ODE, 3, 1.0f, &s, &ab);
    fr_rollout_cfg k = make_cfg(FR_SAMPLER_SDE, T, g, &sk, &abk);
    k.noise = 0.7f;
    fr_eval_opts o = fr_eval_opts_default();
    o.n = n;
    fr_eval_result r0, r1, r2;
    ck_assert(fr_evaluate(&m, be, t, &c, &o, &r0) == FR_OK);
    ck_assert(!r0.have_kl);
    ck_assert_msg(fr_eval_kl(&m, &m, be, t, &k, &o, &r0) == FR_OK, "%s", fr_last_error());
    ck_assert(r0.have_kl && r0.kl == 0.0 && r0.kl_per_dim == 0.0);
    for (int i = 0; i < r0.n_prompts; i++) ck_assert(r0.prompt_kl[i] == 0.0);
    k.batch = 64;
    ck_assert(fr_evaluate(&m, be, t, &c, &o, &r1) == FR_OK);
    ck_assert_msg(fr_eval_kl(&m, &ref, be, t, &k, &o, &r1) == FR_OK, "%s", fr_last_error());
    ck_assert(r1.kl > 0.0 && isfinite(r1.kl) && r1.kl_per_dim == r1.kl / t->D);
    fr_backend *b2 = have_opt ? &opt : be;
    k.batch = 5;
    ck_assert(fr_evaluate(&m, b2, t, &c, &o, &r2) == FR_OK);
    ck_assert(fr_eval_kl(&m, &ref, b2, t, &k, &o, &r2) == FR_OK);
    ck_assert_msg(memcmp(&r1.kl, &r2.kl, sizeof(double)) == 0, "KL %.17g at batch 64 on ref, %.17g at batch 5 on %s",
                  r1.kl, r2.kl, b2->name);
    double sum = 0.0;
    for (int i = 0; i < r1.n_prompts; i++) {
        ck_assert(memcmp(&r1.prompt_kl[i], &r2.prompt_kl[i], sizeof(double)) == 0);
        sum += r1.prompt_kl[i];
    }
    ck_assert(fabs(r1.kl - sum / r1.n_prompts) <= 1e-14 * r1.kl);
    for (int gi = 0; gi < r1.n_groups; gi++) ck_assert(memcmp(&r1.group_kl[gi], &r2.group_kl[gi], sizeof(double)) == 0);
    if (direct) {
        const int64_t D = t->D;
        float *traj = malloc((size_t)((T + 1) * n * D) * sizeof(float)), *mean = malloc((size_t)(T * n * D) * sizeof(float));
        float *x = malloc((size_t)(n * D) * sizeof(float)), *v = malloc((size_t)(n * D) * sizeof(float));
        float *mref = malloc((size_t)(n * D) * sizeof(float)), *tin = malloc((size_t)n * sizeof(float));
        int *pids = malloc((size_t)n * sizeof(int));
        uint32_t *sids = malloc((size_t)n * sizeof(uint32_t));
        int32_t *cid = malloc((size_t)(n * ref.cfg.n_slots) * sizeof(int32_t));
        ck_assert(traj && mean && x && v && mref && tin && pids && sids && cid);
        fr_model_ws ws;
        ck_assert(fr_model_ws_alloc(&ws, &ref, n, 0) == FR_OK);
        fr_rollout_cfg kd = k;
        kd.seed = o.seed;
        kd.c0 = FR_ROLLOUT_C0_EVAL;
        kd.batch = 0;
        for (int i = 0; i < r1.n_prompts; i++) {
            for (int j = 0; j < n; j++) {
                pids[j] = r1.prompt_ids[i];
                sids[j] = (uint32_t)pids[j] * FR_EVAL_MAX_N + (uint32_t)j;
            }
            fr_rollout_traj tr = {traj, mean, NULL, NULL, NULL};
            ck_assert(fr_rollout(&m, be, t, &kd, n, pids, sids, NULL, x, &tr) == FR_OK);
            ck_assert(fr_cond_ids(t, n, pids, cid) == FR_OK);
            double want = 0.0;
            for (int64_t st = 0; st < T; st++) {
                fr_step p = fr_rollout_step(&kd, st);
                fr_step_std sd;
                ck_assert(fr_sampler_std(&p, &sd) == FR_OK);
                for (int j = 0; j < n; j++) tin[j] = fr_rollout_time(&kd, st);
                ck_assert(fr_model_forward(&ref, be, &ws, n, traj + st * n * D, tin, cid, v) == FR_OK);
                ck_assert(fr_sampler_mean(be, &p, n, D, traj + st * n * D, v, NULL, mref) == FR_OK);
                for (int64_t e = 0; e < n * D; e++) {
                    const double dm = (double)mean[st * n * D + e] - (double)mref[e];
                    want += dm * dm / (2.0 * (double)sd.std * (double)sd.std);
                }
            }
            want /= n;
            ck_assert_msg(fabs(r1.prompt_kl[i] - want) <= 1e-5 * want, "prompt %d: KL %.17g, direct %.17g",
                          r1.prompt_ids[i], r1.prompt_kl[i], want);
        }
        fr_model_ws_free(&ws);
        free(traj), free(mean), free(x), free(v), free(mref), free(tin), free(pids), free(sids), free(cid);
    }
    /* a deterministic step has no path density */
    k.noise = 0.0f;
    ck_assert(fr_eval_kl(&m, &ref, be, t, &k, &o, &r1) == FR_ERR_ARG);
    fr_eval_result_free(&r0);
    fr_eval_result_free(&r1);
    fr_eval_result_free(&r2);
    if (have_opt) fr_backend_close(&opt);
    fr_rollout_schedule_free(&s);
    fr_rollout_schedule_free(&sk);
    fr_model_free(&m);
    fr_model_free(&ref);
}

START_TEST(test_eval_kl_gmm2d) { check_eval_kl("gmm2d", 6, 4, 1.0f, 1); }
END_TEST

START_TEST(test_eval_kl_shapes_cfg) { check_eval_kl("shapes", 2, 3, 2.0f, 0); }
END_TEST

/* ---- checkpoints and the CLI --------------------------------------------------------- */

static char g_dir[256];
static char g_out[1 << 17];

/* A checkpoint of a random model with metadata "task" and, if ema, "ema.*" weights
 * (different values: the raw weights scaled by 0.5). */
static void write_ckpt(const char *path, const char *task_name, fr_pred pred, int ema, int with_task)
{
    fr_model m;
    fr_test_make_model(&m, task(task_name), pred, SEED + 6);
    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&m.cfg, &f) == FR_OK);
    ck_assert(fr_model_values_to_st(&m, &f, "") == FR_OK);
    if (ema) {
        for (int i = 0; i < m.n_params; i++) {
            float *d = m.values[i].data;
            for (int64_t k = 0; k < fr_tensor_numel(&m.values[i]); k++) d[k] *= 0.5f;
        }
        ck_assert(fr_model_values_to_st(&m, &f, "ema.") == FR_OK);
    }
    if (with_task) ck_assert(fr_st_set_meta(&f, "task", task_name) == FR_OK);
    ck_assert_msg(fr_st_write(&f, path) == FR_OK, "%s", fr_last_error());
    fr_st_free(&f);
    fr_model_free(&m);
}

static void make_dir(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "rollout"); }

static void remove_dir(void) { fr_test_rmtree(g_dir); }

/* stdout only (stderr discarded), for --json. */
static int run_stdout(const char *args, char *out, size_t n)
{
    const char *bin = getenv("FLOWRL_BIN");
    if (!bin) bin = "build/flowrl";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, n - 1, p);
    out[used] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* stderr only (stdout discarded): the error line of a failing command. */
static int run_stderr(const char *args, char *out, size_t n)
{
    const char *bin = getenv("FLOWRL_BIN");
    if (!bin) bin = "build/flowrl";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, n - 1, p);
    out[used] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Width and height from the IHDR chunk of a PNG file; 0 if it is not one. */
static int png_size(const char *path, int *w, int *h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got != sizeof b || memcmp(b, sig, 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0) return 0;
    *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
    *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
    return 1;
}

START_TEST(test_cli_eval_json)
{
    make_dir();
    char ck[300], args[1024];
    snprintf(ck, sizeof ck, "%s/g.safetensors", g_dir);
    write_ckpt(ck, "gmm2d", FR_PRED_VELOCITY, 1, 1);
    const char *variants[2] = {"", "--no-ema"};
    for (int v = 0; v < 2; v++) {
        snprintf(args, sizeof args, "eval --ckpt %s --task gmm2d --n 4 --num-steps 5 --backend ref --json %s", ck,
                 variants[v]);
        ck_assert_int_eq(run_stdout(args, g_out, sizeof g_out), 0);
        cJSON *j = cJSON_Parse(g_out);
        ck_assert_msg(j != NULL, "not JSON: %s", g_out);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ema")) == (v == 0));
        ck_assert_str_eq(cJSON_GetObjectItem(j, "task")->valuestring, "gmm2d");
        ck_assert_str_eq(cJSON_GetObjectItem(j, "sampler")->valuestring, "ode");
        ck_assert_str_eq(cJSON_GetObjectItem(j, "split")->valuestring, "eval");
        ck_assert_int_eq(cJSON_GetObjectItem(j, "n")->valueint, 4);
        const cJSON *ov = cJSON_GetObjectItem(j, "overall");
        ck_assert(ov && cJSON_GetObjectItem(ov, "accuracy") && cJSON_GetObjectItem(ov, "mean_score"));
        double acc = cJSON_GetObjectItem(ov, "accuracy")->valuedouble;
        ck_assert(acc >= 0.0 && acc <= 1.0);
        ck_assert_int_eq(cJSON_GetObjectItem(ov, "samples")->valueint, 32);
        const cJSON *mode = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "groups"), "mode");
        ck_assert(mode && cJSON_GetObjectItem(mode, "accuracy"));
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "prompts")), 8);
        cJSON_Delete(j);
    }
    /* --kl-ref: the checkpoint to its own EMA weights is 0 exactly, to its raw weights
     * (halved, write_ckpt) > 0; diversity beside it */
    const char *refs[2] = {"", "--no-ema"};
    for (int v = 0; v < 2; v++) {
        snprintf(args, sizeof args, "eval --ckpt %s --task gmm2d --n 3 --num-steps 3 --backend ref --json --kl-ref %s %s",
                 ck, ck, refs[v]);
        ck_assert_int_eq(run_stdout(args, g_out, sizeof g_out), 0);
        cJSON *j = cJSON_Parse(g_out);
        ck_assert_msg(j != NULL, "not JSON: %s", g_out);
        const cJSON *ov = cJSON_GetObjectItem(j, "overall");
        ck_assert(cJSON_GetObjectItem(ov, "diversity")->valuedouble > 0.0);
        ck_assert(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "prompts"), 0), "diversity"));
        ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "kl_ref"), "steps")->valueint, 10);
        const double kl = cJSON_GetObjectItem(ov, "kl")->valuedouble;
        ck_assert_msg(v == 0 ? kl == 0.0 : kl > 0.0, "%s: kl %g", args, kl);
        ck_assert(cJSON_GetObjectItem(ov, "kl_per_dim")->valuedouble == kl / 2.0);
        ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "groups"), "mode"), "kl"));
        cJSON_Delete(j);
    }
    /* the table form, with the backend line first */
    snprintf(args, sizeof args, "eval --ckpt %s --n 2 --num-steps 3 --backend ref --sampler sde --cfg 2 --kl-ref %s "
             "--kl-steps 4", ck, ck);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    ck_assert_msg(strncmp(g_out, "backend ref, threads 1", 22) == 0, "%s", g_out);
    ck_assert_msg(strstr(g_out, "\nmode ") && strstr(g_out, "\noverall "), "%s", g_out);
    ck_assert_msg(strstr(g_out, " diversity ") && strstr(g_out, " kl/dim\n"), "%s", g_out);
    remove_dir();
}
END_TEST

START_TEST(test_cli_sample_png)
{
    make_dir();
    char ck[300], png[300], args[1024], pf[300];
    int w, h, ew, eh;
    /* gmm2d: a 512 x 512 scatter plot */
    snprintf(ck, sizeof ck, "%s/g.safetensors", g_dir);
    snprintf(png, sizeof png, "%s/g.png", g_dir);
    write_ckpt(ck, "gmm2d", FR_PRED_VELOCITY, 0, 1);
    snprintf(args, sizeof args, "sample --ckpt %s --out %s --n 20 --num-steps 4 --sampler dpm", ck, png);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "160 samples") && strstr(g_out, "accuracy"), "%s", g_out);
    ck_assert(png_size(png, &w, &h) && w == 512 && h == 512);
    /* shapes: a grid, one row per prompt of the file (an id and a text line), 3 each */
    snprintf(ck, sizeof ck, "%s/s.safetensors", g_dir);
    snprintf(png, sizeof png, "%s/s.png", g_dir);
    snprintf(pf, sizeof pf, "%s/prompts.txt", g_dir);
    write_ckpt(ck, "shapes", FR_PRED_VELOCITY, 0, 0);
    char text[FR_PROMPT_TEXT_MAX];
    ck_assert(task("shapes")->prompt_text(60, text, sizeof text) == FR_OK);
    FILE *f = fopen(pf, "w");
    ck_assert(f != NULL);
    fprintf(f, "# two prompts\n53\n\n%s\n", text);
    fclose(f);
    snprintf(args, sizeof args, "sample --ckpt %s --task shapes --prompt-file %s --n 3 --num-steps 2 --out %s --scale 2", ck,
             pf, png);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, text) != NULL, "%s", g_out);
    ck_assert(fr_png_grid_dims(6, 16, 16, 3, 2, &eh, &ew) == FR_OK);
    ck_assert_msg(png_size(png, &w, &h) && w == ew && h == eh, "%d x %d, want %d x %d", w, h, ew, eh);
    remove_dir();
}
END_TEST

/* Usage errors exit 2, runtime failures 1, each with one line naming flowrl. */
START_TEST(test_cli_errors)
{
    make_dir();
    char ck[300], eck[300], args[1024];
    snprintf(ck, sizeof ck, "%s/g.safetensors", g_dir);
    snprintf(eck, sizeof eck, "%s/e.safetensors", g_dir);
    write_ckpt(ck, "gmm2d", FR_PRED_VELOCITY, 0, 1);
    write_ckpt(eck, "gmm2d", FR_PRED_EPSILON, 0, 1);
    struct {
        const char *fmt;
        int rc;
    } cases[] = {
        {"eval", 2},
        {"eval --ckpt %s --bogus", 2},
        {"eval --ckpt %s --num-steps 0", 2},
        {"eval --ckpt %s --sampler ddim", 2},
        {"eval --ckpt %s --sampler euler", 2},
        {"eval --ckpt %s --split test", 2},
        {"eval --ckpt %s --task shapes", 2},
        {"eval --ckpt %s --n", 2},
        {"eval --ckpt %s/missing.safetensors", 1},
        {"sample --ckpt %s", 2},
        {"sample --ckpt %s --out /nonexistent-dir/x.png --num-steps 1", 1},
        {"sample --ckpt %s --out x.png --prompt 99", 2},
        {"sample --ckpt %s --out x.png --prompt 'no such prompt'", 2},
        {"sample --ckpt %s --out x.png --prompt-file /nonexistent-file", 1},
        {"sample --ckpt %s --out x.png --grid cosine", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, cases[i].fmt, strstr(cases[i].fmt, "missing") ? g_dir : ck);
        int rc = run_stderr(args, g_out, sizeof g_out);
        ck_assert_msg(rc == cases[i].rc, "'%s' exited %d, want %d: %s", args, rc, cases[i].rc, g_out);
        size_t len = strlen(g_out);
        ck_assert_msg(strncmp(g_out, "flowrl ", 7) == 0 && len > 0 && strchr(g_out, '\n') == g_out + len - 1,
                      "'%s': want one line, got: %s", args, g_out);
    }
    /* a flow sampler on an epsilon model */
    snprintf(args, sizeof args, "eval --ckpt %s --sampler sde", eck);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "ddim") != NULL, "%s", g_out);
    /* ... and ddim works on it */
    snprintf(args, sizeof args, "eval --ckpt %s --n 2 --num-steps 4 --eta 1", eck);
    ck_assert_msg(fr_test_run_cli(args, g_out, sizeof g_out) == 0, "%s", g_out);
    ck_assert_msg(strstr(g_out, "ddim, 4 steps, eta 1") != NULL, "%s", g_out);
    remove_dir();
}
END_TEST

Suite *suite_rollout(void)
{
    Suite *s = suite_create("rollout");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_batch_independence);
    tcase_add_test(tc, test_matches_hand_loop);
    tcase_add_test(tc, test_cfg);
    tcase_add_test(tc, test_x_init);
    tcase_add_test(tc, test_opt_equals_ref);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_eval_gmm2d);
    tcase_add_test(tc, test_eval_shapes);
    tcase_add_test(tc, test_eval_kl_gmm2d);
    tcase_add_test(tc, test_eval_kl_shapes_cfg);
    suite_add_tcase(s, tc);
    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, test_cli_eval_json);
    tcase_add_test(cli, test_cli_sample_png);
    tcase_add_test(cli, test_cli_errors);
    suite_add_tcase(s, cli);
    return s;
}
