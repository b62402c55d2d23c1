/* Golden cases of AWM, Advantage Weighted Matching (flowrl/awm.h, docs/algorithms/awm.md):
 * the objective of one micro-batch (K = 2 times × B = 3 samples, D = 5) from the model
 * output to its loss and gradient w.r.t. v, for each weighting, off-policy with both ratio
 * modes, and with the KL / EMA-KL terms; and the training times and noise of each time
 * type. The objective runs the AWM op entries (row reductions, flow target, loss gradient,
 * KL gradient); the times are host code, their noise and x_t the noise_fm entry.
 *
 * v is formed near the velocity target (v = (ε − x0) + in.dv) so m is O(0.1) as in training;
 * the off-policy ℓ_old = ℓ_θ + in.dlogp puts ratios on both sides of the clip band. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/awm.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"

enum { WK = 2, WB = 3, WD = 5, WR = WK * WB };

/* arg: the weighting in the low byte, then these flags */
enum { AW_OFF = 1 << 8, AW_SUM = 1 << 9, AW_KL = 1 << 10, AW_ELBO = 1 << 11 };

static fr_awm_params case_params(int arg)
{
    fr_awm_params p = fr_awm_defaults();
    p.weighting = (fr_awm_weighting)(arg & 0xff);
    p.ratio_mode = arg & AW_SUM ? FR_AWM_RATIO_SUM_FIRST : FR_AWM_RATIO_EXP_FIRST;
    p.clip_range = arg & AW_OFF ? 0.01 : 1.0;
    p.beta = arg & AW_KL ? 0.003 : 0.0;
    p.ema_beta = arg & AW_KL ? 1.0 : 0.0;
    p.kl_weight = p.kl_ema_weight = arg & AW_ELBO ? FR_AWM_KL_ELBO : FR_AWM_KL_UNIFORM;
    return p;
}

static fr_status awm_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_awm_params p = case_params(c->arg);
    int64_t xb[2] = {WB, WD}, xr[2] = {WR, WD}, r1[1] = {WR}, b1[1] = {WB};
    FR_TRY(fr_gi_param_str(g, "weighting", fr_awm_weighting_name(p.weighting)));
    FR_TRY(fr_gi_param_str(g, "loss_type", fr_awm_ratio_name(p.ratio_mode)));
    FR_TRY(fr_gi_param_str(g, "kl_weight", fr_awm_kl_weight_name(p.kl_weight)));
    FR_TRY(fr_gi_param_str(g, "kl_ema_weight", fr_awm_kl_weight_name(p.kl_ema_weight)));
    FR_TRY(fr_gi_param(g, "K", WK));
    FR_TRY(fr_gi_scalar_f64(g, "ghuber_power", p.ghuber_power));
    FR_TRY(fr_gi_scalar_f64(g, "clip_range", p.clip_range));
    FR_TRY(fr_gi_scalar_f64(g, "adv_clip_max", p.adv_clip_max));
    FR_TRY(fr_gi_scalar_f64(g, "advantage_max", p.advantage_max));
    FR_TRY(fr_gi_scalar_f64(g, "beta", p.beta));
    FR_TRY(fr_gi_scalar_f64(g, "ema_beta", p.ema_beta));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "gout", "1/gradient_accumulation_steps with 2 accumulated micro-batches"));

    float *x0, *eps, *dv, *t, *adv;
    FR_TRY(fr_gi_normal(g, "x0", 2, xb, 1.0f, &x0));
    FR_TRY(fr_gi_normal(g, "eps", 2, xr, 1.0f, &eps));
    FR_TRY(fr_gi_normal(g, "dv", 2, xr, 0.3f, &dv));
    FR_TRY(fr_gi_uniform(g, "t", 1, r1, 0.1f, 0.95f, &t));
    for (int b = 0; b < WB; b++) t[WB + b] = t[b] * 0.5f; /* time k = 1 of every row: half of k = 0's */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.t", "drawn; rows k = 1 (3..5) then set to half of rows k = 0 (row r = k*B + b)"));
    FR_TRY(fr_gi_normal(g, "adv", 1, b1, 2.0f, &adv));
    adv[0] = 7.0f; /* beyond ±adv_clip_max: exercises the clamp */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.adv", "drawn, then element 0 set to 7 (beyond the clamp at 5)"));
    float v[WR * WD];
    for (int r = 0; r < WR; r++)
        for (int i = 0; i < WD; i++) v[r * WD + i] = (eps[r * WD + i] - x0[(r % WB) * WD + i]) + dv[r * WD + i];
    FR_TRY(fr_gi_tensor(g, "v", FR_F32, 2, xr, v, "(in.eps - in.x0[row mod B]) + in.dv, float32"));
    if (c->arg & AW_KL) {
        float *dr, *de, vr[WR * WD], ve[WR * WD];
        FR_TRY(fr_gi_normal(g, "dv_ref", 2, xr, 0.1f, &dr));
        FR_TRY(fr_gi_normal(g, "dv_ema", 2, xr, 0.05f, &de));
        for (int j = 0; j < WR * WD; j++) {
            vr[j] = v[j] + dr[j];
            ve[j] = v[j] + de[j];
        }
        FR_TRY(fr_gi_tensor(g, "v_ref", FR_F32, 2, xr, vr, "in.v + in.dv_ref"));
        FR_TRY(fr_gi_tensor(g, "v_ema", FR_F32, 2, xr, ve, "in.v + in.dv_ema"));
    }
    if (c->arg & AW_OFF) {
        float *dl;
        double lp[WR];
        FR_TRY(fr_gi_uniform(g, "dlogp", 1, r1, -0.03f, 0.03f, &dl));
        fr_backend ref; /* the inputs are made with the reference backend */
        FR_TRY(fr_backend_open(&ref, "ref", 0, 1));
        FR_TRY(fr_awm_logprob(&ref, &p, WK, WB, WD, t, x0, eps, v, NULL, lp, NULL));
        for (int r = 0; r < WR; r++) lp[r] = lp[r] + (double)dl[r];
        FR_TRY(fr_gi_tensor(g, "logp_old", FR_F64, 1, r1, lp, "fr_awm_logprob of the case (ℓ_θ) + in.dlogp, float64"));
    }
    return FR_OK;
}

static fr_status read_params(const fr_golden_case *c, const fr_st_file *in, fr_awm_params *p)
{
    *p = case_params(c->arg);
    FR_TRY(fr_go_scalar_f64(in, "ghuber_power", &p->ghuber_power));
    FR_TRY(fr_go_scalar_f64(in, "clip_range", &p->clip_range));
    FR_TRY(fr_go_scalar_f64(in, "adv_clip_max", &p->adv_clip_max));
    FR_TRY(fr_go_scalar_f64(in, "advantage_max", &p->advantage_max));
    FR_TRY(fr_go_scalar_f64(in, "beta", &p->beta));
    FR_TRY(fr_go_scalar_f64(in, "ema_beta", &p->ema_beta));
    FR_TRY(fr_awm_weighting_parse(fr_st_get_meta(in, "param.weighting"), &p->weighting));
    FR_TRY(fr_awm_ratio_parse(fr_st_get_meta(in, "param.loss_type"), &p->ratio_mode));
    FR_TRY(fr_awm_kl_weight_parse(fr_st_get_meta(in, "param.kl_weight"), &p->kl_weight));
    return fr_awm_kl_weight_parse(fr_st_get_meta(in, "param.kl_ema_weight"), &p->kl_ema_weight);
}

/* Memory (awm.h "Memory"): x0, ε, v, v_ref, v_ema and grad_v in backend memory; t, ℓ_old, A
 * and the per-row m, w, ℓ and ratios on the host. */
static fr_status awm_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    fr_awm_params p;
    FR_TRY(read_params(c, in, &p));
    long long K;
    FR_TRY(fr_go_param(in, "K", 1, 64, &K));
    int64_t xb[2], xr[2], r1[1];
    const float *x0, *eps, *v, *t, *adv, *vr = NULL, *ve = NULL;
    const double *old = NULL;
    double gout;
    FR_TRY(fr_gd_f32(d, in, "x0", 2, xb, &x0));
    FR_TRY(fr_gd_f32(d, in, "eps", 2, xr, &eps));
    const int64_t B = xb[0], D = xb[1], R = xr[0];
    if (R != K * B || xr[1] != D) return fr_fail(FR_ERR_FORMAT, "golden %s: in.eps is not (K*B, D)", c->name);
    r1[0] = R;
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, xr, (const void **)&v));
    FR_TRY(fr_go_exact(in, "t", FR_F32, 1, r1, (const void **)&t));
    FR_TRY(fr_go_exact(in, "adv", FR_F32, 1, &B, (const void **)&adv));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    if (p.beta > 0.0) FR_TRY(fr_gd_exact(d, in, "v_ref", FR_F32, 2, xr, (const void **)&vr));
    if (p.ema_beta > 0.0) FR_TRY(fr_gd_exact(d, in, "v_ema", FR_F32, 2, xr, (const void **)&ve));
    if (c->arg & AW_OFF) FR_TRY(fr_go_exact(in, "logp_old", FR_F64, 1, r1, (const void **)&old));

    double *m, *w, *logp, *ratio;
    float *grad;
    int64_t nr[1] = {p.ratio_mode == FR_AWM_RATIO_EXP_FIRST ? R : B};
    FR_TRY(fr_go_out(out, "m", FR_F64, 1, r1, (void **)&m));
    FR_TRY(fr_go_out(out, "w", FR_F64, 1, r1, (void **)&w));
    FR_TRY(fr_awm_logprob(d->be, &p, K, B, D, t, x0, eps, v, m, NULL, w));
    FR_TRY(fr_go_out(out, "logp", FR_F64, 1, r1, (void **)&logp));
    FR_TRY(fr_go_out(out, "ratio", FR_F64, 1, nr, (void **)&ratio));
    FR_TRY(fr_gd_out_f32(d, out, "grad_v", 2, xr, NULL, &grad));
    fr_awm_stats st;
    FR_TRY(fr_awm_loss(d->be, &p, K, B, D, t, x0, eps, v, vr, ve, old, adv, gout, grad, logp, ratio, &st));
    FR_TRY(fr_go_out_scalar_f64(out, "loss", st.loss));
    FR_TRY(fr_go_out_scalar_f64(out, "policy_loss", st.policy_loss));
    FR_TRY(fr_go_out_scalar_f64(out, "kl", st.kl));
    FR_TRY(fr_go_out_scalar_f64(out, "ema_kl", st.ema_kl));
    FR_TRY(fr_go_out_scalar_f64(out, "clipfrac", st.clipfrac));
    return fr_go_out_scalar_f64(out, "ratio_mean", st.ratio_mean);
}

/* ---- training times and noise ------------------------------------------------------------ */

enum { TK = 6, TB = 3, TT = 14, TD = 4 };

static fr_status times_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float s[TT + 1];
    FR_TRY(fr_sigmas_diffusers(TT, FR_DEFAULT_SHIFT, s));
    FR_TRY(fr_gi_tensor(g, "sigmas", FR_F32, 1, (int64_t[]){TT + 1}, s, "fr_sigmas_diffusers(T = 14, shift 3)"));
    FR_TRY(fr_gi_scalar_f64(g, "timestep_fraction", 0.9));
    FR_TRY(fr_gi_scalar_f64(g, "time_shift", FR_DEFAULT_SHIFT));
    FR_TRY(fr_gi_param(g, "K", TK));
    FR_TRY(fr_gi_param(g, "seed", 42));
    FR_TRY(fr_gi_param(g, "epoch", 3));
    FR_TRY(fr_gi_param(g, "batch", 1));
    FR_TRY(fr_gi_param(g, "purpose_times", FR_RNG_AWM_TIMES));
    FR_TRY(fr_gi_param(g, "purpose_noise", FR_RNG_AWM_NOISE));
    FR_TRY(fr_gi_tensor(g, "sample_id", FR_I64, 1, (int64_t[]){TB}, (int64_t[]){5, 0, 17}, "fixed sample ids"));
    return fr_gi_normal(g, "x0", 2, (int64_t[]){TB, TD}, 1.0f, NULL);
}

/* The times are host values (per row); ε and x_t come from fr_awm_noise in backend memory,
 * from x0, the sample ids and the default type's times uploaded. */
static fr_status times_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    const float *s, *x0;
    const int64_t *sid;
    long long K, seed, epoch, batch;
    fr_awm_time_cfg tc = fr_awm_time_defaults();
    FR_TRY(fr_go_exact(in, "sigmas", FR_F32, 1, (int64_t[]){TT + 1}, (const void **)&s));
    FR_TRY(fr_go_exact(in, "sample_id", FR_I64, 1, (int64_t[]){TB}, (const void **)&sid));
    FR_TRY(fr_gd_exact(d, in, "x0", FR_F32, 2, (int64_t[]){TB, TD}, (const void **)&x0));
    FR_TRY(fr_go_scalar_f64(in, "timestep_fraction", &tc.fraction));
    FR_TRY(fr_go_scalar_f64(in, "time_shift", &tc.shift));
    FR_TRY(fr_go_param(in, "K", TK, TK, &K));
    FR_TRY(fr_go_param(in, "seed", 0, UINT32_MAX, &seed));
    FR_TRY(fr_go_param(in, "epoch", 0, UINT32_MAX, &epoch));
    FR_TRY(fr_go_param(in, "batch", 0, UINT32_MAX, &batch));
    tc.K = K;
    for (int ty = 0; ty <= FR_AWM_TIME_LOGIT_NORMAL; ty++) {
        char nm[64];
        float *t;
        tc.type = (fr_awm_time_type)ty;
        snprintf(nm, sizeof nm, "t.%s", fr_awm_time_name(tc.type));
        FR_TRY(fr_go_out_f32(out, nm, 1, (int64_t[]){TK * TB}, &t));
        if (ty <= FR_AWM_TIME_DISCRETE_WITH_INIT) {
            int64_t *idx;
            snprintf(nm, sizeof nm, "idx.%s", fr_awm_time_name(tc.type));
            FR_TRY(fr_go_out(out, nm, FR_I64, 1, (int64_t[]){TK}, (void **)&idx));
            FR_TRY(fr_awm_times(&tc, (uint32_t)seed, (uint32_t)epoch, (uint32_t)batch, TB, TT, s, idx, t));
        } else {
            FR_TRY(fr_awm_times(&tc, (uint32_t)seed, (uint32_t)epoch, (uint32_t)batch, TB, TT, NULL, NULL, t));
        }
    }
    /* ε and x_t at the default (discrete_wo_init) times */
    tc.type = FR_AWM_TIME_DISCRETE_WO_INIT;
    float t[TK * TB], *t_dev, *eps, *xt;
    uint32_t ids[TB], *ids_dev;
    for (int b = 0; b < TB; b++) ids[b] = (uint32_t)sid[b];
    FR_TRY(fr_awm_times(&tc, (uint32_t)seed, (uint32_t)epoch, (uint32_t)batch, TB, TT, s, NULL, t));
    FR_TRY(fr_gd_up(d, t, sizeof t, (void **)&t_dev));
    FR_TRY(fr_gd_up(d, ids, sizeof ids, (void **)&ids_dev));
    FR_TRY(fr_gd_out_f32(d, out, "eps", 2, (int64_t[]){TK * TB, TD}, NULL, &eps));
    FR_TRY(fr_gd_out_f32(d, out, "xt", 2, (int64_t[]){TK * TB, TD}, NULL, &xt));
    return fr_awm_noise(d->be, (uint32_t)seed, (uint32_t)epoch, ids_dev, TK, TB, TD, x0, t_dev, eps, xt);
}

/* --fast keeps the canonical AWM and noise entries (the vendor kernels replace GEMM, layer
 * norm and activations only): bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}
#define AWM(nm, arg, what) {"awm." nm, what, FR_GOLDEN_ALL_OPS, arg, T_EXACT, awm_in, awm_run}

const fr_golden_case fr_golden_cases_awm[] = {
    AWM("uniform", FR_AWM_W_UNIFORM, "AWM micro-batch K 2 x B 3, D 5: weighting Uniform, on-policy, no KL (§9)"),
    AWM("ghuber", FR_AWM_W_GHUBER, "AWM: weighting ghuber p 0.25 (the default), on-policy, no KL (§9)"),
    AWM("t", FR_AWM_W_T, "AWM: weighting t, on-policy, no KL (§9)"),
    AWM("t2", FR_AWM_W_T2, "AWM: weighting t**2 (t squared in float32), on-policy, no KL (§9)"),
    AWM("huber", FR_AWM_W_HUBER, "AWM: weighting huber, on-policy, no KL (§9)"),
    AWM("ghuber_off_policy", FR_AWM_W_GHUBER | AW_OFF,
        "AWM: ghuber, off-policy logp_old, exp_first, clip 0.01: ratios on both sides of the band (§9)"),
    AWM("sum_first", FR_AWM_W_GHUBER | AW_OFF | AW_SUM, "AWM: ghuber, off-policy, sum_first ratio per sample, clip 0.01 (§9)"),
    AWM("kl", FR_AWM_W_GHUBER | AW_KL,
        "AWM: the ocr objective: ghuber + beta 0.003 KL to the base + ema_beta 1 EMA-KL, Uniform (§9)"),
    AWM("kl_elbo", FR_AWM_W_UNIFORM | AW_KL | AW_ELBO, "AWM: Uniform + both KL terms with the ELBO weight 1/(2 std^2) (§9)"),
    {"awm.times", "AWM training times of every time type (T 14, fraction 0.9, K 6, B 3) and the noise / x_t (§9)",
     (long)offsetof(fr_ops, noise_fm), 0, T_EXACT, times_in, times_run},
};
const size_t fr_golden_n_awm = sizeof fr_golden_cases_awm / sizeof fr_golden_cases_awm[0];
