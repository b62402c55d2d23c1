/* The Flow-GRPO family of losses at one trained step (docs/algorithms/flow-grpo.md §2-§4): the
 * D-wide work as op entries (flowrl/ops.h "trajectory objectives") on backend memory, the
 * per-sample PPO core on the host (loops over flowrl/grpo_elem.h, reductions in the canonical
 * orders of flowrl/reduce.h). */
#include "flowrl/grpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/grpo_elem.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler_elem.h"

static fr_status check_ppo(const char *fn, int64_t B, const fr_ppo_params *prm)
{
    if (!prm) return fr_fail(FR_ERR_ARG, "%s: params are NULL", fn);
    if (B < 1 || B > (int64_t)1 << 40)
        return fr_fail(FR_ERR_ARG, "%s: batch %lld, expected >= 1", fn, (long long)B);
    if (!(prm->clip_range >= 0.0 && prm->clip_range < 1.0))
        return fr_fail(FR_ERR_ARG, "%s: clip_range %g, expected in [0, 1)", fn, prm->clip_range);
    if (!(prm->adv_clip_max > 0.0f))
        return fr_fail(FR_ERR_ARG, "%s: adv_clip_max %g, expected > 0 (INFINITY: no clamp)", fn,
                       (double)prm->adv_clip_max);
    return FR_OK;
}

static fr_status check_bd(const char *fn, int64_t B, int64_t D)
{
    if (B < 1 || D < 1 || B > INT64_MAX / D || B * D > (int64_t)1 << 40)
        return fr_fail(FR_ERR_ARG, "%s: shape (%lld, %lld), expected B >= 1, D >= 1", fn, (long long)B,
                       (long long)D);
    return FR_OK;
}

/* The PPO-clip core shared by Flow-GRPO and GRPO-Guard. z (B,) is the log-ratio argument
 * (r = exp z); g_term the upstream gradient of each term; dz (B,) receives d/dz (may be
 * NULL); r (B,) receives the ratios. dlogp (B,) = logp_new − logp_old for approx_kl. */
static void ppo_core(int64_t B, const fr_ppo_params *prm, const float *z, const float *dlogp,
                     const float *adv, float g_term, float *r, float *term, float *dz,
                     fr_ppo_stats *st)
{
    fr_ppo_clip c = fr_ppo_clip_make(prm->clip_range);
    int64_t nclip = 0;
    float rmin = INFINITY, rmax = -INFINITY;
    for (int64_t i = 0; i < B; i++) {
        float a = fr_adv_clamp_elem(adv[i], prm->adv_clip_max);
        r[i] = fr_expf(z[i]);
        term[i] = fr_ppo_term_elem(r[i], a, c);
        if (dz) dz[i] = fr_ppo_dterm_elem(r[i], a, c, g_term);
        nclip += fr_ppo_is_clipped_elem(r[i], c);
        /* NaN ratios propagate into min/max */
        if (r[i] != r[i]) rmin = rmax = r[i];
        else if (rmin == rmin) {
            rmin = r[i] < rmin ? r[i] : rmin;
            rmax = r[i] > rmax ? r[i] : rmax;
        }
    }
    st->loss = fr_mean_canonical(term, B);
    st->approx_kl = 0.5f * (fr_sumsq_canonical(dlogp, B) / (float)B);
    st->clipfrac = (float)nclip / (float)B;
    st->ratio_min = rmin;
    st->ratio_max = rmax;
    st->ratio_mean = fr_mean_canonical(r, B);
}

fr_status fr_ppo_policy(int64_t B, const fr_ppo_params *prm, const float *logp_new, const float *logp_old,
                        const float *adv, float gout, float *grad_logp_new, float *ratio, fr_ppo_stats *stats)
{
    FR_TRY(check_ppo("fr_ppo_policy", B, prm));
    if (!logp_new || !logp_old || !adv || !stats) return fr_fail(FR_ERR_ARG, "fr_ppo_policy: NULL array");
    float *w = fr_malloc((size_t)B * 3 * sizeof(float));
    if (!w) return FR_ERR_NOMEM;
    float *z = w, *term = w + B, *r = ratio ? ratio : w + 2 * B;
    /* z = logp_new − logp_old: fr_ppo_ratio_elem's argument, and Δlogp of approx_kl */
    for (int64_t i = 0; i < B; i++) z[i] = logp_new[i] - logp_old[i];
    /* torch.mean backward: gout / numel; SubBackward passes d/dz to logp_new unchanged */
    ppo_core(B, prm, z, z, adv, gout / (float)B, r, term, grad_logp_new, stats);
    free(w);
    return FR_OK;
}

/* Per-row std of the step's Gaussian, or 0 for cps (its own constant-free form). */
static fr_status logp_row_form(const fr_step *step, const char *fn, int *is_cps, float *two_var)
{
    if (!step) return fr_fail(FR_ERR_ARG, "%s: step is NULL", fn);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(step, &sd));
    if (!fr_sampler_is_stochastic(step->kind))
        return fr_fail(FR_ERR_ARG, "%s: %s step has no log-prob", fn, fr_sampler_name(step->kind));
    *is_cps = step->kind == FR_SAMPLER_CPS;
    *two_var = fr_gauss_coef_make(sd.std).two_var; /* the sampler's 2·(std·std) */
    return FR_OK;
}

fr_status fr_logp_backward(fr_backend *be, const fr_step *step, int64_t B, int64_t D, const float *x_next,
                           const float *mean, const float *g_logp, float *grad_mean, int accumulate)
{
    FR_TRY(check_bd("fr_logp_backward", B, D));
    if (!be || !x_next || !mean || !g_logp || !grad_mean) return fr_fail(FR_ERR_ARG, "fr_logp_backward: NULL argument");
    int is_cps = 0;
    float two_var = 0.0f;
    FR_TRY(logp_row_form(step, "fr_logp_backward", &is_cps, &two_var));
    be->ops->logp_backward(B, D, is_cps, two_var, x_next, mean, g_logp, grad_mean, accumulate);
    return FR_OK;
}

fr_status fr_kl_std(const fr_step *step, fr_kl_form form, float *kl_sigma)
{
    if (!step || !kl_sigma) return fr_fail(FR_ERR_ARG, "fr_kl_std: NULL argument");
    if (form != FR_KL_CODE && form != FR_KL_PAPER) return fr_fail(FR_ERR_ARG, "fr_kl_std: invalid form %d", (int)form);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(step, &sd));
    if (!fr_sampler_is_stochastic(step->kind))
        return fr_fail(FR_ERR_ARG, "fr_kl_std: %s step has no noise", fr_sampler_name(step->kind));
    *kl_sigma = form == FR_KL_CODE ? sd.std_dev : sd.std;
    return FR_OK;
}

/* rows (R,) on the host = the canonical sums of squares of a − b over each row of D
 * (backend memory), through a backend scratch of R floats. */
static fr_status sumsq_rows(fr_backend *be, int64_t R, int64_t D, const float *a, const float *b, float *rows)
{
    float *d = fr_dev_floats(be, R);
    if (!d) return FR_ERR_NOMEM;
    be->ops->row_sumsq_diff(R, D, a, b, d);
    fr_status s = fr_d2h(be, rows, d, (size_t)R * sizeof(float));
    fr_dev_free(be, d);
    return s;
}

fr_status fr_kl_loss(fr_backend *be, int64_t B, int64_t D, float kl_sigma, const float *mean, const float *mean_ref,
                     float gout, float *loss, float *grad_mean, int accumulate)
{
    FR_TRY(check_bd("fr_kl_loss", B, D));
    if (!be || !mean || !mean_ref || !loss) return fr_fail(FR_ERR_ARG, "fr_kl_loss: NULL argument");
    if (!(kl_sigma > 0.0f) || kl_sigma == INFINITY)
        return fr_fail(FR_ERR_ARG, "fr_kl_loss: sigma %g, expected finite > 0", (double)kl_sigma);
    float *kl = fr_malloc((size_t)B * sizeof(float));
    if (!kl) return FR_ERR_NOMEM;
    float two_var = 2.0f * (kl_sigma * kl_sigma); /* `2 * std_dev_t ** 2` */
    fr_status s = sumsq_rows(be, B, D, mean, mean_ref, kl);
    if (s == FR_OK) {
        for (int64_t b = 0; b < B; b++) kl[b] = (kl[b] / (float)D) / two_var;
        *loss = fr_mean_canonical(kl, B);
        if (grad_mean)
            be->ops->kl_grad(B * D, ((gout / (float)B) / two_var) / (float)D, mean, mean_ref, grad_mean, accumulate);
    }
    free(kl);
    return s;
}

fr_status fr_guard_policy(fr_backend *be, const fr_step *step, int64_t B, int64_t D, fr_guard_bias mode,
                          const fr_ppo_params *prm, const float *x_next, const float *mean, const float *mean_old,
                          const float *logp_new, const float *logp_old, const float *adv, float gout, float *grad_mean,
                          int accumulate, float *ratio, float *bias, fr_ppo_stats *stats)
{
    const char *fn = "fr_guard_policy";
    FR_TRY(check_bd(fn, B, D));
    FR_TRY(check_ppo(fn, B, prm));
    if (!be || !step || !x_next || !mean || !mean_old || !logp_new || !logp_old || !adv || !stats)
        return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    if (step->kind != FR_SAMPLER_SDE)
        return fr_fail(FR_ERR_ARG, "%s: GRPO-Guard needs an sde step, got %s", fn, fr_sampler_name(step->kind));
    if (mode != FR_GUARD_BIAS_BATCH && mode != FR_GUARD_BIAS_SAMPLE)
        return fr_fail(FR_ERR_ARG, "%s: invalid bias mode %d", fn, (int)mode);
    fr_step_std sd;
    FR_TRY(fr_sampler_std(step, &sd)); /* validates σ, σ', σ_1, a */
    fr_sde_coef c = fr_sde_coef_make(step->sigma, step->sigma_next, step->sigma1, step->noise);
    float sqrt_dt = sqrtf(-1.0f * c.dt);
    float s = c.std;          /* sqrt_dt·σ_t == σ_t·sqrt_dt: one commutative product */
    float two_s2 = 2.0f * (s * s);
    float sd2 = sqrt_dt * sqrt_dt; /* `sqrt_dt.mean()**2` */
    if (!(s > 0.0f)) return fr_fail(FR_ERR_ARG, "%s: step std %g, expected > 0 (noise level > 0)", fn, (double)s);

    const int64_t n = B * D;
    float *w = fr_malloc((size_t)B * 8 * sizeof(float));
    if (!w) return FR_ERR_NOMEM;
    float *z = w, *dl = z + B, *term = dl + B, *dz = term + B, *bi = dz + B, *r = bi + B, *gd = r + B, *gm = gd + B;
    if (ratio) r = ratio;
    /* the bias: Σ Δμ² over the batch or per sample, Δμ = μ_θ − μ_old (an op entry) */
    fr_status st;
    if (mode == FR_GUARD_BIAS_BATCH) {
        /* `(Δμ).pow(2).mean(dim=())`: an empty dim tuple reduces everything (docs/algorithms/flow-grpo.md §3) */
        st = sumsq_rows(be, 1, n, mean, mean_old, bi);
        const float b0 = (bi[0] / (float)n) / two_s2;
        for (int64_t b = 0; b < B; b++) bi[b] = b0;
    } else {
        st = sumsq_rows(be, B, D, mean, mean_old, bi);
        for (int64_t b = 0; b < B; b++) bi[b] = (bi[b] / (float)D) / two_s2;
    }
    if (st != FR_OK) goto done;
    for (int64_t b = 0; b < B; b++) {
        dl[b] = logp_new[b] - logp_old[b];
        z[b] = fr_guard_logratio_elem(logp_new[b], logp_old[b], bi[b], s);
    }
    /* L = mean_b(...) / sd2: DivBackward gout/sd2, then MeanBackward /B */
    ppo_core(B, prm, z, dl, adv, (gout / sd2) / (float)B, r, term, dz, stats);
    stats->loss = stats->loss / sd2;
    if (bias) memcpy(bias, bi, (size_t)B * sizeof(float));

    if (grad_mean) {
        float two_var = fr_gauss_coef_make(s).two_var; /* the sde log-prob's 2·std² */
        /* z = (.. + bias)·s: MulBackward gives gy = dz·s to logp_new and to the bias; gd, gm
         * are each row's factors of fr_guard_dmu_elem */
        float gm_all = 0.0f;
        if (mode == FR_GUARD_BIAS_BATCH) {
            /* the scalar bias broadcast over B: its gradient is the batch reduction of gy */
            float gb = 0.0f;
            for (int64_t b = 0; b < B; b++) gb = gb + dz[b] * s;
            gm_all = (gb / two_s2) / (float)n;
        }
        for (int64_t b = 0; b < B; b++) {
            const float gy = dz[b] * s;
            gd[b] = fr_gauss_row_scale(gy, (float)D, two_var);
            gm[b] = mode == FR_GUARD_BIAS_BATCH ? gm_all : (gy / two_s2) / (float)D;
        }
        float *dg = fr_dev_floats(be, 2 * B);
        if (!dg) {
            st = FR_ERR_NOMEM;
            goto done;
        }
        st = fr_h2d(be, dg, gd, (size_t)(2 * B) * sizeof(float)); /* gd, gm: adjacent on both sides */
        if (st == FR_OK) be->ops->guard_grad(B, D, x_next, mean, mean_old, dg, dg + B, grad_mean, accumulate);
        fr_dev_free(be, dg);
    }
done:
    free(w);
    return st;
}

fr_status fr_grpo_dmean_dv(const fr_step *step, float *dmean_dv)
{
    if (!step || !dmean_dv) return fr_fail(FR_ERR_ARG, "fr_grpo_dmean_dv: NULL argument");
    fr_step_std sd;
    FR_TRY(fr_sampler_std(step, &sd)); /* validates the step's scalars */
    switch (step->kind) {
    case FR_SAMPLER_ODE: *dmean_dv = step->sigma_next - step->sigma; return FR_OK;
    case FR_SAMPLER_SDE:
        *dmean_dv = fr_sde_dmean_dv(fr_sde_coef_make(step->sigma, step->sigma_next, step->sigma1, step->noise));
        return FR_OK;
    case FR_SAMPLER_CPS:
        *dmean_dv = fr_cps_dmean_dv(fr_cps_coef_make(step->sigma, step->sigma_next, step->noise));
        return FR_OK;
    case FR_SAMPLER_DANCE:
        *dmean_dv = fr_dance_dmean_dv(fr_dance_coef_make(step->sigma, step->sigma_next, step->noise));
        return FR_OK;
    case FR_SAMPLER_DDIM:
        if (step->x0_clip > 0.0f)
            return fr_fail(FR_ERR_UNSUPPORTED, "fr_grpo_dmean_dv: ddim with x0 clipping has a per-element derivative");
        *dmean_dv = fr_ddim_dmean_deps(fr_ddim_coef_make(step->alpha_bar, step->alpha_bar_prev, step->noise, 0.0f));
        return FR_OK;
    default:
        return fr_fail(FR_ERR_UNSUPPORTED, "fr_grpo_dmean_dv: no per-step scalar for a %s step",
                       fr_sampler_name(step->kind) ? fr_sampler_name(step->kind) : "invalid");
    }
}

fr_status fr_grpo_accum_divisor(int64_t grad_accum, int64_t n_steps, int64_t *divisor)
{
    if (!divisor) return fr_fail(FR_ERR_ARG, "fr_grpo_accum_divisor: NULL output");
    if (grad_accum < 1 || n_steps < 1 || grad_accum > ((int64_t)1 << 24) / n_steps)
        return fr_fail(FR_ERR_ARG, "fr_grpo_accum_divisor: grad_accum %lld x steps %lld, expected both >= 1 (product <= 2^24)",
                       (long long)grad_accum, (long long)n_steps);
    *divisor = grad_accum * n_steps;
    return FR_OK;
}
