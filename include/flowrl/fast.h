/* `--backend=opt --fast` (docs/design.md §1 row "opt --fast", §4): the opt table with some
 * entries replaced by vendor kernels -- GEMM through OpenBLAS (cblas_sgemm), layer norm and
 * the GELU(tanh) / SiLU activations through oneDNN primitives (created once per shape and
 * cached). Every other entry stays the canonical opt kernel.
 *
 * Promise (docs/algorithms/numerics.md §0 tier T2, §7.3): run-to-run deterministic on one machine, one
 * library build and one thread count; equal to `ref` only within the per-op tolerances of
 * docs/determinism.md "--fast: measured tolerance". The vendor thread counts are pinned to
 * fr_opt_get_threads() before each vendor call (openblas_set_num_threads; for oneDNN's
 * OpenMP runtime omp_set_num_threads with omp_set_dynamic(0) on the calling thread).
 *
 * Which kernel runs is decided per call by fr_fast_supports(op, shape), a pure function of
 * the op, its shape and the thread count (so the choice, and the bits, repeat run to run). */
#ifndef FLOWRL_FAST_H
#define FLOWRL_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/ops.h"
#include "flowrl/status.h"

typedef enum {
    FR_FAST_GEMM = 0, /* OpenBLAS cblas_sgemm */
    FR_FAST_LN_FWD,   /* oneDNN layer_normalization forward_training */
    FR_FAST_LN_BWD,   /* oneDNN layer_normalization backward */
    FR_FAST_ACT_FWD,  /* oneDNN eltwise forward (gelu_tanh, swish) */
    FR_FAST_ACT_BWD,  /* oneDNN eltwise backward */
    FR_FAST_OP_COUNT
} fr_fast_op;

/* The shape of one call, as the op table passes it. GEMM: ta, tb, M, N, K. Layer norm:
 * M rows of D = N, has_affine (gamma and beta, and for bwd dgamma and dbeta, non-NULL).
 * Activations: act, n = M elements. threads: the opt thread count of the call. */
typedef struct {
    int ta, tb;
    int64_t M, N, K;
    fr_act act;
    int has_affine;
    int threads;
} fr_fast_shape;

/* Which kernels fr_fast_supports may pick: FR_FAST_RULE (the default: the documented
 * per-op rule below), FR_FAST_ALWAYS (a vendor kernel wherever it can compute the op:
 * tests and benchmarks measure the vendor kernels at every shape with it) and
 * FR_FAST_NEVER (no vendor kernel: the fast table then computes exactly what opt does). */
typedef enum { FR_FAST_RULE = 0, FR_FAST_ALWAYS, FR_FAST_NEVER } fr_fast_policy;
void fr_fast_set_policy(fr_fast_policy p);
fr_fast_policy fr_fast_get_policy(void);

/* 1 when the vendor kernel computes this call. The rule (FR_FAST_RULE), measured on the
 * model's shapes with bench/bench_fast.c (numbers in docs/determinism.md):
 *   GEMM:   OpenBLAS built in, M, N, K < 2^31, the weight-gradient layout (ta = 1,
 *           tb = 0) and M N K >= 2^20; forward (NT) and input-gradient (NN) GEMMs stay
 *           canonical (OpenBLAS was not faster there).
 *   layer norm forward: oneDNN usable (its CPU runtime is OpenMP or sequential, so the
 *           thread count can be pinned), gamma and beta given, opt threads <= 2; the
 *           backward stays canonical (oneDNN was not faster).
 *   GELU(tanh) / SiLU forward and backward: oneDNN usable, opt threads <= 3.
 *   The exact thresholds and their measurements: opt/fast_backend.c. */
int fr_fast_supports(fr_fast_op op, const fr_fast_shape *s);

/* 1 if this build has OpenBLAS or oneDNN (otherwise --fast is FR_ERR_UNSUPPORTED). */
int fr_fast_available(void);

/* Overrides the entries of an opt table (already filled by fr_opt_init) with the fast
 * dispatchers. Fails with FR_ERR_UNSUPPORTED when neither vendor library is built in. */
fr_status fr_fast_init(fr_ops *ops);

/* "openblas 0.3.21 (Zen, pthread) threads=2; onednn 2.6.3 (omp) threads=2" for logs and
 * audit records (docs/algorithms/numerics.md §7.7). Returns buf. */
const char *fr_fast_describe(char *buf, size_t n);

#endif
