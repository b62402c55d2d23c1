/* The flow-matching control policy (flowrl/flow_policy.h; docs/control.md §4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/env_ctl.h"
#include "flowrl/flow_policy.h"

fr_status fr_flow_policy_new(fr_flow_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden,
                             int64_t cap)
{
    memset(p, 0, sizeof *p);
    FR_TRY(fr_mlp_new_uniform(&p->net, be, "policy", "flow policy", O + A + FR_FLOW_TEMB, hidden, n_hidden, A,
                              FR_ACT_SILU, cap));
    p->O = O;
    p->A = A;
    p->cap = cap;
    p->steps = 10;
    p->out_scale = 0.25;
    p->in_h = fr_malloc((size_t)(cap * p->net.dim[0]) * sizeof *p->in_h);
    p->out_h = fr_malloc((size_t)(cap * A) * sizeof *p->out_h);
    p->x = fr_malloc((size_t)(cap * A) * sizeof *p->x);
    if (!p->in_h || !p->out_h || !p->x) {
        fr_flow_policy_free(p);
        return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_flow_policy_free(fr_flow_policy *p)
{
    if (!p) return;
    fr_mlp_free(&p->net);
    free(p->in_h);
    free(p->out_h);
    free(p->x);
    memset(p, 0, sizeof *p);
}

void fr_flow_temb(double t, float *emb)
{
    for (int k = 0; k < FR_FLOW_TEMB / 2; k++) {
        double s, c;
        fr_ctl_sincos(t * (double)(1 << k), &s, &c);
        emb[k] = (float)c;
        emb[FR_FLOW_TEMB / 2 + k] = (float)s;
    }
}

fr_status fr_flow_policy_velocity(fr_flow_policy *p, int64_t R, const float *obs, const float *x, const double *t)
{
    if (R > p->cap) return fr_fail(FR_ERR_ARG, "flow policy: %lld rows, sized for %lld", (long long)R, (long long)p->cap);
    const int64_t O = p->O, A = p->A, W = O + A + FR_FLOW_TEMB;
    for (int64_t r = 0; r < R; r++) {
        float *in = p->in_h + r * W;
        memcpy(in, obs + r * O, (size_t)O * sizeof *in);
        memcpy(in + O, x + r * A, (size_t)A * sizeof *in);
        fr_flow_temb(t[r], in + O + A);
    }
    return fr_mlp_forward_host(&p->net, R, p->in_h, p->out_h);
}

fr_status fr_flow_policy_sample(fr_flow_policy *p, int64_t R, const float *obs, const float *eps, float *action)
{
    const int64_t A = p->A;
    double *t = fr_malloc((size_t)R * sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < R * A; i++) {
        p->x[i] = (double)eps[i];
        action[i] = eps[i];
    }
    fr_status s = FR_OK;
    const int K = p->steps;
    for (int k = 0; k < K && s == FR_OK; k++) {
        /* jnp.linspace(1, 0, K + 1): t_k = 1 − k/K */
        const double tk = 1.0 - (double)k / (double)K, tn = 1.0 - (double)(k + 1) / (double)K;
        for (int64_t r = 0; r < R; r++) t[r] = tk;
        s = fr_flow_policy_velocity(p, R, obs, action, t);
        for (int64_t i = 0; i < R * A && s == FR_OK; i++) {
            p->x[i] += (tn - tk) * p->out_scale * (double)p->out_h[i];
            action[i] = (float)p->x[i];
        }
    }
    free(t);
    return s;
}

/* The output gradient of Σ_r g_r·ℓ_r at the velocities of the last forward (p->out_h) into dout
 * (R, A); x_t as that forward saw it. */
static void cfm_dout(const fr_flow_policy *p, int64_t R, const float *act, const float *eps, const float *xt,
                     const double *t, fr_flow_loss_mode mode, const double *g, double *loss, float *dout)
{
    const int64_t A = p->A;
    for (int64_t r = 0; r < R; r++) {
        double l = 0.0;
        for (int64_t d = 0; d < A; d++) {
            const int64_t i = r * A + d;
            const double v = p->out_scale * (double)p->out_h[i];
            double e, dv;
            if (mode == FR_FLOW_LOSS_U) {
                e = v - ((double)eps[i] - (double)act[i]);
                dv = 2.0 * e / (double)A;
            } else { /* x̂1 = x_t + (1 − t)·v against ε */
                e = (double)eps[i] - ((double)xt[i] + (1.0 - t[r]) * v);
                dv = -2.0 * (1.0 - t[r]) * e / (double)A;
            }
            l += e * e;
            if (dout) dout[i] = (float)(g[r] * dv * p->out_scale);
        }
        if (loss) loss[r] = l / (double)A;
    }
}

/* x_t (R, A) = t·ε + (1 − t)·a as float, the network's input. */
static float *cfm_xt(int64_t R, int64_t A, const float *act, const float *eps, const double *t)
{
    float *xt = fr_malloc((size_t)(R * A) * sizeof *xt);
    if (!xt) return NULL;
    for (int64_t r = 0; r < R; r++)
        for (int64_t d = 0; d < A; d++) {
            const int64_t i = r * A + d;
            xt[i] = (float)(t[r] * (double)eps[i] + (1.0 - t[r]) * (double)act[i]);
        }
    return xt;
}

fr_status fr_flow_policy_cfm(fr_flow_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                             const double *t, fr_flow_loss_mode mode, double *loss, const double *g)
{
    float *xt = cfm_xt(R, p->A, act, eps, t);
    if (!xt) return FR_ERR_NOMEM;
    fr_status s = fr_flow_policy_velocity(p, R, obs, xt, t);
    if (s == FR_OK) cfm_dout(p, R, act, eps, xt, t, mode, NULL, loss, NULL);
    free(xt);
    return s == FR_OK && g ? fr_flow_policy_cfm_grad(p, R, act, eps, t, mode, g) : s;
}

fr_status fr_flow_policy_cfm_grad(fr_flow_policy *p, int64_t R, const float *act, const float *eps, const double *t,
                                  fr_flow_loss_mode mode, const double *g)
{
    float *xt = cfm_xt(R, p->A, act, eps, t), *dout = fr_malloc((size_t)(R * p->A) * sizeof *dout);
    fr_status s = xt && dout ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        cfm_dout(p, R, act, eps, xt, t, mode, g, NULL, dout);
        s = fr_mlp_backward_host(&p->net, R, dout);
    }
    free(xt);
    free(dout);
    return s;
}
