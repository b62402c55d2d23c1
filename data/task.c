/* The task registry and the batched sample / reward helpers (include/flowrl/task.h). */
#include <string.h>

#include "data/shapes_internal.h"
#include "flowrl/task.h"

static const char *const k_shapes_groups[] = {"single", "counting", "two", "position"};
static const char *const k_shapes_rewards[FR_SHAPES_N_REWARDS] = {"geneval", "strict", "classifier", "redquad"};

const fr_task fr_task_shapes = {
    .name = "shapes",
    .description = "GenEval-like 16x16 RGB images of 1-4 coloured squares; prompts single, "
                   "counting, two colours, position; detector reward",
    .D = FR_SHAPES_D,
    .C = FR_SHAPES_C,
    .H = FR_SHAPES_H,
    .W = FR_SHAPES_W,
    .n_prompts = FR_SHAPES_N_PROMPTS,
    .n_train = FR_SHAPES_N_TRAIN,
    .eval_first = FR_SHAPES_N_TRAIN,
    .n_eval = FR_SHAPES_N_EVAL,
    .n_slots = FR_SHAPES_N_SLOTS,
    .n_vocab = FR_SHAPES_N_VOCAB,
    .n_groups = 4,
    .group_names = k_shapes_groups,
    .n_rewards = FR_SHAPES_N_REWARDS,
    .n_judges = FR_SHAPES_REWARD_REDQUAD, /* redquad scores colour and place, not the prompt */
    .reward_names = k_shapes_rewards,
    .prompt_text = fr_shapes_prompt_text,
    .prompt_tokens = fr_shapes_prompt_tokens,
    .prompt_group = fr_shapes_prompt_group,
    .sample = fr_shapes_sample,
    .reward = fr_shapes_reward,
    .reward_grad = fr_shapes_reward_grad,
    .pixel_reward = fr_shapes_pixel_reward,
};

static const fr_task *const k_tasks[] = {&fr_task_gmm2d, &fr_task_shapes, &fr_task_checkerboard};
#define N_TASKS (int)(sizeof k_tasks / sizeof k_tasks[0])

int fr_task_count(void) { return N_TASKS; }

const fr_task *fr_task_at(int i) { return i >= 0 && i < N_TASKS ? k_tasks[i] : NULL; }

int fr_task_prompt_in_turn(const fr_task *t, int64_t i) { return (int)((uint64_t)i % (uint64_t)t->n_train); }

fr_status fr_task_get(const char *name, const fr_task **out)
{
    for (int i = 0; i < N_TASKS; i++)
        if (name && strcmp(name, k_tasks[i]->name) == 0) {
            *out = k_tasks[i];
            return FR_OK;
        }
    *out = NULL;
    return fr_fail(FR_ERR_ARG, "unknown task '%s' (known: gmm2d, shapes, checkerboard)", name ? name : "(null)");
}

fr_status fr_task_reward_id(const fr_task *t, const char *name, int *reward_id)
{
    for (int i = 0; i < t->n_rewards; i++)
        if (name && strcmp(name, t->reward_names[i]) == 0) {
            *reward_id = i;
            return FR_OK;
        }
    char known[256] = "";
    for (int i = 0; i < t->n_rewards; i++) {
        if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, t->reward_names[i], sizeof known - strlen(known) - 1);
    }
    return fr_fail(FR_ERR_ARG, "task %s: unknown reward '%s' (known: %s)", t->name,
                   name ? name : "(null)", known);
}

fr_status fr_task_sample_batch(const fr_task *t, int B, const int *prompt_ids, uint32_t seed,
                               uint32_t first_index, float *x)
{
    for (int b = 0; b < B; b++)
        FR_TRY(t->sample(prompt_ids[b], seed, first_index + (uint32_t)b, x + (size_t)b * t->D));
    return FR_OK;
}

fr_status fr_task_reward_batch(const fr_task *t, int reward_id, int B, const int *prompt_ids,
                               const float *x, float *score, int *correct)
{
    for (int b = 0; b < B; b++)
        FR_TRY(t->reward(reward_id, prompt_ids[b], x + (size_t)b * t->D, &score[b],
                         correct ? &correct[b] : NULL));
    return FR_OK;
}

fr_status fr_task_reward_grad_batch(const fr_task *t, int reward_id, int B, const int *prompt_ids,
                                    const float *x, float *score, float *grad)
{
    if (!t->reward_grad)
        return fr_fail(FR_ERR_UNSUPPORTED, "task %s: reward %s has no gradient (no reward of this task is differentiable)",
                       t->name, reward_id >= 0 && reward_id < t->n_rewards ? t->reward_names[reward_id] : "?");
    for (int b = 0; b < B; b++)
        FR_TRY(t->reward_grad(reward_id, prompt_ids[b], x + (size_t)b * t->D, &score[b], grad + (size_t)b * t->D));
    return FR_OK;
}
