/* Losses on per-row denoising errors of a policy and a frozen reference, the shared plumbing:
 * row errors in, per-row coefficients out, the gradient back. Written once for the pair-DPO
 * losses (flowrl/pair_dpo.h: Diffusion-DPO, Flow-DPO), Diffusion-DRO's hinge (flowrl/dro.h) and
 * Flow-RWR's weighted regression (flowrl/rwr.h, no reference); each loss keeps its own arithmetic
 * in a callback.
 *
 * Over R rows of D values, for m ∈ {θ, ref}:
 *   e_m[r]      = mean_D (out_m[r] − target[r])²        float64 (the row_msd_f64 entry: 8 lanes)
 *   scale[r]    = dL/de_θ[r] · (2/D), rounded to float32 by the loss (the callback)
 *   dL/dout[r]  = scale[r] · (out_θ[r] − target[r])      (fr_fm_loss with row scales)
 * The reference's output gets no gradient (it is frozen).
 *
 * Crossings (flowrl/backend.h): two fr_d2h of R doubles (e, then e_ref) and, with a gradient,
 * one fr_h2d of R floats (the scales). out, out_ref, target and grad are backend memory; e,
 * e_ref and the scales are host memory. */
#ifndef FLOWRL_ROW_ERR_H
#define FLOWRL_ROW_ERR_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

/* The loss's host part: from e, e_ref (R,) its own statistics into ctx and, when scale is not
 * NULL, the float32 row scales (R,) of the gradient. A status other than FR_OK stops
 * fr_row_err_loss and is returned. */
typedef fr_status (*fr_row_err_fn)(void *ctx, int64_t R, int64_t D,
                                   const double *e,     // (R,) policy errors
                                   const double *e_ref, // (R,) reference errors
                                   float *scale);       // (R,) or NULL

/* e and e_ref (host, each R doubles) receive the errors, then fn runs (scale NULL when grad is
 * NULL), then grad (R, D) receives dL/dout. out_ref may be NULL (a loss without a reference):
 * then e_ref is neither read nor written and may be NULL, and fn gets e_ref NULL. R >= 1, D >= 1:
 * the callers check their shapes. */
fr_status fr_row_err_loss(fr_backend *be, int64_t R, int64_t D,
                          const float *out,     // (R, D) policy output
                          const float *out_ref, // (R, D) reference output, or NULL
                          const float *target,  // (R, D) ε, ε − x0 or the buffer's ε̂
                          fr_row_err_fn fn, void *ctx,
                          float *grad,          // (R, D) or NULL
                          double *e,            // (R,) host
                          double *e_ref);       // (R,) host, or NULL without out_ref

#endif
