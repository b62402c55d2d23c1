/* DGPO's objective for one micro-batch (docs/algorithms/dgpo.md; flowrl/dgpo.h): the training
 * times and the group-shared noise, the per-row flow-matching losses through the AWM row entries
 * (float64 lanes), the detached group weights and the PPO-style sample clip on the host, the
 * gradient through the flow-matching routine shared with pretraining (flowrl/fm_loss.h). */
#include "flowrl/dgpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/fm_loss.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"

#define MAX_CANDIDATES 1024

/* ---- training times and noise ---------------------------------------------------------- */

typedef struct {
    uint32_t key;
    int64_t j;
} time_key;

static int time_key_cmp(const void *a, const void *b)
{
    const time_key *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->j < y->j ? -1 : x->j > y->j;
}

fr_status fr_dgpo_times(uint32_t seed, uint32_t epoch, int64_t K, int64_t trunc_steps, int64_t *idx)
{
    if (trunc_steps < 0 || trunc_steps >= MAX_CANDIDATES || K < 1 || K > trunc_steps + 1 || !idx)
        return fr_fail(FR_ERR_ARG, "fr_dgpo_times: K %lld of trunc_steps %lld + 1 candidates, expected 1 <= K <= %lld",
                       (long long)K, (long long)trunc_steps, (long long)trunc_steps + 1);
    time_key k[MAX_CANDIDATES];
    for (int64_t j = 0; j <= trunc_steps; j++) k[j] = (time_key){fr_rng_u32(seed, FR_RNG_DGPO_TIMES, epoch, 0, 0, (uint32_t)j), j};
    qsort(k, (size_t)(trunc_steps + 1), sizeof *k, time_key_cmp);
    for (int64_t i = 0; i < K; i++) idx[i] = k[i].j;
    return FR_OK;
}

fr_status fr_dgpo_noise(fr_backend *be, uint32_t seed, uint32_t epoch, uint32_t batch, const uint32_t *noise_id,
                        int64_t K, int64_t B, int64_t D, const float *x0, const float *t, float *eps, float *xt)
{
    if (K < 1 || B < 1 || D < 1 || K > MAX_CANDIDATES || B > ((int64_t)1 << 20) || D > ((int64_t)1 << 31) ||
        K * B > ((int64_t)1 << 40) / D || (uint64_t)batch * (uint64_t)K + (uint64_t)K > UINT32_MAX)
        return fr_fail(FR_ERR_ARG, "fr_dgpo_noise: shape K %lld, B %lld, D %lld (batch %u), expected each >= 1",
                       (long long)K, (long long)B, (long long)D, batch);
    if (!be || !noise_id || !x0 || !t || !eps || !xt) return fr_fail(FR_ERR_ARG, "fr_dgpo_noise: NULL argument");
    /* rows r = k·B + i: x0 row i, id noise_id[i], counter c2 = batch·K + k */
    be->ops->noise_fm(K * B, B, D, seed, FR_RNG_DGPO_NOISE, epoch, batch * (uint32_t)K, noise_id, x0, t, xt, eps);
    return FR_OK;
}

/* ---- parameters ------------------------------------------------------------------------ */

fr_dgpo_params fr_dgpo_defaults(void)
{
    fr_dgpo_params p;
    memset(&p, 0, sizeof p);
    p.beta_dpo = 100.0;
    p.group_size = 16;
    p.clip_range = 1e-2;
    p.clip_dsm = 1;
    p.clip_kl = 0;
    p.use_ema_ref = 0;
    p.adv_clip_max = 5.0;
    p.beta = 0.02;
    return p;
}

static int finite_ge(double x, double lo) { return isfinite(x) && x >= lo; }

fr_status fr_dgpo_params_check(const fr_dgpo_params *p)
{
    if (!p) return fr_fail(FR_ERR_ARG, "dgpo: params are NULL");
    if (!finite_ge(p->beta_dpo, 0.0)) return fr_fail(FR_ERR_ARG, "dgpo: beta_dpo %g, expected >= 0", p->beta_dpo);
    if (p->group_size < 1) return fr_fail(FR_ERR_ARG, "dgpo: group_size %lld, expected >= 1", (long long)p->group_size);
    if (!finite_ge(p->clip_range, 0.0)) return fr_fail(FR_ERR_ARG, "dgpo: clip_range %g, expected >= 0", p->clip_range);
    if (!(finite_ge(p->adv_clip_max, 0.0) && p->adv_clip_max > 0.0))
        return fr_fail(FR_ERR_ARG, "dgpo: adv_clip_max %g, expected > 0", p->adv_clip_max);
    if (!finite_ge(p->beta, 0.0)) return fr_fail(FR_ERR_ARG, "dgpo: beta %g, expected >= 0", p->beta);
    return FR_OK;
}

int fr_dgpo_needs_old(const fr_dgpo_params *p) { return p->clip_dsm || p->clip_kl || p->use_ema_ref; }

int fr_dgpo_needs_ref(const fr_dgpo_params *p) { return !p->use_ema_ref || p->beta > 0.0; }

double fr_dgpo_ema_decay(double cap, int64_t global_step)
{
    double lin = 0.001 * (double)global_step; /* `min(0.3, 0.001 * global_step)` */
    return cap < lin ? cap : lin;
}

/* ---- the loss ---------------------------------------------------------------------------- */

/* mean over n of x[i·stride], float64 lanes */
static double mean_d(const double *x, int64_t n, int64_t stride)
{
    fr_awm_lanes acc;
    fr_awm_lanes_zero(&acc);
    for (int64_t i = 0; i < n; i++) fr_awm_lanes_add(&acc, i, x[i * stride]);
    return fr_awm_lanes_sum(&acc) / (double)n;
}

fr_status fr_dgpo_loss(fr_backend *be, const fr_dgpo_params *p, int64_t K, int64_t B, int64_t D, const float *x0,
                       const float *eps, const float *v, const float *v_ref, const float *v_old, const int64_t *group,
                       const float *adv, double gout, float *grad_v, double *d_out, double *w_out, uint8_t *clipped,
                       fr_dgpo_stats *st)
{
    const char *fn = "fr_dgpo_loss";
    FR_TRY(fr_dgpo_params_check(p));
    if (K < 1 || B < 1 || D < 1 || K > MAX_CANDIDATES || B > ((int64_t)1 << 20) || D > ((int64_t)1 << 30) ||
        K * B > ((int64_t)1 << 40) / D)
        return fr_fail(FR_ERR_ARG, "%s: shape K %lld, B %lld, D %lld, expected each >= 1", fn, (long long)K, (long long)B,
                       (long long)D);
    if (!be || !x0 || !eps || !v || !group || !adv || !st) return fr_fail(FR_ERR_ARG, "%s: NULL argument", fn);
    const int need_old = fr_dgpo_needs_old(p), need_ref = fr_dgpo_needs_ref(p);
    if (need_ref && !v_ref) return fr_fail(FR_ERR_ARG, "%s: the base model's output is needed (d_ref or beta > 0)", fn);
    if (need_old && !v_old) return fr_fail(FR_ERR_ARG, "%s: the EMA reference's output is needed (clip or use_ema_ref)", fn);
    if (!isfinite(gout)) return fr_fail(FR_ERR_ARG, "%s: gout %g, expected finite", fn, gout);
    const int64_t R = K * B;
    memset(st, 0, sizeof *st);

    /* host float64: d, d_ref, d_old, KL rows, w, Ã (B), S (B), KL coefficients (R); host
     * float32: row scales (R); host bytes: clip flags (R). Backend: float64 rows (R), KL
     * coefficients (R), float32 targets (R, D) and row scales (R). */
    double *wd = fr_malloc((size_t)(6 * R + 2 * B) * sizeof(double));
    float *scale = fr_malloc((size_t)R * sizeof(float));
    uint8_t *clip = fr_calloc((size_t)R, 1);
    void *dw = fr_dev_alloc(be, (size_t)(2 * R) * sizeof(double) + (grad_v ? (size_t)(R * D + R) * sizeof(float) : 0));
    fr_status s = wd && scale && clip && dw ? FR_OK : FR_ERR_NOMEM;
    double *d = wd, *dref = d + R, *dold = dref + R, *kl = dold + R, *w = kl + R, *klc = w + R, *a = klc + R,
           *S = a + B;
    double *d_rows = dw, *d_klc = d_rows + R;
    float *d_target = (float *)(d_klc + R), *d_scale = d_target + R * D;
    const float *vdref = p->use_ema_ref ? v_old : v_ref;
#define ROWS(src, dst)                                                                                               \
    do {                                                                                                             \
        be->ops->awm_sqerr(R, B, D, src, eps, x0, d_rows);                                                           \
        if (s == FR_OK) s = fr_d2h(be, dst, d_rows, (size_t)R * sizeof(double));                                     \
    } while (0)
    if (s == FR_OK) ROWS(v, d);
    if (s == FR_OK) ROWS(vdref, dref);
    if (s == FR_OK && need_old) ROWS(v_old, dold);
#undef ROWS
    if (s == FR_OK && p->beta > 0.0) {
        be->ops->row_msd_f64(R, D, v, v_ref, d_rows);
        s = fr_d2h(be, kl, d_rows, (size_t)R * sizeof(double));
    }
    if (s != FR_OK) goto done;

    /* Ã = clamp(A, ±adv_clip_max) (`torch.clamp(advantages, ...)`) */
    for (int64_t i = 0; i < B; i++) {
        double x = (double)adv[i];
        a[i] = x < -p->adv_clip_max ? -p->adv_clip_max : (x > p->adv_clip_max ? p->adv_clip_max : x);
    }
    /* the clip: ρ = exp(−d + d_old) */
    int64_t nclip = 0;
    st->ratio_min = need_old ? INFINITY : NAN;
    st->ratio_max = need_old ? -INFINITY : NAN;
    if (need_old)
        for (int64_t r = 0; r < R; r++) {
            double rho = fr_awm_exp(-d[r] + dold[r]), ai = a[r % B];
            clip[r] = ai > 0.0 ? rho > 1.0 + p->clip_range : rho < 1.0 - p->clip_range;
            nclip += clip[r];
            st->ratio_min = rho < st->ratio_min || rho != rho ? rho : st->ratio_min;
            st->ratio_max = rho > st->ratio_max || rho != rho ? rho : st->ratio_max;
        }
    st->clipfrac = (double)nclip / (double)R;
    /* group weights per time: S_g = Σ_{i∈g} ((Ã_i·β_dpo)·(d − d_ref))/G in sample order, at the
     * group's first sample; w = σ(S_g) */
    const double G = (double)p->group_size;
    st->w_min = INFINITY;
    st->w_max = -INFINITY;
    for (int64_t k = 0; k < K; k++) {
        for (int64_t i = 0; i < B; i++) S[i] = 0.0;
        for (int64_t i = 0; i < B; i++) {
            int64_t g = 0;
            while (group[g] != group[i]) g++;
            const int64_t r = k * B + i;
            S[g] = S[g] + ((a[i] * p->beta_dpo) * (d[r] - dref[r])) / G;
        }
        for (int64_t i = 0; i < B; i++) {
            int64_t g = 0;
            while (group[g] != group[i]) g++;
            const int64_t r = k * B + i;
            w[r] = 1.0 / (1.0 + fr_awm_exp(-S[g]));
            st->w_min = w[r] < st->w_min ? w[r] : st->w_min;
            st->w_max = w[r] > st->w_max ? w[r] : st->w_max;
        }
    }
    st->w_mean = mean_d(w, R, 1);
    st->dsm = mean_d(d, R, 1);
    /* L_k = mean_i w·Ã·d (+ β·mean_i KL), L = mean_k L_k; klc, scale reused as scratch */
    double lk[MAX_CANDIDATES], kk[MAX_CANDIDATES];
    for (int64_t k = 0; k < K; k++) {
        for (int64_t i = 0; i < B; i++) klc[i] = (w[k * B + i] * a[i]) * d[k * B + i];
        lk[k] = mean_d(klc, B, 1);
        kk[k] = p->beta > 0.0 ? mean_d(kl + k * B, B, 1) : 0.0;
    }
    st->dgpo_loss = mean_d(lk, K, 1);
    st->kl = mean_d(kk, K, 1);
    st->loss = st->dgpo_loss + p->beta * st->kl;

    if (grad_v) {
        const double two_over_n = 2.0 / (double)(R * D);
        for (int64_t r = 0; r < R; r++)
            scale[r] = p->clip_dsm && clip[r] ? 0.0f : (float)(((w[r] * a[r % B]) * gout) * two_over_n);
        s = fr_h2d(be, d_scale, scale, (size_t)R * sizeof(float));
        if (s != FR_OK) goto done;
        be->ops->flow_target(R, B, D, x0, eps, d_target);
        s = fr_fm_loss(be, R, D, v, d_target, d_scale, NULL, grad_v);
        if (s != FR_OK) goto done;
        if (p->beta > 0.0) {
            for (int64_t r = 0; r < R; r++)
                klc[r] = p->clip_kl && clip[r] ? 0.0 : ((gout * p->beta) / (double)(R * D)) * 2.0;
            s = fr_h2d(be, d_klc, klc, (size_t)R * sizeof(double));
            if (s != FR_OK) goto done;
            be->ops->kl_grad_add(R, D, v, v_ref, d_klc, NULL, NULL, grad_v);
        }
    }
    if (d_out) memcpy(d_out, d, (size_t)R * sizeof(double));
    if (w_out) memcpy(w_out, w, (size_t)R * sizeof(double));
    if (clipped) memcpy(clipped, clip, (size_t)R);
done:
    free(wd);
    free(scale);
    free(clip);
    fr_dev_free(be, dw);
    return s;
}
