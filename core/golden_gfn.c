/* Golden cases of the GFlowNet pieces (docs/algorithms/gfn.md, docs/envs.md): HyperGrid's
 * transitions, masks, encoding and reward on a batch of states and actions, and each loss of
 * flowrl/gfn.h (value, residuals, gradients) on a batch of 4 trajectories of up to 5 actions,
 * and FM's on a few states' edge flows.
 * Host code every backend runs (FR_GOLDEN_SHARED): float64 losses, float32 rewards. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"

enum { HG_N = 16, HG_D = 3, HG_H = 8, HG_A = HG_D + 1, GB = 4, GL = 5 };

static fr_status hg_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_param(g, "ndim", HG_D));
    FR_TRY(fr_gi_param(g, "height", HG_H));
    int64_t sh[2] = {HG_N, HG_D}, ah[1] = {HG_N};
    float *u, *ua;
    FR_TRY(fr_gi_uniform(g, "u_state", 2, sh, 0.0f, 1.0f, &u));
    FR_TRY(fr_gi_uniform(g, "u_action", 1, ah, 0.0f, 1.0f, &ua));
    int32_t s[HG_N * HG_D], a[HG_N];
    for (int i = 0; i < HG_N * HG_D; i++) s[i] = (int32_t)(u[i] * HG_H) < HG_H ? (int32_t)(u[i] * HG_H) : HG_H - 1;
    s[0] = s[1] = s[2] = 0;         /* s0 */
    s[3] = 1, s[4] = 6, s[5] = 1;   /* a mode cell (band {1, 6} at H 8) */
    s[6] = HG_H - 1, s[7] = 0, s[8] = 3; /* an edge: no increment of d0 */
    for (int i = 0; i < HG_N; i++) a[i] = (int32_t)(ua[i] * HG_A) < HG_A ? (int32_t)(ua[i] * HG_A) : HG_A - 1;
    a[2] = 0; /* the edge row tries the masked increment */
    FR_TRY(fr_gi_tensor(g, "state", FR_I32, 2, sh, s,
                        "min(floor(in.u_state * 8), 7); rows 0..2 set to s0, the mode (1, 6, 1) and the edge (7, 0, 3)"));
    return fr_gi_tensor(g, "action", FR_I32, 1, ah, a, "min(floor(in.u_action * 4), 3); row 2 set to 0 (masked there)");
}

/* next = step(s, a) where the forward mask allows a non-exit a, else s itself. */
static fr_status hg_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    int64_t sh[2] = {HG_N, HG_D}, ah[1] = {HG_N}, fh[2] = {HG_N, HG_A}, oh[2] = {HG_N, HG_D * HG_H};
    const int32_t *s, *a;
    FR_TRY(fr_go_exact(in, "state", FR_I32, 2, sh, (const void **)&s));
    FR_TRY(fr_go_exact(in, "action", FR_I32, 1, ah, (const void **)&a));
    fr_hypergrid_opts o;
    FR_TRY(fr_env_defaults(&fr_env_hypergrid, &o));
    o.ndim = HG_D;
    o.height = HG_H;
    fr_env e;
    FR_TRY(fr_env_create(&fr_env_hypergrid, &o, &e));
    int32_t *next, *idx;
    uint8_t *fwd, *bwd, *mode;
    float *rew, *obs;
    double *lr;
    fr_status st = fr_go_out(out, "next", FR_I32, 2, sh, (void **)&next);
    if (st == FR_OK) st = fr_go_out(out, "forward_mask", FR_U8, 2, fh, (void **)&fwd);
    if (st == FR_OK) st = fr_go_out(out, "backward_mask", FR_U8, 2, sh, (void **)&bwd);
    if (st == FR_OK) st = fr_go_out(out, "reward", FR_F32, 1, ah, (void **)&rew);
    if (st == FR_OK) st = fr_go_out(out, "log_reward", FR_F64, 1, ah, (void **)&lr);
    if (st == FR_OK) st = fr_go_out(out, "obs", FR_F32, 2, oh, (void **)&obs);
    if (st == FR_OK) st = fr_go_out(out, "index", FR_I32, 1, ah, (void **)&idx);
    if (st == FR_OK) st = fr_go_out(out, "is_mode", FR_U8, 1, ah, (void **)&mode);
    for (int i = 0; i < HG_N && st == FR_OK; i++) {
        const int32_t *si = s + i * HG_D;
        for (int k = 0; k < HG_D; k++)
            if (si[k] < 0 || si[k] >= HG_H) st = fr_fail(FR_ERR_FORMAT, "golden %s: in.state[%d] is off the grid", c->name, i);
        if (a[i] < 0 || a[i] >= HG_A) st = fr_fail(FR_ERR_FORMAT, "golden %s: in.action[%d] is not an action", c->name, i);
        if (st != FR_OK) break;
        e.gfn->forward_mask(&e, si, fwd + i * HG_A);
        e.gfn->backward_mask(&e, si, bwd + i * HG_D);
        if (a[i] != e.exit_action && fwd[i * HG_A + a[i]]) e.gfn->step(&e, si, a[i], next + i * HG_D);
        else memcpy(next + i * HG_D, si, sizeof(int32_t) * HG_D);
        rew[i] = fr_hypergrid_reward(&o, si);
        lr[i] = e.gfn->log_reward(&e, si);
        e.gfn->encode(&e, si, obs + i * HG_D * HG_H);
        idx[i] = (int32_t)e.gfn->index(&e, si);
        mode[i] = (uint8_t)e.gfn->is_mode(&e, si);
    }
    fr_env_free(&e);
    return st;
}

static fr_status loss_in(const fr_golden_case *c, fr_golden_in *g)
{
    int64_t bl[2] = {GB, GL}, b[1] = {GB};
    float *zpf, *zpb, *zf, *zr, *ul;
    FR_TRY(fr_gi_param_str(g, "loss", fr_gfn_loss_name((fr_gfn_loss_kind)(c->arg & 15))));
    FR_TRY(fr_gi_normal(g, "z_logpf", 2, bl, 1.0f, &zpf));
    FR_TRY(fr_gi_normal(g, "z_logpb", 2, bl, 1.0f, &zpb));
    FR_TRY(fr_gi_normal(g, "logf_f32", 2, bl, 1.0f, &zf));
    FR_TRY(fr_gi_normal(g, "logr_f32", 1, b, 1.0f, &zr));
    FR_TRY(fr_gi_uniform(g, "u_len", 1, b, 0.0f, 1.0f, &ul));
    double pf[GB * GL], pb[GB * GL], f[GB * GL], r[GB];
    int32_t len[GB];
    for (int i = 0; i < GB * GL; i++) {
        pf[i] = -fabs((double)zpf[i]) - 0.1; /* log-probabilities: negative */
        pb[i] = -fabs((double)zpb[i]) - 0.1;
        f[i] = (double)zf[i];
    }
    for (int i = 0; i < GB; i++) {
        r[i] = (double)zr[i];
        len[i] = 1 + ((int32_t)(ul[i] * GL) < GL ? (int32_t)(ul[i] * GL) : GL - 1);
    }
    len[0] = GL; /* one full-length trajectory */
    len[1] = 1;  /* and one that exits at s0 */
    FR_TRY(fr_gi_tensor(g, "logpf", FR_F64, 2, bl, pf, "-|in.z_logpf| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "logpb", FR_F64, 2, bl, pb, "-|in.z_logpb| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "logf", FR_F64, 2, bl, f, "in.logf_f32 widened"));
    FR_TRY(fr_gi_tensor(g, "logr", FR_F64, 1, b, r, "in.logr_f32 widened"));
    FR_TRY(fr_gi_tensor(g, "len", FR_I32, 1, b, len, "1 + min(floor(in.u_len * 5), 4); len[0] = 5, len[1] = 1"));
    FR_TRY(fr_gi_scalar_f64(g, "log_z", 0.3));
    return fr_gi_scalar_f64(g, "lambda", 0.9);
}

static fr_status loss_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    int64_t bl[2] = {GB, GL}, b[1] = {GB};
    const double *pf, *pb, *f, *r;
    const int32_t *len;
    double log_z, lambda;
    FR_TRY(fr_go_exact(in, "logpf", FR_F64, 2, bl, (const void **)&pf));
    FR_TRY(fr_go_exact(in, "logpb", FR_F64, 2, bl, (const void **)&pb));
    FR_TRY(fr_go_exact(in, "logf", FR_F64, 2, bl, (const void **)&f));
    FR_TRY(fr_go_exact(in, "logr", FR_F64, 1, b, (const void **)&r));
    FR_TRY(fr_go_exact(in, "len", FR_I32, 1, b, (const void **)&len));
    FR_TRY(fr_go_scalar_f64(in, "log_z", &log_z));
    FR_TRY(fr_go_scalar_f64(in, "lambda", &lambda));
    const fr_gfn_loss_kind k = (fr_gfn_loss_kind)c->arg;
    fr_gfn_batch gb = {.B = GB, .L = GL, .len = len, .logpf = pf, .logpb = pb, .logf = f, .logr = r, .log_z = log_z, .lambda = lambda};
    double *res, *gpf, *gpb, *gf, loss;
    FR_TRY(fr_go_out(out, "resid", FR_F64, k == FR_GFN_DB ? 2 : 1, k == FR_GFN_DB ? bl : b, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_logpf", FR_F64, 2, bl, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_logpb", FR_F64, 2, bl, (void **)&gpb));
    FR_TRY(fr_go_out(out, "grad_logf", FR_F64, 2, bl, (void **)&gf));
    fr_gfn_grad g = {.logpf = gpf, .logpb = gpb, .logf = gf};
    FR_TRY(fr_gfn_loss(k, &gb, &loss, res, &g));
    FR_TRY(fr_go_out_scalar_f64(out, "loss", loss));
    return fr_go_out_scalar_f64(out, "grad_log_z", g.log_z);
}

/* The cases beyond the first piece: arg = loss kind | forward-looking << 4 | weighting << 8 |
 * regression << 12; the batch of loss_in plus every state's log R, the exit log-probs (MDB) and
 * a prior's log-probs (RTB), Linex α 0.5, RTB β 1.5. */
#define GX(kind, fl, w, g) ((kind) | (fl) << 4 | (w) << 8 | (g) << 12)

static fr_status lossx_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(loss_in(c, g));
    int64_t bl[2] = {GB, GL};
    float *zr, *zx, *zp;
    FR_TRY(fr_gi_param(g, "forward_looking", (c->arg >> 4) & 1));
    FR_TRY(fr_gi_param_str(g, "weighting", fr_gfn_weighting_name((fr_gfn_subtb_weighting)((c->arg >> 8) & 15))));
    FR_TRY(fr_gi_param_str(g, "regression", fr_gfn_regression_name((fr_gfn_regression)((c->arg >> 12) & 15))));
    FR_TRY(fr_gi_normal(g, "logrs_f32", 2, bl, 1.0f, &zr));
    FR_TRY(fr_gi_normal(g, "z_logpf_exit", 2, bl, 1.0f, &zx));
    FR_TRY(fr_gi_normal(g, "z_logprior", 2, bl, 1.0f, &zp));
    double rs[GB * GL], px[GB * GL], pr[GB * GL];
    for (int i = 0; i < GB * GL; i++) {
        rs[i] = (double)zr[i];
        px[i] = -fabs((double)zx[i]) - 0.1;
        pr[i] = -fabs((double)zp[i]) - 0.1;
    }
    FR_TRY(fr_gi_tensor(g, "logrs", FR_F64, 2, bl, rs, "in.logrs_f32 widened"));
    FR_TRY(fr_gi_tensor(g, "logpf_exit", FR_F64, 2, bl, px, "-|in.z_logpf_exit| - 0.1 in float64"));
    FR_TRY(fr_gi_tensor(g, "logprior", FR_F64, 2, bl, pr, "-|in.z_logprior| - 0.1 in float64"));
    FR_TRY(fr_gi_scalar_f64(g, "linex_alpha", 0.5));
    return fr_gi_scalar_f64(g, "beta", 1.5);
}

static fr_status lossx_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)d;
    int64_t bl[2] = {GB, GL}, b[1] = {GB};
    const double *pf, *pb, *f, *r, *rs, *px, *pr;
    const int32_t *len;
    double log_z, lambda, alpha, beta;
    FR_TRY(fr_go_exact(in, "logpf", FR_F64, 2, bl, (const void **)&pf));
    FR_TRY(fr_go_exact(in, "logpb", FR_F64, 2, bl, (const void **)&pb));
    FR_TRY(fr_go_exact(in, "logf", FR_F64, 2, bl, (const void **)&f));
    FR_TRY(fr_go_exact(in, "logr", FR_F64, 1, b, (const void **)&r));
    FR_TRY(fr_go_exact(in, "len", FR_I32, 1, b, (const void **)&len));
    FR_TRY(fr_go_exact(in, "logrs", FR_F64, 2, bl, (const void **)&rs));
    FR_TRY(fr_go_exact(in, "logpf_exit", FR_F64, 2, bl, (const void **)&px));
    FR_TRY(fr_go_exact(in, "logprior", FR_F64, 2, bl, (const void **)&pr));
    FR_TRY(fr_go_scalar_f64(in, "log_z", &log_z));
    FR_TRY(fr_go_scalar_f64(in, "lambda", &lambda));
    FR_TRY(fr_go_scalar_f64(in, "linex_alpha", &alpha));
    FR_TRY(fr_go_scalar_f64(in, "beta", &beta));
    const fr_gfn_loss_kind k = (fr_gfn_loss_kind)(c->arg & 15);
    fr_gfn_batch gb = {.B = GB, .L = GL, .len = len, .logpf = pf, .logpb = pb, .logf = f, .logr = r, .log_z = log_z,
                       .lambda = lambda, .logrs = rs, .logpf_exit = px, .logprior = pr,
                       .forward_looking = (c->arg >> 4) & 1,
                       .weighting = (fr_gfn_subtb_weighting)((c->arg >> 8) & 15),
                       .regression = (fr_gfn_regression)((c->arg >> 12) & 15), .linex_alpha = alpha, .beta = beta};
    const int per_edge = k == FR_GFN_DB || k == FR_GFN_MDB;
    double *res, *gpf, *gpb, *gf, *gx, loss;
    FR_TRY(fr_go_out(out, "resid", FR_F64, per_edge ? 2 : 1, per_edge ? bl : b, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_logpf", FR_F64, 2, bl, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_logpb", FR_F64, 2, bl, (void **)&gpb));
    FR_TRY(fr_go_out(out, "grad_logf", FR_F64, 2, bl, (void **)&gf));
    FR_TRY(fr_go_out(out, "grad_logpf_exit", FR_F64, 2, bl, (void **)&gx));
    fr_gfn_grad g = {.logpf = gpf, .logpb = gpb, .logf = gf, .logpf_exit = gx};
    FR_TRY(fr_gfn_loss(k, &gb, &loss, res, &g));
    FR_TRY(fr_go_out_scalar_f64(out, "loss", loss));
    return fr_go_out_scalar_f64(out, "grad_log_z", g.log_z);
}

/* OP-GFN (docs/algorithms/gfn.md §9): the batch of loss_in, pairs perm = (1, 3, 0, 2) and utilities
 * (0.5, −1, 2, 2), so the pair (3, 2) is a tie (label ½) and the others are 1, 0, 1. */
static const int64_t k_op_perm[GB] = {1, 3, 0, 2};
static const double k_op_util[GB] = {0.5, -1.0, 2.0, 2.0};

static fr_status op_in(const fr_golden_case *c, fr_golden_in *g)
{
    FR_TRY(loss_in(c, g));
    FR_TRY(fr_gi_tensor(g, "perm", FR_I64, 1, (int64_t[]){GB}, k_op_perm, "the pairing: (1, 3, 0, 2)"));
    return fr_gi_tensor(g, "util", FR_F64, 1, (int64_t[]){GB}, k_op_util, "(0.5, -1, 2, 2): one tie, pair (3, 2)");
}

static fr_status op_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    int64_t bl[2] = {GB, GL}, b[1] = {GB};
    const double *pf, *pb, *r, *u;
    const int64_t *perm;
    const int32_t *len;
    FR_TRY(fr_go_exact(in, "logpf", FR_F64, 2, bl, (const void **)&pf));
    FR_TRY(fr_go_exact(in, "logpb", FR_F64, 2, bl, (const void **)&pb));
    FR_TRY(fr_go_exact(in, "logr", FR_F64, 1, b, (const void **)&r));
    FR_TRY(fr_go_exact(in, "len", FR_I32, 1, b, (const void **)&len));
    FR_TRY(fr_go_exact(in, "perm", FR_I64, 1, b, (const void **)&perm));
    FR_TRY(fr_go_exact(in, "util", FR_F64, 1, b, (const void **)&u));
    fr_gfn_batch gb = {.B = GB, .L = GL, .len = len, .logpf = pf, .logpb = pb, .logr = r, .perm = perm, .util = u};
    double *res, *gpf, *gpb, loss;
    FR_TRY(fr_go_out(out, "resid", FR_F64, 1, b, (void **)&res));
    FR_TRY(fr_go_out(out, "grad_logpf", FR_F64, 2, bl, (void **)&gpf));
    FR_TRY(fr_go_out(out, "grad_logpb", FR_F64, 2, bl, (void **)&gpb));
    fr_gfn_grad g = {.logpf = gpf, .logpb = gpb};
    FR_TRY(fr_gfn_loss(FR_GFN_OP, &gb, &loss, res, &g));
    return fr_go_out_scalar_f64(out, "loss", loss);
}

/* FM: 3 states with 1, 2, 3 parents and 2, 3, 4 valid actions; 4 terminating states; α 1. */
enum { FM_M = 3, FM_IN = 6, FM_OUT = 9, FM_K = 4 };
static const int32_t k_fm_in[FM_M] = {1, 2, 3}, k_fm_out[FM_M] = {2, 3, 4};

static fr_status fm_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t ni[1] = {FM_IN}, no[1] = {FM_OUT}, nk[1] = {FM_K}, nm[1] = {FM_M};
    FR_TRY(fr_gi_normal(g, "fin_f32", 1, ni, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "fout_f32", 1, no, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "fexit_f32", 1, nk, 1.0f, NULL));
    FR_TRY(fr_gi_normal(g, "logr_f32", 1, nk, 1.0f, NULL));
    FR_TRY(fr_gi_tensor(g, "n_in", FR_I32, 1, nm, k_fm_in, "incoming flows per state: 1, 2, 3"));
    FR_TRY(fr_gi_tensor(g, "n_out", FR_I32, 1, nm, k_fm_out, "outgoing flows per state (exit included): 2, 3, 4"));
    return fr_gi_scalar_f64(g, "alpha", 1.0);
}

/* The float32 draws widened to float64 here (the loss's precision). */
static fr_status fm_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    (void)d;
    int64_t ni[1] = {FM_IN}, no[1] = {FM_OUT}, nk[1] = {FM_K}, nm[1] = {FM_M};
    const float *fi, *fo, *fx, *lr;
    const int32_t *n_in, *n_out;
    double alpha;
    FR_TRY(fr_go_exact(in, "fin_f32", FR_F32, 1, ni, (const void **)&fi));
    FR_TRY(fr_go_exact(in, "fout_f32", FR_F32, 1, no, (const void **)&fo));
    FR_TRY(fr_go_exact(in, "fexit_f32", FR_F32, 1, nk, (const void **)&fx));
    FR_TRY(fr_go_exact(in, "logr_f32", FR_F32, 1, nk, (const void **)&lr));
    FR_TRY(fr_go_exact(in, "n_in", FR_I32, 1, nm, (const void **)&n_in));
    FR_TRY(fr_go_exact(in, "n_out", FR_I32, 1, nm, (const void **)&n_out));
    FR_TRY(fr_go_scalar_f64(in, "alpha", &alpha));
    int64_t si = 0, so = 0;
    for (int m = 0; m < FM_M; m++) {
        si += n_in[m];
        so += n_out[m];
    }
    if (si != FM_IN || so != FM_OUT) return fr_fail(FR_ERR_FORMAT, "golden %s: in.n_in / in.n_out do not sum to %d / %d", c->name, FM_IN, FM_OUT);
    double fin[FM_IN], fout[FM_OUT], fex[FM_K], logr[FM_K], loss;
    for (int i = 0; i < FM_IN; i++) fin[i] = fi[i];
    for (int i = 0; i < FM_OUT; i++) fout[i] = fo[i];
    for (int i = 0; i < FM_K; i++) {
        fex[i] = fx[i];
        logr[i] = lr[i];
    }
    double *gi, *go, *gx;
    FR_TRY(fr_go_out(out, "grad_fin", FR_F64, 1, ni, (void **)&gi));
    FR_TRY(fr_go_out(out, "grad_fout", FR_F64, 1, no, (void **)&go));
    FR_TRY(fr_go_out(out, "grad_fexit", FR_F64, 1, nk, (void **)&gx));
    FR_TRY(fr_gfn_fm_loss(FM_M, n_in, fin, n_out, fout, FM_K, fex, logr, alpha, &loss, gi, go, gx));
    return fr_go_out_scalar_f64(out, "loss", loss);
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_gfn[] = {
    {"gfn.hypergrid_step", "HyperGrid D 3, H 8: 16 states x action: next state, forward / backward masks, OriginalReward "
                           "(float32), log R (float64), K-hot encoding, index, mode flag (docs/envs.md §1)",
     FR_GOLDEN_SHARED, 0, T_SHARED, hg_in, hg_run},
    {"gfn.loss_tb", "GFlowNet TB on 4 trajectories of <= 5 actions: loss, residuals, gradients (docs/algorithms/gfn.md §3)",
     FR_GOLDEN_SHARED, FR_GFN_TB, T_SHARED, loss_in, loss_run},
    {"gfn.loss_db", "GFlowNet DB: loss, per-transition residuals, gradients (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     FR_GFN_DB, T_SHARED, loss_in, loss_run},
    {"gfn.loss_subtb", "GFlowNet SubTB geometric_within, lambda 0.9: loss, whole-trajectory residuals, gradients "
                       "(docs/algorithms/gfn.md §3)",
     FR_GOLDEN_SHARED, FR_GFN_SUBTB, T_SHARED, loss_in, loss_run},
    {"gfn.loss_zvar", "GFlowNet ZVar: loss, centred residuals, gradients (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     FR_GFN_ZVAR, T_SHARED, loss_in, loss_run},
    {"gfn.loss_fm", "GFlowNet FM: 3 states (1-3 parents, 2-4 actions) and 4 terminating states: loss and gradients "
                    "of the log edge flows (docs/algorithms/gfn.md §3)",
     FR_GOLDEN_SHARED, FR_GFN_FM, T_SHARED, fm_in, fm_run},
    {"gfn.loss_mdb", "GFlowNet modified DB: loss, per-transition residuals, gradients incl. the exit log-probs "
                     "(docs/algorithms/gfn.md §3)",
     FR_GOLDEN_SHARED, GX(FR_GFN_MDB, 0, 0, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_rtb", "GFlowNet RTB, beta 1.5: loss ½r², residuals, gradients (docs/algorithms/gfn.md §3)",
     FR_GOLDEN_SHARED, GX(FR_GFN_RTB, 0, 0, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_db_fl", "GFlowNet forward-looking DB (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_DB, 1, 0, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_subtb_fl", "GFlowNet forward-looking SubTB geometric_within (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_SUBTB, 1, 0, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_subtb_equal_within", "GFlowNet SubTB equal_within (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_SUBTB, 0, FR_SUBTB_EQUAL_WITHIN, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_subtb_equal", "GFlowNet SubTB equal (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_SUBTB, 0, FR_SUBTB_EQUAL, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_subtb_geometric", "GFlowNet SubTB geometric, lambda 0.9 (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_SUBTB, 0, FR_SUBTB_GEOMETRIC, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_subtb_modified_db", "GFlowNet SubTB ModifiedDB weighting (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_SUBTB, 0, FR_SUBTB_MODIFIED_DB, 0), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_tb_cosh", "GFlowNet TB with the ShiftedCosh regression (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_TB, 0, 0, FR_GFN_COSH), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_zvar_linex", "GFlowNet ZVar with the Linex(0.5) regression (docs/algorithms/gfn.md §3)", FR_GOLDEN_SHARED,
     GX(FR_GFN_ZVAR, 0, 0, FR_GFN_LINEX), T_SHARED, lossx_in, lossx_run},
    {"gfn.loss_op", "GFlowNet OP-GFN ordering loss on 4 pairs, one a tie: loss, pair differences, gradients "
                    "(docs/algorithms/gfn.md §9)",
     FR_GOLDEN_SHARED, FR_GFN_OP, T_SHARED, op_in, op_run},
};
const size_t fr_golden_n_gfn = sizeof fr_golden_cases_gfn / sizeof fr_golden_cases_gfn[0];
