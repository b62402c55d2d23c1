/* The bridge between a task's prompts and the model's condition embedding.
 *
 * A prompt has n_slots tokens in [0, n_vocab) (flowrl/task.h). The model embeds a sample
 * as the sum of one table row per slot (flowrl/model.h, cfg.n_slots), so the rows are
 * numbered slot by slot:
 *     c[b, s] = s * n_vocab + token_s(prompt_b),     n_cond = n_slots * n_vocab
 * and the null condition of classifier-free guidance is n_cond in every slot. Held-out
 * prompts then combine embeddings of tokens seen in training (shapes' eval split). */
#ifndef FLOWRL_COND_H
#define FLOWRL_COND_H

#include <stdint.h>

#include "flowrl/status.h"
#include "flowrl/task.h"

/* The model's n_cond and n_slots for a task. */
void fr_cond_dims(const fr_task *t, int64_t *n_cond, int64_t *n_slots);

/* c (B, n_slots) for prompts (B,); a prompt id < 0 means the null condition. */
fr_status fr_cond_ids(const fr_task *t, int64_t B, const int *prompt_ids, int32_t *c);

#endif
