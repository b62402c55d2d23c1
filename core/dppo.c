/* DPPO's denoising-MDP step and policy loss (flowrl/dppo.h; docs/algorithms/dppo.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/dppo.h"

#define HALF_LOG_2PI 0.91893853320467274178

double fr_dppo_clip_of(const fr_dppo_cfg *c, int64_t i)
{
    if (c->K < 2) return c->clip;
    const double u = (double)i / (double)(c->K - 1);
    return c->clip_base + (c->clip - c->clip_base) * (fr_awm_exp(c->clip_rate * u) - 1.0) / (fr_awm_exp(c->clip_rate) - 1.0);
}

void fr_dppo_step_mean(const fr_ddpm_policy *p, int t, int64_t A, const float *x, const float *eps, double x0_clip,
                       double *mu, double *dmu)
{
    for (int64_t d = 0; d < A; d++) {
        double x0 = p->recip_ab[t] * (double)x[d] - p->recipm1_ab[t] * (double)eps[d];
        const int inside = x0 >= -x0_clip && x0 <= x0_clip;
        x0 = x0 < -x0_clip ? -x0_clip : x0 > x0_clip ? x0_clip : x0;
        if (dmu) dmu[d] = inside ? -p->c_x0[t] * p->recipm1_ab[t] : 0.0;
        mu[d] = p->c_x0[t] * x0 + p->c_xt[t] * (double)x[d];
    }
}

double fr_dppo_step_logp(const fr_ddpm_policy *p, int t, int64_t A, const float *xn, const double *mu, double min_std,
                         double *dlp)
{
    const double sd = p->sd[t] > min_std ? p->sd[t] : min_std, iv = 1.0 / (sd * sd), lsd = fr_awm_log(sd);
    double sum = 0.0;
    for (int64_t d = 0; d < A; d++) {
        const double e = (double)xn[d] - mu[d];
        double l = -0.5 * e * e * iv - lsd - HALF_LOG_2PI;
        const int inside = l >= -5.0 && l <= 2.0;
        l = l < -5.0 ? -5.0 : l > 2.0 ? 2.0 : l;
        sum += l;
        if (dlp) dlp[d] = inside ? e * iv / (double)A : 0.0;
    }
    return sum / (double)A;
}

static int cmp_double(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* torch.quantile(v, q) of the ascending v (n values): linear interpolation. */
static double quantile(const double *v, int64_t n, double q)
{
    const double pos = q * (double)(n - 1);
    const int64_t lo = (int64_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (pos - (double)lo) * (v[hi] - v[lo]);
}

fr_status fr_dppo_policy_loss(const fr_ddpm_policy *p, const fr_dppo_cfg *c, int64_t M, const float *eps, const float *x,
                              const float *xn, const int *i, const double *logp_old, const double *adv, double *logp_new,
                              double *adv_used, double *clip, double *g, float *deps, fr_ctl_ppo_stats *st)
{
    const int64_t A = p->A;
    if (A > 64) return fr_fail(FR_ERR_ARG, "dppo: %lld action dimensions (at most 64)", (long long)A);
    double mu[64], dmu[64], dlp[64];
    for (int64_t j = 0; j < M; j++) {
        if (i[j] < 0 || i[j] >= c->K || c->K > p->T)
            return fr_fail(FR_ERR_ARG, "dppo: pair %lld has denoising index %d of %lld fine-tuned steps (%d in all)",
                           (long long)j, i[j], (long long)c->K, p->T);
        const int t = (int)(c->K - 1 - i[j]);
        fr_dppo_step_mean(p, t, A, x + j * A, eps + j * A, c->x0_clip, mu, NULL);
        logp_new[j] = fr_dppo_step_logp(p, t, A, xn + j * A, mu, c->min_logp_std, NULL);
        clip[j] = fr_dppo_clip_of(c, i[j]);
    }
    fr_ctl_adv_normalize(M, adv, adv_used);
    if (c->adv_q_lo > 0.0 || c->adv_q_hi < 1.0) {
        double *v = malloc((size_t)(M > 0 ? M : 1) * sizeof *v);
        if (!v) return FR_ERR_NOMEM;
        memcpy(v, adv_used, (size_t)M * sizeof *v);
        qsort(v, (size_t)M, sizeof *v, cmp_double);
        const double lo = quantile(v, M, c->adv_q_lo), hi = quantile(v, M, c->adv_q_hi);
        free(v);
        for (int64_t j = 0; j < M; j++) adv_used[j] = adv_used[j] < lo ? lo : adv_used[j] > hi ? hi : adv_used[j];
    }
    for (int64_t j = 0; j < M; j++) adv_used[j] *= fr_awm_pow(c->gamma_den, (double)(c->K - 1 - i[j]));
    fr_ctl_ppo_clip_rows(M, logp_new, logp_old, adv_used, clip, g, st);
    /* dL/dε̂ = g · dlogp/dμ · dμ/dε̂, the step's mean and log-probability again */
    for (int64_t j = 0; j < M; j++) {
        const int t = (int)(c->K - 1 - i[j]);
        fr_dppo_step_mean(p, t, A, x + j * A, eps + j * A, c->x0_clip, mu, dmu);
        (void)fr_dppo_step_logp(p, t, A, xn + j * A, mu, c->min_logp_std, dlp);
        for (int64_t d = 0; d < A; d++) deps[j * A + d] = (float)(g[j] * dlp[d] * dmu[d]);
    }
    return FR_OK;
}
