/* Suite `opt`: every op that opt overrides is bitwise equal (memcmp) to ref, at thread
 * counts 1, 2, 3 and 5, over shapes that straddle the kernel's blocks (MR = 6, NR = 16,
 * KC = 256 in opt/opt_gemm.c, the small path's limits in opt/opt_gemm_small.c; 8-lane chunks;
 * 16/32-column strips), with accumulate
 * variants and inputs whose magnitudes span many binades, so that any change of
 * summation order changes the bits. Each order check also asserts that a deliberately
 * reordered computation DIFFERS from ref on the same inputs (the test can see an order
 * change). Last, a forward + backward of the shapes-s model gives identical outputs and
 * gradients with ref and opt at 1 and 3 threads.
 * Bitwise means memcmp, except that any two NaNs match (see first_diff).
 * Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include "flowrl/elem.h"
#include "flowrl/model.h"
#include "flowrl/adamw.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "flowrl/opt.h"
#include "flowrl/reduce.h"
#include "flowrl/embed.h"
#include "flowrl/philox.h"
#include "opt/opt_internal.h"
#include "opt/opt_vtrig.h"
#include "tests/ops_check.h"

static const int k_threads[] = {1, 2, 3, 5};
#define N_THREADS (int)(sizeof k_threads / sizeof k_threads[0])

/* The opt backend: one handle, opened on first use (tests set its threads per case). */
static fr_backend *ops_opt(void)
{
    static fr_backend be;
    if (!be.ops) be = fr_test_backend("opt", 0, 0);
    return &be;
}

/* Uniform in [-1, 1) times 2^e, e uniform in [-emax, emax]: partial sums of such terms
 * lose different low bits in different orders. */
static void fill_spread(uint64_t *s, float *x, int64_t n, int emax)
{
    for (int64_t i = 0; i < n; i++) {
        int e = (int)(fr_test_next(s) % (uint64_t)(2 * emax + 1)) - emax;
        x[i] = ldexpf(fr_test_uniform(s, -1.0f, 1.0f), e);
    }
}

/* First index where the float arrays differ bitwise, or -1. Two NaNs count as equal
 * whatever their sign and payload: NaN bits are outside the determinism contract
 * (docs/determinism.md "Limits of the promise"; the compiler may swap the operands of a
 * commutative op, and x86 propagates the first operand's NaN). A NaN against a number
 * is a difference. */
/* ---- GEMM ------------------------------------------------------------------------------- */

typedef struct {
    int64_t M, N, K;
} shape3;

/* 1x1, K = 1, K = 0, M or N = 1, edges of the 6x16 tile, K around KC = 256 and 2 KC,
 * sizes where threads split rows (M tiles > N tiles) or columns, a large one, and M past the
 * row block MC = 384 (A packed when ta, read in place otherwise) with an edge tile in the last
 * block. */
static const shape3 k_gemm_shapes[] = {
    {1, 1, 1},     {1, 1, 0},     {4, 3, 0},     {3, 5, 1},     {1, 17, 9},   {5, 1, 100},
    {7, 9, 13},    {6, 16, 1},    {6, 16, 256},  {6, 16, 257},  {7, 17, 255}, {12, 32, 512},
    {13, 33, 513}, {5, 15, 300},  {37, 53, 300}, {100, 40, 200}, {65, 70, 300},
    {31, 200, 129}, {64, 256, 768}, {200, 7, 600}, {400, 37, 300},
    /* opt/opt_gemm_small.c's path (N <= 32, K <= 64, <= 2^16 fmas): the DiT's attention shapes,
     * every row-group tail (8, 4, 2, 1 rows), a masked last vector, N = 32 and K = 64 at the
     * limits, and just past them (the tiled path) */
    {21, 21, 32},  {21, 32, 21},  {32, 21, 21},  {15, 9, 64},   {8, 32, 64},  {3, 31, 7},
    {31, 8, 5},    {1, 33, 5},    {9, 20, 65},   {40, 32, 60},
};
#define N_GEMM_SHAPES (int)(sizeof k_gemm_shapes / sizeof k_gemm_shapes[0])

/* Stores the dense (rows, cols) matrix src as a GEMM operand: as is, or transposed. */
static void store_operand(int t, int64_t rows, int64_t cols, const float *src, float *dst)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) dst[t ? c * rows + r : r * cols + c] = src[r * cols + c];
}

/* Runs ref once and opt at every thread count on the same inputs; returns 1 if a
 * reversed-k chain differs from ref somewhere (the order is visible on these inputs). */
static int check_gemm_case(fr_backend *ref, fr_backend *opt, int ta, int tb, int acc,
                           int64_t M, int64_t N, int64_t K, uint64_t *s, uint64_t seed)
{
    float *opA = ops_alloc(M * K), *opB = ops_alloc(K * N), *A = ops_alloc(M * K);
    float *B = ops_alloc(K * N), *C0 = ops_alloc(M * N), *Cr = ops_alloc(M * N);
    float *Co = ops_alloc(M * N);
    fill_spread(s, opA, M * K, 12);
    fill_spread(s, opB, K * N, 12);
    fill_spread(s, C0, M * N, 12);
    store_operand(ta, M, K, opA, A);
    store_operand(tb, K, N, opB, B);
    memcpy(Cr, C0, (size_t)(M * N) * sizeof *Cr);
    ref->ops->gemm(ta, tb, M, N, K, A, B, Cr, acc);
    for (int t = 0; t < N_THREADS; t++) {
        fr_opt_set_threads(k_threads[t]);
        memcpy(Co, C0, (size_t)(M * N) * sizeof *Co);
        opt->ops->gemm(ta, tb, M, N, K, A, B, Co, acc);
        ASSERT_SAME(Cr, Co, M * N, "gemm ta=%d tb=%d acc=%d M=%lld N=%lld K=%lld threads=%d seed=%#llx",
                    ta, tb, acc, (long long)M, (long long)N, (long long)K, k_threads[t],
                    (unsigned long long)seed);
    }
    fr_opt_set_threads(0);
    int differs = 0;
    for (int64_t i = 0; i < M && !differs; i++)
        for (int64_t j = 0; j < N && !differs; j++) {
            float r = acc ? C0[i * N + j] : 0.0f;
            for (int64_t k = K - 1; k >= 0; k--) r = fmaf(opA[i * K + k], opB[k * N + j], r);
            differs = !fr_test_bits_equal(r, Cr[i * N + j]);
        }
    free(opA), free(opB), free(A), free(B), free(C0), free(Cr), free(Co);
    return differs;
}

START_TEST(test_gemm_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7001), s = seed;
    for (int c = 0; c < N_GEMM_SHAPES; c++) {
        const shape3 *g = &k_gemm_shapes[c];
        int any_differs = 0;
        for (int v = 0; v < 8; v++)
            any_differs |= check_gemm_case(ref, opt, v & 1, (v >> 1) & 1, (v >> 2) & 1, g->M, g->N,
                                           g->K, &s, seed);
        /* With K >= 3 terms of spread magnitudes a reversed chain must show somewhere. */
        if (g->K >= 3 && g->M * g->N >= 16)
            ck_assert_msg(any_differs, "gemm M=%lld N=%lld K=%lld: a reversed-k chain equals ref "
                          "everywhere; the inputs cannot detect an order change (seed=%#llx)",
                          (long long)g->M, (long long)g->N, (long long)g->K,
                          (unsigned long long)seed);
    }
}
END_TEST

START_TEST(test_gemm_large)
{
    /* 256 x 512 x 768: three k blocks, many tiles, every thread count splits it. */
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7002), s = seed;
    for (int v = 0; v < 4; v++) {
        int ta = v & 1, tb = (v >> 1) & 1;
        int d = check_gemm_case(ref, opt, ta, tb, v == 1 || v == 2, 256, 512, 768, &s, seed);
        ck_assert_msg(d, "reversed chain equals ref on 256x512x768 (seed=%#llx)",
                      (unsigned long long)seed);
    }
}
END_TEST

/* What fr_opt_simd_active() must say when FLOWRL_OPT_NO_SIMD is unset: AVX2+FMA where the
 * x86 CPU has both, NEON on every aarch64, else the portable path (x86 builtins only on
 * x86, so the runner builds everywhere). */
static int simd_expected(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#elif defined(__aarch64__)
    return 1;
#else
    return 0;
#endif
}

START_TEST(test_gemm_portable_path)
{
    /* The plain-C fallback (CPUs without AVX2) follows the same order: run it by
     * pretending AVX2 is absent. Only the table built after the env change uses it,
     * so this runs in the forked test process with its own table. */
    setenv("FLOWRL_OPT_NO_SIMD", "1", 1);
    fr_ops t;
    memset(&t, 0, sizeof t);
    fr_ref_fill(&t);
    ck_assert_int_eq(fr_opt_init(&t), FR_OK);
    ck_assert_int_eq(fr_opt_simd_active(), 0);
    ck_assert_str_eq(fr_opt_simd_name(), "portable");
    fr_backend *ref = fr_test_ref_be();
    uint64_t seed = ops_seed(0x0b7003), s = seed;
    fr_backend portable = *ref;
    portable.ops = &t;
    for (int v = 0; v < 8; v++) check_gemm_case(ref, &portable, v & 1, (v >> 1) & 1, (v >> 2) & 1, 37, 53, 300, &s, seed);
    /* and one elementwise / layer-norm path each */
    float x[333], g[333], b[333], y1[333 * 3], y2[333 * 3], mean[3], rstd[3], m2[3], r2[3];
    fill_spread(&s, x, 333, 8);
    fill_spread(&s, g, 333, 2);
    fill_spread(&s, b, 333, 2);
    float xx[999];
    for (int i = 0; i < 999; i++) xx[i] = x[i % 333] * (float)(1 + i / 333);
    ref->ops->layernorm_fwd(3, 333, xx, g, b, 1e-5f, y1, mean, rstd);
    t.layernorm_fwd(3, 333, xx, g, b, 1e-5f, y2, m2, r2);
    ASSERT_SAME(y1, y2, 999, "portable layernorm_fwd seed=%#llx", (unsigned long long)seed);
    fr_opt_init(&t); /* env still set: stays portable */
    unsetenv("FLOWRL_OPT_NO_SIMD");
    fr_opt_init(&t); /* back to SIMD for the rest of this process */
    ck_assert_int_eq(fr_opt_simd_active(), simd_expected());
#if defined(__aarch64__)
    ck_assert_str_eq(fr_opt_simd_name(), "neon");
#else
    ck_assert_str_eq(fr_opt_simd_name(), simd_expected() ? "avx2+fma" : "portable");
#endif
}
END_TEST

/* ---- bias ---------------------------------------------------------------------------------- */

START_TEST(test_bias_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7004), s = seed;
    static const int64_t shapes[][2] = {{0, 5}, {1, 1}, {3, 7}, {5, 8}, {9, 31}, {7, 33},
                                        {300, 333}, {64, 768}, {1000, 65}, {257, 17}};
    int seen_order = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t M = shapes[c][0], N = shapes[c][1];
        float *y0 = ops_alloc(M * N), *yr = ops_alloc(M * N), *yo = ops_alloc(M * N);
        float *b = ops_alloc(N), *db0 = ops_alloc(N), *dbr = ops_alloc(N), *dbo = ops_alloc(N);
        fill_spread(&s, y0, M * N, 12);
        fill_spread(&s, b, N, 12);
        fill_spread(&s, db0, N, 12);
        memcpy(yr, y0, (size_t)(M * N) * sizeof(float));
        ref->ops->bias_add(M, N, yr, b);
        for (int t = 0; t < N_THREADS; t++) {
            fr_opt_set_threads(k_threads[t]);
            memcpy(yo, y0, (size_t)(M * N) * sizeof(float));
            opt->ops->bias_add(M, N, yo, b);
            ASSERT_SAME(yr, yo, M * N, "bias_add M=%lld N=%lld threads=%d seed=%#llx", (long long)M,
                        (long long)N, k_threads[t], (unsigned long long)seed);
            for (int acc = 0; acc < 2; acc++) {
                memcpy(dbr, db0, (size_t)N * sizeof(float));
                memcpy(dbo, db0, (size_t)N * sizeof(float));
                ref->ops->bias_grad(M, N, y0, dbr, acc);
                opt->ops->bias_grad(M, N, y0, dbo, acc);
                ASSERT_SAME(dbr, dbo, N, "bias_grad M=%lld N=%lld acc=%d threads=%d seed=%#llx",
                            (long long)M, (long long)N, acc, k_threads[t], (unsigned long long)seed);
            }
        }
        /* rows summed in reverse give other bits somewhere (order visible) */
        for (int64_t j = 0; j < N && M >= 3; j++) {
            float r = 0.0f;
            for (int64_t i = M - 1; i >= 0; i--) r = r + y0[i * N + j];
            if (!fr_test_bits_equal(r, dbr[j])) seen_order = 1;
        }
        free(y0), free(yr), free(yo), free(b), free(db0), free(dbr), free(dbo);
    }
    fr_opt_set_threads(0);
    ck_assert_msg(seen_order, "reversed row order never changed a column sum (seed=%#llx)",
                  (unsigned long long)seed);
}
END_TEST

/* ---- activations --------------------------------------------------------------------------- */

/* Spread values plus the special ones (+-0, +-inf, NaN, huge, tiny, subnormal). */
static void fill_act_input(uint64_t *s, float *x, int64_t n)
{
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f,
                                    1e-30f, -1e-40f, 9.5f, -9.5f, 88.0f, -104.0f, 1.0f};
    const int ns = (int)(sizeof special / sizeof special[0]);
    for (int64_t i = 0; i < n; i++) {
        if (fr_test_next(s) % 16 == 0) x[i] = special[fr_test_next(s) % (uint64_t)ns];
        else x[i] = ldexpf(fr_test_uniform(s, -1.0f, 1.0f), (int)(fr_test_next(s) % 9) - 4);
    }
}

/* act_fwd_save / act_bwd_saved (the backward from the forward's saved transcendental): ref's and
 * opt's y equal ref's act_fwd (also in place), their s equal each other, and the backward from
 * s equals ref's act_bwd, both accumulate modes. */
static void check_act_saved(fr_backend *ref, fr_backend *opt, fr_act a, int64_t n, const float *x, const float *dy,
                            const float *d0, uint64_t seed)
{
    float *y0 = ops_alloc(n), *yr = ops_alloc(n), *yo = ops_alloc(n), *sr = ops_alloc(n), *so = ops_alloc(n);
    ref->ops->act_fwd(a, n, x, y0);
    ref->ops->act_fwd_save(a, n, x, yr, sr);
    opt->ops->act_fwd_save(a, n, x, yo, so);
    ASSERT_SAME(y0, yr, n, "ref act_fwd_save y act=%d n=%lld seed=%#llx", (int)a, (long long)n, (unsigned long long)seed);
    ASSERT_SAME(y0, yo, n, "opt act_fwd_save y act=%d n=%lld seed=%#llx", (int)a, (long long)n, (unsigned long long)seed);
    ASSERT_SAME(sr, so, n, "act_fwd_save s act=%d n=%lld seed=%#llx", (int)a, (long long)n, (unsigned long long)seed);
    memcpy(yo, x, (size_t)n * sizeof(float)); /* in place (y aliases x) */
    opt->ops->act_fwd_save(a, n, yo, yo, so);
    ASSERT_SAME(y0, yo, n, "act_fwd_save in place act=%d n=%lld seed=%#llx", (int)a, (long long)n,
                (unsigned long long)seed);
    ASSERT_SAME(sr, so, n, "act_fwd_save in place s act=%d n=%lld seed=%#llx", (int)a, (long long)n,
                (unsigned long long)seed);
    for (int acc = 0; acc < 2; acc++) {
        memcpy(y0, d0, (size_t)n * sizeof(float));
        memcpy(yr, d0, (size_t)n * sizeof(float));
        memcpy(yo, d0, (size_t)n * sizeof(float));
        ref->ops->act_bwd(a, n, x, dy, y0, acc);
        ref->ops->act_bwd_saved(a, n, x, sr, dy, yr, acc);
        opt->ops->act_bwd_saved(a, n, x, sr, dy, yo, acc);
        ASSERT_SAME(y0, yr, n, "ref act_bwd_saved act=%d n=%lld acc=%d seed=%#llx", (int)a, (long long)n, acc,
                    (unsigned long long)seed);
        ASSERT_SAME(y0, yo, n, "opt act_bwd_saved act=%d n=%lld acc=%d seed=%#llx", (int)a, (long long)n, acc,
                    (unsigned long long)seed);
    }
    free(y0), free(yr), free(yo), free(sr), free(so);
}

START_TEST(test_act_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7005), s = seed;
    static const int64_t sizes[] = {0, 1, 7, 8, 9, 100, 4099, 70001};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int64_t n = sizes[c];
        float *x = ops_alloc(n), *dy = ops_alloc(n), *d0 = ops_alloc(n);
        float *yr = ops_alloc(n), *yo = ops_alloc(n);
        fill_act_input(&s, x, n);
        fill_act_input(&s, dy, n);
        fill_spread(&s, d0, n, 6);
        for (int a = 0; a < FR_ACT_COUNT; a++)
            for (int t = 0; t < N_THREADS; t++) {
                fr_opt_set_threads(k_threads[t]);
                ref->ops->act_fwd((fr_act)a, n, x, yr);
                opt->ops->act_fwd((fr_act)a, n, x, yo);
                ASSERT_SAME(yr, yo, n, "act_fwd act=%d n=%lld threads=%d seed=%#llx", a, (long long)n,
                            k_threads[t], (unsigned long long)seed);
                memcpy(yo, x, (size_t)n * sizeof(float)); /* in place (y aliases x) */
                opt->ops->act_fwd((fr_act)a, n, yo, yo);
                ASSERT_SAME(yr, yo, n, "act_fwd in place act=%d n=%lld threads=%d seed=%#llx", a,
                            (long long)n, k_threads[t], (unsigned long long)seed);
                for (int acc = 0; acc < 2; acc++) {
                    memcpy(yr, d0, (size_t)n * sizeof(float));
                    memcpy(yo, d0, (size_t)n * sizeof(float));
                    ref->ops->act_bwd((fr_act)a, n, x, dy, yr, acc);
                    opt->ops->act_bwd((fr_act)a, n, x, dy, yo, acc);
                    ASSERT_SAME(yr, yo, n, "act_bwd act=%d n=%lld acc=%d threads=%d seed=%#llx", a,
                                (long long)n, acc, k_threads[t], (unsigned long long)seed);
                }
                check_act_saved(ref, opt, (fr_act)a, n, x, dy, d0, seed);
            }
        free(x), free(dy), free(d0), free(yr), free(yo);
    }
    fr_opt_set_threads(0);
}
END_TEST

START_TEST(test_act_tanh_sweep)
{
    /* opt ports fr_tanhf and fr_sigmoidf lane by lane (opt/opt_vtanh.h, opt/opt_vexp.h):
     * GELU-tanh, tanh, SiLU and sigmoid, forward and backward, over every 4099th float bit
     * pattern (all signs, binades, subnormals, inf, NaN) plus +-8 ulps around the branch points
     * of fr_tanhf (|x| = 9.5), of GELU's inner argument and of fr_sigmoidf (-|x| = -104, x = 0),
     * at two thread counts. */
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    const int64_t stride = 4099, n_sweep = (int64_t)((0x100000000ull + stride - 1) / stride);
    static const float pivots[] = {9.5f, -9.5f, 4.75f, 0.0f, 1.0f, 3.0f, 0x1p-12f, 5.6f, 104.0f, -104.0f, -0.0f};
    const int n_piv = (int)(sizeof pivots / sizeof pivots[0]);
    const int64_t n = n_sweep + n_piv * 17;
    float *x = ops_alloc(n), *dy = ops_alloc(n), *yr = ops_alloc(n), *yo = ops_alloc(n);
    for (int64_t i = 0; i < n_sweep; i++) {
        uint32_t u = (uint32_t)((uint64_t)i * stride);
        memcpy(&x[i], &u, 4);
        dy[i] = 1.0f + (float)(i % 7) * 0.25f;
    }
    for (int p = 0; p < n_piv; p++)
        for (int d = -8; d <= 8; d++) {
            int64_t i = n_sweep + p * 17 + (d + 8);
            float v = pivots[p];
            for (int k = 0; k < (d < 0 ? -d : d); k++) v = nextafterf(v, d < 0 ? -INFINITY : INFINITY);
            x[i] = v;
            dy[i] = -0.75f;
        }
    static const fr_act acts[] = {FR_ACT_GELU_TANH, FR_ACT_TANH, FR_ACT_SILU, FR_ACT_SIGMOID};
    for (int a = 0; a < 4; a++)
        for (int t = 0; t < 2; t++) {
            fr_opt_set_threads(t ? 2 : 1);
            ref->ops->act_fwd(acts[a], n, x, yr);
            opt->ops->act_fwd(acts[a], n, x, yo);
            ASSERT_SAME(yr, yo, n, "act_fwd sweep act=%d threads=%d", (int)acts[a], t + 1);
            ref->ops->act_bwd(acts[a], n, x, dy, yr, 0);
            opt->ops->act_bwd(acts[a], n, x, dy, yo, 0);
            ASSERT_SAME(yr, yo, n, "act_bwd sweep act=%d threads=%d", (int)acts[a], t + 1);
            check_act_saved(ref, opt, acts[a], n, x, dy, dy, 0);
        }
    fr_opt_set_threads(0);
    free(x), free(dy), free(yr), free(yo);
}
END_TEST

/* The tanh family's kernels run 4, 2 or 1 vectors per step, the sigmoid family's 1, then a
 * scalar tail: every length 1..67 (each mix plus a tail), special values included, forward
 * and backward (both accumulate modes), one thread so that one call sees the whole length. */
START_TEST(test_act_tanh_lengths)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b700a), s = seed;
    float x[67], dy[67], d0[67], yr[67], yo[67];
    static const fr_act acts[] = {FR_ACT_GELU_TANH, FR_ACT_TANH, FR_ACT_SILU, FR_ACT_SIGMOID};
    fr_opt_set_threads(1);
    for (int64_t n = 1; n <= 67; n++) {
        fill_act_input(&s, x, n);
        fill_act_input(&s, dy, n);
        fill_spread(&s, d0, n, 6);
        for (int a = 0; a < 4; a++) {
            ref->ops->act_fwd(acts[a], n, x, yr);
            opt->ops->act_fwd(acts[a], n, x, yo);
            ASSERT_SAME(yr, yo, n, "act_fwd act=%d n=%lld seed=%#llx", (int)acts[a], (long long)n,
                        (unsigned long long)seed);
            for (int acc = 0; acc < 2; acc++) {
                memcpy(yr, d0, (size_t)n * sizeof(float));
                memcpy(yo, d0, (size_t)n * sizeof(float));
                ref->ops->act_bwd(acts[a], n, x, dy, yr, acc);
                opt->ops->act_bwd(acts[a], n, x, dy, yo, acc);
                ASSERT_SAME(yr, yo, n, "act_bwd act=%d n=%lld acc=%d seed=%#llx", (int)acts[a], (long long)n, acc,
                            (unsigned long long)seed);
            }
            check_act_saved(ref, opt, acts[a], n, x, dy, d0, seed);
        }
    }
    fr_opt_set_threads(0);
}
END_TEST

/* opt's unary exp ports fr_expf lane by lane (fr_v_expf, opt/opt_vexp.h): every 4099th float
 * bit pattern plus +-8 ulps around its branch points (89, -104, 0), lengths that leave a scalar
 * tail, at two thread counts. */
START_TEST(test_exp_sweep)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    const int64_t stride = 4099, n_sweep = (int64_t)((0x100000000ull + stride - 1) / stride);
    static const float pivots[] = {89.0f, -104.0f, 0.0f, -0.0f, 88.72f, -87.33f, -103.97f};
    const int n_piv = (int)(sizeof pivots / sizeof pivots[0]);
    const int64_t n = n_sweep + n_piv * 17 + 5;
    float *x = ops_alloc(n), *yr = ops_alloc(n), *yo = ops_alloc(n);
    for (int64_t i = 0; i < n_sweep; i++) {
        uint32_t u = (uint32_t)((uint64_t)i * stride);
        memcpy(&x[i], &u, 4);
    }
    for (int p = 0; p < n_piv; p++)
        for (int d = -8; d <= 8; d++) {
            float v = pivots[p];
            for (int k = 0; k < (d < 0 ? -d : d); k++) v = nextafterf(v, d < 0 ? -INFINITY : INFINITY);
            x[n_sweep + p * 17 + (d + 8)] = v;
        }
    for (int64_t i = n - 5; i < n; i++) x[i] = -50.0f + (float)i * 0.001f;
    for (int t = 0; t < 2; t++) {
        fr_opt_set_threads(t ? 2 : 1);
        for (int64_t len = n - 3; len <= n; len++) {
            ref->ops->unary(FR_UN_EXP, len, x, yr);
            opt->ops->unary(FR_UN_EXP, len, x, yo);
            ASSERT_SAME(yr, yo, len, "exp sweep threads=%d n=%lld", t + 1, (long long)len);
        }
    }
    fr_opt_set_threads(0);
    free(x), free(yr), free(yo);
}
END_TEST

/* A softmax test row of width N: kind 0 random logits of scale 2^(0..9) (exps down to +0 and
 * subnormal), 1 with specials (NaN, +-inf, +-0) sprinkled, 2 equal values, 3 all -inf. */
static void fill_softmax_row(uint64_t *s, float *x, int64_t N, int kind)
{
    const float scale = ldexpf(1.0f, (int)(fr_test_next(s) % 10));
    static const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -1e30f, 1e30f};
    for (int64_t j = 0; j < N; j++) {
        if (kind == 2) x[j] = 0.75f;
        else if (kind == 3) x[j] = -INFINITY;
        else if (kind == 1 && fr_test_next(s) % 6 == 0) x[j] = special[fr_test_next(s) % 7];
        else x[j] = scale * fr_test_uniform(s, -1.0f, 1.0f);
    }
}

/* softmax_rows and its backward (AVX2 rows in opt/opt_attn.c: the lanes' max, fr_v_expf, the
 * sum's lanes in the scalar order) against ref: widths 1..40 and around 64 and 256 (every vector
 * and tail mix), four kinds of rows, alpha 1, 0.125 and -2, in place (p aliases x, dx aliases dp)
 * too, at 1, 2 and 3 threads. */
START_TEST(test_softmax_rows_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b70f1), s = seed;
    static const float alphas[] = {1.0f, 0.125f, -2.0f};
    enum { R = 8 };
    for (int64_t N = 1; N <= 262; N = N < 40 ? N + 1 : N < 63 ? 63 : N < 66 ? N + 1 : N < 255 ? 255 : N + 7) {
        float *x = ops_alloc(R * N), *dp = ops_alloc(R * N), *pr = ops_alloc(R * N), *po = ops_alloc(R * N);
        float *dr = ops_alloc(R * N), *dO = ops_alloc(R * N);
        for (int r = 0; r < R; r++) {
            fill_softmax_row(&s, x + r * N, N, r % 4);
            for (int64_t j = 0; j < N; j++) dp[r * N + j] = fr_test_uniform(&s, -1.0f, 1.0f);
        }
        for (int a = 0; a < 3; a++)
            for (int t = 1; t <= 3; t++) {
                fr_opt_set_threads(t);
                ref->ops->softmax_rows(R, N, alphas[a], x, pr);
                opt->ops->softmax_rows(R, N, alphas[a], x, po);
                ASSERT_SAME(pr, po, R * N, "softmax N=%lld alpha=%g threads=%d seed=%#llx", (long long)N,
                            (double)alphas[a], t, (unsigned long long)seed);
                memcpy(po, x, sizeof(float) * (size_t)(R * N));
                opt->ops->softmax_rows(R, N, alphas[a], po, po);
                ASSERT_SAME(pr, po, R * N, "softmax in place N=%lld alpha=%g threads=%d", (long long)N,
                            (double)alphas[a], t);
                ref->ops->softmax_rows_bwd(R, N, alphas[a], pr, dp, dr);
                opt->ops->softmax_rows_bwd(R, N, alphas[a], pr, dp, dO);
                ASSERT_SAME(dr, dO, R * N, "softmax bwd N=%lld alpha=%g threads=%d seed=%#llx", (long long)N,
                            (double)alphas[a], t, (unsigned long long)seed);
                memcpy(dO, dp, sizeof(float) * (size_t)(R * N));
                opt->ops->softmax_rows_bwd(R, N, alphas[a], pr, dO, dO);
                ASSERT_SAME(dr, dO, R * N, "softmax bwd in place N=%lld alpha=%g threads=%d", (long long)N,
                            (double)alphas[a], t);
            }
        free(x), free(dp), free(pr), free(po), free(dr), free(dO);
    }
    fr_opt_set_threads(0);
}
END_TEST

/* ---- layer norm ------------------------------------------------------------------------------ */

START_TEST(test_layernorm_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7006), s = seed;
    static const int64_t shapes[][2] = {{1, 1}, {3, 7},    {2, 8},   {5, 9},   {4, 16},
                                        {3, 17}, {64, 255}, {13, 256}, {200, 256}, {7, 768},
                                        {100, 33}, {0, 8}};
    int seen_order = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t M = shapes[c][0], D = shapes[c][1];
        float *x = ops_alloc(M * D), *gm = ops_alloc(D), *bt = ops_alloc(D), *dy = ops_alloc(M * D);
        float *yr = ops_alloc(M * D), *yo = ops_alloc(M * D), *dx0 = ops_alloc(M * D);
        float *mr = ops_alloc(M), *rr = ops_alloc(M), *mo = ops_alloc(M), *ro = ops_alloc(M);
        float *p0 = ops_alloc(2 * D), *pr = ops_alloc(2 * D), *po = ops_alloc(2 * D);
        /* rows with an offset and spread entries, so the statistics are order-sensitive */
        for (int64_t i = 0; i < M; i++) {
            float off = fr_test_uniform(&s, -50.0f, 50.0f);
            fill_spread(&s, x + i * D, D, 10);
            for (int64_t j = 0; j < D; j++) x[i * D + j] += off;
        }
        fill_spread(&s, gm, D, 3);
        fill_spread(&s, bt, D, 3);
        fill_spread(&s, dy, M * D, 8);
        fill_spread(&s, dx0, M * D, 4);
        fill_spread(&s, p0, 2 * D, 4);
        for (int affine = 0; affine < 2; affine++) {
            const float *g = affine ? gm : NULL, *b = affine ? bt : NULL;
            ref->ops->layernorm_fwd(M, D, x, g, b, 1e-5f, yr, mr, rr);
            for (int t = 0; t < N_THREADS; t++) {
                fr_opt_set_threads(k_threads[t]);
                opt->ops->layernorm_fwd(M, D, x, g, b, 1e-5f, yo, mo, ro);
                ASSERT_SAME(yr, yo, M * D, "ln_fwd y M=%lld D=%lld affine=%d threads=%d seed=%#llx",
                            (long long)M, (long long)D, affine, k_threads[t], (unsigned long long)seed);
                ASSERT_SAME(mr, mo, M, "ln_fwd mean M=%lld D=%lld threads=%d seed=%#llx", (long long)M,
                            (long long)D, k_threads[t], (unsigned long long)seed);
                ASSERT_SAME(rr, ro, M, "ln_fwd rstd M=%lld D=%lld threads=%d seed=%#llx", (long long)M,
                            (long long)D, k_threads[t], (unsigned long long)seed);
                for (int acc = 0; acc < 2; acc++)
                    for (int params = 0; params < 2; params++) {
                        float *dxr = yr, *dxo = yo; /* reuse as dx buffers */
                        memcpy(dxr, dx0, (size_t)(M * D) * sizeof(float));
                        memcpy(dxo, dx0, (size_t)(M * D) * sizeof(float));
                        memcpy(pr, p0, (size_t)(2 * D) * sizeof(float));
                        memcpy(po, p0, (size_t)(2 * D) * sizeof(float));
                        ref->ops->layernorm_bwd(M, D, x, g, mr, rr, dy, dxr, params ? pr : NULL,
                                           params ? pr + D : NULL, acc);
                        opt->ops->layernorm_bwd(M, D, x, g, mr, rr, dy, dxo, params ? po : NULL,
                                           params ? po + D : NULL, acc);
                        ASSERT_SAME(dxr, dxo, M * D,
                                    "ln_bwd dx M=%lld D=%lld affine=%d acc=%d threads=%d seed=%#llx",
                                    (long long)M, (long long)D, affine, acc, k_threads[t],
                                    (unsigned long long)seed);
                        ASSERT_SAME(pr, po, 2 * D,
                                    "ln_bwd dgamma|dbeta M=%lld D=%lld affine=%d acc=%d threads=%d "
                                    "seed=%#llx",
                                    (long long)M, (long long)D, affine, acc, k_threads[t],
                                    (unsigned long long)seed);
                    }
                ref->ops->layernorm_fwd(M, D, x, g, b, 1e-5f, yr, mr, rr); /* restore yr */
            }
        }
        /* a plain sequential row sum gives another mean somewhere (order visible) */
        for (int64_t i = 0; i < M && D >= 9; i++) {
            float sum = 0.0f;
            for (int64_t j = 0; j < D; j++) sum += x[i * D + j];
            if (!fr_test_bits_equal(sum / (float)D, mr[i])) seen_order = 1;
        }
        free(x), free(gm), free(bt), free(dy), free(yr), free(yo), free(dx0);
        free(mr), free(rr), free(mo), free(ro), free(p0), free(pr), free(po);
    }
    fr_opt_set_threads(0);
    ck_assert_msg(seen_order, "sequential row sums equal the canonical mean everywhere (seed=%#llx)",
                  (unsigned long long)seed);
}
END_TEST

/* ---- elementwise and AdamW ------------------------------------------------------------------- */

START_TEST(test_eltwise_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7007), s = seed;
    static const int64_t sizes[] = {0, 1, 7, 9, 31, 1000, 100003};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int64_t n = sizes[c];
        float *a = ops_alloc(n), *b = ops_alloc(n), *r = ops_alloc(n), *o = ops_alloc(n);
        float *buf_r = ops_alloc(n + 40), *buf_o = ops_alloc(n + 40);
        fill_act_input(&s, a, n);
        fill_act_input(&s, b, n);
        for (int t = 0; t < N_THREADS; t++) {
            fr_opt_set_threads(k_threads[t]);
            for (int op = 0; op < FR_BIN_COUNT; op++) {
                ref->ops->binary((fr_binop)op, n, a, b, r);
                opt->ops->binary((fr_binop)op, n, a, b, o);
                ASSERT_SAME(r, o, n, "binary op=%d n=%lld threads=%d seed=%#llx", op, (long long)n,
                            k_threads[t], (unsigned long long)seed);
                memcpy(o, a, (size_t)n * sizeof(float));
                opt->ops->binary((fr_binop)op, n, o, b, o); /* out aliases a */
                ASSERT_SAME(r, o, n, "binary in place op=%d n=%lld threads=%d seed=%#llx", op,
                            (long long)n, k_threads[t], (unsigned long long)seed);
            }
            for (int op = 0; op < FR_UN_COUNT; op++) {
                ref->ops->unary((fr_unop)op, n, a, r);
                opt->ops->unary((fr_unop)op, n, a, o);
                ASSERT_SAME(r, o, n, "unary op=%d n=%lld threads=%d seed=%#llx", op, (long long)n,
                            k_threads[t], (unsigned long long)seed);
            }
            static const float ab[][2] = {{0.5f, 1.5f}, {-3.0f, 0.0f}, {1e-3f, 0.999f}, {0.0f, -1.0f}};
            for (size_t k = 0; k < sizeof ab / sizeof ab[0]; k++) {
                memcpy(r, b, (size_t)n * sizeof(float));
                memcpy(o, b, (size_t)n * sizeof(float));
                ref->ops->axpby(n, ab[k][0], a, ab[k][1], r);
                opt->ops->axpby(n, ab[k][0], a, ab[k][1], o);
                ASSERT_SAME(r, o, n, "axpby k=%zu n=%lld threads=%d seed=%#llx", k, (long long)n,
                            k_threads[t], (unsigned long long)seed);
                ref->ops->scale(n, ab[k][0], a, r);
                opt->ops->scale(n, ab[k][0], a, o);
                ASSERT_SAME(r, o, n, "scale k=%zu n=%lld threads=%d seed=%#llx", k, (long long)n,
                            k_threads[t], (unsigned long long)seed);
                ref->ops->fill(n, ab[k][1], r);
                opt->ops->fill(n, ab[k][1], o);
                ASSERT_SAME(r, o, n, "fill n=%lld threads=%d", (long long)n, k_threads[t]);
            }
            ref->ops->copy(n, a, r);
            opt->ops->copy(n, a, o);
            ASSERT_SAME(r, o, n, "copy n=%lld threads=%d", (long long)n, k_threads[t]);
            /* overlapping copies, both directions */
            for (int dir = 0; dir < 2; dir++) {
                for (int64_t i = 0; i < n + 40; i++) buf_r[i] = buf_o[i] = (float)i;
                int64_t from = dir ? 0 : 37, to = dir ? 37 : 0;
                ref->ops->copy(n, buf_r + from, buf_r + to);
                opt->ops->copy(n, buf_o + from, buf_o + to);
                ASSERT_SAME(buf_r, buf_o, n + 40, "overlapping copy dir=%d n=%lld threads=%d", dir,
                            (long long)n, k_threads[t]);
            }
        }
        free(a), free(b), free(r), free(o), free(buf_r), free(buf_o);
    }
    fr_opt_set_threads(0);
}
END_TEST

START_TEST(test_adamw_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7008), s = seed;
    static const int64_t sizes[] = {1, 7, 8, 9, 1001, 50021};
    /* beta1 = 0.9 takes the lerp's w < 0.5 branch, beta1 = 0.3 the other one. */
    static const double betas[][2] = {{0.9, 0.999}, {0.3, 0.95}};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
        for (size_t bi = 0; bi < 2; bi++) {
            int64_t n = sizes[c];
            float *p = ops_alloc(n), *g = ops_alloc(n), *m = ops_alloc(n), *v = ops_alloc(n);
            float *pr = ops_alloc(n), *mr = ops_alloc(n), *vr = ops_alloc(n);
            float *po = ops_alloc(n), *mo = ops_alloc(n), *vo = ops_alloc(n);
            fill_spread(&s, p, n, 6);
            fill_spread(&s, g, n, 10);
            fill_spread(&s, m, n, 10);
            for (int64_t i = 0; i < n; i++) v[i] = fabsf(ldexpf(fr_test_uniform(&s, 0.0f, 1.0f), -(int)(fr_test_next(&s) % 20)));
            for (int t = 0; t < N_THREADS; t++) {
                fr_opt_set_threads(k_threads[t]);
                memcpy(pr, p, (size_t)n * 4), memcpy(mr, m, (size_t)n * 4), memcpy(vr, v, (size_t)n * 4);
                memcpy(po, p, (size_t)n * 4), memcpy(mo, m, (size_t)n * 4), memcpy(vo, v, (size_t)n * 4);
                for (int64_t step = 1; step <= 3; step++) {
                    fr_adamw_hp hp = fr_adamw_prepare(1e-3, betas[bi][0], betas[bi][1], 1e-8, 0.01, step);
                    ref->ops->adamw(n, pr, g, mr, vr, &hp);
                    opt->ops->adamw(n, po, g, mo, vo, &hp);
                }
                ASSERT_SAME(pr, po, n, "adamw p n=%lld beta1=%g threads=%d seed=%#llx", (long long)n,
                            betas[bi][0], k_threads[t], (unsigned long long)seed);
                ASSERT_SAME(mr, mo, n, "adamw m n=%lld threads=%d", (long long)n, k_threads[t]);
                ASSERT_SAME(vr, vo, n, "adamw v n=%lld threads=%d", (long long)n, k_threads[t]);
            }
            free(p), free(g), free(m), free(v), free(pr), free(mr), free(vr), free(po), free(mo), free(vo);
        }
    fr_opt_set_threads(0);
}
END_TEST

START_TEST(test_reduce_bitwise)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b700a), s = seed;
    static const int64_t shapes[][2] = {{1, 0}, {1, 1}, {3, 7}, {2, 8}, {5, 9}, {4, 17},
                                        {100, 255}, {300, 333}, {0, 4}, {7, 100003}};
    int seen_order = 0;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t M = shapes[c][0], N = shapes[c][1];
        float *x = ops_alloc(M * N), *r = ops_alloc(M), *o = ops_alloc(M);
        fill_spread(&s, x, M * N, 12);
        for (int t = 0; t < N_THREADS; t++) {
            fr_opt_set_threads(k_threads[t]);
            ref->ops->row_sum(M, N, x, r);
            opt->ops->row_sum(M, N, x, o);
            ASSERT_SAME(r, o, M, "row_sum M=%lld N=%lld threads=%d seed=%#llx", (long long)M,
                        (long long)N, k_threads[t], (unsigned long long)seed);
            ref->ops->row_mean(M, N, x, r);
            opt->ops->row_mean(M, N, x, o);
            ASSERT_SAME(r, o, M, "row_mean M=%lld N=%lld threads=%d seed=%#llx", (long long)M,
                        (long long)N, k_threads[t], (unsigned long long)seed);
            float sr, so; /* host memory is ref's and opt's backend memory */
            ref->ops->sum(M * N, x, &sr);
            opt->ops->sum(M * N, x, &so);
            ASSERT_SAME(&sr, &so, 1, "sum n=%lld seed=%#llx", (long long)(M * N), (unsigned long long)seed);
            /* the tensors: each row as its own tensor, plus an empty one */
            const float *xs[4];
            int64_t ns[4];
            int cnt = 0;
            for (int64_t i = 0; i < M && cnt < 3; i++) xs[cnt] = x + i * N, ns[cnt++] = N - i % 3 > 0 ? N - i % 3 : 0;
            xs[cnt] = x, ns[cnt++] = 0;
            float gr, go;
            ref->ops->global_norm(cnt, xs, ns, &gr);
            opt->ops->global_norm(cnt, xs, ns, &go);
            ASSERT_SAME(&gr, &go, 1, "global_norm M=%lld N=%lld seed=%#llx", (long long)M, (long long)N,
                        (unsigned long long)seed);
        }
        float seq = 0.0f;
        for (int64_t i = 0; i < M * N; i++) seq += x[i];
        float canon;
        ref->ops->sum(M * N, x, &canon);
        if (M * N >= 9 && !fr_test_bits_equal(seq, canon)) seen_order = 1;
        free(x), free(r), free(o);
    }
    fr_opt_set_threads(0);
    ck_assert_msg(seen_order, "sequential sums equal the canonical sum everywhere (seed=%#llx)",
                  (unsigned long long)seed);
}
END_TEST

/* row_sumsq_diff's AVX2 rows (opt/opt_traj_rows.c) against ref: every row length 1..67 (full
 * chunks and each partial last chunk), spread values with the special ones mixed in, and
 * rows whose differences overflow to inf. */
START_TEST(test_row_sumsq_diff_lengths)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b700b), s = seed;
    enum { R = 3 };
    float a[R * 67], b[R * 67], yr[R], yo[R];
    fr_opt_set_threads(1);
    for (int64_t D = 1; D <= 67; D++) {
        for (int pass = 0; pass < 2; pass++) {
            fill_spread(&s, a, R * D, 12);
            if (pass) fill_act_input(&s, b, R * D); /* inf, NaN, 1e30, subnormals */
            else fill_spread(&s, b, R * D, 12);
            ref->ops->row_sumsq_diff(R, D, a, b, yr);
            opt->ops->row_sumsq_diff(R, D, a, b, yo);
            ASSERT_SAME(yr, yo, R, "row_sumsq_diff D=%lld pass=%d seed=%#llx", (long long)D, pass,
                        (unsigned long long)seed);
        }
    }
    fr_opt_set_threads(0);
}
END_TEST

/* AWM's float64 rows (opt/opt_awm_rows.c) against ref: awm_sqerr (x0 of row r mod B),
 * row_msd_f64 and kl_grad_add (b1 only, b2 only, both) for every row length 1..67 (full 8-lane
 * chunks and each tail), spread values and, in the second pass, inf, NaN, 1e30 and subnormals, at
 * 1 and 3 threads. Compared as bits (NaN payloads aside). */
static int same_f64(const double *x, const double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&x[i], &y[i], sizeof x[i]) != 0 && !(isnan(x[i]) && isnan(y[i]))) return 0;
    return 1;
}

START_TEST(test_awm_rows)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b70a3), s = seed;
    enum { R = 5, B = 2, DM = 67 };
    static float a[R * DM], b[R * DM], c[R * DM], gr[R * DM], go[R * DM];
    double mr[R], mo[R], cb[R], ce[R];
    for (int r = 0; r < R; r++) cb[r] = 0.3 + 0.11 * r, ce[r] = -1.7 + 0.5 * r;
    const int th[2] = {1, 3};
    for (int t = 0; t < 2; t++) {
        fr_opt_set_threads(th[t]);
        for (int64_t D = 1; D <= DM; D++)
            for (int pass = 0; pass < 2; pass++) {
                fill_spread(&s, a, R * D, 12);
                fill_spread(&s, c, R * D, 12);
                if (pass) fill_act_input(&s, b, R * D);
                else fill_spread(&s, b, R * D, 12);
                ref->ops->awm_sqerr(R, B, D, a, b, c, mr);
                opt->ops->awm_sqerr(R, B, D, a, b, c, mo);
                ck_assert_msg(same_f64(mr, mo, R), "awm_sqerr D=%lld pass=%d threads=%d seed=%#llx", (long long)D,
                              pass, th[t], (unsigned long long)seed);
                ref->ops->row_msd_f64(R, D, a, b, mr);
                opt->ops->row_msd_f64(R, D, a, b, mo);
                ck_assert_msg(same_f64(mr, mo, R), "row_msd_f64 D=%lld pass=%d threads=%d seed=%#llx", (long long)D,
                              pass, th[t], (unsigned long long)seed);
                for (int v = 1; v < 4; v++) {
                    fill_spread(&s, gr, R * D, 12);
                    memcpy(go, gr, sizeof(float) * (size_t)(R * D));
                    const float *b1 = v & 1 ? b : NULL, *b2 = v & 2 ? c : NULL;
                    ref->ops->kl_grad_add(R, D, a, b1, b1 ? cb : NULL, b2, b2 ? ce : NULL, gr);
                    opt->ops->kl_grad_add(R, D, a, b1, b1 ? cb : NULL, b2, b2 ? ce : NULL, go);
                    ASSERT_SAME(gr, go, R * D, "kl_grad_add D=%lld pass=%d b1=%d b2=%d threads=%d seed=%#llx",
                                (long long)D, pass, v & 1, v >> 1, th[t], (unsigned long long)seed);
                }
            }
    }
    fr_opt_set_threads(0);
}
END_TEST

/* kl_grad, logp_backward (opt/opt_traj_rows.c), x0_head_bwd, embed_scatter_add (opt/opt_rows.c) and ema_lerp
 * (opt/opt_adamw.c) on AVX2 against ref: every length / width 1..67 (full vectors and each tail), spread values with
 * the special ones mixed in; kl_grad and logp_backward (cps and Gaussian) in both
 * accumulate modes, x0_head_bwd also in place, embed_scatter_add with repeated and
 * out-of-range ids (S = 2). */
START_TEST(test_row_elementwise_lengths)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b700c), s = seed;
    enum { B = 5, S = 2, NR = 3 };
    static float m[B * 67], mr[B * 67], g0[B * 67], yr[B * 67], yo[B * 67], den[B];
    static float tr[NR * 67], to[NR * 67];
    const int32_t c[B * S] = {0, 2, 1, 0, 2, 2, -1, 1, 3, 0}; /* -1 and 3: outside the table */
    for (int th = 1; th <= 2; th++) {
        fr_opt_set_threads(th);
        fr_opt_set_split_all(th > 1);
        for (int64_t D = 1; D <= 67; D++) {
            const int64_t n = B * D;
            fill_spread(&s, m, n, 8);
            fill_act_input(&s, mr, n);
            fill_spread(&s, g0, n, 8);
            for (int acc = 0; acc < 2; acc++) {
                memcpy(yr, g0, sizeof(float) * (size_t)n);
                memcpy(yo, g0, sizeof(float) * (size_t)n);
                ref->ops->kl_grad(n, 0.37f, m, mr, yr, acc);
                opt->ops->kl_grad(n, 0.37f, m, mr, yo, acc);
                ASSERT_SAME(yr, yo, n, "kl_grad D=%lld acc=%d threads=%d seed=%#llx", (long long)D, acc, th,
                            (unsigned long long)seed);
            }
            for (int b = 0; b < B; b++) den[b] = b == 4 ? 0.0f : ldexpf(1.0f + 0.3f * (float)b, b - 2);
            for (int cps = 0; cps < 2; cps++)
                for (int acc = 0; acc < 2; acc++) {
                    memcpy(yr, g0, sizeof(float) * (size_t)n);
                    memcpy(yo, g0, sizeof(float) * (size_t)n);
                    ref->ops->logp_backward(B, D, cps, 0.18f, m, mr, den, yr, acc);
                    opt->ops->logp_backward(B, D, cps, 0.18f, m, mr, den, yo, acc);
                    ASSERT_SAME(yr, yo, n, "logp_backward D=%lld cps=%d acc=%d threads=%d seed=%#llx", (long long)D,
                                cps, acc, th, (unsigned long long)seed);
                }
            ref->ops->x0_head_bwd(B, D, den, mr, yr);
            opt->ops->x0_head_bwd(B, D, den, mr, yo);
            ASSERT_SAME(yr, yo, n, "x0_head_bwd D=%lld threads=%d seed=%#llx", (long long)D, th,
                        (unsigned long long)seed);
            memcpy(yo, mr, sizeof(float) * (size_t)n); /* in place (dxo aliases dout) */
            opt->ops->x0_head_bwd(B, D, den, yo, yo);
            ASSERT_SAME(yr, yo, n, "x0_head_bwd in place D=%lld threads=%d seed=%#llx", (long long)D, th,
                        (unsigned long long)seed);
            memcpy(yr, g0, sizeof(float) * (size_t)n);
            memcpy(yo, g0, sizeof(float) * (size_t)n);
            ref->ops->ema_lerp(n, 0.9, mr, yr);
            opt->ops->ema_lerp(n, 0.9, mr, yo);
            ASSERT_SAME(yr, yo, n, "ema_lerp D=%lld threads=%d seed=%#llx", (long long)D, th, (unsigned long long)seed);
            fill_spread(&s, tr, NR * D, 8);
            memcpy(to, tr, sizeof(float) * (size_t)(NR * D));
            ref->ops->embed_scatter_add(B, S, D, NR, c, m, tr);
            opt->ops->embed_scatter_add(B, S, D, NR, c, m, to);
            ASSERT_SAME(tr, to, NR * D, "embed_scatter_add H=%lld threads=%d seed=%#llx", (long long)D, th,
                        (unsigned long long)seed);
        }
    }
    fr_opt_set_split_all(0);
    fr_opt_set_threads(0);
}
END_TEST

/* ---- threads API ---------------------------------------------------------------------------- */

START_TEST(test_threads_api)
{
    fr_opt_set_threads(3);
    ck_assert_int_eq(fr_opt_get_threads(), 3);
    fr_opt_set_threads(100000);
    ck_assert_int_eq(fr_opt_get_threads(), FR_OPT_MAX_THREADS);
    fr_opt_set_threads(0);
    ck_assert_int_ge(fr_opt_get_threads(), 1);
    fr_opt_set_threads(-4);
    ck_assert_int_ge(fr_opt_get_threads(), 1);
    const char *const *names = fr_backend_names();
    int found = 0;
    for (int i = 0; names[i]; i++) found |= strcmp(names[i], "opt") == 0;
    ck_assert_msg(found, "opt is not in fr_backend_names()");
    ck_assert_str_eq(ops_opt()->name, "opt");
}
END_TEST

/* The pool's claims (opt/opt_threads.c): every part of every job runs exactly once, and
 * has finished when fr_opt_run returns, whoever ran it (the caller takes the parts no
 * worker has started); under split_all each worker runs its own part. Thousands of tiny
 * jobs back to back, so that workers arrive late, early and in between. */
typedef struct {
    _Atomic int runs[4];
    int nt_seen;
} pool_probe;

static void pool_probe_part(void *arg, int t, int nt)
{
    pool_probe *p = arg;
    atomic_fetch_add(&p->runs[t], 1);
    p->nt_seen = nt;
}

START_TEST(test_pool_claims)
{
    for (int split = 0; split < 2; split++)
        for (int th = 2; th <= 4; th++) {
            fr_opt_set_threads(th);
            fr_opt_set_split_all(split);
            const unsigned long before = fr_opt_worker_parts();
            const int jobs = split ? 300 : 3000; /* split_all waits for every worker: slow on a busy machine */
            for (int job = 0; job < jobs; job++) {
                pool_probe p = {.nt_seen = 0};
                for (int t = 0; t < 4; t++) atomic_init(&p.runs[t], 0);
                fr_opt_run(th, pool_probe_part, &p);
                ck_assert_int_eq(p.nt_seen, th);
                for (int t = 0; t < 4; t++)
                    ck_assert_msg(atomic_load(&p.runs[t]) == (t < th), "job %d, %d threads, split_all %d: part %d ran %d times",
                                  job, th, split, t, atomic_load(&p.runs[t]));
            }
            if (split) /* each worker ran its own part of every job */
                ck_assert_uint_eq(fr_opt_worker_parts() - before, (unsigned long)jobs * (unsigned long)(th - 1));
        }
    fr_opt_set_split_all(0);
    fr_opt_set_threads(0);
}
END_TEST

/* The op table's host_for (flowrl/ops.h; the audit records' digests): every job runs exactly
 * once and has finished when it returns, on ref (in order) and on opt at 1 to 4 threads, where
 * the workers take part (fixed parts: each worker its own part, so a busy machine cannot leave
 * them idle). */
typedef struct {
    _Atomic int runs[200];
    _Atomic int64_t next; /* ref: the order the jobs ran in */
    _Atomic int in_order;
} for_probe;

static void for_probe_job(void *ctx, int64_t i)
{
    for_probe *p = ctx;
    if (atomic_fetch_add(&p->next, 1) != i) atomic_store(&p->in_order, 0);
    volatile double x = 0.0; /* a little work, so that the workers arrive before the jobs run out */
    for (int k = 0; k < 2000; k++) x = x + (double)k;
    atomic_fetch_add(&p->runs[i], 1);
}

START_TEST(test_host_for)
{
    static const int64_t sizes[] = {0, 1, 2, 3, 7, 200};
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    for (int th = 0; th <= 4; th++) { /* th 0: ref */
        fr_backend *be = th ? opt : ref;
        if (th) fr_opt_set_threads(th);
        fr_opt_set_fixed_parts(1);
        const unsigned long before = fr_opt_worker_parts();
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            for_probe p;
            for (int i = 0; i < 200; i++) atomic_init(&p.runs[i], 0);
            atomic_init(&p.next, 0);
            atomic_init(&p.in_order, 1);
            fr_host_for(be, sizes[z], for_probe_job, &p);
            for (int64_t i = 0; i < 200; i++)
                ck_assert_msg(atomic_load(&p.runs[i]) == (i < sizes[z]), "%s, %d threads, n %lld: job %lld ran %d times",
                              be->ops->name, th, (long long)sizes[z], (long long)i, atomic_load(&p.runs[i]));
            if (!th) ck_assert_msg(atomic_load(&p.in_order), "ref: host_for ran the jobs out of order");
        }
        const unsigned long ran = fr_opt_worker_parts() - before;
        if (th >= 2) ck_assert_msg(ran > 0, "opt, %d threads: no worker ran a part of host_for", th);
        if (th <= 1) ck_assert_msg(ran == 0, "%s, %d threads: %lu worker parts", be->ops->name, th, ran);
        fr_opt_set_fixed_parts(0);
    }
    fr_opt_set_threads(0);
}
END_TEST

/* ---- the whole model ---------------------------------------------------------------------- */

typedef struct {
    float *out, *dx, *grads;
} model_run;

/* Forward + backward of m on the given batch; copies outputs and all gradients. */
static void run_model(fr_model *m, fr_backend *be, int64_t B, const float *x, const float *t,
                      const int32_t *c, const float *dout, model_run *r)
{
    fr_model_ws ws;
    ck_assert_msg(fr_model_ws_alloc(&ws, m, B, 1) == FR_OK, "%s", fr_last_error());
    fr_model_zero_grad(m, be);
    ck_assert_msg(fr_model_forward(m, be, &ws, B, x, t, c, r->out) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_model_backward(m, be, &ws, dout, r->dx) == FR_OK, "%s", fr_last_error());
    int64_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        int64_t n = fr_tensor_numel(&m->grads[i]);
        memcpy(r->grads + off, m->grads[i].data, (size_t)n * sizeof(float));
        off += n;
    }
    fr_model_ws_free(&ws);
}

START_TEST(test_model_shapes_s)
{
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    uint64_t seed = ops_seed(0x0b7009), s = seed;
    fr_model_config cfg;
    ck_assert_msg(fr_model_preset("shapes-s", 768, 110, &cfg) == FR_OK, "%s", fr_last_error());
    cfg.n_slots = 5;
    fr_model m;
    ck_assert_msg(fr_model_init(&m, fr_test_ref_be(), &cfg, 7) == FR_OK, "%s", fr_last_error());
    /* The init zeroes fc2 and out (each block starts as the identity), which would leave
     * most gradients 0: move every parameter off its init so every path carries signal. */
    for (int i = 0; i < m.n_params; i++) {
        float *v = (float *)m.values[i].data;
        int64_t n = fr_tensor_numel(&m.values[i]);
        for (int64_t k = 0; k < n; k++) v[k] += fr_test_uniform(&s, -0.05f, 0.05f);
    }
    const int64_t B = 13, D = cfg.D, P = fr_model_num_params(&m);
    float *x = ops_alloc(B * D), *t = ops_alloc(B), *dout = ops_alloc(B * D);
    int32_t c[13 * 5];
    ops_fill_uniform(&s, x, B * D, -2.0f, 2.0f);
    ops_fill_uniform(&s, t, B, 0.0f, 1000.0f);
    ops_fill_uniform(&s, dout, B * D, -1.0f, 1.0f);
    for (int64_t i = 0; i < B * cfg.n_slots; i++) c[i] = (int32_t)(fr_test_next(&s) % (uint64_t)(cfg.n_cond + 1));
    model_run rr = {ops_alloc(B * D), ops_alloc(B * D), ops_alloc(P)};
    model_run ro = {ops_alloc(B * D), ops_alloc(B * D), ops_alloc(P)};
    run_model(&m, ref, B, x, t, c, dout, &rr);
    int64_t nonzero = 0;
    for (int64_t i = 0; i < P; i++) nonzero += rr.grads[i] != 0.0f;
    ck_assert_msg(nonzero > P / 2, "only %lld of %lld gradients are nonzero", (long long)nonzero,
                  (long long)P);
    static const int threads[] = {1, 3};
    for (int k = 0; k < 2; k++) {
        fr_opt_set_threads(threads[k]);
        run_model(&m, opt, B, x, t, c, dout, &ro);
        ASSERT_SAME(rr.out, ro.out, B * D, "model out threads=%d seed=%#llx", threads[k],
                    (unsigned long long)seed);
        ASSERT_SAME(rr.dx, ro.dx, B * D, "model dx threads=%d seed=%#llx", threads[k],
                    (unsigned long long)seed);
        ASSERT_SAME(rr.grads, ro.grads, P, "model grads threads=%d seed=%#llx", threads[k],
                    (unsigned long long)seed);
        for (int64_t i = 0; i < P; i++)
            ck_assert_msg(!isnan(ro.grads[i]), "NaN gradient %lld", (long long)i);
    }
    fr_opt_set_threads(0);
    free(rr.out), free(rr.dx), free(rr.grads), free(ro.out), free(ro.dx), free(ro.grads);
    free(x), free(t), free(dout);
    fr_model_free(&m);
}
END_TEST

/* ---- normals and the time embedding (opt/opt_vtrig.h) --------------------------------------- */

#if FR_OPT_X86
FR_AVX2 static void vtrig_eval(const float *x, int64_t n, float *lg, float *sn, float *cs)
{
    for (int64_t i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), s, c;
        _mm256_storeu_ps(lg + i, fr_v_logf(v));
        fr_v_sincosf(v, &s, &c);
        _mm256_storeu_ps(sn + i, s);
        _mm256_storeu_ps(cs + i, c);
    }
}

FR_AVX2 static void vnormal_row(float *out, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                                uint32_t c2)
{
    fr_v_fill_normal_row(out, n, seed, purpose, c0, c1, c2);
}
#endif

START_TEST(test_vtrig_ports)
{
    /* The AVX2 ports of fr_logf, fr_sinf and fr_cosf against the scalar functions: every 4099th
     * float bit pattern (all signs, binades, subnormals, inf, NaN), every 31st float of [pi/4, 8)
     * (the normals' angles and the time embedding's arguments), and +-16 ulps around the branch
     * points: fl(pi/4) (reduce or not), the binades where the Payne-Hanek window moves to the next
     * table word (2^25, 2^57, 2^89, 2^121: sh = 0), multiples of pi/2 (|r| tiny), 1 (log = 0),
     * the smallest normal (log's subnormal scaling), FLT_MAX, 0, 2 pi and inf. */
#if FR_OPT_X86
    if (!simd_expected()) return;
    const int64_t stride = 4099, n_sweep = (int64_t)((0x100000000ull + stride - 1) / stride);
    const uint32_t lo = 0x3f490fdau, hi = 0x41000000u; /* ~pi/4 .. 8 */
    const int64_t n_dense = (int64_t)((hi - lo) / 31);
    static const float pivots[] = {0x1.921fb4p-1f, 0x1p25f,  0x1p57f,         0x1p89f,         0x1p121f,
                                   0x1.921fb6p0f,  0x1.921fb6p1f, 0x1.2d97c8p2f, 0x1.921fb6p2f, 0x1.921fb6p10f,
                                   1.0f,           0x1p-126f, 0x1.fffffep127f, 0.0f,            3.0e38f,
                                   6.28318530717958647692f, INFINITY};
    const int n_piv = (int)(sizeof pivots / sizeof pivots[0]);
    int64_t n = n_sweep + n_dense + 2 * n_piv * 33;
    n = (n + 7) / 8 * 8; /* the last few stay 0 (calloc) */
    float *x = ops_alloc(n), *lg = ops_alloc(n), *sn = ops_alloc(n), *cs = ops_alloc(n);
    int64_t k = 0;
    for (int64_t i = 0; i < n_sweep; i++) {
        uint32_t u = (uint32_t)((uint64_t)i * stride);
        memcpy(&x[k++], &u, 4);
    }
    for (int64_t i = 0; i < n_dense; i++) {
        uint32_t u = lo + (uint32_t)i * 31u;
        memcpy(&x[k++], &u, 4);
    }
    for (int p = 0; p < n_piv; p++)
        for (int sgn = 0; sgn < 2; sgn++)
            for (int d = -16; d <= 16; d++) {
                float v = sgn ? -pivots[p] : pivots[p];
                for (int j = 0; j < (d < 0 ? -d : d); j++) v = nextafterf(v, d < 0 ? -INFINITY : INFINITY);
                x[k++] = v;
            }
    vtrig_eval(x, n, lg, sn, cs);
    for (int64_t i = 0; i < n; i++) {
        float want[3] = {fr_logf(x[i]), fr_sinf(x[i]), fr_cosf(x[i])}, got[3] = {lg[i], sn[i], cs[i]};
        static const char *name[3] = {"log", "sin", "cos"};
        for (int f = 0; f < 3; f++)
            if (ops_first_diff(&want[f], &got[f], 1) == 0)
                ck_abort_msg("fr_v_%sf(%a) = %a, fr_%sf = %a", name[f], (double)x[i], (double)got[f], name[f],
                             (double)want[f]);
    }
    free(x), free(lg), free(sn), free(cs);
#endif
}
END_TEST

START_TEST(test_vnormal_rows)
{
    /* fr_v_fill_normal_row against the scalar row (fr_rng_fill_normal_row) over 1.2M values: lengths 1..67 (every
     * tail of the 32-normal groups) and 1000 (several groups), random seeds, purposes and
     * counters (c2 near 2^32 too); then opt's rng_normal_rows and temb_sinusoidal against ref
     * at 1 and 3 threads, on the AVX2 path and (FLOWRL_OPT_NO_SIMD) the portable one. */
    const uint64_t seed = ops_seed(0x0b7e01);
    uint64_t s = seed;
#if FR_OPT_X86
    static float want[1000], got[1000];
    if (simd_expected())
        for (int rep = 0; rep < 500; rep++)
            for (int64_t len = 1; len <= 68; len++) {
                const int64_t n = len == 68 ? 1000 : len;
                uint32_t w[5];
                for (int i = 0; i < 5; i++) w[i] = (uint32_t)fr_test_next(&s);
                if (rep % 7 == 0) w[4] = 0xffffffffu - (uint32_t)rep;
                fr_rng_fill_normal_row(want, n, w[0], w[1] % 200u, w[2], w[3], w[4]);
                memset(got, 0x5a, sizeof got);
                vnormal_row(got, n, w[0], w[1] % 200u, w[2], w[3], w[4]);
                ASSERT_SAME(want, got, n, "normal row n=%lld seed=%#llx rep=%d", (long long)n, (unsigned long long)seed,
                            rep);
                ck_assert_msg(n == 1000 || memcmp(&got[n], (uint32_t[]){0x5a5a5a5au}, 4) == 0,
                              "normal row n=%lld wrote past its end", (long long)n);
            }
#endif
    fr_backend *ref = fr_test_ref_be(), *opt = ops_opt();
    for (int portable = 0; portable < 2; portable++) {
        fr_ops t;
        memset(&t, 0, sizeof t);
        fr_ref_fill(&t);
        if (portable) setenv("FLOWRL_OPT_NO_SIMD", "1", 1);
        ck_assert_int_eq(fr_opt_init(&t), FR_OK);
        const fr_ops *o = portable ? &t : opt->ops;
        enum { R = 12, D = 77, E = 96 };
        static float a[R * D], b[R * D], ta[R], ea[R * (E + 1)], eb[R * (E + 1)];
        uint32_t c1[4];
        for (int i = 0; i < 4; i++) c1[i] = (uint32_t)fr_test_next(&s);
        for (int i = 0; i < R; i++) ta[i] = (float)(fr_test_next(&s) % 1000001u) * 1e-3f;
        ta[0] = 0.0f, ta[1] = 1000.0f, ta[2] = -0.0f;
        for (int th = 1; th <= 3; th += 2) {
            fr_opt_set_threads(th);
            ref->ops->rng_normal_rows(R, D, 9, FR_RNG_SAMPLER_NOISE, 4, 4, c1, 7, a);
            o->rng_normal_rows(R, D, 9, FR_RNG_SAMPLER_NOISE, 4, 4, c1, 7, b);
            ASSERT_SAME(a, b, R * D, "rng_normal_rows portable=%d threads=%d", portable, th);
            for (int64_t e = 1; e <= E + 1; e += (e < 20 ? 1 : 19)) {
                ref->ops->temb_sinusoidal(R, e, ta, ea);
                o->temb_sinusoidal(R, e, ta, eb);
                ASSERT_SAME(ea, eb, R * e, "temb_sinusoidal E=%lld portable=%d threads=%d", (long long)e, portable,
                            th);
            }
        }
        fr_opt_set_threads(0);
        if (portable) unsetenv("FLOWRL_OPT_NO_SIMD");
    }
    fr_ops t;
    memset(&t, 0, sizeof t);
    fr_ref_fill(&t);
    fr_opt_init(&t); /* back to this process's SIMD flag */
}
END_TEST

Suite *suite_opt(void)
{
    Suite *s = suite_create("opt");
    TCase *tc = tcase_create("bitwise");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_row_sumsq_diff_lengths);
    tcase_add_test(tc, test_awm_rows);
    tcase_add_test(tc, test_row_elementwise_lengths);
    tcase_add_test(tc, test_threads_api);
    tcase_add_test(tc, test_pool_claims);
    tcase_add_test(tc, test_host_for);
    tcase_add_test(tc, test_gemm_bitwise);
    tcase_add_test(tc, test_gemm_large);
    tcase_add_test(tc, test_gemm_portable_path);
    tcase_add_test(tc, test_bias_bitwise);
    tcase_add_test(tc, test_act_bitwise);
    tcase_add_test(tc, test_act_tanh_sweep);
    tcase_add_test(tc, test_act_tanh_lengths);
    tcase_add_test(tc, test_exp_sweep);
    tcase_add_test(tc, test_softmax_rows_bitwise);
    tcase_add_test(tc, test_vtrig_ports);
    tcase_add_test(tc, test_vnormal_rows);
    tcase_add_test(tc, test_layernorm_bitwise);
    tcase_add_test(tc, test_eltwise_bitwise);
    tcase_add_test(tc, test_adamw_bitwise);
    tcase_add_test(tc, test_reduce_bitwise);
    tcase_add_test(tc, test_model_shapes_s);
    suite_add_tcase(s, tc);
    return s;
}
