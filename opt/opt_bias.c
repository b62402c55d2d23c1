/* Bias add and bias gradient of opt (the batch-reduction order of flowrl/reduce.h).
 * bias_add: rows split across threads, AVX2 across columns.
 * bias_grad: db[j] = init + dy[0,j] + dy[1,j] + ... with rows in order; vectors run
 * across columns (lane = column) and threads own column blocks, never row blocks. */
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"

/* Elements per thread below which the extra threads cost more than they save. */
#define BIAS_MIN_WORK (1 << 15)

typedef struct {
    int64_t M, N;
    const float *src; /* bias_add: b (N,); bias_grad: dy (M,N) */
    float *dst;       /* bias_add: y (M,N); bias_grad: db (N,) */
    int accumulate;
} bias_ctx;

#if FR_OPT_X86
FR_AVX2 static void bias_add_avx2(int64_t r0, int64_t r1, int64_t N, float *y, const float *b)
{
    for (int64_t i = r0; i < r1; i++) {
        float *yr = y + i * N;
        int64_t j = 0;
        for (; j + 8 <= N; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_add_ps(_mm256_loadu_ps(yr + j), _mm256_loadu_ps(b + j)));
        for (; j < N; j++) yr[j] = yr[j] + b[j];
    }
}

/* Columns [c0, c1): strips of 32 columns kept in registers over all rows. */
FR_AVX2 static void bias_grad_avx2(int64_t c0, int64_t c1, int64_t M, int64_t N,
                                   const float *dy, float *db, int accumulate)
{
    int64_t j = c0;
    for (; j + 32 <= c1; j += 32) {
        __m256 a0, a1, a2, a3;
        if (accumulate) {
            a0 = _mm256_loadu_ps(db + j), a1 = _mm256_loadu_ps(db + j + 8);
            a2 = _mm256_loadu_ps(db + j + 16), a3 = _mm256_loadu_ps(db + j + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_setzero_ps();
        }
        for (int64_t i = 0; i < M; i++) {
            const float *r = dy + i * N + j;
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(r));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(r + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(r + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(r + 24));
        }
        _mm256_storeu_ps(db + j, a0), _mm256_storeu_ps(db + j + 8, a1);
        _mm256_storeu_ps(db + j + 16, a2), _mm256_storeu_ps(db + j + 24, a3);
    }
    for (; j + 8 <= c1; j += 8) {
        __m256 a = accumulate ? _mm256_loadu_ps(db + j) : _mm256_setzero_ps();
        for (int64_t i = 0; i < M; i++) a = _mm256_add_ps(a, _mm256_loadu_ps(dy + i * N + j));
        _mm256_storeu_ps(db + j, a);
    }
    for (; j < c1; j++) {
        float a = accumulate ? db[j] : 0.0f;
        for (int64_t i = 0; i < M; i++) a = a + dy[i * N + j];
        db[j] = a;
    }
}
#endif

static void bias_add_rows(void *arg, int64_t r0, int64_t r1)
{
    const bias_ctx *c = (const bias_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        bias_add_avx2(r0, r1, c->N, c->dst, c->src);
        return;
    }
#endif
    for (int64_t i = r0; i < r1; i++)
        for (int64_t j = 0; j < c->N; j++) c->dst[i * c->N + j] = c->dst[i * c->N + j] + c->src[j];
}

static void bias_grad_cols(void *arg, int64_t c0, int64_t c1)
{
    const bias_ctx *c = (const bias_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        bias_grad_avx2(c0, c1, c->M, c->N, c->src, c->dst, c->accumulate);
        return;
    }
#endif
    for (int64_t j = c0; j < c1; j++) {
        float a = c->accumulate ? c->dst[j] : 0.0f;
        for (int64_t i = 0; i < c->M; i++) a = a + c->src[i * c->N + j];
        c->dst[j] = a;
    }
}

void fr_opt_bias_add(int64_t M, int64_t N,
                     float *y,       // (M,N)
                     const float *b) // (N,)
{
    if (M <= 0 || N <= 0) return;
    bias_ctx c = {M, N, b, y, 0};
    int64_t min_rows = (BIAS_MIN_WORK + N - 1) / N;
    fr_opt_parallel_range(M, 1, min_rows, bias_add_rows, &c);
}

void fr_opt_bias_grad(int64_t M, int64_t N,
                      const float *dy, // (M,N)
                      float *db,       // (N,)
                      int accumulate)
{
    if (N <= 0) return;
    bias_ctx c = {M, N, dy, db, accumulate};
    int64_t min_cols = M > 0 ? (BIAS_MIN_WORK + M - 1) / M : N;
    if (min_cols < 32) min_cols = 32;
    fr_opt_parallel_range(N, 32, min_cols, bias_grad_cols, &c);
}
