/* The trajectory objectives' row entries on opt (issue 15): row_sumsq_diff (the KL's per-row
 * sums of squared differences, in the canonical 8-lane order as opt_reduce.c), kl_grad and
 * logp_backward, on AVX2 where the CPU has it and on the pool's threads; each output row (or
 * element) depends on its own inputs only, so the bits are ref's for any split
 * (docs/determinism.md). Small or odd shapes run ref's entries. */
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

#include "flowrl/grpo_elem.h"
#include "flowrl/reduce.h"
#include "flowrl/ref_backend.h"
#include "flowrl/sampler_elem.h"

/* ref's entries, the fallbacks, filled by fr_opt_traj_rows_fill. */
static fr_ops g_ref;


typedef struct {
    int64_t D;
    const float *a, *b;
    float *out;
} rows2_job;

#if FR_OPT_X86
/* fr_sumsq_diff_canonical on AVX2: lane j of the register is lane j of the canonical order
 * (element c*8 + j), d = a - b rounded to float, lane = fmaf(d, d, lane); a partial last
 * chunk updates only its lanes; then fr_lanes_tree. */
FR_AVX2 static float sumsq_diff_avx2(const float *a, const float *b, int64_t n)
{
    const int64_t n8 = n & ~(int64_t)7;
    __m256 l = _mm256_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        l = _mm256_fmadd_ps(d, d, l);
    }
    if (n8 < n) {
        __m256i m = fr_opt_tail_mask(n - n8);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + n8, m), _mm256_maskload_ps(b + n8, m));
        l = _mm256_blendv_ps(l, _mm256_fmadd_ps(d, d, l), _mm256_castsi256_ps(m));
    }
    float lanes[FR_LANES];
    _mm256_storeu_ps(lanes, l);
    return fr_lanes_tree(lanes);
}
#endif

static void sumsq_part(void *ctx, int64_t b, int64_t e)
{
    const rows2_job *j = (const rows2_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        for (int64_t r = b; r < e; r++) j->out[r] = sumsq_diff_avx2(j->a + r * j->D, j->b + r * j->D, j->D);
        return;
    }
#endif
    g_ref.row_sumsq_diff(e - b, j->D, j->a + b * j->D, j->b + b * j->D, j->out + b);
}

static void opt_row_sumsq_diff(int64_t R, int64_t D, const float *a, const float *b, float *out)
{
    rows2_job j = {D, a, b, out};
    fr_opt_parallel_range(R, 1, fr_opt_min_rows(D), sumsq_part, &j);
}

/* kl_grad: g = gk * (2 * (mean - mean_ref)) (fr_kl_dmu_elem), grad = accumulate ? grad + g : g. */
typedef struct {
    float gk;
    const float *mean, *mean_ref;
    float *grad;
    int accumulate;
} kl_job;

#if FR_OPT_X86
FR_AVX2 static void kl_grad_avx2(const kl_job *j, int64_t b, int64_t e)
{
    const __m256 gk = _mm256_set1_ps(j->gk), two = _mm256_set1_ps(2.0f);
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
        __m256 g = _mm256_mul_ps(gk, _mm256_mul_ps(two, _mm256_sub_ps(_mm256_loadu_ps(j->mean + i),
                                                                       _mm256_loadu_ps(j->mean_ref + i))));
        if (j->accumulate) g = _mm256_add_ps(_mm256_loadu_ps(j->grad + i), g);
        _mm256_storeu_ps(j->grad + i, g);
    }
    for (; i < e; i++) {
        float g = fr_kl_dmu_elem(j->mean[i], j->mean_ref[i], j->gk);
        j->grad[i] = j->accumulate ? j->grad[i] + g : g;
    }
}
#endif

static void kl_part(void *ctx, int64_t b, int64_t e)
{
    const kl_job *j = (const kl_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        kl_grad_avx2(j, b, e);
        return;
    }
#endif
    g_ref.kl_grad(e - b, j->gk, j->mean + b, j->mean_ref + b, j->grad + b, j->accumulate);
}

static void opt_kl_grad(int64_t n, float gk, const float *mean, const float *mean_ref, float *grad, int accumulate)
{
    kl_job j = {gk, mean, mean_ref, grad, accumulate};
    fr_opt_parallel_range(n, 16, 4 * FR_OPT_ROW_MIN_ELEMS, kl_part, &j);
}

/* logp_backward, rows [b, e): gd = fr_logp_row_scale(cps, g_logp[b], D, two_var) once a row,
 * g = gd * (2 * (x_next - mean)) (fr_logp_dmu_elem, the same for cps and Gaussian),
 * grad = accumulate ? grad + g : g. */
typedef struct {
    int64_t D;
    int cps, accumulate;
    float two_var;
    const float *x_next, *mean, *g_logp;
    float *grad;
} logp_bwd_job;

#if FR_OPT_X86
FR_AVX2 static void logp_bwd_rows_avx2(const logp_bwd_job *j, int64_t b, int64_t e)
{
    const __m256 two = _mm256_set1_ps(2.0f);
    for (int64_t r = b; r < e; r++) {
        const float gd = fr_logp_row_scale(j->cps, j->g_logp[r], (float)j->D, j->two_var);
        const __m256 vgd = _mm256_set1_ps(gd);
        int64_t i = r * j->D;
        for (; i + 8 <= (r + 1) * j->D; i += 8) {
            __m256 g = _mm256_mul_ps(vgd, _mm256_mul_ps(two, _mm256_sub_ps(_mm256_loadu_ps(j->x_next + i),
                                                                            _mm256_loadu_ps(j->mean + i))));
            if (j->accumulate) g = _mm256_add_ps(_mm256_loadu_ps(j->grad + i), g);
            _mm256_storeu_ps(j->grad + i, g);
        }
        for (; i < (r + 1) * j->D; i++) {
            float g = fr_logp_dmu_elem(j->cps, j->x_next[i], j->mean[i], gd);
            j->grad[i] = j->accumulate ? j->grad[i] + g : g;
        }
    }
}
#endif

static void logp_bwd_part(void *ctx, int64_t b, int64_t e)
{
    const logp_bwd_job *j = (const logp_bwd_job *)ctx;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        logp_bwd_rows_avx2(j, b, e);
        return;
    }
#endif
    g_ref.logp_backward(e - b, j->D, j->cps, j->two_var, j->x_next + b * j->D, j->mean + b * j->D, j->g_logp + b,
                        j->grad + b * j->D, j->accumulate);
}

static void opt_logp_backward(int64_t B, int64_t D, int cps, float two_var, const float *x_next, const float *mean,
                              const float *g_logp, float *grad_mean, int accumulate)
{
    logp_bwd_job j = {D, cps, accumulate, two_var, x_next, mean, g_logp, grad_mean};
    fr_opt_parallel_range(B, 1, fr_opt_min_rows(D), logp_bwd_part, &j);
}

void fr_opt_traj_rows_fill(fr_ops *ops)
{
    fr_ref_fill(&g_ref); /* from ref itself, as fr_opt_rows_fill */
    ops->row_sumsq_diff = opt_row_sumsq_diff;
    ops->kl_grad = opt_kl_grad;
    ops->logp_backward = opt_logp_backward;
}
