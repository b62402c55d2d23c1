/* The per-element formulas of the model's embeddings: the sinusoidal timestep features and
 * the condition-table rows (FR_HOSTDEV, so CUDA compiles the same expression). The loops
 * over them are op entries (flowrl/ops.h: temb_sinusoidal, embed_gather_add,
 * embed_scatter_add; ref/ref_model.c, kern/k_model.h). */
#ifndef FLOWRL_EMBED_H
#define FLOWRL_EMBED_H

#include <stdint.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"

/* Sinusoidal timestep features of even width E = 2*half (the DiT / "Attention is all you
 * need" form, cos first):
 *   f_k    = exp(-ln(10000) * k / half),                k = 0 .. half-1
 *   emb[k] = cos(t f_k),  emb[half + k] = sin(t f_k)
 * In float: a = (-ln10000 * (float)k) / (float)half, f_k = fr_expf(a), arg = t * f_k,
 * each op correctly rounded, transcendental functions from flowrl/detmath.h. Flow models
 * are called with t = 1000 sigma (docs/algorithms/pretraining.md §1). */
FR_HOSTDEV static inline float fr_temb_freq(int64_t k, int64_t half)
{
    float neg_ln = -fr_logf(10000.0f);
    return fr_expf((neg_ln * (float)k) / (float)half);
}

/* Column j (0 <= j < 2*half) of the features of timestep t. */
FR_HOSTDEV static inline float fr_temb_elem(float t, int64_t j, int64_t half)
{
    int64_t k = j < half ? j : j - half;
    float arg = t * fr_temb_freq(k, half);
    return j < half ? fr_cosf(arg) : fr_sinf(arg);
}

/* Element j of table row `id` (the table (n_rows, H)), or NaN for an id outside [0, n_rows):
 * what the gather adds, so that a bad id poisons its sample's row on every backend alike
 * and nothing outside the table is read. */
FR_HOSTDEV static inline float fr_embed_elem(const float *table, int64_t n_rows, int64_t H, int32_t id, int64_t j)
{
    return id >= 0 && id < n_rows ? table[(int64_t)id * H + j] : FR_DM_NAN;
}

#endif
