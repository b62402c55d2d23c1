/* Per-element formulas of base-model pretraining (flowrl/pretrain.h), written once for
 * ref, opt and cuda (docs/design.md §1.2). One rounding per operation, left to right, as
 * the torch expressions named at each function evaluate in float32 (-ffp-contract=off,
 * no fmaf here).
 *
 * Conventions (docs/algorithms/pretraining.md §1): x_σ = (1−σ)·x0 + σ·ε, σ = 1 is noise,
 * the network predicts v ≈ ε − x0 and is called with t = 1000σ. DDPM (epsilon
 * parameterization): x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε, target ε, integer t. */
#ifndef FLOWRL_PRETRAIN_ELEM_H
#define FLOWRL_PRETRAIN_ELEM_H

#include <math.h>
#include <stdint.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"

/* a·x0 + s·ε, evaluated (a·x0) + (s·ε): the forward process of both parameterizations
 * below, with its two coefficients formed once per sample (the op table's noise_mix). */
FR_HOSTDEV static inline float fr_noise_mix_elem(float x0, float eps, float a, float s)
{
    return a * x0 + s * eps;
}

/* x_σ = (1 − σ)·x0 + σ·ε, evaluated ((1 − σ)·x0) + (σ·ε): the SD3 / rectified-flow
 * training line `noisy = (1 - sigmas) * x0 + sigmas * noise`. σ = 0 gives x0 and σ = 1
 * gives ε exactly (for finite inputs). */
FR_HOSTDEV static inline float fr_flow_noised_elem(float x0, float eps, float sigma)
{
    return fr_noise_mix_elem(x0, eps, 1.0f - sigma, sigma);
}

/* Rectified-flow velocity target v* = ε − x0 (`target = noise - x0`). */
FR_HOSTDEV static inline float fr_flow_target_elem(float x0, float eps)
{
    return eps - x0;
}

/* DDPM forward process, diffusers DDPMScheduler.add_noise:
 *   sqrt_alpha_prod * x0 + sqrt_one_minus_alpha_prod * noise
 * with the two scalars sqrt(ᾱ_t) and sqrt(1 − ᾱ_t) formed once per sample
 * (fr_ddpm_coefs). */
FR_HOSTDEV static inline float fr_ddpm_noised_elem(float x0, float eps, float sqrt_ab,
                                                   float sqrt_one_minus_ab)
{
    return fr_noise_mix_elem(x0, eps, sqrt_ab, sqrt_one_minus_ab);
}

/* sqrt(ᾱ) and sqrt(1 − ᾱ) in float32 (`alphas_cumprod[t] ** 0.5`, `(1 - alphas_cumprod[t])
 * ** 0.5`; sqrt is correctly rounded, as is torch's float pow(x, 0.5)). */
FR_HOSTDEV static inline void fr_ddpm_coefs(float alpha_bar, float *sqrt_ab,
                                            float *sqrt_one_minus_ab)
{
    *sqrt_ab = sqrtf(alpha_bar);
    *sqrt_one_minus_ab = sqrtf(1.0f - alpha_bar);
}

/* Logit-normal σ (SD3 §3.1, "lognorm(m, s)"): σ = sigmoid(m + s·n), n ~ N(0, 1). */
FR_HOSTDEV static inline float fr_logit_normal_sigma(float n, float m, float s)
{
    return fr_sigmoidf(m + s * n);
}

/* An integer in [0, n) from one random word: ⌊w·n / 2^32⌋ (multiply-shift, exact in
 * 64-bit integers; the bias is below n / 2^32). n >= 1. */
FR_HOSTDEV static inline uint32_t fr_rng_below(uint32_t w, uint32_t n)
{
    return (uint32_t)(((uint64_t)w * (uint64_t)n) >> 32);
}

/* dL/dv of L = mean((v − v*)²) over n elements: scale·(v − v*), scale = 2/n rounded once
 * to float (torch's mse_loss backward: `norm * (input - target) * grad_output`, norm =
 * 2/numel, grad_output = 1). */
FR_HOSTDEV static inline float fr_mse_grad_elem(float v, float target, float scale)
{
    return scale * (v - target);
}

#endif
