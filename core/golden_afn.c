/* Golden cases of issue 22's adversarial flow networks (flowrl/afn.h, docs/algorithms/afn.md §2)
 * and FL-GFN on the set task (flowrl/flgfn.h, docs/algorithms/flgfn.md §2): residuals, losses and
 * gradients, float64 host code every backend shares (FR_GOLDEN_SHARED). */
#include <math.h>
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/afn.h"
#include "flowrl/flgfn.h"

#define T_SHARED {0.0f, 0.0f}

enum { AB = 5 };

static fr_status afn_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t bl[2] = {AB, 9}, b[1] = {AB};
    float *z, *ul, *uo;
    FR_TRY(fr_gi_normal(g, "z_lp", 2, bl, 1.0f, &z));
    FR_TRY(fr_gi_uniform(g, "u_len", 1, b, 0.0f, 1.0f, &ul));
    FR_TRY(fr_gi_uniform(g, "u_outcome", 1, b, 0.0f, 1.0f, &uo));
    double lp[AB * 9];
    int32_t nA[AB * 9], len[AB];
    int8_t out[AB];
    for (int i = 0; i < AB * 9; i++) {
        lp[i] = -fabs((double)z[i]) - 0.1;
        nA[i] = 9 - i % 9; /* tic-tac-toe: move t chooses among 9 − t empty cells */
    }
    for (int i = 0; i < AB; i++) {
        const int k = (int)(ul[i] * 5.0f);
        len[i] = 5 + (k < 4 ? k : 4);
        const int o = (int)(uo[i] * 3.0f);
        out[i] = (int8_t)((o < 2 ? o : 2) - 1);
    }
    len[0] = 9; /* a full board */
    out[0] = 0; /* a draw */
    FR_TRY(fr_gi_tensor(g, "lp", FR_F64, 2, bl, lp, "-|in.z_lp| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "n_legal", FR_I32, 2, bl, nA, "9 - t at move t"));
    FR_TRY(fr_gi_tensor(g, "len", FR_I32, 1, b, len, "5 + min(floor(in.u_len * 5), 4); len[0] = 9"));
    FR_TRY(fr_gi_tensor(g, "outcome", FR_I8, 1, b, out, "min(floor(in.u_outcome * 3), 2) - 1; outcome[0] = 0"));
    FR_TRY(fr_gi_scalar_f64(g, "log_z0", 0.3));
    return fr_gi_scalar_f64(g, "lambda", 10.0);
}

static fr_status afn_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    const int64_t bl[2] = {AB, 9}, b[1] = {AB};
    const double *lp;
    const int32_t *nA, *len;
    const int8_t *o;
    double z0, lambda, loss, gz, *res, *glp;
    FR_TRY(fr_go_exact(in, "lp", FR_F64, 2, bl, (const void **)&lp));
    FR_TRY(fr_go_exact(in, "n_legal", FR_I32, 2, bl, (const void **)&nA));
    FR_TRY(fr_go_exact(in, "len", FR_I32, 1, b, (const void **)&len));
    FR_TRY(fr_go_exact(in, "outcome", FR_I8, 1, b, (const void **)&o));
    FR_TRY(fr_go_scalar_f64(in, "log_z0", &z0));
    FR_TRY(fr_go_scalar_f64(in, "lambda", &lambda));
    FR_TRY(fr_go_out(out, "resid", FR_F64, 1, b, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_lp", FR_F64, 2, bl, (void **)&glp));
    FR_TRY(fr_afn_loss(AB, lp, nA, len, o, z0, lambda, &loss, res, glp, &gz));
    FR_TRY(fr_go_out_scalar_f64(out, "loss", loss));
    return fr_go_out_scalar_f64(out, "grad_log_z0", gz);
}

/* ---- FL-GFN: 3 trajectories of 4 transitions; arg = kind | pin << 4 ---------------------------- */
enum { FB = 3, FN = 4 };

static fr_status fl_in(const fr_golden_case *c, fr_golden_in *g)
{
    const int64_t bn[2] = {FB, FN}, bf[2] = {FB, FN + 1};
    FR_TRY(fr_gi_param(g, "kind", c->arg & 15));
    FR_TRY(fr_gi_param(g, "pin", c->arg >> 4));
    float *zf, *zb, *f, *e;
    FR_TRY(fr_gi_normal(g, "z_lpf", 2, bn, 1.0f, &zf));
    FR_TRY(fr_gi_normal(g, "z_lpb", 2, bn, 1.0f, &zb));
    FR_TRY(fr_gi_normal(g, "logf_f32", 2, bf, 1.0f, &f));
    FR_TRY(fr_gi_uniform(g, "energy_f32", 2, bn, -0.9f, 0.9f, &e));
    double lpf[FB * FN], lpb[FB * FN], logf[FB * (FN + 1)], en[FB * FN];
    for (int i = 0; i < FB * FN; i++) {
        lpf[i] = -fabs((double)zf[i]) - 0.1;
        lpb[i] = -fabs((double)zb[i]) - 0.1;
        en[i] = (double)e[i];
    }
    for (int i = 0; i < FB * (FN + 1); i++) logf[i] = (double)f[i];
    FR_TRY(fr_gi_tensor(g, "lpf", FR_F64, 2, bn, lpf, "-|in.z_lpf| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "lpb", FR_F64, 2, bn, lpb, "-|in.z_lpb| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "logf", FR_F64, 2, bf, logf, "in.logf_f32 widened"));
    return fr_gi_tensor(g, "energy", FR_F64, 2, bn, en, "in.energy_f32 widened");
}

static fr_status fl_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    const int64_t bn[2] = {FB, FN}, bf[2] = {FB, FN + 1};
    const double *lpf, *lpb, *logf, *en;
    FR_TRY(fr_go_exact(in, "lpf", FR_F64, 2, bn, (const void **)&lpf));
    FR_TRY(fr_go_exact(in, "lpb", FR_F64, 2, bn, (const void **)&lpb));
    FR_TRY(fr_go_exact(in, "logf", FR_F64, 2, bf, (const void **)&logf));
    FR_TRY(fr_go_exact(in, "energy", FR_F64, 2, bn, (const void **)&en));
    double *res, *gpf, *gpb, *gf, loss;
    FR_TRY(fr_go_out(out, "resid", FR_F64, 2, bn, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_lpf", FR_F64, 2, bn, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_lpb", FR_F64, 2, bn, (void **)&gpb));
    FR_TRY(fr_go_out(out, "grad_logf", FR_F64, 2, bf, (void **)&gf));
    FR_TRY(fr_flgfn_loss((fr_flgfn_loss_kind)(c->arg & 15), c->arg >> 4, FB, FN, lpf, lpb, logf, en, &loss, res, gpf, gpb, gf));
    return fr_go_out_scalar_f64(out, "loss", loss);
}

const fr_golden_case fr_golden_cases_afn[] = {
    {"afn.loss",
     "AFlowNet on 5 tic-tac-toe games of 5..9 moves: the residual log Z0 + sum_even - sum_odd (log pi + log|A|, the "
     "game-ending move excluded) - log R0, lambda 10; loss, residuals, gradients (afn.md §2)",
     FR_GOLDEN_SHARED, 0, T_SHARED, afn_in, afn_run},
    {"flgfn.loss_fldb",
     "FL-GFN forward-looking DB, terminal flow pinned: 3 set trajectories of 4 steps, residuals log F~(s) + log P_F - "
     "log P_B - log F~(s') + E, loss, gradients (flgfn.md §2)",
     FR_GOLDEN_SHARED, FR_FLGFN_FLDB | 1 << 4, T_SHARED, fl_in, fl_run},
    {"flgfn.loss_fldb_unpinned", "FL-GFN forward-looking DB with the public code's unpinned terminal flow (flgfn.md §2)",
     FR_GOLDEN_SHARED, FR_FLGFN_FLDB, T_SHARED, fl_in, fl_run},
    {"flgfn.loss_db", "FL-GFN's DB baseline: the last residual with log R(x) = -sum E in place of log F(x) (flgfn.md §2)",
     FR_GOLDEN_SHARED, FR_FLGFN_DB | 1 << 4, T_SHARED, fl_in, fl_run},
};
const size_t fr_golden_n_afn = sizeof fr_golden_cases_afn / sizeof fr_golden_cases_afn[0];
