/* FL-GFN on the set task (docs/algorithms/flgfn.md; spec more.md §8.5; public code
 * ling-pan/FL-GFN@b777e17f set/gflownet.py).
 *
 * The environment "set" (core/flgfn.c; kind "set": neither table of flowrl/env.h): choose
 * set_size of action_dim items without replacement (small 20 of 30, medium 60 of 80, large 80 of
 * 100); item a has the energy E[a] hard-coded in the public code (copied as data, cited); a step
 * adding a has reward exp(−E[a]) and R(x) = Π_t exp(−E[a_t]), so log R(x) = −Σ_t E[a_t].
 *
 * The model: one MLP, input the 0/1 state (D = action_dim), output D P_F logits (masked to the
 * items not in s), D P_B logits (masked to the items in s'; uniform_pb zeroes them: the code's
 * rand_pb) and one log-flow log F̃(s).
 *
 * Losses over a batch of B trajectories of n = set_size transitions s_t → s_{t+1}, averaged over
 * the B·n transitions (float64):
 *   FL-DB  δ_t = log F̃(s_t) + log P_F(a_t|s_t) − log P_B(a_t|s_{t+1}) − log F̃(s_{t+1}) + E[a_t],
 *          with log F̃(s_n) := 0 (pinned, as the paper) or the network's output (the code: pin 0);
 *   DB     δ_t = log F(s_t) + log P_F − log P_B − log F(s_{t+1}), the last (t = n − 1) with log R(x)
 *          in place of log F(s_n). */
#ifndef FLOWRL_FLGFN_H
#define FLOWRL_FLGFN_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/optim.h"
#include "flowrl/status.h"

/* ---- the environment ------------------------------------------------------------------------ */
typedef enum { FR_SET_SMALL = 0, FR_SET_MEDIUM = 1, FR_SET_LARGE = 2 } fr_set_size;
extern const fr_env_class fr_env_set;
/* The instance's items D, set size n and energies (D,) (borrowed). */
int fr_set_items(const fr_env *e);
int fr_set_size_of(const fr_env *e);
const double *fr_set_energies(const fr_env *e);
/* The largest log R over all sets: −(the sum of the n smallest energies). */
double fr_set_max_log_r(const fr_env *e);
/* Exactly, under the target p(x) = R(x)/Z: E_p[log R] = −Σ_a P(a ∈ x)·E[a], P(a ∈ x) = w_a e_{n−1}(w
 * without a) / e_n(w), w = exp(−E), e_k the elementary symmetric polynomials (float64); *log_z
 * (may be NULL) = log e_n(w). */
double fr_set_target_mean_log_r(const fr_env *e, double *log_z);

/* ---- the loss ------------------------------------------------------------------------------- */
typedef enum { FR_FLGFN_FLDB = 0, FR_FLGFN_DB = 1 } fr_flgfn_loss_kind;

/* B trajectories of n transitions: lpf, lpb, energy (B, n): log P_F(a_t|s_t), log P_B(a_t|s_{t+1}),
 * E[a_t]; logf (B, n + 1): the network's log F̃(s_t) / log F(s_t), t <= n (slot n read only by
 * FL-DB with pin 0). *loss = mean of δ² over the B·n transitions; resid (B, n) and the gradients
 * g_lpf, g_lpb (B, n), g_logf (B, n + 1) may be NULL. FR_ERR_NUMERIC for a non-finite input. */
fr_status fr_flgfn_loss(fr_flgfn_loss_kind k, int pin, int64_t B, int n, const double *lpf, const double *lpb,
                        const double *logf, const double *energy, double *loss, double *resid, double *g_lpf,
                        double *g_lpb, double *g_logf);

/* ---- the trainer ---------------------------------------------------------------------------- */
typedef struct {
    fr_flgfn_loss_kind loss;
    int pin;          /* FL-DB: log F̃(s_n) := 0 (1, flowrl's default) or the network's (0, the code) */
    int uniform_pb;   /* the code's rand_pb */
    int64_t batch;    /* 16 */
    int64_t hidden, n_hidden; /* 256 x 2 */
    double epsilon;   /* the code's exp_weight: ε-uniform over the items not yet chosen */
    uint32_t seed;
} fr_flgfn_opts;

typedef struct fr_flgfn_trainer fr_flgfn_trainer;

fr_status fr_flgfn_trainer_new(fr_flgfn_trainer **out, fr_backend *be, const fr_env *env, const fr_flgfn_opts *o);
void fr_flgfn_trainer_free(fr_flgfn_trainer *t);
/* The network's parameters (backend memory). */
int fr_flgfn_trainer_params(fr_flgfn_trainer *t, fr_param **ps);
/* Epoch e: o.batch trajectories (ε-mixed; Philox (seed, FR_RNG_FLGFN_ACTION, e, trajectory,
 * step)), the loss and its gradient into the parameters' grads (zeroed first). */
fr_status fr_flgfn_trainer_grad(fr_flgfn_trainer *t, int64_t e, double *loss);
/* n on-policy sets (ε 0; Philox (seed, FR_RNG_FLGFN_EVAL, chunk, trajectory, step), the same at
 * every call): *mean_log_r over them and *top_r = the mean R of the (up to) 100 best distinct sets
 * among them (the code's mean_top_k_R over one evaluation's samples). */
fr_status fr_flgfn_trainer_eval(fr_flgfn_trainer *t, int64_t n, double *mean_log_r, double *top_r);
fr_status fr_flgfn_trainer_digest(fr_flgfn_trainer *t, uint64_t *digest, int64_t *n_params);

#endif
