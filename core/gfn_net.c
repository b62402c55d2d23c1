/* The GFlowNet trainer's network (core/gfn_train_internal.h; docs/algorithms/gfn.md §2): torchgfn's
 * tied MLP through the op table, the float64 masked log-softmax of its outputs, and the AdamW
 * update of the network and log Z. */
#include <math.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/ops.h"
#include "gfn_train_internal.h"

/* pre[l] = in_l W_l^T + b_l, post[l] = relu(pre[l]) for the hidden layers; R rows of t->x. */
void fr_gfn_net_forward(fr_gfn_trainer *t, int64_t R)
{
    const fr_ops *op = t->be->ops;
    const float *in = t->x;
    t->be->work.fwd_rows += (uint64_t)R; /* the NFE count (flowrl/backend.h) */
    for (int l = 0; l < t->L; l++) {
        op->gemm(0, 1, R, t->dim[l + 1], t->dim[l], in, t->vals[2 * l].data, t->pre[l], 0);
        op->bias_add(R, t->dim[l + 1], t->pre[l], t->vals[2 * l + 1].data);
        if (l < t->L - 1) {
            op->act_fwd(FR_ACT_RELU, R * t->dim[l + 1], t->pre[l], t->post[l]);
            in = t->post[l];
        }
    }
}

/* Gradients (accumulated into the zeroed grads) of the R rows whose output gradient is t->d0. */
void fr_gfn_net_backward(fr_gfn_trainer *t, int64_t R)
{
    const fr_ops *op = t->be->ops;
    float *d = t->d0, *dn = t->d1;
    t->be->work.bwd_rows += (uint64_t)R;
    for (int l = t->L - 1; l >= 0; l--) {
        const float *in = l == 0 ? t->x : t->post[l - 1];
        op->gemm(1, 0, t->dim[l + 1], t->dim[l], R, d, in, t->grads[2 * l].data, 1);
        op->bias_grad(R, t->dim[l + 1], d, t->grads[2 * l + 1].data, 1);
        if (l == 0) break;
        /* dx = d W_l, then through the ReLU of layer l − 1 */
        op->gemm(0, 0, R, t->dim[l], t->dim[l + 1], d, t->vals[2 * l].data, dn, 0);
        op->act_bwd(FR_ACT_RELU, R * t->dim[l], t->pre[l - 1], dn, dn, 0);
        float *sw = d;
        d = dn;
        dn = sw;
    }
}

/* The outputs (R, O) on the host of the states s (R, D). */
fr_status fr_gfn_net_rows(fr_gfn_trainer *t, int64_t R, const int32_t *s)
{
    const fr_env *e = t->env;
    const int64_t in = t->dim[0];
    for (int64_t r = 0; r < R; r++) {
        e->gfn->encode(e, s + r * e->state_dim, t->obs_h + r * in);
        for (int i = 0; i < t->ncw; i++) t->obs_h[r * in + e->obs_dim + i] = t->cond_rows[r * t->ncw + i]; /* ω [, β] */
    }
    FR_TRY(fr_h2d(t->be, t->x, t->obs_h, (size_t)(R * in) * sizeof(float)));
    fr_gfn_net_forward(t, R);
    return fr_d2h(t->be, t->out_h, t->pre[t->L - 1], (size_t)(R * t->O) * sizeof(float));
}

/* Masked log-softmax in float64 of n logits z (float) into lsm (n,) (−inf where masked). */
void fr_gfn_log_softmax(const float *z, const uint8_t *mask, int n, double *lsm)
{
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < n; k++)
        if (mask[k] && (double)z[k] > m) m = (double)z[k];
    for (int k = 0; k < n; k++)
        if (mask[k]) s += fr_awm_exp((double)z[k] - m);
    double lse = m + fr_awm_log(s);
    for (int k = 0; k < n; k++) lsm[k] = mask[k] ? (double)z[k] - lse : -INFINITY;
}

/* The gradient of the R rows' outputs (t->dout_h) through the network, AdamW on it, and on
 * log Z (TB: its own group, lr_Z and no weight decay) from its gradient g_log_z. */
fr_status fr_gfn_net_update(fr_gfn_trainer *t, int64_t R, double g_log_z)
{
    FR_TRY(fr_dev_zero(t->be, t->arena_g, (size_t)t->arena_n * sizeof(float)));
    FR_TRY(fr_h2d(t->be, t->d0, t->dout_h, (size_t)(R * t->O) * sizeof(float)));
    fr_gfn_net_backward(t, R);
    if (fr_gfn_has_log_z(t)) {
        float gz = (float)g_log_z;
        FR_TRY(fr_h2d(t->be, t->z_dev + 1, &gz, sizeof gz));
    }
    if (!t->grad_only) {
        fr_adamw_cfg c = fr_adamw_cfg_default();
        c.weight_decay = t->o.weight_decay;
        FR_TRY(fr_adamw_step(t->be, &t->adam, t->params, t->n_params, &c, t->o.lr));
        c.weight_decay = 0.0;
        if (fr_gfn_has_log_z(t)) FR_TRY(fr_adamw_step(t->be, &t->adam_z, &t->zp, 1, &c, t->o.lr_z));
    }
    t->iter++;
    t->trajectories += t->o.batch;
    return FR_OK;
}
