/* The GFlowNet trainer (flowrl/gfn_train.h; docs/algorithms/gfn.md §2–§5): torchgfn's tied MLP
 * through the op table, lock-step trajectory sampling by Philox coordinates, the losses of
 * core/gfn_loss.c, AdamW in two groups, and the exact P_T evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/digest.h"
#include "flowrl/gfn_train.h"
#include "flowrl/ops.h"
#include "flowrl/optim.h"
#include "flowrl/philox.h"

#define GFN_MAX_LAYERS 16
#define GFN_MAX_A 65 /* actions, exit included (flowrl/env.h's state_dim limit + 1) */

struct fr_gfn_trainer {
    fr_backend *be;
    const fr_env *env;
    fr_gfn_opts o;
    int A;                            /* actions (P_F logits) */
    int O;                            /* head width: A [+ A − 1 P_B logits] [+ 1 log F] */
    int pb_col, f_col;                /* first P_B column, log F column (−1: none) */
    int L;                            /* linear layers: n_hidden + 1 */
    int64_t dim[GFN_MAX_LAYERS + 1];  /* dim[0] = obs_dim, dim[L] = O */
    int n_params;                     /* 2 L: weight, bias per layer */
    fr_param params[2 * GFN_MAX_LAYERS];
    fr_tensor vals[2 * GFN_MAX_LAYERS], grads[2 * GFN_MAX_LAYERS];
    char names[2 * GFN_MAX_LAYERS][32];
    float *arena_v, *arena_g;         /* backend */
    int64_t arena_n;
    fr_param zp;                      /* log Z */
    fr_tensor zv, zg;
    float *z_dev;                     /* backend (2,): value, grad */
    fr_adamw_state adam, adam_z;
    int grad_only;                    /* fr_gfn_trainer_grad: the caller's optimiser steps */
    fr_param all[2 * GFN_MAX_LAYERS + 1]; /* the parameter list of fr_gfn_trainer_params */
    /* activations, backend: x (cap, obs_dim), pre[l] (cap, dim[l+1]), post[l] (cap, dim[l+1]) */
    int64_t cap;
    float *x, *pre[GFN_MAX_LAYERS], *post[GFN_MAX_LAYERS], *d0, *d1;
    /* host */
    float *obs_h, *out_h, *dout_h;    /* (cap, obs_dim), (cap, O), (cap, O) */
    int32_t *st;                      /* (B, max_steps, D) the states of each trajectory */
    int32_t *act, *len;               /* (B, max_steps), (B,) */
    double *logpf, *logpb, *logf, *logr, *gpf, *gpb, *gf; /* (B, max_steps), logr (B,) */
    uint8_t *visited;                 /* (n_states,) terminal states sampled so far */
    double *target, log_z_true;
    int64_t iter, trajectories, modes_found;
};

fr_gfn_opts fr_gfn_opts_default(void)
{
    fr_gfn_opts o = {FR_GFN_TB, 128, 256, 2, 0, 1e-3, 0.1, 0.0, 0.0, 1.0, 0.0, 0.9, 0.0, 1};
    return o;
}

/* ---- the network through the op table ------------------------------------------------------ */

/* pre[l] = in_l W_l^T + b_l, post[l] = relu(pre[l]) for the hidden layers; R rows of t->x. */
static void forward(fr_gfn_trainer *t, int64_t R)
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
static void backward(fr_gfn_trainer *t, int64_t R)
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
static fr_status eval_rows(fr_gfn_trainer *t, int64_t R, const int32_t *s)
{
    const fr_env *e = t->env;
    for (int64_t r = 0; r < R; r++) e->gfn->encode(e, s + r * e->state_dim, t->obs_h + r * e->obs_dim);
    FR_TRY(fr_h2d(t->be, t->x, t->obs_h, (size_t)(R * e->obs_dim) * sizeof(float)));
    forward(t, R);
    return fr_d2h(t->be, t->out_h, t->pre[t->L - 1], (size_t)(R * t->O) * sizeof(float));
}

/* Masked log-softmax in float64 of n logits z (float) into lsm (n,) (−inf where masked). */
static void log_softmax(const float *z, const uint8_t *mask, int n, double *lsm)
{
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < n; k++)
        if (mask[k] && (double)z[k] > m) m = (double)z[k];
    for (int k = 0; k < n; k++)
        if (mask[k]) s += fr_awm_exp((double)z[k] - m);
    double lse = m + fr_awm_log(s);
    for (int k = 0; k < n; k++) lsm[k] = mask[k] ? (double)z[k] - lse : -INFINITY;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static fr_status check_opts(const fr_env *env, const fr_gfn_opts *o)
{
    if (!env->gfn || env->n_states <= 0)
        return fr_fail(FR_ERR_ARG, "gfn: --env %s is not an enumerable GFlowNet environment", env->desc);
    if (env->n_actions > GFN_MAX_A) return fr_fail(FR_ERR_ARG, "gfn: %s has %d actions (at most %d)", env->desc, env->n_actions, GFN_MAX_A);
    if (!fr_gfn_loss_name(o->loss)) return fr_fail(FR_ERR_ARG, "gfn: --loss %d is not a loss", (int)o->loss);
    if (o->batch < 1 || o->batch > (1 << 20)) return fr_fail(FR_ERR_ARG, "gfn: --batch-size %lld is outside [1, 2^20]", (long long)o->batch);
    if (o->hidden < 1 || o->hidden > 8192) return fr_fail(FR_ERR_ARG, "gfn: --hidden-dim %lld is outside [1, 8192]", (long long)o->hidden);
    if (o->n_hidden < 1 || o->n_hidden >= GFN_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "gfn: --n-hidden %lld is outside [1, %d]", (long long)o->n_hidden, GFN_MAX_LAYERS - 1);
    if (!(o->epsilon >= 0.0 && o->epsilon <= 1.0)) return fr_fail(FR_ERR_ARG, "gfn: --epsilon %g is outside [0, 1]", o->epsilon);
    if (!(o->temperature > 0.0) || !isfinite(o->temperature) || !isfinite(o->sf_bias))
        return fr_fail(FR_ERR_ARG, "gfn: --temperature %g must be > 0 and --sf-bias %g finite", o->temperature, o->sf_bias);
    if (!(o->lr > 0.0) || !(o->lr_z > 0.0)) return fr_fail(FR_ERR_ARG, "gfn: --lr %g / --lr-z %g must be > 0", o->lr, o->lr_z);
    if (!(o->lambda > 0.0)) return fr_fail(FR_ERR_ARG, "gfn: --subtb-lambda %g must be > 0", o->lambda);
    return FR_OK;
}

/* torch.nn.Linear's default init: weight and bias U(−1/√fan_in, 1/√fan_in), from Philox
 * (seed, FR_RNG_INIT, parameter index, 1, 0) element i (c1 = 1 keeps it apart from fr_model). */
static fr_status init_params(fr_gfn_trainer *t)
{
    float *h = fr_malloc((size_t)t->arena_n * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    memset(h, 0, (size_t)t->arena_n * sizeof *h);
    int64_t off = 0;
    for (int p = 0; p < t->n_params; p++) {
        int l = p / 2;
        float bound = 1.0f / sqrtf((float)t->dim[l]);
        int64_t n = fr_tensor_numel(&t->vals[p]);
        for (int64_t i = 0; i < n; i++)
            h[off + i] = (2.0f * fr_rng_uniform(t->o.seed, FR_RNG_INIT, (uint32_t)p, 1, 0, (uint32_t)i) - 1.0f) * bound;
        off += fr_arena_slot(n);
    }
    fr_status s = fr_h2d(t->be, t->arena_v, h, (size_t)t->arena_n * sizeof *h);
    free(h);
    float z[2] = {(float)t->o.init_log_z, 0.0f};
    if (s == FR_OK) s = fr_h2d(t->be, t->z_dev, z, sizeof z);
    return s;
}

fr_status fr_gfn_trainer_new(fr_gfn_trainer **out, fr_backend *be, const fr_env *env, const fr_gfn_opts *o)
{
    *out = NULL;
    FR_TRY(check_opts(env, o));
    fr_gfn_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->be = be;
    t->env = env;
    t->o = *o;
    t->A = env->n_actions;
    t->O = t->A;
    t->pb_col = t->f_col = -1;
    /* FM: the A columns are the log edge flows, the sampler's logits (§3.6) */
    if (!o->uniform_pb && o->loss != FR_GFN_FM) {
        t->pb_col = t->O;
        t->O += t->A - 1;
    }
    if (o->loss == FR_GFN_DB || o->loss == FR_GFN_SUBTB) t->f_col = t->O++;
    t->L = (int)o->n_hidden + 1;
    t->dim[0] = env->obs_dim;
    for (int l = 1; l < t->L; l++) t->dim[l] = o->hidden;
    t->dim[t->L] = t->O;
    t->n_params = 2 * t->L;
    for (int l = 0; l < t->L; l++) {
        t->arena_n += fr_arena_slot(t->dim[l + 1] * t->dim[l]) + fr_arena_slot(t->dim[l + 1]);
        if (l < t->L - 1) {
            snprintf(t->names[2 * l], sizeof t->names[0], "trunk.%d.weight", 2 * l);
            snprintf(t->names[2 * l + 1], sizeof t->names[0], "trunk.%d.bias", 2 * l);
        } else {
            snprintf(t->names[2 * l], sizeof t->names[0], "head.weight");
            snprintf(t->names[2 * l + 1], sizeof t->names[0], "head.bias");
        }
    }
    const int64_t B = o->batch, T = env->max_steps, D = env->state_dim;
    /* rows of one forward: the visited states; FM also every parent of each (at most D) */
    t->cap = o->loss == FR_GFN_FM ? B * T * (D + 1) : B * T;
    fr_status s = FR_OK;
    t->arena_v = fr_dev_floats(be, t->arena_n);
    t->arena_g = fr_dev_floats(be, t->arena_n);
    t->z_dev = fr_dev_floats(be, 2);
    t->x = fr_dev_floats(be, t->cap * env->obs_dim);
    int64_t wmax = env->obs_dim > t->O ? env->obs_dim : t->O;
    if (o->hidden > wmax) wmax = o->hidden;
    t->d0 = fr_dev_floats(be, t->cap * wmax);
    t->d1 = fr_dev_floats(be, t->cap * wmax);
    if (!t->arena_v || !t->arena_g || !t->z_dev || !t->x || !t->d0 || !t->d1) s = FR_ERR_NOMEM;
    for (int l = 0; l < t->L && s == FR_OK; l++) {
        t->pre[l] = fr_dev_floats(be, t->cap * t->dim[l + 1]);
        if (!t->pre[l]) s = FR_ERR_NOMEM;
        if (l < t->L - 1 && s == FR_OK && !(t->post[l] = fr_dev_floats(be, t->cap * t->dim[l + 1]))) s = FR_ERR_NOMEM;
    }
    int64_t off = 0;
    for (int l = 0; l < t->L && s == FR_OK; l++) {
        int64_t ws[2] = {t->dim[l + 1], t->dim[l]}, bs[1] = {t->dim[l + 1]};
        t->vals[2 * l] = fr_tensor_f32(t->arena_v + off, 2, ws);
        t->grads[2 * l] = fr_tensor_f32(t->arena_g + off, 2, ws);
        off += fr_arena_slot(ws[0] * ws[1]);
        t->vals[2 * l + 1] = fr_tensor_f32(t->arena_v + off, 1, bs);
        t->grads[2 * l + 1] = fr_tensor_f32(t->arena_g + off, 1, bs);
        off += fr_arena_slot(bs[0]);
    }
    for (int p = 0; p < t->n_params; p++) t->params[p] = (fr_param){t->names[p], &t->vals[p], &t->grads[p]};
    int64_t one[1] = {1};
    if (s == FR_OK) {
        t->zv = fr_tensor_f32(t->z_dev, 1, one);
        t->zg = fr_tensor_f32(t->z_dev + 1, 1, one);
        t->zp = (fr_param){"log_z", &t->zv, &t->zg};
        s = init_params(t);
    }
    if (s == FR_OK) s = fr_adamw_state_init(be, &t->adam, t->params, t->n_params);
    if (s == FR_OK) s = fr_adamw_state_init(be, &t->adam_z, &t->zp, 1);
    const int64_t n = env->n_states;
    if (s == FR_OK) {
        t->obs_h = fr_malloc((size_t)(t->cap * env->obs_dim) * sizeof(float));
        t->out_h = fr_malloc((size_t)(t->cap * t->O) * sizeof(float));
        t->dout_h = fr_malloc((size_t)(t->cap * t->O) * sizeof(float));
        t->st = fr_malloc((size_t)(B * T * D) * sizeof(int32_t));
        t->act = fr_malloc((size_t)(B * T) * sizeof(int32_t));
        t->len = fr_malloc((size_t)B * sizeof(int32_t));
        t->logr = fr_malloc((size_t)B * sizeof(double));
        double **dd[6] = {&t->logpf, &t->logpb, &t->logf, &t->gpf, &t->gpb, &t->gf};
        for (int k = 0; k < 6; k++) *dd[k] = fr_calloc((size_t)(B * T), sizeof(double));
        t->visited = fr_calloc((size_t)n, 1);
        t->target = fr_malloc((size_t)n * sizeof(double));
        if (!t->obs_h || !t->out_h || !t->dout_h || !t->st || !t->act || !t->len || !t->logr || !t->logpf || !t->logpb ||
            !t->logf || !t->gpf || !t->gpb || !t->gf || !t->visited || !t->target)
            s = FR_ERR_NOMEM;
    }
    if (s == FR_OK) s = fr_env_target(env, t->target, &t->log_z_true, NULL, NULL);
    if (s != FR_OK) {
        fr_gfn_trainer_free(t);
        return s;
    }
    *out = t;
    return FR_OK;
}

void fr_gfn_trainer_free(fr_gfn_trainer *t)
{
    if (!t) return;
    fr_backend *be = t->be;
    if (t->adam.m) fr_adamw_state_free(&t->adam);
    if (t->adam_z.m) fr_adamw_state_free(&t->adam_z);
    void *dev[] = {t->arena_v, t->arena_g, t->z_dev, t->x, t->d0, t->d1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    for (int l = 0; l < t->L; l++) {
        fr_dev_free(be, t->pre[l]);
        fr_dev_free(be, t->post[l]);
    }
    void *host[] = {t->obs_h, t->out_h, t->dout_h, t->st, t->act, t->len, t->logr, t->logpf, t->logpb,
                    t->logf, t->gpf, t->gpb, t->gf, t->visited, t->target};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    free(t);
}

/* ---- one iteration ---------------------------------------------------------------------- */

/* The batch's trajectories, in lock-step: at step k every unfinished trajectory b draws its
 * action from p = (1 − ε)·P_F' + ε·Uniform(allowed), P_F' the softmax of (logits − sf_bias at the
 * exit) / temperature, with u = Philox (seed, purpose, c0, b, k)
 * (training: FR_RNG_GFN_ACTION, c0 = the iteration), the first allowed action whose cumulative
 * probability exceeds u. */
static fr_status sample(fr_gfn_trainer *t, uint32_t purpose, uint32_t c0, double epsilon, double temperature,
                        double sf_bias)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    const int A = t->A;
    int32_t *rows = fr_malloc((size_t)(B * D) * sizeof *rows);
    int64_t *who = fr_malloc((size_t)B * sizeof *who);
    if (!rows || !who) {
        free(rows);
        free(who);
        return FR_ERR_NOMEM;
    }
    for (int64_t b = 0; b < B; b++) {
        e->gfn->initial(e, t->st + b * T * D);
        t->len[b] = 0;
    }
    fr_status s = FR_OK;
    for (int64_t k = 0; k < T && s == FR_OK; k++) {
        int64_t R = 0;
        for (int64_t b = 0; b < B; b++)
            if (t->len[b] == 0) {
                memcpy(rows + R * D, t->st + (b * T + k) * D, (size_t)D * sizeof *rows);
                who[R++] = b;
            }
        if (R == 0) break;
        s = eval_rows(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            const int64_t b = who[r];
            const int32_t *sk = t->st + (b * T + k) * D;
            uint8_t fwd[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            e->gfn->forward_mask(e, sk, fwd);
            /* torchgfn's sampling logits: the exit's minus sf_bias, all divided by the temperature */
            float z[GFN_MAX_A];
            for (int a = 0; a < A; a++) {
                double v = (double)t->out_h[r * t->O + a] - (a == e->exit_action ? sf_bias : 0.0);
                z[a] = (float)(v / temperature);
            }
            log_softmax(z, fwd, A, lsm);
            int n_ok = 0;
            for (int a = 0; a < A; a++) n_ok += fwd[a];
            double u = ((double)fr_rng_u32(t->o.seed, purpose, c0, (uint32_t)b, (uint32_t)k, 0) + 0.5) * (1.0 / 4294967296.0);
            double cum = 0.0;
            int pick = -1;
            for (int a = 0; a < A; a++) {
                if (!fwd[a]) continue;
                double p = (1.0 - epsilon) * fr_awm_exp(lsm[a]) + epsilon / (double)n_ok;
                cum += p;
                pick = a;
                if (u < cum) break;
            }
            if (pick < 0) {
                s = fr_fail(FR_ERR_ARG, "gfn: %s: trajectory %lld has no allowed action at step %lld", e->desc,
                            (long long)b, (long long)k);
                break;
            }
            t->act[b * T + k] = pick;
            if (pick == e->exit_action || k == T - 1) {
                t->len[b] = (int32_t)(k + 1);
                if (pick != e->exit_action)
                    s = fr_fail(FR_ERR_ARG, "gfn: %s: trajectory %lld did not exit within %lld steps", e->desc,
                                (long long)b, (long long)T);
            } else {
                e->gfn->step(e, sk, pick, t->st + (b * T + k + 1) * D);
            }
        }
    }
    free(rows);
    free(who);
    return s;
}

/* The gradient of the R rows' outputs (t->dout_h) through the network, AdamW on it, and on
 * log Z (TB: its own group, lr_Z and no weight decay) from its gradient g_log_z. */
static fr_status update(fr_gfn_trainer *t, int64_t R, double g_log_z)
{
    FR_TRY(fr_dev_zero(t->be, t->arena_g, (size_t)t->arena_n * sizeof(float)));
    FR_TRY(fr_h2d(t->be, t->d0, t->dout_h, (size_t)(R * t->O) * sizeof(float)));
    backward(t, R);
    if (t->o.loss == FR_GFN_TB) {
        float gz = (float)g_log_z;
        FR_TRY(fr_h2d(t->be, t->z_dev + 1, &gz, sizeof gz));
    }
    if (!t->grad_only) {
        fr_adamw_cfg c = fr_adamw_cfg_default();
        c.weight_decay = t->o.weight_decay;
        FR_TRY(fr_adamw_step(t->be, &t->adam, t->params, t->n_params, &c, t->o.lr));
        c.weight_decay = 0.0;
        if (t->o.loss == FR_GFN_TB) FR_TRY(fr_adamw_step(t->be, &t->adam_z, &t->zp, 1, &c, t->o.lr_z));
    }
    t->iter++;
    t->trajectories += t->o.batch;
    return FR_OK;
}

/* FM (§3.6): rows are, per trajectory b in order, each non-initial state s_k (0 < k < n; torchgfn's
 * intermediary_states include the terminal one)
 * followed by its parents (backward actions in order), then the B terminating states. */
static fr_status fm_update(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    const int A = t->A, O = t->O;
    int32_t *rows = fr_malloc((size_t)(t->cap * D) * sizeof *rows);
    int64_t *srow = fr_malloc((size_t)(B * T) * sizeof *srow);
    int32_t *n_in = fr_malloc((size_t)(B * T) * sizeof *n_in), *n_out = fr_malloc((size_t)(B * T) * sizeof *n_out);
    double *fin = fr_malloc((size_t)(B * T * D) * sizeof *fin), *fout = fr_malloc((size_t)(B * T * A) * sizeof *fout);
    double *gin = fr_malloc((size_t)(B * T * D) * sizeof *gin), *gout = fr_malloc((size_t)(B * T * A) * sizeof *gout);
    double *fx = fr_malloc((size_t)B * sizeof *fx), *gx = fr_malloc((size_t)B * sizeof *gx);
    fr_status s = rows && srow && n_in && n_out && fin && fout && gin && gout && fx && gx ? FR_OK : FR_ERR_NOMEM;
    int64_t R = 0, M = 0;
    uint8_t m[GFN_MAX_A];
    for (int64_t b = 0; b < B && s == FR_OK; b++)
        for (int64_t k = 1; k < t->len[b]; k++) {
            const int32_t *sk = t->st + (b * T + k) * D;
            srow[M] = R;
            memcpy(rows + R * D, sk, (size_t)D * sizeof *rows);
            R++;
            e->gfn->backward_mask(e, sk, m);
            n_in[M] = 0;
            for (int d = 0; d < A - 1; d++)
                if (m[d]) {
                    e->gfn->back_step(e, sk, d, rows + R * D);
                    R++;
                    n_in[M]++;
                }
            M++;
        }
    const int64_t xrow = R;
    for (int64_t b = 0; b < B && s == FR_OK; b++) {
        memcpy(rows + R * D, t->st + (b * T + t->len[b] - 1) * D, (size_t)D * sizeof *rows);
        R++;
    }
    if (s == FR_OK) s = eval_rows(t, R, rows);
    int64_t oi = 0, oo = 0;
    for (int64_t j = 0; j < M && s == FR_OK; j++) {
        const int64_t r = srow[j];
        int c = 0;
        e->gfn->backward_mask(e, rows + r * D, m);
        for (int d = 0; d < A - 1; d++)
            if (m[d]) fin[oi++] = (double)t->out_h[(r + 1 + c++) * O + d]; /* log F(parent → s) via action d */
        e->gfn->forward_mask(e, rows + r * D, m);
        n_out[j] = 0;
        for (int a = 0; a < A; a++)
            if (m[a]) {
                fout[oo++] = (double)t->out_h[r * O + a];
                n_out[j]++;
            }
    }
    for (int64_t b = 0; b < B && s == FR_OK; b++) fx[b] = (double)t->out_h[(xrow + b) * O + e->exit_action];
    double loss = 0.0;
    if (s == FR_OK) s = fr_gfn_fm_loss(M, n_in, fin, n_out, fout, B, fx, t->logr, 1.0, &loss, gin, gout, gx);
    if (s == FR_OK) {
        memset(t->dout_h, 0, (size_t)(R * O) * sizeof(float));
        oi = oo = 0;
        for (int64_t j = 0; j < M; j++) {
            const int64_t r = srow[j];
            int c = 0;
            e->gfn->backward_mask(e, rows + r * D, m);
            for (int d = 0; d < A - 1; d++)
                if (m[d]) t->dout_h[(r + 1 + c++) * O + d] = (float)gin[oi++];
            e->gfn->forward_mask(e, rows + r * D, m);
            for (int a = 0; a < A; a++)
                if (m[a]) t->dout_h[r * O + a] = (float)gout[oo++];
        }
        for (int64_t b = 0; b < B; b++) t->dout_h[(xrow + b) * O + e->exit_action] = (float)gx[b];
        s = update(t, R, 0.0);
    }
    void *host[] = {rows, srow, n_in, n_out, fin, fout, gin, gout, fx, gx};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    if (s == FR_OK && info) {
        info->iteration = t->iter;
        info->trajectories = t->trajectories;
        info->loss = loss;
        info->modes_found = t->modes_found;
        info->log_z = NAN;
    }
    return s;
}

fr_status fr_gfn_trainer_step(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim;
    const int A = t->A, O = t->O;
    FR_TRY(sample(t, FR_RNG_GFN_ACTION, (uint32_t)t->iter, t->o.epsilon, t->o.temperature, t->o.sf_bias));
    /* the visited states s_0 .. s_{n−1} of every trajectory as rows, in (b, k) order */
    int64_t R = 0;
    int32_t *rows = fr_malloc((size_t)(B * T * D) * sizeof *rows);
    int64_t *first = fr_malloc((size_t)B * sizeof *first);
    if (!rows || !first) {
        free(rows);
        free(first);
        return FR_ERR_NOMEM;
    }
    for (int64_t b = 0; b < B; b++) {
        first[b] = R;
        memcpy(rows + R * D, t->st + b * T * D, (size_t)(t->len[b] * D) * sizeof *rows);
        R += t->len[b];
        const int32_t *x = t->st + (b * T + t->len[b] - 1) * D;
        t->logr[b] = e->gfn->log_reward(e, x);
        int64_t xi = e->gfn->index(e, x);
        if (!t->visited[xi]) {
            t->visited[xi] = 1;
            t->modes_found += e->gfn->is_mode(e, x);
        }
    }
    if (t->o.loss == FR_GFN_FM) {
        free(rows);
        free(first);
        return fm_update(t, info);
    }
    fr_status s = eval_rows(t, R, rows);
    float zf[2];
    if (s == FR_OK) s = fr_d2h(t->be, zf, t->z_dev, sizeof zf);
    if (s != FR_OK) {
        free(rows);
        free(first);
        return s;
    }
    /* log-probs under the current policy (ε = 0, §2), float64 */
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < t->len[b]; k++) {
            const int64_t r = first[b] + k;
            uint8_t m[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            e->gfn->forward_mask(e, rows + r * D, m);
            log_softmax(t->out_h + r * O, m, A, lsm);
            t->logpf[b * T + k] = lsm[t->act[b * T + k]];
            if (t->f_col >= 0) t->logf[b * T + k] = (double)t->out_h[r * O + t->f_col];
            if (k + 1 < t->len[b]) { /* P_B(s_k | s_{k+1}) through the same action */
                e->gfn->backward_mask(e, rows + (r + 1) * D, m);
                if (t->pb_col >= 0) {
                    log_softmax(t->out_h + (r + 1) * O + t->pb_col, m, A - 1, lsm);
                    t->logpb[b * T + k] = lsm[t->act[b * T + k]];
                } else {
                    int n = 0;
                    for (int a = 0; a < A - 1; a++) n += m[a];
                    t->logpb[b * T + k] = -fr_awm_log((double)n);
                }
            }
        }
    fr_gfn_batch gb = {B, T, t->len, t->logpf, t->logpb, t->f_col >= 0 ? t->logf : NULL, t->logr, (double)zf[0],
                       t->o.lambda};
    fr_gfn_grad g = {t->gpf, t->gpb, t->f_col >= 0 ? t->gf : NULL, 0.0};
    double loss = 0.0;
    s = fr_gfn_loss(t->o.loss, &gb, &loss, NULL, &g);
    /* the logits' gradient: d lsm[a] / d z_j = δ_aj − softmax_j over the allowed j */
    memset(t->dout_h, 0, (size_t)(R * O) * sizeof(float));
    double *dz = fr_calloc((size_t)O, sizeof *dz);
    if (s == FR_OK && !dz) s = FR_ERR_NOMEM;
    for (int64_t b = 0; b < B && s == FR_OK; b++)
        for (int64_t k = 0; k < t->len[b]; k++) {
            const int64_t r = first[b] + k;
            const int a = t->act[b * T + k];
            uint8_t m[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            memset(dz, 0, (size_t)O * sizeof *dz);
            e->gfn->forward_mask(e, rows + r * D, m);
            log_softmax(t->out_h + r * O, m, A, lsm);
            const double gp = t->gpf[b * T + k];
            for (int j = 0; j < A; j++)
                if (m[j]) dz[j] = gp * ((j == a ? 1.0 : 0.0) - fr_awm_exp(lsm[j]));
            if (t->f_col >= 0) dz[t->f_col] = t->gf[b * T + k];
            /* row r's P_B head is the backward policy at s_k of the edge s_{k−1} → s_k */
            if (t->pb_col >= 0 && k > 0) {
                const int ap = t->act[b * T + k - 1];
                const double gb2 = t->gpb[b * T + k - 1];
                e->gfn->backward_mask(e, rows + r * D, m);
                log_softmax(t->out_h + r * O + t->pb_col, m, A - 1, lsm);
                for (int j = 0; j < A - 1; j++)
                    if (m[j]) dz[t->pb_col + j] = gb2 * ((j == ap ? 1.0 : 0.0) - fr_awm_exp(lsm[j]));
            }
            for (int j = 0; j < O; j++) t->dout_h[r * O + j] = (float)dz[j];
        }
    free(dz);
    free(rows);
    free(first);
    if (s != FR_OK) return s;
    FR_TRY(update(t, R, g.log_z));
    if (info) {
        info->iteration = t->iter;
        info->trajectories = t->trajectories;
        info->loss = loss;
        info->modes_found = t->modes_found;
        info->log_z = NAN; /* fr_gfn_trainer_grad: the caller reads it after its optimiser step */
        if (!t->grad_only) FR_TRY(fr_gfn_trainer_log_z(t, &info->log_z));
    }
    return FR_OK;
}

fr_status fr_gfn_trainer_log_z(fr_gfn_trainer *t, double *log_z)
{
    *log_z = NAN;
    if (t->o.loss == FR_GFN_TB) {
        float z[2];
        FR_TRY(fr_d2h(t->be, z, t->z_dev, sizeof z));
        *log_z = (double)z[0];
    } else if (t->f_col >= 0) {
        int32_t s0[GFN_MAX_A];
        t->env->gfn->initial(t->env, s0);
        FR_TRY(eval_rows(t, 1, s0));
        *log_z = (double)t->out_h[t->f_col];
    }
    return FR_OK;
}

int64_t fr_gfn_trainer_modes(const fr_gfn_trainer *t) { return t->modes_found; }

fr_status fr_gfn_trainer_grad(fr_gfn_trainer *t, fr_gfn_step_info *info)
{
    t->grad_only = 1;
    fr_status s = fr_gfn_trainer_step(t, info);
    t->grad_only = 0;
    return s;
}

int fr_gfn_trainer_params(fr_gfn_trainer *t, fr_param **ps, int *n_net)
{
    for (int p = 0; p < t->n_params; p++) t->all[p] = t->params[p];
    int n = t->n_params;
    if (t->o.loss == FR_GFN_TB) t->all[n++] = t->zp;
    *ps = t->all;
    *n_net = t->n_params;
    return n;
}

/* The counters a resumed trainer needs to draw the same actions and report the same modes: the
 * iterations and trajectories done and the terminal states sampled so far. */
fr_status fr_gfn_trainer_save(fr_gfn_trainer *t, fr_st_file *f)
{
    int64_t three = 3, n = t->env->n_states;
    fr_tensor c, v;
    FR_TRY(fr_tensor_alloc(&c, FR_I64, 1, &three));
    ((int64_t *)c.data)[0] = t->iter;
    ((int64_t *)c.data)[1] = t->trajectories;
    ((int64_t *)c.data)[2] = t->modes_found;
    fr_status s = fr_st_add_take(f, "gfn.counters", &c);
    if (s == FR_OK) s = fr_tensor_alloc(&v, FR_U8, 1, &n);
    if (s == FR_OK) {
        memcpy(v.data, t->visited, (size_t)n);
        s = fr_st_add_take(f, "gfn.visited", &v);
    }
    return s;
}

fr_status fr_gfn_trainer_load(fr_gfn_trainer *t, const fr_st_file *f, const char *path)
{
    const fr_tensor *c = fr_st_get(f, "gfn.counters"), *v = fr_st_get(f, "gfn.visited");
    if (!c || c->dtype != FR_I64 || c->ndim != 1 || c->shape[0] != 3)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.counters missing or not I64 (3,)", path);
    if (!v || v->dtype != FR_U8 || v->ndim != 1 || v->shape[0] != t->env->n_states)
        return fr_fail(FR_ERR_FORMAT, "%s: gfn.visited missing or not U8 (%lld,)", path, (long long)t->env->n_states);
    t->iter = ((const int64_t *)c->data)[0];
    t->trajectories = ((const int64_t *)c->data)[1];
    memcpy(t->visited, v->data, (size_t)t->env->n_states);
    t->modes_found = ((const int64_t *)c->data)[2];
    return FR_OK;
}

/* ---- evaluation --------------------------------------------------------------------------- */

fr_status fr_gfn_trainer_eval(fr_gfn_trainer *t, double *l1, double *log_z_err, double *pt_out)
{
    const fr_env *e = t->env;
    const int64_t n = e->n_states, D = e->state_dim;
    const int A = t->A;
    double *lp = fr_malloc((size_t)(n * A) * sizeof *lp), *pt = pt_out ? pt_out : fr_malloc((size_t)n * sizeof *pt);
    int32_t *rows = fr_malloc((size_t)(t->cap * D) * sizeof *rows);
    fr_status s = lp && pt && rows ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i0 = 0; i0 < n && s == FR_OK; i0 += t->cap) {
        int64_t R = n - i0 < t->cap ? n - i0 : t->cap;
        for (int64_t r = 0; r < R; r++) e->gfn->state_at(e, i0 + r, rows + r * D);
        s = eval_rows(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            uint8_t m[GFN_MAX_A];
            e->gfn->forward_mask(e, rows + r * D, m);
            log_softmax(t->out_h + r * t->O, m, A, lp + (i0 + r) * A);
        }
    }
    if (s == FR_OK) s = fr_env_exact_pt(e, lp, pt);
    if (s == FR_OK) *l1 = fr_env_l1(pt, t->target, n);
    if (s == FR_OK && log_z_err) {
        *log_z_err = NAN;
        if (t->o.loss == FR_GFN_TB) {
            float z[2];
            s = fr_d2h(t->be, z, t->z_dev, sizeof z);
            *log_z_err = fabs((double)z[0] - t->log_z_true);
        } else if (t->f_col >= 0) {
            e->gfn->initial(e, rows);
            s = eval_rows(t, 1, rows);
            *log_z_err = fabs((double)t->out_h[t->f_col] - t->log_z_true);
        }
    }
    free(lp);
    if (!pt_out) free(pt);
    free(rows);
    return s;
}

fr_status fr_gfn_trainer_digest(fr_gfn_trainer *t, uint64_t *digest, int64_t *n_params)
{
    float *h = fr_malloc((size_t)(t->arena_n + 1) * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = fr_d2h(t->be, h, t->arena_v, (size_t)t->arena_n * sizeof *h);
    if (s == FR_OK) s = fr_d2h(t->be, h + t->arena_n, t->z_dev, sizeof *h);
    if (s == FR_OK) *digest = fr_digest_bytes(h, (size_t)(t->arena_n + 1) * sizeof *h);
    if (n_params) {
        int64_t c = 1;
        for (int p = 0; p < t->n_params; p++) c += fr_tensor_numel(&t->vals[p]);
        *n_params = c;
    }
    free(h);
    return s;
}

fr_status fr_gfn_trainer_sampled_l1(fr_gfn_trainer *t, int64_t n, double *l1, int64_t *hist)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim, S = e->n_states;
    if (n < 1 || n / B >= (int64_t)UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "gfn: sampled L1 of %lld trajectories", (long long)n);
    int64_t *h = hist ? hist : fr_malloc((size_t)S * sizeof *h);
    double *ph = fr_malloc((size_t)S * sizeof *ph);
    fr_status s = h && ph ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) memset(h, 0, (size_t)S * sizeof *h);
    int64_t done = 0;
    for (uint32_t j = 0; done < n && s == FR_OK; j++) {
        s = sample(t, FR_RNG_GFN_EVAL, j, 0.0, 1.0, 0.0);
        for (int64_t b = 0; b < B && done < n && s == FR_OK; b++, done++)
            h[e->gfn->index(e, t->st + (b * T + t->len[b] - 1) * D)]++;
    }
    if (s == FR_OK) {
        for (int64_t i = 0; i < S; i++) ph[i] = (double)h[i] / (double)n;
        *l1 = fr_env_l1(ph, t->target, S);
    }
    if (!hist) free(h);
    free(ph);
    return s;
}
