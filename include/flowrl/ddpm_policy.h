/* A DDPM diffusion policy for control (core/ddpm_policy.c; docs/control.md §4.2): DPPO's
 * ε-prediction denoiser and reverse step (irom-princeton/dppo@cc7234a model/diffusion/
 * diffusion.py, spec samplers.md §7), the policy DPPO fine-tunes.
 *
 *   schedule   cosine β (s = 0.008, β <= 0.999; fr_betas_cosine), T denoising steps (20), ᾱ in
 *              float32 as torch's cumprod table (fr_alphas_cumprod)
 *   network    ε̂ = MLP([x_t, temb(t), obs_norm]), temb = DPPO's SinusoidalPosEmb(16): sin then
 *              cos of t·exp(−j·ln 10000/7), j = 0..7
 *   training   x_t = √ᾱ_t·a + √(1 − ᾱ_t)·ε, t ~ U{0..T−1}; loss mean_d (ε̂ − ε)²
 *   sampling   from x = z_T, for t = T−1 .. 0: x̂0 = clip(√(1/ᾱ_t)·x − √(1/ᾱ_t − 1)·ε̂, ±1),
 *              μ = β_t√ᾱ_{t−1}/(1 − ᾱ_t)·x̂0 + √α_t(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x, σ = 0 at t = 0 else
 *              max(√max(β̃_t, 1e-20), 1e-3), x = μ + σ·clip(z_t, ±randn_clip) (DPPO's forward())
 *
 * DPPO's DiffusionMLP passes t through a learned MLP (16 → 32 Mish → 16) and uses residual
 * blocks; flowrl feeds the sinusoidal features to one MLP (SiLU). The coefficient tables are
 * float64 from the float32 β and ᾱ. */
#ifndef FLOWRL_DDPM_POLICY_H
#define FLOWRL_DDPM_POLICY_H

#include <stdint.h>

#include "flowrl/mlp.h"

#define FR_DDPM_TEMB 16
#define FR_DDPM_MAX_T 1000

typedef struct {
    fr_mlp net;           /* (A + 16 + O) → hidden^n → A, SiLU */
    int64_t O, A, cap;
    int T;                /* denoising steps */
    double randn_clip;    /* |z| clip of the sampling noise (DPPO: 10 at pretraining, 3 in fine-tuning) */
    double *sqrt_ab, *sqrt_1mab;        /* (T,) √ᾱ_t, √(1 − ᾱ_t) */
    double *recip_ab, *recipm1_ab;      /* (T,) √(1/ᾱ_t), √(1/ᾱ_t − 1) */
    double *c_x0, *c_xt, *std;          /* (T,) posterior mean coefficients, sampling std */
    double *sd;                         /* (T,) √max(β̃_t, 1e-20): the posterior std before any
                                           floor (DPPO's exp(½·ddpm_logvar_clipped)) */
    float *in_h, *out_h;  /* host (cap, A + 16 + O), (cap, A) */
    double *x;            /* host (cap, A) */
} fr_ddpm_policy;

fr_status fr_ddpm_policy_new(fr_ddpm_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden, int T,
                             int64_t cap);
void fr_ddpm_policy_free(fr_ddpm_policy *p);

/* emb (16,) of integer time t. */
void fr_ddpm_temb(int t, float *emb);

/* ε̂ (R, A) in p->out_h of R rows (obs (R, O), x (R, A), t (R,) integers in [0, T)). */
fr_status fr_ddpm_policy_eps(fr_ddpm_policy *p, int64_t R, const float *obs, const float *x, const int *t);

/* Actions (R, A) from the noise z (T + 1, R, A): z[T] the start x_T, z[t] the noise of step t. */
fr_status fr_ddpm_policy_sample(fr_ddpm_policy *p, int64_t R, const float *obs, const float *z, float *action);

/* The losses ℓ (R,) = mean_d (ε̂ − ε)² of R rows (obs, a, ε, t); with g (R,) not NULL, the gradient
 * of Σ g_r·ℓ_r is added to the network's gradients. */
fr_status fr_ddpm_policy_loss(fr_ddpm_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                              const int *t, double *loss, const double *g);

#endif
