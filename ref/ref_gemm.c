/* GEMM, the canonical dot/GEMM order of flowrl/reduce.h: every output C[i,j] is one fmaf
 * chain along k = 0..K-1, starting from 0 (accumulate = 0) or from the old C[i,j]
 * (accumulate = 1). */
#include "ref/ref_internal.h"

#include <math.h>

void fr_ref_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                 const float *A, // (M,K), or (K,M) if ta
                 const float *B, // (K,N), or (N,K) if tb
                 float *C,       // (M,N)
                 int accumulate)
{
    /* op(A)[i,k] = A[i*sa_i + k*sa_k], op(B)[k,j] = B[k*sb_k + j*sb_j]. */
    int64_t sa_i = ta ? 1 : K, sa_k = ta ? M : 1;
    int64_t sb_k = tb ? 1 : N, sb_j = tb ? K : 1;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            float acc = accumulate ? C[i * N + j] : 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc = fmaf(A[i * sa_i + k * sa_k], B[k * sb_k + j * sb_j], acc);
            C[i * N + j] = acc;
        }
    }
}
