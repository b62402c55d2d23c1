/* Behaviour cloning of a flow policy from demonstrations (core/ctl_bc.c; `flowrl bc`;
 * docs/control.md §5), the checkpoint the control algorithms start from, and the evaluation of
 * a flow policy on its environment.
 *
 * Training: the observation statistics of every demonstration step (gym's RunningMeanStd in one
 * batch), then --steps Adam steps on the CFM loss (mode u) of --batch-size rows: step k draws row
 * i ~ u32(seed, FR_RNG_CTL_BC, k, 0, 0, i) mod N, t_i ~ U(0, 1) (seed, FR_RNG_CTL_BC, k, 1, 0) element
 * i, ε_i (seed, FR_RNG_CTL_BC, k, 2, i) elements 0..A−1.
 *
 * Checkpoint (safetensors): policy.<k>.weight / .bias (flowrl/flow_policy.h), ctl.obs_rms.mean /
 * .var / .count (F64); metadata format "flowrl.ctl_policy", format_version "1", kind "flow", env,
 * env_desc, obs_dim, action_dim, hidden_dim, n_hidden, flow_steps, out_scale, bc_steps, seed. */
#ifndef FLOWRL_CTL_BC_H
#define FLOWRL_CTL_BC_H

#include <stdint.h>

#include "flowrl/ctl.h"
#include "flowrl/demos.h"
#include "flowrl/flow_policy.h"

#define FR_CTL_POLICY_FORMAT "flowrl.ctl_policy"

typedef struct {
    int64_t steps, batch, hidden, n_hidden;
    double lr;
    uint32_t seed;
} fr_bc_opts;

/* A policy (p->net's rows >= o->batch) trained on d from its init (seed o->seed, stream 4);
 * rms (obs_dim features, fr_rms_init'ed) receives the demonstrations' statistics. progress (may
 * be NULL) sees the mean loss of every 100th step and the last. */
fr_status fr_bc_train(fr_flow_policy *p, fr_rms *rms, const fr_demos *d, const fr_bc_opts *o,
                      void (*progress)(int64_t step, double loss, void *user), void *user);

/* The checkpoint above at path (atomic). env names the registry class, desc its instance. */
fr_status fr_bc_save(const char *path, fr_flow_policy *p, const fr_rms *rms, const char *env, const char *desc,
                     const fr_bc_opts *o);
/* A policy of cap rows and its statistics (rms, initialised by the call) from a checkpoint;
 * FR_ERR_FORMAT naming the file and the field. env (may be NULL) receives the metadata's env. */
fr_status fr_bc_load(const char *path, fr_backend *be, int64_t cap, fr_flow_policy *p, fr_rms *rms, char *env,
                     size_t env_n);

/* E episodes (ids from 2^31, one per environment to its end; E <= the policy's rows) of the
 * policy with noise ε from Philox (seed, FR_RNG_CTL_ACTION, UINT32_MAX, n, t): the mean return and
 * the success rate (NAN without a success notion). */
fr_status fr_flow_policy_evaluate(fr_flow_policy *p, const fr_rms *rms, const fr_env *e, uint32_t seed, int64_t E,
                                  double *ret_mean, double *success);

#endif
