/* A GFlowNet trainer on an enumerable discrete environment (flowrl/env.h; docs/algorithms/gfn.md
 * §2–§5): torchgfn's MLP policy (a tied trunk Linear(in, H) → ReLU → [Linear(H, H) → ReLU] ×
 * (n_hidden − 1) with one linear head holding the P_F logits, the P_B logits unless uniform_pb,
 * and log F for DB / SubTB), a learned log Z for TB, trajectories sampled in lock-step with
 * actions drawn from Philox (seed, FR_RNG_GFN_ACTION, iteration, trajectory, step), ε-uniform
 * exploration, the losses of flowrl/gfn.h, AdamW in two groups (the network at lr and weight
 * decay, log Z at lr_z without decay, as train_hypergrid.py), and the exact evaluation of §5.1.
 *
 * The network runs through the op table (gemm, bias_add, act_fwd / act_bwd, bias_grad, adamw):
 * its weights, activations and gradients are backend memory. The outputs cross to the host once
 * per forward (at most 2A values a row: per-sample scalars) where the masked log-softmax, the ε mixture,
 * the action draws and the loss are float64 host code, and the logits' gradient crosses back
 * once per update; so every backend gives the bits of ref. */
#ifndef FLOWRL_GFN_TRAIN_H
#define FLOWRL_GFN_TRAIN_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

typedef struct {
    fr_gfn_loss_kind loss;
    int64_t batch;      /* trajectories per iteration */
    int64_t hidden;     /* H (256) */
    int64_t n_hidden;   /* hidden layers (torchgfn's test configuration: 2) */
    int uniform_pb;     /* 1: P_B uniform over the parents (DiscreteUniform) */
    double lr, lr_z, weight_decay;
    double epsilon;     /* ε of the exploration mixture (0: on-policy) */
    double temperature; /* sampling logits divided by it (1) */
    double sf_bias;     /* subtracted from the exit's sampling logit (0) */
    double lambda;      /* SubTB's λ (0.9) */
    double init_log_z;  /* 0 */
    uint32_t seed;
    int forward_looking;                /* DB, SubTB: log F(s) = log F̃(s) + log R(s) (§3.4) */
    fr_gfn_subtb_weighting weighting;   /* SubTB (geometric_within) */
    fr_gfn_regression regression;       /* g (square) */
    double linex_alpha;                 /* Linex's α (1) */
    double log_reward_clip_min;         /* log R clamped below at it in the loss (−inf: off, torchgfn v2) */
    int64_t replay;                     /* replay buffer capacity in trajectories (0: off) */
    double beta;                        /* RTB: the reward's exponent (1) */
    const char *prior;                  /* RTB: a checkpoint of an earlier gfn run (its trunk.* and the
                                           P_F rows of head.*); NULL or "": the initial network */
    /* Local search (docs/algorithms/gfn.md §10, spec gflownets.md §10; Kim et al., ICLR 2024;
     * torchgfn LocalSearchSampler): ls_rounds > 0 refines each fresh trajectory ls_rounds times
     * (destroy K = ⌈ls_back_ratio·(n − 1)⌉ steps with P_B, rebuild with P_F, accept greedily or,
     * with ls_mh, by Metropolis–Hastings) and trains on the fresh and the refined ones (2·batch). */
    int64_t ls_rounds;                  /* 0: off */
    double ls_back_ratio;               /* α in (0, 1] (0.5) */
    int ls_mh;                          /* 1: Metropolis–Hastings acceptance, 0: greedy (torchgfn's default) */
    /* Preference-conditioned multi-objective GFlowNet (docs/algorithms/gfn.md §13, spec
     * gflownets.md §11, MOGFN-PC): on an environment with 2 objectives, each trajectory draws
     * ω ~ Dirichlet(1, 1), the policy's input is the state's encoding followed by ω, and the
     * reward is R(x | ω) = (Σ_i ω_i R_i(x))^β. TB's log Z becomes log Z(ω), a head column read at
     * (s0, ω) (the SubTB `TB` weighting with log F(s0 | ω), the identity of spec §13.3). */
    int preference;                     /* 1: on (TB, DB, SubTB, ZVar) */
    double mo_beta;                     /* β, constant (1); with a drawn β, the evaluation's */
    /* β drawn per trajectory (spec gflownets.md §11, recursionpharma/gflownet TemperatureConditional):
     * mo_beta_dist 0 constant (mo_beta), 1 gamma(shape a, scale b), 2 uniform [a, b], 3 log-uniform
     * [a, b], 4 beta(a, b); rounded to float32 as the public code's; the policy's input then also holds
     * its thermometer encoding over mo_beta_therm bins on [0, upper] (upper: gamma's 95% quantile, b,
     * b, 1). Philox (seed, FR_RNG_GFN_BETA, iteration, trajectory, 0). */
    int mo_beta_dist;
    double mo_beta_a, mo_beta_b;
    int mo_beta_therm;                  /* thermometer bins (32) */
    /* OP-GFN's KL(P_B ‖ uniform) regulariser (docs/algorithms/gfn.md §9; yhangchen/OP-GFN
     * KLTrajectoryBalance / orderingedTrajectoryBalance KL_weight): the loss gains kl_weight · the
     * mean over every visited state but s0 (the terminal one included) of fr_gfn_kl_uniform of its
     * learned P_B. 0: off; > 0 needs a learned P_B (not uniform_pb) and a loss with one (not fm, rtb). */
    double kl_weight;
    /* Outcome-conditioned GFlowNet pre-training (OC-GFN, docs/algorithms/gfn-oc.md; spec more.md §8.1,
     * flowrl/gfn_oc.h): DB only; the policy's input is the state's encoding followed by the outcome
     * y's (a state, encoded like one); y ~ uniform per trajectory, R(x | y) = 1[x = y] with log R =
     * 0 or oc_log_floor; hindsight y := x with probability oc_relabel. */
    int outcome;
    double oc_log_floor;                /* log R(x | y) for x != y (finite; -10) */
    double oc_relabel;                  /* hindsight relabelling probability (0.5) */
} fr_gfn_opts;

/* torchgfn's test configuration (tutorials/examples/test_scripts.py): TB, batch 128, hidden
 * 256 × 2, learned P_B, lr 1e-3, lr_Z 0.1, weight decay 0, ε 0, temperature 1, sf_bias 0, λ 0.9, log Z
 * 0, seed 1; not forward-looking, geometric_within, square, Linex α 1, no log-reward clipping, no
 * replay buffer. The loss always uses the policy's own log-probs (ε 0, temperature 1, no sf_bias). */
fr_gfn_opts fr_gfn_opts_default(void);

typedef struct fr_gfn_trainer fr_gfn_trainer;

typedef struct {
    int64_t iteration;    /* 1-based, after the step */
    int64_t trajectories; /* so far */
    double loss;
    double log_z;         /* TB: the parameter; DB / SubTB: log F(s0); ZVar: NAN */
    int64_t modes_found;  /* distinct mode cells among the terminal states sampled so far */
    int64_t ls_accepted;  /* local search: reconstructions accepted in this iteration (0 when off) */
} fr_gfn_step_info;

/* A trainer of env (borrowed, enumerable) on be (borrowed). FR_ERR_ARG naming the option for
 * bad values.
 *
 * RTB (§3.8, relative trajectory balance): the network has the P_F head only and a learned log Z
 * (TB's group); a frozen copy of the prior policy p_prior (o.prior's weights, which also
 * initialise the trained policy: φ = prior at the start) gives log p_prior(τ) = Σ log P_F^prior;
 * the target is p_prior_T(x)·R(x)^β normalised (the prior's exact P_T), so exact_l1 and the log Z
 * error are against it. FR_ERR_FORMAT naming the file and tensor for a prior whose shapes are not
 * this network's. */
fr_status fr_gfn_trainer_new(fr_gfn_trainer **out, fr_backend *be, const fr_env *env, const fr_gfn_opts *o);
void fr_gfn_trainer_free(fr_gfn_trainer *t);

/* One iteration: sample o.batch trajectories, the loss and its gradient, AdamW. With a replay
 * buffer (o.replay = N > 0, torchgfn's ReplayBuffer and train_hypergrid.py): the fresh batch joins
 * the buffer (first in, first out, the last N kept) and the iteration trains on o.batch of the
 * buffer's trajectories drawn without replacement (a partial Fisher–Yates over the buffer, oldest
 * first, with Philox (seed, FR_RNG_GFN_REPLAY, iteration, draw)); their log-probs are those of the
 * current policy. Modes count the fresh trajectories. */
fr_status fr_gfn_trainer_step(fr_gfn_trainer *t, fr_gfn_step_info *info);

/* fr_gfn_trainer_step without AdamW: the gradients of the iteration's loss in the parameters'
 * grads (fr_gfn_trainer_params), for a caller that owns the optimiser (the run loop's gfn-*
 * algorithms, core/algo/gfn.c); info's log_z is NAN (fr_gfn_trainer_log_z after the step). */
fr_status fr_gfn_trainer_grad(fr_gfn_trainer *t, fr_gfn_step_info *info);

/* The trainable list (borrowed, backend memory): the network's n_net tensors, then log Z
 * ("log_z", (1,)) for TB. Returns its length. */
int fr_gfn_trainer_params(fr_gfn_trainer *t, fr_param **ps, int *n_net);

/* TB: the log Z parameter; DB / SubTB: log F(s0); ZVar and FM: NAN. */
fr_status fr_gfn_trainer_log_z(fr_gfn_trainer *t, double *log_z);

/* Distinct mode cells among the terminal states sampled so far. */
int64_t fr_gfn_trainer_modes(const fr_gfn_trainer *t);

/* Local search's acceptance of a reconstruction (spec gflownets.md §10, torchgfn
 * LocalSearchSampler.local_search): the log MH ratio
 *   log A = min(0, log R(x') + log P_B(τ|x) + log P_F(τ') − log R(x) − log P_B(τ'|x') − log P_F(τ))
 * into *log_a (may be NULL; the sums over the destroyed part of τ and the rebuilt part of τ', the
 * shared prefix cancelling); returns 1 to accept: greedy (mh 0) iff log R(x) <= log R(x'), MH iff
 * u < exp(log A) (u uniform in [0, 1)). */
int fr_gfn_ls_accept(int mh, double logr_new, double logr_old, double lpb_old, double lpf_new, double lpb_new,
                     double lpf_old, double u, double *log_a);

/* Multi-objective evaluation (o.preference; docs/algorithms/gfn.md §13), exact (no sampling), over
 * P preferences ω_j = ((j + ½)/P, 1 − (j + ½)/P), j < P: *l1 = mean_j Σ_x |P_T(x | ω_j) − R(x | ω_j)/Z(ω_j)|,
 * *log_z_err = mean_j |log Z(ω_j) learned − exact|, *coverage = the expected fraction of the Pareto
 * front (the environment's modes) that n samples at each ω_j hit, mean_{x ∈ front}
 * 1 − Π_j (1 − P_T(x | ω_j))^n, *front = its size. Any output may be NULL. */
fr_status fr_gfn_trainer_mo_eval(fr_gfn_trainer *t, int P, int64_t n, double *l1, double *log_z_err, double *coverage,
                                 int64_t *front);

/* OP-GFN's metric (docs/algorithms/gfn.md §9): the top-k set of an enumerable environment, the
 * states whose log R is at least the k-th largest (ties at the k-th value included, so the set
 * may exceed k), into in_top (n_states,) as 0/1; returns its size (k clamped to [1, n_states]). */
int64_t fr_gfn_topk_set(const fr_env *e, int64_t k, uint8_t *in_top);

/* The top-k metrics of the trainer's policy: *found = the fraction of the top-k set among the
 * terminal states sampled so far in training (the paper's "top-k states found"), and from the
 * exact P_T (no sampling): *mass = P_T(top-k), *expect_n = the expected fraction of the top-k set
 * that n fresh samples hit, mean_{x ∈ top-k} 1 − (1 − P_T(x))^n. Any output may be NULL. */
fr_status fr_gfn_trainer_topk(fr_gfn_trainer *t, int64_t k, int64_t n, double *found, double *mass, double *expect_n);

/* The counters beyond the parameters (iterations, trajectories, modes found, the terminal states
 * sampled so far) as gfn.counters / gfn.visited in a checkpoint, with a replay buffer also its
 * contents (gfn.replay.count, .states, .actions, .len), and back (FR_ERR_FORMAT naming path and
 * tensor). */
fr_status fr_gfn_trainer_save(fr_gfn_trainer *t, fr_st_file *f);
fr_status fr_gfn_trainer_load(fr_gfn_trainer *t, const fr_st_file *f, const char *path);

/* The exact evaluation (§5.1): *l1 = Σ|P_T − p| of the current forward policy (ε = 0) against
 * the target, *log_z_err = |log Z_learned − log Z| (NAN for ZVar). pt (n_states,) may be NULL. */
fr_status fr_gfn_trainer_eval(fr_gfn_trainer *t, double *l1, double *log_z_err, double *pt);

/* torchgfn validate's sampled L1 (§5.1): n fresh trajectories of the current policy at ε = 0,
 * in batches of o.batch whose actions come from Philox (seed, FR_RNG_GFN_EVAL, batch j, b, k)
 * (the same draws at every call), *l1 = Σ_x |p̂(x) − R(x)/Z| of their terminal states' histogram;
 * hist (n_states,) may be NULL: the counts. Its noise floor for a perfect sampler is
 * Σ_x √(2p(1−p)/(πn)) (spec gflownets.md §5.4). */
fr_status fr_gfn_trainer_sampled_l1(fr_gfn_trainer *t, int64_t n, double *l1, int64_t *hist);
/* The same n trajectories, also *jsd (may be NULL) = ½ KL(p̂‖m) + ½ KL(p‖m), m = (p̂ + p)/2, in
 * nats with 0·log 0 = 0 (torchgfn validate, spec §5.1). */
fr_status fr_gfn_trainer_sampled(fr_gfn_trainer *t, int64_t n, double *l1, double *jsd, int64_t *hist);
/* The Jensen–Shannon divergence of two distributions p, q (n,) as above. */
double fr_gfn_jsd(const double *p, const double *q, int64_t n);

/* The network's parameters (with log Z last) as one XXH3-64 digest of their bytes: the
 * test of ref = opt. n_params: how many floats (may be NULL). */
fr_status fr_gfn_trainer_digest(fr_gfn_trainer *t, uint64_t *digest, int64_t *n_params);

#endif
