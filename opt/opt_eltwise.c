/* Elementwise ops of opt: the element functions of flowrl/elem.h (or the one IEEE
 * operation they are), AVX2 where the formula is plain + - * / sqrt fma, split into
 * contiguous chunks across threads (each element is independent, so any split gives the
 * same bits). unary exp: fr_expf ported lane by lane on AVX2 (fr_v_expf, opt/opt_vexp.h); log
 * runs the scalar fr_logf per element, threaded. */
#include "flowrl/elem.h"
#include "opt/opt_internal.h"
#include "opt/opt_simd.h"
#include "opt/opt_vexp.h"

#include <stdint.h>
#include <string.h>

/* Chunks below this many elements are not worth a thread for memory-bound ops. */
#define ELT_MIN_CHUNK (1 << 15)
/* ... and for per-element transcendentals. */
#define ELT_MIN_CHUNK_TRANSC 2048

/* ---- binary ---------------------------------------------------------------------------- */

typedef struct {
    fr_binop op;
    const float *a, *b;
    float *out;
} binary_ctx;

#if FR_OPT_X86
FR_AVX2 static void binary_avx2(fr_binop op, int64_t b0, int64_t e, const float *a,
                                const float *b, float *out)
{
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i), r;
        switch (op) {
        case FR_BIN_SUB: r = _mm256_sub_ps(x, y); break;
        case FR_BIN_MUL: r = _mm256_mul_ps(x, y); break;
        case FR_BIN_DIV: r = _mm256_div_ps(x, y); break;
        case FR_BIN_ADD:
        default: r = _mm256_add_ps(x, y); break;
        }
        _mm256_storeu_ps(out + i, r);
    }
    for (; i < e; i++) out[i] = fr_binary_elem(op, a[i], b[i]);
}
#endif

static void binary_range(void *arg, int64_t b0, int64_t e)
{
    const binary_ctx *c = (const binary_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        binary_avx2(c->op, b0, e, c->a, c->b, c->out);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->out[i] = fr_binary_elem(c->op, c->a[i], c->b[i]);
}

void fr_opt_binary(fr_binop op, int64_t n,
                   const float *a, // (n,)
                   const float *b, // (n,)
                   float *out)     // (n,), may alias a or b
{
    binary_ctx c = {op, a, b, out};
    fr_opt_parallel_range(n, 16, ELT_MIN_CHUNK, binary_range, &c);
}

/* ---- unary ------------------------------------------------------------------------------ */

typedef struct {
    fr_unop op;
    const float *x;
    float *out;
} unary_ctx;

#if FR_OPT_X86
/* NEG, SQUARE, SQRT, EXP (LOG and ABS run the element function). */
FR_AVX2 static void unary_avx2(fr_unop op, int64_t b0, int64_t e, const float *x, float *out)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), r;
        switch (op) {
        case FR_UN_SQUARE: r = _mm256_mul_ps(v, v); break;
        case FR_UN_SQRT: r = _mm256_sqrt_ps(v); break;
        case FR_UN_EXP: r = fr_v_expf(v); break;
        case FR_UN_NEG:
        default: r = _mm256_xor_ps(v, sign); break; /* -x flips the sign bit, as C's -x */
        }
        _mm256_storeu_ps(out + i, r);
    }
    for (; i < e; i++) out[i] = fr_unary_elem(op, x[i]);
}
#endif

static int unary_is_simple(fr_unop op)
{
    return op == FR_UN_NEG || op == FR_UN_SQUARE || op == FR_UN_SQRT;
}

static void unary_range(void *arg, int64_t b0, int64_t e)
{
    const unary_ctx *c = (const unary_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2 && (unary_is_simple(c->op) || c->op == FR_UN_EXP)) {
        unary_avx2(c->op, b0, e, c->x, c->out);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->out[i] = fr_unary_elem(c->op, c->x[i]);
}

void fr_opt_unary(fr_unop op, int64_t n,
                  const float *x, // (n,)
                  float *out)     // (n,), may alias x
{
    unary_ctx c = {op, x, out};
    fr_opt_parallel_range(n, 16, unary_is_simple(op) ? ELT_MIN_CHUNK : ELT_MIN_CHUNK_TRANSC,
                          unary_range, &c);
}

/* ---- axpby, scale, fill ------------------------------------------------------------------ */

typedef struct {
    float alpha, beta;
    const float *x;
    float *y;
} axpby_ctx;

#if FR_OPT_X86
/* y = fmaf(alpha, x, beta * y) (fr_axpby_elem). */
FR_AVX2 static void axpby_avx2(int64_t b0, int64_t e, float alpha, const float *x, float beta,
                               float *y)
{
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                                _mm256_mul_ps(vb, _mm256_loadu_ps(y + i))));
    for (; i < e; i++) y[i] = fr_axpby_elem(alpha, x[i], beta, y[i]);
}

/* y = alpha * x. */
FR_AVX2 static void scale_avx2(int64_t b0, int64_t e, float alpha, const float *x, float *y)
{
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = b0;
    for (; i + 8 <= e; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < e; i++) y[i] = alpha * x[i];
}
#endif

static void axpby_range(void *arg, int64_t b0, int64_t e)
{
    const axpby_ctx *c = (const axpby_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        axpby_avx2(b0, e, c->alpha, c->x, c->beta, c->y);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->y[i] = fr_axpby_elem(c->alpha, c->x[i], c->beta, c->y[i]);
}

void fr_opt_axpby(int64_t n, float alpha,
                  const float *x, // (n,)
                  float beta,
                  float *y) // (n,)
{
    axpby_ctx c = {alpha, beta, x, y};
    fr_opt_parallel_range(n, 16, ELT_MIN_CHUNK, axpby_range, &c);
}

static void scale_range(void *arg, int64_t b0, int64_t e)
{
    const axpby_ctx *c = (const axpby_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        scale_avx2(b0, e, c->alpha, c->x, c->y);
        return;
    }
#endif
    for (int64_t i = b0; i < e; i++) c->y[i] = c->alpha * c->x[i];
}

void fr_opt_scale(int64_t n, float alpha,
                  const float *x, // (n,)
                  float *y)       // (n,), may alias x
{
    axpby_ctx c = {alpha, 0.0f, x, y};
    fr_opt_parallel_range(n, 16, ELT_MIN_CHUNK, scale_range, &c);
}

static void fill_range(void *arg, int64_t b0, int64_t e)
{
    const axpby_ctx *c = (const axpby_ctx *)arg;
    for (int64_t i = b0; i < e; i++) c->y[i] = c->alpha;
}

void fr_opt_fill(int64_t n, float value,
                 float *y) // (n,)
{
    axpby_ctx c = {value, 0.0f, NULL, y};
    fr_opt_parallel_range(n, 16, ELT_MIN_CHUNK, fill_range, &c);
}

/* ---- copy --------------------------------------------------------------------------------- */

static void copy_range(void *arg, int64_t b0, int64_t e)
{
    const axpby_ctx *c = (const axpby_ctx *)arg;
    memcpy(c->y + b0, c->x + b0, (size_t)(e - b0) * sizeof(float));
}

void fr_opt_copy(int64_t n,
                 const float *src, // (n,)
                 float *dst)       // (n,); overlap allowed
{
    if (n <= 0 || src == dst) return;
    /* Overlapping ranges keep memmove's semantics on one thread; chunks of a parallel
     * copy would overwrite each other's sources. */
    uintptr_t s = (uintptr_t)src, d = (uintptr_t)dst, bytes = (uintptr_t)n * sizeof *dst;
    if (d < s + bytes && s < d + bytes) {
        memmove(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    axpby_ctx c = {0.0f, 0.0f, src, dst};
    fr_opt_parallel_range(n, 16, ELT_MIN_CHUNK, copy_range, &c);
}
