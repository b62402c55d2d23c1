/* SPO's step-wise rollout (docs/algorithms/spo.md §1; spec objectives.md §18; RockeyCoss/SPO
 * spo/custom_diffusers/multi_sample_pipeline.py): a DDIM chain of an epsilon model from x_T,
 * and from step `divert` on, at every step j, K candidates x_{j+1}^(q) drawn from the shared
 * state x_j, each scored by the reward of its predicted x̂0, the best and the worst kept as a
 * preference pair when the margin rule holds, the chain continuing from a random candidate.
 *
 * Per chain c (C chains, sample id s = sample_ids[c], prompt prompt_ids[c]):
 *   x_0 = x_T   normals (seed, FR_RNG_SAMPLER_INIT, c0, s·K, 0)
 *   j < divert: x_{j+1} = ddim_step_j(x_j, ε̂(x_j), ξ = normals (seed, FR_RNG_SAMPLER_NOISE, c0, s·K, j))
 *               (bitwise the chain fr_rollout samples for sample id s·K: flowrl/rollout.h)
 *   j >= divert: candidates q < K, one ε̂(x_j) shared,
 *               x_{j+1}^(q) = ddim_step_j(x_j, ε̂(x_j), ξ = normals (seed, FR_RNG_SAMPLER_NOISE, c0, s·K + q, j))
 *               (candidate 0 is the noise of the unbranched chain: the rollout's rule "the noise of a
 *               block of K ids is drawn at its first id")
 *     score_q = reward(x̂0^(q)), x̂0^(q) = (x^(q) − √(1 − ᾱ_{j+1})·ε̂(x^(q), t_{j+1}))/√ᾱ_{j+1}, the DDIM
 *               x̂0 of the candidate at the next step (SPO's ddim_step_fetch_x0 with the next
 *               step's noise prediction); at the last step (j = T − 1) the candidate itself
 *     best  = the first q of the highest score, worst = the last q of the lowest score
 *     kept  iff fr_spo_keep(score_best, score_worst, threshold)
 *     next  = u32 (seed, FR_RNG_SPO_CHOICE, c0, s, j, 0) mod K: x_{j+1} = x^(next), and ε̂(x^(next))
 *             (already computed for the scores) is the next step's prediction
 * The ε̂ of every candidate goes through the network (K rows per chain per step after the
 * divert step, as the public pipeline's batch of K·b latents), so the rows a rollout sends
 * through it are C·(divert + 1) + C·K·(T − 1 − divert), twice that guided (fr_spo_nfe); they
 * count in be->work.fwd_rows (the run's nfe.*). The x̂0 is the mean of a DDIM step to ᾱ_prev =
 * 1 with η = 0 (√ᾱ_prev·x̂0 + 0·ε̂: x̂0 bit for bit), so it needs no op entry of its own.
 *
 * Output rows (N = 2C, what the trajectory engine trains, flowrl/traj_objective.h): rows 2c and
 * 2c + 1 of traj[j] both hold x_j of chain c; at a step j >= divert, x_next[j] row 2c is the best
 * candidate and row 2c + 1 the worst, mean[j] their (shared) μ and logp[j] their rollout
 * log-probs; at j < divert, x_next[j] = traj[j + 1] on both rows.
 *
 * Memory: the outputs traj, x_next, mean, logp and x are backend memory, the rest host; per step
 * the score callback brings the K·C candidates' x̂0 to the host for the reward, and the gather
 * indices cross to the backend (fr_h2d). Shapes: C chains, K candidates, T steps, D = model dims. */
#ifndef FLOWRL_SPO_H
#define FLOWRL_SPO_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

typedef struct {
    int64_t divert;     /* first step with candidates, 0 <= divert < T (public divert_start_step 4 of 20) */
    int64_t candidates; /* K >= 2 (public num_sample_each_step 2; 4 for SD 1.5) */
    float threshold;    /* the margin rule's threshold, in [0, 1) (public 0.3) */
} fr_spo_cfg;

/* FR_ERR_ARG naming the field, for a rollout of T steps. */
fr_status fr_spo_cfg_check(const fr_spo_cfg *c, int64_t T);

/* The margin rule (SPO preference_score_compare): p = softmax([s_best, s_worst]) in float as
 * torch computes it (e = exp(s_worst − s_best), p = [1/(1 + e), e/(1 + e)]); keep iff p[0] − p[1]
 * > threshold. p[0] − p[1] = tanh((s_best − s_worst)/2): the rule keeps a pair whose score gap
 * exceeds 2·atanh(threshold) (0.619 for 0.3) in the reward's own units, so scaling a reward
 * changes which pairs are kept. s_best >= s_worst, both finite. */
int fr_spo_keep(float s_best, float s_worst, float threshold);

/* best = the first index of the highest of the K scores, worst = the last index of the lowest. */
void fr_spo_rank(int64_t K, const float *score, int64_t *best, int64_t *worst);

/* The continuation candidate of chain id s at step j: u32 (seed, FR_RNG_SPO_CHOICE, c0, s, j, 0) mod K. */
int64_t fr_spo_choice(uint32_t seed, uint32_t c0, uint32_t s, int64_t j, int64_t K);

/* The reward of n samples x0 (n, D, backend memory: the callback brings them to the host, as
 * the run loop counts a reward's input) of prompts prompt_ids (n,, host) into score (n,, host). */
typedef fr_status (*fr_spo_score_fn)(void *user, int64_t n,
                                     const int *prompt_ids, // (n,) host
                                     const float *x0,       // (n, D) backend
                                     float *score);         // (n,) out, host

typedef struct {
    float *traj;    /* (T+1, 2C, D) backend */
    float *x_next;  /* (T, 2C, D) backend */
    float *mean;    /* (T, 2C, D) backend */
    float *logp;    /* (T, 2C) backend */
    float *x;       /* (C, D) backend: the chains' final samples */
    float *score;   /* (T, C, K) host: the candidates' scores; NaN at steps < divert */
    int64_t *pick;  /* (T, C, 3) host: best, worst, next candidate; -1 at steps < divert */
    uint8_t *kept;  /* (T, C) host: 1 where the pair of (j, c) is kept */
} fr_spo_out;

/* The rollout above of C chains. rc: a ddim configuration with η > 0 (fr_rollout's checks; its
 * T, grid, η, x̂0 clip, guidance, seed, c0 and batch: rows per forward, <= 0: all; the chains
 * run in blocks of ⌊batch/K⌋ (at least 1) through every step, which never changes the bits);
 * its step_noise, sharing and branch fields must be unset. Every output pointer is required. */
fr_status fr_spo_rollout(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                         const fr_spo_cfg *sc, int64_t C,
                         const int *prompt_ids,      // (C,) host
                         const uint32_t *sample_ids, // (C,) host
                         fr_spo_score_fn score, void *user, const fr_spo_out *out);

/* The network rows of that rollout: C·(divert + 1) + C·K·(T − 1 − divert), ×2 guided. */
int64_t fr_spo_nfe(const fr_rollout_cfg *rc, const fr_spo_cfg *sc, int64_t C);

#endif
