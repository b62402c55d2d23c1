/* The trajectory-objective op entries (flowrl/ops.h "trajectory objectives": logp_backward,
 * row_sumsq_diff, kl_grad, guard_grad): the ref entries equal, bit for bit, the host loops
 * core/grpo.c ran before these loops became op entries (written out below as the
 * specification), over shapes with D below, at and off the 8 lanes, both accumulate modes,
 * the Gaussian and cps forms; and every backend built in equals ref bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm.h"
#include "flowrl/backend.h"
#include "flowrl/grpo.h"
#include "flowrl/grpo_elem.h"
#include "flowrl/schedule.h"
#include "flowrl/reduce.h"
#include "tests/step_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define SEED 0x7A0Cull

/* (B, D): one row, rows shorter than a lane set, a multiple of 8, odd and long */
static const int64_t k_shapes[][2] = {{1, 1}, {3, 5}, {4, 8}, {5, 37}, {2, 301}};
#define N_SHAPES (int)(sizeof k_shapes / sizeof k_shapes[0])

static float *fill(uint64_t *s, int64_t n, float lo, float hi)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    ck_assert(p != NULL);
    for (int64_t i = 0; i < n; i++) p[i] = fr_test_uniform(s, lo, hi);
    return p;
}

static void assert_bits(const float *got, const float *want, int64_t n, const char *what, int64_t B, int64_t D)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fr_test_bits_equal(got[i], want[i]), "%s (B %lld, D %lld): [%lld] %a, expected %a (seed %#llx)",
                      what, (long long)B, (long long)D, (long long)i, (double)got[i], (double)want[i],
                      (unsigned long long)SEED);
}

/* ---- the host loops before the op entries (core/grpo.c) ---------------------------------- */

static void old_logp_backward(int is_cps, float two_var, int64_t B, int64_t D, const float *x_next,
                              const float *mean, const float *g_logp, float *grad_mean, int accumulate)
{
    for (int64_t b = 0; b < B; b++) {
        const float *xr = x_next + b * D, *mr = mean + b * D;
        float *gr = grad_mean + b * D;
        float gd = is_cps ? g_logp[b] / (float)D : fr_gauss_row_scale(g_logp[b], (float)D, two_var);
        for (int64_t k = 0; k < D; k++) {
            float g = is_cps ? fr_cps_dlogp_dmu_elem(xr[k], mr[k], gd) : fr_gauss_dlogp_dmu_elem(xr[k], mr[k], gd);
            gr[k] = accumulate ? gr[k] + g : g;
        }
    }
}

/* fr_kl_loss's rows and fr_guard_policy's bias: the differences stored, then their
 * canonical sum of squares. */
static float old_sumsq_diff(const float *a, const float *b, int64_t n)
{
    float *d = malloc((size_t)n * sizeof(float));
    ck_assert(d != NULL);
    for (int64_t i = 0; i < n; i++) d[i] = a[i] - b[i];
    float s = fr_sumsq_canonical(d, n);
    free(d);
    return s;
}

static void old_kl_grad(int64_t n, float gk, const float *mean, const float *mean_ref, float *grad, int accumulate)
{
    for (int64_t i = 0; i < n; i++) {
        float g = fr_kl_dmu_elem(mean[i], mean_ref[i], gk);
        grad[i] = accumulate ? grad[i] + g : g;
    }
}

static void old_guard_grad(int64_t B, int64_t D, const float *x_next, const float *mean, const float *mean_old,
                           const float *gd, const float *gm, float *grad, int accumulate)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < D; k++) {
            int64_t i = b * D + k;
            float dmu = mean[i] - mean_old[i];
            float g = fr_gauss_dlogp_dmu_elem(x_next[i], mean[i], gd[b]) + gm[b] * (2.0f * dmu);
            grad[i] = accumulate ? grad[i] + g : g;
        }
}

/* ---- one shape through one table ----------------------------------------------------------- */

typedef struct {
    int64_t B, D;
    float *x_next, *mean, *mean_old, *g_logp, *gd, *gm, *grad0;
} inputs;

static void inputs_make(inputs *in, int64_t B, int64_t D, uint64_t *s)
{
    const int64_t n = B * D;
    in->B = B;
    in->D = D;
    in->x_next = fill(s, n, -2.0f, 2.0f);
    in->mean = fill(s, n, -2.0f, 2.0f);
    in->mean_old = fill(s, n, -2.0f, 2.0f);
    in->grad0 = fill(s, n, -1.0f, 1.0f);
    in->g_logp = fill(s, B, -0.5f, 0.5f);
    in->gd = fill(s, B, -3.0f, 3.0f);
    in->gm = fill(s, B, -0.1f, 0.1f);
}

static void inputs_free(inputs *in)
{
    float *p[] = {in->x_next, in->mean, in->mean_old, in->g_logp, in->gd, in->gm, in->grad0};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

/* The outputs of every entry on one input set. */
typedef struct {
    float *logp_bwd[2][2]; /* [cps][accumulate] (B, D) */
    float *kl[2];          /* [accumulate] (B, D) */
    float *guard[2];       /* [accumulate] (B, D) */
    float *rows;           /* (B,) */
    float all;             /* the batch-wide sum (R = 1) */
} outputs;

/* ---- backend memory ------------------------------------------------------------------ */

static void *dev_up(fr_backend *be, const void *src, size_t bytes)
{
    void *p = fr_dev_alloc(be, bytes);
    ck_assert_msg(p != NULL, "%s: %s", be->name, fr_last_error());
    ck_assert_msg(fr_h2d(be, p, src, bytes) == FR_OK, "%s: h2d: %s", be->name, fr_last_error());
    return p;
}

static void *dev_new(fr_backend *be, int64_t n)
{
    void *p = fr_dev_floats(be, n);
    ck_assert_msg(p != NULL, "%s: %s", be->name, fr_last_error());
    return p;
}

/* A host copy of n floats of backend memory p, which is freed. */
static float *dev_down(fr_backend *be, void *p, int64_t n)
{
    float *h = malloc((size_t)n * sizeof(float));
    ck_assert(h != NULL);
    ck_assert_msg(fr_d2h(be, h, p, (size_t)n * sizeof(float)) == FR_OK, "%s: d2h: %s", be->name, fr_last_error());
    fr_dev_free(be, p);
    return h;
}

#define UP(p, n) dev_up(be, (p), (size_t)(n) * sizeof *(p))

/* Every entry of be's table on in, through be's memory. */
static void outputs_run(fr_backend *be, const inputs *in, outputs *out)
{
    const fr_ops *o = be->ops;
    const int64_t B = in->B, D = in->D, n = B * D;
    float *x_next = UP(in->x_next, n), *mean = UP(in->mean, n), *mean_old = UP(in->mean_old, n),
          *g_logp = UP(in->g_logp, B), *gd = UP(in->gd, B), *gm = UP(in->gm, B);
    for (int c = 0; c < 2; c++)
        for (int a = 0; a < 2; a++) {
            float *g = UP(in->grad0, n);
            o->logp_backward(B, D, c, 0.37f, x_next, mean, g_logp, g, a);
            out->logp_bwd[c][a] = dev_down(be, g, n);
        }
    for (int a = 0; a < 2; a++) {
        float *g = UP(in->grad0, n);
        o->kl_grad(n, 0.0123f, mean, mean_old, g, a);
        out->kl[a] = dev_down(be, g, n);
        g = UP(in->grad0, n);
        o->guard_grad(B, D, x_next, mean, mean_old, gd, gm, g, a);
        out->guard[a] = dev_down(be, g, n);
    }
    float *r = dev_new(be, B), *all = dev_new(be, 1);
    o->row_sumsq_diff(B, D, mean, mean_old, r);
    o->row_sumsq_diff(1, n, mean, mean_old, all);
    out->rows = dev_down(be, r, B);
    float *all_h = dev_down(be, all, 1);
    out->all = *all_h;
    free(all_h);
    void *ins[] = {x_next, mean, mean_old, g_logp, gd, gm};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++) fr_dev_free(be, ins[i]);
}

static void outputs_free(outputs *out)
{
    for (int c = 0; c < 2; c++)
        for (int a = 0; a < 2; a++) free(out->logp_bwd[c][a]);
    for (int a = 0; a < 2; a++) free(out->kl[a]), free(out->guard[a]);
    free(out->rows);
}

static void outputs_equal(const outputs *got, const outputs *want, int64_t B, int64_t D, const char *who)
{
    const int64_t n = B * D;
    char what[96];
    for (int c = 0; c < 2; c++)
        for (int a = 0; a < 2; a++) {
            snprintf(what, sizeof what, "%s logp_backward (cps %d, accumulate %d)", who, c, a);
            assert_bits(got->logp_bwd[c][a], want->logp_bwd[c][a], n, what, B, D);
        }
    for (int a = 0; a < 2; a++) {
        snprintf(what, sizeof what, "%s kl_grad (accumulate %d)", who, a);
        assert_bits(got->kl[a], want->kl[a], n, what, B, D);
        snprintf(what, sizeof what, "%s guard_grad (accumulate %d)", who, a);
        assert_bits(got->guard[a], want->guard[a], n, what, B, D);
    }
    snprintf(what, sizeof what, "%s row_sumsq_diff", who);
    assert_bits(got->rows, want->rows, B, what, B, D);
    assert_bits(&got->all, &want->all, 1, what, B, D);
}

/* The outputs of the old host loops. */
static void outputs_old(const inputs *in, outputs *out)
{
    const int64_t B = in->B, D = in->D, n = B * D;
    for (int c = 0; c < 2; c++)
        for (int a = 0; a < 2; a++) {
            float *g = out->logp_bwd[c][a] = malloc((size_t)n * sizeof(float));
            memcpy(g, in->grad0, (size_t)n * sizeof(float));
            old_logp_backward(c, 0.37f, B, D, in->x_next, in->mean, in->g_logp, g, a);
        }
    for (int a = 0; a < 2; a++) {
        out->kl[a] = malloc((size_t)n * sizeof(float));
        memcpy(out->kl[a], in->grad0, (size_t)n * sizeof(float));
        old_kl_grad(n, 0.0123f, in->mean, in->mean_old, out->kl[a], a);
        out->guard[a] = malloc((size_t)n * sizeof(float));
        memcpy(out->guard[a], in->grad0, (size_t)n * sizeof(float));
        old_guard_grad(B, D, in->x_next, in->mean, in->mean_old, in->gd, in->gm, out->guard[a], a);
    }
    out->rows = malloc((size_t)B * sizeof(float));
    for (int64_t b = 0; b < B; b++) out->rows[b] = old_sumsq_diff(in->mean + b * D, in->mean_old + b * D, D);
    out->all = old_sumsq_diff(in->mean, in->mean_old, n);
}

START_TEST(test_ref_is_old_loops)
{
    fr_backend *ref = fr_test_ref_be();
    uint64_t s = SEED;
    for (int i = 0; i < N_SHAPES; i++) {
        inputs in;
        inputs_make(&in, k_shapes[i][0], k_shapes[i][1], &s);
        outputs got, want;
        outputs_run(ref, &in, &got);
        outputs_old(&in, &want);
        outputs_equal(&got, &want, in.B, in.D, "ref");
        outputs_free(&got);
        outputs_free(&want);
        inputs_free(&in);
    }
}
END_TEST

/* Every backend built in (cuda-emu: the kernels of kern/k_traj.h in its guarded device memory)
 * equals ref bit for bit. */
START_TEST(test_backends_equal_ref)
{
    fr_backend *ref = fr_test_ref_be();
    int n_dev = 0;
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "ops_traj", *name, 2)) continue;
        n_dev += be.device;
        uint64_t s = SEED;
        for (int i = 0; i < N_SHAPES; i++) {
            inputs in;
            inputs_make(&in, k_shapes[i][0], k_shapes[i][1], &s);
            outputs got, want;
            outputs_run(&be, &in, &got);
            outputs_run(ref, &in, &want);
            outputs_equal(&got, &want, in.B, in.D, *name);
            outputs_free(&got);
            outputs_free(&want);
            inputs_free(&in);
        }
        fr_backend_close(&be);
    }
    ck_assert_msg(n_dev >= 1, "no device backend (cuda-emu is always built) was checked");
}
END_TEST

/* ---- the library functions on backend memory (core/grpo.c) --------------------------------- */

/* What fr_logp_backward (sde and cps), fr_kl_loss and fr_guard_policy (both biases) give on
 * one backend; the D-wide arrays in its memory, the per-sample ones on the host. */
typedef struct {
    float g_sde[2 * 37], g_cps[2 * 37], g_kl[2 * 37], g_guard[2][2 * 37];
    float kl, ratio[2][2], bias[2][2];
    fr_ppo_stats st[2];
} lib_out;

enum { LB = 2, LD = 37 };

static void lib_run(fr_backend *be, lib_out *o)
{
    float grid[11];
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, grid), FR_OK);
    const fr_step sde = fr_test_grid_step(grid, FR_SAMPLER_SDE, 3, 0.7f), cps = fr_test_grid_step(grid, FR_SAMPLER_CPS, 3, 0.7f);
    uint64_t s = SEED ^ 0x11ull;
    float *xn = fill(&s, LB * LD, -2.0f, 2.0f), *mu = fill(&s, LB * LD, -2.0f, 2.0f), *mo = fill(&s, LB * LD, -2.0f, 2.0f);
    float *gl = fill(&s, LB, -0.5f, 0.5f), *lnew = fill(&s, LB, -1.0f, 1.0f), *adv = fill(&s, LB, -2.0f, 2.0f);
    float lold[LB];
    for (int b = 0; b < LB; b++) lold[b] = lnew[b] + 1e-5f * (float)(b + 1);
    float *dxn = UP(xn, LB * LD), *dmu = UP(mu, LB * LD), *dmo = UP(mo, LB * LD), *dgl = UP(gl, LB);
    float *g = dev_new(be, LB * LD);
    ck_assert_int_eq(fr_logp_backward(be, &sde, LB, LD, dxn, dmu, dgl, g, 0), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->g_sde, g, sizeof o->g_sde), FR_OK);
    ck_assert_int_eq(fr_logp_backward(be, &cps, LB, LD, dxn, dmu, dgl, g, 0), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->g_cps, g, sizeof o->g_cps), FR_OK);
    ck_assert_int_eq(fr_kl_loss(be, LB, LD, 0.3f, dmu, dmo, 0.04f, &o->kl, g, 1), FR_OK); /* adds to the cps grad */
    ck_assert_int_eq(fr_d2h(be, o->g_kl, g, sizeof o->g_kl), FR_OK);
    const fr_ppo_params prm = {1e-4, 5.0f};
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(fr_guard_policy(be, &sde, LB, LD, (fr_guard_bias)m, &prm, dxn, dmu, dmo, lnew, lold, adv, 0.25f,
                                         g, 0, o->ratio[m], o->bias[m], &o->st[m]),
                         FR_OK);
        ck_assert_int_eq(fr_d2h(be, o->g_guard[m], g, sizeof o->g_guard[m]), FR_OK);
    }
    void *d[] = {dxn, dmu, dmo, dgl, g};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) fr_dev_free(be, d[i]);
    float *h[] = {xn, mu, mo, gl, lnew, adv};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]);
}

/* Every backend built in gives ref's bits through the library functions (cuda-emu: every
 * D-wide step in its guarded memory, the per-sample values crossing). */
START_TEST(test_grpo_functions_backends)
{
    lib_out want, got;
    memset(&want, 0, sizeof want);
    lib_run(fr_test_ref_be(), &want);
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "ops_traj", *name, 2)) continue;
        memset(&got, 0xA5, sizeof got);
        lib_run(&be, &got);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s: fr_logp_backward / fr_kl_loss / fr_guard_policy differ from ref",
                      *name);
        fr_backend_close(&be);
    }
}
END_TEST

/* ---- AWM's objective on backend memory (core/awm.c, core/awm_time.c) ------------------------ */

enum { AK = 2, AB = 3, AD = 37, AR = AK * AB };

typedef struct {
    float eps[AR * AD], xt[AR * AD], grad[AR * AD];
    double logp[AR], ratio[AR];
    fr_awm_stats st;
} awm_out;

/* fr_awm_noise, then fr_awm_loss off-policy with both KL terms (ELBO weights) on one backend. */
static void awm_run(fr_backend *be, awm_out *o)
{
    uint64_t s = SEED ^ 0x22ull;
    float *x0 = fill(&s, AB * AD, -1.0f, 1.0f), *t = fill(&s, AR, 0.05f, 0.95f), *adv = fill(&s, AB, -2.0f, 2.0f);
    float *dv = fill(&s, 3 * AR * AD, -0.3f, 0.3f);
    uint32_t sid[AB] = {4, 0, 9};
    double lold[AR];
    for (int r = 0; r < AR; r++) lold[r] = -0.01 * (double)(r + 1);
    float *d_x0 = UP(x0, AB * AD), *d_t = UP(t, AR), *d_eps = dev_new(be, AR * AD), *d_xt = dev_new(be, AR * AD);
    uint32_t *d_sid = UP(sid, AB);
    ck_assert_int_eq(fr_awm_noise(be, 11, 3, d_sid, AK, AB, AD, d_x0, d_t, d_eps, d_xt), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->eps, d_eps, sizeof o->eps), FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->xt, d_xt, sizeof o->xt), FR_OK);
    /* stand-in outputs of the policy, the base and the EMA adapter: x_t plus offsets */
    float v[3][AR * AD];
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < AR * AD; i++) v[m][i] = o->xt[i] + dv[m * AR * AD + i];
    float *d_v = UP(v[0], AR * AD), *d_vr = UP(v[1], AR * AD), *d_ve = UP(v[2], AR * AD), *d_g = dev_new(be, AR * AD);
    fr_awm_params p = fr_awm_defaults();
    p.kl_weight = FR_AWM_KL_ELBO;
    p.kl_ema_weight = FR_AWM_KL_ELBO;
    p.beta = 0.5;
    ck_assert_int_eq(fr_awm_loss(be, &p, AK, AB, AD, t, d_x0, d_eps, d_v, d_vr, d_ve, lold, adv, 0.5, d_g, o->logp,
                                 o->ratio, &o->st),
                     FR_OK);
    ck_assert_int_eq(fr_d2h(be, o->grad, d_g, sizeof o->grad), FR_OK);
    void *d[] = {d_x0, d_t, d_eps, d_xt, d_sid, d_v, d_vr, d_ve, d_g};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) fr_dev_free(be, d[i]);
    free(x0);
    free(t);
    free(adv);
    free(dv);
}

/* Every backend built in gives ref's bits through fr_awm_noise and fr_awm_loss. */
START_TEST(test_awm_functions_backends)
{
    static awm_out want, got;
    memset(&want, 0, sizeof want);
    awm_run(fr_test_ref_be(), &want);
    /* every term ran: both KLs, off-policy ratios */
    ck_assert(isfinite(want.st.loss) && want.st.kl > 0.0 && want.st.ema_kl > 0.0 && want.ratio[0] != 1.0);
    for (const char *const *name = fr_backend_names(); *name; name++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "ops_traj", *name, 2)) continue;
        memset(&got, 0xA5, sizeof got);
        awm_run(&be, &got);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "%s: fr_awm_noise / fr_awm_loss differ from ref", *name);
        fr_backend_close(&be);
    }
}
END_TEST

/* A NaN difference propagates into its row's sum and the batch-wide one, as the stored
 * differences did (the KL and Guard's bias report a diverged policy, never hide it). */
START_TEST(test_sumsq_diff_nan)
{
    const fr_ops *ref = fr_test_ref_be()->ops;
    float a[2 * 9], b[2 * 9], out[2], all;
    for (int i = 0; i < 18; i++) a[i] = (float)i, b[i] = 0.5f;
    a[12] = NAN;
    ref->row_sumsq_diff(2, 9, a, b, out);
    ref->row_sumsq_diff(1, 18, a, b, &all);
    ck_assert(!isnan(out[0]) && isnan(out[1]) && isnan(all));
}
END_TEST

Suite *suite_ops_traj(void)
{
    Suite *s = suite_create("ops_traj");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_ref_is_old_loops);
    tcase_add_test(tc, test_backends_equal_ref);
    tcase_add_test(tc, test_grpo_functions_backends);
    tcase_add_test(tc, test_awm_functions_backends);
    tcase_add_test(tc, test_sumsq_diff_nan);
    suite_add_tcase(s, tc);
    return s;
}
