/* Golden cases of Diffusion-DRO's hinge ranking loss (flowrl/dro.h, docs/algorithms/dro.md):
 * one micro-batch of B = 4 (expert, policy) row pairs, D = 5, from the model outputs of the
 * policy and the frozen base and the targets (ε̄ for the expert rows, the buffer's ε̂ for the
 * policy rows) to the four float64 row errors, diff, the hinge terms, the loss and its gradient
 * w.r.t. the policy's output: a general case (rows on both sides of the hinge) and θ = ref (every
 * term exactly the margin, the §19 check). Through the row_msd_f64 and fm_loss entries.
 *
 * out is formed near the target (out = target + in.dout) so the errors are O(0.1) as in
 * training; out_ref = out + in.dref moves diff by O(0.01), across the margin. */
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/dro.h"

enum { WB = 4, WD = 5, WR = 2 * WB };

static fr_status dro_in(const fr_golden_case *c, fr_golden_in *g)
{
    int64_t xr[2] = {WR, WD};
    FR_TRY(fr_gi_scalar_f64(g, "margin", FR_DRO_MARGIN));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "gout", "1/gradient_accumulation_steps with 2 accumulated micro-batches"));
    FR_TRY(fr_gi_note(g, "rows", "rows 0..B-1 expert (x_bar_t, eps_bar), B..2B-1 policy (buffer x_t, eps_hat)"));
    float *target, *dout, *dref;
    FR_TRY(fr_gi_normal(g, "target", 2, xr, 1.0f, &target));
    FR_TRY(fr_gi_normal(g, "dout", 2, xr, 0.3f, &dout));
    FR_TRY(fr_gi_normal(g, "dref", 2, xr, 0.05f, &dref));
    float out[WR * WD], oref[WR * WD];
    for (int j = 0; j < WR * WD; j++) {
        out[j] = target[j] + dout[j];
        oref[j] = c->arg ? out[j] : out[j] + dref[j];
    }
    FR_TRY(fr_gi_tensor(g, "out", FR_F32, 2, xr, out, "in.target + in.dout, float32 (the policy's eps prediction)"));
    return fr_gi_tensor(g, "out_ref", FR_F32, 2, xr, oref,
                        c->arg ? "in.out (theta = ref: every term is the margin)" : "in.out + in.dref, float32");
}

/* out, out_ref, target and grad in backend memory; e, diff, term on the host. */
static fr_status dro_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    double margin, gout;
    FR_TRY(fr_go_scalar_f64(in, "margin", &margin));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    int64_t xr[2];
    const float *o, *oref, *target;
    FR_TRY(fr_gd_f32(d, in, "target", 2, xr, &target));
    if (xr[0] % 2 != 0 || xr[0] > WR) return fr_fail(FR_ERR_FORMAT, "golden %s: in.target is not (2B, D), B <= %d", c->name, WB);
    FR_TRY(fr_gd_exact(d, in, "out", FR_F32, 2, xr, (const void **)&o));
    FR_TRY(fr_gd_exact(d, in, "out_ref", FR_F32, 2, xr, (const void **)&oref));
    const int64_t B = xr[0] / 2, D = xr[1];
    double *e, *diff, *term;
    float *grad;
    FR_TRY(fr_go_out(out, "e", FR_F64, 2, (int64_t[]){4, B}, (void **)&e));
    FR_TRY(fr_go_out(out, "diff", FR_F64, 1, &B, (void **)&diff));
    FR_TRY(fr_go_out(out, "term", FR_F64, 1, &B, (void **)&term));
    FR_TRY(fr_gd_out_f32(d, out, "grad", 2, xr, NULL, &grad));
    fr_dro_stats st;
    FR_TRY(fr_dro_loss(d->be, margin, B, D, o, oref, target, gout, grad, e, diff, term, &st));
    return fr_go_out_scalar_f64(out, "loss", st.loss);
}

/* --fast keeps the canonical row and flow-matching entries: bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_dro[] = {
    {"dro.loss", "Diffusion-DRO hinge B 4 (expert, policy) pairs, D 5: float64 row errors of the policy and the base, "
                 "diff, max(0, diff + 1e-3), loss, gradient w.r.t. the policy output (§19)",
     FR_GOLDEN_ALL_OPS, 0, T_EXACT, dro_in, dro_run},
    {"dro.at_ref", "Diffusion-DRO at theta = ref (out_ref = out): every diff 0 and every term the margin (§19 check)",
     FR_GOLDEN_ALL_OPS, 1, T_EXACT, dro_in, dro_run},
};
const size_t fr_golden_n_dro = sizeof fr_golden_cases_dro / sizeof fr_golden_cases_dro[0];
