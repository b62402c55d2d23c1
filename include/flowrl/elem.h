/* The per-element functions of the op table (docs/design.md §1.2): one formula, compiled by
 * the C compiler for `ref` and `opt` and by nvcc for `cuda`. Every backend calls these;
 * none re-derives them. The build has contraction off (-ffp-contract=off, nvcc
 * --fmad=false, docs/algorithms/numerics.md §2.1), so every fmaf below is deliberate and every
 * a*b + c that is not written as fmaf is two roundings. A SIMD port must use an FMA
 * instruction exactly where fmaf appears and nowhere else.
 *
 * Transcendentals come only from flowrl/detmath.h (docs/algorithms/numerics.md §2.2). */
#ifndef FLOWRL_ELEM_H
#define FLOWRL_ELEM_H

#include <math.h>

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"
#include "flowrl/ops.h"
#include "flowrl/reduce.h"

/* ---- activations ------------------------------------------------------------------- */

/* GELU-tanh constants, as PyTorch's approximate='tanh' GELU (aten/src/ATen/native/cpu/
 * GeluKernel.cpp: kBeta = M_SQRT2 * M_2_SQRTPI * 0.5, kKappa = 0.044715), rounded to
 * float once. FR_GELU_3KAPPA is 3 * 0.044715 = 0.134145 rounded once (not 3.0f * kappa,
 * which would round twice). */
#define FR_GELU_BETA 0.7978845608028654f /* sqrt(2/pi) */
#define FR_GELU_KAPPA 0.044715f
#define FR_GELU_3KAPPA 0.134145f

/* ReLU: x for x > 0, +0 for x <= 0 (so -0 -> +0); NaN propagates (PyTorch's relu does
 * too). */
FR_HOSTDEV static inline float fr_relu_elem(float x)
{
    return x > 0.0f ? x : (x == x ? 0.0f : x);
}

/* SiLU: x * s, s = sigmoid(x). One rounding for s (fr_sigmoidf), one for the product. */
FR_HOSTDEV static inline float fr_silu_elem(float x) { return x * fr_sigmoidf(x); }

/* GELU-tanh: y = (0.5 x) (1 + tanh(u)), u = beta (x + kappa x^3).
 *   x3 = (x*x)*x                  two plain products
 *   u  = beta * fmaf(kappa, x3, x)  the inner sum x + kappa x^3 as one fmaf
 *   y  = (0.5f*x) * (1 + t)         0.5f*x is exact (barring underflow) */
FR_HOSTDEV static inline float fr_gelu_tanh_inner(float x)
{
    float x3 = (x * x) * x;
    return FR_GELU_BETA * fmaf(FR_GELU_KAPPA, x3, x);
}

FR_HOSTDEV static inline float fr_gelu_tanh_elem(float x)
{
    float t = fr_tanhf(fr_gelu_tanh_inner(x));
    return (0.5f * x) * (1.0f + t);
}

FR_HOSTDEV static inline float fr_act_elem(fr_act act, float x)
{
    switch (act) {
    case FR_ACT_SILU: return fr_silu_elem(x);
    case FR_ACT_GELU_TANH: return fr_gelu_tanh_elem(x);
    case FR_ACT_TANH: return fr_tanhf(x);
    case FR_ACT_SIGMOID: return fr_sigmoidf(x);
    case FR_ACT_RELU: return fr_relu_elem(x);
    case FR_ACT_IDENTITY:
    default: return x;
    }
}

/* The backward element functions return dy * act'(x), recomputing the forward's
 * intermediate values from x (bit-identical to the forward's, same expressions).
 *
 * SiLU'(x) = s (1 + x (1 - s)), s = sigmoid(x)  (d/dx x s = s + x s (1 - s)).
 *   d  = s * fmaf(x, 1 - s, 1)     1 + x(1-s) as one fmaf; 1 - s is a plain subtract
 *   dx = dy * d */
FR_HOSTDEV static inline float fr_silu_bwd_s_elem(float x, float s, float dy)
{
    return dy * (s * fmaf(x, 1.0f - s, 1.0f));
}

FR_HOSTDEV static inline float fr_silu_bwd_elem(float x, float dy) { return fr_silu_bwd_s_elem(x, fr_sigmoidf(x), dy); }

/* GELU-tanh'(x) for y = h (1 + t), h = 0.5 x, t = tanh(u), u = beta (x + kappa x^3):
 *   y' = 0.5 (1 + t) + h (1 - t^2) beta (1 + 3 kappa x^2)
 * (PyTorch's GeluBackward tanh branch: left_derivative + right_derivative.)
 *   tp = fmaf(-t, t, 1)                  1 - t^2 in one rounding (no cancellation as |t|->1)
 *   up = beta * fmaf(3kappa, x*x, 1)     u'(x); x*x is a plain product
 *   d  = fmaf(h * tp, up, 0.5f * (1 + t))  h*tp plain, then one fmaf
 *   dx = dy * d */
FR_HOSTDEV static inline float fr_gelu_tanh_bwd_t_elem(float x, float t, float dy)
{
    float h = 0.5f * x;
    float tp = fmaf(-t, t, 1.0f);
    float up = FR_GELU_BETA * fmaf(FR_GELU_3KAPPA, x * x, 1.0f);
    float d = fmaf(h * tp, up, 0.5f * (1.0f + t));
    return dy * d;
}

FR_HOSTDEV static inline float fr_gelu_tanh_bwd_elem(float x, float dy)
{
    return fr_gelu_tanh_bwd_t_elem(x, fr_tanhf(fr_gelu_tanh_inner(x)), dy);
}

/* tanh'(x) = 1 - t^2:  dx = dy * fmaf(-t, t, 1). */
FR_HOSTDEV static inline float fr_tanh_bwd_t_elem(float t, float dy) { return dy * fmaf(-t, t, 1.0f); }

FR_HOSTDEV static inline float fr_tanh_bwd_elem(float x, float dy) { return fr_tanh_bwd_t_elem(fr_tanhf(x), dy); }

/* sigmoid'(x) = s (1 - s):  dx = (dy * (1 - s)) * s, PyTorch's sigmoid_backward order
 * (grad * (1 - y) * y), no fmaf. */
FR_HOSTDEV static inline float fr_sigmoid_bwd_s_elem(float s, float dy) { return (dy * (1.0f - s)) * s; }

FR_HOSTDEV static inline float fr_sigmoid_bwd_elem(float x, float dy) { return fr_sigmoid_bwd_s_elem(fr_sigmoidf(x), dy); }

/* ReLU'(x) = 1 for x > 0, else 0 (also at 0): dx = x > 0 ? dy : 0. A select, not dy * 0,
 * so an inf/NaN dy where x <= 0 gives 0 (PyTorch's threshold_backward); a NaN x gives 0. */
FR_HOSTDEV static inline float fr_relu_bwd_elem(float x, float dy)
{
    return x > 0.0f ? dy : 0.0f;
}

/* dy * act'(x). Identity: dy. */
FR_HOSTDEV static inline float fr_act_bwd_elem(fr_act act, float x, float dy)
{
    switch (act) {
    case FR_ACT_SILU: return fr_silu_bwd_elem(x, dy);
    case FR_ACT_GELU_TANH: return fr_gelu_tanh_bwd_elem(x, dy);
    case FR_ACT_TANH: return fr_tanh_bwd_elem(x, dy);
    case FR_ACT_SIGMOID: return fr_sigmoid_bwd_elem(x, dy);
    case FR_ACT_RELU: return fr_relu_bwd_elem(x, dy);
    case FR_ACT_IDENTITY:
    default: return dy;
    }
}

/* Forward mode (the JVP of MeanFlow, docs/algorithms/meanflow.md §2): ẏ = act'(x)·ẋ. An
 * element-wise map has a diagonal Jacobian, so the tangent is the cotangent's product with the
 * same rounding: fr_act_bwd_elem(act, x, ẋ), bit for bit. */
/* The backward from the forward's saved transcendental (the act_fwd_save / act_bwd_saved
 * entries, flowrl/ops.h): s = fr_act_saved_elem(act, x) is the value the backward above
 * recomputes (GELU-tanh: tanh(u); tanh: tanh(x); SiLU, sigmoid: sigmoid(x); ReLU, identity:
 * x, unused), and fr_act_bwd_saved_elem(act, x, s, dy) is fr_act_bwd_elem(act, x, dy) with
 * that value given: the same expressions, so the same bits. */
FR_HOSTDEV static inline float fr_act_saved_elem(fr_act act, float x)
{
    switch (act) {
    case FR_ACT_SILU:
    case FR_ACT_SIGMOID: return fr_sigmoidf(x);
    case FR_ACT_GELU_TANH: return fr_tanhf(fr_gelu_tanh_inner(x));
    case FR_ACT_TANH: return fr_tanhf(x);
    case FR_ACT_RELU:
    case FR_ACT_IDENTITY:
    default: return x;
    }
}

/* act(x) from its saved value s (the forward's own expressions after the transcendental). */
FR_HOSTDEV static inline float fr_act_from_saved_elem(fr_act act, float x, float s)
{
    switch (act) {
    case FR_ACT_SILU: return x * s;
    case FR_ACT_GELU_TANH: return (0.5f * x) * (1.0f + s);
    case FR_ACT_TANH:
    case FR_ACT_SIGMOID: return s;
    case FR_ACT_RELU:
    case FR_ACT_IDENTITY:
    default: return fr_act_elem(act, x);
    }
}

FR_HOSTDEV static inline float fr_act_bwd_saved_elem(fr_act act, float x, float s, float dy)
{
    switch (act) {
    case FR_ACT_SILU: return fr_silu_bwd_s_elem(x, s, dy);
    case FR_ACT_GELU_TANH: return fr_gelu_tanh_bwd_t_elem(x, s, dy);
    case FR_ACT_TANH: return fr_tanh_bwd_t_elem(s, dy);
    case FR_ACT_SIGMOID: return fr_sigmoid_bwd_s_elem(s, dy);
    case FR_ACT_RELU:
    case FR_ACT_IDENTITY:
    default: return fr_act_bwd_elem(act, x, dy);
    }
}

FR_HOSTDEV static inline float fr_act_jvp_elem(fr_act act, float x, float xdot)
{
    return fr_act_bwd_elem(act, x, xdot);
}

/* ---- layer norm ---------------------------------------------------------------------- */
/* Row statistics (computed by the op, in the canonical orders of flowrl/reduce.h):
 *   mean = fr_mean_canonical(row)
 *   var  = fr_sumsq_centered_canonical(row, mean) / (float)D
 *   rstd = fr_layernorm_rstd(var, eps) */

/* rstd = 1 / sqrtf(var + eps): three correctly rounded ops (add, sqrt, divide). */
FR_HOSTDEV static inline float fr_layernorm_rstd(float var, float eps)
{
    return 1.0f / sqrtf(var + eps);
}

/* xhat = (x - mean) * rstd: subtract, then multiply. */
FR_HOSTDEV static inline float fr_layernorm_xhat(float x, float mean, float rstd)
{
    return (x - mean) * rstd;
}

/* y = fmaf(xhat, gamma, beta). Without affine parameters the op passes gamma = 1,
 * beta = 0 (so y = xhat, except that -0 becomes +0). */
FR_HOSTDEV static inline float fr_layernorm_y(float xhat, float gamma, float beta)
{
    return fmaf(xhat, gamma, beta);
}

/* Backward (PyTorch's layer-norm gradient, rearranged as in its docs):
 *   g    = dy * gamma                             (g = dy without gamma)
 *   mg   = canonical long sum of g / D             (fr_sum_canonical order)
 *   mgx  = canonical long dot of (g, xhat) / D     (fr_dot_canonical order: lane = fmaf)
 *   dx   = rstd * (g - mg - xhat * mgx)
 *        = rstd * fmaf(-xhat, mgx, g - mg)          (g - mg plain, then one fmaf)
 *   dgamma[j] = fmaf(dy, xhat, dgamma[j]) over rows i in order (one fmaf chain, the
 *               dot/GEMM order of reduce.h along the batch)
 *   dbeta[j]  = dbeta[j] + dy over rows in order (the batch-reduction order). */
FR_HOSTDEV static inline float fr_layernorm_dx(float g, float xhat, float mg, float mgx,
                                               float rstd)
{
    return rstd * fmaf(-xhat, mgx, g - mg);
}

/* One row's dx (D,) (+)= fr_layernorm_dx, mg and mgx in the 8-lane orders above; gamma may
 * be NULL. The row loop every backend runs (ref, opt, the kernels of kern/). */
FR_HOSTDEV static inline void fr_layernorm_dx_row(int64_t D, const float *xr, const float *dyr,
                                                  const float *gamma, float mu, float rs, float *dxr,
                                                  int accumulate)
{
    float lg[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    float lgx[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t j = 0; j < D; j++) {
        float xhat = fr_layernorm_xhat(xr[j], mu, rs);
        float g = gamma ? dyr[j] * gamma[j] : dyr[j];
        lg[j % FR_LANES] += g;
        lgx[j % FR_LANES] = fmaf(g, xhat, lgx[j % FR_LANES]);
    }
    float mg = D > 0 ? fr_lanes_tree(lg) / (float)D : 0.0f;
    float mgx = D > 0 ? fr_lanes_tree(lgx) / (float)D : 0.0f;
    for (int64_t j = 0; j < D; j++) {
        float xhat = fr_layernorm_xhat(xr[j], mu, rs);
        float g = gamma ? dyr[j] * gamma[j] : dyr[j];
        float d = fr_layernorm_dx(g, xhat, mg, mgx, rs);
        dxr[j] = accumulate ? dxr[j] + d : d;
    }
}

/* ---- AdamW --------------------------------------------------------------------------- */
/* One parameter, PyTorch semantics: torch.optim.AdamW with foreach=False
 * (_single_tensor_adamw, torch 1.13) in its operation order, with the float scalars of
 * fr_adamw_prepare (core/adamw.c: double expressions of the double hyper-parameters,
 * rounded once):
 *   p     = p * decay                              param.mul_(1 - lr*wd)
 *   m     = fmaf(g, 1 - beta1, m * beta1)          exp_avg.mul_(beta1)
 *                                                    .add_(grad, alpha=1 - beta1)
 *   v     = fmaf((1 - beta2) * g, g, v * beta2)    exp_avg_sq.mul_(beta2)
 *                                                    .addcmul_(grad, grad, value=1 - beta2)
 *   denom = sqrtf(v) / bc2_sqrt + eps              (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)
 *   p     = p + ((-step_size) * m) / denom         param.addcdiv_(exp_avg, denom,
 *                                                                 value=-step_size)
 * add_ with alpha is ATen's fmadd(grad, alpha, self). addcmul's source is
 * self + value*t1*t2; the compiled CPU kernels contract it to fma(value*t1, t2, self)
 * (measured bit for bit against Debian's 1.13.1: tests/torch/adamw_ref.py, suite torch;
 * the unfused form is up to 8 ulp off in v, 2048 in a near-zero p). torch >= 2.0's
 * exp_avg.lerp_ rounds differently (~3e4 ulp in a near-zero m). addcdiv is
 * self + (value*t1)/t2: no contraction. p + ((-s) m)/d equals p - (s m)/d bitwise
 * (negation is exact). */
FR_HOSTDEV static inline void fr_adamw_elem(float *p, float g, float *m, float *v,
                                            const fr_adamw_hp *hp)
{
    float pp = *p * hp->decay;
    float mm = fmaf(g, hp->one_minus_beta1, *m * hp->beta1);
    float vv = fmaf(hp->one_minus_beta2 * g, g, *v * hp->beta2);
    float denom = sqrtf(vv) / hp->bc2_sqrt + hp->eps;
    *p = pp - (hp->step_size * mm) / denom;
    *m = mm;
    *v = vv;
}

/* ---- elementwise ------------------------------------------------------------------- */

FR_HOSTDEV static inline float fr_binary_elem(fr_binop op, float a, float b)
{
    switch (op) {
    case FR_BIN_SUB: return a - b;
    case FR_BIN_MUL: return a * b;
    case FR_BIN_DIV: return a / b;
    case FR_BIN_ADD:
    default: return a + b;
    }
}

FR_HOSTDEV static inline float fr_unary_elem(fr_unop op, float x)
{
    switch (op) {
    case FR_UN_SQUARE: return x * x;
    case FR_UN_SQRT: return sqrtf(x);
    case FR_UN_EXP: return fr_expf(x);
    case FR_UN_LOG: return fr_logf(x);
    case FR_UN_ABS: return fabsf(x);
    case FR_UN_NEG:
    default: return -x;
    }
}

/* y = alpha x + beta y as fmaf(alpha, x, beta * y): beta*y rounded, then one fmaf. */
FR_HOSTDEV static inline float fr_axpby_elem(float alpha, float x, float beta, float y)
{
    return fmaf(alpha, x, beta * y);
}

#endif
