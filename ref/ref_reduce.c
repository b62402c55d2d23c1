/* Reductions, in the canonical long-sum orders of flowrl/reduce.h. */
#include "flowrl/reduce.h"
#include "ref/ref_internal.h"

void fr_ref_row_sum(int64_t M, int64_t N,
                    const float *x, // (M,N)
                    float *out)     // (M,)
{
    for (int64_t i = 0; i < M; i++) out[i] = fr_sum_canonical(x + i * N, N, 1);
}

void fr_ref_row_mean(int64_t M, int64_t N,
                     const float *x, // (M,N)
                     float *out)     // (M,)
{
    for (int64_t i = 0; i < M; i++) out[i] = fr_mean_canonical(x + i * N, N);
}

void fr_ref_sum(int64_t n,
                const float *x, // (n,)
                float *out)     // (1,)
{
    *out = fr_sum_canonical(x, n, 1);
}

/* sqrtf(((0 + s_0) + s_1) + ...), s_t = fr_sumsq_canonical(xs[t]): tensors in index
 * order with plain adds. */
void fr_ref_global_norm(int count,
                        const float *const *xs, // count tensors, xs[t] (ns[t],)
                        const int64_t *ns,      // (count,)
                        float *out)             // (1,)
{
    float acc = 0.0f;
    for (int t = 0; t < count; t++) acc = acc + fr_sumsq_canonical(xs[t], ns[t]);
    *out = sqrtf(acc);
}
