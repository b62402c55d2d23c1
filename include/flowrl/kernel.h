/* Kernels as per-thread bodies (docs/design.md §3.2), compiled by nvcc for `cuda` (gpu/) and
 * by the C compiler for `cuda-emu` (emu/), which runs them over the same grids and blocks on
 * the CPU. One body, two builds: what the emulator proves in CI is the arithmetic the device
 * runs.
 *
 * A kernel file (kern/k_*.h) holds, for each op entry:
 *   - an argument struct (passed by value: scalars and backend pointers);
 *   - its body, FR_HOSTDEV, a function of the thread's coordinates (fr_kidx);
 *   - the op entry itself, a host function that fills the arguments and launches:
 *
 *       typedef struct { int64_t n; const float *x; float *y; } fr_k_neg_args;
 *       FR_KERNEL(fr_k_neg, fr_k_neg_args)
 *       {
 *           int64_t i = fr_kidx_global_x(k);
 *           if (i < a->n) a->y[i] = -a->x[i];
 *       }
 *       static void k_neg(int64_t n, const float *x, float *y)
 *       {
 *           if (n <= 0) return;
 *           FR_KARG(x, n, "x");
 *           FR_KARG(y, n, "y");
 *           fr_k_neg_args a = {n, x, y};
 *           FR_LAUNCH(fr_k_neg, fr_grid_1d(n, 256), fr_dim3_x(256), a);
 *       }
 *
 * Rule: every pointer argument of an op entry is checked with FR_KARG(p, n, "name"), n the
 * number of elements the op reads or writes through p (FR_KARG_OPT where NULL is allowed,
 * FR_KARG_AT for each pointer of a host array of pointers), before the first launch. An op entry is named
 * k_<its ops.h entry>: the message names the entry without the k_. Under nvcc the checks are
 * nothing; in cuda-emu a host buffer, a freed one or one shorter than the extent stops the
 * process with one line naming the entry, the argument, the pointer and the extent, and the
 * host stack, because on a device that read would fault or read garbage while the CPU would
 * read it happily.
 *
 * Kernels with barriers (shared-memory tiles) are written as phases over a per-thread
 * register struct and a per-block shared struct (FR_KERNEL_TILED): init, then n_iter times
 * (barrier, load, barrier, compute), then store. On the device each phase is a stretch of one
 * __global__ function between __syncthreads(); the emulator runs a phase for every thread of
 * the block before the next phase. A phase may write only its own registers, its own
 * outputs, and (load) its own share of the shared struct.
 *
 * The code must be both C11 and C++17 (nvcc): no designated initializers, explicit casts
 * from void *. */
#ifndef FLOWRL_KERNEL_H
#define FLOWRL_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/hostdev.h"

typedef struct {
    uint32_t x, y, z;
} fr_dim3;

/* The coordinates of one thread, as blockIdx / threadIdx / gridDim / blockDim; iter is the
 * tile loop's counter in FR_KERNEL_TILED phases. */
typedef struct {
    fr_dim3 block, thread, grid, bdim;
    int64_t iter;
} fr_kidx;

FR_HOSTDEV static inline fr_dim3 fr_dim3_make(uint32_t x, uint32_t y, uint32_t z)
{
    fr_dim3 d;
    d.x = x;
    d.y = y;
    d.z = z;
    return d;
}
FR_HOSTDEV static inline fr_dim3 fr_dim3_x(uint32_t x) { return fr_dim3_make(x, 1, 1); }
/* ceil(n / per) blocks along x (at least 1). */
FR_HOSTDEV static inline fr_dim3 fr_grid_1d(int64_t n, uint32_t per)
{
    int64_t b = (n + per - 1) / per;
    return fr_dim3_x((uint32_t)(b > 0 ? b : 1));
}
FR_HOSTDEV static inline int64_t fr_kidx_global_x(const fr_kidx *k)
{
    return (int64_t)k->block.x * k->bdim.x + k->thread.x;
}
FR_HOSTDEV static inline int64_t fr_kidx_global_y(const fr_kidx *k)
{
    return (int64_t)k->block.y * k->bdim.y + k->thread.y;
}
/* The thread's index inside its block, x fastest. */
FR_HOSTDEV static inline int64_t fr_kidx_local(const fr_kidx *k)
{
    return ((int64_t)k->thread.z * k->bdim.y + k->thread.y) * k->bdim.x + k->thread.x;
}

#if defined(__CUDACC__)

__device__ static inline fr_kidx fr_kidx_here(void)
{
    fr_kidx k;
    k.block = fr_dim3_make(blockIdx.x, blockIdx.y, blockIdx.z);
    k.thread = fr_dim3_make(threadIdx.x, threadIdx.y, threadIdx.z);
    k.grid = fr_dim3_make(gridDim.x, gridDim.y, gridDim.z);
    k.bdim = fr_dim3_make(blockDim.x, blockDim.y, blockDim.z);
    k.iter = 0;
    return k;
}

/* gpu/cuda_launch.cu: records the first launch error with the kernel's name (C linkage
 * whether or not the kernel file is included inside extern "C"). */
extern "C" void fr_cuda_after_launch(const char *kernel);

#define FR_KERNEL(name, args_t)                                                                    \
    __device__ static inline void name##_body(const fr_kidx *k, const args_t *a);                \
    __global__ void name##_g(args_t a)                                                             \
    {                                                                                              \
        fr_kidx k = fr_kidx_here();                                                                \
        name##_body(&k, &a);                                                                       \
    }                                                                                              \
    __device__ static inline void name##_body(const fr_kidx *k, const args_t *a)

#define FR_LAUNCH(name, grid, block, args)                                                         \
    do {                                                                                           \
        fr_dim3 g_ = (grid), b_ = (block);                                                         \
        name##_g<<<dim3(g_.x, g_.y, g_.z), dim3(b_.x, b_.y, b_.z)>>>(args);                        \
        fr_cuda_after_launch(#name);                                                               \
    } while (0)

/* Phases name##_init, _load, _compute, _store and name##_iters(const args_t *) defined above. */
#define FR_KERNEL_TILED(name, args_t, regs_t, smem_t)                                              \
    __global__ void name##_g(args_t a)                                                             \
    {                                                                                              \
        __shared__ smem_t s;                                                                       \
        regs_t r;                                                                                  \
        fr_kidx k = fr_kidx_here();                                                                \
        const int64_t n = name##_iters(&a);                                                        \
        name##_init(&k, &a, &s, &r);                                                               \
        for (k.iter = 0; k.iter < n; k.iter++) {                                                   \
            __syncthreads();                                                                       \
            name##_load(&k, &a, &s, &r);                                                           \
            __syncthreads();                                                                       \
            name##_compute(&k, &a, &s, &r);                                                        \
        }                                                                                          \
        name##_store(&k, &a, &s, &r);                                                              \
    }

#define FR_LAUNCH_TILED FR_LAUNCH

#define FR_KARG(p, n, name) ((void)0)
#define FR_KARG_OPT(p, n, name) ((void)0)
#define FR_KARG_AT(p, n, name, index) ((void)0)

#else /* the emulator (emu/emu_launch.c) */

typedef void (*fr_emu_phase)(const fr_kidx *k, const void *args, void *smem, void *regs);

/* Runs a kernel over grid × block on the CPU with the device memory open to it: simple
 * kernels (one phase) or tiled ones (init, n_iter × (load, compute), store), each phase for
 * every thread of a block before the next. */
void fr_emu_launch(const char *kernel, fr_dim3 grid, fr_dim3 block, size_t smem_bytes, size_t regs_bytes,
                   int64_t n_iter, fr_emu_phase init, fr_emu_phase load, fr_emu_phase compute,
                   fr_emu_phase store, const void *args);

/* Stops the process unless [p, p + bytes) lies inside one live device allocation (bytes 0,
 * or p NULL when optional, pass; index >= 0 is printed as name[index]). */
void fr_emu_karg(const char *entry, const char *name, int64_t index, const void *p, size_t bytes, int optional);

/* n elements of *p; n <= 0 is no extent (nothing is read). */
static inline size_t fr_karg_bytes(int64_t n, size_t elem) { return n > 0 ? (size_t)n * elem : 0; }

#define FR_KARG(p, n, name) fr_emu_karg(__func__, (name), -1, (p), fr_karg_bytes((n), sizeof *(p)), 0)
#define FR_KARG_OPT(p, n, name) fr_emu_karg(__func__, (name), -1, (p), fr_karg_bytes((n), sizeof *(p)), 1)
#define FR_KARG_AT(p, n, name, index) fr_emu_karg(__func__, (name), (index), (p), fr_karg_bytes((n), sizeof *(p)), 0)

#define FR_KERNEL(name, args_t)                                                                    \
    static inline void name##_body(const fr_kidx *k, const args_t *a);                            \
    static void name##_emu(const fr_kidx *k, const void *a, void *s, void *r)                      \
    {                                                                                              \
        (void)s;                                                                                   \
        (void)r;                                                                                   \
        name##_body(k, (const args_t *)a);                                                         \
    }                                                                                              \
    static inline void name##_body(const fr_kidx *k, const args_t *a)

#define FR_LAUNCH(name, grid, block, args)                                                         \
    fr_emu_launch(#name, (grid), (block), 0, 0, 0, name##_emu, NULL, NULL, NULL, &(args))

#define FR_EMU_PHASE_(name, phase, args_t, regs_t, smem_t)                                         \
    static void name##_##phase##_emu(const fr_kidx *k, const void *a, void *s, void *r)            \
    {                                                                                              \
        name##_##phase(k, (const args_t *)a, (smem_t *)s, (regs_t *)r);                            \
    }

#define FR_KERNEL_TILED(name, args_t, regs_t, smem_t)                                              \
    FR_EMU_PHASE_(name, init, args_t, regs_t, smem_t)                                              \
    FR_EMU_PHASE_(name, load, args_t, regs_t, smem_t)                                              \
    FR_EMU_PHASE_(name, compute, args_t, regs_t, smem_t)                                           \
    FR_EMU_PHASE_(name, store, args_t, regs_t, smem_t)                                             \
    static const size_t name##_smem_bytes = sizeof(smem_t), name##_regs_bytes = sizeof(regs_t);

#define FR_LAUNCH_TILED(name, grid, block, args)                                                   \
    fr_emu_launch(#name, (grid), (block), name##_smem_bytes, name##_regs_bytes, name##_iters(&(args)),   \
                  name##_init_emu, name##_load_emu, name##_compute_emu, name##_store_emu, &(args))

#endif

#endif
