/* The control environments (flowrl/env_ctl.h, docs/envs.md §4-§6): float64 sin/cos against
 * MPFR, the dynamics by hand (bitwise), determinism of resets and rollouts, the scripted
 * experts' success, demonstration files (round trip, corruption), `flowrl expert`, environment
 * programs over the pipe (a mock program for every failure: tests/env_progs/mock_env.py) and
 * Gymnasium's Pendulum-v1 against the built-in pendulum: through the pipe (tools/gym_env.py)
 * and step by step in the Python peer test (tests/gym_pendulum_peer.py).
 *
 * gymnasium is a test dependency: ./configure --install-deps installs it from PyPI into the
 * peer venv .venv-peers/ (FLOWRL_GYM_PYTHON overrides the interpreter); without it the two
 * Gymnasium tests FAIL, they do not skip. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flowrl/ctl.h"
#include "flowrl/demos.h"
#include "flowrl/env_ctl.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* An instance of class c at its defaults, after tweak(opts) when given. */
static void env_new(fr_env *e, const fr_env_class *c, void (*tweak)(void *), void **opts_out)
{
    void *o = calloc(1, c->opts_size);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(fr_env_defaults(c, o), FR_OK);
    if (tweak) tweak(o);
    ck_assert_msg(fr_env_create(c, o, e) == FR_OK, "%s", fr_last_error());
    if (opts_out) *opts_out = o;
    else free(o);
}

static void assert_has(const char *s, const char *part)
{
    ck_assert_msg(strstr(s, part) != NULL, "expected '%s' in: %s", part, s);
}

/* No child of this process is left, running or zombie. */
static void assert_no_child(void)
{
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    ck_assert_msg(r == -1 && errno == ECHILD, "a child is left: waitpid(-1) = %d", (int)r);
}

/* Episodes first .. first + n − 1 of class c's own expert at its defaults under seed, with the
 * metadata a file needs. */
static void expert_run(const fr_env_class *c, uint32_t seed, uint32_t first, int64_t n, fr_demos *d)
{
    fr_env e;
    void *o;
    env_new(&e, c, NULL, &o);
    const fr_ctl_expert *x;
    ck_assert_int_eq(fr_ctl_expert_find(c->name, &x), FR_OK);
    fr_ctl_expert_ctx ctx = {x, seed, o, 0.0};
    ck_assert_int_eq(fr_ctl_rollouts(&e, seed, first, n, x->act, &ctx, d), FR_OK);
    snprintf(d->env, sizeof d->env, "%s", c->name);
    snprintf(d->env_desc, sizeof d->env_desc, "%s", e.desc);
    snprintf(d->policy, sizeof d->policy, "expert:%s", c->name);
    d->seed = seed;
    d->env_options = fr_env_options_json(c, o);
    fr_env_free(&e);
    free(o);
}

/* ---- float64 sin / cos -------------------------------------------------------------------- */

/* |y − v| in ulps of the exact value v's binade (tests/test_detmath.c's convention, float64). */
static double ulp_err(double y, mpfr_srcptr v)
{
    if (mpfr_zero_p(v)) return y == 0.0 ? 0.0 : 1e30;
    long e = (long)mpfr_get_exp(v) - 1;
    if (e < -1022) e = -1022;
    mpfr_t d;
    mpfr_init2(d, 400);
    mpfr_set_d(d, y, MPFR_RNDN);
    mpfr_sub(d, d, v, MPFR_RNDN);
    mpfr_mul_2si(d, d, 52 - e, MPFR_RNDN);
    double r = fabs(mpfr_get_d(d, MPFR_RNDN));
    mpfr_clear(d);
    return r;
}

/* Uniform points in the ranges the environments use (|θ| up to a long episode's 4·10^4, the
 * goal angles), near multiples of π/2 (cancellation in the reduction) and up to the three-part
 * reduction's limit 2^20·π/2: every result within 1 ulp of the exact value. Beyond it (fmod by a
 * two-part 2π) within 1e-13 absolute. */
START_TEST(test_sincos_mpfr)
{
    mpfr_t x, s, c;
    mpfr_inits2(300, x, s, c, (mpfr_ptr)0);
    double worst = 0.0, at = 0.0;
    const double ranges[][2] = {{-0.8, 0.8}, {-8.0, 8.0}, {-130.0, 130.0}, {-4e4, 4e4}, {1.6e6, 1647099.0}};
    for (int r = 0; r < 5; r++)
        for (uint32_t i = 0; i < 20000; i++) {
            const double u = fr_ctl_uniform(9, i, (uint32_t)r, 0);
            double v = ranges[r][0] + (ranges[r][1] - ranges[r][0]) * u;
            if (r == 2 && i % 4 == 0) v = (double)(int)(i / 4 % 160 - 80) * 1.5707963267948966 + (u - 0.5) * 1e-9;
            double ys, yc;
            fr_ctl_sincos(v, &ys, &yc);
            mpfr_set_d(x, v, MPFR_RNDN);
            mpfr_sin_cos(s, c, x, MPFR_RNDN);
            const double es = ulp_err(ys, s), ec = ulp_err(yc, c);
            if (es > worst) worst = es, at = v;
            if (ec > worst) worst = ec, at = v;
        }
    double far = 0.0;
    for (uint32_t i = 0; i < 1000; i++) {
        const double v = 1.7e6 + 1e9 * fr_ctl_uniform(9, i, 7, 0);
        double ys, yc;
        fr_ctl_sincos(v, &ys, &yc);
        mpfr_set_d(x, v, MPFR_RNDN);
        mpfr_sin_cos(s, c, x, MPFR_RNDN);
        far = fmax(far, fmax(fabs(ys - mpfr_get_d(s, MPFR_RNDN)), fabs(yc - mpfr_get_d(c, MPFR_RNDN))));
    }
    ck_assert_msg(far < 1e-13, "beyond 2^20 pi/2: %g", far);
    mpfr_clears(x, s, c, (mpfr_ptr)0);
    printf("env_ctl: fr_ctl_sincos: max error %.3f ulp (at x = %.17g), 100000 points; beyond 2^20 pi/2 %.3g "
           "absolute\n", worst, at, far);
    ck_assert_msg(worst < 1.0, "max error %.3f ulp at %.17g", worst, at);
    double ys, yc;
    fr_ctl_sincos(NAN, &ys, &yc);
    ck_assert(isnan(ys) && isnan(yc));
    fr_ctl_sincos(0.0, &ys, &yc);
    ck_assert(ys == 0.0 && yc == 1.0);
}
END_TEST

/* ---- the dynamics by hand ----------------------------------------------------------------- */

/* np.remainder(x + π, 2π) − π at the edges: both ±π map to −π, the result is in [−π, π). */
START_TEST(test_angle_normalize)
{
    const double pi = 3.141592653589793;
    ck_assert(fr_pendulum_angle_normalize(0.0) == 0.0);
    ck_assert(fr_pendulum_angle_normalize(pi) == -pi);
    ck_assert(fr_pendulum_angle_normalize(-pi) == -pi);
    ck_assert(fr_pendulum_angle_normalize(2.0 * pi) == fmod(3.0 * pi, 2.0 * pi) - pi);
    ck_assert(fr_pendulum_angle_normalize(-0.5) == fmod(-0.5 + pi, 2.0 * pi) - pi);
    ck_assert(fr_pendulum_angle_normalize(-4.0) == (fmod(-4.0 + pi, 2.0 * pi) + 2.0 * pi) - pi);
    for (int i = -500; i <= 500; i++) {
        const double a = fr_pendulum_angle_normalize(i * 0.37);
        ck_assert(a >= -pi && a < pi);
    }
}
END_TEST

/* Pendulum-v1's step written out (env_pendulum.c's header): bitwise, torque and speed clipped. */
START_TEST(test_pendulum_by_hand)
{
    fr_env e;
    env_new(&e, &fr_env_pendulum, NULL, NULL);
    ck_assert_int_eq(e.obs_dim, 3);
    ck_assert_int_eq(e.action_dim, 1);
    ck_assert_int_eq(e.max_steps, 200);
    double st[2];
    float obs[3];
    ck_assert_int_eq(e.ctl->reset(&e, 3, 5, st, obs), FR_OK);
    ck_assert(fabs(st[0]) <= 3.141592653589793 && fabs(st[1]) <= 1.0);
    const float actions[] = {3.5f, -0.7f, -2.5f, 1.25f};
    for (int k = 0; k < 4; k++) {
        if (k == 3) st[1] = 7.95; /* past the speed limit after the step */
        const double th = st[0], w = st[1];
        const float uf = actions[k] > 2.0f ? 2.0f : actions[k] < -2.0f ? -2.0f : actions[k];
        const double u = uf, an = fr_pendulum_angle_normalize(th);
        double s, c;
        fr_ctl_sincos(th, &s, &c);
        double w2 = w + (15.0 * s + 3.0 * u) * 0.05;
        w2 = w2 > 8.0 ? 8.0 : w2 < -8.0 ? -8.0 : w2;
        const double th2 = th + w2 * 0.05, want_r = -((an * an + 0.1 * (w * w)) + 0.001 * (u * u));
        double r;
        int done = 1;
        ck_assert_int_eq(e.ctl->step(&e, st, &actions[k], obs, &r, &done), FR_OK);
        ck_assert_msg(st[0] == th2 && st[1] == w2 && r == want_r && done == 0, "step %d", k);
        if (k == 3) ck_assert(st[1] == 8.0);
        fr_ctl_sincos(th2, &s, &c);
        ck_assert(obs[0] == (float)c && obs[1] == (float)s && obs[2] == (float)w2);
    }
    const float bad = NAN;
    double r;
    int done;
    ck_assert_int_eq(e.ctl->step(&e, st, &bad, obs, &r, &done), FR_ERR_NUMERIC);
    assert_has(fr_last_error(), "pendulum: action nan is not finite");
    fr_env_free(&e);
}
END_TEST

/* nav2d: semi-implicit Euler, the walls, a goal reached (+1, done), the step cost. */
START_TEST(test_nav2d_by_hand)
{
    fr_env e;
    void *ov;
    env_new(&e, &fr_env_nav2d, NULL, &ov);
    const fr_nav2d_opts *o = ov;
    double st[4] = {0.0, 0.0, 0.0, 0.0}, r;
    float obs[4], a[2] = {1.0f, -0.5f};
    int done = 1;
    ck_assert_int_eq(e.ctl->step(&e, st, a, obs, &r, &done), FR_OK);
    const double vx = 0.0 + 0.1 * (1.5 * 1.0 - 2.0 * 0.0), vy = 0.1 * (1.5 * -0.5);
    ck_assert(st[2] == vx && st[3] == vy && st[0] == 0.1 * vx && st[1] == 0.1 * vy);
    ck_assert(r == -0.01 && done == 0);
    ck_assert(obs[0] == (float)st[0] && obs[3] == (float)st[3]);
    /* the action is clipped to [-1, 1]; a wall clamps the position and stops that velocity */
    double w[4] = {0.99, 0.0, 1.0, 0.5};
    a[0] = 7.0f;
    a[1] = 0.0f;
    ck_assert_int_eq(e.ctl->step(&e, w, a, obs, &r, &done), FR_OK);
    ck_assert(w[0] == 1.0 && w[2] == 0.0);
    ck_assert(w[3] == 0.5 + 0.1 * (0.0 - 2.0 * 0.5) && w[1] == 0.1 * w[3]);
    /* goal k = 2 at 45° + 180°: reached from a state just outside, at rest, pushed toward it */
    double g[2];
    fr_nav2d_goal(o, 2, g);
    ck_assert(fabs(g[0] + 0.7 * 0.7071067811865476) < 1e-15 && fabs(g[1] + 0.7 * 0.7071067811865476) < 1e-15);
    double s2[4] = {g[0] + 0.105, g[1], -0.2, 0.0};
    a[0] = -1.0f;
    ck_assert_int_eq(e.ctl->step(&e, s2, a, obs, &r, &done), FR_OK);
    ck_assert(done == 1 && r == 1.0 && e.ctl->success(&e, s2) == 1);
    a[1] = INFINITY;
    ck_assert_int_eq(e.ctl->step(&e, s2, a, obs, &r, &done), FR_ERR_NUMERIC);
    fr_env_free(&e);
    free(ov);
    /* a start inside a goal is refused, naming the options */
    void *bad = calloc(1, sizeof(fr_nav2d_opts));
    fr_env_defaults(&fr_env_nav2d, bad);
    ((fr_nav2d_opts *)bad)->success_radius = 0.5;
    ((fr_nav2d_opts *)bad)->goal_radius = 0.3;
    ck_assert_int_eq(fr_env_create(&fr_env_nav2d, bad, &e), FR_ERR_ARG);
    assert_has(fr_last_error(), "--goal-radius");
    free(bad);
}
END_TEST

/* ---- determinism -------------------------------------------------------------------------- */

static int same_demos(const fr_demos *a, const fr_demos *b)
{
    return a->N == b->N && a->E == b->E && !memcmp(a->obs, b->obs, (size_t)a->N * a->obs_dim * 4) &&
           !memcmp(a->action, b->action, (size_t)a->N * a->action_dim * 4) && !memcmp(a->reward, b->reward, (size_t)a->N * 8) &&
           !memcmp(a->done, b->done, (size_t)a->N) && !memcmp(a->episode_start, b->episode_start, (size_t)(a->E + 1) * 8) &&
           (!a->state_dim || !memcmp(a->state, b->state, (size_t)a->N * a->state_dim * 8));
}

/* Resets are functions of (seed, episode); whole rollouts repeat bit for bit; an episode is the
 * same whether it is rolled out alone or in a batch. */
START_TEST(test_determinism)
{
    const fr_env_class *cls[] = {&fr_env_nav2d, &fr_env_pendulum};
    for (int c = 0; c < 2; c++) {
        fr_env e;
        void *o;
        env_new(&e, cls[c], NULL, &o);
        double s1[4], s2[4];
        float o1[4], o2[4];
        ck_assert_int_eq(e.ctl->reset(&e, 11, 7, s1, o1), FR_OK);
        ck_assert_int_eq(e.ctl->reset(&e, 11, 7, s2, o2), FR_OK);
        ck_assert(!memcmp(s1, s2, (size_t)e.state_dim * 8));
        ck_assert_int_eq(e.ctl->reset(&e, 11, 8, s2, o2), FR_OK);
        ck_assert(memcmp(s1, s2, (size_t)e.state_dim * 8) != 0);
        ck_assert_int_eq(e.ctl->reset(&e, 12, 7, s2, o2), FR_OK);
        ck_assert(memcmp(s1, s2, (size_t)e.state_dim * 8) != 0);
        const fr_ctl_expert *x;
        ck_assert_int_eq(fr_ctl_expert_find(cls[c]->name, &x), FR_OK);
        fr_ctl_expert_ctx ctx = {x, 11, o, 0.0};
        fr_demos a, b, one;
        ck_assert_int_eq(fr_ctl_rollouts(&e, 11, 0, 6, x->act, &ctx, &a), FR_OK);
        ck_assert_int_eq(fr_ctl_rollouts(&e, 11, 0, 6, x->act, &ctx, &b), FR_OK);
        ck_assert(same_demos(&a, &b));
        ck_assert_int_eq(fr_ctl_rollouts(&e, 11, 4, 1, x->act, &ctx, &one), FR_OK);
        const int64_t s0 = a.episode_start[4], n4 = a.episode_start[5] - s0;
        ck_assert(one.N == n4 && one.episode[0] == 4);
        ck_assert(!memcmp(one.obs, a.obs + s0 * a.obs_dim, (size_t)n4 * a.obs_dim * 4));
        ck_assert(!memcmp(one.reward, a.reward + s0, (size_t)n4 * 8));
        fr_demos_free(&a);
        fr_demos_free(&b);
        fr_demos_free(&one);
        fr_env_free(&e);
        free(o);
    }
}
END_TEST

/* ---- the experts -------------------------------------------------------------------------- */

/* nav2d's expert reaches a goal in every episode and picks every goal often (multi-modal): its
 * first actions average to far less than their size, which is what a Gaussian policy fitted to
 * them would take. The pendulum expert swings up and balances. */
START_TEST(test_experts)
{
    fr_demos d;
    expert_run(&fr_env_nav2d, 5, 0, 200, &d);
    double ret, sr, len;
    fr_demos_summary(&d, &ret, NULL, &len, &sr);
    printf("env_ctl: nav2d expert: 200 episodes, success %.3f, return %.4f, length %.1f\n", sr, ret, len);
    ck_assert_msg(sr == 1.0, "success %g", sr);
    int per_goal[4] = {0};
    double mean[2] = {0, 0}, size = 0;
    for (int64_t ep = 0; ep < d.E; ep++) {
        const float *p = d.final_obs + ep * 4;
        per_goal[(p[0] < 0) * 2 + (p[1] < 0)]++;
        const float *a0 = d.action + d.episode_start[ep] * 2;
        mean[0] += a0[0] / 200.0;
        mean[1] += a0[1] / 200.0;
        size += hypot(a0[0], a0[1]) / 200.0;
    }
    printf("env_ctl: nav2d expert goals %d %d %d %d; first action: |mean| %.3f, mean |a| %.3f\n", per_goal[0],
           per_goal[1], per_goal[2], per_goal[3], hypot(mean[0], mean[1]), size);
    for (int k = 0; k < 4; k++) ck_assert_msg(per_goal[k] >= 30, "goal %d reached %d times of 200", k, per_goal[k]);
    ck_assert(hypot(mean[0], mean[1]) < 0.25 * size);
    fr_demos_free(&d);
    expert_run(&fr_env_pendulum, 5, 0, 50, &d);
    fr_demos_summary(&d, &ret, NULL, NULL, &sr);
    printf("env_ctl: pendulum expert: 50 episodes, success %.3f, return %.2f\n", sr, ret);
    ck_assert_msg(sr >= 0.95 && ret > -200.0, "success %g, return %g", sr, ret);
    fr_demos_free(&d);
    const fr_ctl_expert *x;
    ck_assert_int_eq(fr_ctl_expert_find("nope", &x), FR_ERR_ARG);
    assert_has(fr_last_error(), "known: nav2d, pendulum");
}
END_TEST

static void nav2d_harder(void *o) { ((fr_nav2d_opts *)o)->max_steps = 20; }

/* The imperfect expert (fr_ctl_expert_act, docs/demos.md §3): at σ = 0 exactly the expert; at σ > 0
 * each action is the expert's own on the same observation plus σ·ξ from Philox (seed,
 * FR_RNG_ENV_RESET, episode, 2, t) element d, clipped to the expert's range, the same bytes twice.
 * nav2d's harder setting (docs/envs.md §4.1: 20-step episodes, σ = 1) leaves the expert
 * between 40% and 80% success, where the noiseless expert keeps 100%. */
START_TEST(test_noisy_expert)
{
    fr_env e;
    void *o;
    env_new(&e, &fr_env_nav2d, nav2d_harder, &o);
    const fr_ctl_expert *x;
    ck_assert_int_eq(fr_ctl_expert_find("nav2d", &x), FR_OK);
    fr_demos clean, zero, noisy, again;
    fr_ctl_expert_ctx c0 = {x, 7, o, 0.0}, c1 = {x, 7, o, 1.0};
    ck_assert_int_eq(fr_ctl_rollouts(&e, 7, 0, 200, x->act, &c0, &clean), FR_OK);
    ck_assert_int_eq(fr_ctl_rollouts(&e, 7, 0, 200, fr_ctl_expert_act, &c0, &zero), FR_OK);
    ck_assert_int_eq(fr_ctl_rollouts(&e, 7, 0, 200, fr_ctl_expert_act, &c1, &noisy), FR_OK);
    ck_assert_int_eq(fr_ctl_rollouts(&e, 7, 0, 200, fr_ctl_expert_act, &c1, &again), FR_OK);
    ck_assert_int_eq(zero.N, clean.N);
    ck_assert(memcmp(zero.action, clean.action, (size_t)clean.N * 2 * sizeof(float)) == 0);
    ck_assert(memcmp(zero.obs, clean.obs, (size_t)clean.N * 4 * sizeof(float)) == 0);
    ck_assert_int_eq(again.N, noisy.N);
    ck_assert(memcmp(again.action, noisy.action, (size_t)noisy.N * 2 * sizeof(float)) == 0);
    ck_assert(memcmp(again.state, noisy.state, (size_t)noisy.N * 4 * sizeof(double)) == 0);
    int64_t moved = 0, at_bound = 0;
    for (int64_t ep = 0; ep < noisy.E; ep++)
        for (int64_t i = noisy.episode_start[ep]; i < noisy.episode_start[ep + 1]; i++) {
            const int t = (int)(i - noisy.episode_start[ep]);
            float a[2];
            ck_assert_int_eq(x->act(&c1, &e, (uint32_t)noisy.episode[ep], t, noisy.obs + i * 4, a), FR_OK);
            for (int d = 0; d < 2; d++) {
                const double xi = fr_rng_normal(7, FR_RNG_ENV_RESET, (uint32_t)noisy.episode[ep], 2, (uint32_t)t, (uint32_t)d);
                double want = (double)a[d] + xi;
                want = want < -1.0 ? -1.0 : want > 1.0 ? 1.0 : want;
                ck_assert_msg(noisy.action[i * 2 + d] == (float)want, "episode %lld step %d action %d: %g, expected %g",
                              (long long)ep, t, d, (double)noisy.action[i * 2 + d], want);
                moved += noisy.action[i * 2 + d] != a[d];
                at_bound += fabsf(noisy.action[i * 2 + d]) == 1.0f;
            }
        }
    double ret, sr, len, ret0, sr0, len0;
    fr_demos_summary(&clean, &ret0, NULL, &len0, &sr0);
    fr_demos_summary(&noisy, &ret, NULL, &len, &sr);
    printf("env_ctl: nav2d T=20, 200 episodes: expert success %.3f (length %.1f), noise 1: success %.3f, return %.4f, "
           "length %.1f; %lld of %lld actions moved, %lld at +-1\n",
           sr0, len0, sr, ret, len, (long long)moved, (long long)noisy.N * 2, (long long)at_bound);
    ck_assert_msg(sr0 == 1.0, "the noiseless expert's success %g", sr0);
    ck_assert_msg(sr >= 0.4 && sr <= 0.8, "the noisy expert's success %g, expected 0.4..0.8", sr);
    ck_assert(moved > noisy.N);
    fr_demos_free(&clean);
    fr_demos_free(&zero);
    fr_demos_free(&noisy);
    fr_demos_free(&again);
    fr_env_free(&e);
    free(o);
}
END_TEST

/* ---- demonstration files ------------------------------------------------------------------ */

static char g_dir[256];
static void make_dir(void) { fr_test_mkdtemp(g_dir, sizeof g_dir, "envctl"); }

static fr_status read_bytes(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return FR_ERR_IO;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len);
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    return got == *len ? FR_OK : FR_ERR_IO;
}

/* Write, read back every array and key, remake the environment from the file; a flipped data
 * byte, a cut file, a done flag inside an episode and a NaN are one-line errors naming the
 * field. */
START_TEST(test_demos_file)
{
    make_dir();
    fr_demos d, r;
    expert_run(&fr_env_nav2d, 3, 10, 12, &d);
    char path[512];
    snprintf(path, sizeof path, "%s/d.safetensors", g_dir);
    ck_assert_msg(fr_demos_write(path, &d) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_demos_read(path, &r) == FR_OK, "%s", fr_last_error());
    ck_assert(same_demos(&d, &r));
    ck_assert(!memcmp(d.episode, r.episode, (size_t)d.E * 8) && !memcmp(d.success, r.success, (size_t)d.E));
    ck_assert(!memcmp(d.final_obs, r.final_obs, (size_t)d.E * 16));
    ck_assert_str_eq(r.env, "nav2d");
    ck_assert_str_eq(r.policy, "expert:nav2d");
    ck_assert_str_eq(r.env_options, d.env_options);
    ck_assert(r.seed == 3 && r.max_steps == 50 && r.state_dim == 4 && r.episode[0] == 10);
    fr_env e;
    ck_assert_msg(fr_env_from_demos(&r, &e) == FR_OK, "%s", fr_last_error());
    ck_assert_str_eq(e.desc, d.env_desc);
    fr_env_free(&e);
    fr_demos_free(&r);

    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(read_bytes(path, &buf, &len), FR_OK);
    ck_assert_int_eq(fr_demos_read_mem(buf, len - 9, "cut", &r), FR_ERR_FORMAT);
    buf[len - 3] ^= 0x10; /* inside the last tensor's data */
    ck_assert_int_eq(fr_demos_read_mem(buf, len, "flip", &r), FR_ERR_FORMAT);
    assert_has(fr_last_error(), "digest");
    free(buf);

    d.done[d.episode_start[1] - 2] = 1; /* a terminal flag before the last step of episode 0 */
    ck_assert_int_eq(fr_demos_write(path, &d), FR_ERR_FORMAT);
    assert_has(fr_last_error(), "tensor 'done' row");
    ck_assert(strchr(fr_last_error(), '\n') == NULL);
    d.done[d.episode_start[1] - 2] = 0;
    d.obs[5] = NAN;
    ck_assert_int_eq(fr_demos_write(path, &d), FR_ERR_FORMAT);
    assert_has(fr_last_error(), "tensor 'obs' row 1 element 1: nan");
    fr_demos_free(&d);
}
END_TEST

/* flowrl expert writes, shows and draws; refuses to overwrite without --force, an unknown
 * expert, --plot on pendulum; flowrl envs lists the control environments. */
START_TEST(test_cli_expert)
{
    make_dir();
    static char out[1 << 14];
    char args[1024];
    snprintf(args, sizeof args, "expert --env nav2d --episodes 20 --seed 4 --out %s/n.st --plot %s/n.png", g_dir, g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 0);
    assert_has(out, "expert:nav2d on nav2d K=4");
    assert_has(out, "20 episodes");
    assert_has(out, "success 1.000");
    char png[512];
    snprintf(png, sizeof png, "%s/n.png", g_dir);
    struct stat sb;
    ck_assert(stat(png, &sb) == 0 && sb.st_size > 1000);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 1);
    assert_has(out, "exists (--force replaces it)");
    snprintf(args, sizeof args, "expert show %s/n.st", g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 0);
    assert_has(out, "success 1.000");
    assert_has(out, "\"goals\":\"4\"");
    ck_assert_int_eq(fr_test_run_cli("expert --env nav2d --expert nope", out, sizeof out), 2);
    assert_has(out, "unknown expert 'nope'");
    ck_assert_int_eq(fr_test_run_cli("expert --env pendulum --plot x.png", out, sizeof out), 2);
    ck_assert_int_eq(fr_test_run_cli("expert --env pendulum --goals 3", out, sizeof out), 2);
    assert_has(out, "--goals");
    snprintf(args, sizeof args, "expert --env nav2d --goals 3 --episodes 3 --seed 4 --out %s/n3.st", g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 0);
    assert_has(out, "nav2d K=3");
    /* the imperfect expert of nav2d's harder setting (docs/envs.md §4.1), and behaviour cloning
     * evaluated on the demonstrations' own environment (their options), not on the defaults */
    snprintf(args, sizeof args, "expert --env nav2d --max-episode-steps 20 --noise 1 --episodes 6 --seed 4 --out %s/h.st",
             g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 0);
    assert_has(out, "expert:nav2d noise 1 on nav2d K=4 R=0.7 r=0.1 T=20");
    snprintf(args, sizeof args, "bc --demos %s/h.st --out %s/h.ckpt --steps 2 --batch-size 8 --hidden-dim 8 --n-hidden 1 "
             "--eval-episodes 4 --backend ref", g_dir, g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 0);
    assert_has(out, "bc: nav2d K=4 R=0.7 r=0.1 T=20 dt=0.1, ");
    assert_has(out, "eval: 4 episodes");
    ck_assert_int_eq(fr_test_run_cli("expert --env nav2d --noise -1", out, sizeof out), 2);
    assert_has(out, "--noise");
    /* `train --env cmd:PROGRAM` reaches the environment (the run loop starts the program; a
     * GFlowNet refuses a control environment) */
    snprintf(args, sizeof args, "train --algo gfn-tb --env \"cmd:%s '%s/tests/env_progs/mock_env.py' ok\" --out %s/t",
             fr_test_python(), fr_test_src(), g_dir);
    ck_assert_int_eq(fr_test_run_cli(args, out, sizeof out), 2);
    assert_has(out, "flowrl train: gfn: --env cmd:");
    assert_has(out, "(obs 3, actions 2, T=5) is not an enumerable GFlowNet environment");
    ck_assert_int_eq(fr_test_run_cli("envs", out, sizeof out), 0);
    assert_has(out, "nav2d (control)");
    assert_has(out, "pendulum (control)");
    assert_has(out, "observations 3, actions 1");
    assert_has(out, "cmd:PROGRAM (control)");
    assert_has(out, "--env-timeout");
    ck_assert(strstr(out, "--env-program") == NULL); /* hidden: --env gives it */
}
END_TEST

/* ---- environment programs over the pipe --------------------------------------------------- */

static void mock_spec(char *buf, size_t n, const char *mode)
{
    snprintf(buf, n, "cmd:%s '%s/tests/env_progs/mock_env.py' %s", fr_test_python(), fr_test_src(), mode);
}

static fr_status mock_env(fr_env *e, const char *mode, double timeout)
{
    char spec[1024];
    mock_spec(spec, sizeof spec, mode);
    const fr_env_class *c;
    void *o;
    ck_assert_int_eq(fr_env_spec(spec, &c, &o), FR_OK);
    ck_assert_ptr_eq(c, &fr_env_cmd);
    ((fr_env_cmd_opts *)o)->timeout_s = timeout;
    fr_status s = fr_env_create(c, o, e);
    free(o);
    return s;
}

static fr_status mock_policy(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action)
{
    (void)ctx, (void)e, (void)obs;
    action[0] = 0.25f * (float)t;
    action[1] = -0.5f * (float)episode;
    return FR_OK;
}

/* The mock's environment through fr_ctl_rollouts: its hello, observations, rewards and done
 * flags arrive as sent; the program is reaped at fr_env_free. */
START_TEST(test_cmd_ok)
{
    fr_env e;
    ck_assert_msg(mock_env(&e, "ok", 30) == FR_OK, "%s", fr_last_error());
    ck_assert(e.obs_dim == 3 && e.action_dim == 2 && e.max_steps == 5 && e.ctl->success == NULL);
    assert_has(e.desc, "cmd:");
    const float *lo, *hi;
    ck_assert_int_eq(fr_env_cmd_bounds(&e, &lo, &hi), FR_OK);
    ck_assert(lo[0] == -1.0f && hi[1] == 1.0f);
    ck_assert_int_gt(fr_env_cmd_pid(&e), 0);
    fr_demos d;
    ck_assert_msg(fr_ctl_rollouts(&e, 142, 2, 3, mock_policy, NULL, &d) == FR_OK, "%s", fr_last_error());
    ck_assert(d.E == 3 && d.has_success == 0);
    ck_assert(d.episode_start[1] == 5 && d.episode_start[2] == 9 && d.episode_start[3] == 14); /* odd: 4 steps */
    ck_assert(d.obs[0] == 42.0f && d.obs[1] == 2.0f && d.obs[2] == 0.0f);
    for (int64_t ep = 0; ep < 3; ep++)
        for (int64_t i = d.episode_start[ep]; i < d.episode_start[ep + 1]; i++) {
            const int t = (int)(i - d.episode_start[ep]);
            const float a0 = 0.25f * (float)t, a1 = -0.5f * (float)(2 + ep);
            ck_assert(d.reward[i] == (double)a0 + 2.0 * (double)a1);
            const float *next = i + 1 < d.episode_start[ep + 1] ? d.obs + (i + 1) * 3 : d.final_obs + ep * 3;
            ck_assert(next[0] == (float)(t + 1) && next[1] == a0 && next[2] == a1);
            ck_assert_int_eq(d.done[i], ep == 1 && t == 3);
        }
    fr_demos_free(&d);
    fr_env_free(&e);
    assert_no_child();
}
END_TEST

/* A program with a relative path runs in the options' directory (a run's start directory, so a
 * resume from elsewhere finds it), whatever the caller's. */
START_TEST(test_cmd_cwd)
{
    char src[4096], spec[1024];
    ck_assert_ptr_nonnull(realpath(fr_test_src(), src));
    ck_assert_int_eq(chdir("/"), 0); /* this test's own process (Check forks one per test) */
    snprintf(spec, sizeof spec, "cmd:%s tests/env_progs/mock_env.py ok", fr_test_python());
    const fr_env_class *c;
    void *o;
    fr_env e;
    ck_assert_int_eq(fr_env_spec(spec, &c, &o), FR_OK);
    ck_assert_int_eq(fr_env_create(c, o, &e), FR_ERR_IO); /* not found from / */
    assert_has(fr_last_error(), "hello: ended its output without answering; it exited with status 2");
    assert_no_child();
    fr_env_spec_apply(c, o, "cmd:", src); /* a bare cmd: keeps the program */
    ck_assert_str_eq(((fr_env_cmd_opts *)o)->cwd, src);
    ck_assert_msg(fr_env_create(c, o, &e) == FR_OK, "%s", fr_last_error());
    ck_assert(e.obs_dim == 3);
    fr_env_spec_apply(c, o, spec, "/elsewhere"); /* a directory already set stays */
    ck_assert_str_eq(((fr_env_cmd_opts *)o)->cwd, src);
    fr_env_free(&e);
    free(o);
    assert_no_child();
}
END_TEST

typedef struct {
    const char *mode;
    int at;          /* 0: the hello (create), 1: reset, 2: step */
    fr_status want;
    const char *says;
} failure_case;

/* Every failure of the program: one line naming the program and the message, the program
 * stopped and reaped, and a later call refused naming the first error. */
START_TEST(test_cmd_failures)
{
    static const failure_case cases[] = {
        {"exit", 0, FR_ERR_IO, "hello: ended its output without answering; it exited with status 3"},
        {"version", 0, FR_ERR_FORMAT, "hello: protocol version 2, this flowrl speaks 1"},
        {"garbage", 0, FR_ERR_FORMAT, "hello: answer starts"},
        {"dims", 1, FR_ERR_FORMAT, "reset of episode 0: answered 2 observation values, expected 3 (its hello)"},
        {"magic", 1, FR_ERR_FORMAT, "answer starts \"XXXX\\x01\\x00\\x00\\x00\", expected 'FERO'"},
        {"extra", 1, FR_ERR_FORMAT, "wrote \"log\\x0a\" after its answer"},
        {"segv", 2, FR_ERR_IO, "step 0 of episode 0: ended its output without answering; it "}, /* killed by, or the shell says, */
        {"segv", 2, FR_ERR_IO, "signal 11"},
        {"hang", 2, FR_ERR_IO, "step 0 of episode 0: no answer within the 0.5 s timeout"},
        {"nan_obs", 2, FR_ERR_NUMERIC, "observation element 1 is nan"},
        {"inf_reward", 2, FR_ERR_NUMERIC, "reward is inf"},
        {"seq", 2, FR_ERR_FORMAT, "answer is for message 3, expected 2"},
        {"short", 2, FR_ERR_FORMAT, "answer cut short"},
        {"done", 2, FR_ERR_FORMAT, "done flag 7, expected 0 or 1"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const failure_case *c = &cases[k];
        fr_env e;
        fr_status s = mock_env(&e, c->mode, 0.5);
        double st[2];
        float obs[3], a[2] = {0.5f, 0.5f};
        double r;
        int done;
        if (c->at >= 1 && s == FR_OK) s = e.ctl->reset(&e, 1, 0, st, obs);
        if (c->at >= 2 && s == FR_OK) s = e.ctl->step(&e, st, a, obs, &r, &done);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", fr_last_error());
        ck_assert_msg(s == c->want, "mode %s: status %d, expected %d: %s", c->mode, s, c->want, msg);
        assert_has(msg, "environment program `");
        assert_has(msg, "mock_env.py' ");
        assert_has(msg, c->says);
        ck_assert_msg(strchr(msg, '\n') == NULL, "mode %s: more than one line: %s", c->mode, msg);
        if (c->at >= 1) {
            ck_assert_int_eq(fr_env_cmd_pid(&e), -1);
            ck_assert_int_eq(e.ctl->reset(&e, 1, 1, st, obs), FR_ERR_IO);
            assert_has(fr_last_error(), "not sent, the program was stopped after an earlier error");
            fr_env_free(&e);
        }
        assert_no_child();
    }
    /* a non-finite action is the caller's error: not sent, the program runs on */
    fr_env e;
    ck_assert_int_eq(mock_env(&e, "ok", 30), FR_OK);
    double st[2];
    float obs[3], a[2] = {0.0f, NAN};
    double r;
    int done;
    ck_assert_int_eq(e.ctl->reset(&e, 1, 0, st, obs), FR_OK);
    ck_assert_int_eq(e.ctl->step(&e, st, a, obs, &r, &done), FR_ERR_NUMERIC);
    assert_has(fr_last_error(), "action element 1 is nan; not sent");
    a[1] = 1.0f;
    ck_assert_int_eq(e.ctl->step(&e, st, a, obs, &r, &done), FR_OK);
    fr_env_free(&e);
    assert_no_child();
    /* specs */
    const fr_env_class *c;
    void *o;
    ck_assert_int_eq(fr_env_spec("cmd:", &c, &o), FR_OK);
    ck_assert_int_eq(fr_env_create(c, o, &e), FR_ERR_ARG);
    assert_has(fr_last_error(), "empty command");
    free(o);
    ck_assert_int_eq(fr_env_find("nope", &c), FR_ERR_ARG);
    assert_has(fr_last_error(), "cmd:PROGRAM");
}
END_TEST

/* ---- Gymnasium's Pendulum-v1 -------------------------------------------------------------- */

static fr_status torque_policy(void *ctx, const fr_env *e, uint32_t episode, int t, const float *obs, float *action)
{
    (void)ctx, (void)e, (void)obs;
    action[0] = (float)(5.0 * fr_ctl_uniform(77, episode, 2, (uint32_t)t) - 2.5); /* clipping included */
    return FR_OK;
}

static void zero_start(void *o)
{
    ((fr_pendulum_opts *)o)->x_init = 0.0;
    ((fr_pendulum_opts *)o)->y_init = 0.0;
}

/* Pendulum-v1 through the pipe against the built-in, on the same actions. Gymnasium's reset
 * draws from NumPy's PCG64, flowrl's from Philox; both start at (θ, θ̇) = (0, 0) when the reset
 * bounds are 0 (Gymnasium's reset options x_init = y_init = 0, the built-in's --x-init 0
 * --y-init 0), which is where their seeding allows equal episodes. From there 200 steps of
 * random torques (in [−2.5, 2.5], so clipping is exercised): the observations agree to 1e-5 and
 * the rewards to 1e-9 relative (NumPy's SVML sin differs from flowrl's by a few ulp per step
 * and the swing amplifies it). Then the adapter's own seeded resets: the same (seed, episode)
 * gives the same episode twice. */
START_TEST(test_gym_pendulum_pipe)
{
    const char *py = fr_test_gym_python();
    char spec[2048];
    snprintf(spec, sizeof spec,
             "cmd:'%s' '%s/tools/gym_env.py' Pendulum-v1 --reset-options '{\"x_init\": 0.0, \"y_init\": 0.0}'", py,
             fr_test_src());
    const fr_env_class *c;
    void *o;
    ck_assert_int_eq(fr_env_spec(spec, &c, &o), FR_OK);
    fr_env g, b;
    ck_assert_msg(fr_env_create(c, o, &g) == FR_OK, "%s", fr_last_error());
    free(o);
    ck_assert(g.obs_dim == 3 && g.action_dim == 1 && g.max_steps == 200);
    const float *lo, *hi;
    ck_assert_int_eq(fr_env_cmd_bounds(&g, &lo, &hi), FR_OK);
    ck_assert(lo[0] == -2.0f && hi[0] == 2.0f);
    env_new(&b, &fr_env_pendulum, zero_start, NULL);
    fr_demos dg, db;
    ck_assert_msg(fr_ctl_rollouts(&g, 9, 0, 4, torque_policy, NULL, &dg) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_ctl_rollouts(&b, 9, 0, 4, torque_policy, NULL, &db), FR_OK);
    ck_assert(dg.N == 800 && db.N == 800);
    double max_o = 0.0, max_r = 0.0;
    int64_t same_o = 0, same_r = 0;
    for (int64_t i = 0; i < dg.N; i++) {
        for (int k = 0; k < 3; k++) max_o = fmax(max_o, fabs((double)dg.obs[i * 3 + k] - (double)db.obs[i * 3 + k]));
        same_o += !memcmp(dg.obs + i * 3, db.obs + i * 3, 12) ||
                  (dg.obs[i * 3] == db.obs[i * 3] && dg.obs[i * 3 + 1] == db.obs[i * 3 + 1] &&
                   dg.obs[i * 3 + 2] == db.obs[i * 3 + 2]);
        max_r = fmax(max_r, fabs(dg.reward[i] - db.reward[i]) / fmax(1.0, fabs(db.reward[i])));
        same_r += dg.reward[i] == db.reward[i];
    }
    printf("env_ctl: Pendulum-v1 over the pipe vs pendulum, 4 episodes of random torques from (0, 0): observations "
           "equal %lld/800 (max |diff| %.3g), rewards equal %lld/800 (max rel diff %.3g)\n",
           (long long)same_o, max_o, (long long)same_r, max_r);
    ck_assert_msg(max_o <= 1e-5 && max_r <= 1e-9, "obs %g, reward %g", max_o, max_r);
    fr_demos_free(&dg);
    fr_demos_free(&db);
    fr_env_free(&g);
    fr_env_free(&b);
    /* the adapter's own seeding: (seed, episode) fixes the episode */
    snprintf(spec, sizeof spec, "cmd:'%s' '%s/tools/gym_env.py' Pendulum-v1", py, fr_test_src());
    ck_assert_int_eq(fr_env_spec(spec, &c, &o), FR_OK);
    ck_assert_int_eq(fr_env_create(c, o, &g), FR_OK);
    free(o);
    const fr_ctl_expert *x;
    ck_assert_int_eq(fr_ctl_expert_find("pendulum", &x), FR_OK);
    fr_ctl_expert_ctx ctx = {x, 9, NULL, 0.0};
    fr_demos d1, d2;
    ck_assert_int_eq(fr_ctl_rollouts(&g, 9, 0, 3, x->act, &ctx, &d1), FR_OK);
    ck_assert_int_eq(fr_ctl_rollouts(&g, 9, 0, 3, x->act, &ctx, &d2), FR_OK);
    ck_assert(same_demos(&d1, &d2));
    double ret;
    fr_demos_summary(&d1, &ret, NULL, NULL, NULL);
    printf("env_ctl: the pendulum expert on Pendulum-v1 over the pipe: return %.2f over 3 episodes\n", ret);
    ck_assert(ret > -300.0);
    fr_demos_free(&d1);
    fr_demos_free(&d2);
    fr_env_free(&g);
    assert_no_child();
}
END_TEST

/* The step-by-step peer test (tests/gym_pendulum_peer.py): expert and random-torque episodes of
 * the built-in, with its float64 state, each step replayed by Gymnasium from that state. */
START_TEST(test_gym_pendulum_peer)
{
    const char *py = fr_test_gym_python();
    make_dir();
    fr_env e;
    env_new(&e, &fr_env_pendulum, NULL, NULL);
    fr_demos d, rnd;
    expert_run(&fr_env_pendulum, 21, 0, 10, &d);
    ck_assert_int_eq(fr_ctl_rollouts(&e, 21, 10, 10, torque_policy, NULL, &rnd), FR_OK);
    for (int64_t ep = 0; ep < rnd.E; ep++) { /* one set: the random episodes after the expert's */
        for (int64_t i = rnd.episode_start[ep]; i < rnd.episode_start[ep + 1]; i++)
            ck_assert_int_eq(fr_demos_push_step(&d, rnd.obs + i * 3, rnd.action + i, rnd.reward[i], rnd.done[i],
                                                rnd.state + i * 2), FR_OK);
        ck_assert_int_eq(fr_demos_end_episode(&d, rnd.episode[ep], rnd.final_obs + ep * 3, rnd.success[ep]), FR_OK);
    }
    snprintf(d.policy, sizeof d.policy, "expert:pendulum+random");
    char path[512], cmd[2048], out[4096];
    snprintf(path, sizeof path, "%s/p.safetensors", g_dir);
    ck_assert_int_eq(fr_demos_write(path, &d), FR_OK);
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/gym_pendulum_peer.py' '%s' 2>&1", py, fr_test_src(), path);
    const int rc = fr_test_run_sh(cmd, out, sizeof out);
    printf("%s", out);
    ck_assert_msg(rc == 0, "gym_pendulum_peer.py exit %d: %s", rc, out);
    assert_has(out, "4000 steps");
    fr_demos_free(&d);
    fr_demos_free(&rnd);
    fr_env_free(&e);
}
END_TEST

/* Even environments steer to goal 0 (the expert's PD law), odd ones push away from every goal. */
static fr_status half_act(void *user, int64_t t, int64_t N, const float *obs, float *action, double *logp, double *value)
{
    (void)t, (void)logp, (void)value;
    double g[2];
    fr_nav2d_goal(user, 0, g);
    for (int64_t n = 0; n < N; n++)
        for (int i = 0; i < 2; i++) {
            const float *o = obs + n * 4;
            const double a = n % 2 ? -(double)o[i] : 4.0 * (g[i] - (double)o[i]) - 1.2 * (double)o[2 + i];
            action[n * 2 + i] = (float)(a < -1.0 ? -1.0 : a > 1.0 ? 1.0 : a);
        }
    return FR_OK;
}

/* fr_ctl_evaluate with e->eval_record: the same numbers as without, and the recorded episodes
 * agree with them (count, success, mean return, each episode's end); the run loop draws them
 * on nav2d (samples/before.png, after.png of a tiny ppo-gaussian run). */
START_TEST(test_eval_record)
{
    fr_env e;
    void *o;
    env_new(&e, &fr_env_nav2d, nav2d_harder, &o);
    const fr_ctl_policy p = {half_act, NULL, o};
    fr_ctl_eval plain, rec_ev;
    ck_assert_int_eq(fr_ctl_evaluate(&e, 3, 6, NULL, &p, &plain), FR_OK);
    fr_demos d;
    e.eval_record = &d;
    ck_assert_int_eq(fr_ctl_evaluate(&e, 3, 6, NULL, &p, &rec_ev), FR_OK);
    e.eval_record = NULL;
    ck_assert(plain.ret_mean == rec_ev.ret_mean && plain.success == rec_ev.success && plain.terminal == rec_ev.terminal);
    ck_assert_msg(plain.success == 0.5, "success %g", plain.success);
    ck_assert_int_eq(d.E, 6);
    double ret, sr, len;
    fr_demos_summary(&d, &ret, NULL, &len, &sr);
    ck_assert(sr == plain.success);
    ck_assert_msg(fabs(ret - plain.ret_mean) < 1e-12, "recorded return %.17g, evaluated %.17g", ret, plain.ret_mean);
    for (int64_t ep = 0; ep < d.E; ep++) {
        const int64_t n = d.episode_start[ep + 1] - d.episode_start[ep];
        ck_assert_int_eq(d.episode[ep], FR_CTL_EVAL_FIRST_EPISODE + ep);
        ck_assert_int_eq(d.success[ep], ep % 2 == 0);
        ck_assert_int_eq(d.done[d.episode_start[ep + 1] - 1], ep % 2 == 0);
        ck_assert(ep % 2 == 0 ? n < 20 : n == 20);
        const float *f = d.final_obs + ep * 4;
        double g[2];
        fr_nav2d_goal(o, 0, g);
        if (ep % 2 == 0) ck_assert(hypot(f[0] - g[0], f[1] - g[1]) < 0.1);
    }
    fr_demos_free(&d);
    fr_env_free(&e);
    free(o);
    make_dir();
    static char out[1 << 14];
    char args[1024], png[600];
    snprintf(args, sizeof args, "train --algo ppo-gaussian --env nav2d --max-episode-steps 20 --n-envs 2 --n-steps 8 "
             "--minibatch-size 4 --update-epochs 1 --hidden-dim 8 --n-hidden 1 --eval-episodes 3 --epochs 1 --backend ref "
             "--out %s/pg", g_dir);
    ck_assert_msg(fr_test_run_cli(args, out, sizeof out) == 0, "%.3000s", out);
    for (int k = 0; k < 2; k++) {
        snprintf(png, sizeof png, "%s/pg/samples/%s.png", g_dir, k ? "after" : "before");
        struct stat sb;
        ck_assert_msg(stat(png, &sb) == 0 && sb.st_size > 1000, "%s missing", png);
    }
}
END_TEST

Suite *suite_env_ctl(void)
{
    Suite *s = suite_create("env_ctl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sincos_mpfr);
    tcase_add_test(tc, test_angle_normalize);
    tcase_add_test(tc, test_pendulum_by_hand);
    tcase_add_test(tc, test_nav2d_by_hand);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_experts);
    tcase_add_test(tc, test_noisy_expert);
    tcase_add_test(tc, test_eval_record);
    tcase_add_test(tc, test_demos_file);
    tcase_add_test(tc, test_cli_expert);
    tcase_add_test(tc, test_cmd_ok);
    tcase_add_test(tc, test_cmd_cwd);
    tcase_add_test(tc, test_cmd_failures);
    tcase_add_test(tc, test_gym_pendulum_pipe);
    tcase_add_test(tc, test_gym_pendulum_peer);
    suite_add_tcase(s, tc);
    return s;
}
