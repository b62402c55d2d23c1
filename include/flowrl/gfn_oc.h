/* Outcome-conditioned GFlowNets (OC-GFN; Pan, Jain, Madan, Bengio, arXiv 2310.03419; spec
 * more.md §8.1; docs/algorithms/gfn-oc.md). The paper's exact losses are [unverified] and it has
 * no public code: flowrl builds the spec's HyperGrid goal-reaching DB baseline only.
 *
 * Pre-training (`gfn-oc`, core/gfn_oc.c over the GFlowNet trainer of flowrl/gfn_train.h with
 * o.outcome): a goal-conditioned P_F(· | s, y), P_B(· | s', y), log F(s | y), the input the state's
 * encoding followed by the outcome y's (y is a state, encoded like one); each trajectory draws y
 * uniformly over the states, the sparse reward R(x | y) = 1[x = y] enters as log R = 0 or a finite
 * floor, and a hindsight coin relabels y := x (the reached terminal) before the DB loss.
 *
 * Fine-tuning (`gfn-oc-ft`, core/gfn_oc_ft.c): the pre-trained conditional policy frozen, a learned
 * outcome sampler q(y) = softmax_y g(enc y) (an MLP g over the outcome's encoding: the amortised
 * predictor of the spec's marginalisation) and log Z, trained with trajectory balance on the
 * composed sampler y ~ q, x ~ P_F(· | y) against the downstream reward R(x). */
#ifndef FLOWRL_GFN_OC_H
#define FLOWRL_GFN_OC_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn_train.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

/* log R(x | y) of terminal state index x for outcome index y: 0 if x = y, else floor. */
double fr_oc_log_reward(int64_t x, int64_t y, double floor);
/* Hindsight relabelling: the outcome a trajectory trains on, x (its terminal) if u < p, else y. */
int64_t fr_oc_relabel(int64_t y, int64_t x, double u, double p);
/* An outcome index uniform over n states from a 32-bit draw v: floor(v·n / 2³²). */
int64_t fr_oc_outcome_of(uint32_t v, int64_t n);
/* log Z(y) = log Σ_x R(x | y) = log(1 + (n − 1)·e^floor), the same for every y. */
double fr_oc_log_z(int64_t n, double floor);

/* The exact goal-reaching of an OC-GFN trainer (o.outcome), no sampling: for every outcome y the
 * exact P_T(· | y) of its forward policy (dynamic programming over the DAG, fr_env_exact_pt) and
 * *rate = mean_y P_T(y | y), *l1 = mean_y Σ_x |P_T(x | y) − R(x | y)/Z(y)|, *log_z_err = mean_y
 * |log F(s0 | y) − log Z(y)|; pty (n, n) (may be NULL): row y is P_T(· | y). Any output may be NULL. */
fr_status fr_gfn_oc_eval(fr_gfn_trainer *t, double *rate, double *l1, double *log_z_err, double *pty);
/* The outcome of each trajectory of the last iteration (after relabelling), (batch,). */
const int64_t *fr_gfn_oc_goals(const fr_gfn_trainer *t);

/* ---- fine-tuning to a downstream reward -------------------------------------------------- */
typedef struct {
    int64_t batch;          /* trajectories per iteration */
    int64_t hidden, n_hidden; /* the conditional network's (the pre-trained checkpoint's) */
    int64_t q_hidden;       /* the outcome predictor g: Linear(obs, q_hidden) → ReLU → Linear(q_hidden, 1) */
    double oc_log_floor;    /* the conditional's pre-training floor (its target in the evaluation) */
    double init_log_z;
    uint32_t seed;
    const char *pretrained; /* a gfn-oc checkpoint (trunk.*, head.*); NULL or "": the initial network */
} fr_oc_ft_opts;

typedef struct fr_oc_ft fr_oc_ft;

/* A fine-tuner of env's own reward (env borrowed, enumerable; be borrowed). FR_ERR_FORMAT naming
 * the file and tensor for a checkpoint whose shapes are not --hidden-dim / --n-hidden's. */
fr_status fr_oc_ft_new(fr_oc_ft **out, fr_backend *be, const fr_env *env, const fr_oc_ft_opts *o);
void fr_oc_ft_free(fr_oc_ft *f);
/* One iteration without the optimiser: y_b ~ q (Philox (seed, FR_RNG_OC_FT_OUTCOME, iteration, b,
 * 0)), x_b from the frozen P_F(· | y_b) (Philox (seed, FR_RNG_OC_FT_ACTION, iteration, b, step)), the
 * TB residual r_b = log Z + log q(y_b) − log R(x_b), loss mean_b r_b², its gradients in the
 * parameters' grads. */
fr_status fr_oc_ft_grad(fr_oc_ft *f, double *loss);
/* The fine-tuning loss of a batch (§3): r_b = log_z + lq[y_b] − logr_b, returns mean_b r_b²; lq (n,)
 * the log-softmax of the n outcome logits; *g_log_z (may be NULL) Σ_b 2 r_b / B, both float64;
 * dlogit (n,) (may be NULL) its gradient in the logits Σ_b (2 r_b / B)(δ_{j y_b} − e^{lq_j}) in float
 * (it crosses to the backend so): (float)(−g_log_z·e^{lq_j}), then each b in order adds 2 r_b / B to
 * its y_b's entry, rounded to float after each addition. */
double fr_oc_ft_loss(int64_t n, const double *lq, int64_t B, const int64_t *y, const double *logr, double log_z,
                     float *dlogit, double *g_log_z);
/* The trainable list (backend memory): g's tensors (n_net), then log Z ("log_z", (1,)). */
int fr_oc_ft_params(fr_oc_ft *f, fr_param **ps, int *n_net);
/* Exact: the composed sampler's P(x) = Σ_y q(y)·P_T(x | y), *l1 = Σ_x |P(x) − R(x)/Z|, *log_z_err
 * = |log Z − log Z_true|, *log_z, *q_l1 = Σ_y |q(y) − R(y)/Z| (the predictor alone), *floor_l1 =
 * the l1 with q = R/Z exactly (what the frozen conditional allows). Any output may be NULL. */
fr_status fr_oc_ft_eval(fr_oc_ft *f, double *l1, double *log_z_err, double *log_z, double *q_l1, double *floor_l1);
/* Iterations and trajectories as ocft.counters, and back. */
fr_status fr_oc_ft_save(fr_oc_ft *f, fr_st_file *st);
fr_status fr_oc_ft_load(fr_oc_ft *f, const fr_st_file *st, const char *path);
int64_t fr_oc_ft_trajectories(const fr_oc_ft *f);
/* The trainable parameters' digest (g's arena, then log Z) and their count. */
fr_status fr_oc_ft_digest(fr_oc_ft *f, uint64_t *digest, int64_t *n_params);

#endif
