/* Pretraining (core/pretrain.c), its element formulas, checkpoints (core/checkpoint.c),
 * the progress display (core/progress.c), the task-to-condition bridge (core/cond.c) and
 * `flowrl pretrain`. Runs are tiny gmm2d runs (a few dozen steps, well under a second
 * each on ref). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/buildinfo.h"
#include "flowrl/checkpoint.h"
#include "flowrl/cond.h"
#include "flowrl/digest.h"
#include "flowrl/pretrain.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/progress.h"
#include "flowrl/safetensors.h"
#include "flowrl/schedule.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* ---- helpers ------------------------------------------------------------------------- */

static char g_dir[256];

static void make_dir(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "pretrain"); }

static void remove_dir(void) { fr_test_rmtree(g_dir); }

/* Losses of every step, for the loss-curve test. */
typedef struct {
    float loss[1024];
    int n;
    int stop_at;
} losses;

static int record(const fr_pretrain_event *ev, void *user)
{
    losses *l = user;
    ck_assert_int_eq(ev->step, l->n + 1);
    if (l->n < 1024) l->loss[l->n++] = ev->loss;
    return l->stop_at > 0 && ev->step >= l->stop_at;
}

static fr_pretrain_cfg tiny(const char *out, int64_t steps)
{
    fr_pretrain_cfg c = fr_pretrain_defaults();
    c.task = "gmm2d";
    c.steps = steps;
    c.batch = 16;
    c.seed = 7;
    c.out = out;
    return c;
}

/* Asserts that two checkpoint files hold the same tensors (by digest, naming the first
 * that differs) and the same bytes. */
static void assert_same_file(const char *a, const char *b)
{
    fr_st_file fa, fb;
    ck_assert_msg(fr_st_read(&fa, a) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_st_read(&fb, b) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fa.n, fb.n);
    for (size_t i = 0; i < fa.n; i++) {
        ck_assert_str_eq(fa.entries[i].name, fb.entries[i].name);
        uint64_t da = fr_tensor_digest(&fa.entries[i].t), db = fr_tensor_digest(&fb.entries[i].t);
        ck_assert_msg(da == db, "tensor %s differs: %016llx vs %016llx", fa.entries[i].name,
                      (unsigned long long)da, (unsigned long long)db);
    }
    ck_assert_int_eq(fa.n_meta, fb.n_meta);
    for (size_t i = 0; i < fa.n_meta; i++) {
        ck_assert_str_eq(fa.meta[i].key, fb.meta[i].key);
        ck_assert_msg(strcmp(fa.meta[i].value, fb.meta[i].value) == 0, "metadata %s: '%s' vs '%s'",
                      fa.meta[i].key, fa.meta[i].value, fb.meta[i].value);
    }
    fr_st_free(&fa);
    fr_st_free(&fb);
    size_t na, nb;
    void *ba = fr_test_slurp(a, &na), *bb = fr_test_slurp(b, &nb);
    ck_assert_int_eq(na, nb);
    ck_assert_msg(memcmp(ba, bb, na) == 0, "%s and %s differ in bytes", a, b);
    free(ba);
    free(bb);
}

/* Counts the tensors of two checkpoint files whose digests differ (same names asserted). */
static int n_tensors_differ(const char *a, const char *b)
{
    fr_st_file fa, fb;
    ck_assert_msg(fr_st_read(&fa, a) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_st_read(&fb, b) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fa.n, fb.n);
    int n = 0;
    for (size_t i = 0; i < fa.n; i++) {
        ck_assert_str_eq(fa.entries[i].name, fb.entries[i].name);
        n += fr_tensor_digest(&fa.entries[i].t) != fr_tensor_digest(&fb.entries[i].t);
    }
    fr_st_free(&fa);
    fr_st_free(&fb);
    return n;
}

/* ---- cond.c -------------------------------------------------------------------------- */

START_TEST(test_cond_dims_and_ids)
{
    const fr_task *t;
    int64_t n_cond, n_slots;
    ck_assert_int_eq(fr_task_get("gmm2d", &t), FR_OK);
    fr_cond_dims(t, &n_cond, &n_slots);
    ck_assert_int_eq(n_slots, t->n_slots);
    ck_assert_int_eq(n_cond, (int64_t)t->n_slots * t->n_vocab);

    ck_assert_int_eq(fr_task_get("shapes", &t), FR_OK);
    fr_cond_dims(t, &n_cond, &n_slots);
    ck_assert_int_eq(n_slots, FR_SHAPES_N_SLOTS);
    ck_assert_int_eq(n_cond, FR_SHAPES_N_SLOTS * FR_SHAPES_N_VOCAB);
    /* every prompt: slot s holds s * V + token_s; all 70 rows distinct; -1 is null */
    int S = (int)n_slots, V = t->n_vocab;
    int ids[FR_SHAPES_N_PROMPTS + 1];
    for (int p = 0; p < FR_SHAPES_N_PROMPTS; p++) ids[p] = p;
    ids[FR_SHAPES_N_PROMPTS] = -1;
    int32_t c[(FR_SHAPES_N_PROMPTS + 1) * FR_SHAPES_N_SLOTS];
    ck_assert_int_eq(fr_cond_ids(t, FR_SHAPES_N_PROMPTS + 1, ids, c), FR_OK);
    for (int p = 0; p < FR_SHAPES_N_PROMPTS; p++) {
        int32_t tok[FR_PROMPT_MAX_SLOTS];
        ck_assert_int_eq(t->prompt_tokens(p, tok), FR_OK);
        for (int s = 0; s < S; s++) {
            ck_assert_msg(c[p * S + s] == s * V + tok[s], "prompt %d slot %d: id %d, want %d", p, s,
                          (int)c[p * S + s], s * V + (int)tok[s]);
            ck_assert(c[p * S + s] >= s * V && c[p * S + s] < (s + 1) * V);
        }
        for (int q = 0; q < p; q++)
            ck_assert_msg(memcmp(&c[p * S], &c[q * S], (size_t)S * sizeof(int32_t)) != 0,
                          "prompts %d and %d get the same condition ids", p, q);
    }
    for (int s = 0; s < S; s++) ck_assert_int_eq(c[FR_SHAPES_N_PROMPTS * S + s], (int32_t)n_cond);
    /* out of range */
    int bad[2] = {0, FR_SHAPES_N_PROMPTS};
    ck_assert_int_eq(fr_cond_ids(t, 2, bad, c), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "prompt id"));
}
END_TEST

/* ---- element formulas -------------------------------------------------------------- */

START_TEST(test_elem)
{
    uint64_t rs = 0x5eed;
    for (int i = 0; i < 1000; i++) {
        float x0 = fr_test_uniform(&rs, -4, 4), e = fr_test_uniform(&rs, -4, 4);
        /* endpoints are exact: σ = 0 is data, σ = 1 is noise */
        ck_assert(fr_test_bits_equal(fr_flow_noised_elem(x0, e, 0.0f), x0));
        ck_assert(fr_test_bits_equal(fr_flow_noised_elem(x0, e, 1.0f), e));
        float s = fr_test_uniform(&rs, 0, 1);
        double want = (1.0 - s) * (double)x0 + (double)s * e;
        float got = fr_flow_noised_elem(x0, e, s);
        ck_assert_msg(fabs(got - want) <= 4e-6 * (fabs(x0) + fabs(e)) + 1e-30,
                      "noised(%a, %a, %a) = %a, want %.9g", x0, e, s, got, want);
        ck_assert(fr_test_bits_equal(fr_flow_target_elem(x0, e), e - x0));
        /* x̂0 = x − σ·v* recovers x0 up to rounding (docs/algorithms/pretraining.md §1) */
        float xs = fr_flow_noised_elem(x0, e, s), v = fr_flow_target_elem(x0, e);
        ck_assert(fabsf((xs - s * v) - x0) <= 2e-6f * 8.0f);
    }
    /* DDPM: √ᾱ and √(1−ᾱ) and the mix */
    float sa, s1a;
    fr_ddpm_coefs(0.25f, &sa, &s1a);
    ck_assert(sa == 0.5f && fabsf(s1a - 0.8660254f) < 1e-7f);
    ck_assert(fr_ddpm_noised_elem(2.0f, 4.0f, 0.5f, 0.25f) == 2.0f);
    /* logit-normal: sigmoid(m + s n) */
    ck_assert(fr_logit_normal_sigma(0.0f, 0.0f, 1.0f) == 0.5f);
    ck_assert(fabsf(fr_logit_normal_sigma(1.0f, 0.5f, 2.0f) - 0.92414182f) < 1e-6f);
    /* integers below n: bounds and the exact multiply-shift */
    ck_assert_uint_eq(fr_rng_below(0u, 52), 0);
    ck_assert_uint_eq(fr_rng_below(0xFFFFFFFFu, 52), 51);
    ck_assert_uint_eq(fr_rng_below(0x80000000u, 1000), 500);
    ck_assert(fr_mse_grad_elem(3.0f, 1.0f, 0.25f) == 0.5f);
}
END_TEST

/* The lr schedule: linear warm-up to lr, cosine to lr_min, constant. */
START_TEST(test_lr_schedule)
{
    fr_pretrain_cfg c = fr_pretrain_defaults();
    c.steps = 1000;
    c.lr = 1e-3;
    ck_assert_int_eq(fr_pretrain_warmup(&c), 100);
    ck_assert(fabs(fr_pretrain_lr(&c, 0) - 1e-5) < 1e-12);
    ck_assert(fr_pretrain_lr(&c, 99) == 1e-3);
    ck_assert(fr_pretrain_lr(&c, 100) == 1e-3); /* cos(0) = 1 */
    ck_assert(fabs(fr_pretrain_lr(&c, 550) - 5e-4) < 1e-6);
    ck_assert(fr_pretrain_lr(&c, 999) > 0.0f && fr_pretrain_lr(&c, 999) < 1e-7f);
    for (int64_t s = 101; s < 1000; s++) ck_assert(fr_pretrain_lr(&c, s) <= fr_pretrain_lr(&c, s - 1));
    c.lr_min = 1e-4;
    ck_assert(fr_pretrain_lr(&c, 999) >= 1e-4 && fr_pretrain_lr(&c, 999) < 1.001e-4);
    c.schedule = FR_LR_CONSTANT;
    ck_assert(fr_pretrain_lr(&c, 999) == 1e-3);
    c.steps = 50;
    ck_assert_int_eq(fr_pretrain_warmup(&c), 5);
    c.warmup = 0;
    ck_assert(fr_pretrain_lr(&c, 0) == 1e-3);
    char p[64];
    ck_assert_int_eq(fr_pretrain_step_path("a/base.safetensors", 20, p, sizeof p), FR_OK);
    ck_assert_str_eq(p, "a/base-step000020.safetensors");
    ck_assert_int_eq(fr_pretrain_step_path("base.st", 1234567, p, sizeof p), FR_OK);
    ck_assert_str_eq(p, "base.st-step1234567");
    ck_assert_int_eq(fr_pretrain_step_path("base.st", 1, p, 8), FR_ERR_ARG);
}
END_TEST

/* ---- training ------------------------------------------------------------------------ */

/* 160 steps of gmm2d: the batch loss falls clearly. At init the output is 0 (zero head),
 * so the loss is E(ε − x0)² = 1 + 16/2 + 0.16 ≈ 9.2 per element; a conditional model that
 * has learnt the 8 modes gets near the flow-matching floor (about 1 here). Seed 7
 * measures 7.3 -> 1.4 (means of the first / last 20 steps); the bound asks for 3x. */
START_TEST(test_loss_falls)
{
    fr_pretrain_cfg c = tiny(NULL, 160);
    c.lr = 3e-3f;
    losses l = {.n = 0};
    fr_pretrain_result r;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), record, &l, &r) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(l.n, 160);
    ck_assert_int_eq(r.steps_done, 160);
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) {
        first += l.loss[i];
        last += l.loss[140 + i];
    }
    first /= 20;
    last /= 20;
    for (int i = 0; i < l.n; i++) ck_assert(isfinite(l.loss[i]));
    ck_assert_msg(first > 5.0 && first < 15.0, "initial loss %g, expected about 9.2", first);
    ck_assert_msg(last < first / 3.0, "loss %g -> %g: no clear drop (seed 7)", first, last);
    printf("pretrain gmm2d velocity: loss %.3f -> %.3f (means of the first / last 20 steps)\n", first, last);
    ck_assert(r.final_loss == l.loss[159]);
    ck_assert(fabsf(r.tail_loss - (float)last) < 1.0f);
}
END_TEST

/* The epsilon parameterization: DDPM training also learns. The zero output at init gives
 * loss E ε² = 1; seed 7 measures 0.89 -> 0.62 (means of the first / last 20 steps). The
 * floor is high because at small t the noise is hidden under the data's own spread, so
 * the bound asks for a 20% drop. */
START_TEST(test_epsilon_loss_falls)
{
    fr_pretrain_cfg c = tiny(NULL, 160);
    c.pred = FR_PRED_EPSILON;
    c.lr = 3e-3f;
    losses l = {.n = 0};
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), record, &l, NULL) == FR_OK, "%s", fr_last_error());
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) {
        first += l.loss[i];
        last += l.loss[140 + i];
    }
    first /= 20;
    last /= 20;
    ck_assert_msg(first > 0.7 && first < 1.5, "initial loss %g, expected about 1", first);
    printf("pretrain gmm2d epsilon: loss %.3f -> %.3f (means of the first / last 20 steps)\n", first, last);
    ck_assert_msg(last < 0.8 * first, "epsilon loss %g -> %g: no drop (seed 7)", first, last);
}
END_TEST

/* The same command twice: the same digests of every tensor and the same bytes. A
 * different seed changes the weights (the comparison can fail). */
START_TEST(test_reproducible)
{
    make_dir();
    char a[300], b[300], d[300];
    snprintf(a, sizeof a, "%s/a.safetensors", g_dir);
    snprintf(b, sizeof b, "%s/b.safetensors", g_dir);
    snprintf(d, sizeof d, "%s/d.safetensors", g_dir);
    fr_pretrain_cfg c = tiny(a, 30);
    c.sigma = FR_SIGMA_UNIFORM;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    c.out = b;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    assert_same_file(a, b);

    c.out = d;
    c.seed = 8;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    fr_st_file fa, fd;
    ck_assert_int_eq(fr_st_read(&fa, a), FR_OK);
    ck_assert_int_eq(fr_st_read(&fd, d), FR_OK);
    const fr_tensor *wa = fr_st_get(&fa, "out.weight"), *wd = fr_st_get(&fd, "out.weight");
    ck_assert(wa && wd && fr_tensor_digest(wa) != fr_tensor_digest(wd));
    /* contents: weights, EMA, AdamW moments, metadata */
    ck_assert_ptr_nonnull(fr_st_get(&fa, "ema.in.weight"));
    ck_assert_ptr_nonnull(fr_st_get(&fa, "optim.m.blocks.0.fc1.weight"));
    ck_assert_ptr_nonnull(fr_st_get(&fa, "optim.v.cond.weight"));
    ck_assert_str_eq(fr_st_get_meta(&fa, "task"), "gmm2d");
    ck_assert_str_eq(fr_st_get_meta(&fa, "preset"), "gmm2d-s");
    ck_assert_str_eq(fr_st_get_meta(&fa, "step"), "30");
    ck_assert_str_eq(fr_st_get_meta(&fa, "optim.step"), "30");
    ck_assert_str_eq(fr_st_get_meta(&fa, "seed"), "7");
    ck_assert_str_eq(fr_st_get_meta(&fa, "pretrain.sigma"), "uniform");
    ck_assert_str_eq(fr_st_get_meta(&fa, "pretrain.lr"), "0.001");
    ck_assert_str_eq(fr_st_get_meta(&fa, "model.pred"), "velocity");
    ck_assert_str_eq(fr_st_get_meta(&fa, "flowrl.version"), fr_version());
    fr_st_free(&fa);
    fr_st_free(&fd);
    /* the weights load as a model */
    fr_model m;
    ck_assert_msg(fr_model_load(&m, fr_test_ref_be(), a) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(m.cfg.n_slots, 1);
    fr_model_free(&m);
    remove_dir();
}
END_TEST

/* A run stopped at a checkpoint and resumed gives the uninterrupted run's bytes
 * (docs/design.md §2); the resume refuses a checkpoint of another command. */
START_TEST(test_resume)
{
    make_dir();
    char full[300], part[300], mid[300];
    snprintf(full, sizeof full, "%s/full.safetensors", g_dir);
    snprintf(part, sizeof part, "%s/part.safetensors", g_dir);
    fr_pretrain_cfg c = tiny(full, 40);
    c.pred = FR_PRED_EPSILON; /* with dropout and the EMA warm-up crossing the cut */
    c.cfg_dropout = 0.3f;
    /* loop index: gmm2d-s's velocity head, the eps x0 head, then the two loss weights */
    if (_i == 1) c.head = FR_HEAD_X0;
    if (_i == 2) c.eps_weight = FR_EPS_WEIGHT_MIN_SNR, c.snr_gamma = 2.5f;
    if (_i == 3) c.eps_weight = FR_EPS_WEIGHT_X0, c.head = FR_HEAD_X0;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());

    c.out = part;
    c.save_every = 15;
    losses l = {.n = 0, .stop_at = 17}; /* stops after step 17: the step-15 file exists */
    fr_pretrain_result r;
    ck_assert_int_eq(fr_pretrain(&c, fr_test_ref_be(), record, &l, &r), FR_OK);
    ck_assert_int_eq(r.steps_done, 17);
    ck_assert_int_eq(access(part, F_OK), -1); /* stopped early: no final file */
    ck_assert_int_eq(fr_pretrain_step_path(part, 15, mid, sizeof mid), FR_OK);
    ck_assert_int_eq(access(mid, F_OK), 0);

    c.save_every = 0;
    c.resume = mid;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, &r) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(r.first_step, 15);
    ck_assert_int_eq(r.steps_done, 40);
    assert_same_file(full, part);

    /* another lr: refused, naming the key */
    c.lr = 2e-3f;
    ck_assert_int_eq(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL), FR_ERR_MISMATCH);
    ck_assert_msg(strstr(fr_last_error(), "pretrain.lr") != NULL, "%s", fr_last_error());
    /* another loss weight: refused, naming its key */
    c.lr = fr_pretrain_defaults().lr;
    c.eps_weight = _i == 2 ? FR_EPS_WEIGHT_X0 : FR_EPS_WEIGHT_MIN_SNR;
    ck_assert_int_eq(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL), FR_ERR_MISMATCH);
    ck_assert_msg(strstr(fr_last_error(), "pretrain.eps_weight") != NULL, "%s", fr_last_error());
    remove_dir();
}
END_TEST

/* Every backend built in (cuda-emu: the whole step in guarded device memory) writes ref's
 * checkpoint bytes: flow and DDPM on gmm2d, the x0 head with two condition slots on shapes,
 * and a run resumed on the backend from its own intermediate checkpoint. */
START_TEST(test_backends_write_ref_bytes)
{
    make_dir();
    char want[300], got[300], mid[300];
    snprintf(want, sizeof want, "%s/want.safetensors", g_dir);
    snprintf(got, sizeof got, "%s/got.safetensors", g_dir);
    /* one configuration per loop iteration (its own timeout: the shapes cases run every
     * backend, cuda-emu's guarded copies included, and take most of a minute under ASan) */
    const int k = _i;
    {
        fr_pretrain_cfg c = tiny(want, 6);
        if (k == 1) c.pred = FR_PRED_EPSILON, c.cfg_dropout = 0.5f;
        if (k == 2) c.task = "shapes", c.steps = 2, c.batch = 3;
        if (k == 3) c.task = "shapes", c.steps = 2, c.batch = 3, c.pred = FR_PRED_EPSILON; /* the eps x0 head */
        if (k == 4) /* the weighted epsilon losses: fm_loss's row scales in backend memory */
            c.task = "shapes", c.steps = 2, c.batch = 3, c.pred = FR_PRED_EPSILON, c.eps_weight = FR_EPS_WEIGHT_MIN_SNR;
        if (k == 5) c.pred = FR_PRED_EPSILON, c.eps_weight = FR_EPS_WEIGHT_X0;
        ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
        for (const char *const *name = fr_backend_names(); *name; name++) {
            fr_backend be;
        if (!fr_test_backend_try(&be, "pretrain", *name, 2)) continue;
            c.out = got;
            c.save_every = k == 0 ? 3 : 0;
            ck_assert_msg(fr_pretrain(&c, &be, NULL, NULL, NULL) == FR_OK, "%s: %s", *name, fr_last_error());
            assert_same_file(want, got);
            if (k == 0) {
                ck_assert_int_eq(fr_pretrain_step_path(got, 3, mid, sizeof mid), FR_OK);
                c.save_every = 0;
                c.resume = mid;
                ck_assert_msg(fr_pretrain(&c, &be, NULL, NULL, NULL) == FR_OK, "%s: %s", *name, fr_last_error());
                assert_same_file(want, got);
                c.resume = NULL;
            }
            fr_backend_close(&be);
        }
    }
    remove_dir();
}
END_TEST

/* The epsilon loss's row weights against their formulas computed here from the betas, and
 * their wiring: a min-snr γ above every row's SNR writes the unweighted run's tensors, γ = 5
 * and the x0 weight change them. */
START_TEST(test_eps_weight)
{
    /* ᾱ_t = Π_{i<=t}(1 − β_i), β linear 1e-4..0.02 (DDPM), in double here */
    double ab = 1.0;
    int n_capped = 0;
    float abf[FR_NUM_TRAIN_TIMESTEPS], betas[FR_NUM_TRAIN_TIMESTEPS];
    ck_assert_int_eq(fr_betas_linear(FR_NUM_TRAIN_TIMESTEPS, 1e-4, 0.02, betas), FR_OK);
    ck_assert_int_eq(fr_alphas_cumprod(FR_NUM_TRAIN_TIMESTEPS, betas, abf), FR_OK);
    for (int t = 0; t < FR_NUM_TRAIN_TIMESTEPS; t++) {
        ab *= 1.0 - (1e-4 + (0.02 - 1e-4) * t / 999.0);
        ck_assert_msg(fabs(abf[t] - ab) <= 1e-4 * ab /* float32 cumprod of 1000 factors */, "t %d: abar %g, by hand %g", t, (double)abf[t], ab);
        const double a = abf[t], snr = a / (1.0 - a);
        ck_assert(fr_eps_loss_weight(FR_EPS_WEIGHT_NONE, 5.0f, abf[t]) == 1.0);
        ck_assert(fr_eps_loss_weight(FR_EPS_WEIGHT_X0, 5.0f, abf[t]) == 1.0 / a);
        const double w = fr_eps_loss_weight(FR_EPS_WEIGHT_MIN_SNR, 5.0f, abf[t]);
        /* min(SNR, 5)/SNR; SNR·w is the weight on x0 errors, min(SNR, 5) */
        ck_assert_msg(fabs(w - fmin(snr, 5.0) / snr) <= 1e-15, "t %d: w %.17g, SNR %g", t, w, snr);
        ck_assert(w <= 1.0 && fabs(snr * w - fmin(snr, 5.0)) <= 1e-12 * snr);
        n_capped += w < 1.0;
    }
    /* SNR(t) > 5 for the first t only: ᾱ_t > 5/6 up to t = 98 (β_t ≈ 1e-4 + 2e-5·t) */
    ck_assert_msg(n_capped > 50 && n_capped < 150, "%d rows capped", n_capped);
    ck_assert(abf[999] > 3e-5f && abf[999] < 5e-5f && fr_eps_loss_weight(FR_EPS_WEIGHT_X0, 5.0f, abf[999]) > 2e4);

    make_dir();
    char plain[300], weighted[300];
    snprintf(plain, sizeof plain, "%s/plain.safetensors", g_dir);
    snprintf(weighted, sizeof weighted, "%s/weighted.safetensors", g_dir);
    fr_pretrain_cfg c = tiny(plain, 8);
    c.pred = FR_PRED_EPSILON;
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    c.out = weighted;
    c.eps_weight = FR_EPS_WEIGHT_MIN_SNR;
    c.snr_gamma = 1e6f; /* above SNR(0) ≈ 1e4: w = 1, the row scale is 2/(B·D) bit for bit */
    ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(n_tensors_differ(plain, weighted), 0);
    fr_st_file f;
    ck_assert_int_eq(fr_st_read(&f, weighted), FR_OK);
    ck_assert_str_eq(fr_st_get_meta(&f, "pretrain.eps_weight"), "min-snr");
    ck_assert_str_eq(fr_st_get_meta(&f, "pretrain.snr_gamma"), "1e+06");
    fr_st_free(&f);
    ck_assert_int_eq(fr_st_read(&f, plain), FR_OK);
    ck_assert(fr_st_get_meta(&f, "pretrain.eps_weight") == NULL); /* none: today's bytes */
    fr_st_free(&f);
    for (int k = 0; k < 2; k++) {
        c.eps_weight = k == 0 ? FR_EPS_WEIGHT_MIN_SNR : FR_EPS_WEIGHT_X0;
        c.snr_gamma = 5.0f;
        ck_assert_msg(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL) == FR_OK, "%s", fr_last_error());
        ck_assert_msg(n_tensors_differ(plain, weighted) > 0, "eps_weight %d left every tensor as unweighted", k);
    }
    remove_dir();
}
END_TEST

START_TEST(test_bad_cfg)
{
    fr_backend *be = fr_test_ref_be();
    fr_pretrain_cfg c = tiny(NULL, 10);
    fr_pretrain_cfg bad[14];
    int n = 0;
    bad[n] = c, bad[n++].task = "nope";
    bad[n] = c, bad[n++].preset = "nope";
    bad[n] = c, bad[n++].steps = 0;
    bad[n] = c, bad[n++].batch = 0;
    bad[n] = c, bad[n++].lr = NAN;
    bad[n] = c, bad[n++].lr_min = 1.0f;
    bad[n] = c, bad[n++].cfg_dropout = 1.0f;
    bad[n] = c, bad[n++].ema = 1.0f;
    bad[n] = c, bad[n++].warmup = 11;
    bad[n] = c, bad[n++].save_every = 5; /* no out */
    bad[n] = c, bad[n].steps = 100000000, bad[n++].batch = 65536;
    bad[n] = c, bad[n++].eps_weight = FR_EPS_WEIGHT_MIN_SNR; /* a velocity run */
    bad[n] = c, bad[n].pred = FR_PRED_EPSILON, bad[n].eps_weight = FR_EPS_WEIGHT_MIN_SNR, bad[n++].snr_gamma = 0.0f;
    /* the model config: task dims, n_slots from the task, dims overridden -> "custom" */
    fr_model_config mc;
    fr_pretrain_cfg sc = c;
    sc.task = "shapes";
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert_str_eq(mc.preset, "shapes-s");
    ck_assert_int_eq(mc.D, FR_SHAPES_D);
    ck_assert_int_eq(mc.n_slots, FR_SHAPES_N_SLOTS);
    ck_assert_int_eq(mc.n_cond, FR_SHAPES_N_SLOTS * FR_SHAPES_N_VOCAB);
    sc.H = 96;
    sc.n_blocks = 0;
    sc.pred = FR_PRED_EPSILON;
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert_str_eq(mc.preset, "custom");
    ck_assert_int_eq(mc.H, 96);
    ck_assert_int_eq(mc.F, 512);
    ck_assert_int_eq(mc.n_blocks, 0);
    ck_assert_int_eq(mc.pred, FR_PRED_EPSILON);
    /* shapes-s's x0 head, on the schedule the loop trains with; --head velocity drops it */
    ck_assert_int_eq(mc.head, FR_HEAD_X0);
    ck_assert(mc.sigma_min == FR_X0_HEAD_SIGMA_MIN && mc.n_train == 1000 && mc.beta_end == 0.02);
    sc.betas = FR_BETAS_SCALED_LINEAR;
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert(mc.ddpm_betas == FR_DDPM_SCALED_LINEAR && mc.beta_start == 0.00085 && mc.beta_end == 0.012);
    sc.sigma_min = 0.01f; /* the floor, replaced */
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert(mc.sigma_min == 0.01f);
    sc.sigma_min = 1.5f;
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "sigma_min") != NULL, "%s", fr_last_error());
    sc.head = FR_HEAD_VELOCITY, sc.sigma_min = 0.05f; /* a floor without the x0 head */
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_ERR_ARG);
    sc.sigma_min = 0.0f;
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert(mc.head == FR_HEAD_VELOCITY && mc.sigma_min == 0.0f && mc.n_train == 0);
    sc.head = 5;
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "head") != NULL, "%s", fr_last_error());
    sc = c, sc.pred = FR_PRED_EPSILON; /* gmm2d-s: the velocity head stays the default */
    ck_assert_int_eq(fr_pretrain_model_config(&sc, &mc), FR_OK);
    ck_assert_int_eq(mc.head, FR_HEAD_VELOCITY);
    for (int i = 0; i < n; i++) {
        fr_status s = fr_pretrain(&bad[i], be, NULL, NULL, NULL);
        ck_assert_msg(s == FR_ERR_ARG, "bad config %d: status %d (%s)", i, (int)s, fr_last_error());
    }
}
END_TEST

/* ---- checkpoint.c ---------------------------------------------------------------------- */

START_TEST(test_checkpoint_roundtrip)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("gmm2d-s", 2, 8, &mc), FR_OK);
    fr_model m, m2;
    ck_assert_int_eq(fr_model_init(&m, fr_test_ref_be(), &mc, 3), FR_OK);
    ck_assert_int_eq(fr_model_init(&m2, fr_test_ref_be(), &mc, 4), FR_OK);
    fr_ema e, e2;
    fr_adamw_state o, o2;
    ck_assert_int_eq(fr_ema_init(be, &e, m.params, m.n_params), FR_OK);
    ck_assert_int_eq(fr_ema_init(be, &e2, m2.params, m2.n_params), FR_OK);
    ck_assert_int_eq(fr_adamw_state_init(fr_test_ref_be(), &o, m.params, m.n_params), FR_OK);
    ck_assert_int_eq(fr_adamw_state_init(fr_test_ref_be(), &o2, m2.params, m2.n_params), FR_OK);
    for (int i = 0; i < m.n_params; i++) {
        float *mm = o.m[i].data, *vv = o.v[i].data, *sh = e.shadow[i].data;
        for (int64_t j = 0; j < fr_tensor_numel(&o.m[i]); j++) {
            mm[j] = (float)(i + j) * 0.5f;
            vv[j] = (float)(i * j);
            sh[j] = -(float)j;
        }
    }
    o.step = 77;
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_checkpoint_to_st(&f, &m, &e, &o), FR_OK);
    ck_assert_int_eq(f.n, (size_t)(4 * m.n_params));
    ck_assert_str_eq(f.entries[m.n_params].name, "ema.in.weight");
    ck_assert_int_eq(fr_checkpoint_from_st(&f, &m2, &e2, &o2), FR_OK);
    ck_assert_int_eq(o2.step, 77);
    for (int i = 0; i < m.n_params; i++) {
        ck_assert(fr_tensor_digest(m.params[i].value) == fr_tensor_digest(m2.params[i].value));
        ck_assert(fr_tensor_digest(&e.shadow[i]) == fr_tensor_digest(&e2.shadow[i]));
        ck_assert(fr_tensor_digest(&o.m[i]) == fr_tensor_digest(&o2.m[i]));
        ck_assert(fr_tensor_digest(&o.v[i]) == fr_tensor_digest(&o2.v[i]));
    }
    /* another config is refused, naming the key */
    fr_model m3;
    fr_model_config mc3 = mc;
    mc3.H = 32;
    ck_assert_int_eq(fr_model_init(&m3, fr_test_ref_be(), &mc3, 1), FR_OK);
    ck_assert_int_eq(fr_checkpoint_from_st(&f, &m3, NULL, NULL), FR_ERR_MISMATCH);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "model.H"));
    fr_model_free(&m3);
    fr_st_free(&f);
    /* without the optimizer state: asking for it is a format error naming the tensor */
    fr_st_init(&f);
    ck_assert_int_eq(fr_checkpoint_to_st(&f, &m, NULL, NULL), FR_OK);
    ck_assert_int_eq(f.n, (size_t)m.n_params);
    ck_assert_int_eq(fr_checkpoint_from_st(&f, &m2, NULL, &o2), FR_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "optim.m.in.weight"));
    fr_st_free(&f);
    fr_ema_free(&e);
    fr_ema_free(&e2);
    fr_adamw_state_free(&o);
    fr_adamw_state_free(&o2);
    fr_model_free(&m);
    fr_model_free(&m2);
}
END_TEST

/* ---- progress.c ---------------------------------------------------------------------- */

START_TEST(test_progress_plain)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    fr_progress p;
    fr_progress_init_at(&p, f, FR_PROGRESS_PLAIN, "pretrain", 250, 0, 100, 0.0);
    for (int s = 1; s <= 250; s++) fr_progress_update_at(&p, s, 2.0f, 0.01 * s);
    fr_progress_finish_at(&p, 2.5);
    fclose(f);
    /* lines at 100, 200 and the end: each names the step, the loss and an ETA until the end */
    ck_assert_msg(strstr(buf, "pretrain step 100/250  loss 2  100 steps/s  elapsed 1.0s  ETA 1.5s\n") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "pretrain step 200/250") != NULL, "%s", buf);
    ck_assert_msg(strstr(buf, "pretrain step 250/250  loss 2  100 steps/s  elapsed 2.5s\n") != NULL, "%s", buf);
    int lines = 0;
    for (char *q = buf; *q; q++) lines += *q == '\n';
    ck_assert_int_eq(lines, 3);
    ck_assert_ptr_null(strchr(buf, '\r'));
    free(buf);

    /* time-based lines when steps are slow; the loss is smoothed */
    f = open_memstream(&buf, &len);
    fr_progress_init_at(&p, f, FR_PROGRESS_PLAIN, "x", 10, 0, 1000, 0.0);
    for (int s = 1; s <= 10; s++) fr_progress_update_at(&p, s, s <= 5 ? 10.0f : 0.0f, 4.0 * s);
    double sm = fr_progress_loss(&p);
    ck_assert_msg(sm > 0.0 && sm < 10.0, "smoothed loss %g", sm);
    fr_progress_finish_at(&p, 40.0);
    fclose(f);
    lines = 0;
    for (char *q = buf; *q; q++) lines += *q == '\n';
    ck_assert_msg(lines == 4, "%d lines: %s", lines, buf); /* at 12, 24, 36 s and the end */
    free(buf);
}
END_TEST

START_TEST(test_progress_tty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fr_progress p;
    fr_progress_init_at(&p, f, FR_PROGRESS_TTY, "pretrain", 8, 0, 100, 0.0);
    for (int s = 1; s <= 8; s++) fr_progress_update_at(&p, s, 1.0f, 0.5 * s);
    fr_progress_finish_at(&p, 4.0);
    fclose(f);
    ck_assert_msg(strstr(buf, "\rpretrain [############............] 4/8  loss 1  2 steps/s  ETA 2.0s\033[K") != NULL,
                  "%s", buf);
    ck_assert_msg(strstr(buf, "8/8") != NULL, "%s", buf);
    ck_assert(len > 0 && buf[len - 1] == '\n');
    free(buf);
    char d[32];
    ck_assert_str_eq(fr_format_duration(5.04, d, sizeof d), "5.0s");
    ck_assert_str_eq(fr_format_duration(245, d, sizeof d), "4m05s");
    ck_assert_str_eq(fr_format_duration(7380, d, sizeof d), "2h03m");
    ck_assert_str_eq(fr_format_duration(NAN, d, sizeof d), "?");
}
END_TEST

/* ---- CLI --------------------------------------------------------------------------- */

static char g_out[1 << 16];

START_TEST(test_cli_pretrain)
{
    make_dir();
    char args[1024];
    snprintf(args, sizeof args,
             "pretrain --task gmm2d --out %s/base.safetensors --max-train-steps 20 --train-batch-size 16 --seed 3 --backend ref --progress plain --log-every 10",
             g_dir);
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "backend ref, threads 1") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "pretrain step 10/20") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "final loss") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "base.safetensors") != NULL, "%s", g_out);
    snprintf(args, sizeof args, "tensors --meta %s/base.safetensors", g_dir);
    rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "in.weight ") != NULL && strstr(g_out, "ema.out.bias") != NULL &&
                      strstr(g_out, "optim.v.norm.weight") != NULL,
                  "%s", g_out);
    ck_assert_msg(strstr(g_out, "step = 20") != NULL && strstr(g_out, "seed = 3") != NULL, "%s", g_out);

    /* the library run with the same options writes the same bytes */
    char lib[300], cli[300];
    snprintf(lib, sizeof lib, "%s/lib.safetensors", g_dir);
    snprintf(cli, sizeof cli, "%s/base.safetensors", g_dir);
    fr_pretrain_cfg c = tiny(lib, 20);
    c.batch = 16;
    c.seed = 3;
    ck_assert_int_eq(fr_pretrain(&c, fr_test_ref_be(), NULL, NULL, NULL), FR_OK);
    assert_same_file(lib, cli);

    /* shapes --pred epsilon: min-snr unless --eps-weight says otherwise; gmm2d: none */
    const char *runs[][2] = {{"shapes --pred epsilon", "pretrain.eps_weight = min-snr"},
                             {"shapes --pred epsilon --eps-weight none", NULL},
                             {"gmm2d --pred epsilon", NULL}};
    for (int k = 0; k < 3; k++) {
        snprintf(args, sizeof args,
                 "pretrain --task %s --out %s/e%d.safetensors --max-train-steps 1 --train-batch-size 2 --backend ref "
                 "--progress off",
                 runs[k][0], g_dir, k);
        rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", args, rc, g_out);
        snprintf(args, sizeof args, "tensors --meta %s/e%d.safetensors", g_dir, k);
        rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
        if (runs[k][1]) ck_assert_msg(strstr(g_out, runs[k][1]) != NULL, "%s: %s", runs[k][0], g_out);
        else ck_assert_msg(strstr(g_out, "eps_weight") == NULL, "%s: %s", runs[k][0], g_out);
    }
    remove_dir();
}
END_TEST

START_TEST(test_cli_bad_options)
{
    static const char *bad[] = {
        "pretrain --out /tmp/x.safetensors",                        /* no task */
        "pretrain --task gmm2d",                                    /* no out */
        "pretrain --task nope --out /tmp/x.safetensors",
        "pretrain --task gmm2d --preset nope --out /tmp/x.safetensors",
        "pretrain --task gmm2d --out /tmp/x.safetensors --max-train-steps 0",
        "pretrain --task gmm2d --out /tmp/x.safetensors --max-train-steps 12x",
        "pretrain --task gmm2d --out /tmp/x.safetensors --train-batch-size -1",
        "pretrain --task gmm2d --out /tmp/x.safetensors --lr abc",
        "pretrain --task gmm2d --out /tmp/x.safetensors --sigma normal",
        "pretrain --task gmm2d --out /tmp/x.safetensors --pred x0",
        "pretrain --task gmm2d --out /tmp/x.safetensors --cfg-dropout 1.5",
        "pretrain --task gmm2d --out /tmp/x.safetensors --ema-decay 1",
        "pretrain --task gmm2d --out /tmp/x.safetensors --backend nope",
        "pretrain --task gmm2d --out /tmp/x.safetensors --bogus 1",
        "pretrain --task gmm2d --out /tmp/x.safetensors --max-train-steps",
        "pretrain --task gmm2d --out /tmp/x.safetensors extra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fr_test_run_cli(bad[i], g_out, sizeof g_out);
        ck_assert_msg(rc == 2, "'%s' exited %d, want 2: %s", bad[i], rc, g_out);
        ck_assert_msg(strncmp(g_out, "flowrl pretrain: ", 17) == 0, "'%s': %s", bad[i], g_out);
        int lines = 0;
        for (char *q = g_out; *q; q++) lines += *q == '\n';
        ck_assert_msg(lines == 1, "'%s' printed %d lines: %s", bad[i], lines, g_out);
    }
    ck_assert_int_eq(fr_test_run_cli("pretrain --help", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "--cfg-dropout P") != NULL && strstr(g_out, "(0.1)") != NULL, "%s", g_out);
    /* a run-time failure is exit 1: an unwritable output directory */
    int rc = fr_test_run_cli("pretrain --task gmm2d --out /nonexistent-dir/x.safetensors --steps 2 --batch 2 --progress off",
                             g_out, sizeof g_out);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "flowrl pretrain: ") != NULL, "%s", g_out);
}
END_TEST

Suite *suite_pretrain(void)
{
    Suite *s = suite_create("pretrain");
    TCase *tc = tcase_create("pretrain");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cond_dims_and_ids);
    tcase_add_test(tc, test_elem);
    tcase_add_test(tc, test_lr_schedule);
    tcase_add_test(tc, test_loss_falls);
    tcase_add_test(tc, test_epsilon_loss_falls);
    tcase_add_test(tc, test_reproducible);
    tcase_add_loop_test(tc, test_resume, 0, 4);
    tcase_add_test(tc, test_eps_weight);
    tcase_add_loop_test(tc, test_backends_write_ref_bytes, 0, 6);
    tcase_add_test(tc, test_bad_cfg);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_progress_plain);
    tcase_add_test(tc, test_progress_tty);
    tcase_add_test(tc, test_cli_pretrain);
    tcase_add_test(tc, test_cli_bad_options);
    suite_add_tcase(s, tc);
    return s;
}
