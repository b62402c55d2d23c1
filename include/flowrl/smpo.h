/* SmPO, Smoothed Preference Optimization (arXiv 2506.02698; spec/more.md §4; SMPO
 * `JaydenLyh/SmPO` @ 8922d54 `train.py`; docs/algorithms/smpo.md): Diffusion-DPO
 * (flowrl/pair_dpo.h, MODEL_DIFF) with (1) a preference strength p smoothed by a reward model
 * instead of the hard label and (2) the noise of each sample from a deterministic DDIM inversion
 * (with one ReNoise averaging) instead of a fresh shared ε.
 *
 * Smoothed label of a pair with scores s_w > s_l, lo/hi the scores' range (`min_val`,
 * `max_val`), in float64:
 *   s̃ = (s − lo)/(hi − lo),  p = exp(s̃_w)/(exp(s̃_w) + exp(s̃_l)) = σ(s̃_w − s̃_l)
 * Loss of n pairs, rows [w | l], e_m = mean_D (ε_m − ε̃)² (row_msd_f64, float64), per pair i:
 *   scale_i = ((−0.5·β)·(2p_i − 1))·10      (`-0.5 * args.beta_dpo * (2*probs-1)*10`, left to right)
 *   z_i     = scale_i·((e_θ^w − e_θ^l) − (e_ref^w − e_ref^l))
 *   L       = mean_i softplus(−z_i)          (8-lane mean; softplus of flowrl/pair_dpo.h)
 *   coef[i] = dL/de_θ^w = ((gout·(−scale_i))·σ(−z_i))/n,  coef[n + i] = −coef[i]
 *   dL/dout[r] = (float)(coef[r]·(2/D))·(out_θ[r] − ε̃[r])   (fm_loss with row scales)
 * At θ = ref every z is ±0, L = log 2 and ∇L = (10β(2p − 1)/4)·(∇e_θ^w − ∇e_θ^l)/n; a pair with
 * p = 1/2 (equal scores) gives no gradient (spec/more.md §4 check).
 *
 * Inversion (DDIMInverseScheduler of current diffusers; the pinned 0.20.0's semantics are
 * [unverified]): set_timesteps(S) with leading spacing and steps_offset 1 gives
 * τ_k = k·⌊n_train/S⌋ + 1, k < S ({1, 201, 401, 601, 801} for 1000, 5). The step at τ maps the
 * level τ − Δ (Δ = ⌊n_train/S⌋; ᾱ_0 when τ − Δ < 0, `set_alpha_to_one` false) to τ:
 *   x' = √ᾱ_τ·(x − √(1 − ᾱ_from)·ε)/√ᾱ_from + √(1 − ᾱ_τ)·ε = A·x + B·ε
 * (fr_smpo_inv_coefs: A, B in float64, rounded to float32 once). */
#ifndef FLOWRL_SMPO_H
#define FLOWRL_SMPO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/pair_dpo.h"
#include "flowrl/status.h"

/* The public code's offset of the inverse scheduler's grid (SD1.5's scheduler config). */
#define FR_SMPO_STEPS_OFFSET 1

/* p of a pair with scores s_w, s_l normalised by the range [lo, hi] (above). hi > lo. */
double fr_smpo_prob(double s_w, double s_l, double lo, double hi);

/* The loss of n pairs from their errors (above); p (n,) the pairs' smoothed labels, each in
 * [0, 1]. z (n,), coef (2n,) and st may each be NULL. FR_ERR_ARG for n < 1, a negative or
 * non-finite β, a p outside [0, 1], a non-finite gout or a NULL array. */
fr_status fr_smpo_loss(int64_t n, double beta,
                       const double *p,     // (n,) smoothed labels
                       const double *e,     // (2n,) policy errors [w | l]
                       const double *e_ref, // (2n,) reference errors
                       double gout,
                       double *z,           // (n,) or NULL
                       double *coef,        // (2n,) or NULL: dL/de_θ per row
                       fr_pair_dpo_stats *st);

/* From model outputs: the errors (row_msd_f64), fr_smpo_loss, then (grad not NULL) dL/dout.
 * out, out_ref, target and grad backend memory; e, e_ref, z host (each may be NULL). */
fr_status fr_smpo_rows(fr_backend *be, int64_t n, int64_t D, double beta,
                       const double *p,      // (n,) host
                       const float *out,     // (2n, D) policy ε prediction
                       const float *out_ref, // (2n, D) reference ε prediction
                       const float *target,  // (2n, D) the inverted noise ε̃
                       double gout,
                       float *grad,          // (2n, D) or NULL
                       double *e,            // (2n,) or NULL
                       double *e_ref,        // (2n,) or NULL
                       double *z,            // (n,) or NULL
                       fr_pair_dpo_stats *st);

/* The inverse scheduler's grid: tau (S,) receives τ_k = k·⌊n_train/S⌋ + FR_SMPO_STEPS_OFFSET.
 * FR_ERR_ARG unless 1 <= S <= n_train and every τ_k < n_train. */
fr_status fr_smpo_inv_times(int64_t n_train, int64_t S, int64_t *tau);

/* The inverse step at τ (stride Δ) of an ᾱ table (n_train,) as x' = A·x + B·ε (above). */
void fr_smpo_inv_coefs(const float *alpha_bar, int64_t tau, int64_t delta, float *A, float *B);

#endif
