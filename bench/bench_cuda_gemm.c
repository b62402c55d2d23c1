/* The canonical cuda GEMM (kern/, one fmaf chain along k per output) against cuBLAS SGEMM
 * with TF32 off (the `--backend=cuda --fast` GEMM, gpu/cuda_fast.cu), on device 0: at M = N
 * = K = --cube (1024) in the three layouts, and at the GEMM shapes of a model preset
 * (default shapes-m, bench/bench_gemm_shapes.h) at each batch. Prints Markdown for
 * BENCHMARKS.md (tools/gpu_check.sh puts it in its section). Built only with the cuda
 * backend (make bench).
 *
 *   bench_cuda_gemm [--preset NAME] [--task NAME] [--batches 64,256] [--cube N] [--reps N]
 *                   [--dry-run]
 *
 * --dry-run: no device needed; opt plays the canonical kernel and opt --fast (OpenBLAS at
 * every shape) plays cuBLAS, so the program's own logic (tables, comparisons, exit status)
 * can be checked on a machine without a GPU (tools/gpu_check.sh with FLOWRL_GPU_CHECK_DRY=1).
 *
 * GFLOP/s = 2 M N K / seconds, median of `reps` samples; a sample is n back-to-back calls
 * and one mem_sync, n chosen so that a sample lasts >= 20 ms. canonical/cuBLAS = the
 * canonical kernel's throughput over cuBLAS's.
 * Columns against the host: the canonical kernel's bits against opt's (= ref's bits, for
 * any thread count: tests/test_opt.c), and cuBLAS's error against the same values: max abs,
 * max rel and max ulp (over elements with |ref| >= 1e-3 max|ref|), and "ratio" = max |err|
 * / 2γ_{K+1}(|C0| + Σ|a||b|), the bound opt --fast's GEMM is held to (docs/determinism.md
 * "--fast: measured tolerance"); this is where cuda --fast's tolerance is measured. Inputs:
 * A, B uniform in [-1, 1), C0 in [-4, 4) (accumulating layout).
 * Exit status: 0 when every comparison that ran held (bits equal, ratio <= 1, no NaN), 1
 * otherwise or when nothing could be measured (no device; neither a canonical GEMM kernel
 * nor cuBLAS). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flowrl/cuda.h"
#include "flowrl/fast.h"
#include "flowrl/ops.h"
#include "flowrl/opt.h"
#include "flowrl/ref_backend.h"

#include "bench/bench_gemm_shapes.h"
#include "bench/bench_util.h"

#define U 0x1.0p-24 /* unit roundoff of float32 */

typedef struct {
    const fr_ops *host;   /* opt: the reference bits */
    fr_ops canon, blas;   /* cuda tables: kern/ GEMM; the same with cuBLAS's */
    int have_canon, have_blas;
    int reps;
    int failed; /* a comparison did not hold */
} bench_ctx;

static void fill(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = lo + (hi - lo) * (float)((double)(seed >> 40) * 0x1p-24);
    }
}

/* Device copies of one shape's operands. */
typedef struct {
    bench_gemm_shape s;
    float *A, *B, *C0, *C, *bound; /* host; bound: 2γ_{K+1}(|C0| + Σ|a||b|) */
    float *dA, *dB, *dC;           /* device */
} operands;

static int64_t n_a(const bench_gemm_shape *s) { return s->M * s->K; }
static int64_t n_b(const bench_gemm_shape *s) { return s->K * s->N; }
static int64_t n_c(const bench_gemm_shape *s) { return s->M * s->N; }

static void host_gemm(const fr_ops *h, const bench_gemm_shape *s, const float *A, const float *B, float *C)
{
    h->gemm(s->ta, s->tb, s->M, s->N, s->K, A, B, C, s->acc);
}

static int operands_make(bench_ctx *b, operands *o, bench_gemm_shape s, uint64_t seed)
{
    memset(o, 0, sizeof *o);
    o->s = s;
    size_t fa = sizeof(float) * (size_t)n_a(&s), fb = sizeof(float) * (size_t)n_b(&s), fc = sizeof(float) * (size_t)n_c(&s);
    o->A = malloc(fa), o->B = malloc(fb), o->C0 = malloc(fc), o->C = malloc(fc), o->bound = malloc(fc);
    float *absA = malloc(fa), *absB = malloc(fb);
    if (!o->A || !o->B || !o->C0 || !o->C || !o->bound || !absA || !absB) return fprintf(stderr, "out of memory\n"), 1;
    fill(o->A, n_a(&s), seed, -1.0f, 1.0f);
    fill(o->B, n_b(&s), seed + 1000, -1.0f, 1.0f);
    fill(o->C0, n_c(&s), seed + 2000, -4.0f, 4.0f);
    /* the reference values, and the bound from |A| |B| (+ |C0|) through the same kernel */
    memcpy(o->C, o->C0, fc);
    host_gemm(b->host, &s, o->A, o->B, o->C);
    for (int64_t i = 0; i < n_a(&s); i++) absA[i] = fabsf(o->A[i]);
    for (int64_t i = 0; i < n_b(&s); i++) absB[i] = fabsf(o->B[i]);
    for (int64_t i = 0; i < n_c(&s); i++) o->bound[i] = s.acc ? fabsf(o->C0[i]) : 0.0f;
    bench_gemm_shape sa = s;
    sa.acc = 1;
    host_gemm(b->host, &sa, absA, absB, o->bound);
    double g = 2.0 * (double)(s.K + 1) * U / (1.0 - (double)(s.K + 1) * U);
    for (int64_t i = 0; i < n_c(&s); i++) o->bound[i] = (float)(g * (double)o->bound[i]);
    free(absA), free(absB);
    const fr_ops *t = &b->canon; /* the memory entries are the same in both tables */
    o->dA = t->mem_alloc(fa), o->dB = t->mem_alloc(fb), o->dC = t->mem_alloc(fc);
    if (!o->dA || !o->dB || !o->dC || t->mem_h2d(o->dA, o->A, fa) != FR_OK || t->mem_h2d(o->dB, o->B, fb) != FR_OK)
        return fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error()), 1;
    return 0;
}

static void operands_free(const bench_ctx *b, operands *o)
{
    b->canon.mem_free(o->dA), b->canon.mem_free(o->dB), b->canon.mem_free(o->dC);
    free(o->A), free(o->B), free(o->C0), free(o->C), free(o->bound);
}

/* C = C0, one call of t's GEMM, the result back into out. */
static int run_once(const fr_ops *t, operands *o, float *out)
{
    size_t fc = sizeof(float) * (size_t)n_c(&o->s);
    const bench_gemm_shape *s = &o->s;
    if (t->mem_h2d(o->dC, o->C0, fc) != FR_OK) return 1;
    t->gemm(s->ta, s->tb, s->M, s->N, s->K, o->dA, o->dB, o->dC, s->acc);
    return t->mem_sync() != FR_OK || t->mem_d2h(out, o->dC, fc) != FR_OK;
}

/* GFLOP/s: median of reps samples of n calls + one sync (n: >= 20 ms a sample); 0 on failure. */
static double throughput(const fr_ops *t, operands *o, int reps)
{
    const bench_gemm_shape *s = &o->s;
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K, g[64];
    int64_t n = 1;
    for (;;) { /* calibrate n (and warm up) */
        double t0 = bu_now_s();
        for (int64_t i = 0; i < n; i++) t->gemm(s->ta, s->tb, s->M, s->N, s->K, o->dA, o->dB, o->dC, s->acc);
        if (t->mem_sync() != FR_OK) return 0;
        double dt = bu_now_s() - t0;
        if (dt >= 0.02 || n >= ((int64_t)1 << 20)) break;
        n = dt > 0 ? (int64_t)(n * fmin(0.025 / dt, 8.0)) + 1 : n * 8;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = bu_now_s();
        for (int64_t i = 0; i < n; i++) t->gemm(s->ta, s->tb, s->M, s->N, s->K, o->dA, o->dB, o->dC, s->acc);
        if (t->mem_sync() != FR_OK) return 0;
        g[r] = flops * (double)n / (bu_now_s() - t0) * 1e-9;
    }
    return bu_median(g, reps);
}

/* One table row: "| op | M,N,K | canonical | cuBLAS | canonical/cuBLAS | bits | abs | rel | ulp | ratio |". */
static int bench_row(bench_ctx *b, const char *label, bench_gemm_shape s, uint64_t seed)
{
    operands o;
    if (operands_make(b, &o, s, seed)) return 1;
    float *got = malloc(sizeof(float) * (size_t)n_c(&s));
    if (!got) return 1;
    double gc = 0, gb = 0;
    char bits[64] = "-", abs_s[32] = "-", rel_s[32] = "-", ulp_s[32] = "-", ratio_s[32] = "-";
    if (b->have_canon) {
        if (run_once(&b->canon, &o, got)) return fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error()), 1;
        int64_t diff = 0;
        for (int64_t i = 0; i < n_c(&s); i++) diff += memcmp(&got[i], &o.C[i], 4) != 0;
        if (diff) snprintf(bits, sizeof bits, "**DIFFER** (%lld of %lld)", (long long)diff, (long long)n_c(&s));
        else snprintf(bits, sizeof bits, "equal");
        b->failed |= diff != 0;
        if ((gc = throughput(&b->canon, &o, b->reps)) == 0) return fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error()), 1;
    }
    if (b->have_blas) {
        if (run_once(&b->blas, &o, got)) return fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error()), 1;
        double amax = 0, e_abs = 0, e_rel = 0, ratio = 0;
        int64_t ulps = 0, nan = 0;
        for (int64_t i = 0; i < n_c(&s); i++) amax = fmax(amax, fabs((double)o.C[i]));
        for (int64_t i = 0; i < n_c(&s); i++) {
            if (isnan(got[i])) { nan++; continue; }
            double d = fabs((double)got[i] - (double)o.C[i]);
            e_abs = fmax(e_abs, d);
            if (fabs((double)o.C[i]) >= 1e-3 * amax && o.C[i] != 0.0f) {
                e_rel = fmax(e_rel, d / fabs((double)o.C[i]));
                int32_t x, y;
                memcpy(&x, &got[i], 4), memcpy(&y, &o.C[i], 4);
                int64_t u = llabs((int64_t)(x < 0 ? INT32_MIN - x : x) - (int64_t)(y < 0 ? INT32_MIN - y : y));
                if (u > ulps) ulps = u;
            }
            if (d > 0) ratio = fmax(ratio, o.bound[i] > 0 ? d / o.bound[i] : INFINITY);
        }
        b->failed |= nan > 0 || ratio > 1.0;
        if (nan) snprintf(ratio_s, sizeof ratio_s, "**%lld NaN**", (long long)nan);
        else snprintf(ratio_s, sizeof ratio_s, "%s%.3g%s", ratio > 1 ? "**" : "", ratio, ratio > 1 ? "**" : "");
        snprintf(abs_s, sizeof abs_s, "%.3g", e_abs);
        snprintf(rel_s, sizeof rel_s, "%.3g", e_rel);
        snprintf(ulp_s, sizeof ulp_s, "%lld", (long long)ulps);
        if ((gb = throughput(&b->blas, &o, b->reps)) == 0) return fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error()), 1;
    }
    char gcs[32] = "-", gbs[32] = "-", q[32] = "-";
    if (gc > 0) snprintf(gcs, sizeof gcs, "%.1f", gc);
    if (gb > 0) snprintf(gbs, sizeof gbs, "%.1f", gb);
    if (gc > 0 && gb > 0) snprintf(q, sizeof q, "%.0f%%", 100.0 * gc / gb);
    printf("| %s | %lld,%lld,%lld | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, (long long)s.M, (long long)s.N,
           (long long)s.K, gcs, gbs, q, bits, abs_s, rel_s, ulp_s, ratio_s);
    fflush(stdout);
    free(got);
    operands_free(b, &o);
    return 0;
}

/* --dry-run's memory entries while the host tables have none (flowrl/backend.h, issue 9). */
static void *host_alloc(size_t n) { return calloc(1, n ? n : 1); }
static fr_status host_copy(void *dst, const void *src, size_t n) { return memcpy(dst, src, n), FR_OK; }
static fr_status host_sync(void) { return FR_OK; }

/* --dry-run: opt and opt --fast (vendor kernels at every shape) in place of the device. */
static int dry_tables(bench_ctx *b, char *dev, size_t ndev, char *blas, size_t nblas)
{
    const fr_ops *fast = NULL;
    b->canon = *b->host;
    b->have_canon = 1;
    if (!b->canon.mem_alloc) {
        b->canon.mem_alloc = host_alloc, b->canon.mem_free = free;
        b->canon.mem_h2d = b->canon.mem_d2h = b->canon.mem_d2d = host_copy;
        b->canon.mem_sync = host_sync;
    }
    b->blas = b->canon;
    if (fr_backend_get_mode("opt", 1, &fast) == FR_OK) {
        fr_fast_set_policy(FR_FAST_ALWAYS);
        b->blas.gemm = fast->gemm;
        b->have_blas = 1;
        fr_fast_describe(blas, nblas);
    } else {
        snprintf(blas, nblas, "no opt --fast: %s", fr_last_error());
    }
    snprintf(dev, ndev, "DRY RUN on the host: opt as the canonical kernel, opt --fast as cuBLAS");
    return 0;
}

int main(int argc, char **argv)
{
    const char *preset = "shapes-m", *task_name = NULL;
    int64_t batches[8] = {64, 256}, cube = 1024;
    int nb = 2, reps = 7, dry = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc) preset = argv[++i];
        else if (strcmp(argv[i], "--task") == 0 && i + 1 < argc) task_name = argv[++i];
        else if (strcmp(argv[i], "--cube") == 0 && i + 1 < argc) cube = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--batches") == 0 && i + 1 < argc) {
            if ((nb = bench_parse_batches(argv[++i], batches, 8)) < 1) return 2;
        } else {
            fprintf(stderr, "usage: bench_cuda_gemm [--preset NAME] [--task NAME] [--batches 64,256] [--cube N] "
                            "[--reps N] [--dry-run]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;
    if (cube < 0) cube = 0;

    bench_ctx b;
    memset(&b, 0, sizeof b);
    b.reps = reps;
    char dev[256], blas[320];
    const char *canon_desc = "kern/";
    fr_model_config cfg;
    const fr_ops *ref = NULL;
    if ((!dry && fr_cuda_device_info(dev, sizeof dev) != FR_OK) || bench_preset_config(preset, task_name, &cfg) != FR_OK ||
        fr_backend_get("opt", &b.host) != FR_OK || fr_backend_get("ref", &ref) != FR_OK) {
        fprintf(stderr, "bench_cuda_gemm: %s\n", fr_last_error());
        return 1;
    }
    fr_opt_set_threads(0); /* all CPUs: the host only computes the reference values */
    if (dry) {
        dry_tables(&b, dev, sizeof dev, blas, sizeof blas);
        canon_desc = "opt (dry run)";
    } else {
        /* the canonical kernel without fr_cuda_init's check that every entry has one: the
         * GEMM is all this measures */
        fr_ref_fill(&b.canon);
        fr_cuda_fill(&b.canon);
        b.have_canon = b.canon.gemm != ref->gemm;
        if (!b.have_canon) canon_desc = "none yet (kern/ has no gemm kernel)";
        b.blas = b.canon;
        b.have_blas = fr_cuda_fast_init(&b.blas) == FR_OK;
        fr_cuda_blas_describe(blas, sizeof blas);
    }

    printf("### GEMM on cuda: canonical kernel vs cuBLAS SGEMM (TF32 off), GFLOP/s\n\n");
    printf("Device: %s; kernels built for %s. %s. Canonical GEMM: %s. Median of %d samples (>= 20 ms of "
           "back-to-back calls each, then one sync). canonical/cuBLAS = the canonical kernel's throughput over "
           "cuBLAS's. bits: the canonical kernel against opt on the host (= ref). cuBLAS against the same values: "
           "max abs, max rel, max ulp (|ref| >= 1e-3 max|ref|), ratio = max |err| / 2γ_{K+1}(|C0| + Σ|a||b|) "
           "(opt --fast's GEMM bound; > 1 fails). A, B in [-1, 1), C0 in [-4, 4).\n\n",
           dev, fr_cuda_built_arch(), blas, canon_desc,
           reps);
    if (!b.have_canon && !b.have_blas) {
        fprintf(stderr, "bench_cuda_gemm: nothing to measure: no canonical GEMM kernel in kern/ and %s\n", blas);
        return 1;
    }
    printf("| op | M,N,K | canonical | cuBLAS | canonical/cuBLAS | bits | cuBLAS max abs | max rel | max ulp | ratio |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    uint64_t seed = 1;
    if (cube > 0)
        for (int kind = 0; kind < 3; kind++) {
            char label[64];
            snprintf(label, sizeof label, "%s %lld³", bench_gemm_kinds[kind], (long long)cube);
            if (bench_row(&b, label, bench_gemm_shape_of(kind, cube, cube, cube), seed++)) return 1;
        }
    int64_t layers[6][2];
    int nl = bench_gemm_layers(&cfg, layers);
    for (int bi = 0; bi < nb; bi++)
        for (int li = 0; li < nl; li++)
            for (int kind = 0; kind < 3; kind++) {
                char label[96];
                snprintf(label, sizeof label, "%s %s B=%lld %lld->%lld", preset, bench_gemm_kinds[kind],
                         (long long)batches[bi], (long long)layers[li][0], (long long)layers[li][1]);
                if (bench_row(&b, label, bench_gemm_shape_of(kind, batches[bi], layers[li][0], layers[li][1]), seed++))
                    return 1;
            }
    printf("\n");
    if (b.failed) fprintf(stderr, "bench_cuda_gemm: a comparison failed (DIFFER, NaN or ratio > 1: see the table)\n");
    return b.failed;
}
