/* Suite `ops_grad`: the backward be of the ref table against central finite
 * differences of a double-precision forward. For a scalar loss L = sum(w * y) with
 * random w, the float op's analytic gradient (dy = w) is compared with dL/dparam
 * computed in double. Each tolerance = 2 x a first-order bound on the float op's error
 * (tests/ops_check.h) + the finite difference's own error estimate.
 *
 * Finite differences: D(h) = (L(p + h) - L(p - h)) / 2h has truncation error
 * ~h^2 L'''/6; we return D(h/2) and bound its error by |D(h) - D(h/2)| (Richardson:
 * D(h/2)'s truncation error is ~|D(h) - D(h/2)| / 3) plus the rounding of the two loss
 * values, n_terms * eps_double * sum|terms| / h. A loss restricted to the terms that
 * depend on the perturbed parameter has the same derivative; we use it to keep that
 * rounding term small. Replay a failure with FLOWRL_TEST_SEED=<seed printed>. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "flowrl/ops.h"
#include "tests/ops_check.h"

typedef struct {
    double value; /* L */
    double mag;   /* sum |terms| */
    int terms;
} loss_val;

typedef loss_val (*loss_fn)(void *ctx);

/* dL/dp at *p (a double the loss reads through ctx); *err gets the error bound. */
static double central_diff(double *p, double h, loss_fn L, void *ctx, double *err)
{
    double p0 = *p, d[2], mag = 0;
    int terms = 1;
    for (int r = 0; r < 2; r++) {
        double hh = r ? h / 2 : h;
        *p = p0 + hh;
        loss_val lp = L(ctx);
        *p = p0 - hh;
        loss_val lm = L(ctx);
        d[r] = (lp.value - lm.value) / (2.0 * hh);
        if (lp.mag > mag) mag = lp.mag;
        if (lm.mag > mag) mag = lm.mag;
        terms = lp.terms;
    }
    *p = p0;
    *err = fabs(d[0] - d[1]) + (terms + 8) * DBL_EPSILON * mag / (h / 2);
    return d[1];
}

/* ---- activations ---------------------------------------------------------------------- */

typedef struct {
    fr_act act;
    double x, w;
} act_ctx;

static loss_val act_loss(void *c)
{
    act_ctx *a = (act_ctx *)c;
    double t = a->w * ops_act64(a->act, a->x);
    return (loss_val){t, fabs(t), 1};
}

START_TEST(test_act_bwd_fd)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x9ac7);
    uint64_t s = seed;
    enum { N = 257 };
    const double h = 1e-4;
    float x[N], w[N], dx[N];
    for (int a = 0; a < FR_ACT_COUNT; a++) {
        ops_fill_uniform(&s, x, N, -6.0f, 6.0f);
        ops_fill_uniform(&s, w, N, -1.0f, 1.0f);
        x[0] = 0.5f, x[1] = -0.5f, x[2] = 6.0f;
        be->ops->act_bwd((fr_act)a, N, x, w, dx, 0);
        for (int i = 0; i < N; i++) {
            if (a == FR_ACT_RELU && fabsf(x[i]) < 2 * h) continue; /* the kink */
            act_ctx c = {(fr_act)a, x[i], w[i]};
            double fd_err, fd = central_diff(&c.x, h, act_loss, &c, &fd_err);
            double tol = 2.0 * ops_act_bwd_bound((fr_act)a, x[i], w[i]) + fd_err;
            double err = fabs(dx[i] - fd);
            ck_assert_msg(err <= tol,
                          "act_bwd %s x=%a w=%a: dx=%.9g fd=%.17g err=%.3g tol=%.3g (fd %.3g) "
                          "seed=%#llx",
                          ops_act_names[a], x[i], w[i], dx[i], fd, err, tol, fd_err,
                          (unsigned long long)seed);
        }
    }
}
END_TEST

/* ---- layer norm ----------------------------------------------------------------------- */

typedef struct {
    int64_t M, D;
    double *x, *gamma, *beta; /* (M,D), (D,), (D,): the double forward's inputs */
    const float *w;           /* (M,D) */
    int64_t row, col;         /* restrict the loss to one row or one column (-1: all) */
    float eps;
} ln_ctx;

static loss_val ln_loss(void *cv)
{
    ln_ctx *c = (ln_ctx *)cv;
    loss_val L = {0, 0, 0};
    for (int64_t i = 0; i < c->M; i++) {
        if (c->row >= 0 && i != c->row) continue;
        const double *xr = c->x + i * c->D;
        double mu = 0, var = 0;
        for (int64_t j = 0; j < c->D; j++) mu += xr[j];
        mu /= (double)c->D;
        for (int64_t j = 0; j < c->D; j++) var += (xr[j] - mu) * (xr[j] - mu);
        var /= (double)c->D;
        double rs = 1.0 / sqrt(var + (double)c->eps);
        for (int64_t j = 0; j < c->D; j++) {
            if (c->col >= 0 && j != c->col) continue;
            double y = (xr[j] - mu) * rs * c->gamma[j] + c->beta[j];
            double t = c->w[i * c->D + j] * y;
            L.value += t;
            L.mag += fabs(t);
            L.terms++;
        }
    }
    L.terms += (int)c->D; /* the row statistics' sums */
    return L;
}

START_TEST(test_layernorm_bwd_fd)
{
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x91a4);
    uint64_t s = seed;
    static const int64_t shapes[][2] = {{1, 1}, {2, 1}, {1, 5}, {3, 8}, {4, 13}, {2, 33}};
    const float eps = 1e-5f;
    const double h = 1e-4, u = OPS_U;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int affine = 0; affine < 2; affine++) {
            int64_t M = shapes[c][0], D = shapes[c][1];
            float *x = ops_alloc(M * D), *w = ops_alloc(M * D), *y = ops_alloc(M * D);
            float *dx = ops_alloc(M * D), *g = ops_alloc(D), *b = ops_alloc(D);
            float *dg = ops_alloc(D), *db = ops_alloc(D), *mean = ops_alloc(M), *rstd = ops_alloc(M);
            double *xd = (double *)calloc((size_t)(M * D), sizeof(double));
            double *gd = (double *)calloc((size_t)D, sizeof(double));
            double *bd = (double *)calloc((size_t)D, sizeof(double));
            ck_assert(xd && gd && bd);
            for (int64_t i = 0; i < M; i++) {
                float off = fr_test_uniform(&s, -3.0f, 3.0f);
                for (int64_t j = 0; j < D; j++) x[i * D + j] = off + fr_test_uniform(&s, -1.0f, 1.0f);
            }
            ops_fill_uniform(&s, w, M * D, -1.0f, 1.0f);
            if (affine) {
                ops_fill_uniform(&s, g, D, 0.5f, 1.5f);
                ops_fill_uniform(&s, b, D, -0.5f, 0.5f);
            } else {
                for (int64_t j = 0; j < D; j++) g[j] = 1.0f, b[j] = 0.0f;
            }
            for (int64_t i = 0; i < M * D; i++) xd[i] = x[i];
            for (int64_t j = 0; j < D; j++) gd[j] = g[j], bd[j] = b[j];
            const float *gp = affine ? g : NULL;
            be->ops->layernorm_fwd(M, D, x, gp, affine ? b : NULL, eps, y, mean, rstd);
            be->ops->layernorm_bwd(M, D, x, gp, mean, rstd, w, dx, affine ? dg : NULL,
                               affine ? db : NULL, 0);
            ln_ctx ctx = {M, D, xd, gd, bd, w, -1, -1, eps};

            for (int64_t i = 0; i < M; i++) {
                const float *xr = x + i * D;
                double mu, rs, tol_mu, tol_rs;
                ops_ln_row_stats(xr, D, eps, &mu, &rs, &tol_mu, &tol_rs);
                /* The row's g = w*gamma, mean(g), mean(g xhat) in double, with bounds on the
                 * float versions: mg a long sum (gamma(depth) sum|g| / D, plus g's own
                 * rounding u|g| and the divide); mgx the same over g*xhat plus the xhat
                 * errors (sum |g| exh / D). */
                double dep = ops_longsum_depth(D);
                double mg = 0, mgx = 0, sg = 0, sgx = 0, sgexh = 0, exh_max = 0;
                for (int64_t j = 0; j < D; j++) {
                    double gj = (double)w[i * D + j] * g[j], xh = (xr[j] - mu) * rs;
                    double exh = ops_ln_xhat_bound(xr[j], mu, rs, tol_mu, tol_rs);
                    mg += gj, mgx += gj * xh, sg += fabs(gj), sgx += fabs(gj * xh);
                    sgexh += fabs(gj) * exh;
                    if (exh > exh_max) exh_max = exh;
                }
                mg /= (double)D, mgx /= (double)D;
                double e_mg = (ops_gamma(dep) + 2 * u) * sg / (double)D + u * fabs(mg);
                double e_mgx = (ops_gamma(dep) + 2 * u) * sgx / (double)D + sgexh / (double)D +
                               u * fabs(mgx);
                ctx.row = i, ctx.col = -1;
                for (int64_t j = 0; j < D; j++) {
                    double gj = (double)w[i * D + j] * g[j], xh = (xr[j] - mu) * rs;
                    double exh = ops_ln_xhat_bound(xr[j], mu, rs, tol_mu, tol_rs);
                    double dxr = rs * (gj - mg - xh * mgx);
                    /* dx = rstd * fmaf(-xhat, mgx, g - mg): the inputs' errors carried
                     * through, and 4 roundings (g, g - mg, fmaf, * rstd) each at most u
                     * times the sum of the magnitudes involved. */
                    double e = rs * (e_mg + fabs(xh) * e_mgx + fabs(mgx) * exh +
                                     4 * u * (fabs(gj) + fabs(mg) + fabs(xh * mgx))) +
                               fabs(dxr) * tol_rs / rs;
                    double fd_err, fd = central_diff(&xd[i * D + j], h, ln_loss, &ctx, &fd_err);
                    double tol = 2.0 * e + fd_err, err = fabs(dx[i * D + j] - fd);
                    ck_assert_msg(err <= tol,
                                  "layernorm_bwd affine=%d M=%lld D=%lld dx[%lld,%lld]=%.9g "
                                  "fd=%.17g err=%.3g tol=%.3g (fd %.3g) seed=%#llx",
                                  affine, (long long)M, (long long)D, (long long)i, (long long)j,
                                  dx[i * D + j], fd, err, tol, fd_err, (unsigned long long)seed);
                }
            }
            if (affine) {
                ctx.row = -1;
                for (int64_t j = 0; j < D; j++) {
                    /* dgamma: an fmaf chain over M rows (gamma(M) sum|w xhat|) plus the
                     * xhat errors; dbeta: M plain adds (gamma(M) sum|w|). */
                    double sgx = 0, sw = 0, sexh = 0;
                    for (int64_t i = 0; i < M; i++) {
                        double mu, rs, tol_mu, tol_rs;
                        ops_ln_row_stats(x + i * D, D, eps, &mu, &rs, &tol_mu, &tol_rs);
                        double xv = x[i * D + j], wv = w[i * D + j];
                        sgx += fabs(wv * (xv - mu) * rs);
                        sw += fabs(wv);
                        sexh += fabs(wv) * ops_ln_xhat_bound(xv, mu, rs, tol_mu, tol_rs);
                    }
                    ctx.col = j;
                    double fe_g, fd_g = central_diff(&gd[j], h, ln_loss, &ctx, &fe_g);
                    double fe_b, fd_b = central_diff(&bd[j], h, ln_loss, &ctx, &fe_b);
                    double tol_g = 2.0 * (ops_gamma((double)M) * sgx + sexh) + fe_g;
                    double tol_b = 2.0 * ops_gamma((double)M) * sw + fe_b;
                    ck_assert_msg(fabs(dg[j] - fd_g) <= tol_g && fabs(db[j] - fd_b) <= tol_b,
                                  "layernorm_bwd M=%lld D=%lld col %lld: dgamma %.9g fd %.17g "
                                  "(tol %.3g), dbeta %.9g fd %.17g (tol %.3g) seed=%#llx",
                                  (long long)M, (long long)D, (long long)j, dg[j], fd_g, tol_g,
                                  db[j], fd_b, tol_b, (unsigned long long)seed);
                }
            }
            free(x), free(w), free(y), free(dx), free(g), free(b), free(dg), free(db);
            free(mean), free(rstd), free(xd), free(gd), free(bd);
        }
}
END_TEST

/* ---- linear layer: y = act(x W^T + b) -------------------------------------------------- */

typedef struct {
    int64_t B, I, O;            /* batch, inputs, outputs */
    double *x, *W, *bias;       /* (B,I), (O,I), (O,) */
    const float *w;             /* (B,O) */
    fr_act act;
    int64_t row, col;           /* restrict to batch row / output column (-1: all) */
} lin_ctx;

static loss_val lin_loss(void *cv)
{
    lin_ctx *c = (lin_ctx *)cv;
    loss_val L = {0, 0, 0};
    for (int64_t b = 0; b < c->B; b++) {
        if (c->row >= 0 && b != c->row) continue;
        for (int64_t o = 0; o < c->O; o++) {
            if (c->col >= 0 && o != c->col) continue;
            double z = c->bias[o];
            for (int64_t i = 0; i < c->I; i++) z += c->x[b * c->I + i] * c->W[o * c->I + i];
            double t = c->w[b * c->O + o] * ops_act64(c->act, z);
            L.value += t;
            L.mag += fabs(t);
            L.terms += (int)c->I + 1;
        }
    }
    return L;
}

START_TEST(test_linear_bwd_fd)
{
    /* Forward z = gemm(0,1)(x, W) + bias_add, y = act(z). Backward with dy = w:
     *   dz = act_bwd(z, w)
     *   dx = dz W          gemm(0,0)
     *   dW = dW0 + dz^T x  gemm(1,0, accumulate) onto a random dW0 (the accumulate path)
     *   db = sum_b dz      bias_grad
     * against finite differences of the double forward. */
    fr_backend *be = fr_test_ref_be();
    uint64_t seed = ops_seed(0x911e);
    uint64_t s = seed;
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 1, 4}, {1, 6, 1}, {5, 7, 3}, {9, 17, 8}};
    static const fr_act acts[] = {FR_ACT_IDENTITY, FR_ACT_SILU};
    const double h = 1e-4;
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++)
        for (int ai = 0; ai < 2; ai++) {
            fr_act act = acts[ai];
            int64_t B = shapes[c][0], I = shapes[c][1], O = shapes[c][2];
            float *x = ops_alloc(B * I), *W = ops_alloc(O * I), *bias = ops_alloc(O);
            float *z = ops_alloc(B * O), *w = ops_alloc(B * O), *dz = ops_alloc(B * O);
            float *dx = ops_alloc(B * I), *dW = ops_alloc(O * I), *dW0 = ops_alloc(O * I);
            float *db = ops_alloc(O);
            double *xd = (double *)calloc((size_t)(B * I), sizeof(double));
            double *Wd = (double *)calloc((size_t)(O * I), sizeof(double));
            double *bd = (double *)calloc((size_t)O, sizeof(double));
            double *edz = (double *)calloc((size_t)(B * O), sizeof(double));
            ck_assert(xd && Wd && bd && edz);
            ops_fill_uniform(&s, x, B * I, -1.0f, 1.0f);
            ops_fill_uniform(&s, W, O * I, -1.0f, 1.0f);
            ops_fill_uniform(&s, bias, O, -0.5f, 0.5f);
            ops_fill_uniform(&s, w, B * O, -1.0f, 1.0f);
            ops_fill_uniform(&s, dW0, O * I, -1.0f, 1.0f);
            for (int64_t i = 0; i < B * I; i++) xd[i] = x[i];
            for (int64_t i = 0; i < O * I; i++) Wd[i] = W[i];
            for (int64_t i = 0; i < O; i++) bd[i] = bias[i];

            be->ops->gemm(0, 1, B, O, I, x, W, z, 0);
            be->ops->bias_add(B, O, z, bias);
            be->ops->act_bwd(act, B * O, z, w, dz, 0);
            be->ops->gemm(0, 0, B, I, O, dz, W, dx, 0);
            memcpy(dW, dW0, (size_t)(O * I) * sizeof *dW);
            be->ops->gemm(1, 0, O, I, B, dz, x, dW, 1);
            be->ops->bias_grad(B, O, dz, db, 0);

            /* Error of each float dz: z_f is off by ez <= gamma(I + 1)(sum|x||W| + |b|)
             * (the gemm chain and the bias add), which moves dz by <= |w| max|act''| ez
             * (max |silu''| = 0.5 at 0, attained; identity: 0), plus act_bwd's own
             * rounding (ops_act_bwd_bound, x2). */
            for (int64_t b = 0; b < B; b++)
                for (int64_t o = 0; o < O; o++) {
                    double mag = fabs(bias[o]);
                    for (int64_t i = 0; i < I; i++) mag += fabs((double)x[b * I + i] * W[o * I + i]);
                    double ez = ops_gamma((double)I + 1) * mag;
                    double curv = act == FR_ACT_SILU ? 0.5 : 0.0;
                    edz[b * O + o] = fabs(w[b * O + o]) * curv * ez +
                                     2.0 * ops_act_bwd_bound(act, z[b * O + o], w[b * O + o]);
                }
            lin_ctx ctx = {B, I, O, xd, Wd, bd, w, act, -1, -1};

            /* dx[b,i] = sum_o dz W: gemm chain of O (gamma(O) sum|dz W|) + sum |W| edz. */
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < I; i++) {
                    double mag = 0, prop = 0;
                    for (int64_t o = 0; o < O; o++) {
                        mag += fabs((double)dz[b * O + o] * W[o * I + i]);
                        prop += fabs(W[o * I + i]) * edz[b * O + o];
                    }
                    ctx.row = b, ctx.col = -1;
                    double fe, fd = central_diff(&xd[b * I + i], h, lin_loss, &ctx, &fe);
                    double tol = 2.0 * (ops_gamma((double)O) * mag + prop) + fe;
                    ck_assert_msg(fabs(dx[b * I + i] - fd) <= tol,
                                  "linear %s B=%lld I=%lld O=%lld dx[%lld,%lld]=%.9g fd=%.17g "
                                  "tol=%.3g seed=%#llx",
                                  ops_act_names[act], (long long)B, (long long)I, (long long)O,
                                  (long long)b, (long long)i, dx[b * I + i], fd, tol,
                                  (unsigned long long)seed);
                }
            /* dW[o,i] - dW0 = sum_b dz x: chain from dW0 (gamma(B) (|dW0| + sum|dz x|))
             * + sum |x| edz; dW - dW0 is exact in double. db[o]: B adds (gamma(B)) + sum edz. */
            for (int64_t o = 0; o < O; o++) {
                ctx.row = -1, ctx.col = o;
                for (int64_t i = 0; i < I; i++) {
                    double mag = fabs(dW0[o * I + i]), prop = 0;
                    for (int64_t b = 0; b < B; b++) {
                        mag += fabs((double)dz[b * O + o] * x[b * I + i]);
                        prop += fabs(x[b * I + i]) * edz[b * O + o];
                    }
                    double fe, fd = central_diff(&Wd[o * I + i], h, lin_loss, &ctx, &fe);
                    double tol = 2.0 * (ops_gamma((double)B) * mag + prop) + fe;
                    double got = (double)dW[o * I + i] - dW0[o * I + i];
                    ck_assert_msg(fabs(got - fd) <= tol,
                                  "linear %s B=%lld I=%lld O=%lld dW[%lld,%lld]-dW0=%.9g fd=%.17g "
                                  "tol=%.3g seed=%#llx",
                                  ops_act_names[act], (long long)B, (long long)I, (long long)O,
                                  (long long)o, (long long)i, got, fd, tol,
                                  (unsigned long long)seed);
                }
                double mag = 0, prop = 0;
                for (int64_t b = 0; b < B; b++) mag += fabs(dz[b * O + o]), prop += edz[b * O + o];
                double fe, fd = central_diff(&bd[o], h, lin_loss, &ctx, &fe);
                double tol = 2.0 * (ops_gamma((double)B) * mag + prop) + fe;
                ck_assert_msg(fabs(db[o] - fd) <= tol,
                              "linear %s B=%lld I=%lld O=%lld db[%lld]=%.9g fd=%.17g tol=%.3g "
                              "seed=%#llx",
                              ops_act_names[act], (long long)B, (long long)I, (long long)O,
                              (long long)o, db[o], fd, tol, (unsigned long long)seed);
            }
            free(x), free(W), free(bias), free(z), free(w), free(dz), free(dx), free(dW);
            free(dW0), free(db), free(xd), free(Wd), free(bd), free(edz);
        }
}
END_TEST

Suite *suite_ops_grad(void)
{
    Suite *s = suite_create("ops_grad");
    TCase *tc = tcase_create("fd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_act_bwd_fd);
    tcase_add_test(tc, test_layernorm_bwd_fd);
    tcase_add_test(tc, test_linear_bwd_fd);
    suite_add_tcase(s, tc);
    return s;
}
