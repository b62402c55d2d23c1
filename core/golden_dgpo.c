/* Golden cases of DGPO, Direct Group Preference Optimization (flowrl/dgpo.h,
 * docs/algorithms/dgpo.md): the objective of one micro-batch (K = 2 times × B = 4 samples in
 * two prompt groups, D = 5) from the model outputs to the group weights, the clip flags, the
 * loss and its gradient w.r.t. v: the default (clip_dsm, KL to the base), at θ = ref (every
 * w exactly 0.5, the §10 check), with d_ref of the EMA reference, and with clip_kl; and the
 * epoch's training times and the group-shared noise. The objective runs the AWM row entries
 * (awm_sqerr, row_msd_f64), flow_target, fm_loss and kl_grad_add; the times are host code,
 * the noise and x_t the noise_fm entry.
 *
 * v is formed near the velocity target (v = (ε − x0) + in.dv) so d is O(0.1) as in training;
 * v_old = v + in.dv_old puts ratios exp(d_old − d) on both sides of the 1e-2 clip band. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/dgpo.h"
#include "flowrl/philox.h"

enum { WK = 2, WB = 4, WD = 5, WR = WK * WB };

/* arg flags */
enum { DG_AT_REF = 1, DG_EMA_REF = 2, DG_CLIP_KL = 4 };

static fr_dgpo_params case_params(int arg)
{
    fr_dgpo_params p = fr_dgpo_defaults();
    p.group_size = 2;
    p.use_ema_ref = (arg & DG_EMA_REF) != 0;
    p.clip_kl = (arg & DG_CLIP_KL) != 0;
    return p;
}

static fr_status dgpo_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_dgpo_params p = case_params(c->arg);
    int64_t xb[2] = {WB, WD}, xr[2] = {WR, WD}, b1[1] = {WB};
    FR_TRY(fr_gi_param(g, "K", WK));
    FR_TRY(fr_gi_param(g, "group_size", p.group_size));
    FR_TRY(fr_gi_param(g, "clip_dsm", p.clip_dsm));
    FR_TRY(fr_gi_param(g, "clip_kl", p.clip_kl));
    FR_TRY(fr_gi_param(g, "use_ema_ref", p.use_ema_ref));
    FR_TRY(fr_gi_scalar_f64(g, "beta_dpo", p.beta_dpo));
    FR_TRY(fr_gi_scalar_f64(g, "clip_range", p.clip_range));
    FR_TRY(fr_gi_scalar_f64(g, "adv_clip_max", p.adv_clip_max));
    FR_TRY(fr_gi_scalar_f64(g, "beta", p.beta));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "gout", "1/gradient_accumulation_steps with 2 accumulated micro-batches"));
    FR_TRY(fr_gi_tensor(g, "group", FR_I64, 1, b1, (int64_t[]){3, 3, 8, 8}, "prompt ids: two groups of 2"));

    float *x0, *eps, *dv, *adv, *dr, *dold;
    FR_TRY(fr_gi_normal(g, "x0", 2, xb, 1.0f, &x0));
    FR_TRY(fr_gi_normal(g, "eps", 2, xr, 1.0f, &eps));
    FR_TRY(fr_gi_normal(g, "dv", 2, xr, 0.3f, &dv));
    FR_TRY(fr_gi_normal(g, "adv", 1, b1, 2.0f, &adv));
    adv[0] = 7.0f; /* beyond ±adv_clip_max: exercises the clamp */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.adv", "drawn, then element 0 set to 7 (beyond the clamp at 5)"));
    FR_TRY(fr_gi_normal(g, "dv_ref", 2, xr, 0.1f, &dr));
    FR_TRY(fr_gi_normal(g, "dv_old", 2, xr, 0.1f, &dold));
    float v[WR * WD], vr[WR * WD], vo[WR * WD];
    for (int r = 0; r < WR; r++)
        for (int i = 0; i < WD; i++) {
            const int j = r * WD + i;
            v[j] = (eps[j] - x0[(r % WB) * WD + i]) + dv[j];
            vr[j] = c->arg & DG_AT_REF ? v[j] : v[j] + dr[j];
            vo[j] = v[j] + dold[j];
        }
    FR_TRY(fr_gi_tensor(g, "v", FR_F32, 2, xr, v, "(in.eps - in.x0[row mod B]) + in.dv, float32"));
    FR_TRY(fr_gi_tensor(g, "v_ref", FR_F32, 2, xr, vr,
                        c->arg & DG_AT_REF ? "in.v (theta = ref: every w is 0.5)" : "in.v + in.dv_ref"));
    return fr_gi_tensor(g, "v_old", FR_F32, 2, xr, vo, "in.v + in.dv_old");
}

/* Memory (dgpo.h "Memory"): x0, ε, v, v_ref, v_old and grad_v in backend memory; groups,
 * advantages and the per-row d, w and clip flags on the host. */
static fr_status dgpo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    fr_dgpo_params p = case_params(c->arg);
    long long K, gs, cd, ck, ue;
    FR_TRY(fr_go_param(in, "K", 1, 64, &K));
    FR_TRY(fr_go_param(in, "group_size", 1, 1 << 20, &gs));
    FR_TRY(fr_go_param(in, "clip_dsm", 0, 1, &cd));
    FR_TRY(fr_go_param(in, "clip_kl", 0, 1, &ck));
    FR_TRY(fr_go_param(in, "use_ema_ref", 0, 1, &ue));
    p.group_size = gs;
    p.clip_dsm = (int)cd;
    p.clip_kl = (int)ck;
    p.use_ema_ref = (int)ue;
    FR_TRY(fr_go_scalar_f64(in, "beta_dpo", &p.beta_dpo));
    FR_TRY(fr_go_scalar_f64(in, "clip_range", &p.clip_range));
    FR_TRY(fr_go_scalar_f64(in, "adv_clip_max", &p.adv_clip_max));
    FR_TRY(fr_go_scalar_f64(in, "beta", &p.beta));
    double gout;
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    int64_t xb[2], xr[2], r1[1];
    const float *x0, *eps, *v, *vr, *vo, *adv;
    const int64_t *group;
    FR_TRY(fr_gd_f32(d, in, "x0", 2, xb, &x0));
    FR_TRY(fr_gd_f32(d, in, "eps", 2, xr, &eps));
    const int64_t B = xb[0], D = xb[1], R = xr[0];
    if (R != K * B || xr[1] != D) return fr_fail(FR_ERR_FORMAT, "golden %s: in.eps is not (K*B, D)", c->name);
    r1[0] = R;
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, xr, (const void **)&v));
    FR_TRY(fr_gd_exact(d, in, "v_ref", FR_F32, 2, xr, (const void **)&vr));
    FR_TRY(fr_gd_exact(d, in, "v_old", FR_F32, 2, xr, (const void **)&vo));
    FR_TRY(fr_go_exact(in, "adv", FR_F32, 1, &B, (const void **)&adv));
    FR_TRY(fr_go_exact(in, "group", FR_I64, 1, &B, (const void **)&group));

    double *dd, *w, *clipf;
    float *grad;
    uint8_t clip[WR];
    if (R > WR) return fr_fail(FR_ERR_FORMAT, "golden %s: %lld rows, at most %d", c->name, (long long)R, WR);
    FR_TRY(fr_go_out(out, "d", FR_F64, 1, r1, (void **)&dd));
    FR_TRY(fr_go_out(out, "w", FR_F64, 1, r1, (void **)&w));
    FR_TRY(fr_go_out(out, "clipped", FR_F64, 1, r1, (void **)&clipf));
    FR_TRY(fr_gd_out_f32(d, out, "grad_v", 2, xr, NULL, &grad));
    fr_dgpo_stats st;
    FR_TRY(fr_dgpo_loss(d->be, &p, K, B, D, x0, eps, v, vr, vo, group, adv, gout, grad, dd, w, clip, &st));
    for (int64_t r = 0; r < R; r++) clipf[r] = clip[r];
    FR_TRY(fr_go_out_scalar_f64(out, "loss", st.loss));
    FR_TRY(fr_go_out_scalar_f64(out, "dgpo_loss", st.dgpo_loss));
    FR_TRY(fr_go_out_scalar_f64(out, "kl", st.kl));
    return fr_go_out_scalar_f64(out, "clipfrac", st.clipfrac);
}

/* ---- training times and noise ------------------------------------------------------------ */

enum { TM = 4, TTRUNC = 6, TK = 2, TB = 4, TD = 4 };

static fr_status times_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    FR_TRY(fr_gi_param(g, "M", TM));
    FR_TRY(fr_gi_param(g, "trunc_steps", TTRUNC));
    FR_TRY(fr_gi_param(g, "seed", 42));
    FR_TRY(fr_gi_param(g, "epoch", 3));
    FR_TRY(fr_gi_param(g, "batch", 1));
    FR_TRY(fr_gi_param(g, "purpose_times", FR_RNG_DGPO_TIMES));
    FR_TRY(fr_gi_param(g, "purpose_noise", FR_RNG_DGPO_NOISE));
    FR_TRY(fr_gi_tensor(g, "noise_id", FR_I64, 1, (int64_t[]){TB}, (int64_t[]){3, 3, 8, 8},
                        "prompt ids: two groups of 2 share their noise"));
    FR_TRY(fr_gi_uniform(g, "t", 1, (int64_t[]){TK * TB}, 0.1f, 0.95f, NULL));
    return fr_gi_normal(g, "x0", 2, (int64_t[]){TB, TD}, 1.0f, NULL);
}

static fr_status times_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    const float *x0, *t;
    const int64_t *nid;
    long long M, trunc, seed, epoch, batch;
    FR_TRY(fr_go_param(in, "M", 1, 1024, &M));
    FR_TRY(fr_go_param(in, "trunc_steps", 0, 1023, &trunc));
    FR_TRY(fr_go_param(in, "seed", 0, UINT32_MAX, &seed));
    FR_TRY(fr_go_param(in, "epoch", 0, UINT32_MAX, &epoch));
    FR_TRY(fr_go_param(in, "batch", 0, 1 << 20, &batch));
    FR_TRY(fr_go_exact(in, "noise_id", FR_I64, 1, (int64_t[]){TB}, (const void **)&nid));
    FR_TRY(fr_gd_exact(d, in, "t", FR_F32, 1, (int64_t[]){TK * TB}, (const void **)&t));
    FR_TRY(fr_gd_exact(d, in, "x0", FR_F32, 2, (int64_t[]){TB, TD}, (const void **)&x0));
    int64_t *idx;
    FR_TRY(fr_go_out(out, "idx", FR_I64, 1, (int64_t[]){M}, (void **)&idx));
    FR_TRY(fr_dgpo_times((uint32_t)seed, (uint32_t)epoch, M, trunc, idx));
    uint32_t ids[TB], *ids_dev;
    float *eps, *xt;
    for (int b = 0; b < TB; b++) ids[b] = (uint32_t)nid[b];
    FR_TRY(fr_gd_up(d, ids, sizeof ids, (void **)&ids_dev));
    FR_TRY(fr_gd_out_f32(d, out, "eps", 2, (int64_t[]){TK * TB, TD}, NULL, &eps));
    FR_TRY(fr_gd_out_f32(d, out, "xt", 2, (int64_t[]){TK * TB, TD}, NULL, &xt));
    return fr_dgpo_noise(d->be, (uint32_t)seed, (uint32_t)epoch, (uint32_t)batch, ids_dev, TK, TB, TD, x0, t, eps, xt);
}

/* --fast keeps the canonical flow-matching and noise entries (the vendor kernels replace
 * GEMM, layer norm and activations only): bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}
#define DGPO(nm, arg, what) {"dgpo." nm, what, FR_GOLDEN_ALL_OPS, arg, T_EXACT, dgpo_in, dgpo_run}

const fr_golden_case fr_golden_cases_dgpo[] = {
    DGPO("loss", 0,
         "DGPO micro-batch K 2 x B 4 (2 groups), D 5: beta_dpo 100, clip_dsm 1e-2 against the EMA reference, "
         "KL beta 0.02 to the base (§10)"),
    DGPO("at_ref", DG_AT_REF, "DGPO at theta = ref (v_ref = v): every group weight exactly 0.5 (§10 check)"),
    DGPO("ema_ref", DG_EMA_REF, "DGPO with use_ema_ref: d_ref of the EMA reference, KL still to the base (§10)"),
    DGPO("clip_kl", DG_CLIP_KL, "DGPO with clip_kl: a clipped sample's KL gradient removed too (§10)"),
    {"dgpo.times", "DGPO training times (4 of 0..6 without replacement) and the group-shared noise / x_t (§10)",
     (long)offsetof(fr_ops, noise_fm), 0, T_EXACT, times_in, times_run},
};
const size_t fr_golden_n_dgpo = sizeof fr_golden_cases_dgpo / sizeof fr_golden_cases_dgpo[0];
