/* The MLP through the op table (flowrl/mlp.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/digest.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"

fr_status fr_mlp_new(fr_mlp *m, fr_backend *be, const char *prefix, int L, const int64_t *dim, fr_act act, int64_t cap)
{
    memset(m, 0, sizeof *m);
    if (L < 1 || L > FR_MLP_MAX_LAYERS) return fr_fail(FR_ERR_ARG, "mlp %s: %d layers (1..%d)", prefix, L, FR_MLP_MAX_LAYERS);
    if (cap < 1) return fr_fail(FR_ERR_ARG, "mlp %s: %lld rows", prefix, (long long)cap);
    int64_t wmax = 0;
    for (int l = 0; l <= L; l++) {
        if (dim[l] < 1 || dim[l] > (1 << 16)) return fr_fail(FR_ERR_ARG, "mlp %s: width %d is %lld", prefix, l, (long long)dim[l]);
        if (dim[l] > wmax) wmax = dim[l];
    }
    m->be = be;
    m->L = L;
    m->act = act;
    m->cap = cap;
    m->n_params = 2 * L;
    memcpy(m->dim, dim, (size_t)(L + 1) * sizeof *dim);
    for (int l = 0; l < L; l++) {
        m->arena_n += fr_arena_slot(dim[l + 1] * dim[l]) + fr_arena_slot(dim[l + 1]);
        snprintf(m->names[2 * l], sizeof m->names[0], "%s.%d.weight", prefix, 2 * l);
        snprintf(m->names[2 * l + 1], sizeof m->names[0], "%s.%d.bias", prefix, 2 * l);
    }
    m->arena_v = fr_dev_floats(be, m->arena_n);
    m->arena_g = fr_dev_floats(be, m->arena_n);
    m->x = fr_dev_floats(be, cap * dim[0]);
    m->dout = fr_dev_floats(be, cap * dim[L]);
    m->d0 = fr_dev_floats(be, cap * wmax);
    m->d1 = fr_dev_floats(be, cap * wmax);
    fr_status s = m->arena_v && m->arena_g && m->x && m->dout && m->d0 && m->d1 ? FR_OK : FR_ERR_NOMEM;
    for (int l = 0; l < L && s == FR_OK; l++) {
        if (!(m->pre[l] = fr_dev_floats(be, cap * dim[l + 1]))) s = FR_ERR_NOMEM;
        if (s == FR_OK && l < L - 1 && !(m->post[l] = fr_dev_floats(be, cap * dim[l + 1]))) s = FR_ERR_NOMEM;
    }
    int64_t off = 0;
    for (int l = 0; l < L && s == FR_OK; l++) {
        int64_t ws[2] = {dim[l + 1], dim[l]}, bs[1] = {dim[l + 1]};
        m->vals[2 * l] = fr_tensor_f32(m->arena_v + off, 2, ws);
        m->grads[2 * l] = fr_tensor_f32(m->arena_g + off, 2, ws);
        off += fr_arena_slot(ws[0] * ws[1]);
        m->vals[2 * l + 1] = fr_tensor_f32(m->arena_v + off, 1, bs);
        m->grads[2 * l + 1] = fr_tensor_f32(m->arena_g + off, 1, bs);
        off += fr_arena_slot(bs[0]);
    }
    for (int p = 0; p < m->n_params; p++) m->params[p] = (fr_param){m->names[p], &m->vals[p], &m->grads[p]};
    if (s != FR_OK) fr_mlp_free(m);
    return s;
}

fr_status fr_mlp_new_uniform(fr_mlp *m, fr_backend *be, const char *prefix, const char *what, int64_t in, int64_t hidden,
                             int n_hidden, int64_t out, fr_act act, int64_t cap)
{
    if (n_hidden < 1 || n_hidden >= FR_MLP_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "%s: %d hidden layers (1..%d)", what, n_hidden, FR_MLP_MAX_LAYERS - 1);
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    dim[0] = in;
    for (int l = 1; l <= n_hidden; l++) dim[l] = hidden;
    dim[n_hidden + 1] = out;
    return fr_mlp_new(m, be, prefix, n_hidden + 1, dim, act, cap);
}

void fr_mlp_free(fr_mlp *m)
{
    if (!m || !m->be) return;
    void *dev[] = {m->arena_v, m->arena_g, m->x, m->dout, m->d0, m->d1};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(m->be, dev[i]);
    for (int l = 0; l < m->L; l++) {
        fr_dev_free(m->be, m->pre[l]);
        fr_dev_free(m->be, m->post[l]);
    }
    memset(m, 0, sizeof *m);
}

fr_status fr_mlp_init_params(fr_mlp *m, uint32_t seed, uint32_t stream, float out_scale)
{
    float *h = fr_calloc((size_t)m->arena_n, sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    int64_t off = 0;
    for (int p = 0; p < m->n_params; p++) {
        const int l = p / 2;
        const float bound = 1.0f / sqrtf((float)m->dim[l]), scale = l == m->L - 1 ? out_scale : 1.0f;
        const int64_t n = fr_tensor_numel(&m->vals[p]);
        for (int64_t i = 0; i < n; i++)
            h[off + i] = (2.0f * fr_rng_uniform(seed, FR_RNG_INIT, (uint32_t)p, stream, 0, (uint32_t)i) - 1.0f) * bound * scale;
        off += fr_arena_slot(n);
    }
    fr_status s = fr_h2d(m->be, m->arena_v, h, (size_t)m->arena_n * sizeof *h);
    free(h);
    return s;
}

void fr_mlp_forward(fr_mlp *m, int64_t R)
{
    const fr_ops *op = m->be->ops;
    const float *in = m->x;
    m->be->work.fwd_rows += (uint64_t)R; /* the NFE count (flowrl/backend.h) */
    for (int l = 0; l < m->L; l++) {
        op->gemm(0, 1, R, m->dim[l + 1], m->dim[l], in, m->vals[2 * l].data, m->pre[l], 0);
        op->bias_add(R, m->dim[l + 1], m->pre[l], m->vals[2 * l + 1].data);
        if (l < m->L - 1) {
            op->act_fwd(m->act, R * m->dim[l + 1], m->pre[l], m->post[l]);
            in = m->post[l];
        }
    }
}

void fr_mlp_jvp(fr_mlp *m, int64_t R, const float *xdot, float *ydot)
{
    const fr_ops *op = m->be->ops;
    const float *in = m->x, *tin = xdot;
    float *bufs[2] = {m->d0, m->d1};
    int nb = 0;
    m->be->work.fwd_rows += (uint64_t)R;
    for (int l = 0; l < m->L; l++) {
        /* primal: fr_mlp_forward's calls; tangent: ṗre = ẋ W^T (no bias), ẏ = act'(pre)·ṗre */
        float *tout = l == m->L - 1 ? ydot : bufs[nb];
        nb ^= 1;
        op->gemm(0, 1, R, m->dim[l + 1], m->dim[l], in, m->vals[2 * l].data, m->pre[l], 0);
        op->bias_add(R, m->dim[l + 1], m->pre[l], m->vals[2 * l + 1].data);
        op->gemm(0, 1, R, m->dim[l + 1], m->dim[l], tin, m->vals[2 * l].data, tout, 0);
        if (l < m->L - 1) {
            op->act_jvp(m->act, R * m->dim[l + 1], m->pre[l], tout, m->post[l], tout);
            in = m->post[l];
        }
        tin = tout;
    }
}

void fr_mlp_backward_h(fr_mlp *m, int64_t R, float *dx, float *const *dh)
{
    const fr_ops *op = m->be->ops;
    const float *d = m->dout;
    float *bufs[2] = {m->d0, m->d1};
    int nb = 0;
    m->be->work.bwd_rows += (uint64_t)R;
    for (int l = m->L - 1; l >= 0; l--) {
        const float *in = l == 0 ? m->x : m->post[l - 1];
        op->gemm(1, 0, m->dim[l + 1], m->dim[l], R, d, in, m->grads[2 * l].data, 1);
        op->bias_grad(R, m->dim[l + 1], d, m->grads[2 * l + 1].data, 1);
        if (l == 0) {
            if (dx) op->gemm(0, 0, R, m->dim[0], m->dim[1], d, m->vals[0].data, dx, 0);
            break;
        }
        /* d_in = d W_l (+ the loss's own gradient of post[l − 1]), then through the activation of
         * layer l − 1 */
        float *dn = bufs[nb];
        nb ^= 1;
        op->gemm(0, 0, R, m->dim[l], m->dim[l + 1], d, m->vals[2 * l].data, dn, 0);
        if (dh && dh[l - 1]) op->binary(FR_BIN_ADD, R * m->dim[l], dn, dh[l - 1], dn);
        op->act_bwd(m->act, R * m->dim[l], m->pre[l - 1], dn, dn, 0);
        d = dn;
    }
}

void fr_mlp_backward(fr_mlp *m, int64_t R, float *dx) { fr_mlp_backward_h(m, R, dx, NULL); }

fr_status fr_mlp_zero_grad(fr_mlp *m) { return fr_dev_zero(m->be, m->arena_g, (size_t)m->arena_n * sizeof(float)); }

fr_status fr_mlp_forward_host(fr_mlp *m, int64_t R, const float *in, float *out)
{
    if (R > m->cap) return fr_fail(FR_ERR_ARG, "mlp %s: %lld rows, sized for %lld", m->names[0], (long long)R, (long long)m->cap);
    FR_TRY(fr_h2d(m->be, m->x, in, (size_t)(R * m->dim[0]) * sizeof(float)));
    fr_mlp_forward(m, R);
    return fr_d2h(m->be, out, fr_mlp_out(m), (size_t)(R * m->dim[m->L]) * sizeof(float));
}

fr_status fr_mlp_backward_host(fr_mlp *m, int64_t R, const float *dout)
{
    FR_TRY(fr_h2d(m->be, m->dout, dout, (size_t)(R * m->dim[m->L]) * sizeof(float)));
    fr_mlp_backward(m, R, NULL);
    return FR_OK;
}

fr_status fr_mlp_save(fr_mlp *m, fr_st_file *f)
{
    for (int p = 0; p < m->n_params; p++) {
        fr_tensor h;
        FR_TRY(fr_tensor_alloc(&h, FR_F32, m->vals[p].ndim, m->vals[p].shape));
        fr_status s = fr_d2h(m->be, h.data, m->vals[p].data, (size_t)fr_tensor_numel(&h) * sizeof(float));
        if (s == FR_OK) s = fr_st_add_take(f, m->names[p], &h);
        if (s != FR_OK) {
            fr_tensor_free(&h);
            return s;
        }
    }
    return FR_OK;
}

fr_status fr_mlp_load(fr_mlp *m, const fr_st_file *f, const char *path)
{
    for (int p = 0; p < m->n_params; p++) {
        const fr_tensor *t = fr_st_get(f, m->names[p]), *v = &m->vals[p];
        int ok = t && t->dtype == FR_F32 && t->ndim == v->ndim;
        for (int k = 0; ok && k < v->ndim; k++) ok = t->shape[k] == v->shape[k];
        if (!ok)
            return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' is %s, expected F32 of %lld elements in %d dims (the "
                           "network's widths)", path, m->names[p], t ? "of another dtype or shape" : "absent",
                           (long long)fr_tensor_numel(v), v->ndim);
        FR_TRY(fr_h2d(m->be, v->data, t->data, (size_t)fr_tensor_numel(v) * sizeof(float)));
    }
    return FR_OK;
}

int64_t fr_mlp_numel(const fr_mlp *m)
{
    int64_t n = 0;
    for (int p = 0; p < m->n_params; p++) n += fr_tensor_numel(&m->vals[p]);
    return n;
}

fr_status fr_mlp_digest(fr_mlp *m, uint64_t *digest)
{
    float *h = fr_malloc((size_t)m->arena_n * sizeof *h);
    if (!h) return FR_ERR_NOMEM;
    fr_status s = fr_d2h(m->be, h, m->arena_v, (size_t)m->arena_n * sizeof *h);
    if (s == FR_OK) *digest = fr_digest_bytes(h, (size_t)m->arena_n * sizeof *h);
    free(h);
    return s;
}
