/* Small GEMMs on AVX2 without the tiled path's machinery: the DiT's per-(sample, head)
 * attention products (S = Q K^T: 21x21x32, P V, and their backward: ~90,000 calls an epoch of
 * a shapes-dit-s Flow-GRPO run) took 0.6-1.4 us each through opt/opt_gemm.c (a 6x16 tile padded
 * to 24x32, B packed per call, the job set up for threads) for 14,000 multiply-adds; here the
 * NT one (Q K^T) takes 0.76 us instead of 1.39, TN 0.51 instead of 0.76, NN about the same.
 *
 * Same bits as opt/opt_gemm.c and ref/ref_gemm.c: every C[i,j] is ONE fma chain along
 * k = 0..K-1 from 0 or the old C[i,j]. The vector lanes are 8 columns j of one row, an
 * accumulator register per (row, 8 columns), _mm256_fmadd_ps(a[i,k], b[k,j..j+7], acc) per k
 * in increasing order: the lanes never mix k. op(B) is copied first into rows of NP floats
 * (columns padded with zeros to a multiple of 8, whose outputs are never stored). */
#include "opt/opt_internal.h"

#include <string.h>

#include "opt/opt_simd.h"

/* The small path's limits: op(B) at most SMALL_K x SMALL_N (8 KiB copied on the stack) and at
 * most SMALL_FMAS multiply-adds (far below a thread's share: opt_gemm.c's 2^18). */
#define SMALL_N 32
#define SMALL_K 64
#define SMALL_FMAS (1 << 16)

#if FR_OPT_X86

/* R rows of C from row i, columns [j, j + 8) (the last vector masked by `mask` when n8 < 8).
 * R is a constant where it is called, so the loops over r unroll into R registers. */
FR_AVX2_INL static inline void rows_vec(const int R, const float *a, int64_t sai, int64_t sak, const float *bt,
                                        int64_t np, int64_t K, float *c, int64_t ldc, int n8, __m256i mask,
                                        int accumulate)
{
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        acc[r] = !accumulate ? _mm256_setzero_ps()
                 : n8 == 8   ? _mm256_loadu_ps(c + r * ldc)
                             : _mm256_maskload_ps(c + r * ldc, mask);
    for (int64_t k = 0; k < K; k++) {
        const __m256 b = _mm256_load_ps(bt + k * np);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + r * sai + k * sak), b, acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (n8 == 8) _mm256_storeu_ps(c + r * ldc, acc[r]);
        else _mm256_maskstore_ps(c + r * ldc, mask, acc[r]);
    }
}

/* bt[k*np + j] = op(B)[k, j] for j < N, 0 for N <= j < np; when tb (op(B)[k,j] = B[j*K + k]) by
 * 8x8 blocks through registers (fr_v_transpose8), the edges one by one. */
FR_AVX2 static void copy_b(int tb, const float *B, int64_t N, int64_t K, float *bt, int64_t np)
{
    int64_t j = 0;
    if (tb) {
        for (; j + 8 <= N; j += 8) {
            int64_t k = 0;
            for (; k + 8 <= K; k += 8) fr_v_transpose8(B + j * K + k, K, bt + k * np + j, np);
            for (; k < K; k++)
                for (int64_t jj = j; jj < j + 8; jj++) bt[k * np + jj] = B[jj * K + k];
        }
    }
    for (int64_t k = 0; k < K; k++) {
        float *row = bt + k * np;
        if (tb)
            for (int64_t jj = j; jj < N; jj++) row[jj] = B[jj * K + k];
        else
            memcpy(row, B + k * N, (size_t)N * sizeof *row); /* j = 0 */
        for (int64_t jj = N; jj < np; jj++) row[jj] = 0.0f;
    }
}

FR_AVX2 static void gemm_small_avx2(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                                    float *C, int accumulate)
{
    const int64_t np = (N + 7) / 8 * 8;
    _Alignas(32) float bt[SMALL_K * SMALL_N];
    copy_b(tb, B, N, K, bt, np);
    const int64_t sai = ta ? 1 : K, sak = ta ? M : 1; /* op(A)[i,k] = A[i*sai + k*sak] */
    for (int64_t j = 0; j < N; j += 8) {
        const int n8 = N - j < 8 ? (int)(N - j) : 8;
        const __m256i mask = fr_opt_tail_mask(n8);
        const float *b = bt + j;
        /* groups of at most 8 rows, as equal as possible (21 rows: 7, 7, 7), so that no group
         * is a short, latency-bound chain of fmas */
        const int64_t groups = (M + 7) / 8;
        for (int64_t g = 0, i = 0; g < groups; g++) {
            const int64_t i1 = M * (g + 1) / groups;
            const float *ag = A + i * sai;
            float *cg = C + i * N + j;
            switch ((int)(i1 - i)) {
#define ROWS(R)                                                                                                        \
    case R: rows_vec(R, ag, sai, sak, b, np, K, cg, N, n8, mask, accumulate); break;
                ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7) ROWS(8)
#undef ROWS
            }
            i = i1;
        }
    }
}

#endif

int fr_opt_gemm_small(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                      int accumulate)
{
#if FR_OPT_X86
    if (!fr_opt_avx2 || N > SMALL_N || K > SMALL_K || M * N * K > SMALL_FMAS) return 0;
    gemm_small_avx2(ta, tb, M, N, K, A, B, C, accumulate);
    return 1;
#else
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)B, (void)C, (void)accumulate;
    return 0;
#endif
}
