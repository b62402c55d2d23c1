/* The pair preference objective of D3PO and SPO against the frozen reference
 * (flowrl/traj_objective.h fr_traj_pair_pref; docs/algorithms/d3po.md §2; spec objectives.md
 * §17, §18). Host scalars in float32 with flowrl's detmath, in the order of D3PO's
 * scripts/rm/train_d3po.py:
 *   ratio = clamp(exp(logp − logp_ref), 1 − ε, 1 + ε)
 *   loss  = −log σ(β·log ratio_0·h0 + β·log ratio_1·h1).mean()
 * with −log σ(z) taken as softplus(−z) (the same function, without log σ's underflow). */
#include <math.h>
#include <stdlib.h>

#include "flowrl/detmath.h"
#include "flowrl/grpo_elem.h"
#include "flowrl/reduce.h"
#include "flowrl/traj_objective.h"

float fr_traj_pair_term(const fr_traj_pair_params *prm, const float logp[2], const float logp_ref[2],
                        const float h[2], float r[2], float g[2])
{
    /* torch.clamp with Python floats: the ends rounded to float32; its gradient passes where
     * lo <= e <= hi and is 0 outside (the quirk: no gradient once a ratio leaves the band) */
    const float lo = (float)(1.0 - prm->eps), hi = (float)(1.0 + prm->eps);
    float lr[2];
    int band[2];
    for (int k = 0; k < 2; k++) {
        const float e = fr_ppo_ratio_elem(logp[k], logp_ref[k]);
        band[k] = e >= lo && e <= hi;
        r[k] = e < lo ? lo : e > hi ? hi : e; /* NaN stays NaN (the loss then fails as non-finite) */
        lr[k] = fr_logf(r[k]);
    }
    const float z = prm->beta * lr[0] * h[0] + prm->beta * lr[1] * h[1];
    /* d(−log σ(z))/dz = −σ(−z); dz/dlogp_k = β·h_k inside the band (d log r/dlogp = 1) */
    const float s = fr_sigmoidf(-z);
    for (int k = 0; k < 2; k++) g[k] = band[k] && h[k] != 0.0f ? -(s * prm->beta) * h[k] : 0.0f;
    return fr_softplusf(-z);
}

/* L = mean over the b/2 pairs of the micro-batch; g_logp = gout·dL/dlogp_θ, then the logp
 * backward to μ_θ (one crossing of the b per-row gradients). */
static fr_status pair_loss(fr_backend *be, const fr_traj_batch *tb, int64_t j, const void *params, float gout,
                           float *g_mean, float *ratio, fr_traj_stats *st)
{
    (void)j;
    const fr_traj_pair_params *prm = params;
    const int64_t b = tb->b, np = b / 2;
    if (b % 2 != 0 || !tb->logp_ref || !prm || !prm->h)
        return fr_fail(FR_ERR_ARG, "fr_traj_pair_pref: %lld rows (expected pairs: an even count), or no logp_ref or h",
                       (long long)b);
    float *term = fr_malloc((size_t)(np + b) * sizeof *term);
    if (!term) return FR_ERR_NOMEM;
    float *dl = term + np, *g = tb->scratch;
    const float gp = gout / (float)np;
    int64_t out = 0;
    for (int64_t i = 0; i < np; i++) {
        const int64_t k = 2 * i;
        const float h[2] = {prm->h[tb->rows[k]], prm->h[tb->rows[k + 1]]};
        if (h[0] != -h[1] || (h[0] != 0.0f && h[0] != 1.0f && h[0] != -1.0f)) {
            free(term);
            return fr_fail(FR_ERR_ARG, "fr_traj_pair_pref: rows %lld and %lld have preferences %g and %g "
                                       "(expected a pair: +1/-1, -1/+1 or 0/0)",
                           (long long)tb->rows[k], (long long)tb->rows[k + 1], (double)h[0], (double)h[1]);
        }
        float r[2], gg[2];
        term[i] = fr_traj_pair_term(prm, tb->logp + k, tb->logp_ref + k, h, r, gg);
        for (int c = 0; c < 2; c++) {
            const float lp = tb->logp[k + c], lq = tb->logp_ref[k + c];
            g[k + c] = gg[c] * gp;
            dl[k + c] = lp - lq;
            ratio[k + c] = fr_ppo_ratio_elem(lp, lq);
            out += r[c] != ratio[k + c];
        }
    }
    st->obj = fr_mean_canonical(term, np);
    fr_status s = fr_traj_rows_finish(be, tb, dl, ratio, out, g_mean, st);
    free(term);
    return s;
}

const fr_traj_objective fr_traj_pair_pref = {"pair-pref", pair_loss, 1, 0};
