/* The GFlowNet trainer's private parts (flowrl/gfn_train.h), shared by its files:
 * core/gfn_train.c   set-up, the parameter list, log Z, checkpoint counters, digest
 * core/gfn_net.c     the tied MLP through the op table, the masked log-softmax, the AdamW update
 * core/gfn_sample.c  lock-step trajectory sampling by Philox coordinates
 * core/gfn_step.c    one iteration: the trajectory losses (core/gfn_loss.c) and FM
 * core/gfn_eval.c    the exact P_T evaluation and the sampled L1 (§5.1), the top-k metric (§9)
 * core/gfn_local_search.c  local search's destroy / rebuild / accept (§10)
 * core/gfn_mo.c      preference conditioning and the multi-objective evaluation (§13) */
#ifndef FLOWRL_GFN_TRAIN_INTERNAL_H
#define FLOWRL_GFN_TRAIN_INTERNAL_H

#include <stdint.h>

#include "flowrl/gfn_train.h"
#include "flowrl/optim.h"

#define GFN_MAX_LAYERS 16
#define GFN_MAX_A 65 /* actions, exit included (flowrl/env.h's state_dim limit + 1) */
#define GFN_MAX_THERM 64 /* a drawn β's thermometer bins */
#define GFN_MAX_COND 256 /* the conditioning's width: ω [+ β's bins], or OC-GFN's outcome encoding */

struct fr_gfn_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_gfn_opts o;
    int A;                            /* actions (P_F logits) */
    int O;                            /* head width: A [+ A − 1 P_B logits] [+ 1 log F] */
    int pb_col, f_col;                /* first P_B column, log F column (−1: none) */
    int L;                            /* linear layers: n_hidden + 1 */
    int64_t dim[GFN_MAX_LAYERS + 1];  /* dim[0] = obs_dim + nc, dim[L] = O */
    int nc;                           /* preference conditioning: ω's width (0: off) */
    int ncw;                          /* the conditioning appended to the input: ω [+ the drawn β's thermometer] */
    double *pref;                     /* (bcap, ncw) each trajectory's conditioning */
    double *beta_b;                   /* (bcap,) each trajectory's β */
    float *cond_rows;                 /* (cap, ncw) the conditioning of each row of the next forward (fr_gfn_cond_row) */
    double eval_w[GFN_MAX_COND];      /* the exact evaluation's conditioning: ω ((½, ½)) [, the encoding of mo_beta], or an outcome's */
    int64_t *goal;                    /* (bcap,) OC-GFN: each trajectory's outcome y (a state index) */
    double beta_hi;                   /* a drawn β's thermometer upper bound */
    int n_params;                     /* 2 L: weight, bias per layer */
    fr_param params[2 * GFN_MAX_LAYERS];
    fr_tensor vals[2 * GFN_MAX_LAYERS], grads[2 * GFN_MAX_LAYERS];
    char names[2 * GFN_MAX_LAYERS][32];
    float *arena_v, *arena_g;         /* backend */
    int64_t arena_n;
    fr_param zp;                      /* log Z */
    fr_tensor zv, zg;
    float *z_dev;                     /* backend (2,): value, grad */
    fr_adamw_state adam, adam_z;
    int grad_only;                    /* fr_gfn_trainer_grad: the caller's optimiser steps */
    fr_param all[2 * GFN_MAX_LAYERS + 1]; /* the parameter list of fr_gfn_trainer_params */
    /* activations, backend: x (cap, dim[0]), pre[l] (cap, dim[l+1]), post[l] (cap, dim[l+1]) */
    int64_t cap;
    float *x, *pre[GFN_MAX_LAYERS], *post[GFN_MAX_LAYERS], *d0, *d1;
    /* host */
    float *obs_h, *out_h, *dout_h;    /* (cap, dim[0]), (cap, O), (cap, O) */
    int64_t bcap, nb;                 /* trajectory slots (batch; 2 batch with local search), slots in use */
    int32_t *st;                      /* (bcap, max_steps, D) the states of each trajectory */
    int32_t *act, *len;               /* (bcap, max_steps), (bcap,) */
    int64_t *perm;                    /* (bcap,) OP-GFN's pairing */
    double *util;                     /* (bcap,) OP-GFN's utilities */
    /* local search (o.ls_rounds > 0): the backward-sampled τ and the rebuilt τ' of each of the
     * batch's trajectories, (B, max_steps, D) / (B, max_steps) / (B,), with their per-step
     * log P_B and log P_F (B, max_steps) */
    int32_t *lb_st, *lb_act, *lb_len, *ln_st, *ln_act, *ln_len, *ls_k0;
    double *lb_lpb, *ln_lpf;
    double *logpf, *logpb, *logf, *logr, *gpf, *gpb, *gf; /* (bcap, max_steps), logr (bcap,) */
    double *logrs, *logpfx, *gpfx, *logprior;    /* (bcap, max_steps): log R(s_t) (forward-looking, MDB), log P_F(exit | s_t) and its gradient (MDB), log P_F^prior (RTB) */
    uint8_t *visited;                 /* (n_states,) terminal states sampled so far */
    /* the replay buffer (o.replay = N > 0): N trajectories as a ring, oldest at (count % N) once full */
    int32_t *rb_st, *rb_act, *rb_len; /* (N, max_steps, D), (N, max_steps), (N,) */
    int64_t rb_count;                 /* trajectories ever added */
    struct fr_gfn_trainer *prior;     /* RTB: the frozen prior policy (P_F head only) */
    double *target, log_z_true;
    int64_t iter, trajectories, modes_found;
};

/* core/gfn_net.c */
/* pre[l] = in_l W_l^T + b_l, post[l] = relu(pre[l]) for the hidden layers; R rows of t->x. */
void fr_gfn_net_forward(fr_gfn_trainer *t, int64_t R);
/* Gradients (accumulated into the zeroed grads) of the R rows whose output gradient is t->d0. */
void fr_gfn_net_backward(fr_gfn_trainer *t, int64_t R);
/* The outputs (R, O) on the host (t->out_h) of the states s (R, D). */
fr_status fr_gfn_net_rows(fr_gfn_trainer *t, int64_t R, const int32_t *s);
/* Masked log-softmax in float64 of n logits z (float) into lsm (n,) (−inf where masked). */
void fr_gfn_log_softmax(const float *z, const uint8_t *mask, int n, double *lsm);
/* The gradient of the R rows' outputs (t->dout_h) through the network, AdamW on it (unless
 * grad_only), and on log Z (TB: its own group, lr_Z and no weight decay) from g_log_z. */
fr_status fr_gfn_net_update(fr_gfn_trainer *t, int64_t R, double g_log_z);

/* core/gfn_sample.c: o.batch trajectories into t->st, t->act, t->len (t->nb = o.batch), actions
 * from Philox (seed, purpose, c0, trajectory, step, 0). */
fr_status fr_gfn_sample(fr_gfn_trainer *t, uint32_t purpose, uint32_t c0, double epsilon, double temperature,
                        double sf_bias);
/* n trajectories into st, act, len, trajectory b from step k0[b] (its prefix given; k0 NULL: from
 * s0), Philox (seed, purpose, c0, b, step, c3); lpf (n, max_steps) may be NULL: the log-prob of each
 * drawn action under the sampling softmax. */
fr_status fr_gfn_sample_into(fr_gfn_trainer *t, uint32_t purpose, uint32_t c0, uint32_t c3, double epsilon,
                             double temperature, double sf_bias, int64_t n, int32_t *st, int32_t *act, int32_t *len,
                             const int32_t *k0, double *lpf);

/* core/gfn_local_search.c: o.ls_rounds rounds of local search from the fresh batch (slots
 * [0, batch)) into slots [batch, 2 batch) (t->nb = 2 batch); each reconstruction's terminal state
 * counts toward the modes and t->trajectories; *accepted (may be NULL): how many were accepted. */
fr_status fr_gfn_local_search(fr_gfn_trainer *t, int64_t *accepted);

/* core/gfn_mo.c (t->nc > 0): row r of the next forward gets trajectory b's ω / ω itself; each
 * iteration's ω ~ Dirichlet(1, …, 1) of every trajectory (Philox (seed, FR_RNG_GFN_PREF,
 * iteration, trajectory, i)); log R(x | ω) = β log Σ_i ω_i R_i(x), clipped as fr_gfn_log_reward;
 * the target R(· | ω)^β / Z(ω) into t->target and t->log_z_true. */
static inline void fr_gfn_cond_row(fr_gfn_trainer *t, int64_t r, const double *w)
{
    for (int i = 0; i < t->ncw; i++) t->cond_rows[r * t->ncw + i] = (float)w[i];
}
void fr_gfn_draw_prefs(fr_gfn_trainer *t);
/* Each trajectory's drawn β and its encoding after ω (nothing with a constant β). */
fr_status fr_gfn_draw_betas(fr_gfn_trainer *t);
/* log R(x | ω, β) = β log Σ_i ω_i R_i(x), clipped as fr_gfn_log_reward. */
double fr_gfn_mo_log_reward(const fr_gfn_trainer *t, const int32_t *x, const double *w, double beta);
/* A drawn β's set-up (t->beta_hi, the evaluation's encoding); the thermometer encoding of β into
 * enc (mo_beta_therm,): clamp(β − h_i, 0, g)/g with h_i = i·g, g = upper/(bins − 1) (the public
 * code's `thermometer`, here in float64). */
fr_status fr_gfn_beta_setup(fr_gfn_trainer *t);
void fr_gfn_beta_encode(const fr_gfn_trainer *t, double beta, double *enc);
fr_status fr_gfn_mo_target(fr_gfn_trainer *t, const double *w);

/* core/gfn_oc.c (o.outcome; docs/algorithms/gfn-oc.md): the option checks; each trajectory's
 * outcome y ~ uniform over the states (Philox (seed, FR_RNG_OC_GOAL, iteration, trajectory, 0)) and
 * its encoding in t->pref; hindsight relabelling y := x of the trajectories whose coin (Philox (seed,
 * FR_RNG_OC_RELABEL, iteration, trajectory, 0)) is below o.oc_relabel; log R(x | y) of trajectory b;
 * the conditional target R(· | y)/Z(y) of outcome y into t->target, t->log_z_true and t->eval_w. */
fr_status fr_gfn_oc_check(const fr_env *env, const fr_gfn_opts *o);
void fr_gfn_oc_draw_goals(fr_gfn_trainer *t);
void fr_gfn_oc_relabel(fr_gfn_trainer *t);
double fr_gfn_oc_log_reward(const fr_gfn_trainer *t, int64_t b);
void fr_gfn_oc_target(fr_gfn_trainer *t, int64_t y);
/* Outcome y's encoding (the environment's encode of state y) into w (obs_dim,). */
void fr_gfn_oc_encode(const fr_gfn_trainer *t, int64_t y, double *w);
/* core/gfn_train.c: a checkpoint's trunk.* and head.* rows into t (RTB's prior, OC-GFN's pre-training). */
fr_status fr_gfn_load_policy(fr_gfn_trainer *t, const fr_st_file *f, const char *path);

/* core/gfn_train.c: the modes count of terminal state x (a sample the trainer evaluated R at). */
void fr_gfn_visit(fr_gfn_trainer *t, const int32_t *x);

/* A learned log Z parameter: TB and RTB. */
static inline int fr_gfn_has_log_z(const fr_gfn_trainer *t) { return t->o.loss == FR_GFN_TB || t->o.loss == FR_GFN_RTB; }

/* core/gfn_train.c: log R of state s, clamped below at o.log_reward_clip_min (§3.10). */
double fr_gfn_log_reward(const fr_gfn_trainer *t, const int32_t *s);

/* core/gfn_sample.c: the replay buffer (o.replay > 0): adds the batch in t->st / act / len and
 * replaces it by o.batch trajectories drawn from the buffer at iteration t->iter. */
fr_status fr_gfn_replay(fr_gfn_trainer *t);

/* core/gfn_step.c: FM's update of the sampled batch (§3.6). */
fr_status fr_gfn_fm_step(fr_gfn_trainer *t, fr_gfn_step_info *info);

#endif
