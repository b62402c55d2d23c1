/* ReinFlow's learned-noise Markov chain (core/reinflow.c, trained by core/algo/reinflow.c;
 * docs/algorithms/reinflow.md; spec samplers.md §8, objectives.md §13;
 * ReinFlow/ReinFlow@aed2819 model/flow/ft_ppo/ppoflow.py,
 * model/flow/mlp_flow.py). A flow policy (flowrl/flow_policy.h, t = 1 noise, t = 0 the action)
 * becomes a chain of K Gaussian transitions:
 *
 *   x_0 ~ N(0, I)                                                       (A,)
 *   μ_k = clamp(x_k + (t_{k+1} − t_k)·0.25·MLP(obs, x_k, t_k), ±c)      t_k = 1 − k/K, c = 1
 *   x_{k+1} ~ N(μ_k, σ_k²), clamped to μ_k ± 3σ_k; x_K clamped to [−1, 1]
 *   log σ_k = ½·[ℓmin + (ℓmax − ℓmin)·(tanh h_k + 1)/2],  ℓ = log σ², h_k = noise MLP([temb(t_k), obs])
 *
 * The chain's log-prob (the policy's) and entropy are sums over the steps and dimensions divided
 * by (K + 1)·A (ReinFlow's normalize_denoising_horizon and normalize_act_space_dimension), the
 * initial N(0, I) term included (account_for_initial_stochasticity). Host float64. */
#ifndef FLOWRL_REINFLOW_H
#define FLOWRL_REINFLOW_H

#include <stdint.h>

/* log σ of a noise-network output h under the range [σmin, σmax] as lv_min = log σmin², lv_max =
 * log σmax²; *th = tanh h (for the gradient: dlog σ/dh = (lv_max − lv_min)·(1 − th²)/4). */
double fr_reinflow_log_sigma(float h, double lv_min, double lv_max, double *th);

/* One transition of A dims: mu = clamp(x + dt·scale·out, ±clip) with inside = 1 where the clamp
 * passed (its gradient), log_sigma of h (fr_reinflow_log_sigma) with th = tanh h. x, out, h (A,)
 * as the networks saw and gave them; mu, log_sigma, th (A,) float64. */
void fr_reinflow_transition(int64_t A, const float *x, const float *out, const float *h, double dt, double scale,
                            double clip, double lv_min, double lv_max, double *mu, double *log_sigma, double *th,
                            uint8_t *inside);

/* The normalised log-prob and entropy of one chain: x (K + 1, A) the stored chain, mu (K, A) and
 * log_sigma (K, A) its transitions:
 *   logp = [Σ_d log N(x_0d; 0, 1) + Σ_k Σ_d log N(x_{k+1,d}; μ_kd, σ_kd²)] / ((K + 1)·A)
 *   H    = [A·(½ + ½ log 2π) + Σ_k Σ_d (log σ_kd + ½ + ½ log 2π)] / ((K + 1)·A)
 * summed in that order (the initial term, then step by step, each over d). entropy may be NULL. */
void fr_reinflow_chain_logp(int K, int64_t A, const float *x, const double *mu, const double *log_sigma, double *logp,
                            double *entropy);

/* The gradient of g_logp·logp + g_ent·H (fr_reinflow_chain_logp) with respect to mu and log_sigma
 * (K, A): dmu = g_logp·(x' − μ)/σ²/((K + 1)·A), dls = [g_logp·(z² − 1) + g_ent]/((K + 1)·A). */
void fr_reinflow_chain_grad(int K, int64_t A, const float *x, const double *mu, const double *log_sigma, double g_logp,
                            double g_ent, double *dmu, double *dls);

/* The noise range's upper bound σmax at epoch e of E under ReinFlow's learn_decay schedule
 * (agent/finetune/reinflow/train_ppo_flow_agent.py, util/scheduler_simple.py 'cosine'): epoch 0
 * uses σmax; epoch e ≥ 1 the schedule's value at e − 1 (the agent sets it after each iteration),
 * s(x) = lo + (σmax − lo)·½·(1 + cos(π·clip((x − ⌊hold·E⌋)/⌊(1 − hold)·E⌋, 0, 1))) with
 * lo = (1 − decay)·σmin + decay·σmax. */
double fr_reinflow_sigma_max(int64_t e, int64_t E, double sigma_min, double sigma_max, double hold, double decay);

#endif
