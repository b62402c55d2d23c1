/* Golden cases of pi-Flow (docs/algorithms/piflow.md; flowrl/piflow.h): the GM policy (the x0-GM's
 * posterior at a later state, its velocity, the rollout and the velocity's row gradient) and the
 * imitation loss with its row gradient. Host code every backend runs (FR_GOLDEN_SHARED): float64. */
#include <stddef.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/gm.h"
#include "flowrl/piflow.h"

enum { PB = 6, PK = 4, PD = 2, PW = PK * PD + PK + 1 };

static fr_status policy_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t rw[2] = {PB, PW}, x2[2] = {PB, PD}, n1[1] = {PB};
    float *row;
    FR_TRY(fr_gi_normal(g, "row_f32", 2, rw, 1.0f, &row));
    for (int b = 0; b < PB; b++) row[b * PW + PW - 1] *= 0.5f;
    FR_TRY(fr_st_set_meta(g->f, "derived.in.row_f32", "drawn, then each row's last element (the log-std) halved"));
    FR_TRY(fr_gi_normal(g, "x_s_f32", 2, x2, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "x_f32", 2, x2, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "sigma_f32", 1, n1, 0.02f, 0.95f, NULL));
    FR_TRY(fr_gi_normal(g, "du_f32", 2, x2, 1.0f, NULL));
    const double ss[PB] = {1.0, 1.0, 1.0, 0.97, 0.8, 0.6};
    FR_TRY(fr_gi_tensor(g, "sigma_s", FR_F64, 1, n1, ss, "sigma_s of each row: 1 (the 1-NFE student) and three below"));
    FR_TRY(fr_gi_param(g, "k", PK));
    FR_TRY(fr_gi_param(g, "substeps", FR_PIFLOW_SUBSTEPS));
    return fr_gi_note(g, "policy", "row = [mu (K, D) | logits (K) | log-std]; alpha = 1 - sigma; eps 1e-6");
}

static fr_status policy_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    const int64_t rw[2] = {PB, PW}, x2[2] = {PB, PD}, n1[1] = {PB}, wk[2] = {PB, PK};
    const float *row, *xs, *x32, *sg, *du32;
    const double *ss;
    FR_TRY(fr_go_exact(in, "row_f32", FR_F32, 2, rw, (const void **)&row));
    FR_TRY(fr_go_exact(in, "x_s_f32", FR_F32, 2, x2, (const void **)&xs));
    FR_TRY(fr_go_exact(in, "x_f32", FR_F32, 2, x2, (const void **)&x32));
    FR_TRY(fr_go_exact(in, "sigma_f32", FR_F32, 1, n1, (const void **)&sg));
    FR_TRY(fr_go_exact(in, "du_f32", FR_F32, 2, x2, (const void **)&du32));
    FR_TRY(fr_go_exact(in, "sigma_s", FR_F64, 1, n1, (const void **)&ss));
    double *mean, *w, *pi, *pi_s, *roll, *roll0, *grad;
    FR_TRY(fr_go_out(out, "posterior_mean", FR_F64, 2, x2, (void **)&mean));
    FR_TRY(fr_go_out(out, "posterior_w", FR_F64, 2, wk, (void **)&w));
    FR_TRY(fr_go_out(out, "pi", FR_F64, 2, x2, (void **)&pi));
    FR_TRY(fr_go_out(out, "pi_at_source", FR_F64, 2, x2, (void **)&pi_s));
    FR_TRY(fr_go_out(out, "rollout_to_sigma", FR_F64, 2, x2, (void **)&roll));
    FR_TRY(fr_go_out(out, "rollout_to_0", FR_F64, 2, x2, (void **)&roll0));
    FR_TRY(fr_go_out(out, "grad_row", FR_F64, 2, rw, (void **)&grad));
    for (int b = 0; b < PB; b++) {
        fr_piflow_gm g;
        FR_TRY(fr_piflow_gm_from_row(&g, PK, PD, row + b * PW, xs + b * PD, ss[b]));
        double x[PD], du[PD];
        for (int c2 = 0; c2 < PD; c2++) {
            x[c2] = (double)x32[b * PD + c2];
            du[c2] = (double)du32[b * PD + c2];
        }
        fr_piflow_post p;
        fr_piflow_posterior(&g, x, (double)sg[b], &p);
        memcpy(mean + b * PD, p.mean, PD * sizeof(double));
        memcpy(w + b * PK, p.w, PK * sizeof(double));
        fr_piflow_pi(&g, x, (double)sg[b], pi + b * PD);
        fr_piflow_pi(&g, g.x_s, ss[b], pi_s + b * PD);
        memcpy(roll + b * PD, g.x_s, PD * sizeof(double));
        fr_piflow_rollout(&g, ss[b], (double)sg[b] < ss[b] ? (double)sg[b] : 0.0, FR_PIFLOW_SUBSTEPS, roll + b * PD);
        memcpy(roll0 + b * PD, g.x_s, PD * sizeof(double));
        fr_piflow_rollout(&g, ss[b], 0.0, FR_PIFLOW_SUBSTEPS, roll0 + b * PD);
        fr_piflow_pi_grad(&g, x, (double)sg[b], du, grad + b * PW);
    }
    return FR_OK;
}

enum { IB = 5, IK = 3, ID = 2, IW = IK * ID + IK + 1, IN = 2 };

static fr_status imit_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t rw[2] = {IB, IW}, x2[2] = {IB, ID}, nt[1] = {IB * IN};
    FR_TRY(fr_gi_normal(g, "rows_f32", 2, rw, 0.8f, NULL));
    FR_TRY(fr_gi_normal(g, "x_s_f32", 2, x2, 1.0f, NULL));
    FR_TRY(fr_gi_uniform(g, "t_f32", 1, nt, 1e-4f, 1.0f, NULL));
    FR_TRY(fr_gi_param(g, "k", IK));
    FR_TRY(fr_gi_param(g, "n_inter", IN));
    FR_TRY(fr_gi_param(g, "substeps", FR_PIFLOW_SUBSTEPS));
    return fr_gi_note(g, "teacher",
                      "u = (0.5 x0 - 0.2 x1 + t, 0.3 x0 + 0.9 x1 - 2 t) in float32, left to right; times (B, N) b-major");
}

static fr_status closed_teacher(void *user, int64_t B, const float *x, const float *t, float *u)
{
    (void)user;
    for (int64_t b = 0; b < B; b++) {
        u[b * 2] = 0.5f * x[b * 2] - 0.2f * x[b * 2 + 1] + t[b];
        u[b * 2 + 1] = 0.3f * x[b * 2] + 0.9f * x[b * 2 + 1] - 2.0f * t[b];
    }
    return FR_OK;
}

static fr_status imit_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    const int64_t rw[2] = {IB, IW}, x2[2] = {IB, ID}, nt1[1] = {IB * IN};
    const float *rows, *xs, *t32;
    FR_TRY(fr_go_exact(in, "rows_f32", FR_F32, 2, rw, (const void **)&rows));
    FR_TRY(fr_go_exact(in, "x_s_f32", FR_F32, 2, x2, (const void **)&xs));
    FR_TRY(fr_go_exact(in, "t_f32", FR_F32, 1, nt1, (const void **)&t32));
    double nt[IB * IN], loss = 0.0;
    for (int i = 0; i < IB * IN; i++) nt[i] = (double)t32[i];
    float *drow;
    FR_TRY(fr_go_out_f32(out, "grad_rows", 2, rw, &drow));
    FR_TRY(fr_piflow_imitation_loss(IK, ID, IB, IN, FR_PIFLOW_SUBSTEPS, rows, xs, nt, closed_teacher, NULL, &loss, drow));
    return fr_go_out_scalar_f64(out, "loss", loss);
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_piflow[] = {
    {"piflow.policy", "pi-Flow's GMFlow policy (K 4, D 2, 6 rows, sigma_s 1 .. 0.6): posterior mean and weights at "
                      "(x, sigma), pi there and at the source, the 128-substep rollout to sigma and to 0, and "
                      "d(du . pi)/d(row) (docs/algorithms/piflow.md §2)",
     FR_GOLDEN_SHARED, 0, T_SHARED, policy_in, policy_run},
    {"piflow.imitation", "pi-Flow's imitation loss (K 3, D 2, 5 x_s, N 2, a closed-form teacher): L and dL/d(rows) "
                         "(docs/algorithms/piflow.md §3)",
     FR_GOLDEN_SHARED, 0, T_SHARED, imit_in, imit_run},
};
const size_t fr_golden_n_piflow = sizeof fr_golden_cases_piflow / sizeof fr_golden_cases_piflow[0];
