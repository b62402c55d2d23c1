/* Golden case of GMFlow's mixture math (flowrl/gmflow.h; docs/algorithms/gmflow.md §2-§3): the
 * reverse-transition GM and its NLL with the gradient w.r.t. the head rows, float64 host code
 * every backend shares (FR_GOLDEN_SHARED). */
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/gmflow.h"

#define T_SHARED {0.0f, 0.0f}

enum { GB = 4, GK = 3, GD = 2, GW = GK * GD + GK + 1 };

static fr_status nll_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t bw[2] = {GB, GW}, bd[2] = {GB, GD}, b[1] = {GB};
    float *u;
    FR_TRY(fr_gi_normal(g, "rows", 2, bw, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "x_high", 2, bd, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "x_low", 2, bd, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "u_sigma", 1, b, 0.05f, 1.0f, &u));
    double sg[GB], st[GB];
    for (int i = 0; i < GB; i++) {
        sg[i] = (double)u[i];
        st[i] = 0.1 * sg[i]; /* trans_ratio 0.9 */
    }
    st[GB - 1] = 0.0; /* t_low = 0: the x0-GM */
    FR_TRY(fr_gi_tensor(g, "sigma", FR_F64, 1, b, sg, "in.u_sigma widened"));
    return fr_gi_tensor(g, "sigma_to", FR_F64, 1, b, st, "0.1 * sigma (trans_ratio 0.9); sigma_to[3] = 0");
}

static fr_status nll_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    const int64_t bw[2] = {GB, GW}, bd[2] = {GB, GD}, b[1] = {GB}, bkd[3] = {GB, GK, GD}, bk[2] = {GB, GK};
    const float *rows, *x, *y;
    const double *sg, *st;
    FR_TRY(fr_go_exact(in, "rows", FR_F32, 2, bw, (const void **)&rows));
    FR_TRY(fr_go_exact(in, "x_high", FR_F32, 2, bd, (const void **)&x));
    FR_TRY(fr_go_exact(in, "x_low", FR_F32, 2, bd, (const void **)&y));
    FR_TRY(fr_go_exact(in, "sigma", FR_F64, 1, b, (const void **)&sg));
    FR_TRY(fr_go_exact(in, "sigma_to", FR_F64, 1, b, (const void **)&st));
    double *means, *logw, *var, *nll_rows, *grad;
    float *dout;
    FR_TRY(fr_go_out(out, "means", FR_F64, 3, bkd, (void **)&means));
    FR_TRY(fr_go_out(out, "logw", FR_F64, 2, bk, (void **)&logw));
    FR_TRY(fr_go_out(out, "var", FR_F64, 1, b, (void **)&var));
    FR_TRY(fr_go_out(out, "nll_rows", FR_F64, 1, b, (void **)&nll_rows));
    FR_TRY(fr_go_out(out, "grad_rows", FR_F64, 2, bw, (void **)&grad));
    FR_TRY(fr_go_out_f32(out, "dout", 2, bw, &dout));
    for (int i = 0; i < GB; i++) {
        fr_gmflow_transition(GK, GD, rows + i * GW, x + i * GD, sg[i], st[i], means + i * GK * GD, logw + i * GK, &var[i]);
        nll_rows[i] = fr_gmflow_nll_row(GK, GD, rows + i * GW, x + i * GD, y + i * GD, sg[i], st[i], grad + i * GW);
    }
    return fr_go_out_scalar_f64(out, "nll", fr_gmflow_nll(GB, GK, GD, rows, x, y, sg, st, dout));
}

const fr_golden_case fr_golden_cases_gmflow[] = {
    {"gmflow.nll",
     "GMFlow: 4 head rows of K 3 over D 2 (means | logits | log std), the reverse-transition GM from sigma to "
     "sigma' = 0.1 sigma (the last sigma' = 0: the x0-GM), its NLL of x_low (inverse std clamped at 1e4, 1/2 log 2 pi "
     "dropped), per row and batch mean, and the gradients (gmflow.md §2-§3)",
     FR_GOLDEN_SHARED, 0, T_SHARED, nll_in, nll_run},
};
const size_t fr_golden_n_gmflow = sizeof fr_golden_cases_gmflow / sizeof fr_golden_cases_gmflow[0];
