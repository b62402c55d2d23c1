/* Classifier-free guidance forward and backward (flowrl/guidance.h; docs/algorithms/samplers.md §0). */
#include "flowrl/guidance.h"

#include <stdlib.h>
#include <string.h>

#include "flowrl/sampler.h"

fr_guidance fr_guidance_from_scale(float g)
{
    fr_guidance gd = {g, g != 1.0f};
    return gd;
}

void fr_guided_ws_free(fr_guided_ws *w)
{
    fr_model_ws_free(&w->model);
    if (w->be) fr_dev_free(w->be, w->blk);
    free(w->c_host);
    memset(w, 0, sizeof *w);
}

fr_status fr_guided_ws_alloc(fr_guided_ws *w, fr_backend *be, const fr_model *m, int64_t cap, fr_guidance gd,
                             int keep)
{
    memset(w, 0, sizeof *w);
    if (cap < 1 || cap > (int64_t)1 << 30)
        return fr_fail(FR_ERR_ARG, "fr_guided_ws_alloc: capacity %lld rows, expected 1 .. 2^30", (long long)cap);
    const int64_t D = m->cfg.D, S = m->cfg.n_slots, R = gd.on ? 2 * cap : cap;
    w->be = be;
    w->gd = gd;
    w->cap = cap;
    w->D = D;
    w->S = S;
    /* xin, out, dout: R·D floats; tin: R; c: R·S ints */
    size_t bytes = (size_t)(3 * R * D + R) * sizeof(float) + (size_t)(R * S) * sizeof(int32_t);
    w->blk = fr_dev_alloc(be, bytes);
    w->c_host = fr_malloc((size_t)(R * S) * sizeof *w->c_host);
    if (!w->blk || !w->c_host) {
        fr_guided_ws_free(w);
        return FR_ERR_NOMEM;
    }
    float *f = w->blk;
    w->xin = f, f += R * D;
    w->out = f, f += R * D;
    w->dout = f, f += R * D;
    w->tin = f, f += R;
    w->c = (int32_t *)f;
    fr_status s = fr_model_ws_alloc(&w->model, m, R, keep);
    if (s != FR_OK) fr_guided_ws_free(w);
    return s;
}

/* w->c (R, S) = [c; null rows up to R] (n_cond in every slot, model.h), uploaded only when
 * it differs from what w->c holds: a rollout's steps reuse one chunk's conditions. */
static fr_status put_cond(const fr_model *m, fr_guided_ws *w, int64_t b, const int32_t *c, int64_t R)
{
    const size_t n_c = (size_t)(b * w->S);
    if (w->c_rows == R && memcmp(w->c_host, c, n_c * sizeof *c) == 0) return FR_OK;
    memcpy(w->c_host, c, n_c * sizeof *c);
    for (size_t k = n_c; k < (size_t)(R * w->S); k++) w->c_host[k] = (int32_t)m->cfg.n_cond;
    w->c_rows = 0;
    FR_TRY(fr_h2d(w->be, w->c, w->c_host, (size_t)(R * w->S) * sizeof *w->c));
    w->c_rows = R;
    return FR_OK;
}

fr_status fr_guided_forward(const fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t b, const float *x,
                            float t_in, const int32_t *c, float *v)
{
    if (!w->blk || b < 1 || b > w->cap)
        return fr_fail(FR_ERR_ARG, "fr_guided_forward: %lld rows, workspace holds %lld", (long long)b,
                       (long long)w->cap);
    if (be != w->be) return fr_fail(FR_ERR_ARG, "fr_guided_forward: the workspace belongs to another backend handle");
    const int64_t D = w->D, R = w->gd.on ? 2 * b : b;
    w->b = b;
    be->ops->fill(R, t_in, w->tin);
    FR_TRY(put_cond(m, w, b, c, R));
    if (!w->gd.on) return fr_model_forward(m, be, &w->model, b, x, w->tin, w->c, v);
    const size_t bytes = (size_t)(b * D) * sizeof(float);
    FR_TRY(fr_d2d(be, w->xin, x, bytes));
    FR_TRY(fr_d2d(be, w->xin + b * D, x, bytes));
    FR_TRY(fr_model_forward(m, be, &w->model, R, w->xin, w->tin, w->c, w->out));
    /* rows [0, b) conditional, [b, 2b) unconditional */
    return fr_cfg_combine(be, b * D, w->gd.scale, w->out + b * D, w->out, v);
}

fr_status fr_guided_forward_steps(const fr_model *m, fr_backend *be, fr_guided_ws *w, int64_t n_seg,
                                  const int64_t *seg_b, const float *seg_t, const float *x, const int32_t *c,
                                  float *v)
{
    if (!w->blk || n_seg < 1) return fr_fail(FR_ERR_ARG, "fr_guided_forward_steps: %lld segments", (long long)n_seg);
    if (be != w->be)
        return fr_fail(FR_ERR_ARG, "fr_guided_forward_steps: the workspace belongs to another backend handle");
    if (w->gd.on) /* [x; x] per call: one call over several segments would reorder the backward's rows */
        return fr_fail(FR_ERR_ARG, "fr_guided_forward_steps: guidance is on (one segment per fr_guided_forward)");
    int64_t b = 0;
    for (int64_t k = 0; k < n_seg; k++) {
        if (seg_b[k] < 1 || seg_b[k] > w->cap - b)
            return fr_fail(FR_ERR_ARG, "fr_guided_forward_steps: segment %lld of %lld rows after %lld, workspace "
                                       "holds %lld", (long long)k, (long long)seg_b[k], (long long)b, (long long)w->cap);
        be->ops->fill(seg_b[k], seg_t[k], w->tin + b);
        b += seg_b[k];
    }
    w->b = b;
    FR_TRY(put_cond(m, w, b, c, b));
    return fr_model_forward(m, be, &w->model, b, x, w->tin, w->c, v);
}

fr_status fr_guided_backward(fr_model *m, fr_backend *be, fr_guided_ws *w, const float *g_v)
{
    return fr_guided_backward_x(m, be, w, g_v, NULL);
}

fr_status fr_guided_backward_x(fr_model *m, fr_backend *be, fr_guided_ws *w, const float *g_v, float *dx)
{
    if (!w->blk || w->b < 1) return fr_fail(FR_ERR_ARG, "fr_guided_backward: no forward to go back through");
    if (be != w->be) return fr_fail(FR_ERR_ARG, "fr_guided_backward: the workspace belongs to another backend handle");
    if (!w->gd.on) return fr_model_backward(m, be, &w->model, g_v, dx);
    const int64_t n = w->b * w->D;
    be->ops->scale(n, w->gd.scale, g_v, w->dout);              /* g_c = g_v·g */
    be->ops->binary(FR_BIN_SUB, n, g_v, w->dout, w->dout + n); /* g_u = g_v − g_v·g */
    /* dL/dx of both branches into xin (the model keeps its own copy of its input), then
     * dx = dx_c + dx_u, autograd's sum over the two uses of x */
    FR_TRY(fr_model_backward(m, be, &w->model, w->dout, dx ? w->xin : NULL));
    if (dx) be->ops->binary(FR_BIN_ADD, n, w->xin, w->xin + n, dx);
    return FR_OK;
}
