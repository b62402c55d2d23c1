/* The public PIS networks of the diffusion-sampler trainer (--pis-architectures;
 * docs/algorithms/gfn-diffusion.md §1, §6), read from GFNOrg/gfn-diffusion@255b499
 * energy_sampling/models/architectures.py (TimeEncodingPIS, StateEncodingPIS, JointPolicyPIS,
 * FlowModelPIS, LangevinScalingModelPIS) and models/gfn.py (GFN.__init__, predict_next_state):
 *
 *   drift(x, t) = head(GELU(… GELU(Linear_1(GELU(W_x x + b_0 + time(t)))) …))   joint_layers Linear(H, H)
 *   time(t)     = Linear(H, H)(GELU(Linear(2hf, H)(feat(t))))                    TimeEncodingPIS
 *   NN2(t)      = Linear(H, 1)(GELU(… GELU(Linear(2hf, H)(feat'(t))) …))         lgv_layers Linear(H, H)
 *   feat(t)     = (sin, cos)(pe_j·t + φ_j), pe = linspace(0.1, 100, hf), φ learned (its own in NN2)
 *
 * The state part W_x x + b_0 runs on the rows of a step as the default network's layer 0 does
 * (core/gfn_diffusion.c); the time paths are tnets: one row a step, T rows, through the op table
 * (gemm, bias_add, act_fwd / act_bwd, bias_grad). The features are host float32 (fr_sinf, fr_cosf of
 * (float)t_k·pe_j + φ_j) and φ's gradient Σ_k (g_sin·cos − g_cos·sin) a host sum in float64 over
 * the features' gradient brought back from the backend, so every backend gives the bits of ref. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gfn_diffusion_internal.h"
#include "flowrl/detmath.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"

/* One float32 tensor of nd dims appended to the trainer's list at arena offset *off. */
static void add_tensor(fr_gfnd_trainer *t, const char *name, int nd, int64_t d0, int64_t d1, int64_t *off)
{
    const int p = t->n_params++;
    const int64_t shape[2] = {d0, d1};
    snprintf(t->names[p], sizeof t->names[0], "%s", name);
    t->vals[p] = fr_tensor_f32(NULL, nd, shape);
    t->grads[p] = fr_tensor_f32(NULL, nd, shape);
    t->vals[p].data = (void *)(intptr_t)*off; /* an offset until the arena exists */
    *off += fr_arena_slot(nd == 2 ? d0 * d1 : d0);
}

/* A tnet of L linear layers: φ (hf,), then (W (dim[l+1], dim[l]), b) named prefix.l.weight / bias. */
static void tnet_layout(fr_gfnd_trainer *t, tnet *n, const char *prefix, int L, int64_t out, int64_t *off)
{
    char name[64];
    n->L = L;
    n->hf = t->o.harmonics;
    n->dim[0] = 2 * n->hf;
    for (int l = 1; l < L; l++) n->dim[l] = t->o.hidden;
    n->dim[L] = out;
    n->vals = &t->vals[t->n_params];
    n->grads = &t->grads[t->n_params];
    snprintf(name, sizeof name, "%s.phase", prefix);
    add_tensor(t, name, 1, n->hf, 0, off);
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "%s.%d.weight", prefix, l);
        add_tensor(t, name, 2, n->dim[l + 1], n->dim[l], off);
        snprintf(name, sizeof name, "%s.%d.bias", prefix, l);
        add_tensor(t, name, 1, n->dim[l + 1], 0, off);
    }
    n->n = 1 + 2 * L;
}

void fr_gfnd_pis_mlp_layout(fr_gfnd_trainer *t, mlp *m, const char *prefix, int64_t out, int64_t *off)
{
    char name[64];
    const int64_t H = t->o.hidden;
    m->pis = 1;
    m->o1 = 2;
    m->L = (int)t->o.joint_layers + 2;
    m->dim[0] = t->D;
    for (int l = 1; l < m->L; l++) m->dim[l] = H;
    m->dim[m->L] = out;
    m->vals = &t->vals[t->n_params];
    m->grads = &t->grads[t->n_params];
    snprintf(name, sizeof name, "%s.0.wx", prefix); /* StateEncodingPIS */
    add_tensor(t, name, 2, H, t->D, off);
    snprintf(name, sizeof name, "%s.0.bias", prefix);
    add_tensor(t, name, 1, H, 0, off);
    for (int l = 1; l < m->L; l++) { /* JointPolicyPIS / FlowModelPIS */
        snprintf(name, sizeof name, "%s.%d.weight", prefix, l);
        add_tensor(t, name, 2, m->dim[l + 1], m->dim[l], off);
        snprintf(name, sizeof name, "%s.%d.bias", prefix, l);
        add_tensor(t, name, 1, m->dim[l + 1], 0, off);
    }
    m->n = 2 * m->L;
    snprintf(name, sizeof name, "%s.t", prefix); /* TimeEncodingPIS: Linear(2hf, H), GELU, Linear(H, H) */
    tnet_layout(t, &m->tn, name, 2, H, off);
}

void fr_gfnd_pis_lgv_layout(fr_gfnd_trainer *t, tnet *n, const char *prefix, int64_t *off)
{
    tnet_layout(t, n, prefix, (int)t->o.lgv_layers + 1, 1, off);
}

/* U(±bound) into parameter p's n floats of the host arena h (torch.nn.Linear's init). */
static void init_uniform(fr_gfnd_trainer *t, int p, float bound, float *h)
{
    float *v = h + ((float *)t->vals[p].data - t->arena_v);
    const int64_t numel = fr_tensor_numel(&t->vals[p]);
    for (int64_t j = 0; j < numel; j++)
        v[j] = (2.0f * fr_rng_uniform(t->o.seed, FR_RNG_INIT, (uint32_t)p, 2, 0, (uint32_t)j) - 1.0f) * bound;
}

static void fill(fr_gfnd_trainer *t, int p, float value, float *h)
{
    float *v = h + ((float *)t->vals[p].data - t->arena_v);
    const int64_t numel = fr_tensor_numel(&t->vals[p]);
    for (int64_t j = 0; j < numel; j++) v[j] = value;
}

void fr_gfnd_tnet_init(fr_gfnd_trainer *t, const tnet *n, int zero_last, float bias0, float *h)
{
    const int p0 = (int)(n->vals - t->vals);
    float *phase = h + ((float *)t->vals[p0].data - t->arena_v); /* torch.randn */
    for (int64_t j = 0; j < n->hf; j++) phase[j] = fr_rng_normal(t->o.seed, FR_RNG_INIT, (uint32_t)p0, 2, 0, (uint32_t)j);
    for (int l = 0; l < n->L; l++) {
        const int pw = p0 + 1 + 2 * l;
        const float bound = 1.0f / sqrtf((float)n->dim[l]);
        init_uniform(t, pw, bound, h);
        init_uniform(t, pw + 1, bound, h);
        if (zero_last && l == n->L - 1) {
            fill(t, pw, 0.0f, h);
            fill(t, pw + 1, bias0, h);
        }
    }
}

void fr_gfnd_pis_mlp_init(fr_gfnd_trainer *t, const mlp *m, int zero_last, float *h)
{
    const int p0 = (int)(m->vals - t->vals);
    for (int i = 0; i < m->n; i++) {
        const int l = i < 2 ? 0 : 1 + (i - 2) / 2;
        init_uniform(t, p0 + i, 1.0f / sqrtf((float)m->dim[l]), h);
        if (zero_last && l == m->L - 1) fill(t, p0 + i, 0.0f, h);
    }
    fr_gfnd_tnet_init(t, &m->tn, 0, 0.0f, h);
}

fr_status fr_gfnd_tnet_alloc(fr_gfnd_trainer *t, tnet *n, int own_out)
{
    int64_t wmax = n->dim[0];
    for (int l = 1; l <= n->L; l++)
        if (n->dim[l] > wmax) wmax = n->dim[l];
    n->feat = fr_dev_floats(t->be, t->T * n->dim[0]);
    n->g0 = fr_dev_floats(t->be, t->T * wmax);
    n->g1 = fr_dev_floats(t->be, t->T * wmax);
    n->feat_h = fr_malloc((size_t)(t->T * n->dim[0]) * sizeof(float));
    n->dfeat_h = fr_malloc((size_t)(t->T * n->dim[0]) * sizeof(float));
    n->phase_h = fr_malloc((size_t)n->hf * sizeof(float));
    if (!n->feat || !n->g0 || !n->g1 || !n->feat_h || !n->dfeat_h || !n->phase_h) return FR_ERR_NOMEM;
    for (int l = 0; l < n->L; l++) {
        if ((l < n->L - 1 || own_out) && !(n->pre[l] = fr_dev_floats(t->be, t->T * n->dim[l + 1]))) return FR_ERR_NOMEM;
        if (l < n->L - 1 && !(n->post[l] = fr_dev_floats(t->be, t->T * n->dim[l + 1]))) return FR_ERR_NOMEM;
    }
    return FR_OK;
}

void fr_gfnd_tnet_free(fr_backend *be, tnet *n)
{
    fr_dev_free(be, n->feat);
    fr_dev_free(be, n->g0);
    fr_dev_free(be, n->g1);
    for (int l = 0; l < n->L; l++) {
        fr_dev_free(be, n->pre[l]);
        fr_dev_free(be, n->post[l]);
    }
    free(n->feat_h);
    free(n->dfeat_h);
    free(n->phase_h);
}

/* torch.linspace(0.1, 100, hf) in float32 as ATen computes it: from the start below the middle,
 * from the end above it. */
static float pe_at(int64_t j, int64_t hf)
{
    const float lo = 0.1f, hi = 100.0f;
    if (hf < 2) return lo;
    const float step = (hi - lo) / (float)(hf - 1);
    return j < hf / 2 ? lo + step * (float)j : hi - step * (float)(hf - 1 - j);
}

fr_status fr_gfnd_tnet_forward(fr_gfnd_trainer *t, tnet *n, float *out)
{
    const fr_ops *op = t->be->ops;
    const int64_t T = t->T, hf = n->hf, F = n->dim[0];
    FR_TRY(fr_d2h(t->be, n->phase_h, n->vals[0].data, (size_t)hf * sizeof(float)));
    for (int64_t k = 0; k < T; k++) {
        const float tk = (float)((double)k * (1.0 / (double)T)); /* gfn.py: i * dt */
        for (int64_t j = 0; j < hf; j++) {
            const float a = tk * pe_at(j, hf) + n->phase_h[j];
            n->feat_h[k * F + j] = fr_sinf(a);
            n->feat_h[k * F + hf + j] = fr_cosf(a);
        }
    }
    FR_TRY(fr_h2d(t->be, n->feat, n->feat_h, (size_t)(T * F) * sizeof(float)));
    const float *in = n->feat;
    for (int l = 0; l < n->L; l++) {
        float *pre = l == n->L - 1 && out ? out : n->pre[l];
        op->gemm(0, 1, T, n->dim[l + 1], n->dim[l], in, n->vals[1 + 2 * l].data, pre, 0);
        op->bias_add(T, n->dim[l + 1], pre, n->vals[2 + 2 * l].data);
        if (l < n->L - 1) {
            op->act_fwd(FR_ACT_GELU_TANH, T * n->dim[l + 1], pre, n->post[l]);
            in = n->post[l];
        }
    }
    return FR_OK;
}

fr_status fr_gfnd_tnet_backward(fr_gfnd_trainer *t, tnet *n, const float *dout)
{
    const fr_ops *op = t->be->ops;
    const int64_t T = t->T, hf = n->hf, F = n->dim[0];
    const float *d = dout;
    for (int l = n->L - 1; l >= 0; l--) {
        const float *in = l == 0 ? n->feat : n->post[l - 1];
        float *dn = d == n->g0 ? n->g1 : n->g0;
        op->gemm(1, 0, n->dim[l + 1], n->dim[l], T, d, in, n->grads[1 + 2 * l].data, 1);
        op->bias_grad(T, n->dim[l + 1], d, n->grads[2 + 2 * l].data, 1);
        op->gemm(0, 0, T, n->dim[l], n->dim[l + 1], d, n->vals[1 + 2 * l].data, dn, 0);
        if (l > 0) op->act_bwd(FR_ACT_GELU_TANH, T * n->dim[l], n->pre[l - 1], dn, dn, 0);
        d = dn;
    }
    /* d/dφ_j: sin' = cos, cos' = −sin, summed over the steps in order */
    FR_TRY(fr_d2h(t->be, n->dfeat_h, d, (size_t)(T * F) * sizeof(float)));
    for (int64_t j = 0; j < hf; j++) {
        double g = 0.0;
        for (int64_t k = 0; k < T; k++)
            g += (double)n->dfeat_h[k * F + j] * (double)n->feat_h[k * F + hf + j] -
                 (double)n->dfeat_h[k * F + hf + j] * (double)n->feat_h[k * F + j];
        n->phase_h[j] = (float)g;
    }
    return fr_h2d(t->be, n->grads[0].data, n->phase_h, (size_t)hf * sizeof(float));
}
