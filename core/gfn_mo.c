/* Preference-conditioned multi-objective GFlowNets (docs/algorithms/gfn.md §13; spec gflownets.md
 * §11; MOGFN-PC, Jain et al., ICML 2023, conditioning as recursionpharma/gflownet
 * src/gflownet/utils/conditioning.py): each trajectory's preference ω ~ Dirichlet(1, …, 1) enters
 * the policy after the state's encoding, the reward is R(x | ω) = (Σ_i ω_i R_i(x))^β with a
 * constant β or one drawn per trajectory (TemperatureConditional: its thermometer encoding enters
 * the policy after ω), and the exact evaluation runs over a grid of preferences at one β. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_box.h"
#include "flowrl/philox.h"
#include "gfn_train_internal.h"

/* A 53-bit uniform in (0, 1) of Philox (seed, FR_RNG_GFN_BETA, iteration, trajectory, 0) elements *k, *k + 1. */
static double beta_u(const fr_gfn_trainer *t, int64_t b, uint32_t *k)
{
    const uint32_t c0 = (uint32_t)t->iter, c1 = (uint32_t)b;
    const uint32_t hi = fr_rng_u32(t->o.seed, FR_RNG_GFN_BETA, c0, c1, 0, *k) >> 5;
    const uint32_t lo = fr_rng_u32(t->o.seed, FR_RNG_GFN_BETA, c0, c1, 0, *k + 1) >> 6;
    *k += 2;
    return ((double)hi * 67108864.0 + (double)lo + 0.5) / 9007199254740992.0;
}

/* Trajectory b's β: TemperatureConditional.sample's distributions (numpy's gamma(shape, scale),
 * uniform(a, b), exp(uniform(log a, log b)), beta(a, b)), rounded to float32 as its astype. */
static fr_status draw_beta(const fr_gfn_trainer *t, int64_t b, double *beta)
{
    const double a = t->o.mo_beta_a, c = t->o.mo_beta_b;
    const uint32_t c0 = (uint32_t)t->iter, c1 = (uint32_t)b;
    uint32_t k = 0;
    double x = t->o.mo_beta, y;
    switch (t->o.mo_beta_dist) {
    case 1:
        FR_TRY(fr_box_gamma_draw(t->o.seed, FR_RNG_GFN_BETA, c0, c1, 0, &k, a, &x));
        x *= c;
        break;
    case 2:
        x = a + (c - a) * beta_u(t, b, &k);
        break;
    case 3:
        x = fr_awm_exp((double)(float)(fr_awm_log(a) + (fr_awm_log(c) - fr_awm_log(a)) * beta_u(t, b, &k)));
        break;
    case 4:
        FR_TRY(fr_box_gamma_draw(t->o.seed, FR_RNG_GFN_BETA, c0, c1, 0, &k, a, &x));
        FR_TRY(fr_box_gamma_draw(t->o.seed, FR_RNG_GFN_BETA, c0, c1, 0, &k, c, &y));
        x = x / (x + y);
        break;
    }
    *beta = (double)(float)x;
    return FR_OK;
}

void fr_gfn_beta_encode(const fr_gfn_trainer *t, double beta, double *enc)
{
    const int n = t->o.mo_beta_therm;
    const double gap = t->beta_hi / (double)(n - 1);
    for (int i = 0; i < n; i++) {
        const double v = beta - (double)i * gap;
        enc[i] = (v < 0.0 ? 0.0 : v > gap ? gap : v) / gap;
    }
}

/* The regularised lower incomplete gamma P(a, x) by its series, x^a e^−x / Γ(a + 1) Σ_n x^n / ((a + 1)…(a + n)). */
static double gamma_p(double a, double x)
{
    if (x <= 0.0) return 0.0;
    double term = 1.0, sum = 1.0;
    for (int n = 1; n < 100000 && term > 1e-17 * sum; n++) {
        term *= x / (a + (double)n);
        sum += term;
    }
    return fr_awm_exp(a * fr_awm_log(x) - x - fr_box_lgamma(a + 1.0)) * sum;
}

fr_status fr_gfn_beta_setup(fr_gfn_trainer *t)
{
    for (int64_t b = 0; b < t->o.batch; b++) t->beta_b[b] = t->o.mo_beta;
    if (t->ncw == t->nc) return FR_OK;
    const double a = t->o.mo_beta_a, c = t->o.mo_beta_b;
    switch (t->o.mo_beta_dist) {
    case 1: { /* stats.gamma.ppf(0.95, a, scale=c) by bisection */
        double lo = 0.0, hi = a + 1.0;
        while (gamma_p(a, hi) < 0.95) hi *= 2.0;
        for (int i = 0; i < 200; i++) {
            const double mid = 0.5 * (lo + hi);
            if (gamma_p(a, mid) < 0.95)
                lo = mid;
            else
                hi = mid;
        }
        t->beta_hi = c * 0.5 * (lo + hi);
        break;
    }
    case 4:
        t->beta_hi = 1.0;
        break;
    default:
        t->beta_hi = c;
    }
    fr_gfn_beta_encode(t, t->o.mo_beta, t->eval_w + t->nc); /* the evaluation's β is mo_beta */
    return FR_OK;
}

/* Dirichlet(1, …, 1) as normalised Exp(1) draws: ω_i = E_i / Σ_j E_j, E_i = −log u_i, u_i =
 * (Philox (seed, FR_RNG_GFN_PREF, iteration, trajectory, 0, i) + ½)·2⁻³² (never 0 or 1, so every
 * ω_i > 0 and R(x | ω) > 0). */
void fr_gfn_draw_prefs(fr_gfn_trainer *t)
{
    const int nc = t->nc;
    for (int64_t b = 0; b < t->o.batch; b++) {
        double *w = t->pref + b * t->ncw, sum = 0.0;
        for (int i = 0; i < nc; i++) {
            const double u = ((double)fr_rng_u32(t->o.seed, FR_RNG_GFN_PREF, (uint32_t)t->iter, (uint32_t)b, 0,
                                                 (uint32_t)i) + 0.5) * (1.0 / 4294967296.0);
            w[i] = -fr_awm_log(u);
            sum += w[i];
        }
        for (int i = 0; i < nc; i++) w[i] /= sum;
    }
}

fr_status fr_gfn_draw_betas(fr_gfn_trainer *t)
{
    for (int64_t b = 0; b < t->o.batch && t->ncw > t->nc; b++) {
        FR_TRY(draw_beta(t, b, &t->beta_b[b]));
        fr_gfn_beta_encode(t, t->beta_b[b], t->pref + b * t->ncw + t->nc);
    }
    return FR_OK;
}

double fr_gfn_mo_log_reward(const fr_gfn_trainer *t, const int32_t *x, const double *w, double beta)
{
    double r[8], s = 0.0;
    t->env->gfn->objectives(t->env, x, r);
    for (int i = 0; i < t->nc; i++) s += w[i] * r[i];
    const double lr = beta * fr_awm_log(s);
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
        lr[i] = fr_gfn_mo_log_reward(t, x, w, t->o.mo_beta);
        m = lr[i] > m ? lr[i] : m;
    }
    for (int64_t i = 0; i < n; i++) z += fr_awm_exp(lr[i] - m); /* R^β can overflow: shifted by the max */
    for (int64_t i = 0; i < n; i++) t->target[i] = fr_awm_exp(lr[i] - m) / z;
    t->log_z_true = m + fr_awm_log(z);
    memcpy(t->eval_w, w, (size_t)t->nc * sizeof *w);
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
