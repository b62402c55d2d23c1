/* The trajectory-GRPO family's shared epoch (docs/algorithms/flow-grpo.md §9): what Flow-GRPO,
 * DanceGRPO, MixGRPO, BranchGRPO, G²RPO, TempFlow-GRPO, Chunk-GRPO and Smart-GRPO have in common,
 * as pieces an algorithm's epoch calls in order. The members differ in how they roll out
 * (windows, trees, one-step branches, searched noise), how they turn rewards into advantages and
 * which transitions they train; they share the rollout engine (flowrl/rollout.h), the per-step
 * objective interface (flowrl/traj_objective.h) and this update executor.
 *
 * An epoch of a member:
 *   fr_tf_rollout        prompts, the rollout of N rows with its trajectory, the records
 *                        noise.x_T, noise.xi, traj, mean, logp_old, then the rewards
 *   (its advantages)     into t->adv (N,), or per step into a table the plan points at
 *   fr_tf_plan_*         the update plan: optimiser steps, each a list of micro-steps
 *                        (step j, rows, gradient scale, advantages)
 *   fr_tf_run_plan       executes it: per optimiser step u, zero the gradients, every
 *                        micro-step (fr_traj_micro_step), the records u<u>.ratio, u<u>.loss,
 *                        the update event, fr_run_optimizer_step
 *   fr_tf_finish         the records kl, clipfrac, approx_kl and the epoch's metrics. */
#ifndef FLOWRL_CORE_ALGO_TRAJ_FAMILY_H
#define FLOWRL_CORE_ALGO_TRAJ_FAMILY_H

#include <stdint.h>

#include "flowrl/algo.h"
#include "flowrl/traj_objective.h"

/* One micro-step of the plan: rows t->plan_rows[off, off + b) trained at step j. */
typedef struct {
    int64_t j, off, b;
    float gout;       /* the loss's upstream gradient (the objective averages over the b rows) */
    const float *adv; /* (N,) advantages by rollout row for this micro-step; NULL: t->adv */
} fr_tf_micro;

/* One optimiser step: micro-steps [first, first + n); its ratios are recorded as u<k>.ratio of
 * shape dims[0..nd) (their product = the micro-steps' rows, in plan order). */
typedef struct {
    int64_t first, n;
    int nd;
    int64_t dims[3];
} fr_tf_update;

typedef struct {
    double kl, clipfrac, approx_kl, loss;
    float rmin, rmax;
    int64_t n_terms, updates;
    float last_gn;
} fr_tf_stats;

typedef struct fr_tf {
    int64_t N, D, T, G;
    fr_backend *be;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_traj_trainer tr;
    fr_traj_ws ws;
    int have_ws;
    /* backend: the rollout's outputs (T+1,N,D), (T,N,D), (T,N), (N,D) */
    float *traj, *mean, *logp, *x;
    float *x_next; /* (T,N,D) backend or NULL: a member's own x_{j+1} (fr_traj_data.x_next), freed here */
    float *weight; /* (N,D) backend or NULL: per-element log-prob weights (fr_traj_data.weight, PXPO), freed here */
    /* host */
    float *step_noise;          /* (T,) the per-step noise levels a member may point rc at */
    int *prompts, *pid, *correct; /* (P,), (N,), (N,) */
    uint32_t *sid;              /* (N,) */
    int64_t *group, *order;     /* (N,) */
    float *logp_h, *x_h, *xi;   /* (T,N), (N,D), (T,N,D) */
    float *reward, *adv;        /* (N,) */
    uint8_t *keep;              /* (N,) */
    /* the update plan */
    int64_t *plan_rows;
    int64_t n_plan_rows, cap_plan_rows;
    fr_tf_micro *micro;
    int64_t n_micro, cap_micro;
    fr_tf_update *upd;
    int64_t n_upd, cap_upd;
    float *ratios; /* the ratios of one optimiser step */
    int64_t cap_ratios;
    /* the per-unit trained steps (fr_tf_select_steps; allocated on first use) */
    int64_t *steps;   /* (n, n_train) each unit's trained steps in permutation order */
    uint8_t *sel;     /* (n, T) 1 where the unit trains the step */
    int64_t *sel_rows; /* (N,) a batch's rows at one step */
    fr_tf_stats st;
    /* Called by fr_tf_run_plan for optimiser step u after the gradients are zeroed and before its
     * micro-steps (Chunk-GRPO computes its chunk ratios here); NULL: none. */
    fr_status (*before_update)(fr_run *r, struct fr_tf *t, int64_t u, void *ctx);
    /* Called by fr_tf_rollout after the prompts and rc.c0 are set, when it is given no x_init:
     * *x_init = the rollout's x_T (N, D) in backend memory, or NULL for the coordinate-drawn
     * one (Smart-GRPO's searched noises); NULL: none. */
    fr_status (*make_x_init)(fr_run *r, struct fr_tf *t, void *ctx, const float **x_init);
    void *hook_ctx;
} fr_tf;

/* Allocates t for the run's P·G rows (n_rows > 0 overrides: rows of a member that rolls out
 * more than one row per sample) over the run's sampler (fr_run_rollout_cfg) and sets up the
 * trainer: the policy, the run's reference when it has one, guidance cfg recomputed in training
 * when train_cfg, objective obj with params prm (pointers that must outlive t). */
fr_status fr_tf_setup(fr_run *r, fr_tf *t, int64_t n_rows, int train_cfg, const fr_traj_objective *obj,
                      const void *prm, fr_kl_form kl_form);
void fr_tf_free(fr_tf *t);

/* Steps 1–3 of an epoch: fr_run_prompts, pid/sid/group of the N rows (row s: prompt
 * prompts[s / G], sample id s, group the prompt), the rollout with t->rc (c0 = the epoch;
 * x_init NULL or backend (N, D)), the reward's input, the old log-probs, the records, the
 * rewards (fr_run_rewards). "noise.xi" records ξ of each step by coordinate as the rollout
 * draws it before a branch's scale (0 where the step draws none). */
fr_status fr_tf_rollout(fr_run *r, fr_tf *t, const float *x_init);

/* The plan: reset, open an optimiser step (its ratio record's shape), append a micro-step
 * (rows copied). A plan holds any number of steps. */
void fr_tf_plan_reset(fr_tf *t);
fr_status fr_tf_plan_update(fr_tf *t, int nd, int64_t d0, int64_t d1, int64_t d2);
fr_status fr_tf_plan_micro(fr_tf *t, int64_t j, const int64_t *rows, int64_t b, float gout, const float *adv);

/* Flow-GRPO's plan (docs/algorithms/flow-grpo.md §2): the K samples t->order[0..K) cut into
 * num_batches batches of b = K / num_batches; per grad_accum batches one optimiser step over
 * every (batch, step j in [ws0, ws0 + wl)), gradients scaled by scale/(grad_accum·wl) (FG's
 * averaging, scale 1); ratio records (grad_accum, wl, b). No step when b or wl is 0. */
fr_status fr_tf_plan_batches(const fr_run *r, fr_tf *t, int64_t K, int64_t ws0, int64_t wl, float scale);

/* Each unit's trained steps, a unit being a sample (DanceGRPO pool T − 1, DDPO pool T) or a
 * pair of samples (D3PO, pool T): of n <= N units, the first n_train of unit u's random
 * permutation of 0..pool−1 (keys FR_RNG_STEP_SELECT, c0 = the epoch, c1 = key[u], or u when key
 * is NULL) into t->steps and t->sel; records "steps" (I64 (n, n_train)). */
fr_status fr_tf_select_steps(fr_run *r, fr_tf *t, int64_t n,
                             const uint32_t *key, // (n,) or NULL
                             int64_t pool, int64_t n_train);
/* The plan of the selected steps: the units order[0..n) cut into num_batches batches of b;
 * unit u is the rows width·u .. width·u + width − 1 (width · n <= N); per grad_accum batches
 * one optimiser step (ratio record (ga·b·n_train·width,)) over every (batch, step j in order)
 * with the rows of the batch's units that train j, each unit's term scaled by
 * 1/(b·grad_accum·n_train) (a micro-step of bj units: gout bj/(b·ga·n_train)). */
fr_status fr_tf_plan_selected(const fr_run *r, fr_tf *t, int64_t n, int64_t width,
                              const int64_t *order, // (n,)
                              int64_t n_train);

/* The rollout as micro-step m reads it (its advantages). */
fr_traj_data fr_tf_data(const fr_run *r, const fr_tf *t, const fr_tf_micro *m);

/* fr_tf_plan_batches, fr_tf_run_plan, fr_tf_finish: the updates of the members that batch the
 * K samples of t->order over the steps [ws0, ws0 + wl) as Flow-GRPO does. */
fr_status fr_tf_update_batches(fr_run *r, fr_tf *t, int64_t K, int64_t ws0, int64_t wl, float scale);

/* Executes the plan (above); metrics updates, loss (mean over optimiser steps). */
fr_status fr_tf_run_plan(fr_run *r, fr_tf *t);

/* The records kl, clipfrac, approx_kl (means over micro-steps) and the metrics kl, clipfrac,
 * approx_kl, ratio_min, ratio_max, grad_norm. */
fr_status fr_tf_finish(fr_run *r, fr_tf *t);

/* Records "window" (I64 [start, len]). */
fr_status fr_tf_rec_window(fr_run *r, int64_t start, int64_t len);

/* FR_ERR_ARG naming step j if a trained step has no density (std 0: noise level 0, CPS's last
 * step). */
fr_status fr_tf_check_trained(const fr_tf *t, int64_t j);

/* ---- steps 4–5 shared by members (core/algo/traj_family.c) ----------------------------- */

/* Flow-GRPO's: per-prompt advantages (fr_run_advantages), the zero filter (record keep), the
 * kept samples shuffled into t->order (record order), metrics kept and samples; *K kept. */
fr_status fr_tf_fg_batches(fr_run *r, fr_tf *t, int64_t *K);
/* The fastvideo members' (MIX, DANCE): local-group advantages of groups of G (record adv), every
 * sample shuffled into t->order (record order), metric samples; *K = N. */
fr_status fr_tf_local_batches(fr_run *r, fr_tf *t, int64_t *K);

/* ---- the members' shared option pieces (core/algo/traj_family_opts.c) ------------------- */

/* Flow-GRPO's sampling and clip values (sde T 10 on the run's grid, a 0.7, clip 1e-4, β 0.04):
 * the base of the members built on Flow-GRPO's code (TempFlow-, Chunk-, Smart-GRPO). */
void fr_tf_defaults_flow_grpo(fr_run_opts *ro);
/* The epsilon members' (DDPO, D3PO, SPO): the ddim sampler with η 1.0 over T 10 steps (the public
 * codes' 50 or 20, a CPU budget), no KL (β 0). */
void fr_tf_defaults_ddim(fr_run_opts *ro);
/* The fastvideo members' (MIX, DANCE, BRANCH, G2): the sampler kind with noise level eta over T
 * steps of s(linspace) with shift 3, clip, advantage clip 5, no KL (β 0). */
void fr_tf_defaults_fastvideo(fr_run_opts *ro, fr_sampler_kind kind, int64_t T, float eta, double clip);

enum {
    FR_TF_LOCAL_GROUPS = 1u << 0, /* G >= 2 (an unbiased std) */
    FR_TF_NO_KL = 1u << 1         /* β must be 0 */
};
/* The checks every member makes, one line "train: NAME: --flag ..." each: the sampler is one of
 * kinds, at least min_T steps, noise level > 0, 0 < clip < 1, and the flags'. */
fr_status fr_tf_check_common(const fr_run_opts *ro, const char *name, const fr_sampler_kind *kinds, int n_kinds,
                             int64_t min_T, unsigned flags);
/* The tiny configuration's common part (flowrl/algo.h tiny): T 4, P 2 x G 4, 2 batches, no
 * accumulation, clip 0.2, lr 3e-3. */
void fr_tf_tiny(fr_run_opts *ro);
/* The header line of the members of an epsilon base: "sampler ddim, T steps, eta η, cfg g" (and
 * "(also in training)" with guidance). */
void fr_tf_header_ddim(fr_run *r);
/* needs_ref of a member with an optional KL: β > 0. */
int fr_tf_needs_ref_beta(const fr_run_opts *ro, const void *ao);
/* One x_T per group of G consecutive samples (DanceGRPO's init_same_noise): the group's rewards
 * then differ only by the steps' noise, the part of the rollout the log-probabilities credit. */
void fr_tf_group_x_T(fr_tf *t);
/* The fastvideo members' rollouts: the quantised time input and, with same_noise, one x_T per
 * group (fr_tf_group_x_T). */
void fr_tf_fastvideo_rollout(fr_tf *t, int same_noise);

#endif
