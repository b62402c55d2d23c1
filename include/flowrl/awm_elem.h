/* Per-element formulas of AWM, Advantage Weighted Matching (docs/algorithms/awm.md), written
 * once for ref, opt and cuda (docs/design.md §1.2). The loops and reductions are in
 * core/awm.c and core/awm_time.c (flowrl/awm.h).
 *
 * Precision follows the public code (AWM scripts/train_sd3_awm.py @ be51372,
 * compute_log_prob_awm and the training loop): the model output is promoted with
 * `.double()`, so m, the weighted "log-prob" ℓ, the ratio, the PPO term and the KL terms
 * are float64 (advantages are float64 numpy values there too); the time t, the ELBO std
 * and `t**2` are float32 (t is promoted when it meets a float64 tensor). One rounding per
 * operation, left to right (-ffp-contract=off, no fma here).
 *
 * float64 transcendentals: exp, log and pow are flowrl's own (fr_awm_exp / _log / _pow:
 * argument reduction + Taylor series from + − × / and exact scalings only), so the same
 * source gives the same bits under any C compiler and nvcc --fmad=false, as flowrl's float32
 * detmath.h does; libm's pow differs between libms. Their error is a few ulp of float64
 * (pow: ≈ |y·log x|·2⁻⁵² relative), far below the float32 rounding every gradient gets.
 * exp(0) = 1 exactly, so the on-policy ratio is exactly 1. */
#ifndef FLOWRL_AWM_ELEM_H
#define FLOWRL_AWM_ELEM_H

#include <math.h>
#include <stdint.h>

#include "flowrl/hostdev.h"
#include "flowrl/reduce.h"

/* ---- float64 long sums in the canonical lane order of flowrl/reduce.h ----------------- */

/* The 8 lanes of reduce.h's long sum, in float64: element i goes to lane i % 8 (plain adds,
 * lanes starting at 0), then the fixed tree ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)).
 * reduce.h has float32 reductions only; m and the KL terms are float64 sums (§9). */
typedef struct {
    double l[FR_LANES];
} fr_awm_lanes;

FR_HOSTDEV static inline void fr_awm_lanes_zero(fr_awm_lanes *a)
{
    for (int j = 0; j < FR_LANES; j++) a->l[j] = 0.0;
}

FR_HOSTDEV static inline void fr_awm_lanes_add(fr_awm_lanes *a, int64_t i, double x)
{
    a->l[i % FR_LANES] = a->l[i % FR_LANES] + x;
}

FR_HOSTDEV static inline double fr_awm_lanes_sum(const fr_awm_lanes *a)
{
    const double *l = a->l;
    double a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

/* mean of x (n,), n >= 1: the lane sum above over (double)n */
FR_HOSTDEV static inline double fr_awm_lanes_mean(const double *x, int64_t n)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < n; i++) fr_awm_lanes_add(&acc, i, x[i]);
    return fr_awm_lanes_sum(&acc) / (double)n;
}

/* ---- float64 exp / log / pow -------------------------------------------------------- */

#define FR_AWM_LN2_HI 6.93147180369123816490e-01 /* ln 2 to 32 bits: k·LN2_HI exact, |k| < 2^11 */
#define FR_AWM_LN2_LO 1.90821492927058770002e-10 /* ln 2 − LN2_HI */

/* e^x: x = k·ln2 + r, |r| <= ln2/2 (two-part ln 2), Taylor to r^13 (truncation < 2^-56
 * relative), scaled by 2^k. */
FR_HOSTDEV static inline double fr_awm_exp(double x)
{
    if (x != x) return x;
    if (x > 709.78) return INFINITY;
    if (x < -745.2) return 0.0;
    double kd = floor(x * 1.44269504088896340736 + 0.5);
    double r = (x - kd * FR_AWM_LN2_HI) - kd * FR_AWM_LN2_LO;
    /* Σ_{n<=13} r^n/n! by Horner; the 1/n! are compile-time constants */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return ldexp(p, (int)kd);
}

/* ln x for x > 0: x = 2^e·f, f in [√½, √2), s = (f−1)/(f+1), ln f = 2s(1 + s²/3 + s⁴/5 +
 * ... + s²²/23) (|s| <= 0.172: truncation < 2^-56 relative), plus e·ln 2 in two parts.
 * x <= 0 or NaN: NaN (−inf for 0); +inf: +inf. */
FR_HOSTDEV static inline double fr_awm_log(double x)
{
    if (!(x >= 0.0)) return NAN;
    if (x == 0.0) return -INFINITY;
    if (x == INFINITY) return x;
    int e;
    double f = frexp(x, &e);
    if (f < 0.70710678118654752440) {
        f = f * 2.0;
        e = e - 1;
    }
    double s = (f - 1.0) / (f + 1.0), s2 = s * s;
    double t = 1.0 / 23.0;
    for (int j = 21; j >= 3; j -= 2) t = t * s2 + 1.0 / (double)j;
    t = t * s2; /* s²/3 + s⁴/5 + ... */
    double two_s = 2.0 * s, ed = (double)e;
    return ed * FR_AWM_LN2_HI + ((two_s * t + ed * FR_AWM_LN2_LO) + two_s);
}

/* x^y for x > 0: exp(y·ln x). */
FR_HOSTDEV static inline double fr_awm_pow(double x, double y)
{
    return fr_awm_exp(y * fr_awm_log(x));
}

/* ---- inverse normal CDF (logit_normal times) ---------------------------------------- */

/* Φ⁻¹(p), 0 < p < 1: Wichura's AS 241 PPND16 rational approximations (Applied Statistics
 * 37(3), 1988; relative error ~1e-16), with flowrl's float64 log. torch evaluates
 * Normal.icdf in float32 (`√2·erfinv(2p − 1)`); flowrl rounds this value once to float32. */
FR_HOSTDEV static inline double fr_awm_ndtri(double p)
{
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        double num = ((((((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r +
                          6.7265770927008700853e4) * r + 4.5921953931549871457e4) * r +
                        1.3731693765509461125e4) * r + 1.9715909503065514427e3) * r +
                      1.3314166789178437745e2) * r + 3.3871328727963666080e0;
        double den = ((((((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r +
                          3.9307895800092710610e4) * r + 2.1213794301586595867e4) * r +
                        5.3941960214247511077e3) * r + 6.8718700749205790830e2) * r +
                      4.2313330701600911252e1) * r + 1.0;
        return q * num / den;
    }
    double r = q < 0.0 ? p : 1.0 - p;
    if (!(r > 0.0)) return q < 0.0 ? -INFINITY : INFINITY;
    r = sqrt(-fr_awm_log(r));
    double v;
    if (r <= 5.0) {
        r = r - 1.6;
        double num = ((((((7.74545014278341407640e-4 * r + 2.27238449892691845833e-2) * r +
                          2.41780725177450611770e-1) * r + 1.27045825245236838258e0) * r +
                        3.64784832476320460504e0) * r + 5.76949722146069140550e0) * r +
                      4.63033784615654529590e0) * r + 1.42343711074968357734e0;
        double den = ((((((1.05075007164441684324e-9 * r + 5.47593808499534494600e-4) * r +
                          1.51986665636164571966e-2) * r + 1.48103976427480074590e-1) * r +
                        6.89767334985100004550e-1) * r + 1.67638483018380384940e0) * r +
                      2.05319162663775882187e0) * r + 1.0;
        v = num / den;
    } else {
        r = r - 5.0;
        double num = ((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r +
                          1.24266094738807843860e-3) * r + 2.65321895265761230930e-2) * r +
                        2.96560571828504891230e-1) * r + 1.78482653991729133580e0) * r +
                      5.46378491116411436990e0) * r + 6.65790464350110377720e0;
        double den = ((((((2.04426310338993978564e-15 * r + 1.42151175831644588870e-7) * r +
                          1.84631831751005468180e-5) * r + 7.86869131145613259100e-4) * r +
                        1.48753612908506148525e-2) * r + 1.36929880922735805310e-1) * r +
                      5.99832206555887937690e-1) * r + 1.0;
        v = num / den;
    }
    return q < 0.0 ? -v : v;
}

/* ---- the per-(sample, t) "log-prob" (compute_log_prob_awm) ------------------------- */

/* Weightings of ℓ (docs/algorithms/awm.md table); values are part of golden files. */
typedef enum {
    FR_AWM_W_UNIFORM = 0, /* ℓ = −m */
    FR_AWM_W_GHUBER = 1,  /* ℓ = −((m + 1e-10)^p − (1e-10)^p)·t / p   (the default, p = 0.25) */
    FR_AWM_W_T = 2,       /* ℓ = −m·t */
    FR_AWM_W_T2 = 3,      /* ℓ = −m·t², t² squared in float32 */
    FR_AWM_W_HUBER = 4    /* ℓ = −(√(m + 1e-10) − 1e-5)·t */
} fr_awm_weighting;

/* One element's squared error in float64: (v − (ε − x0))², as
 * `(model_output.double() − (random_noise.double() − clean_latents.double()))**2`. */
FR_HOSTDEV static inline double fr_awm_sqerr_elem(float v, float eps, float x0)
{
    double d = (double)v - ((double)eps - (double)x0);
    return d * d;
}

/* ℓ from m = mean over elements of the squared error, in the public code's order. */
FR_HOSTDEV static inline double fr_awm_logprob_elem(fr_awm_weighting w, double m, float t, double p)
{
    double lp = -m; /* `log_prob.mean(...)` of −d²: the same sum, negated */
    double td = (double)t;
    switch (w) {
    case FR_AWM_W_UNIFORM: return lp;
    case FR_AWM_W_T: return lp * td;
    case FR_AWM_W_T2: return lp * (double)(t * t);
    case FR_AWM_W_HUBER: return (-(sqrt(-lp + 1e-10) - 1e-5)) * td;
    case FR_AWM_W_GHUBER: return ((-(fr_awm_pow(-lp + 1e-10, p) - fr_awm_pow(1e-10, p))) * td) / p;
    }
    return NAN;
}

/* The weighting's derivative w = −dℓ/dm >= 0, so that dℓ/dv_i = −w·2(v_i − v*_i)/D:
 *   Uniform 1, t t, t**2 t², huber t/(2√(m + 1e-10)), ghuber t·(m + 1e-10)^(p−1)
 * (the "advantage-weighted flow matching" weight of docs/algorithms/awm.md "Check"). */
FR_HOSTDEV static inline double fr_awm_weight_elem(fr_awm_weighting w, double m, float t, double p)
{
    double td = (double)t;
    switch (w) {
    case FR_AWM_W_UNIFORM: return 1.0;
    case FR_AWM_W_T: return td;
    case FR_AWM_W_T2: return (double)(t * t);
    case FR_AWM_W_HUBER: return td / (2.0 * sqrt(m + 1e-10));
    case FR_AWM_W_GHUBER: return td * fr_awm_pow(m + 1e-10, p - 1.0);
    }
    return NAN;
}

/* ---- advantage and the PPO form (float64, §9 "Advantage", "Policy loss") ----------- */

/* Ã = clamp(A, −acm, acm) / acm · amax (`advantages / adv_clip_max * advantage_max`). NaN
 * stays NaN. */
FR_HOSTDEV static inline double fr_awm_adv_elem(float a, double acm, double amax)
{
    double x = (double)a;
    x = x < -acm ? -acm : (x > acm ? acm : x);
    return x / acm * amax;
}

/* torch.clamp(ρ, 1 − c, 1 + c) with the float64 bounds `1.0 - clip_range`, `1.0 + clip_range`. */
FR_HOSTDEV static inline double fr_awm_clamp_elem(double r, double lo, double hi)
{
    return r < lo ? lo : (r > hi ? hi : r);
}

/* max(−Ã·ρ, −Ã·clip(ρ)); NaN if either is NaN (torch.maximum). */
FR_HOSTDEV static inline double fr_awm_ppo_term_elem(double r, double a, double lo, double hi)
{
    double u = -a * r, c = -a * fr_awm_clamp_elem(r, lo, hi);
    if (u != u) return u;
    if (c != c) return c;
    return u > c ? u : c;
}

/* d term / d(ℓ − ℓ_old) for an upstream gradient of 1, with torch's subgradients (as
 * fr_ppo_dterm_elem of grpo_elem.h, in float64): torch.maximum gives each side the whole
 * gradient, or ½ on a tie; clamp passes it where lo <= ρ <= hi; exp multiplies by ρ. Inside
 * the band the two halves give exactly −Ã·ρ. */
FR_HOSTDEV static inline double fr_awm_ppo_dterm_elem(double r, double a, double lo, double hi)
{
    double na = -a, u = na * r, c = na * fr_awm_clamp_elem(r, lo, hi);
    double gu = u < c ? 0.0 : (u == c ? 0.5 : 1.0);
    double gc = u > c ? 0.0 : (u == c ? 0.5 : 1.0);
    double gr_c = (r >= lo && r <= hi) ? gc * na : 0.0;
    return (gu * na + gr_c) * r;
}

/* ---- KL terms (§9 "Regularizers") --------------------------------------------------- */

/* 2·std² of kl_weight 'ELBO', float32 as the code: std = √(t / (1 − clamp(t, 0, 0.99)))·0.7,
 * `2 * std_dev_t ** 2`. */
FR_HOSTDEV static inline float fr_awm_elbo_two_var(float t)
{
    float c = t < 0.0f ? 0.0f : (t > 0.99f ? 0.99f : t);
    float sd = sqrtf(t / (1.0f - c)) * 0.7f;
    return 2.0f * (sd * sd);
}

/* (v − v_other) in float64 (`model_output − model_output_ref`, both `.double()`). */
FR_HOSTDEV static inline double fr_awm_diff_elem(float v, float v_other)
{
    return (double)v - (double)v_other;
}

/* ---- EMA adapter for the EMA-KL ----------------------------------------------------- */

/* θ_ema ← θ_ema·d + θ·(1 − d) on float32 parameters, with d and 1 − d formed in float64
 * and cast to float32 as torch's Python-scalar multiplies do
 * (`tgt * decay + src * (1.0 - decay)`). */
FR_HOSTDEV static inline float fr_awm_ema_elem(float ema, float theta, float d, float one_minus_d)
{
    return ema * d + theta * one_minus_d;
}

#endif
