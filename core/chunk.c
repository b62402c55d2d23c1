/* Chunk-GRPO's chunk boundaries (flowrl/chunk.h; docs/algorithms/flow-grpo.md §8). */
#include "flowrl/chunk.h"

#include <math.h>

/* r of one sample at one step: ‖b − a‖₁ / ‖a‖₁ over D elements, the guard at ‖a‖₁ = 0. */
static double rel_l1(const float *a, const float *b, int64_t D)
{
    double num = 0.0, den = 0.0;
    for (int64_t j = 0; j < D; j++) {
        num += fabs((double)b[j] - (double)a[j]);
        den += fabs((double)a[j]);
    }
    if (den == 0.0) return num > 0.0 ? 1.0 : (num == 0.0 ? 0.0 : NAN);
    return num / den;
}

fr_status fr_traj_rel_l1(const float *traj, int64_t T, int64_t N, int64_t D, float *d_out)
{
    if (!traj || !d_out) return fr_fail(FR_ERR_ARG, "fr_traj_rel_l1: traj or d_out is NULL");
    if (T < 1 || N < 1 || D < 1 || N > INT64_MAX / D || (T + 1) > INT64_MAX / (N * D))
        return fr_fail(FR_ERR_ARG, "fr_traj_rel_l1: shape (T+1, N, D) with T %lld, N %lld, D %lld, expected each >= 1",
                       (long long)T, (long long)N, (long long)D);
    for (int64_t i = 0; i < T; i++) {
        double sum = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const double r = rel_l1(traj + (i * N + n) * D, traj + ((i + 1) * N + n) * D, D);
            if (!isfinite(r))
                return fr_fail(FR_ERR_NUMERIC, "fr_traj_rel_l1: step %lld, sample %lld: x_%lld or x_%lld holds a NaN or inf",
                               (long long)i, (long long)n, (long long)i, (long long)(i + 1));
            sum += r;
        }
        d_out[i] = (float)(sum / (double)N);
    }
    return FR_OK;
}

fr_status fr_chunk_bounds(const float *d, int64_t T, int64_t K, int64_t *start)
{
    if (!d || !start) return fr_fail(FR_ERR_ARG, "fr_chunk_bounds: d or start is NULL");
    if (T < 1 || K < 1 || K > T)
        return fr_fail(FR_ERR_ARG, "fr_chunk_bounds: %lld chunks of %lld steps, expected 1 <= chunks <= steps",
                       (long long)K, (long long)T);
    double total = 0.0;
    for (int64_t i = 0; i < T; i++) {
        if (!(d[i] >= 0.0f && d[i] < INFINITY))
            return fr_fail(FR_ERR_ARG, "fr_chunk_bounds: d[%lld] = %g, expected a finite value >= 0", (long long)i,
                           (double)d[i]);
        total += (double)d[i];
    }
    const int uniform = total == 0.0; /* no dynamics to follow: every step weighs 1 */
    if (uniform) total = (double)T;
    start[0] = 0;
    int64_t j = 0;  /* j_k: the least j with K·P_j >= k·Σ d, found by one pass over j */
    double P = 0.0; /* P_j */
    for (int64_t k = 1; k < K; k++) {
        while (j < T && (double)K * P < (double)k * total) {
            P += uniform ? 1.0 : (double)d[j];
            j++;
        }
        int64_t s = j;
        if (s < start[k - 1] + 1) s = start[k - 1] + 1;
        if (s > T - K + k) s = T - K + k;
        start[k] = s;
    }
    start[K] = T;
    return FR_OK;
}
