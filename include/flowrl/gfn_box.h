/* The Box environment and its GFlowNet (docs/envs.md §8, docs/algorithms/gfn-box.md; spec
 * gflownets.md §6; Lahlou et al., ICML 2023, §4.1; torchgfn 1.2.1 = GFNOrg/torchgfn@13c059a2
 * src/gfn/gym/box.py, src/gfn/gym/helpers/box_utils.py, tutorials/examples/train_box.py).
 *
 * States x ∈ [0, 1]² from s0 = (0, 0). From s0 the action is any a in the quarter disk ‖a‖ ≤ δ
 * (no exit); from any other state s it is either exit or a = δ(cos θ, sin θ) with θ in the
 * angles that keep s + a in the square; exit is forced where ‖1 − s‖ ≤ δ or some s_d ≥ 1 − ε.
 *
 *   P_F(s0)  QuarterDisk: r = ‖a‖/δ and θ/(π/2) each a mixture of Betas (one set of mixture
 *            logits, two independent mixtures), density log Mix_r(r) + log Mix_θ(θ') − log δ −
 *            log(π/2) − log(rδ).
 *   P_F(s)   QuarterCircleWithExit: exit with p = σ(z); else u = (θ' − min)/(max − min) ~ Mix
 *            of Betas, density log(1 − p) + log Mix(u) − log δ − log(π/2) − log(max − min).
 *   P_B(s')  QuarterCircle (south-western) of the forward action at s': 0 where ‖s'‖ ≤ δ (the
 *            only parent is s0), else the angle density as above with torchgfn's clamps.
 *   R(x)     R0 + R1·1[all |x_d − ½| > ¼] + R2·1[all 0.3 < |x_d − ½| < 0.4] in float32 as
 *            torchgfn's Box.reward; Z = R0 + R1/4 + 0.04·R2 (log 0.305 at the defaults).
 *
 * Every log-probability and its gradient is float64 host code with flowrl's own atan / acos /
 * lgamma / digamma (torchgfn 1.2.1 computes the angles in float64 too: "Arccos is very brittle",
 * PR #83). */
#ifndef FLOWRL_GFN_BOX_H
#define FLOWRL_GFN_BOX_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/optim.h"
#include "flowrl/safetensors.h"
#include "flowrl/status.h"

/* ---- the environment (core/env_box.c) ------------------------------------------------------ */
typedef struct {
    double delta;       /* step length δ (0.25; the paper also 0.1) */
    double r0, r1, r2;  /* 0.1, 0.5, 2 */
    double epsilon;     /* a coordinate ≥ 1 − ε forces the exit (train_box.py: 1e-10) */
} fr_box_opts;
extern const fr_env_class fr_env_box;

/* The options of a Box instance (e->cls == &fr_env_box), else NULL. */
const fr_box_opts *fr_box_of(const fr_env *e);
/* torchgfn Box.reward of x (2,): float32 coordinates, thresholds and sums. */
float fr_box_reward(const fr_box_opts *o, const double *x);
/* log Z = log(R0 + (2·0.25)²·R1 + (2·0.1)²·R2) (Box.log_partition). */
double fr_box_log_z(const fr_box_opts *o);
/* 1 where the exit is forced at s (‖1 − s‖ ≤ δ or some s_d ≥ 1 − ε). */
int fr_box_must_exit(const fr_box_opts *o, const double *s);
/* The exact target mass R/Z of each of the G × G cells [i/G, (i+1)/G) × [j/G, (j+1)/G) (cell
 * i·G + j, i along x): p (G·G,), from the reward's rectangles, float64. */
void fr_box_target_cells(const fr_box_opts *o, int G, double *p);
/* Target sample i (2,): rejection sampling from Uniform[0, 1]² with acceptance R(x)/(R0 +
 * max(R1, R2)) (train_box.py's sample_from_reward), Philox (seed, FR_RNG_BOX_TARGET, i, try). */
void fr_box_target_sample(const fr_box_opts *o, uint32_t seed, uint32_t i, double *x);

/* ---- the distributions (core/gfn_box_dist.c), float64 -------------------------------------- */
/* atan, acos (|x| ≤ 1), lgamma (x > 0), digamma (x > 0) from + − × ÷ √ and flowrl's log. */
double fr_box_atan(double x);
double fr_box_acos(double x);
double fr_box_lgamma(double x);
double fr_box_digamma(double x);

/* A mixture of K Betas over the raw network outputs: logits (K,), and the concentrations
 * α = cmin + (cmax − cmin)·σ(ra), β likewise from rb (raw: ra, rb (K,)). */
typedef struct {
    int K;
    const double *logit, *ra, *rb;
    double cmin, cmax;
} fr_box_mix;
/* log Σ_k softmax(logit)_k Beta(u; α_k, β_k); g (3K: logits, ra, rb; may be NULL) += w · the
 * gradient in the raw outputs. */
double fr_box_mix_logpdf(const fr_box_mix *m, double u, double w, double *g);

/* The angle range [min, max] (fractions of π/2) of the forward (ne = 1) or backward (ne = 0)
 * quarter circle at s (torchgfn QuarterCircle.get_min_and_max_angles). */
void fr_box_angles(double delta, int ne, const double *s, double *amin, double *amax);

/* The network's outputs of a step, raw (the layout of torchgfn's BoxPFNeuralNet before its
 * sigmoids): s0: (5·K0,) = [logits, α_θ, β_θ, α_r, β_r], K0 each; s ≠ s0: (1 + 3K,) = [exit, logits,
 * α_θ, β_θ]; P_B: (3K,) = [logits, α, β] (uniform P_B: NULL, torchgfn's BoxPBUniform: one Beta(1, 1)). */
typedef struct {
    int K0, K;           /* mixture components at s0 and elsewhere (torchgfn: 4 and 2) */
    double cmin, cmax;   /* concentration range (torchgfn train_box.py: 0.1, 5.1) */
} fr_box_policy;

/* log P_F(a | s) (exit: is_exit) and, g (may be NULL), += w · its gradient in out (s0: the 5·K0
 * raw s0 parameters; else the 1 + 3K outputs). FR_ERR_NUMERIC for a non-finite result. */
fr_status fr_box_log_pf(const fr_box_opts *o, const fr_box_policy *p, const double *s, const double *a, int is_exit,
                        const double *out, double w, double *g, double *logp);
/* log P_B(s | s') of the forward action a that led to s' (out: 3K raw outputs at s', or NULL:
 * uniform), g += w · the gradient in out. */
fr_status fr_box_log_pb(const fr_box_opts *o, const fr_box_policy *p, const double *s_next, const double *a,
                        const double *out, double w, double *g, double *logp);

/* Gamma(a, θ = 1) (a > 0) from Philox (seed, purpose, c0, c1, c2) elements *k, *k + 1, … (advanced past
 * those used; 53-bit uniforms, normals by Box–Muller): Marsaglia–Tsang, Gamma(a + 1)·U^{1/a} for a < 1. */
fr_status fr_box_gamma_draw(uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t *k, double a,
                            double *x);

/* A draw of P_F at s (s0 or not) from the outputs: a (2,) and *is_exit; every random number from
 * Philox (seed, purpose, c0, c1, c2) element 0, 1, 2, ... (uniforms of 53 bits; Betas from two
 * Gammas, Marsaglia–Tsang). */
fr_status fr_box_sample_pf(const fr_box_opts *o, const fr_box_policy *p, const double *s, const double *out,
                           uint32_t seed, uint32_t purpose, uint32_t c0, uint32_t c1, uint32_t c2, double *a,
                           int *is_exit);

/* ---- the trainer (core/gfn_box.c) ---------------------------------------------------------- */
/* DB and SubTB (train_box.py's --loss DB / SubTB) learn a state flow: an MLP of the state to log F(s)
 * (BoxStateFlowModule, untied) whose value at s0 is its own scalar ("log_f_s0", train_box.py's
 * logZ_value, 0 at the start); the loss is fr_gfn_loss's over the trajectories' per-step log-probs. */
typedef enum { FR_BOX_TB = 0, FR_BOX_ZVAR = 1, FR_BOX_DB = 2, FR_BOX_SUBTB = 3 } fr_box_loss;

typedef struct {
    fr_box_loss loss;
    int64_t batch;          /* trajectories per iteration (128) */
    int64_t hidden;         /* 128 */
    int64_t n_hidden;       /* 4 */
    fr_box_policy pol;      /* K0 4, K 2, concentrations [0.1, 5.1] */
    int uniform_pb;         /* 0: a learned P_B network (torchgfn's default, untied) */
    double init_log_z;      /* 0 */
    uint32_t seed;
    double lambda;                     /* SubTB's λ (train_box.py's subTB_lambda 0.9) */
    fr_gfn_subtb_weighting weighting;  /* SubTB (geometric_within) */
} fr_box_train_opts;

/* train_box.py's defaults (torchgfn 1.2.1): TB, batch 128, hidden 128 × 4, K0 4, K 2, concentrations
 * [0.1, 5.1], learned P_B, log Z 0, seed 1. */
fr_box_train_opts fr_box_train_opts_default(void);

typedef struct fr_box_trainer fr_box_trainer;

fr_status fr_box_trainer_new(fr_box_trainer **out, fr_backend *be, const fr_env *env, const fr_box_train_opts *o);
void fr_box_trainer_free(fr_box_trainer *t);

typedef struct {
    int64_t iteration;   /* 1-based, after the iteration */
    double loss;
    double log_r_mean;   /* of the batch's terminal states */
    double len_mean;     /* actions per trajectory, exit included */
} fr_box_step_info;

/* One iteration: o.batch trajectories under Philox (seed, FR_RNG_BOX_ACTION, iteration, b, step),
 * the loss and its gradient into the parameters' grads (the caller's optimiser steps). */
fr_status fr_box_trainer_grad(fr_box_trainer *t, fr_box_step_info *info);

/* The trainable list (borrowed, backend memory): the P_F network, the s0 parameters ("pf_s0",
 * (5·K0,)), the P_B network (unless uniform); then log Z ("log_z", (1,)) for TB, or the state-flow
 * network and "log_f_s0" (1,) for DB and SubTB. *n_net: the tensors before log Z / the flow. */
int fr_box_trainer_params(fr_box_trainer *t, fr_param **ps, int *n_net);

/* The evaluation: n terminal states of the current policy from Philox (seed, FR_RNG_BOX_EVAL, 0,
 * j, step) (the same draws at every call); their G × G histogram against the exact cell masses
 * of R/Z: *l1 = Σ|p̂ − p|, *jsd the Jensen–Shannon divergence (nats); with kde > 0 also
 * *kde_jsd, train_box.py's JSD of exponential-kernel KDEs (bandwidth 0.1) of the samples and of
 * kde target samples on the 100 × 100 grid over [0.001, 1]²; *log_z the learned log Z (TB; DB
 * and SubTB: log F(s0); ZVar: NAN). xs (n, 2) may be NULL. */
typedef struct {
    double l1, jsd, kde_jsd, log_z, log_z_true;
} fr_box_eval;
fr_status fr_box_trainer_eval(fr_box_trainer *t, int64_t n, int G, int64_t kde, fr_box_eval *ev, double *xs);

/* The iteration counter in a checkpoint (box.counters) and back. */
fr_status fr_box_trainer_save(fr_box_trainer *t, fr_st_file *f);
fr_status fr_box_trainer_load(fr_box_trainer *t, const fr_st_file *f, const char *path);

/* XXH3-64 of every parameter's bytes; n_params: floats (may be NULL). */
fr_status fr_box_trainer_digest(fr_box_trainer *t, uint64_t *digest, int64_t *n_params);

/* The JSD of KDEs (exponential kernel, bandwidth h) of samples a (na, 2) and b (nb, 2) on the
 * 100 × 100 grid over [0.001, 1]², each renormalised over the grid (train_box.py estimate_jsd). */
double fr_box_kde_jsd(const double *a, int64_t na, const double *b, int64_t nb, double h);

#endif
