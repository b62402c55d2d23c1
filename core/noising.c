/* The flow-matching forward process over a batch (flowrl/noising.h). */
#include "flowrl/noising.h"

fr_status fr_noise_fm(fr_backend *be, int64_t B, int64_t D, fr_noise_coord k, const uint32_t *sample_ids,
                      const float *x0, const float *t, float *x_t, float *eps)
{
    if (B < 0 || D < 1 || D > (int64_t)UINT32_MAX || (B > 0 && (!sample_ids || !x0 || !t || !x_t)))
        return fr_fail(FR_ERR_ARG, "fr_noise_fm: shape (%lld, %lld) or a NULL array", (long long)B, (long long)D);
    for (int64_t b = 0; b < B; b++)
        if (!(t[b] >= 0.0f && t[b] <= 1.0f))
            return fr_fail(FR_ERR_ARG, "fr_noise_fm: row %lld: t = %g, expected in [0, 1]", (long long)b, (double)t[b]);
    if (B == 0) return FR_OK;
    /* the per-row scalars cross once */
    uint32_t *ids_d = fr_dev_alloc(be, (size_t)B * sizeof *ids_d);
    float *t_d = fr_dev_floats(be, B);
    fr_status s = ids_d && t_d ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_h2d(be, ids_d, sample_ids, (size_t)B * sizeof *ids_d);
    if (s == FR_OK) s = fr_h2d(be, t_d, t, (size_t)B * sizeof *t_d);
    if (s == FR_OK) be->ops->noise_fm(B, B, D, k.seed, k.purpose, k.c0, k.c2, ids_d, x0, t_d, x_t, eps);
    fr_dev_free(be, ids_d);
    fr_dev_free(be, t_d);
    return s;
}
