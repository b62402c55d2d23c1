/* FPO's clipped surrogate of the CFM-loss ratio (flowrl/fpo.h; spec objectives.md §12). */
#include <math.h>

#include "flowrl/awm_elem.h"
#include "flowrl/fpo.h"

int64_t fr_fpo_surrogate(int64_t M, int64_t S, const double *l_old, const double *l_new, const double *adv, double clip,
                         int average, double *work, double *ratio, double *gl, fr_ctl_ppo_stats *st)
{
    const int64_t MS = M * S;
    double *adv_n = work, *lp_new = adv_n + M, *lp_old = lp_new + MS, *adv_k = lp_old + MS, *g = adv_k + MS;
    fr_ctl_adv_normalize(M, adv, adv_n);
    if (average) {
        /* ρ̂ = exp(logp_new − logp_old) with logp = −mean_j ℓ (the sum in pair order, then / S) */
        for (int64_t i = 0; i < M; i++) {
            double so = 0.0, sn = 0.0;
            for (int64_t j = 0; j < S; j++) {
                so += l_old[i * S + j];
                sn += l_new[i * S + j];
            }
            lp_old[i] = -(so / (double)S);
            lp_new[i] = -(sn / (double)S);
        }
        fr_ctl_ppo_clip(M, lp_new, lp_old, adv_n, clip, g, st);
        for (int64_t i = 0; i < M; i++) {
            ratio[i] = fr_awm_exp(lp_new[i] - lp_old[i]);
            for (int64_t j = 0; j < S; j++) gl[i * S + j] = -g[i] / (double)S;
        }
        return M;
    }
    for (int64_t k = 0; k < MS; k++) {
        const double d = l_old[k] - l_new[k];
        lp_new[k] = d < -3.0 ? -3.0 : d > 3.0 ? 3.0 : d;
        lp_old[k] = 0.0;
        adv_k[k] = adv_n[k / S];
    }
    fr_ctl_ppo_clip(MS, lp_new, lp_old, adv_k, clip, g, st);
    for (int64_t k = 0; k < MS; k++) {
        const double d = fabs(l_old[k] - l_new[k]);
        ratio[k] = fr_awm_exp(lp_new[k]);
        gl[k] = d < 3.0 ? -g[k] : d == 3.0 ? -0.5 * g[k] : 0.0; /* d(exponent)/dℓ_new = −1 inside */
    }
    return MS;
}
