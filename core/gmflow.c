/* GMFlow's mixture math on the host, in double (flowrl/gmflow.h; spec/more.md §10.1;
 * Lakonik/GMFlow@c3697df lib/models/diffusions/gmflow.py reverse_transition,
 * lib/models/losses/diffusion_loss.py gaussian_mixture_nll_loss). */
#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gmflow.h"

#define GM_INV_STD_MAX 1e4 /* 1 / eps, eps = 1e-4 in gaussian_mixture_nll_loss */
#define GM_K_MAX 4096

fr_gmflow_coefs fr_gmflow_transition_coefs(double sigma, double sigma_to)
{
    const double alpha = 1.0 - sigma, alpha_to = 1.0 - sigma_to;
    const double so = sigma_to / sigma, aa = alpha / alpha_to, r = so * aa;
    fr_gmflow_coefs c;
    c.c1 = so * so * aa;
    c.beta = 1.0 - r * r;
    c.c2 = c.beta * alpha_to;
    c.c3 = c.beta * sigma_to * sigma_to;
    return c;
}

/* log_softmax of the K logits a into logw; returns nothing, logw (K,) */
static void log_softmax(int K, const float *a, double *logw)
{
    double mx = (double)a[0];
    for (int k = 1; k < K; k++)
        if ((double)a[k] > mx) mx = (double)a[k];
    double s = 0.0;
    for (int k = 0; k < K; k++) s += fr_awm_exp((double)a[k] - mx);
    const double lse = mx + fr_awm_log(s);
    for (int k = 0; k < K; k++) logw[k] = (double)a[k] - lse;
}

void fr_gmflow_transition(int K, int D, const float *row, const float *x, double sigma, double sigma_to,
                          double *means, double *logw, double *var)
{
    const fr_gmflow_coefs c = fr_gmflow_transition_coefs(sigma, sigma_to);
    for (int k = 0; k < K; k++) {
        const float *mu = row + fr_gm_mean_off(K, D, k);
        for (int d = 0; d < D; d++) means[k * D + d] = c.c1 * x[d] + c.c2 * ((double)x[d] - sigma * (double)mu[d]);
    }
    log_softmax(K, row + fr_gm_logit_off(K, D), logw);
    const double g = c.c2 * sigma * fr_awm_exp((double)row[fr_gm_logstd_off(K, D)]);
    *var = g * g + c.c3;
}

double fr_gmflow_nll_row(int K, int D, const float *row, const float *x, const float *y, double sigma,
                         double sigma_to, double *grad)
{
    if (K < 1 || K > GM_K_MAX || D < 1) return NAN;
    double *m = malloc(sizeof(double) * (size_t)K * (size_t)(D + 2));
    if (!m) return NAN;
    double *logw = m + (size_t)K * D, *ll = logw + K, var;
    fr_gmflow_transition(K, D, row, x, sigma, sigma_to, m, logw, &var);
    const double logstd = 0.5 * fr_awm_log(var), inv = 1.0 / sqrt(var);
    const int clamped = !(inv <= GM_INV_STD_MAX);
    const double r = clamped ? GM_INV_STD_MAX : inv, r2 = r * r;
    double mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        double q = 0.0;
        for (int d = 0; d < D; d++) {
            const double z = (m[k * D + d] - (double)y[d]) * r;
            q += -0.5 * z * z - logstd;
        }
        ll[k] = q + logw[k];
        if (ll[k] > mx) mx = ll[k];
    }
    double s = 0.0;
    for (int k = 0; k < K; k++) s += fr_awm_exp(ll[k] - mx);
    const double lse = mx + fr_awm_log(s), nll = -lse;
    if (grad) {
        const fr_gmflow_coefs c = fr_gmflow_transition_coefs(sigma, sigma_to);
        const double g = c.c2 * sigma * fr_awm_exp((double)row[fr_gm_logstd_off(K, D)]);
        const double dlogstd = g * g / var; /* d log std / d s */
        double ds = 0.0;
        for (int k = 0; k < K; k++) {
            const double p = fr_awm_exp(ll[k] - lse); /* the responsibility of component k */
            double q = 0.0;
            for (int d = 0; d < D; d++) {
                const double dk = m[k * D + d] - (double)y[d];
                /* d ll_k / d mu_kd = (−dk r²)(−c2 σ) */
                grad[fr_gm_mean_off(K, D, k) + d] = -p * dk * r2 * c.c2 * sigma;
                q += dk * dk * r2;
            }
            grad[fr_gm_logit_off(K, D) + k] = fr_awm_exp(logw[k]) - p;
            /* d ll_k / d s: (g²/V)(Σ d² r² − D) with r = 1/std; −D g²/V where r is clamped */
            ds -= p * (clamped ? -(double)D * dlogstd : dlogstd * (q - (double)D));
        }
        grad[fr_gm_logstd_off(K, D)] = ds;
    }
    free(m);
    return nll;
}

double fr_gmflow_nll(int64_t B, int K, int D, const float *rows, const float *x, const float *y, const double *sigma,
                     const double *sigma_to, float *dout)
{
    const int64_t W = fr_gm_width(K, D);
    double *g = dout ? malloc(sizeof(double) * (size_t)W) : NULL;
    if (dout && !g) return NAN;
    double sum = 0.0;
    for (int64_t b = 0; b < B; b++) {
        sum += fr_gmflow_nll_row(K, D, rows + b * W, x + b * D, y + b * D, sigma[b], sigma_to[b], g);
        if (dout)
            for (int64_t j = 0; j < W; j++) dout[b * W + j] = (float)(g[j] / (double)B);
    }
    free(g);
    return sum / (double)B;
}
