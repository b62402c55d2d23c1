/* Flow-RWR's weights and loss (flowrl/rwr.h, docs/algorithms/flow-rwr.md §1). */
#include "flowrl/rwr.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/row_err.h"

const char *fr_rwr_weighting_name(fr_rwr_weighting m)
{
    return m == FR_RWR_EXP ? "exp" : m == FR_RWR_SOFTMAX ? "softmax" : NULL;
}

fr_status fr_rwr_weights(fr_rwr_weighting mode, double tau, int64_t N, int64_t G, const float *reward, double *w)
{
    if (!fr_rwr_weighting_name(mode) || N < 1 || G < 1 || N % G != 0 || !(tau > 0.0) || !isfinite(tau) || !reward || !w)
        return fr_fail(FR_ERR_ARG, "fr_rwr_weights: mode %d, N %lld, G %lld, tau %g or a NULL array", (int)mode,
                       (long long)N, (long long)G, tau);
    for (int64_t s = 0; s < N; s++)
        if (!isfinite(reward[s])) return fr_fail(FR_ERR_NUMERIC, "fr_rwr_weights: reward of sample %lld is %g", (long long)s, (double)reward[s]);
    if (mode == FR_RWR_EXP) {
        for (int64_t s = 0; s < N; s++) {
            w[s] = fr_awm_exp((double)reward[s] / tau);
            if (!isfinite(w[s]))
                return fr_fail(FR_ERR_NUMERIC, "fr_rwr_weights: exp(reward / tau) of sample %lld overflows (reward %g, tau %g)",
                               (long long)s, (double)reward[s], tau);
        }
        return FR_OK;
    }
    for (int64_t g0 = 0; g0 < N; g0 += G) {
        double m = (double)reward[g0];
        for (int64_t j = 1; j < G; j++) /* not fmax: aarch64 gcc 12.2 ICEs vectorising fmax reductions (Makefile) */
            if ((double)reward[g0 + j] > m) m = (double)reward[g0 + j];
        fr_awm_lanes acc;
        fr_awm_lanes_zero(&acc);
        for (int64_t j = 0; j < G; j++) {
            w[g0 + j] = fr_awm_exp(((double)reward[g0 + j] - m) / tau);
            fr_awm_lanes_add(&acc, j, w[g0 + j]);
        }
        const double z = fr_awm_lanes_sum(&acc); /* >= 1: the maximum's term is exp(0) */
        for (int64_t j = 0; j < G; j++) w[g0 + j] = (double)G * (w[g0 + j] / z);
    }
    return FR_OK;
}

typedef struct {
    const double *w;
    double gout;
    fr_rwr_stats st;
} rwr_ctx;

static fr_status rwr_host(void *p, int64_t R, int64_t D, const double *e, const double *e_ref, float *scale)
{
    (void)e_ref;
    rwr_ctx *c = p;
    fr_awm_lanes lw, le;
    fr_awm_lanes_zero(&lw);
    fr_awm_lanes_zero(&le);
    for (int64_t r = 0; r < R; r++) {
        fr_awm_lanes_add(&lw, r, c->w[r] * e[r]);
        fr_awm_lanes_add(&le, r, e[r]);
    }
    c->st.loss = fr_awm_lanes_sum(&lw) / (double)R;
    c->st.e_mean = fr_awm_lanes_sum(&le) / (double)R;
    if (scale) {
        const double unit = 2.0 / (double)(R * D); /* fm_loss's 2/numel */
        for (int64_t r = 0; r < R; r++) scale[r] = (float)(c->gout * c->w[r] * unit);
    }
    return FR_OK;
}

fr_status fr_rwr_rows(fr_backend *be, int64_t R, int64_t D, const double *w, const float *v, const float *target,
                      double gout, float *grad, double *e, fr_rwr_stats *st)
{
    if (!be || R < 1 || D < 1 || !w || !v || !target || !isfinite(gout))
        return fr_fail(FR_ERR_ARG, "fr_rwr_rows: R %lld, D %lld, gout %g or a NULL array", (long long)R, (long long)D, gout);
    double *ee = e ? e : fr_malloc((size_t)R * sizeof(double));
    if (!ee) return FR_ERR_NOMEM;
    rwr_ctx c = {w, gout, {0.0, 0.0}};
    fr_status s = fr_row_err_loss(be, R, D, v, NULL, target, rwr_host, &c, grad, ee, NULL);
    if (!e) free(ee);
    if (s == FR_OK && st) *st = c.st;
    return s;
}
