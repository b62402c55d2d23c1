/* Per-element formulas of every sampler step (docs/algorithms/samplers.md §0, §2-§6, §9), written once
 * for ref, opt and cuda (docs/design.md §1.2). Each step has
 *   - a *_coef_make() that turns the per-step scalars (σ, σ', noise level, ᾱ, ...) into
 *     the coefficients the public code forms once per step (0-dim tensors there), and
 *   - a *_mean_elem() giving the mean μ of x' | x for one element.
 * The sample is x' = μ + std·ξ (fr_noise_add_elem); the Gaussian log-density of one
 * element is fr_gauss_logp_elem (CPS has its own, constant-free form).
 *
 * Arithmetic follows the order of the public torch expressions, left to right, one
 * rounding per operation (-ffp-contract=off; no fmaf here). The scalars of a step are
 * computed in float32 from float32 σ's, as torch does with 0-dim float32 tensors. Where
 * a public repo computes a scalar in Python float64 (math.sin in CPS, math.sqrt/math.log
 * in DANCE), flowrl stays in float32 with flowrl's sin/log: the results agree to an ulp
 * or two; there are no bit-level public values to match (torch's own CPU/GPU bits
 * differ).
 *
 * Conventions (docs/algorithms/pretraining.md §1): x_σ = (1−σ)x0 + σε, σ = 1 is noise, v ≈ ε − x0,
 * dt = σ' − σ < 0. */
#ifndef FLOWRL_SAMPLER_ELEM_H
#define FLOWRL_SAMPLER_ELEM_H

#include <math.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"

typedef enum {
    FR_SAMPLER_ODE = 0, /* Euler, §2 (deterministic) */
    FR_SAMPLER_SDE,     /* Flow-GRPO SDE, §3 */
    FR_SAMPLER_CPS,     /* coefficients-preserving sampling, §4 */
    FR_SAMPLER_DANCE,   /* DanceGRPO constant-η flux_step, §5 */
    FR_SAMPLER_DDIM,    /* DDIM with η, ε-prediction, §6 */
    FR_SAMPLER_DPM,     /* DPM-Solver++ multistep (1st/2nd order midpoint), §9 (deterministic) */
    FR_SAMPLER_COUNT
} fr_sampler_kind;

/* π rounded to float32: torch.as_tensor(math.pi) (default dtype float32). */
#define FR_SAMPLER_PI_F 3.14159265358979323846f

/* ---- shared ----------------------------------------------------------------------- */

/* CFG-combined velocity, docs/algorithms/samplers.md §0: v = v_u + g·(v_c − v_u). g = 0 gives v_u exactly; g = 1
 * gives v_c up to one rounding (v_u + (v_c − v_u)). */
FR_HOSTDEV static inline float fr_cfg_elem(float v_u, float v_c, float g)
{
    return v_u + g * (v_c - v_u);
}

/* x̂0 = x − σ·v (docs/algorithms/samplers.md §0). */
FR_HOSTDEV static inline float fr_flow_x0_elem(float x, float v, float sigma)
{
    return x - sigma * v;
}

/* ε̂ = x + (1 − σ)·v, written `latents + model_output * (1 - sigma)` in FG / CPS. */
FR_HOSTDEV static inline float fr_flow_eps_elem(float x, float v, float one_minus_sigma)
{
    return x + v * one_minus_sigma;
}

/* x' = μ + std·ξ (FG: `prev_sample_mean + std_dev_t * torch.sqrt(-1 * dt) * noise` with
 * the scalar product formed first; DANCE/DDIM the same with their std). */
FR_HOSTDEV static inline float fr_noise_add_elem(float mu, float std, float xi)
{
    return mu + std * xi;
}

/* The Gaussian log-density of one element, as the public code writes it:
 *   −(x' − μ)² / (2·std²) − log std − log √(2π)
 * evaluated ((−d²) / two_var − log_std) − log_sqrt_2pi with the per-step scalars below.
 * std = 0 gives NaN (−0/0): FG's a = 0 log-prob, never used (docs/algorithms/samplers.md §2). */
typedef struct {
    float two_var;      /* 2·(std·std) */
    float log_std;      /* log std */
    float log_sqrt_2pi; /* log(sqrt(2·π_f)), as torch.log(torch.sqrt(2 * as_tensor(pi))) */
} fr_gauss_coef;

FR_HOSTDEV static inline fr_gauss_coef fr_gauss_coef_make(float std)
{
    fr_gauss_coef c;
    c.two_var = 2.0f * (std * std);
    c.log_std = fr_logf(std);
    c.log_sqrt_2pi = fr_logf(sqrtf(2.0f * FR_SAMPLER_PI_F));
    return c;
}

FR_HOSTDEV static inline float fr_gauss_logp_elem(float x_next, float mu, fr_gauss_coef c)
{
    float d = x_next - mu;
    return (-(d * d) / c.two_var - c.log_std) - c.log_sqrt_2pi;
}

/* ---- Euler ODE, docs/algorithms/samplers.md §2 ------------------------------------------------------------ */

/* x' = x + v·dt, dt = σ' − σ (diffusers: `sample + (sigma_next - sigma) * model_output`). */
FR_HOSTDEV static inline float fr_euler_elem(float x, float v, float dt)
{
    return x + v * dt;
}

/* ---- Flow-GRPO SDE, docs/algorithms/samplers.md §3 -------------------------------------------------------- */

/* σ_t = √(σ / (1 − σ̃))·a with σ̃ = σ_1 if σ == 1 exactly, else σ (`torch.sqrt(sigma / (1 -
 * torch.where(sigma == 1, sigma_max, sigma))) * noise_level`, sigma_max = sigmas[1]). The
 * float-equality substitution is the only guard; no clamp (docs/algorithms/samplers.md §3 quirk 1, §16.2). This
 * is the σ_t FG returns: it EXCLUDES √(−dt). */
FR_HOSTDEV static inline float fr_sde_std_dev(float sigma, float sigma1, float a)
{
    float den = 1.0f - (sigma == 1.0f ? sigma1 : sigma);
    return sqrtf(sigma / den) * a;
}

/* μ = x·cx + v·cv·dt, with
 *   cx = 1 + σ_t²/(2σ)·dt          (`1 + std_dev_t**2 / (2 * sigma) * dt`)
 *   cv = 1 + σ_t²·(1−σ)/(2σ)       (`1 + std_dev_t**2 * (1 - sigma) / (2 * sigma)`)
 * std = σ_t·√(−dt) is the std of x' | x (the one the log-prob uses). With a = 0: σ_t = 0,
 * cx = cv = 1 exactly, and μ is the Euler step bit for bit. */
typedef struct {
    float cx, cv, dt;
    float std_dev; /* σ_t, without √(−dt) (FG's returned value, feeds the KL) */
    float std;     /* σ_t·√(−dt) */
} fr_sde_coef;

FR_HOSTDEV static inline fr_sde_coef fr_sde_coef_make(float sigma, float sigma_next, float sigma1, float a)
{
    fr_sde_coef c;
    c.dt = sigma_next - sigma;
    c.std_dev = fr_sde_std_dev(sigma, sigma1, a);
    float s2 = c.std_dev * c.std_dev;
    float two_sigma = 2.0f * sigma;
    c.cx = 1.0f + s2 / two_sigma * c.dt;
    c.cv = 1.0f + s2 * (1.0f - sigma) / two_sigma;
    c.std = c.std_dev * sqrtf(-1.0f * c.dt);
    return c;
}

FR_HOSTDEV static inline float fr_sde_mean_elem(float x, float v, fr_sde_coef c)
{
    return x * c.cx + v * c.cv * c.dt;
}

/* ---- CPS, docs/algorithms/samplers.md §4 ------------------------------------------------------------------ */

/* σ_t = σ'·sin(a·π/2), the step std itself (no dt).
 * μ = x̂0·(1 − σ') + ε̂·√(σ'² − σ_t²), x̂0 = x − σv, ε̂ = x + v(1 − σ).
 * No clamp inside the square root (docs/algorithms/samplers.md §4 quirk 2), as in the public code. With
 * correctly rounded float ops and sin ≤ 1, σ_t = σ'·s rounds to at most σ' (rounding is
 * monotone), so σ_t·σ_t ≤ σ'·σ' and the argument is ≥ 0: a = 1 gives exactly 0. The
 * argument goes negative, and μ NaN, only if σ_t > σ' — a sin that returned more than 1,
 * or a caller-supplied std (tests/test_samplers.c checks both cases). */
typedef struct {
    float sigma, one_minus_sigma; /* for x̂0 and ε̂ */
    float c_x0;                   /* 1 − σ' */
    float c_eps;                  /* √(σ'·σ' − σ_t·σ_t) */
    float std;                    /* σ_t */
} fr_cps_coef;

FR_HOSTDEV static inline fr_cps_coef fr_cps_coef_from_std(float sigma, float sigma_next, float std)
{
    fr_cps_coef c;
    c.sigma = sigma;
    c.one_minus_sigma = 1.0f - sigma;
    c.c_x0 = 1.0f - sigma_next;
    c.std = std;
    c.c_eps = sqrtf(sigma_next * sigma_next - std * std);
    return c;
}

FR_HOSTDEV static inline fr_cps_coef fr_cps_coef_make(float sigma, float sigma_next, float a)
{
    /* math.sin(noise_level * math.pi / 2): (a·π)/2 */
    float std = sigma_next * fr_sinf(a * FR_SAMPLER_PI_F / 2.0f);
    return fr_cps_coef_from_std(sigma, sigma_next, std);
}

FR_HOSTDEV static inline float fr_cps_mean_elem(float x, float v, fr_cps_coef c)
{
    float x0 = fr_flow_x0_elem(x, v, c.sigma);
    float eps = fr_flow_eps_elem(x, v, c.one_minus_sigma);
    return x0 * c.c_x0 + eps * c.c_eps;
}

/* CPS "log-prob" element: −(x' − μ)², all constants and the 1/(2σ_t²) dropped (docs/algorithms/samplers.md §4
 * quirk 1; the clip range 1e-5 is tuned to this scale). */
FR_HOSTDEV static inline float fr_cps_logp_elem(float x_next, float mu)
{
    float d = x_next - mu;
    return -(d * d);
}

/* ---- DanceGRPO constant-η step (flux_step), docs/algorithms/samplers.md §5 --------------------------------- */

/* dσ = σ' − σ, std = η·√(σ − σ'),
 * μ = (x + dσ·v) + (−½η²·score)·dσ, score = −(x − x̂0·(1−σ))/σ², x̂0 = x − σv
 * (`prev_sample_mean + log_term * dsigma`, `log_term = -0.5 * eta**2 * score_estimate`). */
typedef struct {
    float sigma, one_minus_sigma, sigma_sq, dsigma;
    float c_score; /* −0.5·η² */
    float std;     /* η·√(σ − σ') */
} fr_dance_coef;

FR_HOSTDEV static inline fr_dance_coef fr_dance_coef_make(float sigma, float sigma_next, float eta)
{
    fr_dance_coef c;
    c.sigma = sigma;
    c.one_minus_sigma = 1.0f - sigma;
    c.sigma_sq = sigma * sigma;
    c.dsigma = sigma_next - sigma;
    c.c_score = -0.5f * (eta * eta);
    c.std = eta * sqrtf(sigma - sigma_next);
    return c;
}

FR_HOSTDEV static inline float fr_dance_mean_elem(float x, float v, fr_dance_coef c)
{
    float mu0 = x + c.dsigma * v;
    float x0 = fr_flow_x0_elem(x, v, c.sigma);
    float score = -(x - x0 * c.one_minus_sigma) / c.sigma_sq;
    return mu0 + (c.c_score * score) * c.dsigma;
}

/* ---- DDIM with η, ε-prediction, docs/algorithms/samplers.md §6 -------------------------------------------- */

/* With β = 1 − ᾱ:
 *   var = (β_prev/β_t)·(1 − ᾱ_t/ᾱ_prev),  std = η·√var
 *   x̂0  = (x − √β_t·ε̂)/√ᾱ_t   (clamped to ±x0_clip if x0_clip > 0)
 *   μ   = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − std²)·ε̂
 * (DDPO ddim_with_logprob.py; torch's `** 0.5` is sqrt). */
typedef struct {
    float sqrt_beta_t, sqrt_ab_t, sqrt_ab_prev, c_dir;
    float x0_clip; /* <= 0: no clipping */
    float std;
} fr_ddim_coef;

FR_HOSTDEV static inline fr_ddim_coef fr_ddim_coef_make(float ab_t, float ab_prev, float eta, float x0_clip)
{
    fr_ddim_coef c;
    float beta_t = 1.0f - ab_t, beta_prev = 1.0f - ab_prev;
    float var = (beta_prev / beta_t) * (1.0f - ab_t / ab_prev);
    c.std = eta * sqrtf(var);
    c.sqrt_beta_t = sqrtf(beta_t);
    c.sqrt_ab_t = sqrtf(ab_t);
    c.sqrt_ab_prev = sqrtf(ab_prev);
    c.c_dir = sqrtf(1.0f - ab_prev - c.std * c.std);
    c.x0_clip = x0_clip;
    return c;
}

FR_HOSTDEV static inline float fr_ddim_mean_elem(float x, float eps, fr_ddim_coef c)
{
    float x0 = (x - c.sqrt_beta_t * eps) / c.sqrt_ab_t;
    if (c.x0_clip > 0.0f) x0 = x0 < -c.x0_clip ? -c.x0_clip : (x0 > c.x0_clip ? c.x0_clip : x0);
    return c.sqrt_ab_prev * x0 + c.c_dir * eps;
}

/* ---- DPM-Solver++ multistep, data prediction, docs/algorithms/samplers.md §9 ------------------------------ */

/* For the flow model α_σ = 1 − σ, σ_σ = σ, λ = log α − log σ, data prediction
 * m = x̂0 = x − σ·v (MIX fastvideo/utils/sampling_utils.py, deterministic branch):
 *   order 1:  x' = (σ'/σ)·x − α'·(e^{−h} − 1)·m0
 *   order 2 (midpoint):
 *             x' = (σ'/σ)·x − α'·(e^{−h} − 1)·m0 − ½·α'·(e^{−h} − 1)·D1,
 *             D1 = (1/r0)·(m0 − m1), r0 = h0/h,
 *   h = λ(σ') − λ(σ), h0 = λ(σ) − λ(σ_prev), m1 the previous step's x̂0.
 * The endpoints, where the public code runs on torch's ±inf arithmetic, are set to the
 * values that arithmetic gives, so nothing depends on log(0):
 *   σ' = 0 (h = +inf): e^{−h} = 0, and the step is order 1 (MIX's lower_order_final),
 *           so x' = x̂0;
 *   σ = 1  (λ(σ) = −inf, h = +inf): e^{−h} = 0;
 *   σ_prev = 1 (h0 = +inf): 1/r0 = 0, so D1 = 0 and order 2 equals order 1. */
typedef struct {
    float cx;    /* σ'/σ */
    float ce;    /* α'·(e^{−h} − 1) */
    float chalf; /* 0.5·ce */
    float inv_r0; /* h/h0 (order 2) */
    int order;   /* the order actually used (1 or 2) */
} fr_dpm_coef;

FR_HOSTDEV static inline float fr_dpm_lambda(float sigma)
{
    return fr_logf(1.0f - sigma) - fr_logf(sigma);
}

FR_HOSTDEV static inline fr_dpm_coef fr_dpm_coef_make(float sigma, float sigma_next, float sigma_prev, int order)
{
    fr_dpm_coef c;
    float alpha_t = 1.0f - sigma_next;
    float e, h = 0.0f;
    int finite_h = sigma_next > 0.0f && sigma < 1.0f;
    if (finite_h) {
        h = fr_dpm_lambda(sigma_next) - fr_dpm_lambda(sigma);
        e = fr_expf(-h);
    } else {
        e = 0.0f;
    }
    c.order = (order >= 2 && sigma_next > 0.0f) ? 2 : 1;
    c.cx = sigma_next / sigma;
    c.ce = alpha_t * (e - 1.0f);
    c.chalf = 0.5f * c.ce;
    c.inv_r0 = 0.0f; /* σ_prev = 1: h0 = +inf, 1/r0 = 0 */
    if (c.order == 2 && sigma_prev < 1.0f && finite_h) {
        float h0 = fr_dpm_lambda(sigma) - fr_dpm_lambda(sigma_prev);
        float r0 = h0 / h;
        c.inv_r0 = 1.0f / r0;
    }
    return c;
}

FR_HOSTDEV static inline float fr_dpm1_elem(float x, float m0, fr_dpm_coef c)
{
    return c.cx * x - c.ce * m0;
}

FR_HOSTDEV static inline float fr_dpm2_elem(float x, float m0, float m1, fr_dpm_coef c)
{
    float d1 = c.inv_r0 * (m0 - m1);
    return (c.cx * x - c.ce * m0) - c.chalf * d1;
}

/* ---- one step of any kind (what the sampler op entries take, flowrl/ops.h) -------------- */

/* The coefficients of one step, formed once on the host by fr_sampler_coef (sampler.h) and
 * passed by value to the op entries: only the kind's own member is set. */
typedef struct {
    fr_sampler_kind kind;
    float sigma; /* dpm: x̂0 = x − σ·v */
    float dt;    /* ode */
    fr_sde_coef sde;
    fr_cps_coef cps;
    fr_dance_coef dance;
    fr_ddim_coef ddim;
    fr_dpm_coef dpm;
    float std, std_dev;  /* fr_step_std (sampler.h) */
    fr_gauss_coef gauss; /* sde, dance, ddim */
} fr_step_coef;

/* μ of one element: m is v (flow kinds) or ε̂ (ddim); m1 the previous step's x̂0 (read by
 * dpm order 2 only). */
FR_HOSTDEV static inline float fr_step_mean_elem(const fr_step_coef *q, float x, float m, float m1)
{
    switch (q->kind) {
    case FR_SAMPLER_ODE: return fr_euler_elem(x, m, q->dt);
    case FR_SAMPLER_SDE: return fr_sde_mean_elem(x, m, q->sde);
    case FR_SAMPLER_CPS: return fr_cps_mean_elem(x, m, q->cps);
    case FR_SAMPLER_DANCE: return fr_dance_mean_elem(x, m, q->dance);
    case FR_SAMPLER_DDIM: return fr_ddim_mean_elem(x, m, q->ddim);
    case FR_SAMPLER_DPM: {
        float m0 = fr_flow_x0_elem(x, m, q->sigma);
        return q->dpm.order == 2 ? fr_dpm2_elem(x, m0, m1, q->dpm) : fr_dpm1_elem(x, m0, q->dpm);
    }
    default: return NAN;
    }
}

/* The log-density term of one element (its mean over D is the step's log-prob). */
FR_HOSTDEV static inline float fr_step_logp_elem(const fr_step_coef *q, float x_next, float mu)
{
    return q->kind == FR_SAMPLER_CPS ? fr_cps_logp_elem(x_next, mu) : fr_gauss_logp_elem(x_next, mu, q->gauss);
}

/* One element's weighted log-prob term (ops.h sampler_logprob_w): w·ℓ, so a weight of 1 gives
 * ℓ bit for bit. */
FR_HOSTDEV static inline float fr_step_logp_w_elem(const fr_step_coef *q, float x_next, float mu, float w)
{
    return w * fr_step_logp_elem(q, x_next, mu);
}

#endif
