/* GFlowNet evaluation (core/gfn_train_internal.h; docs/algorithms/gfn.md §5): the exact P_T of the
 * policy against R/Z, and torchgfn validate's sampled L1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

fr_status fr_gfn_trainer_eval(fr_gfn_trainer *t, double *l1, double *log_z_err, double *pt_out)
{
    const fr_env *e = t->env;
    const int64_t n = e->n_states, D = e->state_dim;
    const int A = t->A;
    double *lp = fr_malloc((size_t)(n * A) * sizeof *lp), *pt = pt_out ? pt_out : fr_malloc((size_t)n * sizeof *pt);
    int32_t *rows = fr_malloc((size_t)(t->cap * D) * sizeof *rows);
    fr_status s = lp && pt && rows ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i0 = 0; i0 < n && s == FR_OK; i0 += t->cap) {
        int64_t R = n - i0 < t->cap ? n - i0 : t->cap;
        for (int64_t r = 0; r < R; r++) {
            e->gfn->state_at(e, i0 + r, rows + r * D);
            if (t->ncw > 0) fr_gfn_cond_row(t, r, t->eval_w); /* P_T(· | ω) at the evaluation's ω (or outcome) */
        }
        s = fr_gfn_net_rows(t, R, rows);
        for (int64_t r = 0; r < R && s == FR_OK; r++) {
            uint8_t m[GFN_MAX_A];
            e->gfn->forward_mask(e, rows + r * D, m);
            fr_gfn_log_softmax(t->out_h + r * t->O, m, A, lp + (i0 + r) * A);
        }
    }
    if (s == FR_OK) s = fr_env_exact_pt(e, lp, pt);
    if (s == FR_OK) *l1 = fr_env_l1(pt, t->target, n);
    if (s == FR_OK && log_z_err) {
        *log_z_err = NAN;
        if (fr_gfn_has_log_z(t)) {
            float z[2];
            s = fr_d2h(t->be, z, t->z_dev, sizeof z);
            *log_z_err = fabs((double)z[0] - t->log_z_true);
        } else if (t->f_col >= 0) {
            double lz;
            s = fr_gfn_trainer_log_z(t, &lz);
            *log_z_err = fabs(lz - t->log_z_true);
        }
    }
    free(lp);
    if (!pt_out) free(pt);
    free(rows);
    return s;
}

/* ½ KL(p‖m) + ½ KL(q‖m), m = (p + q)/2, nats, 0·log 0 = 0 (spec gflownets.md §5.1), in index order. */
double fr_gfn_jsd(const double *p, const double *q, int64_t n)
{
    double kp = 0.0, kq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double m = 0.5 * (p[i] + q[i]);
        if (p[i] > 0.0) kp += p[i] * fr_awm_log(p[i] / m);
        if (q[i] > 0.0) kq += q[i] * fr_awm_log(q[i] / m);
    }
    return 0.5 * kp + 0.5 * kq;
}

fr_status fr_gfn_trainer_sampled_l1(fr_gfn_trainer *t, int64_t n, double *l1, int64_t *hist)
{
    return fr_gfn_trainer_sampled(t, n, l1, NULL, hist);
}

fr_status fr_gfn_trainer_sampled(fr_gfn_trainer *t, int64_t n, double *l1, double *jsd, int64_t *hist)
{
    const fr_env *e = t->env;
    const int64_t B = t->o.batch, T = e->max_steps, D = e->state_dim, S = e->n_states;
    if (n < 1 || n / B >= (int64_t)UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "gfn: sampled L1 of %lld trajectories", (long long)n);
    if (t->ncw > 0)
        return fr_fail(FR_ERR_ARG, "gfn: the sampled L1 (--validation-samples) is not defined for a conditioned policy");
    int64_t *h = hist ? hist : fr_malloc((size_t)S * sizeof *h);
    double *ph = fr_malloc((size_t)S * sizeof *ph);
    fr_status s = h && ph ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) memset(h, 0, (size_t)S * sizeof *h);
    int64_t done = 0;
    for (uint32_t j = 0; done < n && s == FR_OK; j++) {
        s = fr_gfn_sample(t, FR_RNG_GFN_EVAL, j, 0.0, 1.0, 0.0);
        for (int64_t b = 0; b < B && done < n && s == FR_OK; b++, done++)
            h[e->gfn->index(e, t->st + (b * T + t->len[b] - 1) * D)]++;
    }
    if (s == FR_OK) {
        for (int64_t i = 0; i < S; i++) ph[i] = (double)h[i] / (double)n;
        *l1 = fr_env_l1(ph, t->target, S);
        if (jsd) *jsd = fr_gfn_jsd(ph, t->target, S);
    }
    if (!hist) free(h);
    free(ph);
    return s;
}

/* ---- OP-GFN's top-k metric (docs/algorithms/gfn.md §9) ----------------------------------------- */

static int cmp_desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int64_t fr_gfn_topk_set(const fr_env *e, int64_t k, uint8_t *in_top)
{
    const int64_t n = e->n_states, D = e->state_dim;
    k = k < 1 ? 1 : k > n ? n : k;
    double *lr = fr_malloc((size_t)n * sizeof *lr), *sorted = fr_malloc((size_t)n * sizeof *sorted);
    int32_t x[GFN_MAX_A];
    if (!lr || !sorted || D > GFN_MAX_A) {
        free(lr);
        free(sorted);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        e->gfn->state_at(e, i, x);
        lr[i] = sorted[i] = e->gfn->log_reward(e, x);
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_desc);
    const double kth = sorted[k - 1];
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        in_top[i] = lr[i] >= kth;
        c += in_top[i];
    }
    free(lr);
    free(sorted);
    return c;
}

fr_status fr_gfn_trainer_topk(fr_gfn_trainer *t, int64_t k, int64_t n, double *found, double *mass, double *expect_n)
{
    const int64_t S = t->env->n_states;
    uint8_t *top = fr_malloc((size_t)S);
    double *pt = fr_malloc((size_t)S * sizeof *pt);
    fr_status s = top && pt ? FR_OK : FR_ERR_NOMEM;
    const int64_t c = s == FR_OK ? fr_gfn_topk_set(t->env, k, top) : 0;
    if (s == FR_OK && c < 1) s = FR_ERR_NOMEM;
    double l1;
    if (s == FR_OK && (mass || expect_n)) s = fr_gfn_trainer_eval(t, &l1, NULL, pt);
    if (s == FR_OK) {
        int64_t hit = 0;
        double m = 0.0, ex = 0.0;
        for (int64_t i = 0; i < S; i++) {
            if (!top[i]) continue;
            hit += t->visited[i];
            if (!(mass || expect_n)) continue;
            m += pt[i];
            /* 1 − (1 − p)^n = −expm1(n log1p(−p)) */
            ex += pt[i] >= 1.0 ? 1.0 : -expm1((double)n * log1p(-pt[i]));
        }
        if (found) *found = (double)hit / (double)c;
        if (mass) *mass = m;
        if (expect_n) *expect_n = ex / (double)c;
    }
    free(top);
    free(pt);
    return s;
}
