/* Functions shared by data/shapes*.c and data/task.c (not part of the public API). */
#ifndef FLOWRL_DATA_SHAPES_INTERNAL_H
#define FLOWRL_DATA_SHAPES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/task.h"

fr_status fr_shapes_prompt_text(int prompt_id, char *buf, size_t cap);
fr_status fr_shapes_prompt_tokens(int prompt_id, int32_t *tokens); // tokens: (FR_SHAPES_N_SLOTS,)
int fr_shapes_prompt_group(int prompt_id);
int fr_shapes_n_train_prompts(void);
int fr_shapes_n_eval_prompts(void);

fr_status fr_shapes_sample(int prompt_id, uint32_t seed, uint32_t index, float *x); // x: (D,)
fr_status fr_shapes_reward(int reward_id, int prompt_id, const float *x, float *score,
                           int *correct);

#endif
