/* GFlowNet losses in their exact residual form, float64 (flowrl/gfn.h; docs/algorithms/gfn.md
 * §3). Every sum runs in slot order, trajectories in batch order. */
#include <math.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn.h"

const char *fr_gfn_loss_name(fr_gfn_loss_kind k)
{
    static const char *const names[] = {"tb", "db", "subtb", "zvar", "fm"};
    return (unsigned)k < 5 ? names[k] : NULL;
}

static fr_status finite_row(const char *what, const double *x, int64_t b, int64_t n, int64_t L)
{
    for (int64_t t = 0; t < n; t++)
        if (!isfinite(x[b * L + t]))
            return fr_fail(FR_ERR_NUMERIC, "gfn loss: %s[%lld, %lld] is %g", what, (long long)b, (long long)t,
                           x[b * L + t]);
    return FR_OK;
}

static fr_status check(fr_gfn_loss_kind k, const fr_gfn_batch *b)
{
    if (!fr_gfn_loss_name(k) || k == FR_GFN_FM)
        return fr_fail(FR_ERR_ARG, "gfn loss: kind %d is not a trajectory loss (fm: fr_gfn_fm_loss)", (int)k);
    if (b->B < 1) return fr_fail(FR_ERR_ARG, "gfn loss: batch of %lld trajectories", (long long)b->B);
    int need_f = k == FR_GFN_DB || k == FR_GFN_SUBTB;
    if (need_f && !b->logf) return fr_fail(FR_ERR_ARG, "gfn loss: %s needs the state flows logf", fr_gfn_loss_name(k));
    for (int64_t i = 0; i < b->B; i++) {
        int64_t n = b->len[i];
        if (n < 1 || n > b->L)
            return fr_fail(FR_ERR_ARG, "gfn loss: len[%lld] = %lld is outside [1, %lld]", (long long)i, (long long)n,
                           (long long)b->L);
        FR_TRY(finite_row("logpf", b->logpf, i, n, b->L));
        FR_TRY(finite_row("logpb", b->logpb, i, n - 1, b->L));
        if (need_f) FR_TRY(finite_row("logf", b->logf, i, n, b->L));
        if (!isfinite(b->logr[i]))
            return fr_fail(FR_ERR_NUMERIC, "gfn loss: logr[%lld] is %g (clip log rewards)", (long long)i, b->logr[i]);
    }
    if (k == FR_GFN_TB && !isfinite(b->log_z)) return fr_fail(FR_ERR_NUMERIC, "gfn loss: log_z is %g", b->log_z);
    if (k == FR_GFN_SUBTB && !(b->lambda > 0.0 && isfinite(b->lambda)))
        return fr_fail(FR_ERR_ARG, "gfn loss: subtb lambda %g, expected > 0", b->lambda);
    return FR_OK;
}

/* Σ_{i<=t<j} logpf − Σ logpb of trajectory row (the exit edge's P_B is 1). */
static double span(const fr_gfn_batch *b, int64_t row, int64_t n, int64_t i, int64_t j)
{
    const double *pf = b->logpf + row * b->L, *pb = b->logpb + row * b->L;
    double s = 0.0;
    for (int64_t t = i; t < j; t++) s += t < n - 1 ? pf[t] - pb[t] : pf[t];
    return s;
}

/* Adds c to the gradient of every log-prob of span (i, j) of row: +c to logpf, −c to logpb. */
static void span_grad(const fr_gfn_batch *b, fr_gfn_grad *g, int64_t row, int64_t n, int64_t i, int64_t j, double c)
{
    for (int64_t t = i; t < j; t++) {
        if (g->logpf) g->logpf[row * b->L + t] += c;
        if (g->logpb && t < n - 1) g->logpb[row * b->L + t] -= c;
    }
}

/* log F at position j of row: the state flow, or log R at j = n (s_f). */
static double flow_at(const fr_gfn_batch *b, int64_t row, int64_t n, int64_t j)
{
    return j == n ? b->logr[row] : b->logf[row * b->L + j];
}

static void flow_grad(const fr_gfn_batch *b, fr_gfn_grad *g, int64_t row, int64_t n, int64_t j, double c)
{
    if (g->logf && j < n) g->logf[row * b->L + j] += c;
}

fr_status fr_gfn_loss(fr_gfn_loss_kind k, const fr_gfn_batch *b, double *loss, double *resid, fr_gfn_grad *g)
{
    FR_TRY(check(k, b));
    const int64_t B = b->B, L = b->L;
    if (g) {
        size_t bytes = (size_t)(B * L) * sizeof(double);
        if (g->logpf) memset(g->logpf, 0, bytes);
        if (g->logpb) memset(g->logpb, 0, bytes);
        if (g->logf) memset(g->logf, 0, bytes);
        g->log_z = 0.0;
    }
    double total = 0.0;
    switch (k) {
    case FR_GFN_TB:
        for (int64_t i = 0; i < B; i++) {
            double r = b->log_z + span(b, i, b->len[i], 0, b->len[i]) - b->logr[i];
            if (resid) resid[i] = r;
            total += r * r;
            if (g) {
                double c = 2.0 * r / (double)B;
                span_grad(b, g, i, b->len[i], 0, b->len[i], c);
                g->log_z += c;
            }
        }
        *loss = total / (double)B;
        return FR_OK;
    case FR_GFN_ZVAR: {
        double mean = 0.0;
        for (int64_t i = 0; i < B; i++) mean += span(b, i, b->len[i], 0, b->len[i]) - b->logr[i];
        mean /= (double)B;
        for (int64_t i = 0; i < B; i++) {
            /* d/ds_b of mean (s − m)² is 2(s_b − m)/B: the mean's own term sums to zero */
            double r = span(b, i, b->len[i], 0, b->len[i]) - b->logr[i] - mean;
            if (resid) resid[i] = r;
            total += r * r;
            if (g) span_grad(b, g, i, b->len[i], 0, b->len[i], 2.0 * r / (double)B);
        }
        *loss = total / (double)B;
        return FR_OK;
    }
    case FR_GFN_DB: {
        double N = 0.0;
        for (int64_t i = 0; i < B; i++) N += (double)b->len[i];
        for (int64_t i = 0; i < B; i++) {
            int64_t n = b->len[i];
            for (int64_t t = 0; t < n; t++) {
                double r = flow_at(b, i, n, t) + span(b, i, n, t, t + 1) - flow_at(b, i, n, t + 1);
                if (resid) resid[i * L + t] = r;
                total += r * r;
                if (g) {
                    double c = 2.0 * r / N;
                    flow_grad(b, g, i, n, t, c);
                    span_grad(b, g, i, n, t, t + 1, c);
                    flow_grad(b, g, i, n, t + 1, -c);
                }
            }
        }
        *loss = total / N;
        return FR_OK;
    }
    case FR_GFN_SUBTB:
        for (int64_t i = 0; i < B; i++) {
            int64_t n = b->len[i];
            double norm = 0.0, lm = 1.0; /* Σ_{m<n} (n − m) λ^m */
            for (int64_t m = 0; m < n; m++, lm *= b->lambda) norm += (double)(n - m) * lm;
            double traj = 0.0;
            for (int64_t p = 0; p < n; p++) {
                double w = 1.0; /* λ^{(j − p) − 1} */
                for (int64_t j = p + 1; j <= n; j++, w *= b->lambda) {
                    double r = flow_at(b, i, n, p) + span(b, i, n, p, j) - flow_at(b, i, n, j);
                    if (resid && p == 0 && j == n) resid[i] = r;
                    double wn = w / norm / (double)B;
                    traj += wn * r * r;
                    if (g) {
                        double c = 2.0 * wn * r;
                        flow_grad(b, g, i, n, p, c);
                        span_grad(b, g, i, n, p, j, c);
                        flow_grad(b, g, i, n, j, -c);
                    }
                }
            }
            total += traj;
        }
        *loss = total;
        return FR_OK;
    case FR_GFN_FM:
        break; /* refused by check() */
    }
    return fr_fail(FR_ERR_ARG, "gfn loss: unknown kind %d", (int)k);
}

/* logsumexp of x (n >= 1), float64: max + log Σ exp(x − max), in index order. */
static double lse(const double *x, int n)
{
    double m = x[0], s = 0.0;
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++) s += fr_awm_exp(x[i] - m);
    return m + fr_awm_log(s);
}

fr_status fr_gfn_fm_loss(int64_t M, const int32_t *n_in, const double *fin, const int32_t *n_out, const double *fout,
                         int64_t K, const double *fexit, const double *logr, double alpha, double *loss, double *g_in,
                         double *g_out, double *g_exit)
{
    if (M < 0 || K < 1) return fr_fail(FR_ERR_ARG, "gfn fm loss: %lld states, %lld terminating", (long long)M, (long long)K);
    double fm = 0.0, rm = 0.0;
    int64_t oi = 0, oo = 0;
    for (int64_t m = 0; m < M; m++) {
        if (n_in[m] < 1 || n_out[m] < 1)
            return fr_fail(FR_ERR_NUMERIC, "gfn fm loss: state %lld has %d incoming and %d outgoing flows", (long long)m,
                           n_in[m], n_out[m]);
        for (int j = 0; j < n_in[m]; j++)
            if (!isfinite(fin[oi + j])) return fr_fail(FR_ERR_NUMERIC, "gfn fm loss: fin[%lld] is %g", (long long)(oi + j), fin[oi + j]);
        for (int j = 0; j < n_out[m]; j++)
            if (!isfinite(fout[oo + j]))
                return fr_fail(FR_ERR_NUMERIC, "gfn fm loss: fout[%lld] is %g", (long long)(oo + j), fout[oo + j]);
        double li = lse(fin + oi, n_in[m]), lo = lse(fout + oo, n_out[m]), r = li - lo;
        fm += r * r;
        /* d lse / d x_j = exp(x_j − lse) */
        const double c = 2.0 * r / (double)M;
        if (g_in)
            for (int j = 0; j < n_in[m]; j++) g_in[oi + j] = c * fr_awm_exp(fin[oi + j] - li);
        if (g_out)
            for (int j = 0; j < n_out[m]; j++) g_out[oo + j] = -c * fr_awm_exp(fout[oo + j] - lo);
        oi += n_in[m];
        oo += n_out[m];
    }
    for (int64_t k = 0; k < K; k++) {
        if (!isfinite(fexit[k]) || !isfinite(logr[k]))
            return fr_fail(FR_ERR_NUMERIC, "gfn fm loss: terminating state %lld: log F %g, log R %g", (long long)k, fexit[k],
                           logr[k]);
        double r = fexit[k] - logr[k];
        rm += r * r;
        if (g_exit) g_exit[k] = alpha * 2.0 * r / (double)K;
    }
    *loss = (M > 0 ? fm / (double)M : 0.0) + alpha * (rm / (double)K);
    return FR_OK;
}
