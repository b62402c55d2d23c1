/* --fast layer norm and activations through oneDNN (docs/design.md §4; docs/algorithms/numerics.md §1.4).
 *
 * oneDNN 2.6 (Debian 12) predates the `deterministic` attribute (oneDNN >= 3.4), so the
 * run-to-run promise rests on what its docs say for a fixed environment: the same build,
 * the same thread count. Debian builds it with the OpenMP runtime: before each execution
 * (and each primitive creation) the calling thread's OpenMP ICVs are pinned with
 * omp_set_dynamic(0) and omp_set_num_threads(threads), looked up with dlsym because the
 * library, not flowrl, links libgomp. The layer norm and eltwise primitives split rows or
 * element blocks statically over that many threads (dgamma/dbeta: per-thread partial sums
 * reduced in thread order), so the bits repeat for a fixed count.
 *
 * Primitive creation is expensive (a JIT kernel each): primitives are created once per
 * (kind, shape, flags, thread count) and kept in a small cache, evicted round robin. One
 * engine and one stream; a mutex serialises creation and execution (the op table is
 * called from one thread at a time in practice, and the kernels themselves are threaded).
 *
 * Statistics: flowrl's layer norm saves (mean, rstd); oneDNN's saves (mean, variance). The
 * forward turns variance into rstd with fr_layernorm_rstd; the backward hands oneDNN
 * variance' = 1 / rstd^2 with epsilon 0, so its 1/sqrt(variance' + 0) is rstd within a few
 * ulp (no cancellation against eps). */
#include "config.h"
#include "opt/fast_internal.h"

#include <stdio.h>
#include <string.h>

#if FR_HAVE_ONEDNN
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include <dnnl.h>

#include "flowrl/elem.h"

typedef enum { K_LN_FWD, K_LN_BWD, K_ACT_FWD, K_ACT_BWD } kind_t;

#define MAX_ARGS 9
#define CACHE_SIZE 32

typedef struct {
    int used;
    kind_t kind;
    int64_t rows, cols; /* LN: M, D; activations: n, 1 */
    int alg, threads;
    float eps;
    dnnl_primitive_t prim;
    int nargs;
    int arg[MAX_ARGS];
    dnnl_memory_t mem[MAX_ARGS];
    float *scratch; /* LN fwd: var (M); LN bwd: var' (M), dx (M*D), dgamma, dbeta (2D);
                       act bwd: dx (n) */
} entry_t;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ok;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static entry_t g_cache[CACHE_SIZE];
static int g_next_evict;
static void (*p_omp_set_num_threads)(int);
static void (*p_omp_set_dynamic)(int);
static _Thread_local int t_pinned; /* threads last pinned on this thread, 0: never */

static void setup(void)
{
    const dnnl_version_t *v = dnnl_version();
    if (v->cpu_runtime == DNNL_RUNTIME_OMP) {
        *(void **)&p_omp_set_num_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
        *(void **)&p_omp_set_dynamic = dlsym(RTLD_DEFAULT, "omp_set_dynamic");
        if (!p_omp_set_num_threads || !p_omp_set_dynamic) return;
    } else if (v->cpu_runtime != DNNL_RUNTIME_SEQ) {
        return; /* TBB / threadpool: no way to pin the count from here */
    }
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(g_engine);
        return;
    }
    g_ok = 1;
}

int fr_fast_dnnl_ok(void)
{
    pthread_once(&g_once, setup);
    return g_ok;
}

void fr_fast_dnnl_describe(char *buf, size_t n)
{
    const dnnl_version_t *v = dnnl_version();
    const char *rt = v->cpu_runtime == DNNL_RUNTIME_OMP   ? "omp"
                     : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "seq"
                                                          : "other runtime, unused";
    snprintf(buf, n, "onednn %d.%d.%d (%s)", v->major, v->minor, v->patch, rt);
}

static void pin_threads(int threads)
{
    if (!p_omp_set_num_threads || t_pinned == threads) return;
    p_omp_set_dynamic(0);
    p_omp_set_num_threads(threads);
    t_pinned = threads;
}

static void entry_free(entry_t *e)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    free(e->scratch);
    memset(e, 0, sizeof *e);
}

static int md_2d(dnnl_memory_desc_t *md, int64_t r, int64_t c)
{
    dnnl_dims_t d = {r, c};
    return dnnl_memory_desc_init_by_tag(md, 2, d, dnnl_f32, dnnl_ab) == dnnl_success;
}

static int md_1d(dnnl_memory_desc_t *md, int64_t n)
{
    dnnl_dims_t d = {n};
    return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_a) == dnnl_success;
}

static int add_arg(entry_t *e, int arg, const dnnl_memory_desc_t *md)
{
    if (dnnl_memory_create(&e->mem[e->nargs], md, g_engine, DNNL_MEMORY_NONE) != dnnl_success)
        return 0;
    e->arg[e->nargs++] = arg;
    return 1;
}

/* A primitive descriptor from an op descriptor (hint: forward pd for a backward). */
static dnnl_primitive_desc_t make_pd(const void *desc, const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, desc, NULL, g_engine, hint) != dnnl_success) return NULL;
    return pd;
}

static const unsigned k_ln_flags = dnnl_use_scale | dnnl_use_shift;

static int build_ln(entry_t *e)
{
    dnnl_memory_desc_t data, stat, par;
    if (!md_2d(&data, e->rows, e->cols) || !md_1d(&stat, e->rows) || !md_1d(&par, e->cols))
        return 0;
    dnnl_layer_normalization_desc_t fd, bd;
    if (dnnl_layer_normalization_forward_desc_init(&fd, dnnl_forward_training, &data, &stat,
                                                   e->eps, k_ln_flags) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t fpd = make_pd(&fd, NULL), pd = fpd;
    if (!fpd) return 0;
    size_t nscratch;
    if (e->kind == K_LN_BWD) {
        pd = NULL;
        if (dnnl_layer_normalization_backward_desc_init(&bd, dnnl_backward, &data, &data, &stat,
                                                        e->eps, k_ln_flags) == dnnl_success)
            pd = make_pd(&bd, fpd);
        dnnl_primitive_desc_destroy(fpd);
        if (!pd) return 0;
        nscratch = (size_t)(e->rows + e->rows * e->cols + 2 * e->cols);
    } else {
        nscratch = (size_t)e->rows;
    }
    int ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!ok) return 0;
    if (e->kind == K_LN_FWD) {
        ok = add_arg(e, DNNL_ARG_SRC, &data) && add_arg(e, DNNL_ARG_DST, &data) &&
             add_arg(e, DNNL_ARG_MEAN, &stat) && add_arg(e, DNNL_ARG_VARIANCE, &stat) &&
             add_arg(e, DNNL_ARG_SCALE, &par) && add_arg(e, DNNL_ARG_SHIFT, &par);
    } else {
        ok = add_arg(e, DNNL_ARG_SRC, &data) && add_arg(e, DNNL_ARG_MEAN, &stat) &&
             add_arg(e, DNNL_ARG_VARIANCE, &stat) && add_arg(e, DNNL_ARG_DIFF_DST, &data) &&
             add_arg(e, DNNL_ARG_SCALE, &par) && add_arg(e, DNNL_ARG_DIFF_SRC, &data) &&
             add_arg(e, DNNL_ARG_DIFF_SCALE, &par) && add_arg(e, DNNL_ARG_DIFF_SHIFT, &par) &&
             add_arg(e, DNNL_ARG_SHIFT, &par);
    }
    e->scratch = malloc(nscratch * sizeof(float));
    return ok && e->scratch;
}

/* GELU(tanh): oneDNN's gelu_tanh (same formula as fr_act GELU_TANH); SiLU: swish with
 * alpha = 1, x * sigmoid(1 * x). */
static int build_act(entry_t *e)
{
    dnnl_memory_desc_t data;
    if (!md_1d(&data, e->rows)) return 0;
    float alpha = e->alg == dnnl_eltwise_swish ? 1.0f : 0.0f;
    dnnl_eltwise_desc_t fd, bd;
    if (dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, (dnnl_alg_kind_t)e->alg,
                                       &data, alpha, 0.0f) != dnnl_success)
        return 0;
    dnnl_primitive_desc_t fpd = make_pd(&fd, NULL), pd = fpd;
    if (!fpd) return 0;
    if (e->kind == K_ACT_BWD) {
        pd = NULL;
        if (dnnl_eltwise_backward_desc_init(&bd, (dnnl_alg_kind_t)e->alg, &data, &data, alpha,
                                            0.0f) == dnnl_success)
            pd = make_pd(&bd, fpd);
        dnnl_primitive_desc_destroy(fpd);
        if (!pd) return 0;
    }
    int ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!ok) return 0;
    if (e->kind == K_ACT_FWD)
        return add_arg(e, DNNL_ARG_SRC, &data) && add_arg(e, DNNL_ARG_DST, &data);
    ok = add_arg(e, DNNL_ARG_SRC, &data) && add_arg(e, DNNL_ARG_DIFF_DST, &data) &&
         add_arg(e, DNNL_ARG_DIFF_SRC, &data);
    e->scratch = malloc((size_t)e->rows * sizeof(float));
    return ok && e->scratch;
}

/* The cached entry for this key, built on a miss; NULL if creation fails. g_lock held. */
static entry_t *lookup(kind_t kind, int64_t rows, int64_t cols, int alg, float eps, int threads)
{
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry_t *e = &g_cache[i];
        if (e->used && e->kind == kind && e->rows == rows && e->cols == cols && e->alg == alg &&
            e->threads == threads && memcmp(&e->eps, &eps, sizeof eps) == 0)
            return e;
    }
    entry_t *e = NULL;
    for (int i = 0; i < CACHE_SIZE && !e; i++)
        if (!g_cache[i].used) e = &g_cache[i];
    if (!e) {
        e = &g_cache[g_next_evict];
        g_next_evict = (g_next_evict + 1) % CACHE_SIZE;
        entry_free(e);
    }
    e->kind = kind;
    e->rows = rows;
    e->cols = cols;
    e->alg = alg;
    e->eps = eps;
    e->threads = threads;
    int ok = (kind == K_LN_FWD || kind == K_LN_BWD) ? build_ln(e) : build_act(e);
    if (!ok) {
        entry_free(e);
        return NULL;
    }
    e->used = 1;
    return e;
}

static int run(entry_t *e, void *const *ptrs)
{
    dnnl_exec_arg_t args[MAX_ARGS];
    for (int i = 0; i < e->nargs; i++) {
        if (dnnl_memory_set_data_handle(e->mem[i], ptrs[i]) != dnnl_success) return 0;
        args[i].arg = e->arg[i];
        args[i].memory = e->mem[i];
    }
    if (dnnl_primitive_execute(e->prim, g_stream, e->nargs, args) != dnnl_success) return 0;
    return dnnl_stream_wait(g_stream) == dnnl_success;
}

#define MUT(p) ((void *)(uintptr_t)(p)) /* oneDNN takes inputs as void *; it only reads them */

int fr_fast_dnnl_ln_fwd(int threads, int64_t M, int64_t D,
                        const float *x,     // (M,D)
                        const float *gamma, // (D,)
                        const float *beta,  // (D,)
                        float eps,
                        float *y,           // (M,D)
                        float *mean,        // (M,)
                        float *rstd)        // (M,)
{
    if (!fr_fast_dnnl_ok() || !gamma || !beta || M < 1 || D < 1) return 0;
    pthread_mutex_lock(&g_lock);
    pin_threads(threads);
    entry_t *e = lookup(K_LN_FWD, M, D, 0, eps, threads);
    int ok = 0;
    if (e) {
        float *var = e->scratch;
        void *ptrs[] = {MUT(x), y, mean, var, MUT(gamma), MUT(beta)};
        ok = run(e, ptrs);
        if (ok)
            for (int64_t i = 0; i < M; i++) rstd[i] = fr_layernorm_rstd(var[i], eps);
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

int fr_fast_dnnl_ln_bwd(int threads, int64_t M, int64_t D,
                        const float *x,     // (M,D)
                        const float *gamma, // (D,)
                        const float *mean,  // (M,)
                        const float *rstd,  // (M,)
                        const float *dy,    // (M,D)
                        float *dx,          // (M,D)
                        float *dgamma,      // (D,)
                        float *dbeta,       // (D,)
                        int accumulate)
{
    if (!fr_fast_dnnl_ok() || !gamma || !dgamma || !dbeta || M < 1 || D < 1) return 0;
    pthread_mutex_lock(&g_lock);
    pin_threads(threads);
    entry_t *e = lookup(K_LN_BWD, M, D, 0, 0.0f, threads);
    int ok = 0;
    if (e) {
        float *var = e->scratch, *sdx = var + M, *sdg = sdx + M * D, *sdb = sdg + D;
        for (int64_t i = 0; i < M; i++) var[i] = 1.0f / (rstd[i] * rstd[i]);
        float *out_dx = accumulate ? sdx : dx;
        /* oneDNN 2.6 rejects a use_shift backward without a SHIFT argument
         * (dnnl_invalid_arguments) though the backward never reads it: gamma (D,) stands in */
        void *ptrs[] = {MUT(x), MUT(mean), var, MUT(dy), MUT(gamma), out_dx, sdg, sdb, MUT(gamma)};
        ok = run(e, ptrs);
        if (ok) {
            if (accumulate) {
                for (int64_t i = 0; i < M * D; i++) dx[i] += sdx[i];
                for (int64_t j = 0; j < D; j++) {
                    dgamma[j] += sdg[j];
                    dbeta[j] += sdb[j];
                }
            } else {
                memcpy(dgamma, sdg, (size_t)D * sizeof *dgamma);
                memcpy(dbeta, sdb, (size_t)D * sizeof *dbeta);
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

static int act_alg(fr_act act)
{
    switch (act) {
    case FR_ACT_GELU_TANH: return dnnl_eltwise_gelu_tanh;
    case FR_ACT_SILU: return dnnl_eltwise_swish;
    default: return 0;
    }
}

int fr_fast_dnnl_act_fwd(int threads, fr_act act, int64_t n,
                         const float *x, // (n,)
                         float *y)       // (n,)
{
    int alg = act_alg(act);
    if (!fr_fast_dnnl_ok() || !alg || n < 1) return 0;
    pthread_mutex_lock(&g_lock);
    pin_threads(threads);
    entry_t *e = lookup(K_ACT_FWD, n, 1, alg, 0.0f, threads);
    int ok = 0;
    if (e) {
        void *ptrs[] = {MUT(x), y};
        ok = run(e, ptrs);
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

int fr_fast_dnnl_act_bwd(int threads, fr_act act, int64_t n,
                         const float *x,  // (n,)
                         const float *dy, // (n,)
                         float *dx,       // (n,)
                         int accumulate)
{
    int alg = act_alg(act);
    if (!fr_fast_dnnl_ok() || !alg || n < 1) return 0;
    pthread_mutex_lock(&g_lock);
    pin_threads(threads);
    entry_t *e = lookup(K_ACT_BWD, n, 1, alg, 0.0f, threads);
    int ok = 0;
    if (e) {
        float *out = accumulate ? e->scratch : dx;
        void *ptrs[] = {MUT(x), MUT(dy), out};
        ok = run(e, ptrs);
        if (ok && accumulate)
            for (int64_t i = 0; i < n; i++) dx[i] += out[i];
    }
    pthread_mutex_unlock(&g_lock);
    return ok;
}

#else /* !FR_HAVE_ONEDNN */

int fr_fast_dnnl_ok(void) { return 0; }

int fr_fast_dnnl_ln_fwd(int threads, int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *beta, float eps, float *y, float *mean, float *rstd)
{
    (void)threads, (void)M, (void)D, (void)x, (void)gamma, (void)beta, (void)eps, (void)y,
        (void)mean, (void)rstd;
    return 0;
}

int fr_fast_dnnl_ln_bwd(int threads, int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta, int accumulate)
{
    (void)threads, (void)M, (void)D, (void)x, (void)gamma, (void)mean, (void)rstd, (void)dy,
        (void)dx, (void)dgamma, (void)dbeta, (void)accumulate;
    return 0;
}

int fr_fast_dnnl_act_fwd(int threads, fr_act act, int64_t n, const float *x, float *y)
{
    (void)threads, (void)act, (void)n, (void)x, (void)y;
    return 0;
}

int fr_fast_dnnl_act_bwd(int threads, fr_act act, int64_t n, const float *x, const float *dy,
                         float *dx, int accumulate)
{
    (void)threads, (void)act, (void)n, (void)x, (void)dy, (void)dx, (void)accumulate;
    return 0;
}

void fr_fast_dnnl_describe(char *buf, size_t n)
{
    if (n) buf[0] = '\0';
}

#endif
