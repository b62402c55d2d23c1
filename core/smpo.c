/* SmPO's smoothed label, loss and inverse DDIM step (flowrl/smpo.h, docs/algorithms/smpo.md §1-§3). */
#include "flowrl/smpo.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/row_err.h"

double fr_smpo_prob(double s_w, double s_l, double lo, double hi)
{
    const double range = hi - lo;
    /* exp(s̃_w)/(exp(s̃_w) + exp(s̃_l)) = σ(s̃_w − s̃_l): one exp, no overflow */
    return fr_pair_dpo_sigmoid((s_w - lo) / range - (s_l - lo) / range);
}

fr_status fr_smpo_loss(int64_t n, double beta, const double *p, const double *e, const double *e_ref, double gout,
                       double *z_out, double *coef, fr_pair_dpo_stats *st)
{
    const char *fn = "fr_smpo_loss";
    if (n < 1 || n > ((int64_t)1 << 40)) return fr_fail(FR_ERR_ARG, "%s: %lld pairs, expected >= 1", fn, (long long)n);
    if (!(isfinite(beta) && beta >= 0.0)) return fr_fail(FR_ERR_ARG, "%s: beta %g, expected finite >= 0", fn, beta);
    if (!isfinite(gout)) return fr_fail(FR_ERR_ARG, "%s: gout %g, expected finite", fn, gout);
    if (!p || !e || !e_ref) return fr_fail(FR_ERR_ARG, "%s: NULL labels or errors", fn);
    for (int64_t i = 0; i < n; i++)
        if (!(p[i] >= 0.0 && p[i] <= 1.0))
            return fr_fail(FR_ERR_ARG, "%s: p[%lld] = %g, expected a probability in [0, 1]", fn, (long long)i, p[i]);
    fr_awm_lanes lt, lz, la;
    fr_awm_lanes_zero(&lt);
    fr_awm_lanes_zero(&lz);
    fr_awm_lanes_zero(&la);
    for (int64_t i = 0; i < n; i++) {
        const double scale = ((-0.5 * beta) * (2.0 * p[i] - 1.0)) * 10.0;
        const double z = scale * ((e[i] - e[n + i]) - (e_ref[i] - e_ref[n + i])); /* `model_diff - ref_diff` */
        fr_awm_lanes_add(&lt, i, fr_pair_dpo_softplus(-z)); /* `-F.logsigmoid(inside_term)` */
        fr_awm_lanes_add(&lz, i, z);
        fr_awm_lanes_add(&la, i, z > 0.0 ? 1.0 : 0.0);
        if (z_out) z_out[i] = z;
        if (coef) {
            coef[i] = ((gout * -scale) * fr_pair_dpo_sigmoid(-z)) / (double)n;
            coef[n + i] = -coef[i];
        }
    }
    if (st) {
        st->loss = fr_awm_lanes_sum(&lt) / (double)n;
        st->z_mean = fr_awm_lanes_sum(&lz) / (double)n;
        st->acc = fr_awm_lanes_sum(&la) / (double)n;
        st->e_w = fr_awm_lanes_mean(e, n);
        st->e_l = fr_awm_lanes_mean(e + n, n);
        st->e_ref_w = fr_awm_lanes_mean(e_ref, n);
        st->e_ref_l = fr_awm_lanes_mean(e_ref + n, n);
    }
    return FR_OK;
}

typedef struct {
    int64_t n;
    double beta, gout;
    const double *p;
    double *z, *coef; /* (n,) or NULL, (2n,) */
    fr_pair_dpo_stats *st;
} smpo_ctx;

/* fr_row_err_fn: the loss and dL/de_θ, then the row scales (float)(coef[r]·(2/D)) */
static fr_status smpo_host(void *ctx, int64_t R, int64_t D, const double *e, const double *e_ref, float *scale)
{
    smpo_ctx *c = ctx;
    FR_TRY(fr_smpo_loss(c->n, c->beta, c->p, e, e_ref, c->gout, c->z, c->coef, c->st));
    if (scale) {
        const double two_over_d = 2.0 / (double)D;
        for (int64_t r = 0; r < R; r++) scale[r] = (float)(c->coef[r] * two_over_d);
    }
    return FR_OK;
}

fr_status fr_smpo_rows(fr_backend *be, int64_t n, int64_t D, double beta, const double *p, const float *out,
                       const float *out_ref, const float *target, double gout, float *grad, double *e_out,
                       double *e_ref_out, double *z, fr_pair_dpo_stats *st)
{
    const char *fn = "fr_smpo_rows";
    if (n < 1 || D < 1 || n > ((int64_t)1 << 30) || D > ((int64_t)1 << 30) || 2 * n > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape n %lld, D %lld, expected each >= 1", fn, (long long)n, (long long)D);
    if (!be || !out || !out_ref || !target) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    const int64_t R = 2 * n;
    double *h = fr_malloc((size_t)(3 * R) * sizeof(double));
    if (!h) return FR_ERR_NOMEM;
    double *e = h, *e_ref = h + R;
    smpo_ctx c = {n, beta, gout, p, z, h + 2 * R, st};
    fr_status s = fr_row_err_loss(be, R, D, out, out_ref, target, smpo_host, &c, grad, e, e_ref);
    for (int64_t r = 0; s == FR_OK && r < R; r++) {
        if (e_out) e_out[r] = e[r];
        if (e_ref_out) e_ref_out[r] = e_ref[r];
    }
    free(h);
    return s;
}

fr_status fr_smpo_inv_times(int64_t n_train, int64_t S, int64_t *tau)
{
    if (S < 1 || S > n_train || (S - 1) * (n_train / S) + FR_SMPO_STEPS_OFFSET >= n_train)
        return fr_fail(FR_ERR_ARG, "inversion steps %lld: expected 1 to %lld for a DDPM table of %lld steps", (long long)S,
                       (long long)(n_train - 1), (long long)n_train);
    /* `(np.arange(0, S) * step_ratio).round() + steps_offset`, step_ratio = n_train // S */
    for (int64_t k = 0; k < S; k++) tau[k] = k * (n_train / S) + FR_SMPO_STEPS_OFFSET;
    return FR_OK;
}

void fr_smpo_inv_coefs(const float *alpha_bar, int64_t tau, int64_t delta, float *A, float *B)
{
    const int64_t from = tau - delta;
    /* `alpha_prod_t = alphas_cumprod[timestep] if timestep >= 0 else initial_alpha_cumprod` (ᾱ_0) */
    const double a_from = (double)alpha_bar[from >= 0 ? from : 0], a_to = (double)alpha_bar[tau];
    const double r_from = sqrt(a_from), r_to = sqrt(a_to);
    *A = (float)(r_to / r_from);
    *B = (float)(sqrt(1.0 - a_to) - r_to * sqrt(1.0 - a_from) / r_from);
}
