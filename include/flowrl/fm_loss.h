/* The rectified-flow matching loss and its gradient w.r.t. the model output, written ONCE
 * for base-model pretraining (core/pretrain.c) and AWM's policy gradient (core/awm.c,
 * docs/algorithms/awm.md), so that AWM with weighting Uniform, Ã = 1, ρ = 1 and no KL
 * terms gives pretraining's gradient bit for bit by construction (tests/test_awm.c).
 *
 * Over R rows of D elements (docs/algorithms/flow-grpo.md §0: v* = ε − x0):
 *   diff[r, i] = v[r, i] − target[r, i]                        float32
 *   L          = (canonical long sum of diff·diff) / (float)(R·D)  (flowrl/reduce.h; the
 *                squares rounded to float32 first, as `(out − target)²` then `.sum()`)
 *   grad[r, i] = scale_r · diff[r, i]                           fr_mse_grad_elem
 * with scale_r = row_scale[r], or, when row_scale is NULL, (float)(2.0/(double)(R·D)) for
 * every row: torch's mse_loss backward (`2/numel · (input − target)`), pretraining's. */
#ifndef FLOWRL_FM_LOSS_H
#define FLOWRL_FM_LOSS_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

/* loss (may be NULL: not computed) and grad as above; grad may be NULL only when loss is
 * (the squares pass through grad's buffer before it receives the gradient). target is the
 * velocity target ε − x0 formed by fr_flow_target_elem (flowrl/pretrain_elem.h).
 * R >= 1, D >= 1. v, target, row_scale and grad are backend memory; loss is host memory
 * (the op's scalar is copied out with fr_d2h). */
fr_status fr_fm_loss(fr_backend *be, // the op table's fm_loss (ref/ref_flow.c)
                     int64_t R, int64_t D,
                     const float *v,         // (R, D) model output
                     const float *target,    // (R, D) ε − x0
                     const float *row_scale, // (R,) or NULL: 2/(R·D) for every row
                     float *loss,
                     float *grad);           // (R, D) or NULL

#endif
