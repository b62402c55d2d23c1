/* The backend registry (docs/design.md §3, the BLIS pattern): each backend's table starts as a
 * copy of the ref table (fr_ref_fill) and its init overrides only the entries it
 * implements, so a missing fast op falls back to the reference. Below it, the handle of
 * flowrl/backend.h: one table plus the copy counters of a run.
 *
 * To register a backend, add one fr_backend_desc line to k_backends, guarded by its
 * build option (e.g. `#if FR_HAVE_CUDA` around {"cuda", ..., fr_cuda_init}). */
#include "config.h"
#include "flowrl/backend.h"
#include "flowrl/emu.h"
#include "flowrl/fast.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "flowrl/opt.h"
#include "flowrl/profile.h"
#if FR_HAVE_CUDA
#include "flowrl/cuda.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static fr_status ref_init(fr_ops *ops)
{
    (void)ops; /* the ref entries are already there */
    return FR_OK;
}

static int opt_threads(int n)
{
    fr_opt_set_threads(n);
    return fr_opt_get_threads();
}

static const fr_backend_desc k_backends[] = {
    {"ref", "scalar reference: plain C loops, one thread; the definition", ref_init, NULL, NULL},
    {"opt", "SIMD + threads on the CPU, bitwise equal to ref for any thread count", fr_opt_init,
     fr_fast_init, opt_threads},
    {"cuda-emu", "the CUDA kernels of kern/ run on the CPU, in device memory the host cannot touch (CI)",
     fr_emu_init, NULL, NULL},
#if FR_HAVE_CUDA
    {"cuda", "CUDA kernels (kern/) on device 0, bitwise equal to ref", fr_cuda_init, fr_cuda_fast_init, NULL},
#endif
};
#define N_BACKENDS (int)(sizeof k_backends / sizeof k_backends[0])

/* Names the project defines, built in or not: asking for one that this build lacks is
 * FR_ERR_UNSUPPORTED; any other name is FR_ERR_ARG. */
static const char *const k_known_names[] = {"ref", "opt", "cuda-emu", "cuda"};

/* Tables are built on first use; a failed init (e.g. no device) is not cached, so a
 * later call retries and reports its own message. */
static fr_ops g_tables[N_BACKENDS];
static int g_ready[N_BACKENDS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *g_names[N_BACKENDS + 1];
static pthread_once_t g_names_once = PTHREAD_ONCE_INIT;

static void init_names(void)
{
    for (int i = 0; i < N_BACKENDS; i++) g_names[i] = k_backends[i].name;
    g_names[N_BACKENDS] = NULL;
}

const char *const *fr_backend_names(void)
{
    pthread_once(&g_names_once, init_names);
    return g_names;
}

static int index_of(const char *name)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(name, k_backends[i].name) == 0) return i;
    return -1;
}

/* "ref, opt" into buf. */
static const char *available(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_BACKENDS && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", k_backends[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

fr_status fr_backend_get(const char *name, const fr_ops **out)
{
    char avail[256];
    if (!out) return fr_fail(FR_ERR_ARG, "fr_backend_get: out is NULL");
    *out = NULL;
    if (!name) {
        return fr_fail(FR_ERR_ARG, "fr_backend_get: no backend name (available: %s)",
                       available(avail, sizeof avail));
    }
    int idx = index_of(name);
    if (idx < 0) {
        for (size_t i = 0; i < sizeof k_known_names / sizeof k_known_names[0]; i++) {
            if (strcmp(name, k_known_names[i]) == 0)
                return fr_fail(FR_ERR_UNSUPPORTED,
                               "backend '%s' is not built into this flowrl (available: %s)",
                               name, available(avail, sizeof avail));
        }
        return fr_fail(FR_ERR_ARG, "unknown backend '%s' (available: %s)", name,
                       available(avail, sizeof avail));
    }

    fr_status st = FR_OK;
    pthread_mutex_lock(&g_lock);
    if (!g_ready[idx]) {
        fr_ops t;
        memset(&t, 0, sizeof t);
        fr_ref_fill(&t);
        st = k_backends[idx].init(&t);
        if (st == FR_OK) {
            t.name = k_backends[idx].name;
            t.mode = "exact";
            g_tables[idx] = t;
            g_ready[idx] = 1;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (st != FR_OK) return st;
    *out = &g_tables[idx];
    return FR_OK;
}

/* The --fast tables (flowrl/fast.h): a backend's exact table, then its fast_init's overrides. */
static fr_ops g_fast_tables[N_BACKENDS];
static int g_fast_ready[N_BACKENDS];

/* "opt" into buf: the backends with a --fast mode. */
static const char *with_fast(char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_BACKENDS && used < n; i++) {
        if (!k_backends[i].fast_init) continue;
        int w = snprintf(buf + used, n - used, "%s--backend=%s", used ? ", " : "", k_backends[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

fr_status fr_backend_get_mode(const char *name, int fast, const fr_ops **out)
{
    if (!fast) return fr_backend_get(name, out);
    if (!out) return fr_fail(FR_ERR_ARG, "fr_backend_get_mode: out is NULL");
    *out = NULL;
    const fr_ops *exact;
    FR_TRY(fr_backend_get(name, &exact));
    int idx = index_of(name);
    char avail[256];
    if (!k_backends[idx].fast_init)
        return fr_fail(FR_ERR_ARG, "%s has no --fast mode (--fast applies to %s)", name,
                       with_fast(avail, sizeof avail));
    fr_status st = FR_OK;
    pthread_mutex_lock(&g_lock);
    if (!g_fast_ready[idx]) {
        fr_ops t = *exact;
        st = k_backends[idx].fast_init(&t);
        if (st == FR_OK) {
            t.mode = "fast";
            g_fast_tables[idx] = t;
            g_fast_ready[idx] = 1;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (st != FR_OK) return st;
    *out = &g_fast_tables[idx];
    return FR_OK;
}

/* ---- the handle (flowrl/backend.h) ---------------------------------------------------------- */

/* "" = the fastest bitwise backend built in: opt, else ref. */
static const char *default_name(void)
{
    return index_of("opt") >= 0 ? "opt" : "ref";
}

fr_status fr_backend_open(fr_backend *be, const char *name, int fast, int threads)
{
    if (!be) return fr_fail(FR_ERR_ARG, "fr_backend_open: be is NULL");
    memset(be, 0, sizeof *be);
    if (name && !name[0]) name = default_name();
    const fr_ops *ops;
    FR_TRY(fr_backend_get_mode(name, fast, &ops));
    const fr_backend_desc *d = &k_backends[index_of(name)];
    be->ops = fr_profile_from_env(ops); /* FLOWRL_PROFILE: the timing table over ops */
    be->name = ops->name;
    be->mode = ops->mode ? ops->mode : "exact";
    be->threads = d->set_threads ? d->set_threads(threads) : 1;
    be->fast = fast != 0;
    be->device = ops->device;
    return FR_OK;
}

void fr_backend_close(fr_backend *be)
{
    if (be && be->ops) (void)fr_dev_sync(be);
}

void fr_backend_line(const fr_backend *be, char *buf, size_t n)
{
    snprintf(buf, n, "backend %s, threads %d, mode %s", be->name, be->threads, be->mode);
}

void *fr_dev_alloc(fr_backend *be, size_t bytes)
{
    void *p = be->ops->mem_alloc(bytes);
    if (!p) fr_fail(FR_ERR_NOMEM, "%s: out of backend memory allocating %zu bytes", be->name, bytes);
    return p;
}

void fr_dev_free(fr_backend *be, void *p)
{
    if (p) be->ops->mem_free(p);
}

/* n elements of `size` bytes, or NULL (with a message) when n·size does not fit. */
static void *alloc_n(fr_backend *be, int64_t n, size_t size)
{
    if (n < 0 || (uint64_t)n > SIZE_MAX / size) {
        fr_fail(FR_ERR_NOMEM, "%s: cannot allocate %lld elements of %zu bytes", be->name, (long long)n, size);
        return NULL;
    }
    return fr_dev_alloc(be, (size_t)n * size);
}

float *fr_dev_floats(fr_backend *be, int64_t n) { return alloc_n(be, n, sizeof(float)); }
double *fr_dev_doubles(fr_backend *be, int64_t n) { return alloc_n(be, n, sizeof(double)); }
int32_t *fr_dev_i32(fr_backend *be, int64_t n) { return alloc_n(be, n, sizeof(int32_t)); }

fr_status fr_h2d(fr_backend *be, void *dst, const void *src, size_t bytes)
{
    be->copies.h2d_calls++;
    be->copies.h2d_bytes += bytes;
    return be->ops->mem_h2d(dst, src, bytes);
}

fr_status fr_d2h(fr_backend *be, void *dst, const void *src, size_t bytes)
{
    be->copies.d2h_calls++;
    be->copies.d2h_bytes += bytes;
    return be->ops->mem_d2h(dst, src, bytes);
}

fr_status fr_d2d(fr_backend *be, void *dst, const void *src, size_t bytes)
{
    return be->ops->mem_d2d(dst, src, bytes);
}

fr_status fr_dev_zero(fr_backend *be, void *p, size_t bytes)
{
    return be->ops->mem_zero(p, bytes);
}

fr_status fr_dev_sync(fr_backend *be)
{
    return be->ops->mem_sync();
}

void fr_host_for(const fr_backend *be, int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx)
{
    if (be->ops->host_for) {
        be->ops->host_for(n, fn, ctx);
        return;
    }
    for (int64_t i = 0; i < n; i++) fn(ctx, i); /* a table filled without ref's entries */
}

void fr_freeze(const fr_backend *be, const void *p, size_t bytes, int frozen)
{
    if (be->ops->freeze && p && bytes) be->ops->freeze(p, bytes, frozen);
}

fr_copy_stats fr_copy_stats_since(const fr_copy_stats *now, const fr_copy_stats *then)
{
    fr_copy_stats d = {
        .h2d_calls = now->h2d_calls - then->h2d_calls,
        .h2d_bytes = now->h2d_bytes - then->h2d_bytes,
        .d2h_calls = now->d2h_calls - then->d2h_calls,
        .d2h_bytes = now->d2h_bytes - then->d2h_bytes,
    };
    return d;
}

fr_work_stats fr_work_stats_since(const fr_work_stats *now, const fr_work_stats *then)
{
    fr_work_stats d = {
        .fwd_rows = now->fwd_rows - then->fwd_rows,
        .bwd_rows = now->bwd_rows - then->bwd_rows,
    };
    return d;
}
