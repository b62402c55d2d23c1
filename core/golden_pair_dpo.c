/* Golden cases of the pair DPO objective of Diffusion-DPO and Flow-DPO (flowrl/pair_dpo.h,
 * docs/algorithms/dpo.md §4): 4 pairs (rows [w | l]) of D = 6, from the model outputs of the
 * policy and the reference and the target to the per-row errors, z, the loss and the gradient
 * w.r.t. the policy output, in Diffusion-DPO's order (β 5000, target ε), in Flow-DPO's (β 100,
 * target ε − x0 formed by the caller) and at θ = ref (every term softplus(0), the §5 check). The
 * objective runs the row_msd_f64 and fm_loss entries.
 *
 * The outputs are formed near the target (out = target + in.d_out) with the reference a small
 * step away (out_ref = out + in.d_ref), so z is O(1) at both β. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/pair_dpo.h"

enum { PN = 4, PD = 6, PR = 2 * PN };

/* arg: the form (0 MODEL_DIFF, 1 REF_DIFF) | 2 at θ = ref */
enum { PD_FLOW = 1, PD_AT_REF = 2 };

static double case_beta(int arg) { return arg & PD_FLOW ? 100.0 : 5000.0; }

static fr_status pdpo_in(const fr_golden_case *c, fr_golden_in *g)
{
    const int64_t xr[2] = {PR, PD};
    const double beta = case_beta(c->arg);
    FR_TRY(fr_gi_param(g, "form", c->arg & PD_FLOW));
    FR_TRY(fr_gi_scalar_f64(g, "beta", beta));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "gout", "1/(grad_accum * draws) with 2 accumulated draws"));
    float *target, *dout, *dref;
    FR_TRY(fr_gi_normal(g, "target", 2, xr, 1.0f, &target));
    FR_TRY(fr_gi_normal(g, "d_out", 2, xr, 0.3f, &dout));
    /* z = (β/2)·O(Δe): Δe ~ 1e-3 at β 5000, ~5e-2 at β 100 */
    FR_TRY(fr_gi_normal(g, "d_ref", 2, xr, c->arg & PD_FLOW ? 0.05f : 0.002f, &dref));
    float out[PR * PD], ref[PR * PD];
    for (int j = 0; j < PR * PD; j++) {
        out[j] = target[j] + dout[j];
        ref[j] = c->arg & PD_AT_REF ? out[j] : out[j] + dref[j];
    }
    FR_TRY(fr_gi_tensor(g, "out", FR_F32, 2, xr, out, "in.target + in.d_out, float32: the policy's rows [w | l]"));
    return fr_gi_tensor(g, "out_ref", FR_F32, 2, xr, ref,
                        c->arg & PD_AT_REF ? "in.out (theta = ref: every term softplus(0))" : "in.out + in.d_ref");
}

static fr_status out_f64(fr_st_file *out, const char *name, int ndim, const int64_t *shape, const double *v)
{
    void *p;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    FR_TRY(fr_go_out(out, name, FR_F64, ndim, shape, &p));
    memcpy(p, v, (size_t)n * sizeof(double));
    return FR_OK;
}

/* Memory (pair_dpo.h "Memory"): out, out_ref, target and grad in backend memory; errors, z on
 * the host. */
static fr_status pdpo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    long long form;
    double beta, gout;
    FR_TRY(fr_go_param(in, "form", 0, 1, &form));
    FR_TRY(fr_go_scalar_f64(in, "beta", &beta));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    int64_t xr[2];
    const float *target, *o, *ro;
    FR_TRY(fr_gd_f32(d, in, "target", 2, xr, &target));
    if (xr[0] != PR || xr[1] != PD) return fr_fail(FR_ERR_FORMAT, "golden %s: in.target is not (%d, %d)", c->name, PR, PD);
    FR_TRY(fr_gd_exact(d, in, "out", FR_F32, 2, xr, (const void **)&o));
    FR_TRY(fr_gd_exact(d, in, "out_ref", FR_F32, 2, xr, (const void **)&ro));
    float *grad;
    FR_TRY(fr_gd_out_f32(d, out, "grad", 2, xr, NULL, &grad));
    double e[PR], er[PR], z[PN], term[PN];
    fr_pair_dpo_stats st;
    FR_TRY(fr_pair_dpo_rows(d->be, PN, PD, beta, (fr_pair_dpo_form)form, o, ro, target, gout, grad, e, er, z, &st));
    FR_TRY(fr_pair_dpo_loss(PN, beta, (fr_pair_dpo_form)form, e, er, gout, NULL, term, NULL, NULL));
    const int64_t r1[1] = {PR}, n1[1] = {PN};
    FR_TRY(out_f64(out, "e", 1, r1, e));
    FR_TRY(out_f64(out, "e_ref", 1, r1, er));
    FR_TRY(out_f64(out, "z", 1, n1, z));
    FR_TRY(out_f64(out, "term", 1, n1, term));
    return out_f64(out, "loss", 0, NULL, &st.loss);
}

/* --fast keeps the canonical row and flow-matching entries: bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}
#define PDPO(nm, arg, what) {"pair_dpo." nm, what, FR_GOLDEN_ALL_OPS, arg, T_EXACT, pdpo_in, pdpo_run}

const fr_golden_case fr_golden_cases_pair_dpo[] = {
    PDPO("diffusion", 0,
         "Diffusion-DPO pair loss, 4 pairs x D 6: beta 5000, z = -(beta/2)((e_w - e_l) - (e_ref_w - e_ref_l)), "
         "errors in float64, gradient through fm_loss (dpo.md §1, §4)"),
    PDPO("flow", PD_FLOW,
         "Flow-DPO pair loss, 4 pairs x D 6: beta 100, z = -(beta/2)((e_w - e_ref_w) - (e_l - e_ref_l)) "
         "(dpo.md §2, §4)"),
    PDPO("at_ref", PD_AT_REF, "Diffusion-DPO at theta = ref: every z zero, every term softplus(0) (dpo.md §5 check)"),
};
const size_t fr_golden_n_pair_dpo = sizeof fr_golden_cases_pair_dpo / sizeof fr_golden_cases_pair_dpo[0];
