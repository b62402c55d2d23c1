/* shapes: the data generator. A 16x16 RGB image on a black background holding the
 * objects a prompt asks for, as 3x3 squares of pure palette colours.
 *
 * Layout: the image is a 4x4 lattice of cells whose squares start at pixel 0, 4, 9, 13
 * on each axis (mirror-symmetric; neighbouring squares are 1 or 2 pixels apart, so objects
 * never touch, not even diagonally, and connected components separate them). Each object
 * takes a distinct cell:
 *   single / counting / two   distinct cells, uniform (partial Fisher-Yates);
 *   position                  A and B in cells whose column (left/right) or row
 *                             (above/below) are ordered as the prompt says, the ordered
 *                             pair uniform among the 6, the other axis uniform and free.
 * So centroids of related objects differ by >= 4 pixels on the prompt's axis, twice the
 * detector's margin. Random words: fr_rng_u32(seed, FR_RNG_TASK_DATA,
 * FR_TASK_TAG_SHAPES, prompt, index, k) for k = 0, 1, ... */
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/classifier.h"
#include "flowrl/philox.h"

_Static_assert(FR_SHAPES_H == 16 && FR_SHAPES_W == 16 && FR_SHAPES_GRID == 4 && FR_SHAPES_OBJ == 3,
               "the lattice below is laid out for 16x16 images of 3x3 squares");
static const int k_origin[FR_SHAPES_GRID] = {0, 4, 9, 13};

/* Pure colours: every channel at -1 or +1. */
const float fr_shapes_palette[FR_SHAPES_NCOLORS][3] = {
    {1.0f, -1.0f, -1.0f}, /* red */
    {-1.0f, 1.0f, -1.0f}, /* green */
    {-1.0f, -1.0f, 1.0f}, /* blue */
    {1.0f, 1.0f, -1.0f},  /* yellow */
};

/* Uniform integer in [0, n) from one word (multiply-shift; bias < n / 2^32). */
static int uniform_int(uint32_t w, int n) { return (int)(((uint64_t)w * (uint32_t)n) >> 32); }

typedef struct {
    uint32_t seed, prompt, index, k;
} word_stream;

static uint32_t next_word(word_stream *s)
{
    return fr_rng_u32(s->seed, FR_RNG_TASK_DATA, FR_TASK_TAG_SHAPES, s->prompt, s->index, s->k++);
}

static void draw_square(float *x, int row, int col, int color) // x: (3, H, W)
{
    for (int ch = 0; ch < 3; ch++)
        for (int dy = 0; dy < FR_SHAPES_OBJ; dy++)
            for (int dx = 0; dx < FR_SHAPES_OBJ; dx++) {
                int y = k_origin[row] + dy, xx = k_origin[col] + dx;
                x[(ch * FR_SHAPES_H + y) * FR_SHAPES_W + xx] = fr_shapes_palette[color][ch];
            }
}

fr_status fr_shapes_sample(int prompt_id, uint32_t seed, uint32_t index, float *x)
{
    fr_shapes_prompt p;
    FR_TRY(fr_shapes_prompt_get(prompt_id, &p));
    for (int i = 0; i < FR_SHAPES_D; i++) x[i] = -1.0f;
    word_stream ws = {seed, (uint32_t)prompt_id, index, 0};

    if (p.kind == FR_SHAPES_POSITION) {
        /* the 6 ordered pairs lo < hi of lattice positions */
        int pair = uniform_int(next_word(&ws), FR_SHAPES_GRID * (FR_SHAPES_GRID - 1) / 2);
        int lo = 0, hi = 1;
        for (int a = 0, k = 0; a < FR_SHAPES_GRID; a++)
            for (int b = a + 1; b < FR_SHAPES_GRID; b++, k++)
                if (k == pair) lo = a, hi = b;
        int free_a = uniform_int(next_word(&ws), FR_SHAPES_GRID);
        int free_b = uniform_int(next_word(&ws), FR_SHAPES_GRID);
        int first_a = p.rel == FR_SHAPES_LEFT || p.rel == FR_SHAPES_ABOVE;
        int ord_a = first_a ? lo : hi, ord_b = first_a ? hi : lo;
        if (p.rel == FR_SHAPES_LEFT || p.rel == FR_SHAPES_RIGHT) {
            draw_square(x, free_a, ord_a, p.color_a);
            draw_square(x, free_b, ord_b, p.color_b);
        } else {
            draw_square(x, ord_a, free_a, p.color_a);
            draw_square(x, ord_b, free_b, p.color_b);
        }
        return FR_OK;
    }

    int colors[FR_SHAPES_MAX_COUNT], n = 0;
    if (p.kind == FR_SHAPES_TWO) {
        colors[n++] = p.color_a;
        colors[n++] = p.color_b;
    } else {
        for (int i = 0; i < p.count; i++) colors[n++] = p.color_a;
    }
    int cells[FR_SHAPES_GRID * FR_SHAPES_GRID];
    for (int i = 0; i < FR_SHAPES_GRID * FR_SHAPES_GRID; i++) cells[i] = i;
    for (int i = 0; i < n; i++) {
        int j = i + uniform_int(next_word(&ws), FR_SHAPES_GRID * FR_SHAPES_GRID - i);
        int t = cells[i];
        cells[i] = cells[j];
        cells[j] = t;
        draw_square(x, cells[i] / FR_SHAPES_GRID, cells[i] % FR_SHAPES_GRID, colors[i]);
    }
    return FR_OK;
}

/* Rewards: 0 "geneval" = the detector's partial credit (dense, for training);
 * 1 "strict" = 1 if correct else 0; 2 "classifier" = the frozen classifier's log-probability
 * log σ(z_p(x)) <= 0 of the prompt's label (flowrl/classifier.h), differentiable; 3 "redquad" =
 * the mean of the red-quadrant map (PXPO's miniature, data/shapes_redquad.c). correct is the
 * detector's for all four. */
fr_status fr_shapes_reward(int reward_id, int prompt_id, const float *x, float *score,
                           int *correct)
{
    if (reward_id < 0 || reward_id >= FR_SHAPES_N_REWARDS)
        return fr_fail(FR_ERR_ARG, "shapes: reward id %d outside [0, %d)", reward_id, FR_SHAPES_N_REWARDS);
    fr_shapes_detection det;
    FR_TRY(fr_shapes_detect(x, &det));
    float s;
    int ok;
    FR_TRY(fr_shapes_score(prompt_id, &det, &s, &ok));
    if (reward_id == FR_SHAPES_REWARD_CLASSIFIER) FR_TRY(fr_shapes_reward_grad(reward_id, prompt_id, x, &s, NULL));
    if (reward_id == FR_SHAPES_REWARD_REDQUAD) FR_TRY(fr_shapes_redquad(x, &s));
    *score = reward_id == FR_SHAPES_REWARD_STRICT ? (ok ? 1.0f : 0.0f) : s;
    if (correct) *correct = ok;
    return FR_OK;
}

fr_status fr_shapes_reward_grad(int reward_id, int prompt_id, const float *x, float *score, float *grad)
{
    if (reward_id == FR_SHAPES_REWARD_REDQUAD)
        return fr_fail(FR_ERR_UNSUPPORTED, "shapes: reward redquad has no gradient here (PXPO's map needs none); "
                                           "the classifier reward has one");
    if (reward_id != FR_SHAPES_REWARD_CLASSIFIER)
        return fr_fail(FR_ERR_UNSUPPORTED, "shapes: reward %s is a step function of the detector (no gradient); "
                                           "the classifier reward has one",
                       reward_id == FR_SHAPES_REWARD_GENEVAL ? "geneval" : "strict");
    const fr_clf *m;
    FR_TRY(fr_clf_builtin(&m));
    return fr_clf_logprob(m, prompt_id, x, score, grad);
}
