/* NCCL under mpirun (flowrl/cuda.h "NCCL"): the split update's gathers between GPUs, device
 * memory to device memory, instead of through the host and MPI. Built when ./configure finds
 * nccl.h beside nvcc (FR_HAVE_NCCL); NCCL itself (libnccl.so.2) is loaded at run time with
 * dlopen, as cuBLAS is (gpu/cuda_fast.cu), so flowrl runs where it is absent.
 *
 * A gather moves bytes only: rank k's rows fr_dist_block(n, 1, k, R) of a buffer go to every
 * rank by one ncclBroadcast from root k, the R broadcasts in one group on the legacy default
 * stream (the cuda backend's), then a synchronisation. No floating-point value is reduced, so
 * the transport cannot change a bit. Never run on a machine with several GPUs yet. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda_internal.h"

extern "C" {
#include "config.h"
#include "flowrl/dist.h"
}

#ifndef FR_HAVE_NCCL
#define FR_HAVE_NCCL 0
#endif

#if FR_HAVE_NCCL
#include <nccl.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define NCCL_SONAME "libnccl.so." STR(NCCL_MAJOR)

static_assert(NCCL_UNIQUE_ID_BYTES == FR_CUDA_NCCL_ID_BYTES, "flowrl/cuda.h FR_CUDA_NCCL_ID_BYTES");

typedef struct {
    ncclResult_t (*get_version)(int *);
    ncclResult_t (*get_unique_id)(ncclUniqueId *);
    ncclResult_t (*comm_init_rank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*comm_destroy)(ncclComm_t);
    ncclResult_t (*broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
    ncclResult_t (*group_start)(void);
    ncclResult_t (*group_end)(void);
    const char *(*error_string)(ncclResult_t);
} nccl_api;

static nccl_api g_api;
static int g_loaded = 0;
static char g_why[320];
static ncclComm_t g_comm = NULL;
static int g_rank = 0, g_size = 1;

static int sym(void *lib, const char *name, void *fn)
{
    void *p = dlsym(lib, name);
    if (!p) snprintf(g_why, sizeof g_why, "NCCL not available on this machine (%s: no symbol %s)", NCCL_SONAME, name);
    memcpy(fn, &p, sizeof p);
    return p != NULL;
}

/* FR_OK once NCCL is loaded (FLOWRL_NCCL_LIB=PATH names another file than libnccl.so.2). */
static fr_status load(void)
{
    if (g_loaded) return FR_OK;
    FR_TRY(fr_cuda_device_ok());
    const char *path = getenv("FLOWRL_NCCL_LIB");
    if (!path || !path[0]) path = NCCL_SONAME;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return fr_fail(FR_ERR_UNSUPPORTED, "NCCL not available on this machine (dlopen %s: %s)", path, dlerror());
    nccl_api a;
    if (!sym(lib, "ncclGetVersion", &a.get_version) || !sym(lib, "ncclGetUniqueId", &a.get_unique_id) ||
        !sym(lib, "ncclCommInitRank", &a.comm_init_rank) || !sym(lib, "ncclCommDestroy", &a.comm_destroy) ||
        !sym(lib, "ncclBroadcast", &a.broadcast) || !sym(lib, "ncclGroupStart", &a.group_start) ||
        !sym(lib, "ncclGroupEnd", &a.group_end) || !sym(lib, "ncclGetErrorString", &a.error_string))
        return fr_fail(FR_ERR_UNSUPPORTED, "%s", g_why);
    g_api = a;
    g_loaded = 1;
    return FR_OK;
}

static fr_status nccl_fail(const char *what, ncclResult_t r)
{
    return fr_fail(FR_ERR_IO, "NCCL %s: %s", what, g_api.error_string(r));
}

extern "C" int fr_cuda_nccl_built(void) { return 1; }

extern "C" fr_status fr_cuda_nccl_unique_id(void *id)
{
    FR_TRY(load());
    ncclUniqueId u;
    ncclResult_t r = g_api.get_unique_id(&u);
    if (r != ncclSuccess) return nccl_fail("ncclGetUniqueId", r);
    memcpy(id, &u, sizeof u);
    return FR_OK;
}

extern "C" fr_status fr_cuda_nccl_join(int rank, int R, const void *id)
{
    FR_TRY(load());
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclResult_t r = g_api.comm_init_rank(&g_comm, R, u, rank);
    if (r != ncclSuccess) {
        g_comm = NULL;
        return nccl_fail("ncclCommInitRank", r);
    }
    g_rank = rank;
    g_size = R;
    return FR_OK;
}

extern "C" int fr_cuda_nccl_joined(void) { return g_comm != NULL; }

extern "C" fr_status fr_cuda_nccl_gather_rows(float *buf, int64_t n, int64_t row_floats, uint64_t *recv_bytes)
{
    if (!g_comm) return fr_fail(FR_ERR_ARG, "NCCL: no communicator (fr_cuda_nccl_join first)");
    ncclResult_t r = g_api.group_start();
    for (int k = 0; r == ncclSuccess && k < g_size; k++) {
        int64_t lo, hi;
        fr_dist_block(n, 1, k, g_size, &lo, &hi);
        if (hi > lo)
            r = g_api.broadcast(buf + lo * row_floats, buf + lo * row_floats, (size_t)((hi - lo) * row_floats), ncclFloat32,
                                k, g_comm, (cudaStream_t)0);
        if (k == g_rank) *recv_bytes += (uint64_t)((n - (hi - lo)) * row_floats) * sizeof(float);
    }
    ncclResult_t e = g_api.group_end();
    if (r != ncclSuccess) return nccl_fail("ncclBroadcast", r);
    if (e != ncclSuccess) return nccl_fail("ncclGroupEnd", e);
    cudaError_t c = cudaStreamSynchronize((cudaStream_t)0);
    if (c != cudaSuccess) return fr_cuda_fail("NCCL gather: cudaStreamSynchronize", c);
    return FR_OK;
}

extern "C" void fr_cuda_nccl_leave(void)
{
    if (g_comm) g_api.comm_destroy(g_comm);
    g_comm = NULL;
}

extern "C" const char *fr_cuda_nccl_describe(char *buf, size_t n)
{
    if (load() != FR_OK) {
        snprintf(buf, n, "%s", fr_last_error());
        return buf;
    }
    int v = 0;
    g_api.get_version(&v);
    snprintf(buf, n, "NCCL %d.%d.%d (%s)", v / 10000, v / 100 % 100, v % 100, NCCL_SONAME);
    return buf;
}

#else /* built without NCCL: the cuda backend gathers through the host (MPI) */

extern "C" int fr_cuda_nccl_built(void) { return 0; }
extern "C" int fr_cuda_nccl_joined(void) { return 0; }

static fr_status not_built(void)
{
    return fr_fail(FR_ERR_UNSUPPORTED, "this flowrl was built without NCCL (./configure found no nccl.h beside nvcc)");
}

extern "C" fr_status fr_cuda_nccl_unique_id(void *id) { return (void)id, not_built(); }
extern "C" fr_status fr_cuda_nccl_join(int rank, int R, const void *id) { return (void)rank, (void)R, (void)id, not_built(); }
extern "C" fr_status fr_cuda_nccl_gather_rows(float *buf, int64_t n, int64_t row_floats, uint64_t *recv_bytes)
{
    return (void)buf, (void)n, (void)row_floats, (void)recv_bytes, not_built();
}
extern "C" void fr_cuda_nccl_leave(void) {}
extern "C" const char *fr_cuda_nccl_describe(char *buf, size_t n)
{
    snprintf(buf, n, "not built (./configure found no nccl.h beside nvcc)");
    return buf;
}
#endif
