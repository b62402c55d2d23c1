/* Golden cases of DPPO's policy loss (flowrl/dppo.h, docs/algorithms/dppo.md; spec
 * objectives.md §14, samplers.md §7): a minibatch of M = 8 (environment step, denoising step)
 * pairs of a DDPM policy of 6 denoising steps, the last K = 4 fine-tuned, A = 3: from the
 * network's ε̂, the chain states and the old log-probabilities and raw advantages to the step
 * log-probabilities (clamped per element before the mean), the advantages as used (normalised,
 * quantile-clamped at 0.1 / 0.9, times gamma_denoising^(K − i − 1)), the per-step clip ranges,
 * dL/dlogp, dL/dε̂, the loss, approx-KL and clip fraction; and the on-policy check (old
 * log-probabilities = new: every ratio exactly 1). Host float64 (core/dppo.c) that every backend
 * runs, on the policy's float64 tables. */
#include <stddef.h>

#include "core/golden_internal.h"
#include "flowrl/dppo.h"

enum { PM = 8, PA = 3, PT = 6, PK = 4 };

static fr_status dppo_in(const fr_golden_case *c, fr_golden_in *g)
{
    const int64_t ma[2] = {PM, PA}, m1[1] = {PM};
    FR_TRY(fr_gi_param(g, "denoising_steps", PT));
    FR_TRY(fr_gi_param(g, "ft_denoising_steps", PK));
    FR_TRY(fr_gi_scalar_f64(g, "denoised_clip_value", 1.0));
    FR_TRY(fr_gi_scalar_f64(g, "min_logprob_denoising_std", 0.1));
    FR_TRY(fr_gi_scalar_f64(g, "gamma_denoising", 0.9));
    FR_TRY(fr_gi_scalar_f64(g, "clip_ploss_coef", 0.2));
    FR_TRY(fr_gi_scalar_f64(g, "clip_ploss_coef_base", 0.01));
    FR_TRY(fr_gi_scalar_f64(g, "clip_ploss_coef_rate", 3.0));
    FR_TRY(fr_gi_scalar_f64(g, "clip_advantage_lower_quantile", 0.1));
    FR_TRY(fr_gi_scalar_f64(g, "clip_advantage_upper_quantile", 0.9));
    float *x, *dx;
    FR_TRY(fr_gi_uniform(g, "eps", 2, ma, -1.5f, 1.5f, NULL));
    FR_TRY(fr_gi_uniform(g, "x", 2, ma, -1.0f, 1.0f, &x));
    FR_TRY(fr_gi_uniform(g, "dx", 2, ma, -0.3f, 0.3f, &dx));
    float xn[PM * PA];
    for (int j = 0; j < PM * PA; j++) xn[j] = x[j] + dx[j];
    FR_TRY(fr_gi_tensor(g, "xn", FR_F32, 2, ma, xn, "in.x + in.dx, float32 (the chain's next state)"));
    int64_t i[PM];
    for (int j = 0; j < PM; j++) i[j] = j % PK;
    FR_TRY(fr_gi_tensor(g, "i", FR_I64, 1, m1, i, "denoising index j mod K (0: the noisiest fine-tuned step)"));
    float *adv, *lo;
    FR_TRY(fr_gi_uniform(g, "adv", 1, m1, -2.0f, 2.0f, &adv));
    FR_TRY(fr_gi_uniform(g, "logp_old", 1, m1, -4.0f, 2.0f, &lo));
    (void)adv;
    (void)lo;
    if (c->arg) FR_TRY(fr_gi_note(g, "logp_old", "unused: the on-policy case takes out.logp_new as the old log-probs"));
    return FR_OK;
}

static fr_status dppo_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    long long T, K;
    FR_TRY(fr_go_param(in, "denoising_steps", 1, FR_DDPM_MAX_T, &T));
    FR_TRY(fr_go_param(in, "ft_denoising_steps", 1, T, &K));
    fr_dppo_cfg cfg = {K, 0, 0, 0, 0, 0, 0, 0, 0};
    FR_TRY(fr_go_scalar_f64(in, "denoised_clip_value", &cfg.x0_clip));
    FR_TRY(fr_go_scalar_f64(in, "min_logprob_denoising_std", &cfg.min_logp_std));
    FR_TRY(fr_go_scalar_f64(in, "gamma_denoising", &cfg.gamma_den));
    FR_TRY(fr_go_scalar_f64(in, "clip_ploss_coef", &cfg.clip));
    FR_TRY(fr_go_scalar_f64(in, "clip_ploss_coef_base", &cfg.clip_base));
    FR_TRY(fr_go_scalar_f64(in, "clip_ploss_coef_rate", &cfg.clip_rate));
    FR_TRY(fr_go_scalar_f64(in, "clip_advantage_lower_quantile", &cfg.adv_q_lo));
    FR_TRY(fr_go_scalar_f64(in, "clip_advantage_upper_quantile", &cfg.adv_q_hi));
    int64_t ma[2], m1[1], m2[1], m3[1];
    const float *eps, *x, *xn, *adv32, *lo32;
    const int64_t *i64;
    FR_TRY(fr_go_f32(in, "eps", 2, ma, &eps));
    FR_TRY(fr_go_f32(in, "x", 2, ma, &x));
    FR_TRY(fr_go_f32(in, "xn", 2, ma, &xn));
    m1[0] = ma[0];
    FR_TRY(fr_go_exact(in, "i", FR_I64, 1, m1, (const void **)&i64));
    FR_TRY(fr_go_f32(in, "adv", 1, m2, &adv32));
    FR_TRY(fr_go_f32(in, "logp_old", 1, m3, &lo32));
    const int64_t M = ma[0], A = ma[1];
    if (M > PM || A > PA || m1[0] != M || m2[0] != M || m3[0] != M)
        return fr_fail(FR_ERR_FORMAT, "golden %s: shapes are not (M, A), M <= %d, A <= %d", c->name, PM, PA);
    int i[PM];
    double adv[PM], lo[PM];
    for (int64_t j = 0; j < M; j++) {
        i[j] = (int)i64[j];
        adv[j] = (double)adv32[j];
        lo[j] = (double)lo32[j];
    }
    double *lp, *au, *clip, *g;
    float *deps;
    FR_TRY(fr_go_out(out, "logp_new", FR_F64, 1, &M, (void **)&lp));
    FR_TRY(fr_go_out(out, "adv_used", FR_F64, 1, &M, (void **)&au));
    FR_TRY(fr_go_out(out, "clip", FR_F64, 1, &M, (void **)&clip));
    FR_TRY(fr_go_out(out, "g", FR_F64, 1, &M, (void **)&g));
    FR_TRY(fr_go_out_f32(out, "deps", 2, ma, &deps));
    fr_ddpm_policy p;
    FR_TRY(fr_ddpm_policy_new(&p, d->be, 1, A, 1, 1, (int)T, 1));
    fr_ctl_ppo_stats st;
    fr_status s = fr_dppo_policy_loss(&p, &cfg, M, eps, x, xn, i, lo, adv, lp, au, clip, g, deps, &st);
    if (s == FR_OK && c->arg) {
        double old[PM];
        for (int64_t j = 0; j < M; j++) old[j] = lp[j];
        s = fr_dppo_policy_loss(&p, &cfg, M, eps, x, xn, i, old, adv, lp, au, clip, g, deps, &st);
        for (int64_t j = 0; j < M && s == FR_OK; j++)
            if (lp[j] != old[j]) s = fr_fail(FR_ERR_NUMERIC, "golden %s: pair %lld's log-prob moved on-policy", c->name, (long long)j);
        if (s == FR_OK && (st.ratio_mean != 1.0 || st.approx_kl != 0.0 || st.clipfrac != 0.0))
            s = fr_fail(FR_ERR_NUMERIC, "golden %s: on-policy ratio mean %.17g, approx-KL %g, clipfrac %g", c->name,
                        st.ratio_mean, st.approx_kl, st.clipfrac);
    }
    fr_ddpm_policy_free(&p);
    FR_TRY(s);
    FR_TRY(fr_go_out_scalar_f64(out, "loss", st.loss));
    FR_TRY(fr_go_out_scalar_f64(out, "approx_kl", st.approx_kl));
    return fr_go_out_scalar_f64(out, "clipfrac", st.clipfrac);
}

#define T_SHARED {0.0f, 0.0f}

const fr_golden_case fr_golden_cases_dppo[] = {
    {"dppo.loss", "DPPO policy loss, 8 pairs of a 6-step DDPM, K 4, A 3: clamped step log-probs, advantages normalised, "
                  "quantile-clamped (0.1, 0.9) and denoising-discounted (0.9), per-step clip 0.01..0.2, dL/dlogp, "
                  "dL/deps, loss (§14)",
     FR_GOLDEN_SHARED, 0, T_SHARED, dppo_in, dppo_run},
    {"dppo.on_policy", "DPPO on-policy: old log-probs = new, every ratio exactly 1, approx-KL 0, clip fraction 0 "
                       "(§14 check)",
     FR_GOLDEN_SHARED, 1, T_SHARED, dppo_in, dppo_run},
};
const size_t fr_golden_n_dppo = sizeof fr_golden_cases_dppo / sizeof fr_golden_cases_dppo[0];
