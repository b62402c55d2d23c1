/* DiffusionNFT's objective for one micro-batch (docs/algorithms/nft.md; flowrl/nft.h): the
 * nft_rows / nft_grad op entries for the D-wide work, float64 per-row values on the host. */
#include "flowrl/nft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "flowrl/schedule.h"

fr_nft_params fr_nft_defaults(void)
{
    fr_nft_params p;
    memset(&p, 0, sizeof p);
    p.beta = 1.0;
    p.adv_clip_max = 5.0;
    p.adv_mode = FR_NFT_ADV_ALL;
    p.kl_beta = 1e-4;
    return p;
}

static const char *const k_adv_mode[] = {"all", "positive_only", "negative_only", "one_only", "binary"};

const char *fr_nft_adv_mode_name(fr_nft_adv_mode m)
{
    return (int)m >= 0 && (int)m < (int)(sizeof k_adv_mode / sizeof k_adv_mode[0]) ? k_adv_mode[m] : NULL;
}

fr_status fr_nft_params_check(const fr_nft_params *p)
{
    if (!p) return fr_fail(FR_ERR_ARG, "nft: params are NULL");
    if (!(isfinite(p->beta) && p->beta > 0.0)) return fr_fail(FR_ERR_ARG, "nft: beta %g, expected > 0", p->beta);
    if (!(isfinite(p->adv_clip_max) && p->adv_clip_max > 0.0))
        return fr_fail(FR_ERR_ARG, "nft: adv_clip_max %g, expected > 0", p->adv_clip_max);
    if (!fr_nft_adv_mode_name(p->adv_mode)) return fr_fail(FR_ERR_ARG, "nft: adv_mode %d is invalid", (int)p->adv_mode);
    if (!(isfinite(p->kl_beta) && p->kl_beta >= 0.0))
        return fr_fail(FR_ERR_ARG, "nft: kl beta %g, expected >= 0", p->kl_beta);
    return FR_OK;
}

fr_nft_coef fr_nft_coef_of(double beta)
{
    fr_nft_coef c = {(float)beta, (float)(1.0 - beta), (float)(1.0 + beta)};
    return c;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

double fr_nft_r(fr_nft_adv_mode mode, double acm, float adv)
{
    double a = clampd((double)adv, -acm, acm);
    switch (mode) {
    case FR_NFT_ADV_ALL: break;
    case FR_NFT_ADV_POSITIVE_ONLY: a = clampd(a, 0.0, acm); break;
    case FR_NFT_ADV_NEGATIVE_ONLY: a = clampd(a, -acm, 0.0); break;
    case FR_NFT_ADV_ONE_ONLY: a = a > 0.0 ? 1.0 : 0.0; break;
    case FR_NFT_ADV_BINARY: a = a > 0.0 ? 1.0 : (a < 0.0 ? -1.0 : a); break; /* torch.sign: NaN, 0 stay */
    }
    return clampd((a / acm) / 2.0 + 0.5, 0.0, 1.0);
}

enum { MAX_T = 4096 };

fr_status fr_nft_times(uint32_t seed, uint32_t epoch, const uint32_t *sample_id, int64_t B, int64_t T, int64_t J,
                       const float *sigmas, float *t)
{
    if (B < 1 || T < 1 || T > MAX_T || J < 1 || J > T || B > ((int64_t)1 << 24))
        return fr_fail(FR_ERR_ARG, "fr_nft_times: B %lld, T %lld, J %lld: expected B >= 1, 1 <= J <= T <= %d",
                       (long long)B, (long long)T, (long long)J, MAX_T);
    if (!sample_id || !sigmas || !t) return fr_fail(FR_ERR_ARG, "fr_nft_times: NULL argument");
    int64_t perm[MAX_T];
    for (int64_t b = 0; b < B; b++) {
        fr_rng_perm(perm, T, seed, FR_RNG_NFT_TIMES, epoch, sample_id[b]); /* the sample's permutation */
        for (int64_t j = 0; j < J; j++) /* `timesteps[:, j] / 1000.0`, timesteps = 1000·σ */
            t[j * B + b] = fr_timestep_diffusers(sigmas[perm[j]]) / 1000.0f;
    }
    return FR_OK;
}

fr_status fr_nft_noise(fr_backend *be, uint32_t seed, uint32_t epoch, const uint32_t *sample_id, int64_t J, int64_t B,
                       int64_t D, const float *x0, const float *t, float *eps, float *xt)
{
    if (J < 1 || B < 1 || D < 1 || J > MAX_T || B > ((int64_t)1 << 24) || J * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "fr_nft_noise: shape J %lld, B %lld, D %lld", (long long)J, (long long)B,
                       (long long)D);
    if (!be || !sample_id || !x0 || !t || !eps || !xt) return fr_fail(FR_ERR_ARG, "fr_nft_noise: NULL argument");
    be->ops->noise_fm(J * B, B, D, seed, FR_RNG_NFT_NOISE, epoch, 0, sample_id, x0, t, xt, eps);
    return FR_OK;
}

/* mean of x (n,), float64 lanes */
static double mean_d(const double *x, int64_t n)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < n; i++) fr_awm_lanes_add(&acc, i, x[i]);
    return fr_awm_lanes_sum(&acc) / (double)n;
}

fr_status fr_nft_loss(fr_backend *be, const fr_nft_params *p, int64_t J, int64_t B, int64_t D, const float *t,
                      const float *t_dev, const float *x0, const float *xt, const float *v, const float *v_old,
                      const float *v_ref, const float *adv, double gout, float *grad_v, double *r_out,
                      fr_nft_stats *stats)
{
    const char *fn = "fr_nft_loss";
    FR_TRY(fr_nft_params_check(p));
    if (J < 1 || B < 1 || D < 1 || J > MAX_T || B > ((int64_t)1 << 24) || J * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape J %lld, B %lld, D %lld", fn, (long long)J, (long long)B, (long long)D);
    if (!be || !t || !t_dev || !x0 || !xt || !v || !v_old || !adv || !stats)
        return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    if (p->kl_beta > 0.0 && !v_ref) return fr_fail(FR_ERR_ARG, "%s: kl beta %g > 0 needs the reference output", fn, p->kl_beta);
    if (!isfinite(gout)) return fr_fail(FR_ERR_ARG, "%s: gout %g, expected finite", fn, gout);
    const int64_t R = J * B;
    const int kl = p->kl_beta > 0.0;
    memset(stats, 0, sizeof *stats);
    /* host float64: rows [w⁺ | w⁻ | L⁺ | L⁻] (4R), per-row loss (R), KL rows (R), r (B),
     * coefficients [cp | cn] (2R) and the KL's (R); backend: 4R rows, 2R + R coefficients */
    double *h = fr_malloc((size_t)(9 * R + B) * sizeof(double));
    double *d = fr_dev_doubles(be, 7 * R);
    if (!h || !d) {
        free(h);
        fr_dev_free(be, d);
        return FR_ERR_NOMEM;
    }
    double *rows = h, *lr = rows + 4 * R, *klr = lr + R, *rb = klr + R, *cpn = rb + B, *ckl = cpn + 2 * R;
    double *d_rows = d, *d_cpn = d + 4 * R, *d_ckl = d + 6 * R;
    const fr_nft_coef c = fr_nft_coef_of(p->beta);
    const double acm = p->adv_clip_max;
    fr_status st;
    be->ops->nft_rows(R, B, D, c, t_dev, xt, v, v_old, x0, d_rows);
    if ((st = fr_d2h(be, rows, d_rows, (size_t)(4 * R) * sizeof(double))) != FR_OK) goto done;
    for (int64_t b = 0; b < B; b++) rb[b] = fr_nft_r(p->adv_mode, acm, adv[b]);
    if (r_out) memcpy(r_out, rb, (size_t)B * sizeof(double));
    for (int64_t i = 0; i < R; i++) {
        double r = rb[i % B], lp = rows[2 * R + i], ln = rows[3 * R + i];
        /* `(r * positive_loss / beta + (1.0 - r) * negative_loss / beta) * adv_clip_max` */
        lr[i] = ((r * lp) / p->beta + ((1.0 - r) * ln) / p->beta) * acm;
    }
    stats->policy_loss = mean_d(lr, R);
    stats->pos_loss = mean_d(rows + 2 * R, R);
    stats->neg_loss = mean_d(rows + 3 * R, R);
    stats->r_mean = mean_d(rb, B);
    stats->loss = stats->policy_loss;
    if (kl) {
        be->ops->row_msd_f64(R, D, v, v_ref, d_rows);
        if ((st = fr_d2h(be, klr, d_rows, (size_t)R * sizeof(double))) != FR_OK) goto done;
        stats->kl = mean_d(klr, R);
        stats->loss = stats->loss + p->kl_beta * stats->kl;
    }
    if (grad_v) {
        const double two_over_n = 2.0 / (double)(R * D), bratio = (double)c.b / p->beta;
        for (int64_t i = 0; i < R; i++) {
            double r = rb[i % B], base = gout * acm;
            cpn[i] = -((((base * r) * (double)t[i]) * two_over_n) * bratio) / rows[i];
            cpn[R + i] = ((((base * (1.0 - r)) * (double)t[i]) * two_over_n) * bratio) / rows[R + i];
            ckl[i] = ((gout * p->kl_beta) * two_over_n);
        }
        if ((st = fr_h2d(be, d_cpn, cpn, (size_t)(2 * R) * sizeof(double))) != FR_OK) goto done;
        be->ops->nft_grad(R, B, D, c, t_dev, xt, v, v_old, x0, d_cpn, grad_v);
        if (kl) {
            if ((st = fr_h2d(be, d_ckl, ckl, (size_t)R * sizeof(double))) != FR_OK) goto done;
            be->ops->kl_grad_add(R, D, v, v_ref, d_ckl, NULL, NULL, grad_v);
        }
    }
    st = FR_OK;
done:
    free(h);
    fr_dev_free(be, d);
    return st;
}

double fr_nft_decay(int decay_type, int64_t global_step)
{
    double flat, uprate, uphold;
    switch (decay_type) {
    case 0: flat = 0, uprate = 0.0, uphold = 0.0; break;
    case 1: flat = 0, uprate = 0.001, uphold = 0.5; break;
    default: flat = 75, uprate = 0.0075, uphold = 0.999; break;
    }
    if ((double)global_step < flat) return 0.0;
    double d = ((double)global_step - flat) * uprate;
    return d < uphold ? d : uphold;
}
