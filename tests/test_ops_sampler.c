/* Suite `ops_sampler`: the op entries of samplers, guidance, noise and row gathers
 * (flowrl/ops.h) on every backend built in, against the host loops they replace, written out
 * here as core/ had them (one row's terms stored, then fr_mean_canonical), bit for bit: every
 * step kind with and without ξ, μ and log-prob, x' aliasing x, dpm's second order, the
 * log-prob of a given x' (from μ or from x), CFG, x̂0, Philox rows, the forward process and
 * the gather with skipped rows. Shapes straddle the 8 lanes of the canonical sum and the
 * rows of one block of the log-prob kernel (32). Replay with FLOWRL_TEST_SEED=<seed>. */
#include <stdio.h>
#include <string.h>

#include "flowrl/noising.h"
#include "flowrl/ops.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler.h"
#include "tests/ops_check.h"

/* ---- the host loops as core/ had them ------------------------------------------------- */

static void old_step(const fr_step_coef *q, int64_t B, int64_t D, const float *x, const float *model_out,
                     const float *x0_prev, const float *xi, float *x_next, float *mean, float *logp)
{
    float *tmp = ops_alloc(D);
    for (int64_t b = 0; b < B; b++) {
        const int64_t o = b * D;
        const float *m1 = x0_prev ? x0_prev + o : NULL;
        for (int64_t i = 0; i < D; i++) {
            float mu = fr_step_mean_elem(q, x[o + i], model_out[o + i], m1 ? m1[i] : 0.0f);
            float xn = xi ? fr_noise_add_elem(mu, q->std, xi[o + i]) : mu;
            if (mean) mean[o + i] = mu;
            x_next[o + i] = xn;
            tmp[i] = fr_step_logp_elem(q, xn, mu);
        }
        if (logp) logp[b] = fr_mean_canonical(tmp, D);
    }
    free(tmp);
}

static void old_logprob(const fr_step_coef *q, int64_t B, int64_t D, const float *x, const float *model_out,
                        const float *x0_prev, const float *x_next, const float *mean_in, float *mean_out, float *logp)
{
    float *tmp = ops_alloc(D);
    for (int64_t b = 0; b < B; b++) {
        const int64_t o = b * D;
        const float *m1 = x0_prev ? x0_prev + o : NULL;
        for (int64_t i = 0; i < D; i++) {
            float mu = mean_in ? mean_in[o + i] : fr_step_mean_elem(q, x[o + i], model_out[o + i], m1 ? m1[i] : 0.0f);
            if (mean_out) mean_out[o + i] = mu;
            tmp[i] = fr_step_logp_elem(q, x_next[o + i], mu);
        }
        logp[b] = fr_mean_canonical(tmp, D);
    }
    free(tmp);
}

/* ---- cases ------------------------------------------------------------------------ */

typedef struct {
    const char *what;
    fr_step p;
} step_case;

static step_case make_case(const char *what, fr_sampler_kind kind, float sigma, float sigma_next, float noise)
{
    step_case c;
    memset(&c, 0, sizeof c);
    c.what = what;
    c.p.kind = kind;
    c.p.sigma = sigma;
    c.p.sigma_next = sigma_next;
    c.p.sigma1 = 0.9f;
    c.p.noise = noise;
    c.p.order = 1;
    c.p.sigma_prev = 1.0f;
    return c;
}

static int step_cases(step_case *out)
{
    int n = 0;
    out[n++] = make_case("ode", FR_SAMPLER_ODE, 0.9f, 0.75f, 0.0f);
    out[n++] = make_case("sde sigma 1", FR_SAMPLER_SDE, 1.0f, 0.9f, 0.7f);
    out[n++] = make_case("sde", FR_SAMPLER_SDE, 0.5f, 0.3f, 0.7f);
    out[n++] = make_case("cps", FR_SAMPLER_CPS, 0.75f, 0.5f, 0.8f);
    out[n++] = make_case("dance", FR_SAMPLER_DANCE, 0.5f, 0.3f, 0.3f);
    step_case c = make_case("ddim clip", FR_SAMPLER_DDIM, 0.0f, 0.0f, 0.5f);
    c.p.alpha_bar = 0.5f;
    c.p.alpha_bar_prev = 0.7f;
    c.p.x0_clip = 1.0f;
    out[n++] = c;
    c.what = "ddim";
    c.p.x0_clip = 0.0f;
    out[n++] = c;
    out[n++] = make_case("dpm order 1", FR_SAMPLER_DPM, 0.75f, 0.5f, 0.0f);
    c = make_case("dpm order 2", FR_SAMPLER_DPM, 0.5f, 0.3f, 0.0f);
    c.p.order = 2;
    c.p.sigma_prev = 0.75f;
    out[n++] = c;
    c = make_case("dpm order 2 to 0", FR_SAMPLER_DPM, 0.3f, 0.0f, 0.0f);
    c.p.order = 2;
    c.p.sigma_prev = 0.5f;
    out[n++] = c;
    return n;
}

typedef struct {
    int64_t B, D;
} shape;

static const shape k_shapes[] = {{1, 1}, {3, 7}, {2, 8}, {5, 9}, {4, 33}, {37, 5}, {33, 100}};
#define N_SHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])

static void fill(uint64_t *s, float *x, int64_t n, float lo, float hi) { ops_fill_uniform(s, x, n, lo, hi); }

/* Backend memory through the handle (host memory on ref and opt). */
static void *dev_new(fr_backend *be, size_t bytes)
{
    void *p = fr_dev_alloc(be, bytes);
    ck_assert_msg(p != NULL, "%s: %zu bytes of backend memory: %s", be->name, bytes, fr_last_error());
    return p;
}

/* A backend copy of `bytes` of host memory; NULL stays NULL. */
static void *dev_put(fr_backend *be, const void *host, size_t bytes)
{
    if (!host) return NULL;
    void *p = dev_new(be, bytes);
    ck_assert_msg(fr_h2d(be, p, host, bytes) == FR_OK, "%s h2d: %s", be->name, fr_last_error());
    return p;
}

static void dev_get(fr_backend *be, void *host, const void *dev, size_t bytes)
{
    ck_assert_msg(fr_d2h(be, host, dev, bytes) == FR_OK, "%s d2h: %s", be->name, fr_last_error());
}

/* Every backend built in that starts here, one handle each. */
#define FOR_EACH_BACKEND(be)                                                                       \
    for (const char *const *nm_ = fr_backend_names(); *nm_; nm_++)                                 \
        for (fr_backend be##_h, *be = fr_test_backend_try(&be##_h, "ops_sampler", *nm_, 2) ? &be##_h : NULL; \
             be; fr_backend_close(be), be = NULL)

#define FB(n) ((size_t)(n) * sizeof(float))

static void assert_bits(const char *be, const char *what, const char *arr, const float *got, const float *want,
                        int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s %s: %s[%lld] = %a, the host loop gives %a (seed %#llx)",
                      be, what, arr, (long long)i, (double)got[i], (double)want[i], (unsigned long long)seed);
}

/* ---- sampler_step ---------------------------------------------------------------------- */

/* One sampler_step call on a backend: inputs copied in, outputs copied out (x_next written
 * over x when alias). */
static void run_step(fr_backend *be, const fr_step_coef *q, int64_t B, int64_t D, const float *x, const float *m,
                     const float *x0p, const float *xi, int alias, float *xn, float *mean, float *logp)
{
    const int64_t n = B * D;
    float *dx = dev_put(be, x, FB(n)), *dm = dev_put(be, m, FB(n)), *dx0 = dev_put(be, x0p, FB(n));
    float *dxi = dev_put(be, xi, FB(n));
    float *dxn = alias ? dx : dev_new(be, FB(n));
    float *dmean = mean ? dev_new(be, FB(n)) : NULL, *dlogp = logp ? dev_new(be, FB(B)) : NULL;
    be->ops->sampler_step(B, D, *q, dx, dm, dx0, dxi, dxn, dmean, dlogp);
    dev_get(be, xn, dxn, FB(n));
    if (mean) dev_get(be, mean, dmean, FB(n));
    if (logp) dev_get(be, logp, dlogp, FB(B));
    if (!alias) fr_dev_free(be, dxn);
    fr_dev_free(be, dx), fr_dev_free(be, dm), fr_dev_free(be, dx0), fr_dev_free(be, dxi);
    fr_dev_free(be, dmean), fr_dev_free(be, dlogp);
}

START_TEST(test_sampler_step)
{
    const uint64_t seed = ops_seed(0x5a3901);
    uint64_t s = seed;
    step_case cs[16];
    const int nc = step_cases(cs);
    for (int c = 0; c < nc; c++)
        for (int h = 0; h < N_SHAPES; h++) {
            fr_step_coef q;
            ck_assert_msg(fr_sampler_coef(&cs[c].p, &q) == FR_OK, "%s: %s", cs[c].what, fr_last_error());
            const int64_t B = k_shapes[h].B, D = k_shapes[h].D, n = B * D;
            const int stochastic = fr_sampler_is_stochastic(q.kind);
            const int dpm2 = q.kind == FR_SAMPLER_DPM && q.dpm.order == 2;
            float *x = ops_alloc(n), *m = ops_alloc(n), *x0p = ops_alloc(n), *xi = ops_alloc(n);
            float *xn = ops_alloc(n), *mean = ops_alloc(n), *logp = ops_alloc(B);
            float *xn_w = ops_alloc(n), *mean_w = ops_alloc(n), *logp_w = ops_alloc(B);
            fill(&s, x, n, -2.0f, 2.0f);
            fill(&s, m, n, -2.0f, 2.0f);
            fill(&s, x0p, n, -2.0f, 2.0f);
            fill(&s, xi, n, -3.0f, 3.0f);
            /* variant bits: ξ given, μ wanted, log-prob wanted, x' written over x */
            for (int v = 0; v < 16; v++) {
                const int with_xi = v & 1, with_mean = v & 2, with_logp = v & 4, alias = v & 8;
                if (!stochastic && (with_xi || with_logp)) continue;
                const float *xi_a = with_xi ? xi : NULL, *x0_a = dpm2 ? x0p : NULL;
                old_step(&q, B, D, x, m, x0_a, xi_a, xn_w, mean_w, logp_w);
                char what[96];
                snprintf(what, sizeof what, "%s (%lld, %lld) variant %d", cs[c].what, (long long)B, (long long)D, v);
                FOR_EACH_BACKEND(be) {
                    run_step(be, &q, B, D, x, m, x0_a, xi_a, alias, xn, with_mean ? mean : NULL,
                             with_logp ? logp : NULL);
                    assert_bits(be->name, what, "x_next", xn, xn_w, n, seed);
                    if (with_mean) assert_bits(be->name, what, "mean", mean, mean_w, n, seed);
                    if (with_logp) assert_bits(be->name, what, "logp", logp, logp_w, B, seed);
                }
            }
            free(x), free(m), free(x0p), free(xi), free(xn), free(mean), free(logp);
            free(xn_w), free(mean_w), free(logp_w);
        }
}
END_TEST

/* ---- sampler_logprob ------------------------------------------------------------------- */

static void run_logprob(fr_backend *be, const fr_step_coef *q, int64_t B, int64_t D, const float *x,
                        const float *m, const float *xn, const float *mu, float *mean_out, float *logp)
{
    const int64_t n = B * D;
    float *dx = dev_put(be, x, FB(n)), *dm = dev_put(be, m, FB(n)), *dxn = dev_put(be, xn, FB(n));
    float *dmu = dev_put(be, mu, FB(n)), *dmean = mean_out ? dev_new(be, FB(n)) : NULL;
    float *dlogp = dev_new(be, FB(B));
    be->ops->sampler_logprob(B, D, *q, dx, dm, NULL, dxn, dmu, dmean, dlogp);
    dev_get(be, logp, dlogp, FB(B));
    if (mean_out) dev_get(be, mean_out, dmean, FB(n));
    fr_dev_free(be, dx), fr_dev_free(be, dm), fr_dev_free(be, dmu);
    fr_dev_free(be, dxn), fr_dev_free(be, dmean), fr_dev_free(be, dlogp);
}

START_TEST(test_sampler_logprob)
{
    const uint64_t seed = ops_seed(0x5a3902);
    uint64_t s = seed;
    step_case cs[16];
    const int nc = step_cases(cs);
    for (int c = 0; c < nc; c++) {
        if (!fr_sampler_is_stochastic(cs[c].p.kind)) continue;
        for (int h = 0; h < N_SHAPES; h++) {
            fr_step_coef q;
            ck_assert(fr_sampler_coef(&cs[c].p, &q) == FR_OK);
            const int64_t B = k_shapes[h].B, D = k_shapes[h].D, n = B * D;
            float *x = ops_alloc(n), *m = ops_alloc(n), *xn = ops_alloc(n), *mu = ops_alloc(n);
            float *mean = ops_alloc(n), *logp = ops_alloc(B), *mean_w = ops_alloc(n), *logp_w = ops_alloc(B);
            float *logp_mu_w = ops_alloc(B);
            fill(&s, x, n, -2.0f, 2.0f);
            fill(&s, m, n, -2.0f, 2.0f);
            fill(&s, xn, n, -2.0f, 2.0f);
            fill(&s, mu, n, -2.0f, 2.0f);
            old_logprob(&q, B, D, NULL, NULL, NULL, xn, mu, NULL, logp_mu_w);
            old_logprob(&q, B, D, x, m, NULL, xn, NULL, mean_w, logp_w);
            char what[96];
            snprintf(what, sizeof what, "%s (%lld, %lld)", cs[c].what, (long long)B, (long long)D);
            FOR_EACH_BACKEND(be) {
                run_logprob(be, &q, B, D, NULL, NULL, xn, mu, NULL, logp); /* μ given */
                assert_bits(be->name, what, "logp of mean", logp, logp_mu_w, B, seed);
                for (int with_mean = 0; with_mean < 2; with_mean++) { /* μ from (x, v) */
                    run_logprob(be, &q, B, D, x, m, xn, NULL, with_mean ? mean : NULL, logp);
                    assert_bits(be->name, what, "logp", logp, logp_w, B, seed);
                    if (with_mean) assert_bits(be->name, what, "mean", mean, mean_w, n, seed);
                }
            }
            free(x), free(m), free(xn), free(mu), free(mean), free(logp), free(mean_w), free(logp_w), free(logp_mu_w);
        }
    }
}
END_TEST

/* ---- cfg_combine, flow_x0 ------------------------------------------------------------- */

START_TEST(test_cfg_flow_x0)
{
    const uint64_t seed = ops_seed(0x5a3903);
    uint64_t s = seed;
    const int64_t n = 1029;
    const float gs[] = {0.0f, 1.0f, 4.5f, -0.5f};
    float *a = ops_alloc(n), *b = ops_alloc(n), *out = ops_alloc(n), *cfg_w = ops_alloc(n), *x0_w = ops_alloc(n);
    for (size_t k = 0; k < sizeof gs / sizeof gs[0]; k++) {
        fill(&s, a, n, -3.0f, 3.0f);
        fill(&s, b, n, -3.0f, 3.0f);
        const float sigma = 0.25f * (float)k + 0.1f;
        for (int64_t i = 0; i < n; i++) cfg_w[i] = fr_cfg_elem(a[i], b[i], gs[k]);
        for (int64_t i = 0; i < n; i++) x0_w[i] = fr_flow_x0_elem(a[i], b[i], sigma);
        FOR_EACH_BACKEND(be) {
            float *da = dev_put(be, a, FB(n)), *db = dev_put(be, b, FB(n)), *dout = dev_new(be, FB(n));
            be->ops->cfg_combine(n, gs[k], da, db, dout);
            dev_get(be, out, dout, FB(n));
            assert_bits(be->name, "cfg_combine", "out", out, cfg_w, n, seed);
            be->ops->cfg_combine(n, gs[k], da, db, db); /* out aliasing v_c */
            dev_get(be, out, db, FB(n));
            assert_bits(be->name, "cfg_combine in place", "out", out, cfg_w, n, seed);
            fr_dev_free(be, db);
            db = dev_put(be, b, FB(n));
            be->ops->flow_x0(n, sigma, da, db, dout);
            dev_get(be, out, dout, FB(n));
            assert_bits(be->name, "flow_x0", "x0", out, x0_w, n, seed);
            fr_dev_free(be, da), fr_dev_free(be, db), fr_dev_free(be, dout);
        }
    }
    free(a), free(b), free(out), free(cfg_w), free(x0_w);
}
END_TEST
/* ---- Philox rows and the forward process ----------------------------------------------- */

START_TEST(test_rng_rows)
{
    const uint64_t seed = ops_seed(0x5a3904);
    uint64_t s = seed;
    const int64_t Ds[] = {1, 3, 4, 5, 37};
    const int64_t R = 12;
    uint32_t ids[12];
    for (int64_t r = 0; r < R; r++) ids[r] = (uint32_t)fr_test_next(&s);
    for (size_t h = 0; h < sizeof Ds / sizeof Ds[0]; h++)
        for (int64_t n1 = 1; n1 <= R; n1 *= 2) { /* 1, 2, 4, 8: rows k·n1 + b */
            const int64_t D = Ds[h];
            float *out = ops_alloc(R * D), *want = ops_alloc(R * D);
            for (int64_t r = 0; r < R; r++)
                fr_rng_fill_normal(want + r * D, D, 77, FR_RNG_SAMPLER_NOISE, 5, ids[r % n1], 9 + (uint32_t)(r / n1));
            FOR_EACH_BACKEND(be) {
                uint32_t *dids = dev_put(be, ids, (size_t)n1 * sizeof *ids);
                float *dout = dev_new(be, FB(R * D));
                be->ops->rng_normal_rows(R, D, 77, FR_RNG_SAMPLER_NOISE, 5, n1, dids, 9, dout);
                dev_get(be, out, dout, FB(R * D));
                assert_bits(be->name, "rng_normal_rows", "out", out, want, R * D, seed);
                fr_dev_free(be, dids), fr_dev_free(be, dout);
            }
            free(out), free(want);
        }
}
END_TEST

static void run_noise_fm(fr_backend *be, int64_t R, int64_t n1, int64_t D, const uint32_t *ids, const float *x0,
                         const float *t, float *xt, float *eps)
{
    uint32_t *dids = dev_put(be, ids, (size_t)n1 * sizeof *ids);
    float *dx0 = dev_put(be, x0, FB(n1 * D)), *dt = dev_put(be, t, FB(R));
    float *dxt = dev_new(be, FB(R * D)), *deps = eps ? dev_new(be, FB(R * D)) : NULL;
    be->ops->noise_fm(R, n1, D, 3, FR_RNG_AWM_NOISE, 2, 11, dids, dx0, dt, dxt, deps);
    dev_get(be, xt, dxt, FB(R * D));
    if (eps) dev_get(be, eps, deps, FB(R * D));
    fr_dev_free(be, dids), fr_dev_free(be, dx0), fr_dev_free(be, dt), fr_dev_free(be, dxt), fr_dev_free(be, deps);
}

START_TEST(test_noise_fm)
{
    const uint64_t seed = ops_seed(0x5a3905);
    uint64_t s = seed;
    const int64_t R = 6, D = 13;
    uint32_t ids[6];
    float *x0 = ops_alloc(R * D), *t = ops_alloc(R), *xt = ops_alloc(R * D), *eps = ops_alloc(R * D);
    float *xt_w = ops_alloc(R * D), *eps_w = ops_alloc(R * D);
    for (int64_t r = 0; r < R; r++) ids[r] = (uint32_t)fr_test_next(&s);
    fill(&s, x0, R * D, -2.0f, 2.0f);
    fill(&s, t, R, 0.0f, 1.0f);
    t[0] = 0.0f, t[1] = 1.0f;
    for (int64_t n1 = 1; n1 <= R; n1++) {
        if (R % n1) continue;
        for (int64_t r = 0; r < R; r++) {
            const fr_noise_coord k = {3, FR_RNG_AWM_NOISE, 2, 11 + (uint32_t)(r / n1)};
            for (int64_t d = 0; d < D; d++)
                xt_w[r * D + d] =
                    fr_noise_fm_elem(x0[(r % n1) * D + d], t[r], k, ids[r % n1], (uint32_t)d, &eps_w[r * D + d]);
        }
        FOR_EACH_BACKEND(be) {
            run_noise_fm(be, R, n1, D, ids, x0, t, xt, eps);
            assert_bits(be->name, "noise_fm", "x_t", xt, xt_w, R * D, seed);
            assert_bits(be->name, "noise_fm", "eps", eps, eps_w, R * D, seed);
            run_noise_fm(be, R, n1, D, ids, x0, t, xt, NULL);
            assert_bits(be->name, "noise_fm without eps", "x_t", xt, xt_w, R * D, seed);
        }
    }
    /* fr_noise_fm is the entry with n1 = R, the last case above (ids and t from the host) */
    const fr_noise_coord k = {3, FR_RNG_AWM_NOISE, 2, 11};
    FOR_EACH_BACKEND(be) {
        float *dx0 = dev_put(be, x0, FB(R * D)), *dxt = dev_new(be, FB(R * D)), *deps = dev_new(be, FB(R * D));
        ck_assert_msg(fr_noise_fm(be, R, D, k, ids, dx0, t, dxt, deps) == FR_OK, "%s", fr_last_error());
        dev_get(be, xt, dxt, FB(R * D));
        dev_get(be, eps, deps, FB(R * D));
        assert_bits(be->name, "fr_noise_fm", "x_t", xt, xt_w, R * D, seed);
        assert_bits(be->name, "fr_noise_fm", "eps", eps, eps_w, R * D, seed);
        fr_dev_free(be, dx0), fr_dev_free(be, dxt), fr_dev_free(be, deps);
    }
    free(x0), free(t), free(xt), free(eps), free(xt_w), free(eps_w);
}
END_TEST

/* ---- gather_rows ------------------------------------------------------------------------ */

START_TEST(test_gather_rows)
{
    const uint64_t seed = ops_seed(0x5a3906);
    uint64_t s = seed;
    const int64_t R = 9, S = 4, D = 11;
    int32_t idx[9];
    float *src = ops_alloc(S * D), *dst = ops_alloc(R * D), *want = ops_alloc(R * D), *got = ops_alloc(R * D);
    fill(&s, src, S * D, -1.0f, 1.0f);
    fill(&s, dst, R * D, -1.0f, 1.0f);
    memcpy(want, dst, FB(R * D));
    for (int64_t r = 0; r < R; r++) {
        idx[r] = (int32_t)(fr_test_next(&s) % (uint64_t)(S + 1)) - 1; /* -1: row left as it is */
        if (idx[r] >= 0) memcpy(want + r * D, src + idx[r] * D, FB(D));
    }
    FOR_EACH_BACKEND(be) {
        int32_t *didx = dev_put(be, idx, sizeof idx);
        float *dsrc = dev_put(be, src, FB(S * D)), *ddst = dev_put(be, dst, FB(R * D));
        be->ops->gather_rows(R, D, didx, S, dsrc, ddst);
        dev_get(be, got, ddst, FB(R * D));
        assert_bits(be->name, "gather_rows", "dst", got, want, R * D, seed);
        fr_dev_free(be, didx), fr_dev_free(be, dsrc), fr_dev_free(be, ddst);
    }
    free(src), free(dst), free(want), free(got);
}
END_TEST

Suite *suite_ops_sampler(void)
{
    Suite *s = suite_create("ops_sampler");
    TCase *tc = tcase_create("every backend");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sampler_step);
    tcase_add_test(tc, test_sampler_logprob);
    tcase_add_test(tc, test_cfg_flow_x0);
    tcase_add_test(tc, test_rng_rows);
    tcase_add_test(tc, test_noise_fm);
    tcase_add_test(tc, test_gather_rows);
    suite_add_tcase(s, tc);
    return s;
}
