/* The rectified-flow matching loss shared by pretraining and AWM (flowrl/fm_loss.h). */
#include "flowrl/fm_loss.h"

#include "flowrl/pretrain_elem.h"
#include "flowrl/reduce.h"

fr_status fr_fm_loss(int64_t R, int64_t D, const float *v, const float *target, const float *row_scale,
                     float *loss, float *grad)
{
    if (R < 1 || D < 1 || R > INT64_MAX / D || R * D > (int64_t)1 << 40)
        return fr_fail(FR_ERR_ARG, "fr_fm_loss: shape (%lld, %lld), expected R >= 1, D >= 1", (long long)R,
                       (long long)D);
    if (!v || !target || (loss && !grad)) return fr_fail(FR_ERR_ARG, "fr_fm_loss: NULL array");
    const int64_t n = R * D;
    if (loss) {
        /* the squares go through grad (the caller's (R, D) buffer) before it receives the
         * gradient: diff is recomputed below, the same bits */
        for (int64_t i = 0; i < n; i++) {
            float d = v[i] - target[i];
            grad[i] = d * d;
        }
        *loss = fr_sum_canonical(grad, n, 1) / (float)n;
    }
    if (grad) {
        const float uniform = (float)(2.0 / (double)n);
        for (int64_t r = 0; r < R; r++) {
            float s = row_scale ? row_scale[r] : uniform;
            for (int64_t i = r * D; i < (r + 1) * D; i++) grad[i] = fr_mse_grad_elem(v[i], target[i], s);
        }
    }
    return FR_OK;
}
