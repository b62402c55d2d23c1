/* DPPO's denoising-MDP step and policy loss (core/dppo.c; docs/algorithms/dppo.md; spec
 * samplers.md §7, objectives.md §14; irom-princeton/dppo@cc7234a model/diffusion/diffusion_vpg.py
 * p_mean_var / get_logprobs_subsample, diffusion_ppo.py loss): host float64 on the DDPM policy's
 * tables (flowrl/ddpm_policy.h), so the bits do not depend on the backend. `--algo dppo`
 * (core/algo/dppo.c) samples its chains and forms its minibatches with these. */
#ifndef FLOWRL_DPPO_H
#define FLOWRL_DPPO_H

#include <stdint.h>

#include "flowrl/ctl.h"
#include "flowrl/ddpm_policy.h"

typedef struct {
    int64_t K;            /* ft_denoising_steps: the fine-tuned steps t = K − 1 .. 0 */
    double x0_clip;       /* denoised_clip_value (1) */
    double min_logp_std;  /* min_logprob_denoising_std (0.1) */
    double gamma_den;     /* gamma_denoising (0.99) */
    double clip, clip_base, clip_rate; /* clip_ploss_coef, _base, _rate (gym: 0.01, 0.01, 3) */
    double adv_q_lo, adv_q_hi;         /* clip_advantage_lower / upper_quantile (0, 1: none) */
} fr_dppo_cfg;

/* The clip range of denoising index i (0: the noisiest fine-tuned step, t = K − 1):
 * base + (c − base)·(e^{rate·i/(K−1)} − 1)/(e^{rate} − 1); K = 1: c (DPPO's formula divides by
 * K − 1). */
double fr_dppo_clip_of(const fr_dppo_cfg *c, int64_t i);

/* The mean μ (A,) of denoising step t from its input x (A,) and the network's ε̂ (A,):
 * x̂0 = clip(√(1/ᾱ_t)·x − √(1/ᾱ_t − 1)·ε̂, ±x0_clip), μ = c_x0(t)·x̂0 + c_xt(t)·x; dmu (A,) (may be
 * NULL) receives dμ/dε̂ (0 where x̂0 is clipped: torch.clamp passes the gradient inside its range). */
void fr_dppo_step_mean(const fr_ddpm_policy *p, int t, int64_t A, const float *x, const float *eps, double x0_clip,
                       double *mu, double *dmu);

/* The step's log-probability mean_d clamp(log N(xn_d; μ_d, σ²), −5, 2), σ = max(sd_t, min_std)
 * (the clamp per element before the mean: samplers.md §7's quirk); dlp (A,) (may be NULL)
 * receives d logp / dμ_d (0 where clamped). */
double fr_dppo_step_logp(const fr_ddpm_policy *p, int t, int64_t A, const float *xn, const double *mu, double min_std,
                         double *dlp);

/* The clipped policy loss of a minibatch of M (environment step, denoising step) pairs: pair j
 * has denoising index i[j] (t = K − 1 − i), the fine-tuned network's ε̂ eps (M, A) of its input
 * x (M, A), the chain's next state xn (M, A), its rollout log-probability logp_old and raw GAE
 * advantage adv. Out: logp_new (M,); adv_used (M,) the advantages normalised over the minibatch
 * (fr_ctl_adv_normalize), clamped to their [q_lo, q_hi] quantiles (torch.quantile's linear
 * interpolation; skipped at 0, 1) and times gamma_den^(K − i − 1); clip (M,) fr_dppo_clip_of;
 * g (M,) dL/dlogp_new (fr_ctl_ppo_clip_rows); deps (M, A) dL/dε̂ (float); st the loss,
 * approx-KL, clip fraction and mean ratio. */
fr_status fr_dppo_policy_loss(const fr_ddpm_policy *p, const fr_dppo_cfg *c, int64_t M, const float *eps, const float *x,
                              const float *xn, const int *i, const double *logp_old, const double *adv, double *logp_new,
                              double *adv_used, double *clip, double *g, float *deps, fr_ctl_ppo_stats *st);

#endif
