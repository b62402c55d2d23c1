/* The DiT (core/dit.c, docs/algorithms/dit.md): its backward against finite differences of an
 * independent double-precision forward written from the formulas of core/dit.c's header; the
 * softmax / adaLN ops against finite differences in double; every backend (opt at several
 * thread counts, cuda-emu) bit for bit against ref; batch independence and micro-batch
 * accumulation; checkpoints with model.arch; the presets. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/algo.h"
#include "flowrl/attn_elem.h"
#include "flowrl/cond.h"
#include "flowrl/backend.h"
#include "flowrl/embed.h"
#include "flowrl/lora.h"
#include "flowrl/model.h"
#include "flowrl/ops.h"
#include "flowrl/task.h"
#include "tests/model_testutil.h"
#include "tests/run_testutil.h"
#include "tests/testutil.h"

/* 2 channels of 4 × 4 in 2 × 2 patches: N = 4 image tokens of P = 8, two prompt tokens; H = 12
 * (opt's 8-lane paths and their tail). */
static fr_model_config tiny_cfg(fr_head head)
{
    fr_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.preset, sizeof c.preset, "custom");
    c.D = 32, c.n_cond = 3, c.n_slots = 2, c.H = 12, c.F = 12, c.n_blocks = 2, c.E = 6;
    c.act = FR_ACT_GELU_TANH, c.pred = FR_PRED_VELOCITY, c.ln_eps = 1e-5f;
    c.head = head, c.sigma_min = head == FR_HEAD_X0 ? 0.05f : 0.0f;
    c.arch = FR_ARCH_DIT, c.img_c = 2, c.img_h = 4, c.img_w = 4, c.patch = 2, c.n_heads = 2;
    return c;
}

/* Every parameter U(-0.5, 0.5) (adaLN-zero and the zero output layer would leave most
 * gradients at exactly 0). */
static void randomize(fr_model *m, uint64_t seed)
{
    const int64_t n = fr_model_arena_floats(m);
    float *h = calloc((size_t)n, sizeof *h);
    ck_assert(h);
    uint64_t s = seed;
    for (int i = 0; i < m->n_params; i++) {
        float *p = h + ((float *)m->values[i].data - m->arena_values);
        for (int64_t k = 0; k < fr_tensor_numel(&m->values[i]); k++) p[k] = fr_test_uniform(&s, -0.5f, 0.5f);
    }
    ck_assert(fr_h2d(m->be, m->arena_values, h, (size_t)n * sizeof *h) == FR_OK);
    free(h);
}

/* ---- the double reference ---- */

typedef struct {
    int n;
    double **p; /* (n_params) by list index */
} dnet;

static double d_act(fr_act a, double x)
{
    if (a == FR_ACT_SILU) return x / (1.0 + exp(-x));
    const double k = sqrt(2.0 / M_PI); /* gelu_tanh */
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

/* y (N) = W (N,K) z (K) + b */
static void d_lin(int64_t N, int64_t K, const double *w, const double *b, const double *z, double *y)
{
    for (int64_t i = 0; i < N; i++) {
        double acc = b[i];
        for (int64_t k = 0; k < K; k++) acc += w[i * K + k] * z[k];
        y[i] = acc;
    }
}

/* LN without affine, then ·(1 + scale) + shift. */
static void d_ln_mod(int64_t H, const double *x, const double *shift, const double *scale, double eps, double *y)
{
    double mu = 0, var = 0;
    for (int64_t j = 0; j < H; j++) mu += x[j];
    mu /= (double)H;
    for (int64_t j = 0; j < H; j++) var += (x[j] - mu) * (x[j] - mu);
    var /= (double)H;
    const double rs = 1.0 / sqrt(var + eps);
    for (int64_t j = 0; j < H; j++) y[j] = (x[j] - mu) * rs * (1.0 + scale[j]) + shift[j];
}

/* Σ w · out for B samples (out, if not NULL, receives the outputs). */
static double d_forward(const dnet *d, const fr_model_config *c, int64_t B, const double *x, const float *t,
                        const int32_t *cid, const double *w, double *outp)
{
    enum { MAXL = 8, MAXH = 12, MAXF = 12, MAXP = 8 };
    const int64_t H = c->H, F = c->F, E = c->E, p = c->patch, C = c->img_c, Hi = c->img_h, Wi = c->img_w;
    const int64_t bw = Wi / p, N = (Hi / p) * bw, S = c->n_slots, L = N + S, P = C * p * p, nh = c->n_heads,
                  dh = H / nh;
    double **q = d->p;
    double loss = 0;
    for (int64_t b = 0; b < B; b++) {
        double h[MAXL][MAXH], te[16], t1[MAXH], t2[MAXH], sc[MAXH];
        for (int64_t n = 0; n < N; n++) {
            double patch[MAXP];
            const int64_t py = n / bw, px = n % bw;
            for (int64_t cc = 0; cc < C; cc++)
                for (int64_t dy = 0; dy < p; dy++)
                    for (int64_t dx = 0; dx < p; dx++)
                        patch[(cc * p + dy) * p + dx] = x[b * c->D + (cc * Hi + py * p + dy) * Wi + px * p + dx];
            d_lin(H, P, q[0], q[1], patch, h[n]);
            for (int64_t j = 0; j < H; j++) h[n][j] += q[2][n * H + j];
        }
        for (int64_t s = 0; s < S; s++)
            for (int64_t j = 0; j < H; j++) h[N + s][j] = q[7][cid[b * S + s] * H + j] + q[8][s * H + j];
        for (int64_t j = 0; j < E; j++) te[j] = (double)fr_temb_elem(t[b], j, E / 2);
        d_lin(H, E, q[3], q[4], te, t1);
        for (int64_t j = 0; j < H; j++) t1[j] = d_act(c->act, t1[j]);
        d_lin(H, H, q[5], q[6], t1, t2);
        for (int64_t j = 0; j < H; j++) {
            for (int64_t s = 0; s < S; s++) t2[j] += q[7][cid[b * S + s] * H + j];
            sc[j] = d_act(FR_ACT_SILU, t2[j]);
        }
        for (int64_t k = 0; k < c->n_blocks; k++) {
            double **bp = q + 9 + 10 * k, mod[6 * MAXH], m[MAXL][MAXH], qkv[MAXL][3 * MAXH], o[MAXL][MAXH];
            d_lin(6 * H, H, bp[0], bp[1], sc, mod);
            for (int64_t l = 0; l < L; l++) {
                d_ln_mod(H, h[l], mod, mod + H, c->ln_eps, m[l]);
                d_lin(3 * H, H, bp[2], bp[3], m[l], qkv[l]);
            }
            for (int64_t hh = 0; hh < nh; hh++)
                for (int64_t i = 0; i < L; i++) {
                    double sco[MAXL], mx = -1e300, sum = 0;
                    for (int64_t j = 0; j < L; j++) {
                        double a = 0;
                        for (int64_t e = 0; e < dh; e++) a += qkv[i][hh * dh + e] * qkv[j][H + hh * dh + e];
                        sco[j] = a / sqrt((double)dh);
                        if (sco[j] > mx) mx = sco[j];
                    }
                    for (int64_t j = 0; j < L; j++) sum += (sco[j] = exp(sco[j] - mx));
                    for (int64_t e = 0; e < dh; e++) {
                        double a = 0;
                        for (int64_t j = 0; j < L; j++) a += sco[j] / sum * qkv[j][2 * H + hh * dh + e];
                        o[i][hh * dh + e] = a;
                    }
                }
            for (int64_t l = 0; l < L; l++) {
                double a[MAXH], u[MAXF], y[MAXH];
                d_lin(H, H, bp[4], bp[5], o[l], a);
                for (int64_t j = 0; j < H; j++) h[l][j] += mod[2 * H + j] * a[j];
                d_ln_mod(H, h[l], mod + 3 * H, mod + 4 * H, c->ln_eps, m[l]);
                d_lin(F, H, bp[6], bp[7], m[l], u);
                for (int64_t j = 0; j < F; j++) u[j] = d_act(c->act, u[j]);
                d_lin(H, F, bp[8], bp[9], u, y);
                for (int64_t j = 0; j < H; j++) h[l][j] += mod[5 * H + j] * y[j];
            }
        }
        double **hp = q + 9 + 10 * c->n_blocks, fm[2 * MAXH];
        d_lin(2 * H, H, hp[0], hp[1], sc, fm);
        for (int64_t n = 0; n < N; n++) {
            double mm[MAXH], o[MAXP];
            d_ln_mod(H, h[n], fm, fm + H, c->ln_eps, mm);
            d_lin(P, H, hp[2], hp[3], mm, o);
            const int64_t py = n / bw, px = n % bw;
            for (int64_t cc = 0; cc < C; cc++)
                for (int64_t dy = 0; dy < p; dy++)
                    for (int64_t dx = 0; dx < p; dx++) {
                        const int64_t i = b * c->D + (cc * Hi + py * p + dy) * Wi + px * p + dx;
                        double v = o[(cc * p + dy) * p + dx];
                        if (c->head == FR_HEAD_X0) {
                            const double den = fmax((double)t[b] / 1000.0, (double)c->sigma_min);
                            v = (x[i] - v) / den;
                        }
                        if (outp) outp[i] = v;
                        loss += w[i] * v;
                    }
        }
    }
    return loss;
}

static void fd_check(fr_head head, uint64_t seed)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config cfg = tiny_cfg(head);
    fr_model m;
    ck_assert_msg(fr_model_init(&m, be, &cfg, 3) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_model_num_params(&m), fr_model_config_num_params(&cfg));
    randomize(&m, seed);
    enum { B = 3, D = 32 };
    uint64_t s = seed ^ 0x5EEDull;
    float x[B * D], w[B * D], out[B * D], dx[B * D], t[B] = {20.0f, 400.0f, 930.0f};
    double xd[B * D], wd[B * D], outd[B * D];
    int32_t c[B * 2] = {0, 1, 3, 3, 2, 0}; /* 3 = the null id */
    for (int i = 0; i < B * D; i++) {
        x[i] = fr_test_uniform(&s, -1.5f, 1.5f), xd[i] = x[i];
        w[i] = fr_test_uniform(&s, -1.0f, 1.0f), wd[i] = w[i];
    }
    fr_model_ws ws;
    ck_assert(fr_model_ws_alloc(&ws, &m, B, 1) == FR_OK);
    fr_model_zero_grad(&m, be);
    ck_assert_msg(fr_model_forward(&m, be, &ws, B, x, t, c, out) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_model_backward(&m, be, &ws, w, dx) == FR_OK, "%s", fr_last_error());

    dnet d = {m.n_params, calloc((size_t)m.n_params, sizeof(double *))};
    for (int i = 0; i < m.n_params; i++) {
        const int64_t n = fr_tensor_numel(&m.values[i]);
        d.p[i] = malloc((size_t)n * sizeof(double));
        for (int64_t k = 0; k < n; k++) d.p[i][k] = ((const float *)m.values[i].data)[k];
    }
    d_forward(&d, &cfg, B, xd, t, c, wd, outd);
    /* float vs double forward: float rounding through 2 blocks (and the time features'
     * float argument, as the MLP's test); 1e-3 (1 + |out|) bounds it with margin */
    for (int i = 0; i < B * D; i++)
        ck_assert_msg(fabs((double)out[i] - outd[i]) <= 1e-3 * (1.0 + fabs(outd[i])),
                      "head %d seed %llu: out[%d] = %.9g, double reference %.9g", (int)head,
                      (unsigned long long)seed, i, (double)out[i], outd[i]);
    const double eps = 1e-5;
    for (int i = 0; i <= m.n_params; i++) { /* i == n_params: the input x */
        const int64_t n = i < m.n_params ? fr_tensor_numel(&m.values[i]) : B * D;
        double *p = i < m.n_params ? d.p[i] : xd, scale = 0;
        const float *g = i < m.n_params ? m.grads[i].data : dx;
        const char *name = i < m.n_params ? m.names[i] : "input x";
        double *fd = malloc((size_t)n * sizeof *fd);
        for (int64_t j = 0; j < n; j++) {
            const double keep = p[j];
            p[j] = keep + eps;
            const double lp = d_forward(&d, &cfg, B, xd, t, c, wd, NULL);
            p[j] = keep - eps;
            const double lm = d_forward(&d, &cfg, B, xd, t, c, wd, NULL);
            p[j] = keep;
            fd[j] = (lp - lm) / (2 * eps);
            if (fabs(fd[j]) > scale) scale = fabs(fd[j]);
        }
        /* cond.weight row 3 … every tensor has some gradient; rows of unused ids are 0 */
        ck_assert_msg(scale > 1e-4, "seed %llu: %s has no gradient to check (max %g)", (unsigned long long)seed, name,
                      scale);
        /* the MLP's tolerance (tests/test_model.c): float rounding of the backward vs the
         * O(eps²) central difference, relative to the element and to the tensor's largest */
        for (int64_t j = 0; j < n; j++) {
            const double err = fabs((double)g[j] - fd[j]);
            ck_assert_msg(err <= 5e-4 * fabs(fd[j]) + 5e-5 * scale,
                          "head %d seed %llu: d%s[%lld] = %.9g, finite difference %.9g", (int)head,
                          (unsigned long long)seed, name, (long long)j, (double)g[j], fd[j]);
        }
        free(fd);
    }
    for (int i = 0; i < m.n_params; i++) free(d.p[i]);
    free(d.p);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
}

START_TEST(test_fd_velocity) { fd_check(FR_HEAD_VELOCITY, 11); }
END_TEST
START_TEST(test_fd_x0_head) { fd_check(FR_HEAD_X0, 22); }
END_TEST

/* ---- the ops against finite differences in double ---- */

static double d_softmax_loss(const double *x, int64_t n, double alpha, const double *w)
{
    double mx = -1e300, s = 0, l = 0;
    for (int64_t j = 0; j < n; j++) mx = fmax(mx, alpha * x[j]);
    for (int64_t j = 0; j < n; j++) s += exp(alpha * x[j] - mx);
    for (int64_t j = 0; j < n; j++) l += w[j] * exp(alpha * x[j] - mx) / s;
    return l;
}

/* softmax_rows / _bwd on ref: p within float rounding of the double softmax, dx of Σ w·p within
 * 1e-5 (relative) of the central difference; adaln_mod(_bwd) and gate_add(_bwd) likewise (both
 * bilinear: the difference is exact up to rounding). */
START_TEST(test_ops_fd)
{
    const fr_ops *o = fr_test_ref_be()->ops;
    enum { R = 3, N = 13, B = 2, L = 5, H = 4, LDM = 3 * H };
    uint64_t s = 77;
    float x[R * N], p[R * N], dp[R * N], dx[R * N];
    for (int i = 0; i < R * N; i++) x[i] = fr_test_uniform(&s, -3, 3), dp[i] = fr_test_uniform(&s, -1, 1);
    const float alpha = 0.35f;
    o->softmax_rows(R, N, alpha, x, p);
    o->softmax_rows_bwd(R, N, alpha, p, dp, dx);
    for (int r = 0; r < R; r++) {
        double xd[N], wd[N];
        for (int j = 0; j < N; j++) xd[j] = x[r * N + j], wd[j] = dp[r * N + j];
        for (int j = 0; j < N; j++) {
            const double keep = xd[j];
            xd[j] = keep + 1e-6;
            const double lp = d_softmax_loss(xd, N, alpha, wd);
            xd[j] = keep - 1e-6;
            const double lm = d_softmax_loss(xd, N, alpha, wd);
            xd[j] = keep;
            const double fd = (lp - lm) / 2e-6;
            ck_assert_msg(fabs(dx[r * N + j] - fd) <= 1e-5 * (fabs(fd) + 0.1), "softmax dx[%d,%d] = %.9g, fd %.9g", r, j,
                          (double)dx[r * N + j], fd);
        }
    }
    /* modulate y = x (1 + sc) + sh and gate out = h + g y, with loss Σ w·y */
    float xm[B * L * H], mod[B * LDM], w[B * L * H], y[B * L * H], gx[B * L * H], gm[B * LDM];
    for (int i = 0; i < B * L * H; i++) xm[i] = fr_test_uniform(&s, -2, 2), w[i] = fr_test_uniform(&s, -1, 1);
    for (int i = 0; i < B * LDM; i++) mod[i] = fr_test_uniform(&s, -1, 1), gm[i] = 0;
    o->adaln_mod(B, L, H, LDM, xm, mod, mod + H, y);
    o->adaln_mod_bwd(B, L, H, LDM, xm, mod + H, w, gx, gm, gm + H);
    o->gate_add_bwd(B, L, H, LDM, mod + 2 * H, xm, w, y, gm + 2 * H); /* y: dL/d(gated y) */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            double dsh = 0, dsc = 0, dg = 0;
            for (int l = 0; l < L; l++) {
                const int i = (b * L + l) * H + j;
                dsh += w[i], dsc += (double)w[i] * xm[i], dg += (double)w[i] * xm[i];
                ck_assert(fabs(gx[i] - (double)w[i] * (1.0 + mod[b * LDM + H + j])) <= 1e-6);
                ck_assert(fabs(y[i] - (double)w[i] * mod[b * LDM + 2 * H + j]) <= 1e-6);
            }
            ck_assert_msg(fabs(gm[b * LDM + j] - dsh) <= 1e-5 && fabs(gm[b * LDM + H + j] - dsc) <= 1e-5 &&
                              fabs(gm[b * LDM + 2 * H + j] - dg) <= 1e-5,
                          "adaLN column (%d,%d)", b, j);
        }
}
END_TEST

/* Canonical max: a NaN anywhere makes the row NaN; −0 and +0 give the same bits; a row of equal
 * values is uniform; large values do not overflow. */
START_TEST(test_softmax_edges)
{
    const fr_ops *o = fr_test_ref_be()->ops;
    float a[4] = {-0.0f, 0.0f, -1.0f, 2.0f}, b[4] = {0.0f, -0.0f, -1.0f, 2.0f}, pa[4], pb[4];
    o->softmax_rows(1, 4, 1.0f, a, pa);
    o->softmax_rows(1, 4, 1.0f, b, pb);
    ck_assert(memcmp(pa, pb, sizeof pa) == 0);
    float n[3] = {1.0f, NAN, 2.0f}, pn[3];
    o->softmax_rows(1, 3, 1.0f, n, pn);
    for (int j = 0; j < 3; j++) ck_assert(isnan(pn[j]));
    float e[5] = {3e38f, 3e38f, 3e38f, 3e38f, 3e38f}, pe[5];
    o->softmax_rows(1, 5, 1.0f, e, pe);
    for (int j = 0; j < 5; j++) ck_assert(fr_test_bits_equal(pe[j], pe[0]) && fabsf(pe[j] - 0.2f) < 1e-7f);
}
END_TEST

/* ---- every backend against ref ---- */

typedef struct {
    float *out, *dx, *grads, *out1;
    int64_t ng;
} run_result;

static float *down(fr_backend *be, const float *p, int64_t n)
{
    float *h = malloc((size_t)n * sizeof *h);
    ck_assert(h && fr_d2h(be, h, p, (size_t)n * sizeof *h) == FR_OK);
    return h;
}

/* forward + backward of B = 5 as micro-batches of 2 and 3 (the gradients accumulate), and the
 * forward of sample 4 alone. */
static void run_on(fr_backend *be, const fr_model_config *cfg, run_result *r)
{
    enum { B = 5 };
    const int64_t D = cfg->D, S = cfg->n_slots;
    fr_model m;
    fr_model_ws ws;
    ck_assert_msg(fr_model_init(&m, be, cfg, 4) == FR_OK, "%s: %s", be->name, fr_last_error());
    randomize(&m, 31);
    ck_assert(fr_model_ws_alloc(&ws, &m, 6, 1) == FR_OK);
    float x[B * 768], t[B] = {0.0f, 3.0f, 250.0f, 999.0f, 1000.0f}, dout[B * 768];
    int32_t c[B * 5];
    uint64_t s = 5;
    for (int64_t i = 0; i < B * D; i++) x[i] = fr_test_uniform(&s, -2, 2), dout[i] = fr_test_uniform(&s, -1, 1);
    for (int64_t i = 0; i < B * S; i++) c[i] = (int32_t)(i % (cfg->n_cond + 1));
    float *xd = fr_dev_floats(be, B * D), *td = fr_dev_floats(be, B), *od = fr_dev_floats(be, B * D);
    float *gd = fr_dev_floats(be, B * D), *dxd = fr_dev_floats(be, B * D);
    int32_t *cd = fr_dev_i32(be, B * S);
    ck_assert(xd && td && od && gd && dxd && cd);
    ck_assert(fr_h2d(be, xd, x, sizeof(float) * (size_t)(B * D)) == FR_OK);
    ck_assert(fr_h2d(be, td, t, sizeof t) == FR_OK);
    ck_assert(fr_h2d(be, gd, dout, sizeof(float) * (size_t)(B * D)) == FR_OK);
    ck_assert(fr_h2d(be, cd, c, sizeof(int32_t) * (size_t)(B * S)) == FR_OK);
    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_forward(&m, be, &ws, 2, xd, td, cd, od) == FR_OK);
    ck_assert(fr_model_backward(&m, be, &ws, gd, dxd) == FR_OK);
    ck_assert(fr_model_forward(&m, be, &ws, 3, xd + 2 * D, td + 2, cd + 2 * S, od + 2 * D) == FR_OK);
    ck_assert(fr_model_backward(&m, be, &ws, gd + 2 * D, dxd + 2 * D) == FR_OK);
    r->out = down(be, od, B * D);
    r->dx = down(be, dxd, B * D);
    r->ng = fr_model_arena_floats(&m);
    r->grads = down(be, m.arena_grads, r->ng);
    fr_model_ws inf;
    ck_assert(fr_model_ws_alloc(&inf, &m, 1, 0) == FR_OK); /* the inference form, one sample */
    ck_assert(fr_model_forward(&m, be, &inf, 1, xd + 4 * D, td + 4, cd + 4 * S, od) == FR_OK);
    r->out1 = down(be, od, D);
    fr_model_ws_free(&inf);
    void *dev[] = {xd, td, od, gd, dxd, cd};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fr_dev_free(be, dev[i]);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
}

static void run_free(run_result *r) { free(r->out), free(r->dx), free(r->grads), free(r->out1); }

/* The one-batch run equals the micro-batched one; sample 4 alone equals its row of the batch;
 * opt at 1 and 3 threads and cuda-emu give ref's bits everywhere. Velocity, x0 and ε heads. */
START_TEST(test_backends_equal_ref)
{
    for (int head = 0; head < 3; head++) {
        fr_model_config cfg = tiny_cfg(head ? FR_HEAD_X0 : FR_HEAD_VELOCITY);
        if (head == 2) {
            cfg.pred = FR_PRED_EPSILON, cfg.ddpm_betas = FR_DDPM_LINEAR;
            cfg.beta_start = 1e-4, cfg.beta_end = 0.02, cfg.n_train = 1000;
        }
        run_result want;
        run_on(fr_test_ref_be(), &cfg, &want);
        ck_assert_msg(memcmp(want.out1, want.out + 4 * cfg.D, (size_t)cfg.D * sizeof(float)) == 0,
                      "head %d: a sample's output depends on its batch", head);
        const char *names[] = {"opt", "opt", "cuda-emu", "cuda"};
        const int threads[] = {1, 3, 1, 1};
        for (int k = 0; k < 4; k++) {
            fr_backend be;
            if (!fr_test_backend_try(&be, "dit", names[k], threads[k])) continue;
            run_result got;
            run_on(&be, &cfg, &got);
            const size_t n = (size_t)(5 * cfg.D) * sizeof(float);
            ck_assert_msg(memcmp(got.out, want.out, n) == 0, "%s/%d head %d: forward differs", names[k], threads[k], head);
            ck_assert_msg(memcmp(got.dx, want.dx, n) == 0, "%s/%d head %d: dL/dx differs", names[k], threads[k], head);
            ck_assert_msg(memcmp(got.grads, want.grads, (size_t)want.ng * sizeof(float)) == 0,
                          "%s/%d head %d: parameter gradients differ", names[k], threads[k], head);
            ck_assert_msg(memcmp(got.out1, want.out1, (size_t)cfg.D * sizeof(float)) == 0, "%s: inference form", names[k]);
            run_free(&got);
            fr_backend_close(&be);
        }
        run_free(&want);
    }
}
END_TEST

/* One batch of 5 gives the micro-batched gradients' bits (ref). */
START_TEST(test_microbatch_bitwise)
{
    fr_backend *be = fr_test_ref_be();
    fr_model_config cfg = tiny_cfg(FR_HEAD_X0);
    run_result r;
    run_on(be, &cfg, &r);
    fr_model m;
    fr_model_ws ws;
    ck_assert(fr_model_init(&m, be, &cfg, 4) == FR_OK);
    randomize(&m, 31);
    ck_assert(fr_model_ws_alloc(&ws, &m, 5, 1) == FR_OK);
    enum { B = 5, D = 32 };
    float x[B * D], t[B] = {0.0f, 3.0f, 250.0f, 999.0f, 1000.0f}, dout[B * D], out[B * D], dx[B * D];
    int32_t c[B * 2];
    uint64_t s = 5;
    for (int64_t i = 0; i < B * D; i++) x[i] = fr_test_uniform(&s, -2, 2), dout[i] = fr_test_uniform(&s, -1, 1);
    for (int64_t i = 0; i < B * 2; i++) c[i] = (int32_t)(i % 4);
    fr_model_zero_grad(&m, be);
    ck_assert(fr_model_forward(&m, be, &ws, B, x, t, c, out) == FR_OK);
    ck_assert(fr_model_backward(&m, be, &ws, dout, dx) == FR_OK);
    ck_assert(memcmp(out, r.out, sizeof out) == 0 && memcmp(dx, r.dx, sizeof dx) == 0);
    ck_assert(memcmp(m.arena_grads, r.grads, (size_t)r.ng * sizeof(float)) == 0);
    fr_model_ws_free(&ws);
    fr_model_free(&m);
    run_free(&r);
}
END_TEST

/* The presets: shapes-dit-s is within 10% of shapes-s's parameter count, rejects other D;
 * a checkpoint keeps model.arch and the image keys, an MLP file has none. */
START_TEST(test_presets_and_checkpoint)
{
    fr_model_config s, mlp, back;
    ck_assert_msg(fr_model_preset("shapes-dit-s", FR_SHAPES_D, 21, &s) == FR_OK, "%s", fr_last_error());
    s.n_slots = FR_SHAPES_N_SLOTS;
    ck_assert(fr_model_config_check(&s) == FR_OK);
    ck_assert(fr_model_preset("shapes-s", FR_SHAPES_D, 21, &mlp) == FR_OK);
    const double ratio = (double)fr_model_config_num_params(&s) / (double)fr_model_config_num_params(&mlp);
    ck_assert_msg(ratio > 0.9 && ratio < 1.1, "shapes-dit-s / shapes-s parameters = %g", ratio);
    ck_assert(fr_model_preset("shapes-dit-s", 2, 4, &back) == FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "D = 768") != NULL);
    fr_model m, m2;
    ck_assert(fr_model_init(&m, fr_test_ref_be(), &s, 9) == FR_OK);
    char dir[64], path[96];
    fr_test_mkdtemp(dir, sizeof dir, "dit");
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    ck_assert(fr_model_save(&m, path) == FR_OK);
    ck_assert_msg(fr_model_load(&m2, fr_test_ref_be(), path) == FR_OK, "%s", fr_last_error());
    ck_assert(m2.cfg.arch == FR_ARCH_DIT && m2.cfg.patch == 4 && m2.cfg.n_heads == 4 && m2.cfg.img_c == 3);
    ck_assert(m2.n_params == m.n_params);
    ck_assert(memcmp(m.arena_values, m2.arena_values, (size_t)fr_model_arena_floats(&m) * sizeof(float)) == 0);
    ck_assert_str_eq(m2.names[11] /* FR_DP_BLOCK(0, FR_DPB_QKV_W) */, "blocks.0.attn.qkv.weight");
    fr_model_free(&m2);
    fr_lora L; /* LoRA on the preset: the attention projections of its 4 blocks by default */
    ck_assert_msg(fr_lora_new(&L, &m, 8, 8.0, NULL, 1) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(L.n_t, 8);
    ck_assert_str_eq(L.names[2], "blocks.0.attn.proj.lora_A.weight");
    ck_assert(L.N[0] == 3 * 128 && L.K[0] == 128 && L.N[1] == 128);
    fr_lora_free(&L);
    fr_st_file f;
    fr_st_init(&f);
    ck_assert(fr_model_config_to_meta(&mlp, &f) == FR_OK);
    ck_assert(fr_st_get_meta(&f, "model.arch") == NULL);
    ck_assert(fr_model_config_from_meta(&f, &back) == FR_OK && back.arch == FR_ARCH_MLP);
    fr_st_set_meta(&f, "model.arch", "transformer");
    ck_assert(fr_model_config_from_meta(&f, &back) == FR_ERR_FORMAT);
    ck_assert(strstr(fr_last_error(), "model.arch") != NULL);
    fr_st_free(&f);
    remove(path);
    remove(dir);
}
END_TEST

/* A tiny shapes DiT base (H 16, one block, 2 heads, 4 × 4 patches) predicting pred, saved as
 * DIR/dit-base[-eps].safetensors. */
static void small_dit_base(char *path, size_t n, int pred)
{
    snprintf(path, n, "%s/dit-base%s.safetensors", fr_rt_dir, pred == FR_PRED_EPSILON ? "-eps" : "");
    const fr_task *task;
    ck_assert_int_eq(fr_task_get("shapes", &task), FR_OK);
    int64_t n_cond, n_slots;
    fr_cond_dims(task, &n_cond, &n_slots);
    fr_model_config mc;
    ck_assert_int_eq(fr_model_preset("shapes-dit-s", task->D, n_cond, &mc), FR_OK);
    mc.n_slots = n_slots;
    mc.H = 16, mc.F = 16, mc.n_blocks = 1, mc.E = 16, mc.n_heads = 2;
    mc.pred = (fr_pred)pred;
    if (pred == FR_PRED_EPSILON) fr_test_eps_head(&mc);
    snprintf(mc.preset, sizeof mc.preset, "custom");
    fr_model m;
    ck_assert_int_eq(fr_model_init(&m, fr_test_ref_be(), &mc, 3), FR_OK);
    randomize(&m, 17); /* adaLN-zero would make every fresh sample the same image */
    ck_assert_int_eq(fr_model_save(&m, path), FR_OK);
    fr_model_free(&m);
}

/* Every algorithm of the registry that fine-tunes a base runs two epochs on a DiT base
 * (model.arch = dit, through fr_model_forward / backward and nothing else) with a graded reward,
 * and opt at 2 threads writes ref's audit records. */
START_TEST(test_algos_on_dit)
{
    char base[2][400];
    small_dit_base(base[0], sizeof base[0], FR_PRED_VELOCITY);
    small_dit_base(base[1], sizeof base[1], FR_PRED_EPSILON);
    int ran = 0;
    for (const fr_algo *const *ap = fr_algos(); *ap; ap++) {
        const fr_algo *a = *ap;
        if (a->on_env) continue;
        char run[2][96];
        const char *bk[2] = {"ref", "opt"};
        for (int k = 0; k < 2; k++) {
            snprintf(run[k], sizeof run[k], "%s-dit-%s", a->name, bk[k]);
            fr_rt_opts o;
            fr_rt_opts_init(&o, a, run[k], 2);
            snprintf(o.ro.c.base, sizeof o.ro.c.base, "%s", base[a->base_pred == FR_PRED_EPSILON]);
            snprintf(o.ro.c.task, sizeof o.ro.c.task, "shapes");
            fr_rt_set_prefs(&o, "shapes");
            snprintf(o.ro.c.reward, sizeof o.ro.c.reward, "cmd:%s '%s/tests/reward_progs/mock_reward.py' ok",
                     fr_test_python(), fr_test_src());
            ck_assert_msg(fr_rt_run(&o, bk[k], k ? 2 : 1, NULL, NULL) == FR_OK, "%s on a DiT, %s: %s", a->name, bk[k],
                          fr_last_error());
            fr_rt_opts_free(&o);
        }
        fr_rt_assert_same_records(run[0], run[1], 2);
        ran++;
    }
    ck_assert_int_gt(ran, 10);
}
END_TEST

/* The LoRA algorithms (Flow-GRPO, AWM, DiffusionNFT with its "old" adapter, DGPO with its
 * "ema" adapter) with --lora-rank 2 on a DiT base: 2 epochs on ref equal 1 epoch resumed to 2
 * on opt (2 threads) and 2 epochs on cuda-emu, record for record; the records hold the attention
 * adapters and no base parameter; the run writes its adapter file. */
START_TEST(test_lora_runs_on_dit)
{
    char base[400];
    small_dit_base(base, sizeof base, FR_PRED_VELOCITY);
    static const char *const algos[] = {"flow-grpo", "awm", "nft", "dgpo", NULL};
    for (const char *const *an = algos; *an; an++) {
        const fr_algo *a;
        ck_assert(fr_algo_find(*an, &a) == FR_OK);
        char run[3][96], path[600];
        const char *what[3] = {"whole", "part", "emu"};
        fr_rt_opts o[3];
        for (int k = 0; k < 3; k++) {
            snprintf(run[k], sizeof run[k], "%s-dit-lora-%s", *an, what[k]);
            fr_rt_opts_init(&o[k], a, run[k], k == 1 ? 1 : 2);
            snprintf(o[k].ro.c.base, sizeof o[k].ro.c.base, "%s", base);
            snprintf(o[k].ro.c.task, sizeof o[k].ro.c.task, "shapes");
            fr_rt_set_prefs(&o[k], "shapes");
            snprintf(o[k].ro.c.reward, sizeof o[k].ro.c.reward, "cmd:%s '%s/tests/reward_progs/mock_reward.py' ok",
                     fr_test_python(), fr_test_src());
            o[k].ro.c.lora_rank = 2;
            o[k].ro.c.lora_alpha = 4.0;
            ck_assert_msg(fr_rt_run(&o[k], k == 2 ? "cuda-emu" : "ref", 1, NULL, NULL) == FR_OK, "%s (LoRA) on a DiT: %s",
                          *an, fr_last_error());
        }
        fr_run_result res;
        ck_assert_msg(fr_rt_resume(run[1], 2, 0, "opt", 2, &res) == FR_OK, "%s resume: %s", *an, fr_last_error());
        fr_rt_assert_same_records(run[0], run[1], 2);
        fr_rt_assert_same_records(run[0], run[2], 2);
        char *rec = fr_rt_records(run[0]);
        ck_assert_msg(strstr(rec, "blocks.0.attn.qkv.lora_B.weight") && !strstr(rec, " patch.weight") &&
                          !strstr(rec, "blocks.0.fc1"), "%s: records", *an);
        free(rec);
        snprintf(path, sizeof path, "%s/%s/%s", fr_rt_dir, run[0], FR_LORA_ADAPTER_FILE);
        FILE *fp = fopen(path, "rb");
        ck_assert_msg(fp != NULL, "%s: no %s", *an, path);
        fclose(fp);
        for (int k = 0; k < 3; k++) fr_rt_opts_free(&o[k]);
    }
}
END_TEST

/* `flowrl pretrain --preset shapes-dit-s` trains (three steps of 4) and writes a checkpoint that
 * loads as a DiT; a DiT preset on gmm2d is refused with the reason. */
START_TEST(test_cli_pretrain)
{
    char out[4096], path[400];
    fr_rt_path(path, sizeof path, "dit.safetensors");
    int rc = fr_rt_cli(out, sizeof out,
                       "pretrain --task shapes --preset shapes-dit-s --out %s --max-train-steps 3 --train-batch-size 4 "
                       "--backend opt --threads 2", path);
    ck_assert_msg(rc == 0, "flowrl pretrain --preset shapes-dit-s: %d\n%s", rc, out);
    fr_model m;
    ck_assert_msg(fr_model_load(&m, fr_test_ref_be(), path) == FR_OK, "%s", fr_last_error());
    ck_assert(m.cfg.arch == FR_ARCH_DIT && m.cfg.H == 128 && m.cfg.n_slots == FR_SHAPES_N_SLOTS);
    fr_model_free(&m);
    rc = fr_rt_cli(out, sizeof out, "pretrain --task gmm2d --preset shapes-dit-s --out %s.2", path);
    ck_assert_msg(rc != 0 && strstr(out, "shapes-dit-s") && strstr(out, "D = 768"), "%d\n%s", rc, out);
}
END_TEST

Suite *suite_dit(void)
{
    Suite *s = suite_create("dit");
    TCase *tc = tcase_create("dit");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ops_fd);
    tcase_add_test(tc, test_softmax_edges);
    tcase_add_test(tc, test_fd_velocity);
    tcase_add_test(tc, test_fd_x0_head);
    tcase_add_test(tc, test_backends_equal_ref);
    tcase_add_test(tc, test_microbatch_bitwise);
    tcase_add_test(tc, test_presets_and_checkpoint);
    suite_add_tcase(s, tc);
    TCase *ta = tcase_create("dit_algos");
    tcase_set_timeout(ta, 600);
    tcase_add_checked_fixture(ta, fr_rt_setup, fr_rt_teardown);
    tcase_add_test(ta, test_algos_on_dit);
    tcase_add_test(ta, test_lora_runs_on_dit);
    tcase_add_test(ta, test_cli_pretrain);
    suite_add_tcase(s, ta);
    return s;
}
