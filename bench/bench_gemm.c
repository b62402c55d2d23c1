/* GEMM throughput of the canonical kernels: ref, opt (1 and 2 threads) and, when built
 * with OpenBLAS, cblas_sgemm at the same thread counts, at the shapes of the shapes-s model
 * (D = 768, H = 256, F = 512): each linear layer (K -> N) as its forward
 * y = x W^T (gemm(0,1,B,N,K)), input gradient dx = dy W (gemm(0,0,B,K,N)) and weight
 * gradient dW += dy^T x (gemm(1,0,N,K,B, accumulate)).
 *
 *   bench_gemm [--no-ref] [--reps N] [--cpu]
 *
 * GFLOP/s = 2 M N K / seconds, median of `reps` samples (each sample repeats the call
 * until it has run >= 20 ms; ref: median of 3 single calls). opt results are checked bitwise against ref when ref runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "flowrl/ops.h"
#include "flowrl/opt.h"

#if FR_HAVE_OPENBLAS
#include <cblas.h>
#endif

#if FR_HAVE_OPENBLAS
#define N_CONF 4 /* opt 1 thread, opt 2, OpenBLAS 1, OpenBLAS 2 */
#else
#define N_CONF 2
#endif

typedef void (*run_fn)(void *ctx);

typedef struct {
    const fr_ops *ops;
    int ta, tb, acc;
    int64_t M, N, K;
    const float *A, *B;
    float *C;
} call_ctx;

/* --cpu: process CPU time instead of wall time (steadier on a shared machine for the
 * 1-thread columns; for 2 threads it measures total CPU, not speed). */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_ops(void *arg)
{
    call_ctx *c = (call_ctx *)arg;
    c->ops->gemm(c->ta, c->tb, c->M, c->N, c->K, c->A, c->B, c->C, c->acc);
}

#if FR_HAVE_OPENBLAS
static void run_blas(void *arg)
{
    call_ctx *c = (call_ctx *)arg;
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                (int)c->M, (int)c->N, (int)c->K, 1.0f, c->A, c->ta ? (int)c->M : (int)c->K, c->B,
                c->tb ? (int)c->K : (int)c->N, c->acc ? 1.0f : 0.0f, c->C, (int)c->N);
}
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One sample: GFLOP/s of repeating fn until min_sample_s has passed (at least once). */
static double sample(run_fn fn, call_ctx *c, double min_sample_s)
{
    double flops = 2.0 * (double)c->M * (double)c->N * (double)c->K;
    int n = 0;
    double t0 = now_s(), t;
    do {
        fn(c);
        n++;
    } while ((t = now_s() - t0) < min_sample_s);
    return flops * n / t * 1e-9;
}

static double median(double *g, int n)
{
    qsort(g, (size_t)n, sizeof *g, cmp_double);
    return g[n / 2];
}

static void fill(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 40) * 0x1p-24 - 0.5);
    }
}

int main(int argc, char **argv)
{
    int do_ref = 1, reps = 7;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-ref") == 0) do_ref = 0;
        else if (strcmp(argv[i], "--cpu") == 0) g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_gemm [--no-ref] [--reps N] [--cpu]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    const fr_ops *ref = NULL, *opt = NULL;
    if (fr_backend_get("ref", &ref) != FR_OK || fr_backend_get("opt", &opt) != FR_OK) {
        fprintf(stderr, "bench_gemm: %s\n", fr_last_error());
        return 1;
    }
    static const int64_t batches[] = {64, 128, 256};
    static const int64_t layers[][2] = {{768, 256}, {256, 512}, {512, 256}, {256, 768}}; /* K->N */
    static const char *const kinds[] = {"fwd NT", "dx NN", "dW TN+"};
    printf("opt SIMD: %s; median of %d samples; GFLOP/s\n",
           fr_opt_simd_active() ? "avx2+fma" : "portable", reps);
    printf("%-7s %5s %9s %7s %7s %7s", "variant", "B", "K->N", "M", "N", "K");
    printf(" %7s %7s %7s", "ref", "opt1", "opt2");
#if FR_HAVE_OPENBLAS
    printf(" %7s %7s %6s %6s", "blas1", "blas2", "%1", "%2");
#endif
    printf("  bits\n");
    double sum_ratio[2] = {0, 0};
    int n_ratio = 0;
    for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++)
        for (size_t li = 0; li < sizeof layers / sizeof *layers; li++)
            for (int kind = 0; kind < 3; kind++) {
                int64_t Bt = batches[bi], Kin = layers[li][0], Nout = layers[li][1];
                call_ctx c = {0};
                if (kind == 0) c.ta = 0, c.tb = 1, c.acc = 0, c.M = Bt, c.N = Nout, c.K = Kin;
                if (kind == 1) c.ta = 0, c.tb = 0, c.acc = 0, c.M = Bt, c.N = Kin, c.K = Nout;
                if (kind == 2) c.ta = 1, c.tb = 0, c.acc = 1, c.M = Nout, c.N = Kin, c.K = Bt;
                float *A = malloc(sizeof(float) * (size_t)(c.M * c.K));
                float *B = malloc(sizeof(float) * (size_t)(c.K * c.N));
                float *C = malloc(sizeof(float) * (size_t)(c.M * c.N));
                float *C1 = malloc(sizeof(float) * (size_t)(c.M * c.N));
                float *C2 = malloc(sizeof(float) * (size_t)(c.M * c.N));
                fill(A, c.M * c.K, 1 + bi * 16 + li * 4 + (uint64_t)kind);
                fill(B, c.K * c.N, 101 + bi * 16 + li * 4 + (uint64_t)kind);
                c.A = A, c.B = B;
                double g_ref = 0, g_opt[2], g_blas[2] = {0, 0};
                const char *bits = "-";
                if (do_ref) {
                    /* one call each from the same C, compared bitwise */
                    fill(C1, c.M * c.N, 7), memcpy(C2, C1, sizeof(float) * (size_t)(c.M * c.N));
                    c.ops = ref, c.C = C1, run_ops(&c);
                    fr_opt_set_threads(2);
                    c.ops = opt, c.C = C2, run_ops(&c);
                    bits = memcmp(C1, C2, sizeof(float) * (size_t)(c.M * c.N)) == 0 ? "equal" : "DIFFER";
                    c.ops = ref, c.C = C;
                    double rs[3];
                    for (int r = 0; r < 3; r++) rs[r] = sample(run_ops, &c, 0.0);
                    g_ref = median(rs, 3);
                }
                /* Configurations are sampled round-robin (opt1, opt2, blas1, blas2, opt1, ...)
                 * so that load from other processes hits them alike. */
                double smp[N_CONF][64];
                int nconf = N_CONF;
                for (int r = -1; r < reps; r++) /* r = -1: warm-up round, not kept */
                    for (int k = 0; k < nconf; k++) {
                        double v;
                        c.C = C;
                        if (k < 2) {
                            fr_opt_set_threads(k + 1);
                            c.ops = opt;
                            v = sample(run_ops, &c, 0.02);
                        } else {
#if FR_HAVE_OPENBLAS
                            openblas_set_num_threads(k - 1);
                            v = sample(run_blas, &c, 0.02);
#else
                            v = 0;
#endif
                        }
                        if (r >= 0) smp[k][r] = v;
                    }
                g_opt[0] = median(smp[0], reps), g_opt[1] = median(smp[1], reps);
#if FR_HAVE_OPENBLAS
                g_blas[0] = median(smp[2], reps), g_blas[1] = median(smp[3], reps);
                sum_ratio[0] += g_opt[0] / g_blas[0], sum_ratio[1] += g_opt[1] / g_blas[1];
                n_ratio++;
#endif
                printf("%-7s %5lld %4lld->%-4lld %7lld %7lld %7lld", kinds[kind], (long long)Bt,
                       (long long)Kin, (long long)Nout, (long long)c.M, (long long)c.N,
                       (long long)c.K);
                printf(" %7.2f %7.1f %7.1f", g_ref, g_opt[0], g_opt[1]);
#if FR_HAVE_OPENBLAS
                printf(" %7.1f %7.1f %5.0f%% %5.0f%%", g_blas[0], g_blas[1],
                       100 * g_opt[0] / g_blas[0], 100 * g_opt[1] / g_blas[1]);
#endif
                printf("  %s\n", bits);
                fflush(stdout);
                free(A), free(B), free(C), free(C1), free(C2);
            }
    if (n_ratio)
        printf("mean opt/OpenBLAS: 1 thread %.0f%%, 2 threads %.0f%%\n", 100 * sum_ratio[0] / n_ratio,
               100 * sum_ratio[1] / n_ratio);
    (void)sum_ratio;
    return 0;
}
