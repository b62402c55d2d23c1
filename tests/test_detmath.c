/* Accuracy of flowrl's own transcendentals (include/flowrl/detmath.h) against MPFR.
 *
 * Error unit: |y - v| / ulp(v), v the exact value (MPFR, 128 bits), ulp(v) = 2^(e - 23) with
 * 2^e <= |v| < 2^(e+1), e clamped to -126 (subnormal spacing). Taking the binade of the
 * exact value is the stricter convention (just below a power of two the ulp is the smaller
 * one). A result that must be inf, NaN or a signed zero and is not counts as an infinite
 * error.
 *
 * Sweep: every 2^32/stride-th float bit pattern (both signs, subnormals, inf, NaN), seeded
 * uniform points in the ranges callers use, and +-4 ulps around every threshold where an
 * implementation switches branches. To stay fast, each point is first measured against the
 * double-precision libm value (accurate to ~2^-28 float ulp); MPFR measures every point
 * whose double estimate comes within 1e-4 ulp of the running maximum of its class (normal
 * or subnormal exact result; at least 0.25 ulp), every result near FLT_MAX, every failure
 * and one point in `sample`. The maxima reported and asserted are MPFR's; the test also
 * asserts that the MPFR-measured points agree with the double estimate to 1e-6 ulp and that
 * no screened-out point's estimate exceeds the MPFR maximum.
 *
 * FLOWRL_ACCURACY=dense (`make accuracy`): stride 61 (~7e7 patterns per function) and 2^22
 * uniform points per range; prints the table of docs/determinism.md. */
#include <float.h>
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/detmath.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define MP_PREC 128
#define ERR_INF 1e30

/* ---- the measuring functions ------------------------------------------------------------ */

/* Error of y in ulps of the exact value v (see the header comment). */
static double ulp_err_mp(float y, mpfr_srcptr v)
{
    if (mpfr_nan_p(v)) return isnan(y) ? 0.0 : ERR_INF;
    if (isnan(y)) return ERR_INF;
    float cr = mpfr_get_flt(v, MPFR_RNDN);
    if (isinf(cr) || isinf(y)) return y == cr ? 0.0 : ERR_INF;
    if (mpfr_zero_p(v)) return (y == 0.0f && !!signbit(y) == !!mpfr_signbit(v)) ? 0.0 : ERR_INF;
    long e = (long)mpfr_get_exp(v) - 1; /* MPFR: v = 0.1xxx_2 * 2^exp */
    if (e < -126) e = -126;
    mpfr_t d;
    mpfr_init2(d, 2 * MP_PREC);
    mpfr_set_flt(d, y, MPFR_RNDN);
    mpfr_sub(d, d, v, MPFR_RNDN);
    mpfr_mul_2si(d, d, 23 - e, MPFR_RNDN);
    double r = fabs(mpfr_get_d(d, MPFR_RNDN));
    mpfr_clear(d);
    return r;
}

/* The same against a double approximation v of the exact value (the fast filter). */
static double ulp_err_d(float y, double v)
{
    if (isnan(v)) return isnan(y) ? 0.0 : ERR_INF;
    if (isnan(y)) return ERR_INF;
    float cr = (float)v;
    if (isinf(cr) || isinf(y)) return y == cr ? 0.0 : ERR_INF;
    if (v == 0.0) return (y == 0.0f && !!signbit(y) == !!signbit(v)) ? 0.0 : ERR_INF;
    int e = ilogb(v);
    if (e < -126) e = -126;
    return fabs(ldexp((double)y - v, 23 - e));
}

/* ---- the functions under test and their references -------------------------------------- */

static int mp_sigmoid(mpfr_ptr r, mpfr_srcptr x, mpfr_rnd_t rnd)
{
    if (mpfr_nan_p(x)) {
        mpfr_set_nan(r);
        return 0;
    }
    mpfr_t t, d;
    mpfr_inits2(MP_PREC, t, d, (mpfr_ptr)0);
    int ret;
    if (mpfr_sgn(x) >= 0) { /* 1 / (1 + e^-x) */
        mpfr_neg(t, x, MPFR_RNDN);
        mpfr_exp(t, t, MPFR_RNDN);
        mpfr_add_ui(t, t, 1, MPFR_RNDN);
        ret = mpfr_ui_div(r, 1, t, rnd);
    } else { /* e^x / (1 + e^x): no overflow of e^-x */
        mpfr_exp(t, x, MPFR_RNDN);
        mpfr_add_ui(d, t, 1, MPFR_RNDN);
        ret = mpfr_div(r, t, d, rnd);
    }
    mpfr_clears(t, d, (mpfr_ptr)0);
    return ret;
}

static int mp_softplus(mpfr_ptr r, mpfr_srcptr x, mpfr_rnd_t rnd)
{
    if (mpfr_nan_p(x)) {
        mpfr_set_nan(r);
        return 0;
    }
    mpfr_t t;
    mpfr_init2(t, 2 * MP_PREC);
    int ret;
    if (mpfr_sgn(x) > 0) { /* x + log1p(e^-x) */
        mpfr_neg(t, x, MPFR_RNDN);
        mpfr_exp(t, t, MPFR_RNDN);
        mpfr_log1p(t, t, MPFR_RNDN);
        ret = mpfr_add(r, t, x, rnd);
    } else {
        mpfr_exp(t, x, MPFR_RNDN);
        ret = mpfr_log1p(r, t, rnd);
    }
    mpfr_clear(t);
    return ret;
}

static double d_sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double d_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

typedef float (*fn_f)(float);
typedef int (*fn_mp)(mpfr_ptr, mpfr_srcptr, mpfr_rnd_t);

typedef struct {
    const char *name;
    fn_f f;
    double (*ref)(double);
    fn_mp mp;
    double bound;           /* asserted max error (ulp), documented in detmath.h */
    float range[3][2];      /* where callers use it: seeded uniform points */
    int n_range;
    float edge[16];         /* branch switches and thresholds; +-4 ulp around each */
    int n_edge;
} fn_desc;

static const fn_desc k_fns[] = {
    {"exp", fr_expf, exp, mpfr_exp, 1.0,
     {{-104.0f, 89.0f}, {-1.0f, 1.0f}}, 2,
     {89.0f, -104.0f, 0x1.62e42ep6f, 0x1.62e430p6f, -103.972077f, -103.2789f, -87.33654f,
      -87.33655f, 0.34657359f, -0.34657359f, 0x1p-25f, -0x1p-25f, 1.0397208f, -1.0397208f},
     14},
    {"expm1", fr_expm1f, expm1, mpfr_expm1, 1.0,
     {{-18.0f, 89.0f}, {-1.1f, 1.1f}, {-0.01f, 0.01f}}, 3,
     {-18.0f, 89.0f, 0x1.62e42ep6f, 0.34657359f, -0.34657359f, 1.0397208f, -1.0397208f,
      0x1p-25f, -0x1p-25f, 16.98f, 17.33f, 69.66f, -17.33f, -16.98f},
     14},
    {"log", fr_logf, log, mpfr_log, 1.0,
     {{0.0f, 10.0f}, {0.5f, 2.0f}, {0.0f, 1e-3f}}, 3,
     {0x1.6a09e6p-1f, 0x1.6a09e6p0f, 1.0f, 0x1p-126f, 0x1p-149f, FLT_MAX, 0x1.6a09e6p-127f,
      2.0f, 0.5f},
     9},
    {"log1p", fr_log1pf, log1p, mpfr_log1p, 1.0,
     {{-1.0f, 10.0f}, {-0.3f, 0.42f}, {-1e-3f, 1e-3f}}, 3,
     {-0x1.fffffep-1f, -0.29289322f, 0.41421357f, 0x1p-24f, -0x1p-25f, 0x1p24f, FLT_MAX,
      1.0f, -0.5f, 0x1p-126f, -0x1p-126f},
     11},
    {"sin", fr_sinf, sin, mpfr_sin, 1.0,
     {{0.0f, 6.2831855f}, {-1e4f, 1e4f}, {-1e9f, 1e9f}}, 3,
     {0x1.921fb4p-1f, 0x1.921fb6p-1f, 0x1.921fb6p0f, 0x1.921fb6p1f, 0x1.2d97c8p2f,
      0x1.921fb6p2f, 1e4f, 1e22f, FLT_MAX, 0x1p-126f, 0x1p24f, 0x1.921fb6p24f},
     12},
    {"cos", fr_cosf, cos, mpfr_cos, 1.0,
     {{0.0f, 6.2831855f}, {-1e4f, 1e4f}, {-1e9f, 1e9f}}, 3,
     {0x1.921fb4p-1f, 0x1.921fb6p-1f, 0x1.921fb6p0f, 0x1.921fb6p1f, 0x1.2d97c8p2f,
      0x1.921fb6p2f, 1e4f, 1e22f, FLT_MAX, 0x1p-126f, 0x1p24f, 0x1.921fb6p24f},
     12},
    {"tanh", fr_tanhf, tanh, mpfr_tanh, 1.0,
     {{-10.0f, 10.0f}, {-0.6f, 0.6f}}, 2,
     {9.5f, -9.5f, 9.0109f, 0.1732868f, -0.1732868f, 0.5198604f, 0x1p-12f, 0x1p-25f,
      0x1p-126f},
     9},
    {"sigmoid", fr_sigmoidf, d_sigmoid, mp_sigmoid, 1.0,
     {{-110.0f, 110.0f}, {-8.0f, 8.0f}}, 2,
     {104.0f, -104.0f, -103.972077f, -87.33654f, 87.33654f, 17.33f, 16.64f, -17.33f,
      0.34657359f, -0.34657359f, 0x1p-25f},
     11},
    {"softplus", fr_softplusf, d_softplus, mp_softplus, 1.0,
     {{-110.0f, 110.0f}, {-8.0f, 8.0f}}, 2,
     {104.0f, -104.0f, -103.972077f, -87.33654f, 17.33f, -17.33f, 0x1p24f, FLT_MAX,
      0.34657359f, -0.34657359f, 0x1p-25f},
     11},
};
#define N_FNS (int)(sizeof k_fns / sizeof k_fns[0])

/* ---- sweeping ---------------------------------------------------------------------------- */

typedef struct {
    double max_err;  /* MPFR-measured */
    float arg;       /* where */
    double max_sub;  /* the same over subnormal exact results (|v| < 2^-126) */
    float sub_arg;
    double max_nor;  /* ... and over the others */
    long points, mp_calls;
    double max_gap;  /* max |double estimate - MPFR| over the MPFR-measured points */
    float gap_arg;
    double max_ed;   /* max of the double estimate over all points */
    float ed_arg;
    long sample;     /* 1 in `sample` points goes to MPFR regardless */
    mpfr_t x, v;
} sweep;

static void sweep_init(sweep *s, long sample)
{
    memset(s, 0, sizeof *s);
    s->sample = sample;
    mpfr_inits2(MP_PREC, s->x, s->v, (mpfr_ptr)0);
}

static void sweep_free(sweep *s) { mpfr_clears(s->x, s->v, (mpfr_ptr)0); }

static double measure_mp(const fn_desc *d, float x, float y, mpfr_ptr xm, mpfr_ptr v)
{
    mpfr_set_flt(xm, x, MPFR_RNDN);
    d->mp(v, xm, MPFR_RNDN);
    return ulp_err_mp(y, v);
}

static void sweep_point(const fn_desc *d, sweep *s, float x)
{
    float y = d->f(x);
    double vd = d->ref((double)x);
    double ed = ulp_err_d(y, vd);
    s->points++;
    /* NaN, inf and 0 in double mean NaN, a value far beyond FLT_MAX or far below 2^-150:
     * ulp_err_d already decides those exactly (MPFR confirms a failure); results near
     * FLT_MAX always go to MPFR */
    int special = ed >= ERR_INF || (isfinite(vd) && fabs(vd) > 0x1p127);
    if (ed > s->max_ed) {
        s->max_ed = ed;
        s->ed_arg = x;
    }
    /* below 0.25 ulp a point cannot set the maximum of a function that is not correctly
     * rounded; the final check max_ed <= max_err + 1e-6 confirms it */
    int sub = fabs(vd) < 0x1p-126 && vd != 0.0;
    double cat_max = sub ? s->max_sub : s->max_nor;
    if (ed < fmax(cat_max, 0.25) - 1e-4 && !special && s->points % s->sample != 0) return;
    double em = measure_mp(d, x, y, s->x, s->v);
    s->mp_calls++;
    if (sub && em > s->max_sub) {
        s->max_sub = em;
        s->sub_arg = x;
    }
    if (!sub && em > s->max_nor) s->max_nor = em;
    if (em < ERR_INF && ed < ERR_INF && fabs(em - ed) > s->max_gap) {
        s->max_gap = fabs(em - ed);
        s->gap_arg = x;
    }
    if (em > s->max_err || s->points == 1) {
        s->max_err = em;
        s->arg = x;
    }
}

static float f_of_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, 4);
    return x;
}

static int dense_mode(void)
{
    const char *a = getenv("FLOWRL_ACCURACY");
    return a && strcmp(a, "dense") == 0;
}

/* The whole sweep of one function: bit patterns, ranges, thresholds. */
static void sweep_fn(const fn_desc *d, sweep *s, int dense, uint64_t seed)
{
    uint64_t stride = dense ? 61 : 8191;
    long n_uniform = dense ? (1L << 22) : (1L << 14);
    for (uint64_t b = seed % stride; b < (1ull << 32); b += stride) sweep_point(d, s, f_of_bits((uint32_t)b));
    uint64_t rng = seed;
    for (int r = 0; r < d->n_range; r++)
        for (long i = 0; i < n_uniform; i++)
            sweep_point(d, s, fr_test_uniform(&rng, d->range[r][0], d->range[r][1]));
    for (int i = 0; i < d->n_edge; i++)
        for (int sgn = 0; sgn < 2; sgn++) {
            float x = sgn ? -d->edge[i] : d->edge[i];
            for (int j = 0; j < 4; j++) x = nextafterf(x, -INFINITY);
            for (int j = 0; j < 9; j++, x = nextafterf(x, INFINITY)) sweep_point(d, s, x);
        }
}

/* Per-function verdict: the MPFR-measured max within the documented bound, the filter
 * consistent with MPFR. Prints one line (make check carries the figures). */
START_TEST(test_accuracy)
{
    const fn_desc *d = &k_fns[_i];
    int dense = dense_mode();
    uint64_t seed = 0x5eed0000u + (uint64_t)_i;
    sweep s;
    sweep_init(&s, dense ? 4096 : 64);
    sweep_fn(d, &s, dense, seed);
    printf("detmath: %-8s max %.4f ulp at x = %a (%.9g)  [normal results %.4f, subnormal "
           "%.4f; %ld points, %ld via MPFR, filter gap %.1e, seed %#llx%s]\n",
           d->name, s.max_err, (double)s.arg, (double)s.arg, s.max_nor, s.max_sub, s.points,
           s.mp_calls, s.max_gap, (unsigned long long)seed, dense ? ", dense" : "");
    if (dense) /* the row of docs/determinism.md */
        printf("| %s | %ld | %.4f | `%a` | %.4f | %.4f |\n", d->name, s.points, s.max_err,
               (double)s.arg, s.max_nor, s.max_sub);
    fflush(stdout);
    ck_assert_msg(s.max_gap < 1e-6, "%s: double filter disagrees with MPFR by %g ulp at %a",
                  d->name, s.max_gap, (double)s.gap_arg);
    ck_assert_msg(s.max_ed <= s.max_err + 1e-6,
                  "%s: double estimate %.6f ulp at %a above the MPFR maximum %.6f", d->name,
                  s.max_ed, (double)s.ed_arg, s.max_err);
    ck_assert_msg(s.max_err <= d->bound, "%s: max error %.4f ulp > bound %.2f at x = %a (seed %#llx)",
                  d->name, s.max_err, d->bound, (double)s.arg, (unsigned long long)seed);
    sweep_free(&s);
}
END_TEST

/* ---- the measuring function measures --------------------------------------------------- */

static double err_of(float y, const char *v_str)
{
    mpfr_t v;
    mpfr_init2(v, MP_PREC);
    mpfr_set_str(v, v_str, 0, MPFR_RNDN);
    double e = ulp_err_mp(y, v);
    mpfr_clear(v);
    return e;
}

START_TEST(test_ulp_measure_known)
{
    /* 1 + 2^-24 is half an ulp above 1 */
    ck_assert(fabs(err_of(1.0f, "0x1.000001p0") - 0.5) < 1e-12);
    ck_assert(fabs(err_of(1.0f + 0x1p-23f, "0x1.000001p0") - 0.5) < 1e-12);
    ck_assert(fabs(err_of(1.0f + 0x1p-22f, "0x1.000001p0") - 1.5) < 1e-12);
    /* just below 1 the ulp is 2^-24: 1 - 2^-26 is 0.25 ulp from 1 */
    ck_assert(fabs(err_of(1.0f, "0x0.ffffffcp0") - 0.25) < 1e-12);
    /* subnormal spacing 2^-149; mpfr_get_flt rounds ties to even there */
    ck_assert(fabs(err_of(0x1p-149f, "0x3p-150") - 0.5) < 1e-12);
    ck_assert(fabs(err_of(0x1p-148f, "0x3p-150") - 0.5) < 1e-12);
    ck_assert(fabs(err_of(0.0f, "0x1p-152") - 0.125) < 1e-12);
    /* overflow: FLT_MAX + ulp/4 rounds to FLT_MAX, FLT_MAX + ulp/2 (a tie, to even) and
     * beyond round to inf */
    ck_assert(fabs(err_of(FLT_MAX, "0x1.fffffe8p127") - 0.25) < 1e-12);
    ck_assert(err_of(FLT_MAX, "0x1.ffffffp127") >= ERR_INF);
    ck_assert(err_of(INFINITY, "0x1.ffffffp127") == 0.0);
    ck_assert(err_of(INFINITY, "0x1.fffffe8p127") >= ERR_INF);
    /* signed zeros and NaN */
    ck_assert(err_of(0.0f, "0") == 0.0);
    ck_assert(err_of(-0.0f, "0") >= ERR_INF);
    ck_assert(err_of(NAN, "1") >= ERR_INF);
    ck_assert(err_of(NAN, "@NaN@") == 0.0);
    ck_assert(err_of(1.0f, "@NaN@") >= ERR_INF);
    /* the double filter agrees on the same cases */
    ck_assert(fabs(ulp_err_d(1.0f, 1.0 + 0x1p-24) - 0.5) < 1e-12);
    ck_assert(fabs(ulp_err_d(1.0f, 1.0 - 0x1p-26) - 0.25) < 1e-12);
    ck_assert(ulp_err_d(-0.0f, 0.0) >= ERR_INF);
}
END_TEST

/* Perturbing a result by one float step moves the measured error by >= 0.5 ulp (by exactly
 * one ulp within a binade, away from the exact value). */
START_TEST(test_ulp_measure_perturbed)
{
    const float xs[] = {0.3f, -2.5f, 7.75f, 0.01f, 1e4f, -50.0f, 0.9f};
    mpfr_t xm, v;
    mpfr_inits2(MP_PREC, xm, v, (mpfr_ptr)0);
    for (int f = 0; f < N_FNS; f++)
        for (int i = 0; i < (int)(sizeof xs / sizeof xs[0]); i++) {
            float x = xs[i];
            mpfr_set_flt(xm, x, MPFR_RNDN);
            k_fns[f].mp(v, xm, MPFR_RNDN);
            if (mpfr_nan_p(v) || mpfr_zero_p(v)) continue;
            float cr = mpfr_get_flt(v, MPFR_RNDN);
            if (isinf(cr) || fabsf(cr) < FLT_MIN || fabsf(cr) == 1.0f) continue;
            double e0 = ulp_err_mp(cr, v);
            float away = mpfr_cmp_d(v, (double)cr) >= 0 ? nextafterf(cr, -INFINITY)
                                                         : nextafterf(cr, INFINITY);
            double e1 = ulp_err_mp(away, v);
            ck_assert_msg(e0 <= 0.5, "%s(%a): correctly rounded value measured %g ulp",
                          k_fns[f].name, (double)x, e0);
            ck_assert_msg(e1 >= e0 + 0.5, "%s(%a): perturbed value measured %g vs %g",
                          k_fns[f].name, (double)x, e1, e0);
            /* and the function under test is within its bound at the same point */
            double ef = ulp_err_mp(k_fns[f].f(x), v);
            ck_assert_msg(ef <= k_fns[f].bound, "%s(%a): %g ulp", k_fns[f].name, (double)x, ef);
        }
    mpfr_clears(xm, v, (mpfr_ptr)0);
}
END_TEST

/* exp made 2 ulp too large: the sweep must see it (the accuracy test can fail). */
static float broken_exp(float x) { return nextafterf(nextafterf(fr_expf(x), INFINITY), INFINITY); }
static float broken_expm1_zero(float x) { return x == 0.0f ? 0.0f : fr_expm1f(x); }

START_TEST(test_sweep_detects_errors)
{
    fn_desc bad = k_fns[0];
    bad.f = broken_exp;
    sweep s;
    sweep_init(&s, 64);
    sweep_fn(&bad, &s, 0, 1);
    ck_assert_msg(s.max_err >= 1.5 && s.max_err > bad.bound, "broken exp measured %g ulp",
                  s.max_err);
    sweep_free(&s);
    /* a wrong sign of zero is an infinite error */
    fn_desc bad2 = k_fns[1];
    bad2.f = broken_expm1_zero;
    sweep_init(&s, 64);
    sweep_point(&bad2, &s, -0.0f);
    ck_assert(s.max_err >= ERR_INF);
    sweep_free(&s);
}
END_TEST

/* ---- exact special values (C99 Annex F) ------------------------------------------------- */

#define QNAN NAN
static const struct {
    int fn; /* index into k_fns */
    float x, want;
} k_special[] = {
    {0, 0.0f, 1.0f}, {0, -0.0f, 1.0f}, {0, INFINITY, INFINITY}, {0, -INFINITY, 0.0f},
    {0, QNAN, QNAN}, {0, 89.0f, INFINITY}, {0, 0x1.62e430p6f, INFINITY}, {0, -104.5f, 0.0f},
    {0, FLT_MAX, INFINITY}, {0, -FLT_MAX, 0.0f}, {0, 0x1p-149f, 1.0f}, {0, -0x1p-149f, 1.0f},
    {1, 0.0f, 0.0f}, {1, -0.0f, -0.0f}, {1, INFINITY, INFINITY}, {1, -INFINITY, -1.0f},
    {1, QNAN, QNAN}, {1, 0x1p-149f, 0x1p-149f}, {1, -0x1p-149f, -0x1p-149f},
    {1, -FLT_MAX, -1.0f}, {1, FLT_MAX, INFINITY}, {1, 0x1p-30f, 0x1p-30f},
    {2, 0.0f, -INFINITY}, {2, -0.0f, -INFINITY}, {2, -1.0f, QNAN}, {2, -INFINITY, QNAN},
    {2, INFINITY, INFINITY}, {2, 1.0f, 0.0f}, {2, QNAN, QNAN}, {2, -0x1p-149f, QNAN},
    {3, 0.0f, 0.0f}, {3, -0.0f, -0.0f}, {3, -1.0f, -INFINITY}, {3, -1.5f, QNAN},
    {3, -INFINITY, QNAN}, {3, INFINITY, INFINITY}, {3, QNAN, QNAN},
    {3, 0x1p-149f, 0x1p-149f}, {3, -0x1p-149f, -0x1p-149f}, {3, 0x1p-30f, 0x1p-30f},
    {4, 0.0f, 0.0f}, {4, -0.0f, -0.0f}, {4, INFINITY, QNAN}, {4, -INFINITY, QNAN},
    {4, QNAN, QNAN}, {4, 0x1p-149f, 0x1p-149f}, {4, -0x1p-149f, -0x1p-149f},
    {5, 0.0f, 1.0f}, {5, -0.0f, 1.0f}, {5, INFINITY, QNAN}, {5, -INFINITY, QNAN},
    {5, QNAN, QNAN}, {5, 0x1p-149f, 1.0f},
    {6, 0.0f, 0.0f}, {6, -0.0f, -0.0f}, {6, INFINITY, 1.0f}, {6, -INFINITY, -1.0f},
    {6, QNAN, QNAN}, {6, 0x1p-149f, 0x1p-149f}, {6, -0x1p-149f, -0x1p-149f},
    {6, 10.0f, 1.0f}, {6, -10.0f, -1.0f}, {6, FLT_MAX, 1.0f},
    {7, 0.0f, 0.5f}, {7, -0.0f, 0.5f}, {7, INFINITY, 1.0f}, {7, -INFINITY, 0.0f},
    {7, QNAN, QNAN}, {7, 200.0f, 1.0f}, {7, -200.0f, 0.0f}, {7, -FLT_MAX, 0.0f},
    {8, INFINITY, INFINITY}, {8, -INFINITY, 0.0f}, {8, QNAN, QNAN}, {8, 0.0f, 0x1.62e430p-1f},
    {8, -0.0f, 0x1.62e430p-1f}, {8, FLT_MAX, FLT_MAX}, {8, -200.0f, 0.0f}, {8, 200.0f, 200.0f},
};

START_TEST(test_special_values)
{
    for (int i = 0; i < (int)(sizeof k_special / sizeof k_special[0]); i++) {
        const fn_desc *d = &k_fns[k_special[i].fn];
        float x = k_special[i].x, want = k_special[i].want, got = d->f(x);
        int ok = isnan(want) ? isnan(got) : fr_test_bits_equal(got, want);
        ck_assert_msg(ok, "%s(%a) = %a, want %a", d->name, (double)x, (double)got, (double)want);
    }
    /* a negative NaN propagates too */
    for (int f = 0; f < N_FNS; f++) ck_assert(isnan(k_fns[f].f(-NAN)));
}
END_TEST

/* Overflow/underflow thresholds of exp exactly where round-to-nearest puts them. */
START_TEST(test_exp_thresholds)
{
    /* fl(ln FLT_MAX) = 0x1.62e430p6 is above ln FLT_MAX: the float below is the last finite */
    ck_assert(fr_expf(0x1.62e42ep6f) < INFINITY && fr_expf(0x1.62e42ep6f) > 0x1.fffep127f);
    ck_assert(isinf(fr_expf(0x1.62e430p6f)));
    /* e^x < 2^-150 rounds to 0 below -150 ln2 = -103.972077...; just above it, 2^-149 */
    ck_assert(fr_expf(-0x1.9fe368p6f) == 0x1p-149f); /* -103.9720764 */
    ck_assert(fr_expf(-0x1.9fe36ap6f) == 0.0f);      /* -103.9720840 */
    /* the smallest normal e^x = 2^-126 at x = -87.33654475 */
    ck_assert(fr_expf(-0x1.5d589ep6f) >= 0x1p-126f);
    ck_assert(fr_expf(-0x1.5d58a0p6f) < 0x1p-126f);
    /* sin/cos stay bounded everywhere, including huge arguments */
    for (uint64_t b = 0; b < (1ull << 31); b += 65537) {
        float x = f_of_bits((uint32_t)b);
        if (isinf(x) || isnan(x)) continue;
        ck_assert_msg(fabsf(fr_sinf(x)) <= 1.0f && fabsf(fr_cosf(x)) <= 1.0f, "%a", (double)x);
    }
}
END_TEST

/* sin/cos at the floats nearest to k pi/2 (the cancellation cases of the reduction), k up
 * to 2^16, and tanh/sigmoid symmetry identities that must hold bit for bit. */
START_TEST(test_trig_multiples)
{
    mpfr_t xm, v, pi;
    mpfr_inits2(MP_PREC, xm, v, pi, (mpfr_ptr)0);
    mpfr_const_pi(pi, MPFR_RNDN);
    double worst = 0;
    float worst_x = 0;
    for (long k = 1; k < (1L << 16); k += (k < 512 ? 1 : 37)) {
        mpfr_mul_si(v, pi, k, MPFR_RNDN);
        mpfr_div_2ui(v, v, 1, MPFR_RNDN);
        float x0 = mpfr_get_flt(v, MPFR_RNDN);
        float x = nextafterf(nextafterf(x0, 0.0f), 0.0f);
        for (int j = 0; j < 5; j++, x = nextafterf(x, INFINITY))
            for (int f = 4; f <= 5; f++) {
                double e = measure_mp(&k_fns[f], x, k_fns[f].f(x), xm, v);
                if (e > worst) {
                    worst = e;
                    worst_x = x;
                }
            }
    }
    ck_assert_msg(worst <= k_fns[4].bound, "sin/cos near k pi/2: %g ulp at %a", worst,
                  (double)worst_x);
    mpfr_clears(xm, v, pi, (mpfr_ptr)0);
    /* odd/even symmetry */
    uint64_t rng = 42;
    for (int i = 0; i < 10000; i++) {
        float x = fr_test_uniform(&rng, -20.0f, 20.0f);
        ck_assert(fr_tanhf(-x) == -fr_tanhf(x));
        ck_assert(fr_sinf(-x) == -fr_sinf(x));
        ck_assert(fr_cosf(-x) == fr_cosf(x));
    }
}
END_TEST

Suite *suite_detmath(void)
{
    Suite *s = suite_create("detmath");
    TCase *tc = tcase_create("detmath");
    /* the dense sweep runs for minutes; the default one in about a second per function */
    tcase_set_timeout(tc, dense_mode() ? 3600.0 : 120.0);
    tcase_add_test(tc, test_ulp_measure_known);
    tcase_add_test(tc, test_ulp_measure_perturbed);
    tcase_add_test(tc, test_sweep_detects_errors);
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_exp_thresholds);
    tcase_add_test(tc, test_trig_multiples);
    tcase_add_loop_test(tc, test_accuracy, 0, N_FNS);
    suite_add_tcase(s, tc);
    return s;
}
