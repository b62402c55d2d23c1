/* Per-element formulas of the model's output head (flowrl/model.h), written once for ref,
 * opt and cuda (docs/design.md §1.2). One rounding per operation (-ffp-contract=off).
 *
 * x0 head (x-prediction, Li & He 2025, "Back to Basics: Let Denoising Generative Models
 * Denoise", JiT §3): the network's last layer gives x̂0 and the model returns the flow
 * velocity it implies. With x_σ = (1−σ)·x0 + σ·ε and v = ε − x0 (docs/algorithms/pretraining.md §1
 * "Rectified flow"), x0 = x_σ − σ·v, so
 *   v = (x − x̂0) / max(σ, σ_min),   σ = t / 1000
 * (σ_min keeps the division bounded near σ = 0, where v is ill-determined by x̂0; JiT
 * clips 1 − t the same way).
 *
 * ε x0 head (the DDPM counterpart, diffusers' prediction_type="sample" seen from the ε
 * side): the last layer gives x̂0 and an ε-prediction model returns the noise it implies.
 * With x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε (docs/algorithms/pretraining.md §3),
 *   ε̂ = (x − a·x̂0) / s,   a = √ᾱ_t,  s = max(√(1−ᾱ_t), s_min)
 * read from a table of the schedule at the row's integer timestep (s_min: the floor, as the
 * flow head's σ_min; docs/algorithms/pretraining.md §5). */
#ifndef FLOWRL_MODEL_ELEM_H
#define FLOWRL_MODEL_ELEM_H

#include <math.h>
#include <stdint.h>

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

/* Row of the ε head's table (n rows, timesteps 0 .. n−1) for timestep input t: ⌊t⌋ clamped
 * to [0, n − 1] (DDPM's t are integers, so ⌊t⌋ = t); −1 for a NaN t (the row's output is
 * then NaN, as the flow head's). */
FR_HOSTDEV static inline int64_t fr_eps_head_row(float t, int64_t n)
{
    if (t != t) return -1;
    if (!(t >= 0.0f)) return 0;
    if (t >= (float)(n - 1)) return n - 1;
    return (int64_t)t;
}

/* The row's coefficients a = tab[i], s = tab[n + i] (tab (2, n)), NaN for i < 0. */
FR_HOSTDEV static inline void fr_eps_head_coefs(const float *tab, int64_t n, float t, float *a, float *s)
{
    const int64_t i = fr_eps_head_row(t, n);
    *a = i < 0 ? (float)NAN : tab[i];
    *s = i < 0 ? (float)NAN : tab[n + i];
}

/* ε̂ = (x − a·x̂0) / s. */
FR_HOSTDEV static inline float fr_eps_head_eps(float x, float x0hat, float a, float s)
{
    return (x - a * x0hat) / s;
}

/* dL/dx̂0 = −(dε̂·a) / s. */
FR_HOSTDEV static inline float fr_eps_head_grad_x0(float de, float a, float s)
{
    return -((de * a) / s);
}

/* dL/dx through the head: dε̂ / s. */
FR_HOSTDEV static inline float fr_eps_head_grad_x(float de, float s)
{
    return de / s;
}

#endif
