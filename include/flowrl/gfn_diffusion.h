/* Diffusion samplers trained as GFlowNets on an energy target (flowrl/env.h's energy side;
 * docs/algorithms/gfn-diffusion.md; spec gflownets.md §7.1; GFNOrg/gfn-diffusion@255b499
 * energy_sampling/). A trajectory is x_0 = 0 → x_1 → … → x_T = x on R^D, Δt = 1/T, t_k = k Δt:
 *
 *   P_F  Euler–Maruyama: x_{k+1} = x_k + Δt·f(x_k, t_k) + √Δt·σ_k·ε, log σ_k² = log t_scale
 *        (+ tanh(v)·log_var_range with a learned variance); f, v from an MLP (the drift network)
 *        of x and a harmonic time embedding; with langevin, f = NN1 + NN2·∇log R(x_k).
 *   P_B  the Brownian bridge pinned at 0: x_k | x_{k+1} ~ N(x_{k+1}·k/(k+1), t_scale·Δt·k/(k+1)),
 *        log P_B of step 0 is 0.
 *   log P_F and log P_B are sums over the D dimensions, float64 on the host.
 *
 * Losses: tb (mean ½ r², r = log Z + Σ log P_F − Σ log P_B − log R, log Z learned), tb-avg
 * (VarGrad: log Z replaced by the batch mean), db (mean_b ½ Σ_k (log F_k + log P_F − log F_{k+1} −
 * log P_B)², F_T = R, log F a second MLP), subtb (Σ_b Σ_{i<j} λ^{j−i}/Σλ^{j−i} · residual², the
 * public code's sum over the batch without ½).
 *
 * The networks run through the op table (gemm, bias_add, act_fwd / act_bwd, bias_grad): weights,
 * activations and gradients are backend memory; a forward's inputs (x_k, D floats a row) cross to
 * the backend and its outputs (at most 2D + 1 floats a row) to the host, where the sampler step,
 * log-probabilities, losses and their gradients are float64 host code; the outputs' gradient
 * crosses back once per iteration. So every backend gives the bits of ref. */
#ifndef FLOWRL_GFN_DIFFUSION_H
#define FLOWRL_GFN_DIFFUSION_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

typedef enum {
    FR_GFND_TB = 0,
    FR_GFND_TB_AVG = 1,
    FR_GFND_DB = 2,
    FR_GFND_SUBTB = 3
} fr_gfnd_loss;

/* "tb", "tb-avg", "db", "subtb" (NULL for an unknown kind). */
const char *fr_gfnd_loss_name(fr_gfnd_loss k);

typedef struct {
    fr_gfnd_loss loss;
    int64_t batch;           /* trajectories per iteration (300) */
    int64_t steps;           /* T (100) */
    int64_t hidden;          /* H of both MLPs (64) */
    int64_t n_hidden;        /* hidden layers (2) */
    int64_t harmonics;       /* time embedding: sin, cos of 2π·j·t, j = 1..harmonics (64) */
    double t_scale;          /* σ² of P_F at zero log-variance, and the bridge's (5; the README's Manywell runs: 1) */
    int learned_variance;    /* 0 (the public default) */
    double log_var_range;    /* 4 */
    int langevin;            /* f = NN1 + NN2·∇log R */
    int langevin_time_scale; /* NN2(t) its own MLP of the time features alone (the paper's eq. 17, the code's
                              * LangevinScalingModelPIS); 0: NN2(x, t) a column of the drift head */
    int pis_architectures;   /* the public --pis_architectures networks (docs/algorithms/gfn-diffusion.md §1, §6):
                              * the drift (and flow) x → Linear(D, H) plus a time MLP of learned-phase features,
                              * then GELU, joint_layers × (Linear(H, H), GELU), the head (2D outputs); NN2(t)
                              * LangevinScalingModelPIS (lgv_layers); zero_init implied. hidden, harmonics as above */
    int64_t joint_layers;    /* 2 */
    int64_t lgv_layers;      /* 3 */
    int zero_init;           /* the drift head starts at 0 (the Langevin scale's bias at 0.01) */
    int clipping;            /* ∇log R clipped to ±lgv_clip, the drift head to ±gfn_clip */
    double lgv_clip, gfn_clip;
    double exploration;      /* e: sampling variance σ²Δt + e² (0: on-policy) */
    int64_t exploration_decay; /* e decays linearly to 0 over this many iterations (0: constant) */
    double subtb_lambda;     /* 2 */
    int partial_energy;      /* FL: log F_k += (1 − t_k)·log N(x_k; 0, t_scale·max(1,k)·Δt) + t_k·log R(x_k) */
    double init_log_z;       /* TB's log Z at the start (0) */
    uint32_t seed;
    /* off-policy training (docs/algorithms/gfn-diffusion.md §8; train.py --both_ways,
     * --local_search): on odd iterations the loss of B backward trajectories, P_B from terminal
     * states drawn from a replay buffer of the forward batches' x_T (with local_search: from a
     * second buffer filled by MALA from the first, every ls_cycle iterations). Off by default. */
    int both_ways;
    int local_search;        /* implies both_ways */
    int64_t buffer_size;     /* each buffer's capacity (600,000) */
    int buffer_rank;         /* rank-prioritised draws (1, --prioritized rank) or uniform (0) */
    double rank_weight;      /* 0.01 */
    int64_t ls_cycle;        /* 100 */
    int64_t ls_iters;        /* max_iter_ls (200) */
    int64_t ls_burn_in;      /* 100 */
    double ld_step;          /* 0.001 (the README's LS runs: 0.1) */
    int ld_schedule;         /* 0 (the README's LS runs: on) */
    double ls_target_rate;   /* 0.574 */
} fr_gfnd_opts;

/* The public code's defaults (train.py) with the README's TB run for the rest (zero_init,
 * clipping): TB, batch 300, T 100, t_scale 5, hidden 64 × 2, 64 harmonics, fixed variance,
 * log_var_range 4, no Langevin, lgv_clip 100, gfn_clip 10⁴, no exploration (decay 5000 when set),
 * λ 2, seed 1. */
fr_gfnd_opts fr_gfnd_opts_default(void);

typedef struct fr_gfnd_trainer fr_gfnd_trainer;

fr_status fr_gfnd_trainer_new(fr_gfnd_trainer **out, fr_backend *be, const fr_env *env, const fr_gfnd_opts *o);
void fr_gfnd_trainer_free(fr_gfnd_trainer *t);

typedef struct {
    int64_t iteration;     /* 1-based, after the step */
    int backward;          /* the batch was drawn back from a buffer (both_ways, odd iterations) */
    int64_t ls_kept;       /* proposals the local search of this iteration added (-1: none ran) */
    double ls_accept;      /* its acceptance rate */
    double loss;
    double exploration;    /* e used by this iteration */
    double log_r_mean;     /* mean log R of the batch's x_T */
} fr_gfnd_step_info;

/* One iteration: o.batch trajectories under Philox (seed, FR_RNG_GFND_NOISE, iteration, b, k),
 * the loss and its gradient into the parameters' grads (the caller's optimiser steps). With
 * both_ways, odd iterations (0-based) draw B terminal states from the buffer (Philox
 * FR_RNG_GFND_REPLAY (iteration, 1, 0)) and the trajectories back to 0 by P_B (FR_RNG_GFND_BWD
 * (iteration, b, k)); with local_search an odd iteration i with i mod ls_cycle < 2 first runs
 * MALA on B draws (FR_RNG_GFND_REPLAY (i, 0, 0)) of the forward buffer into the search's. */
fr_status fr_gfnd_trainer_grad(fr_gfnd_trainer *t, fr_gfnd_step_info *info);

/* The trainable list (borrowed, backend memory): the drift network's n_policy tensors, then the
 * flow network's (db, subtb) or log Z ("log_z", (1,); tb). Returns its length. */
int fr_gfnd_trainer_params(fr_gfnd_trainer *t, fr_param **ps, int *n_policy);

/* The evaluation (spec §7.1, 2,000 samples in the public code): n forward trajectories at ε 0
 * from Philox (seed, FR_RNG_GFND_EVAL, 0, j, k), log w = log R + Σ log P_B − Σ log P_F:
 * log Ẑ_IS = logmeanexp w, ELBO = mean w; EUBO = mean w over n ground-truth x (the target's
 * sampler at (seed, j)) with τ ~ P_B (Philox FR_RNG_GFND_BACK); the learned log Z (tb: the
 * parameter; db, subtb: log F_0; tb-avg: NAN). xs (n, D) may be NULL: the forward samples. */
typedef struct {
    double log_z_is, elbo, eubo, log_z_learned, log_z_true;
} fr_gfnd_eval;
fr_status fr_gfnd_trainer_eval(fr_gfnd_trainer *t, int64_t n, fr_gfnd_eval *ev, double *xs);

/* The iteration counter in a checkpoint (gfnd.counters) and back. */
fr_status fr_gfnd_trainer_save(fr_gfnd_trainer *t, fr_st_file *f);
fr_status fr_gfnd_trainer_load(fr_gfnd_trainer *t, const fr_st_file *f, const char *path);

/* XXH3-64 of every parameter's bytes (ref = opt); n_params: floats (may be NULL). */
fr_status fr_gfnd_trainer_digest(fr_gfnd_trainer *t, uint64_t *digest, int64_t *n_params);

/* ---- the pieces, for the tests (host, float64) ------------------------------------------- */

/* log N(y; m, v) summed over D dims. */
double fr_gfnd_log_normal(const double *y, const double *m, const double *v, int64_t D);

/* log P_B(x_k | x_{k+1}) of the bridge (0 at k = 0). */
double fr_gfnd_log_pb(const double *xk, const double *xk1, int64_t k, int64_t D, double t_scale, int64_t T);

/* The loss of kind k over B trajectories of T steps: logpf, logpb (B, T), logf (B, T + 1) with
 * logf[:, T] = log R (db, subtb; else NULL), logr (B,), log_z (tb), lambda (subtb); gradients
 * g_logpf (B, T), g_logf (B, T + 1) (may be NULL), *g_log_z (tb). */
fr_status fr_gfnd_loss_eval(fr_gfnd_loss k, int64_t B, int64_t T, const double *logpf, const double *logpb,
                       const double *logf, const double *logr, double log_z, double lambda, double *loss,
                       double *g_logpf, double *g_logf, double *g_log_z);

#endif
