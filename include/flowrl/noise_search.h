/* Smart-GRPO's noise search (docs/algorithms/samplers.md §14; arXiv 2510.02654, no public
 * code): a cross-entropy-method search over the initial-noise distribution of each prompt,
 * whose result gives the x_T of that prompt's group of rollouts.
 *
 * Per prompt p (P of them), with μ_p = 0, σ_p = init_std (D,) at the start, rounds r = 0..R−1:
 *   z_k   = μ_p + σ_p·ε_k  (fmaf(σ, ε, μ) per element)            k < K candidates
 *   x̂0_k  = z_k − σ_0·v(z_k, t_in(σ_0), c_p)                      one step, with the rollout's
 *                                                                   guidance (fr_guided_forward)
 *   R_k   = reward(p, x̂0_k)                                        host callback
 *   μ_p, σ_p = fr_noise_search_refit over the top-E candidates by R_k
 * then x_T of the group's member g < G is μ_p + σ_p·ε_{R·K + g}: G fresh draws from the final
 * distribution. σ_0 and t_in(σ_0) = fr_rollout_time(rc, 0) are those of the rollout config
 * the groups are sampled with, so the decode sees the noise exactly as the first rollout
 * step does.
 *
 * Randomness (docs/design.md §1.5): ε_k of prompt p in round r (r = R: the final draws) is
 *   normals (rc->seed, FR_RNG_NOISE_SEARCH, rc->c0, ids[p], r·K + k), element j
 * so the search of a prompt is a pure function of (model, rc, cfg, prompt, ids[p], reward):
 * independent of P, of its position among the prompts, of rc->batch and of the backend.
 *
 * Memory: the search state (μ, σ, the candidates, x̂0, rewards) lives on the host, where the
 * reward callback and the refit (a selection and a per-dimension reduction over rows, which
 * the op table has no entry for) need it; per chunk of rc->batch candidates the noises cross
 * once to the backend (fr_h2d), the network and x̂0 (be->ops->flow_x0) run there, and x̂0
 * crosses back (fr_d2h). The forward goes through fr_model_forward, so be->work.fwd_rows
 * (the NFE budget) counts the search: R·P·K rows, twice that with guidance.
 *
 * Shapes: P prompts, K candidates, E elites, G group size, D = model dims. */
#ifndef FLOWRL_NOISE_SEARCH_H
#define FLOWRL_NOISE_SEARCH_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

typedef struct {
    int64_t rounds;     /* R >= 1: refits (the paper's N) */
    int64_t candidates; /* K >= 2: noises decoded per prompt and round */
    int64_t elites;     /* E in [1, K]: the top-E refit μ, σ (the paper's top-T) */
    float init_std;     /* σ of round 0 (μ = 0), finite, > 0; 1 = the model's prior N(0, I) */
    float min_std;      /* floor on every σ after a refit, finite, in [0, init_std]: keeps
                           the group's G draws apart (docs/algorithms/samplers.md §14) */
} fr_noise_search_cfg;

/* flowrl's choices where the paper gives no values (docs/algorithms/samplers.md §14):
 * rounds 2, candidates 16, elites 4, init_std 1, min_std 0.25. */
fr_noise_search_cfg fr_noise_search_cfg_default(void);

/* FR_ERR_ARG, one line naming the first bad field and what was expected. */
fr_status fr_noise_search_cfg_check(const fr_noise_search_cfg *c);

/* The reward of n decoded candidates: reward[i] for x0 row i of prompt prompt_ids[i]. All
 * host memory. A non-finite reward fails the search with FR_ERR_NUMERIC. */
typedef fr_status (*fr_noise_reward_fn)(void *user, int64_t n,
                                        const int *prompt_ids, // (n,)
                                        const float *x0,       // (n, D)
                                        float *reward);        // (n,) out

/* What the search did, for the audit and the metrics; every pointer may be NULL. Host. */
typedef struct {
    float *mean_reward; /* (R,): mean reward of round r's P·K candidates */
    float *top_reward;  /* (R,): mean over prompts of round r's best candidate reward */
    float *mu, *sigma;  /* (P, D): each prompt's final distribution */
    int64_t rows;       /* out: rows sent through the network (R·P·K, ×2 guided) */
} fr_noise_search_out;

/* The search above for P prompts prompt_ids (P,) with search ids ids (P,) (counter c1 of
 * each prompt's noise: e.g. the first sample id of its group, so two groups of one prompt
 * search apart), writing x_T (P·G, D), row p·G + g, in backend memory (the x_init of
 * fr_rollout). rc is the rollout config the groups will be sampled with: fr_rollout's
 * checks, a flow kind (ode, sde, cps, dance, dpm: velocity models), its σ_0, time input,
 * guidance, seed, c0 and batch (rows per forward, <= 0: all P·K). */
fr_status fr_noise_search(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                          const fr_noise_search_cfg *c, int64_t P,
                          const int *prompt_ids, // (P,) host
                          const uint32_t *ids,   // (P,) host
                          fr_noise_reward_fn reward, void *user, int64_t G,
                          float *x_T, // (P·G, D) out, backend
                          fr_noise_search_out *out);

/* One refit of the cross-entropy method: the E candidates of highest reward (ties: the
 * lower index first) are the elites; per dimension j, over the elites in index order,
 *   μ_j = (Σ z_j) / E                       a plain float sum
 *   σ_j = max(sqrt((Σ (z_j − μ_j)²) / E), min_std)   the population std; the squares as
 *                                                     one fmaf chain
 * z (K, D) and reward (K,) host, finite rewards; mu, sigma (D,) out, host. elite (E,),
 * if not NULL, receives the elites' indices in rank order (best first). */
fr_status fr_noise_search_refit(int64_t K, int64_t E, int64_t D,
                                const float *z,      // (K, D)
                                const float *reward, // (K,)
                                float min_std,
                                float *mu,           // (D,) out
                                float *sigma,        // (D,) out
                                int64_t *elite);     // (E,) out or NULL

#endif
