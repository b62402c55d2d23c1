/* Long-sum reductions of opt, in the canonical orders of flowrl/reduce.h: lane j of an
 * AVX2 register is lane j of the canonical order (element c*8 + j), a partial last chunk
 * updates only its lanes (blend), then fr_lanes_tree. row_sum / row_mean split rows
 * across threads; sum and global_norm are one output each, so they run on one thread
 * (splitting one lane's chain across threads would change its order). */
#include "flowrl/reduce.h"
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

#include <math.h>

#define ROWS_MIN_WORK (1 << 15) /* elements per thread */

#if FR_OPT_X86
FR_AVX2 static float lanes_tree_v(__m256 l)
{
    float a[FR_LANES];
    _mm256_storeu_ps(a, l);
    return fr_lanes_tree(a);
}

/* fr_sum_canonical(x, n, 1) */
FR_AVX2 static float sum_avx2(const float *x, int64_t n)
{
    const int64_t n8 = n & ~(int64_t)7;
    __m256 l = _mm256_setzero_ps();
    for (int64_t j = 0; j < n8; j += 8) l = _mm256_add_ps(l, _mm256_loadu_ps(x + j));
    if (n8 < n) {
        __m256i m = fr_opt_tail_mask(n - n8);
        l = _mm256_blendv_ps(l, _mm256_add_ps(l, _mm256_maskload_ps(x + n8, m)), _mm256_castsi256_ps(m));
    }
    return lanes_tree_v(l);
}

/* fr_sumsq_canonical(x, n): lane = fmaf(x, x, lane) */
FR_AVX2 static float sumsq_avx2(const float *x, int64_t n)
{
    const int64_t n8 = n & ~(int64_t)7;
    __m256 l = _mm256_setzero_ps();
    for (int64_t j = 0; j < n8; j += 8) {
        __m256 v = _mm256_loadu_ps(x + j);
        l = _mm256_fmadd_ps(v, v, l);
    }
    if (n8 < n) {
        __m256i m = fr_opt_tail_mask(n - n8);
        __m256 v = _mm256_maskload_ps(x + n8, m);
        l = _mm256_blendv_ps(l, _mm256_fmadd_ps(v, v, l), _mm256_castsi256_ps(m));
    }
    return lanes_tree_v(l);
}
#endif

static float row_sum1(const float *x, int64_t n)
{
#if FR_OPT_X86
    if (fr_opt_avx2) return sum_avx2(x, n);
#endif
    return fr_sum_canonical(x, n, 1);
}

static float sumsq1(const float *x, int64_t n)
{
#if FR_OPT_X86
    if (fr_opt_avx2) return sumsq_avx2(x, n);
#endif
    return fr_sumsq_canonical(x, n);
}

typedef struct {
    int64_t N;
    const float *x;
    float *out;
    int mean;
} rows_ctx;

static void rows_range(void *arg, int64_t r0, int64_t r1)
{
    const rows_ctx *c = (const rows_ctx *)arg;
    for (int64_t i = r0; i < r1; i++) {
        float s = row_sum1(c->x + i * c->N, c->N);
        /* fr_mean_canonical: n > 0 ? sum / (float)n : 0 */
        c->out[i] = c->mean ? (c->N > 0 ? s / (float)c->N : 0.0f) : s;
    }
}

static void rows(int64_t M, int64_t N, const float *x, float *out, int mean)
{
    if (M <= 0) return;
    rows_ctx c = {N, x, out, mean};
    int64_t min_rows = N > 0 ? (ROWS_MIN_WORK + N - 1) / N : M;
    fr_opt_parallel_range(M, 1, min_rows, rows_range, &c);
}

void fr_opt_row_sum(int64_t M, int64_t N,
                    const float *x, // (M,N)
                    float *out)     // (M,)
{
    rows(M, N, x, out, 0);
}

void fr_opt_row_mean(int64_t M, int64_t N,
                     const float *x, // (M,N)
                     float *out)     // (M,)
{
    rows(M, N, x, out, 1);
}

void fr_opt_sum(int64_t n,
                const float *x, // (n,)
                float *out)     // (1,)
{
    *out = row_sum1(x, n > 0 ? n : 0);
}

/* sqrtf(((0 + s_0) + s_1) + ...), s_t = canonical sum of squares of tensor t. */
void fr_opt_global_norm(int count,
                        const float *const *xs, // count tensors, xs[t] (ns[t],)
                        const int64_t *ns,      // (count,)
                        float *out)             // (1,)
{
    float acc = 0.0f;
    for (int t = 0; t < count; t++) acc = acc + sumsq1(xs[t], ns[t] > 0 ? ns[t] : 0);
    *out = sqrtf(acc);
}
