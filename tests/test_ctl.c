/* The control machinery (flowrl/ctl.h, flowrl/mlp.h; docs/control.md): GAE, the reward scaler
 * and the observation normaliser against hand-computed values, the PPO surrogate's gradient, the
 * MLP's gradient by finite differences and its bits on every backend, the collector's truncation
 * bootstrap and its resume, and ppo-gaussian on the run loop over a tiny environment defined
 * here ("line": a point on a line pushed by the action): ratio = 1 bitwise on each epoch's first
 * minibatch, ref = opt bitwise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "flowrl/algo.h"
#include "flowrl/ctl.h"
#include "flowrl/ctl_bc.h"
#include "flowrl/flow_policy.h"
#include "flowrl/mlp.h"
#include "flowrl/philox.h"
#include "tests/audit_testutil.h"
#include "tests/run_testutil.h"
#include "tests/ctl_testutil.h"
#include "tests/testutil.h"

/* ---- the "line" environment: state (x, v), obs (x, v), action (force,), x' = x + 0.1·v',
 * v' = v + 0.1·a, reward −x², terminal when |x| > 2, 5 steps at most; x0 ~ U(−1, 1) ---------- */

static fr_status line_reset(const fr_env *e, uint32_t seed, uint32_t episode, double *st, float *obs)
{
    (void)e;
    st[0] = 2.0 * (double)fr_rng_uniform(seed, FR_RNG_ENV_RESET, episode, 0, 0, 0) - 1.0;
    st[1] = 0.0;
    obs[0] = (float)st[0];
    obs[1] = 0.0f;
    return FR_OK;
}

static fr_status line_step(const fr_env *e, double *st, const float *a, float *obs, double *r, int *done)
{
    if (!isfinite(a[0])) return fr_fail(FR_ERR_NUMERIC, "%s: action %g", e->desc, (double)a[0]);
    st[1] += 0.1 * (double)a[0];
    st[0] += 0.1 * st[1];
    obs[0] = (float)st[0];
    obs[1] = (float)st[1];
    *r = -st[0] * st[0];
    *done = fabs(st[0]) > 2.0;
    return FR_OK;
}

static const fr_env_ctl_ops k_line_ops = {line_reset, line_step, NULL, NULL, 0};

static fr_status line_create(const void *o, fr_env *e)
{
    (void)o;
    e->state_dim = 2;
    e->obs_dim = 2;
    e->n_actions = 0;
    e->action_dim = 1;
    e->exit_action = -1;
    e->max_steps = 5;
    e->ctl = &k_line_ops;
    snprintf(e->desc, sizeof e->desc, "line (test)");
    return FR_OK;
}

static const fr_env_class k_line = {"line", "test", "docs/control.md", "control", NULL, 0, 0, line_create};

/* ---- GAE, scaler, normaliser, surrogate ------------------------------------------------- */

START_TEST(test_gae_by_hand)
{
    /* T = 3, N = 1: step 1 truncated (bootstrap 4), the block ends at step 2 (V after it 2) */
    const double r[3] = {1, 2, 3}, v[3] = {0.5, 1.0, 1.5}, nv[3] = {1.0, 4.0, 2.0};
    const uint8_t end[3] = {0, 1, 0};
    double adv[3], ret[3];
    fr_ctl_gae(3, 1, 0.9, 0.8, r, v, nv, end, adv, ret);
    /* δ2 = 3 + 0.9·2 − 1.5 = 3.3; δ1 = 2 + 0.9·4 − 1 = 4.6 (the episode ends: A1 = δ1);
     * δ0 = 1 + 0.9·1 − 0.5 = 1.4, A0 = 1.4 + 0.72·4.6 = 4.712 */
    const double want[3] = {4.712, 4.6, 3.3};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(fabs(adv[i] - want[i]) < 1e-12, "A[%d] = %.17g, want %.17g", i, adv[i], want[i]);
        ck_assert_msg(fabs(ret[i] - (want[i] + v[i])) < 1e-12, "R[%d] = %.17g", i, ret[i]);
    }
    /* two environments interleaved (row t·N + n): the second is the first shifted by nothing */
    double r2[6], v2[6], nv2[6], a2[6], ret2[6];
    uint8_t e2[6];
    for (int t = 0; t < 3; t++)
        for (int n = 0; n < 2; n++) {
            r2[t * 2 + n] = r[t];
            v2[t * 2 + n] = v[t];
            nv2[t * 2 + n] = n ? 0.0 : nv[t]; /* environment 1: terminal rows have next value 0 */
            e2[t * 2 + n] = n ? (t == 1) : end[t];
        }
    nv2[1 * 2 + 1] = 0.0;
    fr_ctl_gae(3, 2, 0.9, 0.8, r2, v2, nv2, e2, a2, ret2);
    for (int t = 0; t < 3; t++) ck_assert(fabs(a2[t * 2] - want[t]) < 1e-12);
    /* environment 1: δ2 = 3 − 1.5, δ1 = 2 − 1, δ0 = 1 − 0.5 (next values 0) */
    ck_assert(fabs(a2[5] - 1.5) < 1e-12 && fabs(a2[3] - 1.0) < 1e-12 && fabs(a2[1] - (0.5 + 0.72 * 1.0)) < 1e-12);
}
END_TEST

START_TEST(test_reward_scaler_by_hand)
{
    /* γ = 0.5, rewards 1, 2, 3 from an episode's start: discounted returns 1, 2.5, 4.25; DPPO's
     * RunningMeanStd merge from (mean 0, var 1, count 1e-4) divides M2 by count − 1. Expected
     * values: the public code's formulas evaluated in Python floats. */
    fr_ctl_reward_scaler s;
    ck_assert_int_eq(fr_ctl_reward_scaler_init(&s, 1, 0.5), FR_OK);
    const double r[3] = {1, 2, 3};
    const uint8_t first[3] = {1, 0, 0};
    double out[3];
    ck_assert_int_eq(fr_ctl_reward_scale(&s, 3, r, first, out), FR_OK);
    ck_assert_msg(fabs(s.rms.mean[0] - 2.5832472250924967) < 1e-14, "mean %.17g", s.rms.mean[0]);
    ck_assert_msg(fabs(s.rms.var[0] - 2.6460846985316477) < 1e-14, "var %.17g", s.rms.var[0]);
    const double want[3] = {0.6147494211470527, 1.2294988422941053, 1.844248263441158};
    for (int i = 0; i < 3; i++) ck_assert_msg(fabs(out[i] - want[i]) < 1e-14, "r[%d] %.17g", i, out[i]);
    ck_assert(fabs(s.ret[0] - 4.25) < 1e-15);
    /* a new episode cuts the discounted sum: first = 1 ignores ret */
    const uint8_t f1[1] = {1};
    const double r1[1] = {1.0};
    ck_assert_int_eq(fr_ctl_reward_scale(&s, 1, r1, f1, out), FR_OK);
    ck_assert(s.ret[0] == 1.0);
    /* clipping at ±10: statistics of a long history of tiny returns (var 1e-4 over 1e9 counts),
     * which one more return barely moves: 1/√1e-4 = 100 → 10 */
    s.rms.mean[0] = 0.0;
    s.rms.var[0] = 1e-4;
    s.rms.count = 1e9;
    const double neg[1] = {-1.0};
    ck_assert_int_eq(fr_ctl_reward_scale(&s, 1, r1, f1, out), FR_OK);
    ck_assert_msg(out[0] == 10.0, "%.17g", out[0]);
    ck_assert_int_eq(fr_ctl_reward_scale(&s, 1, neg, f1, out), FR_OK);
    ck_assert(out[0] == -10.0);
    fr_ctl_reward_scaler_free(&s);
}
END_TEST

START_TEST(test_obs_normalizer_by_hand)
{
    /* gym's RunningMeanStd (M2 / count) over rows (1, 2), (3, 6); then row (2, 3) normalised */
    fr_rms r;
    ck_assert_int_eq(fr_rms_init(&r, 2), FR_OK);
    const float x[4] = {1, 2, 3, 6}, y[2] = {2, 3};
    fr_rms_update_f32(&r, 2, x);
    ck_assert(fabs(r.mean[0] - 1.9999000049997497) < 1e-14 && fabs(r.var[0] - 1.0001999800015) < 1e-14);
    ck_assert(fabs(r.mean[1] - 3.9998000099994995) < 1e-14 && fabs(r.var[1] - 4.000649927505624) < 1e-14);
    ck_assert(fabs(r.count - 2.0001) < 1e-14);
    float z[2];
    fr_ctl_obs_normalize(&r, 1, y, z);
    ck_assert_msg(z[0] == (float)9.998500274966375e-05 && z[1] == (float)-0.49985939697802073, "%.9g %.9g", (double)z[0],
                  (double)z[1]);
    /* the clip at ±10 */
    const float far[2] = {1e6f, -1e6f};
    fr_ctl_obs_normalize(&r, 1, far, z);
    ck_assert(z[0] == 10.0f && z[1] == -10.0f);
    fr_rms_free(&r);
}
END_TEST

START_TEST(test_ppo_clip_gradient)
{
    /* ρ = 1.5 with Â > 0: clipped, no gradient; ρ = 1.5 with Â < 0: the unclipped term is the max;
     * ρ = 1 inside the range; ρ = 0.5 with Â > 0: the unclipped term is the max */
    const double l15 = log(1.5), l05 = log(0.5);
    const double lp_new[4] = {l15, l15, 0.0, l05}, lp_old[4] = {0, 0, 0, 0}, adv[4] = {2.0, -1.0, 3.0, 1.0};
    double g[4];
    fr_ctl_ppo_stats st;
    fr_ctl_ppo_clip(4, lp_new, lp_old, adv, 0.2, g, &st);
    ck_assert(g[0] == 0.0);
    ck_assert(fabs(g[1] - 1.5 / 4.0) < 1e-12);
    ck_assert(fabs(g[2] + 3.0 / 4.0) < 1e-12);
    ck_assert(fabs(g[3] + 0.5 / 4.0) < 1e-12);
    /* loss = mean(−2·1.2, 1·1.5, −3, −0.5) */
    ck_assert_msg(fabs(st.loss - (-2.4 + 1.5 - 3.0 - 0.5) / 4.0) < 1e-12, "loss %.17g", st.loss);
    ck_assert(fabs(st.clipfrac - 0.75) < 1e-15);
    ck_assert(fabs(st.approx_kl - ((0.5 - l15) * 2 + 0.0 + (-0.5 - l05)) / 4.0) < 1e-12);
    /* advantage normalisation: torch's unbiased std */
    const double a[3] = {1, 2, 3};
    double an[3];
    fr_ctl_adv_normalize(3, a, an);
    ck_assert(fabs(an[0] + 1.0 / (1.0 + 1e-8)) < 1e-12 && an[1] == 0.0 && fabs(an[2] - 1.0 / (1.0 + 1e-8)) < 1e-12);
    /* the Gaussian */
    const float act[2] = {1.0f, -1.0f}, mu[2] = {0.0f, 0.0f};
    const double ls[2] = {0.0, log(2.0)};
    const double want = -0.5 - 0.9189385332046727 + (-0.125 - log(2.0) - 0.9189385332046727);
    ck_assert(fabs(fr_ctl_gauss_logp(2, act, mu, ls) - want) < 1e-12);
    ck_assert(fabs(fr_ctl_gauss_entropy(2, ls) - (2 * (0.5 + 0.9189385332046727) + log(2.0))) < 1e-12);
}
END_TEST

/* ---- the MLP ------------------------------------------------------------------------------ */

/* The loss Σ w ⊙ out of 4 rows through a 3 → 6 → 5 → 2 MLP of activation act, float64 on the host. */
static double mlp_loss(fr_mlp *m, const float *x, const float *w)
{
    float out[8];
    ck_assert_int_eq(fr_mlp_forward_host(m, 4, x, out), FR_OK);
    double l = 0.0;
    for (int i = 0; i < 8; i++) l += (double)w[i] * (double)out[i];
    return l;
}

/* Every parameter gradient of m (ref backend memory, the backward already run) against central
 * differences (h = 1e-2) of the float64 loss f(u): a float32 forward with h = 1e-2 has truncation
 * O(h²) and rounding ~1e-7/h, hence 2e-3 absolute + relative. */
static void check_grads_fd(fr_mlp *m, double (*f)(void *u), void *u, const char *what)
{
    for (int q = 0; q < m->n_params; q++) {
        float *val = m->vals[q].data, *gr = m->grads[q].data;
        for (int64_t i = 0; i < fr_tensor_numel(&m->vals[q]); i++) {
            const float keep = val[i], h = 1e-2f;
            val[i] = keep + h;
            const double lp = f(u);
            val[i] = keep - h;
            const double lm = f(u);
            val[i] = keep;
            const double fd = (lp - lm) / (2.0 * (double)h);
            ck_assert_msg(fabs(fd - (double)gr[i]) <= 2e-3 + 2e-3 * fabs(fd), "%s %s[%lld]: fd %.6g, backward %.6g", what,
                          m->names[q], (long long)i, fd, (double)gr[i]);
        }
    }
}

typedef struct {
    fr_mlp *m;
    const float *x, *w;
} mlp_fd;

static double mlp_fd_loss(void *u)
{
    mlp_fd *c = u;
    return mlp_loss(c->m, c->x, c->w);
}

START_TEST(test_mlp_gradient_fd)
{
    const fr_act acts[3] = {FR_ACT_TANH, FR_ACT_SILU, FR_ACT_RELU};
    for (int ai = 0; ai < 3; ai++) {
        fr_backend *be = fr_test_ref_be();
        fr_mlp m;
        const int64_t dim[4] = {3, 6, 5, 2};
        ck_assert_int_eq(fr_mlp_new(&m, be, "net", 3, dim, acts[ai], 4), FR_OK);
        ck_assert_int_eq(fr_mlp_init_params(&m, 7, 9, 1.0f), FR_OK);
        uint64_t seed = 1234 + (uint64_t)ai;
        float x[12], w[8];
        for (int i = 0; i < 12; i++) x[i] = fr_test_uniform(&seed, -1.5f, 1.5f);
        for (int i = 0; i < 8; i++) w[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
        mlp_loss(&m, x, w);
        ck_assert_int_eq(fr_mlp_zero_grad(&m), FR_OK);
        float *dx = fr_dev_floats(be, 12);
        ck_assert_int_eq(fr_h2d(be, m.dout, w, sizeof w), FR_OK);
        fr_mlp_backward(&m, 4, dx);
        mlp_fd c = {&m, x, w};
        char what[32];
        snprintf(what, sizeof what, "act %d", ai);
        check_grads_fd(&m, mlp_fd_loss, &c, what);
        for (int i = 0; i < 12; i++) {
            float xp[12];
            memcpy(xp, x, sizeof xp);
            xp[i] += 1e-2f;
            const double lp = mlp_loss(&m, xp, w);
            xp[i] -= 2e-2f;
            const double lm = mlp_loss(&m, xp, w);
            const double fd = (lp - lm) / 2e-2;
            ck_assert_msg(fabs(fd - (double)dx[i]) <= 2e-3 + 2e-3 * fabs(fd), "act %d dx[%d]: fd %.6g, backward %.6g", ai,
                          i, fd, (double)dx[i]);
        }
        fr_dev_free(be, dx);
        fr_mlp_free(&m);
    }
}
END_TEST

/* Forward, backward and save of one configuration on backend name: the outputs, the gradients
 * and the values' digest after an AdamW step, into out (host). */
static int mlp_bits(const char *name, int threads, float *out, int64_t n_out)
{
    fr_backend be;
    if (!fr_test_backend_try(&be, "mlp_backends", name, threads)) return 0;
    fr_mlp m;
    const int64_t dim[4] = {5, 48, 33, 3}, R = 70;
    ck_assert_int_eq(fr_mlp_new(&m, &be, "net", 3, dim, FR_ACT_TANH, R), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&m, 3, 2, 0.5f), FR_OK);
    uint64_t seed = 99;
    float *x = malloc((size_t)(R * 5) * sizeof *x), *d = malloc((size_t)(R * 3) * sizeof *d);
    for (int64_t i = 0; i < R * 5; i++) x[i] = fr_test_uniform(&seed, -2.0f, 2.0f);
    for (int64_t i = 0; i < R * 3; i++) d[i] = fr_test_uniform(&seed, -1.0f, 1.0f);
    ck_assert_int_eq(fr_mlp_forward_host(&m, R, x, out), FR_OK);
    ck_assert_int_eq(fr_mlp_zero_grad(&m), FR_OK);
    ck_assert_int_eq(fr_mlp_backward_host(&m, R, d), FR_OK);
    ck_assert_int_eq(fr_d2h(&be, out + R * 3, m.arena_g, (size_t)m.arena_n * sizeof(float)), FR_OK);
    ck_assert(R * 3 + m.arena_n <= n_out);
    free(x);
    free(d);
    fr_mlp_free(&m);
    fr_backend_close(&be);
    return 1;
}

START_TEST(test_mlp_backends_bitwise)
{
    enum { NOUT = 20000 };
    float *ref = calloc(NOUT, sizeof *ref), *got = calloc(NOUT, sizeof *got);
    ck_assert(mlp_bits("ref", 1, ref, NOUT));
    int compared = 0;
    for (const char *const *b = fr_backend_names(); *b; b++) {
        if (strcmp(*b, "ref") == 0) continue;
        for (int th = 1; th <= 2; th++) {
            memset(got, 0, NOUT * sizeof *got);
            if (!mlp_bits(*b, th, got, NOUT)) continue;
            ck_assert_msg(memcmp(ref, got, NOUT * sizeof *ref) == 0, "mlp on %s (%d threads) differs from ref", *b, th);
            compared++;
        }
    }
    ck_assert_msg(compared > 0, "no backend beside ref was compared");
    free(ref);
    free(got);
}
END_TEST

/* ---- the collector ------------------------------------------------------------------------ */

/* A policy of constant action 0.5 and value V(obs) = obs[0] + 10·obs[1]: the bootstrap rows are
 * checkable by hand. */
static fr_status const_act(void *u, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    (void)u;
    (void)t;
    for (int64_t n = 0; n < N; n++) {
        action[n] = 0.5f;
        logp[n] = 0.0;
        value[n] = (double)obs[n * 2] + 10.0 * (double)obs[n * 2 + 1];
    }
    return FR_OK;
}

static fr_status const_value(void *u, int64_t R, const float *obs, double *value)
{
    (void)u;
    for (int64_t i = 0; i < R; i++) value[i] = (double)obs[i * 2] + 10.0 * (double)obs[i * 2 + 1];
    return FR_OK;
}

START_TEST(test_collect_truncation)
{
    fr_env env;
    ck_assert_int_eq(fr_env_create(&k_line, NULL, &env), FR_OK);
    fr_ctl_vec v;
    ck_assert_int_eq(fr_ctl_vec_new(&v, &env, 5, 3, 0), FR_OK);
    fr_ctl_block b;
    const int64_t T = 12, N = 3;
    ck_assert_int_eq(fr_ctl_block_new(&b, T, N, 2, 1), FR_OK);
    const fr_ctl_policy p = {const_act, const_value, NULL};
    const fr_ctl_collect_cfg c = {0, 0, 0.9, 0.95};
    ck_assert_int_eq(fr_ctl_collect(&v, NULL, NULL, &p, &c, &b), FR_OK);
    int n_trunc = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            const int64_t i = t * N + n;
            /* 5 steps an episode (nothing leaves |x| <= 2 in 5 steps of force 0.5): steps 4, 9 end */
            ck_assert_int_eq(b.end[i], (t % 5) == 4);
            ck_assert_int_eq(b.first[i], (t % 5) == 0);
            ck_assert_int_eq(b.term[i], 0);
            if (b.end[i]) {
                /* the truncation bootstrap: V of the final observation, not of the next episode's start */
                const double want = (double)b.fin_obs[i * 2] + 10.0 * (double)b.fin_obs[i * 2 + 1];
                ck_assert_msg(b.next_value[i] == want, "row %lld: %.17g vs %.17g", (long long)i, b.next_value[i], want);
                ck_assert(b.next_value[i] != b.value[i + N] || t + 1 == T);
                n_trunc++;
            } else if (t + 1 < T) {
                ck_assert(b.next_value[i] == b.value[i + N]);
            }
            ck_assert(b.reward[i] == b.raw_reward[i]);
        }
    ck_assert_int_eq(n_trunc, 2 * (int)N);
    ck_assert_int_eq(v.done_n, 2 * N);
    /* episodes were numbered in the order they started: N initial, then 2 N resets */
    ck_assert_int_eq(v.next_episode, 3 * N);
    /* the vector's state round-trips through a file and continues identically */
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_ctl_vec_save(&v, &f, "ctl.env"), FR_OK);
    fr_ctl_vec w;
    ck_assert_int_eq(fr_ctl_vec_new(&w, &env, 5, 3, 0), FR_OK);
    ck_assert_int_eq(fr_ctl_vec_load(&w, &f, "mem", "ctl.env"), FR_OK);
    fr_ctl_block b2;
    ck_assert_int_eq(fr_ctl_block_new(&b2, T, N, 2, 1), FR_OK);
    ck_assert_int_eq(fr_ctl_collect(&v, NULL, NULL, &p, &c, &b), FR_OK);
    ck_assert_int_eq(fr_ctl_collect(&w, NULL, NULL, &p, &c, &b2), FR_OK);
    ck_assert(memcmp(b.obs, b2.obs, (size_t)(T * N * 2) * sizeof(float)) == 0);
    ck_assert(memcmp(b.adv, b2.adv, (size_t)(T * N) * sizeof(double)) == 0);
    /* a missing tensor is one clear error */
    fr_st_file g;
    fr_st_init(&g);
    ck_assert_int_eq(fr_ctl_vec_load(&w, &g, "x.safetensors", "ctl.env"), FR_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "ctl.env.state"));
    fr_st_free(&f);
    fr_st_free(&g);
    fr_ctl_block_free(&b);
    fr_ctl_block_free(&b2);
    fr_ctl_vec_free(&v);
    fr_ctl_vec_free(&w);
    fr_env_free(&env);
}
END_TEST

/* ---- the flow policy and behaviour cloning ------------------------------------------------ */

START_TEST(test_flow_policy_by_hand)
{
    float emb[8];
    fr_flow_temb(0.5, emb);
    const double f[4] = {0.5, 1.0, 2.0, 4.0};
    for (int k = 0; k < 4; k++) {
        ck_assert_msg(fabs((double)emb[k] - cos(f[k])) < 1e-7 && fabs((double)emb[4 + k] - sin(f[k])) < 1e-7, "k %d", k);
    }
    /* a network whose output is its last bias b: v = 0.25·b everywhere, and 10 Euler steps over
     * t = 1 → 0 give x = ε − 0.25·b */
    fr_backend *be = fr_test_ref_be();
    fr_flow_policy p;
    ck_assert_int_eq(fr_flow_policy_new(&p, be, 2, 3, 8, 2, 4), FR_OK);
    ck_assert_int_eq(fr_dev_zero(be, p.net.arena_v, (size_t)p.net.arena_n * sizeof(float)), FR_OK);
    const float bias[3] = {1.0f, -2.0f, 0.5f};
    ck_assert_int_eq(fr_h2d(be, p.net.vals[2 * p.net.L - 1].data, bias, sizeof bias), FR_OK);
    const float obs[4] = {0.1f, 0.2f, 0.3f, 0.4f}, eps[6] = {0, 1, 2, 3, 4, 5};
    float act[6];
    ck_assert_int_eq(fr_flow_policy_sample(&p, 2, obs, eps, act), FR_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(fabs((double)act[i] - ((double)eps[i] - 0.25 * (double)bias[i % 3])) < 1e-6, "a[%d] = %g", i,
                      (double)act[i]);
    /* the CFM losses by hand: v = 0.25 b; mode u: mean (v − (ε − a))²; mode u_but_supervise_as_eps:
     * mean (ε − (x_t + (1 − t) v))² with x_t = t ε + (1 − t) a */
    const float a[3] = {0.5f, 0.25f, -1.0f}, e1[3] = {1.0f, -1.0f, 0.0f};
    const double t[1] = {0.25};
    double lu, le;
    ck_assert_int_eq(fr_flow_policy_cfm(&p, 1, obs, a, e1, t, FR_FLOW_LOSS_U, &lu, NULL), FR_OK);
    ck_assert_int_eq(fr_flow_policy_cfm(&p, 1, obs, a, e1, t, FR_FLOW_LOSS_U_AS_EPS, &le, NULL), FR_OK);
    double wu = 0.0, we = 0.0;
    for (int d = 0; d < 3; d++) {
        const double v = 0.25 * (double)bias[d], xt = 0.25 * (double)e1[d] + 0.75 * (double)a[d];
        wu += (v - ((double)e1[d] - (double)a[d])) * (v - ((double)e1[d] - (double)a[d])) / 3.0;
        we += ((double)e1[d] - (xt + 0.75 * v)) * ((double)e1[d] - (xt + 0.75 * v)) / 3.0;
    }
    ck_assert_msg(fabs(lu - wu) < 1e-6 && fabs(le - we) < 1e-6, "u %.9g vs %.9g, eps %.9g vs %.9g", lu, wu, le, we);
    /* mode u_but_supervise_as_eps is (1 − t)² times mode u */
    ck_assert(fabs(le - 0.5625 * lu) < 1e-6);
    fr_flow_policy_free(&p);
}
END_TEST

typedef struct {
    fr_flow_policy *p;
    fr_ddpm_policy *d;
    int mode;
    const float *obs, *a, *e;
    const double *t, *g;
    const int *ti;
} pol_fd;

/* Σ g_r·ℓ_r of the policy's losses (flow: mode's CFM losses; DDPM: ε losses). */
static double pol_fd_loss(void *u)
{
    pol_fd *c = u;
    double l[3], s = 0.0;
    if (c->p) ck_assert_int_eq(fr_flow_policy_cfm(c->p, 3, c->obs, c->a, c->e, c->t, (fr_flow_loss_mode)c->mode, l, NULL), FR_OK);
    else ck_assert_int_eq(fr_ddpm_policy_loss(c->d, 3, c->obs, c->a, c->e, c->ti, l, NULL), FR_OK);
    for (int r = 0; r < 3; r++) s += c->g[r] * l[r];
    return s;
}

static const float k_fd_obs[6] = {0.3f, -0.2f, 1.0f, 0.5f, -0.7f, 0.1f}, k_fd_act[6] = {0.5f, -0.5f, 1.0f, 0.2f, 0.0f, -1.0f};
static const float k_fd_eps[6] = {1.0f, 0.3f, -0.4f, 0.8f, -1.2f, 0.6f};
static const double k_fd_g[3] = {0.7, -0.4, 1.3};

START_TEST(test_flow_cfm_gradient_fd)
{
    fr_backend *be = fr_test_ref_be();
    for (int mode = 0; mode < 2; mode++) {
        fr_flow_policy p;
        ck_assert_int_eq(fr_flow_policy_new(&p, be, 2, 2, 6, 1, 3), FR_OK);
        ck_assert_int_eq(fr_mlp_init_params(&p.net, 5, 1, 1.0f), FR_OK);
        const double t[3] = {0.2, 0.55, 0.9};
        double l[3];
        ck_assert_int_eq(fr_mlp_zero_grad(&p.net), FR_OK);
        ck_assert_int_eq(fr_flow_policy_cfm(&p, 3, k_fd_obs, k_fd_act, k_fd_eps, t, (fr_flow_loss_mode)mode, l, k_fd_g), FR_OK);
        pol_fd c = {&p, NULL, mode, k_fd_obs, k_fd_act, k_fd_eps, t, k_fd_g, NULL};
        check_grads_fd(&p.net, pol_fd_loss, &c, mode ? "cfm u_but_supervise_as_eps" : "cfm u");
        fr_flow_policy_free(&p);
    }
}
END_TEST

static void last_loss(int64_t step, double loss, void *user)
{
    double *l = user;
    if (step == 100) l[0] = loss;
    l[1] = loss;
}

/* BC of a policy of kind on backend name into path; the losses at step 100 and at the end into l. */
static int bc_run(const char *name, fr_gen_kind kind, const char *path, double *l)
{
    fr_backend be;
    if (!fr_test_backend_try(&be, "bc", name, 2)) return 0;
    fr_demos d;
    fr_test_tiny_demos(&d);
    fr_gen_policy g;
    fr_rms rms;
    ck_assert_int_eq(fr_gen_policy_new(&g, kind, &be, 2, 2, 16, 2, kind == FR_GEN_FLOW ? 10 : 8, 32), FR_OK);
    ck_assert_int_eq(fr_rms_init(&rms, 2), FR_OK);
    const fr_bc_opts o = {.steps = 600, .batch = 32, .lr = 3e-3, .seed = 3, .action_scale = kind == FR_GEN_DDPM};
    ck_assert_msg(fr_bc_train(&g, &rms, &d, &o, last_loss, l) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_bc_save(path, &g, &rms, "line", "line (test)", &o), FR_OK);
    fr_gen_policy_free(&g);
    fr_rms_free(&rms);
    fr_demos_free(&d);
    fr_backend_close(&be);
    return 1;
}

START_TEST(test_bc_learns_and_backends_bitwise)
{
    for (int k = 0; k < 2; k++) {
        const fr_gen_kind kind = (fr_gen_kind)k;
        char dir[64], ref[128], got[128];
        fr_test_mkdtemp(dir, sizeof dir, "ctlbc");
        snprintf(ref, sizeof ref, "%s/ref.safetensors", dir);
        double l[2] = {NAN, NAN};
        ck_assert(bc_run("ref", kind, ref, l));
        /* 600 steps bring the loss of a linear map well under its value at step 100 */
        ck_assert_msg(l[1] < 0.8 * l[0], "%s: loss %.6g at step 100, %.6g at 600", fr_gen_kind_name(kind), l[0], l[1]);
        size_t nr, ng;
        void *br = fr_test_slurp(ref, &nr);
        for (const char *const *b = fr_backend_names(); *b; b++) {
            if (strcmp(*b, "ref") == 0) continue;
            snprintf(got, sizeof got, "%s/%s.safetensors", dir, *b);
            double lg[2];
            if (!bc_run(*b, kind, got, lg)) continue;
            void *bg = fr_test_slurp(got, &ng);
            ck_assert_msg(nr == ng && memcmp(br, bg, nr) == 0, "%s bc checkpoint on %s differs from ref",
                          fr_gen_kind_name(kind), *b);
            free(bg);
        }
        /* the checkpoint loads back: the same kind and widths, and the policy acts */
        fr_gen_policy g;
        fr_rms rms;
        char env[32];
        ck_assert_msg(fr_bc_load(ref, fr_test_ref_be(), 16, &g, &rms, env, sizeof env) == FR_OK, "%s", fr_last_error());
        ck_assert_str_eq(env, "line");
        ck_assert_int_eq(g.kind, kind);
        ck_assert_int_eq(g.O, 2);
        ck_assert_int_eq(g.act_scaled, kind == FR_GEN_DDPM);
        if (kind == FR_GEN_FLOW) {
            /* the learned map on a demonstration-like observation, from ε = 0: a ≈ (2 o0, −o1) */
            ck_assert_int_eq(g.flow.steps, 10);
            const float o_raw[2] = {0.5f, -0.5f};
            float o_n[2], eps[2] = {0.0f, 0.0f}, act[2];
            fr_ctl_obs_normalize(&rms, 1, o_raw, o_n);
            ck_assert_int_eq(fr_flow_policy_sample(&g.flow, 1, o_n, eps, act), FR_OK);
            ck_assert_msg(fabs((double)act[0] - 1.0) < 0.35 && fabs((double)act[1] - 0.5) < 0.35, "a = (%g, %g)",
                          (double)act[0], (double)act[1]);
        } else {
            ck_assert_int_eq(g.ddpm.T, 8);
            float o_n[2] = {0.1f, 0.2f}, act[2];
            ck_assert_int_eq(fr_gen_policy_act(&g, 1, o_n, 1, 0, 0, act), FR_OK);
            /* scaled back into the demonstrations' range (x̂0's clip keeps the chain in [−1, 1], up to
             * the last step's coefficient c_x0[0] ≈ 1) */
            ck_assert_int_eq(g.act_scaled, 1);
            for (int j = 0; j < 2; j++) {
                const double w = g.act_hi[j] - g.act_lo[j];
                ck_assert_msg(w > 1.0 && act[j] >= g.act_lo[j] - 1e-3 * w && act[j] <= g.act_hi[j] + 1e-3 * w,
                              "a[%d] = %g outside [%g, %g]", j, (double)act[j], g.act_lo[j], g.act_hi[j]);
            }
        }
        fr_gen_policy_free(&g);
        fr_rms_free(&rms);
        free(br);
        fr_test_rmtree(dir);
    }
    /* a file that is not a policy is one clear error */
    fr_gen_policy g;
    fr_rms rms;
    ck_assert_int_eq(fr_bc_load("/nonexistent/x.safetensors", fr_test_ref_be(), 4, &g, &rms, NULL, 0) != FR_OK, 1);
}
END_TEST

START_TEST(test_ddpm_policy_by_hand)
{
    /* SinusoidalPosEmb(16) of t = 3: sin then cos of 3·exp(−j·ln 10000 / 7) */
    float emb[16];
    fr_ddpm_temb(3, emb);
    for (int j = 0; j < 8; j++) {
        const double f = 3.0 * exp(-(double)j * log(10000.0) / 7.0);
        ck_assert_msg(fabs((double)emb[j] - sin(f)) < 1e-7 && fabs((double)emb[8 + j] - cos(f)) < 1e-7, "j %d", j);
    }
    fr_backend *be = fr_test_ref_be();
    fr_ddpm_policy p;
    ck_assert_int_eq(fr_ddpm_policy_new(&p, be, 2, 2, 8, 1, 20, 4), FR_OK);
    /* DPPO's tables at the last step (ᾱ_prev = 1): the posterior mean is x̂0, the std 0; c_x0 =
     * β_0/(1 − ᾱ_0) is 1 up to the float32 rounding of ᾱ_0 = 1 − β_0 (β_0 ~ 1e-4: ~1e-4 relative) */
    ck_assert_msg(p.c_xt[0] == 0.0 && fabs(p.c_x0[0] - 1.0) < 1e-3 && p.std[0] == 0.0, "c_x0[0] %.9g", p.c_x0[0]);
    for (int t = 1; t < 20; t++) ck_assert(p.std[t] >= 1e-3 && p.c_x0[t] > 0.0 && p.c_xt[t] > 0.0);
    /* a zero network predicts ε̂ = 0: the loss is mean ε², and the chain ends at clip(x̂0, ±1) */
    ck_assert_int_eq(fr_dev_zero(be, p.net.arena_v, (size_t)p.net.arena_n * sizeof(float)), FR_OK);
    const float obs[2] = {0.3f, -0.3f}, a[2] = {0.5f, -0.25f}, e[2] = {1.0f, -2.0f};
    const int t1[1] = {7};
    double l;
    ck_assert_int_eq(fr_ddpm_policy_loss(&p, 1, obs, a, e, t1, &l, NULL), FR_OK);
    ck_assert(fabs(l - 2.5) < 1e-12);
    float z[21 * 2], act[2];
    for (int i = 0; i < 42; i++) z[i] = 0.0f;
    z[40] = 50.0f; /* x_T far out: x̂0 clips to +1 at every step, the action is +1 */
    z[41] = -50.0f;
    ck_assert_int_eq(fr_ddpm_policy_sample(&p, 1, obs, z, act), FR_OK);
    ck_assert_msg(fabs((double)act[0] - p.c_x0[0]) < 1e-6 && fabs((double)act[1] + p.c_x0[0]) < 1e-6, "a = (%g, %g)",
                  (double)act[0], (double)act[1]);
    fr_ddpm_policy_free(&p);
    /* the loss's gradient by finite differences */
    ck_assert_int_eq(fr_ddpm_policy_new(&p, be, 2, 2, 6, 1, 20, 3), FR_OK);
    ck_assert_int_eq(fr_mlp_init_params(&p.net, 5, 1, 1.0f), FR_OK);
    const int t3[3] = {0, 9, 19};
    double l3[3];
    ck_assert_int_eq(fr_mlp_zero_grad(&p.net), FR_OK);
    ck_assert_int_eq(fr_ddpm_policy_loss(&p, 3, k_fd_obs, k_fd_act, k_fd_eps, t3, l3, k_fd_g), FR_OK);
    pol_fd c = {NULL, &p, 0, k_fd_obs, k_fd_act, k_fd_eps, NULL, k_fd_g, t3};
    check_grads_fd(&p.net, pol_fd_loss, &c, "ddpm");
    fr_ddpm_policy_free(&p);
}
END_TEST

/* ---- ppo-gaussian on the run loop over "line" ---------------------------------------------- */

extern const fr_algo fr_algo_ppo_gaussian;

static void line_opts(fr_rt_opts *o, const char *run, int64_t epochs)
{
    const fr_algo *a = &fr_algo_ppo_gaussian;
    memset(o, 0, sizeof *o);
    o->a = a;
    o->ao = calloc(1, a->opts_size);
    o->eo = calloc(1, 1);
    o->ro.env_class = &k_line;
    o->ro.env_opts = o->eo;
    ck_assert_int_eq(fr_run_opts_defaults(NULL, &o->ro, a, o->ao), FR_OK);
    a->tiny(&o->ro, o->ao);
    fr_rt_path(o->ro.run.out, sizeof o->ro.run.out, run);
    o->ro.run.epochs = epochs;
    o->ro.run.seed = 11;
}

typedef struct {
    int updates, first_ok, first_seen;
} ratio_watch;

static void watch_ratio(const fr_run_update_event *ev, void *user)
{
    ratio_watch *w = user;
    w->updates++;
    if (ev->update != 0) return;
    w->first_seen++;
    int ok = ev->n_ratio > 0;
    for (int64_t i = 0; i < ev->n_ratio; i++) ok = ok && ev->ratio[i] == 1.0f;
    w->first_ok += ok;
}

START_TEST(test_ppo_ratio_one_and_backends)
{
    fr_rt_opts o;
    line_opts(&o, "ppo-line-ref", 3);
    ratio_watch w = {0, 0, 0};
    fr_run_cb cb = {NULL, watch_ratio, NULL, &w, NULL};
    ck_assert_msg(fr_rt_run(&o, "ref", 1, &cb, NULL) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(w.first_seen, 3);
    ck_assert_msg(w.first_ok == 3, "the first minibatch's ratio was not exactly 1 in %d of 3 epochs", 3 - w.first_ok);
    ck_assert_int_eq(w.updates, 3 * 2 * 4); /* 3 epochs x 2 passes x 16/4 minibatches */
    for (const char *const *b = fr_backend_names(); *b; b++) {
        if (strcmp(*b, "ref") == 0) continue;
        fr_backend be;
        if (!fr_test_backend_try(&be, "ppo_line", *b, 1)) continue;
        fr_backend_close(&be);
        char run[64];
        snprintf(run, sizeof run, "ppo-line-%s", *b);
        fr_rt_opts p = o;
        fr_rt_path(p.ro.run.out, sizeof p.ro.run.out, run);
        ck_assert_msg(fr_rt_run(&p, *b, 2, NULL, NULL) == FR_OK, "%s: %s", *b, fr_last_error());
        fr_rt_assert_same_records("ppo-line-ref", run, 3);
    }
    free(o.ao);
    free(o.eo);
}
END_TEST

/* ppo-gaussian on an environment program over the pipe (tests/env_progs/mock_env.py: obs 3,
 * actions 2, 5 steps): 4 epochs in one go, and 2 + a resume to 4 with another backend, the same
 * audit records; config.json keeps the program. */
START_TEST(test_ppo_over_pipe_resume)
{
    char out[16384], prog[600], whole[400], cut[400], cfg[512];
    snprintf(prog, sizeof prog, "cmd:%s %s/tests/env_progs/mock_env.py ok", fr_test_python(), fr_test_src());
    fr_rt_path(whole, sizeof whole, "pipe-whole");
    fr_rt_path(cut, sizeof cut, "pipe-cut");
    const char *common = "--n-envs 2 --n-steps 8 --minibatch-size 4 --update-epochs 2 --hidden-dim 8 --n-hidden 1 "
                         "--eval-episodes 2 --eval-every 2 --checkpoint-every 1 --seed 5";
    int rc = fr_rt_cli(out, sizeof out, "train --algo ppo-gaussian --env '%s' --out %s --epochs 4 %s --backend ref", prog,
                       whole, common);
    ck_assert_msg(rc == 0, "whole run exited %d:\n%.3000s", rc, out);
    ck_assert_msg(strstr(out, "eval after") != NULL, "no evaluation:\n%.2000s", out);
    rc = fr_rt_cli(out, sizeof out, "train --algo ppo-gaussian --env '%s' --out %s --epochs 2 %s --backend ref", prog,
                   cut, common);
    ck_assert_msg(rc == 0, "first half exited %d:\n%.3000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 4 --backend opt --threads 2", cut);
    ck_assert_msg(rc == 0, "resume exited %d:\n%.3000s", rc, out);
    fr_rt_assert_same_records("pipe-whole", "pipe-cut", 4);
    size_t n;
    snprintf(cfg, sizeof cfg, "%s/config.json", cut);
    char *text = fr_test_slurp(cfg, &n);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "mock_env.py ok") != NULL, "config.json lost the program:\n%.2000s", text);
    free(text);
    /* a program whose episodes a fresh process does not replay (mock mode process: the process id
     * in the reset's observation): the resume fails naming the episode, nothing trains */
    snprintf(prog, sizeof prog, "cmd:%s %s/tests/env_progs/mock_env.py process", fr_test_python(), fr_test_src());
    fr_rt_path(cut, sizeof cut, "pipe-process");
    rc = fr_rt_cli(out, sizeof out, "train --algo ppo-gaussian --env '%s' --out %s --epochs 1 %s --backend ref", prog, cut,
                   common);
    ck_assert_msg(rc == 0, "process mode exited %d:\n%.3000s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 2 --backend ref", cut);
    ck_assert_msg(rc != 0 && strstr(out, "replayed to step") != NULL &&
                      strstr(out, "is not a function of (seed, episode, actions)") != NULL,
                  "resume of a program that does not replay: exit %d:\n%.3000s", rc, out);
}
END_TEST

/* flowrl bc: one line and exit 2 for a usage error, exit 1 for a runtime failure. */
START_TEST(test_bc_cli_errors)
{
    char out[4096];
    static const char *const usage[] = {"bc --demos x.demos", "bc --demos x --out y --policy gan", "bc --steps 0 --demos x --out y"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        int rc = fr_test_run_cli(usage[i], out, sizeof out);
        ck_assert_msg(rc == 2 && strncmp(out, "flowrl bc: ", 11) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                      "'%s' exited %d: %s", usage[i], rc, out);
    }
    int rc = fr_test_run_cli("bc --demos /nonexistent/d.demos --out /tmp/x.safetensors", out, sizeof out);
    ck_assert_msg(rc == 1 && strstr(out, "/nonexistent/d.demos") != NULL && strchr(out, '\n') == out + strlen(out) - 1,
                  "exit %d: %s", rc, out);
}
END_TEST

/* The audit log of `flowrl bc` (flowrl/audit_train.h) for each policy kind: ref = opt (3 threads)
 * record for record; a run killed during step 4 of 6 after its --checkpoint-every 2 checkpoint,
 * resumed, equals the uninterrupted log and writes its checkpoint bytes; another seed differs
 * from step 1's loss on; a resume with another lr names the key. */
static const char *const k_bc_kinds[] = {"--policy flow --flow-steps 3", "--policy ddpm --denoising-steps 4",
                                         "--policy meanflow"};

START_TEST(test_bc_audit_resume)
{
    char dir[128], bc[512], out[8192], a[256], c[256], x[256], y[256];
    fr_test_mkdtemp(dir, sizeof dir, "bc-audit");
    int rc = fr_rt_cli(out, sizeof out, "expert --env pendulum --expert pendulum --episodes 1 --out %s/p.demos", dir);
    ck_assert_msg(rc == 0, "expert exited %d: %s", rc, out);
    snprintf(bc, sizeof bc, "bc --demos %s/p.demos %s --steps 6 --batch-size 16 --hidden-dim 8 --n-hidden 1 "
             "--eval-episodes 0", dir, k_bc_kinds[_i]);
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/a.safetensors --backend ref", bc, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/b.safetensors --backend opt --threads 3", bc, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(a, sizeof a, "%s/a.audit.log", dir);
    snprintf(c, sizeof c, "%s/b.audit.log", dir);
    fr_test_audit_identical(a, c, 6);
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/k.safetensors --steps 2 --checkpoint-every 2", bc, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(c, sizeof c, "%s/k.audit.log", dir);
    fr_test_audit_killed(a, c, 3);
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/k.safetensors --resume %s/k.safetensors --backend opt --threads 3", bc,
                   dir, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    fr_test_audit_identical(a, c, 6);
    snprintf(x, sizeof x, "%s/a.safetensors", dir);
    snprintf(y, sizeof y, "%s/k.safetensors", dir);
    fr_test_assert_same_bytes(x, y);
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/e.safetensors --seed 2", bc, dir);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    snprintf(c, sizeof c, "%s/e.audit.log", dir);
    fr_test_audit_differs_at(a, c, 1, "loss");
    rc = fr_rt_cli(out, sizeof out, "%s --out %s/f.safetensors --resume %s/e.safetensors --steps 8 --seed 2 --lr 0.5", bc,
                   dir, dir);
    ck_assert_msg(rc == 1 && strstr(out, "bc_lr") != NULL, "exit %d: %s", rc, out);
    fr_test_rmtree(dir);
}
END_TEST

/* Every control algorithm on Gymnasium's Pendulum-v1 through the pipe (tools/gym_env.py), the
 * whole pipeline in miniature: the pendulum expert's demonstrations of Pendulum-v1 (`flowrl expert
 * --env cmd:...`), behaviour cloning of the algorithm's policy from them, then the fine-tuning on
 * Pendulum-v1 for 2 epochs on ref, and for 1 on ref resumed to 2 on opt (2 threads): the same
 * audit records (resumable, ref = opt). ppo-gaussian trains from scratch. Tiny: 2 environments x 4
 * steps, networks 8 x 1, one evaluation episode (200 steps over the pipe). */
static const struct {
    const char *algo, *bc; /* bc: the policy `flowrl bc` clones (NULL: none) */
    const char *opts;
} k_gym_algos[] = {
    {"ppo-gaussian", NULL, "--n-steps 4 --minibatch-size 4 --update-epochs 2 --hidden-dim 8 --n-hidden 1"},
    {"dppo", "--policy ddpm --denoising-steps 4",
     "--n-steps 4 --minibatch-size 8 --update-epochs 2 --ft-denoising-steps 2 --hidden-dim 8 --n-hidden 1"},
    {"fpo", "--policy flow --flow-steps 3",
     "--n-steps 4 --minibatch-size 4 --update-epochs 2 --n-samples 2 --critic-hidden-dim 8 --critic-n-hidden 1"},
    {"reinflow", "--policy flow --flow-steps 3", "--n-steps 4 --minibatch-size 4 --update-epochs 2 --hidden-dim 8 --n-hidden 1"},
};

START_TEST(test_algo_on_gym_pendulum)
{
    const char *algo = k_gym_algos[_i].algo, *bc = k_gym_algos[_i].bc, *opts = k_gym_algos[_i].opts;
    char env[1200], demos[400], pol[400], whole[400], cut[400], polopt[500] = "", out[16384];
    snprintf(env, sizeof env, "cmd:'%s' '%s/tools/gym_env.py' Pendulum-v1", fr_test_gym_python(), fr_test_src());
    fr_rt_path(whole, sizeof whole, "gym-whole");
    fr_rt_path(cut, sizeof cut, "gym-cut");
    if (bc) {
        fr_rt_path(demos, sizeof demos, "gym.demos");
        fr_rt_path(pol, sizeof pol, "gym-bc.safetensors");
        int rc = fr_rt_cli(out, sizeof out, "expert --env \"%s\" --expert pendulum --episodes 1 --out %s", env, demos);
        ck_assert_msg(rc == 0, "%s: expert exited %d:\n%.3000s", algo, rc, out);
        rc = fr_rt_cli(out, sizeof out, "bc --demos %s %s --steps 20 --batch-size 32 --hidden-dim 8 --n-hidden 1 "
                       "--eval-episodes 0 --backend ref --out %s", demos, bc, pol);
        ck_assert_msg(rc == 0, "%s: bc exited %d:\n%.3000s", algo, rc, out);
        snprintf(polopt, sizeof polopt, "--policy %s", pol);
    }
    const char *fmt = "train --algo %s --env \"%s\" %s --n-envs 2 %s --eval-episodes 1 --eval-every 0 "
                      "--checkpoint-every 1 --seed 3 --out %s --epochs %d --backend ref";
    int rc = fr_rt_cli(out, sizeof out, fmt, algo, env, polopt, opts, whole, 2);
    ck_assert_msg(rc == 0, "%s: whole run exited %d:\n%.3000s", algo, rc, out);
    ck_assert_msg(strstr(out, "eval after") != NULL && strstr(out, "(obs 3, actions 1, T=200)") != NULL, "%s:\n%.3000s", algo, out);
    rc = fr_rt_cli(out, sizeof out, fmt, algo, env, polopt, opts, cut, 1);
    ck_assert_msg(rc == 0, "%s: first half exited %d:\n%.3000s", algo, rc, out);
    rc = fr_rt_cli(out, sizeof out, "train --resume %s --epochs 2 --backend opt --threads 2", cut);
    ck_assert_msg(rc == 0, "%s: resume exited %d:\n%.3000s", algo, rc, out);
    fr_rt_assert_same_records("gym-whole", "gym-cut", 2);
}
END_TEST

Suite *suite_ctl(void)
{
    Suite *s = suite_create("ctl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gae_by_hand);
    tcase_add_test(tc, test_reward_scaler_by_hand);
    tcase_add_test(tc, test_obs_normalizer_by_hand);
    tcase_add_test(tc, test_ppo_clip_gradient);
    tcase_add_test(tc, test_mlp_gradient_fd);
    tcase_add_test(tc, test_mlp_backends_bitwise);
    tcase_add_test(tc, test_collect_truncation);
    tcase_add_test(tc, test_flow_policy_by_hand);
    tcase_add_test(tc, test_flow_cfm_gradient_fd);
    tcase_add_test(tc, test_ddpm_policy_by_hand);
    suite_add_tcase(s, tc);
    /* behaviour cloning trains to a success rate on three backends: minutes under ASan */
    TCase *tb = tcase_create("bc");
    tcase_set_timeout(tb, 300);
    tcase_add_test(tb, test_bc_learns_and_backends_bitwise);
    suite_add_tcase(s, tb);
    TCase *tr = tcase_create("run");
    tcase_add_checked_fixture(tr, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_ppo_ratio_one_and_backends);
    tcase_add_test(tr, test_ppo_over_pipe_resume);
    tcase_add_test(tr, test_bc_cli_errors);
    tcase_add_loop_test(tr, test_bc_audit_resume, 0, (int)(sizeof k_bc_kinds / sizeof k_bc_kinds[0]));
    suite_add_tcase(s, tr);
    TCase *tg = tcase_create("gym");
    tcase_add_checked_fixture(tg, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(tg, 120);
    tcase_add_loop_test(tg, test_algo_on_gym_pendulum, 0, (int)(sizeof k_gym_algos / sizeof k_gym_algos[0]));
    suite_add_tcase(s, tg);
    return s;
}
