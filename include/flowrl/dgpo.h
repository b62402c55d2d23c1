/* DGPO, Direct Group Preference Optimization (docs/algorithms/dgpo.md; public code
 * Luo-Yihong/DGPO @ 01ceb4b, scripts/train_sd3_dgpo.py): the training times of an epoch, the
 * group-shared noise, the objective of one micro-batch and its gradient w.r.t. the model
 * output, and the EMA-reference decay.
 *
 * How a training loop chains these for one micro-batch of B rollouts (final samples x0 of
 * whole prompt groups, unclamped advantages A), K training times, D data dims; rows
 * r = k·B + i (the K per-time accumulation steps of the code, side by side):
 *   1. idx (K), once per epoch = fr_dgpo_times(seed, epoch, K, trunc_steps): K sampler indices
 *      of 0..trunc_steps without replacement; t_k = σ[idx_k] (timestep 1000·σ / 1000)
 *   2. ε, x_t (K·B, D)  = fr_dgpo_noise(be, seed, epoch, batch, noise_id, K, B, D, x0, t, ε, x_t):
 *      noise_id the prompt id of each sample (shared noise: one ε per group and time)
 *   3. v = policy(x_t, 1000·t); v_ref = the base (d_ref unless use_ema_ref, and the KL);
 *      v_old = the EMA reference (clip, or d_ref with use_ema_ref), all on the same x_t
 *   4. loss, g_v        = fr_dgpo_loss(be, prm, K, B, D, x0, ε, v, v_ref, v_old, group, A, gout, ...)
 *   5. fr_model_backward(g_v); after each optimiser step the EMA reference ←
 *      fr_awm_ema_update(fr_dgpo_ema_decay(global step before the step)).
 *
 * Randomness (Philox, flowrl/philox.h; key (seed, purpose)):
 *   times  FR_RNG_DGPO_TIMES, u32 at counter (epoch, 0, 0, word j) for each candidate index
 *          j <= trunc_steps: the K candidates with the smallest keys (ties by index), in key
 *          order (`random.sample(range(trunc_steps + 1), K)`)
 *   noise  FR_RNG_DGPO_NOISE, counter (epoch, noise_id[i], batch·K + k), element e < D: ε of
 *          (sample i, time k), a normal. The code's ε is drawn per (micro-batch, time) and
 *          group; a group lives in one micro-batch.
 *
 * Memory (flowrl/backend.h): the (·, D) arrays are backend memory, computed by op entries
 * (awm_sqerr, row_msd_f64, flow_target, fm_loss, kl_grad_add, noise_fm, ema_lerp); the per-row
 * and per-sample values (t, d, weights, advantages, statistics) are host memory. */
#ifndef FLOWRL_DGPO_H
#define FLOWRL_DGPO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

/* K distinct sampler indices of 0..trunc_steps (1 <= K <= trunc_steps + 1 <= 1024). */
fr_status fr_dgpo_times(uint32_t seed, uint32_t epoch, int64_t K, int64_t trunc_steps,
                        int64_t *idx); // (K,)

/* ε and x_t of every (time k, sample i) row: ε[r, e] = fr_rng_normal(seed, FR_RNG_DGPO_NOISE,
 * epoch, noise_id[i], batch·K + k, e), x_t = (1 − t_r)·x0_i + t_r·ε (fr_flow_noised_elem).
 * Every array is backend memory. */
fr_status fr_dgpo_noise(fr_backend *be, uint32_t seed, uint32_t epoch, uint32_t batch,
                        const uint32_t *noise_id, // (B,)
                        int64_t K, int64_t B, int64_t D,
                        const float *x0, // (B, D)
                        const float *t,  // (K·B,)
                        float *eps,      // (K·B, D)
                        float *xt);      // (K·B, D)

typedef struct {
    double beta_dpo;     /* 100 */
    int64_t group_size;  /* G, the configured num_image_per_prompt (the divisor of S_g) */
    double clip_range;   /* c: 1e-2 (ocr / geneval), >= 0 */
    int clip_dsm;        /* 1: a clipped sample's d is detached */
    int clip_kl;         /* 0: 1 also detaches a clipped sample's KL */
    int use_ema_ref;     /* 0: d_ref of the base; 1: of the EMA reference */
    double adv_clip_max; /* 5, > 0 */
    double beta;         /* KL to the base: 0.02 (ocr / geneval), >= 0 */
} fr_dgpo_params;

/* The public ocr config (config/dgpo.py ocr_sd3_4gpu): β_dpo 100, clip 1e-2 (clip_dsm on,
 * clip_kl off), d_ref of the base, adv_clip_max 5, β 0.02; group_size 16. */
fr_dgpo_params fr_dgpo_defaults(void);

/* FR_ERR_ARG naming the first bad field. */
fr_status fr_dgpo_params_check(const fr_dgpo_params *p);

/* 1 when the loss reads v_old (the EMA reference): clip_dsm, clip_kl or use_ema_ref. */
int fr_dgpo_needs_old(const fr_dgpo_params *p);
/* 1 when the loss reads v_ref (the base): d_ref without use_ema_ref, or β > 0. */
int fr_dgpo_needs_ref(const fr_dgpo_params *p);

typedef struct {
    double loss;       /* mean_k (L_dgpo,k + β·KL_k) (not divided by the accumulation) */
    double dgpo_loss;  /* mean_k L_dgpo,k */
    double kl;         /* mean_k KL_k (without β); 0 when β = 0 */
    double dsm;        /* mean over rows of d */
    double clipfrac;   /* share of clipped rows (0 without v_old) */
    double w_min, w_max, w_mean; /* group weights over the rows */
    double ratio_min, ratio_max; /* ρ over the rows (NAN without v_old) */
} fr_dgpo_stats;

/* The loss of one micro-batch and its gradient w.r.t. v, per time k, in float64 (per row r = k·B + i):
 *   d_r     = mean_e (v − (ε − x0_i))²       (the awm_sqerr entry, float64 lanes)
 *   d_ref_r = the same of v_ref (or of v_old with use_ema_ref)
 *   Ã_i     = clamp(A_i, ±adv_clip_max)
 *   ρ_r     = exp(−d_r + d_old_r); clipped_r = Ã > 0 ? ρ > 1 + c : ρ < 1 − c   (with v_old)
 *   S_{k,g} = Σ_{i∈g} ((Ã_i·β_dpo)·(d_r − d_ref_r))/G, in sample order; w_r = 1/(1 + exp(−S))
 *   L_k     = mean_i w_r·Ã_i·d_r + β·mean_i mean_e (v − v_ref)²
 *   L       = mean_k L_k
 * group (B,): any id per sample, equal ids form a group (the code's torch.unique over the
 * prompt ids of the micro-batch). w is detached: at v = v_ref (v_old with use_ema_ref) every
 * w_r is 1/(1 + exp(0)) = 0.5 exactly.
 * Gradient (grad_v may be NULL), per row, gout the upstream factor (1/grad_accum):
 *   policy  c_r·(v − (ε − x0)) through fr_fm_loss, c_r = (float)((w_r·Ã_i·gout)·(2/(K·B·D))),
 *           0 for a clipped row under clip_dsm
 *   KL      + (float)(((gout·β)/(K·B·D))·2·(v − v_ref)) (kl_grad_add), 0 for a clipped row under clip_kl
 * v_ref is read iff fr_dgpo_needs_ref, v_old iff fr_dgpo_needs_old (else may be NULL).
 * d, w (K·B,) receive d_r and w_r; clipped (K·B,) 0/1; each may be NULL. x0, eps, v, v_ref,
 * v_old, grad_v: backend; group, adv, d, w, clipped: host. */
fr_status fr_dgpo_loss(fr_backend *be, const fr_dgpo_params *p, int64_t K, int64_t B, int64_t D,
                       const float *x0,      // (B, D)
                       const float *eps,     // (K·B, D)
                       const float *v,       // (K·B, D) policy output
                       const float *v_ref,   // (K·B, D) base output, or NULL
                       const float *v_old,   // (K·B, D) EMA reference output, or NULL
                       const int64_t *group, // (B,)
                       const float *adv,     // (B,) unclamped advantages
                       double gout,
                       float *grad_v,        // (K·B, D) or NULL
                       double *d,            // (K·B,) or NULL
                       double *w,            // (K·B,) or NULL
                       uint8_t *clipped,     // (K·B,) or NULL
                       fr_dgpo_stats *stats);

/* d = min(cap, 0.001·global_step) (`min(0.3, 0.001 * global_step)`, cap 0.3), global_step the
 * optimiser steps before this one; the EMA reference then moves by fr_awm_ema_update. */
double fr_dgpo_ema_decay(double cap, int64_t global_step);

#endif
