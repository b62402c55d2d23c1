/* `--backend=cuda --fast` (flowrl/cuda.h): the cuda table with the GEMM computed by cuBLAS
 * SGEMM. cuBLAS (libcublas + libcublasLt, ~570 MB) is loaded at run time with dlopen, so the
 * flowrl binary (and the GPU check's bundle, which must stay under 64 MiB) does not carry it.
 *
 * Math mode CUBLAS_DEFAULT_MATH: float32 inputs and accumulation, no TF32 tensor cores (only
 * CUBLAS_TF32_TENSOR_OP_MATH or NVIDIA_TF32_OVERRIDE would allow them) and no BF16x9
 * emulation (CUBLAS_FP32_EMULATED_BF16X9_MATH); checked back with cublasGetMathMode. One
 * handle, the legacy default stream: cuBLAS gives the same bits every run on one GPU model
 * and toolkit version only with a single stream (cuBLAS guide, "Results reproducibility").
 * Tolerance against ref: not yet measured on hardware; bench/bench_cuda_gemm.c measures it
 * (tools/gpu_check.sh), as 2γ_{K+1}(|C0| + Σ|a||b|) like opt --fast's GEMM. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_api.h>

#include "gpu/cuda_internal.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

typedef struct {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*set_math)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*get_math)(cublasHandle_t, cublasMath_t *);
    cublasStatus_t (*get_property)(libraryPropertyType, int *);
    const char *(*status_string)(cublasStatus_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                            const float *, int, const float *, int, const float *, float *, int);
} blas_api;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static blas_api g_api;
static cublasHandle_t g_handle;
static fr_status g_status = FR_ERR_UNSUPPORTED;
static char g_desc[320]; /* the description, or why cuBLAS is not available */

static int sym(void *lib, const char *name, void *fn)
{
    void *p = dlsym(lib, name);
    if (!p) snprintf(g_desc, sizeof g_desc, "cuBLAS not available on this machine (%s: no symbol %s)", CUBLAS_SONAME, name);
    memcpy(fn, &p, sizeof p);
    return p != NULL;
}

static void load(void)
{
    const char *path = getenv("FLOWRL_CUBLAS");
    if (!path || !path[0]) path = CUBLAS_SONAME;
    if (fr_cuda_device_ok() != FR_OK) {
        snprintf(g_desc, sizeof g_desc, "%s", fr_last_error());
        return;
    }
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(g_desc, sizeof g_desc, "cuBLAS not available on this machine (dlopen %s: %s)", path, dlerror());
        return;
    }
    blas_api a;
    if (!sym(lib, "cublasCreate_v2", &a.create) || !sym(lib, "cublasSetMathMode", &a.set_math) ||
        !sym(lib, "cublasGetMathMode", &a.get_math) || !sym(lib, "cublasGetProperty", &a.get_property) ||
        !sym(lib, "cublasGetStatusString", &a.status_string) || !sym(lib, "cublasSgemm_v2", &a.sgemm))
        return;
    int v[3] = {0, 0, 0};
    a.get_property(MAJOR_VERSION, &v[0]);
    a.get_property(MINOR_VERSION, &v[1]);
    a.get_property(PATCH_LEVEL, &v[2]);
    if (v[0] != CUBLAS_VER_MAJOR) {
        snprintf(g_desc, sizeof g_desc, "cuBLAS not available on this machine (%s is cuBLAS %d.%d, built for %d)", path,
                 v[0], v[1], CUBLAS_VER_MAJOR);
        return;
    }
    cublasMath_t mode = CUBLAS_TF32_TENSOR_OP_MATH;
    cublasStatus_t s = a.create(&g_handle);
    if (s == CUBLAS_STATUS_SUCCESS) s = a.set_math(g_handle, CUBLAS_DEFAULT_MATH);
    if (s == CUBLAS_STATUS_SUCCESS) s = a.get_math(g_handle, &mode);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(g_desc, sizeof g_desc, "cuBLAS %d.%d.%d: cublasCreate / cublasSetMathMode: %s", v[0], v[1], v[2],
                 a.status_string(s));
        return;
    }
    if (mode != CUBLAS_DEFAULT_MATH) {
        snprintf(g_desc, sizeof g_desc, "cuBLAS %d.%d.%d: math mode reads back as %d, not CUBLAS_DEFAULT_MATH", v[0],
                 v[1], v[2], (int)mode);
        return;
    }
    g_api = a;
    snprintf(g_desc, sizeof g_desc, "cuBLAS %d.%d.%d (%s), math mode default (TF32 off)", v[0], v[1], v[2], path);
    g_status = FR_OK;
}

/* C (M,N) row-major is C^T (N,M) column-major, so cuBLAS computes C^T = op(B)^T op(A)^T:
 * the operands swap places and keep their transposes (flowrl/ops.h gemm). */
static void fast_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                      int accumulate)
{
    if (M <= 0 || N <= 0) return;
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX) {
        fr_cuda_note_text(FR_ERR_UNSUPPORTED, "cuBLAS SGEMM", "a dimension exceeds INT_MAX");
        return;
    }
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = g_api.sgemm(g_handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N,
                                   (int)M, (int)K, &one, B, tb ? (int)K : (int)N, A, ta ? (int)M : (int)K,
                                   accumulate ? &one : &zero, C, (int)N);
    if (s != CUBLAS_STATUS_SUCCESS) fr_cuda_note_text(FR_ERR_IO, "cublasSgemm", g_api.status_string(s));
}

extern "C" fr_status fr_cuda_fast_init(fr_ops *ops)
{
    pthread_once(&g_once, load);
    if (g_status != FR_OK) return fr_fail(FR_ERR_UNSUPPORTED, "%s", g_desc);
    ops->gemm = fast_gemm;
    return FR_OK;
}

extern "C" const char *fr_cuda_blas_describe(char *buf, size_t n)
{
    pthread_once(&g_once, load);
    snprintf(buf, n, "%s", g_desc);
    return buf;
}
