/* The Flow-GRPO family of losses for one batch at one trained step j, with their backward
 * w.r.t. what the model produces (docs/algorithms/flow-grpo.md §2 Flow-GRPO, §3 GRPO-Guard, §4
 * MixGRPO), and the trained-step selection (docs/algorithms/samplers.md §10; docs/algorithms/flow-grpo.md §2
 * "timestep_fraction"). The per-element math is in flowrl/grpo_elem.h.
 *
 * How a training loop chains these for step j of a batch (B samples, D dims):
 *   1. μ_θ, logp_new  = fr_sampler_logprob(be, step, x_j, v_θ, x_{j+1})  (sampler.h)
 *   2. L_pol, g_logp  = fr_ppo_policy(..., gout, g_logp)                 (Flow-GRPO, MixGRPO)
 *      or L_pol, g_μ  = fr_guard_policy(be, ..., gout, g_μ)              (GRPO-Guard)
 *   3. g_μ           (+)= fr_logp_backward(be, step, x_{j+1}, μ_θ, g_logp) (skip for Guard)
 *   4. if β > 0: L_KL, g_μ += fr_kl_loss(be, μ_θ, μ_ref, kl_std, gout·β)
 *   5. g_v = g_μ · fr_grpo_dmean_dv(step)  (a per-step scalar), then the model's backward
 *      (with CFG v = v_u + g·(v_c − v_u), autograd gives g_c = g_v·g and
 *      g_u = g_v + (−(g_v·g)), the sum of its two paths).
 * Loss = L_pol + β·L_KL. gout is the upstream gradient of the loss of this (batch, j):
 * 1 / fr_grpo_accum_divisor(...) for the averaging of §2 (see there).
 *
 * Memory (flowrl/backend.h): the D-wide arrays (x_{j+1}, μ_θ, μ_ref, μ_old, g_μ) and g_logp
 * are backend memory, computed by op entries; the per-sample arrays of the PPO core (log-probs,
 * advantages, ratios, biases) are host memory (a caller copies logp_θ out with fr_d2h).
 *
 * Advantages passed here are the UNCLAMPED tracker outputs (flowrl/advantage.h); the
 * clamp to ±adv_clip_max happens here, per element, before the ratio term, as FG's
 * training loop does it (docs/algorithms/advantages.md §1.1 item 7; docs/algorithms/flow-grpo.md §11). */
#ifndef FLOWRL_GRPO_H
#define FLOWRL_GRPO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/sampler.h"
#include "flowrl/status.h"

#define FR_GRPO_ADV_CLIP_MAX 5.0f /* docs/algorithms/flow-grpo.md §2 table: adv_clip_max */

/* Logged, not optimised (docs/algorithms/flow-grpo.md §2). */
typedef struct {
    float loss;       /* L_pol (GRPO-Guard: after the 1/(−dt) reweight) */
    float approx_kl;  /* ½·mean_b(logp_new − logp_old)² (Guard: without the bias, as FG) */
    float clipfrac;   /* mean_b(|r − 1| > ε) */
    float ratio_min, ratio_max, ratio_mean;
} fr_ppo_stats;

typedef struct {
    double clip_range;  /* ε (1e-4 FG, 1e-5 Fast/CPS, 2e-6 Guard); bounds formed as torch does */
    float adv_clip_max; /* > 0; A is clamped to ±adv_clip_max; INFINITY disables */
} fr_ppo_params;

/* PPO-clip policy term (docs/algorithms/flow-grpo.md §0, §2; MixGRPO §4 per step):
 *   r_i = exp(logp_new_i − logp_old_i),  Â_i = clamp(A_i, ±adv_clip_max)
 *   L_pol = mean_b max(−Â_i·r_i, −Â_i·clip(r_i, 1−ε, 1+ε))     (canonical mean over B)
 *   grad_logp_new_i = gout · dL_pol/dlogp_new_i, with torch's tie rules (grpo_elem.h):
 *   zero where the clipped branch is active (outside [1−ε, 1+ε] with the clipped term the
 *   larger), −Â_i·r_i·gout/B otherwise (ties inside the band split ½ + ½).
 * ratio (B,) may be NULL. grad_logp_new may be NULL (forward only). B >= 1. Host memory
 * throughout (per-sample scalars). */
fr_status fr_ppo_policy(int64_t B, const fr_ppo_params *prm,
                        const float *logp_new, // (B,)
                        const float *logp_old, // (B,)
                        const float *adv,      // (B,)
                        float gout,
                        float *grad_logp_new,  // (B,) or NULL
                        float *ratio,          // (B,) or NULL
                        fr_ppo_stats *stats);

/* g_μ (B, D) of a per-sample scalar gradient g_logp (B,) through the step's log-prob
 * (a MEAN over D, docs/algorithms/samplers.md §0):
 *   sde, dance, ddim (Gaussian, std = fr_sampler_std(step).std):
 *        dlogp/dμ = (x' − μ)/(std²·D)
 *   cps  (log p = mean_d[−(x' − μ)²], docs/algorithms/samplers.md §4 quirk 1): dlogp/dμ = 2(x' − μ)/D
 * accumulate = 0 writes grad_mean, 1 adds to it. ode/dpm: FR_ERR_ARG (no density). Every array
 * is backend memory (the op entry logp_backward). */
fr_status fr_logp_backward(fr_backend *be, const fr_step *step, int64_t B, int64_t D,
                           const float *x_next, // (B, D)
                           const float *mean,   // (B, D) μ_θ
                           const float *g_logp, // (B,)
                           float *grad_mean,    // (B, D)
                           int accumulate);

/* Which σ divides the KL (docs/algorithms/flow-grpo.md §2 quirk 1). */
typedef enum {
    FR_KL_CODE = 0, /* FG: 2σ_t², σ_t WITHOUT √(−dt) (fr_step_std.std_dev); CPS: its step std */
    FR_KL_PAPER     /* the paper's 2σ_t²Δt: the transition std squared (fr_step_std.std) */
} fr_kl_form;

/* The σ to pass to fr_kl_loss for this step and form (stochastic kinds only). */
fr_status fr_kl_std(const fr_step *step, fr_kl_form form, float *kl_sigma);

/* L_KL = mean_b[ mean_d (μ_θ − μ_ref)² / (2·kl_sigma²) ] (mean_d: canonical sum of
 * squares / D; mean_b: canonical mean), and grad_mean (+)= gout·dL_KL/dμ_θ =
 * gout·(μ_θ − μ_ref)/(B·D·kl_sigma²). gout here is β times the loss's upstream gradient.
 * grad_mean may be NULL. mean, mean_ref, grad_mean: backend memory (the row sums and the
 * gradient are op entries); loss: host (the B row values cross with fr_d2h). */
fr_status fr_kl_loss(fr_backend *be, int64_t B, int64_t D, float kl_sigma,
                     const float *mean,     // (B, D) μ_θ
                     const float *mean_ref, // (B, D) μ_ref (base model, LoRA off)
                     float gout,
                     float *loss,
                     float *grad_mean,      // (B, D) or NULL
                     int accumulate);

/* GRPO-Guard bias (docs/algorithms/flow-grpo.md §3). */
typedef enum {
    FR_GUARD_BIAS_BATCH = 0, /* the code: ONE scalar, mean over batch AND dims of Δμ²/(2s²) */
    FR_GUARD_BIAS_SAMPLE     /* the intended per-sample reading: mean_d Δμ_i²/(2s²) */
} fr_guard_bias;

/* GRPO-Guard policy term for one sde step (docs/algorithms/flow-grpo.md §3), all in one call because the
 * bias couples every sample's μ_θ:
 *   s    = σ_t·√(−dt) (= fr_sde_coef.std; FG's sqrt_dt.mean()·std_dev_t.mean() over a
 *          batch sharing the step: the mean of equal values is taken as the value)
 *   bias = mean(μ_θ − μ_old)²/(2s²)  (batch-wide or per sample, see fr_guard_bias)
 *   r_i  = exp(((logp_new_i − logp_old_i) + bias)·s)
 *   L    = mean_b max(−Â r, −Â clip(r)) / (√(−dt))²      (the 1/(−dt) reweight)
 * and grad_mean (+)= gout·dL/dμ_θ through BOTH logp_new (the sde Gaussian) and the bias.
 * logp_new must be the sde log-prob of x_next under mean (fr_sampler_logprob). step->kind
 * must be FR_SAMPLER_SDE. ratio (B,) may be NULL; grad_mean may be NULL.
 * x_next, mean, mean_old, grad_mean: backend memory (the bias sums and the gradient are op
 * entries); logp_new, logp_old, adv, ratio, bias: host (per-sample; the bias sums cross with
 * fr_d2h, the per-row gradient factors with fr_h2d). */
fr_status fr_guard_policy(fr_backend *be, const fr_step *step, int64_t B, int64_t D, fr_guard_bias mode,
                          const fr_ppo_params *prm,
                          const float *x_next,   // (B, D) x_{j+1} stored by the rollout
                          const float *mean,     // (B, D) μ_θ
                          const float *mean_old, // (B, D) μ_old stored by the rollout
                          const float *logp_new, // (B,)
                          const float *logp_old, // (B,)
                          const float *adv,      // (B,)
                          float gout,
                          float *grad_mean,      // (B, D) or NULL
                          int accumulate,
                          float *ratio,          // (B,) or NULL
                          float *bias,           // (B,) or NULL: the bias each sample used
                          fr_ppo_stats *stats);

/* dμ/dv (dμ/dε̂ for ddim), a per-step scalar: sde cv·dt, cps −σ(1−σ') + (1−σ)·c_eps,
 * dance dσ(1 + ½η²(1−σ)/σ), ode dt, ddim (no x̂0 clip) −√ᾱ_prev√β_t/√ᾱ_t + c_dir, from
 * the same coefficient makers as the sampler (grpo_elem.h). ddim with x0_clip > 0 (the
 * derivative is per element) and dpm: FR_ERR_UNSUPPORTED. */
fr_status fr_grpo_dmean_dv(const fr_step *step, float *dmean_dv);

/* ---- averaging (docs/algorithms/flow-grpo.md §2 "Averaging", §4) ----------------------------------- */

/* The divisor of every (batch, j) loss: Accelerate's gradient_accumulation_steps =
 * grad_accum × n_steps, and accelerator.backward(loss) divides by it. So the loop calls
 * the losses with gout = 1.0f/(float)divisor and logs loss/(float)divisor; the optimizer
 * step then sees the average over the n_steps trained steps and the grad_accum
 * accumulated batches (FG: n_steps = T_train; MixGRPO: n_steps = |window|, grad_accum
 * counts samples). FR_ERR_ARG unless both >= 1. */
fr_status fr_grpo_accum_divisor(int64_t grad_accum, int64_t n_steps, int64_t *divisor);

/* ---- trained steps (core/grpo_window.c) --------------------------------------------- */

/* T_train = int(T·fraction), the Python expression: T converted to double, multiplied by
 * the double fraction, truncated (int(10*0.99) = 9, int(100*0.29) = 28). Steps
 * 0..T_train−1 are trained in order (docs/algorithms/flow-grpo.md §2). fraction in [0, 1]. */
fr_status fr_train_steps(int64_t T, double fraction, int64_t *t_train);

/* Flow-GRPO-Fast random SDE window (docs/algorithms/samplers.md §10.1). W > 0: start = randint(r0, r1−W)
 * (inclusive), window [start, start+W); W = 0: the window is [0, T−1) (the last step is
 * never stochastic or trained). Steps outside run with noise level 0.
 * Randomness, one draw per pipeline call (FG draws once per call, shared by the batch):
 *   key (seed, FR_RNG_WINDOW), counter (c0 = epoch, c1 = call = the sampling batch index
 *   within the epoch, c2 = rank (0 in one process: FG seeds Python random with 42+rank)),
 *   words idx = 0, 1, ... by rejection: w < 2^32 − (2^32 mod n) accepted, start = r0 +
 *   w mod n, n = r1 − W − r0 + 1 (so every start is exactly equally likely).
 * Needs 0 <= r0 <= r1 − W, r1 <= T, 0 <= W < T. *start, *len: the window. */
fr_status fr_fast_window(uint32_t seed, uint32_t epoch, uint32_t call, uint32_t rank, int64_t T,
                         int64_t r0, int64_t r1, int64_t W, int64_t *start, int64_t *len);

/* MixGRPO progressive sliding window (docs/algorithms/samplers.md §10.2; MIX GRPOTrainingStates with
 * sample_strategy "progressive", prog_overlap, roll_back). */
typedef struct {
    int64_t iters_per_group; /* 25 */
    int64_t window;          /* W, the code's group_size: 4 */
    int64_t max_timesteps;   /* T − 2 = 23 */
    int64_t step;            /* prog_overlap_step: 1 */
    int roll_back;           /* 1: cur > max returns to init; 0: cur clips to max */
    int64_t init;            /* the starting cur (0) */
    int64_t cur;             /* cur_timestep */
    int64_t iter_in_group;   /* cur_iter_in_group */
} fr_mix_window;

/* The MixGRPO defaults for T sampler steps: W = 4, iters_per_group = 25, max = T − 2,
 * step 1, roll_back on, cur = 0. FR_ERR_ARG if T < 3. */
fr_status fr_mix_window_init(fr_mix_window *w, int64_t T);

/* The trained steps of this iteration: range(cur, min(cur + W, max)), read BEFORE
 * fr_mix_window_update (the quirk); *len may be 0 (at cur = max: a pure-ODE iteration
 * with no loss terms). */
void fr_mix_window_get(const fr_mix_window *w, int64_t *start, int64_t *len);

/* update_iteration(): iter_in_group += 1; at iters_per_group it resets and cur += step;
 * then cur > max rolls back to init (iter_in_group = 0) or clips to max. */
void fr_mix_window_update(fr_mix_window *w);

#endif
