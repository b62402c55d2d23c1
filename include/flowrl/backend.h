/* The backend handle (docs/design.md §3): an op table plus the memory it computes in.
 *
 * Every pointer an op entry takes is *backend memory*: host memory for `ref` and `opt`,
 * device memory for `cuda` and for `cuda-emu` (the emulated device of CI, which keeps its
 * memory out of the host's reach outside a launch or a copy). Code above the op table never
 * reads or writes backend memory itself: it allocates with fr_dev_alloc, moves bytes across
 * with fr_h2d / fr_d2h (counted: bytes and calls, reported per epoch in the metrics), moves
 * them inside with fr_d2d, and computes with op entries. Per-sample scalars (rewards,
 * advantages, statistics) may live on the host.
 *
 * One handle per run (or command); it is not shared between threads. */
#ifndef FLOWRL_BACKEND_H
#define FLOWRL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"
#include "flowrl/status.h"

/* Copies across the host/backend boundary through one handle. */
typedef struct {
    uint64_t h2d_calls, h2d_bytes;
    uint64_t d2h_calls, d2h_bytes;
} fr_copy_stats;

/* Rows through the network through one handle (fr_model_forward / fr_model_backward, the
 * one path every rollout, trainer, reference and EMA copy takes): a CFG forward over
 * [x; x] counts its 2b rows. The model-evaluation (NFE) budget of a run. */
typedef struct {
    uint64_t fwd_rows, bwd_rows;
} fr_work_stats;

typedef struct fr_backend {
    const fr_ops *ops;    /* its table: ref entries where the backend has none (host memory only) */
    const char *name;     /* "ref", "opt", "cuda-emu", "cuda" */
    const char *mode;     /* "exact" or "fast" (ops->mode) */
    int threads;          /* worker threads of the backend's ops (1 but for opt) */
    int fast;             /* --fast */
    int device;           /* 1: its memory is not the host's (cuda-emu, cuda) */
    fr_copy_stats copies; /* since fr_backend_open (fr_copy_stats_since for an epoch's share) */
    fr_work_stats work;   /* since fr_backend_open (fr_work_stats_since for an epoch's share) */
} fr_backend;

/* Opens backend `name` ("" = the fastest bitwise backend built in: opt, else ref) with the
 * --fast switch and thread count (opt: 0 = all CPUs; others run one thread). The first cause
 * of a failure is in fr_last_error(): unknown backend, not built in, no device, --fast
 * without vendor kernels. */
fr_status fr_backend_open(fr_backend *be, const char *name, int fast, int threads);
/* Waits for the device; the handle holds nothing else to release. */
void fr_backend_close(fr_backend *be);
/* "backend opt, threads 2, mode exact" (docs/design.md §8.5: at the top of every run). */
void fr_backend_line(const fr_backend *be, char *buf, size_t n);

/* Backend memory: zero-filled, aligned to 64 bytes; NULL (with a message) when out of
 * memory. fr_dev_free(be, NULL) is a no-op. */
void *fr_dev_alloc(fr_backend *be, size_t bytes);
void fr_dev_free(fr_backend *be, void *p);
/* Typed conveniences: n floats / doubles / int32s. */
float *fr_dev_floats(fr_backend *be, int64_t n);
double *fr_dev_doubles(fr_backend *be, int64_t n);
int32_t *fr_dev_i32(fr_backend *be, int64_t n);

/* Host → backend and backend → host (counted), backend → backend (not a crossing). */
fr_status fr_h2d(fr_backend *be, void *dst, const void *src, size_t bytes);
fr_status fr_d2h(fr_backend *be, void *dst, const void *src, size_t bytes);
fr_status fr_d2d(fr_backend *be, void *dst, const void *src, size_t bytes);
fr_status fr_dev_zero(fr_backend *be, void *p, size_t bytes);
/* Waits for every op and copy issued so far; a device error surfaces here. */
fr_status fr_dev_sync(fr_backend *be);

/* fn(ctx, i) for i = 0 .. n-1 on the backend's host threads (the op table's host_for,
 * flowrl/ops.h: opt's pool; in order on the calling thread elsewhere). Host memory only. */
void fr_host_for(const fr_backend *be, int64_t n, void (*fn)(void *ctx, int64_t i), void *ctx);

/* The op table's freeze (flowrl/ops.h) when the backend has one, else nothing: a promise that
 * [p, p + bytes) of backend memory is not written until fr_freeze(be, p, bytes, 0). */
void fr_freeze(const fr_backend *be, const void *p, size_t bytes, int frozen);

/* now − then, field by field. */
fr_copy_stats fr_copy_stats_since(const fr_copy_stats *now, const fr_copy_stats *then);
fr_work_stats fr_work_stats_since(const fr_work_stats *now, const fr_work_stats *then);

#endif
