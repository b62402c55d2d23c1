/* Per-element formulas of the model's output head (flowrl/model.h), written once for ref,
 * opt and cuda (docs/design.md §1.2). One rounding per operation (-ffp-contract=off).
 *
 * x0 head (x-prediction, Li & He 2025, "Back to Basics: Let Denoising Generative Models
 * Denoise", JiT §3): the network's last layer gives x̂0 and the model returns the flow
 * velocity it implies. With x_σ = (1−σ)·x0 + σ·ε and v = ε − x0 (docs/algorithms/pretraining.md §1
 * "Rectified flow"), x0 = x_σ − σ·v, so
 *   v = (x − x̂0) / max(σ, σ_min),   σ = t / 1000
 * (σ_min keeps the division bounded near σ = 0, where v is ill-determined by x̂0; JiT
 * clips 1 − t the same way). */
#ifndef FLOWRL_MODEL_ELEM_H
#define FLOWRL_MODEL_ELEM_H

#include "flowrl/hostdev.h"

/* max(t / 1000, σ_min), t = 1000 σ the network's timestep input. */
FR_HOSTDEV static inline float fr_x0_head_denom(float t, float sigma_min)
{
    float s = t / 1000.0f;
    return s > sigma_min ? s : sigma_min;
}

/* v = (x − x̂0) / d, d = fr_x0_head_denom. */
FR_HOSTDEV static inline float fr_x0_head_velocity(float x, float x0hat, float d)
{
    return (x - x0hat) / d;
}

/* dL/dx contribution of the head, dv / d; dL/dx̂0 is its negation (exact). */
FR_HOSTDEV static inline float fr_x0_head_grad(float dv, float d)
{
    return dv / d;
}

/* dL/dx̂0 = −dv / d. */
FR_HOSTDEV static inline float fr_x0_head_grad_x0(float dv, float d)
{
    return -fr_x0_head_grad(dv, d);
}

#endif
