/* The scalar side of the control machinery (flowrl/ctl.h; docs/control.md §2): running
 * statistics, observation normalisation, reward scaling, GAE, advantage normalisation, the PPO
 * surrogate, minibatch orders and the diagonal Gaussian. Host float64 throughout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/ctl.h"
#include "flowrl/philox.h"

/* ---- RunningMeanStd ---------------------------------------------------------------------- */

fr_status fr_rms_init(fr_rms *r, int64_t n)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    r->mean = fr_calloc((size_t)n, sizeof *r->mean);
    r->var = fr_calloc((size_t)n, sizeof *r->var);
    if (!r->mean || !r->var) {
        fr_rms_free(r);
        return FR_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) r->var[i] = 1.0;
    r->count = 1e-4;
    return FR_OK;
}

void fr_rms_free(fr_rms *r)
{
    if (!r) return;
    free(r->mean);
    free(r->var);
    memset(r, 0, sizeof *r);
}

/* update_from_moments (Chan et al.'s merge of the batch's mean and population variance):
 * gym's RunningMeanStd divides M2 by the new count; DPPO's copy divides by count − 1
 * (r->unbiased), which its reward scaler runs with. */
static void merge(fr_rms *r, int64_t i, double bmean, double bvar, double bcount)
{
    const double delta = bmean - r->mean[i], tot = r->count + bcount;
    const double m2 = r->var[i] * r->count + bvar * bcount + delta * delta * r->count * bcount / tot;
    r->mean[i] = r->mean[i] + delta * bcount / tot;
    r->var[i] = m2 / (r->unbiased ? tot - 1.0 : tot);
}

#define RMS_UPDATE(r, B, x)                                                                                            \
    do {                                                                                                               \
        for (int64_t i = 0; i < (r)->n; i++) {                                                                         \
            double s = 0.0, ss = 0.0;                                                                                  \
            for (int64_t b = 0; b < (B); b++) s += (double)(x)[b * (r)->n + i];                                        \
            const double mu = s / (double)(B);                                                                         \
            for (int64_t b = 0; b < (B); b++) {                                                                        \
                const double d = (double)(x)[b * (r)->n + i] - mu;                                                     \
                ss += d * d;                                                                                           \
            }                                                                                                          \
            merge((r), i, mu, ss / (double)(B), (double)(B));                                                          \
        }                                                                                                              \
        (r)->count += (double)(B);                                                                                     \
    } while (0)

void fr_rms_update_f32(fr_rms *r, int64_t B, const float *x)
{
    if (B > 0) RMS_UPDATE(r, B, x);
}

void fr_rms_update_f64(fr_rms *r, int64_t B, const double *x)
{
    if (B > 0) RMS_UPDATE(r, B, x);
}

fr_status fr_ctl_st_put(fr_st_file *f, const char *prefix, const char *what, fr_dtype dt, const void *x, int64_t n)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    fr_tensor t;
    FR_TRY(fr_tensor_alloc(&t, dt, 1, &n));
    memcpy(t.data, x, (size_t)n * fr_dtype_size(dt));
    fr_status s = fr_st_add_take(f, name, &t);
    if (s != FR_OK) fr_tensor_free(&t);
    return s;
}

fr_status fr_ctl_st_get(const fr_st_file *f, const char *path, const char *prefix, const char *what, fr_dtype dt, void *x,
                        int64_t n)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    const fr_tensor *t = fr_st_get(f, name);
    if (!t || t->dtype != dt || t->ndim != 1 || t->shape[0] != n)
        return fr_fail(FR_ERR_FORMAT, "%s: tensor '%s' is %s, expected %s (%lld,)", path, name,
                       t ? "of another dtype or shape" : "absent", fr_dtype_name(dt), (long long)n);
    memcpy(x, t->data, (size_t)n * fr_dtype_size(dt));
    return FR_OK;
}

fr_status fr_rms_save(const fr_rms *r, fr_st_file *f, const char *prefix)
{
    FR_TRY(fr_ctl_st_put(f, prefix, "mean", FR_F64, r->mean, r->n));
    FR_TRY(fr_ctl_st_put(f, prefix, "var", FR_F64, r->var, r->n));
    return fr_ctl_st_put(f, prefix, "count", FR_F64, &r->count, 1);
}

fr_status fr_rms_load(fr_rms *r, const fr_st_file *f, const char *path, const char *prefix)
{
    FR_TRY(fr_ctl_st_get(f, path, prefix, "mean", FR_F64, r->mean, r->n));
    FR_TRY(fr_ctl_st_get(f, path, prefix, "var", FR_F64, r->var, r->n));
    return fr_ctl_st_get(f, path, prefix, "count", FR_F64, &r->count, 1);
}

void fr_ctl_obs_normalize(const fr_rms *r, int64_t B, const float *x, float *out)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < r->n; i++) {
            double z = ((double)x[b * r->n + i] - r->mean[i]) / sqrt(r->var[i] + 1e-8);
            out[b * r->n + i] = (float)(z < -10.0 ? -10.0 : z > 10.0 ? 10.0 : z);
        }
}

/* ---- RunningRewardScaler ----------------------------------------------------------------- */

fr_status fr_ctl_reward_scaler_init(fr_ctl_reward_scaler *s, int64_t N, double gamma)
{
    memset(s, 0, sizeof *s);
    s->N = N;
    s->gamma = gamma;
    s->clip = 10.0;
    s->eps = 1e-8;
    s->ret = fr_calloc((size_t)N, sizeof *s->ret);
    if (!s->ret) return FR_ERR_NOMEM;
    fr_status st = fr_rms_init(&s->rms, 1);
    s->rms.unbiased = 1;
    if (st != FR_OK) fr_ctl_reward_scaler_free(s);
    return st;
}

void fr_ctl_reward_scaler_free(fr_ctl_reward_scaler *s)
{
    if (!s) return;
    free(s->ret);
    fr_rms_free(&s->rms);
    memset(s, 0, sizeof *s);
}

fr_status fr_ctl_reward_scale(fr_ctl_reward_scaler *s, int64_t T, const double *reward, const uint8_t *first,
                              double *out)
{
    const int64_t N = s->N;
    double *rets = fr_malloc((size_t)(T * N) * sizeof *rets);
    if (!rets) return FR_ERR_NOMEM;
    /* backward_discounted_sum over each environment's row (reward.T in the public code: (N, T)) */
    for (int64_t n = 0; n < N; n++) {
        double prev = s->ret[n];
        for (int64_t t = 0; t < T; t++) {
            prev = reward[t * N + n] + (first[t * N + n] ? 0.0 : s->gamma * prev);
            rets[n * T + t] = prev;
        }
        s->ret[n] = prev;
    }
    fr_rms_update_f64(&s->rms, T * N, rets);
    const double d = sqrt(s->rms.var[0] + s->eps);
    for (int64_t i = 0; i < T * N; i++) {
        const double r = reward[i] / d;
        out[i] = r < -s->clip ? -s->clip : r > s->clip ? s->clip : r;
    }
    free(rets);
    return FR_OK;
}

fr_status fr_ctl_reward_scaler_save(const fr_ctl_reward_scaler *s, fr_st_file *f, const char *prefix)
{
    char p[80];
    snprintf(p, sizeof p, "%s.rms", prefix);
    FR_TRY(fr_rms_save(&s->rms, f, p));
    return fr_ctl_st_put(f, prefix, "ret", FR_F64, s->ret, s->N);
}

fr_status fr_ctl_reward_scaler_load(fr_ctl_reward_scaler *s, const fr_st_file *f, const char *path, const char *prefix)
{
    char p[80];
    snprintf(p, sizeof p, "%s.rms", prefix);
    FR_TRY(fr_rms_load(&s->rms, f, path, p));
    return fr_ctl_st_get(f, path, prefix, "ret", FR_F64, s->ret, s->N);
}

/* ---- GAE, advantage normalisation, PPO ------------------------------------------------------ */

void fr_ctl_gae(int64_t T, int64_t N, double gamma, double lambda, const double *reward, const double *value,
                const double *next_value, const uint8_t *end, double *adv, double *ret)
{
    for (int64_t n = 0; n < N; n++) {
        double last = 0.0;
        for (int64_t t = T - 1; t >= 0; t--) {
            const int64_t i = t * N + n;
            const double delta = reward[i] + gamma * next_value[i] - value[i];
            last = delta + gamma * lambda * (end[i] ? 0.0 : 1.0) * last;
            adv[i] = last;
            ret[i] = last + value[i];
        }
    }
}

void fr_ctl_adv_normalize(int64_t n, const double *a, double *out)
{
    double s = 0.0, ss = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i];
    const double mu = n > 0 ? s / (double)n : 0.0;
    for (int64_t i = 0; i < n; i++) ss += (a[i] - mu) * (a[i] - mu);
    const double sd = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    for (int64_t i = 0; i < n; i++) out[i] = (a[i] - mu) / (sd + 1e-8);
}

/* clip[i·stride]: the clip range of row i (stride 0: one for all) */
static void ppo_clip(int64_t n, const double *logp_new, const double *logp_old, const double *adv, const double *clip,
                     int64_t stride, double *g, fr_ctl_ppo_stats *st)
{
    double loss = 0.0, kl = 0.0, cf = 0.0, rm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double lr = logp_new[i] - logp_old[i], r = fr_awm_exp(lr), A = adv[i], c = clip[i * stride];
        const double rc = r < 1.0 - c ? 1.0 - c : r > 1.0 + c ? 1.0 + c : r;
        const double l1 = -A * r, l2 = -A * rc;
        loss += l1 > l2 ? l1 : l2;
        const int inside = r >= 1.0 - c && r <= 1.0 + c;
        g[i] = inside || l1 > l2 ? -A * r / (double)n : 0.0;
        kl += (r - 1.0) - lr;
        cf += fabs(r - 1.0) > c ? 1.0 : 0.0;
        rm += r;
    }
    const double dn = n > 0 ? (double)n : 1.0;
    st->loss = loss / dn;
    st->approx_kl = kl / dn;
    st->clipfrac = cf / dn;
    st->ratio_mean = rm / dn;
}

void fr_ctl_ppo_clip(int64_t n, const double *logp_new, const double *logp_old, const double *adv, double clip,
                     double *g, fr_ctl_ppo_stats *st)
{
    ppo_clip(n, logp_new, logp_old, adv, &clip, 0, g, st);
}

void fr_ctl_ppo_clip_rows(int64_t n, const double *logp_new, const double *logp_old, const double *adv, const double *clip,
                          double *g, fr_ctl_ppo_stats *st)
{
    ppo_clip(n, logp_new, logp_old, adv, clip, 1, g, st);
}

void fr_ctl_minibatch_order(uint32_t seed, uint32_t epoch, uint32_t k, int64_t n, int64_t *perm)
{
    fr_rng_perm(perm, n, seed, FR_RNG_CTL_SHUFFLE, epoch, k);
}

/* ---- the diagonal Gaussian ---------------------------------------------------------------- */

#define HALF_LOG_2PI 0.91893853320467274178

double fr_ctl_gauss_logp(int64_t A, const float *a, const float *mu, const double *log_std)
{
    double lp = 0.0;
    for (int64_t d = 0; d < A; d++) {
        const double z = ((double)a[d] - (double)mu[d]) * fr_awm_exp(-log_std[d]);
        lp += -0.5 * z * z - log_std[d] - HALF_LOG_2PI;
    }
    return lp;
}

double fr_ctl_gauss_entropy(int64_t A, const double *log_std)
{
    double h = 0.0;
    for (int64_t d = 0; d < A; d++) h += log_std[d] + 0.5 + HALF_LOG_2PI;
    return h;
}
