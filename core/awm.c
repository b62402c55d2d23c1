/* AWM's objective for one micro-batch (docs/algorithms/awm.md; flowrl/awm.h): loops over
 * flowrl/awm_elem.h, float64 long sums in reduce.h's lane order, the policy gradient through
 * the flow-matching routine shared with pretraining (flowrl/fm_loss.h). */
#include "flowrl/awm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/fm_loss.h"
#include "flowrl/pretrain_elem.h"

fr_awm_params fr_awm_defaults(void)
{
    fr_awm_params p;
    memset(&p, 0, sizeof p);
    p.weighting = FR_AWM_W_GHUBER;
    p.ghuber_power = 0.25;
    p.ratio_mode = FR_AWM_RATIO_EXP_FIRST;
    p.clip_range = 1.0;
    p.adv_clip_max = 5.0;
    p.advantage_max = 1.0;
    p.beta = 0.001;
    p.kl_weight = FR_AWM_KL_UNIFORM;
    p.ema_beta = 1.0;
    p.kl_ema_weight = FR_AWM_KL_UNIFORM;
    return p;
}

/* ---- names ------------------------------------------------------------------------- */

static const char *const k_weighting[] = {"Uniform", "ghuber", "t", "t**2", "huber"};
static const char *const k_ratio[] = {"exp_first", "sum_first"};
static const char *const k_kl[] = {"Uniform", "ELBO"};

static fr_status parse_name(const char *what, const char *const *names, int n, const char *s, int *out)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return FR_OK;
        }
    return fr_fail(FR_ERR_ARG, "awm: %s '%s' is unknown", what, s ? s : "(null)");
}

#define N_OF(a) (int)(sizeof a / sizeof a[0])

const char *fr_awm_weighting_name(fr_awm_weighting w)
{
    return (int)w >= 0 && (int)w < N_OF(k_weighting) ? k_weighting[w] : NULL;
}

fr_status fr_awm_weighting_parse(const char *name, fr_awm_weighting *w)
{
    int i;
    FR_TRY(parse_name("weighting (Uniform, ghuber, t, t**2, huber)", k_weighting, N_OF(k_weighting), name, &i));
    *w = (fr_awm_weighting)i;
    return FR_OK;
}

const char *fr_awm_ratio_name(fr_awm_ratio_mode m)
{
    return (int)m >= 0 && (int)m < N_OF(k_ratio) ? k_ratio[m] : NULL;
}

fr_status fr_awm_ratio_parse(const char *name, fr_awm_ratio_mode *m)
{
    int i;
    FR_TRY(parse_name("loss type (exp_first, sum_first)", k_ratio, N_OF(k_ratio), name, &i));
    *m = (fr_awm_ratio_mode)i;
    return FR_OK;
}

const char *fr_awm_kl_weight_name(fr_awm_kl_weight k)
{
    return (int)k >= 0 && (int)k < N_OF(k_kl) ? k_kl[k] : NULL;
}

fr_status fr_awm_kl_weight_parse(const char *name, fr_awm_kl_weight *k)
{
    int i;
    FR_TRY(parse_name("KL weight (Uniform, ELBO)", k_kl, N_OF(k_kl), name, &i));
    *k = (fr_awm_kl_weight)i;
    return FR_OK;
}

/* ---- checks ------------------------------------------------------------------------ */

static int finite_ge(double x, double lo) { return isfinite(x) && x >= lo; }

fr_status fr_awm_params_check(const fr_awm_params *p)
{
    if (!p) return fr_fail(FR_ERR_ARG, "awm: params are NULL");
    if (!fr_awm_weighting_name(p->weighting)) return fr_fail(FR_ERR_ARG, "awm: weighting %d is invalid", (int)p->weighting);
    if (!(p->ghuber_power > 0.0 && p->ghuber_power <= 1.0))
        return fr_fail(FR_ERR_ARG, "awm: ghuber_power %g, expected in (0, 1]", p->ghuber_power);
    if (!fr_awm_ratio_name(p->ratio_mode)) return fr_fail(FR_ERR_ARG, "awm: loss type %d is invalid", (int)p->ratio_mode);
    if (!finite_ge(p->clip_range, 0.0)) return fr_fail(FR_ERR_ARG, "awm: clip_range %g, expected >= 0", p->clip_range);
    if (!(finite_ge(p->adv_clip_max, 0.0) && p->adv_clip_max > 0.0))
        return fr_fail(FR_ERR_ARG, "awm: adv_clip_max %g, expected > 0", p->adv_clip_max);
    if (!(finite_ge(p->advantage_max, 0.0) && p->advantage_max > 0.0))
        return fr_fail(FR_ERR_ARG, "awm: advantage_max %g, expected > 0", p->advantage_max);
    if (!finite_ge(p->beta, 0.0)) return fr_fail(FR_ERR_ARG, "awm: beta %g, expected >= 0", p->beta);
    if (!finite_ge(p->ema_beta, 0.0)) return fr_fail(FR_ERR_ARG, "awm: ema_beta %g, expected >= 0", p->ema_beta);
    if (!fr_awm_kl_weight_name(p->kl_weight) || !fr_awm_kl_weight_name(p->kl_ema_weight))
        return fr_fail(FR_ERR_ARG, "awm: kl_weight %d / kl_ema_weight %d, expected Uniform or ELBO", (int)p->kl_weight,
                       (int)p->kl_ema_weight);
    return FR_OK;
}

static fr_status check_shape(const char *fn, int64_t K, int64_t B, int64_t D)
{
    if (K < 1 || B < 1 || D < 1 || K > ((int64_t)1 << 20) || B > ((int64_t)1 << 20) || D > ((int64_t)1 << 30) ||
        K * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape K %lld, B %lld, D %lld, expected each >= 1", fn, (long long)K,
                       (long long)B, (long long)D);
    return FR_OK;
}

/* ---- the log-prob ----------------------------------------------------------------- */

fr_status fr_awm_logprob(fr_backend *be, const fr_awm_params *p, int64_t K, int64_t B, int64_t D, const float *t,
                         const float *x0, const float *eps, const float *v, double *m, double *logp, double *w)
{
    FR_TRY(fr_awm_params_check(p));
    FR_TRY(check_shape("fr_awm_logprob", K, B, D));
    if (!be || !t || !x0 || !eps || !v) return fr_fail(FR_ERR_ARG, "fr_awm_logprob: NULL argument");
    double *mm = m ? m : fr_malloc((size_t)(K * B) * sizeof *mm);
    double *dm = fr_dev_doubles(be, K * B); /* the op's rows, copied out */
    fr_status s = mm && dm ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        be->ops->awm_sqerr(K * B, B, D, v, eps, x0, dm);
        s = fr_d2h(be, mm, dm, (size_t)(K * B) * sizeof *mm);
    }
    for (int64_t r = 0; s == FR_OK && r < K * B; r++) {
        if (logp) logp[r] = fr_awm_logprob_elem(p->weighting, mm[r], t[r], p->ghuber_power);
        if (w) w[r] = fr_awm_weight_elem(p->weighting, mm[r], t[r], p->ghuber_power);
    }
    fr_dev_free(be, dm);
    if (!m) free(mm);
    return s;
}

/* ---- the policy term ---------------------------------------------------------------- */

/* mean over n of x[i·stride], float64 lanes */
static double mean_d(const double *x, int64_t n, int64_t stride)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < n; i++) fr_awm_lanes_add(&acc, i, x[i * stride]);
    return fr_awm_lanes_sum(&acc) / (double)n;
}

/* The PPO form over the n ratio units (exp_first: the R rows; sum_first: the B samples):
 * z (n,) = ℓ − ℓ_old of each unit, a (n,) its Ã. term (n,), q (n,) = dterm/dz, r (n,). */
static void ppo_units(const fr_awm_params *p, int64_t n, const double *z, const double *a, double *r, double *term,
                      double *q, fr_awm_stats *st)
{
    const double lo = 1.0 - p->clip_range, hi = 1.0 + p->clip_range;
    int64_t nclip = 0;
    double rmin = INFINITY, rmax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        r[i] = fr_awm_exp(z[i]);
        term[i] = fr_awm_ppo_term_elem(r[i], a[i], lo, hi);
        q[i] = fr_awm_ppo_dterm_elem(r[i], a[i], lo, hi);
        nclip += fabs(r[i] - 1.0) > p->clip_range; /* `torch.abs(ratio - 1.0) > clip_range` */
        rmin = r[i] < rmin || r[i] != r[i] ? r[i] : rmin;
        rmax = r[i] > rmax || r[i] != r[i] ? r[i] : rmax;
    }
    st->policy_loss = mean_d(term, n, 1);
    st->clipfrac = (double)nclip / (double)n;
    st->ratio_min = rmin;
    st->ratio_max = rmax;
    st->ratio_mean = mean_d(r, n, 1);
}

/* ---- the KL terms ------------------------------------------------------------------- */

/* KL = mean_b mean_k [ mean_i (v − v_o)² / s_r ] (`.mean(dim=(2,3,4)) / (2·std²)`, then
 * `.mean(dim=0).mean()`); coef (K·B,) receives dKL/d(v − v_o)² per element without the
 * upstream factor: 1/(B·K·s_r·D). kl_row (K·B,) is host scratch, dkl (K·B,) backend scratch
 * for the op's rows. */
static fr_status kl_term(fr_backend *be, fr_awm_kl_weight kw, int64_t K, int64_t B, int64_t D, const float *t,
                         const float *v, const float *vo, double *kl_row, double *coef, double *kb, double *dkl,
                         double *kl)
{
    be->ops->row_msd_f64(K * B, D, v, vo, dkl);
    FR_TRY(fr_d2h(be, kl_row, dkl, (size_t)(K * B) * sizeof *kl_row));
    for (int64_t r = 0; r < K * B; r++) {
        double s = kw == FR_AWM_KL_ELBO ? (double)fr_awm_elbo_two_var(t[r]) : 1.0;
        kl_row[r] = kl_row[r] / s;
        coef[r] = (((1.0 / (double)B) / (double)K) / s) / (double)D;
    }
    for (int64_t b = 0; b < B; b++) kb[b] = mean_d(kl_row + b, K, B); /* mean over k (dim 0) */
    *kl = mean_d(kb, B, 1);
    return FR_OK;
}

/* ---- the loss ------------------------------------------------------------------------- */

fr_status fr_awm_loss(fr_backend *be, const fr_awm_params *p, int64_t K, int64_t B, int64_t D, const float *t, const float *x0,
                      const float *eps, const float *v, const float *v_ref, const float *v_ema, const double *logp_old,
                      const float *adv, double gout, float *grad_v, double *logp, double *ratio, fr_awm_stats *stats)
{
    const char *fn = "fr_awm_loss";
    FR_TRY(fr_awm_params_check(p));
    FR_TRY(check_shape(fn, K, B, D));
    if (!be || !t || !x0 || !eps || !v || !adv || !stats) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    if (p->beta > 0.0 && !v_ref) return fr_fail(FR_ERR_ARG, "%s: beta %g > 0 needs the reference output", fn, p->beta);
    if (p->ema_beta > 0.0 && !v_ema)
        return fr_fail(FR_ERR_ARG, "%s: ema_beta %g > 0 needs the EMA adapter's output", fn, p->ema_beta);
    if (!isfinite(gout)) return fr_fail(FR_ERR_ARG, "%s: gout %g, expected finite", fn, gout);
    const int64_t R = K * B, n = p->ratio_mode == FR_AWM_RATIO_EXP_FIRST ? R : B;
    memset(stats, 0, sizeof *stats);

    /* host float64 scratch: ℓ, w (R each), per unit z, Ã, ρ, term, q (n each), KL rows (R
     * each, two terms), their coefficients (R each, adjacent: they cross together),
     * per-sample KL means (B); host float32: the policy's row scales (R). Backend: float64 KL
     * rows (R) and coefficients (2R), float32 targets (R, D) and row scales (R). */
    size_t nd = (size_t)(2 * R + 5 * n + 4 * R + B);
    double *wd = fr_malloc(nd * sizeof(double));
    float *scale = grad_v ? fr_malloc((size_t)R * sizeof(float)) : NULL;
    void *dw = fr_dev_alloc(be, (size_t)(3 * R) * sizeof(double) + (grad_v ? (size_t)(R * D + R) * sizeof(float) : 0));
    if (!wd || (grad_v && !scale) || !dw) {
        free(wd);
        free(scale);
        fr_dev_free(be, dw);
        return FR_ERR_NOMEM;
    }
    double *lp = wd, *w = lp + R, *z = w + R, *a = z + n, *r = a + n, *term = r + n, *q = term + n;
    double *klr = q + n, *ekr = klr + R, *klc = ekr + R, *ekc = klc + R, *kb = ekc + R;
    double *d_klr = dw, *d_klc = d_klr + R; /* d_klc: klc then ekc */
    float *d_target = (float *)(d_klc + 2 * R), *d_scale = d_target + R * D;
    fr_status st = fr_awm_logprob(be, p, K, B, D, t, x0, eps, v, NULL, lp, w);
    if (st != FR_OK) goto done;
    if (logp) memcpy(logp, lp, (size_t)R * sizeof(double));
    stats->logp_mean = mean_d(lp, R, 1);

    /* z = ℓ_θ − ℓ_old per unit: on-policy ℓ_old = ℓ_θ.detach(), z = 0 exactly */
    if (p->ratio_mode == FR_AWM_RATIO_EXP_FIRST) {
        for (int64_t i = 0; i < R; i++) {
            z[i] = logp_old ? lp[i] - logp_old[i] : lp[i] - lp[i];
            a[i] = fr_awm_adv_elem(adv[i % B], p->adv_clip_max, p->advantage_max);
        }
    } else {
        for (int64_t b = 0; b < B; b++) {
            double mn = mean_d(lp + b, K, B); /* `log_probs.mean(dim=0)` over the K times */
            double mo = logp_old ? mean_d(logp_old + b, K, B) : mn;
            z[b] = mn - mo;
            a[b] = fr_awm_adv_elem(adv[b], p->adv_clip_max, p->advantage_max);
        }
    }
    ppo_units(p, n, z, a, r, term, q, stats);
    if (ratio) memcpy(ratio, r, (size_t)n * sizeof(double));
    stats->loss = stats->policy_loss;
    if (p->beta > 0.0) {
        st = kl_term(be, p->kl_weight, K, B, D, t, v, v_ref, klr, klc, kb, d_klr, &stats->kl);
        if (st != FR_OK) goto done;
        stats->loss = stats->loss + p->beta * stats->kl;
    }
    if (p->ema_beta > 0.0) {
        st = kl_term(be, p->kl_ema_weight, K, B, D, t, v, v_ema, ekr, ekc, kb, d_klr, &stats->ema_kl);
        if (st != FR_OK) goto done;
        stats->loss = stats->loss + p->ema_beta * stats->ema_kl;
    }

    if (grad_v) {
        /* policy: c_r = (−s_r·w_r·gout)·(2/(R·D)), s_r = R·dL_pg/dℓ_r; the difference and
         * the product in float32 through the routine pretraining uses */
        const double two_over_n = 2.0 / (double)(R * D);
        for (int64_t i = 0; i < R; i++) {
            double s = p->ratio_mode == FR_AWM_RATIO_EXP_FIRST ? q[i] : q[i % B];
            scale[i] = (float)((-s * w[i] * gout) * two_over_n);
        }
        st = fr_h2d(be, d_scale, scale, (size_t)R * sizeof(float));
        if (st != FR_OK) goto done;
        be->ops->flow_target(R, B, D, x0, eps, d_target);
        st = fr_fm_loss(be, R, D, v, d_target, d_scale, NULL, grad_v);
        if (st != FR_OK) goto done;
        /* KL terms: gout·β·coef_r·2·(v − v_o), summed in float64, rounded once, added */
        if (p->beta > 0.0 || p->ema_beta > 0.0) {
            for (int64_t i = 0; i < R; i++) {
                klc[i] = p->beta > 0.0 ? ((gout * p->beta) * klc[i]) * 2.0 : 0.0;
                ekc[i] = p->ema_beta > 0.0 ? ((gout * p->ema_beta) * ekc[i]) * 2.0 : 0.0;
            }
            st = fr_h2d(be, d_klc, klc, (size_t)(2 * R) * sizeof(double));
            if (st != FR_OK) goto done;
            be->ops->kl_grad_add(R, D, v, p->beta > 0.0 ? v_ref : NULL, d_klc, p->ema_beta > 0.0 ? v_ema : NULL,
                                 d_klc + R, grad_v);
        }
    }
done:
    free(wd);
    free(scale);
    fr_dev_free(be, dw);
    return st;
}

/* ---- the EMA adapter -------------------------------------------------------------------- */

double fr_awm_ema_decay(fr_awm_decay_type type, double kl_ema_decay, int64_t global_step)
{
    if (type == FR_AWM_DECAY_CONSTANT) return kl_ema_decay;
    double lin = 0.001 * (double)global_step; /* `min(kl_ema_decay, 0.001 * global_step)` */
    return kl_ema_decay < lin ? kl_ema_decay : lin;
}

fr_status fr_awm_ema_update(fr_backend *be, int64_t n, double d, const float *theta, float *ema)
{
    if (n < 0 || (n > 0 && (!theta || !ema))) return fr_fail(FR_ERR_ARG, "fr_awm_ema_update: NULL array or n < 0");
    if (!(d >= 0.0 && d <= 1.0)) return fr_fail(FR_ERR_ARG, "fr_awm_ema_update: decay %g, expected in [0, 1]", d);
    be->ops->ema_lerp(n, d, theta, ema);
    return FR_OK;
}
