/* gmm2d: 8 Gaussians on a ring, one prompt per mode.
 *
 * Mode k (= prompt k) has mean R (cos(k pi/4), sin(k pi/4)), R = 4, and std 0.4 per axis;
 * neighbouring means are 2 R sin(pi/8) = 3.06 apart (7.7 std), so modes barely overlap.
 * Sample: x = mean_k + 0.4 * (z0, z1), z_i = fr_rng_normal(seed, FR_RNG_TASK_DATA,
 * FR_TASK_TAG_GMM2D, k, index, i).
 *
 * Rewards:
 *   0 "mode"       score = exp(-|x - mean_k|^2 / 2) (length scale 1 = 2.5 std: dense, a
 *                  neighbouring mode still earns e^-4.7 ~ 0.01); correct = |x - mean_k| <=
 *                  3 std = 1.2 (98.9% of the mode's own mass, and less than half the distance
 *                  to a neighbour).
 *   1 "halfplane"  score = correct = [n . x > 0], n = (cos pi/8, sin pi/8): the boundary
 *                  passes between modes, so modes 7, 0, 1, 2 lie on the rewarded side, each
 *                  R cos(3 pi/8) = 1.53 (3.8 std) or more from the line. Ignores the prompt:
 *                  the classic "shift the mixture's mass" RL test.
 *   2 "sqdist"     score = -|x - mean_k|^2 (more.md §1.5's miniature; unbounded below, not in
 *                  [0, 1]); correct as "mode".
 * Gradients (reward_grad): "mode" d score/dx = -score (x - mean_k), "sqdist" -2 (x - mean_k);
 * "halfplane" is a step function and has none. */
#include <math.h>
#include <stdio.h>

#include "flowrl/detmath.h"
#include "flowrl/philox.h"
#include "data/task_internal.h"
#include "flowrl/task.h"

/* cos and sin of k pi/4, k = 0..7 (sqrt(1/2) rounded to float) */
#define SQRT_HALF 0.70710678118654752f
static const float k_unit[FR_GMM2D_MODES][2] = {
    {1, 0},  {SQRT_HALF, SQRT_HALF},   {0, 1},  {-SQRT_HALF, SQRT_HALF},
    {-1, 0}, {-SQRT_HALF, -SQRT_HALF}, {0, -1}, {SQRT_HALF, -SQRT_HALF}};
/* cos(pi/8), sin(pi/8) */
static const float k_halfplane[2] = {0.92387953251128676f, 0.38268343236508977f};

#define MODE_SCALE 1.0f
#define MODE_RADIUS (3.0f * FR_GMM2D_STD)

void fr_gmm2d_mode(int k, float *xy)
{
    xy[0] = FR_GMM2D_RADIUS * k_unit[k][0];
    xy[1] = FR_GMM2D_RADIUS * k_unit[k][1];
}

static fr_status check_prompt(int prompt_id)
{
    if (prompt_id < 0 || prompt_id >= FR_GMM2D_MODES)
        return fr_fail(FR_ERR_ARG, "gmm2d: prompt id %d outside [0, %d)", prompt_id,
                       FR_GMM2D_MODES);
    return FR_OK;
}

static fr_status gmm2d_sample(int prompt_id, uint32_t seed, uint32_t index, float *x)
{
    FR_TRY(check_prompt(prompt_id));
    float mu[2];
    fr_gmm2d_mode(prompt_id, mu);
    for (int i = 0; i < 2; i++) {
        float z = fr_rng_normal(seed, FR_RNG_TASK_DATA, FR_TASK_TAG_GMM2D, (uint32_t)prompt_id,
                                index, (uint32_t)i);
        x[i] = mu[i] + FR_GMM2D_STD * z;
    }
    return FR_OK;
}

static fr_status gmm2d_reward(int reward_id, int prompt_id, const float *x, float *score,
                              int *correct)
{
    FR_TRY(check_prompt(prompt_id));
    for (int i = 0; i < 2; i++)
        if (!isfinite(x[i]))
            return fr_fail(FR_ERR_NUMERIC, "gmm2d reward: x[%d] = %g, expected a finite value", i,
                           (double)x[i]);
    int ok;
    switch (reward_id) {
    case 0: {
        float mu[2];
        fr_gmm2d_mode(prompt_id, mu);
        float d0 = x[0] - mu[0], d1 = x[1] - mu[1];
        float d2 = d0 * d0 + d1 * d1;
        *score = fr_expf(-d2 / (2.0f * MODE_SCALE * MODE_SCALE));
        ok = d2 <= MODE_RADIUS * MODE_RADIUS;
        break;
    }
    case 1: {
        float s = k_halfplane[0] * x[0] + k_halfplane[1] * x[1];
        ok = s > 0.0f;
        *score = ok ? 1.0f : 0.0f;
        break;
    }
    case 2: {
        float mu[2];
        fr_gmm2d_mode(prompt_id, mu);
        float d0 = x[0] - mu[0], d1 = x[1] - mu[1];
        float d2 = d0 * d0 + d1 * d1;
        *score = -d2;
        ok = d2 <= MODE_RADIUS * MODE_RADIUS;
        break;
    }
    default:
        return fr_fail(FR_ERR_ARG, "gmm2d: reward id %d outside [0, 3)", reward_id);
    }
    if (correct) *correct = ok;
    return FR_OK;
}

static fr_status gmm2d_reward_grad(int reward_id, int prompt_id, const float *x, float *score, float *grad)
{
    if (reward_id == 1) return fr_fail(FR_ERR_UNSUPPORTED, "gmm2d: reward halfplane is a step function: no gradient");
    FR_TRY(gmm2d_reward(reward_id, prompt_id, x, score, NULL));
    float mu[2];
    fr_gmm2d_mode(prompt_id, mu);
    const float c = reward_id == 0 ? -*score : -2.0f;
    for (int i = 0; i < 2; i++) grad[i] = c * (x[i] - mu[i]);
    return FR_OK;
}

static fr_status gmm2d_text(int prompt_id, char *buf, size_t cap)
{
    FR_TRY(check_prompt(prompt_id));
    if (cap < FR_PROMPT_TEXT_MAX)
        return fr_fail(FR_ERR_ARG, "gmm2d: prompt text buffer of %zu bytes, need %d", cap,
                       FR_PROMPT_TEXT_MAX);
    snprintf(buf, cap, "mode %d (%d deg)", prompt_id, 45 * prompt_id);
    return FR_OK;
}

static fr_status gmm2d_tokens(int prompt_id, int32_t *tokens)
{
    FR_TRY(check_prompt(prompt_id));
    tokens[0] = prompt_id;
    return FR_OK;
}

static int gmm2d_group(int prompt_id) { return prompt_id >= 0 && prompt_id < FR_GMM2D_MODES ? 0 : -1; }

/* The ring and the eight mode means. */
static int gmm2d_scatter_marks(const fr_task *t, float *marks, int max, float *ring_radius)
{
    (void)t;
    int n = max < FR_GMM2D_MODES ? max : FR_GMM2D_MODES;
    for (int k = 0; k < n; k++) fr_gmm2d_mode(k, marks + 2 * k);
    *ring_radius = FR_GMM2D_RADIUS;
    return n;
}

/* The scatter plot with the ring and the eight mode means marked. */
static fr_status gmm2d_render(const fr_task *t, const char *path, int N, const int *prompt_ids, const float *x,
                              int cols, int scale)
{
    fr_scatter_opts o = fr_scatter_opts_default();
    float marks[2 * FR_GMM2D_MODES];
    o.n_marks = gmm2d_scatter_marks(t, marks, FR_GMM2D_MODES, &o.ring_radius);
    o.marks = marks;
    return fr_task_scatter_png(path, N, prompt_ids, x, &o);
}

static const char *const k_groups[] = {"mode"};
static const char *const k_rewards[] = {"mode", "halfplane", "sqdist"};

const fr_task fr_task_gmm2d = {
    .name = "gmm2d",
    .description = "8 Gaussians on a ring of radius 4 (std 0.4), one prompt per mode",
    .D = 2,
    .C = 0,
    .H = 0,
    .W = 0,
    .n_prompts = FR_GMM2D_MODES,
    .n_train = FR_GMM2D_MODES,
    .eval_first = 0,
    .n_eval = FR_GMM2D_MODES,
    .n_slots = 1,
    .n_vocab = FR_GMM2D_MODES,
    .n_groups = 1,
    .group_names = k_groups,
    .n_rewards = 3,
    .reward_names = k_rewards,
    .prompt_text = gmm2d_text,
    .prompt_tokens = gmm2d_tokens,
    .prompt_group = gmm2d_group,
    .sample = gmm2d_sample,
    .reward = gmm2d_reward,
    .reward_grad = gmm2d_reward_grad,
    .render = gmm2d_render,
    .scatter_marks = gmm2d_scatter_marks,
};
