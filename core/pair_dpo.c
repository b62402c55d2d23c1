/* The pair DPO objective of Diffusion-DPO and Flow-DPO (flowrl/pair_dpo.h,
 * docs/algorithms/dpo.md): host float64 loss and coefficients; the errors and the gradient
 * through the shared row plumbing (flowrl/row_err.h). */
#include "flowrl/pair_dpo.h"

#include <math.h>
#include <stdlib.h>

#include "flowrl/awm_elem.h"
#include "flowrl/row_err.h"

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
        st->loss = fr_awm_lanes_mean(term, n);
        st->z_mean = fr_awm_lanes_mean(z, n);
        st->acc = fr_awm_lanes_mean(acc, n);
        st->e_w = fr_awm_lanes_mean(e, n);
        st->e_l = fr_awm_lanes_mean(e + n, n);
        st->e_ref_w = fr_awm_lanes_mean(e_ref, n);
        st->e_ref_l = fr_awm_lanes_mean(e_ref + n, n);
    }
    for (int64_t i = 0; i < n; i++) {
        if (z_out) z_out[i] = z[i];
        if (term_out) term_out[i] = term[i];
    }
    free(wk);
    return FR_OK;
}

typedef struct {
    int64_t n;
    double beta, gout;
    fr_pair_dpo_form form;
    double *z, *coef; /* (n,) or NULL, (2n,) */
    fr_pair_dpo_stats *st;
} rows_ctx;

/* fr_row_err_fn: the loss and dL/de_θ, then the row scales (float)(coef[r]·(2/D)) */
static fr_status rows_loss(void *ctx, int64_t R, int64_t D, const double *e, const double *e_ref, float *scale)
{
    rows_ctx *c = ctx;
    FR_TRY(fr_pair_dpo_loss(c->n, c->beta, c->form, e, e_ref, c->gout, c->z, NULL, c->coef, c->st));
    if (scale) {
        const double two_over_d = 2.0 / (double)D; /* d e/d out = (2/D)·(out − target) */
        for (int64_t r = 0; r < R; r++) scale[r] = (float)(c->coef[r] * two_over_d);
    }
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
    if (!h) return FR_ERR_NOMEM;
    double *e = h, *e_ref = h + R;
    rows_ctx c = {n, beta, gout, form, z, h + 2 * R, st};
    fr_status s = fr_row_err_loss(be, R, D, out, out_ref, target, rows_loss, &c, grad, e, e_ref);
    if (s == FR_OK) {
        for (int64_t r = 0; r < R; r++) {
            if (e_out) e_out[r] = e[r];
            if (e_ref_out) e_ref_out[r] = e_ref[r];
        }
    }
    free(h);
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

static int sign_f64(double x) { return (x > 0.0) - (x < 0.0); }

int fr_pair_dpo_vote(int K, int64_t N, const float *score, int64_t a, int64_t b)
{
    int v = 0;
    for (int k = 0; k < K; k++) v += sign_f64((double)score[k * N + a] - (double)score[k * N + b]);
    return sign_f64((double)v);
}

fr_status fr_pair_dpo_vote_pairs(int K, int64_t N, int64_t G, const float *score, int64_t *w, int64_t *l, float *label,
                                 double *agree, int64_t *n_pairs)
{
    if (K < 1 || G < 2 || G % 2 != 0 || N < 0 || N % G != 0 || !score || !w || !l || !n_pairs)
        return fr_fail(FR_ERR_ARG, "fr_pair_dpo_vote_pairs: K %d, N %lld, G %lld (even, dividing N) or a NULL argument", K,
                       (long long)N, (long long)G);
    if (label)
        for (int64_t i = 0; i < N; i++) label[i] = 0.0f;
    int64_t np = 0, hits[64] = {0};
    for (int64_t a = 0; a < N; a += 2) {
        const int64_t b = a + 1;
        const int y = fr_pair_dpo_vote(K, N, score, a, b);
        if (y == 0) continue;
        w[np] = y > 0 ? a : b;
        l[np] = y > 0 ? b : a;
        if (label) {
            label[w[np]] = 1.0f;
            label[l[np]] = -1.0f;
        }
        for (int k = 0; k < K && k < 64; k++) hits[k] += sign_f64((double)score[k * N + a] - (double)score[k * N + b]) == y;
        np++;
    }
    if (agree)
        for (int k = 0; k < K; k++) agree[k] = np && k < 64 ? (double)hits[k] / (double)np : NAN;
    *n_pairs = np;
    return FR_OK;
}
