/* The backend registry (docs/design.md §3, the BLIS pattern): each backend's table starts as a
 * copy of the ref table (fr_ref_fill) and its init overrides only the entries it
 * implements, so a missing fast op falls back to the reference.
 *
 * To register a backend, add one fr_backend_desc line to k_backends, guarded by its
 * build option (e.g. `#if FR_HAVE_CUDA` around {"cuda", ..., fr_cuda_init}). */
#include "flowrl/emu.h"
#include "flowrl/fast.h"
#include "flowrl/ops.h"
#include "flowrl/ref_backend.h"
#include "flowrl/opt.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static fr_status ref_init(fr_ops *ops)
{
    (void)ops; /* the ref entries are already there */
    return FR_OK;
}

static const fr_backend_desc k_backends[] = {
    {"ref", "scalar reference: plain C loops, one thread; the definition", ref_init},
    {"opt", "SIMD + threads on the CPU, bitwise equal to ref for any thread count", fr_opt_init},
    {"cuda-emu", "the CUDA kernels (kern/) run on the CPU, in device memory the host cannot touch", fr_emu_init},
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
    int idx = -1;
    for (int i = 0; i < N_BACKENDS; i++)
        if (strcmp(name, k_backends[i].name) == 0) idx = i;
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

/* The --fast table of opt (flowrl/fast.h): the opt table, then fr_fast_init's overrides. */
static fr_ops g_fast_table;
static int g_fast_ready;

fr_status fr_backend_get_mode(const char *name, int fast, const fr_ops **out)
{
    if (!fast) return fr_backend_get(name, out);
    if (!out) return fr_fail(FR_ERR_ARG, "fr_backend_get_mode: out is NULL");
    *out = NULL;
    if (!name || strcmp(name, "opt") != 0)
        return fr_fail(FR_ERR_ARG, "%s has no --fast mode (--fast applies to --backend=opt)",
                       name ? name : "(no backend)");
    const fr_ops *opt;
    FR_TRY(fr_backend_get("opt", &opt));
    fr_status st = FR_OK;
    pthread_mutex_lock(&g_lock);
    if (!g_fast_ready) {
        fr_ops t = *opt;
        st = fr_fast_init(&t);
        if (st == FR_OK) {
            t.mode = "fast";
            g_fast_table = t;
            g_fast_ready = 1;
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (st != FR_OK) return st;
    *out = &g_fast_table;
    return FR_OK;
}
