/* The --fast dispatchers (flowrl/fast.h): each fast entry asks fr_fast_supports whether
 * the vendor kernel computes this call and otherwise (or if the vendor kernel cannot run)
 * calls the canonical opt kernel. The rule is a pure function of (op, shape, threads), so
 * a given program makes the same choices, and gets the same bits, every run.
 *
 * The thresholds come from bench/bench_fast.c on the development machine (2 cores, AMD
 * EPYC, Zen kernels of OpenBLAS 0.3.21; docs/determinism.md "--fast: measured tolerance"
 * has the table): the rule keeps the canonical kernel wherever the vendor one was not
 * faster, so --fast is never slower than the canonical table. */
#include "opt/fast_internal.h"
#include "opt/opt_internal.h"

#include <stdatomic.h>
#include <stdio.h>

/* OpenBLAS (single-threaded per block of C, split over the opt pool: opt/fast_blas.c)
 * beat the canonical kernel only on the weight-gradient layout TN (dW += dy^T x: 65-95% of
 * the canonical time at the shapes-s layers, 1 and 2 threads); on NT (forward) it was
 * 99-161% and on NN (input gradient) 85-191%, so those stay canonical. Below 2^20
 * multiply-adds the call overhead is not worth it. */
#define GEMM_MIN_MNK ((int64_t)1 << 20)
/* oneDNN runs on the calling thread (OpenMP pinned to 1 thread): with its OpenMP team,
 * the opt pool and OpenBLAS's threads all spinning on a 2-core machine, a 2-thread oneDNN
 * GELU took 8 ms instead of 23 us (bench_fast); one thread also makes its bits independent
 * of the opt thread count. */
#define DNNL_THREADS 1
/* oneDNN's single-threaded GELU/SiLU is 3-4x faster than the canonical one-thread kernel
 * (bench_fast), so it wins while the canonical kernel has fewer threads than that. */
#define ACT_MAX_THREADS 3
/* Layer norm: oneDNN's forward (one thread) took 64-69% of the canonical time at 1 and 2
 * threads; its backward 104-110%, so the backward stays canonical. */
#define LN_FWD_MAX_THREADS 2

static _Atomic int g_policy = FR_FAST_RULE;

void fr_fast_set_policy(fr_fast_policy p) { atomic_store(&g_policy, (int)p); }
fr_fast_policy fr_fast_get_policy(void) { return (fr_fast_policy)atomic_load(&g_policy); }

int fr_fast_available(void) { return fr_fast_blas_ok() || fr_fast_dnnl_ok(); }

int fr_fast_supports(fr_fast_op op, const fr_fast_shape *s)
{
    fr_fast_policy pol = fr_fast_get_policy();
    if (pol == FR_FAST_NEVER) return 0;
    int always = pol == FR_FAST_ALWAYS;
    switch (op) {
    case FR_FAST_GEMM:
        if (!fr_fast_blas_ok() || s->M < 1 || s->N < 1 || s->K < 1) return 0;
        return always || (s->ta && !s->tb && s->M * s->N * s->K >= GEMM_MIN_MNK);
    case FR_FAST_LN_FWD:
    case FR_FAST_LN_BWD:
        if (!fr_fast_dnnl_ok() || !s->has_affine || s->M < 1 || s->N < 1) return 0;
        return always || (op == FR_FAST_LN_FWD && s->threads <= LN_FWD_MAX_THREADS);
    case FR_FAST_ACT_FWD:
    case FR_FAST_ACT_BWD:
        if (!fr_fast_dnnl_ok() || s->M < 1) return 0;
        if (s->act != FR_ACT_GELU_TANH && s->act != FR_ACT_SILU) return 0;
        return always || s->threads <= ACT_MAX_THREADS;
    default:
        return 0;
    }
}

static void fast_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                      const float *B, float *C, int accumulate)
{
    fr_fast_shape s = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .threads = fr_opt_get_threads()};
    if (fr_fast_supports(FR_FAST_GEMM, &s) &&
        fr_fast_blas_gemm(s.threads, ta, tb, M, N, K, A, B, C, accumulate))
        return;
    fr_opt_gemm(ta, tb, M, N, K, A, B, C, accumulate);
}

static void fast_ln_fwd(int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *beta, float eps, float *y, float *mean, float *rstd)
{
    fr_fast_shape s = {.M = M, .N = D, .has_affine = gamma && beta,
                       .threads = fr_opt_get_threads()};
    if (fr_fast_supports(FR_FAST_LN_FWD, &s) &&
        fr_fast_dnnl_ln_fwd(DNNL_THREADS, M, D, x, gamma, beta, eps, y, mean, rstd))
        return;
    fr_opt_layernorm_fwd(M, D, x, gamma, beta, eps, y, mean, rstd);
}

static void fast_ln_bwd(int64_t M, int64_t D, const float *x, const float *gamma,
                        const float *mean, const float *rstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta, int accumulate)
{
    fr_fast_shape s = {.M = M, .N = D, .has_affine = gamma && dgamma && dbeta,
                       .threads = fr_opt_get_threads()};
    if (fr_fast_supports(FR_FAST_LN_BWD, &s) &&
        fr_fast_dnnl_ln_bwd(DNNL_THREADS, M, D, x, gamma, mean, rstd, dy, dx, dgamma, dbeta,
                            accumulate))
        return;
    fr_opt_layernorm_bwd(M, D, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate);
}

static void fast_act_fwd(fr_act act, int64_t n, const float *x, float *y)
{
    fr_fast_shape s = {.M = n, .act = act, .threads = fr_opt_get_threads()};
    if (fr_fast_supports(FR_FAST_ACT_FWD, &s) && fr_fast_dnnl_act_fwd(DNNL_THREADS, act, n, x, y))
        return;
    fr_opt_act_fwd(act, n, x, y);
}

static void fast_act_bwd(fr_act act, int64_t n, const float *x, const float *dy, float *dx,
                         int accumulate)
{
    fr_fast_shape s = {.M = n, .act = act, .threads = fr_opt_get_threads()};
    if (fr_fast_supports(FR_FAST_ACT_BWD, &s) &&
        fr_fast_dnnl_act_bwd(DNNL_THREADS, act, n, x, dy, dx, accumulate))
        return;
    fr_opt_act_bwd(act, n, x, dy, dx, accumulate);
}

fr_status fr_fast_init(fr_ops *ops)
{
    if (!fr_fast_available())
        return fr_fail(FR_ERR_UNSUPPORTED,
                       "--fast needs OpenBLAS or oneDNN, and this flowrl was built without both "
                       "(re-run ./configure with libopenblas-dev and/or libdnnl-dev installed)");
    if (fr_fast_blas_ok()) ops->gemm = fast_gemm;
    if (fr_fast_dnnl_ok()) {
        ops->layernorm_fwd = fast_ln_fwd;
        ops->layernorm_bwd = fast_ln_bwd;
        ops->act_fwd = fast_act_fwd;
        ops->act_bwd = fast_act_bwd;
    }
    return FR_OK;
}

const char *fr_fast_describe(char *buf, size_t n)
{
    char b[160], d[160];
    fr_fast_blas_describe(b, sizeof b);
    fr_fast_dnnl_describe(d, sizeof d);
    int t = fr_opt_get_threads();
    snprintf(buf, n, "%s%s%s threads=%d", b[0] ? b : "no openblas", "; ", d[0] ? d : "no onednn",
             t);
    return buf;
}
