/* The pair DPO objective of Diffusion-DPO and Flow-DPO (flowrl/pair_dpo.h,
 * docs/algorithms/dpo.md): host float64 loss and coefficients, errors and gradient through the
 * existing row entries (row_msd_f64, fm_loss). */
#include "flowrl/pair_dpo.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/fm_loss.h"
#include "flowrl/ops.h"

/* ---- float64 softplus and sigmoid ------------------------------------------------------ */

static double log1p_d(double u)
{
    const double w = 1.0 + u;
    if (w == 1.0) return u;
    return fr_awm_log(w) * (u / (w - 1.0));
}

double fr_pair_dpo_softplus(double x)
{
    if (x > 0.0) return x + log1p_d(fr_awm_exp(-x));
    return log1p_d(fr_awm_exp(x));
}

double fr_pair_dpo_sigmoid(double x) { return 1.0 / (1.0 + fr_awm_exp(-x)); }

/* ---- the loss ---------------------------------------------------------------------------- */

static double mean_lanes(const double *x, int64_t n)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < n; i++) fr_awm_lanes_add(&acc, i, x[i]);
    return fr_awm_lanes_sum(&acc) / (double)n;
}

fr_status fr_pair_dpo_loss(int64_t n, double beta, fr_pair_dpo_form form, const double *e, const double *e_ref,
                           double gout, double *z_out, double *term_out, double *coef, fr_pair_dpo_stats *st)
{
    const char *fn = "fr_pair_dpo_loss";
    if (n < 1 || n > ((int64_t)1 << 40)) return fr_fail(FR_ERR_ARG, "%s: %lld pairs, expected >= 1", fn, (long long)n);
    if (!(isfinite(beta) && beta >= 0.0)) return fr_fail(FR_ERR_ARG, "%s: beta %g, expected finite >= 0", fn, beta);
    if (form != FR_PAIR_DPO_MODEL_DIFF && form != FR_PAIR_DPO_REF_DIFF)
        return fr_fail(FR_ERR_ARG, "%s: form %d, expected MODEL_DIFF or REF_DIFF", fn, (int)form);
    if (!isfinite(gout)) return fr_fail(FR_ERR_ARG, "%s: gout %g, expected finite", fn, gout);
    if (!e || !e_ref) return fr_fail(FR_ERR_ARG, "%s: NULL errors", fn);
    double *wk = fr_malloc((size_t)(3 * n) * sizeof(double));
    if (!wk) return FR_ERR_NOMEM;
    double *z = wk, *term = wk + n, *acc = wk + 2 * n;
    const double scale = -0.5 * beta; /* `scale_term = -0.5 * args.beta_dpo` */
    for (int64_t i = 0; i < n; i++) {
        const double tw = e[i], tl = e[n + i], rw = e_ref[i], rl = e_ref[n + i];
        const double diff = form == FR_PAIR_DPO_MODEL_DIFF ? (tw - tl) - (rw - rl) : (tw - rw) - (tl - rl);
        z[i] = scale * diff;
        term[i] = fr_pair_dpo_softplus(-z[i]); /* `-F.logsigmoid(inside_term)` */
        acc[i] = z[i] > 0.0 ? 1.0 : 0.0;
    }
    if (coef) {
        const double half = gout * (0.5 * beta);
        for (int64_t i = 0; i < n; i++) {
            coef[i] = (half * fr_pair_dpo_sigmoid(-z[i])) / (double)n;
            coef[n + i] = -coef[i];
        }
    }
    if (st) {
        st->loss = mean_lanes(term, n);
        st->z_mean = mean_lanes(z, n);
        st->acc = mean_lanes(acc, n);
        st->e_w = mean_lanes(e, n);
        st->e_l = mean_lanes(e + n, n);
        st->e_ref_w = mean_lanes(e_ref, n);
        st->e_ref_l = mean_lanes(e_ref + n, n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (z_out) z_out[i] = z[i];
        if (term_out) term_out[i] = term[i];
    }
    free(wk);
    return FR_OK;
}

fr_status fr_pair_dpo_rows(fr_backend *be, int64_t n, int64_t D, double beta, fr_pair_dpo_form form, const float *out,
                           const float *out_ref, const float *target, double gout, float *grad, double *e_out,
                           double *e_ref_out, double *z, fr_pair_dpo_stats *st)
{
    const char *fn = "fr_pair_dpo_rows";
    if (n < 1 || D < 1 || n > ((int64_t)1 << 30) || D > ((int64_t)1 << 30) || 2 * n > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape n %lld, D %lld, expected each >= 1", fn, (long long)n, (long long)D);
    if (!be || !out || !out_ref || !target) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    const int64_t R = 2 * n;
    double *h = fr_malloc((size_t)(3 * R) * sizeof(double));
    float *scale = fr_malloc((size_t)R * sizeof(float));
    double *d_rows = fr_dev_doubles(be, R);
    float *d_scale = grad ? fr_dev_floats(be, R) : NULL;
    fr_status s = h && scale && d_rows && (!grad || d_scale) ? FR_OK : FR_ERR_NOMEM;
    double *e = h, *e_ref = h + R, *coef = h + 2 * R;
    if (s == FR_OK) {
        be->ops->row_msd_f64(R, D, out, target, d_rows);
        s = fr_d2h(be, e, d_rows, (size_t)R * sizeof(double));
    }
    if (s == FR_OK) {
        be->ops->row_msd_f64(R, D, out_ref, target, d_rows);
        s = fr_d2h(be, e_ref, d_rows, (size_t)R * sizeof(double));
    }
    if (s == FR_OK) s = fr_pair_dpo_loss(n, beta, form, e, e_ref, gout, z, NULL, coef, st);
    if (s == FR_OK && grad) {
        /* d e/d out = (2/D)·(out − target): fm_loss's row-scaled gradient */
        const double two_over_d = 2.0 / (double)D;
        for (int64_t r = 0; r < R; r++) scale[r] = (float)(coef[r] * two_over_d);
        s = fr_h2d(be, d_scale, scale, (size_t)R * sizeof(float));
        if (s == FR_OK) s = fr_fm_loss(be, R, D, out, target, d_scale, NULL, grad);
    }
    if (s == FR_OK) {
        for (int64_t r = 0; r < R; r++) {
            if (e_out) e_out[r] = e[r];
            if (e_ref_out) e_ref_out[r] = e_ref[r];
        }
    }
    free(h);
    free(scale);
    fr_dev_free(be, d_rows);
    if (d_scale) fr_dev_free(be, d_scale);
    return s;
}

/* ---- Flow-DPO's labelling ------------------------------------------------------------------ */

fr_status fr_pair_dpo_label(int64_t N, const int *pid, const float *reward, int64_t *w, int64_t *l, float *label,
                            int64_t *n_pairs)
{
    if (N < 0 || !pid || !reward || !w || !l || !n_pairs)
        return fr_fail(FR_ERR_ARG, "fr_pair_dpo_label: N %lld or a NULL argument", (long long)N);
    int lo = 0, hi = -1;
    for (int64_t k = 0; k < N; k++) {
        if (k == 0 || pid[k] < lo) lo = pid[k];
        if (k == 0 || pid[k] > hi) hi = pid[k];
    }
    if (label)
        for (int64_t k = 0; k < N; k++) label[k] = 0.0f;
    int64_t np = 0;
    /* distinct ids in increasing order: the next id above the last one taken */
    for (int64_t cur = (int64_t)lo - 1; N > 0 && cur < hi;) {
        int64_t next = INT64_MAX;
        for (int64_t k = 0; k < N; k++)
            if (pid[k] > cur && pid[k] < next) next = pid[k];
        cur = next;
        int64_t first = -1, second = -1, imax = -1, imin = -1;
        for (int64_t k = 0; k < N; k++) {
            if (pid[k] != cur) continue;
            if (first < 0) first = k;
            else if (second < 0) second = k;
            if (imax < 0 || (double)reward[k] > (double)reward[imax]) imax = k;
            if (imin < 0 || (double)reward[k] < (double)reward[imin]) imin = k;
        }
        if (second < 0) continue; /* one sample: no pair */
        if (imax == imin) {       /* every reward equal: index 1 wins, index 0 loses */
            imax = second;
            imin = first;
        }
        w[np] = imax;
        l[np] = imin;
        if (label) {
            label[imax] = 1.0f;
            label[imin] = -1.0f;
        }
        np++;
    }
    *n_pairs = np;
    return FR_OK;
}
