/* The MeanFlow control policy (flowrl/meanflow_policy.h; docs/algorithms/meanflow.md; spec
 * more.md §9). The network runs through the op table (fr_mlp_forward, fr_mlp_jvp,
 * fr_mlp_backward_h); the inputs, targets and losses are host float64 work, as the flow policy's
 * (core/flow_policy.c), so every backend with ref's network bits gives ref's loss bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/detmath.h"
#include "flowrl/env_ctl.h"
#include "flowrl/meanflow_policy.h"
#include "flowrl/philox.h"

static int64_t in_width(const fr_mf_policy *p) { return p->O + p->A + FR_MF_TEMB; }

fr_status fr_mf_policy_new(fr_mf_policy *p, fr_backend *be, int64_t O, int64_t A, int64_t hidden, int n_hidden,
                           int64_t cap)
{
    memset(p, 0, sizeof *p);
    FR_TRY(fr_mlp_new_uniform(&p->net, be, "policy", "meanflow policy", O + A + FR_MF_TEMB, hidden, n_hidden, A,
                              FR_ACT_SILU, cap));
    p->O = O;
    p->A = A;
    p->cap = cap;
    p->w = 2.0;
    p->flow_ratio = 0.5;
    p->disp_weight = 0.5;
    p->tau = 1.0;
    const int64_t W = p->net.dim[0];
    p->in_h = fr_malloc((size_t)(cap * W) * sizeof *p->in_h);
    p->tan_h = fr_malloc((size_t)(cap * W) * sizeof *p->tan_h);
    p->u_h = fr_malloc((size_t)(cap * A) * sizeof *p->u_h);
    p->dudt_h = fr_malloc((size_t)(cap * A) * sizeof *p->dudt_h);
    p->dout_h = fr_malloc((size_t)(cap * A) * sizeof *p->dout_h);
    p->feat_h = fr_malloc((size_t)(cap * hidden) * sizeof *p->feat_h);
    p->vhat = fr_malloc((size_t)(cap * A) * sizeof *p->vhat);
    p->gfeat = fr_malloc((size_t)(cap * hidden) * 2 * sizeof *p->gfeat);
    p->xdot = fr_dev_floats(be, cap * W);
    p->ydot = fr_dev_floats(be, cap * A);
    fr_status s = p->in_h && p->tan_h && p->u_h && p->dudt_h && p->dout_h && p->feat_h && p->vhat && p->gfeat &&
                          p->xdot && p->ydot
                      ? FR_OK
                      : FR_ERR_NOMEM;
    for (int l = 0; l + 2 < p->net.L && s == FR_OK; l++)
        if (!(p->dh[l] = fr_dev_floats(be, cap * hidden))) s = FR_ERR_NOMEM;
    if (s != FR_OK) fr_mf_policy_free(p);
    return s;
}

void fr_mf_policy_free(fr_mf_policy *p)
{
    if (!p) return;
    fr_backend *be = p->net.be;
    if (be) {
        fr_dev_free(be, p->xdot);
        fr_dev_free(be, p->ydot);
        for (int l = 0; l < FR_MLP_MAX_LAYERS; l++) fr_dev_free(be, p->dh[l]);
    }
    fr_mlp_free(&p->net);
    void *h[] = {p->in_h, p->tan_h, p->u_h, p->dudt_h, p->dout_h, p->feat_h, p->vhat, p->gfeat};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
    memset(p, 0, sizeof *p);
}

void fr_mf_inputs(const fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t, const double *r,
                  const float *zdot, float *in, float *tan)
{
    const int64_t O = p->O, A = p->A, W = in_width(p);
    for (int64_t b = 0; b < R; b++) {
        float *x = in + b * W;
        memcpy(x, obs + b * O, (size_t)O * sizeof *x);
        memcpy(x + O, z + b * A, (size_t)A * sizeof *x);
        fr_flow_temb(t[b], x + O + A);
        fr_flow_temb(r[b], x + O + A + FR_FLOW_TEMB);
        if (!tan) continue;
        /* d/dt [cos 2^k t, sin 2^k t] = 2^k [−sin 2^k t, cos 2^k t]; r's tangent is 0 */
        float *d = tan + b * W;
        memset(d, 0, (size_t)W * sizeof *d);
        memcpy(d + O, zdot + b * A, (size_t)A * sizeof *d);
        for (int k = 0; k < FR_FLOW_TEMB / 2; k++) {
            const double f = (double)(1 << k);
            double sn, cs;
            fr_ctl_sincos(t[b] * f, &sn, &cs);
            d[O + A + k] = (float)(-f * sn);
            d[O + A + FR_FLOW_TEMB / 2 + k] = (float)(f * cs);
        }
    }
}

static fr_status check_rows(const fr_mf_policy *p, int64_t R)
{
    return R <= p->cap ? FR_OK
                       : fr_fail(FR_ERR_ARG, "meanflow policy: %lld rows, sized for %lld", (long long)R, (long long)p->cap);
}

fr_status fr_mf_policy_u(fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t, const double *r)
{
    FR_TRY(check_rows(p, R));
    fr_mf_inputs(p, R, obs, z, t, r, NULL, p->in_h, NULL);
    return fr_mlp_forward_host(&p->net, R, p->in_h, p->u_h);
}

fr_status fr_mf_policy_jvp(fr_mf_policy *p, int64_t R, const float *obs, const float *z, const double *t,
                           const double *r, const float *zdot)
{
    FR_TRY(check_rows(p, R));
    const int64_t W = in_width(p), A = p->A;
    fr_mf_inputs(p, R, obs, z, t, r, zdot, p->in_h, p->tan_h);
    FR_TRY(fr_h2d(p->net.be, fr_mlp_in(&p->net), p->in_h, (size_t)(R * W) * sizeof(float)));
    FR_TRY(fr_h2d(p->net.be, p->xdot, p->tan_h, (size_t)(R * W) * sizeof(float)));
    fr_mlp_jvp(&p->net, R, p->xdot, p->ydot);
    FR_TRY(fr_d2h(p->net.be, p->u_h, fr_mlp_out(&p->net), (size_t)(R * A) * sizeof(float)));
    return fr_d2h(p->net.be, p->dudt_h, p->ydot, (size_t)(R * A) * sizeof(float));
}

fr_status fr_mf_policy_sample(fr_mf_policy *p, int64_t R, const float *obs, const float *eps, float *action)
{
    double *t = fr_malloc((size_t)R * 2 * sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    for (int64_t b = 0; b < R; b++) {
        t[b] = 1.0;
        t[R + b] = 0.0;
    }
    fr_status s = fr_mf_policy_u(p, R, obs, eps, t, t + R);
    for (int64_t i = 0; i < R * p->A && s == FR_OK; i++) action[i] = eps[i] - p->u_h[i];
    free(t);
    return s;
}

fr_status fr_mf_times(int64_t B, double flow_ratio, uint32_t seed, uint32_t purpose, uint32_t c0, double *t, double *r)
{
    for (int64_t b = 0; b < B; b++) {
        const float s0 = fr_sigmoidf(-0.4f + fr_rng_normal(seed, purpose, c0, 0, 0, (uint32_t)(2 * b)));
        const float s1 = fr_sigmoidf(-0.4f + fr_rng_normal(seed, purpose, c0, 0, 0, (uint32_t)(2 * b + 1)));
        t[b] = (double)(s0 > s1 ? s0 : s1);
        r[b] = (double)(s0 > s1 ? s1 : s0);
    }
    const int64_t n = (int64_t)(flow_ratio * (double)B);
    int64_t *perm = fr_malloc((size_t)(B > 0 ? B : 1) * sizeof *perm);
    if (!perm) return FR_ERR_NOMEM;
    fr_rng_perm(perm, B, seed, purpose, c0, 1);
    for (int64_t k = 0; k < n; k++) r[perm[k]] = t[perm[k]];
    free(perm);
    return FR_OK;
}

double fr_mf_objective(int64_t R, int64_t A, const float *u, const float *dudt, const double *vhat, const double *t,
                       const double *r, double *delta2, double *lambda, float *dout)
{
    double L = 0.0;
    for (int64_t b = 0; b < R; b++) {
        double d2 = 0.0;
        for (int64_t j = 0; j < A; j++) {
            const int64_t i = b * A + j;
            const double e = (double)u[i] - (vhat[i] - (t[b] - r[b]) * (double)dudt[i]);
            d2 += e * e;
        }
        d2 /= (double)A;
        const double lam = 1.0 / sqrt(d2 + 1e-3); /* (δ² + c)^−(1 − γ), γ = 0.5 */
        L += lam * d2 / (double)R;
        if (delta2) delta2[b] = d2;
        if (lambda) lambda[b] = lam;
        for (int64_t j = 0; j < A && dout; j++) {
            const int64_t i = b * A + j;
            const double e = (double)u[i] - (vhat[i] - (t[b] - r[b]) * (double)dudt[i]);
            dout[i] = (float)(lam * 2.0 * e / (double)(R * A));
        }
    }
    return L;
}

double fr_mf_dispersive(int64_t B, int64_t F, const double *h, double tau, double *g)
{
    /* D (B, B) symmetric with a zero diagonal; its largest entry M */
    double *D = fr_malloc((size_t)(B * B) * sizeof *D);
    if (!D) return NAN;
    double M = 0.0;
    for (int64_t i = 0; i < B; i++) {
        D[i * B + i] = 0.0;
        for (int64_t j = i + 1; j < B; j++) {
            double s = 0.0;
            for (int64_t f = 0; f < F; f++) {
                const double d = h[i * F + f] - h[j * F + f];
                s += d * d;
            }
            D[i * B + j] = D[j * B + i] = s;
            if (s > M) M = s;
        }
    }
    if (g) memset(g, 0, (size_t)(B * F) * sizeof *g);
    if (!(M > 0.0)) { /* every row equal: MP1's 0/0, guarded (flowrl/meanflow_policy.h) */
        free(D);
        return 0.0;
    }
    double S = 0.0, SD = 0.0;
    int64_t ties = 0;
    for (int64_t k = 0; k < B * B; k++) {
        const double e = fr_awm_exp(-D[k] / (M * tau));
        S += e;
        SD += e * D[k];
        ties += D[k] == M;
    }
    const double L = fr_awm_log(S / (double)(B * B));
    if (g) {
        /* dL/dD_ij = −w_ij/(M τ) + [D_ij = M]·(Σ w D)/(M² τ)/ties, w = exp(−D/(Mτ))/S; D_ij = ‖h_i −
         * h_j‖², so dL/dh_i = Σ_j (G_ij + G_ji)·2(h_i − h_j) = 4 Σ_j G_ij (h_i − h_j) (G symmetric) */
        const double gm = SD / S / (M * M * tau) / (double)ties;
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < B; j++) {
                if (j == i) continue;
                const double Gij = -fr_awm_exp(-D[i * B + j] / (M * tau)) / S / (M * tau) + (D[i * B + j] == M ? gm : 0.0);
                for (int64_t f = 0; f < F; f++) g[i * F + f] += 4.0 * Gij * (h[i * F + f] - h[j * F + f]);
            }
    }
    free(D);
    return L;
}

fr_status fr_mf_policy_loss(fr_mf_policy *p, int64_t R, const float *obs, const float *act, const float *eps,
                            const double *t, const double *r, int grad, fr_mf_loss *out)
{
    FR_TRY(check_rows(p, R));
    const int64_t A = p->A, H = p->net.dim[1];
    float *z = fr_malloc((size_t)(R * A) * 2 * sizeof *z), *zdot = z ? z + R * A : NULL;
    if (!z) return FR_ERR_NOMEM;
    for (int64_t b = 0; b < R; b++)
        for (int64_t j = 0; j < A; j++) {
            const int64_t i = b * A + j;
            z[i] = (float)(t[b] * (double)eps[i] + (1.0 - t[b]) * (double)act[i]);
        }
    /* v̂ = w·v + (1 − w)·u_θ(z, t, t), no gradient */
    fr_status s = fr_mf_policy_u(p, R, obs, z, t, t);
    for (int64_t b = 0; b < R && s == FR_OK; b++)
        for (int64_t j = 0; j < A; j++) {
            const int64_t i = b * A + j;
            p->vhat[i] = p->w * ((double)eps[i] - (double)act[i]) + (1.0 - p->w) * (double)p->u_h[i];
            zdot[i] = (float)p->vhat[i];
        }
    if (s == FR_OK) s = fr_mf_policy_jvp(p, R, obs, z, t, r, zdot);
    fr_mf_loss lo = {0};
    if (s == FR_OK) {
        double mse = 0.0, *d2 = p->gfeat; /* R <= cap·H: the δ² rows borrow the feature gradient's space */
        lo.mf = fr_mf_objective(R, A, p->u_h, p->dudt_h, p->vhat, t, r, d2, NULL, grad ? p->dout_h : NULL);
        for (int64_t b = 0; b < R; b++) mse += d2[b] / (double)R;
        lo.mse = mse;
    }
    /* the dispersive term on the hidden outputs post[0 .. L − 3] of the JVP's primal pass */
    double *hf = p->gfeat, *gf = p->gfeat + p->cap * H;
    for (int l = 0; l + 2 < p->net.L && s == FR_OK; l++) {
        s = fr_d2h(p->net.be, p->feat_h, p->net.post[l], (size_t)(R * H) * sizeof(float));
        if (s != FR_OK) break;
        for (int64_t i = 0; i < R * H; i++) hf[i] = (double)p->feat_h[i];
        const double Ld = fr_mf_dispersive(R, H, hf, p->tau, grad ? gf : NULL);
        if (!isfinite(Ld)) s = fr_fail(FR_ERR_NUMERIC, "meanflow policy: the dispersive term of hidden layer %d is %g", l, Ld);
        lo.disp += Ld;
        for (int64_t i = 0; i < R * H && grad && s == FR_OK; i++) p->feat_h[i] = (float)(p->disp_weight * gf[i]);
        if (grad && s == FR_OK) s = fr_h2d(p->net.be, p->dh[l], p->feat_h, (size_t)(R * H) * sizeof(float));
    }
    lo.loss = lo.mf + p->disp_weight * lo.disp;
    if (s == FR_OK && grad) {
        s = fr_h2d(p->net.be, p->net.dout, p->dout_h, (size_t)(R * A) * sizeof(float));
        if (s == FR_OK) fr_mlp_backward_h(&p->net, R, NULL, p->dh);
    }
    if (out) *out = lo;
    free(z);
    return s;
}
