/* Golden case of the trajectory objectives' per-element weights (flowrl/traj_objective.h; PXPO,
 * docs/algorithms/pxpo.md §3): one trained DDIM η 1 step of B = 4 rows of C = 3 channels x 4 pixels
 * as fr_traj_micro_step chains it with fr_traj_data.weight — μ_θ (fr_sampler_mean), the weighted
 * logp_θ and the weighted logp_old of the rollout's μ_old (fr_sampler_logprob_w), PPO-clip with
 * row advantage 1 (fr_ppo_policy), the logp backward, g_μ times the weights (the binary MUL
 * entry), g_v = g_μ·dμ/dv. The weights are per-pixel advantages broadcast over the channels;
 * μ_old comes from the model output in.v + in.dv, so the row ratios of the weighted log-probs sit
 * inside and outside the clip band. */
#include "core/golden_internal.h"
#include "flowrl/grpo.h"
#include "flowrl/schedule.h"

enum { WB = 4, WC = 3, WP = 4, WD = WC * WP };

static fr_status wt_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    enum { NT = FR_NUM_TRAIN_TIMESTEPS, T = 50 };
    static float betas[NT], ab[NT];
    int64_t ts[T], sh[2] = {WB, WD}, ps[2] = {WB, WP};
    FR_TRY(fr_betas_scaled_linear(NT, 0.00085, 0.012, betas));
    FR_TRY(fr_alphas_cumprod(NT, betas, ab));
    FR_TRY(fr_ddim_timesteps(T, NT, 1, ts));
    const int64_t t = ts[10], tp = fr_ddim_prev_timestep(t, T, NT);
    FR_TRY(fr_gi_param_str(g, "sampler", fr_sampler_name(FR_SAMPLER_DDIM)));
    FR_TRY(fr_gi_note(g, "grid", "scaled_linear betas (0.00085, 0.012), 50 DDIM steps, step 10 (as sampler.ddim)"));
    FR_TRY(fr_gi_scalar(g, "alpha_bar", ab[t]));
    FR_TRY(fr_gi_scalar(g, "alpha_bar_prev", ab[tp]));
    FR_TRY(fr_gi_scalar(g, "x0_clip", 0.0f));
    FR_TRY(fr_gi_scalar(g, "noise", 1.0f));
    FR_TRY(fr_gi_scalar_f64(g, "clip_range", 1e-4)); /* DDPO's */
    FR_TRY(fr_gi_scalar(g, "adv_clip_max", 5.0f));
    FR_TRY(fr_gi_scalar(g, "gout", 1.0f / 6.0f));
    float *x, *v, *xi, *dv, *pa;
    FR_TRY(fr_gi_normal(g, "x", 2, sh, 1.0f, &x));
    FR_TRY(fr_gi_normal(g, "v", 2, sh, 1.0f, &v));
    FR_TRY(fr_gi_normal(g, "xi", 2, sh, 1.0f, &xi));
    FR_TRY(fr_gi_normal(g, "dv", 2, sh, 3e-3f, &dv));
    FR_TRY(fr_gi_normal(g, "pixel_adv", 2, ps, 1.0f, &pa));
    float w[WB * WD];
    for (int b = 0; b < WB; b++)
        for (int ch = 0; ch < WC; ch++)
            for (int p = 0; p < WP; p++) w[(b * WC + ch) * WP + p] = pa[b * WP + p];
    FR_TRY(fr_gi_tensor(g, "weight", FR_F32, 2, sh, w, "in.pixel_adv broadcast over the 3 channels (c, p) -> c*4 + p"));
    fr_step p;
    FR_TRY(fr_golden_read_step(g->f, FR_SAMPLER_DDIM, &p));
    float v_old[WB * WD], xn[WB * WD], mu_old[WB * WD];
    for (int i = 0; i < WB * WD; i++) v_old[i] = v[i] + dv[i];
    fr_backend ref; /* inputs are ref's, in host memory */
    FR_TRY(fr_backend_open(&ref, "ref", 0, 1));
    FR_TRY(fr_sampler_step(&ref, &p, WB, WD, x, v_old, NULL, xi, xn, mu_old, NULL, NULL));
    const char *how = "fr_sampler_step of the case's step with model_out in.v + in.dv, noise in.xi";
    FR_TRY(fr_gi_tensor(g, "x_next", FR_F32, 2, sh, xn, how));
    return fr_gi_tensor(g, "mean_old", FR_F32, 2, sh, mu_old, how);
}

static fr_status wt_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    fr_step p;
    FR_TRY(fr_golden_read_step(in, FR_SAMPLER_DDIM, &p));
    int64_t sh[2];
    const float *x, *v, *xn, *mu_old, *w;
    fr_ppo_params prm;
    float gout;
    FR_TRY(fr_gd_f32(d, in, "x", 2, sh, &x));
    FR_TRY(fr_gd_exact(d, in, "v", FR_F32, 2, sh, (const void **)&v));
    FR_TRY(fr_gd_exact(d, in, "x_next", FR_F32, 2, sh, (const void **)&xn));
    FR_TRY(fr_gd_exact(d, in, "mean_old", FR_F32, 2, sh, (const void **)&mu_old));
    FR_TRY(fr_gd_exact(d, in, "weight", FR_F32, 2, sh, (const void **)&w));
    FR_TRY(fr_go_scalar_f64(in, "clip_range", &prm.clip_range));
    FR_TRY(fr_go_scalar(in, "adv_clip_max", &prm.adv_clip_max));
    FR_TRY(fr_go_scalar(in, "gout", &gout));
    const int64_t B = sh[0], D = sh[1], bs[1] = {B};
    if (B != WB || D != WD)
        return fr_fail(FR_ERR_FORMAT, "golden %s: in.x is (%lld, %lld), expected (%d, %d)", c->name, (long long)B,
                       (long long)D, WB, WD);
    float *mean, *lp_dev, *lo_dev, *lp, *lo, *ratio, *glogp, *glogp_dev, *gmean, *gv, dmdv;
    FR_TRY(fr_gd_out_f32(d, out, "mean", 2, sh, NULL, &mean));
    FR_TRY(fr_gd_out_f32(d, out, "logp_new", 1, bs, NULL, &lp_dev));
    FR_TRY(fr_gd_out_f32(d, out, "logp_old", 1, bs, NULL, &lo_dev));
    FR_TRY(fr_sampler_mean(d->be, &p, B, D, x, v, NULL, mean));
    FR_TRY(fr_sampler_logprob_w(d->be, &p, B, D, xn, mean, w, lp_dev));
    FR_TRY(fr_sampler_logprob_w(d->be, &p, B, D, xn, mu_old, w, lo_dev));
    FR_TRY(fr_gd_read(d, lp_dev, (void **)&lp));
    FR_TRY(fr_gd_read(d, lo_dev, (void **)&lo));
    FR_TRY(fr_go_out_f32(out, "ratio", 1, bs, &ratio));
    FR_TRY(fr_go_out_f32(out, "grad_logp_new", 1, bs, &glogp));
    const float adv[WB] = {1.0f, 1.0f, 1.0f, 1.0f};
    fr_ppo_stats st;
    FR_TRY(fr_ppo_policy(B, &prm, lp, lo, adv, gout, glogp, ratio, &st));
    FR_TRY(fr_go_out_scalar(out, "loss_policy", st.loss));
    FR_TRY(fr_go_out_scalar(out, "clipfrac", st.clipfrac));
    FR_TRY(fr_gd_up(d, glogp, (size_t)B * sizeof *glogp, (void **)&glogp_dev));
    FR_TRY(fr_gd_out_f32(d, out, "grad_mean", 2, sh, NULL, &gmean));
    FR_TRY(fr_logp_backward(d->be, &p, B, D, xn, mean, glogp_dev, gmean, 0));
    d->be->ops->binary(FR_BIN_MUL, B * D, gmean, w, gmean);
    FR_TRY(fr_grpo_dmean_dv(&p, &dmdv));
    FR_TRY(fr_gd_out_f32(d, out, "grad_v", 2, sh, NULL, &gv));
    d->be->ops->scale(B * D, dmdv, gmean, gv);
    return FR_OK;
}

const fr_golden_case fr_golden_cases_pxpo[] = {
    {"pxpo.weighted", "per-element log-prob weights (PXPO): weighted logp of theta and of the rollout's mean, PPO-clip "
                      "1e-4 with row advantage 1, logp backward times the weights, grad to v (pxpo.md §3)",
     FR_GOLDEN_ALL_OPS, 0, {0.0f, 0.0f}, wt_in, wt_run},
};
const size_t fr_golden_n_pxpo = sizeof fr_golden_cases_pxpo / sizeof fr_golden_cases_pxpo[0];
