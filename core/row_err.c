/* The row-error plumbing of the pair-DPO and DRO losses (flowrl/row_err.h): the errors through
 * the row_msd_f64 entry, the loss's host part, the gradient through fm_loss with row scales. */
#include "flowrl/row_err.h"

#include <stdlib.h>

#include "flowrl/fm_loss.h"
#include "flowrl/ops.h"

fr_status fr_row_err_loss(fr_backend *be, int64_t R, int64_t D, const float *out, const float *out_ref,
                          const float *target, fr_row_err_fn fn, void *ctx, float *grad, double *e, double *e_ref)
{
    if (!be || !out || !target || !fn || !e || (out_ref && !e_ref) || R < 1 || D < 1)
        return fr_fail(FR_ERR_ARG, "fr_row_err_loss: R %lld, D %lld or a NULL argument", (long long)R, (long long)D);
    float *scale = grad ? fr_malloc((size_t)R * sizeof(float)) : NULL;
    double *d_rows = fr_dev_doubles(be, R);
    float *d_scale = grad ? fr_dev_floats(be, R) : NULL;
    fr_status s = d_rows && (!grad || (scale && d_scale)) ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        be->ops->row_msd_f64(R, D, out, target, d_rows);
        s = fr_d2h(be, e, d_rows, (size_t)R * sizeof(double));
    }
    if (s == FR_OK && out_ref) {
        be->ops->row_msd_f64(R, D, out_ref, target, d_rows);
        s = fr_d2h(be, e_ref, d_rows, (size_t)R * sizeof(double));
    }
    if (s == FR_OK) s = fn(ctx, R, D, e, e_ref, scale);
    if (s == FR_OK && grad) {
        s = fr_h2d(be, d_scale, scale, (size_t)R * sizeof(float));
        if (s == FR_OK) s = fr_fm_loss(be, R, D, out, target, d_scale, NULL, grad);
    }
    free(scale);
    fr_dev_free(be, d_rows);
    fr_dev_free(be, d_scale);
    return s;
}
