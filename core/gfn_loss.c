/* GFlowNet losses in their exact residual form, float64 (flowrl/gfn.h; docs/algorithms/gfn.md
 * §3). Every sum runs in slot order, trajectories in batch order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn.h"

const char *fr_gfn_loss_name(fr_gfn_loss_kind k)
{
    static const char *const names[] = {"tb", "db", "subtb", "zvar", "fm", "mdb", "rtb", "op"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : NULL;
}

static const char *const k_weightings[] = {"geometric_within", "equal_within", "equal", "geometric", "DB", "ModifiedDB", "TB"};
static const char *const k_regressions[] = {"square", "cosh", "linex"};

const char *fr_gfn_weighting_name(fr_gfn_subtb_weighting w)
{
    return (unsigned)w < sizeof k_weightings / sizeof k_weightings[0] ? k_weightings[w] : NULL;
}

int fr_gfn_weighting_find(const char *name)
{
    for (int i = 0; i < (int)(sizeof k_weightings / sizeof k_weightings[0]); i++)
        if (name && strcmp(name, k_weightings[i]) == 0) return i;
    return -1;
}

const char *fr_gfn_regression_name(fr_gfn_regression g)
{
    return (unsigned)g < sizeof k_regressions / sizeof k_regressions[0] ? k_regressions[g] : NULL;
}

int fr_gfn_regression_find(const char *name)
{
    for (int i = 0; i < (int)(sizeof k_regressions / sizeof k_regressions[0]); i++)
        if (name && strcmp(name, k_regressions[i]) == 0) return i;
    return -1;
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
    if (!fr_gfn_regression_name(b->regression)) return fr_fail(FR_ERR_ARG, "gfn loss: regression %d", (int)b->regression);
    if (b->regression == FR_GFN_LINEX && !(b->linex_alpha != 0.0 && isfinite(b->linex_alpha)))
        return fr_fail(FR_ERR_ARG, "gfn loss: linex alpha %g, expected finite and nonzero", b->linex_alpha);
    int need_f = k == FR_GFN_DB || k == FR_GFN_SUBTB;
    int need_rs = k == FR_GFN_MDB || (need_f && b->forward_looking);
    if (need_f && !b->logf) return fr_fail(FR_ERR_ARG, "gfn loss: %s needs the state flows logf", fr_gfn_loss_name(k));
    if (need_rs && !b->logrs)
        return fr_fail(FR_ERR_ARG, "gfn loss: %s needs every state's log reward logrs", fr_gfn_loss_name(k));
    if (k == FR_GFN_MDB && !b->logpf_exit) return fr_fail(FR_ERR_ARG, "gfn loss: mdb needs the exit log-probs logpf_exit");
    if (k == FR_GFN_RTB && !b->logprior) return fr_fail(FR_ERR_ARG, "gfn loss: rtb needs the prior's log-probs logprior");
    if (k == FR_GFN_OP && (!b->perm || !b->util)) return fr_fail(FR_ERR_ARG, "gfn loss: op needs the pairing perm and the utilities util");
    for (int64_t i = 0; k == FR_GFN_OP && i < b->B; i++) {
        if (b->perm[i] < 0 || b->perm[i] >= b->B)
            return fr_fail(FR_ERR_ARG, "gfn loss: op perm[%lld] = %lld is outside [0, %lld)", (long long)i,
                           (long long)b->perm[i], (long long)b->B);
        if (isnan(b->util[i])) return fr_fail(FR_ERR_NUMERIC, "gfn loss: op util[%lld] is NaN", (long long)i);
    }
    for (int64_t i = 0; i < b->B; i++) {
        int64_t n = b->len[i];
        if (n < 1 || n > b->L)
            return fr_fail(FR_ERR_ARG, "gfn loss: len[%lld] = %lld is outside [1, %lld]", (long long)i, (long long)n,
                           (long long)b->L);
        FR_TRY(finite_row("logpf", b->logpf, i, n, b->L));
        if (k != FR_GFN_RTB) FR_TRY(finite_row("logpb", b->logpb, i, n - 1, b->L));
        if (need_f) FR_TRY(finite_row("logf", b->logf, i, n, b->L));
        if (need_rs) FR_TRY(finite_row("logrs", b->logrs, i, n, b->L));
        if (k == FR_GFN_MDB) FR_TRY(finite_row("logpf_exit", b->logpf_exit, i, n, b->L));
        if (k == FR_GFN_RTB) FR_TRY(finite_row("logprior", b->logprior, i, n, b->L));
        if (!isfinite(b->logr[i]))
            return fr_fail(FR_ERR_NUMERIC, "gfn loss: logr[%lld] is %g (clip log rewards)", (long long)i, b->logr[i]);
    }
    if ((k == FR_GFN_TB || k == FR_GFN_RTB) && !isfinite(b->log_z))
        return fr_fail(FR_ERR_NUMERIC, "gfn loss: log_z is %g", b->log_z);
    if (k == FR_GFN_RTB && !isfinite(b->beta)) return fr_fail(FR_ERR_ARG, "gfn loss: rtb beta %g", b->beta);
    if (k == FR_GFN_SUBTB && !fr_gfn_weighting_name(b->weighting))
        return fr_fail(FR_ERR_ARG, "gfn loss: subtb weighting %d", (int)b->weighting);
    if (k == FR_GFN_SUBTB && !(b->lambda > 0.0 && isfinite(b->lambda)))
        return fr_fail(FR_ERR_ARG, "gfn loss: subtb lambda %g, expected > 0", b->lambda);
    if (k == FR_GFN_SUBTB && b->weighting == FR_SUBTB_GEOMETRIC && b->lambda == 1.0)
        return fr_fail(FR_ERR_ARG, "gfn loss: subtb weighting geometric needs lambda != 1 (its normaliser is 1 - lambda)");
    return FR_OK;
}

/* ---- the regression g (§3.9) ----------------------------------------------------------------- */

static double clamp80(double x) { return x < -80.0 ? -80.0 : x > 80.0 ? 80.0 : x; }

static double g_val(const fr_gfn_batch *b, double r)
{
    switch (b->regression) {
    case FR_GFN_COSH: {
        double c = clamp80(r);
        return fr_awm_exp(c) + fr_awm_exp(-c) - 2.0;
    }
    case FR_GFN_LINEX: {
        double a = b->linex_alpha;
        return (1.0 / (a * a)) * (fr_awm_exp(clamp80(a * r)) - a * r - 1.0);
    }
    case FR_GFN_SQUARE:
        break;
    }
    return r * r;
}

/* g'(r); the clamp passes no gradient (torch.clamp). */
static double g_der(const fr_gfn_batch *b, double r)
{
    switch (b->regression) {
    case FR_GFN_COSH:
        return r < -80.0 || r > 80.0 ? 0.0 : fr_awm_exp(r) - fr_awm_exp(-r);
    case FR_GFN_LINEX: {
        double a = b->linex_alpha, ar = a * r;
        return ((ar < -80.0 || ar > 80.0 ? 0.0 : fr_awm_exp(ar)) - 1.0) / a;
    }
    case FR_GFN_SQUARE:
        break;
    }
    return 2.0 * r;
}

/* ---- residual pieces ------------------------------------------------------------------------- */

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

/* log F at position j of row: the state flow (forward-looking: plus log R(s_j), §3.4), or log R
 * at j = n (s_f). */
static double flow_at(const fr_gfn_batch *b, int64_t row, int64_t n, int64_t j)
{
    if (j == n) return b->logr[row];
    return b->forward_looking ? b->logf[row * b->L + j] + b->logrs[row * b->L + j] : b->logf[row * b->L + j];
}

static void flow_grad(const fr_gfn_batch *b, fr_gfn_grad *g, int64_t row, int64_t n, int64_t j, double c)
{
    if (g->logf && j < n) g->logf[row * b->L + j] += c;
}

/* ---- the losses ------------------------------------------------------------------------------ */

/* TB (§3.1) with log Z = b->log_z, or (SubTB's TB weighting) log Z = log F(s0) of each row. */
static double tb_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g, int z_from_flow)
{
    const int64_t B = b->B;
    double total = 0.0;
    for (int64_t i = 0; i < B; i++) {
        const int64_t n = b->len[i];
        const double z = z_from_flow ? flow_at(b, i, n, 0) : b->log_z;
        double r = z + span(b, i, n, 0, n) - b->logr[i];
        if (resid) resid[i] = r;
        total += g_val(b, r);
        if (g) {
            double c = g_der(b, r) / (double)B;
            span_grad(b, g, i, n, 0, n, c);
            if (z_from_flow)
                flow_grad(b, g, i, n, 0, c);
            else
                g->log_z += c;
        }
    }
    return total / (double)B;
}

/* DB (§3.3, §3.4): the mean over every transition of the batch. */
static double db_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g)
{
    const int64_t B = b->B, L = b->L;
    double N = 0.0, total = 0.0;
    for (int64_t i = 0; i < B; i++) N += (double)b->len[i];
    for (int64_t i = 0; i < B; i++) {
        int64_t n = b->len[i];
        for (int64_t t = 0; t < n; t++) {
            double r = flow_at(b, i, n, t) + span(b, i, n, t, t + 1) - flow_at(b, i, n, t + 1);
            if (resid) resid[i * L + t] = r;
            total += g_val(b, r);
            if (g) {
                double c = g_der(b, r) / N;
                flow_grad(b, g, i, n, t, c);
                span_grad(b, g, i, n, t, t + 1, c);
                flow_grad(b, g, i, n, t + 1, -c);
            }
        }
    }
    return total / N;
}

/* The weight of sub-trajectory (p, j) of row i under weighting w (pairs only: not DB or TB,
 * which are their own losses); aux is the weighting's batch constant (equal: the number of
 * sub-trajectories; geometric: the normaliser (1 − λ)/(1 − λ^{maxlen})), cnt[k] (geometric) the
 * number of sub-trajectories of length k in the batch. */
static double pair_weight(const fr_gfn_batch *b, int64_t i, int64_t p, int64_t j, double aux, const int64_t *cnt)
{
    const int64_t n = b->len[i], k = j - p;
    const double B = (double)b->B;
    switch (b->weighting) {
    case FR_SUBTB_GEOMETRIC_WITHIN: {
        double norm = 0.0, lm = 1.0, w = 1.0; /* Σ_{m<n} (n − m) λ^m; λ^{k − 1} */
        for (int64_t m = 0; m < n; m++, lm *= b->lambda) norm += (double)(n - m) * lm;
        for (int64_t m = 1; m < k; m++) w *= b->lambda;
        return w / norm / B;
    }
    case FR_SUBTB_EQUAL_WITHIN:
        return 2.0 / ((double)n * (double)(n + 1)) / B;
    case FR_SUBTB_EQUAL:
        return 1.0 / aux;
    case FR_SUBTB_GEOMETRIC: {
        double w = aux;
        for (int64_t m = 1; m < k; m++) w *= b->lambda;
        return w / (double)cnt[k];
    }
    case FR_SUBTB_MODIFIED_DB:
        return k == 1 ? 1.0 / (double)n / B : 0.0;
    case FR_SUBTB_DB:
    case FR_SUBTB_TB:
        break;
    }
    return 0.0;
}

/* The batch constants of pair_weight; cnt (L + 1,). */
static void pair_aux(const fr_gfn_batch *b, double *aux, int64_t *cnt)
{
    int64_t maxlen = 0, nsub = 0;
    memset(cnt, 0, (size_t)(b->L + 1) * sizeof *cnt);
    for (int64_t i = 0; i < b->B; i++) {
        const int64_t n = b->len[i];
        maxlen = n > maxlen ? n : maxlen;
        nsub += n * (n + 1) / 2;
        for (int64_t k = 1; k <= n; k++) cnt[k] += n - k + 1;
    }
    *aux = (double)nsub;
    if (b->weighting == FR_SUBTB_GEOMETRIC) {
        double lm = 1.0;
        for (int64_t m = 0; m < maxlen; m++) lm *= b->lambda;
        *aux = (1.0 - b->lambda) / (1.0 - lm);
    }
}

fr_status fr_gfn_subtb_weights(const fr_gfn_batch *b, double *w)
{
    FR_TRY(check(FR_GFN_SUBTB, b));
    const int64_t L1 = b->L + 1;
    memset(w, 0, (size_t)(b->B * L1 * L1) * sizeof *w);
    if (b->weighting == FR_SUBTB_DB || b->weighting == FR_SUBTB_TB) {
        double N = 0.0;
        for (int64_t i = 0; i < b->B; i++) N += (double)b->len[i];
        for (int64_t i = 0; i < b->B; i++) {
            const int64_t n = b->len[i];
            if (b->weighting == FR_SUBTB_TB)
                w[(i * L1 + 0) * L1 + n] = 1.0 / (double)b->B;
            else
                for (int64_t t = 0; t < n; t++) w[(i * L1 + t) * L1 + t + 1] = 1.0 / N;
        }
        return FR_OK;
    }
    int64_t *cnt = fr_malloc((size_t)L1 * sizeof *cnt);
    if (!cnt) return FR_ERR_NOMEM;
    double aux;
    pair_aux(b, &aux, cnt);
    for (int64_t i = 0; i < b->B; i++)
        for (int64_t p = 0; p < b->len[i]; p++)
            for (int64_t j = p + 1; j <= b->len[i]; j++) w[(i * L1 + p) * L1 + j] = pair_weight(b, i, p, j, aux, cnt);
    free(cnt);
    return FR_OK;
}

/* SubTB (§3.7): Σ over the sub-trajectories (i, j) of weight · g(r_ij). */
static fr_status subtb_loss(const fr_gfn_batch *b, double *loss, double *resid, fr_gfn_grad *g)
{
    if (b->weighting == FR_SUBTB_TB) {
        *loss = tb_loss(b, resid, g, 1);
        return FR_OK;
    }
    if (b->weighting == FR_SUBTB_DB) {
        /* resid: the whole-trajectory residual, as for the other weightings */
        for (int64_t i = 0; resid && i < b->B; i++)
            resid[i] = flow_at(b, i, b->len[i], 0) + span(b, i, b->len[i], 0, b->len[i]) - b->logr[i];
        *loss = db_loss(b, NULL, g);
        return FR_OK;
    }
    int64_t *cnt = fr_malloc((size_t)(b->L + 1) * sizeof *cnt);
    if (!cnt) return FR_ERR_NOMEM;
    double aux, total = 0.0;
    pair_aux(b, &aux, cnt);
    for (int64_t i = 0; i < b->B; i++) {
        const int64_t n = b->len[i];
        double traj = 0.0;
        for (int64_t p = 0; p < n; p++)
            for (int64_t j = p + 1; j <= n; j++) {
                double r = flow_at(b, i, n, p) + span(b, i, n, p, j) - flow_at(b, i, n, j);
                if (resid && p == 0 && j == n) resid[i] = r;
                double wn = pair_weight(b, i, p, j, aux, cnt);
                if (wn == 0.0) continue;
                traj += wn * g_val(b, r);
                if (g) {
                    double c = wn * g_der(b, r);
                    flow_grad(b, g, i, n, p, c);
                    span_grad(b, g, i, n, p, j, c);
                    flow_grad(b, g, i, n, j, -c);
                }
            }
        total += traj;
    }
    free(cnt);
    *loss = total;
    return FR_OK;
}

/* ZVar (§3.2): mean_b g(s_b − mean s). */
static double zvar_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g)
{
    const int64_t B = b->B;
    double mean = 0.0, total = 0.0, dmean = 0.0;
    for (int64_t i = 0; i < B; i++) mean += span(b, i, b->len[i], 0, b->len[i]) - b->logr[i];
    mean /= (double)B;
    if (b->regression != FR_GFN_SQUARE) /* d/ds_j mean_b g(s_b − m) = (g'(r_j) − mean_b g'(r_b)) / B */
        for (int64_t i = 0; i < B; i++) dmean += g_der(b, span(b, i, b->len[i], 0, b->len[i]) - b->logr[i] - mean);
    dmean /= (double)B;
    for (int64_t i = 0; i < B; i++) {
        /* square: d/ds_b of mean (s − m)² is 2(s_b − m)/B, the mean's own term sums to zero */
        double r = span(b, i, b->len[i], 0, b->len[i]) - b->logr[i] - mean;
        if (resid) resid[i] = r;
        total += g_val(b, r);
        if (g) {
            double c = b->regression == FR_GFN_SQUARE ? 2.0 * r / (double)B : (g_der(b, r) - dmean) / (double)B;
            span_grad(b, g, i, b->len[i], 0, b->len[i], c);
        }
    }
    return total / (double)B;
}

/* MDB (§3.5): non-exit transitions t < n − 1 of each row; 0 for a batch without one. */
static double mdb_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g)
{
    const int64_t B = b->B, L = b->L;
    double N = 0.0, total = 0.0;
    for (int64_t i = 0; i < B; i++) N += (double)(b->len[i] - 1);
    for (int64_t i = 0; i < B; i++) {
        const int64_t n = b->len[i];
        const double *rs = b->logrs + i * L, *pf = b->logpf + i * L, *pb = b->logpb + i * L, *px = b->logpf_exit + i * L;
        if (resid) resid[i * L + n - 1] = 0.0;
        for (int64_t t = 0; t + 1 < n; t++) {
            double r = (rs[t] + pf[t] + px[t + 1]) - (rs[t + 1] + pb[t] + px[t]);
            if (resid) resid[i * L + t] = r;
            total += g_val(b, r);
            if (g) {
                double c = g_der(b, r) / N;
                if (g->logpf) g->logpf[i * L + t] += c;
                if (g->logpf_exit) {
                    g->logpf_exit[i * L + t + 1] += c;
                    g->logpf_exit[i * L + t] -= c;
                }
                if (g->logpb) g->logpb[i * L + t] -= c;
            }
        }
    }
    return N > 0.0 ? total / N : 0.0;
}

/* RTB (§3.8): mean_b of ½r² (square) or g(r) (cosh, linex); the prior is frozen. */
static double rtb_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g)
{
    const int64_t B = b->B, L = b->L;
    const double half = b->regression == FR_GFN_SQUARE ? 0.5 : 1.0;
    double total = 0.0;
    for (int64_t i = 0; i < B; i++) {
        const int64_t n = b->len[i];
        double s = 0.0;
        for (int64_t t = 0; t < n; t++) s += b->logpf[i * L + t] - b->logprior[i * L + t];
        double r = b->log_z + s - b->beta * b->logr[i];
        if (resid) resid[i] = r;
        total += half * g_val(b, r);
        if (g) {
            double c = half * g_der(b, r) / (double)B;
            if (g->logpf)
                for (int64_t t = 0; t < n; t++) g->logpf[i * L + t] += c;
            g->log_z += c;
        }
    }
    return total / (double)B;
}

double fr_gfn_op_label(double u, double u2) { return 0.5 * ((u > u2 ? 1.0 : 0.0) + (u > u2 - 1e-6 ? 1.0 : 0.0)); }

double fr_gfn_kl_uniform(const double *lsm, const uint8_t *mask, int n, double *g)
{
    int nv = 0;
    for (int a = 0; a < n; a++) nv += mask[a] != 0;
    if (g)
        for (int a = 0; a < n; a++) g[a] = 0.0;
    if (nv == 0) return 0.0;
    const double u = 1.0 / (double)nv, log_u = -fr_awm_log((double)nv);
    const double lo = FR_GFN_KL_EPS, hi = 1.0 - FR_GFN_KL_EPS;
    double kl = 0.0, free_u = 0.0; /* free_u: Σ u over the valid a whose q was not clamped */
    for (int a = 0; a < n; a++) {
        if (!mask[a]) continue;
        const double q = fr_awm_exp(lsm[a]);
        const double lq = q < lo ? fr_awm_log(lo) : q > hi ? fr_awm_log(hi) : lsm[a];
        kl += u * (log_u - lq);
        if (q >= lo && q <= hi) {
            free_u += u;
            if (g) g[a] -= u;
        }
    }
    if (g)
        for (int a = 0; a < n; a++)
            if (mask[a]) g[a] += free_u * fr_awm_exp(lsm[a]);
    return kl;
}

/* OP-GFN (spec §9, yhangchen/OP-GFN ordering_loss): R̂_b = Σ logpf − Σ logpb (log Z is common to
 * both members of a pair and cancels in their softmax); d_b = R̂_b − R̂_perm[b]; the cross-entropy of
 * softmax(R̂_b, R̂_perm[b]) against (y_b, 1 − y_b) is softplus(d_b) − y_b d_b (torch's
 * CrossEntropyLoss with probability targets, mean over b); its derivative in d_b is σ(d_b) − y_b.
 * resid (B,) = d_b. */
static double op_loss(const fr_gfn_batch *b, double *resid, fr_gfn_grad *g)
{
    const int64_t B = b->B, L = b->L;
    double *rh = fr_malloc((size_t)B * sizeof *rh), total = 0.0;
    if (!rh) return NAN;
    for (int64_t i = 0; i < B; i++) {
        const int64_t n = b->len[i];
        double s = 0.0;
        for (int64_t t = 0; t < n; t++) s += b->logpf[i * L + t];
        for (int64_t t = 0; t + 1 < n; t++) s -= b->logpb[i * L + t];
        rh[i] = s;
    }
    for (int64_t i = 0; i < B; i++) {
        const int64_t j = b->perm[i];
        const double d = rh[i] - rh[j], y = fr_gfn_op_label(b->util[i], b->util[j]);
        /* softplus(d) = max(d, 0) + log(1 + e^−|d|) */
        total += (d > 0.0 ? d : 0.0) + fr_awm_log(1.0 + fr_awm_exp(-fabs(d))) - y * d;
        if (resid) resid[i] = d;
        if (!g) continue;
        const double sig = d >= 0.0 ? 1.0 / (1.0 + fr_awm_exp(-d)) : fr_awm_exp(d) / (1.0 + fr_awm_exp(d));
        const double c = (sig - y) / (double)B;
        const int64_t ni = b->len[i], nj = b->len[j];
        if (g->logpf) {
            for (int64_t t = 0; t < ni; t++) g->logpf[i * L + t] += c;
            for (int64_t t = 0; t < nj; t++) g->logpf[j * L + t] -= c;
        }
        if (g->logpb) {
            for (int64_t t = 0; t + 1 < ni; t++) g->logpb[i * L + t] -= c;
            for (int64_t t = 0; t + 1 < nj; t++) g->logpb[j * L + t] += c;
        }
    }
    free(rh);
    return total / (double)B;
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
        if (g->logpf_exit) memset(g->logpf_exit, 0, bytes);
        g->log_z = 0.0;
    }
    switch (k) {
    case FR_GFN_TB:
        *loss = tb_loss(b, resid, g, 0);
        return FR_OK;
    case FR_GFN_ZVAR:
        *loss = zvar_loss(b, resid, g);
        return FR_OK;
    case FR_GFN_DB:
        *loss = db_loss(b, resid, g);
        return FR_OK;
    case FR_GFN_SUBTB:
        return subtb_loss(b, loss, resid, g);
    case FR_GFN_MDB:
        *loss = mdb_loss(b, resid, g);
        return FR_OK;
    case FR_GFN_RTB:
        *loss = rtb_loss(b, resid, g);
        return FR_OK;
    case FR_GFN_OP:
        *loss = op_loss(b, resid, g);
        return isnan(*loss) ? FR_ERR_NOMEM : FR_OK;
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
