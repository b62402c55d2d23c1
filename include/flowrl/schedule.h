/* Noise schedules: σ grids of the flow samplers, timestep inputs, DDPM β / ᾱ tables.
 * docs/algorithms/samplers.md §1 (flow grids), §6 (DDIM spacing), §7 (DPPO cosine β).
 *
 * Grids are float32 arrays, as the public code hands them to the step (docs/algorithms/samplers.md §0: "fp32
 * steps"). Where the public code computes a grid in float64 and casts once (numpy), so
 * does flowrl; where it computes in float32 torch ops whose bits depend on the device
 * (torch.linspace's CPU-vector / CPU-scalar / CUDA paths differ), flowrl computes in
 * float64 and rounds once, and says so at the function. */
#ifndef FLOWRL_SCHEDULE_H
#define FLOWRL_SCHEDULE_H

#include <stdint.h>

#include "flowrl/hostdev.h"
#include "flowrl/status.h"

/* num_train_timesteps of every scheduler here (diffusers default, SD, SD3). */
#define FR_NUM_TRAIN_TIMESTEPS 1000
/* Shift S of all the flow repos (docs/algorithms/samplers.md §1.1). */
#define FR_DEFAULT_SHIFT 3.0

/* Shift function s(u) = S·u / (1 + (S−1)·u), docs/algorithms/samplers.md §1.1, in the public code's order
 * (shift * t) / (1 + (shift - 1) * t). float32 and float64 versions: the diffusers grid
 * uses both (§1.2). */
FR_HOSTDEV static inline float fr_shift_f(float u, float S)
{
    return (S * u) / (1.0f + (S - 1.0f) * u);
}

FR_HOSTDEV static inline double fr_shift_d(double u, double S)
{
    return (S * u) / (1.0 + (S - 1.0) * u);
}

/* The diffusers double-shift grid of Flow-GRPO (docs/algorithms/samplers.md §1.2): T + 1 values, σ_T = 0.
 * Computed exactly as FlowMatchEulerDiscreteScheduler @ 03186e1 does:
 *   __init__ (float32 torch): sigma_min = s_f32(float32(1) / 1000), sigma_max = s_f32(1)
 *   set_timesteps (float64 numpy): t = linspace(1000·sigma_max, 1000·sigma_min, T)
 *       (numpy's i·step + start, last = stop), σ_i = s_f64(t_i / 1000), cast to float32
 *   then 0 appended.
 * T >= 1, shift > 0. Reproduces the §1.2 check vector (T = 10, S = 3). */
fr_status fr_sigmas_diffusers(int64_t T, double shift, float *sigmas /* (T+1,) */);

/* σ_i = s(linspace(u_start, u_end, n)_i), i = 0..n-1, no extra 0 appended.
 * linspace as numpy (i·step + start in float64, last = u_end exactly), s in float64,
 * one rounding to float32. The public MIX/DANCE/BRANCH/G2 code uses float32
 * torch.linspace, whose bits differ between torch's CPU vector, CPU scalar and CUDA
 * kernels; flowrl's values are the correctly rounded ones up to float64 error (within
 * an ulp or two of any of those). n >= 1. */
fr_status fr_sigmas_shifted_linspace(double u_start, double u_end, int64_t n, double shift,
                                     float *sigmas /* (n,) */);

/* The s(linspace(1, 0, T+1)) grid of MIX, DANCE, BRANCH and G2 (docs/algorithms/samplers.md §1.3): T + 1 values,
 * σ_0 = 1 and σ_T = 0 exactly. */
fr_status fr_sigmas_linspace(int64_t T, double shift, float *sigmas /* (T+1,) */);

/* MixGRPO-Flash's grid (docs/algorithms/samplers.md §9): the s(linspace) grid up to the
 * window's last SDE step `last` (ℓ), then the rest re-gridded with fewer points for
 * DPM-Solver++, as MIX's run_sample_step (fastvideo/utils/sampling_utils.py) builds it:
 *   u     = linspace(1, 0, T+1)
 *   n     = int(max((T − ℓ)·compress, 1))    grid points of the tail (Python float64
 *                                            product, truncated); n − 1 tail steps
 *   out   = σ_0 .. σ_ℓ  (= fr_sigmas_linspace(T)),  then  s(linspace(u_{ℓ+1}, 0, n))
 * ℓ + 1 + n values; *n_steps = ℓ + n, the rollout's T. The tail starts at out[ℓ + 1],
 * which equals fr_sigmas_linspace's σ_{ℓ+1} bit for bit, and ends at s(0) = 0 when n >= 2.
 * With n = 1 and ℓ < T − 1 the grid stops at σ_{ℓ+1} > 0: no tail step, the sample keeps
 * that noise level (MIX's quirk, copied; T = 25, compress 0.4: ℓ = 21, 22, 23).
 * Rounding as fr_sigmas_shifted_linspace: u_{ℓ+1}, the tail linspace and s in float64,
 * one rounding to float32 (MIX uses float32 torch.linspace and shift; measured within 5
 * ulp of torch's CPU values). 0 <= last < T, 0 < compress <= 1, shift > 0, cap >= ℓ + 1 + n
 * (T + 1 always suffices). Run it with fr_rollout_cfg.dpm_from = ℓ + 1 (flowrl/rollout.h). */
fr_status fr_sigmas_flash_tail(int64_t T, int64_t last, double compress, double shift,
                               float *out /* (cap,) */, int64_t cap, int64_t *n_steps);

/* Network time input of MIX/DANCE/BRANCH/G2 (docs/algorithms/samplers.md §1.4): ⌊1000σ⌋/1000, computed as the
 * public code does: int(σ·1000) with σ·1000 a float32 product, then a float32 division
 * of the integer by 1000 (`timesteps / 1000`). The step math keeps the exact σ. */
FR_HOSTDEV static inline float fr_timestep_quantized(float sigma)
{
    float t = sigma * 1000.0f;
    return (float)(int32_t)t / 1000.0f;
}

/* Network time input of FG (docs/algorithms/samplers.md §1.2): `timesteps = sigmas * 1000`, float32, unquantized
 * (note the 0..1000 scale, unlike fr_timestep_quantized's 0..1). */
FR_HOSTDEV static inline float fr_timestep_diffusers(float sigma)
{
    return sigma * 1000.0f;
}

/* ---- DDPM / DDIM (integer t, ᾱ_t) ------------------------------------------------ */

/* β_i = linspace(beta_start, beta_end, n)_i (DDPM "linear"), float64 linspace rounded
 * once to float32. n >= 1. */
fr_status fr_betas_linear(int64_t n, double beta_start, double beta_end, float *betas /* (n,) */);

/* β_i = linspace(√beta_start, √beta_end, n)_i², Stable Diffusion's "scaled_linear"
 * (beta_start 0.00085, beta_end 0.012 for SD 1.x, used by DDPO, docs/algorithms/samplers.md §6): the linspace
 * value is rounded to float32 and squared in float32, as torch's float32 `** 2`. */
fr_status fr_betas_scaled_linear(int64_t n, double beta_start, double beta_end,
                                 float *betas /* (n,) */);

/* DPPO's cosine schedule (docs/algorithms/samplers.md §7): ᾱ(k) = cos²(((k/n + s)/(1 + s))·π/2) / ᾱ(0),
 * β_k = clip(1 − ᾱ(k)/ᾱ(k−1), 0, max_beta), k = 1..n (s = 0.008, max_beta = 0.999).
 * DPPO evaluates x = linspace(0, n+1, n+1) and x/(n+1); in exact arithmetic that is
 * k/n. flowrl evaluates β without the cancellation of 1 − ratio, through
 *   1 − cos²b / cos²a = sin(b − a)·sin(b + a) / cos²a,   b − a = (π/2)/(n(1+s)),
 * in float32 with flowrl's sin/cos: relative error ~1e-6 against DPPO's float64 values
 * (tests/test_schedule.c measures it). n >= 1. */
fr_status fr_betas_cosine(int64_t n, double s, double max_beta, float *betas /* (n,) */);

/* ᾱ_i = Π_{j<=i} (1 − β_j). 1 − β in float32 (torch `1.0 - betas`), the running
 * product in float64 and each ᾱ_i rounded to float32: torch's CPU cumprod accumulates
 * float in double (the schedulers build these tables on the CPU). */
fr_status fr_alphas_cumprod(int64_t n, const float *betas /* (n,) */, float *alpha_bar /* (n,) */);

/* DDIM "leading" spacing (diffusers DDIMScheduler): t_i = (T−1−i)·(n_train / T) + offset,
 * i = 0..T−1 (integer division; SD's config has steps_offset = 1). 1 <= T <= n_train. */
fr_status fr_ddim_timesteps(int64_t T, int64_t n_train, int64_t offset, int64_t *t /* (T,) */);

/* prev_t = t − n_train / T, clamped to [0, n_train − 1] (docs/algorithms/samplers.md §6; DDPO's clamp makes the
 * last step use ᾱ[0]). */
FR_HOSTDEV static inline int64_t fr_ddim_prev_timestep(int64_t t, int64_t T, int64_t n_train)
{
    int64_t p = t - n_train / T;
    return p < 0 ? 0 : (p > n_train - 1 ? n_train - 1 : p);
}

#endif
