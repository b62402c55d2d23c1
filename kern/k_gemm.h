/* The canonical GEMM as a tiled, register-blocked kernel (flowrl/reduce.h "dot / GEMM output",
 * ref/ref_gemm.c): C (M,N) = op(A) op(B) (+ C). Each output is one fmaf chain along k in
 * order, starting from 0 or from the old C; the block walks k in tiles of FR_KG_BK and every
 * thread continues its chains through each tile (no split-k), so the bits are ref's.
 *
 * A block computes a 64 × 64 tile of C with 8 × 8 threads, each holding an 8 × 8 register
 * block: rows i0 + ty + 8 r, columns j0 + tx + 8 c (neighbouring threads store neighbouring
 * columns; per k step a thread reads 16 shared values for 64 fmaf). Per k-tile of 16 the
 * threads stage op(A) (BK × BM) and op(B) (BK × BN) in shared memory, each load mapping
 * consecutive threads to the operand's contiguous dimension (it depends on ta / tb). Past K
 * the chain stops (the compute phase runs kn = min(BK, K − k0) steps, never an fmaf with
 * padding, which would turn a −0 into +0); past M or N the tile holds zeros and nothing is
 * stored. */
#ifndef FLOWRL_KERN_K_GEMM_H
#define FLOWRL_KERN_K_GEMM_H

#include <math.h>

#include "flowrl/kernel.h"
#include "flowrl/ops.h"

#define FR_KG_BM 64
#define FR_KG_BN 64
#define FR_KG_BK 16
#define FR_KG_TX 8 /* threads along N */
#define FR_KG_TY 8 /* threads along M */
#define FR_KG_TM (FR_KG_BM / FR_KG_TY)
#define FR_KG_TN (FR_KG_BN / FR_KG_TX)
#define FR_KG_THREADS (FR_KG_TX * FR_KG_TY)

typedef struct {
    int64_t M, N, K;
    int64_t sa_i, sa_k; /* op(A)[i,k] = A[i*sa_i + k*sa_k] */
    int64_t sb_k, sb_j; /* op(B)[k,j] = B[k*sb_k + j*sb_j] */
    int a_k_contig, b_k_contig; /* 1: the stored operand is contiguous along k */
    const float *A, *B;
    float *C;
    int accumulate;
} fr_k_gemm_args;

/* One column of padding keeps the k-fastest loads (a_k_contig, b_k_contig) off a single
 * shared-memory bank. */
typedef struct {
    float a[FR_KG_BK][FR_KG_BM + 1]; /* a[kk][ii] = op(A)[i0 + ii, k0 + kk] */
    float b[FR_KG_BK][FR_KG_BN + 1]; /* b[kk][jj] = op(B)[k0 + kk, j0 + jj] */
} fr_k_gemm_smem;

typedef struct {
    float acc[FR_KG_TM][FR_KG_TN];
} fr_k_gemm_regs;

FR_HOSTDEV static inline int64_t fr_k_gemm_iters(const fr_k_gemm_args *a)
{
    return (a->K + FR_KG_BK - 1) / FR_KG_BK;
}

/* C's row and column of the thread's output (ri, ci). */
FR_HOSTDEV static inline int64_t fr_k_gemm_row(const fr_kidx *k, int ri)
{
    return (int64_t)k->block.y * FR_KG_BM + k->thread.y + (int64_t)FR_KG_TY * ri;
}
FR_HOSTDEV static inline int64_t fr_k_gemm_col(const fr_kidx *k, int ci)
{
    return (int64_t)k->block.x * FR_KG_BN + k->thread.x + (int64_t)FR_KG_TX * ci;
}

FR_HOSTDEV static inline void fr_k_gemm_init(const fr_kidx *k, const fr_k_gemm_args *a, fr_k_gemm_smem *s,
                                             fr_k_gemm_regs *r)
{
    (void)s;
    for (int ri = 0; ri < FR_KG_TM; ri++)
        for (int ci = 0; ci < FR_KG_TN; ci++) {
            int64_t i = fr_k_gemm_row(k, ri), j = fr_k_gemm_col(k, ci);
            r->acc[ri][ci] = (a->accumulate && i < a->M && j < a->N) ? a->C[i * a->N + j] : 0.0f;
        }
}

FR_HOSTDEV static inline void fr_k_gemm_load(const fr_kidx *k, const fr_k_gemm_args *a, fr_k_gemm_smem *s,
                                             fr_k_gemm_regs *r)
{
    (void)r;
    const int64_t k0 = k->iter * FR_KG_BK;
    const int64_t i0 = (int64_t)k->block.y * FR_KG_BM, j0 = (int64_t)k->block.x * FR_KG_BN;
    const int64_t tid = fr_kidx_local(k);
    for (int64_t e = tid; e < FR_KG_BK * FR_KG_BM; e += FR_KG_THREADS) {
        int64_t kk = a->a_k_contig ? e % FR_KG_BK : e / FR_KG_BM;
        int64_t ii = a->a_k_contig ? e / FR_KG_BK : e % FR_KG_BM;
        int64_t i = i0 + ii, kg = k0 + kk;
        s->a[kk][ii] = (i < a->M && kg < a->K) ? a->A[i * a->sa_i + kg * a->sa_k] : 0.0f;
    }
    for (int64_t e = tid; e < FR_KG_BK * FR_KG_BN; e += FR_KG_THREADS) {
        int64_t kk = a->b_k_contig ? e % FR_KG_BK : e / FR_KG_BN;
        int64_t jj = a->b_k_contig ? e / FR_KG_BK : e % FR_KG_BN;
        int64_t j = j0 + jj, kg = k0 + kk;
        s->b[kk][jj] = (j < a->N && kg < a->K) ? a->B[kg * a->sb_k + j * a->sb_j] : 0.0f;
    }
}

FR_HOSTDEV static inline void fr_k_gemm_compute(const fr_kidx *k, const fr_k_gemm_args *a, fr_k_gemm_smem *s,
                                                fr_k_gemm_regs *r)
{
    const int64_t left = a->K - k->iter * FR_KG_BK;
    const int kn = left < FR_KG_BK ? (int)left : FR_KG_BK;
    const int ty = (int)k->thread.y, tx = (int)k->thread.x;
    for (int kk = 0; kk < kn; kk++) {
        float av[FR_KG_TM], bv[FR_KG_TN];
        for (int ri = 0; ri < FR_KG_TM; ri++) av[ri] = s->a[kk][ty + FR_KG_TY * ri];
        for (int ci = 0; ci < FR_KG_TN; ci++) bv[ci] = s->b[kk][tx + FR_KG_TX * ci];
        for (int ri = 0; ri < FR_KG_TM; ri++)
            for (int ci = 0; ci < FR_KG_TN; ci++) r->acc[ri][ci] = fmaf(av[ri], bv[ci], r->acc[ri][ci]);
    }
}

FR_HOSTDEV static inline void fr_k_gemm_store(const fr_kidx *k, const fr_k_gemm_args *a, fr_k_gemm_smem *s,
                                              fr_k_gemm_regs *r)
{
    (void)s;
    for (int ri = 0; ri < FR_KG_TM; ri++)
        for (int ci = 0; ci < FR_KG_TN; ci++) {
            int64_t i = fr_k_gemm_row(k, ri), j = fr_k_gemm_col(k, ci);
            if (i < a->M && j < a->N) a->C[i * a->N + j] = r->acc[ri][ci];
        }
}

FR_KERNEL_TILED(fr_k_gemm, fr_k_gemm_args, fr_k_gemm_regs, fr_k_gemm_smem)

static void k_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K,
                   const float *A, // (M,K), or (K,M) if ta
                   const float *B, // (K,N), or (N,K) if tb
                   float *C,       // (M,N)
                   int accumulate)
{
    if (M <= 0 || N <= 0) return;
    FR_KARG(A, M * K, "A");
    FR_KARG(B, K * N, "B");
    FR_KARG(C, M * N, "C");
    fr_k_gemm_args a;
    a.M = M;
    a.N = N;
    a.K = K;
    a.sa_i = ta ? 1 : K;
    a.sa_k = ta ? M : 1;
    a.sb_k = tb ? 1 : N;
    a.sb_j = tb ? K : 1;
    a.a_k_contig = !ta;
    a.b_k_contig = tb;
    a.A = A;
    a.B = B;
    a.C = C;
    a.accumulate = accumulate;
    const uint32_t bx = (uint32_t)((N + FR_KG_BN - 1) / FR_KG_BN), by = (uint32_t)((M + FR_KG_BM - 1) / FR_KG_BM);
    FR_LAUNCH_TILED(fr_k_gemm, fr_dim3_make(bx, by, 1), fr_dim3_make(FR_KG_TX, FR_KG_TY, 1), a);
}

static void fr_kern_fill_gemm(fr_ops *t) { t->gemm = k_gemm; }

#endif
