/* Guided trajectory balance and the relative-edge-flow ("ssr") policy (docs/algorithms/gfn-guided.md;
 * spec more.md §8.4; Shen et al., ICML 2023, public code maxwshen/gflownet@4203ec04
 * gflownet/GFNs/models.py SubstructureGFN, gflownet/GFNs/basegfn.py, gflownet/policy.py,
 * gflownet/guide.py, gflownet/trainers.py).
 *
 * A trajectory b is s_0 → … → s_{n−1} = x → s_f (n actions, the last the exit). Its chains, in
 * float64, summed in step order as basegfn.py's accumulate_by_traj:
 *   fwd[b]  = log Z + Σ_t log P_F(s_{t+1} | s_t)                         (log Z first)
 *   back[b] = log R(x) + Σ_t log P_B(s_t | s_{t+1})                       (log R first; the exit's P_B = 1)
 *   pb[b]   = Σ_t log P_B(s_t | s_{t+1})                                   (the same terms from 0)
 *   lpg[b]  = log P_guide(τ_b | x_b), the guide's log-probability of the trajectory.
 *
 * Losses (clamp(v, 100) = min(v, 100), no gradient where v > 100, so none once |residual| > 10):
 *   plain TB    L = mean_b clamp((fwd − back)², 100), the gradient into P_F, log Z and P_B
 *               (basegfn.py batch_loss_trajectory_balance without a guide);
 *   guided TB   T = w·sg(back) + (1 − w)·(lpg + log R), L_TB = mean_b clamp((fwd − T)², 100) into
 *               P_F and log Z; L_B = mean_b clamp((B_b − lpg)², 100) into P_B, with B_b = pb[b]
 *               (FR_GTB_PB_GUIDE, flowrl's default: the presumably intended Σ log P_B against log
 *               P_guide) or back[b] (FR_GTB_PB_CODE: the code's, which also holds log R, so P_B is
 *               pulled toward log P_guide − log R). */
#ifndef FLOWRL_GFN_GUIDED_H
#define FLOWRL_GFN_GUIDED_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

#define FR_GTB_CLAMP 100.0 /* the losses' clamp, torch.clamp(..., max=10**2) */

typedef enum { FR_GTB_PB_GUIDE = 0, FR_GTB_PB_CODE = 1 } fr_gtb_pb_target;

/* ---- the loss (core/gfn_guided_loss.c) ------------------------------------------------------ */
typedef struct {
    int64_t B;
    const double *fwd, *back; /* (B,) the chains above */
    const double *pb;         /* (B,) Σ log P_B (FR_GTB_PB_GUIDE; may be NULL otherwise) */
    const double *logr;       /* (B,) */
    const double *lpg;        /* (B,) log P_guide(τ|x); NULL: plain TB */
    double w;                 /* target_mix_backpolicy_weight (0.5) */
    fr_gtb_pb_target pb_target;
} fr_gtb_batch;

/* *l_tb and *l_b (guided; 0 for plain TB); resid (B,) (may be NULL): fwd − T (plain TB: fwd − back).
 * Gradients (each (B,), may be NULL): g_fwd = ∂L_TB/∂fwd[b] (also ∂/∂ log Z after a sum over b and
 * ∂/∂ log P_F of every step of b), g_back = ∂L/∂ log P_B of every step of b (plain TB: of L; guided:
 * of L_B). FR_ERR_NUMERIC naming the array and the slot for a non-finite input. */
fr_status fr_gtb_loss(const fr_gtb_batch *b, double *l_tb, double *l_b, double *resid, double *g_fwd, double *g_back);

/* ---- the substructure guide on HyperGrid (core/gfn_guided_loss.c) -------------------------- */
/* "s contains x'" (guide.py is_member) on HyperGrid: x' is reachable from s, s_d <= x'_d for every
 * d; the terminal s_f of x contains x alone. The guide's children of node toward x (s <= x): the
 * increments d with node_d < x_d, or the exit alone once node = x. Each child c scores the mean R
 * of the observed x' ≠ x it contains (obs (n_obs, D), obs_r (n_obs,) R, in the order they were
 * observed); when any score is > 0 every score is floored at 1e-5 and p ∝ score^temperature
 * (a softmax of temperature·log score), else p is uniform. Writes the k children's actions (the
 * exit as e->exit_action) into act and p into p (each n_actions wide); returns k (0: x is not
 * reachable from node). */
int fr_gtb_guide_probs(const fr_env *e, const int32_t *node, const int32_t *x, int64_t n_obs, const int32_t *obs,
                       const double *obs_r, double temperature, int32_t *act, double *p);

/* trainers.py __biased_sample_xs's split: the 90th percentile of r (n,) (numpy's linear one) into
 * *thr; top[i] = r[i] >= thr, bottom = r[i] <= thr. */
double fr_gtb_percentile90(const double *r, int64_t n);

/* ---- the trainer (core/gfn_guided.c) --------------------------------------------------------- */
typedef enum { FR_GTB_SA = 0, FR_GTB_SSR = 1 } fr_gtb_policy;

typedef struct {
    fr_gtb_policy policy;       /* sa: MLP state → action logits; ssr: scorer(enc(s) ‖ enc(s')) over children */
    int guided;                 /* 1: guided TB (SubstructureGFN), 0: plain TB (TBGFN) */
    fr_gtb_pb_target pb_target; /* guided: L_B's P_B chain */
    double w;                   /* 0.5 */
    int64_t batch;              /* online and offline batch (16) */
    int64_t hidden, n_hidden;   /* sa: 16 x 2; ssr: encoder and scorer 16 x 1 */
    int64_t embed;              /* ssr embedding (16) */
    double epsilon;             /* online exploration (0.1) */
    double guide_temperature;   /* 1.0 */
    int uniform_guide;          /* 1: guide.py probs_uniform, uniform over the children that contain x */
    double logit_clip;          /* logits clipped to [−c, c] (50) */
    double clip_norm;           /* per-policy gradient-norm clip (10; 0 off) */
    double init_log_z;          /* 5.0 (basegfn.py) */
    double log_z_floor;         /* log Z clamped below to it after each step (0: basegfn.py's logZ_lower) */
    uint32_t seed;
} fr_gtb_opts;

fr_gtb_opts fr_gtb_opts_default(void);

typedef struct fr_gtb_trainer fr_gtb_trainer;

/* env: HyperGrid (the guide's "contains"), enumerable. FR_ERR_ARG naming the option otherwise. */
fr_status fr_gtb_trainer_new(fr_gtb_trainer **out, fr_backend *be, const fr_env *env, const fr_gtb_opts *o);
void fr_gtb_trainer_free(fr_gtb_trainer *t);

/* The parameters: P_F's n_f tensors, then P_B's n_b, then log Z ("log_z", (1,)). Returns the count. */
int fr_gtb_trainer_params(fr_gtb_trainer *t, fr_param **ps, int *n_f, int *n_b);

/* Round e, batch u (0 online, 1 offline), trainers.py: u = 0 draws o.batch trajectories from P_F
 * (ε-uniform over the children, Philox (seed, FR_RNG_GTB_ONLINE, e, trajectory, step)) and adds
 * their x to the observed set; u = 1 selects o.batch observed x (half from the top 10% of rewards,
 * half from the rest; Philox (seed, FR_RNG_GTB_OFFLINE, e, draw, 0); none while fewer than 10 are
 * observed: *trained 0). Guided: each x gets a trajectory from the guide (Philox (seed,
 * FR_RNG_GTB_GUIDE, e, 2·b + u, step)); plain TB: the online trajectories themselves, offline ones
 * drawn back from x with P_B (Philox (seed, FR_RNG_GTB_BACK, e, b, step)). Then the loss and its
 * gradients into the parameters' grads (zeroed first), P_F's and P_B's each clipped to o.clip_norm.
 * The caller steps the optimiser and then calls fr_gtb_trainer_clamp_log_z. */
fr_status fr_gtb_trainer_grad(fr_gtb_trainer *t, int64_t e, int u, int *trained, double *l_tb, double *l_b);

/* log Z = max(log Z, o.log_z_floor) (basegfn.py clamp_logZ). */
fr_status fr_gtb_trainer_clamp_log_z(fr_gtb_trainer *t);

/* *l1 = Σ_x |P_T(x) − R(x)/Z| of P_F at ε 0 (exact), *log_z = the parameter, *modes = distinct
 * mode cells observed so far, *observed = distinct x observed. Any may be NULL. */
fr_status fr_gtb_trainer_eval(fr_gtb_trainer *t, double *l1, double *log_z, int64_t *modes, int64_t *observed);

/* The observed set (gtb.observed: the x's canonical indices in observation order) and back. */
fr_status fr_gtb_trainer_save(fr_gtb_trainer *t, fr_st_file *f);
fr_status fr_gtb_trainer_load(fr_gtb_trainer *t, const fr_st_file *f, const char *path);

/* The log-probabilities the trainer's policy gives (tests): for Q queries (state (Q, D), action
 * (Q,)) of direction dir (0: P_F of the child through action a of s, the exit as e->exit_action;
 * 1: P_B of the parent of s through backward action a), logp (Q,); with g (Q,) non-NULL also
 * back-propagates Σ_q g[q]·logp[q] into the parameters' grads (added). */
fr_status fr_gtb_trainer_logp(fr_gtb_trainer *t, int dir, int64_t Q, const int32_t *state, const int32_t *action,
                              double *logp, const double *g);

fr_status fr_gtb_trainer_digest(fr_gtb_trainer *t, uint64_t *digest, int64_t *n_params);

#endif
