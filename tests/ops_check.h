/* Helpers shared by the op suites (test_ops.c, test_ops_grad.c): seeded inputs, float
 * error-bound constants, and double-precision references of the activations with
 * first-order error bounds for their float versions.
 *
 * Error-bound vocabulary (Higham, "Accuracy and Stability of Numerical Algorithms"):
 *   u = 2^-24, the unit roundoff of float (round to nearest);
 *   gamma(n) = n u / (1 - n u) bounds the relative effect of n successive roundings.
 * Double references carry error ~2^-53 relative, negligible against these bounds. */
#ifndef FLOWRL_TESTS_OPS_CHECK_H
#define FLOWRL_TESTS_OPS_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/ops.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define OPS_U 0x1.0p-24

/* The accuracy assumed of the transcendentals of flowrl/detmath.h, as a relative error:
 * the project's target is <= 2 ulp (docs/design.md §1.3); a composite like sigmoid (exp, add,
 * divide) may add up to two roundings, so we allow 4 ulp; 1 ulp of r is at most 2u|r|,
 * hence 8u relative per call. */
#define OPS_DETMATH_U (8.0 * OPS_U)

static inline double ops_gamma(double n) { return n * OPS_U / (1.0 - n * OPS_U); }

/* Roundings a canonical long sum of n terms applies to any one term: at most
 * ceil(n/8) - 1 inside its lane plus 3 in the lane tree (flowrl/reduce.h). */
static inline double ops_longsum_depth(int64_t n) { return (double)((n + 7) / 8 + 3); }

/* Seed of a test: FLOWRL_TEST_SEED overrides the built-in one, to replay a failure. */
static inline uint64_t ops_seed(uint64_t dflt)
{
    const char *s = getenv("FLOWRL_TEST_SEED");
    return s && *s ? strtoull(s, NULL, 0) : dflt;
}

static inline void ops_fill_uniform(uint64_t *s, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++) x[i] = fr_test_uniform(s, lo, hi);
}

/* The first element whose bits differ (NaNs of any payload count as equal), -1: none. ASSERT_SAME
 * fails naming it, with a printf message. */
static inline int64_t ops_first_diff(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) return i;
    return -1;
}

#define ASSERT_SAME(want, got, n, ...)                                                     \
    do {                                                                                   \
        int64_t d_ = ops_first_diff((want), (got), (n));                                       \
        if (d_ >= 0) {                                                                     \
            char m_[512];                                                                  \
            snprintf(m_, sizeof m_, __VA_ARGS__);                                          \
            ck_abort_msg("%s: element %lld: ref %a, opt %a", m_, (long long)d_,            \
                         (double)(want)[d_], (double)(got)[d_]);                           \
        }                                                                                  \
    } while (0)

static inline float *ops_alloc(int64_t n)
{
    float *p = (float *)calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    ck_assert_msg(p != NULL, "calloc(%lld floats) failed", (long long)n);
    return p;
}

/* ---- activations in double ------------------------------------------------------- */

static const double OPS_GELU_BETA = 0.79788456080286535588; /* sqrt(2/pi) */
static const double OPS_GELU_KAPPA = 0.044715;

static inline double ops_sigmoid64(double x) { return 1.0 / (1.0 + exp(-x)); }

static inline double ops_act64(fr_act act, double x)
{
    switch (act) {
    case FR_ACT_SILU: return x * ops_sigmoid64(x);
    case FR_ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(OPS_GELU_BETA * (x + OPS_GELU_KAPPA * x * x * x)));
    case FR_ACT_TANH: return tanh(x);
    case FR_ACT_SIGMOID: return ops_sigmoid64(x);
    case FR_ACT_RELU: return x > 0 ? x : 0.0;
    default: return x;
    }
}

/* First-order bound on |act_f(x) - act(x)| for the float formulas of flowrl/elem.h:
 * each rounding contributes u times the magnitude of the value it rounds, each
 * transcendental OPS_DETMATH_U times its result, and an input error e to g(.) becomes
 * |g'| e. The callers multiply by 2 to cover the second-order terms. */
static inline double ops_act_fwd_bound(fr_act act, double x)
{
    const double u = OPS_U, du = OPS_DETMATH_U;
    switch (act) {
    case FR_ACT_SILU: { /* x * s: s off by du*s, one product rounding */
        double s = ops_sigmoid64(x);
        return fabs(x) * s * (du + u);
    }
    case FR_ACT_GELU_TANH: {
        /* inner = beta*fmaf(kappa, x^3, x): x^3 (2 roundings), fmaf, *beta, and the float
         * constants beta, kappa: <= 6u relative on each term; t = tanh(inner) then carries
         * (1 - t^2) * that plus its own du*|t|; (1 + t) and the final product add u each. */
        double in = OPS_GELU_BETA * (x + OPS_GELU_KAPPA * x * x * x);
        double inabs = OPS_GELU_BETA * (fabs(x) + OPS_GELU_KAPPA * fabs(x * x * x));
        double t = tanh(in);
        double dt = (1.0 - t * t) * 6.0 * u * inabs + du * fabs(t);
        double y = 0.5 * x * (1.0 + t);
        return 0.5 * fabs(x) * (dt + u * fabs(1.0 + t)) + u * fabs(y);
    }
    case FR_ACT_TANH: return du * fabs(tanh(x));
    case FR_ACT_SIGMOID: return du * ops_sigmoid64(x);
    default: return 0.0; /* identity and ReLU are exact */
    }
}

/* act'(x) in double. */
static inline double ops_act_deriv64(fr_act act, double x)
{
    switch (act) {
    case FR_ACT_SILU: {
        double s = ops_sigmoid64(x);
        return s * (1.0 + x * (1.0 - s));
    }
    case FR_ACT_GELU_TANH: {
        double in = OPS_GELU_BETA * (x + OPS_GELU_KAPPA * x * x * x);
        double t = tanh(in);
        return 0.5 * (1.0 + t) +
               0.5 * x * (1.0 - t * t) * OPS_GELU_BETA * (1.0 + 3.0 * OPS_GELU_KAPPA * x * x);
    }
    case FR_ACT_TANH: {
        double t = tanh(x);
        return 1.0 - t * t;
    }
    case FR_ACT_SIGMOID: {
        double s = ops_sigmoid64(x);
        return s * (1.0 - s);
    }
    case FR_ACT_RELU: return x > 0 ? 1.0 : 0.0;
    default: return 1.0;
    }
}

/* First-order bound on |act_bwd_f(x, dy) - dy act'(x)| for the formulas of
 * flowrl/elem.h (same rules as ops_act_fwd_bound; callers multiply by 2). */
static inline double ops_act_bwd_bound(fr_act act, double x, double dy)
{
    const double u = OPS_U, du = OPS_DETMATH_U;
    double ady = fabs(dy);
    switch (act) {
    case FR_ACT_SILU: {
        /* s*fmaf(x, 1-s, 1), then *dy */
        double s = ops_sigmoid64(x), ds = du * s;
        double q = 1.0 + x * (1.0 - s);
        double dq = fabs(x) * (ds + u * (1.0 - s)) + u * fabs(q);
        double d = s * q;
        return ady * (fabs(q) * ds + s * dq + 2.0 * u * fabs(d));
    }
    case FR_ACT_GELU_TANH: {
        /* fmaf(h*tp, up, 0.5*(1+t)), tp = fmaf(-t,t,1), up = beta*fmaf(3kappa, x*x, 1) */
        double ax = fabs(x);
        double in = OPS_GELU_BETA * (x + OPS_GELU_KAPPA * x * x * x);
        double inabs = OPS_GELU_BETA * (ax + OPS_GELU_KAPPA * ax * ax * ax);
        double t = tanh(in);
        double dt = (1.0 - t * t) * 6.0 * u * inabs + du * fabs(t);
        double tp = 1.0 - t * t;
        double up = OPS_GELU_BETA * (1.0 + 3.0 * OPS_GELU_KAPPA * x * x);
        double h = 0.5 * ax;
        double d = ops_act_deriv64(act, x);
        double e = 0.5 * (dt + u * fabs(1.0 + t)) /* 0.5*(1+t) */
                   + h * up * (2.0 * fabs(t) * dt + u * tp) /* tp */
                   + h * tp * up * 6.0 * u /* h*tp, up's 3 roundings and 2 constants */
                   + u * fabs(d);          /* the fmaf */
        return ady * (e + u * fabs(d));
    }
    case FR_ACT_TANH: { /* dy * fmaf(-t, t, 1) */
        double t = tanh(x), dt = du * fabs(t);
        double d = 1.0 - t * t;
        return ady * (2.0 * fabs(t) * dt + 2.0 * u * d);
    }
    case FR_ACT_SIGMOID: { /* (dy * (1-s)) * s */
        double s = ops_sigmoid64(x), ds = du * s;
        return ady * (ds * (1.0 - s) + s * (ds + u * (1.0 - s)) + 2.0 * u * s * (1.0 - s));
    }
    default: return 0.0; /* identity and ReLU: dy or 0, exact */
    }
}

/* ---- layer norm in double ------------------------------------------------------- */

/* Row statistics of x (D,) in double, and bounds on the errors of the float mean and
 * rstd of the layernorm_fwd op:
 *   mean: a long sum (gamma(depth) sum|x|) and a divide (u |mean|);
 *   rstd: var from d = x - mean_f (the mean's error e shifts the centred sum by D e^2,
 *         second order; the subtract rounds, 2u relative on each d^2), a long sum of
 *         positive terms (gamma(depth)), the divide by D, + eps, sqrt (halves a relative
 *         error, then rounds), 1/: relative ((depth + 4)/2 + 2) u; x2 for second order. */
static inline void ops_ln_row_stats(const float *x, int64_t D, float eps, double *mu,
                                    double *rs, double *tol_mu, double *tol_rs)
{
    double m = 0, mag = 0, var = 0;
    for (int64_t j = 0; j < D; j++) m += x[j], mag += fabs(x[j]);
    m /= (double)D;
    for (int64_t j = 0; j < D; j++) var += (x[j] - m) * (x[j] - m);
    var /= (double)D;
    double dep = ops_longsum_depth(D);
    *mu = m;
    *rs = 1.0 / sqrt(var + eps);
    *tol_mu = ops_gamma(dep) * mag / (double)D + OPS_U * fabs(m);
    *tol_rs = 2.0 * ((dep + 4.0) / 2.0 + 2.0) * OPS_U * *rs;
}

/* Bound on the error of the float xhat = (x - mean_f) * rstd_f: the mean's error times
 * rstd, |x - mean| times the rstd's error, and the subtract and multiply (2u |xhat|). */
static inline double ops_ln_xhat_bound(double x, double mu, double rs, double tol_mu,
                                       double tol_rs)
{
    return rs * tol_mu + fabs(x - mu) * tol_rs + 2.0 * OPS_U * fabs((x - mu) * rs);
}

static const char *const ops_act_names[FR_ACT_COUNT] = {"identity", "silu", "gelu_tanh",
                                                         "tanh", "sigmoid", "relu"};

#endif
