/* Sampler steps over a batch, with their log-probs (docs/algorithms/samplers.md §0-§6, §9).
 *
 * One step maps x (B, D) and the model output (B, D) -- the velocity v for the flow
 * samplers, the noise prediction ε̂ for ddim -- to x' (B, D), the mean μ (B, D) and the
 * log-prob (B,). Noise ξ (B, D) is an INPUT: the caller draws it from flowrl's Philox
 * streams by coordinate (docs/design.md §1.5), so a step never owns randomness.
 *
 * Log-probs are MEANS over the D non-batch elements (docs/algorithms/samplers.md §0),
 * reduced in the canonical order of flowrl/reduce.h (fr_mean_canonical per row).
 * The per-element math is in flowrl/sampler_elem.h, the loops are op entries of the
 * backend (flowrl/ops.h): every array argument below is backend memory (flowrl/backend.h);
 * the step's scalars (fr_step, fr_step_std) are host values.
 *
 * Which std each kind reports (fr_step_std):
 *   std      the std of the Gaussian x' | x, the one inside the log-prob
 *   std_dev  what the public code returns as its std:
 *              sde   σ_t WITHOUT √(−dt) (FG; feeds the KL, docs/algorithms/flow-grpo.md §2). MixGRPO's
 *                    copy returns σ_t·√(−dt) instead: that is `std` (docs/algorithms/samplers.md §3 quirk 2).
 *              cps   σ_t = σ'·sin(aπ/2) (= std)
 *              dance η·√(−dσ) (= std; DANCE returns none)
 *              ddim  η·√var (= std)
 *              ode, dpm  0 */
#ifndef FLOWRL_SAMPLER_H
#define FLOWRL_SAMPLER_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/status.h"

/* fr_sampler_kind and fr_step_coef: flowrl/sampler_elem.h */

/* Indexed by kind, NULL-terminated (flowrl/enum_names.h). */
extern const char *const fr_sampler_names[FR_SAMPLER_COUNT + 1];
/* "ode", "sde", "cps", "dance", "ddim", "dpm"; NULL for an invalid kind. */
const char *fr_sampler_name(fr_sampler_kind k);
/* The kind named `name`; FR_ERR_ARG (message lists the names) if none. */
fr_status fr_sampler_from_name(const char *name, fr_sampler_kind *out);
/* 1 for sde, cps, dance, ddim (they have a transition density), 0 for ode, dpm. */
int fr_sampler_is_stochastic(fr_sampler_kind k);

/* The scalars of one step. Fields a kind does not read are ignored. */
typedef struct {
    fr_sampler_kind kind;
    /* flow kinds (ode, sde, cps, dance, dpm): 0 <= sigma_next < sigma <= 1 */
    float sigma;      /* σ = σ_i */
    float sigma_next; /* σ' = σ_{i+1} */
    float sigma1;     /* sde: σ_1 of the grid, replaces σ in 1 − σ when σ == 1 (§3) */
    float noise;      /* sde, cps: noise level a; dance, ddim: η */
    /* ddim: ᾱ_t and ᾱ_prev in (0, 1], x̂0 clip range (<= 0: none) */
    float alpha_bar, alpha_bar_prev, x0_clip;
    /* dpm: order 1 or 2; order 2 reads sigma_prev = σ_{i−1} > σ and the previous step's
     * x̂0. The order used drops to 1 on the step to σ' = 0 (MIX's lower_order_final). */
    int order;
    float sigma_prev;
} fr_step;

typedef struct {
    float std;     /* std of x' | x (see the table above) */
    float std_dev; /* the std the public code returns (see the table above) */
} fr_step_std;

/* The per-step std's of p (checks p; no array work). */
fr_status fr_sampler_std(const fr_step *p, fr_step_std *out);

/* The coefficients of step p as the op entries take them (checks p; no array work). */
fr_status fr_sampler_coef(const fr_step *p, fr_step_coef *out);

/* One step: x' = μ + std·ξ and, for the stochastic kinds, log p(x' | x) (B,).
 *   model_out  v (flow kinds) or ε̂ (ddim)
 *   x0_prev    dpm order 2: the previous step's x̂0 (B, D); NULL otherwise
 *   xi         ξ (B, D) for the stochastic kinds; NULL means ξ = 0 (x' = μ: FG's a = 0
 *              eval, DDIM η = 0); ignored by ode and dpm
 *   mean       μ (B, D), may be NULL; for ode/dpm μ = x'
 *   logp       (B,), may be NULL; must be NULL for ode and dpm (no density)
 *   std        may be NULL
 * x_next may alias x (row by row each element is read before it is written). */
fr_status fr_sampler_step(fr_backend *be, const fr_step *p, int64_t B, int64_t D,
                          const float *x,         // (B, D)
                          const float *model_out, // (B, D)
                          const float *x0_prev,   // (B, D) or NULL
                          const float *xi,        // (B, D) or NULL
                          float *x_next,          // (B, D)
                          float *mean,            // (B, D) or NULL
                          float *logp,            // (B,) or NULL
                          fr_step_std *std);

/* μ (B, D) of the step (what training recomputes under new parameters). */
fr_status fr_sampler_mean(fr_backend *be, const fr_step *p, int64_t B, int64_t D,
                          const float *x,         // (B, D)
                          const float *model_out, // (B, D)
                          const float *x0_prev,   // (B, D) or NULL
                          float *mean);           // (B, D)

/* log p(x' | μ) (B,) for a GIVEN x' under the step's Gaussian, means over D. Stochastic
 * kinds only. Given the μ that fr_sampler_step computed, equals its logp bit for bit. */
fr_status fr_sampler_logprob_of(fr_backend *be, const fr_step *p, int64_t B, int64_t D,
                                const float *x_next, // (B, D)
                                const float *mean,   // (B, D)
                                float *logp);        // (B,)

/* The weighted log-prob mean_D(w·log p(x_next | μ)) (B,) (ops.h sampler_logprob_w): the
 * trajectory objectives' per-element weights (flowrl/traj_objective.h). w ≡ 1 gives
 * fr_sampler_logprob_of bit for bit. */
fr_status fr_sampler_logprob_w(fr_backend *be, const fr_step *p, int64_t B, int64_t D,
                               const float *x_next, // (B, D)
                               const float *mean,   // (B, D)
                               const float *w,      // (B, D)
                               float *logp);        // (B,)

/* μ from (x, model_out), then log p(x_next | μ): the PPO ratio's new log-prob. With the
 * same inputs as a fr_sampler_step call, logp is bitwise that call's logp. mean may be
 * NULL. */
fr_status fr_sampler_logprob(fr_backend *be, const fr_step *p, int64_t B, int64_t D,
                             const float *x,         // (B, D)
                             const float *model_out, // (B, D)
                             const float *x0_prev,   // (B, D) or NULL
                             const float *x_next,    // (B, D)
                             float *mean,            // (B, D) or NULL
                             float *logp);           // (B,)

/* v = v_u + g·(v_c − v_u) over n elements (docs/algorithms/samplers.md §0). out may alias either input. */
fr_status fr_cfg_combine(fr_backend *be, int64_t n, float g,
                         const float *v_u, // (n,)
                         const float *v_c, // (n,)
                         float *out);      // (n,)

/* x̂0 = x − σ·v over n elements (dpm's data prediction, G2's reward input). */
fr_status fr_flow_x0(fr_backend *be, int64_t n, float sigma,
                     const float *x, // (n,)
                     const float *v, // (n,)
                     float *x0);     // (n,)

#endif
