/* Optimising the initial noise or the condition embedding of a frozen flow model for a
 * differentiable reward (AdjointDPM's use of the adjoint, spec more.md §1.2; `flowrl optimize`;
 * docs/algorithms/draft.md §3): per iteration an ODE sample from x_T, L = −mean r(x_0), the
 * gradient by the continuous adjoint (fixed-grid Euler, torchdiffeq semantics: x re-integrated
 * backward, memory independent of T — the public code's method) or by full backprop through the
 * stored trajectory (fr_rg_backprop), then one Adam step on the target. The model's weights are
 * never changed except the condition rows when the target is the condition. */
#ifndef FLOWRL_OPTIMIZE_H
#define FLOWRL_OPTIMIZE_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/task.h"

typedef enum { FR_OPTIM_TARGET_NOISE = 0, FR_OPTIM_TARGET_COND } fr_optim_target;
typedef enum { FR_OPTIM_GRAD_ADJOINT = 0, FR_OPTIM_GRAD_BACKPROP } fr_optim_grad;

/* The gradient of L = −mean_b r(x_0,b) of an ODE sample from x_T (B, D, backend) under rc (kind
 * ode, its cfg), prompts pid (B,): into g_xT (B, D, backend; NULL: not wanted) and added into m's
 * parameter gradients (the condition rows among them). *reward: the mean reward of the sample;
 * x0 (B, D, host, may be NULL) receives the sample. Adjoint: keeps x, a and two scratch rows only. */
fr_status fr_optimize_grad(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                           fr_optim_grad how, int64_t B, const int *pid, const float *x_T, float *g_xT, double *reward,
                           float *x0);

/* iters Adam steps (β 0.9, 0.999, ε 1e-8, lr; AdjointDPM's AdamW lr 0.01 without decay) on x_T
 * (B, D, host, in/out: the start, then the optimised noise) or on the condition rows of m
 * (cond.weight; the rows pid's tokens use change). curve (iters + 1, host, may be NULL): the mean
 * reward before each step and after the last. */
fr_status fr_optimize(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                      fr_optim_target target, fr_optim_grad how, int64_t iters, double lr, int64_t B, const int *pid,
                      float *x_T, double *curve);

#endif
