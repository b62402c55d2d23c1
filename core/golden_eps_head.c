/* Golden cases of the eps x0 head's two op entries (flowrl/ops.h eps_head_fwd, eps_head_bwd;
 * flowrl/model_elem.h): B = 5 rows of D = 7 at timesteps that exercise the table's floor and
 * clamp. Their rows stand in core/golden_ops.c's table (golden/MANIFEST keeps its order). */
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/model.h"
#include "flowrl/model_elem.h"

enum { HB = 5, HD = 7, HN = 1000 };

/* The table of `flowrl pretrain --pred epsilon`'s head (2, HN): DDPM's linear betas, sigma_min 0.05. */
static fr_status eps_table(float *tab)
{
    fr_model_config c;
    memset(&c, 0, sizeof c);
    c.head = FR_HEAD_X0, c.pred = FR_PRED_EPSILON, c.sigma_min = FR_X0_HEAD_SIGMA_MIN;
    c.ddpm_betas = FR_DDPM_LINEAR, c.beta_start = 1e-4, c.beta_end = 0.02, c.n_train = HN;
    return fr_model_eps_head_table(&c, tab);
}

static fr_status eps_tab_in(fr_golden_in *g, float *tab)
{
    FR_TRY(eps_table(tab));
    return fr_gi_tensor(g, "tab", FR_F32, 2, (int64_t[]){2, HN}, tab,
                        "fr_model_eps_head_table: sqrt(abar_t), max(sqrt(1 - abar_t), 0.05), DDPM linear betas "
                        "1e-4 .. 0.02 over 1000 steps (float32 cumprod)");
}

/* Timesteps: the floored rows t = 0 and 3, 999, a fractional 500.5 (floor), and 1200 (clamped). */
static const float k_eps_t[HB] = {0.0f, 3.0f, 500.5f, 999.0f, 1200.0f};

fr_status fr_golden_eps_fwd_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *tab = fr_malloc(2 * HN * sizeof *tab);
    if (!tab) return FR_ERR_NOMEM;
    fr_status s = eps_tab_in(g, tab);
    free(tab);
    FR_TRY(s);
    FR_TRY(fr_gi_tensor(g, "t", FR_F32, 1, (int64_t[]){HB}, k_eps_t, "the floored rows 0, 3; 500.5 (floor); 999; 1200 (clamped to 999)"));
    FR_TRY(fr_gi_uniform(g, "x", 2, (int64_t[]){HB, HD}, -3.0f, 3.0f, NULL));
    return fr_gi_uniform(g, "xo", 2, (int64_t[]){HB, HD}, -1.5f, 1.5f, NULL);
}

fr_status fr_golden_eps_fwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t ts[2], bs, xs[2];
    const float *tab, *t, *x, *xo;
    float *e, *coef;
    FR_TRY(fr_gd_f32(d, in, "tab", 2, ts, &tab));
    if (ts[0] != 2) return fr_fail(FR_ERR_FORMAT, "golden: in.tab is (%lld, %lld), expected (2, n)", (long long)ts[0], (long long)ts[1]);
    FR_TRY(fr_gd_f32(d, in, "t", 1, &bs, &t));
    FR_TRY(fr_gd_f32(d, in, "x", 2, xs, &x));
    if (xs[0] != bs) return fr_fail(FR_ERR_FORMAT, "golden: in.x has %lld rows, in.t %lld", (long long)xs[0], (long long)bs);
    FR_TRY(fr_gd_exact(d, in, "xo", FR_F32, 2, xs, (const void **)&xo));
    FR_TRY(fr_gd_out_f32(d, out, "out", 2, xs, NULL, &e));
    FR_TRY(fr_gd_out_f32(d, out, "coef", 2, (int64_t[]){2, bs}, NULL, &coef));
    d->be->ops->eps_head_fwd(bs, xs[1], ts[1], tab, t, x, xo, coef, e);
    return FR_OK;
}

fr_status fr_golden_eps_bwd_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float *tab = fr_malloc(2 * HN * sizeof *tab);
    if (!tab) return FR_ERR_NOMEM;
    fr_status s = eps_table(tab);
    float coef[2 * HB];
    for (int b = 0; b < HB && s == FR_OK; b++) fr_eps_head_coefs(tab, HN, k_eps_t[b], &coef[b], &coef[HB + b]);
    free(tab);
    FR_TRY(s);
    FR_TRY(fr_gi_tensor(g, "coef", FR_F32, 2, (int64_t[]){2, HB}, coef,
                        "op.eps_head_fwd's out.coef: a, then s of its rows (t = 0, 3, 500.5, 999, 1200)"));
    return fr_gi_uniform(g, "dout", 2, (int64_t[]){HB, HD}, -1.0f, 1.0f, NULL);
}

fr_status fr_golden_eps_bwd_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t cs[2], ds[2];
    const float *coef, *dout;
    float *dxo, *dx;
    FR_TRY(fr_gd_f32(d, in, "coef", 2, cs, &coef));
    FR_TRY(fr_gd_f32(d, in, "dout", 2, ds, &dout));
    if (cs[0] != 2 || cs[1] != ds[0])
        return fr_fail(FR_ERR_FORMAT, "golden: in.coef is (%lld, %lld), expected (2, %lld)", (long long)cs[0],
                       (long long)cs[1], (long long)ds[0]);
    FR_TRY(fr_gd_out_f32(d, out, "dxo", 2, ds, NULL, &dxo));
    FR_TRY(fr_gd_out_f32(d, out, "dx", 2, ds, NULL, &dx));
    d->be->ops->eps_head_bwd(ds[0], ds[1], coef, dout, dxo, dx);
    return FR_OK;
}
