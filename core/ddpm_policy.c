/* The DDPM diffusion policy (flowrl/ddpm_policy.h; docs/control.md §4.2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/ddpm_policy.h"
#include "flowrl/env_ctl.h"
#include "flowrl/schedule.h"

fr_status fr_ddpm_policy_new(fr_ddpm_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden, int T,
                             int64_t cap)
{
    memset(p, 0, sizeof *p);
    if (T < 1 || T > FR_DDPM_MAX_T) return fr_fail(FR_ERR_ARG, "ddpm policy: %d denoising steps (1..%d)", T, FR_DDPM_MAX_T);
    FR_TRY(fr_mlp_new_uniform(&p->net, be, "policy", "ddpm policy", A + FR_DDPM_TEMB + O, hidden, n_hidden, A,
                              FR_ACT_SILU, cap));
    p->O = O;
    p->A = A;
    p->cap = cap;
    p->T = T;
    p->randn_clip = 10.0;
    double **tabs[8] = {&p->sqrt_ab, &p->sqrt_1mab, &p->recip_ab, &p->recipm1_ab, &p->c_x0, &p->c_xt, &p->std, &p->sd};
    int ok = 1;
    for (int i = 0; i < 8; i++) ok = ok && (*tabs[i] = fr_malloc((size_t)T * sizeof(double))) != NULL;
    p->in_h = fr_malloc((size_t)(cap * p->net.dim[0]) * sizeof *p->in_h);
    p->out_h = fr_malloc((size_t)(cap * A) * sizeof *p->out_h);
    p->x = fr_malloc((size_t)(cap * A) * sizeof *p->x);
    float *beta = fr_malloc((size_t)T * sizeof *beta), *ab = fr_malloc((size_t)T * sizeof *ab);
    fr_status s = ok && p->in_h && p->out_h && p->x && beta && ab ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) s = fr_betas_cosine(T, 0.008, 0.999, beta);
    if (s == FR_OK) s = fr_alphas_cumprod(T, beta, ab);
    for (int t = 0; t < T && s == FR_OK; t++) {
        /* diffusion.py's tables; alphas_cumprod_prev[0] = 1 */
        const double b = (double)beta[t], a = (double)ab[t], ap = t > 0 ? (double)ab[t - 1] : 1.0;
        const double alpha = (double)(1.0f - beta[t]), var = b * (1.0 - ap) / (1.0 - a);
        p->sqrt_ab[t] = sqrt(a);
        p->sqrt_1mab[t] = sqrt(1.0 - a);
        p->recip_ab[t] = sqrt(1.0 / a);
        p->recipm1_ab[t] = sqrt(1.0 / a - 1.0);
        p->c_x0[t] = b * sqrt(ap) / (1.0 - a);
        p->c_xt[t] = (1.0 - ap) * sqrt(alpha) / (1.0 - a);
        /* exp(½·log max(var, 1e-20)) = √max(var, 1e-20); floored at 1e-3, 0 at the last step */
        const double sd = sqrt(var > 1e-20 ? var : 1e-20);
        p->sd[t] = sd;
        p->std[t] = t == 0 ? 0.0 : (sd > 1e-3 ? sd : 1e-3);
    }
    free(beta);
    free(ab);
    if (s != FR_OK) fr_ddpm_policy_free(p);
    return s;
}

void fr_ddpm_policy_free(fr_ddpm_policy *p)
{
    if (!p) return;
    fr_mlp_free(&p->net);
    void *h[] = {p->sqrt_ab, p->sqrt_1mab, p->recip_ab, p->recipm1_ab, p->c_x0, p->c_xt, p->std, p->sd, p->in_h, p->out_h, p->x};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    memset(p, 0, sizeof *p);
}

void fr_ddpm_temb(int t, float *emb)
{
    const int half = FR_DDPM_TEMB / 2;
    const double step = fr_awm_log(10000.0) / (double)(half - 1);
    for (int j = 0; j < half; j++) {
        double s, c;
        fr_ctl_sincos((double)t * fr_awm_exp(-(double)j * step), &s, &c);
        emb[j] = (float)s;
        emb[half + j] = (float)c;
    }
}

fr_status fr_ddpm_policy_eps(fr_ddpm_policy *p, int64_t R, const float *obs, const float *x, const int *t)
{
    if (R > p->cap) return fr_fail(FR_ERR_ARG, "ddpm policy: %lld rows, sized for %lld", (long long)R, (long long)p->cap);
    const int64_t O = p->O, A = p->A, W = A + FR_DDPM_TEMB + O;
    for (int64_t r = 0; r < R; r++) {
        float *in = p->in_h + r * W;
        memcpy(in, x + r * A, (size_t)A * sizeof *in);
        fr_ddpm_temb(t[r], in + A);
        memcpy(in + A + FR_DDPM_TEMB, obs + r * O, (size_t)O * sizeof *in);
    }
    return fr_mlp_forward_host(&p->net, R, p->in_h, p->out_h);
}

fr_status fr_ddpm_policy_sample(fr_ddpm_policy *p, int64_t R, const float *obs, const float *z, float *action)
{
    const int64_t A = p->A, RA = R * A;
    int *tt = fr_malloc((size_t)R * sizeof *tt);
    if (!tt) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < RA; i++) {
        p->x[i] = (double)z[(int64_t)p->T * RA + i];
        action[i] = (float)p->x[i];
    }
    fr_status s = FR_OK;
    for (int t = p->T - 1; t >= 0 && s == FR_OK; t--) {
        for (int64_t r = 0; r < R; r++) tt[r] = t;
        s = fr_ddpm_policy_eps(p, R, obs, action, tt);
        for (int64_t i = 0; i < RA && s == FR_OK; i++) {
            double x0 = p->recip_ab[t] * p->x[i] - p->recipm1_ab[t] * (double)p->out_h[i];
            x0 = x0 < -1.0 ? -1.0 : x0 > 1.0 ? 1.0 : x0; /* denoised_clip_value */
            const double mu = p->c_x0[t] * x0 + p->c_xt[t] * p->x[i];
            double zz = (double)z[(int64_t)t * RA + i];
            zz = zz < -p->randn_clip ? -p->randn_clip : zz > p->randn_clip ? p->randn_clip : zz;
            p->x[i] = mu + p->std[t] * zz;
            action[i] = (float)p->x[i];
        }
    }
    free(tt);
    return s;
}

fr_status fr_ddpm_policy_loss(fr_ddpm_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                              const int *t, double *loss, const double *g)
{
    const int64_t A = p->A;
    float *xt = fr_malloc((size_t)(R * A) * sizeof *xt), *dout = g ? fr_malloc((size_t)(R * A) * sizeof *dout) : NULL;
    if (!xt || (g && !dout)) {
        free(xt);
        free(dout);
        return FR_ERR_NOMEM;
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t d = 0; d < A; d++) {
            const int64_t i = r * A + d;
            xt[i] = (float)(p->sqrt_ab[t[r]] * (double)act[i] + p->sqrt_1mab[t[r]] * (double)eps[i]);
        }
    fr_status s = fr_ddpm_policy_eps(p, R, obs, xt, t);
    for (int64_t r = 0; r < R && s == FR_OK; r++) {
        double l = 0.0;
        for (int64_t d = 0; d < A; d++) {
            const int64_t i = r * A + d;
            const double e = (double)p->out_h[i] - (double)eps[i];
            l += e * e;
            if (g) dout[i] = (float)(g[r] * 2.0 * e / (double)A);
        }
        loss[r] = l / (double)A;
    }
    if (s == FR_OK && g) s = fr_mlp_backward_host(&p->net, R, dout);
    free(xt);
    free(dout);
    return s;
}
