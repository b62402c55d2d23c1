/* AWM's float64 row entries on opt (issue 15): awm_sqerr and row_msd_f64 (per-row means of
 * squared differences in float64, in flowrl/awm_elem.h's 8-lane order) and kl_grad_add, on AVX2
 * where the CPU has it and on the pool's threads. Lane j of the canonical order (elements
 * i = j mod 8, in order) is lane j of a pair of 4-double registers, and every element sees the
 * scalar code's operations in its order (conversions to double are exact, products and sums
 * round once, nothing fuses), so the bits are ref's (ref/ref_flow.c) for any split: each output
 * row (or element) depends on its own inputs only. */
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

#include "flowrl/awm_elem.h"
#include "flowrl/ref_backend.h"

/* ref's entries, the fallbacks, filled by fr_opt_awm_rows_fill. */
static fr_ops g_ref;

typedef struct {
    int64_t B, D;
    const float *a, *b, *c; /* awm_sqerr: v, eps, x0 (row r mod B); row_msd_f64: a, b */
    double *m;
} msd_job;

#if FR_OPT_X86
/* The 8 lanes of a row: d(i) summed into lane i mod 8 for the full chunks, the tail into the
 * lanes it reaches, then fr_awm_lanes_sum / D. sqerr: d = v - (eps - x0); else d = a - b. */
FR_AVX2 static double msd_row_avx2(const float *a, const float *b, const float *c, int64_t D)
{
    const int64_t n8 = D & ~(int64_t)7;
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
        __m256d alo = _mm256_cvtps_pd(_mm256_castps256_ps128(va)), ahi = _mm256_cvtps_pd(_mm256_extractf128_ps(va, 1));
        __m256d blo = _mm256_cvtps_pd(_mm256_castps256_ps128(vb)), bhi = _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1));
        if (c) { /* (double)eps - (double)x0 */
            __m256 vc = _mm256_loadu_ps(c + i);
            blo = _mm256_sub_pd(blo, _mm256_cvtps_pd(_mm256_castps256_ps128(vc)));
            bhi = _mm256_sub_pd(bhi, _mm256_cvtps_pd(_mm256_extractf128_ps(vc, 1)));
        }
        __m256d dlo = _mm256_sub_pd(alo, blo), dhi = _mm256_sub_pd(ahi, bhi);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(dlo, dlo));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(dhi, dhi));
    }
    fr_awm_lanes acc;
    _mm256_storeu_pd(acc.l, lo);
    _mm256_storeu_pd(acc.l + 4, hi);
    for (int64_t i = n8; i < D; i++) { /* the tail as ref's loops: fr_awm_sqerr_elem, or d = a - b then d * d */
        const double d = fr_awm_diff_elem(a[i], b[i]);
        fr_awm_lanes_add(&acc, i, c ? fr_awm_sqerr_elem(a[i], b[i], c[i]) : d * d);
    }
    return fr_awm_lanes_sum(&acc) / (double)D;
}
#endif

static void msd_part(void *ctx, int64_t r0, int64_t r1)
{
    const msd_job *j = (const msd_job *)ctx;
    const int64_t D = j->D;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        for (int64_t r = r0; r < r1; r++)
            j->m[r] = msd_row_avx2(j->a + r * D, j->b + r * D, j->c ? j->c + (r % j->B) * D : NULL, D);
        return;
    }
#endif
    if (j->c) /* ref's loop reads x0 at row r mod B: hand it rows r0.. with their own x0 rows */
        for (int64_t r = r0; r < r1; r++)
            g_ref.awm_sqerr(1, 1, D, j->a + r * D, j->b + r * D, j->c + (r % j->B) * D, j->m + r);
    else
        g_ref.row_msd_f64(r1 - r0, D, j->a + r0 * D, j->b + r0 * D, j->m + r0);
}

static void opt_awm_sqerr(int64_t R, int64_t B, int64_t D, const float *v, const float *eps, const float *x0, double *m)
{
    if (R <= 0 || D <= 0 || B <= 0) {
        g_ref.awm_sqerr(R, B, D, v, eps, x0, m);
        return;
    }
    msd_job j = {B, D, v, eps, x0, m};
    fr_opt_parallel_range(R, 1, fr_opt_min_rows(D), msd_part, &j);
}

static void opt_row_msd_f64(int64_t R, int64_t D, const float *a, const float *b, double *m)
{
    if (R <= 0 || D <= 0) {
        g_ref.row_msd_f64(R, D, a, b, m);
        return;
    }
    msd_job j = {1, D, a, b, NULL, m};
    fr_opt_parallel_range(R, 1, fr_opt_min_rows(D), msd_part, &j);
}

/* kl_grad_add: per element g = cb[r]·(a − b1) (b1 given), g = g + ce[r]·(a − b2) (b2 given;
 * from 0.0 without b1, as ref), grad = grad + (float)g. */
typedef struct {
    int64_t D;
    const float *a, *b1, *b2;
    const double *cb, *ce;
    float *grad;
} klg_job;

#if FR_OPT_X86
FR_AVX2 static void klg_row_avx2(const klg_job *j, int64_t r)
{
    const int64_t D = j->D, o = r * D, n4 = D & ~(int64_t)3;
    const __m256d cb = _mm256_set1_pd(j->b1 ? j->cb[r] : 0.0), ce = _mm256_set1_pd(j->b2 ? j->ce[r] : 0.0);
    for (int64_t i = 0; i < n4; i += 4) {
        __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(j->a + o + i)), g = _mm256_setzero_pd();
        if (j->b1) g = _mm256_mul_pd(cb, _mm256_sub_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(j->b1 + o + i))));
        if (j->b2) g = _mm256_add_pd(g, _mm256_mul_pd(ce, _mm256_sub_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(j->b2 + o + i)))));
        _mm_storeu_ps(j->grad + o + i, _mm_add_ps(_mm_loadu_ps(j->grad + o + i), _mm256_cvtpd_ps(g)));
    }
    if (n4 < D)
        g_ref.kl_grad_add(1, D - n4, j->a + o + n4, j->b1 ? j->b1 + o + n4 : NULL, j->cb ? j->cb + r : NULL,
                          j->b2 ? j->b2 + o + n4 : NULL, j->ce ? j->ce + r : NULL, j->grad + o + n4);
}
#endif

static void klg_part(void *ctx, int64_t r0, int64_t r1)
{
    const klg_job *j = (const klg_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        for (int64_t r = r0; r < r1; r++) klg_row_avx2(j, r);
        return;
    }
#endif
    const int64_t D = j->D;
    g_ref.kl_grad_add(r1 - r0, D, j->a + r0 * D, j->b1 ? j->b1 + r0 * D : NULL, j->cb ? j->cb + r0 : NULL,
                      j->b2 ? j->b2 + r0 * D : NULL, j->ce ? j->ce + r0 : NULL, j->grad + r0 * D);
}

static void opt_kl_grad_add(int64_t R, int64_t D, const float *a, const float *b1, const double *cb, const float *b2,
                            const double *ce, float *grad)
{
    if (R <= 0 || D <= 0) {
        g_ref.kl_grad_add(R, D, a, b1, cb, b2, ce, grad);
        return;
    }
    klg_job j = {D, a, b1, b2, cb, ce, grad};
    fr_opt_parallel_range(R, 1, fr_opt_min_rows(D), klg_part, &j);
}

void fr_opt_awm_rows_fill(fr_ops *ops)
{
    fr_ref_fill(&g_ref); /* from ref itself, as fr_opt_rows_fill */
    ops->awm_sqerr = opt_awm_sqerr;
    ops->row_msd_f64 = opt_row_msd_f64;
    ops->kl_grad_add = opt_kl_grad_add;
}
