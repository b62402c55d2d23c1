/* Preference-conditioned multi-objective GFlowNets (docs/algorithms/gfn.md §13; spec gflownets.md
 * §11; MOGFN-PC, Jain et al., ICML 2023, conditioning as recursionpharma/gflownet
 * src/gflownet/utils/conditioning.py): each trajectory's preference ω ~ Dirichlet(1, …, 1) enters
 * the policy after the state's encoding, the reward is R(x | ω) = (Σ_i ω_i R_i(x))^β with a
 * constant β, and the exact evaluation runs over a grid of preferences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

/* Dirichlet(1, …, 1) as normalised Exp(1) draws: ω_i = E_i / Σ_j E_j, E_i = −log u_i, u_i =
 * (Philox (seed, FR_RNG_GFN_PREF, iteration, trajectory, 0, i) + ½)·2⁻³² (never 0 or 1, so every
 * ω_i > 0 and R(x | ω) > 0). */
void fr_gfn_draw_prefs(fr_gfn_trainer *t)
{
    const int nc = t->nc;
    for (int64_t b = 0; b < t->o.batch; b++) {
        double *w = t->pref + b * nc, sum = 0.0;
        for (int i = 0; i < nc; i++) {
            const double u = ((double)fr_rng_u32(t->o.seed, FR_RNG_GFN_PREF, (uint32_t)t->iter, (uint32_t)b, 0,
                                                 (uint32_t)i) + 0.5) * (1.0 / 4294967296.0);
            w[i] = -fr_awm_log(u);
            sum += w[i];
        }
        for (int i = 0; i < nc; i++) w[i] /= sum;
    }
}

double fr_gfn_mo_log_reward(const fr_gfn_trainer *t, const int32_t *x, const double *w)
{
    double r[8], s = 0.0;
    t->env->gfn->objectives(t->env, x, r);
    for (int i = 0; i < t->nc; i++) s += w[i] * r[i];
    const double lr = t->o.mo_beta * fr_awm_log(s);
    return lr < t->o.log_reward_clip_min ? t->o.log_reward_clip_min : lr;
}

fr_status fr_gfn_mo_target(fr_gfn_trainer *t, const double *w)
{
    const fr_env *e = t->env;
    const int64_t n = e->n_states;
    int32_t x[GFN_MAX_A];
    double *lr = fr_malloc((size_t)n * sizeof *lr), m = -INFINITY, z = 0.0;
    if (!lr) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        e->gfn->state_at(e, i, x);
        lr[i] = fr_gfn_mo_log_reward(t, x, w);
        m = lr[i] > m ? lr[i] : m;
    }
    for (int64_t i = 0; i < n; i++) z += fr_awm_exp(lr[i] - m); /* R^β can overflow: shifted by the max */
    for (int64_t i = 0; i < n; i++) t->target[i] = fr_awm_exp(lr[i] - m) / z;
    t->log_z_true = m + fr_awm_log(z);
    memcpy(t->eval_w, w, sizeof t->eval_w);
    free(lr);
    return FR_OK;
}

fr_status fr_gfn_trainer_mo_eval(fr_gfn_trainer *t, int P, int64_t n, double *l1, double *log_z_err, double *coverage,
                                 int64_t *front)
{
    const fr_env *e = t->env;
    const int64_t S = e->n_states;
    if (t->nc != 2) return fr_fail(FR_ERR_ARG, "gfn: the multi-objective evaluation needs --preference on 2 objectives");
    if (P < 1 || n < 1) return fr_fail(FR_ERR_ARG, "gfn: multi-objective evaluation over %d preferences, %lld samples", P, (long long)n);
    double *pt = fr_malloc((size_t)S * sizeof *pt), *logmiss = fr_calloc((size_t)S, sizeof *logmiss);
    const double w_keep[2] = {t->eval_w[0], t->eval_w[1]};
    fr_status s = pt && logmiss ? FR_OK : FR_ERR_NOMEM;
    double sl1 = 0.0, sz = 0.0;
    for (int j = 0; j < P && s == FR_OK; j++) {
        const double w[2] = {((double)j + 0.5) / (double)P, 1.0 - ((double)j + 0.5) / (double)P};
        double lj, zj;
        s = fr_gfn_mo_target(t, w);
        if (s == FR_OK) s = fr_gfn_trainer_eval(t, &lj, &zj, pt);
        if (s != FR_OK) break;
        sl1 += lj;
        sz += zj;
        for (int64_t i = 0; i < S; i++) logmiss[i] += pt[i] >= 1.0 ? -INFINITY : (double)n * log1p(-pt[i]);
    }
    if (s == FR_OK) {
        int32_t x[GFN_MAX_A];
        int64_t c = 0;
        double cov = 0.0;
        for (int64_t i = 0; i < S; i++) {
            e->gfn->state_at(e, i, x);
            if (!e->gfn->is_mode(e, x)) continue;
            c++;
            cov += -expm1(logmiss[i]); /* 1 − Π_j (1 − P_T(x | ω_j))^n */
        }
        if (l1) *l1 = sl1 / P;
        if (log_z_err) *log_z_err = sz / P;
        if (coverage) *coverage = c > 0 ? cov / (double)c : NAN;
        if (front) *front = c;
        s = fr_gfn_mo_target(t, w_keep);
    }
    free(pt);
    free(logmiss);
    return s;
}
