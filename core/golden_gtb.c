/* Golden cases of guided trajectory balance (flowrl/gfn_guided.h, docs/algorithms/gfn-guided.md
 * §2; spec more.md §8.4): the loss L_TB against the mixed target, P_B's L_B (the intended and the
 * code's form), residuals and gradients on 6 trajectories, one past the clamp. Float64 host code
 * every backend shares (FR_GOLDEN_SHARED). */
#include <math.h>
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/gfn_guided.h"

#define T_SHARED {0.0f, 0.0f}

enum { GB = 6 };

static fr_status gtb_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(fr_gi_param(g, "pb_target", c->arg));
    const int64_t b[1] = {GB};
    float *zf, *zp, *ur, *ug;
    FR_TRY(fr_gi_normal(g, "z_fwd", 1, b, 1.0f, &zf));
    FR_TRY(fr_gi_normal(g, "z_pb", 1, b, 1.0f, &zp));
    FR_TRY(fr_gi_uniform(g, "u_logr", 1, b, -2.5f, 1.0f, &ur));
    FR_TRY(fr_gi_uniform(g, "u_lpg", 1, b, -4.0f, 0.0f, &ug));
    double fwd[GB], back[GB], pb[GB], logr[GB], lpg[GB];
    for (int i = 0; i < GB; i++) {
        fwd[i] = 2.0 * (double)zf[i];
        pb[i] = -fabs(2.0 * (double)zp[i]) - 0.5;
        logr[i] = (double)ur[i];
        back[i] = logr[i] + pb[i];
        lpg[i] = (double)ug[i];
    }
    fwd[0] = 14.0; /* |fwd − T| > 10: clamped, no gradient */
    FR_TRY(fr_gi_tensor(g, "fwd", FR_F64, 1, b, fwd, "2 in.z_fwd in float64; fwd[0] = 14"));
    FR_TRY(fr_gi_tensor(g, "pb", FR_F64, 1, b, pb, "-|2 in.z_pb| - 0.5 in float64"));
    FR_TRY(fr_gi_tensor(g, "logr", FR_F64, 1, b, logr, "in.u_logr widened"));
    FR_TRY(fr_gi_tensor(g, "back", FR_F64, 1, b, back, "logr + pb"));
    FR_TRY(fr_gi_tensor(g, "lpg", FR_F64, 1, b, lpg, "in.u_lpg widened"));
    return fr_gi_scalar_f64(g, "w", 0.5);
}

static fr_status gtb_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    const int64_t b[1] = {GB};
    const double *fwd, *back, *pb, *logr, *lpg;
    double w, l_tb, l_b, *res, *gf, *gb;
    FR_TRY(fr_go_exact(in, "fwd", FR_F64, 1, b, (const void **)&fwd));
    FR_TRY(fr_go_exact(in, "back", FR_F64, 1, b, (const void **)&back));
    FR_TRY(fr_go_exact(in, "pb", FR_F64, 1, b, (const void **)&pb));
    FR_TRY(fr_go_exact(in, "logr", FR_F64, 1, b, (const void **)&logr));
    FR_TRY(fr_go_exact(in, "lpg", FR_F64, 1, b, (const void **)&lpg));
    FR_TRY(fr_go_scalar_f64(in, "w", &w));
    FR_TRY(fr_go_out(out, "resid", FR_F64, 1, b, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_fwd", FR_F64, 1, b, (void **)&gf));
    FR_TRY(fr_go_out(out, "grad_back", FR_F64, 1, b, (void **)&gb));
    fr_gtb_batch gt = {GB, fwd, back, pb, logr, lpg, w, (fr_gtb_pb_target)c->arg};
    FR_TRY(fr_gtb_loss(&gt, &l_tb, &l_b, res, gf, gb));
    FR_TRY(fr_go_out_scalar_f64(out, "loss_tb", l_tb));
    return fr_go_out_scalar_f64(out, "loss_b", l_b);
}

const fr_golden_case fr_golden_cases_gtb[] = {
    {"gtb.loss_guided",
     "guided TB on 6 trajectories (row 0 past the clamp): T = w sg(back) + (1 - w)(log P_guide + log R), w 0.5, "
     "L_TB = mean min((fwd - T)^2, 100), P_B's L_B = mean min((sum log P_B - log P_guide)^2, 100); residuals, "
     "gradients (gfn-guided.md §2)",
     FR_GOLDEN_SHARED, FR_GTB_PB_GUIDE, T_SHARED, gtb_in, gtb_run},
    {"gtb.loss_guided_code",
     "guided TB with the code's P_B loss, min((log R + sum log P_B - log P_guide)^2, 100) (gfn-guided.md §2)",
     FR_GOLDEN_SHARED, FR_GTB_PB_CODE, T_SHARED, gtb_in, gtb_run},
};
const size_t fr_golden_n_gtb = sizeof fr_golden_cases_gtb / sizeof fr_golden_cases_gtb[0];
