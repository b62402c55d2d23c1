/* MeanFlow policies (flowrl/meanflow_policy.h; docs/algorithms/meanflow.md; spec more.md §9):
 * the act_jvp op on every backend bit for bit, fr_mlp_jvp against a float64 build of the same
 * network and its central finite differences, the policy's du/dt against finite differences of
 * u_θ(z + h·v̂, t + h, r), the objective's checks of the spec (r = t rows, λ at δ² = 0, the
 * dispersive term's range and its NaN case), the hidden-output gradient of fr_mlp_backward_h and
 * the dispersive gradient by finite differences, the times, and behaviour cloning of a MeanFlow
 * policy ref = opt = cuda-emu bitwise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "flowrl/ctl_bc.h"
#include "flowrl/elem.h"
#include "flowrl/meanflow_policy.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"
#include "tests/ctl_testutil.h"
#include "tests/testutil.h"

/* ---- act_jvp: y = act_fwd's bits, ydot = act_bwd's (accumulate 0), every backend = ref ------ */

START_TEST(test_act_jvp_backends)
{
    enum { N = 20011 }; /* above opt's chunk sizes: several threads */
    float *x = malloc(N * sizeof *x), *xd = malloc(N * sizeof *xd), *want_y = malloc(N * sizeof *want_y);
    float *want_d = malloc(N * sizeof *want_d), *y = malloc(N * sizeof *y), *yd = malloc(N * sizeof *yd);
    uint64_t seed = 135;
    for (int i = 0; i < N; i++) {
        x[i] = fr_test_uniform(&seed, -8.0f, 8.0f);
        xd[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
    }
    int checked = 0;
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        for (int i = 0; i < N; i++) {
            want_y[i] = fr_act_elem((fr_act)a, x[i]);
            want_d[i] = fr_act_bwd_elem((fr_act)a, x[i], xd[i]);
        }
        for (const char *const *b = fr_backend_names(); *b; b++) {
            fr_backend be;
            if (!fr_test_backend_try(&be, "act_jvp", *b, 3)) continue;
            float *dx = fr_dev_floats(&be, N), *dxd = fr_dev_floats(&be, N), *dy = fr_dev_floats(&be, N);
            ck_assert(dx && dxd && dy);
            ck_assert_int_eq(fr_h2d(&be, dx, x, N * sizeof *x), FR_OK);
            ck_assert_int_eq(fr_h2d(&be, dxd, xd, N * sizeof *x), FR_OK);
            /* ydot in place over xdot, y separate */
            be.ops->act_jvp((fr_act)a, N, dx, dxd, dy, dxd);
            ck_assert_int_eq(fr_d2h(&be, y, dy, N * sizeof *y), FR_OK);
            ck_assert_int_eq(fr_d2h(&be, yd, dxd, N * sizeof *y), FR_OK);
            ck_assert_msg(memcmp(y, want_y, N * sizeof *y) == 0, "act_jvp %d on %s: y differs from fr_act_elem", a, *b);
            ck_assert_msg(memcmp(yd, want_d, N * sizeof *y) == 0, "act_jvp %d on %s: ydot differs", a, *b);
            /* y in place over x */
            ck_assert_int_eq(fr_h2d(&be, dxd, xd, N * sizeof *x), FR_OK);
            be.ops->act_jvp((fr_act)a, N, dx, dxd, dx, dy);
            ck_assert_int_eq(fr_d2h(&be, y, dx, N * sizeof *y), FR_OK);
            ck_assert_int_eq(fr_d2h(&be, yd, dy, N * sizeof *y), FR_OK);
            ck_assert_msg(memcmp(y, want_y, N * sizeof *y) == 0 && memcmp(yd, want_d, N * sizeof *y) == 0,
                          "act_jvp %d on %s with y aliasing x", a, *b);
            fr_dev_free(&be, dx);
            fr_dev_free(&be, dxd);
            fr_dev_free(&be, dy);
            fr_backend_close(&be);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 2 * FR_ACT_COUNT);
    void *h[] = {x, xd, want_y, want_d, y, yd};
    for (size_t i = 0; i < 6; i++) free(h[i]);
}
END_TEST

/* ---- a float64 build of an MLP's math with the float network's weights -------------------- */

typedef struct {
    int L;
    int64_t dim[FR_MLP_MAX_LAYERS + 1];
    double *W[FR_MLP_MAX_LAYERS], *b[FR_MLP_MAX_LAYERS];
} dmlp;

static void dmlp_from(dmlp *d, fr_mlp *m)
{
    d->L = m->L;
    memcpy(d->dim, m->dim, sizeof d->dim);
    for (int l = 0; l < m->L; l++) {
        const int64_t nw = m->dim[l + 1] * m->dim[l], nb = m->dim[l + 1];
        float *w = malloc((size_t)(nw + nb) * sizeof *w);
        ck_assert_int_eq(fr_d2h(m->be, w, m->vals[2 * l].data, (size_t)nw * sizeof *w), FR_OK);
        ck_assert_int_eq(fr_d2h(m->be, w + nw, m->vals[2 * l + 1].data, (size_t)nb * sizeof *w), FR_OK);
        d->W[l] = malloc((size_t)nw * sizeof(double));
        d->b[l] = malloc((size_t)nb * sizeof(double));
        for (int64_t i = 0; i < nw; i++) d->W[l][i] = w[i];
        for (int64_t i = 0; i < nb; i++) d->b[l][i] = w[nw + i];
        free(w);
    }
}

static void dmlp_free(dmlp *d)
{
    for (int l = 0; l < d->L; l++) {
        free(d->W[l]);
        free(d->b[l]);
    }
}

static double dsilu(double x) { return x / (1.0 + exp(-x)); }
static double dsilu_d(double x)
{
    const double s = 1.0 / (1.0 + exp(-x));
    return s * (1.0 + x * (1.0 - s));
}

/* One row: y (dim[L]) = f(x), ydot its forward-mode tangent along xd (NULL: none); h0 (dim[1])
 * the first hidden output unless NULL. SiLU. */
static void dmlp_row(const dmlp *d, const double *x, const double *xd, double *y, double *yd, double *h0)
{
    double a[64], ad[64], n[64], nd[64];
    memcpy(a, x, (size_t)d->dim[0] * sizeof *a);
    if (xd) memcpy(ad, xd, (size_t)d->dim[0] * sizeof *ad);
    for (int l = 0; l < d->L; l++) {
        for (int64_t o = 0; o < d->dim[l + 1]; o++) {
            double s = d->b[l][o], sd = 0.0;
            for (int64_t i = 0; i < d->dim[l]; i++) {
                s += d->W[l][o * d->dim[l] + i] * a[i];
                if (xd) sd += d->W[l][o * d->dim[l] + i] * ad[i];
            }
            const int last = l == d->L - 1;
            n[o] = last ? s : dsilu(s);
            nd[o] = last ? sd : dsilu_d(s) * sd;
        }
        memcpy(a, n, (size_t)d->dim[l + 1] * sizeof *a);
        memcpy(ad, nd, (size_t)d->dim[l + 1] * sizeof *ad);
        if (l == 0 && h0) memcpy(h0, a, (size_t)d->dim[1] * sizeof *a);
    }
    memcpy(y, a, (size_t)d->dim[d->L] * sizeof *y);
    if (yd) memcpy(yd, ad, (size_t)d->dim[d->L] * sizeof *yd);
}

/* ---- fr_mlp_jvp: primal = fr_mlp_forward bitwise; tangent = the float64 forward mode within
 * float rounding; the float64 forward mode = central differences to 1e-6; every backend = ref --- */

enum { JR = 6 };
static const int64_t k_jdim[4] = {5, 9, 9, 3};

static void jvp_on(const char *name, float *u, float *ud, float *uf, float *post0)
{
    fr_backend be;
    ck_assert(fr_test_backend_try(&be, "mlp_jvp", name, 3) || strcmp(name, "ref") != 0);
    fr_mlp m;
    ck_assert_int_eq(fr_mlp_new(&m, &be, "net", 3, k_jdim, FR_ACT_SILU, JR), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&m, 11, 0, 1.0f), FR_OK);
    float x[JR * 5], xd[JR * 5];
    uint64_t seed = 9;
    for (int i = 0; i < JR * 5; i++) {
        x[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
        xd[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    }
    ck_assert_int_eq(fr_mlp_forward_host(&m, JR, x, uf), FR_OK);
    float *dxd = fr_dev_floats(&be, JR * 5), *dyd = fr_dev_floats(&be, JR * 3);
    ck_assert_int_eq(fr_h2d(&be, dxd, xd, sizeof xd), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, fr_mlp_in(&m), x, sizeof x), FR_OK);
    fr_mlp_jvp(&m, JR, dxd, dyd);
    ck_assert_int_eq(fr_d2h(&be, u, fr_mlp_out(&m), JR * 3 * sizeof *u), FR_OK);
    ck_assert_int_eq(fr_d2h(&be, ud, dyd, JR * 3 * sizeof *u), FR_OK);
    ck_assert_int_eq(fr_d2h(&be, post0, m.post[0], JR * 9 * sizeof *u), FR_OK);
    fr_dev_free(&be, dxd);
    fr_dev_free(&be, dyd);
    fr_mlp_free(&m);
    fr_backend_close(&be);
}

START_TEST(test_mlp_jvp_fd)
{
    float u[JR * 3], ud[JR * 3], uf[JR * 3], p0[JR * 9];
    jvp_on("ref", u, ud, uf, p0);
    ck_assert_msg(memcmp(u, uf, sizeof u) == 0, "fr_mlp_jvp's primal differs from fr_mlp_forward");
    /* the float64 build: the same weights, forward mode against central differences */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_mlp m;
    ck_assert_int_eq(fr_mlp_new(&m, &be, "net", 3, k_jdim, FR_ACT_SILU, JR), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&m, 11, 0, 1.0f), FR_OK);
    dmlp d;
    dmlp_from(&d, &m);
    uint64_t seed = 9;
    double x[JR * 5], xd[JR * 5];
    for (int i = 0; i < JR * 5; i++) {
        x[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
        xd[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    }
    const double h = 1e-5;
    for (int r = 0; r < JR; r++) {
        double y[3], yd[3], yp[3], ym[3], xp[5], xm[5];
        dmlp_row(&d, x + r * 5, xd + r * 5, y, yd, NULL);
        for (int i = 0; i < 5; i++) {
            xp[i] = x[r * 5 + i] + h * xd[r * 5 + i];
            xm[i] = x[r * 5 + i] - h * xd[r * 5 + i];
        }
        dmlp_row(&d, xp, NULL, yp, NULL, NULL);
        dmlp_row(&d, xm, NULL, ym, NULL, NULL);
        for (int j = 0; j < 3; j++) {
            const double fd = (yp[j] - ym[j]) / (2.0 * h);
            /* central differences: O(h²) ~ 1e-10 truncation, 1e-16/h ~ 1e-11 rounding */
            ck_assert_msg(fabs(fd - yd[j]) <= 1e-6 * (1.0 + fabs(yd[j])), "row %d out %d: jvp %.12g fd %.12g", r, j, yd[j], fd);
            /* the float op table: a few float roundings per layer on values of size ~1 */
            ck_assert_msg(fabs((double)ud[r * 3 + j] - yd[j]) <= 1e-5 * (1.0 + fabs(yd[j])),
                          "row %d out %d: op-table jvp %.9g, float64 %.12g", r, j, ud[r * 3 + j], yd[j]);
            ck_assert(isfinite(ud[r * 3 + j]));
        }
    }
    dmlp_free(&d);
    fr_mlp_free(&m);
    fr_backend_close(&be);
    /* every backend gives ref's bits, primal, tangent and hidden outputs */
    for (const char *const *b = fr_backend_names(); *b; b++) {
        if (strcmp(*b, "ref") == 0) continue;
        fr_backend t;
        if (!fr_test_backend_try(&t, "mlp_jvp", *b, 3)) continue;
        fr_backend_close(&t);
        float u2[JR * 3], ud2[JR * 3], uf2[JR * 3], p02[JR * 9];
        jvp_on(*b, u2, ud2, uf2, p02);
        ck_assert_msg(memcmp(u, u2, sizeof u) == 0 && memcmp(ud, ud2, sizeof ud) == 0 && memcmp(p0, p02, sizeof p0) == 0,
                      "fr_mlp_jvp on %s differs from ref", *b);
    }
}
END_TEST

/* ---- fr_mlp_backward_h: the gradient of Σ c·y + Σ e·h0 against central differences of the
 * float64 build ---------------------------------------------------------------------------- */

START_TEST(test_mlp_backward_h_fd)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_mlp m;
    ck_assert_int_eq(fr_mlp_new(&m, &be, "net", 3, k_jdim, FR_ACT_SILU, JR), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&m, 12, 0, 1.0f), FR_OK);
    float x[JR * 5], c[JR * 3], e[JR * 9], out[JR * 3];
    uint64_t seed = 10;
    for (int i = 0; i < JR * 5; i++) x[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
    for (int i = 0; i < JR * 3; i++) c[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    for (int i = 0; i < JR * 9; i++) e[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    ck_assert_int_eq(fr_mlp_zero_grad(&m), FR_OK);
    ck_assert_int_eq(fr_mlp_forward_host(&m, JR, x, out), FR_OK);
    float *de = fr_dev_floats(&be, JR * 9), *dh[2] = {de, NULL};
    ck_assert_int_eq(fr_h2d(&be, de, e, sizeof e), FR_OK);
    ck_assert_int_eq(fr_h2d(&be, m.dout, c, sizeof c), FR_OK);
    fr_mlp_backward_h(&m, JR, NULL, dh);
    dmlp d;
    dmlp_from(&d, &m);
    /* the first layer's weight (the hidden term reaches it) and the second's bias */
    const int pick[2][2] = {{0, 0}, {1, 1}};
    for (int q = 0; q < 2; q++) {
        const int l = pick[q][0], isb = pick[q][1];
        const int64_t n = isb ? d.dim[l + 1] : d.dim[l + 1] * d.dim[l];
        float *g = malloc((size_t)n * sizeof *g);
        ck_assert_int_eq(fr_d2h(&be, g, m.grads[2 * l + isb].data, (size_t)n * sizeof *g), FR_OK);
        for (int64_t i = 0; i < n; i += 3) {
            double *p = isb ? &d.b[l][i] : &d.W[l][i];
            double Lpm[2];
            const double p0 = *p, h = 1e-6;
            for (int s = 0; s < 2; s++) {
                *p = p0 + (s ? -h : h);
                double L = 0.0;
                for (int r = 0; r < JR; r++) {
                    double xr[5], y[3], h0[9];
                    for (int k = 0; k < 5; k++) xr[k] = x[r * 5 + k];
                    dmlp_row(&d, xr, NULL, y, NULL, h0);
                    for (int k = 0; k < 3; k++) L += c[r * 3 + k] * y[k];
                    for (int k = 0; k < 9; k++) L += e[r * 9 + k] * h0[k];
                }
                Lpm[s] = L;
            }
            *p = p0;
            const double fd = (Lpm[0] - Lpm[1]) / (2.0 * h);
            /* float gradient of ~JR terms of size ~1 against the float64 difference */
            ck_assert_msg(fabs(fd - (double)g[i]) <= 1e-4 * (1.0 + fabs(fd)), "layer %d %s %lld: grad %.9g fd %.9g", l,
                          isb ? "bias" : "weight", (long long)i, g[i], fd);
        }
        free(g);
    }
    fr_dev_free(&be, de);
    dmlp_free(&d);
    fr_mlp_free(&m);
    fr_backend_close(&be);
}
END_TEST

/* ---- the policy's du/dt: central differences of u_θ(z + h·v̂, t + h, r) in float64 ---------- */

static void mf_row_input(const fr_mf_policy *p, const float *obs, const double *z, double t, double r, double *in)
{
    const int64_t O = p->O, A = p->A;
    for (int64_t i = 0; i < O; i++) in[i] = obs[i];
    for (int64_t i = 0; i < A; i++) in[O + i] = z[i];
    for (int k = 0; k < FR_FLOW_TEMB / 2; k++) {
        in[O + A + k] = cos(t * (double)(1 << k));
        in[O + A + FR_FLOW_TEMB / 2 + k] = sin(t * (double)(1 << k));
        in[O + A + FR_FLOW_TEMB + k] = cos(r * (double)(1 << k));
        in[O + A + FR_FLOW_TEMB + FR_FLOW_TEMB / 2 + k] = sin(r * (double)(1 << k));
    }
}

START_TEST(test_mf_dudt_fd)
{
    enum { R = 5, O = 3, A = 2 };
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_mf_policy p;
    ck_assert_int_eq(fr_mf_policy_new(&p, &be, O, A, 16, 3, R), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&p.net, 5, 4, 1.0f), FR_OK);
    float obs[R * O], z[R * A], vh[R * A];
    double t[R], r[R];
    uint64_t seed = 21;
    for (int i = 0; i < R * O; i++) obs[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    for (int i = 0; i < R * A; i++) {
        z[i] = fr_test_uniform(&seed, -1.5f, 1.5f);
        vh[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
    }
    for (int b = 0; b < R; b++) {
        t[b] = (double)fr_test_uniform(&seed, 0.3f, 0.9f);
        r[b] = b % 2 ? t[b] : t[b] * 0.5;
    }
    ck_assert_int_eq(fr_mf_policy_jvp(&p, R, obs, z, t, r, vh), FR_OK);
    dmlp d;
    dmlp_from(&d, &p.net);
    const double h = 1e-5;
    for (int b = 0; b < R; b++) {
        double zp[A], zm[A], in[64], ind[64], y[A], yd[A], yp[A], ym[A];
        /* forward mode in float64: tangent (0, v̂, φ'(t), 0) */
        double z0[A];
        for (int j = 0; j < A; j++) z0[j] = z[b * A + j];
        mf_row_input(&p, obs + b * O, z0, t[b], r[b], in);
        memset(ind, 0, sizeof ind);
        for (int j = 0; j < A; j++) ind[O + j] = vh[b * A + j];
        for (int k = 0; k < FR_FLOW_TEMB / 2; k++) {
            const double f = (double)(1 << k);
            ind[O + A + k] = -f * sin(t[b] * f);
            ind[O + A + FR_FLOW_TEMB / 2 + k] = f * cos(t[b] * f);
        }
        dmlp_row(&d, in, ind, y, yd, NULL);
        for (int s = 0; s < 2; s++) {
            const double hs = s ? -h : h;
            for (int j = 0; j < A; j++) (s ? zm : zp)[j] = z0[j] + hs * (double)vh[b * A + j];
            mf_row_input(&p, obs + b * O, s ? zm : zp, t[b] + hs, r[b], in);
            dmlp_row(&d, in, NULL, s ? ym : yp, NULL, NULL);
        }
        for (int j = 0; j < A; j++) {
            const double fd = (yp[j] - ym[j]) / (2.0 * h);
            ck_assert_msg(fabs(fd - yd[j]) <= 1e-6 * (1.0 + fabs(yd[j])), "row %d: float64 du/dt %.12g, fd %.12g", b, yd[j], fd);
            /* the op table in float: inputs rounded to float (φ, z, v̂), then three layers */
            ck_assert_msg(fabs((double)p.dudt_h[b * A + j] - fd) <= 1e-4 * (1.0 + fabs(fd)),
                          "row %d: op-table du/dt %.9g, fd %.12g", b, p.dudt_h[b * A + j], fd);
            ck_assert_msg(fabs((double)p.u_h[b * A + j] - y[j]) <= 1e-5 * (1.0 + fabs(y[j])), "row %d: u %.9g vs %.12g", b,
                          p.u_h[b * A + j], y[j]);
        }
    }
    dmlp_free(&d);
    fr_mf_policy_free(&p);
    fr_backend_close(&be);
}
END_TEST

/* ---- the objective: r = t rows, λ at δ² = 0 ------------------------------------------------ */

START_TEST(test_mf_objective_checks)
{
    enum { R = 4, A = 3 };
    float u[R * A], dudt[R * A], dudt2[R * A], dout[R * A];
    double vhat[R * A], t[R], r[R], d2[R], lam[R];
    uint64_t seed = 31;
    for (int i = 0; i < R * A; i++) {
        u[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
        dudt[i] = fr_test_uniform(&seed, -3.0f, 3.0f);
        dudt2[i] = fr_test_uniform(&seed, -3.0f, 3.0f);
        vhat[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    }
    for (int b = 0; b < R; b++) t[b] = r[b] = 0.2 + 0.2 * b;
    /* r = t: u_tgt = v̂, so the loss is adaptive-weighted FM toward v̂ = 2v − u, whatever du/dt */
    const double L = fr_mf_objective(R, A, u, dudt, vhat, t, r, d2, lam, dout);
    ck_assert(fr_mf_objective(R, A, u, dudt2, vhat, t, r, NULL, NULL, NULL) == L);
    double want = 0.0;
    for (int b = 0; b < R; b++) {
        double s = 0.0;
        for (int j = 0; j < A; j++) s += (u[b * A + j] - vhat[b * A + j]) * (u[b * A + j] - vhat[b * A + j]);
        s /= A;
        ck_assert_double_eq_tol(d2[b], s, 1e-15);
        ck_assert_double_eq_tol(lam[b], 1.0 / sqrt(s + 1e-3), 1e-12);
        want += s / sqrt(s + 1e-3) / R;
        for (int j = 0; j < A; j++)
            ck_assert_float_eq_tol(dout[b * A + j], (float)(lam[b] * 2.0 * (u[b * A + j] - vhat[b * A + j]) / (R * A)), 1e-7f);
    }
    ck_assert_double_eq_tol(L, want, 1e-14);
    /* r < t: the target moves by (t − r)·du/dt */
    r[1] = 0.0;
    fr_mf_objective(R, A, u, dudt, vhat, t, r, d2, NULL, NULL);
    double s = 0.0;
    for (int j = 0; j < A; j++) {
        const double e = u[A + j] - (vhat[A + j] - t[1] * dudt[A + j]);
        s += e * e / A;
    }
    ck_assert_double_eq_tol(d2[1], s, 1e-14);
    /* δ² = 0: λ = 1/√1e-3 = 31.6228 */
    for (int i = 0; i < R * A; i++) vhat[i] = u[i];
    r[1] = t[1];
    ck_assert(fr_mf_objective(R, A, u, dudt, vhat, t, r, d2, lam, NULL) == 0.0);
    for (int b = 0; b < R; b++) {
        ck_assert(d2[b] == 0.0);
        ck_assert_double_eq_tol(lam[b], 31.6228, 5e-5);
    }
}
END_TEST

/* ---- the dispersive term: range, NaN case, gradient ----------------------------------------- */

START_TEST(test_mf_dispersive)
{
    enum { F = 4 };
    uint64_t seed = 41;
    for (int B = 2; B <= 9; B++) {
        double h[9 * F], g[9 * F];
        for (int i = 0; i < B * F; i++) h[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
        const double L = fr_mf_dispersive(B, F, h, 1.0, g);
        const double lo = log(1.0 / B + (1.0 - 1.0 / B) / exp(1.0));
        ck_assert_msg(L >= lo - 1e-15 && L <= 0.0, "B = %d: L_disp %.12g outside [%.12g, 0]", B, L, lo);
        /* central differences through the max normalisation (its argmax pair stays put for h = 1e-6) */
        for (int i = 0; i < B * F; i++) {
            const double x0 = h[i], e = 1e-6;
            h[i] = x0 + e;
            const double Lp = fr_mf_dispersive(B, F, h, 1.0, NULL);
            h[i] = x0 - e;
            const double Lm = fr_mf_dispersive(B, F, h, 1.0, NULL);
            h[i] = x0;
            ck_assert_msg(fabs((Lp - Lm) / (2 * e) - g[i]) <= 1e-7, "B = %d elem %d: grad %.12g fd %.12g", B, i, g[i],
                          (Lp - Lm) / (2 * e));
        }
    }
    /* two rows: D = [[0, M], [M, 0]] / M: log((2 + 2/e)/4), the lower end, whatever the rows */
    double two[2 * F] = {0, 1, 2, 3, 1, 1, 1, 1};
    ck_assert_double_eq_tol(fr_mf_dispersive(2, F, two, 1.0, NULL), log(0.5 + 0.5 / exp(1.0)), 1e-15);
    /* the NaN case: B = 1, or all rows equal, gives 0 and a zero gradient (MP1: 0/0 = NaN) */
    double one[F] = {1, 2, 3, 4}, g1[F] = {9, 9, 9, 9};
    ck_assert(fr_mf_dispersive(1, F, one, 1.0, g1) == 0.0);
    for (int i = 0; i < F; i++) ck_assert(g1[i] == 0.0);
    double same[3 * F], g3[3 * F];
    for (int i = 0; i < 3 * F; i++) same[i] = 0.5;
    ck_assert(fr_mf_dispersive(3, F, same, 1.0, g3) == 0.0);
    for (int i = 0; i < 3 * F; i++) ck_assert(g3[i] == 0.0);
}
END_TEST

/* ---- the times -------------------------------------------------------------------------------- */

START_TEST(test_mf_times)
{
    enum { B = 64 };
    double t[B], r[B];
    ck_assert_int_eq(fr_mf_times(B, 0.5, 7, FR_RNG_MF_TIME, 3, t, r), FR_OK);
    int eq = 0;
    double mt = 0.0;
    for (int b = 0; b < B; b++) {
        ck_assert(t[b] > 0.0 && t[b] < 1.0 && r[b] > 0.0 && r[b] <= t[b]);
        eq += r[b] == t[b];
        mt += t[b] / B;
    }
    ck_assert_int_eq(eq, B / 2); /* the two draws of a row coincide with probability ~0 */
    /* the max of two sigmoid(N(−0.4, 1)) draws has mean ≈ 0.53 */
    ck_assert_msg(mt > 0.4 && mt < 0.66, "mean t %.4f", mt);
    double t2[B], r2[B];
    ck_assert_int_eq(fr_mf_times(B, 0.5, 7, FR_RNG_MF_TIME, 4, t2, r2), FR_OK);
    ck_assert(memcmp(t, t2, sizeof t) != 0);
}
END_TEST

/* ---- behaviour cloning: learns, ref = opt = cuda-emu bitwise, the checkpoint loads and acts ---- */

static void losses(int64_t step, double loss, void *user)
{
    double *l = user;
    if (step == 100) l[0] = loss;
    l[1] = loss;
}

static int bc_mf(const char *name, const char *path, double *l)
{
    fr_backend be;
    if (!fr_test_backend_try(&be, "bc meanflow", name, 2)) return 0;
    fr_demos d;
    fr_test_tiny_demos(&d);
    fr_gen_policy g;
    fr_rms rms;
    ck_assert_int_eq(fr_gen_policy_new(&g, FR_GEN_MEANFLOW, &be, 2, 2, 16, 3, 1, 32), FR_OK);
    ck_assert_int_eq(fr_rms_init(&rms, 2), FR_OK);
    const fr_bc_opts o = {.steps = 400, .batch = 32, .lr = 3e-3, .seed = 3};
    ck_assert_msg(fr_bc_train(&g, &rms, &d, &o, losses, l) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_bc_save(path, &g, &rms, "line", "line (test)", &o), FR_OK);
    fr_gen_policy_free(&g);
    fr_rms_free(&rms);
    fr_demos_free(&d);
    fr_backend_close(&be);
    return 1;
}

START_TEST(test_mf_bc_backends_bitwise)
{
    char dir[64], ref[128], got[128];
    fr_test_mkdtemp(dir, sizeof dir, "mfbc");
    snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
    double l[2] = {NAN, NAN};
    ck_assert(bc_mf("ref", ref, l));
    ck_assert_msg(isfinite(l[0]) && l[1] < 0.8 * l[0], "meanflow bc: loss %.6g at step 100, %.6g at 400", l[0], l[1]);
    size_t nr, ng;
    void *br = fr_test_slurp(ref, &nr);
    int others = 0;
    for (const char *const *b = fr_backend_names(); *b; b++) {
        if (strcmp(*b, "ref") == 0) continue;
        snprintf(got, sizeof got, "%s/%s.safetensors", dir, *b);
        double lg[2];
        if (!bc_mf(*b, got, lg)) continue;
        void *bg = fr_test_slurp(got, &ng);
        ck_assert_msg(nr == ng && memcmp(br, bg, nr) == 0, "meanflow bc checkpoint on %s differs from ref", *b);
        free(bg);
        others++;
    }
    ck_assert_int_ge(others, 1);
    free(br);
    /* it loads back as a MeanFlow policy and acts in one network evaluation per row */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_gen_policy g;
    fr_rms rms;
    ck_assert_msg(fr_bc_load(ref, &be, 4, &g, &rms, NULL, 0) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(g.kind, FR_GEN_MEANFLOW);
    const float obs[8] = {0.5f, -0.5f, 0.1f, 0.2f, -0.7f, 0.3f, 0.0f, 0.0f};
    float a[8];
    const uint64_t before = be.work.fwd_rows;
    ck_assert_int_eq(fr_gen_policy_act(&g, 4, obs, 1, 0, 0, a), FR_OK);
    ck_assert_int_eq(be.work.fwd_rows - before, 4);
    for (int i = 0; i < 8; i++) ck_assert(isfinite(a[i]));
    fr_gen_policy_free(&g);
    fr_rms_free(&rms);
    fr_backend_close(&be);
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_meanflow(void)
{
    Suite *s = suite_create("meanflow");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_act_jvp_backends);
    tcase_add_test(tc, test_mlp_jvp_fd);
    tcase_add_test(tc, test_mlp_backward_h_fd);
    tcase_add_test(tc, test_mf_dudt_fd);
    tcase_add_test(tc, test_mf_objective_checks);
    tcase_add_test(tc, test_mf_dispersive);
    tcase_add_test(tc, test_mf_times);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("bc");
    tcase_set_timeout(tb, 300);
    tcase_add_test(tb, test_mf_bc_backends_bitwise);
    suite_add_tcase(s, tb);
    return s;
}
