/* DDO's loss (flowrl/ddo.h, docs/algorithms/ddo.md §1). */
#include "flowrl/ddo.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/pair_dpo.h"
#include "flowrl/row_err.h"

fr_status fr_ddo_loss(int64_t n_pos, int64_t n_neg, double alpha, double beta, const double *e, const double *e_ref,
                      double gout, double *coef, fr_ddo_stats *st)
{
    if (n_pos < 1 || n_neg < 1 || !(alpha >= 0.0) || !isfinite(alpha) || !(beta > 0.0) || !isfinite(beta) ||
        !isfinite(gout) || !e || !e_ref)
        return fr_fail(FR_ERR_ARG, "fr_ddo_loss: n_pos %lld, n_neg %lld, alpha %g, beta %g, gout %g or a NULL array",
                       (long long)n_pos, (long long)n_neg, alpha, beta, gout);
    fr_awm_lanes lp, ln, dp, dn, xp, xn;
    fr_awm_lanes_zero(&lp);
    fr_awm_lanes_zero(&ln);
    fr_awm_lanes_zero(&dp);
    fr_awm_lanes_zero(&dn);
    fr_awm_lanes_zero(&xp);
    fr_awm_lanes_zero(&xn);
    for (int64_t r = 0; r < n_pos + n_neg; r++) {
        const double delta = e_ref[r] - e[r], bd = beta * delta;
        if (r < n_pos) {
            fr_awm_lanes_add(&lp, r, fr_pair_dpo_softplus(-bd));
            fr_awm_lanes_add(&dp, r, fr_pair_dpo_sigmoid(bd));
            fr_awm_lanes_add(&xp, r, delta);
            if (coef) coef[r] = ((gout * beta) * fr_pair_dpo_sigmoid(-bd)) / (double)n_pos;
        } else {
            const int64_t i = r - n_pos;
            fr_awm_lanes_add(&ln, i, fr_pair_dpo_softplus(bd));
            fr_awm_lanes_add(&dn, i, fr_pair_dpo_sigmoid(bd));
            fr_awm_lanes_add(&xn, i, delta);
            if (coef) coef[r] = -(((gout * alpha) * beta) * fr_pair_dpo_sigmoid(bd)) / (double)n_neg;
        }
    }
    if (st) {
        st->loss = fr_awm_lanes_sum(&lp) / (double)n_pos + alpha * (fr_awm_lanes_sum(&ln) / (double)n_neg);
        st->d_pos = fr_awm_lanes_sum(&dp) / (double)n_pos;
        st->d_neg = fr_awm_lanes_sum(&dn) / (double)n_neg;
        st->delta_pos = fr_awm_lanes_sum(&xp) / (double)n_pos;
        st->delta_neg = fr_awm_lanes_sum(&xn) / (double)n_neg;
    }
    return FR_OK;
}

typedef struct {
    int64_t n_pos, n_neg;
    double alpha, beta, gout;
    fr_ddo_stats st;
} ddo_ctx;

static fr_status ddo_host(void *p, int64_t R, int64_t D, const double *e, const double *e_ref, float *scale)
{
    ddo_ctx *c = p;
    double *coef = scale ? fr_malloc((size_t)R * sizeof(double)) : NULL;
    if (scale && !coef) return FR_ERR_NOMEM;
    fr_status s = fr_ddo_loss(c->n_pos, c->n_neg, c->alpha, c->beta, e, e_ref, c->gout, coef, &c->st);
    if (s == FR_OK && scale)
        for (int64_t r = 0; r < R; r++) scale[r] = (float)(coef[r] * (2.0 / (double)D));
    free(coef);
    return s;
}

fr_status fr_ddo_rows(fr_backend *be, int64_t n_pos, int64_t n_neg, int64_t D, double alpha, double beta,
                      const float *out, const float *out_ref, const float *target, double gout, float *grad, double *e,
                      double *e_ref, fr_ddo_stats *st)
{
    const int64_t R = n_pos + n_neg;
    if (!be || n_pos < 1 || n_neg < 1 || D < 1 || !out || !out_ref || !target)
        return fr_fail(FR_ERR_ARG, "fr_ddo_rows: n_pos %lld, n_neg %lld, D %lld or a NULL array", (long long)n_pos,
                       (long long)n_neg, (long long)D);
    double *ee = e ? e : fr_malloc((size_t)R * sizeof(double)), *er = e_ref ? e_ref : fr_malloc((size_t)R * sizeof(double));
    fr_status s = ee && er ? FR_OK : FR_ERR_NOMEM;
    ddo_ctx c = {n_pos, n_neg, alpha, beta, gout, {0, 0, 0, 0, 0}};
    if (s == FR_OK) s = fr_row_err_loss(be, R, D, out, out_ref, target, ddo_host, &c, grad, ee, er);
    if (!e) free(ee);
    if (!e_ref) free(er);
    if (s == FR_OK && st) *st = c.st;
    return s;
}
