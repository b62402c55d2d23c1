/* DDO, Direct Discriminative Optimization (arXiv 2503.01103; spec/more.md §2, its verified parts;
 * docs/algorithms/ddo.md): a GAN-style objective without a discriminator network. The implicit
 * discriminator is d_θ(x) = σ(β·Δ_θ(x)) with Δ_θ the log-likelihood ratio of the policy to a frozen
 * reference, estimated on one (t, ε) per row shared by θ and ref [secondary]:
 *   Δ[r] = −(e_θ[r] − e_ref[r]),  e_m[r] = mean_D (out_m[r] − target[r])²   (float64, row_msd_f64)
 * (w(t) = 1 and the per-element mean are [flowrl choice]: the paper's flow-model weighting is
 * [unverified]). Rows [positives | negatives]: n_pos real data rows, n_neg rows of the reference's
 * samples. Per row, in float64 (softplus and σ of flowrl/pair_dpo.h):
 *   L = mean_pos softplus(−β·Δ) + α·mean_neg softplus(β·Δ)
 *     = −E_data log σ(βΔ) − α·E_ref log σ(−βΔ)                                    [secondary]
 *   dL/de_θ[r] = gout·β·σ(−β·Δ[r]) / n_pos (positive),  −gout·α·β·σ(β·Δ[r]) / n_neg (negative)
 *   dL/dout[r] = (float)(dL/de_θ[r]·(2/D)) · (out_θ[r] − target[r])   (fm_loss with row scales)
 * The means are 8-lane sums (flowrl/awm_elem.h). At θ = ref every Δ is 0: L = (1 + α)·log 2 and
 * ∇L = (β/2)·(E_data ∇e_θ − α·E_ref ∇e_θ) (spec/more.md §2 check [derived]). */
#ifndef FLOWRL_DDO_H
#define FLOWRL_DDO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

typedef struct {
    double loss;
    double d_pos, d_neg;   /* mean σ(βΔ) on positives / negatives: the implicit discriminator */
    double delta_pos, delta_neg; /* mean Δ on positives / negatives */
} fr_ddo_stats;

/* From the errors e, e_ref (n_pos + n_neg,): the loss and, coef not NULL, dL/de_θ per row.
 * FR_ERR_ARG for n_pos < 1 or n_neg < 1, α < 0, β <= 0 or non-finite, a non-finite gout. */
fr_status fr_ddo_loss(int64_t n_pos, int64_t n_neg, double alpha, double beta,
                      const double *e,     // (n_pos + n_neg,) policy errors
                      const double *e_ref, // (n_pos + n_neg,) reference errors
                      double gout,
                      double *coef,        // (n_pos + n_neg,) or NULL
                      fr_ddo_stats *st);   // or NULL

/* From model outputs: the errors (row_msd_f64), fr_ddo_loss, then (grad not NULL) dL/dout.
 * out, out_ref, target, grad backend memory (R = n_pos + n_neg rows); e, e_ref host (may be NULL). */
fr_status fr_ddo_rows(fr_backend *be, int64_t n_pos, int64_t n_neg, int64_t D, double alpha, double beta,
                      const float *out,     // (R, D) policy output
                      const float *out_ref, // (R, D) reference output
                      const float *target,  // (R, D) ε − x0
                      double gout,
                      float *grad,          // (R, D) or NULL
                      double *e,            // (R,) or NULL
                      double *e_ref,        // (R,) or NULL
                      fr_ddo_stats *st);

#endif
