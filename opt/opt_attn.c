/* The DiT's softmax and adaLN ops for opt: rows (softmax), token rows (modulate, gate) or
 * samples (their backward, whose reductions run over a sample's tokens) split into contiguous
 * chunks across threads. Each row or column is the function of flowrl/attn_elem.h that ref
 * runs, so any split and any thread count give ref's bits. The AVX2 paths put 8 channels j in
 * the lanes of a register (never tokens l: each column keeps its chain over l) and use
 * _mm256_fmadd_ps, which rounds once as fmaf. */
#include "flowrl/attn_elem.h"
#include "opt/opt_internal.h"

#include <stdint.h>

#include "opt/opt_simd.h"
#include "opt/opt_vexp.h"

/* Below this many elements a chunk is not worth a thread. */
#define ATTN_MIN_CHUNK (1 << 14)

typedef struct {
    int64_t L, H, ldm, N;
    float alpha;
    const float *x, *a, *b, *dy; /* op-specific inputs, see each body */
    float *y, *d1, *d2;
} attn_ctx;

static int64_t min_rows(int64_t width) { return width >= ATTN_MIN_CHUNK ? 1 : ATTN_MIN_CHUNK / width; }

#if FR_OPT_X86
/* fr_softmax_row on AVX2, p may alias x. The max: the lanes' maxima and the tail's, a NaN
 * anywhere tracked apart; its value is fr_softmax_max's (which of two equal zeros is kept never
 * matters, flowrl/attn_elem.h). The sum: element j lands in lane j % 8 in ascending j, as in
 * the scalar lanes, then fr_lanes_tree. fr_expf is fr_v_expf (opt/opt_vexp.h). */
FR_AVX2 static void softmax_row_avx2(const float *x, int64_t n, float alpha, float *p)
{
    const __m256 va = _mm256_set1_ps(alpha);
    __m256 vm = _mm256_set1_ps(alpha * x[0]), bad = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 z = _mm256_mul_ps(va, _mm256_loadu_ps(x + j));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(z, z, _CMP_UNORD_Q));
        vm = _mm256_max_ps(vm, z);
    }
    float lm[8];
    _mm256_storeu_ps(lm, vm);
    float m = lm[0];
    int nan = _mm256_movemask_ps(bad) != 0;
    for (int i = 1; i < 8; i++) m = lm[i] > m ? lm[i] : m;
    for (int64_t i = j; i < n; i++) {
        const float z = alpha * x[i];
        if (z != z) nan = 1;
        if (z > m) m = z;
    }
    if (nan) m = (float)NAN;
    const __m256 mm = _mm256_set1_ps(m);
    __m256 l = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256 e = fr_v_expf(_mm256_sub_ps(_mm256_mul_ps(va, _mm256_loadu_ps(x + j)), mm));
        _mm256_storeu_ps(p + j, e);
        l = _mm256_add_ps(l, e);
    }
    float ls[8];
    _mm256_storeu_ps(ls, l);
    for (int64_t i = j; i < n; i++) {
        const float e = fr_expf(alpha * x[i] - m);
        p[i] = e;
        ls[i % 8] += e;
    }
    const float sum = fr_lanes_tree(ls); /* = fr_sum_canonical(p, n, 1) */
    const __m256 s = _mm256_set1_ps(sum);
    for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(p + j, _mm256_div_ps(_mm256_loadu_ps(p + j), s));
    for (int64_t i = j; i < n; i++) p[i] = p[i] / sum;
}
#endif

static void softmax_body(void *arg, int64_t r0, int64_t r1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        for (int64_t r = r0; r < r1; r++) softmax_row_avx2(c->x + r * c->N, c->N, c->alpha, c->y + r * c->N);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) fr_softmax_row(c->x + r * c->N, c->N, c->alpha, c->y + r * c->N);
}

void fr_opt_softmax_rows(int64_t R, int64_t N, float alpha, const float *x, float *p)
{
    if (R <= 0 || N <= 0) return;
    attn_ctx c = {0, 0, 0, N, alpha, x, NULL, NULL, NULL, p, NULL, NULL};
    fr_opt_parallel_range(R, 1, min_rows(N), softmax_body, &c);
}

#if FR_OPT_X86
/* fr_softmax_bwd_row on AVX2, dx may alias dp: g = fr_dot_canonical(p, dp, n) with element j's
 * fmaf in lane j % 8 in ascending j, then fr_lanes_tree; dx = alpha (p (dp - g)). */
FR_AVX2 static void softmax_bwd_row_avx2(const float *p, const float *dp, int64_t n, float alpha, float *dx)
{
    __m256 l = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) l = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(dp + j), l);
    float ls[8];
    _mm256_storeu_ps(ls, l);
    for (int64_t i = j; i < n; i++) ls[i % 8] = fmaf(p[i], dp[i], ls[i % 8]);
    const float g = fr_lanes_tree(ls);
    const __m256 va = _mm256_set1_ps(alpha), vg = _mm256_set1_ps(g);
    for (j = 0; j + 8 <= n; j += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(dp + j), vg);
        _mm256_storeu_ps(dx + j, _mm256_mul_ps(va, _mm256_mul_ps(_mm256_loadu_ps(p + j), d)));
    }
    for (int64_t i = j; i < n; i++) dx[i] = alpha * (p[i] * (dp[i] - g));
}
#endif

static void softmax_bwd_body(void *arg, int64_t r0, int64_t r1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        for (int64_t r = r0; r < r1; r++)
            softmax_bwd_row_avx2(c->x + r * c->N, c->dy + r * c->N, c->N, c->alpha, c->y + r * c->N);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++)
        fr_softmax_bwd_row(c->x + r * c->N, c->dy + r * c->N, c->N, c->alpha, c->y + r * c->N);
}

void fr_opt_softmax_rows_bwd(int64_t R, int64_t N, float alpha, const float *p, const float *dp, float *dx)
{
    if (R <= 0 || N <= 0) return;
    attn_ctx c = {0, 0, 0, N, alpha, p, NULL, NULL, dp, dx, NULL, NULL};
    fr_opt_parallel_range(R, 1, min_rows(N), softmax_bwd_body, &c);
}

#if FR_OPT_X86
FR_AVX2 static void mod_rows_avx2(const attn_ctx *c, int64_t r0, int64_t r1)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t r = r0; r < r1; r++) {
        const float *sh = c->a + (r / c->L) * c->ldm, *sc = c->b + (r / c->L) * c->ldm, *x = c->x + r * c->H;
        float *y = c->y + r * c->H;
        int64_t j = 0;
        for (; j + 8 <= c->H; j += 8) {
            const __m256 s1 = _mm256_add_ps(one, _mm256_loadu_ps(sc + j));
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_loadu_ps(x + j), s1, _mm256_loadu_ps(sh + j)));
        }
        for (; j < c->H; j++) y[j] = fr_adaln_mod_elem(x[j], sh[j], sc[j]);
    }
}

FR_AVX2 static void gate_rows_avx2(const attn_ctx *c, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const float *g = c->a + (r / c->L) * c->ldm, *h = c->x + r * c->H, *yv = c->b + r * c->H;
        float *out = c->y + r * c->H;
        int64_t j = 0;
        for (; j + 8 <= c->H; j += 8)
            _mm256_storeu_ps(out + j, _mm256_fmadd_ps(_mm256_loadu_ps(g + j), _mm256_loadu_ps(yv + j),
                                                      _mm256_loadu_ps(h + j)));
        for (; j < c->H; j++) out[j] = fr_gate_elem(h[j], g[j], yv[j]);
    }
}

/* Sample b's columns 8 at a time; the tail columns by fr_adaln_mod_bwd_col. Returns the first
 * column left for the scalar code. */
FR_AVX2 static int64_t mod_bwd_avx2(const attn_ctx *c, int64_t b)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const int64_t H = c->H, m = b * c->ldm;
    int64_t j = 0;
    for (; j + 8 <= H; j += 8) {
        const __m256 s1 = _mm256_add_ps(one, _mm256_loadu_ps(c->a + m + j));
        __m256 ds = _mm256_setzero_ps(), dc = _mm256_setzero_ps();
        for (int64_t l = 0; l < c->L; l++) {
            const int64_t o = (b * c->L + l) * H + j;
            const __m256 g = _mm256_loadu_ps(c->dy + o);
            ds = _mm256_add_ps(ds, g);
            dc = _mm256_fmadd_ps(g, _mm256_loadu_ps(c->x + o), dc);
            _mm256_storeu_ps(c->y + o, _mm256_mul_ps(g, s1));
        }
        _mm256_storeu_ps(c->d1 + m + j, ds);
        _mm256_storeu_ps(c->d2 + m + j, dc);
    }
    return j;
}

FR_AVX2 static int64_t gate_bwd_avx2(const attn_ctx *c, int64_t b)
{
    const int64_t H = c->H, m = b * c->ldm;
    int64_t j = 0;
    for (; j + 8 <= H; j += 8) {
        const __m256 gv = _mm256_loadu_ps(c->a + m + j);
        __m256 dg = _mm256_setzero_ps();
        for (int64_t l = 0; l < c->L; l++) {
            const int64_t o = (b * c->L + l) * H + j;
            const __m256 d = _mm256_loadu_ps(c->dy + o);
            dg = _mm256_fmadd_ps(d, _mm256_loadu_ps(c->b + o), dg);
            _mm256_storeu_ps(c->y + o, _mm256_mul_ps(d, gv));
        }
        _mm256_storeu_ps(c->d1 + m + j, dg);
    }
    return j;
}
#define MOD_BWD_AVX2 mod_bwd_avx2
#define GATE_BWD_AVX2 gate_bwd_avx2
#else
#define MOD_BWD_AVX2 NULL
#define GATE_BWD_AVX2 NULL
#endif

/* Token rows [r0, r1) of (B·L, H): x, shift a, scale b. */
static void mod_body(void *arg, int64_t r0, int64_t r1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        mod_rows_avx2(c, r0, r1);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) {
        const float *sh = c->a + (r / c->L) * c->ldm, *sc = c->b + (r / c->L) * c->ldm;
        const float *x = c->x + r * c->H;
        float *y = c->y + r * c->H;
        for (int64_t j = 0; j < c->H; j++) y[j] = fr_adaln_mod_elem(x[j], sh[j], sc[j]);
    }
}

void fr_opt_adaln_mod(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *shift,
                      const float *scale, float *y)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    attn_ctx c = {L, H, ldm, 0, 0.0f, x, shift, scale, NULL, y, NULL, NULL};
    fr_opt_parallel_range(B * L, 1, min_rows(H), mod_body, &c);
}

/* The first column of sample b the scalar loop still does: after the AVX2 columns when the CPU
 * has them, else 0. */
typedef int64_t (*cols_fn)(const attn_ctx *c, int64_t b);
static int64_t first_col(const attn_ctx *c, int64_t b, cols_fn avx2)
{
#if FR_OPT_X86
    if (fr_opt_avx2) return avx2(c, b);
#endif
    (void)c, (void)b, (void)avx2;
    return 0;
}

/* Samples [b0, b1): x, scale a, dy; dx y, dshift d1, dscale d2. */
static void mod_bwd_body(void *arg, int64_t b0, int64_t b1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t j = first_col(c, b, MOD_BWD_AVX2); j < c->H; j++) {
            const int64_t o = b * c->L * c->H + j, m = b * c->ldm + j;
            fr_adaln_mod_bwd_col(c->L, c->H, c->x + o, c->a[m], c->dy + o, c->y + o, c->d1 + m, c->d2 + m);
        }
}

void fr_opt_adaln_mod_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *x, const float *scale,
                          const float *dy, float *dx, float *dshift, float *dscale)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    attn_ctx c = {L, H, ldm, 0, 0.0f, x, scale, NULL, dy, dx, dshift, dscale};
    fr_opt_parallel_range(B, 1, min_rows(L * H), mod_bwd_body, &c);
}

/* Token rows: h x, gate a, y b; out y. */
static void gate_body(void *arg, int64_t r0, int64_t r1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
#if FR_OPT_X86
    if (fr_opt_avx2) {
        gate_rows_avx2(c, r0, r1);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) {
        const float *g = c->a + (r / c->L) * c->ldm, *h = c->x + r * c->H, *yv = c->b + r * c->H;
        float *out = c->y + r * c->H;
        for (int64_t j = 0; j < c->H; j++) out[j] = fr_gate_elem(h[j], g[j], yv[j]);
    }
}

void fr_opt_gate_add(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *h, const float *gate,
                     const float *y, float *out)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    attn_ctx c = {L, H, ldm, 0, 0.0f, h, gate, y, NULL, out, NULL, NULL};
    fr_opt_parallel_range(B * L, 1, min_rows(H), gate_body, &c);
}

/* Samples: gate a, y b, dout dy; dy out y, dgate d1. */
static void gate_bwd_body(void *arg, int64_t b0, int64_t b1)
{
    const attn_ctx *c = (const attn_ctx *)arg;
    for (int64_t b = b0; b < b1; b++)
        for (int64_t j = first_col(c, b, GATE_BWD_AVX2); j < c->H; j++) {
            const int64_t o = b * c->L * c->H + j, m = b * c->ldm + j;
            c->d1[m] = fr_gate_bwd_col(c->L, c->H, c->a[m], c->b + o, c->dy + o, c->y + o);
        }
}

void fr_opt_gate_add_bwd(int64_t B, int64_t L, int64_t H, int64_t ldm, const float *gate, const float *y,
                         const float *dout, float *dy, float *dgate)
{
    if (B <= 0 || L <= 0 || H <= 0) return;
    attn_ctx c = {L, H, ldm, 0, 0.0f, NULL, gate, y, dout, dy, dgate, NULL};
    fr_opt_parallel_range(B, 1, min_rows(L * H), gate_bwd_body, &c);
}
