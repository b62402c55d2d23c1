/* Guided trajectory balance's loss and the substructure guide on HyperGrid (flowrl/gfn_guided.h;
 * spec more.md §8.4; maxwshen/gflownet@4203ec04 gflownet/GFNs/models.py train_substructure,
 * gflownet/guide.py probs_substructure, gflownet/trainers.py __biased_sample_xs). Float64 host
 * code; sums in batch order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_guided.h"

static fr_status finite_or_fail(const double *v, int64_t B, const char *name)
{
    for (int64_t i = 0; i < B; i++)
        if (!isfinite(v[i])) return fr_fail(FR_ERR_NUMERIC, "guided tb loss: %s[%lld] is %g", name, (long long)i, v[i]);
    return FR_OK;
}

/* clamp(r², 100) and its derivative in r: 2r where r² <= 100 (torch.clamp passes the gradient at
 * the bound), 0 beyond. */
static double clamped_sq(double r, double *d)
{
    const double v = r * r;
    *d = v <= FR_GTB_CLAMP ? 2.0 * r : 0.0;
    return v <= FR_GTB_CLAMP ? v : FR_GTB_CLAMP;
}

fr_status fr_gtb_loss(const fr_gtb_batch *b, double *l_tb, double *l_b, double *resid, double *g_fwd, double *g_back)
{
    const int64_t B = b->B;
    if (B < 1) return fr_fail(FR_ERR_ARG, "guided tb loss: batch %lld, expected >= 1", (long long)B);
    const int guided = b->lpg != NULL, on_pb = guided && b->pb_target == FR_GTB_PB_GUIDE;
    if (on_pb && !b->pb) return fr_fail(FR_ERR_ARG, "guided tb loss: pb_target guide needs pb");
    if (guided && !(b->w >= 0.0 && b->w <= 1.0)) return fr_fail(FR_ERR_ARG, "guided tb loss: w %g, expected in [0, 1]", b->w);
    FR_TRY(finite_or_fail(b->fwd, B, "fwd"));
    FR_TRY(finite_or_fail(b->back, B, "back"));
    FR_TRY(finite_or_fail(b->logr, B, "logr"));
    if (guided) FR_TRY(finite_or_fail(b->lpg, B, "lpg"));
    if (on_pb) FR_TRY(finite_or_fail(b->pb, B, "pb"));
    double tb = 0.0, lb = 0.0;
    for (int64_t i = 0; i < B; i++) {
        /* T = w·sg(back) + (1 − w)·(lpg + log R); plain TB: T = back, not detached */
        const double T = guided ? b->w * b->back[i] + (1.0 - b->w) * (b->lpg[i] + b->logr[i]) : b->back[i];
        const double r = b->fwd[i] - T;
        double d;
        tb += clamped_sq(r, &d);
        if (resid) resid[i] = r;
        if (g_fwd) g_fwd[i] = d / (double)B;
        if (!guided) {
            if (g_back) g_back[i] = -d / (double)B;
            continue;
        }
        const double rb = (on_pb ? b->pb[i] : b->back[i]) - b->lpg[i];
        lb += clamped_sq(rb, &d);
        if (g_back) g_back[i] = d / (double)B;
    }
    *l_tb = tb / (double)B;
    *l_b = lb / (double)B;
    return FR_OK;
}

/* ---- the guide ------------------------------------------------------------------------------- */

static int contains(const int32_t *s, const int32_t *x, int D)
{
    for (int d = 0; d < D; d++)
        if (s[d] > x[d]) return 0;
    return 1;
}

int fr_gtb_guide_probs(const fr_env *e, const int32_t *node, const int32_t *x, int64_t n_obs, const int32_t *obs,
                       const double *obs_r, double temperature, int32_t *act, double *p)
{
    const int D = e->state_dim;
    if (!contains(node, x, D)) return 0;
    int k = 0;
    for (int d = 0; d < D; d++)
        if (node[d] < x[d]) act[k++] = d;
    if (k == 0) { /* node = x: its terminal child alone (it contains x only, which the guide leaves out) */
        act[0] = e->exit_action;
        p[0] = 1.0;
        return 1;
    }
    int32_t c[64];
    double sum = 0.0;
    for (int j = 0; j < k; j++) {
        memcpy(c, node, (size_t)D * sizeof *c);
        c[act[j]] += 1;
        double tot = 0.0;
        int64_t m = 0;
        for (int64_t i = 0; i < n_obs; i++) {
            const int32_t *xi = obs + i * D;
            if (memcmp(xi, x, (size_t)D * sizeof *xi) == 0 || !contains(c, xi, D)) continue;
            tot += obs_r[i];
            m++;
        }
        p[j] = m > 0 ? tot / (double)m : 0.0; /* substruct_scoreagg: the mean, 0 for none */
        sum += p[j];
    }
    if (!(sum > 0.0)) {
        for (int j = 0; j < k; j++) p[j] = 1.0 / (double)k;
        return k;
    }
    /* np.maximum(scores, 1e-5); log·temperature; exp(ls − logsumexp(ls)); / sum */
    double mx = -INFINITY;
    for (int j = 0; j < k; j++) {
        p[j] = fr_awm_log(p[j] > 1e-5 ? p[j] : 1e-5) * temperature;
        if (p[j] > mx) mx = p[j];
    }
    double z = 0.0;
    for (int j = 0; j < k; j++) z += fr_awm_exp(p[j] - mx);
    const double lse = mx + fr_awm_log(z);
    double s = 0.0;
    for (int j = 0; j < k; j++) {
        p[j] = fr_awm_exp(p[j] - lse);
        s += p[j];
    }
    for (int j = 0; j < k; j++) p[j] /= s;
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(r, 90), method "linear": v sorted, h = 0.9 (n − 1), v[⌊h⌋] + (h − ⌊h⌋)(v[⌊h⌋+1] − v[⌊h⌋]). */
double fr_gtb_percentile90(const double *r, int64_t n)
{
    if (n < 1) return NAN;
    double *v = fr_malloc((size_t)n * sizeof *v);
    if (!v) return NAN;
    memcpy(v, r, (size_t)n * sizeof *v);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    const double h = 0.9 * (double)(n - 1);
    const int64_t lo = (int64_t)floor(h);
    const double out = lo + 1 < n ? v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]) : v[lo];
    free(v);
    return out;
}
