/* The DiT's linear layers (core/dit.c): flowrl/linear.h's layer for the weight at list index w,
 * with the LoRA adapter of a view that adapts w (docs/algorithms/dit.md §5, docs/lora.md) and
 * the many-process dW split (m->dw_parts, docs/determinism.md "Many processes") as the MLP's
 * linear_bwd in core/model.c. */
#include "flowrl/dist.h"
#include "flowrl/linear.h"
#include "flowrl/lora.h"
#include "model_internal.h"

static const float *val(const fr_model *m, int i) { return (const float *)m->w[i].data; }

/* The adapter of layer w in view m (*ad) and its zs slot, or NULL. */
static const fr_lora_ad *adapter(const fr_model *m, const fr_lora_scratch *ls, int w, fr_lora_ad *ad, float **zs)
{
    if (!fr_lora_layer(m, w, ad)) return NULL;
    *zs = ls->zs + (ls->per_target ? m->lora->tidx[w] : 0) * ls->slot;
    return ad;
}

void fr_model_linear(const fr_model *m, fr_backend *be, const fr_lora_scratch *ls, int w, int64_t B,
                     const float *z, // (B,K)
                     float *y)       // (B,N)
{
    fr_lora_ad ad;
    float *zs = NULL;
    const fr_lora_ad *a = adapter(m, ls, w, &ad, &zs);
    fr_linear_fwd(be, B, m->w[w].shape[0], m->w[w].shape[1], z, val(m, w), val(m, w + 1), a, zs, y);
}

fr_status fr_model_linear_bwd(fr_model *m, fr_backend *be, const fr_lora_scratch *ls, int w, int64_t B,
                              const float *z,  // (B,K) the forward's input
                              const float *dy, // (B,N)
                              float *dz,       // (B,K) or NULL
                              int dz_accumulate)
{
    const int64_t N = m->w[w].shape[0], K = m->w[w].shape[1];
    fr_lora_ad ad;
    float *zs = NULL;
    const fr_lora_ad *a = adapter(m, ls, w, &ad, &zs);
    /* a LoRA view's base is frozen: no dW, no db */
    float *dw = m->lora ? NULL : (float *)m->grads[w].data, *db = m->lora ? NULL : (float *)m->grads[w + 1].data;
    if (fr_model_dw_split(m, w)) { /* this process's rows of dW only */
        int64_t lo, hi;
        fr_dist_block(N, 1, m->dw_part, m->dw_parts, &lo, &hi);
        FR_TRY(fr_model_dw_rows(be, B, N, K, lo, hi, z, dy, dw));
        dw = NULL; /* done: fr_linear_bwd skips the whole dW */
    }
    if (!dz_accumulate) {
        fr_linear_bwd(be, B, N, K, z, val(m, w), dy, dw, db, a, zs, ls->dzs, dz);
        return FR_OK;
    }
    /* dz += dy W (+ dza A): the gradient part, then the input gradient's gemms continuing dz's
     * chain in fr_linear_bwd's order */
    fr_linear_bwd(be, B, N, K, z, val(m, w), dy, dw, db, a, zs, ls->dzs, NULL);
    be->ops->gemm(0, 0, B, K, N, dy, val(m, w), dz, 1);
    if (a) be->ops->gemm(0, 0, B, K, a->r, ls->dzs, a->a, dz, 1);
    return FR_OK;
}
