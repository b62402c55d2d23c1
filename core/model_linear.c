/* The DiT's linear layers (core/dit.c): flowrl/linear.h's layer for the weight at list index w,
 * with the many-process dW split (m->dw_parts, docs/determinism.md "Many processes") as the
 * MLP's linear_bwd in core/model.c. No LoRA adapter yet (fr_lora_new refuses a DiT base;
 * docs/algorithms/dit.md §5 says how one attaches). */
#include "flowrl/dist.h"
#include "flowrl/linear.h"
#include "model_internal.h"

static const float *val(const fr_model *m, int i) { return (const float *)m->w[i].data; }

void fr_model_linear(const fr_model *m, fr_backend *be, int w, int64_t B,
                     const float *z, // (B,K)
                     float *y)       // (B,N)
{
    fr_linear_fwd(be, B, m->w[w].shape[0], m->w[w].shape[1], z, val(m, w), val(m, w + 1), NULL, NULL, y);
}

fr_status fr_model_linear_bwd(fr_model *m, fr_backend *be, int w, int64_t B,
                              const float *z,  // (B,K) the forward's input
                              const float *dy, // (B,N)
                              float *dz,       // (B,K) or NULL
                              int dz_accumulate)
{
    const int64_t N = m->w[w].shape[0], K = m->w[w].shape[1];
    float *dw = (float *)m->grads[w].data;
    if (fr_model_dw_split(m, w)) { /* this process's rows of dW only */
        int64_t lo, hi;
        fr_dist_block(N, 1, m->dw_part, m->dw_parts, &lo, &hi);
        FR_TRY(fr_model_dw_rows(be, B, N, K, lo, hi, z, dy, dw));
        dw = NULL; /* done: fr_linear_bwd skips the whole dW */
    }
    if (!dz_accumulate) {
        fr_linear_bwd(be, B, N, K, z, val(m, w), dy, dw, (float *)m->grads[w + 1].data, NULL, NULL, NULL, dz);
        return FR_OK;
    }
    /* dz += dy W: the gradient part, then the input gradient's gemm continuing dz's chain */
    fr_linear_bwd(be, B, N, K, z, val(m, w), dy, dw, (float *)m->grads[w + 1].data, NULL, NULL, NULL, NULL);
    be->ops->gemm(0, 0, B, K, N, dy, val(m, w), dz, 1);
    return FR_OK;
}
