/* AdamW state, global-norm gradient clipping and the weight EMA (flowrl/optim.h). */
#include "flowrl/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/adamw.h"
#include "flowrl/dist.h"

fr_adamw_cfg fr_adamw_cfg_default(void)
{
    fr_adamw_cfg c = {0.9, 0.999, 1e-8, 1e-2};
    return c;
}

int64_t fr_params_numel(const fr_param *ps, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += fr_tensor_numel(ps[i].value);
    return total;
}

void fr_params_zero_grad(fr_backend *be, fr_param *ps, int n)
{
    for (int i = 0; i < n; i++)
        be->ops->fill(fr_tensor_numel(ps[i].grad), 0.0f, (float *)ps[i].grad->data);
}

/* k lists out[0..k-1] of n zeroed tensors shaped like the values, views into one arena of
 * be's memory (each tensor on a 64-byte boundary, fr_arena_slot). */
static fr_status alloc_like(fr_backend *be, float **arena, fr_tensor **out, int k, const fr_param *ps, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += fr_arena_slot(fr_tensor_numel(ps[i].value));
    *arena = fr_dev_floats(be, total * k > 0 ? total * k : 1); /* zero-filled */
    for (int j = 0; j < k; j++) out[j] = fr_calloc((size_t)(n > 0 ? n : 1), sizeof *out[j]);
    int ok = *arena != NULL;
    for (int j = 0; j < k; j++) ok = ok && out[j];
    if (!ok) {
        fr_dev_free(be, *arena);
        for (int j = 0; j < k; j++) free(out[j]);
        return FR_ERR_NOMEM;
    }
    float *p = *arena;
    for (int j = 0; j < k; j++)
        for (int i = 0; i < n; i++) {
            const fr_tensor *v = ps[i].value;
            out[j][i] = fr_tensor_f32(p, v->ndim, v->shape);
            out[j][i].device = v->device;
            p += fr_arena_slot(fr_tensor_numel(v));
        }
    return FR_OK;
}

static fr_status check_list(const char *what, const fr_tensor *ts, int nt, const fr_param *ps,
                            int n)
{
    if (n != nt)
        return fr_fail(FR_ERR_ARG, "%s: state holds %d tensors, the list has %d", what, nt, n);
    for (int i = 0; i < n; i++)
        if (!fr_tensor_same_shape(&ts[i], ps[i].value) || ps[i].value->dtype != FR_F32 ||
            (ps[i].grad && !fr_tensor_same_shape(ps[i].grad, ps[i].value)))
            return fr_fail(FR_ERR_ARG, "%s: parameter %d (%s) does not match the state's shape",
                           what, i, ps[i].name);
    return FR_OK;
}

fr_status fr_adamw_state_init(fr_backend *be, fr_adamw_state *s, const fr_param *ps, int n)
{
    memset(s, 0, sizeof *s);
    fr_tensor *mv[2];
    FR_TRY(alloc_like(be, &s->arena, mv, 2, ps, n));
    s->be = be;
    s->m = mv[0];
    s->v = mv[1];
    s->n = n;
    return FR_OK;
}

void fr_adamw_state_free(fr_adamw_state *s)
{
    free(s->m);
    free(s->v);
    if (s->be) fr_dev_free(s->be, s->arena);
    memset(s, 0, sizeof *s);
}

fr_status fr_adamw_step(fr_backend *be, fr_adamw_state *s, fr_param *ps, int n,
                        const fr_adamw_cfg *cfg, double lr)
{
    return fr_adamw_step_part(be, s, ps, n, cfg, lr, 0, 1);
}

fr_status fr_adamw_step_part(fr_backend *be, fr_adamw_state *s, fr_param *ps, int n, const fr_adamw_cfg *cfg,
                             double lr, int part, int parts)
{
    FR_TRY(check_list("adamw", s->m, s->n, ps, n));
    fr_adamw_hp hp = fr_adamw_prepare(lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay,
                                      s->step + 1);
    for (int i = 0; i < n; i++) {
        int64_t lo = 0, hi = fr_tensor_numel(ps[i].value);
        if (parts > 1) fr_dist_block(hi, 1, part, parts, &lo, &hi);
        if (hi > lo) /* an elementwise op: its elements [lo, hi) are the whole's bits */
            be->ops->adamw(hi - lo, (float *)ps[i].value->data + lo, (const float *)ps[i].grad->data + lo,
                           (float *)s->m[i].data + lo, (float *)s->v[i].data + lo, &hp);
    }
    s->step += 1;
    return FR_OK;
}

fr_status fr_clip_grad_norm(fr_backend *be, fr_param *ps, int n, float max_norm,
                            float *total_norm)
{
    if (!(max_norm > 0.0f))
        return fr_fail(FR_ERR_ARG, "clip_grad_norm: max_norm = %g, expected > 0", (double)max_norm);
    const float **xs = fr_calloc((size_t)(n > 0 ? n : 1), sizeof *xs);
    int64_t *ns = fr_calloc((size_t)(n > 0 ? n : 1), sizeof *ns);
    if (!xs || !ns) {
        free(xs);
        free(ns);
        return FR_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        xs[i] = (const float *)ps[i].grad->data;
        ns[i] = fr_tensor_numel(ps[i].grad);
    }
    float *d_total = fr_dev_floats(be, 1); /* the norm, in backend memory */
    float total = 0.0f;
    fr_status st = d_total ? FR_OK : FR_ERR_NOMEM;
    if (st == FR_OK) {
        be->ops->global_norm(n, xs, ns, d_total);
        st = fr_d2h(be, &total, d_total, sizeof total);
    }
    fr_dev_free(be, d_total);
    free(xs);
    free(ns);
    if (st != FR_OK) return st;
    if (total_norm) *total_norm = total;
    if (!isfinite(total))
        return fr_fail(FR_ERR_NUMERIC, "clip_grad_norm: the gradient norm is %g", (double)total);
    float coef = max_norm / (total + 1e-6f);
    if (coef < 1.0f)
        for (int i = 0; i < n; i++) {
            float *g = (float *)ps[i].grad->data;
            be->ops->scale(fr_tensor_numel(ps[i].grad), coef, g, g);
        }
    return FR_OK;
}

fr_status fr_ema_init(fr_backend *be, fr_ema *e, const fr_param *ps, int n)
{
    memset(e, 0, sizeof *e);
    FR_TRY(alloc_like(be, &e->arena, &e->shadow, 1, ps, n));
    e->be = be;
    e->n = n;
    for (int i = 0; i < n; i++)
        be->ops->copy(fr_tensor_numel(ps[i].value), (const float *)ps[i].value->data,
                  (float *)e->shadow[i].data);
    return FR_OK;
}

void fr_ema_free(fr_ema *e)
{
    free(e->shadow);
    if (e->be) fr_dev_free(e->be, e->arena);
    memset(e, 0, sizeof *e);
}

fr_status fr_ema_update(fr_backend *be, fr_ema *e, const fr_param *ps, int n, float decay)
{
    FR_TRY(check_list("ema", e->shadow, e->n, ps, n));
    if (!(decay >= 0.0f && decay <= 1.0f))
        return fr_fail(FR_ERR_ARG, "ema: decay = %g, expected 0..1", (double)decay);
    float w = 1.0f - decay;
    for (int i = 0; i < n; i++)
        be->ops->axpby(fr_tensor_numel(ps[i].value), w, (const float *)ps[i].value->data, decay,
                   (float *)e->shadow[i].data);
    return FR_OK;
}

fr_status fr_ema_copy_to(fr_backend *be, const fr_ema *e, fr_param *ps, int n)
{
    FR_TRY(check_list("ema", e->shadow, e->n, ps, n));
    for (int i = 0; i < n; i++)
        be->ops->copy(fr_tensor_numel(ps[i].value), (const float *)e->shadow[i].data,
                  (float *)ps[i].value->data);
    return FR_OK;
}
