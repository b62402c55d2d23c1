/* Shared by the gpu/ sources: the first CUDA failure of the process (flowrl/cuda.h "Errors") and the
 * device check. Included by nvcc only. */
#ifndef FLOWRL_GPU_CUDA_INTERNAL_H
#define FLOWRL_GPU_CUDA_INTERNAL_H

#include <cuda_runtime.h>

extern "C" {
#include "flowrl/cuda.h"
#include "flowrl/ops.h"
#include "flowrl/status.h"
}

/* Records "WHAT: <CUDA error string>" as the first failure unless one is already recorded
 * (status: FR_ERR_NOMEM for cudaErrorMemoryAllocation, else FR_ERR_IO). */
void fr_cuda_note(const char *what, cudaError_t e);
/* The same for a failure described by text (cuBLAS statuses). */
void fr_cuda_note_text(fr_status s, const char *what, const char *text);
/* FR_OK if nothing failed so far, else fr_fail with the first failure's status and message. */
fr_status fr_cuda_first_error(void);
/* fr_cuda_note, then fr_cuda_first_error: `if (e != cudaSuccess) return fr_cuda_fail(...)`. */
fr_status fr_cuda_fail(const char *what, cudaError_t e);

/* FLOWRL_CUDA_SYNC=1: synchronise after every launch (read once, at the device check). */
extern int fr_cuda_sync_each;

/* FR_OK when device 0 is usable by this build (driver, device, compute capability), else
 * FR_ERR_UNSUPPORTED with why. The result of the first call is kept. */
fr_status fr_cuda_device_ok(void);

/* gpu/cuda_mem.cu: sets the mem_* entries and device = 1. */
void fr_cuda_mem_fill(fr_ops *t);

#endif
