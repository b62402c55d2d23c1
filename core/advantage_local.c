/* Local-group and tree advantages of DanceGRPO, MixGRPO, G²RPO and BranchGRPO
 * (docs/algorithms/advantages.md §1.2, §1.3): torch's unbiased group std in the canonical
 * float32 orders; flowrl/advantage.h states every arithmetic decision. */
#include "flowrl/advantage.h"

#include <math.h>
#include <stdlib.h>

#include "core/advantage_internal.h"
#include "flowrl/detmath.h"
#include "flowrl/reduce.h"

static fr_status check_groups(const char *fn, int64_t B, int64_t group_size)
{
    if (group_size == 1) return fr_fail(FR_ERR_ARG, "%s: group size 1 has no std (torch gives NaN)", fn);
    if (group_size < 2 || B < 1 || B % group_size != 0)
        return fr_fail(FR_ERR_ARG, "%s: batch %lld, group size %lld, expected a group size >= 2 dividing the batch", fn,
                       (long long)B, (long long)group_size);
    return FR_OK;
}

/* A = (r − mean)/(std + eps) over each consecutive block of G rewards; the public code's
 * `(group_rewards - group_mean) / (group_rewards.std() + 1e-8)`. */
static void local_group(int64_t B, const float *r, int64_t G, float eps, float *adv)
{
    for (int64_t a = 0; a < B; a += G) {
        float m, s;
        fr_adv_group_stats(r + a, G, 1, &m, &s);
        float den = s + eps;
        for (int64_t i = a; i < a + G; i++) adv[i] = (r[i] - m) / den;
    }
}

fr_status fr_adv_local_group(int64_t B, const float *rewards, int64_t group_size, float eps, float *adv)
{
    if (!rewards || !adv) return fr_fail(FR_ERR_ARG, "fr_adv_local_group: NULL array");
    FR_TRY(check_groups("fr_adv_local_group", B, group_size));
    FR_TRY(fr_adv_check_rewards("fr_adv_local_group", B, rewards));
    FR_TRY(fr_adv_check_eps("fr_adv_local_group", eps));
    local_group(B, rewards, group_size, eps, adv);
    return FR_OK;
}

fr_status fr_adv_local_group_sum(int64_t n_gran, int64_t B, const float *rewards, int64_t group_size, float eps,
                                 float *adv)
{
    const char *fn = "fr_adv_local_group_sum";
    if (!rewards || !adv) return fr_fail(FR_ERR_ARG, "%s: NULL array", fn);
    if (n_gran < 1 || n_gran > (1 << 20))
        return fr_fail(FR_ERR_ARG, "%s: %lld granularities, expected >= 1", fn, (long long)n_gran);
    FR_TRY(check_groups(fn, B, group_size));
    if (n_gran * B > ((int64_t)1 << 31))
        return fr_fail(FR_ERR_ARG, "%s: %lld x %lld rewards, expected at most 2^31", fn, (long long)n_gran, (long long)B);
    FR_TRY(fr_adv_check_rewards(fn, n_gran * B, rewards));
    FR_TRY(fr_adv_check_eps(fn, eps));
    float *a = fr_malloc((size_t)B * sizeof *a);
    if (!a) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < B; i++) adv[i] = 0.0f; /* torch.zeros_like, then += per granularity */
    for (int64_t g = 0; g < n_gran; g++) {
        local_group(B, rewards + g * B, group_size, eps, a);
        for (int64_t i = 0; i < B; i++) adv[i] = adv[i] + a[i];
    }
    free(a);
    return FR_OK;
}

/* ---- BranchGRPO's tree (§1.3) ---------------------------------------------------------- */

/* L = Π width[k] and the leaves per depth-d node span[d] = L / Π_{k<d} width[k]. */
static fr_status tree_shape(const char *fn, int64_t B, int64_t n_split, const int64_t *width, int64_t *span)
{
    if (n_split < 0 || n_split > 62) return fr_fail(FR_ERR_ARG, "%s: %lld splits, expected 0..62", fn, (long long)n_split);
    if (n_split > 0 && !width) return fr_fail(FR_ERR_ARG, "%s: NULL widths", fn);
    int64_t L = 1;
    for (int64_t k = 0; k < n_split; k++) {
        if (width[k] < 1 || width[k] > B || L > B / width[k])
            return fr_fail(FR_ERR_ARG, "%s: width[%lld] = %lld, expected >= 1 with a tree of at most %lld leaves", fn,
                           (long long)k, (long long)width[k], (long long)B);
        L *= width[k];
    }
    if (B % L != 0)
        return fr_fail(FR_ERR_ARG, "%s: batch %lld is not a multiple of the %lld leaves of a tree", fn, (long long)B,
                       (long long)L);
    span[0] = L;
    for (int64_t d = 1; d <= n_split; d++) span[d] = span[d - 1] / width[d - 1];
    return FR_OK;
}

/* The edge into a node is shared by its leaves: logp must be finite and equal across them. */
static fr_status check_logp(const char *fn, int64_t B, int64_t n_split, const int64_t *span, const float *logp)
{
    for (int64_t d = 1; d <= n_split; d++) {
        const float *lp = logp + (d - 1) * B;
        for (int64_t s = 0; s < B; s++) {
            if (!isfinite(lp[s]))
                return fr_fail(FR_ERR_NUMERIC, "%s: logp[%lld][%lld] = %g, expected a finite value", fn,
                               (long long)(d - 1), (long long)s, (double)lp[s]);
            int64_t first = s - s % span[d];
            if (lp[s] != lp[first])
                return fr_fail(FR_ERR_ARG,
                               "%s: logp[%lld][%lld] = %.9g differs from %.9g at leaf %lld, the first leaf of its "
                               "depth-%lld node (the edge into a node is shared by its leaves)",
                               fn, (long long)(d - 1), (long long)s, (double)lp[s], (double)lp[first], (long long)first,
                               (long long)d);
        }
    }
    return FR_OK;
}

/* R of every node, written to each of its leaves, bottom up (samplers.md §11). w, rc:
 * scratch of the largest width. */
static void node_rewards(int64_t B, const float *rewards, int64_t n_split, const int64_t *width, const int64_t *span,
                         int prob_weighted, const float *logp, float *R, float *w, float *rc)
{
    for (int64_t s = 0; s < B; s++) R[n_split * B + s] = rewards[s];
    for (int64_t d = n_split - 1; d >= 0; d--) {
        for (int64_t a = 0; a < B; a += span[d]) {
            float r;
            if (!prob_weighted) {
                r = fr_adv_group_mean(rewards + a, span[d]); /* torch.stack(leaf rewards).mean() */
            } else {
                /* torch.softmax(child edge log-probs) · child R; child c starts at leaf a + c·cs */
                int64_t W = width[d], cs = span[d + 1];
                const float *lp = logp + d * B;
                float mx = lp[a];
                for (int64_t c = 1; c < W; c++) mx = fmaxf(mx, lp[a + c * cs]);
                for (int64_t c = 0; c < W; c++) {
                    w[c] = fr_expf(lp[a + c * cs] - mx);
                    rc[c] = R[(d + 1) * B + a + c * cs];
                }
                float S = fr_sum_canonical(w, W, 1);
                for (int64_t c = 0; c < W; c++) w[c] = w[c] / S;
                /* a weighted mean of equal values is the value: float32 weights need not sum to
                 * 1, and the rounding noise could pass the std threshold as a nonzero A */
                r = fr_adv_all_equal(rc, W) ? rc[0] : fr_dot_canonical(w, rc, W);
            }
            for (int64_t s = a; s < a + span[d]; s++) R[d * B + s] = r;
        }
    }
}

/* Per tree and depth: A = (R − mean_d)/(std_d + eps) over the depth's nodes, unbiased; 0 for
 * a lone node or std_d < FR_ADV_TREE_STD_MIN (compute_hierarchical_advantages_by_depth). */
static void depth_advantages(int64_t B, int64_t L, int64_t n_split, const int64_t *span, const float *R, float eps,
                             float *adv, float *buf)
{
    for (int64_t d = 0; d <= n_split; d++) {
        int64_t nd = L / span[d];
        for (int64_t t = 0; t < B; t += L) {
            const float *Rt = R + d * B + t;
            float *At = adv + d * B + t;
            float m = 0.0f, sd = 0.0f;
            for (int64_t j = 0; j < nd; j++) buf[j] = Rt[j * span[d]];
            if (nd > 1) fr_adv_group_stats(buf, nd, 1, &m, &sd);
            int zero = nd == 1 || sd < FR_ADV_TREE_STD_MIN;
            float den = sd + eps;
            for (int64_t s = 0; s < L; s++) At[s] = zero ? 0.0f : (Rt[s] - m) / den;
        }
    }
}

fr_status fr_adv_tree(int64_t B, const float *rewards, int64_t n_split, const int64_t *width, int prob_weighted,
                      const float *logp, float eps, float *adv, float *node_reward)
{
    const char *fn = "fr_adv_tree";
    if (!rewards || !adv || !node_reward) return fr_fail(FR_ERR_ARG, "%s: NULL array", fn);
    if (prob_weighted && !logp) return fr_fail(FR_ERR_ARG, "%s: prob_weighted without logp", fn);
    FR_TRY(fr_adv_check_rewards(fn, B, rewards));
    int64_t span[63];
    FR_TRY(tree_shape(fn, B, n_split, width, span));
    if ((n_split + 1) * B > ((int64_t)1 << 31))
        return fr_fail(FR_ERR_ARG, "%s: (%lld + 1) x %lld outputs, expected at most 2^31", fn, (long long)n_split,
                       (long long)B);
    if (prob_weighted) FR_TRY(check_logp(fn, B, n_split, span, logp));
    FR_TRY(fr_adv_check_eps(fn, eps));
    int64_t L = span[0];
    float *buf = fr_malloc((size_t)(2 * L) * sizeof *buf); /* <= L nodes per depth; w, rc: widths <= L */
    if (!buf) return FR_ERR_NOMEM;
    node_rewards(B, rewards, n_split, width, span, prob_weighted, logp, node_reward, buf, buf + L);
    depth_advantages(B, L, n_split, span, node_reward, eps, adv, buf);
    free(buf);
    return FR_OK;
}
