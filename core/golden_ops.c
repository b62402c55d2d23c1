/* Golden cases of the op table (flowrl/ops.h): one per entry, per activation, per binary
 * and unary op, and the four GEMM transposes plus an accumulating GEMM (and the eps x0
 * head's two entries; the older model-section entries have none yet). Shapes are tiny
 * but longer than one 8-lane register with a tail (N = 19, n = 37, D = 29), so a SIMD
 * kernel's main loop and remainder are both exercised. Each entry runs in the backend's
 * memory (core/golden_internal.h "backend memory"); an output updated in place (C of an
 * accumulating GEMM, y of bias_add and axpby, AdamW's p, m, v) starts as its input's copy.
 * The activations' cases (forward, backward, MeanFlow's JVP) are in core/golden_act.c, the eps x0
 * head's in core/golden_eps_head.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/adamw.h"
#include "flowrl/model.h"

#define SLOT(entry) ((long)offsetof(fr_ops, entry))

static const char *const k_bin_names[FR_BIN_COUNT] = {"add", "sub", "mul", "div"};
static const char *const k_un_names[FR_UN_COUNT] = {"neg", "square", "sqrt", "exp", "log", "abs"};

/* ---- gemm: arg = ta | tb << 1 | accumulate << 2 ------------------------------------------- */

enum { GM = 6, GN = 19, GK = 13 };

static fr_status gemm_in(const fr_golden_case *c, fr_golden_in *g)
{
    int ta = c->arg & 1, tb = (c->arg >> 1) & 1, acc = (c->arg >> 2) & 1;
    int64_t sa[2] = {ta ? GK : GM, ta ? GM : GK}, sb[2] = {tb ? GN : GK, tb ? GK : GN};
    FR_TRY(fr_gi_param(g, "ta", ta));
    FR_TRY(fr_gi_param(g, "tb", tb));
    FR_TRY(fr_gi_param(g, "accumulate", acc));
    FR_TRY(fr_gi_uniform(g, "A", 2, sa, -1.0f, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "B", 2, sb, -1.0f, 1.0f, NULL));
    if (acc) FR_TRY(fr_gi_uniform(g, "C0", 2, (int64_t[]){GM, GN}, -1.0f, 1.0f, NULL));
    return FR_OK;
}

static fr_status gemm_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    (void)c;
    long long ta, tb, acc;
    FR_TRY(fr_go_param(in, "ta", 0, 1, &ta));
    FR_TRY(fr_go_param(in, "tb", 0, 1, &tb));
    FR_TRY(fr_go_param(in, "accumulate", 0, 1, &acc));
    int64_t sa[2], sb[2];
    const float *A, *B, *C0 = NULL;
    FR_TRY(fr_gd_f32(d, in, "A", 2, sa, &A));
    FR_TRY(fr_gd_f32(d, in, "B", 2, sb, &B));
    int64_t M = ta ? sa[1] : sa[0], K = ta ? sa[0] : sa[1];
    int64_t N = tb ? sb[0] : sb[1], KB = tb ? sb[1] : sb[0];
    if (K != KB) return fr_fail(FR_ERR_FORMAT, "golden gemm: in.A and in.B disagree on K");
    int64_t sc[2] = {M, N};
    if (acc) FR_TRY(fr_go_exact(in, "C0", FR_F32, 2, sc, (const void **)&C0));
    float *C;
    FR_TRY(fr_gd_out_f32(d, out, "C", 2, sc, C0, &C));
    d->be->ops->gemm((int)ta, (int)tb, M, N, K, A, B, C, (int)acc);
    return FR_OK;
}

/* ---- bias -------------------------------------------------------------------------------- */

static fr_status bias_add_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_uniform(g, "y0", 2, (int64_t[]){5, 19}, -2.0f, 2.0f, NULL));
    return fr_gi_uniform(g, "b", 1, (int64_t[]){19}, -1.0f, 1.0f, NULL);
}

static fr_status bias_add_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                              fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    const float *y0, *b;
    FR_TRY(fr_go_f32(in, "y0", 2, s, &y0));
    FR_TRY(fr_gd_exact(d, in, "b", FR_F32, 1, &s[1], (const void **)&b));
    float *y;
    FR_TRY(fr_gd_out_f32(d, out, "y", 2, s, y0, &y));
    d->be->ops->bias_add(s[0], s[1], y, b);
    return FR_OK;
}

static fr_status bias_grad_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    return fr_gi_uniform(g, "dy", 2, (int64_t[]){7, 19}, -1.0f, 1.0f, NULL);
}

static fr_status bias_grad_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                               fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    const float *dy;
    FR_TRY(fr_gd_f32(d, in, "dy", 2, s, &dy));
    float *db;
    FR_TRY(fr_gd_out_f32(d, out, "db", 1, &s[1], NULL, &db));
    d->be->ops->bias_grad(s[0], s[1], dy, db, 0);
    return FR_OK;
}

/* ---- layer norm ---------------------------------------------------------------------------- */

enum { LM = 5, LD = 29 };

static fr_status ln_common_in(fr_golden_in *g, float **x, float **gamma)
{
    FR_TRY(fr_gi_normal(g, "x", 2, (int64_t[]){LM, LD}, 2.0f, x));
    FR_TRY(fr_gi_uniform(g, "gamma", 1, (int64_t[]){LD}, 0.5f, 1.5f, gamma));
    return fr_gi_scalar(g, "eps", 1e-5f);
}

static fr_status ln_fwd_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(ln_common_in(g, NULL, NULL));
    return fr_gi_uniform(g, "beta", 1, (int64_t[]){LD}, -0.5f, 0.5f, NULL);
}

static fr_status ln_fwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                            fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    const float *x, *gamma, *beta;
    float eps, *y, *mean, *rstd;
    FR_TRY(fr_gd_f32(d, in, "x", 2, s, &x));
    FR_TRY(fr_gd_exact(d, in, "gamma", FR_F32, 1, &s[1], (const void **)&gamma));
    FR_TRY(fr_gd_exact(d, in, "beta", FR_F32, 1, &s[1], (const void **)&beta));
    FR_TRY(fr_go_scalar(in, "eps", &eps));
    FR_TRY(fr_gd_out_f32(d, out, "y", 2, s, NULL, &y));
    FR_TRY(fr_gd_out_f32(d, out, "mean", 1, s, NULL, &mean));
    FR_TRY(fr_gd_out_f32(d, out, "rstd", 1, s, NULL, &rstd));
    d->be->ops->layernorm_fwd(s[0], s[1], x, gamma, beta, eps, y, mean, rstd);
    return FR_OK;
}

/* The backward's saved statistics are inputs, formed by the ref forward at generation. */
static fr_status ln_bwd_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *x, *gamma, mean[LM], rstd[LM], y[LM * LD];
    FR_TRY(ln_common_in(g, &x, &gamma));
    fr_golden_ref_ops()->layernorm_fwd(LM, LD, x, gamma, NULL, 1e-5f, y, mean, rstd);
    const char *how = "the ref layernorm_fwd of in.x, in.gamma, no beta, eps in.eps";
    FR_TRY(fr_gi_tensor(g, "mean", FR_F32, 1, (int64_t[]){LM}, mean, how));
    FR_TRY(fr_gi_tensor(g, "rstd", FR_F32, 1, (int64_t[]){LM}, rstd, how));
    return fr_gi_uniform(g, "dy", 2, (int64_t[]){LM, LD}, -1.0f, 1.0f, NULL);
}

static fr_status ln_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                            fr_st_file *out)
{
    (void)c;
    int64_t s[2];
    const float *x, *gamma, *mean, *rstd, *dy;
    float *dx, *dgamma, *dbeta;
    FR_TRY(fr_gd_f32(d, in, "x", 2, s, &x));
    FR_TRY(fr_gd_exact(d, in, "gamma", FR_F32, 1, &s[1], (const void **)&gamma));
    FR_TRY(fr_gd_exact(d, in, "mean", FR_F32, 1, &s[0], (const void **)&mean));
    FR_TRY(fr_gd_exact(d, in, "rstd", FR_F32, 1, &s[0], (const void **)&rstd));
    FR_TRY(fr_gd_exact(d, in, "dy", FR_F32, 2, s, (const void **)&dy));
    FR_TRY(fr_gd_out_f32(d, out, "dx", 2, s, NULL, &dx));
    FR_TRY(fr_gd_out_f32(d, out, "dgamma", 1, &s[1], NULL, &dgamma));
    FR_TRY(fr_gd_out_f32(d, out, "dbeta", 1, &s[1], NULL, &dbeta));
    d->be->ops->layernorm_bwd(s[0], s[1], x, gamma, mean, rstd, dy, dx, dgamma, dbeta, 0);
    return FR_OK;
}

/* ---- elementwise --------------------------------------------------------------------------- */

enum { EN = 37 };

static fr_status binary_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(fr_gi_param_str(g, "op", k_bin_names[c->arg]));
    FR_TRY(fr_gi_uniform(g, "a", 1, (int64_t[]){EN}, -2.0f, 2.0f, NULL));
    /* a divisor bounded away from 0 */
    return fr_gi_uniform(g, "b", 1, (int64_t[]){EN}, c->arg == FR_BIN_DIV ? 0.25f : -2.0f, 2.0f,
                         NULL);
}

static fr_status binary_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                            fr_st_file *out)
{
    int64_t n;
    const float *a, *b;
    float *y;
    FR_TRY(fr_gd_f32(d, in, "a", 1, &n, &a));
    FR_TRY(fr_gd_exact(d, in, "b", FR_F32, 1, &n, (const void **)&b));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, NULL, &y));
    d->be->ops->binary((fr_binop)c->arg, n, a, b, y);
    return FR_OK;
}

static fr_status unary_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(fr_gi_param_str(g, "op", k_un_names[c->arg]));
    /* sqrt and log on positive inputs; exp over the range a softplus/sigmoid sees */
    float lo = c->arg == FR_UN_SQRT || c->arg == FR_UN_LOG ? 0.01f : -8.0f;
    return fr_gi_uniform(g, "x", 1, (int64_t[]){EN}, lo, 8.0f, NULL);
}

static fr_status unary_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    int64_t n;
    const float *x;
    float *y;
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, NULL, &y));
    d->be->ops->unary((fr_unop)c->arg, n, x, y);
    return FR_OK;
}

static fr_status axpby_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_scalar(g, "alpha", -0.375f));
    FR_TRY(fr_gi_scalar(g, "beta", 0.9f));
    FR_TRY(fr_gi_uniform(g, "x", 1, (int64_t[]){EN}, -2.0f, 2.0f, NULL));
    return fr_gi_uniform(g, "y0", 1, (int64_t[]){EN}, -2.0f, 2.0f, NULL);
}

static fr_status axpby_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    (void)c;
    int64_t n;
    float alpha, beta, *y;
    const float *x, *y0;
    FR_TRY(fr_go_scalar(in, "alpha", &alpha));
    FR_TRY(fr_go_scalar(in, "beta", &beta));
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_go_exact(in, "y0", FR_F32, 1, &n, (const void **)&y0));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, y0, &y));
    d->be->ops->axpby(n, alpha, x, beta, y);
    return FR_OK;
}

static fr_status scale_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_scalar(g, "alpha", 0.7f));
    return fr_gi_uniform(g, "x", 1, (int64_t[]){EN}, -2.0f, 2.0f, NULL);
}

static fr_status scale_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    (void)c;
    int64_t n;
    float alpha, *y;
    const float *x;
    FR_TRY(fr_go_scalar(in, "alpha", &alpha));
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, NULL, &y));
    d->be->ops->scale(n, alpha, x, y);
    return FR_OK;
}

static fr_status fill_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_param(g, "n", EN));
    return fr_gi_scalar(g, "value", -1.25f);
}

static fr_status fill_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    (void)c;
    long long n;
    float v, *y;
    FR_TRY(fr_go_param(in, "n", 1, 1 << 20, &n));
    FR_TRY(fr_go_scalar(in, "value", &v));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, (int64_t[]){n}, NULL, &y));
    d->be->ops->fill(n, v, y);
    return FR_OK;
}

static fr_status copy_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    return fr_gi_normal(g, "src", 1, (int64_t[]){EN}, 1.0f, NULL);
}

static fr_status copy_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    (void)c;
    int64_t n;
    const float *src;
    float *dst;
    FR_TRY(fr_gd_f32(d, in, "src", 1, &n, &src));
    FR_TRY(fr_gd_out_f32(d, out, "dst", 1, &n, NULL, &dst));
    d->be->ops->copy(n, src, dst);
    return FR_OK;
}

/* ---- reductions ---------------------------------------------------------------------------- */

static fr_status rows_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    return fr_gi_uniform(g, "x", 2, (int64_t[]){5, 29}, -1.0f, 1.0f, NULL);
}

/* arg 0: row_sum, 1: row_mean */
static fr_status rows_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                          fr_st_file *out)
{
    int64_t s[2];
    const float *x;
    float *y;
    FR_TRY(fr_gd_f32(d, in, "x", 2, s, &x));
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, s, NULL, &y));
    (c->arg ? d->be->ops->row_mean : d->be->ops->row_sum)(s[0], s[1], x, y);
    return FR_OK;
}

static fr_status sum_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    /* 101 = 12 full rounds of the 8 lanes and a tail of 5 */
    return fr_gi_uniform(g, "x", 1, (int64_t[]){101}, -1.0f, 1.0f, NULL);
}

static fr_status sum_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                         fr_st_file *out)
{
    (void)c;
    int64_t n;
    const float *x;
    float *sum;
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_gd_out_f32(d, out, "sum", 0, NULL, NULL, &sum));
    d->be->ops->sum(n, x, sum);
    return FR_OK;
}

static fr_status gnorm_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_uniform(g, "x0", 1, (int64_t[]){17}, -1.0f, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "x1", 2, (int64_t[]){5, 7}, -0.1f, 0.1f, NULL));
    return fr_gi_uniform(g, "x2", 1, (int64_t[]){3}, -3.0f, 3.0f, NULL);
}

static fr_status gnorm_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    (void)c;
    int64_t s0, s1[2], s2;
    const float *xs[3]; /* a host array of backend pointers */
    float *norm;
    FR_TRY(fr_gd_f32(d, in, "x0", 1, &s0, &xs[0]));
    FR_TRY(fr_gd_f32(d, in, "x1", 2, s1, &xs[1]));
    FR_TRY(fr_gd_f32(d, in, "x2", 1, &s2, &xs[2]));
    int64_t ns[3] = {s0, s1[0] * s1[1], s2};
    FR_TRY(fr_gd_out_f32(d, out, "norm", 0, NULL, NULL, &norm));
    d->be->ops->global_norm(3, xs, ns, norm);
    return FR_OK;
}

/* ---- AdamW --------------------------------------------------------------------------------- */

static fr_status adamw_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t n[1] = {EN};
    /* F64, as torch's Python floats: the step's float scalars derive from these doubles */
    FR_TRY(fr_gi_scalar_f64(g, "lr", 1e-3));
    FR_TRY(fr_gi_scalar_f64(g, "beta1", 0.9));
    FR_TRY(fr_gi_scalar_f64(g, "beta2", 0.999));
    FR_TRY(fr_gi_scalar_f64(g, "eps", 1e-8));
    FR_TRY(fr_gi_scalar_f64(g, "weight_decay", 1e-2));
    FR_TRY(fr_gi_param(g, "step", 7));
    FR_TRY(fr_gi_normal(g, "p", 1, n, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "g", 1, n, 0.1f, NULL));
    FR_TRY(fr_gi_normal(g, "m", 1, n, 0.05f, NULL));
    return fr_gi_uniform(g, "v", 1, n, 0.0f, 0.01f, NULL);
}

static fr_status adamw_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in,
                           fr_st_file *out)
{
    (void)c;
    double lr, b1, b2, eps, wd;
    float *p, *m, *v;
    long long step;
    int64_t n;
    const float *p0, *g, *m0, *v0;
    FR_TRY(fr_go_scalar_f64(in, "lr", &lr));
    FR_TRY(fr_go_scalar_f64(in, "beta1", &b1));
    FR_TRY(fr_go_scalar_f64(in, "beta2", &b2));
    FR_TRY(fr_go_scalar_f64(in, "eps", &eps));
    FR_TRY(fr_go_scalar_f64(in, "weight_decay", &wd));
    FR_TRY(fr_go_param(in, "step", 1, 1LL << 40, &step));
    FR_TRY(fr_go_f32(in, "p", 1, &n, &p0));
    FR_TRY(fr_gd_exact(d, in, "g", FR_F32, 1, &n, (const void **)&g));
    FR_TRY(fr_go_exact(in, "m", FR_F32, 1, &n, (const void **)&m0));
    FR_TRY(fr_go_exact(in, "v", FR_F32, 1, &n, (const void **)&v0));
    fr_adamw_hp hp = fr_adamw_prepare(lr, b1, b2, eps, wd, step);
    FR_TRY(fr_gd_out_f32(d, out, "p", 1, &n, p0, &p));
    FR_TRY(fr_gd_out_f32(d, out, "m", 1, &n, m0, &m));
    FR_TRY(fr_gd_out_f32(d, out, "v", 1, &n, v0, &v));
    d->be->ops->adamw(n, p, g, m, v, &hp);
    /* the step scalars of fr_adamw_prepare, so an implementation can check those first */
    FR_TRY(fr_go_out_scalar(out, "decay", hp.decay));
    FR_TRY(fr_go_out_scalar(out, "one_minus_beta1", hp.one_minus_beta1));
    FR_TRY(fr_go_out_scalar(out, "one_minus_beta2", hp.one_minus_beta2));
    FR_TRY(fr_go_out_scalar(out, "step_size", hp.step_size));
    return fr_go_out_scalar(out, "bc2_sqrt", hp.bc2_sqrt);
}

/* ---- the table ------------------------------------------------------------------------------
 * --fast tolerances (|d| <= abs + rel·|want|), from the bounds tests/test_fast.c proves for
 * the vendor kernels (docs/determinism.md "--fast: measured tolerance"), evaluated on
 * these inputs (u = 2^-24):
 *   T_EXACT  one correctly rounded op per element, which every kernel keeps: 0
 *   T_1ULP   one rounding that may move (a reciprocal-multiply, an FMA contraction): 2u rel
 *   T_DOT    GEMM: 2·gamma_{K+1}·(|C0| + Σ|a||b|) <= 2·14u·(1 + 13) for K = 13, |.| <= 1
 *   T_ACT    oneDNN GELU/SiLU: 16u(|x| + |y|) forward, 16u|dy|(1 + |x|) backward, with
 *            |x| <= 6, |dy| <= 1: abs 16·7u, rel 16u
 *   T_LN     layer norm: 4·gamma_D·(|γ|(|x̂| + c) + |β|) ~ 4.5e-5 for D = 29, |γ| <= 1.5,
 *            |x̂| <= 4, |β| <= 0.5; the backward's bound has the same scale: 1e-4, 8u rel
 *   T_TRANS  exp/log/sqrt-based ops no vendor kernel replaces today; a future one with a
 *            few ulp of error: 16u rel (abs 1e-7 where a result crosses 0)
 *   T_RED    reordered sums of <= 101 terms of magnitude <= 1: gamma_101·Σ|x| ~ 6e-6
 *   T_ADAMW  p − step_size·m̂/(√v̂ + eps) with a fast rsqrt/div: 1e-6 of |p| ~ 1 */
#define U24 5.9604645e-8f
#define T_EXACT {0.0f, 0.0f}
#define T_1ULP {0.0f, 2.0f * U24}
#define T_DOT {2.0f * 14.0f * 14.0f * U24, 8.0f * U24}
#define T_ACT {16.0f * 7.0f * U24, 16.0f * U24}
#define T_LN {1e-4f, 8.0f * U24}
#define T_TRANS {1e-7f, 16.0f * U24}
#define T_RED {1e-5f, 16.0f * U24}
#define T_ADAMW {1e-6f, 1e-6f}

#define GEMM(nm, a, what)                                                                    \
    {"op.gemm_" nm, what, SLOT(gemm), a, T_DOT, gemm_in, gemm_run}
#define ACT(id, nm)                                                                          \
    {"op.act_fwd_" nm, "act_fwd " nm " over 37 elements", SLOT(act_fwd), id, T_ACT,          \
     fr_golden_act_fwd_in, fr_golden_act_fwd_run},                                           \
    {"op.act_bwd_" nm, "act_bwd " nm " over 37 elements", SLOT(act_bwd), id, T_ACT,          \
     fr_golden_act_bwd_in, fr_golden_act_bwd_run}
#define ACT_JVP(id, nm)                                                                      \
    {"op.act_jvp_" nm, "act_jvp " nm " over 37 elements: y and its tangent", SLOT(act_jvp), id, \
     T_ACT, fr_golden_act_jvp_in, fr_golden_act_jvp_run}
#define BIN(id, nm, tol)                                                                     \
    {"op.binary_" nm, "binary " nm " over 37 elements", SLOT(binary), id, tol, binary_in,   \
     binary_run}
#define UN(id, nm, tol)                                                                      \
    {"op.unary_" nm, "unary " nm " over 37 elements", SLOT(unary), id, tol, unary_in,       \
     unary_run}

const fr_golden_case fr_golden_cases_ops[] = {
    GEMM("nn", 0, "C (6,19) = A (6,13) B (13,19)"),
    GEMM("nt", 2, "C (6,19) = A (6,13) B^T, B stored (19,13): a linear layer's forward"),
    GEMM("tn", 1, "C (6,19) = A^T B, A stored (13,6)"),
    GEMM("tt", 3, "C (6,19) = A^T B^T"),
    GEMM("tn_acc", 5, "C (6,19) = C0 + A^T B (accumulate = 1): a weight gradient"),
    {"op.bias_add", "y (5,19) = y0 + b per row", SLOT(bias_add), 0, T_EXACT, bias_add_in,
     bias_add_run},
    /* a column sum of 7 rows in row order: a reordering moves it by gamma_7 */
    {"op.bias_grad", "db (19,) = column sums of dy (7,19)", SLOT(bias_grad), 0, T_RED,
     bias_grad_in, bias_grad_run},
    ACT(FR_ACT_IDENTITY, "identity"),
    ACT(FR_ACT_SILU, "silu"),
    ACT(FR_ACT_GELU_TANH, "gelu_tanh"),
    ACT(FR_ACT_TANH, "tanh"),
    ACT(FR_ACT_SIGMOID, "sigmoid"),
    ACT(FR_ACT_RELU, "relu"),
    ACT_JVP(FR_ACT_SILU, "silu"),
    ACT_JVP(FR_ACT_GELU_TANH, "gelu_tanh"),
    ACT_JVP(FR_ACT_RELU, "relu"),
    {"op.layernorm_fwd", "layer norm over D = 29 of x (5,29), gamma, beta, eps 1e-5",
     SLOT(layernorm_fwd), 0, T_LN, ln_fwd_in, ln_fwd_run},
    {"op.layernorm_bwd", "layer norm backward: dx, dgamma, dbeta", SLOT(layernorm_bwd), 0,
     T_LN, ln_bwd_in, ln_bwd_run},
    BIN(FR_BIN_ADD, "add", T_EXACT),
    BIN(FR_BIN_SUB, "sub", T_EXACT),
    BIN(FR_BIN_MUL, "mul", T_EXACT),
    /* a fast reciprocal-then-multiply rounds twice */
    BIN(FR_BIN_DIV, "div", T_1ULP),
    UN(FR_UN_NEG, "neg", T_EXACT),
    UN(FR_UN_SQUARE, "square", T_EXACT),
    UN(FR_UN_SQRT, "sqrt", T_1ULP),
    UN(FR_UN_EXP, "exp", T_TRANS),
    UN(FR_UN_LOG, "log", T_TRANS),
    UN(FR_UN_ABS, "abs", T_EXACT),
    {"op.axpby", "y = fmaf(alpha, x, beta·y0) over 37 elements", SLOT(axpby), 0, T_1ULP,
     axpby_in, axpby_run},
    {"op.scale", "y = alpha·x over 37 elements", SLOT(scale), 0, T_EXACT, scale_in, scale_run},
    {"op.fill", "y = value, 37 elements", SLOT(fill), 0, T_EXACT, fill_in, fill_run},
    {"op.copy", "dst = src, 37 elements", SLOT(copy), 0, T_EXACT, copy_in, copy_run},
    {"op.row_sum", "y (5,) = canonical sums of the rows of x (5,29)", SLOT(row_sum), 0, T_RED,
     rows_in, rows_run},
    {"op.row_mean", "y (5,) = canonical means of the rows of x (5,29)", SLOT(row_mean), 1,
     T_RED, rows_in, rows_run},
    {"op.sum", "canonical long sum of 101 elements", SLOT(sum), 0, T_RED, sum_in, sum_run},
    {"op.global_norm", "sqrt of the canonical sums of squares of 3 tensors", SLOT(global_norm),
     0, T_RED, gnorm_in, gnorm_run},
    {"op.adamw", "one AdamW step (lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 1e-2, step 7) of 37 "
                 "parameters", SLOT(adamw), 0, T_ADAMW, adamw_in, adamw_run},
    /* two roundings (a·x̂0, the difference) then a division: a fused or reciprocal form moves
     * each by an ulp or two of values up to ~60 (|x| 3, s 0.05) */
    {"op.eps_head_fwd", "eps x0 head: out (5,7) = (x − a·xo)/s, (a, s) of the DDPM linear table (2,1000) at "
                        "t = 0, 3, 500.5, 999, 1200", SLOT(eps_head_fwd), 0, T_1ULP, fr_golden_eps_fwd_in, fr_golden_eps_fwd_run},
    {"op.eps_head_bwd", "eps x0 head backward: dxo = −(dout·a)/s, dx = dout/s (5,7)", SLOT(eps_head_bwd), 0,
     T_1ULP, fr_golden_eps_bwd_in, fr_golden_eps_bwd_run},
};
const size_t fr_golden_n_ops = sizeof fr_golden_cases_ops / sizeof fr_golden_cases_ops[0];
