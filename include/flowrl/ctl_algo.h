/* What every control algorithm (core/algo/ppo_gaussian.c, dppo.c, fpo.c, reinflow.c; docs/control.md)
 * shares beyond the machinery of flowrl/ctl.h: the run's control state and critic, the fr_algo
 * entries that only touch them (save, load, params, the value callback), the update passes'
 * bookkeeping (loss check, update event, optimiser step, approx-KL early stop, the epoch's records
 * and metrics) and the evaluation's report (core/ctl_algo.c).
 *
 * An algorithm's state starts with an fr_ctl_state (its first member), so the shared fr_algo
 * entries take the state as it is: fr_ctl_algo_save, fr_ctl_algo_load, fr_ctl_algo_params, and
 * fr_ctl_value_cb as the collector's value callback. */
#ifndef FLOWRL_CTL_ALGO_H
#define FLOWRL_CTL_ALGO_H

#include <stdint.h>

#include "flowrl/ctl.h"
#include "flowrl/mlp.h"
#include "flowrl/run.h"

typedef struct {
    fr_ctl_vec vec;               /* the N environments in flight */
    fr_rms rms;                   /* the observation statistics */
    fr_ctl_reward_scaler scaler;  /* running reward scaling */
    fr_ctl_block blk;             /* the epoch's rollout block */
    fr_mlp vf;                    /* the critic V(obs) */
    float *vout;                  /* host (vrows,) the critic's outputs */
    fr_param all[6 * FR_MLP_MAX_LAYERS + 1]; /* the trained parameters: the actor's, then the critic's */
    int n_all, n_actor;
    double lr_critic, wd_critic;  /* the critic group's AdamW lr and weight decay (≤ 0 / < 0: the run's) */
} fr_ctl_state;

/* Setup's check: a control environment with 1..64 continuous actions, else "train: --algo ALGO
 * needs ..." naming the environment. */
fr_status fr_ctl_check_env(const fr_env *e, const char *algo);

/* The options' check every control algorithm makes (fr_algo.check): a constant learning rate (the
 * loop's schedule counts one step an epoch, these take many) and, for batch > 0, a minibatch of at
 * most the batch ("exceeds the batch BATCH_WHAT = batch"). */
fr_status fr_ctl_check_run(const fr_run_opts *ro, const char *algo, int64_t minibatch, int64_t batch,
                           const char *batch_what);

/* The environments (episodes from 0), the reward scaler (γ) and the block (T, N, O, A) of c; the
 * observation statistics are the caller's (fresh, or a policy's). */
fr_status fr_ctl_state_new(fr_ctl_state *c, const fr_env *e, uint32_t seed, int64_t N, int64_t T, double gamma);
/* The critic: an MLP "critic" of n_hidden layers of width hidden (act) from the observation to one
 * value, vrows rows, FR_RNG_INIT stream 3; its host outputs. */
fr_status fr_ctl_critic_new(fr_ctl_state *c, fr_backend *be, int64_t O, int64_t hidden, int n_hidden, fr_act act,
                            int64_t vrows, uint32_t seed);
/* Appends n of the actor's parameters to c->all; fr_ctl_params_critic then closes the actor's
 * group and appends the critic's, whose AdamW group takes lr_critic (≤ 0: --lr) and weight decay
 * wd_critic (< 0: the run's). */
void fr_ctl_params_add(fr_ctl_state *c, const fr_param *p, int n);
void fr_ctl_params_critic(fr_ctl_state *c, double lr_critic, double wd_critic);
void fr_ctl_state_free(fr_ctl_state *c);

/* fr_algo entries of a state whose first member is an fr_ctl_state: the checkpoint's control state
 * (fr_ctl_state_save), the two AdamW groups (actor at --lr, critic at lr_critic), and the value
 * callback V of R normalised observations (fr_ctl_policy.value). */
fr_status fr_ctl_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_ctl_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
fr_status fr_ctl_algo_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups);
fr_status fr_ctl_value_cb(void *user, int64_t R, const float *obs, double *value);

/* The value loss c·mean (V − R)² of M rows (v (M,) the critic's outputs, R of row i ret[idx[i] /
 * div]) and its output gradient dv (M,) = vf_coef·2c·(V − R)/M (c = ½: DPPO's and CleanRL's
 * form, 1: FPO's). */
double fr_ctl_value_loss(int64_t M, const float *v, const double *ret, const int64_t *idx, int64_t div, double c,
                         double vf_coef, float *dv);

/* The epoch's rollout block: the episode statistics reset, fr_ctl_collect into c->blk (normalised
 * by c->rms when norm, rewards scaled when cc->reward_scale), and its records "rewards" and "adv"
 * (T, N) through scratch (T·N,). */
fr_status fr_ctl_algo_collect(fr_run *r, fr_ctl_state *c, const fr_ctl_policy *p, const fr_ctl_collect_cfg *cc, int norm,
                              float *scratch);
/* x (T·N·per_row,) as float into scratch, recorded as NAME (T, N) or (T, N, per_row). */
fr_status fr_ctl_rec_rows(fr_run *r, const char *name, float *scratch, const double *x, int64_t T, int64_t N,
                          int64_t per_row);

/* ---- the update passes of an epoch ------------------------------------------------------- */
typedef struct {
    int64_t u;             /* optimiser steps taken */
    int stop;              /* approx-KL early stop */
    fr_ctl_ppo_stats st;   /* the last minibatch's surrogate statistics */
    double v_loss;         /* the last minibatch's value loss */
    double kl_sum, cf_sum, rm_sum; /* sums over the minibatches: approx-KL, clipfrac, mean ratio */
} fr_ctl_updates;

/* After a minibatch whose gradients are in place (up->st, up->v_loss set): the loss must be finite
 * ("train: epoch E update U: the WHAT loss is X"), the update event (n_ratio ratios), one optimiser
 * step of the run loop, the sums, and up->stop once approx-KL exceeds target_kl (> 0); up->u
 * counts the step. */
fr_status fr_ctl_update(fr_run *r, fr_ctl_updates *up, const char *what, double loss, int64_t n_ratio, const float *ratio,
                        double target_kl);
/* The epoch's records (pg_loss, v_loss, approx_kl of the last minibatch) and metrics: the episode
 * metrics (fr_ctl_episode_metrics), pg_loss, v_loss, and the means over the minibatches of
 * approx_kl and clipfrac. The algorithm adds its own, then fr_run_metric "updates". */
fr_status fr_ctl_updates_end(fr_run *r, const fr_ctl_updates *up, const fr_ctl_vec *v, const fr_env *e, int64_t env_steps);

/* ---- evaluation -------------------------------------------------------------------------- */
/* The networks an "after" evaluation digests ("parameters P, digests NAME HEX ..."; P counts extra
 * elements beyond the networks'). */
typedef struct {
    int n;
    const char *name[4];
    fr_mlp *net[4];
    int64_t extra;
} fr_ctl_nets;

/* The evaluation line "eval KEY (epoch E): env_steps S return R[ success X] over N episodes[ (k
 * terminal)]" (terminal < 0: left out) and, for KEY "after", the digests of nets. */
fr_status fr_ctl_eval_report(fr_run *r, const fr_env *e, const char *key, int64_t epoch, int64_t env_steps, int64_t E,
                             double ret, double success, int64_t terminal, const fr_ctl_nets *nets);
/* fr_ctl_evaluate of p on E episodes (*eval_flag 1 during it: the act callback's evaluation mode),
 * reported (fr_ctl_eval_report at epoch·steps_per_epoch env steps); *score the mean return. */
fr_status fr_ctl_algo_evaluate(fr_run *r, const fr_env *e, uint32_t seed, int64_t E, const fr_rms *rms,
                               const fr_ctl_policy *p, int *eval_flag, const char *key, int64_t epoch,
                               int64_t steps_per_epoch, const fr_ctl_nets *nets, double *score);

#endif
