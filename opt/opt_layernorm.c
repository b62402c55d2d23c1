/* Layer norm of opt, bitwise equal to ref/ref_layernorm.c.
 *
 * Row statistics are canonical long sums (flowrl/reduce.h): lane j of the AVX2 register
 * (of two NEON registers, lanes 0-3 and 4-7) is lane j of the canonical order (element
 * c*8 + j goes to lane j), a partial last chunk updates only its lanes (blend; one by one
 * on NEON), and the 8 lanes meet in fr_lanes_tree. Rows are
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

/* The SIMD rows' tails, one element at a time from column j: row i's y and statistics, */
static inline void ln_fwd_row_tail(const ln_ctx *c, int64_t i, int64_t j, float mu, float rs)
{
    const float *xr = c->x + i * c->D;
    float *yr = c->y + i * c->D;
    for (; j < c->D; j++)
        yr[j] = fr_layernorm_y(fr_layernorm_xhat(xr[j], mu, rs), c->gamma ? c->gamma[j] : 1.0f,
                               c->beta ? c->beta[j] : 0.0f);
    c->mean_out[i] = mu;
    c->rstd_out[i] = rs;
}

/* and row i's dx (mg, mgx: the row's means of g and g * xhat). */
static inline void ln_dx_row_tail(const ln_ctx *c, int64_t i, int64_t j, float mg, float mgx)
{
    const float *xr = c->x + i * c->D, *dyr = c->dy + i * c->D;
    float *dxr = c->dx + i * c->D;
    const float mu = c->mean[i], rs = c->rstd[i];
    for (; j < c->D; j++) {
        float xhat = fr_layernorm_xhat(xr[j], mu, rs);
        float g = c->gamma ? dyr[j] * c->gamma[j] : dyr[j];
        float d = fr_layernorm_dx(g, xhat, mg, mgx, rs);
        dxr[j] = c->accumulate ? dxr[j] + d : d;
    }
}

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
        ln_fwd_row_tail(c, i, j, mu, rs);
    }
}
#endif

#if FR_OPT_NEON
/* The 8 canonical lanes as two NEON registers: lo holds lanes 0-3, hi lanes 4-7 (element
 * c*8 + j goes to lane j). The partial last chunk is added by ln_neon_tail. */
static void ln_neon_store(float32x4_t lo, float32x4_t hi, float l[FR_LANES])
{
    vst1q_f32(l, lo);
    vst1q_f32(l + 4, hi);
}

static void ln_fwd_rows_neon(const ln_ctx *c, int64_t r0, int64_t r1)
{
    const int64_t D = c->D, D8 = D & ~(int64_t)7;
    float l[FR_LANES];
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D;
        float *yr = c->y + i * D;
        /* mean: lane j += x[j + 8c] (fr_sum_canonical), / D */
        float32x4_t lo = vdupq_n_f32(0.0f), hi = vdupq_n_f32(0.0f);
        for (int64_t j = 0; j < D8; j += 8)
            lo = vaddq_f32(lo, vld1q_f32(xr + j)), hi = vaddq_f32(hi, vld1q_f32(xr + j + 4));
        ln_neon_store(lo, hi, l);
        for (int64_t j = D8; j < D; j++) l[j - D8] += xr[j];
        float mu = D > 0 ? fr_lanes_tree(l) / (float)D : 0.0f;
        /* var: lane j = fmaf(d, d, lane j), d = x - mu (fr_sumsq_centered_canonical), / D */
        const float32x4_t vmu = vdupq_n_f32(mu);
        lo = hi = vdupq_n_f32(0.0f);
        for (int64_t j = 0; j < D8; j += 8) {
            float32x4_t d0 = vsubq_f32(vld1q_f32(xr + j), vmu), d1 = vsubq_f32(vld1q_f32(xr + j + 4), vmu);
            lo = vfmaq_f32(lo, d0, d0), hi = vfmaq_f32(hi, d1, d1);
        }
        ln_neon_store(lo, hi, l);
        for (int64_t j = D8; j < D; j++) {
            float d = xr[j] - mu;
            l[j - D8] = fmaf(d, d, l[j - D8]);
        }
        float var = D > 0 ? fr_lanes_tree(l) / (float)D : 0.0f;
        float rs = fr_layernorm_rstd(var, c->eps);
        /* y = fmaf((x - mu) * rs, gamma, beta), gamma = 1, beta = 0 when absent */
        const float32x4_t vrs = vdupq_n_f32(rs);
        int64_t j = 0;
        for (; j + 4 <= D; j += 4) {
            float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(xr + j), vmu), vrs);
            float32x4_t g = c->gamma ? vld1q_f32(c->gamma + j) : vdupq_n_f32(1.0f);
            float32x4_t b = c->beta ? vld1q_f32(c->beta + j) : vdupq_n_f32(0.0f);
            vst1q_f32(yr + j, vfmaq_f32(b, xh, g));
        }
        ln_fwd_row_tail(c, i, j, mu, rs);
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
#if FR_OPT_NEON
    if (fr_opt_neon) {
        ln_fwd_rows_neon(c, r0, r1);
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
        ln_dx_row_tail(c, i, j, mg, mgx);
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

#if FR_OPT_NEON
/* g = dy * gamma (or dy) for the 4 columns from j. */
static inline float32x4_t ln_neon_g(const ln_ctx *c, const float *dyr, int64_t j)
{
    float32x4_t g = vld1q_f32(dyr + j);
    return c->gamma ? vmulq_f32(g, vld1q_f32(c->gamma + j)) : g;
}

static void ln_bwd_dx_neon(const ln_ctx *c, int64_t r0, int64_t r1)
{
    const int64_t D = c->D, D8 = D & ~(int64_t)7;
    float lg[FR_LANES], lgx[FR_LANES];
    for (int64_t i = r0; i < r1; i++) {
        const float *xr = c->x + i * D, *dyr = c->dy + i * D;
        float *dxr = c->dx + i * D;
        const float mu = c->mean[i], rs = c->rstd[i];
        const float32x4_t vmu = vdupq_n_f32(mu), vrs = vdupq_n_f32(rs);
        /* lg lane += g, lgx lane = fmaf(g, xhat, lane), lanes 0-3 in *0, 4-7 in *1 */
        float32x4_t g0s = vdupq_n_f32(0.0f), g1s = g0s, x0s = g0s, x1s = g0s;
        for (int64_t j = 0; j < D8; j += 8) {
            float32x4_t xh0 = vmulq_f32(vsubq_f32(vld1q_f32(xr + j), vmu), vrs);
            float32x4_t xh1 = vmulq_f32(vsubq_f32(vld1q_f32(xr + j + 4), vmu), vrs);
            float32x4_t g0 = ln_neon_g(c, dyr, j), g1 = ln_neon_g(c, dyr, j + 4);
            g0s = vaddq_f32(g0s, g0), g1s = vaddq_f32(g1s, g1);
            x0s = vfmaq_f32(x0s, g0, xh0), x1s = vfmaq_f32(x1s, g1, xh1);
        }
        ln_neon_store(g0s, g1s, lg);
        ln_neon_store(x0s, x1s, lgx);
        for (int64_t j = D8; j < D; j++) {
            float xhat = fr_layernorm_xhat(xr[j], mu, rs);
            float g = c->gamma ? dyr[j] * c->gamma[j] : dyr[j];
            lg[j - D8] += g;
            lgx[j - D8] = fmaf(g, xhat, lgx[j - D8]);
        }
        float mg = D > 0 ? fr_lanes_tree(lg) / (float)D : 0.0f;
        float mgx = D > 0 ? fr_lanes_tree(lgx) / (float)D : 0.0f;
        /* dx = rs * fmaf(-xhat, mgx, g - mg) */
        const float32x4_t vmg = vdupq_n_f32(mg), vmgx = vdupq_n_f32(mgx);
        int64_t j = 0;
        for (; j + 4 <= D; j += 4) {
            float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(xr + j), vmu), vrs);
            float32x4_t d = vmulq_f32(vrs, vfmaq_f32(vsubq_f32(ln_neon_g(c, dyr, j), vmg), vnegq_f32(xh), vmgx));
            if (c->accumulate) d = vaddq_f32(vld1q_f32(dxr + j), d);
            vst1q_f32(dxr + j, d);
        }
        ln_dx_row_tail(c, i, j, mg, mgx);
    }
}

/* Columns [c0, c1) in strips of 16 (four registers each for dgamma and dbeta). */
static void ln_bwd_params_neon(const ln_ctx *c, int64_t c0, int64_t c1)
{
    const int64_t D = c->D;
    int64_t j = c0;
    for (; j + 16 <= c1; j += 16) {
        float32x4_t g[4], b[4];
        for (int q = 0; q < 4; q++) {
            g[q] = c->accumulate && c->dgamma ? vld1q_f32(c->dgamma + j + 4 * q) : vdupq_n_f32(0.0f);
            b[q] = c->accumulate && c->dbeta ? vld1q_f32(c->dbeta + j + 4 * q) : vdupq_n_f32(0.0f);
        }
        for (int64_t i = 0; i < c->M; i++) {
            const float32x4_t vmu = vdupq_n_f32(c->mean[i]), vrs = vdupq_n_f32(c->rstd[i]);
            const float *xr = c->x + i * D + j, *dyr = c->dy + i * D + j;
            for (int q = 0; q < 4; q++) {
                float32x4_t d = vld1q_f32(dyr + 4 * q);
                float32x4_t xh = vmulq_f32(vsubq_f32(vld1q_f32(xr + 4 * q), vmu), vrs);
                g[q] = vfmaq_f32(g[q], d, xh), b[q] = vaddq_f32(b[q], d);
            }
        }
        for (int q = 0; q < 4; q++) {
            if (c->dgamma) vst1q_f32(c->dgamma + j + 4 * q, g[q]);
            if (c->dbeta) vst1q_f32(c->dbeta + j + 4 * q, b[q]);
        }
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
#if FR_OPT_NEON
    if (fr_opt_neon) {
        ln_bwd_dx_neon(c, r0, r1);
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
#if FR_OPT_NEON
    if (fr_opt_neon) {
        ln_bwd_params_neon(c, c0, c1);
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
