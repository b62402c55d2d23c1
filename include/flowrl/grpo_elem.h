/* Per-element formulas of the Flow-GRPO family of losses and their backward
 * (docs/algorithms/flow-grpo.md §0, §2-§4), written once for ref, opt and cuda (docs/design.md §1.2).
 * The batch loops and reductions are in core/grpo.c (flowrl/grpo.h).
 *
 * Arithmetic follows the public torch expressions left to right, one rounding per
 * operation (-ffp-contract=off). Gradients follow torch's autograd formulas
 * (tools/autograd/derivatives.yaml), including where torch picks a subgradient:
 *   torch.maximum(u, c)  u > c: all to u;  u < c: all to c;  u == c: grad/2 to EACH;
 *                        a NaN operand: both get the full grad (neither mask fires)
 *   torch.clamp(r, lo, hi) (scalar bounds): grad passes where lo <= r <= hi (bounds
 *                        INCLUSIVE), zero outside
 *   torch.mean           grad / numel
 *   x ** 2               grad * (2 * x)
 * One deliberate difference: FG keeps advantages in float64 (numpy -> torch.as_tensor),
 * so −A·r and the max/mean run in float64 there; flowrl runs everything in float32.
 *
 * Clip bounds: torch.clamp(ratio, 1.0 - ε, 1.0 + ε) forms the bounds in Python float64
 * and casts them to the tensor's float32; `|r − 1| > ε` compares against float32(ε).
 * fr_ppo_clip_make reproduces both from the float64 ε of the config. */
#ifndef FLOWRL_GRPO_ELEM_H
#define FLOWRL_GRPO_ELEM_H

#include "flowrl/detmath.h"
#include "flowrl/hostdev.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"

/* ---- advantages ---------------------------------------------------------------------- */

/* torch.clamp(A, −m, m) (docs/algorithms/advantages.md §1.1 item 7; docs/algorithms/flow-grpo.md §11: before the ratio term). NaN stays
 * NaN; m = +inf disables the clamp. */
FR_HOSTDEV static inline float fr_adv_clamp_elem(float a, float m)
{
    return a < -m ? -m : (a > m ? m : a);
}

/* ---- PPO clip (docs/algorithms/flow-grpo.md §0 "PPO clip form", §2) --------------------------------- */

typedef struct {
    float lo;  /* float32(1.0 − ε) */
    float hi;  /* float32(1.0 + ε) */
    float eps; /* float32(ε), for clipfrac */
} fr_ppo_clip;

FR_HOSTDEV static inline fr_ppo_clip fr_ppo_clip_make(double eps)
{
    fr_ppo_clip c;
    c.lo = (float)(1.0 - eps);
    c.hi = (float)(1.0 + eps);
    c.eps = (float)eps;
    return c;
}

/* r = exp(logp_new − logp_old) (`torch.exp(log_prob - sample["log_probs"][:, j])`).
 * Equal inputs give exp(0) = 1 exactly: the on-policy check of §2. */
FR_HOSTDEV static inline float fr_ppo_ratio_elem(float logp_new, float logp_old)
{
    return fr_expf(logp_new - logp_old);
}

/* GRPO-Guard RatioNorm argument (docs/algorithms/flow-grpo.md §3): ((logp_new − logp_old) + bias)·s, so
 * r = exp of it (`torch.exp((log_prob - old + ratio_mean_bias) * (sqrt_dt.mean() * sigma_t))`). */
FR_HOSTDEV static inline float fr_guard_logratio_elem(float logp_new, float logp_old, float bias, float s)
{
    return ((logp_new - logp_old) + bias) * s;
}

/* torch.clamp(r, lo, hi); NaN propagates. */
FR_HOSTDEV static inline float fr_ppo_clamp_elem(float r, fr_ppo_clip c)
{
    return r < c.lo ? c.lo : (r > c.hi ? c.hi : r);
}

/* torch.maximum(u, c): NaN if either is NaN. */
FR_HOSTDEV static inline float fr_ppo_max_elem(float u, float c)
{
    if (u != u) return u;
    if (c != c) return c;
    return u > c ? u : c;
}

/* One sample's policy term max(−A·r, −A·clip(r, 1−ε, 1+ε)) (A already clamped). */
FR_HOSTDEV static inline float fr_ppo_term_elem(float r, float a, fr_ppo_clip c)
{
    float na = -a;
    return fr_ppo_max_elem(na * r, na * fr_ppo_clamp_elem(r, c));
}

/* d term / d logratio, times the upstream gradient g of the term (g = dObjective/dterm,
 * e.g. gout/B for a batch mean), where r = exp(logratio):
 *   u = −A·r, c = −A·clamp(r); torch.maximum sends g to u, to c, or g/2 to each on a tie;
 *   u's share reaches r as (g_u)·(−A); c's share as (g_c)·(−A) only where lo <= r <= hi;
 *   the two are summed, and exp's backward multiplies by r.
 * So inside [lo, hi] (u == c) the gradient is g·(−A)·r (both halves); outside, the
 * clipped branch is active exactly when c > u, and the gradient is 0; when outside and
 * u > c (the "pessimistic" unclipped side) it is g·(−A)·r. */
FR_HOSTDEV static inline float fr_ppo_dterm_elem(float r, float a, fr_ppo_clip c, float g)
{
    float na = -a;
    float u = na * r;
    float cl = na * fr_ppo_clamp_elem(r, c);
    float gu = u < cl ? 0.0f : (u == cl ? g / 2.0f : g);
    float gc = u > cl ? 0.0f : (u == cl ? g / 2.0f : g);
    float gr_u = gu * na;
    float gr_c = (r >= c.lo && r <= c.hi) ? gc * na : 0.0f;
    return (gr_u + gr_c) * r;
}

/* `torch.abs(ratio - 1.0) > clip_range` */
FR_HOSTDEV static inline int fr_ppo_is_clipped_elem(float r, fr_ppo_clip c)
{
    return fabsf(r - 1.0f) > c.eps;
}

/* ---- d logp / d μ of the step's log-prob (docs/algorithms/samplers.md §3-§6) ------------------------- */

/* Gaussian log-prob element e = (−(x'−μ)²/two_var − log std) − log√(2π), reduced by a mean
 * over D. With gd = (g/D)/two_var formed once per row (torch: mean backward g/D, then the
 * division's backward), de/dμ·g/D = gd·(2·(x' − μ)) (the pow backward 2·d, two exact
 * negations from −d² and from d = x' − μ). */
FR_HOSTDEV static inline float fr_gauss_row_scale(float g, float D, float two_var)
{
    return (g / D) / two_var;
}

FR_HOSTDEV static inline float fr_gauss_dlogp_dmu_elem(float x_next, float mu, float gd)
{
    return gd * (2.0f * (x_next - mu));
}

/* CPS element e = −(x' − μ)² (docs/algorithms/samplers.md §4 quirk 1): de/dμ·g/D = (g/D)·(2·(x' − μ)). */
FR_HOSTDEV static inline float fr_cps_dlogp_dmu_elem(float x_next, float mu, float g_over_d)
{
    return g_over_d * (2.0f * (x_next - mu));
}

/* One row of fr_logp_backward: the row scale gd of g_logp (cps: g/D; Gaussian: (g/D)/two_var)
 * and the element de/dμ·g/D. cps selects the constant-free cps form (docs/algorithms/samplers.md §4). */
FR_HOSTDEV static inline float fr_logp_row_scale(int cps, float g, float D, float two_var)
{
    return cps ? g / D : fr_gauss_row_scale(g, D, two_var);
}

FR_HOSTDEV static inline float fr_logp_dmu_elem(int cps, float x_next, float mu, float gd)
{
    return cps ? fr_cps_dlogp_dmu_elem(x_next, mu, gd) : fr_gauss_dlogp_dmu_elem(x_next, mu, gd);
}

/* Σ (a − b)² over n elements in the canonical sum-of-squares order of flowrl/reduce.h (the
 * difference rounded to float, then lane = fmaf(d, d, lane)): fr_sumsq_canonical of the
 * stored differences, without storing them. The KL's rows and GRPO-Guard's bias. */
FR_HOSTDEV static inline float fr_sumsq_diff_canonical(const float *a, const float *b, int64_t n)
{
    float l[FR_LANES] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        l[i % FR_LANES] = fmaf(d, d, l[i % FR_LANES]);
    }
    return fr_lanes_tree(l);
}

/* ---- KL to the reference (docs/algorithms/flow-grpo.md §2) ------------------------------------------ */

/* L_KL = mean_b[ mean_d (μ − μ_ref)² / (2σ²) ]; per element of the gradient, with
 * gk = ((g/B)/two_var)/D formed once (mean_b backward, division, mean_d backward):
 * dL/dμ·g = gk·(2·(μ − μ_ref)). */
FR_HOSTDEV static inline float fr_kl_dmu_elem(float mu, float mu_ref, float gk)
{
    return gk * (2.0f * (mu - mu_ref));
}

/* ---- GRPO-Guard's gradient w.r.t. μ_θ (docs/algorithms/flow-grpo.md §3) ------------------------------ */

/* The two uses of μ_θ summed as autograd does: through the sde log-prob (row scale gd, as
 * fr_gauss_dlogp_dmu_elem) and through the bias mean (μ_θ − μ_old)²/(2s²) (its row factor
 * gm = (gy/2s²)/D, or the batch-wide one, times 2·Δμ). */
FR_HOSTDEV static inline float fr_guard_dmu_elem(float x_next, float mu, float mu_old, float gd, float gm)
{
    return fr_gauss_dlogp_dmu_elem(x_next, mu, gd) + gm * (2.0f * (mu - mu_old));
}

/* ---- d μ / d v: the per-step scalar chaining μ back to the model output --------------- */

/* sde (docs/algorithms/samplers.md §3): μ = x·cx + v·cv·dt, so dμ/dv = cv·dt. */
FR_HOSTDEV static inline float fr_sde_dmean_dv(fr_sde_coef c)
{
    return c.cv * c.dt;
}

/* cps (docs/algorithms/samplers.md §4): μ = (x − σv)(1 − σ') + (x + v(1 − σ))·c_eps, so dμ/dv = −σ·(1−σ') + (1−σ)·c_eps. */
FR_HOSTDEV static inline float fr_cps_dmean_dv(fr_cps_coef c)
{
    return -c.sigma * c.c_x0 + c.one_minus_sigma * c.c_eps;
}

/* dance (docs/algorithms/samplers.md §5): μ = (x + dσ·v) + (c_score·score)·dσ, score = −(x − (x − σv)(1−σ))/σ², so
 * dscore/dv = −σ(1−σ)/σ² and dμ/dv = dσ + (c_score·dscore/dv)·dσ. */
FR_HOSTDEV static inline float fr_dance_dmean_dv(fr_dance_coef c)
{
    float dscore = -(c.sigma * c.one_minus_sigma) / c.sigma_sq;
    return c.dsigma + (c.c_score * dscore) * c.dsigma;
}

/* ddim without x̂0 clipping (docs/algorithms/samplers.md §6): μ = √ᾱ_prev·(x − √β_t·ε̂)/√ᾱ_t + c_dir·ε̂. */
FR_HOSTDEV static inline float fr_ddim_dmean_deps(fr_ddim_coef c)
{
    return c.sqrt_ab_prev * (-c.sqrt_beta_t / c.sqrt_ab_t) + c.c_dir;
}

#endif
