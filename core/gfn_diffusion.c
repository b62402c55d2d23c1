/* The diffusion-sampler GFlowNet trainer (flowrl/gfn_diffusion.h; docs/algorithms/gfn-diffusion.md;
 * GFNOrg/gfn-diffusion@255b499 energy_sampling/models/gfn.py get_trajectory_fwd / _bwd,
 * evaluations.py): the drift MLP (and the flow MLP of db / subtb, the time-only NN2) through the op
 * table, the policy of a row, the Euler–Maruyama sampler and the bridge; an iteration's gradient,
 * the evaluation and checkpoints are core/gfn_diffusion_step.c, the losses core/gfn_diffusion_loss.c.
 *
 * An MLP here takes [x (D), e(t) (2·harmonics)], e(t) = (sin 2πjt, cos 2πjt)_{j=1..harmonics}
 * (TimeEncoding's features), through Linear → GELU → … → Linear. The first layer is split as
 * W_x·x + (W_t·e(t_k) + b): the time part is one row per step, added as a bias to the step's rows,
 * so only x crosses to the backend. Rows of a batch are laid out step-major: step k's n rows
 * are [k·n, (k+1)·n). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/detmath.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/gfn_diffusion_ls.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "core/gfn_diffusion_internal.h"

fr_gfnd_opts fr_gfnd_opts_default(void)
{
    fr_gfnd_opts o;
    memset(&o, 0, sizeof o);
    o.loss = FR_GFND_TB;
    o.batch = 300;
    o.steps = 100;
    o.hidden = 64;
    o.n_hidden = 2;
    o.harmonics = 64;
    o.t_scale = 5.0;
    o.log_var_range = 4.0;
    o.zero_init = 1;
    o.clipping = 1;
    o.lgv_clip = 1e2;
    o.gfn_clip = 1e4;
    o.exploration_decay = 5000;
    o.subtb_lambda = 2.0;
    o.seed = 1;
    o.buffer_size = 600000;
    o.buffer_rank = 1;
    o.rank_weight = 0.01;
    o.ls_cycle = 100;
    o.ls_iters = 200;
    o.ls_burn_in = 100;
    o.ld_step = 0.001;
    o.ls_target_rate = 0.574;
    o.joint_layers = 2;
    o.lgv_layers = 3;
    return o;
}

/* ---- the MLPs through the op table ------------------------------------------------------- */

/* c = e(t_k) W_t^T + b_0 for every step k: the time rows of the current weights (pis: the time
 * path's output + b_0). */
static fr_status time_rows(fr_gfnd_trainer *t, mlp *m)
{
    const fr_ops *op = t->be->ops;
    if (m->pis) {
        FR_TRY(fr_gfnd_tnet_forward(t, &m->tn, m->c));
        op->bias_add(t->T, m->dim[1], m->c, m->vals[1].data);
        return FR_OK;
    }
    op->gemm(0, 1, t->T, m->dim[1], t->E, t->temb, m->vals[1].data, m->c, 0);
    op->bias_add(t->T, m->dim[1], m->c, m->vals[2].data);
    return FR_OK;
}

static const fr_tensor *weight(const mlp *m, int l) { return l == 0 ? &m->vals[0] : &m->vals[m->o1 + 2 * (l - 1)]; }
static const fr_tensor *bias(const mlp *m, int l) { return &m->vals[m->o1 + 2 * (l - 1) + 1]; }

/* The n rows from row r0 (all at step k) of t->x through m. */
static void mlp_forward(fr_gfnd_trainer *t, mlp *m, const float *x, int64_t r0, int64_t n, int64_t k)
{
    const fr_ops *op = t->be->ops;
    const float *in = x + r0 * t->D;
    t->be->work.fwd_rows += (uint64_t)n;
    for (int l = 0; l < m->L; l++) {
        float *pre = m->pre[l] + r0 * m->dim[l + 1];
        op->gemm(0, 1, n, m->dim[l + 1], m->dim[l], in, weight(m, l)->data, pre, 0);
        op->bias_add(n, m->dim[l + 1], pre, l == 0 ? m->c + k * m->dim[1] : bias(m, l)->data);
        if (l < m->L - 1) {
            float *post = m->post[l] + r0 * m->dim[l + 1];
            op->act_fwd(FR_ACT_GELU_TANH, n * m->dim[l + 1], pre, post);
            in = post;
        }
    }
}

/* The gradients (into the zeroed grads) of all T·n rows of inputs x whose output gradient is in t->d0. */
fr_status fr_gfnd_mlp_backward(fr_gfnd_trainer *t, mlp *m, const float *x, int64_t n)
{
    const fr_ops *op = t->be->ops;
    const int64_t R = t->T * n;
    float *d = t->d0, *dn = t->d1;
    t->be->work.bwd_rows += (uint64_t)R;
    for (int l = m->L - 1; l >= 0; l--) {
        const float *in = l == 0 ? x : m->post[l - 1];
        fr_tensor *gw = l == 0 ? &m->grads[0] : &m->grads[m->o1 + 2 * (l - 1)];
        op->gemm(1, 0, m->dim[l + 1], m->dim[l], R, d, in, gw->data, 1);
        if (l == 0) break;
        op->bias_grad(R, m->dim[l + 1], d, m->grads[m->o1 + 2 * (l - 1) + 1].data, 1);
        op->gemm(0, 0, R, m->dim[l], m->dim[l + 1], d, weight(m, l)->data, dn, 0);
        op->act_bwd(FR_ACT_GELU_TANH, R * m->dim[l], m->pre[l - 1], dn, dn, 0);
        float *sw = d;
        d = dn;
        dn = sw;
    }
    /* the time rows: dc_k = Σ over step k's rows; W_t += dc^T e, b_0 += Σ_k dc_k */
    for (int64_t k = 0; k < t->T; k++) op->bias_grad(n, m->dim[1], d + k * n * m->dim[1], m->dc + k * m->dim[1], 0);
    if (m->pis) { /* b_0 += Σ_k dc_k, and the time path from dc */
        op->bias_grad(t->T, m->dim[1], m->dc, m->grads[1].data, 1);
        return fr_gfnd_tnet_backward(t, &m->tn, m->dc);
    }
    op->gemm(1, 0, m->dim[1], t->E, t->T, m->dc, t->temb, m->grads[1].data, 1);
    op->bias_grad(t->T, m->dim[1], m->dc, m->grads[2].data, 1);
    return FR_OK;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static fr_status check_opts(const fr_env *env, const fr_gfnd_opts *o)
{
    if (!env->energy)
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --env %s is not an energy target (flowrl envs: kind energy)",
                       env->desc);
    if (!fr_gfnd_loss_name(o->loss)) return fr_fail(FR_ERR_ARG, "gfn-diffusion: --loss %d is not a loss", (int)o->loss);
    if (o->batch < 1 || o->steps < 1 || o->batch * o->steps > (1 << 24))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --batch-size %lld x --steps %lld rows is outside [1, 2^24]",
                       (long long)o->batch, (long long)o->steps);
    if (o->n_hidden < 1 || o->n_hidden >= ND_MAX_L - 1 || o->hidden < 1 || o->harmonics < 1)
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --n-hidden %lld, --hidden-dim %lld, --harmonics %lld must be >= 1 "
                                   "(n-hidden < %d)",
                       (long long)o->n_hidden, (long long)o->hidden, (long long)o->harmonics, ND_MAX_L - 1);
    if (!(o->t_scale > 0.0) || !(o->subtb_lambda > 0.0) || !(o->exploration >= 0.0))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --t-scale %g and --subtb-lambda %g must be > 0, --exploration %g >= 0",
                       o->t_scale, o->subtb_lambda, o->exploration);
    if ((o->both_ways || o->local_search) &&
        (o->loss != FR_GFND_TB && o->loss != FR_GFND_TB_AVG))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --both-ways / --local-search train tb or tb-avg (train.py --mode_bwd)");
    if (o->pis_architectures && (o->joint_layers < 0 || o->joint_layers + 2 > ND_MAX_L || o->lgv_layers < 1 ||
                                 o->lgv_layers + 1 > ND_MAX_L))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --joint-layers %lld in [0, %d], --lgv-layers %lld in [1, %d]",
                       (long long)o->joint_layers, ND_MAX_L - 2, (long long)o->lgv_layers, ND_MAX_L - 1);
    if (o->local_search && (o->ls_cycle < 1 || o->ls_iters < 0 || o->ls_burn_in < 0 || !(o->ld_step > 0.0)))
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: --ls-cycle %lld >= 1, --ls-iters %lld, --ls-burn-in %lld >= 0, "
                                   "--ld-step %g > 0",
                       (long long)o->ls_cycle, (long long)o->ls_iters, (long long)o->ls_burn_in, o->ld_step);
    return FR_OK;
}

/* Layout of an MLP of output width out over the arena from *off; tensors named prefix.*. */
static void mlp_layout(fr_gfnd_trainer *t, mlp *m, const char *prefix, int64_t out, int64_t *off)
{
    m->L = (int)t->o.n_hidden + 1;
    m->o1 = 3;
    m->dim[0] = t->D;
    for (int l = 1; l < m->L; l++) m->dim[l] = t->o.hidden;
    m->dim[m->L] = out;
    m->vals = &t->vals[t->n_params];
    m->grads = &t->grads[t->n_params];
    int64_t shapes[4 * ND_MAX_L][2];
    int nd[4 * ND_MAX_L];
    int n = 0;
    shapes[n][0] = m->dim[1], shapes[n][1] = t->D, nd[n] = 2, n++;
    shapes[n][0] = m->dim[1], shapes[n][1] = t->E, nd[n] = 2, n++;
    shapes[n][0] = m->dim[1], nd[n] = 1, n++;
    for (int l = 1; l < m->L; l++) {
        shapes[n][0] = m->dim[l + 1], shapes[n][1] = m->dim[l], nd[n] = 2, n++;
        shapes[n][0] = m->dim[l + 1], nd[n] = 1, n++;
    }
    m->n = n;
    for (int i = 0; i < n; i++) {
        const int p = t->n_params + i;
        if (i < 3) snprintf(t->names[p], sizeof t->names[0], "%s.0.%s", prefix, i == 0 ? "wx" : i == 1 ? "wt" : "bias");
        else snprintf(t->names[p], sizeof t->names[0], "%s.%d.%s", prefix, 1 + (i - 3) / 2, (i - 3) % 2 ? "bias" : "weight");
        int64_t numel = nd[i] == 2 ? shapes[i][0] * shapes[i][1] : shapes[i][0];
        t->vals[p] = fr_tensor_f32(NULL, nd[i], shapes[i]);
        t->grads[p] = fr_tensor_f32(NULL, nd[i], shapes[i]);
        t->vals[p].data = (void *)(intptr_t)*off; /* an offset until the arena exists */
        *off += fr_arena_slot(numel);
    }
    t->n_params += n;
}

/* torch.nn.Linear's init U(±1/√fan_in) from Philox (seed, FR_RNG_INIT, parameter, 2, 0) (c1 = 2
 * apart from fr_model and the discrete trainer); layer 0's fan-in is D + E. zero_init: the
 * last layer 0 and the Langevin scale's bias (bias_at: the drift head's column, or the time-only
 * NN2's output; −1: none) 0.01 (LangevinScalingModel). */
static void mlp_init(fr_gfnd_trainer *t, const mlp *m, int first, int zero_last, int64_t bias_at, float *h)
{
    for (int i = 0; i < m->n; i++) {
        const int p = first + i, l = i < 3 ? 0 : 1 + (i - 3) / 2;
        const float bound = 1.0f / sqrtf((float)(l == 0 ? t->D + t->E : m->dim[l]));
        float *v = h + ((float *)t->vals[p].data - t->arena_v);
        const int64_t numel = fr_tensor_numel(&t->vals[p]);
        for (int64_t j = 0; j < numel; j++)
            v[j] = (2.0f * fr_rng_uniform(t->o.seed, FR_RNG_INIT, (uint32_t)p, 2, 0, (uint32_t)j) - 1.0f) * bound;
        if (zero_last && l == m->L - 1) {
            memset(v, 0, (size_t)numel * sizeof *v);
            if (bias_at >= 0 && i == m->n - 1) v[bias_at] = 0.01f;
        }
    }
}

static fr_status alloc_mlp(fr_gfnd_trainer *t, mlp *m)
{
    m->c = fr_dev_floats(t->be, t->T * m->dim[1]);
    m->dc = fr_dev_floats(t->be, t->T * m->dim[1]);
    if (!m->c || !m->dc) return FR_ERR_NOMEM;
    for (int l = 0; l < m->L; l++) {
        if (!(m->pre[l] = fr_dev_floats(t->be, t->cap * m->dim[l + 1]))) return FR_ERR_NOMEM;
        if (l < m->L - 1 && !(m->post[l] = fr_dev_floats(t->be, t->cap * m->dim[l + 1]))) return FR_ERR_NOMEM;
    }
    return FR_OK;
}

static void free_mlp(fr_backend *be, mlp *m)
{
    fr_dev_free(be, m->c);
    fr_dev_free(be, m->dc);
    for (int l = 0; l < m->L; l++) {
        fr_dev_free(be, m->pre[l]);
        fr_dev_free(be, m->post[l]);
    }
}

fr_status fr_gfnd_trainer_new(fr_gfnd_trainer **out, fr_backend *be, const fr_env *env, const fr_gfnd_opts *o)
{
    *out = NULL;
    FR_TRY(check_opts(env, o));
    fr_gfnd_trainer *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    t->be = be;
    t->env = env;
    t->o = *o;
    t->D = env->state_dim;
    t->T = o->steps;
    t->B = o->batch;
    t->E = 2 * o->harmonics;
    t->cap = t->T * t->B;
    t->pis = o->pis_architectures;
    if (t->pis) t->o.zero_init = 1; /* train.py: --pis_architectures sets --zero_init */
    t->lgv_time = o->langevin && (o->langevin_time_scale || t->pis);
    /* JointPolicyPIS's head has 2·D outputs, the log-variances read only with learned_variance */
    t->Op = t->pis ? 2 * t->D : t->D * (o->learned_variance ? 2 : 1) + (o->langevin && !t->lgv_time ? 1 : 0);
    t->has_flow = o->loss == FR_GFND_DB || o->loss == FR_GFND_SUBTB;
    t->has_z = o->loss == FR_GFND_TB;
    /* the tensors of the networks (mlp_layout: 3 + 2·n_hidden; PIS: 2·joint + 9, NN2(t) 2·lgv + 3) */
    const int64_t n_net = t->pis ? 2 * o->joint_layers + 9 : 3 + 2 * o->n_hidden;
    const int64_t n_lgv = !t->lgv_time ? 0 : t->pis ? 2 * o->lgv_layers + 3 : 3 + 2 * o->n_hidden;
    const int64_t n_all = n_net * (t->has_flow ? 2 : 1) + n_lgv + t->has_z;
    if (n_all > (int64_t)(sizeof t->vals / sizeof t->vals[0])) {
        free(t);
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: the networks would have %lld tensors, at most %d (fewer --n-hidden, "
                                   "--joint-layers or --lgv-layers)",
                       (long long)n_all, (int)(sizeof t->vals / sizeof t->vals[0]));
    }
    int64_t off = 0;
    if (t->pis) fr_gfnd_pis_mlp_layout(t, &t->pol, "drift", t->Op, &off);
    else mlp_layout(t, &t->pol, "drift", t->Op, &off);
    if (t->lgv_time && t->pis) fr_gfnd_pis_lgv_layout(t, &t->lgvp, "lgv", &off);
    else if (t->lgv_time) mlp_layout(t, &t->lgv, "lgv", 1, &off);
    t->n_pol = t->n_params;
    if (t->has_flow && t->pis) fr_gfnd_pis_mlp_layout(t, &t->flow, "flow", 1, &off);
    else if (t->has_flow) mlp_layout(t, &t->flow, "flow", 1, &off);
    if (t->has_z) {
        int64_t one[1] = {1};
        snprintf(t->names[t->n_params], sizeof t->names[0], "log_z");
        t->vals[t->n_params] = fr_tensor_f32((void *)(intptr_t)off, 1, one);
        t->grads[t->n_params] = fr_tensor_f32(NULL, 1, one);
        off += fr_arena_slot(1);
        t->n_params++;
    }
    t->arena_n = off;
    fr_status s = FR_OK;
    t->arena_v = fr_dev_floats(be, t->arena_n);
    t->arena_g = fr_dev_floats(be, t->arena_n);
    t->temb = fr_dev_floats(be, t->T * t->E);
    t->x = fr_dev_floats(be, t->cap * t->D);
    int64_t wmax = o->hidden > t->Op ? o->hidden : t->Op;
    t->d0 = fr_dev_floats(be, t->cap * wmax);
    t->d1 = fr_dev_floats(be, t->cap * wmax);
    if (!t->arena_v || !t->arena_g || !t->temb || !t->x || !t->d0 || !t->d1) s = FR_ERR_NOMEM;
    for (int p = 0; p < t->n_params && s == FR_OK; p++) {
        const intptr_t po = (intptr_t)t->vals[p].data;
        t->vals[p].data = t->arena_v + po;
        t->grads[p].data = t->arena_g + po;
        t->params[p] = (fr_param){t->names[p], &t->vals[p], &t->grads[p]};
    }
    if (s == FR_OK) s = alloc_mlp(t, &t->pol);
    if (s == FR_OK && t->has_flow) s = alloc_mlp(t, &t->flow);
    if (s == FR_OK && t->pis) s = fr_gfnd_tnet_alloc(t, &t->pol.tn, 0);
    if (s == FR_OK && t->pis && t->has_flow) s = fr_gfnd_tnet_alloc(t, &t->flow.tn, 0);
    if (s == FR_OK && t->lgv_time && t->pis) {
        s = fr_gfnd_tnet_alloc(t, &t->lgvp, 1);
        t->lgv_h = fr_calloc((size_t)o->steps, sizeof(float));
        t->lgv_d = fr_calloc((size_t)o->steps, sizeof(double));
        if (s == FR_OK && (!t->lgv_h || !t->lgv_d)) s = FR_ERR_NOMEM;
    } else if (s == FR_OK && t->lgv_time) {
        s = alloc_mlp(t, &t->lgv);
        t->x0 = fr_dev_floats(be, o->steps * t->D);
        t->lgv_h = fr_calloc((size_t)o->steps, sizeof(float));
        t->lgv_d = fr_calloc((size_t)o->steps, sizeof(double));
        if (s == FR_OK && (!t->x0 || !t->lgv_h || !t->lgv_d)) s = FR_ERR_NOMEM;
        if (s == FR_OK) s = fr_dev_zero(be, t->x0, (size_t)(o->steps * t->D) * sizeof(float));
    }
    const int64_t B = t->B, T = t->T, D = t->D, cap = t->cap;
    if (s == FR_OK) {
        t->xin_h = fr_malloc((size_t)(cap * D) * sizeof(float));
        t->out_h = fr_malloc((size_t)(cap * t->Op) * sizeof(float));
        t->fout_h = fr_malloc((size_t)cap * sizeof(float));
        t->dout_h = fr_malloc((size_t)(cap * t->Op) * sizeof(float));
        t->xs = fr_malloc((size_t)((T + 1) * B * D) * sizeof(double));
        t->glr = fr_calloc((size_t)(T * B * D), sizeof(double));
        t->logpf = fr_malloc((size_t)(B * T) * sizeof(double));
        t->logpb = fr_malloc((size_t)(B * T) * sizeof(double));
        t->logf = fr_malloc((size_t)(B * (T + 1)) * sizeof(double));
        t->logr = fr_malloc((size_t)B * sizeof(double));
        t->gpf = fr_malloc((size_t)(B * T) * sizeof(double));
        t->gf = fr_malloc((size_t)(B * (T + 1)) * sizeof(double));
        if (!t->xin_h || !t->out_h || !t->fout_h || !t->dout_h || !t->xs || !t->glr || !t->logpf || !t->logpb ||
            !t->logf || !t->logr || !t->gpf || !t->gf)
            s = FR_ERR_NOMEM;
    }
    if (s == FR_OK) { /* the time features of every step, and the initial weights */
        float *h = fr_calloc((size_t)(T * t->E > t->arena_n ? T * t->E : t->arena_n), sizeof *h);
        if (!h) s = FR_ERR_NOMEM;
        for (int64_t k = 0; k < T && s == FR_OK; k++)
            for (int64_t j = 0; j < o->harmonics; j++) {
                /* TimeEncoding: pe = 2π·(1..harmonics), t·pe in float32 */
                const float a = (float)(k * (1.0 / (double)T)) * ((float)(j + 1) * 6.2831853f);
                h[k * t->E + j] = fr_sinf(a);
                h[k * t->E + o->harmonics + j] = fr_cosf(a);
            }
        if (s == FR_OK) s = fr_h2d(be, t->temb, h, (size_t)(T * t->E) * sizeof *h);
        if (s == FR_OK) {
            memset(h, 0, (size_t)t->arena_n * sizeof *h);
            if (t->pis) { /* FlowModelPIS is built without zero_init */
                fr_gfnd_pis_mlp_init(t, &t->pol, 1, h);
                if (t->lgv_time) fr_gfnd_tnet_init(t, &t->lgvp, 1, 0.01f, h);
                if (t->has_flow) fr_gfnd_pis_mlp_init(t, &t->flow, 0, h);
            } else {
                mlp_init(t, &t->pol, 0, o->zero_init, o->langevin && !t->lgv_time ? t->Op - 1 : -1, h);
                if (t->lgv_time) mlp_init(t, &t->lgv, (int)(t->lgv.vals - t->vals), o->zero_init, 0, h);
                if (t->has_flow) mlp_init(t, &t->flow, t->n_pol, 0, -1, h);
            }
            if (t->has_z) h[(float *)t->vals[t->n_params - 1].data - t->arena_v] = (float)o->init_log_z;
            s = fr_h2d(be, t->arena_v, h, (size_t)t->arena_n * sizeof *h);
        }
        free(h);
    }
    if (s == FR_OK) t->log_z_true = env->energy->log_z(env);
    if (s == FR_OK && (o->both_ways || o->local_search))
        s = fr_gfnd_replay_new(&t->buf, o->buffer_size, t->D, o->buffer_rank, o->rank_weight);
    if (s == FR_OK && o->local_search)
        s = fr_gfnd_replay_new(&t->buf_ls, o->buffer_size, t->D, o->buffer_rank, o->rank_weight);
    if (s != FR_OK) {
        fr_gfnd_trainer_free(t);
        return s;
    }
    *out = t;
    return FR_OK;
}

void fr_gfnd_trainer_free(fr_gfnd_trainer *t)
{
    if (!t) return;
    fr_backend *be = t->be;
    void *dev[] = {t->arena_v, t->arena_g, t->temb, t->x, t->d0, t->d1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    free_mlp(be, &t->pol);
    if (t->has_flow) free_mlp(be, &t->flow);
    void *host[] = {t->xin_h, t->out_h, t->fout_h, t->dout_h, t->xs,  t->glr, t->logpf,
                    t->logpb, t->logf,  t->logr,  t->gpf,    t->gf};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
    fr_gfnd_replay_free(t->buf);
    fr_gfnd_replay_free(t->buf_ls);
    if (t->lgv_time && !t->pis) free_mlp(be, &t->lgv);
    fr_gfnd_tnet_free(be, &t->pol.tn);
    fr_gfnd_tnet_free(be, &t->flow.tn);
    fr_gfnd_tnet_free(be, &t->lgvp);
    fr_dev_free(be, t->x0);
    free(t->lgv_h);
    free(t->lgv_d);
    free(t);
}

/* ---- the policy of one row ----------------------------------------------------------------- */

/* models/gfn.py predict_next_state + split_params: mean (D,), logvar (D,) of a row from the
 * drift network's outputs out (Op,) and ∇log R g (D,) (langevin); f = out[:D] + scale·g, then
 * the whole output clipped to ±gfn_clip (clipping); logvar = log t_scale [+ tanh(v)·range]. */
double fr_gfnd_lgv_scale(const fr_gfnd_trainer *t, const float *out, int64_t k)
{
    return !t->o.langevin ? 0.0 : t->lgv_time ? (double)t->lgv_h[k] : (double)out[t->Op - 1];
}

void fr_gfnd_pf_params(const fr_gfnd_trainer *t, const float *out, int64_t k, const double *g, double *mean,
                      double *logvar)
{
    const int64_t D = t->D;
    const double lts = fr_awm_log(t->o.t_scale), c = t->o.clipping ? t->o.gfn_clip : INFINITY;
    const double scale = fr_gfnd_lgv_scale(t, out, k);
    for (int64_t d = 0; d < D; d++) {
        mean[d] = fr_gfnd_clip((double)out[d] + (t->o.langevin ? scale * g[d] : 0.0), c);
        logvar[d] = lts + (t->o.learned_variance ? fr_gfnd_tanh(fr_gfnd_clip((double)out[D + d], c)) * t->o.log_var_range : 0.0);
    }
}

/* ∇log R at x (D,) as the drift sees it: NaN to 0 (torch.nan_to_num), clipped to ±lgv_clip. */
static void langevin_grad(const fr_gfnd_trainer *t, const double *x, double *g)
{
    t->env->energy->grad_log_reward(t->env, x, g);
    for (int64_t d = 0; d < t->D; d++) {
        if (isnan(g[d])) g[d] = 0.0;
        if (t->o.clipping) g[d] = fr_gfnd_clip(g[d], t->o.lgv_clip);
    }
}

/* log P_F(x1 | x0) of a row: −½ Σ (noise² + log 2π + log Δt + logvar), noise = (x1 − x0 − Δt·mean)
 * / (√Δt·σ); noise (D,) may be NULL. */
double fr_gfnd_log_pf(const fr_gfnd_trainer *t, const double *x0, const double *x1, const double *mean,
                     const double *logvar, double *noise)
{
    const double dt = 1.0 / (double)t->T, sdt = sqrt(dt), ldt = fr_awm_log(dt);
    double s = 0.0;
    for (int64_t d = 0; d < t->D; d++) {
        const double z = ((x1[d] - x0[d]) - dt * mean[d]) / (sdt * fr_awm_exp(0.5 * logvar[d]));
        if (noise) noise[d] = z;
        s += -0.5 * (z * z + LOG_2PI + ldt + logvar[d]);
    }
    return s;
}

/* log F_k of a row (db, subtb): the flow network's output, with partial_energy the FL term
 * (1 − t_k)·log N(x; 0, t_scale·max(1, k)·Δt) + t_k·log R(x). */
double fr_gfnd_log_flow(const fr_gfnd_trainer *t, float f, const double *x, int64_t k)
{
    double v = (double)f;
    if (t->o.partial_energy) {
        const double dt = 1.0 / (double)t->T, lv = fr_awm_log(t->o.t_scale * (double)(k > 1 ? k : 1) * dt);
        double lp = 0.0;
        for (int64_t d = 0; d < t->D; d++) lp += -0.5 * (LOG_2PI + lv + fr_awm_exp(-lv) * x[d] * x[d]);
        v += (1.0 - (double)k * dt) * lp + (double)k * dt * t->env->energy->log_reward(t->env, x);
    }
    return v;
}

/* ---- trajectories ---------------------------------------------------------------------------- */

/* The current weights' time rows, and NN2(t_k) of every step (langevin_time_scale) to the host. */
fr_status fr_gfnd_prepare(fr_gfnd_trainer *t)
{
    FR_TRY(time_rows(t, &t->pol));
    if (t->has_flow) FR_TRY(time_rows(t, &t->flow));
    if (!t->lgv_time) return FR_OK;
    if (t->pis) { /* LangevinScalingModelPIS(t_k), one row a step */
        FR_TRY(fr_gfnd_tnet_forward(t, &t->lgvp, NULL));
        return fr_d2h(t->be, t->lgv_h, t->lgvp.pre[t->lgvp.L - 1], (size_t)t->T * sizeof(float));
    }
    FR_TRY(time_rows(t, &t->lgv));
    for (int64_t k = 0; k < t->T; k++) mlp_forward(t, &t->lgv, t->x0, k, 1, k);
    return fr_d2h(t->be, t->lgv_h, t->lgv.pre[t->lgv.L - 1], (size_t)t->T * sizeof(float));
}

/* Step k's network outputs for n rows whose states are xs_k (n, D): x to the backend, the drift
 * (and flow) forward at rows [k·n, (k+1)·n), the outputs back into out_h / fout_h at those rows. */
fr_status fr_gfnd_forward_step(fr_gfnd_trainer *t, const double *xs_k, int64_t n, int64_t k, int flow)
{
    const int64_t D = t->D, r0 = k * n;
    for (int64_t i = 0; i < n * D; i++) t->xin_h[r0 * D + i] = (float)xs_k[i];
    FR_TRY(fr_h2d(t->be, t->x + r0 * D, t->xin_h + r0 * D, (size_t)(n * D) * sizeof(float)));
    mlp_forward(t, &t->pol, t->x, r0, n, k);
    FR_TRY(fr_d2h(t->be, t->out_h + r0 * t->Op, t->pol.pre[t->pol.L - 1] + r0 * t->Op,
                  (size_t)(n * t->Op) * sizeof(float)));
    if (flow) {
        mlp_forward(t, &t->flow, t->x, r0, n, k);
        FR_TRY(fr_d2h(t->be, t->fout_h + r0, t->flow.pre[t->flow.L - 1] + r0, (size_t)n * sizeof(float)));
    }
    return FR_OK;
}

/* n forward trajectories from x_0 = 0 into t->xs (T + 1, n, D), logpf / logpb / logf (n, ·) and
 * t->glr; noise Philox (seed, purpose, c0, c1_base + b, k) element d; exploration e adds e² to
 * the sampling variance σ²Δt (log P_F stays the policy's). */
fr_status fr_gfnd_sample_fwd(fr_gfnd_trainer *t, int64_t n, uint32_t purpose, uint32_t c0, uint32_t c1_base, double e,
                            int flow)
{
    const int64_t D = t->D, T = t->T;
    const double dt = 1.0 / (double)T, sdt = sqrt(dt);
    double *mean = fr_malloc((size_t)(2 * D) * sizeof *mean), *lv = mean + D;
    if (!mean) return FR_ERR_NOMEM;
    memset(t->xs, 0, (size_t)(n * D) * sizeof(double));
    fr_status s = FR_OK;
    for (int64_t k = 0; k < T && s == FR_OK; k++) {
        double *xk = t->xs + k * n * D, *xk1 = t->xs + (k + 1) * n * D, *gk = t->glr + k * n * D;
        if (t->o.langevin)
            for (int64_t b = 0; b < n; b++) langevin_grad(t, xk + b * D, gk + b * D);
        s = fr_gfnd_forward_step(t, xk, n, k, flow);
        for (int64_t b = 0; b < n && s == FR_OK; b++) {
            fr_gfnd_pf_params(t, t->out_h + (k * n + b) * t->Op, k, gk + b * D, mean, lv);
            for (int64_t d = 0; d < D; d++) {
                /* logaddexp(logvar, 2·log(e/√Δt)): σ² + e²/Δt */
                const double var = fr_awm_exp(lv[d]) + (e > 0.0 ? e * e / dt : 0.0);
                const double z = (double)fr_rng_normal(t->o.seed, purpose, c0, c1_base + (uint32_t)b, (uint32_t)k,
                                                       (uint32_t)d);
                xk1[b * D + d] = xk[b * D + d] + dt * mean[d] + sdt * sqrt(var) * z;
            }
            t->logpf[b * T + k] = fr_gfnd_log_pf(t, xk + b * D, xk1 + b * D, mean, lv, NULL);
            t->logpb[b * T + k] = fr_gfnd_log_pb(xk + b * D, xk1 + b * D, k, D, t->o.t_scale, T);
            if (flow) t->logf[b * (T + 1) + k] = fr_gfnd_log_flow(t, t->fout_h[k * n + b], xk + b * D, k);
        }
    }
    for (int64_t b = 0; b < n && s == FR_OK; b++) {
        t->logr[b] = t->env->energy->log_reward(t->env, t->xs + (T * n + b) * D);
        if (flow) t->logf[b * (T + 1) + T] = t->logr[b];
    }
    free(mean);
    return s;
}

fr_status fr_gfnd_log_z_param(fr_gfnd_trainer *t, double *z)
{
    float f;
    FR_TRY(fr_d2h(t->be, &f, t->vals[t->n_params - 1].data, sizeof f));
    *z = (double)f;
    return FR_OK;
}

/* From the n terminal states in t->xs at step T (their log R in t->logr), τ ~ P_B back to 0
 * (models/gfn.py get_trajectory_bwd) with noise Philox (seed, purpose, c0, c1_base + b, k)
 * element d into t->xs, t->logpb; then the drift network along τ, log P_F into t->logpf (t->glr,
 * t->out_h hold what the gradient needs, as after sample_fwd). */
fr_status fr_gfnd_back_traj(fr_gfnd_trainer *t, int64_t n, uint32_t purpose, uint32_t c0, uint32_t c1_base)
{
    const int64_t D = t->D, T = t->T;
    const double dt = 1.0 / (double)T;
    double *mean = fr_malloc((size_t)(2 * D) * sizeof *mean), *lv = mean + D;
    if (!mean) return FR_ERR_NOMEM;
    for (int64_t k = T - 1; k >= 0; k--)
        for (int64_t b = 0; b < n; b++) {
            const double *x1 = t->xs + ((k + 1) * n + b) * D;
            double *x0 = t->xs + (k * n + b) * D;
            const double sd = sqrt(t->o.t_scale * dt * (double)k / (double)(k + 1));
            for (int64_t d = 0; d < D; d++)
                x0[d] = k == 0 ? 0.0
                               : x1[d] * (double)k / (double)(k + 1) +
                                     sd * (double)fr_rng_normal(t->o.seed, purpose, c0, c1_base + (uint32_t)b,
                                                                (uint32_t)k, (uint32_t)d);
            t->logpb[b * T + k] = fr_gfnd_log_pb(x0, x1, k, D, t->o.t_scale, T);
        }
    fr_status s = FR_OK;
    for (int64_t k = 0; k < T && s == FR_OK; k++) {
        double *xk = t->xs + k * n * D, *gk = t->glr + k * n * D;
        if (t->o.langevin)
            for (int64_t b = 0; b < n; b++) langevin_grad(t, xk + b * D, gk + b * D);
        s = fr_gfnd_forward_step(t, xk, n, k, 0);
        for (int64_t b = 0; b < n && s == FR_OK; b++) {
            fr_gfnd_pf_params(t, t->out_h + (k * n + b) * t->Op, k, gk + b * D, mean, lv);
            t->logpf[b * T + k] = fr_gfnd_log_pf(t, xk + b * D, t->xs + ((k + 1) * n + b) * D, mean, lv, NULL);
        }
    }
    free(mean);
    return s;
}

