/* Generative control policies (a flow policy, flowrl/flow_policy.h, or a DDPM policy,
 * flowrl/ddpm_policy.h) behind one handle; behaviour cloning from demonstrations
 * (core/ctl_bc.c; `flowrl bc`; docs/control.md §5), the checkpoint the control algorithms start
 * from, and the evaluation of such a policy on its environment.
 *
 * Training: the observation statistics of every demonstration step (gym's RunningMeanStd in one
 * batch), then --steps Adam steps on the denoising loss of --batch-size rows: step k draws row
 * i ~ u32(seed, FR_RNG_CTL_BC, k, 0, 0, i) mod N; the time of row i from (seed, FR_RNG_CTL_BC, k,
 * 1, 0) element i (flow: the uniform; DDPM: the u32 mod T); its noise ε from (seed,
 * FR_RNG_CTL_BC, k, 2, i) elements 0..A−1. Flow: the CFM loss (mode u); DDPM: mean (ε̂ − ε)².
 * MeanFlow (flowrl/meanflow_policy.h): the same rows and noise, the times (t, r) of
 * fr_mf_times(seed, FR_RNG_MF_TIME, k), the loss L_MF + 0.5·L_disp; it acts in one step from
 * the flow's start ε.
 *
 * Acting (evaluation, rollouts): row n at step t takes its noise from (seed, FR_RNG_CTL_ACTION,
 * c0, n, t): the flow's start ε elements 0..A−1; DDPM's x_T elements T·A .. T·A + A − 1 and the
 * noise of denoising step i elements i·A .. i·A + A − 1.
 *
 * With action scaling (DPPO's dataset normalisation), the policy learns 2(a − lo)/(hi − lo + 1e-6) − 1
 * of the demonstrations' actions, lo and hi their per-dimension minimum and maximum, and acts
 * lo + (x + 1)/2·(hi − lo).
 *
 * Checkpoint (safetensors): policy.<k>.weight / .bias, ctl.obs_rms.mean / .var / .count (F64),
 * with action scaling ctl.action.lo / .hi (F64);
 * metadata format "flowrl.ctl_policy", format_version "1", kind "flow", "ddpm" or "meanflow", env,
 * env_desc, obs_dim, action_dim, hidden_dim, n_hidden, flow_steps (flow) or denoising_steps (DDPM),
 * action_scale ("0", "1"), bc_steps, seed; MeanFlow also dispersive_weight (its training's, for the
 * record). */
#ifndef FLOWRL_CTL_BC_H
#define FLOWRL_CTL_BC_H

#include <stdint.h>

#include "flowrl/ctl.h"
#include "flowrl/ddpm_policy.h"
#include "flowrl/demos.h"
#include "flowrl/flow_policy.h"
#include "flowrl/meanflow_policy.h"
#include "flowrl/optim.h"

#define FR_CTL_POLICY_FORMAT "flowrl.ctl_policy"

typedef enum { FR_GEN_FLOW = 0, FR_GEN_DDPM = 1, FR_GEN_MEANFLOW = 2 } fr_gen_kind;

typedef struct {
    fr_gen_kind kind;
    int64_t O, A, cap;
    fr_mlp *net;          /* the kind's network */
    fr_flow_policy flow;  /* kind FR_GEN_FLOW */
    fr_ddpm_policy ddpm;  /* kind FR_GEN_DDPM */
    fr_mf_policy mf;      /* kind FR_GEN_MEANFLOW */
    float *noise;         /* host (cap, (T + 1)·A) scratch of act */
    /* action scaling (DPPO's normalisation): the policy works in [−1, 1] and acts
     * lo + (a + 1)/2·(hi − lo); act_scaled 0: the identity */
    int act_scaled;
    double *act_lo, *act_hi; /* (A,) */
} fr_gen_policy;

/* "flow" / "ddpm" / "meanflow", and back (FR_ERR_ARG naming the known ones). */
const char *fr_gen_kind_name(fr_gen_kind k);
fr_status fr_gen_kind_parse(const char *s, fr_gen_kind *k);

/* A policy of kind for O observations and A actions: an MLP of n_hidden layers of width hidden,
 * rows up to cap; steps: the flow's Euler steps (10) or DDPM's denoising steps (20). */
fr_status fr_gen_policy_new(fr_gen_policy *g, fr_gen_kind kind, fr_backend *be, int64_t O, int64_t A, int64_t hidden,
                            int n_hidden, int steps, int64_t cap);
void fr_gen_policy_free(fr_gen_policy *g);

/* Actions (R, A) of R normalised observations with the acting noise above, scaled to the action
 * range when act_scaled. */
fr_status fr_gen_policy_act(fr_gen_policy *g, int64_t R, const float *obs, uint32_t seed, uint32_t c0, uint32_t t,
                            float *action);

/* The actions of R policy outputs a (R, A) in [−1, 1], in place: lo + (a + 1)/2·(hi − lo) when
 * act_scaled (DPPO's unnormalisation), else unchanged. */
void fr_gen_policy_unscale(const fr_gen_policy *g, int64_t R, float *a);

typedef struct {
    int64_t steps, batch;
    double lr;
    uint32_t seed;
    int action_scale; /* 1: the demonstrations' per-dimension min and max become the action range */
    /* optional (zero: neither): resuming, and a hook after every step (the audit log and the
     * checkpoints of `flowrl bc`) */
    const char *resume; /* a checkpoint of fr_bc_save_state to continue bit for bit */
    fr_status (*on_step)(void *user, int64_t step, double loss, const fr_adamw_state *adam);
    void *on_step_user;
} fr_bc_opts;

/* g (rows >= o->batch) trained on d from its init (seed o->seed, stream 4); rms (obs_dim features,
 * fr_rms_init'ed) receives the demonstrations' statistics. progress (may be NULL) sees the mean
 * loss of every 100th step and the last. With o->resume, the parameters, the Adam moments and
 * the step (below o->steps) come from that checkpoint, whose kind, sizes, seed, batch, lr, observation statistics
 * and action range must be this run's (FR_ERR_MISMATCH naming the first that differs); steps
 * bc_step + 1 .. o->steps follow, the bits of the uninterrupted run. o->on_step (may be NULL)
 * runs after each step's update; its failure stops the training. */
fr_status fr_bc_train(fr_gen_policy *g, fr_rms *rms, const fr_demos *d, const fr_bc_opts *o,
                      void (*progress)(int64_t step, double loss, void *user), void *user);

/* The checkpoint above at path (atomic). env names the registry class, desc its instance. */
fr_status fr_bc_save(const char *path, fr_gen_policy *g, const fr_rms *rms, const char *env, const char *desc,
                     const fr_bc_opts *o);
/* The same with the training state after step `step` (adam non-NULL): the Adam moments as
 * optim.m.<name> / optim.v.<name>, metadata optim.step, bc_step, bc_batch and bc_lr: what
 * fr_bc_opts.resume continues. */
fr_status fr_bc_save_state(const char *path, fr_gen_policy *g, const fr_rms *rms, const char *env, const char *desc,
                           const fr_bc_opts *o, const fr_adamw_state *adam, int64_t step);
/* A policy of cap rows and its statistics (rms, initialised by the call) from a checkpoint;
 * FR_ERR_FORMAT naming the file and the field. env (may be NULL) receives the metadata's env. */
fr_status fr_bc_load(const char *path, fr_backend *be, int64_t cap, fr_gen_policy *g, fr_rms *rms, char *env,
                     size_t env_n);

/* fr_ctl_evaluate's E episodes (E <= the policy's rows) of the policy acting with c0 = UINT32_MAX:
 * the mean return and the success rate (NAN without a success notion). */
fr_status fr_gen_policy_evaluate(fr_gen_policy *g, const fr_rms *rms, const fr_env *e, uint32_t seed, int64_t E,
                                 double *ret_mean, double *success);

#endif
