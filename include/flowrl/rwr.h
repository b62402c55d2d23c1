/* Flow-RWR, reward-weighted regression on flow matching (spec/more.md §7.2,
 * docs/algorithms/flow-rwr.md): the flow-matching loss on the policy's own samples, each row
 * weighted by a function of its sample's reward.
 *
 * Weights of N samples in groups of G (rows s = g·G + j, one prompt per group), τ the temperature:
 *   EXP      w_s = exp(r_s / τ)                                  (VideoAlign §Flow-RWR [secondary];
 *                                                                 τ = 1 is its exp(r))
 *   SOFTMAX  w_s = G·exp((r_s − max_g r)/τ) / Σ_{j∈g} exp((r_j − max_g r)/τ)
 *                                                                (Flow-GRPO appendix baseline
 *                                                                 [secondary]; the factor G, mean
 *                                                                 weight 1, is a flowrl choice)
 * in float64 with flowrl's own exp (flowrl/awm_elem.h); sums in the 8-lane order.
 *
 * Loss over R rows of D values (a row: a sample at one time t, x_t = (1 − t)·x0 + t·ε,
 * target ε − x0; the public form drops VideoAlign's (1 − t)² factor):
 *   e[r]       = mean_D (v[r] − target[r])²                   float64 (row_msd_f64)
 *   L          = (Σ_r w[r]·e[r]) / R                          (8-lane order)
 *   dL/dv[r]   = (float)(gout·w[r]·(2/(R·D))) · (v[r] − target[r])   (fm_loss with row scales)
 * With every w = 1 and gout = 1 the row scale is (float)(2/(R·D)): pretraining's flow-matching
 * gradient bit for bit (flowrl/fm_loss.h). */
#ifndef FLOWRL_RWR_H
#define FLOWRL_RWR_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

typedef enum { FR_RWR_EXP = 0, FR_RWR_SOFTMAX = 1 } fr_rwr_weighting;

/* w (N,) from reward (N,), N a multiple of G (SOFTMAX). FR_ERR_ARG for a bad mode, N, G or τ
 * <= 0; FR_ERR_NUMERIC (naming the sample) for a non-finite reward or an infinite weight. */
fr_status fr_rwr_weights(fr_rwr_weighting mode, double tau, int64_t N, int64_t G,
                         const float *reward, // (N,) host
                         double *w);          // (N,) host

typedef struct {
    double loss;      /* L above */
    double e_mean;    /* mean_r e[r], the unweighted flow-matching error */
} fr_rwr_stats;

/* L and (grad not NULL) dL/dv of R rows. v, target and grad are backend memory; w and e (R,)
 * host (e may be NULL). FR_ERR_ARG for R < 1, D < 1, a NULL array or a non-finite gout. */
fr_status fr_rwr_rows(fr_backend *be, int64_t R, int64_t D,
                      const double *w,      // (R,) host: the row's sample weight
                      const float *v,       // (R, D) policy output
                      const float *target,  // (R, D) ε − x0
                      double gout,
                      float *grad,          // (R, D) or NULL
                      double *e,            // (R,) host, or NULL
                      fr_rwr_stats *st);    // or NULL

const char *fr_rwr_weighting_name(fr_rwr_weighting m); /* "exp", "softmax"; NULL otherwise */

#endif
