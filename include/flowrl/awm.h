/* AWM, Advantage Weighted Matching (docs/algorithms/awm.md; public code
 * scxue/advantage_weighted_matching @ be51372, scripts/train_sd3_awm.py): the objective of
 * one micro-batch and its gradient w.r.t. the model output, the training-time selection and
 * noising, and the EMA-adapter decay. The per-element math is in flowrl/awm_elem.h.
 *
 * How a training loop chains these for one micro-batch of B rollouts (final samples x0,
 * unclamped advantages A), K training times, D data dims; rows r = k·B + b (the code's
 * torch.cat over the K times of the B-sample batch):
 *   1. t (K·B)            = fr_awm_times(cfg, seed, epoch, batch, B, T, sigmas, idx, t)
 *   2. ε, x_t (K·B, D)    = fr_awm_noise(be, seed, epoch, sample_id, K, B, D, x0, t, ε, x_t)
 *   3. v = model(x_t, 1000·t) (K·B rows), v_ref = base model (β > 0), v_ema = EMA adapter
 *      (ema_beta > 0), all on the same x_t
 *   4. loss, g_v          = fr_awm_loss(be, prm, K, B, D, t, x0, ε, v, v_ref, v_ema, ℓ_old, A,
 *                                       gout, ...)   (ℓ_old NULL: on-policy)
 *   5. fr_model_backward(g_v); after the epoch, the EMA adapter ←
 *      fr_awm_ema_update(fr_awm_ema_decay(global_step, ...)).
 * gout is the loss's upstream gradient: 1/gradient_accumulation_steps (accelerate divides
 * every micro-batch's loss by it; with train.num_batches_per_epoch =
 * gradient_accumulation_steps there is one optimizer step per epoch, §9).
 *
 * Randomness (Philox, flowrl/philox.h; key (seed, purpose)):
 *   times  FR_RNG_AWM_TIMES, counter (epoch, batch, c2, word):
 *          c2 = 0, word k (discrete*, logit_normal) or k·B + b (uniform): the uniform u of
 *          stratum k; c2 = 1, word k (logit_normal) or k·B + b (uniform): the u32 keys whose
 *          ascending order (ties by index) is the shuffle (torch.randperm / rand.argsort)
 *   noise  FR_RNG_AWM_NOISE, counter (epoch, sample_id[b], k), element i < D: ε of
 *          (sample b, time k), a normal (fr_rng_normal)
 * batch is the micro-batch's index in the epoch and sample_id the sample's index in the
 * epoch's rollouts, so the draws do not depend on how the epoch is cut into micro-batches
 * for the noise, and are shared by every sample of a micro-batch for the times (§9).
 *
 * Memory (flowrl/backend.h): the (·, D) arrays (x0, ε, x_t, v, v_ref, v_ema, grad_v, the
 * parameters) are backend memory, computed by op entries; the per-row and per-sample values
 * (t, ℓ, ℓ_old, A, ratios, statistics) are host memory, crossing with fr_d2h / fr_h2d. */
#ifndef FLOWRL_AWM_H
#define FLOWRL_AWM_H

#include <stdint.h>

#include "flowrl/awm_elem.h"
#include "flowrl/backend.h"
#include "flowrl/status.h"

/* ---- training times (§9 "Timesteps") ------------------------------------------------ */

typedef enum {
    FR_AWM_TIME_DISCRETE_WO_INIT = 0, /* strata of sampler indices 1..M (the default) */
    FR_AWM_TIME_DISCRETE = 1,         /* strata of 0..M */
    FR_AWM_TIME_DISCRETE_WITH_INIT = 2, /* index 0, then K−1 strata of 1..M */
    FR_AWM_TIME_UNIFORM = 3,          /* stratified t in [0.2, 1], per-sample order, shifted */
    FR_AWM_TIME_LOGIT_NORMAL = 4      /* stratified logit-normal t, shuffled, shifted, >= 0.01 */
} fr_awm_time_type;

typedef struct {
    fr_awm_time_type type;
    int64_t K;       /* train_timesteps (6), 1..1024 */
    double fraction; /* timestep_fraction (0.9), in [0, 1]; M = int(T·fraction) */
    double shift;    /* time_shift (3) of the continuous types */
} fr_awm_time_cfg;

/* The defaults of the public geneval/ocr/pickscore configs: discrete_wo_init, K 6,
 * fraction 0.9, shift 3. */
fr_awm_time_cfg fr_awm_time_defaults(void);

/* "discrete_wo_init" ... "logit_normal" <-> the enum; NULL / FR_ERR_ARG if unknown. */
const char *fr_awm_time_name(fr_awm_time_type type);
fr_status fr_awm_time_parse(const char *name, fr_awm_time_type *type);

/* Strata of the discrete types for a T-step rollout, M = int(T·fraction) (fr_train_steps):
 *   wo_init    bounds = long(linspace(1, M, K + 1)), stratum k = [bounds_k, bounds_{k+1})
 *   discrete   bounds = long(linspace(0, M, K + 1))
 *   with_init  lo_0 = hi_0 = 0 (the forced index), then long(linspace(1, M, K)) for the
 *              K − 1 others
 * long(linspace(a, M, n))_k is evaluated exactly, a + ⌊k·(M − a)/(n − 1)⌋ in integers: torch's
 * float32 linspace could only differ where the real value is an integer it rounds below.
 * idx_k = lo_k + ⌊u_k·(hi_k − lo_k)⌋ lies in [lo_k, hi_k) (= lo_k for an empty stratum, as
 * the code). FR_ERR_ARG for a continuous type, M < the first index, or an index >= T.
 * T=14, fraction 0.9, K=6 (wo_init): bounds [1, 2, 4, 6, 8, 10, 12]. */
fr_status fr_awm_strata(const fr_awm_time_cfg *c, int64_t T,
                        int64_t *lo, // (K,)
                        int64_t *hi); // (K,)

/* The K times of one micro-batch, t[k·B + b]:
 *   discrete*     idx_k as fr_awm_strata, `(u_k * (hi − lo)).long()` with a float32 product,
 *                 t_k = (1000·σ[idx_k])/1000 in float32 (`sample["timesteps"][idx] / 1000`,
 *                 timesteps = 1000·σ, fr_timestep_diffusers), the same for every b
 *   uniform       s_{k,b} = 0.2 + ((k + u_{k,b})/K)·0.8 (float32), column b permuted by the
 *                 ascending order of its keys, then shifted S·s/(1 + (S−1)·s) (fr_shift_f)
 *   logit_normal  z_k = Φ⁻¹((k + u_k)/K) (fr_awm_ndtri, rounded to float32), permuted by the
 *                 keys, t_k = max(shift(sigmoid(z)), 0.01), the same for every b
 * sigmas (T,) is the rollout's σ grid (its first T values; read by the discrete types
 * only, may be NULL otherwise); idx (K,) receives the sampler indices (discrete types; may
 * be NULL). B >= 1. */
fr_status fr_awm_times(const fr_awm_time_cfg *c, uint32_t seed, uint32_t epoch, uint32_t batch,
                       int64_t B, int64_t T,
                       const float *sigmas, // (T,) or NULL (continuous types)
                       int64_t *idx,        // (K,) or NULL
                       float *t);           // (K·B,)

/* ε and x_t of every (time k, sample b) row: ε[r, i] = fr_rng_normal(seed, FR_RNG_AWM_NOISE,
 * epoch, sample_id[b], k, i), x_t = (1 − t_r)·x0_b + t_r·ε (fr_flow_noised_elem, the code's
 * `(1-timesteps) * clean_latents + timesteps * train_random_noise`). Every array is backend
 * memory (sample_id and t uploaded by the caller). */
fr_status fr_awm_noise(fr_backend *be, uint32_t seed, uint32_t epoch,
                       const uint32_t *sample_id, // (B,)
                       int64_t K, int64_t B, int64_t D,
                       const float *x0, // (B, D) final samples of the rollouts
                       const float *t,  // (K·B,)
                       float *eps,      // (K·B, D)
                       float *xt);      // (K·B, D)

/* ---- the objective (§9 "Per-sample, per-t log-prob" ... "Regularizers") ----------------- */

typedef enum { FR_AWM_RATIO_EXP_FIRST = 0, FR_AWM_RATIO_SUM_FIRST = 1 } fr_awm_ratio_mode;
typedef enum { FR_AWM_KL_UNIFORM = 0, FR_AWM_KL_ELBO = 1 } fr_awm_kl_weight;

typedef struct {
    fr_awm_weighting weighting;   /* ghuber */
    double ghuber_power;          /* p: 0.25, in (0, 1] */
    fr_awm_ratio_mode ratio_mode; /* exp_first */
    double clip_range;            /* c: 1, >= 0 */
    double adv_clip_max;          /* 5, > 0 */
    double advantage_max;         /* 1, > 0 */
    double beta;                  /* KL to the base model: 0.001 (geneval), >= 0; 0 off */
    fr_awm_kl_weight kl_weight;   /* Uniform */
    double ema_beta;              /* EMA-KL: 1, >= 0; 0 off */
    fr_awm_kl_weight kl_ema_weight; /* Uniform */
} fr_awm_params;

/* The public geneval config (config/dgx_awm.py geneval_sd3_no_cfg_1node): ghuber p 0.25,
 * exp_first, clip 1, adv_clip_max 5, advantage_max 1, β 0.001 Uniform, ema_beta 1 Uniform. */
fr_awm_params fr_awm_defaults(void);

const char *fr_awm_weighting_name(fr_awm_weighting w);   /* "Uniform", "ghuber", "t", "t**2", "huber" */
fr_status fr_awm_weighting_parse(const char *name, fr_awm_weighting *w);
const char *fr_awm_ratio_name(fr_awm_ratio_mode m);      /* "exp_first", "sum_first" */
fr_status fr_awm_ratio_parse(const char *name, fr_awm_ratio_mode *m);
const char *fr_awm_kl_weight_name(fr_awm_kl_weight k);   /* "Uniform", "ELBO" */
fr_status fr_awm_kl_weight_parse(const char *name, fr_awm_kl_weight *k);

/* Checks every field (FR_ERR_ARG naming the first bad one). */
fr_status fr_awm_params_check(const fr_awm_params *p);

/* Per row r (K·B rows of D), in float64 (compute_log_prob_awm):
 *   m_r = canonical float64 long sum over i of (v − (ε − x0_b))² / D  (awm_elem.h lanes)
 *   ℓ_r = the weighting of m_r (fr_awm_logprob_elem), w_r = −dℓ_r/dm_r (fr_awm_weight_elem)
 * m, logp, w may each be NULL. t, m, logp, w: host; x0, eps, v: backend (the op's rows m
 * cross with fr_d2h). */
fr_status fr_awm_logprob(fr_backend *be, const fr_awm_params *p, int64_t K, int64_t B, int64_t D,
                         const float *t,   // (K·B,)
                         const float *x0,  // (B, D)
                         const float *eps, // (K·B, D)
                         const float *v,   // (K·B, D) model output
                         double *m,        // (K·B,) or NULL
                         double *logp,     // (K·B,) or NULL
                         double *w);       // (K·B,) or NULL

typedef struct {
    double loss;        /* L = L_pg + β·KL + ema_beta·KL_ema (not divided by the accumulation) */
    double policy_loss; /* L_pg */
    double kl;          /* KL to the base (without β); 0 when β = 0 */
    double ema_kl;      /* KL to the EMA adapter (without ema_beta); 0 when ema_beta = 0 */
    double clipfrac;    /* mean(|ρ − 1| > c) over the ratios */
    double ratio_min, ratio_max, ratio_mean;
    double logp_mean;   /* mean ℓ_θ over the K·B rows */
} fr_awm_stats;

/* The loss of one micro-batch and its gradient w.r.t. v (docs/algorithms/awm.md):
 *   Ã_b  = clamp(A_b, ±adv_clip_max)/adv_clip_max·advantage_max        (float64)
 *   exp_first  ρ_r = exp(ℓ_r − ℓold_r), L_pg = mean_r max(−Ã·ρ, −Ã·clip(ρ, 1 ± c))
 *   sum_first  ρ_b = exp(mean_k ℓ − mean_k ℓold), L_pg = mean_b max(...)
 *   KL   = mean_b mean_k [ mean_i (v − v_ref)² / s_r ],  s_r = 1 (Uniform) or the float32
 *          2·std² of ELBO (fr_awm_elbo_two_var); KL_ema the same with v_ema, kl_ema_weight
 *   L    = L_pg + β·KL + ema_beta·KL_ema
 * ℓ_old NULL is the on-policy default (off_policy = False): ℓ_old = ℓ_θ, so ρ = exp(0) = 1
 * exactly and ∇L_pg = −(1/(K·B))·Σ Ã_b·∇ℓ_r.
 *
 * Gradient (grad_v may be NULL), per row, with s_r = R·dL_pg/dℓ_r (R = K·B; exp_first:
 * fr_awm_ppo_dterm_elem of the row, sum_first: that of its sample):
 *   policy  grad_v[r, i] = c_r·(v − (ε − x0))   through fr_fm_loss (flowrl/fm_loss.h), with
 *           the float32 c_r = (float)((−s_r·w_r·gout)·(2/(R·D))) and the float32 difference
 *   KL      + (float)(Σ_terms gout·β_term/(B·K·s_term·D)·2·(v − v_term))   in float64
 * So weighting Uniform with Ã = 1 on-policy and no KL gives c_r = (float)(2/(R·D)), the
 * pretraining gradient of flowrl/fm_loss.h, bit for bit. torch instead rounds once from a
 * float64 chain: flowrl's float32 difference and product differ from it by ~1 ulp.
 *
 * v_ref is read iff β > 0, v_ema iff ema_beta > 0 (the public code runs with both > 0 and
 * adds the EMA-KL only inside `beta > 0`; flowrl treats the two independently). logp (K·B,)
 * receives ℓ_θ (to keep as ℓ_old), ratio (K·B, exp_first, or B, sum_first) the ratios; both
 * may be NULL. K, B, D >= 1. t, logp_old, adv, logp, ratio: host; x0, eps, v, v_ref, v_ema,
 * grad_v: backend (the op's row sums cross with fr_d2h, the per-row gradient scales with
 * fr_h2d). */
fr_status fr_awm_loss(fr_backend *be, const fr_awm_params *p, int64_t K, int64_t B, int64_t D,
                      const float *t,         // (K·B,)
                      const float *x0,        // (B, D)
                      const float *eps,       // (K·B, D)
                      const float *v,         // (K·B, D) model output
                      const float *v_ref,     // (K·B, D) or NULL (β = 0)
                      const float *v_ema,     // (K·B, D) or NULL (ema_beta = 0)
                      const double *logp_old, // (K·B,) or NULL: on-policy
                      const float *adv,       // (B,) unclamped advantages
                      double gout,
                      float *grad_v,          // (K·B, D) or NULL
                      double *logp,           // (K·B,) or NULL
                      double *ratio,          // (K·B,) / (B,) or NULL
                      fr_awm_stats *stats);

/* ---- the EMA adapter (§9 "EMA-KL") ------------------------------------------------------ */

typedef enum { FR_AWM_DECAY_LINEAR = 0, FR_AWM_DECAY_CONSTANT = 1 } fr_awm_decay_type;

/* d = min(kl_ema_decay, 0.001·global_step) ("linear", the default, kl_ema_decay 0.3) or
 * kl_ema_decay ("constant"), in float64 as Python. global_step counts optimizer steps. */
double fr_awm_ema_decay(fr_awm_decay_type type, double kl_ema_decay, int64_t global_step);

/* ema[i] ← ema[i]·(float)d + theta[i]·(float)(1 − d) (fr_awm_ema_elem), after each epoch.
 * d in [0, 1]. theta, ema: backend memory. */
fr_status fr_awm_ema_update(fr_backend *be, int64_t n, double d,
                            const float *theta, // (n,)
                            float *ema);        // (n,)

#endif
