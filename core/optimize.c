/* Noise and condition optimisation through the sampler (flowrl/optimize.h). */
#include "flowrl/optimize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/reward_grad.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"

typedef struct {
    fr_guided_ws gw;
    int have_gw;
    float *x, *a, *v, *gv, *dx, *traj; /* backend (B, D); traj (T+1, B, D) for backprop */
    float *h;                          /* host (B, D) */
    float *score;                      /* host (B,) */
    int32_t *c;                        /* host (B, S) */
} opt_ws;

static void ws_free(fr_backend *be, opt_ws *w)
{
    if (w->have_gw) fr_guided_ws_free(&w->gw);
    void *dev[] = {w->x, w->a, w->v, w->gv, w->dx, w->traj};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    free(w->h);
    free(w->score);
    free(w->c);
}

static fr_status ode_step(fr_backend *be, const fr_rollout_cfg *rc, int64_t i, int64_t B, int64_t D, float *x,
                          const float *v)
{
    fr_step st = {0};
    st.kind = FR_SAMPLER_ODE;
    st.sigma = rc->sigmas[i];
    st.sigma_next = rc->sigmas[i + 1];
    return fr_sampler_step(be, &st, B, D, x, v, NULL, NULL, x, NULL, NULL, NULL);
}

static fr_status grad_ws(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                         fr_optim_grad how, int64_t B, const int *pid, const float *x_T, float *g_xT, double *reward,
                         float *x0, opt_ws *w)
{
    const int64_t D = m->cfg.D, n = B * D, T = rc->T;
    /* forward: the ODE sample (backprop keeps the trajectory) */
    FR_TRY(fr_d2d(be, w->x, x_T, (size_t)n * sizeof(float)));
    for (int64_t i = 0; i < T; i++) {
        if (w->traj) FR_TRY(fr_d2d(be, w->traj + i * n, w->x, (size_t)n * sizeof(float)));
        FR_TRY(fr_guided_forward(m, be, &w->gw, B, w->x, fr_timestep_diffusers(rc->sigmas[i]), w->c, w->v));
        FR_TRY(ode_step(be, rc, i, B, D, w->x, w->v));
    }
    /* a_T = dL/dx_0 = −∇r / B */
    FR_TRY(fr_d2h(be, w->h, w->x, (size_t)n * sizeof(float)));
    if (x0) memcpy(x0, w->h, (size_t)n * sizeof(float));
    FR_TRY(fr_task_reward_grad_batch(task, reward_id, (int)B, pid, w->h, w->score, w->h));
    double sum = 0.0;
    for (int64_t b = 0; b < B; b++) sum += w->score[b];
    *reward = sum / (double)B;
    const float k = (float)(-1.0 / (double)B);
    for (int64_t j = 0; j < n; j++) w->h[j] *= k;
    FR_TRY(fr_h2d(be, w->a, w->h, (size_t)n * sizeof(float)));
    if (how == FR_OPTIM_GRAD_BACKPROP) {
        FR_TRY(fr_rg_backprop(m, be, &w->gw, B, D, rc->sigmas, T, 0, w->traj, B, w->c, w->a, w->gv, w->dx, w->v, 1));
    } else {
        /* torchdiffeq's Euler adjoint, backward from σ_T: at (x, σ_{i+1}) v and the VJPs, then
         * x ← x − dt_i·v (re-integrated), a ← a + J_xᵀ(dt_i·a), θ-grads += J_θᵀ(dt_i·a) */
        for (int64_t i = T - 1; i >= 0; i--) {
            const float dt = rc->sigmas[i + 1] - rc->sigmas[i];
            FR_TRY(fr_guided_forward(m, be, &w->gw, B, w->x, fr_timestep_diffusers(rc->sigmas[i + 1]), w->c, w->v));
            be->ops->scale(n, dt, w->a, w->gv);
            FR_TRY(fr_guided_backward_x(m, be, &w->gw, w->gv, w->dx));
            be->ops->axpby(n, -dt, w->v, 1.0f, w->x);
            be->ops->binary(FR_BIN_ADD, n, w->a, w->dx, w->a);
        }
    }
    if (g_xT) FR_TRY(fr_d2d(be, g_xT, w->a, (size_t)n * sizeof(float)));
    return FR_OK;
}

static fr_status ws_alloc(fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                          fr_optim_grad how, int64_t B, const int *pid, opt_ws *w)
{
    memset(w, 0, sizeof *w);
    if (rc->kind != FR_SAMPLER_ODE || !rc->sigmas)
        return fr_fail(FR_ERR_ARG, "optimize: the gradient goes through the Euler ODE (--sampler ode), not %s",
                       fr_sampler_name(rc->kind));
    const int64_t D = m->cfg.D, n = B * D;
    FR_TRY(fr_guided_ws_alloc(&w->gw, be, m, B, fr_guidance_from_scale(rc->cfg), 1));
    w->have_gw = 1;
    if (!(w->x = fr_dev_floats(be, n)) || !(w->a = fr_dev_floats(be, n)) || !(w->v = fr_dev_floats(be, n)) ||
        !(w->gv = fr_dev_floats(be, n)) || !(w->dx = fr_dev_floats(be, n)) ||
        (how == FR_OPTIM_GRAD_BACKPROP && !(w->traj = fr_dev_floats(be, (rc->T + 1) * n))) ||
        !(w->h = malloc((size_t)n * sizeof(float))) || !(w->score = malloc((size_t)B * sizeof(float))) ||
        !(w->c = malloc((size_t)(B * m->cfg.n_slots) * sizeof(int32_t))))
        return FR_ERR_NOMEM;
    return fr_cond_ids(task, B, pid, w->c);
}

fr_status fr_optimize_grad(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                           fr_optim_grad how, int64_t B, const int *pid, const float *x_T, float *g_xT, double *reward,
                           float *x0)
{
    opt_ws w;
    fr_status s = ws_alloc(m, be, task, rc, how, B, pid, &w);
    if (s == FR_OK) s = grad_ws(m, be, task, reward_id, rc, how, B, pid, x_T, g_xT, reward, x0, &w);
    ws_free(be, &w);
    return s;
}

/* One Adam step of n host values p with gradient g (torch.optim.Adam, double arithmetic). */
static void adam(int64_t n, int64_t step, double lr, float *p, const float *g, double *mo, double *ve)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const double bc1 = 1.0 - pow(b1, (double)step), bc2 = 1.0 - pow(b2, (double)step);
    for (int64_t k = 0; k < n; k++) {
        mo[k] = b1 * mo[k] + (1.0 - b1) * g[k];
        ve[k] = b2 * ve[k] + (1.0 - b2) * (double)g[k] * g[k];
        p[k] = (float)(p[k] - lr / bc1 * mo[k] / (sqrt(ve[k] / bc2) + eps));
    }
}

fr_status fr_optimize(fr_model *m, fr_backend *be, const fr_task *task, int reward_id, const fr_rollout_cfg *rc,
                      fr_optim_target target, fr_optim_grad how, int64_t iters, double lr, int64_t B, const int *pid,
                      float *x_T, double *curve)
{
    fr_param *cp = fr_model_param(m, "cond.weight");
    if (target == FR_OPTIM_TARGET_COND && !cp) return fr_fail(FR_ERR_FORMAT, "optimize: the model has no cond.weight");
    const int ci = cp ? (int)(cp - m->params) : 0;
    const int64_t n = B * m->cfg.D, np = target == FR_OPTIM_TARGET_COND ? fr_tensor_numel(&m->values[ci]) : n;
    opt_ws w;
    fr_status s = ws_alloc(m, be, task, rc, how, B, pid, &w);
    float *xT = fr_dev_floats(be, n), *g = fr_dev_floats(be, n);
    float *p = malloc((size_t)np * sizeof *p), *gh = malloc((size_t)np * sizeof *gh);
    double *mo = calloc((size_t)np, sizeof *mo), *ve = calloc((size_t)np, sizeof *ve);
    if (s == FR_OK && (!xT || !g || !p || !gh || !mo || !ve)) s = FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_h2d(be, xT, x_T, (size_t)n * sizeof(float));
    for (int64_t it = 0; s == FR_OK && it <= iters; it++) {
        double r;
        fr_model_zero_grad(m, be);
        s = grad_ws(m, be, task, reward_id, rc, how, B, pid, xT, g, &r, NULL, &w);
        if (s != FR_OK) break;
        if (curve) curve[it] = r;
        if (it == iters) break;
        if (target == FR_OPTIM_TARGET_NOISE) {
            s = fr_d2h(be, p, xT, (size_t)n * sizeof(float));
            if (s == FR_OK) s = fr_d2h(be, gh, g, (size_t)n * sizeof(float));
            adam(n, it + 1, lr, p, gh, mo, ve);
            if (s == FR_OK) s = fr_h2d(be, xT, p, (size_t)n * sizeof(float));
        } else {
            s = fr_d2h(be, p, m->values[ci].data, (size_t)np * sizeof(float));
            if (s == FR_OK) s = fr_d2h(be, gh, m->grads[ci].data, (size_t)np * sizeof(float));
            adam(np, it + 1, lr, p, gh, mo, ve);
            if (s == FR_OK) s = fr_h2d(be, m->values[ci].data, p, (size_t)np * sizeof(float));
        }
    }
    if (s == FR_OK) s = fr_d2h(be, x_T, xT, (size_t)n * sizeof(float));
    fr_model_zero_grad(m, be);
    fr_dev_free(be, xT);
    fr_dev_free(be, g);
    free(p);
    free(gh);
    free(mo);
    free(ve);
    ws_free(be, &w);
    return s;
}
