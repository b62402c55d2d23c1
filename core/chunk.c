/* Chunk-GRPO's chunk boundaries (flowrl/chunk.h; docs/algorithms/flow-grpo.md §8). */
#include "flowrl/chunk.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/reduce.h"

/* d_i from the L1 norms num (T, N) = ‖x_{i+1,n} − x_{i,n}‖₁ and den (T, N) = ‖x_{i,n}‖₁. */
static fr_status rel_l1_from_norms(const char *fn, const float *num, const float *den, int64_t T, int64_t N, float *d_out)
{
    for (int64_t i = 0; i < T; i++) {
        double sum = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const double a = num[i * N + n], b = den[i * N + n];
            const double r = b == 0.0 ? (a > 0.0 ? 1.0 : (a == 0.0 ? 0.0 : NAN)) : a / b;
            if (!isfinite(r) || !isfinite(b))
                return fr_fail(FR_ERR_NUMERIC, "%s: step %lld, sample %lld: x_%lld or x_%lld holds a NaN or inf", fn,
                               (long long)i, (long long)n, (long long)i, (long long)(i + 1));
            sum += r;
        }
        d_out[i] = (float)(sum / (double)N);
    }
    return FR_OK;
}

static fr_status check_shape(const char *fn, int64_t T, int64_t N, int64_t D)
{
    if (T < 1 || N < 1 || D < 1 || N > INT64_MAX / D || (T + 1) > INT64_MAX / (N * D))
        return fr_fail(FR_ERR_ARG, "%s: shape (T+1, N, D) with T %lld, N %lld, D %lld, expected each >= 1", fn, (long long)T,
                       (long long)N, (long long)D);
    return FR_OK;
}

fr_status fr_traj_rel_l1(const float *traj, int64_t T, int64_t N, int64_t D, float *d_out)
{
    if (!traj || !d_out) return fr_fail(FR_ERR_ARG, "fr_traj_rel_l1: traj or d_out is NULL");
    FR_TRY(check_shape("fr_traj_rel_l1", T, N, D));
    float *num = malloc((size_t)(2 * T * N + D) * sizeof *num);
    if (!num) return FR_ERR_NOMEM;
    float *den = num + T * N, *tmp = den + T * N;
    for (int64_t i = 0; i < T; i++)
        for (int64_t n = 0; n < N; n++) {
            const float *a = traj + (i * N + n) * D, *b = traj + ((i + 1) * N + n) * D;
            for (int64_t j = 0; j < D; j++) tmp[j] = fabsf(b[j] - a[j]);
            num[i * N + n] = fr_sum_canonical(tmp, D, 1);
            for (int64_t j = 0; j < D; j++) tmp[j] = fabsf(a[j]);
            den[i * N + n] = fr_sum_canonical(tmp, D, 1);
        }
    fr_status s = rel_l1_from_norms("fr_traj_rel_l1", num, den, T, N, d_out);
    free(num);
    return s;
}

fr_status fr_traj_rel_l1_dev(fr_backend *be, const float *traj, int64_t T, int64_t N, int64_t D, float *d_out)
{
    if (!be || !traj || !d_out) return fr_fail(FR_ERR_ARG, "fr_traj_rel_l1_dev: be, traj or d_out is NULL");
    FR_TRY(check_shape("fr_traj_rel_l1_dev", T, N, D));
    float *dv = fr_dev_floats(be, N * D + 2 * T * N), *num = malloc((size_t)(2 * T * N) * sizeof *num);
    fr_status s = dv && num ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        float *tmp = dv, *dnum = dv + N * D, *dden = dnum + T * N; /* pointer arithmetic only */
        const fr_ops *o = be->ops;
        for (int64_t i = 0; i < T; i++) {
            const float *a = traj + i * N * D, *b = traj + (i + 1) * N * D;
            o->binary(FR_BIN_SUB, N * D, b, a, tmp);
            o->unary(FR_UN_ABS, N * D, tmp, tmp);
            o->row_sum(N, D, tmp, dnum + i * N);
            o->unary(FR_UN_ABS, N * D, a, tmp);
            o->row_sum(N, D, tmp, dden + i * N);
        }
        s = fr_d2h(be, num, dnum, (size_t)(2 * T * N) * sizeof *num); /* 2 per-sample scalars per step */
    }
    if (s == FR_OK) s = rel_l1_from_norms("fr_traj_rel_l1_dev", num, num + T * N, T, N, d_out);
    fr_dev_free(be, dv);
    free(num);
    return s;
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
