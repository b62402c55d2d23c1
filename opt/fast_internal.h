/* Shared by the opt/fast_*.c sources: the vendor kernels behind the --fast dispatchers of
 * opt/fast_backend.c. Each returns 1 when it computed the call and 0 when it could not
 * (library missing, primitive creation or allocation failed): the dispatcher then runs the
 * canonical opt kernel, so a call never fails. */
#ifndef FLOWRL_FAST_INTERNAL_H
#define FLOWRL_FAST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/fast.h"
#include "flowrl/ops.h"

/* ---- OpenBLAS (opt/fast_blas.c) ---------------------------------------------------- */

/* 1 if built with OpenBLAS. */
int fr_fast_blas_ok(void);
/* The table's gemm contract (flowrl/ops.h) through cblas_sgemm, OpenBLAS threads pinned to
 * `threads`. */
int fr_fast_blas_gemm(int threads, int ta, int tb, int64_t M, int64_t N, int64_t K,
                      const float *A, const float *B, float *C, int accumulate);
/* "openblas 0.3.21 (Zen, pthread)" or "" */
void fr_fast_blas_describe(char *buf, size_t n);

/* ---- oneDNN (opt/fast_dnnl.c) -------------------------------------------------------- */

/* 1 if built with oneDNN and its CPU runtime lets flowrl pin the thread count. */
int fr_fast_dnnl_ok(void);
int fr_fast_dnnl_ln_fwd(int threads, int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *beta, float eps, float *y, float *mean, float *rstd);
int fr_fast_dnnl_ln_bwd(int threads, int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta, int accumulate);
int fr_fast_dnnl_act_fwd(int threads, fr_act act, int64_t n, const float *x, float *y);
int fr_fast_dnnl_act_bwd(int threads, fr_act act, int64_t n, const float *x, const float *dy,
                         float *dx, int accumulate);
/* "onednn 2.6.3 (omp)" or "" */
void fr_fast_dnnl_describe(char *buf, size_t n);

#endif
