/* DiffusionNFT, Negative-aware FineTuning on the forward process (docs/algorithms/nft.md;
 * public code NVlabs/DiffusionNFT @ 24af555, scripts/train_nft_sd3.py): the objective of one
 * micro-batch and its gradient w.r.t. the trained model's output, the per-sample training
 * times and noise, the reward weight r and the old policy's decay. Per-element math:
 * flowrl/nft_elem.h.
 *
 * A training loop chains, for a micro-batch of B final samples x0 (rolled out by the old
 * policy), J training times per sample, D data dims, rows r = j·B + b (the code's loop over
 * j, one backward per j):
 *   1. t (J·B)        = fr_nft_times(seed, epoch, sample ids, B, T, J, sigmas, t)
 *   2. ε, x_t (J·B, D) = fr_nft_noise(be, seed, epoch, ids, J, B, D, x0, t, ε, x_t)
 *   3. v = policy(x_t, 1000·t), v_old = old policy, v_ref = base (β_KL > 0), same x_t
 *   4. loss, g_v      = fr_nft_loss(be, prm, J, B, D, t, x0, x_t, v, v_old, v_ref, A, gout, ...)
 *   5. backward(g_v); after the epoch θ_old ← d·θ_old + (1 − d)·θ, d = fr_nft_decay(step).
 * gout = 1/gradient_accumulation_steps: the code divides each per-time loss by GA·J, and L
 * below is the mean over the J·B rows.
 *
 * Randomness (Philox, flowrl/philox.h): times FR_RNG_NFT_TIMES, counter (epoch, sample id, 0,
 * word k < T): keys whose ascending order (ties by index) is the sample's permutation of
 * the T grid indices (torch.randperm per sample); noise FR_RNG_NFT_NOISE, counter (epoch,
 * sample id, j), element i: ε of (sample, time slot j). Neither depends on how the epoch
 * is cut into micro-batches.
 *
 * Memory: x0, ε, x_t, v, v_old, v_ref, grad_v are backend memory; t, A and the per-row
 * values are host memory (crossing with fr_h2d / fr_d2h). */
#ifndef FLOWRL_NFT_H
#define FLOWRL_NFT_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/nft_elem.h"
#include "flowrl/status.h"

/* `config.train.adv_mode` (the code's default when unset: "all"). */
typedef enum {
    FR_NFT_ADV_ALL = 0,
    FR_NFT_ADV_POSITIVE_ONLY = 1, /* clamp(A, 0, acm):  r in [0.5, 1] */
    FR_NFT_ADV_NEGATIVE_ONLY = 2, /* clamp(A, −acm, 0): r in [0, 0.5] */
    FR_NFT_ADV_ONE_ONLY = 3,      /* A > 0 ? 1 : 0:     r in {0.6, 0.5} (acm 5) */
    FR_NFT_ADV_BINARY = 4         /* sign(A):           r in {0.6, 0.5, 0.4} (acm 5) */
} fr_nft_adv_mode;

typedef struct {
    double beta;          /* β of the implicit policies (`config.beta`): 1, > 0 */
    double adv_clip_max;  /* 5, > 0 */
    fr_nft_adv_mode adv_mode;
    double kl_beta;       /* β_KL (`config.train.beta`): 1e-4, >= 0; 0 off */
} fr_nft_params;

/* β 1, adv_clip_max 5, adv_mode all, β_KL 1e-4 (config/nft.py). */
fr_nft_params fr_nft_defaults(void);
fr_status fr_nft_params_check(const fr_nft_params *p);
const char *fr_nft_adv_mode_name(fr_nft_adv_mode m); /* "all", "positive_only", ... */

/* β, 1 − β, 1 + β rounded to float32. */
fr_nft_coef fr_nft_coef_of(double beta);

/* The reward weight r in [0, 1] of an advantage, float64:
 * a = clamp(A, ±acm) (then the adv_mode's map), r = clamp((a/acm)/2 + 0.5, 0, 1). */
double fr_nft_r(fr_nft_adv_mode mode, double acm, float adv);

/* The J times of each of B samples, t[j·B + b] = (1000·σ[π_b(j)])/1000 in float32 with π_b
 * the sample's permutation of 0..T−1. 1 <= J <= T, sigmas (T,) the rollout's grid. */
fr_status fr_nft_times(uint32_t seed, uint32_t epoch, const uint32_t *sample_id, int64_t B, int64_t T, int64_t J,
                       const float *sigmas, // (T,)
                       float *t);           // (J·B,)

/* ε[r] = normals (seed, FR_RNG_NFT_NOISE, epoch, sample_id[b], j), x_t = (1 − t)·x0 + t·ε
 * (the noise_fm entry). Backend memory throughout. */
fr_status fr_nft_noise(fr_backend *be, uint32_t seed, uint32_t epoch, const uint32_t *sample_id, int64_t J, int64_t B,
                       int64_t D, const float *x0, const float *t, float *eps, float *xt);

typedef struct {
    double loss;        /* L = L_pol + β_KL·KL */
    double policy_loss; /* mean_r acm·(r·L⁺ + (1 − r)·L⁻)/β */
    double pos_loss, neg_loss; /* mean_r L⁺, mean_r L⁻ */
    double kl;          /* mean_r mean_i (v − v_ref)² (0 when β_KL = 0) */
    double r_mean;      /* mean_b r */
} fr_nft_stats;

/* The loss of one micro-batch (J·B rows) and its gradient w.r.t. v:
 *   v⁺ = β·v + (1 − β)·v_old, v⁻ = (1 + β)·v_old − β·v, d± = (x_t − t·v±) − x0      (float32)
 *   w± = max(1e-5, mean_i |d±|), L± = mean_i d±²/w±                                  (float64)
 *   L  = mean_r [((r·L⁺)/β + ((1 − r)·L⁻)/β)·acm] + β_KL·mean_r mean_i (v − v_ref)²
 * with w± held constant (stopgrad). Gradient (grad_v may be NULL): per element
 *   (float)(cp_r·d⁺ + cn_r·d⁻) (+ the KL term through kl_grad_add), with
 *   cp_r = −((((gout·acm)·r)·t)·(2/(R·D)))·(β₃₂/β)/w⁺, cn_r = +(... (1 − r) ...)/w⁻,
 * β₃₂ the float32 β of v± (exactly 1 at β = 1). At θ = θ_old and β = 1, v⁺ = v⁻ = v bit
 * for bit and the gradient is the advantage-weighted x̂0-matching gradient
 * −clamp(A)·gout·2t/(R·D)·(x̂0 − x0)/w = clamp(A)·gout·∇[t²·mean (v − v*)²/w]/R (§11's check).
 * v_ref is read iff kl_beta > 0. adv (B,) unclamped advantages, host; r (B,) may be NULL. */
fr_status fr_nft_loss(fr_backend *be, const fr_nft_params *p, int64_t J, int64_t B, int64_t D,
                      const float *t,     // (J·B,) host
                      const float *t_dev, // (J·B,) backend (the same values)
                      const float *x0,    // (B, D)
                      const float *xt,    // (J·B, D)
                      const float *v,     // (J·B, D)
                      const float *v_old, // (J·B, D)
                      const float *v_ref, // (J·B, D) or NULL
                      const float *adv,   // (B,)
                      double gout,
                      float *grad_v,      // (J·B, D) or NULL
                      double *r,          // (B,) or NULL
                      fr_nft_stats *stats);

/* `return_decay(step, decay_type)`: type 0: 0; type 1: min(0.001·step, 0.5); type 2:
 * 0 for step < 75, else min(0.0075·(step − 75), 0.999). float64 as Python. */
double fr_nft_decay(int decay_type, int64_t global_step);

#endif
