/* Built-in tasks: the registry, gmm2d's generator and rewards, the shapes prompt split,
 * generator and detector (ground truth must score 100%, hand-made failures must not).
 *
 * The committed prompt lists data/shapes_{train,eval}.txt are checked against the
 * generated table; after a deliberate change to the grammar, rewrite them with
 *   FLOWRL_WRITE_PROMPTS=1 FLOWRL_SRC=$PWD build/check_flowrl tasks */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/philox.h"
#include "flowrl/swd.h"
#include "flowrl/task.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define HW (FR_SHAPES_H * FR_SHAPES_W)

static const fr_task *task(const char *name)
{
    const fr_task *t = NULL;
    ck_assert_msg(fr_task_get(name, &t) == FR_OK, "%s", fr_last_error());
    return t;
}

/* ---- registry ------------------------------------------------------------------------ */

START_TEST(test_registry)
{
    ck_assert_int_eq(fr_task_count(), 3);
    ck_assert_ptr_eq(task("gmm2d"), &fr_task_gmm2d);
    ck_assert_ptr_eq(task("shapes"), &fr_task_shapes);
    ck_assert_ptr_eq(task("checkerboard"), &fr_task_checkerboard);
    ck_assert_ptr_null(fr_task_at(3));
    const fr_task *t = &fr_task_gmm2d;
    ck_assert_int_eq(fr_task_get("gmm3d", &t), FR_ERR_ARG);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(fr_last_error(), "gmm3d") && strstr(fr_last_error(), "shapes"), "%s",
                  fr_last_error());
    for (int i = 0; i < fr_task_count(); i++) {
        t = fr_task_at(i);
        ck_assert(t->D > 0 && (t->C == 0 || t->C * t->H * t->W == t->D));
        ck_assert(t->n_train > 0 && t->n_train <= t->n_prompts);
        ck_assert(t->eval_first >= 0 && t->eval_first + t->n_eval <= t->n_prompts);
        ck_assert(t->n_slots >= 1 && t->n_slots <= FR_PROMPT_MAX_SLOTS);
        int id = -1;
        ck_assert_int_eq(fr_task_reward_id(t, t->reward_names[t->n_rewards - 1], &id), FR_OK);
        ck_assert_int_eq(id, t->n_rewards - 1);
        ck_assert_int_eq(fr_task_reward_id(t, "aesthetic", &id), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), t->reward_names[0]), "%s", fr_last_error());
        /* every prompt: text, tokens in range, group in range; tokens differ per prompt */
        int32_t tok[FR_PROMPT_MAX_SLOTS];
        char text[FR_PROMPT_TEXT_MAX];
        ck_assert(t->n_prompts <= 128);
        static char texts[128][FR_PROMPT_TEXT_MAX];
        for (int p = 0; p < t->n_prompts; p++) {
            ck_assert_int_eq(t->prompt_text(p, text, sizeof text), FR_OK);
            ck_assert(strlen(text) > 0);
            snprintf(texts[p], sizeof texts[p], "%s", text);
            for (int q = 0; q < p; q++) ck_assert_msg(strcmp(texts[q], text) != 0, "%s twice", text);
            ck_assert_int_eq(t->prompt_tokens(p, tok), FR_OK);
            for (int s = 0; s < t->n_slots; s++) ck_assert(tok[s] >= 0 && tok[s] < t->n_vocab);
            int g = t->prompt_group(p);
            ck_assert(g >= 0 && g < t->n_groups);
        }
        ck_assert_int_eq(t->prompt_text(t->n_prompts, text, sizeof text), FR_ERR_ARG);
        ck_assert_int_eq(t->prompt_text(-1, text, sizeof text), FR_ERR_ARG);
        ck_assert_int_eq(t->prompt_text(0, text, 8), FR_ERR_ARG);
        ck_assert_int_eq(t->prompt_tokens(t->n_prompts, tok), FR_ERR_ARG);
        float x[FR_SHAPES_D] = {0}, s;
        int c;
        ck_assert_int_eq(t->sample(t->n_prompts, 1, 0, x), FR_ERR_ARG);
        ck_assert_int_eq(t->reward(0, t->n_prompts, x, &s, &c), FR_ERR_ARG);
        ck_assert_int_eq(t->reward(t->n_rewards, 0, x, &s, &c), FR_ERR_ARG);
        /* a NaN sample is an error naming the problem, not a score */
        x[1] = NAN;
        ck_assert_int_eq(t->reward(0, 0, x, &s, &c), FR_ERR_NUMERIC);
        ck_assert_msg(strstr(fr_last_error(), "finite"), "%s", fr_last_error());
    }
}
END_TEST

/* Prompt tokens identify the prompt: no two prompts share a token tuple. */
START_TEST(test_tokens_unique)
{
    for (int i = 0; i < fr_task_count(); i++) {
        const fr_task *t = fr_task_at(i);
        for (int p = 0; p < t->n_prompts; p++)
            for (int q = 0; q < p; q++) {
                int32_t a[FR_PROMPT_MAX_SLOTS], b[FR_PROMPT_MAX_SLOTS];
                if (t->prompt_tokens(p, a) != FR_OK || t->prompt_tokens(q, b) != FR_OK ||
                    memcmp(a, b, sizeof(int32_t) * t->n_slots) == 0)
                    ck_abort_msg("%s: prompts %d and %d share tokens", t->name, p, q);
            }
    }
}
END_TEST

START_TEST(test_batch_helpers)
{
    for (int i = 0; i < fr_task_count(); i++) {
        const fr_task *t = fr_task_at(i);
        enum { B = 6 };
        int prompts[B];
        for (int b = 0; b < B; b++) prompts[b] = (b * 5) % t->n_prompts;
        float *x = malloc(sizeof(float) * B * t->D), *one = malloc(sizeof(float) * t->D);
        ck_assert_int_eq(fr_task_sample_batch(t, B, prompts, 77, 100, x), FR_OK);
        float score[B];
        int correct[B];
        ck_assert_int_eq(fr_task_reward_batch(t, 0, B, prompts, x, score, correct), FR_OK);
        for (int b = 0; b < B; b++) {
            ck_assert_int_eq(t->sample(prompts[b], 77, 100 + b, one), FR_OK);
            ck_assert(memcmp(one, x + b * t->D, sizeof(float) * t->D) == 0);
            float s;
            int c;
            ck_assert_int_eq(t->reward(0, prompts[b], one, &s, &c), FR_OK);
            ck_assert(fr_test_bits_equal(s, score[b]) && c == correct[b]);
        }
        ck_assert_int_eq(fr_task_reward_batch(t, 0, B, prompts, x, score, NULL), FR_OK);
        free(x);
        free(one);
    }
}
END_TEST

/* Same (seed, prompt, index) -> same bytes in any call order; another seed or index ->
 * another sample. */
START_TEST(test_determinism)
{
    for (int i = 0; i < fr_task_count(); i++) {
        const fr_task *t = fr_task_at(i);
        enum { N = 64 };
        float *a = malloc(sizeof(float) * N * t->D), *b = malloc(sizeof(float) * N * t->D),
              *c = malloc(sizeof(float) * t->D);
        for (int p = 0; p < t->n_prompts; p++) {
            int bad = 0;
            for (int k = 0; k < N; k++) bad |= t->sample(p, 5, k, a + k * t->D) != FR_OK;
            for (int k = N - 1; k >= 0; k--) bad |= t->sample(p, 5, k, b + k * t->D) != FR_OK;
            ck_assert_msg(memcmp(a, b, sizeof(float) * N * t->D) == 0, "%s prompt %d", t->name, p);
            int differ_seed = 0, differ_index = 0;
            for (int k = 0; k < N; k++) {
                bad |= t->sample(p, 6, k, c) != FR_OK;
                differ_seed += memcmp(c, a + k * t->D, sizeof(float) * t->D) != 0;
                differ_index += memcmp(a + k * t->D, a + ((k + 1) % N) * t->D,
                                       sizeof(float) * t->D) != 0;
            }
            ck_assert_msg(!bad, "%s", fr_last_error());
            /* the smallest layout space (a single square: 16 cells) repeats with
             * probability 1/16 per pair; 64 pairs must show at least half differing */
            ck_assert_msg(differ_seed >= N / 2 && differ_index >= N / 2,
                          "%s prompt %d: seeds 5/6 differ in %d of %d, neighbours in %d",
                          t->name, p, differ_seed, N, differ_index);
        }
        free(a);
        free(b);
        free(c);
    }
}
END_TEST

/* ---- gmm2d --------------------------------------------------------------------------- */

START_TEST(test_gmm2d_modes_and_rewards)
{
    const fr_task *t = &fr_task_gmm2d;
    for (int k = 0; k < FR_GMM2D_MODES; k++) {
        float mu[2];
        fr_gmm2d_mode(k, mu);
        double ang = k * M_PI / 4;
        ck_assert(fabs(mu[0] - 4 * cos(ang)) < 1e-6 && fabs(mu[1] - 4 * sin(ang)) < 1e-6);
        float s;
        int c;
        ck_assert_int_eq(t->reward(0, k, mu, &s, &c), FR_OK);
        ck_assert(s == 1.0f && c == 1);
        /* the neighbouring mode's mean: d = 2 R sin(pi/8) */
        float nb[2];
        fr_gmm2d_mode((k + 1) % 8, nb);
        ck_assert_int_eq(t->reward(0, k, nb, &s, &c), FR_OK);
        double d = 8 * sin(M_PI / 8);
        ck_assert_msg(fabs(s - exp(-d * d / 2)) < 1e-6 && c == 0, "k %d: %g", k, (double)s);
        /* the boundary of "correct" is 3 std = 1.2 from the mean, radially */
        float in[2] = {mu[0] * (1 + 1.19f / 4), mu[1] * (1 + 1.19f / 4)};
        float out[2] = {mu[0] * (1 + 1.21f / 4), mu[1] * (1 + 1.21f / 4)};
        ck_assert_int_eq(t->reward(0, k, in, &s, &c), FR_OK);
        ck_assert(c == 1);
        ck_assert_int_eq(t->reward(0, k, out, &s, &c), FR_OK);
        ck_assert(c == 0);
        /* halfplane: modes 7, 0, 1, 2 rewarded, whatever the prompt */
        int side = k == 7 || k <= 2;
        ck_assert_int_eq(t->reward(1, (k + 3) % 8, mu, &s, &c), FR_OK);
        ck_assert_msg(c == side && s == (float)side, "mode %d", k);
    }
}
END_TEST

/* Moments of the generator and how often each reward fires on ground truth. */
START_TEST(test_gmm2d_samples)
{
    const fr_task *t = &fr_task_gmm2d;
    enum { N = 20000 };
    for (int k = 0; k < FR_GMM2D_MODES; k++) {
        double m[2] = {0, 0}, v[2] = {0, 0};
        int correct = 0, half = 0;
        float mu[2];
        fr_gmm2d_mode(k, mu);
        for (int i = 0; i < N; i++) {
            float x[2], s;
            int c;
            /* plain conditions in this loop: a Check assertion costs a system call */
            if (t->sample(k, 11, i, x) != FR_OK) ck_abort_msg("%s", fr_last_error());
            for (int j = 0; j < 2; j++) {
                m[j] += x[j] - mu[j];
                v[j] += (double)(x[j] - mu[j]) * (x[j] - mu[j]);
            }
            if (t->reward(0, k, x, &s, &c) != FR_OK) ck_abort_msg("%s", fr_last_error());
            if (!(s > 0.0f && s <= 1.0f)) ck_abort_msg("mode %d sample %d: score %g", k, i, s);
            correct += c;
            if (t->reward(1, k, x, &s, &c) != FR_OK) ck_abort_msg("%s", fr_last_error());
            half += c;
        }
        for (int j = 0; j < 2; j++) {
            /* mean: 5 standard errors (0.4 / sqrt(N) = 0.0028); std: SE ~ 0.002 */
            ck_assert_msg(fabs(m[j] / N) < 0.015, "mode %d axis %d mean offset %g", k, j, m[j] / N);
            ck_assert_msg(fabs(sqrt(v[j] / N) - 0.4) < 0.01, "mode %d axis %d std %g", k, j,
                          sqrt(v[j] / N));
        }
        /* P(chi2_2 <= 9) = 1 - e^-4.5 = 0.98889; binomial SE 0.0007 */
        ck_assert_msg(fabs((double)correct / N - 0.98889) < 0.004, "mode %d: %d of %d correct", k,
                      correct, N);
        /* 3.8 std from the boundary: P(wrong side) ~ 7e-5 per sample */
        int side = k == 7 || k <= 2;
        ck_assert_msg(side ? half >= N - 10 : half <= 10, "mode %d: halfplane %d of %d", k, half, N);
    }
}
END_TEST

/* ---- shapes: prompt table and split ------------------------------------------------ */

static fr_shapes_prompt prompt(int id)
{
    fr_shapes_prompt p;
    ck_assert_msg(fr_shapes_prompt_get(id, &p) == FR_OK, "%s", fr_last_error());
    return p;
}

static int same_prompt(fr_shapes_prompt a, fr_shapes_prompt b)
{
    return a.kind == b.kind && a.color_a == b.color_a && a.color_b == b.color_b &&
           a.count == b.count && a.rel == b.rel;
}

/* The mirror phrase: "A left of B" == "B right of A". */
static fr_shapes_prompt mirror(fr_shapes_prompt p)
{
    static const int flip[4] = {FR_SHAPES_RIGHT, FR_SHAPES_LEFT, FR_SHAPES_BELOW, FR_SHAPES_ABOVE};
    fr_shapes_prompt m = p;
    m.color_a = p.color_b;
    m.color_b = p.color_a;
    m.rel = flip[p.rel];
    return m;
}

START_TEST(test_shapes_split)
{
    const fr_task *t = &fr_task_shapes;
    ck_assert_int_eq(fr_shapes_n_train_prompts(), FR_SHAPES_N_TRAIN);
    ck_assert_int_eq(fr_shapes_n_eval_prompts(), FR_SHAPES_N_EVAL);
    ck_assert_int_eq(t->n_train + t->n_eval, t->n_prompts);
    ck_assert_int_eq(t->eval_first, t->n_train);
    int per_kind[2][4] = {{0}}, color_seen[4][4] = {{0}}, count_seen[5] = {0}, rel_seen[4] = {0};
    for (int id = 0; id < t->n_prompts; id++) {
        fr_shapes_prompt p = prompt(id);
        int eval = id >= t->eval_first;
        ck_assert_int_eq(fr_shapes_is_eval(&p), eval);
        ck_assert_int_eq(t->prompt_group(id), p.kind);
        per_kind[eval][p.kind]++;
        for (int q = 0; q < id; q++) ck_assert(!same_prompt(p, prompt(q)));
        if (p.kind == FR_SHAPES_POSITION) {
            /* a phrase and its mirror sit on the same side of the split */
            fr_shapes_prompt m = mirror(p);
            ck_assert_int_eq(fr_shapes_is_eval(&m), eval);
        }
        if (!eval) {
            color_seen[p.kind][p.color_a] = 1;
            if (p.color_b >= 0) color_seen[p.kind][p.color_b] = 1;
            if (p.kind == FR_SHAPES_COUNTING) count_seen[p.count] = 1;
            if (p.rel >= 0) rel_seen[p.rel] = 1;
        }
    }
    /* every kind is evaluated; training covers every colour of every kind except the
     * held-out single "a yellow object", every count and relation */
    for (int k = 0; k < 4; k++) ck_assert_msg(per_kind[1][k] > 0, "no eval prompt of kind %d", k);
    ck_assert_int_eq(per_kind[0][FR_SHAPES_SINGLE] + per_kind[1][FR_SHAPES_SINGLE], 4);
    ck_assert_int_eq(per_kind[0][FR_SHAPES_COUNTING] + per_kind[1][FR_SHAPES_COUNTING], 12);
    ck_assert_int_eq(per_kind[0][FR_SHAPES_TWO] + per_kind[1][FR_SHAPES_TWO], 6);
    ck_assert_int_eq(per_kind[0][FR_SHAPES_POSITION] + per_kind[1][FR_SHAPES_POSITION], 48);
    for (int k = 1; k < 4; k++)
        for (int c = 0; c < 4; c++) ck_assert_msg(color_seen[k][c], "kind %d colour %d", k, c);
    for (int n = 2; n <= 4; n++) ck_assert(count_seen[n]);
    for (int r = 0; r < 4; r++) ck_assert(rel_seen[r]);
    fr_shapes_prompt p;
    ck_assert_int_eq(fr_shapes_prompt_get(FR_SHAPES_N_PROMPTS, &p), FR_ERR_ARG);
    ck_assert_int_eq(fr_shapes_prompt_get(-1, &p), FR_ERR_ARG);
    char text[FR_PROMPT_TEXT_MAX];
    ck_assert_int_eq(t->prompt_text(0, text, sizeof text), FR_OK);
    ck_assert_str_eq(text, "a red object");
}
END_TEST

/* The files users read: "id<TAB>text" per line after '#' comment lines. */
static void list_text(int first, int n, char *buf, size_t cap, const char *split)
{
    size_t len = (size_t)snprintf(buf, cap,
                                  "# shapes %s prompts: id<TAB>text. Generated from "
                                  "data/shapes_prompts.c;\n# rewrite with FLOWRL_WRITE_PROMPTS=1 "
                                  "FLOWRL_SRC=$PWD build/check_flowrl tasks\n",
                                  split);
    for (int id = first; id < first + n; id++) {
        char text[FR_PROMPT_TEXT_MAX];
        ck_assert_int_eq(fr_task_shapes.prompt_text(id, text, sizeof text), FR_OK);
        len += (size_t)snprintf(buf + len, cap - len, "%d\t%s\n", id, text);
        ck_assert(len < cap);
    }
}

START_TEST(test_shapes_prompt_files)
{
    const char *src = getenv("FLOWRL_SRC");
    ck_assert_msg(src != NULL, "FLOWRL_SRC (the source tree) is not set");
    const fr_task *t = &fr_task_shapes;
    struct {
        const char *name;
        int first, n;
    } files[2] = {{"train", 0, t->n_train}, {"eval", t->eval_first, t->n_eval}};
    for (int f = 0; f < 2; f++) {
        static char want[1 << 14], have[1 << 14];
        list_text(files[f].first, files[f].n, want, sizeof want, files[f].name);
        char path[1024];
        snprintf(path, sizeof path, "%s/data/shapes_%s.txt", src, files[f].name);
        if (getenv("FLOWRL_WRITE_PROMPTS")) {
            FILE *fp = fopen(path, "w");
            ck_assert_msg(fp != NULL, "cannot write %s", path);
            fputs(want, fp);
            ck_assert_int_eq(fclose(fp), 0);
        }
        FILE *fp = fopen(path, "r");
        ck_assert_msg(fp != NULL, "cannot read %s", path);
        size_t n = fread(have, 1, sizeof have - 1, fp);
        fclose(fp);
        have[n] = 0;
        ck_assert_msg(strcmp(have, want) == 0,
                      "%s differs from the generated list; if the change is deliberate, "
                      "rewrite it (see tests/test_tasks.c)", path);
    }
}
END_TEST

/* ---- shapes: generator and detector --------------------------------------------------- */

static void detect(const float *x, fr_shapes_detection *d)
{
    if (fr_shapes_detect(x, d) != FR_OK) ck_abort_msg("%s", fr_last_error());
}

static float score_of(int id, const float *x, int *correct)
{
    fr_shapes_detection d;
    detect(x, &d);
    float s;
    if (fr_shapes_score(id, &d, &s, correct) != FR_OK) ck_abort_msg("%s", fr_last_error());
    return s;
}

/* Ground truth: every prompt, many samples -> 100% correct, score exactly 1, and the
 * detector sees what the generator drew. */
START_TEST(test_shapes_ground_truth)
{
    const fr_task *t = &fr_task_shapes;
    enum { N = 200 };
    float x[FR_SHAPES_D];
    for (int id = 0; id < t->n_prompts; id++) {
        fr_shapes_prompt p = prompt(id);
        int cell_hits[16] = {0};
        for (int i = 0; i < N; i++) {
            /* plain conditions in this loop: a Check assertion costs a system call */
            if (t->sample(id, 3, i, x) != FR_OK) ck_abort_msg("%s", fr_last_error());
            int pure = 1;
            for (int k = 0; k < FR_SHAPES_D; k++) pure &= x[k] == -1.0f || x[k] == 1.0f;
            float s, s1;
            int c, c1;
            if (t->reward(0, id, x, &s, &c) != FR_OK || t->reward(1, id, x, &s1, &c1) != FR_OK)
                ck_abort_msg("%s", fr_last_error());
            fr_shapes_detection d;
            detect(x, &d);
            int want = p.kind == FR_SHAPES_COUNTING ? p.count : p.kind == FR_SHAPES_SINGLE ? 1 : 2;
            int ok = pure && c == 1 && s == 1.0f && c1 == 1 && s1 == 1.0f &&
                     d.n_objects == want && d.n_blobs == 0;
            for (int o = 0; o < d.n_objects; o++) {
                /* 9 pixels, centroids on the lattice 1, 5, 10, 14 */
                int col = -1, row = -1;
                static const float ctr[4] = {1, 5, 10, 14};
                for (int g = 0; g < 4; g++) {
                    if (d.obj[o].cx == ctr[g]) col = g;
                    if (d.obj[o].cy == ctr[g]) row = g;
                }
                ok &= d.obj[o].pixels == 9 && col >= 0 && row >= 0;
                if (col >= 0 && row >= 0) cell_hits[row * 4 + col]++;
            }
            if (!ok)
                ck_abort_msg("prompt %d sample %d (seed 3): score %g correct %d, %d objects "
                             "(want %d), %d blobs, pure colours %d",
                             id, i, (double)s, c, d.n_objects, want, d.n_blobs, pure);
        }
        /* every cell gets used (single: 200 draws over 16 cells, P(miss) ~ 16 e^-12.8) */
        if (p.kind != FR_SHAPES_POSITION)
            for (int cell = 0; cell < 16; cell++)
                ck_assert_msg(cell_hits[cell] > 0, "prompt %d never uses cell %d", id, cell);
    }
}
END_TEST

static void fill_bg(float *x)
{
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
}

static void paint(float *x, int y0, int x0, int h, int w, const float rgb[3])
{
    for (int ch = 0; ch < 3; ch++)
        for (int y = y0; y < y0 + h; y++)
            for (int xx = x0; xx < x0 + w; xx++) x[ch * HW + y * FR_SHAPES_W + xx] = rgb[ch];
}

/* The id of the prompt described by p (it must exist). */
static int find(fr_shapes_prompt want)
{
    for (int id = 0; id < FR_SHAPES_N_PROMPTS; id++)
        if (same_prompt(prompt(id), want)) return id;
    ck_abort_msg("prompt not found");
    return -1;
}

enum { RED, GREEN, BLUE, YELLOW };
#define PAL(c) fr_shapes_palette[c]

START_TEST(test_shapes_failures)
{
    float x[FR_SHAPES_D];
    int c;
    int single_red = find((fr_shapes_prompt){FR_SHAPES_SINGLE, RED, -1, 1, -1});
    int three_blue = find((fr_shapes_prompt){FR_SHAPES_COUNTING, BLUE, -1, 3, -1});
    int red_green = find((fr_shapes_prompt){FR_SHAPES_TWO, RED, GREEN, 1, -1});
    int red_left_blue = find((fr_shapes_prompt){FR_SHAPES_POSITION, RED, BLUE, 1, FR_SHAPES_LEFT});
    int red_above_blue = find((fr_shapes_prompt){FR_SHAPES_POSITION, RED, BLUE, 1, FR_SHAPES_ABOVE});

    /* empty image: 0 for every prompt */
    fill_bg(x);
    for (int id = 0; id < FR_SHAPES_N_PROMPTS; id++) {
        ck_assert(score_of(id, x, &c) == 0.0f && c == 0);
    }
    /* wrong colour */
    paint(x, 4, 4, 3, 3, PAL(GREEN));
    ck_assert(score_of(single_red, x, &c) == 0.0f && c == 0);
    /* right object plus a wrong one: 1 / (1 + 1) */
    paint(x, 9, 9, 3, 3, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 0.5f && c == 0);
    /* ... which is exactly right for the two-colour prompt */
    ck_assert(score_of(red_green, x, &c) == 1.0f && c == 1);
    /* a whole red image is a blob, not an object */
    fill_bg(x);
    paint(x, 0, 0, 16, 16, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 0.0f && c == 0);
    /* a 4x4 red square still counts (16 pixels), a 5x4 one does not */
    fill_bg(x);
    paint(x, 2, 2, 4, 4, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 1.0f && c == 1);
    paint(x, 6, 2, 1, 4, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 0.0f && c == 0);

    /* 4 pixels are a speck, 5 an object */
    fill_bg(x);
    paint(x, 0, 0, 2, 2, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 0.0f && c == 0);
    paint(x, 2, 0, 1, 1, PAL(RED));
    ck_assert(score_of(single_red, x, &c) == 1.0f && c == 1);

    /* counting: 2 of 3 -> 2/3, 4 of 3 -> 3/4, 3 -> 1, two touching -> one object */
    fill_bg(x);
    paint(x, 0, 0, 3, 3, PAL(BLUE));
    paint(x, 0, 9, 3, 3, PAL(BLUE));
    ck_assert(score_of(three_blue, x, &c) == 2.0f / 3.0f && c == 0);
    paint(x, 9, 0, 3, 3, PAL(BLUE));
    ck_assert(score_of(three_blue, x, &c) == 1.0f && c == 1);
    paint(x, 9, 9, 3, 3, PAL(BLUE));
    ck_assert(score_of(three_blue, x, &c) == 0.75f && c == 0);
    fill_bg(x);
    paint(x, 0, 0, 3, 3, PAL(BLUE));
    paint(x, 0, 3, 3, 2, PAL(BLUE)); /* 15 pixels, one component */
    paint(x, 9, 0, 3, 3, PAL(BLUE));
    paint(x, 9, 9, 3, 3, PAL(BLUE));
    ck_assert(score_of(three_blue, x, &c) == 1.0f && c == 1);
    paint(x, 0, 5, 3, 3, PAL(BLUE)); /* grows to 24 pixels: a blob */
    ck_assert(score_of(three_blue, x, &c) == (2.0f / 3.0f) / 2.0f && c == 0);

    /* position: right, swapped, too close, wrong axis */
    fill_bg(x);
    paint(x, 4, 0, 3, 3, PAL(RED));
    paint(x, 9, 9, 3, 3, PAL(BLUE));
    ck_assert(score_of(red_left_blue, x, &c) == 1.0f && c == 1);
    ck_assert(score_of(red_above_blue, x, &c) == 1.0f && c == 1);
    fill_bg(x);
    paint(x, 4, 9, 3, 3, PAL(RED));
    paint(x, 9, 0, 3, 3, PAL(BLUE));
    ck_assert(score_of(red_left_blue, x, &c) == 2.0f / 3.0f && c == 0);
    fill_bg(x);
    paint(x, 0, 4, 3, 3, PAL(RED)); /* centroids 1 px apart in x: within the margin */
    paint(x, 9, 5, 3, 3, PAL(BLUE));
    ck_assert(score_of(red_left_blue, x, &c) == 2.0f / 3.0f && c == 0);
    ck_assert(score_of(red_above_blue, x, &c) == 1.0f && c == 1);
    /* a missing partner: 1/3 (colour found, partner absent, no relation) */
    fill_bg(x);
    paint(x, 0, 0, 3, 3, PAL(RED));
    ck_assert(score_of(red_left_blue, x, &c) == 1.0f / 3.0f && c == 0);
}
END_TEST

/* Robustness: specks are ignored, mild colour noise does not change the verdict, noise
 * images are never correct. */
START_TEST(test_shapes_noise)
{
    const fr_task *t = &fr_task_shapes;
    float x[FR_SHAPES_D];
    uint64_t rs = 12345;
    int c;
    for (int id = 0; id < t->n_prompts; id += 3) {
        ck_assert_int_eq(t->sample(id, 9, (uint32_t)id, x), FR_OK);
        /* uniform noise of +-0.3 per channel: distance <= 0.52 < tolerance 0.8 */
        for (int k = 0; k < FR_SHAPES_D; k++) x[k] += fr_test_uniform(&rs, -0.3f, 0.3f);
        float s = score_of(id, x, &c);
        ck_assert_msg(c == 1 && s == 1.0f, "prompt %d (noise seed 12345)", id);
        /* a 2-pixel speck of an unnamed colour in column 7, which no lattice cell uses */
        fr_shapes_prompt p = prompt(id);
        int other = 0;
        while (other == p.color_a || other == p.color_b) other++;
        paint(x, 0, 7, 2, 1, PAL(other));
        s = score_of(id, x, &c);
        ck_assert_msg(c == 1 && s == 1.0f, "prompt %d with a speck", id);
    }
    /* uniform noise images (seeded; the seed is in the message) */
    for (uint64_t seed = 1; seed <= 50; seed++) {
        uint64_t st = seed;
        for (int k = 0; k < FR_SHAPES_D; k++) x[k] = fr_test_uniform(&st, -1.0f, 1.0f);
        for (int id = 0; id < t->n_prompts; id++) {
            float s = score_of(id, x, &c);
            if (!(c == 0 && s < 0.5f))
                ck_abort_msg("noise seed %llu prompt %d: score %g", (unsigned long long)seed, id,
                             (double)s);
        }
    }
    /* outside [-1, 1] is still classified by distance; infinities are errors */
    fill_bg(x);
    x[5] = INFINITY;
    fr_shapes_detection d;
    ck_assert_int_eq(fr_shapes_detect(x, &d), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "element 5"), "%s", fr_last_error());
}
END_TEST

/* The documented layout rule, checked from outside: a single-object sample puts its square
 * in cell floor(w0 * 16 / 2^32) of the lattice, w0 = fr_rng_u32(seed, FR_RNG_TASK_DATA,
 * FR_TASK_TAG_SHAPES, prompt, index, 0). */
START_TEST(test_shapes_layout_rule)
{
    const fr_task *t = &fr_task_shapes;
    float x[FR_SHAPES_D];
    /* single prompts: the cell is the first Fisher-Yates draw from word 0 */
    for (int id = 0; id < t->n_prompts; id++) {
        fr_shapes_prompt p = prompt(id);
        if (p.kind != FR_SHAPES_SINGLE) continue;
        for (uint32_t i = 0; i < 20; i++) {
            ck_assert_int_eq(t->sample(id, 21, i, x), FR_OK);
            uint32_t w = fr_rng_u32(21, FR_RNG_TASK_DATA, FR_TASK_TAG_SHAPES, (uint32_t)id, i, 0);
            int cell = (int)(((uint64_t)w * 16) >> 32);
            static const int org[4] = {0, 4, 9, 13};
            int y = org[cell / 4] + 1, xx = org[cell % 4] + 1;
            for (int ch = 0; ch < 3; ch++)
                ck_assert(x[ch * HW + y * FR_SHAPES_W + xx] == fr_shapes_palette[p.color_a][ch]);
        }
    }
}
END_TEST

/* checkerboard: every sample lies in a white cell, each of the 8 cells gets about 1/8 of them,
 * the coordinates are uniform inside a cell (mean of the in-cell offset near 1/2), and the
 * reward says inside / outside, with the cell edges on the right side. */
START_TEST(test_checkerboard)
{
    const fr_task *t = &fr_task_checkerboard;
    enum { N = 8000 };
    int count[8] = {0};
    double off = 0;
    for (int n = 0; n < N; n++) {
        float x[2], s;
        int c;
        ck_assert_int_eq(t->sample(0, 3, (uint32_t)n, x), FR_OK);
        ck_assert(x[0] >= -4.0f && x[0] < 4.0f && x[1] >= -4.0f && x[1] < 4.0f);
        ck_assert_int_eq(t->reward(0, 0, x, &s, &c), FR_OK);
        ck_assert_msg(c == 1 && s == 1.0f, "sample %d (%g, %g) outside", n, (double)x[0], (double)x[1]);
        int i = (int)floorf((x[0] + 4.0f) / 2.0f), j = (int)floorf((x[1] + 4.0f) / 2.0f);
        count[i * 2 + j / 2]++; /* (i, j) white: j = i mod 2 + 2 k, so i and j / 2 name the cell */
        off += (x[0] + 4.0f) / 2.0f - i;
    }
    for (int k = 0; k < 8; k++) /* N/8 = 1000, sd 30 */
        ck_assert_msg(count[k] > 850 && count[k] < 1150, "cell %d: %d of %d", k, count[k], N);
    ck_assert_msg(fabs(off / N - 0.5) < 0.02, "mean in-cell offset %g", off / N);
    const float inside[][2] = {{-4, -4}, {-3, -3}, {-1, -1}, {0, 0}, {3.9f, 3.9f}, {-0.001f, -0.5f}};
    const float outside[][2] = {{-2, -4}, {0, -1}, {-1, 1}, {4, 0}, {-5, -3}, {3.999f, -4.5f}, {1.5f, 3.9f}};
    for (size_t k = 0; k < sizeof inside / sizeof inside[0]; k++)
        ck_assert_msg(fr_checkerboard_inside(inside[k]), "(%g, %g)", (double)inside[k][0], (double)inside[k][1]);
    for (size_t k = 0; k < sizeof outside / sizeof outside[0]; k++)
        ck_assert_msg(!fr_checkerboard_inside(outside[k]), "(%g, %g)", (double)outside[k][0], (double)outside[k][1]);
    float x[2] = {0, 0}, s, g[2];
    ck_assert_int_eq(t->reward_grad(0, 0, x, &s, g), FR_ERR_UNSUPPORTED);
    ck_assert_int_eq(t->reward(1, 0, x, &s, NULL), FR_ERR_ARG);
}
END_TEST

/* The sliced Wasserstein-2 distance (flowrl/swd.h): 0 between a set and itself; in 1-D the
 * exact W2 (a shift c gives |c|; unequal sizes compare empirical quantiles); small between two
 * samples of one task and large between two tasks; bad input names the problem. */
START_TEST(test_sliced_w2)
{
    double w = -1;
    const float a1[] = {0, 1}, b1[] = {0, 0.5f, 1, 1.5f}, c1[] = {3, 4};
    ck_assert_int_eq(fr_sliced_w2(a1, 2, a1, 2, 1, 5, 1, &w), FR_OK);
    ck_assert(w == 0.0);
    ck_assert_int_eq(fr_sliced_w2(a1, 2, c1, 2, 1, 5, 1, &w), FR_OK);
    ck_assert_msg(fabs(w - 3.0) < 1e-12, "%.17g", w);
    /* M = 4 levels: a's quantiles 0 0 1 1, b's 0 0.5 1 1.5: sqrt((0.25 + 0.25) / 4) */
    ck_assert_int_eq(fr_sliced_w2(a1, 2, b1, 4, 1, 3, 1, &w), FR_OK);
    ck_assert_msg(fabs(w - sqrt(0.125)) < 1e-12, "%.17g", w);
    enum { N = 1000 };
    float *x = malloc(sizeof(float) * 2 * N), *y = malloc(sizeof(float) * 2 * N), *g = malloc(sizeof(float) * 2 * N);
    int zero[N] = {0};
    ck_assert_int_eq(fr_task_sample_batch(&fr_task_checkerboard, N, zero, 1, 0, x), FR_OK);
    ck_assert_int_eq(fr_task_sample_batch(&fr_task_checkerboard, N, zero, 2, 0, y), FR_OK);
    ck_assert_int_eq(fr_task_sample_batch(&fr_task_gmm2d, N, zero, 1, 0, g), FR_OK);
    double same, other;
    ck_assert_int_eq(fr_sliced_w2(x, N, y, N, 2, 64, 7, &same), FR_OK);
    ck_assert_int_eq(fr_sliced_w2(x, N, g, N, 2, 64, 7, &other), FR_OK);
    ck_assert_msg(same < 0.15 && other > 1.0, "same task %g, other task %g", same, other);
    x[3] = NAN;
    ck_assert_int_eq(fr_sliced_w2(x, N, y, N, 2, 64, 7, &w), FR_ERR_NUMERIC);
    ck_assert_msg(strstr(fr_last_error(), "first set"), "%s", fr_last_error());
    ck_assert_int_eq(fr_sliced_w2(x, 0, y, N, 2, 64, 7, &w), FR_ERR_ARG);
    free(x), free(y), free(g);
}
END_TEST

Suite *suite_tasks(void)
{
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("tasks");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_tokens_unique);
    tcase_add_test(tc, test_batch_helpers);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_gmm2d_modes_and_rewards);
    tcase_add_test(tc, test_gmm2d_samples);
    tcase_add_test(tc, test_shapes_split);
    tcase_add_test(tc, test_shapes_prompt_files);
    tcase_add_test(tc, test_shapes_ground_truth);
    tcase_add_test(tc, test_shapes_failures);
    tcase_add_test(tc, test_shapes_noise);
    tcase_add_test(tc, test_shapes_layout_rule);
    tcase_add_test(tc, test_checkerboard);
    tcase_add_test(tc, test_sliced_w2);
    suite_add_tcase(s, tc);
    return s;
}
