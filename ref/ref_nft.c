/* DiffusionNFT loops of the op table (flowrl/ops.h; docs/algorithms/nft.md): plain loops
 * over the FR_HOSTDEV element functions of flowrl/nft_elem.h, float64 row means in the lane
 * order of fr_awm_lanes. */
#include "flowrl/nft_elem.h"
#include "ref/ref_internal.h"

static void ref_nft_rows(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                         const float *v, const float *v_old, const float *x0, double *out)
{
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x0 + (r % B) * D;
        fr_nft_row(D, c, t[r], xt + r * D, v + r * D, v_old + r * D, xr, 1, &out[r], &out[2 * R + r]);
        fr_nft_row(D, c, t[r], xt + r * D, v + r * D, v_old + r * D, xr, 0, &out[R + r], &out[3 * R + r]);
    }
}

static void ref_nft_grad(int64_t R, int64_t B, int64_t D, fr_nft_coef c, const float *t, const float *xt,
                         const float *v, const float *v_old, const float *x0, const double *cpn, float *grad)
{
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) {
            int64_t j = r * D + i;
            float x = x0[(r % B) * D + i];
            float dp = fr_nft_x0err_elem(xt[j], t[r], fr_nft_pos_elem(v[j], v_old[j], c), x);
            float dn = fr_nft_x0err_elem(xt[j], t[r], fr_nft_neg_elem(v[j], v_old[j], c), x);
            grad[j] = fr_nft_grad_elem(dp, dn, cpn[r], cpn[R + r]);
        }
}

void fr_ref_fill_nft(fr_ops *ops)
{
    ops->nft_rows = ref_nft_rows;
    ops->nft_grad = ref_nft_grad;
}
