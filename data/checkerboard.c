/* checkerboard: GMFlow's 2-D toy distribution (Lakonik/GMFlow@c3697df
 * lib/datasets/checkerboard.py, CheckerboardData with n_rc = 4, scale = 4, thickness 1, no
 * shift or rotation, as configs/gmflow_checkerboard_k64.py uses it).
 *
 * The square [-4, 4]^2 is cut into 4 x 4 cells of side 2; the 8 "white" cells (i, j) with
 * (i + j) even carry the mass, uniformly. Sample index n: cell k = u32 mod 8 (2^32 is a
 * multiple of 8: no bias) from Philox (seed, FR_RNG_TASK_DATA, FR_TASK_TAG_CHECKERBOARD, 0, n,
 * lane 0), (u0, u1) uniforms in [0, 1) from lanes 1 and 2, and x = (cell + u) * 2 - 4 in float
 * (exact: every step is a power-of-two scaling or an exact sum on this range), the public
 * code's ((cell + u) * (2 / n_rc) - 1) * scale.
 *
 * One prompt (the distribution is unconditional). Reward 0 "square": score = correct = 1 when
 * x lies in a white cell of [-4, 4)^2, else 0 (a step function: no gradient). */
#include <math.h>
#include <stdio.h>

#include "flowrl/philox.h"
#include "flowrl/task.h"

#define CB_CELLS 8
#define CB_SIDE 2.0f
#define CB_HALF 4.0f

/* The white cells (i, j), (i + j) even, in the public code's row-major order. */
static const int k_cells[CB_CELLS][2] = {{0, 0}, {0, 2}, {1, 1}, {1, 3}, {2, 0}, {2, 2}, {3, 1}, {3, 3}};

static fr_status check_prompt(int prompt_id)
{
    if (prompt_id != 0) return fr_fail(FR_ERR_ARG, "checkerboard: prompt id %d outside [0, 1)", prompt_id);
    return FR_OK;
}

static fr_status cb_sample(int prompt_id, uint32_t seed, uint32_t index, float *x)
{
    FR_TRY(check_prompt(prompt_id));
    fr_u32x4 b = fr_rng_block(seed, FR_RNG_TASK_DATA, FR_TASK_TAG_CHECKERBOARD, 0, index, 0);
    const int *cell = k_cells[b.v[0] % CB_CELLS];
    for (int i = 0; i < 2; i++) x[i] = ((float)cell[i] + fr_u32_to_uniform(b.v[1 + i])) * CB_SIDE - CB_HALF;
    return FR_OK;
}

int fr_checkerboard_inside(const float *x)
{
    if (!(x[0] >= -CB_HALF && x[0] < CB_HALF && x[1] >= -CB_HALF && x[1] < CB_HALF)) return 0;
    int i = (int)floorf((x[0] + CB_HALF) / CB_SIDE), j = (int)floorf((x[1] + CB_HALF) / CB_SIDE);
    if (i > 3) i = 3; /* x + 4 rounding up to 8 just below the edge */
    if (j > 3) j = 3;
    return (i + j) % 2 == 0;
}

static fr_status cb_reward(int reward_id, int prompt_id, const float *x, float *score, int *correct)
{
    FR_TRY(check_prompt(prompt_id));
    for (int i = 0; i < 2; i++)
        if (!isfinite(x[i]))
            return fr_fail(FR_ERR_NUMERIC, "checkerboard reward: x[%d] = %g, expected a finite value", i, (double)x[i]);
    if (reward_id != 0) return fr_fail(FR_ERR_ARG, "checkerboard: reward id %d outside [0, 1)", reward_id);
    int ok = fr_checkerboard_inside(x);
    *score = ok ? 1.0f : 0.0f;
    if (correct) *correct = ok;
    return FR_OK;
}

static fr_status cb_reward_grad(int reward_id, int prompt_id, const float *x, float *score, float *grad)
{
    (void)reward_id, (void)prompt_id, (void)x, (void)score, (void)grad;
    return fr_fail(FR_ERR_UNSUPPORTED, "checkerboard: reward square is a step function: no gradient");
}

static fr_status cb_text(int prompt_id, char *buf, size_t cap)
{
    FR_TRY(check_prompt(prompt_id));
    if (cap < FR_PROMPT_TEXT_MAX)
        return fr_fail(FR_ERR_ARG, "checkerboard: prompt text buffer of %zu bytes, need %d", cap, FR_PROMPT_TEXT_MAX);
    snprintf(buf, cap, "checkerboard");
    return FR_OK;
}

static fr_status cb_tokens(int prompt_id, int32_t *tokens)
{
    FR_TRY(check_prompt(prompt_id));
    tokens[0] = 0;
    return FR_OK;
}

static int cb_group(int prompt_id) { return prompt_id == 0 ? 0 : -1; }

/* The centres of the 8 white cells. */
static int cb_scatter_marks(const fr_task *t, float *marks, int max, float *ring_radius)
{
    (void)t;
    int n = max < CB_CELLS ? max : CB_CELLS;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 2; i++) marks[2 * k + i] = ((float)k_cells[k][i] + 0.5f) * CB_SIDE - CB_HALF;
    *ring_radius = 0;
    return n;
}

static const char *const k_groups[] = {"all"};
static const char *const k_rewards[] = {"square"};

const fr_task fr_task_checkerboard = {
    .name = "checkerboard",
    .description = "GMFlow's 2-D checkerboard: 8 white cells of side 2 in [-4, 4]^2, uniform (one prompt)",
    .D = 2,
    .n_prompts = 1,
    .n_train = 1,
    .eval_first = 0,
    .n_eval = 1,
    .n_slots = 1,
    .n_vocab = 1,
    .n_groups = 1,
    .group_names = k_groups,
    .n_rewards = 1,
    .reward_names = k_rewards,
    .prompt_text = cb_text,
    .prompt_tokens = cb_tokens,
    .prompt_group = cb_group,
    .sample = cb_sample,
    .reward = cb_reward,
    .reward_grad = cb_reward_grad,
    .scatter_marks = cb_scatter_marks,
};
