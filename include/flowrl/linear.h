/* One linear layer through the op table, with an optional low-rank adapter (LoRA,
 * docs/lora.md): the helper every model (the residual MLP of core/model.c, the DiT) calls for
 * each "z W^T + b", so that an adapter attaches to any linear layer the same way.
 *
 *   y (B,N) = z (B,K) W^T + b                                  no adapter
 *   y (B,N) = (z W^T + b) + (s · (z A^T)) Bᵀ                   adapter A (r,K), B (N,r), s = α / r
 *
 * in this order of operations, each an op entry (so ref = opt = cuda bit for bit):
 *   gemm(0,1) z W^T; bias_add b; gemm(0,1) za = z A^T (B,r); scale zs = s · za;
 *   gemm(0,1, accumulate) y += zs B^T (the fmaf chain over r starts from y).
 * PEFT computes result + lora_B(lora_A(x)) · s (peft/tuners/lora/layer.py, Linear.forward):
 * the same sum, rounded in another order; the PyTorch test (python/tests/test_lora_torch.py)
 * states the tolerance.
 *
 * Backward, given dy (B,N):
 *   dW (N,K) += dyᵀ z, db (N,) += rows of dy        only when dw / db are given (a frozen base
 *                                                   passes NULL and skips both GEMMs)
 *   dB (N,r) += dyᵀ zs;  dzs (B,r) = dy B;  dza = s · dzs;  dA (r,K) += dzaᵀ z
 *   dz (B,K) = dy W, then dz += dza A (accumulate)  unless dz is NULL
 * Every gradient continues its canonical chain from its old value (micro-batches accumulate). */
#ifndef FLOWRL_LINEAR_H
#define FLOWRL_LINEAR_H

#include <stdint.h>

#include "flowrl/backend.h"

/* One adapter of one layer, backend memory. ga / gb NULL: the adapter is not trained (the
 * backward still passes the gradient through it to dz). */
typedef struct {
    int64_t r;       /* rank */
    float scale;     /* α / r */
    const float *a;  /* (r,K) lora_A.weight */
    const float *b;  /* (N,r) lora_B.weight */
    float *ga, *gb;  /* (r,K), (N,r) gradients, or NULL */
} fr_lora_ad;

/* y (B,N) = z W^T + b (+ the adapter's term when ad is not NULL). zs (B,r): where the scaled
 * s · z A^T is kept for the backward (needed only with an adapter). y aliases nothing. */
void fr_linear_fwd(fr_backend *be, int64_t B, int64_t N, int64_t K,
                   const float *z,        // (B,K)
                   const float *w,        // (N,K)
                   const float *bias,     // (N,) or NULL
                   const fr_lora_ad *ad,  // or NULL
                   float *zs,             // (B,r) when ad
                   float *y);             // (B,N)

/* The backward above. zs: the forward's; dzs (B,r) scratch (when ad). dw / db NULL: no base
 * gradient. dz NULL: no input gradient. */
void fr_linear_bwd(fr_backend *be, int64_t B, int64_t N, int64_t K,
                   const float *z,        // (B,K)
                   const float *w,        // (N,K)
                   const float *dy,       // (B,N)
                   float *dw,             // (N,K) or NULL
                   float *db,             // (N,) or NULL
                   const fr_lora_ad *ad,  // or NULL
                   const float *zs,       // (B,r) when ad
                   float *dzs,            // (B,r) scratch when ad
                   float *dz);            // (B,K) or NULL

#endif
