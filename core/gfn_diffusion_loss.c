/* The losses of diffusion samplers as GFlowNets (flowrl/gfn_diffusion.h), float64 on the host,
 * as GFNOrg/gfn-diffusion@255b499 energy_sampling/gflownet_losses.py computes them, and the
 * Gaussian log-densities of P_F and the Brownian bridge P_B (models/gfn.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_diffusion.h"

#define LOG_2PI 1.8378770664093454836

const char *fr_gfnd_loss_name(fr_gfnd_loss k)
{
    switch (k) {
    case FR_GFND_TB: return "tb";
    case FR_GFND_TB_AVG: return "tb-avg";
    case FR_GFND_DB: return "db";
    case FR_GFND_SUBTB: return "subtb";
    }
    return NULL;
}

double fr_gfnd_log_normal(const double *y, const double *m, const double *v, int64_t D)
{
    double s = 0.0;
    for (int64_t d = 0; d < D; d++) {
        const double u = y[d] - m[d];
        s += -0.5 * (u * u / v[d] + LOG_2PI + fr_awm_log(v[d]));
    }
    return s;
}

/* models/gfn.py get_trajectory_fwd: back_mean = x_{k+1} − Δt·x_{k+1}/((k+1)Δt), back_var =
 * t_scale·Δt·k/(k+1) (the learned correction left at 1). */
double fr_gfnd_log_pb(const double *xk, const double *xk1, int64_t k, int64_t D, double t_scale, int64_t T)
{
    if (k == 0) return 0.0;
    const double dt = 1.0 / (double)T, v = t_scale * dt * (double)k / (double)(k + 1);
    double s = 0.0;
    for (int64_t d = 0; d < D; d++) {
        const double mean = xk1[d] - dt * xk1[d] / ((double)(k + 1) * dt), u = xk[d] - mean;
        s += -0.5 * (u * u / v + LOG_2PI + fr_awm_log(v));
    }
    return s;
}

/* subtb's coefficient of the pair (i, j), i < j ≤ T (utils.py cal_subtb_coef_matrix):
 * λ^{j−i} / Σ_{i'<j'} λ^{j'−i'}, the total Σ_{m=1}^{T} (T+1−m) λ^m taken in log space. */
static double subtb_log_total(double lambda, int64_t T)
{
    const double ll = fr_awm_log(lambda);
    double mx = -INFINITY;
    for (int64_t m = 1; m <= T; m++)
        if ((double)m * ll + fr_awm_log((double)(T + 1 - m)) > mx) mx = (double)m * ll + fr_awm_log((double)(T + 1 - m));
    double s = 0.0;
    for (int64_t m = 1; m <= T; m++) s += fr_awm_exp((double)m * ll + fr_awm_log((double)(T + 1 - m)) - mx);
    return mx + fr_awm_log(s);
}

fr_status fr_gfnd_loss_eval(fr_gfnd_loss k, int64_t B, int64_t T, const double *logpf, const double *logpb,
                       const double *logf, const double *logr, double log_z, double lambda, double *loss,
                       double *g_logpf, double *g_logf, double *g_log_z)
{
    if (!fr_gfnd_loss_name(k)) return fr_fail(FR_ERR_ARG, "gfn-diffusion: loss %d is not a loss", (int)k);
    if (B < 1 || T < 1) return fr_fail(FR_ERR_ARG, "gfn-diffusion: loss over %lld x %lld steps", (long long)B, (long long)T);
    if ((k == FR_GFND_DB || k == FR_GFND_SUBTB) && !logf)
        return fr_fail(FR_ERR_ARG, "gfn-diffusion: the %s loss needs log F", fr_gfnd_loss_name(k));
    for (int64_t i = 0; i < B * T; i++)
        if (!isfinite(logpf[i]) || !isfinite(logpb[i]))
            return fr_fail(FR_ERR_NUMERIC, "gfn-diffusion: log P_%s[%lld, %lld] = %g", isfinite(logpf[i]) ? "B" : "F",
                           (long long)(i / T), (long long)(i % T), isfinite(logpf[i]) ? logpb[i] : logpf[i]);
    for (int64_t b = 0; b < B; b++)
        if (!isfinite(logr[b])) return fr_fail(FR_ERR_NUMERIC, "gfn-diffusion: log R[%lld] = %g", (long long)b, logr[b]);
    if (g_logpf) memset(g_logpf, 0, (size_t)(B * T) * sizeof *g_logpf);
    if (g_logf) memset(g_logf, 0, (size_t)(B * (T + 1)) * sizeof *g_logf);
    if (g_log_z) *g_log_z = 0.0;
    const double inv_b = 1.0 / (double)B;
    double acc = 0.0;
    if (k == FR_GFND_TB || k == FR_GFND_TB_AVG) {
        /* s_b = Σ log P_F − Σ log P_B − log R; tb: r = log Z + s; tb-avg: r = s − mean s */
        double *s = malloc((size_t)B * sizeof *s), mean = 0.0;
        if (!s) return FR_ERR_NOMEM;
        for (int64_t b = 0; b < B; b++) {
            double v = 0.0;
            for (int64_t j = 0; j < T; j++) v += logpf[b * T + j] - logpb[b * T + j];
            s[b] = v - logr[b];
            mean += s[b];
        }
        mean *= inv_b;
        for (int64_t b = 0; b < B; b++) {
            const double r = k == FR_GFND_TB ? log_z + s[b] : s[b] - mean;
            acc += 0.5 * r * r;
            /* tb-avg: Σ_b r_b = 0, so the mean's share of the gradient vanishes */
            if (g_logpf)
                for (int64_t j = 0; j < T; j++) g_logpf[b * T + j] = r * inv_b;
            if (g_log_z && k == FR_GFND_TB) *g_log_z += r * inv_b;
        }
        free(s);
        *loss = acc * inv_b;
        return FR_OK;
    }
    if (k == FR_GFND_DB) {
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < T; j++) {
                const double *f = logf + b * (T + 1);
                const double r = logpf[b * T + j] + f[j] - logpb[b * T + j] - f[j + 1];
                acc += 0.5 * r * r;
                if (g_logpf) g_logpf[b * T + j] = r * inv_b;
                if (g_logf) {
                    g_logf[b * (T + 1) + j] += r * inv_b;
                    g_logf[b * (T + 1) + j + 1] -= r * inv_b;
                }
            }
        *loss = acc * inv_b;
        return FR_OK;
    }
    /* subtb: P_i = Σ_{m<i} (log P_F − log P_B)_m; residual (i, j) = log F_i − log F_j + P_j − P_i */
    const double lt = subtb_log_total(lambda, T), ll = fr_awm_log(lambda);
    double *P = malloc((size_t)(T + 1) * sizeof *P), *gP = malloc((size_t)(T + 1) * sizeof *gP);
    double *c = malloc((size_t)(T + 1) * sizeof *c);
    if (!P || !gP || !c) {
        free(P);
        free(gP);
        free(c);
        return FR_ERR_NOMEM;
    }
    for (int64_t m = 1; m <= T; m++) c[m] = fr_awm_exp((double)m * ll - lt);
    for (int64_t b = 0; b < B; b++) {
        const double *f = logf + b * (T + 1);
        P[0] = 0.0;
        for (int64_t m = 0; m < T; m++) P[m + 1] = P[m] + (logpf[b * T + m] - logpb[b * T + m]);
        memset(gP, 0, (size_t)(T + 1) * sizeof *gP);
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = i + 1; j <= T; j++) {
                const double r = f[i] - f[j] + P[j] - P[i], w = c[j - i];
                acc += w * r * r;
                const double g = 2.0 * w * r;
                gP[j] += g;
                gP[i] -= g;
                if (g_logf) {
                    g_logf[b * (T + 1) + i] += g;
                    g_logf[b * (T + 1) + j] -= g;
                }
            }
        /* P_m depends on step j < m */
        if (g_logpf) {
            double tail = 0.0;
            for (int64_t j = T - 1; j >= 0; j--) {
                tail += gP[j + 1];
                g_logpf[b * T + j] = tail;
            }
        }
    }
    free(P);
    free(gP);
    free(c);
    *loss = acc;
    return FR_OK;
}
