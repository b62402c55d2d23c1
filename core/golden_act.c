/* Golden cases of the activation entries of the op table (flowrl/ops.h act_fwd, act_bwd and
 * MeanFlow's forward-mode act_jvp, docs/algorithms/meanflow.md), arg = fr_act; their rows stand
 * in core/golden_ops.c's table (golden/MANIFEST keeps the registry's order). 37 elements: longer
 * than one 8-lane register with a tail. */
#include <string.h>

#include "core/golden_internal.h"

static const char *const k_act_names[FR_ACT_COUNT] = {"identity", "silu", "gelu_tanh",
                                                      "tanh", "sigmoid", "relu"};

static fr_status act_in(const fr_golden_case *c, fr_golden_in *g, int bwd)
{
    FR_TRY(fr_gi_param_str(g, "act", k_act_names[c->arg]));
    /* ±6 reaches the saturating ends of tanh / sigmoid / gelu */
    FR_TRY(fr_gi_uniform(g, "x", 1, (int64_t[]){37}, -6.0f, 6.0f, NULL));
    if (bwd) FR_TRY(fr_gi_uniform(g, "dy", 1, (int64_t[]){37}, -1.0f, 1.0f, NULL));
    return FR_OK;
}

fr_status fr_golden_act_fwd_in(const fr_golden_case *c, fr_golden_in *g) { return act_in(c, g, 0); }
fr_status fr_golden_act_bwd_in(const fr_golden_case *c, fr_golden_in *g) { return act_in(c, g, 1); }

static fr_status act_check(const fr_golden_case *c, const fr_st_file *in)
{
    const char *a = fr_st_get_meta(in, "param.act");
    if (!a || strcmp(a, k_act_names[c->arg]) != 0)
        return fr_fail(FR_ERR_FORMAT, "golden %s: param.act is '%s', expected '%s'", c->name,
                       a ? a : "(missing)", k_act_names[c->arg]);
    return FR_OK;
}

fr_status fr_golden_act_fwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    FR_TRY(act_check(c, in));
    int64_t n;
    const float *x;
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    float *y;
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, NULL, &y));
    d->be->ops->act_fwd((fr_act)c->arg, n, x, y);
    return FR_OK;
}

fr_status fr_golden_act_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    FR_TRY(act_check(c, in));
    int64_t n;
    const float *x, *dy;
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_gd_exact(d, in, "dy", FR_F32, 1, &n, (const void **)&dy));
    float *dx;
    FR_TRY(fr_gd_out_f32(d, out, "dx", 1, &n, NULL, &dx));
    d->be->ops->act_bwd((fr_act)c->arg, n, x, dy, dx, 0);
    return FR_OK;
}

/* MeanFlow's JVP (flowrl/ops.h act_jvp): y and the tangent ydot of x along xdot. */
fr_status fr_golden_act_jvp_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(act_in(c, g, 0));
    return fr_gi_uniform(g, "xdot", 1, (int64_t[]){37}, -1.0f, 1.0f, NULL);
}

fr_status fr_golden_act_jvp_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    FR_TRY(act_check(c, in));
    int64_t n;
    const float *x, *xdot;
    FR_TRY(fr_gd_f32(d, in, "x", 1, &n, &x));
    FR_TRY(fr_gd_exact(d, in, "xdot", FR_F32, 1, &n, (const void **)&xdot));
    float *y, *ydot;
    FR_TRY(fr_gd_out_f32(d, out, "y", 1, &n, NULL, &y));
    FR_TRY(fr_gd_out_f32(d, out, "ydot", 1, &n, NULL, &ydot));
    d->be->ops->act_jvp((fr_act)c->arg, n, x, xdot, y, ydot);
    return FR_OK;
}
