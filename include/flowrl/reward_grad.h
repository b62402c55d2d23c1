/* Reward gradients (docs/algorithms/draft.md): d r / d x of a batch of samples from the run's
 * reward, the task's own (flowrl/task.h reward_grad: gmm2d "mode" and "sqdist") or a reward
 * program answering version-2 requests (docs/reward-protocol.md §6), and the per-sample
 * losses of the reward-gradient algorithms (DRaFT, AlignProp, ReFL). */
#ifndef FLOWRL_REWARD_GRAD_H
#define FLOWRL_REWARD_GRAD_H

#include <stdint.h>

#include "flowrl/guidance.h"
#include "flowrl/run.h"
#include "flowrl/status.h"

/* score (n,) and grad (n, D) = d score / d x of the n host samples x (n, D) with prompt ids
 * pid (n,), by the run's reward; no record, no metric (every rank scores all n). A reward
 * without a gradient (gmm2d halfplane, a version-1 program) is one line naming it. */
fr_status fr_run_reward_grad(fr_run *r, int64_t n, const int *pid, const float *x, float *score, float *grad);

/* The loss ℓ(r) of one sample's reward (L = loss_scale · mean ℓ):
 *   NEG    ℓ = −r                   DRaFT, and the spec's generic L = −r (more.md §1.1)
 *   RELU   ℓ = max(0, target − r)   ReFL's ReLU(2 − r) (REFL ImageReward/ReFL.py)
 *   L1     ℓ = |r − target|         AlignProp's aesthetic loss (AP, aesthetic_target 10) */
typedef enum { FR_RG_LOSS_NEG = 0, FR_RG_LOSS_RELU, FR_RG_LOSS_L1, FR_RG_LOSS_COUNT } fr_rg_loss;
extern const char *const fr_rg_loss_names[FR_RG_LOSS_COUNT + 1];

/* ℓ(r) and dℓ/dr (at the kink of RELU and L1: 0, the subgradient torch's relu and abs give). */
double fr_rg_loss_value(fr_rg_loss k, double target, double r, double *dl_dr);

/* The reverse pass of full backprop / truncation (more.md §1.1) through the Euler ODE steps
 * c .. T−1 of b rows: for i = T−1 down to c, v = the guided model at (x_i, 1000 σ_i) recomputed
 * with grad (w: keep = 1, rows b, the rollout's guidance), gv = dt_i·a, the parameter gradients
 * += J_θᵀ gv (accumulated in m's grads), and for i > c a ← a + J_xᵀ gv (so steps < c carry a
 * stop-gradient). a (b, D) holds dL/dx_T on entry and dL/dx_{c+1} on return; to_xc = 1 also
 * takes step c's J_xᵀ (a = dL/dx_c: the gradient to the initial noise when c = 0). traj: x_i of row k at traj[(i·N + k)·D] (a rollout's (T+1, N, D)
 * trajectory offset to the batch's first row); cond (b, S) host; gv, dx, v (b, D) scratch;
 * sigmas (T+1,) host. All arrays but cond and sigmas are backend memory. */
fr_status fr_rg_backprop(fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t b, int64_t D, const float *sigmas,
                         int64_t T, int64_t c, const float *traj, int64_t N, const int32_t *cond, float *a, float *gv,
                         float *dx, float *v, int to_xc);

#endif
