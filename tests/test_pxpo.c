/* PXPO (docs/algorithms/pxpo.md) and the trajectory objectives' per-element log-prob weights
 * (flowrl/traj_objective.h): weights of 1 give every logp-based objective's micro-step bit for
 * bit; the spec's check (more.md §3: a constant map gives DDPO's REINFORCE gradient) to float
 * rounding; the weighted log-prob's gradient against finite differences; GRPO-Guard refuses
 * weights; shapes' per-pixel correctness map and the redquad map on hand-made images; PXPO runs on
 * shapes (same bytes twice; with redquad ref = opt and resume = uninterrupted). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/grpo.h"
#include "flowrl/traj_objective.h"
#include "tests/model_testutil.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

enum { N = 4, T = 4 };

/* A DDIM rollout of N rows by pol (eps model on gmm2d) whose arrays the trainer reads. */
typedef struct {
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    float ab[FR_TEST_DDPM_NT];
    float *traj, *mean, *dlogp, *x, *weight;
    float logp_h[T * N];
    int pid[N];
} rollout;

static void roll(rollout *o, fr_model *pol, fr_backend *be)
{
    fr_test_ddim_cfg(&o->rc, &o->sch, o->ab, T, 1);
    const int64_t D = pol->cfg.D;
    for (int i = 0; i < N; i++) o->pid[i] = i / 2;
    uint32_t sid[N] = {0, 1, 2, 3};
    o->traj = fr_dev_floats(be, (T + 1) * N * D);
    o->mean = fr_dev_floats(be, T * N * D);
    o->dlogp = fr_dev_floats(be, T * N);
    o->x = fr_dev_floats(be, N * D);
    o->weight = fr_dev_floats(be, N * D);
    ck_assert(o->traj && o->mean && o->dlogp && o->x && o->weight);
    fr_rollout_traj tj = {o->traj, o->mean, o->dlogp, NULL, NULL};
    ck_assert_msg(fr_rollout(pol, be, &fr_task_gmm2d, &o->rc, N, o->pid, sid, NULL, o->x, &tj) == FR_OK, "%s",
                  fr_last_error());
    ck_assert_int_eq(fr_d2h(be, o->logp_h, o->dlogp, sizeof o->logp_h), FR_OK);
}

static void unroll(rollout *o, fr_backend *be)
{
    fr_dev_free(be, o->traj);
    fr_dev_free(be, o->mean);
    fr_dev_free(be, o->dlogp);
    fr_dev_free(be, o->x);
    fr_dev_free(be, o->weight);
    fr_rollout_schedule_free(&o->sch);
}

/* θ = θ + U(−s, s): ratios near 1 but not 1 (ref backend: host memory) */
static void nudge(fr_model *m, float s, uint64_t seed)
{
    for (int i = 0; i < m->n_params; i++) {
        float *v = m->values[i].data;
        for (int64_t k = 0; k < fr_tensor_numel(&m->values[i]); k++) v[k] += fr_test_uniform(&seed, -s, s);
    }
}

/* One micro-step (rows 0..N−1, step 1) of objective obj/prm with the data d: the gradients, the
 * ratios and the stats. */
static void step(fr_model *pol, fr_backend *be, const fr_traj_objective *obj, const void *prm, const fr_traj_data *d,
                 float *g, float *ratio, fr_traj_stats *st)
{
    const fr_traj_trainer tr = {pol, NULL, be, {1.0f, 0}, obj, prm, 0.0f, FR_KL_CODE};
    fr_traj_ws w;
    ck_assert_msg(fr_traj_ws_alloc(&w, &tr, N) == FR_OK, "%s", fr_last_error());
    const int64_t rows[N] = {0, 1, 2, 3};
    fr_model_zero_grad(pol, be);
    ck_assert_msg(fr_traj_micro_step(&tr, &w, d, rows, N, 1, 0.25f, ratio, st) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_d2h(be, g, pol->arena_grads, (size_t)fr_model_arena_floats(pol) * sizeof *g), FR_OK);
    fr_traj_ws_free(&w);
}

/* Weights of 1: PPO-clip, DDPO-SF and Chunk-GRPO give the unweighted step bit for bit (x·1 = x:
 * the weighted log-prob's terms and the weighted g_μ are the plain ones). */
START_TEST(test_unit_weights_bitwise)
{
    fr_backend *be = fr_test_ref_be();
    fr_model pol;
    fr_test_make_model(&pol, &fr_task_gmm2d, FR_PRED_EPSILON, 11);
    rollout o;
    roll(&o, &pol, be);
    nudge(&pol, 1e-3f, 5);
    const int64_t D = pol.cfg.D, A = fr_model_arena_floats(&pol);
    float ones[N * 2], adv[N] = {1.5f, -0.5f, 0.25f, -1.25f};
    ck_assert_int_eq(D, 2);
    for (int i = 0; i < N * D; i++) ones[i] = 1.0f;
    ck_assert_int_eq(fr_h2d(be, o.weight, ones, sizeof ones), FR_OK);
    const fr_ppo_params pp = {0.2, 5.0f};
    const int64_t chunk[T] = {0, 0, 1, 1}, size[2] = {2, 2};
    const float lr[2 * N] = {1e-3f, -2e-3f, 5e-4f, 0.0f, 3e-3f, -1e-3f, 2e-3f, 1e-4f};
    const fr_traj_chunk_params cp = {pp, N, chunk, size, lr};
    const fr_traj_objective *objs[3] = {&fr_traj_ppo, &fr_traj_score_function, &fr_traj_chunk};
    const void *prms[3] = {&pp, &pp, &cp};
    float *g0 = malloc((size_t)A * sizeof *g0), *g1 = malloc((size_t)A * sizeof *g1);
    ck_assert(g0 && g1);
    for (int k = 0; k < 3; k++) {
        fr_traj_data d = {N, o.traj, o.mean, o.logp_h, adv, o.pid, &fr_task_gmm2d, &o.rc, NULL, NULL};
        float r0[N], r1[N];
        fr_traj_stats s0, s1;
        step(&pol, be, objs[k], prms[k], &d, g0, r0, &s0);
        d.weight = o.weight;
        step(&pol, be, objs[k], prms[k], &d, g1, r1, &s1);
        ck_assert_msg(memcmp(g0, g1, (size_t)A * sizeof *g0) == 0, "%s: weights of 1 change the gradient",
                      objs[k]->name);
        ck_assert_msg(memcmp(r0, r1, sizeof r0) == 0 && memcmp(&s0, &s1, sizeof s0) == 0,
                      "%s: weights of 1 change the ratios or stats", objs[k]->name);
        ck_assert_msg(s0.ratio_min != 1.0f || s0.ratio_max != 1.0f, "%s: the step ran at θ = θ_old", objs[k]->name);
    }
    /* GRPO-Guard reads μ itself: weights are refused in one line */
    const fr_traj_guard_params gp = {pp, FR_GUARD_BIAS_BATCH};
    const fr_traj_trainer tr = {&pol, NULL, be, {1.0f, 0}, &fr_traj_guard, &gp, 0.0f, FR_KL_CODE};
    fr_traj_ws w;
    ck_assert(fr_traj_ws_alloc(&w, &tr, N) == FR_OK);
    const fr_traj_data d = {N, o.traj, o.mean, o.logp_h, adv, o.pid, &fr_task_gmm2d, &o.rc, NULL, o.weight};
    const int64_t rows[N] = {0, 1, 2, 3};
    float ratio[N];
    fr_traj_stats st;
    ck_assert_int_eq(fr_traj_micro_step(&tr, &w, &d, rows, N, 1, 1.0f, ratio, &st), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "grpo-guard") != NULL, "%s", fr_last_error());
    fr_traj_ws_free(&w);
    free(g0);
    free(g1);
    unroll(&o, be);
    fr_model_free(&pol);
}
END_TEST

/* The spec's check (more.md §3): a map constant over each sample's pixels, r_ij ≡ A_b, as weights
 * with row advantage 1 gives DDPO-SF's gradient with advantage A_b. Not bit for bit here: the
 * weighted form multiplies A into each element (w·ℓ, then g_μ·w), DDPO-SF into the row's scalar
 * (−A·gout/b), so the two round differently; float32 rounding of a few operations bounds the
 * difference (4e-6 of the largest gradient entry, ~30 ulp, allows for the sum over rows). */
START_TEST(test_constant_map_is_ddpo)
{
    fr_backend *be = fr_test_ref_be();
    fr_model pol;
    fr_test_make_model(&pol, &fr_task_gmm2d, FR_PRED_EPSILON, 12);
    rollout o;
    roll(&o, &pol, be);
    nudge(&pol, 1e-3f, 6);
    const int64_t D = pol.cfg.D, A = fr_model_arena_floats(&pol);
    const float a[N] = {1.5f, -0.5f, 0.25f, -1.25f}, one[N] = {1, 1, 1, 1};
    float w[N * 2];
    for (int b = 0; b < N; b++)
        for (int k = 0; k < D; k++) w[b * D + k] = a[b];
    ck_assert_int_eq(fr_h2d(be, o.weight, w, sizeof w), FR_OK);
    const fr_ppo_params pp = {0.2, 5.0f};
    float *g0 = malloc((size_t)A * sizeof *g0), *g1 = malloc((size_t)A * sizeof *g1);
    ck_assert(g0 && g1);
    fr_traj_data d = {N, o.traj, o.mean, o.logp_h, a, o.pid, &fr_task_gmm2d, &o.rc, NULL, NULL};
    float r[N];
    fr_traj_stats st;
    step(&pol, be, &fr_traj_score_function, &pp, &d, g0, r, &st);
    d.adv = one;
    d.weight = o.weight;
    step(&pol, be, &fr_traj_score_function, &pp, &d, g1, r, &st);
    double gmax = 0.0, dmax = 0.0;
    for (int64_t k = 0; k < A; k++) {
        ck_assert(isfinite(g0[k]) && isfinite(g1[k]));
        gmax = fmax(gmax, fabs((double)g0[k]));
        dmax = fmax(dmax, fabs((double)g0[k] - (double)g1[k]));
    }
    ck_assert_msg(gmax > 0.0 && dmax <= 4e-6 * gmax, "constant map vs DDPO-SF: max |diff| %g of max |g| %g", dmax, gmax);
    free(g0);
    free(g1);
    unroll(&o, be);
    fr_model_free(&pol);
}
END_TEST

/* d logp_w / dμ (fr_logp_backward, then times w: what the trainer does) against central
 * differences of fr_sampler_logprob_w in double, on the DDIM step of the rollout config; and
 * logp_w with w ≡ 1 equals fr_sampler_logprob_of bit for bit. */
START_TEST(test_weighted_logp_fd)
{
    fr_backend *be = fr_test_ref_be();
    fr_rollout_cfg rc;
    fr_rollout_schedule sch;
    float ab[FR_TEST_DDPM_NT];
    fr_test_ddim_cfg(&rc, &sch, ab, T, 1);
    const fr_step p = fr_rollout_step(&rc, 1);
    enum { B = 2, D = 6 };
    uint64_t s = 42;
    float xn[B * D], mu[B * D], w[B * D], ones[B * D], lp[B], lq[B], g1[B] = {1.0f, 1.0f}, gm[B * D];
    for (int i = 0; i < B * D; i++) {
        xn[i] = fr_test_uniform(&s, -1.0f, 1.0f);
        mu[i] = xn[i] + fr_test_uniform(&s, -0.3f, 0.3f);
        w[i] = fr_test_uniform(&s, -2.0f, 2.0f);
        ones[i] = 1.0f;
    }
    ck_assert(fr_sampler_logprob_w(be, &p, B, D, xn, mu, ones, lp) == FR_OK);
    ck_assert(fr_sampler_logprob_of(be, &p, B, D, xn, mu, lq) == FR_OK);
    ck_assert(memcmp(lp, lq, sizeof lp) == 0);
    ck_assert(fr_logp_backward(be, &p, B, D, xn, mu, g1, gm, 0) == FR_OK);
    for (int i = 0; i < B * D; i++) gm[i] *= w[i];
    for (int i = 0; i < B * D; i++) {
        const int b = i / D;
        const float h = 1e-2f, m0 = mu[i];
        mu[i] = m0 + h;
        ck_assert(fr_sampler_logprob_w(be, &p, B, D, xn, mu, w, lp) == FR_OK);
        mu[i] = m0 - h;
        ck_assert(fr_sampler_logprob_w(be, &p, B, D, xn, mu, w, lq) == FR_OK);
        mu[i] = m0;
        const double fd = ((double)lp[b] - (double)lq[b]) / (2.0 * (double)h);
        /* ℓ is quadratic in μ, so the central difference is exact but for float32 rounding of
         * the two log-probs (~1e-7 relative of |logp_w| ≈ 10, over 2h = 0.02): 1e-3 */
        ck_assert_msg(fabs(fd - (double)gm[i]) <= 1e-3 + 1e-3 * fabs(fd), "element %d: fd %g, backward %g", i, fd,
                      (double)gm[i]);
    }
    fr_rollout_schedule_free(&sch);
}
END_TEST

/* shapes' per-pixel correctness map (data/shapes_detect.c) on hand-made images. */
START_TEST(test_shapes_pixel_map)
{
    enum { HW = FR_SHAPES_H * FR_SHAPES_W };
    float x[FR_SHAPES_D], map[HW];
    /* prompt 0 (single) on its own training sample: +1 on the object's 9 pixels, 0 elsewhere */
    ck_assert(fr_shapes_sample(0, 3, 0, x) == FR_OK);
    fr_shapes_prompt pr;
    ck_assert(fr_shapes_prompt_get(0, &pr) == FR_OK);
    ck_assert_int_eq(pr.kind, FR_SHAPES_SINGLE);
    ck_assert(fr_shapes_pixel_reward(0, 0, x, map) == FR_OK);
    int on = 0;
    for (int q = 0; q < HW; q++) {
        ck_assert(map[q] == 0.0f || map[q] == 1.0f);
        on += map[q] == 1.0f;
    }
    ck_assert_int_eq(on, FR_SHAPES_OBJ * FR_SHAPES_OBJ);
    /* a 3x3 square of another colour in a free corner: its pixels −1, the named object stays +1 */
    const int other = (pr.color_a + 1) % FR_SHAPES_NCOLORS;
    int corner = -1;
    const int corners[4][2] = {{0, 0}, {0, 13}, {13, 0}, {13, 13}};
    for (int k = 0; k < 4 && corner < 0; k++) {
        int empty = 1;
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++) empty &= map[(corners[k][0] + dy) * FR_SHAPES_W + corners[k][1] + dx] == 0.0f;
        if (empty) corner = k;
    }
    ck_assert_int_ge(corner, 0);
    for (int ch = 0; ch < 3; ch++)
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++)
                x[(ch * FR_SHAPES_H + corners[corner][0] + dy) * FR_SHAPES_W + corners[corner][1] + dx] =
                    fr_shapes_palette[other][ch];
    ck_assert(fr_shapes_pixel_reward(0, 0, x, map) == FR_OK);
    int plus = 0, minus = 0;
    for (int q = 0; q < HW; q++) plus += map[q] == 1.0f, minus += map[q] == -1.0f;
    ck_assert_int_eq(plus, 9);
    ck_assert_int_eq(minus, 9);
    /* an empty image: 0 everywhere; a counting prompt with one object of its colour: count term */
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    ck_assert(fr_shapes_pixel_reward(0, 0, x, map) == FR_OK);
    for (int q = 0; q < HW; q++) ck_assert(map[q] == 0.0f);
    /* a non-finite pixel is the detector's one-line error */
    x[5] = NAN;
    ck_assert_int_eq(fr_shapes_pixel_reward(0, 0, x, map), FR_ERR_NUMERIC);
}
END_TEST

/* The redquad reward (data/shapes_redquad.c, spec/more.md §3's miniature) on hand-made images: a red
 * square inside the top-left quadrant +1 on its pixels, one outside −1, other colours and the
 * background 0; the scalar reward is the map's mean, for every prompt. */
static void square(float *x, int row, int col, int color)
{
    for (int ch = 0; ch < 3; ch++)
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++)
                x[(ch * FR_SHAPES_H + row + dy) * FR_SHAPES_W + col + dx] = fr_shapes_palette[color][ch];
}

/* map and scalar of x for prompt pid through the task's hooks; asserts scalar == the map's mean */
static float redquad(const float *x, int pid, float *map)
{
    int id = -1, correct = -1;
    ck_assert_int_eq(fr_task_reward_id(&fr_task_shapes, "redquad", &id), FR_OK);
    ck_assert_int_eq(fr_task_shapes.pixel_reward(id, pid, x, map), FR_OK);
    float s = NAN, sum = 0.0f;
    ck_assert_int_eq(fr_task_shapes.reward(id, pid, x, &s, &correct), FR_OK);
    for (int q = 0; q < FR_SHAPES_H * FR_SHAPES_W; q++) sum = sum + map[q];
    ck_assert_msg(s == sum / (float)(FR_SHAPES_H * FR_SHAPES_W), "scalar %.9g, map mean %.9g", (double)s,
                  (double)(sum / (FR_SHAPES_H * FR_SHAPES_W)));
    ck_assert(correct == 0 || correct == 1);
    return s;
}

START_TEST(test_redquad_map)
{
    enum { HW = FR_SHAPES_H * FR_SHAPES_W, RED = 0, GREEN = 1, YELLOW = 3 };
    float x[FR_SHAPES_D], map[HW];
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    for (int pid = 0; pid < FR_SHAPES_N_PROMPTS; pid += 17) { /* empty: 0 everywhere, for any prompt */
        ck_assert(redquad(x, pid, map) == 0.0f);
        for (int q = 0; q < HW; q++) ck_assert(map[q] == 0.0f);
    }
    square(x, 4, 4, RED); /* inside (rows/columns 4-6 of 0-7) */
    const float in = redquad(x, 0, map);
    ck_assert(in == 9.0f / HW);
    for (int q = 0; q < HW; q++) {
        const int y = q / FR_SHAPES_W, c = q % FR_SHAPES_W, on = y >= 4 && y < 7 && c >= 4 && c < 7;
        ck_assert_msg(map[q] == (on ? 1.0f : 0.0f), "pixel %d: %g", q, (double)map[q]);
    }
    square(x, 9, 4, RED); /* the same square below the quadrant: −1 on its pixels, the sum 0 */
    ck_assert(redquad(x, 0, map) == 0.0f);
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    square(x, 0, 13, RED); /* outside only: negative, for the first prompt and the last alike */
    ck_assert(redquad(x, 0, map) == -9.0f / HW);
    ck_assert(redquad(x, FR_SHAPES_N_PROMPTS - 1, map) == -9.0f / HW);
    ck_assert(map[13] == -1.0f && map[2 * FR_SHAPES_W + 15] == -1.0f && map[0] == 0.0f);
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    square(x, 0, 0, GREEN); /* other colours count for nothing, in or out */
    square(x, 13, 13, YELLOW);
    ck_assert(redquad(x, 0, map) == 0.0f);
    /* half-red (R = 1, G = B = 0): redness 1/2; over-range values clamp to 1 */
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    x[0] = 1.0f, x[HW] = 0.0f, x[2 * HW] = 0.0f;
    x[1] = 3.0f;
    (void)redquad(x, 0, map);
    ck_assert(map[0] == 0.5f && map[1] == 1.0f);
    /* a non-finite pixel is one line naming the reward */
    x[HW + 7] = NAN;
    int id;
    ck_assert_int_eq(fr_task_reward_id(&fr_task_shapes, "redquad", &id), FR_OK);
    ck_assert_int_eq(fr_task_shapes.pixel_reward(id, 0, x, map), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "redquad") && strstr(fr_last_error(), "finite"), "%s", fr_last_error());
    float s;
    ck_assert_int_eq(fr_task_shapes.reward(id, 0, x, &s, NULL), FR_ERR_NUMERIC);
    ck_assert_int_eq(fr_task_shapes.pixel_reward(id, FR_SHAPES_N_PROMPTS, x, map), FR_ERR_ARG);
}
END_TEST

/* PXPO on shapes through the CLI (the detector's map, then redquad's): the records pixel_map and
 * pixel_adv, the header's "the task's map", and a second run writes the same bytes. */
START_TEST(test_pxpo_shapes_run)
{
    static const char *const rewards[2] = {"geneval", "redquad"};
    char out[8192], base[400], p1[400];
    fr_rt_small_shapes_base(base, sizeof base, FR_PRED_EPSILON);
    char names[2][32];
    for (int k = 0; k < 2; k++) {
        snprintf(names[k], sizeof names[k], "px-%s-%d", rewards[_i], k);
        const int rc = fr_rt_cli(out, sizeof out,
                                 "train --algo pxpo --task shapes --base %s --out %s --epochs 1 --prompts-per-epoch 2 "
                                 "--group-size 2 --num-steps 3 --num-batches 1 --grad-accum 1 --eval-every 0 --reward %s",
                                 base, fr_rt_path(p1, sizeof p1, names[k]), rewards[_i]);
        ck_assert_msg(rc == 0, "%s", out);
        ck_assert_msg(strstr(out, "the task's map") != NULL, "%s", out);
    }
    char *a = fr_rt_records(names[0]), *b = fr_rt_records(names[1]);
    ck_assert_msg(strstr(a, "pixel_map") && strstr(a, "pixel_adv"), "records:\n%.2000s", a);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}
END_TEST

/* PXPO with redquad on shapes: ref = opt (2 threads) bit for bit, and a run cut after epoch 1 and
 * resumed on opt equals the uninterrupted one (the generic suite covers pxpo on gmm2d only). */
START_TEST(test_pxpo_redquad_resume)
{
    char out[8192], base[400], p[400];
    fr_rt_small_shapes_base(base, sizeof base, FR_PRED_EPSILON);
    const char *const args = "train --algo pxpo --task shapes --reward redquad --base %s --out %s --epochs %d "
                             "--prompts-per-epoch 2 --group-size 2 --num-steps 3 --num-batches 1 --grad-accum 1 "
                             "--eval-every 0 --backend %s --threads %d";
    int rc = fr_rt_cli(out, sizeof out, args, base, fr_rt_path(p, sizeof p, "rq-ref"), 2, "ref", 1);
    ck_assert_msg(rc == 0, "%s", out);
    rc = fr_rt_cli(out, sizeof out, args, base, fr_rt_path(p, sizeof p, "rq-opt"), 2, "opt", 2);
    ck_assert_msg(rc == 0, "%s", out);
    fr_rt_assert_same_records("rq-ref", "rq-opt", 2);
    rc = fr_rt_cli(out, sizeof out, args, base, fr_rt_path(p, sizeof p, "rq-cut"), 1, "ref", 1);
    ck_assert_msg(rc == 0, "%s", out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 2 --backend opt --threads 2", p);
    ck_assert_msg(rc == 0, "%s", out);
    fr_rt_assert_same_records("rq-ref", "rq-cut", 2);
}
END_TEST

Suite *suite_pxpo(void)
{
    Suite *s = suite_create("pxpo");
    TCase *tc = tcase_create("pxpo");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(tc, test_unit_weights_bitwise);
    tcase_add_test(tc, test_constant_map_is_ddpo);
    tcase_add_test(tc, test_weighted_logp_fd);
    tcase_add_test(tc, test_shapes_pixel_map);
    tcase_add_test(tc, test_redquad_map);
    tcase_add_loop_test(tc, test_pxpo_shapes_run, 0, 2);
    tcase_add_test(tc, test_pxpo_redquad_resume);
    suite_add_tcase(s, tc);
    return s;
}
