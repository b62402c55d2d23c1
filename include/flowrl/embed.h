/* The model's embeddings that are not (yet) op-table entries: the sinusoidal timestep
 * features and the condition-table gather / scatter-add. Per-element formulas here
 * (FR_HOSTDEV, so CUDA compiles the same expression), loops in core/embed.c. */
#ifndef FLOWRL_EMBED_H
#define FLOWRL_EMBED_H

#include <stdint.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"
#include "flowrl/status.h"

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

/* emb (B,E) = features of t (B,), E even. */
void fr_temb_sinusoidal(int64_t B, int64_t E,
                        const float *t, // (B,)
                        float *emb);    // (B,E)

/* h[b,:] += table[c[b,s],:] for s = 0 .. S-1 in order (plain float adds). Ids must lie
 * in [0, n_rows): FR_ERR_ARG names the first bad one, and h is untouched then. */
fr_status fr_embed_gather_add(int64_t B, int64_t S, int64_t H, int64_t n_rows,
                              const float *table, // (n_rows,H)
                              const int32_t *c,   // (B,S)
                              float *h);          // (B,H)

/* dtable[c[b,s],:] += dh[b,:] for b = 0, 1, ..., s = 0 .. S-1 in order: each table row is a batch
 * reduction in the canonical order (acc = acc + x, rows in batch order), so a backend
 * that splits the work by table rows (never by b) gets the same bits. Ids are assumed
 * valid (checked by the forward). */
void fr_embed_scatter_add(int64_t B, int64_t S, int64_t H,
                          const int32_t *c, // (B,S)
                          const float *dh,  // (B,H)
                          float *dtable);   // (n_rows,H)

#endif
