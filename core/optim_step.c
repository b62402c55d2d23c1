/* One optimiser step (flowrl/optim_step.h): clip → tap → AdamW → EMA. */
#include "flowrl/optim_step.h"

#include <math.h>

#include "flowrl/detmath.h"
#include "flowrl/pretrain.h"

fr_status fr_optim_step(fr_backend *be, fr_param *ps, int n, fr_adamw_state *adam, fr_ema *ema,
                        const fr_optim_step_cfg *c, fr_optim_tap tap, void *user, const char *what, float *gn)
{
    *gn = NAN;
    if (c->max_grad_norm > 0.0f) {
        fr_status s = fr_clip_grad_norm(be, ps, n, c->max_grad_norm, gn);
        if (s != FR_OK) return fr_fail(s, "%s: the gradient norm is %g", what, (double)*gn);
    }
    if (tap) FR_TRY(tap(*gn, user));
    /* the step count before this update: EMA rules count optimiser steps */
    const int64_t k = adam->step;
    if (c->parts > 1) {
        FR_TRY(fr_adamw_step_part(be, adam, ps, n, &c->adamw, c->lr, c->part, c->parts));
        FR_TRY(c->whole(user));
    } else {
        FR_TRY(fr_adamw_step(be, adam, ps, n, &c->adamw, c->lr));
    }
    if (!ema || c->ema_decay < 0.0f) return FR_OK;
    if (c->ema_rule == FR_EMA_WARMUP) {
        /* decay min(d, (1 + k)/(10 + k)) with k = updates before this one */
        float warm = (1.0f + (float)k) / (10.0f + (float)k);
        return fr_ema_update(be, ema, ps, n, c->ema_decay < warm ? c->ema_decay : warm);
    }
    /* Flow-GRPO: every ema_every optimizer steps (counted after this one) */
    if (c->ema_every > 0 && adam->step % c->ema_every == 0) return fr_ema_update(be, ema, ps, n, c->ema_decay);
    return FR_OK;
}

double fr_lr_at(double lr, double lr_min, int schedule, int64_t warmup, int64_t k, int64_t total)
{
    if (k < warmup) return lr * (double)(k + 1) / (double)warmup;
    if (schedule == (int)FR_LR_CONSTANT || total <= warmup) return lr;
    double p = (double)(k - warmup) / (double)(total - warmup);
    if (p > 1.0) p = 1.0;
    double c = (double)fr_cosf((float)(3.14159265358979323846 * p));
    return lr_min + (lr - lr_min) * (0.5 * (1.0 + c));
}
