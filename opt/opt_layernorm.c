/* Layer norm of opt, bitwise equal to ref/ref_layernorm.c.
 *
 * Row statistics are canonical long sums (flowrl/reduce.h): lane j of the AVX2 register
 * is lane j of the canonical order (element c*8 + j goes to lane j), a partial last
 * chunk updates only its lanes (blend), and the 8 lanes meet in fr_lanes_tree. Rows are
 * split across threads (each row's statistics stay on one thread).
 *
 * In the backward, dgamma/dbeta are batch reductions (rows in order), so they run as a
 * second pass with threads owning column blocks and vectors across columns. */
#include "flowrl/elem.h"
#include "flowrl/reduce.h"
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

#define LN_MIN_WORK (1 << 14) /* elements per thread */

typedef struct {
    int64_t M, D;
    const float *x, *gamma, *beta, *mean, *rstd, *dy;
    float eps;
    float *y, *mean_out, *rstd_out, *dx, *dgamma, *dbeta;
    int accumulate;
} ln_ctx;

/* ---- forward ------------------------------------------------------------------------------ */

static void ln_fwd_rows_scalar(const ln_ctx *c, int64_t r0, int64_t r1)
{
    int64_t D = c->D;
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D;
        float mu = fr_mean_canonical(xr, D);
        float var = D > 0 ? fr_sumsq_centered_canonical(xr, D, mu) / (float)D : 0.0f;
        float rs = fr_layernorm_rstd(var, c->eps);
        for (int64_t j = 0; j < D; j++) {
            float xhat = fr_layernorm_xhat(xr[j], mu, rs);
            c->y[i * D + j] = fr_layernorm_y(xhat, c->gamma ? c->gamma[j] : 1.0f,
                                             c->beta ? c->beta[j] : 0.0f);
        }
        c->mean_out[i] = mu;
        c->rstd_out[i] = rs;
    }
}

#if FR_OPT_X86
FR_AVX2 static float lanes_tree_avx2(__m256 l)
{
    float a[FR_LANES];
    _mm256_storeu_ps(a, l);
    return fr_lanes_tree(a);
}

FR_AVX2 static void ln_fwd_rows_avx2(const ln_ctx *c, int64_t r0, int64_t r1)
{
    const int64_t D = c->D, D8 = D & ~(int64_t)7;
    const __m256i tail = fr_opt_tail_mask(D - D8);
    const __m256 tailf = _mm256_castsi256_ps(tail);
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D;
        float *yr = c->y + i * D;
        /* mean: lane j += x[j + 8c] (fr_sum_canonical), / D */
        __m256 l = _mm256_setzero_ps();
        for (int64_t j = 0; j < D8; j += 8) l = _mm256_add_ps(l, _mm256_loadu_ps(xr + j));
        if (D8 < D)
            l = _mm256_blendv_ps(l, _mm256_add_ps(l, _mm256_maskload_ps(xr + D8, tail)), tailf);
        float mu = D > 0 ? lanes_tree_avx2(l) / (float)D : 0.0f;
        /* var: lane j = fmaf(d, d, lane j), d = x - mu (fr_sumsq_centered_canonical), / D */
        const __m256 vmu = _mm256_set1_ps(mu);
        l = _mm256_setzero_ps();
        for (int64_t j = 0; j < D8; j += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + j), vmu);
            l = _mm256_fmadd_ps(d, d, l);
        }
        if (D8 < D) {
            __m256 d = _mm256_sub_ps(_mm256_maskload_ps(xr + D8, tail), vmu);
            l = _mm256_blendv_ps(l, _mm256_fmadd_ps(d, d, l), tailf);
        }
        float var = D > 0 ? lanes_tree_avx2(l) / (float)D : 0.0f;
        float rs = fr_layernorm_rstd(var, c->eps);
        /* y = fmaf((x - mu) * rs, gamma, beta), gamma = 1, beta = 0 when absent */
        const __m256 vrs = _mm256_set1_ps(rs), one = _mm256_set1_ps(1.0f);
        const __m256 zero = _mm256_setzero_ps();
        int64_t j = 0;
        for (; j < D8; j += 8) {
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vmu), vrs);
            __m256 g = c->gamma ? _mm256_loadu_ps(c->gamma + j) : one;
            __m256 b = c->beta ? _mm256_loadu_ps(c->beta + j) : zero;
            _mm256_storeu_ps(yr + j, _mm256_fmadd_ps(xh, g, b));
        }
        for (; j < D; j++)
            yr[j] = fr_layernorm_y(fr_layernorm_xhat(xr[j], mu, rs), c->gamma ? c->gamma[j] : 1.0f,
                                   c->beta ? c->beta[j] : 0.0f);
        c->mean_out[i] = mu;
        c->rstd_out[i] = rs;
    }
}
#endif

static void ln_fwd_rows(void *arg, int64_t r0, int64_t r1)
{
    const ln_ctx *c = (const ln_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        ln_fwd_rows_avx2(c, r0, r1);
        return;
    }
#endif
    ln_fwd_rows_scalar(c, r0, r1);
}

void fr_opt_layernorm_fwd(int64_t M, int64_t D,
                          const float *x,     // (M,D)
                          const float *gamma, // (D,) or NULL
                          const float *beta,  // (D,) or NULL
                          float eps,
                          float *y,    // (M,D)
                          float *mean, // (M,)
                          float *rstd) // (M,)
{
    if (M <= 0) return;
    ln_ctx c = {.M = M, .D = D, .x = x, .gamma = gamma, .beta = beta, .eps = eps,
                .y = y, .mean_out = mean, .rstd_out = rstd};
    int64_t min_rows = D > 0 ? (LN_MIN_WORK + D - 1) / D : M;
    fr_opt_parallel_range(M, 1, min_rows, ln_fwd_rows, &c);
}

/* ---- backward ----------------------------------------------------------------------------- */

/* dx rows (the formulas above fr_layernorm_dx in flowrl/elem.h). */
static void ln_bwd_dx_scalar(const ln_ctx *c, int64_t r0, int64_t r1)
{
    int64_t D = c->D;
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D, *dyr = c->dy + i * D;
        fr_layernorm_dx_row(D, xr, dyr, c->gamma, c->mean[i], c->rstd[i], c->dx + i * D, c->accumulate);
    }
}

/* dgamma[j] = fmaf(dy, xhat, dgamma[j]), dbeta[j] = dbeta[j] + dy over rows in order. */
static void ln_bwd_params_scalar(const ln_ctx *c, int64_t c0, int64_t c1)
{
    int64_t D = c->D;
    for (int64_t j = c0; j < c1; j++) {
        float dg = c->accumulate && c->dgamma ? c->dgamma[j] : 0.0f;
        float db = c->accumulate && c->dbeta ? c->dbeta[j] : 0.0f;
        for (int64_t i = 0; i < c->M; i++) {
            float dyv = c->dy[i * D + j];
            dg = fmaf(dyv, fr_layernorm_xhat(c->x[i * D + j], c->mean[i], c->rstd[i]), dg);
            db = db + dyv;
        }
        if (c->dgamma) c->dgamma[j] = dg;
        if (c->dbeta) c->dbeta[j] = db;
    }
}

#if FR_OPT_X86
FR_AVX2 static void ln_bwd_dx_avx2(const ln_ctx *c, int64_t r0, int64_t r1)
{
    const int64_t D = c->D, D8 = D & ~(int64_t)7;
    const __m256i tail = fr_opt_tail_mask(D - D8);
    const __m256 tailf = _mm256_castsi256_ps(tail), sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D, *dyr = c->dy + i * D;
        float *dxr = c->dx + i * D;
        const float mu = c->mean[i], rs = c->rstd[i];
        const __m256 vmu = _mm256_set1_ps(mu), vrs = _mm256_set1_ps(rs);
        /* lg lane += g, lgx lane = fmaf(g, xhat, lane), g = dy * gamma (or dy) */
        __m256 lg = _mm256_setzero_ps(), lgx = _mm256_setzero_ps();
        for (int64_t j = 0; j < D8; j += 8) {
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vmu), vrs);
            __m256 g = _mm256_loadu_ps(dyr + j);
            if (c->gamma) g = _mm256_mul_ps(g, _mm256_loadu_ps(c->gamma + j));
            lg = _mm256_add_ps(lg, g);
            lgx = _mm256_fmadd_ps(g, xh, lgx);
        }
        if (D8 < D) {
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + D8, tail), vmu), vrs);
            __m256 g = _mm256_maskload_ps(dyr + D8, tail);
            if (c->gamma) g = _mm256_mul_ps(g, _mm256_maskload_ps(c->gamma + D8, tail));
            lg = _mm256_blendv_ps(lg, _mm256_add_ps(lg, g), tailf);
            lgx = _mm256_blendv_ps(lgx, _mm256_fmadd_ps(g, xh, lgx), tailf);
        }
        float mg = D > 0 ? lanes_tree_avx2(lg) / (float)D : 0.0f;
        float mgx = D > 0 ? lanes_tree_avx2(lgx) / (float)D : 0.0f;
        /* dx = rs * fmaf(-xhat, mgx, g - mg) */
        const __m256 vmg = _mm256_set1_ps(mg), vmgx = _mm256_set1_ps(mgx);
        int64_t j = 0;
        for (; j < D8; j += 8) {
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vmu), vrs);
            __m256 g = _mm256_loadu_ps(dyr + j);
            if (c->gamma) g = _mm256_mul_ps(g, _mm256_loadu_ps(c->gamma + j));
            __m256 d = _mm256_mul_ps(vrs, _mm256_fmadd_ps(_mm256_xor_ps(xh, sign), vmgx,
                                                          _mm256_sub_ps(g, vmg)));
            if (c->accumulate) d = _mm256_add_ps(_mm256_loadu_ps(dxr + j), d);
            _mm256_storeu_ps(dxr + j, d);
        }
        for (; j < D; j++) {
            float xhat = fr_layernorm_xhat(xr[j], mu, rs);
            float g = c->gamma ? dyr[j] * c->gamma[j] : dyr[j];
            float d = fr_layernorm_dx(g, xhat, mg, mgx, rs);
            dxr[j] = c->accumulate ? dxr[j] + d : d;
        }
    }
}

/* Columns [c0, c1) in strips of 16 (two registers each for dgamma and dbeta). */
FR_AVX2 static void ln_bwd_params_avx2(const ln_ctx *c, int64_t c0, int64_t c1)
{
    const int64_t D = c->D;
    int64_t j = c0;
    for (; j + 16 <= c1; j += 16) {
        __m256 g0, g1, b0, b1;
        g0 = g1 = b0 = b1 = _mm256_setzero_ps();
        if (c->accumulate && c->dgamma)
            g0 = _mm256_loadu_ps(c->dgamma + j), g1 = _mm256_loadu_ps(c->dgamma + j + 8);
        if (c->accumulate && c->dbeta)
            b0 = _mm256_loadu_ps(c->dbeta + j), b1 = _mm256_loadu_ps(c->dbeta + j + 8);
        for (int64_t i = 0; i < c->M; i++) {
            const __m256 vmu = _mm256_broadcast_ss(c->mean + i), vrs = _mm256_broadcast_ss(c->rstd + i);
            const float *xr = c->x + i * D + j, *dyr = c->dy + i * D + j;
            __m256 d0 = _mm256_loadu_ps(dyr), d1 = _mm256_loadu_ps(dyr + 8);
            __m256 x0 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr), vmu), vrs);
            __m256 x1 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + 8), vmu), vrs);
            g0 = _mm256_fmadd_ps(d0, x0, g0), g1 = _mm256_fmadd_ps(d1, x1, g1);
            b0 = _mm256_add_ps(b0, d0), b1 = _mm256_add_ps(b1, d1);
        }
        if (c->dgamma) _mm256_storeu_ps(c->dgamma + j, g0), _mm256_storeu_ps(c->dgamma + j + 8, g1);
        if (c->dbeta) _mm256_storeu_ps(c->dbeta + j, b0), _mm256_storeu_ps(c->dbeta + j + 8, b1);
    }
    if (j < c1) ln_bwd_params_scalar(c, j, c1);
}
#endif

static void ln_bwd_dx_rows(void *arg, int64_t r0, int64_t r1)
{
    const ln_ctx *c = (const ln_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        ln_bwd_dx_avx2(c, r0, r1);
        return;
    }
#endif
    ln_bwd_dx_scalar(c, r0, r1);
}

static void ln_bwd_param_cols(void *arg, int64_t c0, int64_t c1)
{
    const ln_ctx *c = (const ln_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        ln_bwd_params_avx2(c, c0, c1);
        return;
    }
#endif
    ln_bwd_params_scalar(c, c0, c1);
}

void fr_opt_layernorm_bwd(int64_t M, int64_t D,
                          const float *x,     // (M,D) the forward's input
                          const float *gamma, // (D,) or NULL
                          const float *mean,  // (M,) saved by the forward
                          const float *rstd,  // (M,) saved by the forward
                          const float *dy,    // (M,D)
                          float *dx,          // (M,D)
                          float *dgamma,      // (D,) or NULL
                          float *dbeta,       // (D,) or NULL
                          int accumulate)
{
    if (D <= 0) return;
    ln_ctx c = {.M = M, .D = D, .x = x, .gamma = gamma, .mean = mean, .rstd = rstd, .dy = dy,
                .dx = dx, .dgamma = dgamma, .dbeta = dbeta, .accumulate = accumulate};
    if (M > 0) {
        int64_t min_rows = (LN_MIN_WORK + D - 1) / D;
        fr_opt_parallel_range(M, 1, min_rows, ln_bwd_dx_rows, &c);
    }
    if (dgamma || dbeta) {
        int64_t min_cols = M > 0 ? (LN_MIN_WORK + M - 1) / M : D;
        if (min_cols < 16) min_cols = 16;
        fr_opt_parallel_range(D, 16, min_cols, ln_bwd_param_cols, &c);
    }
}
