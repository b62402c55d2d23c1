/* Golden cases of the reward-gradient reverse pass (fr_rg_backprop, flowrl/reward_grad.h;
 * docs/algorithms/draft.md §1): the tiny gmm2d model of epoch.flow_grpo, an ODE rollout of B = 3
 * rows over T = 4 steps from a given x_T (the trajectory is an output), then the reverse pass from
 * a given dL/dx_T: the adjoint a it returns and every parameter gradient. rgrad.backprop: full
 * backprop down to x_T's own gradient (cut 0, to_xc), CFG 1.5 (the two branches' dx summed);
 * rgrad.truncate: DRaFT-K with K = 2 (cut 2), CFG 1. */
#include <stdio.h>

#include "core/golden_internal.h"
#include "flowrl/cond.h"
#include "flowrl/guidance.h"
#include "flowrl/model.h"
#include "flowrl/reward_grad.h"
#include "flowrl/rollout.h"
#include "flowrl/task.h"

enum { RB = 3, RT = 4 };

static fr_status rg_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(fr_golden_model_in(g));
    const int64_t D = fr_task_gmm2d.D, xs[2] = {RB, D};
    FR_TRY(fr_gi_param_str(g, "task", fr_task_gmm2d.name));
    FR_TRY(fr_gi_param(g, "T", RT));
    FR_TRY(fr_gi_param_str(g, "grid", fr_grid_name(FR_GRID_LINEAR)));
    FR_TRY(fr_gi_param(g, "cut", c->arg ? 2 : 0));
    FR_TRY(fr_gi_param(g, "to_xc", c->arg ? 0 : 1));
    FR_TRY(fr_gi_scalar(g, "cfg", c->arg ? 1.0f : 1.5f));
    FR_TRY(fr_gi_tensor(g, "prompts", FR_I32, 1, (int64_t[]){RB}, (const int32_t[]){0, 3, 6}, "the rows' prompt ids"));
    FR_TRY(fr_gi_normal(g, "x_T", 2, xs, 1.0f, NULL));
    return fr_gi_normal(g, "dl_dxT", 2, xs, 0.5f, NULL);
}

static fr_status rg_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    fr_backend *be = d->be;
    long long T, cut, to_xc;
    float cfg;
    FR_TRY(fr_go_param(in, "T", 1, 64, &T));
    FR_TRY(fr_go_param(in, "cut", 0, 64, &cut));
    FR_TRY(fr_go_param(in, "to_xc", 0, 1, &to_xc));
    FR_TRY(fr_go_scalar(in, "cfg", &cfg));
    const int32_t *pr;
    FR_TRY(fr_go_exact(in, "prompts", FR_I32, 1, (int64_t[]){RB}, (const void **)&pr));
    int64_t xs[2];
    const float *x_T, *dl;
    FR_TRY(fr_gd_f32(d, in, "x_T", 2, xs, &x_T));
    FR_TRY(fr_gd_exact(d, in, "dl_dxT", FR_F32, 2, xs, (const void **)&dl));
    const int64_t B = xs[0], D = xs[1];
    if (B != RB || cut > T) return fr_fail(FR_ERR_FORMAT, "golden %s: in.x_T is not (%d, D) or cut > T", c->name, RB);
    const float *dl_h;
    FR_TRY(fr_go_f32(in, "dl_dxT", 2, xs, &dl_h));
    float *traj, *a, *gv, *dx, *v, *x;
    FR_TRY(fr_gd_out_f32(d, out, "traj", 3, (int64_t[]){T + 1, B, D}, NULL, &traj));
    FR_TRY(fr_gd_out_f32(d, out, "a", 2, xs, dl_h, &a));
    FR_TRY(fr_gd_alloc(d, (size_t)(B * D) * sizeof(float), (void **)&gv));
    FR_TRY(fr_gd_alloc(d, (size_t)(B * D) * sizeof(float), (void **)&dx));
    FR_TRY(fr_gd_alloc(d, (size_t)(B * D) * sizeof(float), (void **)&v));
    FR_TRY(fr_gd_alloc(d, (size_t)(B * D) * sizeof(float), (void **)&x));
    fr_model m;
    FR_TRY(fr_golden_model_from_in(be, in, &m));
    fr_rollout_cfg rc = fr_rollout_cfg_default(FR_SAMPLER_ODE);
    fr_rollout_schedule sch = {0};
    rc.T = T;
    rc.cfg = cfg;
    int pid[RB];
    uint32_t sid[RB];
    int32_t cond[RB];
    for (int b = 0; b < RB; b++) pid[b] = pr[b], sid[b] = (uint32_t)b;
    fr_guided_ws gw = {0};
    int have_gw = 0;
    fr_status s = fr_rollout_schedule_make(&rc, FR_GRID_LINEAR, 1.0, 0, 0, &sch);
    if (s == FR_OK) s = fr_cond_ids(&fr_task_gmm2d, B, pid, cond);
    fr_rollout_traj tj = {traj, NULL, NULL, NULL, NULL};
    if (s == FR_OK) s = fr_rollout(&m, be, &fr_task_gmm2d, &rc, B, pid, sid, x_T, x, &tj);
    if (s == FR_OK) have_gw = (s = fr_guided_ws_alloc(&gw, be, &m, B, fr_guidance_from_scale(cfg), 1)) == FR_OK;
    if (s == FR_OK) s = fr_rg_backprop(&m, be, &gw, B, D, rc.sigmas, T, cut, traj, B, cond, a, gv, dx, v, (int)to_xc);
    for (int i = 0; s == FR_OK && i < m.n_params; i++) {
        char name[80];
        float *h;
        snprintf(name, sizeof name, "grad.%s", m.params[i].name);
        s = fr_go_out_f32(out, name, m.grads[i].ndim, m.grads[i].shape, &h);
        if (s == FR_OK) s = fr_d2h(be, h, m.grads[i].data, fr_tensor_nbytes(&m.grads[i]));
    }
    (void)dl;
    if (have_gw) fr_guided_ws_free(&gw);
    fr_rollout_schedule_free(&sch);
    fr_model_free(&m);
    return s;
}

/* --fast: the GEMMs may be vendor kernels; the epoch case's tolerance. */
const fr_golden_case fr_golden_cases_rgrad[] = {
    {"rgrad.backprop", "DRaFT full backprop: tiny gmm2d model, ODE rollout of 3 rows x 4 steps from in.x_T, CFG 1.5, "
                       "reverse pass from in.dl_dxT to dL/dx_T and every parameter gradient",
     FR_GOLDEN_ALL_OPS, 0, {1e-8f, 1e-5f}, rg_in, rg_run},
    {"rgrad.truncate", "DRaFT-K (K 2): the same rollout at CFG 1, gradient through the last 2 steps only",
     FR_GOLDEN_ALL_OPS, 1, {1e-8f, 1e-5f}, rg_in, rg_run},
};
const size_t fr_golden_n_rgrad = sizeof fr_golden_cases_rgrad / sizeof fr_golden_cases_rgrad[0];
