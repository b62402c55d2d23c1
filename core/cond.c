#include "flowrl/cond.h"

void fr_cond_dims(const fr_task *t, int64_t *n_cond, int64_t *n_slots)
{
    *n_slots = t->n_slots;
    *n_cond = (int64_t)t->n_slots * t->n_vocab;
}

fr_status fr_cond_ids(const fr_task *t, int64_t B, const int *prompt_ids, int32_t *c)
{
    int32_t tok[64];
    int S = t->n_slots;
    if (S < 1 || S > 64) return fr_fail(FR_ERR_ARG, "task %s: %d prompt slots (1..64)", t->name, S);
    int32_t null_id = (int32_t)(S * t->n_vocab);
    for (int64_t b = 0; b < B; b++) {
        int p = prompt_ids[b];
        if (p < 0) {
            for (int s = 0; s < S; s++) c[b * S + s] = null_id;
            continue;
        }
        if (p >= t->n_prompts)
            return fr_fail(FR_ERR_ARG, "task %s: prompt id %d is outside [0, %d)", t->name, p, t->n_prompts);
        FR_TRY(t->prompt_tokens(p, tok));
        for (int s = 0; s < S; s++) {
            if (tok[s] < 0 || tok[s] >= t->n_vocab)
                return fr_fail(FR_ERR_ARG, "task %s: prompt %d token %d = %d outside [0, %d)", t->name, p,
                               s, (int)tok[s], t->n_vocab);
            c[b * S + s] = (int32_t)(s * t->n_vocab) + tok[s];
        }
    }
    return FR_OK;
}
