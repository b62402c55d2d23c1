/* Flow-NRG reward guidance at sampling time (flowrl/nrg.h). */
#include "flowrl/nrg.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/philox.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_guided_ws gw;
    int have_gw;
    float *x, *v, *x0, *g, *dx; /* backend (B, D) */
    uint32_t *c1;               /* backend (B,) the rows' sample ids */
    float *x0_h, *g_h, *score;  /* host (B, D), (B, D), (B,) */
    int32_t *c;                 /* host (B, S) */
} nrg_ws;

static void ws_free(fr_backend *be, nrg_ws *w)
{
    if (w->have_gw) fr_guided_ws_free(&w->gw);
    void *dev[] = {w->x, w->v, w->x0, w->g, w->dx, w->c1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    free(w->x0_h);
    free(w->g_h);
    free(w->score);
    free(w->c);
}

/* ∇_x r(x̂0(x)) into w->g, given v at x (the keep-forward of w->gw). */
static fr_status reward_grad_x(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, nrg_ws *w, int64_t B,
                               int64_t D, const int *pid, float sig)
{
    const int64_t n = B * D;
    be->ops->flow_x0(n, sig, w->x, w->v, w->x0);
    FR_TRY(fr_d2h(be, w->x0_h, w->x0, (size_t)n * sizeof(float)));
    FR_TRY(fr_task_reward_grad_batch(task, reward_id, (int)B, pid, w->x0_h, w->score, w->g_h));
    FR_TRY(fr_h2d(be, w->g, w->g_h, (size_t)n * sizeof(float)));
    FR_TRY(fr_guided_backward_x(m, be, &w->gw, w->g, w->dx));
    be->ops->axpby(n, -sig, w->dx, 1.0f, w->g); /* g − σ·J_vᵀ g */
    return FR_OK;
}

fr_status fr_nrg_sample(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                        float w, int64_t B, const int *pid, const uint32_t *sid, float *x)
{
    if (rc->kind != FR_SAMPLER_ODE || !rc->sigmas)
        return fr_fail(FR_ERR_ARG, "flow-nrg: the guidance runs on the Euler ODE (--sampler ode), not %s",
                       fr_sampler_name(rc->kind));
    if (!(w >= 0.0f)) return fr_fail(FR_ERR_ARG, "flow-nrg: guidance weight %g, expected >= 0", (double)w);
    if (w > 0.0f && !task->reward_grad)
        return fr_fail(FR_ERR_UNSUPPORTED, "flow-nrg: task %s has no differentiable reward", task->name);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots, n = B * D;
    nrg_ws ws;
    memset(&ws, 0, sizeof ws);
    fr_status s = fr_guided_ws_alloc(&ws.gw, be, m, B, fr_guidance_from_scale(rc->cfg), 1);
    ws.have_gw = s == FR_OK;
    if (s == FR_OK &&
        (!(ws.x = fr_dev_floats(be, n)) || !(ws.v = fr_dev_floats(be, n)) || !(ws.x0 = fr_dev_floats(be, n)) ||
         !(ws.g = fr_dev_floats(be, n)) || !(ws.dx = fr_dev_floats(be, n)) ||
         !(ws.c1 = fr_dev_alloc(be, (size_t)B * sizeof(uint32_t))) || !(ws.x0_h = malloc((size_t)n * sizeof(float))) ||
         !(ws.g_h = malloc((size_t)n * sizeof(float))) || !(ws.score = malloc((size_t)B * sizeof(float))) ||
         !(ws.c = malloc((size_t)(B * S) * sizeof(int32_t)))))
        s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_cond_ids(task, B, pid, ws.c);
    if (s == FR_OK) s = fr_h2d(be, ws.c1, sid, (size_t)B * sizeof(uint32_t));
    if (s == FR_OK) /* x_T as fr_rollout draws it (flowrl/rollout.h) */
        be->ops->rng_normal_rows(B, D, rc->seed, FR_RNG_SAMPLER_INIT, rc->c0, B, ws.c1, 0, ws.x);
    for (int64_t i = 0; s == FR_OK && i < rc->T; i++) {
        const float sig = rc->sigmas[i];
        fr_step st = {0};
        st.kind = FR_SAMPLER_ODE;
        st.sigma = sig;
        st.sigma_next = rc->sigmas[i + 1];
        s = fr_guided_forward(m, be, &ws.gw, B, ws.x, fr_timestep_diffusers(sig), ws.c, ws.v);
        if (s == FR_OK && w > 0.0f && sig > 0.0f && sig < 1.0f) {
            s = reward_grad_x(m, be, task, reward_id, &ws, B, D, pid, sig);
            if (s == FR_OK) be->ops->axpby(n, -w * (sig / (1.0f - sig)), ws.g, 1.0f, ws.v);
        }
        if (s == FR_OK) s = fr_sampler_step(be, &st, B, D, ws.x, ws.v, NULL, NULL, ws.x, NULL, NULL, NULL);
    }
    if (s == FR_OK) s = fr_d2h(be, x, ws.x, (size_t)n * sizeof(float));
    fr_model_zero_grad(m, be);
    ws_free(be, &ws);
    return s;
}
