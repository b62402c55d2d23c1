/* The flow-matching forward process over a batch (flowrl/noising.h). */
#include "flowrl/noising.h"

fr_status fr_noise_fm(int64_t B, int64_t D, fr_noise_coord k, const uint32_t *sample_ids, const float *x0,
                      const float *t, float *x_t, float *eps)
{
    if (B < 0 || D < 1 || D > (int64_t)UINT32_MAX || (B > 0 && (!sample_ids || !x0 || !t || !x_t)))
        return fr_fail(FR_ERR_ARG, "fr_noise_fm: shape (%lld, %lld) or a NULL array", (long long)B, (long long)D);
    for (int64_t b = 0; b < B; b++)
        if (!(t[b] >= 0.0f && t[b] <= 1.0f))
            return fr_fail(FR_ERR_ARG, "fr_noise_fm: row %lld: t = %g, expected in [0, 1]", (long long)b, (double)t[b]);
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) {
            const int64_t i = b * D + d;
            x_t[i] = fr_noise_fm_elem(x0[i], t[b], k, sample_ids[b], (uint32_t)d, eps ? &eps[i] : NULL);
        }
    return FR_OK;
}
