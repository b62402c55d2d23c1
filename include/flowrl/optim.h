/* Training state over a list of named float32 parameters: AdamW moments, an EMA of the
 * weights, and global-norm gradient clipping. Everything runs through the op table, one
 * op call per parameter tensor, so the bits are those of the chosen backend's ops
 * (which equal ref's). Model-independent: any module that exposes an fr_param list
 * (core/model.c, later the policies and GFlowNet heads) can use it. */
#ifndef FLOWRL_OPTIM_H
#define FLOWRL_OPTIM_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"
#include "flowrl/tensor.h"

/* Floats a tensor of n elements takes in an arena of parameter-shaped tensors (models,
 * AdamW moments, EMA copies): n rounded up to 16, so that each starts on a 64-byte boundary
 * (SIMD loads, coalesced device access). */
static inline int64_t fr_arena_slot(int64_t n) { return (n + 15) / 16 * 16; }

/* One trainable tensor: its safetensors name, its value and its gradient (same shape,
 * F32). The tensors are owned by the module that lists them. */
typedef struct {
    const char *name;
    fr_tensor *value;
    fr_tensor *grad;
} fr_param;

/* ---- AdamW ------------------------------------------------------------------------- */

/* torch.optim.AdamW defaults are lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2;
 * Flow-GRPO uses weight decay 1e-4 (docs/algorithms/flow-grpo.md §2). Weight decay applies to every
 * listed tensor, as AdamW(model.parameters()) does. Double, as torch's Python floats: the
 * step's float scalars (1 - beta2, ...) are derived from these doubles (fr_adamw_prepare);
 * deriving them from float-rounded hyper-parameters moves 1 - beta2 by 1.3e-5 relative. */
typedef struct {
    double beta1, beta2, eps, weight_decay;
} fr_adamw_cfg;

fr_adamw_cfg fr_adamw_cfg_default(void); /* PyTorch's defaults */

/* First and second moments, one pair per parameter (same order and shapes), and the
 * number of updates done so far (0 after init; PyTorch's state["step"]). The moments live
 * in backend memory, views into one arena. */
typedef struct {
    int n;
    int64_t step;
    fr_tensor *m; /* (n) tensors, zero-initialised */
    fr_tensor *v;
    fr_backend *be; /* whose memory holds the arena */
    float *arena;
} fr_adamw_state;

/* Moments for the list ps in be's memory (be must outlive the state). */
fr_status fr_adamw_state_init(fr_backend *be, fr_adamw_state *s, const fr_param *ps, int n);
void fr_adamw_state_free(fr_adamw_state *s);

/* One AdamW update of every parameter from its gradient (PyTorch semantics, see
 * fr_adamw_elem in flowrl/elem.h): step += 1, the step's scalars from fr_adamw_prepare,
 * then be->ops->adamw per tensor. Gradients are left as they are (zero them before the next
 * accumulation). FR_ERR_ARG if the list does not match the state's shapes. */
fr_status fr_adamw_step(fr_backend *be, fr_adamw_state *s, fr_param *ps, int n,
                        const fr_adamw_cfg *cfg, double lr);
/* The same update of elements fr_dist_block(numel, 1, part, parts) of each tensor only (its
 * value and moments; the others are left as they are, for the caller to gather): the elements
 * it computes are fr_adamw_step's bits. part 0 of 1: fr_adamw_step. */
fr_status fr_adamw_step_part(fr_backend *be, fr_adamw_state *s, fr_param *ps, int n, const fr_adamw_cfg *cfg,
                             double lr, int part, int parts);

/* ---- gradient clipping ------------------------------------------------------------- */

/* torch.nn.utils.clip_grad_norm_(params, max_norm) semantics:
 *   total = global_norm(grads)           (sqrt of the sum of per-tensor canonical sums of
 *                                         squares, tensors in list order; computed in
 *                                         backend memory, then one fr_d2h)
 *   coef  = max_norm / (total + 1e-6f)   (float add, then float divide, as torch does in
 *                                         float32)
 *   if coef < 1: every grad *= coef      (the scale entry; torch multiplies by
 *                                         clamp(coef, max=1), the identity when coef >= 1)
 * *total_norm (may be NULL) receives total, the norm before clipping. Differences from
 * torch: torch's total is the 2-norm of the per-tensor 2-norms (a sqrt, then a square per
 * tensor), which can differ from ours in the last bits; and a non-finite total returns
 * FR_ERR_NUMERIC with the gradients untouched (torch would scale them by NaN). */
fr_status fr_clip_grad_norm(fr_backend *be, fr_param *ps, int n, float max_norm,
                            float *total_norm);

/* ---- EMA of the weights ------------------------------------------------------------ */

/* shadow = decay * shadow + (1 - decay) * value, per element
 *        = fmaf(1 - decay, value, decay * shadow)   (be->ops->axpby; 1 - decay rounded to
 *                                                    float once)
 * starting from a copy of the values at init. decay = 0 copies the weights (exactly:
 * fmaf(1, p, 0 * s) = p for finite s). The shadow tensors keep the parameter names. */
typedef struct {
    int n;
    fr_tensor *shadow; /* (n) tensors, views into the arena (backend memory) */
    fr_backend *be;
    float *arena;
} fr_ema;

/* The shadow in be's memory (be must outlive it), a copy of the values. */
fr_status fr_ema_init(fr_backend *be, fr_ema *e, const fr_param *ps, int n);
void fr_ema_free(fr_ema *e);
fr_status fr_ema_update(fr_backend *be, fr_ema *e, const fr_param *ps, int n, float decay);
/* Copies the shadow weights into the parameters' values (e.g. into a second model for
 * evaluation with EMA weights). */
fr_status fr_ema_copy_to(fr_backend *be, const fr_ema *e, fr_param *ps, int n);

/* Sets every gradient to 0 (be->ops->fill). */
void fr_params_zero_grad(fr_backend *be, fr_param *ps, int n);
/* Total element count. */
int64_t fr_params_numel(const fr_param *ps, int n);

#endif
