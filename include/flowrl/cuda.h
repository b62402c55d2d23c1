/* The CUDA backend (gpu/, built when ./configure finds nvcc): device memory behind the op
 * table's mem_* entries and every compute entry as a kernel of kern/ (flowrl/kernel.h),
 * bitwise equal to ref; `--fast` replaces the GEMM with cuBLAS SGEMM, TF32 off.
 *
 * Errors: no driver or no device is FR_ERR_UNSUPPORTED ("cuda: no CUDA device
 * (cudaGetDeviceCount: ...)"); an allocation the device cannot hold is FR_ERR_NOMEM; any
 * other CUDA failure (a launch, a copy, a kernel fault) is FR_ERR_IO with the CUDA error
 * string. Only the first failure is reported, by every later memory call too: after a
 * device fault nothing computed on the device is trusted. Op entries return nothing, so
 * a kernel's failure surfaces at the next memory call (mem_sync, a copy). Kernel faults are
 * asynchronous: FLOWRL_CUDA_SYNC=1 synchronises after every launch so the message names the
 * kernel that faulted. */
#ifndef FLOWRL_CUDA_H
#define FLOWRL_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"
#include "flowrl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The registry's init (core/backend.c): checks for a usable device, sets the memory entries,
 * device = 1 and every compute entry from kern/ (fr_kern_fill). Fails when an entry would
 * stay ref's (a ref entry would read device memory on the host), naming how many and the
 * first one's place in fr_ops. */
fr_status fr_cuda_init(fr_ops *ops);

/* The registry's --fast init, on a copy of the cuda table: gemm becomes cuBLAS SGEMM with
 * CUBLAS_DEFAULT_MATH (no TF32, no BF16x9 emulation), one handle on the default stream.
 * cuBLAS is loaded at run time (libcublas.so.13; FLOWRL_CUBLAS=PATH names another file), so
 * flowrl runs where cuBLAS is absent; then --fast fails with "cuBLAS not available on this
 * machine (...)". Tolerance against ref: not yet measured on hardware (tools/gpu_check.sh
 * measures it: bench_cuda_gemm's error columns). */
fr_status fr_cuda_fast_init(fr_ops *ops);

/* The memory entries, device = 1 and every kernel of kern/, without the device or the
 * completeness check of fr_cuda_init: a benchmark of single entries (bench/bench_cuda_gemm.c)
 * calls fr_cuda_device_info first and uses only the entries it needs. */
void fr_cuda_fill(fr_ops *ops);

/* "NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB, driver 13.0, runtime 13.0" (device 0); the
 * no-device failure of fr_cuda_init otherwise. */
fr_status fr_cuda_device_info(char *buf, size_t n);

/* "cuBLAS 13.0.2 (libcublas.so.13), math mode default (TF32 off)", or why it is not
 * available ("cuBLAS not available on this machine (...)"); loads cuBLAS if needed. Returns
 * buf. */
const char *fr_cuda_blas_describe(char *buf, size_t n);

/* The -arch the kernels were compiled for ("sm_90"), from the build. */
const char *fr_cuda_built_arch(void);

/* ---- NCCL (gpu/cuda_nccl.cu; docs/determinism.md "Many processes") ----------------------
 * Under mpirun with --backend cuda and FLOWRL_NCCL=1, the split update's gathers go from GPU to
 * GPU through NCCL, bytes only (one ncclBroadcast per rank's rows, grouped). Built when
 * ./configure finds nccl.h beside nvcc; libnccl.so.2 is loaded at run time (FLOWRL_NCCL_LIB=PATH
 * names another file). Without it every call but the two flags is FR_ERR_UNSUPPORTED. */
#define FR_CUDA_NCCL_ID_BYTES 128
int fr_cuda_nccl_built(void);
/* rank 0 makes the communicator's id (FR_CUDA_NCCL_ID_BYTES), every rank joins with it */
fr_status fr_cuda_nccl_unique_id(void *id);
fr_status fr_cuda_nccl_join(int rank, int R, const void *id);
int fr_cuda_nccl_joined(void);
/* buf (n, row_floats) device memory, rank k bringing rows fr_dist_block(n, 1, k, R): whole on
 * every rank; *recv_bytes += the bytes this rank received. */
fr_status fr_cuda_nccl_gather_rows(float *buf, int64_t n, int64_t row_floats, uint64_t *recv_bytes);
void fr_cuda_nccl_leave(void);
/* "NCCL 2.28.9 (libnccl.so.2)", or why not; loads NCCL if needed. Returns buf. */
const char *fr_cuda_nccl_describe(char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
