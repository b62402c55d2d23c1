/* One optimiser step, shared by pretraining and every RL algorithm: global-norm clip →
 * (a tap that sees the clipped gradients, e.g. the audit log) → AdamW at the step's
 * learning rate → EMA of the weights. */
#ifndef FLOWRL_OPTIM_STEP_H
#define FLOWRL_OPTIM_STEP_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/optim.h"

typedef enum {
    FR_EMA_FIXED = 0,  /* decay every ema_every steps (Flow-GRPO: 0.9 every 8) */
    FR_EMA_WARMUP = 1  /* decay min(d, (1 + k)/(10 + k)) with k = steps before this one,
                          every step (pretraining) */
} fr_ema_rule;

typedef struct {
    float max_grad_norm;   /* <= 0: no clipping */
    fr_adamw_cfg adamw;
    double lr;             /* this step's learning rate (fr_lr_at), double as torch's */
    float ema_decay;       /* < 0 or no EMA state: no EMA */
    int64_t ema_every;
    fr_ema_rule ema_rule;
    /* Many processes: AdamW on this process's share of each tensor (fr_adamw_step_part),
     * then whole(user) makes the values and moments whole again, before the EMA. parts
     * 0 or 1: the whole update here (whole unused). */
    int part, parts;
    fr_status (*whole)(void *user);
} fr_optim_step_cfg;

/* Called between the clip and AdamW (may be NULL). */
typedef fr_status (*fr_optim_tap)(float grad_norm, void *user);

/* ema may be NULL. *gn: the norm before clipping (NAN when clipping is off). what names the
 * caller in errors ("train: update 3", "pretrain: step 17"). */
fr_status fr_optim_step(fr_backend *be, fr_param *ps, int n, fr_adamw_state *adam, fr_ema *ema,
                        const fr_optim_step_cfg *c, fr_optim_tap tap, void *user, const char *what, float *gn);

/* The learning rate of optimiser step k (0-based) of `total`: linear warm-up from lr/warmup
 * over `warmup` steps, then constant, or cosine / linear decay to lr_min at `total`
 * (constant with warmup 0 returns lr exactly). In double, as torch's schedulers; the cosine
 * through flowrl's float cos (detmath.h), widened. */
double fr_lr_at(double lr, double lr_min, int schedule, int64_t warmup, int64_t k, int64_t total);

#endif
