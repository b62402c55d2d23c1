/* A small model for a task with every parameter U(-0.5, 0.5) from splitmix(seed) (the
 * zero-initialised output layer included), for the rollout and training-step tests. */
#ifndef FLOWRL_MODEL_TESTUTIL_H
#define FLOWRL_MODEL_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/schedule.h"
#include "flowrl/task.h"
#include "tests/testutil.h"

/* Makes c's head the x0 head of an epsilon model on DDPM's linear betas over 1000 steps (the
 * schedule `flowrl pretrain --pred epsilon` trains with), sigma_min 0.05. */
static inline void fr_test_eps_head(fr_model_config *c)
{
    c->pred = FR_PRED_EPSILON;
    c->head = FR_HEAD_X0;
    c->sigma_min = FR_X0_HEAD_SIGMA_MIN;
    c->ddpm_betas = FR_DDPM_LINEAR;
    c->beta_start = 1e-4;
    c->beta_end = 0.02;
    c->n_train = 1000;
}

static inline void fr_test_make_model(fr_model *m, const fr_task *t, fr_pred pred, uint64_t seed)
{
    fr_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.D = t->D;
    fr_cond_dims(t, &c.n_cond, &c.n_slots);
    c.H = 16;
    c.F = 24;
    c.n_blocks = 2;
    c.E = 8;
    c.act = FR_ACT_SILU;
    c.pred = pred;
    c.ln_eps = 1e-5f;
    ck_assert_msg(fr_model_init(m, fr_test_ref_be(), &c, (uint32_t)seed) == FR_OK, "%s", fr_last_error());
    uint64_t s = seed;
    for (int i = 0; i < m->n_params; i++) {
        float *d = m->values[i].data;
        for (int64_t k = 0; k < fr_tensor_numel(&m->values[i]); k++) d[k] = fr_test_uniform(&s, -0.5f, 0.5f);
    }
}

enum { FR_TEST_DDPM_NT = 100 }; /* the DDPM table of fr_test_ddim_cfg */

/* A DDIM (η 1) rollout config of T steps on FR_TEST_DDPM_NT linear betas (1e-4 .. 0.02): ab
 * (FR_TEST_DDPM_NT,) receives ᾱ; steps_offset 1 (SD's) or 0. */
static inline void fr_test_ddim_cfg(fr_rollout_cfg *rc, fr_rollout_schedule *sch, float *ab, int64_t T, int steps_offset)
{
    float betas[FR_TEST_DDPM_NT];
    ck_assert_int_eq(fr_betas_linear(FR_TEST_DDPM_NT, 1e-4, 0.02, betas), FR_OK);
    ck_assert_int_eq(fr_alphas_cumprod(FR_TEST_DDPM_NT, betas, ab), FR_OK);
    *rc = fr_rollout_cfg_default(FR_SAMPLER_DDIM);
    rc->T = T;
    rc->noise = 1.0f;
    rc->alpha_bar = ab;
    ck_assert_int_eq(fr_rollout_schedule_make(rc, FR_GRID_LINEAR, 1.0, FR_TEST_DDPM_NT, steps_offset, sch), FR_OK);
}

#endif
