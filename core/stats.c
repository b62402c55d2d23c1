/* Wilson and Newcombe intervals (flowrl/stats.h). */
#include "flowrl/stats.h"

#include <math.h>

fr_status fr_proportion_ci95(int64_t k, int64_t n, double *lo, double *hi)
{
    if (n < 1 || k < 0 || k > n)
        return fr_fail(FR_ERR_ARG, "proportion interval: %lld of %lld, expected 0 <= k <= n and n >= 1",
                       (long long)k, (long long)n);
    const double z = FR_Z95, z2 = z * z, nn = (double)n, p = (double)k / nn;
    const double denom = 1.0 + z2 / nn;
    const double centre = (p + z2 / (2.0 * nn)) / denom;
    const double half = z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
    /* exact at the ends: rounding must not put k = 0's lower bound below 0 (or k = n above 1) */
    *lo = k == 0 ? 0.0 : centre - half;
    *hi = k == n ? 1.0 : centre + half;
    return FR_OK;
}

fr_status fr_proportion_diff_ci95(int64_t k1, int64_t n1, int64_t k2, int64_t n2, double *lo, double *hi)
{
    double l1, u1, l2, u2;
    FR_TRY(fr_proportion_ci95(k1, n1, &l1, &u1));
    FR_TRY(fr_proportion_ci95(k2, n2, &l2, &u2));
    const double p1 = (double)k1 / (double)n1, p2 = (double)k2 / (double)n2, d = p2 - p1;
    *lo = d - sqrt((p2 - l2) * (p2 - l2) + (u1 - p1) * (u1 - p1));
    *hi = d + sqrt((u2 - p2) * (u2 - p2) + (p1 - l1) * (p1 - l1));
    return FR_OK;
}
