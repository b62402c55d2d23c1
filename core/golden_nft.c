/* Golden cases of DiffusionNFT (flowrl/nft.h, docs/algorithms/nft.md): the objective of one
 * micro-batch (J = 2 times × B = 3 samples, D = 5) from the three velocities to its loss,
 * the reward weights and the gradient w.r.t. v, for β 1 with the KL term, β 0.1, and each
 * adv_mode; and the per-sample times and noise. The objective runs the nft_rows / nft_grad
 * (and row_msd_f64, kl_grad_add) entries; the times are host code, their noise the noise_fm
 * entry.
 *
 * v is formed near the velocity target (v = (ε − x0) + in.dv) and the old policy's output
 * off it (v_old = v + in.dv_old), so the positive and negative policies differ. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/nft.h"
#include "flowrl/philox.h"
#include "flowrl/pretrain_elem.h"
#include "flowrl/schedule.h"

enum { NJ = 2, NB = 3, ND = 5, NR = NJ * NB };

/* arg: the adv_mode in the low byte, then these flags */
enum { NF_KL = 1 << 8, NF_B01 = 1 << 9 };

static fr_nft_params case_params(int arg)
{
    fr_nft_params p = fr_nft_defaults();
    p.adv_mode = (fr_nft_adv_mode)(arg & 0xff);
    p.beta = arg & NF_B01 ? 0.1 : 1.0;
    p.kl_beta = arg & NF_KL ? 1e-4 : 0.0;
    return p;
}

static fr_status nft_in(const fr_golden_case *c, fr_golden_in *g)
{
    fr_nft_params p = case_params(c->arg);
    int64_t xb[2] = {NB, ND}, xr[2] = {NR, ND}, r1[1] = {NR}, b1[1] = {NB};
    FR_TRY(fr_gi_param_str(g, "adv_mode", fr_nft_adv_mode_name(p.adv_mode)));
    FR_TRY(fr_gi_param(g, "J", NJ));
    FR_TRY(fr_gi_scalar_f64(g, "beta", p.beta));
    FR_TRY(fr_gi_scalar_f64(g, "adv_clip_max", p.adv_clip_max));
    FR_TRY(fr_gi_scalar_f64(g, "kl_beta", p.kl_beta));
    FR_TRY(fr_gi_scalar_f64(g, "gout", 0.5));
    FR_TRY(fr_gi_note(g, "gout", "1/gradient_accumulation_steps with 2 accumulated micro-batches"));
    float *x0, *eps, *dv, *dvo, *t, *adv;
    FR_TRY(fr_gi_normal(g, "x0", 2, xb, 1.0f, &x0));
    FR_TRY(fr_gi_normal(g, "eps", 2, xr, 1.0f, &eps));
    FR_TRY(fr_gi_normal(g, "dv", 2, xr, 0.3f, &dv));
    FR_TRY(fr_gi_normal(g, "dv_old", 2, xr, 0.1f, &dvo));
    FR_TRY(fr_gi_uniform(g, "t", 1, r1, 0.1f, 0.95f, &t));
    FR_TRY(fr_gi_normal(g, "adv", 1, b1, 2.0f, &adv));
    adv[0] = 7.0f; /* beyond ±adv_clip_max: exercises the clamp */
    adv[1] = -adv[1] < 0.0f ? adv[1] : -adv[1]; /* one negative advantage for the modes */
    FR_TRY(fr_st_set_meta(g->f, "derived.in.adv", "drawn, then element 0 set to 7 (beyond the clamp at 5) and element 1 to -|drawn|"));
    float xt[NR * ND], v[NR * ND], vo[NR * ND];
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < ND; i++) {
            int j = r * ND + i;
            float x = x0[(r % NB) * ND + i];
            xt[j] = fr_flow_noised_elem(x, eps[j], t[r]);
            v[j] = (eps[j] - x) + dv[j];
            vo[j] = v[j] + dvo[j];
        }
    FR_TRY(fr_gi_tensor(g, "xt", FR_F32, 2, xr, xt, "fr_flow_noised_elem(in.x0[row mod B], in.eps, in.t[row]): (1 - t)*x0 + t*eps"));
    FR_TRY(fr_gi_tensor(g, "v", FR_F32, 2, xr, v, "(in.eps - in.x0[row mod B]) + in.dv, float32"));
    FR_TRY(fr_gi_tensor(g, "v_old", FR_F32, 2, xr, vo, "in.v + in.dv_old"));
    if (c->arg & NF_KL) {
        float *dr, vr[NR * ND];
        FR_TRY(fr_gi_normal(g, "dv_ref", 2, xr, 0.1f, &dr));
        for (int j = 0; j < NR * ND; j++) vr[j] = v[j] + dr[j];
        FR_TRY(fr_gi_tensor(g, "v_ref", FR_F32, 2, xr, vr, "in.v + in.dv_ref"));
    }
    return FR_OK;
}

static fr_status nft_adv_mode_parse(const char *s, fr_nft_adv_mode *m)
{
    for (int i = 0; i <= FR_NFT_ADV_BINARY; i++)
        if (s && strcmp(s, fr_nft_adv_mode_name((fr_nft_adv_mode)i)) == 0) {
            *m = (fr_nft_adv_mode)i;
            return FR_OK;
        }
    return fr_fail(FR_ERR_FORMAT, "golden nft: adv_mode '%s' is unknown", s ? s : "(null)");
}

/* x0, x_t, v, v_old, v_ref and grad_v in backend memory; t (also uploaded), A and the
 * per-row values on the host. */
static fr_status nft_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    fr_nft_params p = case_params(c->arg);
    FR_TRY(fr_go_scalar_f64(in, "beta", &p.beta));
    FR_TRY(fr_go_scalar_f64(in, "adv_clip_max", &p.adv_clip_max));
    FR_TRY(fr_go_scalar_f64(in, "kl_beta", &p.kl_beta));
    FR_TRY(nft_adv_mode_parse(fr_st_get_meta(in, "param.adv_mode"), &p.adv_mode));
    long long J;
    FR_TRY(fr_go_param(in, "J", 1, 64, &J));
    int64_t xb[2], xr[2] = {0, 0}, r1[1], b1[1];
    const float *x0, *xt, *v, *vo, *vr = NULL, *t, *adv;
    double gout;
    FR_TRY(fr_gd_f32(d, in, "x0", 2, xb, &x0));
    const int64_t B = xb[0], D = xb[1], R = J * B;
    xr[0] = R;
    xr[1] = D;
    r1[0] = R;
    b1[0] = B;
    FR_TRY(fr_gd_exact(d, in, "xt", FR_F32, 2, xr, (const void **)&xt));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, xr, (const void **)&v));
    FR_TRY(fr_gd_exact(d, in, "v_old", FR_F32, 2, xr, (const void **)&vo));
    if (p.kl_beta > 0.0) FR_TRY(fr_gd_exact(d, in, "v_ref", FR_F32, 2, xr, (const void **)&vr));
    FR_TRY(fr_go_exact(in, "t", FR_F32, 1, r1, (const void **)&t));
    FR_TRY(fr_go_exact(in, "adv", FR_F32, 1, b1, (const void **)&adv));
    FR_TRY(fr_go_scalar_f64(in, "gout", &gout));
    float *t_dev, *grad;
    double *r;
    FR_TRY(fr_gd_up(d, t, (size_t)R * sizeof(float), (void **)&t_dev));
    FR_TRY(fr_go_out(out, "r", FR_F64, 1, b1, (void **)&r));
    FR_TRY(fr_gd_out_f32(d, out, "grad_v", 2, xr, NULL, &grad));
    fr_nft_stats st;
    FR_TRY(fr_nft_loss(d->be, &p, J, B, D, t, t_dev, x0, xt, v, vo, vr, adv, gout, grad, r, &st));
    FR_TRY(fr_go_out_scalar_f64(out, "loss", st.loss));
    FR_TRY(fr_go_out_scalar_f64(out, "policy_loss", st.policy_loss));
    FR_TRY(fr_go_out_scalar_f64(out, "pos_loss", st.pos_loss));
    FR_TRY(fr_go_out_scalar_f64(out, "neg_loss", st.neg_loss));
    return fr_go_out_scalar_f64(out, "kl", st.kl);
}

/* ---- training times and noise ------------------------------------------------------------ */

enum { TT = 10, TJ = 9, TB = 3, TD = 4 };

static fr_status times_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    float s[TT + 1];
    FR_TRY(fr_sigmas_diffusers(TT, FR_DEFAULT_SHIFT, s));
    FR_TRY(fr_gi_tensor(g, "sigmas", FR_F32, 1, (int64_t[]){TT + 1}, s, "fr_sigmas_diffusers(T = 10, shift 3)"));
    FR_TRY(fr_gi_param(g, "J", TJ));
    FR_TRY(fr_gi_param(g, "seed", 42));
    FR_TRY(fr_gi_param(g, "epoch", 3));
    FR_TRY(fr_gi_param(g, "purpose_times", FR_RNG_NFT_TIMES));
    FR_TRY(fr_gi_param(g, "purpose_noise", FR_RNG_NFT_NOISE));
    FR_TRY(fr_gi_tensor(g, "sample_id", FR_I64, 1, (int64_t[]){TB}, (int64_t[]){5, 0, 17}, "fixed sample ids"));
    return fr_gi_normal(g, "x0", 2, (int64_t[]){TB, TD}, 1.0f, NULL);
}

static fr_status times_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    const float *s, *x0;
    const int64_t *sid;
    long long J, seed, epoch;
    FR_TRY(fr_go_exact(in, "sigmas", FR_F32, 1, (int64_t[]){TT + 1}, (const void **)&s));
    FR_TRY(fr_go_exact(in, "sample_id", FR_I64, 1, (int64_t[]){TB}, (const void **)&sid));
    FR_TRY(fr_gd_exact(d, in, "x0", FR_F32, 2, (int64_t[]){TB, TD}, (const void **)&x0));
    FR_TRY(fr_go_param(in, "J", TJ, TJ, &J));
    FR_TRY(fr_go_param(in, "seed", 0, UINT32_MAX, &seed));
    FR_TRY(fr_go_param(in, "epoch", 0, UINT32_MAX, &epoch));
    uint32_t ids[TB], *ids_dev;
    for (int b = 0; b < TB; b++) ids[b] = (uint32_t)sid[b];
    float *t, *t_dev, *eps, *xt;
    FR_TRY(fr_go_out_f32(out, "t", 1, (int64_t[]){TJ * TB}, &t));
    FR_TRY(fr_nft_times((uint32_t)seed, (uint32_t)epoch, ids, TB, TT, J, s, t));
    FR_TRY(fr_gd_up(d, t, (size_t)(TJ * TB) * sizeof(float), (void **)&t_dev));
    FR_TRY(fr_gd_up(d, ids, sizeof ids, (void **)&ids_dev));
    FR_TRY(fr_gd_out_f32(d, out, "eps", 2, (int64_t[]){TJ * TB, TD}, NULL, &eps));
    FR_TRY(fr_gd_out_f32(d, out, "xt", 2, (int64_t[]){TJ * TB, TD}, NULL, &xt));
    return fr_nft_noise(d->be, (uint32_t)seed, (uint32_t)epoch, ids_dev, TJ, TB, TD, x0, t_dev, eps, xt);
}

/* --fast keeps the canonical NFT and noise entries: bitwise in every mode. */
#define T_EXACT {0.0f, 0.0f}
#define NFT(nm, arg, what) {"nft." nm, what, FR_GOLDEN_ALL_OPS, arg, T_EXACT, nft_in, nft_run}

const fr_golden_case fr_golden_cases_nft[] = {
    NFT("kl", FR_NFT_ADV_ALL | NF_KL,
        "DiffusionNFT micro-batch J 2 x B 3, D 5: beta 1 (the default), adv_mode all, KL 1e-4 to the base (§11)"),
    NFT("beta01", FR_NFT_ADV_ALL | NF_B01, "DiffusionNFT: beta 0.1 (ocr, multi-reward configs), adv_mode all, no KL (§11)"),
    NFT("positive_only", FR_NFT_ADV_POSITIVE_ONLY, "DiffusionNFT: adv_mode positive_only (r in [0.5, 1]) (§11)"),
    NFT("negative_only", FR_NFT_ADV_NEGATIVE_ONLY, "DiffusionNFT: adv_mode negative_only (r in [0, 0.5]) (§11)"),
    NFT("one_only", FR_NFT_ADV_ONE_ONLY, "DiffusionNFT: adv_mode one_only (r in {0.6, 0.5}) (§11)"),
    NFT("binary", FR_NFT_ADV_BINARY, "DiffusionNFT: adv_mode binary (r in {0.6, 0.5, 0.4}) (§11)"),
    {"nft.times", "DiffusionNFT per-sample permuted training times (T 10, J 9, B 3) and the noise / x_t (§11)",
     (long)offsetof(fr_ops, noise_fm), 0, T_EXACT, times_in, times_run},
};
const size_t fr_golden_n_nft = sizeof fr_golden_cases_nft / sizeof fr_golden_cases_nft[0];
