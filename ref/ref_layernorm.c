/* Layer norm over the last dim, forward and backward. Row statistics in the canonical
 * long-sum orders of flowrl/reduce.h, per-element math in flowrl/elem.h. */
#include "flowrl/elem.h"
#include "flowrl/reduce.h"
#include "ref/ref_internal.h"

void fr_ref_layernorm_fwd(int64_t M, int64_t D,
                          const float *x,     // (M,D)
                          const float *gamma, // (D,) or NULL
                          const float *beta,  // (D,) or NULL
                          float eps,
                          float *y,           // (M,D)
                          float *mean,        // (M,)
                          float *rstd)        // (M,)
{
    for (int64_t i = 0; i < M; i++) {
        const float *xr = x + i * D;
        float mu = fr_mean_canonical(xr, D);
        float var = D > 0 ? fr_sumsq_centered_canonical(xr, D, mu) / (float)D : 0.0f;
        float rs = fr_layernorm_rstd(var, eps);
        for (int64_t j = 0; j < D; j++) {
            float xhat = fr_layernorm_xhat(xr[j], mu, rs);
            y[i * D + j] = fr_layernorm_y(xhat, gamma ? gamma[j] : 1.0f, beta ? beta[j] : 0.0f);
        }
        mean[i] = mu;
        rstd[i] = rs;
    }
}

/* See the formulas above fr_layernorm_dx (flowrl/elem.h). The two row means are long
 * sums in the canonical lane order (lane j % FR_LANES, then fr_lanes_tree): mg as
 * fr_sum_canonical over g, mgx as fr_dot_canonical over (g, xhat); g and xhat are
 * recomputed per element rather than stored, which leaves the order unchanged. */
void fr_ref_layernorm_bwd(int64_t M, int64_t D,
                          const float *x,     // (M,D) the forward's input
                          const float *gamma, // (D,) or NULL
                          const float *mean,  // (M,) saved by the forward
                          const float *rstd,  // (M,) saved by the forward
                          const float *dy,    // (M,D)
                          float *dx,          // (M,D)
                          float *dgamma,      // (D,) or NULL
                          float *dbeta,       // (D,) or NULL
                          int accumulate)
{
    if (!accumulate) {
        for (int64_t j = 0; j < D; j++) {
            if (dgamma) dgamma[j] = 0.0f;
            if (dbeta) dbeta[j] = 0.0f;
        }
    }
    for (int64_t i = 0; i < M; i++) {
        const float *xr = x + i * D, *dyr = dy + i * D;
        float mu = mean[i], rs = rstd[i];
        fr_layernorm_dx_row(D, xr, dyr, gamma, mu, rs, dx + i * D, accumulate);
        /* dgamma, dbeta: one chain per j along the rows, in order (dx aliases neither x nor dy) */
        for (int64_t j = 0; j < D; j++) {
            if (dgamma) dgamma[j] = fmaf(dyr[j], fr_layernorm_xhat(xr[j], mu, rs), dgamma[j]);
            if (dbeta) dbeta[j] = dbeta[j] + dyr[j];
        }
    }
}
