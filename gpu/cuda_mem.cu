/* The memory entries of the cuda table (flowrl/ops.h, flowrl/backend.h) on device 0, all on
 * the legacy default stream, so copies and kernels run in the order they are issued.
 * Every entry first returns a failure recorded earlier (a launch error, a fault): the first
 * cause, not a consequence. */
#include <stdio.h>

#include "gpu/cuda_internal.h"

/* cudaMalloc aligns to at least 256 bytes (the ops.h contract asks 64); zero bytes get a
 * real allocation so that NULL always means failure. */
static void *cuda_alloc(size_t bytes)
{
    if (fr_cuda_first_error() != FR_OK) return NULL;
    void *p = NULL;
    size_t n = bytes ? bytes : 64;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc of %zu bytes", n);
        fr_cuda_fail(what, e);
        return NULL;
    }
    if ((e = cudaMemset(p, 0, n)) != cudaSuccess) {
        cudaFree(p);
        fr_cuda_fail("cudaMemset (zero-fill of a new allocation)", e);
        return NULL;
    }
    return p;
}

static void cuda_free(void *p)
{
    if (!p) return;
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) fr_cuda_note("cudaFree", e);
}

static fr_status copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what)
{
    FR_TRY(fr_cuda_first_error());
    if (!bytes) return FR_OK;
    cudaError_t e = cudaMemcpy(dst, src, bytes, kind);
    if (e == cudaSuccess) return FR_OK;
    char w[160];
    snprintf(w, sizeof w, "cudaMemcpy %s of %zu bytes%s", what, bytes,
             fr_cuda_sync_each ? "" : " (a fault of an earlier kernel also shows here; FLOWRL_CUDA_SYNC=1 names it)");
    return fr_cuda_fail(w, e);
}

static fr_status cuda_h2d(void *dst, const void *src, size_t bytes)
{
    return copy(dst, src, bytes, cudaMemcpyHostToDevice, "host->device");
}

static fr_status cuda_d2h(void *dst, const void *src, size_t bytes)
{
    return copy(dst, src, bytes, cudaMemcpyDeviceToHost, "device->host");
}

static fr_status cuda_d2d(void *dst, const void *src, size_t bytes)
{
    return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, "device->device");
}

static fr_status cuda_zero(void *p, size_t bytes)
{
    FR_TRY(fr_cuda_first_error());
    if (!bytes) return FR_OK;
    cudaError_t e = cudaMemset(p, 0, bytes);
    return e == cudaSuccess ? FR_OK : fr_cuda_fail("cudaMemset", e);
}

/* A kernel fault shows here at the latest (kernels run asynchronously). */
static fr_status cuda_sync(void)
{
    FR_TRY(fr_cuda_first_error());
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) return FR_OK;
    return fr_cuda_fail(fr_cuda_sync_each ? "cudaDeviceSynchronize"
                                          : "cudaDeviceSynchronize (a kernel faulted; FLOWRL_CUDA_SYNC=1 names it)",
                        e);
}

void fr_cuda_mem_fill(fr_ops *t)
{
    t->mem_alloc = cuda_alloc;
    t->mem_free = cuda_free;
    t->mem_h2d = cuda_h2d;
    t->mem_d2h = cuda_d2h;
    t->mem_d2d = cuda_d2d;
    t->mem_zero = cuda_zero;
    t->mem_sync = cuda_sync;
    t->device = 1;
}
