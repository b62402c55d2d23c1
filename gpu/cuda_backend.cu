/* The cuda backend's registry init (flowrl/cuda.h): the device check, the memory entries
 * (gpu/cuda_mem.cu) and every compute entry from the kernel families of kern/, compiled here
 * by nvcc with the determinism contract's flags (Makefile NVCCFLAGS: --fmad=false, IEEE
 * division and square root, no flush-to-zero). */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/cuda_internal.h"

extern "C" {
#include "flowrl/ref_backend.h"
#include "kern/kern_fill.h"
}

/* The compute capabilities the kernels were built for (nvcc -arch, config.mk CUDA_ARCH):
 * machine code for the lowest, PTX the driver compiles for newer devices. */
static const int k_archs[] = {__CUDA_ARCH_LIST__};

static int lowest_arch(void)
{
    int lo = k_archs[0];
    for (size_t i = 1; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (k_archs[i] < lo) lo = k_archs[i];
    return lo;
}

extern "C" const char *fr_cuda_built_arch(void)
{
    static char name[16];
    snprintf(name, sizeof name, "sm_%d", lowest_arch() / 10);
    return name;
}

/* The first call's verdict, kept: "no device" does not change within a process. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static fr_status g_status;
static char g_why[320];

static fr_status check_device(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess)
        return fr_fail(FR_ERR_UNSUPPORTED, "cuda: no CUDA device (cudaGetDeviceCount: %s)", cudaGetErrorString(e));
    if (count < 1) return fr_fail(FR_ERR_UNSUPPORTED, "cuda: no CUDA device (cudaGetDeviceCount: 0 devices)");
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess)
        return fr_fail(FR_ERR_UNSUPPORTED, "cuda: cudaGetDeviceProperties(0): %s", cudaGetErrorString(e));
    int cc = p.major * 10 + p.minor;
    if (cc < lowest_arch())
        return fr_fail(FR_ERR_UNSUPPORTED,
                       "cuda: device 0 (%s) is sm_%d and this flowrl's kernels are built for %s and newer "
                       "(CUDA_ARCH in config.mk)",
                       p.name, cc, fr_cuda_built_arch());
    /* creates the context now, so a driver/runtime mismatch is reported here */
    if ((e = cudaFree(0)) != cudaSuccess)
        return fr_fail(FR_ERR_UNSUPPORTED, "cuda: cannot use device 0 (%s): %s", p.name, cudaGetErrorString(e));
    const char *sync = getenv("FLOWRL_CUDA_SYNC");
    fr_cuda_sync_each = sync && strcmp(sync, "1") == 0;
    return FR_OK;
}

static void check_once(void)
{
    g_status = check_device();
    if (g_status != FR_OK) snprintf(g_why, sizeof g_why, "%s", fr_last_error());
}

fr_status fr_cuda_device_ok(void)
{
    pthread_once(&g_once, check_once);
    return g_status == FR_OK ? FR_OK : fr_fail(g_status, "%s", g_why);
}

extern "C" fr_status fr_cuda_device_info(char *buf, size_t n)
{
    FR_TRY(fr_cuda_device_ok());
    cudaDeviceProp p;
    int drv = 0, rt = 0;
    cudaError_t e = cudaGetDeviceProperties(&p, 0);
    if (e == cudaSuccess) e = cudaDriverGetVersion(&drv);
    if (e == cudaSuccess) e = cudaRuntimeGetVersion(&rt);
    if (e != cudaSuccess) return fr_fail(FR_ERR_IO, "cuda: device 0: %s", cudaGetErrorString(e));
    snprintf(buf, n, "%s, sm_%d%d, %.1f GiB, driver %d.%d, runtime %d.%d", p.name, p.major, p.minor,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), drv / 1000, drv % 1000 / 10, rt / 1000,
             rt % 1000 / 10);
    return FR_OK;
}

extern "C" void fr_cuda_fill(fr_ops *ops)
{
    fr_cuda_mem_fill(ops);
    fr_kern_fill(ops);
}

/* The compute entries are the function pointers from gemm up to mode (include/flowrl/ops.h
 * keeps every compute entry between them). */
typedef void (*entry_fn)(void);
static_assert((offsetof(fr_ops, mode) - offsetof(fr_ops, gemm)) % sizeof(entry_fn) == 0,
              "fr_ops: only function pointers between gemm and mode");

/* How many compute entries of t are still ref's (non-NULL and equal); *first: the byte
 * offset in fr_ops of the first one. */
static int ref_entries_left(const fr_ops *t, size_t *first)
{
    fr_ops ref;
    memset(&ref, 0, sizeof ref);
    fr_ref_fill(&ref);
    int left = 0;
    for (size_t off = offsetof(fr_ops, gemm); off < offsetof(fr_ops, mode); off += sizeof(entry_fn)) {
        entry_fn a, b;
        memcpy(&a, (const char *)t + off, sizeof a);
        memcpy(&b, (const char *)&ref + off, sizeof b);
        if (a && a == b && !left++) *first = off;
    }
    return left;
}

extern "C" fr_status fr_cuda_init(fr_ops *ops)
{
    FR_TRY(fr_cuda_device_ok());
    fr_cuda_fill(ops);
    size_t first = 0;
    int left = ref_entries_left(ops, &first);
    if (left)
        return fr_fail(FR_ERR_UNSUPPORTED,
                       "cuda: %d op entries have no kernel in kern/ (the first at byte %zu of fr_ops, "
                       "include/flowrl/ops.h); their ref entries would read device memory on the host",
                       left, first);
    return FR_OK;
}
