/* The forward (noising) process of flow matching, for the methods that train on noised
 * samples rather than on sampler trajectories (AWM, DiffusionNFT, DGPO: docs/algorithms/awm.md;
 * docs/algorithms/forward-process.md §3, §4; docs/algorithms/pretraining.md §1):
 *
 *   x_t = (1 − t)·x0 + t·ε,    ε ~ N(0, I),  t ∈ [0, 1] (t = 1 is noise)
 *
 * evaluated as pretraining evaluates it (fr_flow_noised_elem, flowrl/pretrain_elem.h), so
 * a loss on these samples can share pretraining's flow-matching routine bit for bit.
 *
 * ε by coordinate (docs/design.md §1.5, flowrl/philox.h), element d of row b:
 *   ε[b, d] = fr_rng_normal(seed, purpose, c0, sample_ids[b], c2, d)
 * key (seed, purpose): the caller's stream (e.g. FR_RNG_PRETRAIN_NOISE, or a purpose of
 * its own); c0: the epoch (or update); c1: the sample id (independent of the row's
 * position in a batch); c2: what else varies per draw (the timestep index of a
 * multi-timestep loss, an inner iteration); d < 2^32 the element. Pretraining's noise is
 * this stream with (FR_RNG_PRETRAIN_NOISE, c0 = step, c1 = row, c2 = 0). */
#ifndef FLOWRL_NOISING_H
#define FLOWRL_NOISING_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/hostdev.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/status.h"

typedef struct {
    uint32_t seed, purpose, c0, c2; /* the coordinates above, less the sample id */
} fr_noise_coord;

/* One element: x_t, and ε through *eps unless NULL. */
FR_HOSTDEV static inline float fr_noise_fm_elem(float x0, float t, fr_noise_coord k, uint32_t sample_id, uint32_t d,
                                                float *eps)
{
    float e = fr_rng_normal(k.seed, k.purpose, k.c0, sample_id, k.c2, d);
    if (eps) *eps = e;
    return fr_flow_noised_elem(x0, e, t);
}

/* x_t (B, D) and ε (B, D) of rows with clean samples x0 and times t (one per row), by the
 * backend's noise_fm entry: x0, x_t and eps are backend memory; sample_ids and t are host
 * memory (per-row scalars, copied in). x_t may alias x0; eps may be NULL. FR_ERR_ARG for a
 * t outside [0, 1] (naming the row) or a bad shape. */
fr_status fr_noise_fm(fr_backend *be, int64_t B, int64_t D, fr_noise_coord k,
                      const uint32_t *sample_ids, // (B,) host
                      const float *x0,            // (B, D)
                      const float *t,             // (B,) host
                      float *x_t,                 // (B, D) out
                      float *eps);                // (B, D) out, or NULL

#endif
