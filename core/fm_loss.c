/* The rectified-flow matching loss shared by pretraining and AWM (flowrl/fm_loss.h). */
#include "flowrl/fm_loss.h"

fr_status fr_fm_loss(fr_backend *be, int64_t R, int64_t D, const float *v, const float *target,
                     const float *row_scale, float *loss, float *grad)
{
    if (R < 1 || D < 1 || R > INT64_MAX / D || R * D > (int64_t)1 << 40)
        return fr_fail(FR_ERR_ARG, "fr_fm_loss: shape (%lld, %lld), expected R >= 1, D >= 1", (long long)R,
                       (long long)D);
    if (!v || !target || (loss && !grad)) return fr_fail(FR_ERR_ARG, "fr_fm_loss: NULL array");
    if (!loss) {
        be->ops->fm_loss(R, D, v, target, row_scale, NULL, grad);
        return FR_OK;
    }
    float *dl = fr_dev_floats(be, 1); /* the op's scalar, copied out */
    if (!dl) return FR_ERR_NOMEM;
    be->ops->fm_loss(R, D, v, target, row_scale, dl, grad);
    fr_status s = fr_d2h(be, loss, dl, sizeof *loss);
    fr_dev_free(be, dl);
    return s;
}
