/* The pi-Flow GMFlow policy: the x0-GM of a head row, its closed-form posterior, the policy
 * velocity, its Euler rollout and its gradient (flowrl/piflow.h; spec more.md §10.2;
 * Lakonik/piFlow@4229541 lakonlab/models/diffusions/gmflow.py gmflow_posterior_mean_jit,
 * piflow_policies/gmflow.py GMFlowPolicy, demo/train_piflow_dit_imagenet_toymodel.py
 * policy_rollout). Host double throughout. */
#include <math.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gm.h"
#include "flowrl/piflow.h"

static double floor_eps(double v) { return v < FR_PIFLOW_EPS ? FR_PIFLOW_EPS : v; }

/* out (n,) = log_softmax(a) with the maximum subtracted first (torch's order of ideas). */
static void log_softmax(const double *a, int n, double *out)
{
    double mx = a[0];
    for (int k = 1; k < n; k++)
        if (a[k] > mx) mx = a[k];
    double s = 0.0;
    for (int k = 0; k < n; k++) s += fr_awm_exp(a[k] - mx);
    const double lse = mx + fr_awm_log(s);
    for (int k = 0; k < n; k++) out[k] = a[k] - lse;
}

fr_status fr_piflow_gm_from_row(fr_piflow_gm *g, int K, int D, const float *row, const float *x_s, double sigma_s)
{
    if (K < 1 || K > FR_PIFLOW_MAX_K || D < 1 || D > FR_PIFLOW_MAX_D || K * D > FR_PIFLOW_MAX_KD)
        return fr_fail(FR_ERR_ARG, "piflow: K = %d and D = %d, expected 1..%d and 1..%d with K·D <= %d", K, D,
                       FR_PIFLOW_MAX_K, FR_PIFLOW_MAX_D, FR_PIFLOW_MAX_KD);
    const int64_t W = fr_gm_width(K, D);
    for (int64_t i = 0; i < W; i++)
        if (!isfinite(row[i])) return fr_fail(FR_ERR_NUMERIC, "piflow: head row element %lld is %g", (long long)i, (double)row[i]);
    g->K = K;
    g->D = D;
    g->sigma_s = sigma_s;
    for (int c = 0; c < D; c++) g->x_s[c] = (double)x_s[c];
    const double ss = floor_eps(sigma_s);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < D; c++) g->m[k * D + c] = g->x_s[c] - ss * (double)row[fr_gm_mean_off(K, D, k) + c];
    double a[FR_PIFLOW_MAX_K];
    for (int k = 0; k < K; k++) a[k] = (double)row[fr_gm_logit_off(K, D) + k];
    log_softmax(a, K, g->logw);
    g->var = ss * ss * fr_awm_exp(2.0 * (double)row[fr_gm_logstd_off(K, D)]);
    return FR_OK;
}

void fr_piflow_posterior(const fr_piflow_gm *g, const double *x, double sigma, fr_piflow_post *p)
{
    const int K = g->K, D = g->D;
    const double ss = floor_eps(g->sigma_s), s = floor_eps(sigma);
    const double ao_s = (1.0 - ss) / ss, ao = (1.0 - s) / s; /* α/σ at the source and here */
    p->sigma = s;
    p->zeta = ao * ao - ao_s * ao_s;
    for (int c = 0; c < D; c++) p->nu[c] = ao * x[c] / s - ao_s * g->x_s[c] / ss;
    const double d = g->var * p->zeta + 1.0;
    p->clamped = d < FR_PIFLOW_EPS;
    p->denom = p->clamped ? FR_PIFLOW_EPS : d;
    double l[FR_PIFLOW_MAX_K] = {0};
    for (int k = 0; k < K; k++) {
        const double *m = g->m + k * D;
        double q = 0.0;
        for (int c = 0; c < D; c++) {
            p->mp[k * D + c] = (g->var * p->nu[c] + m[c]) / p->denom;
            q += m[c] * (p->nu[c] - 0.5 * p->zeta * m[c]);
        }
        l[k] = g->logw[k] + q / p->denom;
    }
    double lw[FR_PIFLOW_MAX_K];
    log_softmax(l, K, lw);
    for (int k = 0; k < K; k++) p->w[k] = fr_awm_exp(lw[k]);
    for (int c = 0; c < D; c++) {
        double e = 0.0;
        for (int k = 0; k < K; k++) e += p->mp[k * D + c] * p->w[k];
        p->mean[c] = e;
    }
}

void fr_piflow_pi(const fr_piflow_gm *g, const double *x, double sigma, double *u)
{
    fr_piflow_post p;
    fr_piflow_posterior(g, x, sigma, &p);
    for (int c = 0; c < g->D; c++) u[c] = (x[c] - p.mean[c]) / p.sigma;
}

void fr_piflow_rollout(const fr_piflow_gm *g, double sigma_from, double sigma_to, int substeps, double *x)
{
    const double delta = sigma_from - sigma_to;
    double nd = nearbyint(delta * (double)substeps); /* round half to even, as torch.round */
    const int64_t n = nd < 1.0 ? 1 : (int64_t)nd;
    const double h = delta / (double)n;
    double sigma = sigma_from, u[FR_PIFLOW_MAX_D];
    for (int64_t i = 0; i < n; i++) {
        fr_piflow_pi(g, x, sigma, u);
        double next = sigma - h;
        if (next < 0.0) next = 0.0;
        for (int c = 0; c < g->D; c++) x[c] += u[c] * (next - sigma);
        sigma = next;
    }
}

/* Backward of π = (x − Σ_k w_k' m_k')/σ into the row (μ_k, a_k, s); e = dL/dE[x0] = −du/σ.
 *   dm_k' = w_k' e;  dℓ_k = w_k' (e·m_k' − e·E[x0])  (softmax)
 *   m_k' = (vν + m_k)/d:  ∂/∂m_k = 1/d,  ∂/∂v = (ν − m_k' ∂d/∂v)/d
 *   ℓ_k = log w_k + Q_k/d, Q_k = Σ_c m_kc(ν_c − ½ζ m_kc):  ∂/∂m_kc = (ν_c − ζ m_kc)/d,
 *         ∂/∂v = −Q_k ∂d/∂v / d²,  ∂d/∂v = ζ (0 when d was floored)
 *   m_k = x_s − σ_s μ_k: dμ_k = −σ_s dm_k;  v = σ_s² e^{2s}: ds = 2v dv;
 *   log w = log_softmax(a): da_k = dlogw_k − w_k Σ_j dlogw_j. */
void fr_piflow_pi_grad(const fr_piflow_gm *g, const double *x, double sigma, const double *du, double *drow)
{
    const int K = g->K, D = g->D;
    fr_piflow_post p;
    fr_piflow_posterior(g, x, sigma, &p);
    double e[FR_PIFLOW_MAX_D];
    for (int c = 0; c < D; c++) e[c] = -du[c] / p.sigma;
    double eE = 0.0;
    for (int c = 0; c < D; c++) eE += e[c] * p.mean[c];
    const double dd_dv = p.clamped ? 0.0 : p.zeta, d = p.denom, ss = floor_eps(g->sigma_s);
    double dv = 0.0, dlogw[FR_PIFLOW_MAX_K], sum_dlogw = 0.0;
    for (int k = 0; k < K; k++) {
        const double *m = g->m + k * D, *mp = p.mp + k * D;
        double em = 0.0, q = 0.0;
        for (int c = 0; c < D; c++) {
            em += e[c] * mp[c];
            q += m[c] * (p.nu[c] - 0.5 * p.zeta * m[c]);
        }
        const double gl = p.w[k] * (em - eE);
        for (int c = 0; c < D; c++) {
            const double dm = p.w[k] * e[c] / d + gl * (p.nu[c] - p.zeta * m[c]) / d;
            drow[fr_gm_mean_off(K, D, k) + c] = -ss * dm;
            dv += p.w[k] * e[c] * (p.nu[c] - mp[c] * dd_dv) / d;
        }
        dv -= gl * q * dd_dv / (d * d);
        dlogw[k] = gl;
        sum_dlogw += gl;
    }
    for (int k = 0; k < K; k++) drow[fr_gm_logit_off(K, D) + k] = dlogw[k] - fr_awm_exp(g->logw[k]) * sum_dlogw;
    drow[fr_gm_logstd_off(K, D)] = 2.0 * g->var * dv;
}
