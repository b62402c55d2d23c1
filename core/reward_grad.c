/* Reward gradients of the run's reward (flowrl/reward_grad.h). */
#include "flowrl/reward_grad.h"

#include <math.h>

#include "flowrl/algo.h"
#include "flowrl/reward_cmd.h"
#include "flowrl/schedule.h"

const char *const fr_rg_loss_names[FR_RG_LOSS_COUNT + 1] = {"neg", "relu", "l1", NULL};

fr_status fr_run_reward_grad(fr_run *r, int64_t n, const int *pid, const float *x, float *score, float *grad)
{
    if (r->rcmd)
        return fr_reward_cmd_score_grad_task(r->rcmd, r->task, (uint32_t)r->epoch, (int)n, pid, x, score, grad);
    fr_status s = fr_task_reward_grad_batch(r->task, r->reward_id, (int)n, pid, x, score, grad);
    if (s == FR_ERR_UNSUPPORTED)
        return fr_fail(s, "train: %s: the reward has no gradient (%s); use a differentiable one (gmm2d: mode, sqdist; shapes: classifier) "
                       "or a reward program that answers gradient requests (docs/reward-protocol.md §6)",
                       r->algo ? r->algo->name : "reward gradient", fr_last_error());
    return s;
}

double fr_rg_loss_value(fr_rg_loss k, double target, double r, double *dl_dr)
{
    switch (k) {
    case FR_RG_LOSS_RELU:
        *dl_dr = target - r > 0.0 ? -1.0 : 0.0;
        return target - r > 0.0 ? target - r : 0.0;
    case FR_RG_LOSS_L1:
        *dl_dr = r > target ? 1.0 : r < target ? -1.0 : 0.0;
        return fabs(r - target);
    default:
        *dl_dr = -1.0;
        return -r;
    }
}

fr_status fr_rg_backprop(fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t b, int64_t D, const float *sigmas,
                         int64_t T, int64_t c, const float *traj, int64_t N, const int32_t *cond, float *a, float *gv,
                         float *dx, float *v, int to_xc)
{
    const int64_t n = b * D;
    for (int64_t i = T - 1; i >= c; i--) {
        const float sig = sigmas[i], dt = sigmas[i + 1] - sig; /* the ODE step's own dt (core/sampler.c) */
        FR_TRY(fr_guided_forward(m, be, w, b, traj + i * N * D, fr_timestep_diffusers(sig), cond, v));
        be->ops->scale(n, dt, a, gv);
        FR_TRY(fr_guided_backward_x(m, be, w, gv, i > c || to_xc ? dx : NULL));
        if (i > c || to_xc) be->ops->binary(FR_BIN_ADD, n, a, dx, a);
    }
    return FR_OK;
}
