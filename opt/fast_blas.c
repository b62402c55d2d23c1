/* --fast GEMM through OpenBLAS (docs/design.md §4; docs/algorithms/numerics.md §1.5, §7.3). For a fixed
 * build, core type (OPENBLAS_CORETYPE) and thread count the bits repeat run to run; they
 * differ from ref's canonical fmaf chain (OpenBLAS blocks K and uses its own FMA kernels),
 * within the tolerance of docs/determinism.md "--fast: measured tolerance". */
#include "config.h"
#include "opt/fast_internal.h"
#include "opt/opt_internal.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#if FR_HAVE_OPENBLAS
#include <cblas.h>

/* OpenBLAS itself runs single-threaded (set once): its own pthread server, spinning
 * between calls beside the opt pool's workers, made a 2-thread model step slower than the
 * canonical one (bench_fast). The product is split instead over the opt pool by blocks of
 * C (rows if M >= N, else columns; boundaries at multiples of SPLIT_ALIGN), each block one
 * single-threaded cblas_sgemm over the whole K: no reduction is split, and the blocks depend
 * only on (M, N, threads), so the bits repeat for a fixed thread count. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void set_one_thread(void) { openblas_set_num_threads(1); }

int fr_fast_blas_ok(void) { return 1; }

#define SPLIT_ALIGN 16
/* Work per part below which fewer parts are used (multiply-adds). */
#define MIN_PART_MNK ((int64_t)1 << 18)

typedef struct {
    int ta, tb, accumulate, by_rows;
    int64_t M, N, K, blocks;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_part(void *arg, int tid, int nt)
{
    const gemm_job *j = (const gemm_job *)arg;
    int64_t b0 = j->blocks * tid / nt, b1 = j->blocks * (tid + 1) / nt;
    int64_t dim = j->by_rows ? j->M : j->N;
    int64_t lo = b0 * SPLIT_ALIGN, hi = b1 * SPLIT_ALIGN < dim ? b1 * SPLIT_ALIGN : dim;
    if (hi <= lo) return;
    int lda = j->ta ? (int)j->M : (int)j->K, ldb = j->tb ? (int)j->K : (int)j->N;
    const float *A = j->A, *B = j->B;
    float *C = j->C;
    int64_t m = j->M, n = j->N;
    if (j->by_rows) { /* rows lo..hi of op(A) and of C */
        A += j->ta ? lo : lo * j->K;
        C += lo * j->N;
        m = hi - lo;
    } else { /* columns lo..hi of op(B) and of C */
        B += j->tb ? lo * j->K : lo;
        C += lo;
        n = hi - lo;
    }
    cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)j->K, 1.0f, A, lda, B, ldb, j->accumulate ? 1.0f : 0.0f, C,
                (int)j->N);
}

int fr_fast_blas_gemm(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K,
                      const float *A, // (M,K), or (K,M) if ta
                      const float *B, // (K,N), or (N,K) if tb
                      float *C,       // (M,N)
                      int accumulate)
{
    if (M < 1 || N < 1 || K < 1 || M > INT_MAX || N > INT_MAX || K > INT_MAX) return 0;
    pthread_once(&g_once, set_one_thread);
    gemm_job j = {ta, tb, accumulate, M >= N, M, N, K, 0, A, B, C};
    j.blocks = ((j.by_rows ? M : N) + SPLIT_ALIGN - 1) / SPLIT_ALIGN;
    int64_t nt = M * N * K / MIN_PART_MNK;
    if (nt > threads) nt = threads;
    if (nt > j.blocks) nt = j.blocks;
    if (nt < 1) nt = 1;
    fr_opt_run((int)nt, gemm_part, &j);
    return 1;
}

void fr_fast_blas_describe(char *buf, size_t n)
{
    const char *core = openblas_get_corename();
    int par = openblas_get_parallel(); /* 0 sequential, 1 pthreads, 2 OpenMP */
    snprintf(buf, n, "openblas %s (%s, %s)", openblas_get_config(), core ? core : "?",
             par == 2 ? "openmp" : par == 1 ? "pthread" : "sequential");
}

#else

int fr_fast_blas_ok(void) { return 0; }

int fr_fast_blas_gemm(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K,
                      const float *A, const float *B, float *C, int accumulate)
{
    (void)threads, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)B, (void)C,
        (void)accumulate;
    return 0;
}

void fr_fast_blas_describe(char *buf, size_t n)
{
    if (n) buf[0] = '\0';
}

#endif
