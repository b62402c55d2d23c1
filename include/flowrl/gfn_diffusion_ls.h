/* The replay buffer and the Langevin local search of the diffusion samplers' off-policy training
 * (docs/algorithms/gfn-diffusion.md §8; Sendera et al. 2024 §3; GFNOrg/gfn-diffusion@255b499
 * energy_sampling/buffer.py ReplayBuffer, langevin.py langevin_dynamics, train.py
 * bwd_train_step). Host code, float64; every draw from Philox.
 *
 *   buffer   the last cap terminal states x (D,) with their log R, first in first out. Rank
 *            priority (buffer.py, --prioritized rank): the item of rank r (0 = the highest log R)
 *            is drawn with probability ∝ 1 / (rank_weight·N + r), N the items held; uniform
 *            otherwise. Draws are with replacement.
 *   MALA     x' = x + h·∇log R(x) + √(2h)·ε, accepted with probability min(1, R(x')q(x|x') /
 *            (R(x)q(x'|x))), log q(x'|x) = −‖x' − x − h·∇log R(x)‖² / (4h); the step h is adapted
 *            each iteration (×1.01 while the acceptance rate of the last window of 5 iterations is
 *            above the target, ×0.99 otherwise) when schedule is on; the accepted proposals after
 *            the burn-in are the search's output. */
#ifndef FLOWRL_GFN_DIFFUSION_LS_H
#define FLOWRL_GFN_DIFFUSION_LS_H

#include <stdint.h>

#include "flowrl/env.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

typedef struct fr_gfnd_replay fr_gfnd_replay;

/* A buffer of cap items of D doubles; rank: rank-prioritised draws with rank_weight, else uniform. */
fr_status fr_gfnd_replay_new(fr_gfnd_replay **out, int64_t cap, int64_t D, int rank, double rank_weight);
void fr_gfnd_replay_free(fr_gfnd_replay *r);
int64_t fr_gfnd_replay_size(const fr_gfnd_replay *r);

/* Appends n items x (n, D), logr (n,), the oldest dropped beyond cap. */
fr_status fr_gfnd_replay_add(fr_gfnd_replay *r, const double *x, const double *logr, int64_t n);

/* n draws with replacement into x (n, D), logr (n,) (idx (n,): the items' ranks in the order of
 * log R, may be NULL); draw i from the two words 2i, 2i + 1 of Philox (seed, purpose, c0, c1, 0).
 * Fails on an empty buffer. */
fr_status fr_gfnd_replay_sample(fr_gfnd_replay *r, int64_t n, uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1,
                                double *x, double *logr, int64_t *rank);

/* Checkpoint tensors PREFIX.x (N, D) F64, PREFIX.logr (N,) F64, PREFIX.seq (N,) I64 and
 * PREFIX.meta (2,) I64 (next slot, next sequence number), N = the items held. */
fr_status fr_gfnd_replay_save(const fr_gfnd_replay *r, fr_st_file *f, const char *prefix);
fr_status fr_gfnd_replay_load(fr_gfnd_replay *r, const fr_st_file *f, const char *prefix, const char *path);

/* log of MALA's acceptance ratio of x → xn (D,) with g = ∇log R(x), gn = ∇log R(xn), lr, lrn the
 * log R, step h: (lrn − lr) + log q(x | xn) − log q(xn | x). */
double fr_gfnd_mala_log_accept(const double *x, const double *xn, const double *g, const double *gn, double lr,
                               double lrn, double h, int64_t D);

typedef struct {
    int64_t iters;       /* max_iter_ls (200) */
    int64_t burn_in;     /* accepted proposals of iterations i > burn_in are kept (100) */
    double step;         /* ld_step h at iteration 0 (0.001; the README's LS runs: 0.1) */
    int schedule;        /* ld_schedule: adapt h to target_rate */
    double target_rate;  /* 0.574 */
} fr_gfnd_ls_opts;

typedef struct {
    int64_t kept;        /* proposals added to out */
    double accept_rate;  /* over every proposal */
    double last_step;    /* h of the last iteration */
} fr_gfnd_ls_info;

/* n MALA chains from x (n, D) with log R lr (n,) (both updated in place), on env's target;
 * noise of chain b at iteration i: Philox (seed, FR_RNG_GFND_LS_NOISE, c0, b, i) element d; its
 * acceptance coin: (seed, FR_RNG_GFND_LS_ACCEPT, c0, i, 0) element b. The kept proposals go to
 * out in one add. */
fr_status fr_gfnd_local_search(const fr_env *env, const fr_gfnd_ls_opts *o, int64_t n, double *x, double *lr,
                               uint32_t seed, uint32_t c0, fr_gfnd_replay *out, fr_gfnd_ls_info *info);

#endif
