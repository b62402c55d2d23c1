/* ReinFlow's learned-noise Markov chain (flowrl/reinflow.h; docs/algorithms/reinflow.md; spec
 * samplers.md §8, objectives.md §13): a transition's mean and log σ, the chain's normalised
 * log-prob, entropy and their gradients, and the noise range's schedule. Host float64; the
 * algorithm that trains on it is core/algo/reinflow.c. */
#include <math.h>

#include "flowrl/awm_elem.h"
#include "flowrl/env_ctl.h"
#include "flowrl/reinflow.h"

#define HALF_LOG_2PI 0.91893853320467274178

double fr_reinflow_log_sigma(float h, double lv_min, double lv_max, double *th)
{
    /* tanh from exp (design.md §1.1's operations): 1 − 2/(e^{2h} + 1), ±1 at overflow */
    const double t = 1.0 - 2.0 / (fr_awm_exp(2.0 * (double)h) + 1.0);
    *th = t;
    return 0.5 * (lv_min + (lv_max - lv_min) * (t + 1.0) * 0.5);
}

void fr_reinflow_transition(int64_t A, const float *x, const float *out, const float *h, double dt, double scale,
                            double clip, double lv_min, double lv_max, double *mu, double *log_sigma, double *th,
                            uint8_t *inside)
{
    for (int64_t d = 0; d < A; d++) {
        const double m = (double)x[d] + dt * scale * (double)out[d];
        inside[d] = m >= -clip && m <= clip;
        mu[d] = m < -clip ? -clip : m > clip ? clip : m;
        log_sigma[d] = fr_reinflow_log_sigma(h[d], lv_min, lv_max, &th[d]);
    }
}

void fr_reinflow_chain_logp(int K, int64_t A, const float *x, const double *mu, const double *log_sigma, double *logp,
                            double *entropy)
{
    double lp = 0.0, h = 0.0;
    for (int64_t d = 0; d < A; d++) {
        const double z = (double)x[d];
        lp += -0.5 * z * z - HALF_LOG_2PI;
        h += 0.5 + HALF_LOG_2PI;
    }
    for (int k = 0; k < K; k++) {
        const float *xn = x + (int64_t)(k + 1) * A;
        const double *m = mu + (int64_t)k * A, *ls = log_sigma + (int64_t)k * A;
        double sl = 0.0, sh = 0.0;
        for (int64_t d = 0; d < A; d++) {
            const double z = ((double)xn[d] - m[d]) * fr_awm_exp(-ls[d]);
            sl += -0.5 * z * z - ls[d] - HALF_LOG_2PI;
            sh += ls[d] + 0.5 + HALF_LOG_2PI;
        }
        lp += sl;
        h += sh;
    }
    const double norm = (double)(K + 1) * (double)A;
    *logp = lp / norm;
    if (entropy) *entropy = h / norm;
}

void fr_reinflow_chain_grad(int K, int64_t A, const float *x, const double *mu, const double *log_sigma, double g_logp,
                            double g_ent, double *dmu, double *dls)
{
    const double norm = (double)(K + 1) * (double)A;
    for (int64_t j = 0; j < (int64_t)K * A; j++) {
        const double iv = fr_awm_exp(-2.0 * log_sigma[j]), diff = (double)x[A + j] - mu[j];
        dmu[j] = g_logp * diff * iv / norm;
        dls[j] = (g_logp * (diff * diff * iv - 1.0) + g_ent) / norm;
    }
}

double fr_reinflow_sigma_max(int64_t e, int64_t E, double sigma_min, double sigma_max, double hold, double decay)
{
    if (e < 1) return sigma_max;
    const double x = (double)(e - 1), lo = sigma_min * (1.0 - decay) + sigma_max * decay;
    const double hs = floor((double)E * hold), as = floor((double)E * (1.0 - hold));
    double p = as > 0.0 ? (x - hs) / as : (x >= hs ? 1.0 : 0.0);
    p = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
    double s, c;
    fr_ctl_sincos(p * M_PI, &s, &c);
    return lo + (sigma_max - lo) * 0.5 * (1.0 + c);
}
