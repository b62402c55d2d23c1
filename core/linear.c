/* The linear layer with an optional LoRA adapter (flowrl/linear.h), op entries only. */
#include "flowrl/linear.h"

void fr_linear_fwd(fr_backend *be, int64_t B, int64_t N, int64_t K, const float *z, const float *w, const float *bias,
                   const fr_lora_ad *ad, float *zs, float *y)
{
    const fr_ops *op = be->ops;
    op->gemm(0, 1, B, N, K, z, w, y, 0);
    if (bias) op->bias_add(B, N, y, bias);
    if (!ad) return;
    op->gemm(0, 1, B, ad->r, K, z, ad->a, zs, 0); /* z A^T */
    op->scale(B * ad->r, ad->scale, zs, zs);      /* s · z A^T */
    op->gemm(0, 1, B, N, ad->r, zs, ad->b, y, 1); /* y += zs B^T */
}

void fr_linear_bwd(fr_backend *be, int64_t B, int64_t N, int64_t K, const float *z, const float *w, const float *dy,
                   float *dw, float *db, const fr_lora_ad *ad, const float *zs, float *dzs, float *dz)
{
    const fr_ops *op = be->ops;
    if (dw) op->gemm(1, 0, N, K, B, dy, z, dw, 1);
    if (db) op->bias_grad(B, N, dy, db, 1);
    if (ad) {
        if (ad->gb) op->gemm(1, 0, N, ad->r, B, dy, zs, ad->gb, 1); /* dB += dyᵀ zs */
        op->gemm(0, 0, B, ad->r, N, dy, ad->b, dzs, 0);             /* dzs = dy B */
        op->scale(B * ad->r, ad->scale, dzs, dzs);                  /* dza = s · dzs */
        if (ad->ga) op->gemm(1, 0, ad->r, K, B, dzs, z, ad->ga, 1); /* dA += dzaᵀ z */
    }
    if (!dz) return;
    op->gemm(0, 0, B, K, N, dy, w, dz, 0);
    if (ad) op->gemm(0, 0, B, K, ad->r, dzs, ad->a, dz, 1); /* dz += dza A */
}
