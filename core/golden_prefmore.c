/* Golden cases of issue 21's preference variants: Flow-RWR's weights and weighted flow-matching
 * loss (flowrl/rwr.h, docs/algorithms/flow-rwr.md §3) and DDO's loss (flowrl/ddo.h,
 * docs/algorithms/ddo.md §3). The losses run the row_msd_f64 and fm_loss entries; the weights are
 * host code. */
#include <stddef.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/ddo.h"
#include "flowrl/rwr.h"
#include "flowrl/smpo.h"

enum { RW_G = 3, RW_N = 2 * RW_G, RW_K = 2, RW_R = RW_K * RW_N, RW_D = 5 };

static fr_status rwr_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t n1[1] = {RW_N}, xr[2] = {RW_R, RW_D};
    FR_TRY(fr_gi_param(g, "weighting", FR_RWR_SOFTMAX));
    FR_TRY(fr_gi_param(g, "G", RW_G));
    FR_TRY(fr_gi_scalar_f64(g, "tau", 0.5));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "rows", "row r = k*N + s is sample s at draw k (K 2); gout = 1/grad_accum with 2 batches"));
    FR_TRY(fr_gi_uniform(g, "reward", 1, n1, 0.0f, 1.0f, NULL));
    float *target, *dv;
    FR_TRY(fr_gi_normal(g, "target", 2, xr, 1.0f, &target));
    FR_TRY(fr_gi_normal(g, "d_v", 2, xr, 0.5f, &dv));
    float v[RW_R * RW_D];
    for (int j = 0; j < RW_R * RW_D; j++) v[j] = target[j] + dv[j];
    return fr_gi_tensor(g, "v", FR_F32, 2, xr, v, "in.target + in.d_v, float32: the policy's output");
}

static fr_status out_f64(fr_st_file *out, const char *name, int ndim, const int64_t *shape, const double *v, int64_t n)
{
    void *p;
    FR_TRY(fr_go_out(out, name, FR_F64, ndim, shape, &p));
    memcpy(p, v, (size_t)n * sizeof(double));
    return FR_OK;
}

static fr_status rwr_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    long long mode, G;
    double tau, gout;
    FR_TRY(fr_go_param(in, "weighting", 0, 1, &mode));
    FR_TRY(fr_go_param(in, "G", 1, RW_N, &G));
    FR_TRY(fr_go_scalar_f64(in, "tau", &tau));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    const int64_t n1[1] = {RW_N}, r1[1] = {RW_R}, xr[2] = {RW_R, RW_D};
    const float *reward, *target, *v;
    FR_TRY(fr_go_exact(in, "reward", FR_F32, 1, n1, (const void **)&reward));
    FR_TRY(fr_gd_exact(d, in, "target", FR_F32, 2, xr, (const void **)&target));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, xr, (const void **)&v));
    (void)c;
    float *grad;
    FR_TRY(fr_gd_out_f32(d, out, "grad", 2, xr, NULL, &grad));
    double w[RW_N], rw[RW_R], e[RW_R];
    FR_TRY(fr_rwr_weights((fr_rwr_weighting)mode, tau, RW_N, G, reward, w));
    for (int r = 0; r < RW_R; r++) rw[r] = w[r % RW_N];
    fr_rwr_stats st;
    FR_TRY(fr_rwr_rows(d->be, RW_R, RW_D, rw, v, target, gout, grad, e, &st));
    FR_TRY(out_f64(out, "w", 1, n1, w, RW_N));
    FR_TRY(out_f64(out, "e", 1, r1, e, RW_R));
    return out_f64(out, "loss", 0, NULL, &st.loss, 1);
}

/* ---- DDO ---------------------------------------------------------------------------------- */

enum { DO_P = 3, DO_N = 4, DO_R = DO_P + DO_N, DO_D = 5 };

static fr_status ddo_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t xr[2] = {DO_R, DO_D};
    FR_TRY(fr_gi_param(g, "n_pos", DO_P));
    FR_TRY(fr_gi_scalar_f64(g, "alpha", 4.0));
    FR_TRY(fr_gi_scalar_f64(g, "beta", 3.0));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "rows", "rows [3 positives (data) | 4 negatives (the reference's samples)]"));
    float *target, *dv, *dr;
    FR_TRY(fr_gi_normal(g, "target", 2, xr, 1.0f, &target));
    FR_TRY(fr_gi_normal(g, "d_out", 2, xr, 0.5f, &dv));
    FR_TRY(fr_gi_normal(g, "d_ref", 2, xr, 0.3f, &dr));
    float o[DO_R * DO_D], ro[DO_R * DO_D];
    for (int j = 0; j < DO_R * DO_D; j++) {
        o[j] = target[j] + dv[j];
        ro[j] = o[j] + dr[j];
    }
    FR_TRY(fr_gi_tensor(g, "out", FR_F32, 2, xr, o, "in.target + in.d_out, float32: the policy's output"));
    return fr_gi_tensor(g, "out_ref", FR_F32, 2, xr, ro, "in.out + in.d_ref: the reference's output");
}

static fr_status ddo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    long long np;
    double alpha, beta, gout;
    FR_TRY(fr_go_param(in, "n_pos", 1, DO_R - 1, &np));
    FR_TRY(fr_go_scalar_f64(in, "alpha", &alpha));
    FR_TRY(fr_go_scalar_f64(in, "beta", &beta));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    const int64_t r1[1] = {DO_R}, xr[2] = {DO_R, DO_D};
    const float *target, *o, *ro;
    FR_TRY(fr_gd_exact(d, in, "target", FR_F32, 2, xr, (const void **)&target));
    FR_TRY(fr_gd_exact(d, in, "out", FR_F32, 2, xr, (const void **)&o));
    FR_TRY(fr_gd_exact(d, in, "out_ref", FR_F32, 2, xr, (const void **)&ro));
    float *grad;
    FR_TRY(fr_gd_out_f32(d, out, "grad", 2, xr, NULL, &grad));
    double e[DO_R], er[DO_R];
    fr_ddo_stats st;
    FR_TRY(fr_ddo_rows(d->be, np, DO_R - np, DO_D, alpha, beta, o, ro, target, gout, grad, e, er, &st));
    FR_TRY(out_f64(out, "e", 1, r1, e, DO_R));
    FR_TRY(out_f64(out, "e_ref", 1, r1, er, DO_R));
    return out_f64(out, "loss", 0, NULL, &st.loss, 1);
}

/* ---- SmPO ---------------------------------------------------------------------------------- */

enum { SM_N = 4, SM_R = 2 * SM_N, SM_D = 5 };

static fr_status smpo_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    const int64_t xr[2] = {SM_R, SM_D}, n1[1] = {SM_N};
    FR_TRY(fr_gi_scalar_f64(g, "beta", 2000.0));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "rows", "rows [4 preferred | 4 rejected]; target: the inverted noise eps~ of each row"));
    const double p[SM_N] = {0.5744802, 0.5, 0.62, 0.7310585786300049}; /* the spec's example, a tie, two more */
    FR_TRY(fr_gi_tensor(g, "p", FR_F64, 1, n1, p, "the pairs' smoothed labels (a tie: no gradient)"));
    float *target, *dv, *dr;
    FR_TRY(fr_gi_normal(g, "target", 2, xr, 1.0f, &target));
    FR_TRY(fr_gi_normal(g, "d_out", 2, xr, 0.05f, &dv));
    FR_TRY(fr_gi_normal(g, "d_ref", 2, xr, 0.05f, &dr));
    float o[SM_R * SM_D], ro[SM_R * SM_D];
    for (int j = 0; j < SM_R * SM_D; j++) {
        o[j] = target[j] + dv[j];
        ro[j] = o[j] + dr[j];
    }
    FR_TRY(fr_gi_tensor(g, "out", FR_F32, 2, xr, o, "in.target + in.d_out, float32: the policy's eps prediction"));
    return fr_gi_tensor(g, "out_ref", FR_F32, 2, xr, ro, "in.out + in.d_ref: the reference's");
}

static fr_status smpo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    double beta, gout;
    FR_TRY(fr_go_scalar_f64(in, "beta", &beta));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    const int64_t n1[1] = {SM_N}, r1[1] = {SM_R}, xr[2] = {SM_R, SM_D};
    const double *p;
    const float *target, *o, *ro;
    FR_TRY(fr_go_exact(in, "p", FR_F64, 1, n1, (const void **)&p));
    FR_TRY(fr_gd_exact(d, in, "target", FR_F32, 2, xr, (const void **)&target));
    FR_TRY(fr_gd_exact(d, in, "out", FR_F32, 2, xr, (const void **)&o));
    FR_TRY(fr_gd_exact(d, in, "out_ref", FR_F32, 2, xr, (const void **)&ro));
    float *grad;
    FR_TRY(fr_gd_out_f32(d, out, "grad", 2, xr, NULL, &grad));
    double e[SM_R], er[SM_R], z[SM_N];
    fr_pair_dpo_stats st;
    FR_TRY(fr_smpo_rows(d->be, SM_N, SM_D, beta, p, o, ro, target, gout, grad, e, er, z, &st));
    FR_TRY(out_f64(out, "e", 1, r1, e, SM_R));
    FR_TRY(out_f64(out, "e_ref", 1, r1, er, SM_R));
    FR_TRY(out_f64(out, "z", 1, n1, z, SM_N));
    return out_f64(out, "loss", 0, NULL, &st.loss, 1);
}

/* --fast keeps the canonical row and flow-matching entries: bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_prefmore[] = {
    {"rwr.loss",
     "Flow-RWR: G * softmax(r / 0.5) weights of 2 groups of 3 samples, the weighted flow-matching loss of 12 rows "
     "x D 5 (K 2 draws) and its gradient (flow-rwr.md §1, §3)",
     FR_GOLDEN_ALL_OPS, 0, T_EXACT, rwr_in, rwr_run},
    {"ddo.loss",
     "DDO: -mean_pos log sigmoid(beta D) - alpha mean_neg log sigmoid(-beta D), D = e_ref - e, 3 data rows and 4 "
     "reference rows x D 5, alpha 4, beta 3, and its gradient (ddo.md §1)",
     FR_GOLDEN_ALL_OPS, 0, T_EXACT, ddo_in, ddo_run},
    {"smpo.loss",
     "SmPO: -mean log sigmoid(-(beta/2)(2p - 1)10 ((e_w - e_l) - (e_ref_w - e_ref_l))) of 4 pairs x D 5 (p: the spec's "
     "example, a tie and two more), beta 2000, and its gradient (smpo.md §1)",
     FR_GOLDEN_ALL_OPS, 0, T_EXACT, smpo_in, smpo_run},
};
const size_t fr_golden_n_prefmore = sizeof fr_golden_cases_prefmore / sizeof fr_golden_cases_prefmore[0];
