/* GEMM throughput at the shapes of a model preset (default shapes-s on the shapes task, read
 * at run time from fr_model_preset): every distinct linear layer as its forward, input
 * gradient and weight gradient (bench/bench_gemm_shapes.h), at each batch B. Columns: ref (1 thread,
 * median of 3 single calls), canonical opt, OpenBLAS cblas_sgemm and oneDNN dnnl_sgemm at 1
 * and 2 threads. Prints Markdown (BENCHMARKS.md takes it verbatim, bench/run.sh).
 *
 *   bench_gemm [--preset NAME] [--task NAME] [--batches 64,256] [--reps N] [--no-ref] [--cpu]
 *
 * GFLOP/s = 2 M N K / seconds, median of `reps` samples, each sample repeating the call
 * until >= 20 ms have passed. The 1- and 2-thread samples of one library alternate; the
 * libraries run one after the other with a 150 ms pause between them, because each keeps
 * worker threads spinning after a call (OpenBLAS's server ~2^28 cycles, libgomp's team,
 * the opt pool) and on 2 cores a spinning neighbour halves the next library's 2-thread
 * number. % of peak: bench_peak.h. opt is checked bitwise against ref when ref runs. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/opt.h"

#include "bench/bench_gemm_shapes.h"
#include "bench/bench_peak.h"

#if FR_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if FR_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

enum { LIB_OPT = 0, LIB_BLAS, LIB_DNNL, N_LIB };

typedef struct {
    fr_backend *be;
    int ta, tb, acc;
    int64_t M, N, K;
    const float *A, *B;
    float *C;
} call_ctx;

/* --cpu: process CPU time instead of wall time (for 2 threads that is total CPU, not speed). */
static clockid_t g_clock = CLOCK_MONOTONIC;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pause_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* oneDNN's thread count: with its OpenMP runtime, omp_set_num_threads on this thread
 * (looked up with dlsym: libdnnl brings libgomp in); sequential runtime: 1 thread only. */
static void (*p_omp_set_num_threads)(int);
static int g_dnnl_max_threads; /* 0: oneDNN not usable */
static char g_dnnl_desc[128] = "not built in";

static void dnnl_setup(void)
{
#if FR_HAVE_ONEDNN
    const dnnl_version_t *v = dnnl_version();
    const char *rt = v->cpu_runtime == DNNL_RUNTIME_OMP   ? "OpenMP"
                     : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "sequential"
                                                          : "TBB/threadpool";
    if (v->cpu_runtime == DNNL_RUNTIME_OMP) {
        *(void **)&p_omp_set_num_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
        void (*set_dynamic)(int);
        *(void **)&set_dynamic = dlsym(RTLD_DEFAULT, "omp_set_dynamic");
        if (p_omp_set_num_threads && set_dynamic) set_dynamic(0), g_dnnl_max_threads = 2;
    } else if (v->cpu_runtime == DNNL_RUNTIME_SEQ) {
        g_dnnl_max_threads = 1;
    }
    snprintf(g_dnnl_desc, sizeof g_dnnl_desc, "oneDNN %d.%d.%d, %s runtime%s", v->major, v->minor,
             v->patch, rt, g_dnnl_max_threads ? "" : " (thread count not settable: skipped)");
#endif
}

static void set_threads(int lib, int threads)
{
    if (lib == LIB_OPT) fr_opt_set_threads(threads);
#if FR_HAVE_OPENBLAS
    if (lib == LIB_BLAS) openblas_set_num_threads(threads);
#endif
    if (lib == LIB_DNNL && p_omp_set_num_threads) p_omp_set_num_threads(threads);
}

static void run(int lib, call_ctx *c)
{
    int lda = c->ta ? (int)c->M : (int)c->K, ldb = c->tb ? (int)c->K : (int)c->N;
    float beta = c->acc ? 1.0f : 0.0f;
    if (lib == LIB_OPT) c->be->ops->gemm(c->ta, c->tb, c->M, c->N, c->K, c->A, c->B, c->C, c->acc);
#if FR_HAVE_OPENBLAS
    if (lib == LIB_BLAS)
        cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans,
                    c->tb ? CblasTrans : CblasNoTrans, (int)c->M, (int)c->N, (int)c->K, 1.0f,
                    c->A, lda, c->B, ldb, beta, c->C, (int)c->N);
#endif
#if FR_HAVE_ONEDNN
    if (lib == LIB_DNNL)
        dnnl_sgemm(c->ta ? 'T' : 'N', c->tb ? 'T' : 'N', c->M, c->N, c->K, 1.0f, c->A, lda, c->B,
                   ldb, beta, c->C, c->N);
#endif
    (void)lda, (void)ldb, (void)beta;
}

static int lib_available(int lib)
{
    if (lib == LIB_OPT) return 1;
    if (lib == LIB_BLAS) return FR_HAVE_OPENBLAS;
    return g_dnnl_max_threads > 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One sample: GFLOP/s of repeating the call until min_s has passed (at least once). */
static double sample(int lib, call_ctx *c, double min_s)
{
    double flops = 2.0 * (double)c->M * (double)c->N * (double)c->K;
    int n = 0;
    double t0 = now_s(), t;
    do {
        run(lib, c);
        n++;
    } while ((t = now_s() - t0) < min_s);
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

#define MAX_SHAPES 64
#define N_COL 6 /* opt1 opt2 blas1 blas2 dnnl1 dnnl2 */

typedef struct {
    int64_t B, K_in, N_out, M, N, K;
    int kind;
    double ref, g[N_COL];
    const char *bits;
} row_t;

int main(int argc, char **argv)
{
    int do_ref = 1, reps = 7;
    const char *preset = "shapes-s", *task_name = NULL;
    int64_t batches[8] = {64, 256};
    int nb = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-ref") == 0) do_ref = 0;
        else if (strcmp(argv[i], "--cpu") == 0) g_clock = CLOCK_PROCESS_CPUTIME_ID;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[++i];
        else if (strcmp(argv[i], "--task") == 0 && i + 1 < argc) task_name = argv[++i];
        else if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            if ((nb = bench_parse_batches(argv[++i], batches, 8)) < 1) return 2;
        } else {
            fprintf(stderr, "usage: bench_gemm [--preset NAME] [--task NAME] [--batches 64,256] "
                            "[--reps N] [--no-ref] [--cpu]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    if (!task_name) task_name = strncmp(preset, "gmm2d", 5) == 0 ? "gmm2d" : "shapes";
    fr_model_config cfg;
    fr_backend ref, opt; /* opt's threads: set_threads, per sample */
    if (bench_preset_config(preset, task_name, &cfg) != FR_OK || fr_backend_open(&ref, "ref", 0, 1) != FR_OK ||
        fr_backend_open(&opt, "opt", 0, 0) != FR_OK) {
        fprintf(stderr, "bench_gemm: %s\n", fr_last_error());
        return 1;
    }
    dnnl_setup();
    bench_peak pk = bench_peak_measure();

    int64_t layers[6][2];
    int nl = bench_gemm_layers(&cfg, layers);

    printf("### GEMM: %s (task %s: D=%lld H=%lld F=%lld E=%lld), GFLOP/s\n\n", preset, task_name,
           (long long)cfg.D, (long long)cfg.H, (long long)cfg.F, (long long)cfg.E);
    printf("Peak estimate: measured clock %.2f GHz (dependent integer adds, 1/cycle) x %.0f "
           "FLOP/cycle/core (assumed: 2 FMA pipes x 8 float lanes x 2) = **%.1f GFLOP/s per core, "
           "%.1f for 2 cores**. Measured one-core FMA throughput: 256-bit %.1f GFLOP/s "
           "(%.1f FLOP/cycle), 512-bit %s%.1f GFLOP/s (%.1f FLOP/cycle).\n\n",
           pk.ghz, BENCH_ASSUMED_FLOP_PER_CYCLE, pk.peak1, 2 * pk.peak1, pk.fma256,
           pk.fma256 / pk.ghz, pk.fma512 > 0 ? "" : "(no AVX-512F) ", pk.fma512,
           pk.fma512 / pk.ghz);
    printf("opt SIMD: %s. OpenBLAS: %s. %s. Median of %d samples (>= 20 ms each); ref: median of "
           "3 calls, 1 thread. %% = share of the peak at that thread count; opt/BLAS = opt's "
           "throughput over OpenBLAS's at the same thread count (target >= 70%%).\n\n",
           fr_opt_simd_active() ? "AVX2+FMA" : "portable",
#if FR_HAVE_OPENBLAS
           openblas_get_config(),
#else
           "not built in",
#endif
           g_dnnl_desc, reps);
    printf("| op | B | K->N | M,N,K | ref | opt 1t | opt 2t | BLAS 1t | BLAS 2t | oneDNN 1t | "
           "oneDNN 2t | opt 1t %%pk | opt 2t %%pk | BLAS 2t %%pk | opt/BLAS 1t | opt/BLAS 2t | "
           "bits |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);

    row_t rows[MAX_SHAPES];
    int nr = 0;
    for (int bi = 0; bi < nb; bi++)
        for (int li = 0; li < nl; li++)
            for (int kind = 0; kind < 3 && nr < MAX_SHAPES; kind++) {
                int64_t Bt = batches[bi], Kin = layers[li][0], Nout = layers[li][1];
                call_ctx c = {0};
                bench_gemm_shape sh = bench_gemm_shape_of(kind, Bt, Kin, Nout);
                c.ta = sh.ta, c.tb = sh.tb, c.acc = sh.acc, c.M = sh.M, c.N = sh.N, c.K = sh.K;
                size_t nC = (size_t)(c.M * c.N);
                float *A = malloc(sizeof(float) * (size_t)(c.M * c.K));
                float *B = malloc(sizeof(float) * (size_t)(c.K * c.N));
                float *C = malloc(sizeof(float) * nC), *C1 = malloc(sizeof(float) * nC);
                float *C2 = malloc(sizeof(float) * nC);
                if (!A || !B || !C || !C1 || !C2) return 1;
                fill(A, c.M * c.K, 1 + (uint64_t)(bi * 64 + li * 4 + kind));
                fill(B, c.K * c.N, 1001 + (uint64_t)(bi * 64 + li * 4 + kind));
                fill(C, (int64_t)nC, 7);
                c.A = A, c.B = B;
                row_t *r = &rows[nr++];
                memset(r, 0, sizeof *r);
                r->B = Bt, r->K_in = Kin, r->N_out = Nout, r->M = c.M, r->N = c.N, r->K = c.K;
                r->kind = kind, r->bits = "-";
                if (do_ref) {
                    fill(C1, (int64_t)nC, 7), memcpy(C2, C1, sizeof(float) * nC);
                    c.be = &ref, c.C = C1, run(LIB_OPT, &c);
                    fr_opt_set_threads(2);
                    c.be = &opt, c.C = C2, run(LIB_OPT, &c);
                    r->bits = memcmp(C1, C2, sizeof(float) * nC) == 0 ? "equal" : "DIFFER";
                    c.be = &ref, c.C = C;
                    double rs[3];
                    for (int k = 0; k < 3; k++) rs[k] = sample(LIB_OPT, &c, 0.0);
                    r->ref = median(rs, 3);
                }
                c.be = &opt, c.C = C;
                for (int lib = 0; lib < N_LIB; lib++) {
                    if (!lib_available(lib)) continue;
                    int maxt = lib == LIB_DNNL ? g_dnnl_max_threads : 2;
                    double smp[2][64];
                    for (int k = -1; k < reps; k++) /* k = -1: warm-up, not kept */
                        for (int t = 1; t <= maxt; t++) {
                            set_threads(lib, t);
                            double v = sample(lib, &c, 0.02);
                            if (k >= 0) smp[t - 1][k] = v;
                        }
                    for (int t = 1; t <= maxt; t++) r->g[2 * lib + t - 1] = median(smp[t - 1], reps);
                    pause_ms(150);
                }
                printf("| %s | %lld | %lld->%lld | %lld,%lld,%lld | %.2f", bench_gemm_kinds[kind], (long long)Bt,
                       (long long)Kin, (long long)Nout, (long long)c.M, (long long)c.N,
                       (long long)c.K, r->ref);
                for (int k = 0; k < N_COL; k++) printf(" | %.1f", r->g[k]);
                printf(" | %.0f%% | %.0f%% | %.0f%%", 100 * r->g[0] / pk.peak1,
                       50 * r->g[1] / pk.peak1, 50 * r->g[3] / pk.peak1);
                for (int t = 0; t < 2; t++) {
                    if (r->g[2 + t] > 0) {
                        double q = r->g[t] / r->g[2 + t];
                        printf(" | %s%.0f%%%s", q < 0.7 ? "**" : "", 100 * q, q < 0.7 ? "**" : "");
                    } else {
                        printf(" | -");
                    }
                }
                printf(" | %s |\n", r->bits);
                fflush(stdout);
                free(A), free(B), free(C), free(C1), free(C2);
            }

    /* Per batch: each configuration's throughput over the whole set of shapes (each shape
     * once, as in one training step: total FLOPs / total time), and the shape counts at the
     * 70% target. */
    printf("\n**Summary per batch** (aggregate = sum of FLOPs / sum of times over the %d shapes "
           "of a batch, i.e. one forward+backward's GEMMs):\n\n", nl * 3);
    printf("| B | ref | opt 1t | opt 2t | BLAS 1t | BLAS 2t | oneDNN 1t | oneDNN 2t | opt/BLAS 1t | "
           "opt/BLAS 2t | shapes >= 70%% (1t / 2t) | min opt/BLAS (1t / 2t) |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    double agg[8][2] = {{0}}, mins[8][2] = {{0}};
    for (int bi = 0; bi < nb; bi++) {
        double fl = 0, tref = 0, tc[N_COL] = {0};
        int meet[2] = {0, 0}, n = 0;
        double mn[2] = {1e9, 1e9};
        for (int i = 0; i < nr; i++) {
            if (rows[i].B != batches[bi]) continue;
            double f = 2e-9 * (double)rows[i].M * (double)rows[i].N * (double)rows[i].K;
            fl += f, n++;
            if (rows[i].ref > 0) tref += f / rows[i].ref;
            for (int k = 0; k < N_COL; k++)
                if (rows[i].g[k] > 0) tc[k] += f / rows[i].g[k];
            for (int t = 0; t < 2; t++)
                if (rows[i].g[2 + t] > 0) {
                    double q = rows[i].g[t] / rows[i].g[2 + t];
                    meet[t] += q >= 0.7;
                    if (q < mn[t]) mn[t] = q;
                }
        }
        printf("| %lld | %.2f", (long long)batches[bi], tref > 0 ? fl / tref : 0.0);
        for (int k = 0; k < N_COL; k++) printf(" | %.1f", tc[k] > 0 ? fl / tc[k] : 0.0);
        for (int t = 0; t < 2; t++) {
            if (tc[2 + t] > 0) {
                double q = tc[2 + t] / tc[t];
                printf(" | %s%.0f%%%s", q < 0.7 ? "**" : "", 100 * q, q < 0.7 ? "**" : "");
            } else {
                printf(" | -");
            }
        }
        printf(" | %d/%d / %d/%d | %.0f%% / %.0f%% |\n", meet[0], n, meet[1], n, 100 * mn[0],
               100 * mn[1]);
        for (int t = 0; t < 2; t++)
            if (tc[2 + t] > 0) agg[bi][t] = tc[2 + t] / tc[t], mins[bi][t] = mn[t];
    }
    printf("\n");
    for (int bi = 0; bi < nb; bi++)
        for (int t = 0; t < 2; t++)
            if (agg[bi][t] > 0)
                printf("- Target opt >= 70%% of OpenBLAS, B = %lld, %d thread%s: aggregate %.0f%% -> "
                       "%s; worst single shape %.0f%%.\n",
                       (long long)batches[bi], t + 1, t ? "s" : "", 100 * agg[bi][t],
                       agg[bi][t] >= 0.7 ? "**met**" : "**MISSED**", 100 * mins[bi][t]);
    return 0;
}
