/* Flow-matching and AWM loops of the op table (flowrl/ops.h): plain loops over the
 * FR_HOSTDEV element functions of pretrain_elem.h and awm_elem.h. */
#include "flowrl/awm_elem.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/reduce.h"
#include "ref/ref_internal.h"

void fr_ref_fm_loss(int64_t R, int64_t D, const float *v, const float *target, const float *row_scale, float *loss,
                    float *grad)
{
    const int64_t n = R * D;
    if (loss) {
        /* the squares go through grad before it receives the gradient */
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
}

void fr_ref_flow_target(int64_t R, int64_t B, int64_t D, const float *x0, const float *eps, float *target)
{
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x0 + (r % B) * D, *er = eps + r * D;
        for (int64_t j = 0; j < D; j++) target[r * D + j] = fr_flow_target_elem(xr[j], er[j]);
    }
}

void fr_ref_awm_sqerr(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0, double *m)
{
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x0 + (r % B) * D, *er = eps + r * D, *vr = v + r * D;
        fr_awm_lanes acc;
        fr_awm_lanes_zero(&acc);
        for (int64_t i = 0; i < D; i++) fr_awm_lanes_add(&acc, i, fr_awm_sqerr_elem(vr[i], er[i], xr[i]));
        m[r] = fr_awm_lanes_sum(&acc) / (double)D;
    }
}

void fr_ref_row_msd_f64(int64_t R, int64_t D, const float *a, const float *b, double *m)
{
    for (int64_t r = 0; r < R; r++) {
        fr_awm_lanes acc;
        fr_awm_lanes_zero(&acc);
        for (int64_t i = 0; i < D; i++) {
            double d = fr_awm_diff_elem(a[r * D + i], b[r * D + i]);
            fr_awm_lanes_add(&acc, i, d * d);
        }
        m[r] = fr_awm_lanes_sum(&acc) / (double)D;
    }
}

void fr_ref_kl_grad_add(int64_t R, int64_t D, const float *a, const float *b1, const double *cb, const float *b2,
                        const double *ce, float *grad)
{
    for (int64_t r = 0; r < R; r++)
        for (int64_t j = r * D; j < (r + 1) * D; j++) {
            double g = 0.0;
            if (b1) g = cb[r] * fr_awm_diff_elem(a[j], b1[j]);
            if (b2) g = g + ce[r] * fr_awm_diff_elem(a[j], b2[j]);
            grad[j] = grad[j] + (float)g;
        }
}

void fr_ref_ema_lerp(int64_t n, double d, const float *theta, float *ema)
{
    const float df = (float)d, omd = (float)(1.0 - d);
    for (int64_t i = 0; i < n; i++) ema[i] = fr_awm_ema_elem(ema[i], theta[i], df, omd);
}
