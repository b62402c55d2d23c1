/* Suite `ops`: every op of the ref table against a double-precision computation of the
 * same math, within error bounds derived next to each check (tests/ops_check.h gives
 * the vocabulary), plus bitwise checks of the canonical orders (flowrl/reduce.h) against
 * loops written out here, AdamW against PyTorch's formula, and the backend registry.
 * Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/detmath.h"
#include "flowrl/adamw.h"
#include "flowrl/backend.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "tests/ops_check.h"

/* ---- GEMM ----------------------------------------------------------------------------- */

typedef struct {
    int64_t M, N, K;
} gemm_shape;

/* Sizes off multiples of 8, 1x1, K = 1, K = 0, rows of length 1. */
static const gemm_shape k_gemm_shapes[] = {
    {1, 1, 1}, {1, 1, 7}, {3, 5, 1}, {7, 9, 13}, {8, 8, 8}, {17, 3, 33},
    {1, 17, 9}, {5, 1, 100}, {4, 3, 0}, {2, 6, 257},
};
#define N_GEMM_SHAPES (int)(sizeof k_gemm_shapes / sizeof k_gemm_shapes[0])

/* Stores the dense (rows, cols) matrix src in the layout of a GEMM operand:
 * as is when !t, transposed (cols, rows) when t. */
static void store_operand(int t, int64_t rows, int64_t cols, const float *src, float *dst)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            if (t) dst[c * rows + r] = src[r * cols + c];
            else dst[r * cols + c] = src[r * cols + c];
        }
}

/* Random values of varied magnitude: uniform in [-1, 1) times 2^e, e in [-6, 6]. */
static void fill_wide(uint64_t *s, float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int e = (int)(fr_test_next(s) % 13) - 6;
        x[i] = ldexpf(fr_test_uniform(s, -1.0f, 1.0f), e);
    }
}

START_TEST(test_gemm_vs_double)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x6e6d01);
    uint64_t s = seed;
    for (int c = 0; c < N_GEMM_SHAPES; c++)
        for (int v = 0; v < 8; v++) {
            int ta = v & 1, tb = (v >> 1) & 1, acc = (v >> 2) & 1;
            int64_t M = k_gemm_shapes[c].M, N = k_gemm_shapes[c].N, K = k_gemm_shapes[c].K;
            float *opA = ops_alloc(M * K), *opB = ops_alloc(K * N);
            float *A = ops_alloc(M * K), *B = ops_alloc(K * N);
            float *C = ops_alloc(M * N), *C0 = ops_alloc(M * N);
            fill_wide(&s, opA, M * K);
            fill_wide(&s, opB, K * N);
            fill_wide(&s, C0, M * N);
            store_operand(ta, M, K, opA, A);
            store_operand(tb, K, N, opB, B);
            memcpy(C, C0, (size_t)(M * N) * sizeof *C);
            be->ops->gemm(ta, tb, M, N, K, A, B, C, acc);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double ref = acc ? C0[i * N + j] : 0.0;
                    double mag = fabs(ref);
                    for (int64_t k = 0; k < K; k++) {
                        double p = (double)opA[i * K + k] * opB[k * N + j];
                        ref += p;
                        mag += fabs(p);
                    }
                    /* One fmaf chain of K steps: K roundings, each of a partial sum bounded
                     * by mag = |C0| + sum|a b|, so |err| <= gamma(K) mag (Higham §3.1 with
                     * exact products). K = 0 demands C = C0 (or 0) exactly. */
                    double tol = ops_gamma((double)K) * mag;
                    double err = fabs((double)C[i * N + j] - ref);
                    ck_assert_msg(err <= tol,
                                  "gemm ta=%d tb=%d acc=%d M=%lld N=%lld K=%lld C[%lld,%lld]=%.9g "
                                  "ref=%.17g err=%.3g tol=%.3g seed=%#llx",
                                  ta, tb, acc, (long long)M, (long long)N, (long long)K,
                                  (long long)i, (long long)j, C[i * N + j], ref, err, tol,
                                  (unsigned long long)seed);
                }
            free(opA), free(opB), free(A), free(B), free(C), free(C0);
        }
}
END_TEST

START_TEST(test_gemm_exact_chain)
{
    /* Bitwise: every output is the fmaf chain along k written here, from 0 or old C. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x6e6d02);
    uint64_t s = seed;
    for (int c = 0; c < N_GEMM_SHAPES; c++)
        for (int v = 0; v < 8; v++) {
            int ta = v & 1, tb = (v >> 1) & 1, acc = (v >> 2) & 1;
            int64_t M = k_gemm_shapes[c].M, N = k_gemm_shapes[c].N, K = k_gemm_shapes[c].K;
            float *opA = ops_alloc(M * K), *opB = ops_alloc(K * N);
            float *A = ops_alloc(M * K), *B = ops_alloc(K * N);
            float *C = ops_alloc(M * N), *C0 = ops_alloc(M * N);
            fill_wide(&s, opA, M * K);
            fill_wide(&s, opB, K * N);
            fill_wide(&s, C0, M * N);
            store_operand(ta, M, K, opA, A);
            store_operand(tb, K, N, opB, B);
            memcpy(C, C0, (size_t)(M * N) * sizeof *C);
            be->ops->gemm(ta, tb, M, N, K, A, B, C, acc);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    float want = acc ? C0[i * N + j] : 0.0f;
                    for (int64_t k = 0; k < K; k++)
                        want = fmaf(opA[i * K + k], opB[k * N + j], want);
                    ck_assert_msg(fr_test_bits_equal(C[i * N + j], want),
                                  "gemm ta=%d tb=%d acc=%d M=%lld N=%lld K=%lld C[%lld,%lld]=%a "
                                  "chain=%a seed=%#llx",
                                  ta, tb, acc, (long long)M, (long long)N, (long long)K,
                                  (long long)i, (long long)j, C[i * N + j], want,
                                  (unsigned long long)seed);
                }
            free(opA), free(opB), free(A), free(B), free(C), free(C0);
        }
}
END_TEST

START_TEST(test_gemm_split_k_continues_chain)
{
    /* gemm over k < K1, then accumulate over k >= K1, equals one gemm over all K, bitwise
     * (a blocked kernel continues the chain from the partial value). */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x6e6d03);
    uint64_t s = seed;
    static const int64_t splits[][4] = {{5, 7, 3, 10}, {1, 1, 1, 1}, {9, 4, 8, 17}, {3, 8, 16, 1}};
    for (size_t c = 0; c < sizeof splits / sizeof splits[0]; c++)
        for (int v = 0; v < 4; v++) {
            int ta = v & 1, tb = (v >> 1) & 1;
            int64_t M = splits[c][0], N = splits[c][1], K1 = splits[c][2], K2 = splits[c][3];
            int64_t K = K1 + K2;
            float *opA = ops_alloc(M * K), *opB = ops_alloc(K * N);
            float *opA1 = ops_alloc(M * K1), *opA2 = ops_alloc(M * K2);
            float *A = ops_alloc(M * K), *A1 = ops_alloc(M * K1), *A2 = ops_alloc(M * K2);
            float *B = ops_alloc(K * N), *B1 = ops_alloc(K1 * N), *B2 = ops_alloc(K2 * N);
            float *Cfull = ops_alloc(M * N), *Csplit = ops_alloc(M * N);
            fill_wide(&s, opA, M * K);
            fill_wide(&s, opB, K * N);
            for (int64_t i = 0; i < M; i++)
                for (int64_t k = 0; k < K; k++) {
                    if (k < K1) opA1[i * K1 + k] = opA[i * K + k];
                    else opA2[i * K2 + (k - K1)] = opA[i * K + k];
                }
            store_operand(ta, M, K, opA, A);
            store_operand(ta, M, K1, opA1, A1);
            store_operand(ta, M, K2, opA2, A2);
            store_operand(tb, K, N, opB, B);
            store_operand(tb, K1, N, opB, B1);          /* rows 0..K1-1 of op(B) */
            store_operand(tb, K2, N, opB + K1 * N, B2); /* rows K1.. */
            be->ops->gemm(ta, tb, M, N, K, A, B, Cfull, 0);
            be->ops->gemm(ta, tb, M, N, K1, A1, B1, Csplit, 0);
            be->ops->gemm(ta, tb, M, N, K2, A2, B2, Csplit, 1);
            for (int64_t i = 0; i < M * N; i++)
                ck_assert_msg(fr_test_bits_equal(Cfull[i], Csplit[i]),
                              "split-k ta=%d tb=%d M=%lld N=%lld K1=%lld K2=%lld [%lld]: %a vs %a "
                              "seed=%#llx",
                              ta, tb, (long long)M, (long long)N, (long long)K1, (long long)K2,
                              (long long)i, Cfull[i], Csplit[i], (unsigned long long)seed);
            free(opA), free(opB), free(opA1), free(opA2), free(A), free(A1), free(A2);
            free(B), free(B1), free(B2), free(Cfull), free(Csplit);
        }
}
END_TEST

/* ---- bias ----------------------------------------------------------------------------- */

START_TEST(test_bias)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xb1a5);
    uint64_t s = seed;
    static const int64_t shapes[][2] = {{1, 1}, {1, 9}, {13, 1}, {7, 5}, {33, 17}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int acc = 0; acc < 2; acc++) {
            int64_t M = shapes[c][0], N = shapes[c][1];
            float *y = ops_alloc(M * N), *y0 = ops_alloc(M * N), *b = ops_alloc(N);
            float *db = ops_alloc(N), *db0 = ops_alloc(N);
            fill_wide(&s, y0, M * N);
            fill_wide(&s, b, N);
            fill_wide(&s, db0, N);
            memcpy(y, y0, (size_t)(M * N) * sizeof *y);
            be->ops->bias_add(M, N, y, b);
            /* One float add per element: correctly rounded, and a double sum of two floats
             * rounded to float is the same value (53 >= 2*24 + 2 bits), so: bitwise. */
            for (int64_t i = 0; i < M * N; i++) {
                float want = (float)((double)y0[i] + b[i % N]);
                ck_assert_msg(fr_test_bits_equal(y[i], want),
                              "bias_add M=%lld N=%lld [%lld]: %a want %a seed=%#llx",
                              (long long)M, (long long)N, (long long)i, y[i], want,
                              (unsigned long long)seed);
            }
            memcpy(db, db0, (size_t)N * sizeof *db);
            be->ops->bias_grad(M, N, y0, db, acc);
            for (int64_t j = 0; j < N; j++) {
                double ref = acc ? db0[j] : 0.0, mag = fabs(ref);
                float chain = acc ? db0[j] : 0.0f;
                for (int64_t i = 0; i < M; i++) {
                    ref += y0[i * N + j];
                    mag += fabs(y0[i * N + j]);
                    chain = chain + y0[i * N + j];
                }
                /* M plain adds in sequence: |err| <= gamma(M) * sum|terms|. */
                double err = fabs(db[j] - ref), tol = ops_gamma((double)M) * mag;
                ck_assert_msg(err <= tol && fr_test_bits_equal(db[j], chain),
                              "bias_grad acc=%d M=%lld N=%lld db[%lld]=%a ref=%.17g tol=%.3g "
                              "row-order chain=%a seed=%#llx",
                              acc, (long long)M, (long long)N, (long long)j, db[j], ref, tol,
                              chain, (unsigned long long)seed);
            }
            free(y), free(y0), free(b), free(db), free(db0);
        }
}
END_TEST

/* ---- activations ---------------------------------------------------------------------- */

START_TEST(test_act_fwd_vs_double)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xac7f);
    uint64_t s = seed;
    enum { N = 2003 };
    float *x = ops_alloc(N), *y = ops_alloc(N);
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        ops_fill_uniform(&s, x, N, -8.0f, 8.0f);
        x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-30f, x[3] = -20.0f, x[4] = 20.0f;
        be->ops->act_fwd((fr_act)a, N, x, y);
        for (int i = 0; i < N; i++) {
            double ref = ops_act64((fr_act)a, x[i]);
            /* 2 x the first-order bound of ops_act_fwd_bound (second-order terms). */
            double tol = 2.0 * ops_act_fwd_bound((fr_act)a, x[i]);
            double err = fabs((double)y[i] - ref);
            ck_assert_msg(err <= tol, "act_fwd %s x=%a y=%a ref=%.17g err=%.3g tol=%.3g seed=%#llx",
                          ops_act_names[a], x[i], y[i], ref, err, tol, (unsigned long long)seed);
        }
        /* In place (y aliases x) gives the same bits. */
        float *z = ops_alloc(N);
        memcpy(z, x, N * sizeof *z);
        be->ops->act_fwd((fr_act)a, N, z, z);
        ck_assert_msg(memcmp(z, y, N * sizeof *z) == 0, "act_fwd %s in place differs",
                      ops_act_names[a]);
        free(z);
    }
    free(x), free(y);
}
END_TEST

START_TEST(test_act_bwd_vs_double)
{
    /* dy * act'(x) against the double derivative (finite differences of the forward are
     * in suite ops_grad), and accumulate = old + (non-accumulated result), bitwise. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xac7b);
    uint64_t s = seed;
    enum { N = 1001 };
    float *x = ops_alloc(N), *dy = ops_alloc(N), *dx = ops_alloc(N), *old = ops_alloc(N);
    float *dxa = ops_alloc(N);
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        ops_fill_uniform(&s, x, N, -8.0f, 8.0f);
        ops_fill_uniform(&s, dy, N, -2.0f, 2.0f);
        ops_fill_uniform(&s, old, N, -2.0f, 2.0f);
        x[0] = 0.0f, x[1] = -20.0f, x[2] = 20.0f;
        be->ops->act_bwd((fr_act)a, N, x, dy, dx, 0);
        memcpy(dxa, old, N * sizeof *dxa);
        be->ops->act_bwd((fr_act)a, N, x, dy, dxa, 1);
        for (int i = 0; i < N; i++) {
            double ref = (double)dy[i] * ops_act_deriv64((fr_act)a, x[i]);
            double tol = 2.0 * ops_act_bwd_bound((fr_act)a, x[i], dy[i]);
            double err = fabs((double)dx[i] - ref);
            ck_assert_msg(err <= tol,
                          "act_bwd %s x=%a dy=%a dx=%a ref=%.17g err=%.3g tol=%.3g seed=%#llx",
                          ops_act_names[a], x[i], dy[i], dx[i], ref, err, tol,
                          (unsigned long long)seed);
            float want = old[i] + dx[i];
            ck_assert_msg(fr_test_bits_equal(dxa[i], want),
                          "act_bwd %s accumulate: %a want %a seed=%#llx", ops_act_names[a],
                          dxa[i], want, (unsigned long long)seed);
        }
    }
    free(x), free(dy), free(dx), free(old), free(dxa);
}
END_TEST

START_TEST(test_act_special_values)
{
    /* Hand values: relu(-0) = +0, relu(NaN) = NaN, relu' at 0 is 0 and ignores an inf dy
     * where x <= 0; identity passes bits; sigmoid(0) = 0.5, tanh(0) = 0, silu(0) = 0,
     * gelu(0) = 0; silu'(0) = 0.5, gelu'(0) = 0.5, sigmoid'(0) = 0.25, tanh'(0) = 1. */
    fr_backend *be = fr_test_ref_be();
    float x[3] = {-0.0f, NAN, 3.0f}, y[3];
    be->ops->act_fwd(FR_ACT_RELU, 3, x, y);
    ck_assert(fr_test_bits_equal(y[0], 0.0f));
    ck_assert(isnan(y[1]));
    ck_assert(fr_test_bits_equal(y[2], 3.0f));
    float xr[2] = {0.0f, -1.0f}, dyr[2] = {1.0f, INFINITY}, dxr[2];
    be->ops->act_bwd(FR_ACT_RELU, 2, xr, dyr, dxr, 0);
    ck_assert(fr_test_bits_equal(dxr[0], 0.0f) && fr_test_bits_equal(dxr[1], 0.0f));

    float z = 0.0f, one = 1.0f, out, d;
    static const float want_y[FR_ACT_COUNT] = {0.0f, 0.0f, 0.0f, 0.0f, 0.5f, 0.0f};
    static const float want_d[FR_ACT_COUNT] = {1.0f, 0.5f, 0.5f, 1.0f, 0.25f, 0.0f};
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        be->ops->act_fwd((fr_act)a, 1, &z, &out);
        be->ops->act_bwd((fr_act)a, 1, &z, &one, &d, 0);
        ck_assert_msg(out == want_y[a] && d == want_d[a], "%s(0) = %a, '(0) = %a",
                      ops_act_names[a], out, d);
    }
}
END_TEST

START_TEST(test_act_exact_formula)
{
    /* Bitwise against the float expressions documented in flowrl/elem.h, written out
     * here: the SIMD and CUDA ports must mirror exactly these (fmaf where shown). The
     * transcendentals are the same detmath calls. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xac7e);
    uint64_t s = seed;
    enum { N = 301 };
    float x[N], dy[N], y[N], dx[N];
    ops_fill_uniform(&s, x, N, -7.0f, 7.0f);
    ops_fill_uniform(&s, dy, N, -2.0f, 2.0f);
    const float beta = 0.7978845608028654f, kappa = 0.044715f, kappa3 = 0.134145f;
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        be->ops->act_fwd((fr_act)a, N, x, y);
        be->ops->act_bwd((fr_act)a, N, x, dy, dx, 0);
        for (int i = 0; i < N; i++) {
            float v = x[i], g = dy[i], wy, wd;
            float sg = fr_sigmoidf(v), t = fr_tanhf(v);
            float tg = fr_tanhf(beta * fmaf(kappa, (v * v) * v, v));
            switch ((fr_act)a) {
            case FR_ACT_SILU:
                wy = v * sg;
                wd = g * (sg * fmaf(v, 1.0f - sg, 1.0f));
                break;
            case FR_ACT_GELU_TANH:
                wy = (0.5f * v) * (1.0f + tg);
                wd = g * fmaf((0.5f * v) * fmaf(-tg, tg, 1.0f), beta * fmaf(kappa3, v * v, 1.0f),
                              0.5f * (1.0f + tg));
                break;
            case FR_ACT_TANH: wy = t, wd = g * fmaf(-t, t, 1.0f); break;
            case FR_ACT_SIGMOID: wy = sg, wd = (g * (1.0f - sg)) * sg; break;
            case FR_ACT_RELU: wy = v > 0 ? v : 0.0f, wd = v > 0 ? g : 0.0f; break;
            default: wy = v, wd = g; break;
            }
            ck_assert_msg(fr_test_bits_equal(y[i], wy) && fr_test_bits_equal(dx[i], wd),
                          "%s x=%a dy=%a: y %a want %a, dx %a want %a seed=%#llx",
                          ops_act_names[a], v, g, y[i], wy, dx[i], wd, (unsigned long long)seed);
        }
    }
}
END_TEST

/* ---- layer norm ----------------------------------------------------------------------- */

START_TEST(test_layernorm_fwd_vs_double)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x1a4e);
    uint64_t s = seed;
    static const int64_t shapes[][2] = {{1, 1}, {3, 1}, {1, 7}, {4, 8}, {5, 33}, {2, 300}};
    const float eps = 1e-5f;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int affine = 0; affine < 2; affine++) {
            int64_t M = shapes[c][0], D = shapes[c][1];
            float *x = ops_alloc(M * D), *y = ops_alloc(M * D), *g = ops_alloc(D);
            float *b = ops_alloc(D), *mean = ops_alloc(M), *rstd = ops_alloc(M);
            for (int64_t i = 0; i < M; i++) { /* rows with an offset, so centring matters */
                float off = fr_test_uniform(&s, -3.0f, 3.0f);
                for (int64_t j = 0; j < D; j++) x[i * D + j] = off + fr_test_uniform(&s, -1.0f, 1.0f);
            }
            ops_fill_uniform(&s, g, D, 0.5f, 1.5f);
            ops_fill_uniform(&s, b, D, -0.5f, 0.5f);
            be->ops->layernorm_fwd(M, D, x, affine ? g : NULL, affine ? b : NULL, eps, y, mean, rstd);
            for (int64_t i = 0; i < M; i++) {
                const float *xr = x + i * D;
                double mu, rs, tol_mu, tol_rs;
                ops_ln_row_stats(xr, D, eps, &mu, &rs, &tol_mu, &tol_rs);
                ck_assert_msg(fabs(mean[i] - mu) <= tol_mu,
                              "layernorm M=%lld D=%lld mean[%lld]=%.9g ref=%.17g seed=%#llx",
                              (long long)M, (long long)D, (long long)i, mean[i], mu,
                              (unsigned long long)seed);
                ck_assert_msg(fabs(rstd[i] - rs) <= tol_rs,
                              "layernorm M=%lld D=%lld rstd[%lld]=%.9g ref=%.17g seed=%#llx",
                              (long long)M, (long long)D, (long long)i, rstd[i], rs,
                              (unsigned long long)seed);
                for (int64_t j = 0; j < D; j++) {
                    double gj = affine ? g[j] : 1.0, bj = affine ? b[j] : 0.0;
                    double xh = (xr[j] - mu) * rs;
                    double ref = xh * gj + bj;
                    /* xhat's error (ops_ln_xhat_bound), times gamma; the fmaf adds u |y|. */
                    double exh = ops_ln_xhat_bound(xr[j], mu, rs, tol_mu, tol_rs);
                    double tol = 2.0 * (exh * gj + OPS_U * fabs(ref));
                    double err = fabs(y[i * D + j] - ref);
                    ck_assert_msg(err <= tol,
                                  "layernorm affine=%d M=%lld D=%lld y[%lld,%lld]=%.9g ref=%.17g "
                                  "err=%.3g tol=%.3g seed=%#llx",
                                  affine, (long long)M, (long long)D, (long long)i, (long long)j,
                                  y[i * D + j], ref, err, tol, (unsigned long long)seed);
                }
            }
            free(x), free(y), free(g), free(b), free(mean), free(rstd);
        }
}
END_TEST

START_TEST(test_layernorm_fwd_exact_order)
{
    /* mean and rstd bitwise from the lane loops written here; D = 1 gives var = 0,
     * rstd = 1/sqrt(eps), y = beta. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x1a4f);
    uint64_t s = seed;
    enum { M = 3, D = 21 };
    float x[M * D], y[M * D], mean[M], rstd[M];
    ops_fill_uniform(&s, x, M * D, -2.0f, 3.0f);
    be->ops->layernorm_fwd(M, D, x, NULL, NULL, 1e-5f, y, mean, rstd);
    for (int i = 0; i < M; i++) {
        float l[8] = {0}, q[8] = {0};
        for (int j = 0; j < D; j++) l[j & 7] = l[j & 7] + x[i * D + j];
        float mu = (((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))) / (float)D;
        for (int j = 0; j < D; j++) {
            float d = x[i * D + j] - mu;
            q[j & 7] = fmaf(d, d, q[j & 7]);
        }
        float var = (((q[0] + q[4]) + (q[2] + q[6])) + ((q[1] + q[5]) + (q[3] + q[7]))) / (float)D;
        float rs = 1.0f / sqrtf(var + 1e-5f);
        ck_assert_msg(fr_test_bits_equal(mean[i], mu) && fr_test_bits_equal(rstd[i], rs),
                      "row %d: mean %a want %a, rstd %a want %a seed=%#llx", i, mean[i], mu,
                      rstd[i], rs, (unsigned long long)seed);
        for (int j = 0; j < D; j++) {
            float want = fmaf((x[i * D + j] - mu) * rs, 1.0f, 0.0f);
            ck_assert_msg(fr_test_bits_equal(y[i * D + j], want), "y[%d,%d] %a want %a", i, j,
                          y[i * D + j], want);
        }
    }
    float x1 = 2.5f, g1 = 3.0f, b1 = -0.25f, y1, m1, r1;
    be->ops->layernorm_fwd(1, 1, &x1, &g1, &b1, 1e-5f, &y1, &m1, &r1);
    ck_assert(m1 == 2.5f && r1 == 1.0f / sqrtf(1e-5f) && y1 == -0.25f);
}
END_TEST

START_TEST(test_layernorm_bwd_accumulate)
{
    /* accumulate = 1: dx = old + (non-accumulated dx) bitwise; dgamma and dbeta continue
     * their row chains, so rows [0, M1) then rows [M1, M) accumulated equal all rows. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x1a50);
    uint64_t s = seed;
    enum { M = 9, M1 = 4, D = 19 };
    float x[M * D], dy[M * D], g[D], b[D], y[M * D], mean[M], rstd[M];
    float dx[M * D], dxa[M * D], old[M * D], dg[D], db[D], dg2[D], db2[D];
    ops_fill_uniform(&s, x, M * D, -2.0f, 2.0f);
    ops_fill_uniform(&s, dy, M * D, -1.0f, 1.0f);
    ops_fill_uniform(&s, old, M * D, -1.0f, 1.0f);
    ops_fill_uniform(&s, g, D, 0.5f, 1.5f);
    ops_fill_uniform(&s, b, D, -0.5f, 0.5f);
    be->ops->layernorm_fwd(M, D, x, g, b, 1e-5f, y, mean, rstd);
    be->ops->layernorm_bwd(M, D, x, g, mean, rstd, dy, dx, dg, db, 0);
    memcpy(dxa, old, sizeof dxa);
    /* rows [0, M1) without accumulating (overwrites dxa there and starts dg2, db2), then
     * rows [M1, M) accumulating */
    be->ops->layernorm_bwd(M1, D, x, g, mean, rstd, dy, dxa, dg2, db2, 0);
    be->ops->layernorm_bwd(M - M1, D, x + M1 * D, g, mean + M1, rstd + M1, dy + M1 * D,
                       dxa + M1 * D, dg2, db2, 1);
    for (int j = 0; j < D; j++)
        ck_assert_msg(fr_test_bits_equal(dg[j], dg2[j]) && fr_test_bits_equal(db[j], db2[j]),
                      "col %d: dgamma %a vs %a, dbeta %a vs %a seed=%#llx", j, dg[j], dg2[j],
                      db[j], db2[j], (unsigned long long)seed);
    for (int i = M1 * D; i < M * D; i++)
        ck_assert_msg(fr_test_bits_equal(dxa[i], old[i] + dx[i]), "dx[%d] %a want %a", i,
                      dxa[i], old[i] + dx[i]);
    for (int i = 0; i < M1 * D; i++) /* rows of the non-accumulating call: overwritten */
        ck_assert_msg(fr_test_bits_equal(dxa[i], dx[i]), "dx[%d] %a want %a", i, dxa[i], dx[i]);
    /* dx bitwise from the documented expression: g = dy*gamma, mg and mgx as lane sums
     * (plain / fmaf lanes, then the tree) / D, dx = rstd * fmaf(-xhat, mgx, g - mg). */
    for (int i = 0; i < M; i++) {
        float lg[8] = {0}, lgx[8] = {0};
        for (int j = 0; j < D; j++) {
            float gg = dy[i * D + j] * g[j], xh = (x[i * D + j] - mean[i]) * rstd[i];
            lg[j & 7] = lg[j & 7] + gg;
            lgx[j & 7] = fmaf(gg, xh, lgx[j & 7]);
        }
        float mg = (((lg[0] + lg[4]) + (lg[2] + lg[6])) + ((lg[1] + lg[5]) + (lg[3] + lg[7]))) / (float)D;
        float mgx = (((lgx[0] + lgx[4]) + (lgx[2] + lgx[6])) + ((lgx[1] + lgx[5]) + (lgx[3] + lgx[7]))) /
                    (float)D;
        for (int j = 0; j < D; j++) {
            float gg = dy[i * D + j] * g[j], xh = (x[i * D + j] - mean[i]) * rstd[i];
            float want = rstd[i] * fmaf(-xh, mgx, gg - mg);
            ck_assert_msg(fr_test_bits_equal(dx[i * D + j], want), "dx[%d,%d] %a want %a seed=%#llx",
                          i, j, dx[i * D + j], want, (unsigned long long)seed);
        }
    }
    /* dbeta is the plain row-order sum, dgamma the fmaf chain over rows (elem.h). */
    for (int j = 0; j < D; j++) {
        float sb = 0.0f, sg = 0.0f;
        for (int i = 0; i < M; i++) {
            sb = sb + dy[i * D + j];
            sg = fmaf(dy[i * D + j], (x[i * D + j] - mean[i]) * rstd[i], sg);
        }
        ck_assert_msg(fr_test_bits_equal(db[j], sb) && fr_test_bits_equal(dg[j], sg),
                      "col %d: dbeta %a want %a, dgamma %a want %a", j, db[j], sb, dg[j], sg);
    }
}
END_TEST

/* ---- elementwise ---------------------------------------------------------------------- */

START_TEST(test_binary_unary)
{
    /* + - * / neg square sqrt are single correctly rounded operations: computed in double
     * and rounded once to float they give the same value (53 >= 2*24 + 2), so bitwise.
     * exp and log: OPS_DETMATH_U relative (detmath's accuracy). */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xe1e7);
    uint64_t s = seed;
    enum { N = 517 };
    float *a = ops_alloc(N), *b = ops_alloc(N), *out = ops_alloc(N);
    fill_wide(&s, a, N);
    fill_wide(&s, b, N);
    for (int op = 0; op < FR_BIN_COUNT; op++) {
        be->ops->binary((fr_binop)op, N, a, b, out);
        for (int i = 0; i < N; i++) {
            double A = a[i], B = b[i];
            double r = op == FR_BIN_ADD ? A + B : op == FR_BIN_SUB ? A - B : op == FR_BIN_MUL ? A * B : A / B;
            ck_assert_msg(fr_test_bits_equal(out[i], (float)r), "binary %d: %a op %a = %a want %a",
                          op, a[i], b[i], out[i], (float)r);
        }
    }
    memcpy(out, a, N * sizeof *out); /* out aliases a */
    be->ops->binary(FR_BIN_SUB, N, out, b, out);
    for (int i = 0; i < N; i++) ck_assert(fr_test_bits_equal(out[i], (float)((double)a[i] - b[i])));

    for (int op = 0; op < FR_UN_COUNT; op++) {
        float *x = a;
        if (op == FR_UN_SQRT || op == FR_UN_LOG)
            for (int i = 0; i < N; i++) b[i] = fabsf(a[i]) + 1e-3f;
        if (op == FR_UN_EXP) ops_fill_uniform(&s, b, N, -80.0f, 80.0f);
        if (op == FR_UN_SQRT || op == FR_UN_LOG || op == FR_UN_EXP) x = b;
        be->ops->unary((fr_unop)op, N, x, out);
        for (int i = 0; i < N; i++) {
            double X = x[i];
            if (op == FR_UN_EXP || op == FR_UN_LOG) {
                double r = op == FR_UN_EXP ? exp(X) : log(X);
                double err = fabs(out[i] - r), tol = OPS_DETMATH_U * fabs(r);
                ck_assert_msg(err <= tol, "unary %d(%a) = %a ref %.17g seed=%#llx", op, x[i],
                              out[i], r, (unsigned long long)seed);
            } else {
                double r = op == FR_UN_NEG ? -X : op == FR_UN_SQUARE ? X * X : op == FR_UN_ABS ? fabs(X) : sqrt(X);
                ck_assert_msg(fr_test_bits_equal(out[i], (float)r), "unary %d(%a) = %a want %a",
                              op, x[i], out[i], (float)r);
            }
        }
    }
    free(a), free(b), free(out);
}
END_TEST

START_TEST(test_axpby_scale_fill_copy)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xa7b7);
    uint64_t s = seed;
    enum { N = 45 };
    float x[N], y[N], y0[N];
    fill_wide(&s, x, N);
    fill_wide(&s, y0, N);
    const float alpha = -1.375f, beta = 0.3f;
    memcpy(y, y0, sizeof y);
    be->ops->axpby(N, alpha, x, beta, y);
    for (int i = 0; i < N; i++) {
        double r = (double)alpha * x[i] + (double)beta * y0[i];
        /* beta*y rounds (u |beta y|), the fmaf rounds (u |result|). */
        double tol = OPS_U * fabs((double)beta * y0[i]) * (1 + OPS_U) + OPS_U * fabs(r);
        ck_assert_msg(fabs(y[i] - r) <= tol, "axpby [%d] %a ref %.17g", i, y[i], r);
        ck_assert_msg(fr_test_bits_equal(y[i], fmaf(alpha, x[i], beta * y0[i])),
                      "axpby [%d] is not fmaf(alpha, x, beta*y)", i);
    }
    be->ops->scale(N, alpha, x, y);
    for (int i = 0; i < N; i++)
        ck_assert(fr_test_bits_equal(y[i], (float)((double)alpha * x[i])));
    be->ops->fill(N, -0.0f, y);
    for (int i = 0; i < N; i++) ck_assert(fr_test_bits_equal(y[i], -0.0f));
    x[3] = NAN, x[4] = -0.0f;
    be->ops->copy(N, x, y);
    ck_assert(memcmp(x, y, sizeof x) == 0);
    /* overlapping copy: shift by one element */
    be->ops->copy(N - 1, y, y + 1);
    ck_assert(memcmp(y + 1, x, (N - 1) * sizeof *x) == 0);
}
END_TEST

/* ---- reductions ----------------------------------------------------------------------- */

/* The canonical long sum written out: lane j takes x[j], x[j+8], ...; then
 * ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). sq = 1: lane = fmaf(x, x, lane). */
static float lane_sum(const float *x, int64_t n, int sq)
{
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t base = 0; base < n; base += 8)
        for (int j = 0; j < 8 && base + j < n; j++) {
            float v = x[base + j];
            l[j] = sq ? fmaf(v, v, l[j]) : l[j] + v;
        }
    float a = l[0] + l[4], b = l[2] + l[6], c = l[1] + l[5], d = l[3] + l[7];
    return (a + b) + (c + d);
}

static const int64_t k_sum_lengths[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 1000, 4099};
#define N_SUM_LENGTHS (int)(sizeof k_sum_lengths / sizeof k_sum_lengths[0])

START_TEST(test_sums)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x5a5a);
    uint64_t s = seed;
    for (int c = 0; c < N_SUM_LENGTHS; c++) {
        int64_t n = k_sum_lengths[c];
        float *x = ops_alloc(n);
        fill_wide(&s, x, n);
        float got;
        be->ops->sum(n, x, &got); /* host memory is ref's backend memory */
        double ref = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) ref += x[i], mag += fabs(x[i]);
        /* Each term goes through at most ops_longsum_depth(n) roundings. */
        double tol = ops_gamma(ops_longsum_depth(n)) * mag;
        ck_assert_msg(fabs(got - ref) <= tol, "sum n=%lld = %.9g ref %.17g tol %.3g seed=%#llx",
                      (long long)n, got, ref, tol, (unsigned long long)seed);
        float want = lane_sum(x, n, 0);
        ck_assert_msg(fr_test_bits_equal(got, want), "sum n=%lld = %a, lane order %a seed=%#llx",
                      (long long)n, got, want, (unsigned long long)seed);
        free(x);
    }
    /* Order matters here, worked by hand: x = {1, 2^-24 (x8)}. Sequentially each
     * 1 + 2^-24 rounds (tie to even) back to 1: result 1. In lane order, lane 0 = 1 + 2^-24
     * -> 1, lanes 1..7 = 2^-24; tree: (1 + 2^-23) + (2^-23 + 2^-23) = 1 + 3 * 2^-23. */
    float t[9] = {1.0f, 0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f, 0x1p-24f};
    float st;
    be->ops->sum(9, t, &st);
    ck_assert_msg(fr_test_bits_equal(st, 1.0f + 3 * 0x1p-23f), "sum = %a, want 1 + 3*2^-23", st);
}
END_TEST

START_TEST(test_row_sum_mean)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x5a5b);
    uint64_t s = seed;
    static const int64_t shapes[][2] = {{1, 1}, {5, 1}, {1, 33}, {4, 8}, {3, 250}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int64_t M = shapes[c][0], N = shapes[c][1];
        float *x = ops_alloc(M * N), *rs = ops_alloc(M), *rm = ops_alloc(M);
        fill_wide(&s, x, M * N);
        be->ops->row_sum(M, N, x, rs);
        be->ops->row_mean(M, N, x, rm);
        for (int64_t i = 0; i < M; i++) {
            double ref = 0, mag = 0;
            for (int64_t j = 0; j < N; j++) ref += x[i * N + j], mag += fabs(x[i * N + j]);
            double tol = ops_gamma(ops_longsum_depth(N)) * mag;
            float want = lane_sum(x + i * N, N, 0);
            ck_assert_msg(fabs(rs[i] - ref) <= tol && fr_test_bits_equal(rs[i], want),
                          "row_sum M=%lld N=%lld [%lld] %a ref %.17g lane %a seed=%#llx",
                          (long long)M, (long long)N, (long long)i, rs[i], ref, want,
                          (unsigned long long)seed);
            /* mean = long sum / (float)N: one more rounding. */
            double tolm = tol / (double)N + OPS_U * fabs(ref / (double)N);
            ck_assert_msg(fabs(rm[i] - ref / (double)N) <= tolm &&
                              fr_test_bits_equal(rm[i], want / (float)N),
                          "row_mean M=%lld N=%lld [%lld] %a ref %.17g seed=%#llx", (long long)M,
                          (long long)N, (long long)i, rm[i], ref / (double)N,
                          (unsigned long long)seed);
        }
        free(x), free(rs), free(rm);
    }
}
END_TEST

START_TEST(test_global_norm)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x5a5c);
    uint64_t s = seed;
    static const int64_t ns[] = {1, 9, 0, 130, 17};
    enum { T = 5 };
    float *xs[T];
    double ref = 0;
    int64_t maxn = 0;
    for (int t = 0; t < T; t++) {
        xs[t] = ops_alloc(ns[t]);
        fill_wide(&s, xs[t], ns[t]);
        for (int64_t i = 0; i < ns[t]; i++) ref += (double)xs[t][i] * xs[t][i];
        if (ns[t] > maxn) maxn = ns[t];
    }
    ref = sqrt(ref);
    float got;
    be->ops->global_norm(T, (const float *const *)xs, ns, &got); /* host memory is ref's backend memory */
    /* All terms positive, so relative bounds: each square passes through at most
     * depth(maxn) roundings in its sumsq and T more in the cross-tensor chain; sqrt halves
     * the relative error and rounds once. */
    double tol = (ops_gamma(ops_longsum_depth(maxn) + T) / 2.0 + OPS_U) * ref;
    ck_assert_msg(fabs(got - ref) <= tol, "global_norm %.9g ref %.17g tol %.3g seed=%#llx", got,
                  ref, tol, (unsigned long long)seed);
    float acc = 0.0f;
    for (int t = 0; t < T; t++) acc = acc + lane_sum(xs[t], ns[t], 1);
    ck_assert_msg(fr_test_bits_equal(got, sqrtf(acc)), "global_norm %a, canonical %a", got,
                  sqrtf(acc));
    float none = -1.0f;
    be->ops->global_norm(0, NULL, NULL, &none);
    ck_assert(none == 0.0f);
    /* Tensor order matters, worked by hand: sumsq = 1, then four times 2^-24. In index
     * order each 1 + 2^-24 rounds (tie to even) to 1, so the norm is 1; summed in reverse
     * it would be sqrtf(1 + 2^-22) = 1 + 2^-23. */
    const float one = 1.0f, small = 0x1p-12f;
    const float *ord[5] = {&one, &small, &small, &small, &small};
    const int64_t ones[5] = {1, 1, 1, 1, 1};
    float gn;
    be->ops->global_norm(5, ord, ones, &gn);
    ck_assert_msg(gn == 1.0f, "global_norm = %a, want 1 (tensors in index order)", gn);
    for (int t = 0; t < T; t++) free(xs[t]);
}
END_TEST

/* ---- AdamW ---------------------------------------------------------------------------- */

START_TEST(test_adamw_prepare)
{
    /* Against libm's pow in double (tests may use libm): each scalar is the double value
     * rounded to float once; pow and repeated squaring differ by a few double ulps, far
     * below float resolution, so allow 1 float ulp for a tie-breaking difference. The
     * hyper-parameters are doubles, as torch's Python floats: 1 - beta2 is formed in double
     * from 0.999, not from 0.999f (1.3e-5 relative apart). */
    static const int64_t steps[] = {1, 2, 3, 10, 1000, 123457, 10000000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        double lr = 3e-4, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
        int64_t t = steps[i];
        fr_adamw_hp hp = fr_adamw_prepare(lr, b1, b2, eps, wd, t);
        float ss = (float)(lr / (1.0 - pow(b1, (double)t)));
        float bc = (float)sqrt(1.0 - pow(b2, (double)t));
        ck_assert_msg(fr_test_ulps(hp.step_size, ss) <= 1 && fr_test_ulps(hp.bc2_sqrt, bc) <= 1 &&
                          fr_test_bits_equal(hp.decay, (float)(1.0 - lr * wd)),
                      "t=%lld: step_size %a (%a) bc2_sqrt %a (%a) decay %a", (long long)t,
                      hp.step_size, ss, hp.bc2_sqrt, bc, hp.decay);
        ck_assert(hp.step == t && hp.beta1 == (float)b1 && hp.beta2 == (float)b2 &&
                  hp.eps == (float)eps);
        ck_assert(fr_test_bits_equal(hp.one_minus_beta1, (float)(1.0 - b1)) &&
                  fr_test_bits_equal(hp.one_minus_beta2, (float)(1.0 - b2)));
    }
    /* The float-hyper-parameter derivation this replaces is visibly different: */
    fr_adamw_hp hp = fr_adamw_prepare(1e-3, 0.9, 0.999, 1e-8, 0.01, 1);
    ck_assert(hp.one_minus_beta1 == 0.1f && 1.0f - 0.9f != 0.1f);
    ck_assert(fr_test_ulps(hp.one_minus_beta2, 1.0f - 0.999f) > 100);
    /* Hand values at t = 1: step_size = lr / (1 - beta1) = 0.5 / 0.5 = 1;
     * bc2_sqrt = sqrt(1 - 0.75) = 0.5; decay = 1 - 0.5 * 0.5 = 0.75 (all exact). */
    fr_adamw_hp h = fr_adamw_prepare(0.5, 0.5, 0.75, 1e-8, 0.5, 1);
    ck_assert(h.bc2_sqrt == 0.5f && h.decay == 0.75f);
    ck_assert(h.step_size == 1.0f && h.one_minus_beta1 == 0.5f && h.one_minus_beta2 == 0.25f);
    /* t = 2: 1 - 0.5^2 = 0.75 -> step_size 0.5/0.75; 1 - 0.75^2 = 0.4375. */
    h = fr_adamw_prepare(0.5, 0.5, 0.75, 1e-8, 0.5, 2);
    ck_assert(fr_test_bits_equal(h.step_size, (float)(0.5 / 0.75)));
    ck_assert(fr_test_bits_equal(h.bc2_sqrt, (float)sqrt(0.4375)));
}
END_TEST

START_TEST(test_adamw_first_step_by_hand)
{
    /* m0 = v0 = 0, step 1: m1 = (1-b1) g, v1 = (1-b2) g^2, m1/(1-b1) = g,
     * sqrt(v1)/sqrt(1-b2) = |g|, so p1 = p0 (1 - lr wd) - lr g / (|g| + eps)
     *                                ~= p0 (1 - lr wd) - lr sign(g).
     * With p0 = 2, lr = 0.01, wd = 0.1: p1 = 1.998 -+ 0.01 = 1.988 (g > 0) or 2.008. */
    fr_backend *be = fr_test_ref_be();
    enum { N = 6 };
    float p[N], m[N] = {0}, v[N] = {0};
    const float g[N] = {0.5f, -0.5f, 3.0f, -1e-3f, 1e-3f, 40.0f};
    for (int i = 0; i < N; i++) p[i] = 2.0f;
    fr_adamw_hp hp = fr_adamw_prepare(0.01, 0.9, 0.999, 1e-8, 0.1, 1);
    be->ops->adamw(N, p, g, m, v, &hp);
    for (int i = 0; i < N; i++) {
        double want = g[i] > 0 ? 1.988 : 2.008;
        /* eps / |g| relative on the lr-sized update (<= 1e-5 * 0.01 here), the float
         * roundings of p (a few u * 2) and of the step's float scalars (a few u relative
         * on the 0.01 update and on the 0.002 decay). */
        double tol = 0.01 * 1e-8 / fabs(g[i]) + 8.0 * OPS_U * 2.0;
        ck_assert_msg(fabs(p[i] - want) <= tol, "g=%g: p1=%.9g want %.9g tol %.3g", g[i], p[i],
                      want, tol);
        /* m1 = (1 - b1) g, v1 = (1 - b2) g g with 1 - b1, 1 - b2 rounded to float once
         * (u each), then one rounding for m1 and two for v1: 2u and 4u cover them. */
        double m1 = (1.0 - 0.9) * g[i], v1 = (1.0 - 0.999) * g[i] * g[i];
        ck_assert_msg(fabs(m[i] - m1) <= 2 * OPS_U * fabs(m1) && fabs(v[i] - v1) <= 4 * OPS_U * v1,
                      "g=%g: m1=%a (%a) v1=%a (%a)", g[i], m[i], m1, v[i], v1);
    }
}
END_TEST

START_TEST(test_adamw_vs_double)
{
    /* Several steps against PyTorch's formula in double (the double hyper-parameters,
     * bias corrections with libm pow), with a running first-order error bound for the
     * float state: each rounding (of a result, or of a scalar of fr_adamw_prepare) adds
     * u times the magnitude it rounds,
     * errors in m and v carry into the next step scaled by beta1 / beta2 (the recurrences
     * contract), an error e_v in v gives a relative error e_v / (2v) in sqrt(v). */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xada3);
    uint64_t s = seed;
    enum { N = 37, T = 12 };
    const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.05;
    const double u = OPS_U;
    float p[N], m[N] = {0}, v[N] = {0}, g[N];
    double P[N], Mm[N] = {0}, V[N] = {0}, ep[N] = {0}, em[N] = {0}, ev[N] = {0};
    ops_fill_uniform(&s, p, N, -2.0f, 2.0f);
    for (int i = 0; i < N; i++) P[i] = p[i];
    for (int t = 1; t <= T; t++) {
        fill_wide(&s, g, N);
        fr_adamw_hp hp = fr_adamw_prepare(lr, b1, b2, eps, wd, t);
        be->ops->adamw(N, p, g, m, v, &hp);
        double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
        for (int i = 0; i < N; i++) {
            double G = g[i];
            double Pd = P[i] * (1.0 - lr * wd);
            double Mn = Mm[i] + (1.0 - b1) * (G - Mm[i]);
            double Vn = b2 * V[i] + (1.0 - b2) * G * G;
            double den = sqrt(Vn) / sqrt(bc2) + eps;
            double upd = (lr / bc1) * Mn / den;
            /* error bounds */
            em[i] = b1 * em[i] + 3.0 * u * (fabs(Mm[i]) + fabs(G));
            ev[i] = b2 * ev[i] + 4.0 * u * (b2 * V[i] + (1.0 - b2) * G * G);
            double rel_den = (Vn > 0 ? ev[i] / (2.0 * Vn) : 0.0) + 4.0 * u; /* sqrt,/,+, bc2 */
            double e_upd = (lr / bc1) * (em[i] + fabs(Mn) * (rel_den + 4.0 * u)) / den;
            ep[i] = ep[i] + 2.0 * u * fabs(Pd) + e_upd + u * fabs(Pd - upd);
            Mm[i] = Mn, V[i] = Vn, P[i] = Pd - upd;
            double tol = 2.0 * ep[i]; /* x2: second-order terms */
            ck_assert_msg(fabs(p[i] - P[i]) <= tol && fabs(m[i] - Mm[i]) <= 2.0 * em[i] &&
                              fabs(v[i] - V[i]) <= 2.0 * ev[i],
                          "adamw t=%d i=%d: p %.9g ref %.17g (tol %.3g), m %.9g ref %.17g, v %.9g "
                          "ref %.17g seed=%#llx",
                          t, i, p[i], P[i], tol, m[i], Mm[i], v[i], V[i], (unsigned long long)seed);
        }
    }
}
END_TEST

START_TEST(test_adamw_exact_formula)
{
    /* Bitwise against the documented float expression (flowrl/elem.h): the formula is part
     * of the contract other backends mirror; this pins the ref table to it, at two beta1. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0xada4);
    uint64_t s = seed;
    enum { N = 29 };
    static const double betas1[] = {0.9, 0.3};
    for (int bi = 0; bi < 2; bi++) {
        float p[N], m[N], v[N], g[N];
        fill_wide(&s, p, N);
        fill_wide(&s, m, N);
        fill_wide(&s, g, N);
        for (int i = 0; i < N; i++) v[i] = fabsf(fr_test_uniform(&s, 0.0f, 2.0f));
        float p0[N], m0[N], v0[N];
        memcpy(p0, p, sizeof p), memcpy(m0, m, sizeof m), memcpy(v0, v, sizeof v);
        fr_adamw_hp hp = fr_adamw_prepare(3e-3, betas1[bi], 0.99, 1e-6, 0.1, 7);
        be->ops->adamw(N, p, g, m, v, &hp);
        for (int i = 0; i < N; i++) {
            float mm = fmaf(g[i], hp.one_minus_beta1, m0[i] * hp.beta1);
            float vv = fmaf(hp.one_minus_beta2 * g[i], g[i], v0[i] * hp.beta2);
            float den = sqrtf(vv) / hp.bc2_sqrt + hp.eps;
            float pp = p0[i] * hp.decay - (hp.step_size * mm) / den;
            ck_assert_msg(fr_test_bits_equal(p[i], pp) && fr_test_bits_equal(m[i], mm) &&
                              fr_test_bits_equal(v[i], vv),
                          "beta1=%g i=%d: p %a/%a m %a/%a v %a/%a seed=%#llx", betas1[bi], i, p[i],
                          pp, m[i], mm, v[i], vv, (unsigned long long)seed);
        }
    }
}
END_TEST

/* ---- registry ------------------------------------------------------------------------- */

START_TEST(test_registry)
{
    const fr_ops *ops = NULL, *again = NULL;
    ck_assert_int_eq(fr_backend_get("ref", &ops), FR_OK);
    ck_assert_ptr_nonnull(ops);
    ck_assert_str_eq(ops->name, "ref");
    ck_assert_int_eq(fr_backend_get("ref", &again), FR_OK);
    ck_assert_ptr_eq(ops, again);
    /* every entry filled */
    ck_assert(ops->gemm && ops->bias_add && ops->bias_grad && ops->act_fwd && ops->act_bwd &&
              ops->layernorm_fwd && ops->layernorm_bwd && ops->binary && ops->unary &&
              ops->axpby && ops->scale && ops->fill && ops->copy && ops->row_sum &&
              ops->row_mean && ops->sum && ops->global_norm && ops->adamw);
    fr_ops direct;
    memset(&direct, 0, sizeof direct);
    fr_ref_fill(&direct);
    ck_assert(direct.gemm == ops->gemm && direct.adamw == ops->adamw);

    const char *const *names = fr_backend_names();
    int n = 0, has_ref = 0;
    for (; names[n]; n++) has_ref |= strcmp(names[n], "ref") == 0;
    ck_assert(n >= 1 && has_ref);

    const fr_ops *bad = (const fr_ops *)&direct;
    ck_assert_int_eq(fr_backend_get("no-such-backend", &bad), FR_ERR_ARG);
    ck_assert_ptr_null(bad);
    const char *msg = fr_last_error();
    ck_assert_msg(strstr(msg, "no-such-backend") && strstr(msg, "ref"), "message: %s", msg);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(msg, names[i]) != NULL, "message '%s' omits backend %s", msg,
                      names[i]);
    ck_assert_int_eq(fr_backend_get(NULL, &bad), FR_ERR_ARG);
    ck_assert_int_eq(fr_backend_get("ref", NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_backend_get("", &bad), FR_ERR_ARG);
    ck_assert_int_eq(fr_backend_get("REF", &bad), FR_ERR_ARG);

    /* A backend the project defines but this build lacks is "unsupported". */
    static const char *const optional[] = {"opt", "cuda"};
    for (int k = 0; k < 2; k++) {
        int built = 0;
        for (int i = 0; i < n; i++) built |= strcmp(names[i], optional[k]) == 0;
        if (built) continue;
        ck_assert_int_eq(fr_backend_get(optional[k], &bad), FR_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(fr_last_error(), optional[k]) && strstr(fr_last_error(), "ref"),
                      "message: %s", fr_last_error());
    }
}
END_TEST

/* ---- the handle (flowrl/backend.h) --------------------------------------------------------- */

START_TEST(test_backend_handle)
{
    int have_opt = 0;
    for (const char *const *n = fr_backend_names(); *n; n++) have_opt |= strcmp(*n, "opt") == 0;
    fr_backend be;
    char line[128];
    /* "" = opt when built in, else ref; threads only on opt */
    ck_assert_int_eq(fr_backend_open(&be, "", 0, 2), FR_OK);
    ck_assert_str_eq(be.name, have_opt ? "opt" : "ref");
    ck_assert_str_eq(be.mode, "exact");
    ck_assert_int_eq(be.threads, have_opt ? 2 : 1);
    ck_assert(be.fast == 0 && be.device == 0 && be.ops->device == 0);
    fr_backend_line(&be, line, sizeof line);
    ck_assert_str_eq(line, have_opt ? "backend opt, threads 2, mode exact" : "backend ref, threads 1, mode exact");
    fr_backend_close(&be);
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 7), FR_OK);
    ck_assert_int_eq(be.threads, 1);
    ck_assert_ptr_eq(be.ops, fr_test_ref_be()->ops);
    /* refusals, with their messages */
    ck_assert_int_eq(fr_backend_open(NULL, "ref", 0, 1), FR_ERR_ARG);
    fr_backend bad;
    ck_assert_int_eq(fr_backend_open(&bad, "nope", 0, 1), FR_ERR_ARG);
    ck_assert_int_eq(fr_backend_open(&bad, NULL, 0, 1), FR_ERR_ARG);
    ck_assert_int_eq(fr_backend_open(&bad, "ref", 1, 1), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "ref has no --fast mode"), "%s", fr_last_error());
    if (have_opt) {
        ck_assert_msg(strstr(fr_last_error(), "--backend=opt"), "%s", fr_last_error());
        const fr_ops *f;
        if (fr_backend_get_mode("opt", 1, &f) == FR_OK) {
            ck_assert_int_eq(fr_backend_open(&bad, "opt", 1, 1), FR_OK);
            ck_assert(bad.fast == 1 && bad.ops == f && bad.threads == 1);
            ck_assert_str_eq(bad.mode, "fast");
            ck_assert_str_eq(bad.name, "opt");
        }
    }

    /* memory: zero-filled, 64-byte aligned; copies across are counted, inside are not */
    unsigned char *p = fr_dev_alloc(&be, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(p[i], 0);
    fr_dev_free(&be, p);
    fr_dev_free(&be, NULL);
    ck_assert_ptr_null(fr_dev_floats(&be, -1));
    ck_assert_ptr_null(fr_dev_doubles(&be, INT64_MAX));
    ck_assert_msg(strstr(fr_last_error(), "ref"), "%s", fr_last_error());
    double *dd = fr_dev_doubles(&be, 3);
    int32_t *di = fr_dev_i32(&be, 5);
    ck_assert(dd && di && dd[2] == 0.0 && di[4] == 0);
    fr_dev_free(&be, dd);
    fr_dev_free(&be, di);

    enum { N = 37 };
    float host[N], back[N];
    for (int i = 0; i < N; i++) host[i] = (float)i - 0.25f * (float)i * (float)i;
    float *x = fr_dev_floats(&be, N), *y = fr_dev_floats(&be, N), *s = fr_dev_floats(&be, 1);
    ck_assert(x && y && s);
    const fr_copy_stats start = be.copies;
    ck_assert_int_eq(fr_h2d(&be, x, host, sizeof host), FR_OK);
    ck_assert_int_eq(fr_d2d(&be, y, x, sizeof host), FR_OK);
    be.ops->sum(N, y, s); /* the result stays in backend memory */
    float sum;
    ck_assert_int_eq(fr_d2h(&be, &sum, s, sizeof sum), FR_OK);
    ck_assert_int_eq(fr_d2h(&be, back, y, sizeof back), FR_OK);
    ck_assert(memcmp(back, host, sizeof host) == 0);
    ck_assert(fr_test_bits_equal(sum, lane_sum(host, N, 0)));
    ck_assert_int_eq(fr_dev_zero(&be, y, sizeof host), FR_OK);
    ck_assert_int_eq(fr_d2h(&be, back, y, sizeof back), FR_OK);
    for (int i = 0; i < N; i++) ck_assert(back[i] == 0.0f);
    ck_assert_int_eq(fr_dev_sync(&be), FR_OK);
    const fr_copy_stats d = fr_copy_stats_since(&be.copies, &start);
    ck_assert(d.h2d_calls == 1 && d.h2d_bytes == sizeof host);
    ck_assert(d.d2h_calls == 3 && d.d2h_bytes == sizeof sum + 2 * sizeof back);
    fr_dev_free(&be, x);
    fr_dev_free(&be, y);
    fr_dev_free(&be, s);
    fr_backend_close(&be);
}
END_TEST

Suite *suite_ops(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ref");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gemm_vs_double);
    tcase_add_test(tc, test_gemm_exact_chain);
    tcase_add_test(tc, test_gemm_split_k_continues_chain);
    tcase_add_test(tc, test_bias);
    tcase_add_test(tc, test_act_fwd_vs_double);
    tcase_add_test(tc, test_act_bwd_vs_double);
    tcase_add_test(tc, test_act_special_values);
    tcase_add_test(tc, test_act_exact_formula);
    tcase_add_test(tc, test_layernorm_fwd_vs_double);
    tcase_add_test(tc, test_layernorm_fwd_exact_order);
    tcase_add_test(tc, test_layernorm_bwd_accumulate);
    tcase_add_test(tc, test_binary_unary);
    tcase_add_test(tc, test_axpby_scale_fill_copy);
    tcase_add_test(tc, test_sums);
    tcase_add_test(tc, test_row_sum_mean);
    tcase_add_test(tc, test_global_norm);
    tcase_add_test(tc, test_adamw_prepare);
    tcase_add_test(tc, test_adamw_first_step_by_hand);
    tcase_add_test(tc, test_adamw_vs_double);
    tcase_add_test(tc, test_adamw_exact_formula);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_backend_handle);
    suite_add_tcase(s, tc);
    return s;
}
