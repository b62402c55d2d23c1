/* Sampler steps and log-probs (docs/algorithms/samplers.md §0, §2-§6, §9): the spec's check values,
 * reductions and identities, float64 references, and the log-prob recompute contract. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/reduce.h"
#include "flowrl/sampler.h"
#include "flowrl/sampler_elem.h"
#include "flowrl/schedule.h"
#include "tests/step_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define MAXN 4096
/* The steps run on the reference backend (every backend: tests/test_ops_sampler.c). */
#define REF fr_test_ref_be()

/* Standard normal for test inputs (Box-Muller in float64 on the splitmix stream). */
static float test_normal(uint64_t *s)
{
    double u1 = ((double)(fr_test_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(fr_test_next(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static void fill_normal(uint64_t *s, float *a, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) a[i] = scale * test_normal(s);
}

static float g_grid[11]; /* the §1.2 grid, T = 10, S = 3 */

static void load_grid(void)
{
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, g_grid), FR_OK);
}

static fr_step flow_step(fr_sampler_kind k, int i, float noise)
{
    return fr_test_grid_step(g_grid, k, i, noise);
}

/* A spec value printed with 6 decimals: |got − want| <= half a unit of the 6th decimal
 * (plus 1e-12 for the literal's conversion). NaN fails. */
#define CHECK6(got, want, what)                                                            \
    ck_assert_msg(!isnan(got) && fabs((double)(got) - (want)) <= 0.5e-6 + 1e-12,           \
                  "%s = %.9f, spec %.6f", what, (double)(got), (double)(want))

/* ---- the spec's check values (x = 0.5, v = −1.2, T = 10 grid of §1.2) ---------------- */

START_TEST(test_sde_check_values)
{
    load_grid();
    const float x = 0.5f, v = -1.2f;
    float xn, mu;
    fr_step_std sd;
    /* step 3: 0.857692 -> 0.790368 */
    fr_step p = flow_step(FR_SAMPLER_SDE, 3, 0.7f);
    CHECK6(p.sigma, 0.857692, "sigma_3");
    CHECK6(p.sigma_next, 0.790368, "sigma_4");
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 1, &x, &v, NULL, NULL, &xn, &mu, NULL, &sd), FR_OK);
    CHECK6(sd.std_dev, 1.718500, "step 3 sigma_t");
    CHECK6(sd.std, 0.445897, "step 3 sigma_t sqrt(-dt)");
    CHECK6(mu, 0.542629, "step 3 mu");
    /* step 0: σ = 1 uses σ̃ = σ_1 */
    p = flow_step(FR_SAMPLER_SDE, 0, 0.7f);
    ck_assert(p.sigma == 1.0f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 1, &x, &v, NULL, NULL, &xn, &mu, NULL, &sd), FR_OK);
    CHECK6(sd.std_dev, 3.505671, "step 0 sigma_t");
    CHECK6(sd.std, 0.700000, "step 0 sigma_t sqrt(-dt)");
    CHECK6(mu, 0.425345, "step 0 mu");
    /* without the substitution 1/(1 − σ) would divide by zero */
    ck_assert(isinf(sqrtf(1.0f / (1.0f - 1.0f))));
}
END_TEST

START_TEST(test_cps_check_values)
{
    load_grid();
    const float x = 0.5f, v = -1.2f;
    float xn, mu;
    fr_step_std sd;
    fr_step p = flow_step(FR_SAMPLER_CPS, 3, 0.8f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 1, &x, &v, NULL, NULL, &xn, &mu, NULL, &sd), FR_OK);
    CHECK6(sd.std, 0.751685, "cps sigma_t");
    ck_assert(sd.std_dev == sd.std);
    CHECK6(mu, 0.400986, "cps mu");
}
END_TEST

START_TEST(test_dance_check_values)
{
    load_grid();
    const float x = 0.5f, v = -1.2f;
    float xn, mu;
    fr_step_std sd;
    fr_step p = flow_step(FR_SAMPLER_DANCE, 3, 0.3f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 1, &x, &v, NULL, NULL, &xn, &mu, NULL, &sd), FR_OK);
    CHECK6(sd.std, 0.077841, "dance std");
    CHECK6(mu, 0.579626, "dance mu");
}
END_TEST

/* ---- identities ------------------------------------------------------------------- */

/* §3: a = 0 makes σ_t = 0, so cx = 1 + (0/2σ)·dt = 1 and cv = 1 exactly, and μ is the
 * Euler step bit for bit; x' = μ + 0·ξ equals μ (== comparison: 0·ξ may be −0, which can
 * only flip the sign of a zero). The a = 0 log-prob is NaN (−0/0), as in FG (§2). */
START_TEST(test_sde_a0_is_euler)
{
    load_grid();
    uint64_t seed = 11;
    enum { B = 3, D = 37 };
    float x[B * D], v[B * D], xi[B * D], xs[B * D], xo[B * D], mu[B * D], lp[B];
    for (int i = 0; i < 10; i++) {
        fill_normal(&seed, x, B * D, 1.0f);
        fill_normal(&seed, v, B * D, 1.5f);
        fill_normal(&seed, xi, B * D, 1.0f);
        fr_step ps = flow_step(FR_SAMPLER_SDE, i, 0.0f), po = flow_step(FR_SAMPLER_ODE, i, 0.0f);
        ck_assert_int_eq(fr_sampler_step(REF, &ps, B, D, x, v, NULL, xi, xs, mu, lp, NULL), FR_OK);
        ck_assert_int_eq(fr_sampler_step(REF, &po, B, D, x, v, NULL, NULL, xo, NULL, NULL, NULL), FR_OK);
        for (int j = 0; j < B * D; j++) {
            ck_assert_msg(xs[j] == xo[j] && mu[j] == xo[j] && !isnan(xo[j]),
                          "step %d elem %d: sde(a=0) %.9g, euler %.9g (seed 11)", i, j, (double)xs[j],
                          (double)xo[j]);
            ck_assert(xo[j] == x[j] + v[j] * (g_grid[i + 1] - g_grid[i]));
        }
        for (int b = 0; b < B; b++) ck_assert(isnan(lp[b]));
    }
}
END_TEST

/* §4: CPS with a = 0 is Euler in exact arithmetic: x̂0(1−σ') + ε̂·σ' = x + v(σ'−σ). The
 * square root is exact (sqrt(fl(σ'²)) = σ'), but the two forms round differently: about 6
 * roundings on terms bounded by |x| + |v|, so |diff| <= 8·2^-24·(|x| + |v|) < 1e-6·(|x|+|v|). */
START_TEST(test_cps_a0_close_to_euler)
{
    load_grid();
    uint64_t seed = 12;
    enum { D = 512 };
    float x[D], v[D], xc[D], xo[D];
    for (int i = 0; i < 10; i++) {
        fill_normal(&seed, x, D, 1.0f);
        fill_normal(&seed, v, D, 1.5f);
        fr_step pc = flow_step(FR_SAMPLER_CPS, i, 0.0f), po = flow_step(FR_SAMPLER_ODE, i, 0.0f);
        ck_assert_int_eq(fr_sampler_step(REF, &pc, 1, D, x, v, NULL, x, xc, NULL, NULL, NULL), FR_OK);
        ck_assert_int_eq(fr_sampler_step(REF, &po, 1, D, x, v, NULL, NULL, xo, NULL, NULL, NULL), FR_OK);
        for (int j = 0; j < D; j++) {
            double tol = 1e-6 * (fabs(x[j]) + fabs(v[j]));
            ck_assert_msg(!isnan(xc[j]) && fabs((double)xc[j] - xo[j]) <= tol,
                          "step %d elem %d: cps(a=0) %.9g euler %.9g (seed 12)", i, j, (double)xc[j],
                          (double)xo[j]);
        }
    }
}
END_TEST

/* §4 quirk 2: no clamp inside √(σ'² − σ_t²). With a = 1 the argument is exactly 0 (sin
 * rounds to at most 1 and σ'·s to at most σ'); with a std above σ' it is negative and
 * μ is NaN, reproduced rather than guarded. */
START_TEST(test_cps_no_clamp)
{
    load_grid();
    for (int i = 0; i < 10; i++) {
        fr_cps_coef c = fr_cps_coef_make(g_grid[i], g_grid[i + 1], 1.0f);
        ck_assert_msg(c.c_eps == 0.0f && c.std <= g_grid[i + 1], "step %d: c_eps %g std %.9g", i,
                      (double)c.c_eps, (double)c.std);
        ck_assert(!isnan(fr_cps_mean_elem(0.5f, -1.2f, c)));
    }
    fr_cps_coef bad = fr_cps_coef_from_std(g_grid[3], g_grid[4], nextafterf(g_grid[4], 2.0f));
    ck_assert(isnan(bad.c_eps));
    ck_assert(isnan(fr_cps_mean_elem(0.5f, -1.2f, bad)));
}
END_TEST

/* x' = μ: the log-prob is the normalizer −log std − log √(2π). With D = 16 the canonical
 * mean of 16 equal values is exact (lanes hold 2e, the tree sums powers of two, /16), so
 * it equals the element value bit for bit; against float64 −log(std) − ½log(2π) from the
 * float64 std the error is the float std's and logs' (a few 1e-7 absolute): tol 2e-6. */
START_TEST(test_logp_at_mean_is_normalizer)
{
    load_grid();
    uint64_t seed = 13;
    enum { B = 2, D = 16 };
    float x[B * D], v[B * D], mu[B * D], lp[B];
    const fr_sampler_kind kinds[3] = {FR_SAMPLER_SDE, FR_SAMPLER_DANCE, FR_SAMPLER_DDIM};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 10; i++) {
            fill_normal(&seed, x, B * D, 1.0f);
            fill_normal(&seed, v, B * D, 1.0f);
            fr_step p = flow_step(kinds[k], i, kinds[k] == FR_SAMPLER_SDE ? 0.7f : (kinds[k] == FR_SAMPLER_DANCE ? 0.3f : 1.0f));
            double sd;
            if (kinds[k] == FR_SAMPLER_DDIM) {
                p.alpha_bar = 0.05f + 0.08f * (float)i;
                p.alpha_bar_prev = p.alpha_bar + 0.07f;
                double ab = p.alpha_bar, abp = p.alpha_bar_prev;
                sd = sqrt((1 - abp) / (1 - ab) * (1 - ab / abp));
            } else if (kinds[k] == FR_SAMPLER_SDE) {
                double s = p.sigma, sn = p.sigma_next, st = s == 1.0 ? p.sigma1 : s;
                sd = 0.7 * sqrt(s / (1 - st)) * sqrt(s - sn);
            } else {
                sd = 0.3 * sqrt((double)p.sigma - p.sigma_next);
            }
            ck_assert_int_eq(fr_sampler_mean(REF, &p, B, D, x, v, NULL, mu), FR_OK);
            ck_assert_int_eq(fr_sampler_logprob_of(REF, &p, B, D, mu, mu, lp), FR_OK);
            fr_step_std s;
            ck_assert_int_eq(fr_sampler_std(&p, &s), FR_OK);
            float elem = fr_gauss_logp_elem(1.0f, 1.0f, fr_gauss_coef_make(s.std));
            double ref = -log(sd) - 0.5 * log(2.0 * M_PI);
            for (int b = 0; b < B; b++) {
                ck_assert_msg(fr_test_bits_equal(lp[b], elem), "kind %d step %d: %.9g vs elem %.9g", k, i,
                              (double)lp[b], (double)elem);
                ck_assert_msg(!isnan(lp[b]) && fabs(lp[b] - ref) <= 2e-6, "kind %d step %d: %.9g vs %.9g", k,
                              i, (double)lp[b], ref);
            }
        }
    /* CPS drops every constant: log p(μ) = −0² = 0 */
    fr_step p = flow_step(FR_SAMPLER_CPS, 3, 0.8f);
    ck_assert_int_eq(fr_sampler_mean(REF, &p, B, D, x, v, NULL, mu), FR_OK);
    ck_assert_int_eq(fr_sampler_logprob_of(REF, &p, B, D, mu, mu, lp), FR_OK);
    ck_assert(lp[0] == 0.0f && lp[1] == 0.0f);
}
END_TEST

/* float64 μ of each kind, from the same float inputs. */
static double ref_mean(const fr_step *p, double x, double m, double m1)
{
    double s = p->sigma, sn = p->sigma_next, dt = sn - s;
    switch (p->kind) {
    case FR_SAMPLER_SDE: {
        double st = p->noise * sqrt(s / (1 - (s == 1.0 ? (double)p->sigma1 : s)));
        return x + (m + st * st / (2 * s) * (x + (1 - s) * m)) * dt;
    }
    case FR_SAMPLER_CPS: {
        double st = sn * sin(p->noise * M_PI / 2);
        return (x - s * m) * (1 - sn) + (x + (1 - s) * m) * sqrt(sn * sn - st * st);
    }
    case FR_SAMPLER_DANCE: {
        double eta = p->noise;
        return x + dt * (m + eta * eta / (2 * s) * (x + (1 - s) * m));
    }
    case FR_SAMPLER_DDIM: {
        double ab = p->alpha_bar, abp = p->alpha_bar_prev;
        double sd = p->noise * sqrt((1 - abp) / (1 - ab) * (1 - ab / abp));
        double x0 = (x - sqrt(1 - ab) * m) / sqrt(ab);
        return sqrt(abp) * x0 + sqrt(1 - abp - sd * sd) * m;
    }
    case FR_SAMPLER_DPM: {
        double x0 = x - s * m;
        double lam = log((1 - sn) / sn) - log((1 - s) / s), e = exp(-lam);
        double r = (sn / s) * x - (1 - sn) * (e - 1) * x0;
        if (p->order == 2) {
            double sp = p->sigma_prev, h0 = log((1 - s) / s) - log((1 - sp) / sp);
            r -= 0.5 * (1 - sn) * (e - 1) * (lam / h0) * (x0 - m1);
        }
        return r;
    }
    default: return x + m * dt;
    }
}

static double ref_std(const fr_step *p)
{
    double s = p->sigma, sn = p->sigma_next;
    switch (p->kind) {
    case FR_SAMPLER_SDE: return p->noise * sqrt(s / (1 - (s == 1.0 ? (double)p->sigma1 : s))) * sqrt(s - sn);
    case FR_SAMPLER_CPS: return sn * sin(p->noise * M_PI / 2);
    case FR_SAMPLER_DANCE: return p->noise * sqrt(s - sn);
    case FR_SAMPLER_DDIM: {
        double ab = p->alpha_bar, abp = p->alpha_bar_prev;
        return p->noise * sqrt((1 - abp) / (1 - ab) * (1 - ab / abp));
    }
    default: return 0.0;
    }
}

/* Every stochastic kind against float64, on random inputs over the whole grid.
 *   μ: ≲ 10 roundings on terms up to ~|x| + 30|v| (σ_t²/(2σ) reaches ~6 at σ = 1), so
 *      tol 1e-5·(1 + |x| + |v|), ~100 ulps of the largest term.
 *   log p: each element is −ξ²/2 − log std − ½log 2π (float x' − μ = std·ξ up to one
 *      rounding of |μ|, i.e. a relative error ~1e-7·|μ|/std in ξ); with std >= 0.03 here
 *      the mean over D is within 1e-4·(1 + |ref|). */
START_TEST(test_steps_vs_float64)
{
    load_grid();
    uint64_t seed = 14;
    enum { B = 2, D = 300 };
    static float x[B * D], v[B * D], xi[B * D], xn[B * D], mu[B * D], lp[B];
    const fr_sampler_kind kinds[4] = {FR_SAMPLER_SDE, FR_SAMPLER_CPS, FR_SAMPLER_DANCE, FR_SAMPLER_DDIM};
    const float noise[4] = {0.7f, 0.8f, 0.3f, 1.0f};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 9; i++) { /* the last step (σ' = 0) has CPS std 0 and SDE std 0·∞ */
            fill_normal(&seed, x, B * D, 1.0f);
            fill_normal(&seed, v, B * D, 1.0f);
            fill_normal(&seed, xi, B * D, 1.0f);
            fr_step p = flow_step(kinds[k], i, noise[k]);
            if (kinds[k] == FR_SAMPLER_DDIM) {
                p.alpha_bar = 0.02f + 0.1f * (float)i;
                p.alpha_bar_prev = p.alpha_bar + 0.05f;
            }
            fr_step_std st;
            ck_assert_int_eq(fr_sampler_step(REF, &p, B, D, x, v, NULL, xi, xn, mu, lp, &st), FR_OK);
            double sd = ref_std(&p);
            ck_assert_msg(fabs(st.std - sd) <= 1e-6 * sd, "%s step %d: std %.9g vs %.9g", fr_sampler_name(p.kind),
                          i, (double)st.std, sd);
            for (int b = 0; b < B; b++) {
                double acc = 0.0;
                for (int j = b * D; j < (b + 1) * D; j++) {
                    double rm = ref_mean(&p, x[j], v[j], 0.0);
                    double tol = 1e-5 * (1.0 + fabs(x[j]) + fabs(v[j]));
                    ck_assert_msg(!isnan(mu[j]) && fabs(mu[j] - rm) <= tol,
                                  "%s step %d elem %d: mu %.9g vs %.9g (seed 14)", fr_sampler_name(p.kind), i, j,
                                  (double)mu[j], rm);
                    ck_assert(fr_test_bits_equal(xn[j], mu[j] + st.std * xi[j]));
                    double d = (double)xn[j] - rm;
                    acc += kinds[k] == FR_SAMPLER_CPS ? -d * d
                                                       : -d * d / (2 * sd * sd) - log(sd) - 0.5 * log(2 * M_PI);
                }
                double ref = acc / D;
                ck_assert_msg(!isnan(lp[b]) && fabs(lp[b] - ref) <= 1e-4 * (1.0 + fabs(ref)),
                              "%s step %d row %d: logp %.9g vs %.9g (seed 14)", fr_sampler_name(p.kind), i, b,
                              (double)lp[b], ref);
            }
        }
}
END_TEST

/* The PPO contract: the log-prob recomputed for the stored x' (from x and the same model
 * output, or from the stored μ) is bitwise the one returned at sampling time; and a batch
 * is computed row by row, so B rows equal B single-row calls bit for bit. */
START_TEST(test_logprob_recompute_bitwise)
{
    load_grid();
    uint64_t seed = 15;
    enum { B = 4, D = 77 };
    static float x[B * D], v[B * D], xi[B * D], xn[B * D], mu[B * D], mu2[B * D], x1[D], mu1[D];
    float lp[B], lp2[B], lp3[B], lp1;
    const fr_sampler_kind kinds[4] = {FR_SAMPLER_SDE, FR_SAMPLER_CPS, FR_SAMPLER_DANCE, FR_SAMPLER_DDIM};
    const float noise[4] = {0.7f, 0.8f, 0.3f, 1.0f};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 9; i++) {
            fill_normal(&seed, x, B * D, 1.0f);
            fill_normal(&seed, v, B * D, 1.0f);
            fill_normal(&seed, xi, B * D, 1.0f);
            fr_step p = flow_step(kinds[k], i, noise[k]);
            p.alpha_bar = 0.3f;
            p.alpha_bar_prev = 0.4f;
            ck_assert_int_eq(fr_sampler_step(REF, &p, B, D, x, v, NULL, xi, xn, mu, lp, NULL), FR_OK);
            ck_assert_int_eq(fr_sampler_logprob(REF, &p, B, D, x, v, NULL, xn, mu2, lp2), FR_OK);
            ck_assert_int_eq(fr_sampler_logprob_of(REF, &p, B, D, xn, mu, lp3), FR_OK);
            ck_assert(memcmp(mu, mu2, sizeof mu) == 0);
            for (int b = 0; b < B; b++) {
                ck_assert_msg(!isnan(lp[b]) && fr_test_bits_equal(lp[b], lp2[b]) && fr_test_bits_equal(lp[b], lp3[b]),
                              "%s step %d row %d: %.9g %.9g %.9g (seed 15)", fr_sampler_name(p.kind), i, b,
                              (double)lp[b], (double)lp2[b], (double)lp3[b]);
                ck_assert_int_eq(
                    fr_sampler_step(REF, &p, 1, D, x + b * D, v + b * D, NULL, xi + b * D, x1, mu1, &lp1, NULL), FR_OK);
                ck_assert(memcmp(x1, xn + b * D, sizeof x1) == 0 && memcmp(mu1, mu + b * D, sizeof mu1) == 0);
                ck_assert(fr_test_bits_equal(lp1, lp[b]));
            }
            /* the canonical order: logp = fr_mean_canonical of the element values */
            float e[D];
            fr_step_std st;
            ck_assert_int_eq(fr_sampler_std(&p, &st), FR_OK);
            fr_gauss_coef gc = fr_gauss_coef_make(st.std);
            for (int j = 0; j < D; j++)
                e[j] = kinds[k] == FR_SAMPLER_CPS ? fr_cps_logp_elem(xn[j], mu[j]) : fr_gauss_logp_elem(xn[j], mu[j], gc);
            ck_assert(fr_test_bits_equal(lp[0], fr_mean_canonical(e, D)));
            /* in place: x_next may alias x */
            memcpy(x1, x, sizeof x1);
            ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x1, v, NULL, xi, x1, NULL, &lp1, NULL), FR_OK);
            ck_assert(memcmp(x1, xn, sizeof x1) == 0 && fr_test_bits_equal(lp1, lp[0]));
        }
}
END_TEST

/* §6: η = 0 makes DDIM deterministic: std = 0 and x' = μ whatever ξ is. */
START_TEST(test_ddim_eta0_deterministic)
{
    uint64_t seed = 16;
    enum { D = 64 };
    float x[D], e[D], xi1[D], xi2[D], a[D], b[D], mu[D];
    fill_normal(&seed, x, D, 1.0f);
    fill_normal(&seed, e, D, 1.0f);
    fill_normal(&seed, xi1, D, 1.0f);
    fill_normal(&seed, xi2, D, 3.0f);
    fr_step p;
    memset(&p, 0, sizeof p);
    p.kind = FR_SAMPLER_DDIM;
    p.alpha_bar = 0.2f;
    p.alpha_bar_prev = 0.35f;
    p.noise = 0.0f;
    fr_step_std s;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, e, NULL, xi1, a, mu, NULL, &s), FR_OK);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, e, NULL, xi2, b, NULL, NULL, NULL), FR_OK);
    ck_assert(s.std == 0.0f);
    for (int j = 0; j < D; j++) {
        ck_assert(!isnan(a[j]) && a[j] == b[j] && a[j] == mu[j]);
        ck_assert(fabs(a[j] - ref_mean(&p, x[j], e[j], 0)) <= 1e-5 * (1 + fabs(x[j]) + fabs(e[j])));
    }
    /* η = 1 with x0 clipping: |x̂0| <= clip shows up as μ = √ᾱ_prev·clip + c_dir·ε */
    p.noise = 1.0f;
    p.x0_clip = 1.0f;
    float xs = 5.0f, es = 0.0f, ms;
    ck_assert_int_eq(fr_sampler_mean(REF, &p, 1, 1, &xs, &es, NULL, &ms), FR_OK);
    ck_assert_msg(ms == sqrtf(0.35f), "clipped mu %.9g", (double)ms);
    p.x0_clip = 0.0f;
    ck_assert_int_eq(fr_sampler_mean(REF, &p, 1, 1, &xs, &es, NULL, &ms), FR_OK);
    ck_assert(fabs(ms - sqrt(0.35 / 0.2) * 5.0) < 1e-5);
}
END_TEST

/* §9: DPM-Solver++ (and Euler) on the exact velocity of a single data point x0,
 * v(x, σ) = (x − x0)/σ. Then x̂0 = x0 at every step, the data-prediction solver stays on
 * the path x = (1−σ)x0 + σε and its last step (σ' = 0, order 1) returns x̂0. Each step
 * adds a few roundings on O(1) values: over ≤ 25 steps, |x − x0| <= 1e-5. */
static void run_linear_field(const float *grid, int T, fr_sampler_kind kind, int order)
{
    uint64_t seed = 17;
    enum { D = 64 };
    float x0[D], x[D], v[D], prev_x0[D], cur_x0[D];
    fill_normal(&seed, x0, D, 1.0f);
    fill_normal(&seed, x, D, 1.0f); /* x at σ = 1 is ε */
    for (int i = 0; i < T; i++) {
        for (int j = 0; j < D; j++) v[j] = (x[j] - x0[j]) / grid[i];
        fr_step p;
        memset(&p, 0, sizeof p);
        p.kind = kind;
        p.sigma = grid[i];
        p.sigma_next = grid[i + 1];
        p.order = (order == 2 && i > 0) ? 2 : 1;
        p.sigma_prev = i > 0 ? grid[i - 1] : 1.0f;
        ck_assert_int_eq(fr_flow_x0(REF, D, p.sigma, x, v, cur_x0), FR_OK);
        ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, p.order == 2 ? prev_x0 : NULL, NULL, x, NULL, NULL, NULL),
                         FR_OK);
        memcpy(prev_x0, cur_x0, sizeof prev_x0);
    }
    for (int j = 0; j < D; j++)
        ck_assert_msg(!isnan(x[j]) && fabs(x[j] - x0[j]) <= 1e-5, "%s order %d T %d elem %d: %.9g vs x0 %.9g",
                      fr_sampler_name(kind), order, T, j, (double)x[j], (double)x0[j]);
}

START_TEST(test_dpm_linear_field_lands_on_x0)
{
    float fg[11], lin[26];
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, fg), FR_OK);
    ck_assert_int_eq(fr_sigmas_linspace(25, 3.0, lin), FR_OK);
    run_linear_field(fg, 10, FR_SAMPLER_DPM, 1);
    run_linear_field(fg, 10, FR_SAMPLER_DPM, 2);
    run_linear_field(lin, 25, FR_SAMPLER_DPM, 2);
    run_linear_field(fg, 10, FR_SAMPLER_ODE, 1);
    run_linear_field(lin, 25, FR_SAMPLER_ODE, 1);
}
END_TEST

/* DPM-Solver++ with a real second-order term (m1 ≠ m0) against float64; and the endpoint
 * rules: σ' = 0 returns x̂0 exactly (order forced to 1), σ_prev = 1 gives order 1's x'.
 * Tolerance: λ = log((1−σ)/σ) and e^{−h} through flowrl's float log/exp (few ulp each),
 * h/h0 amplifies relative errors of h0 by up to |h/h0| (< 10 on these grids): 1e-5·scale. */
START_TEST(test_dpm_vs_float64)
{
    float lin[26];
    ck_assert_int_eq(fr_sigmas_linspace(25, 3.0, lin), FR_OK);
    uint64_t seed = 18;
    enum { D = 128 };
    float x[D], v[D], m1[D], xn[D], x0[D];
    for (int i = 1; i < 24; i++)
        for (int order = 1; order <= 2; order++) {
            fill_normal(&seed, x, D, 1.0f);
            fill_normal(&seed, v, D, 1.0f);
            fill_normal(&seed, m1, D, 1.0f);
            fr_step p;
            memset(&p, 0, sizeof p);
            p.kind = FR_SAMPLER_DPM;
            p.sigma = lin[i];
            p.sigma_next = lin[i + 1];
            p.sigma_prev = lin[i - 1];
            p.order = order;
            ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, m1, NULL, xn, NULL, NULL, NULL), FR_OK);
            for (int j = 0; j < D; j++) {
                double r = ref_mean(&p, x[j], v[j], m1[j]);
                double tol = 1e-5 * (1.0 + fabs(x[j]) + fabs(v[j]) + fabs(m1[j]));
                ck_assert_msg(!isnan(xn[j]) && fabs(xn[j] - r) <= tol, "dpm%d step %d elem %d: %.9g vs %.9g (seed 18)",
                              order, i, j, (double)xn[j], r);
            }
        }
    fr_step p;
    memset(&p, 0, sizeof p);
    p.kind = FR_SAMPLER_DPM;
    p.sigma = lin[24];
    p.sigma_next = 0.0f;
    p.sigma_prev = lin[23];
    p.order = 2;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, m1, NULL, xn, NULL, NULL, NULL), FR_OK);
    ck_assert_int_eq(fr_flow_x0(REF, D, p.sigma, x, v, x0), FR_OK);
    for (int j = 0; j < D; j++) ck_assert(xn[j] == x0[j]);
    /* σ_prev = 1: D1 = 0, the step equals order 1 */
    float a[D];
    p.sigma = lin[1];
    p.sigma_next = lin[2];
    p.sigma_prev = 1.0f;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, m1, NULL, xn, NULL, NULL, NULL), FR_OK);
    p.order = 1;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, NULL, NULL, a, NULL, NULL, NULL), FR_OK);
    for (int j = 0; j < D; j++) ck_assert(xn[j] == a[j] && !isnan(a[j]));
    /* σ = 1 (first step): x' = σ'·x + (1 − σ')·x̂0 */
    p.sigma = 1.0f;
    p.sigma_next = lin[1];
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, D, x, v, NULL, NULL, a, NULL, NULL, NULL), FR_OK);
    for (int j = 0; j < D; j++)
        ck_assert(fabs(a[j] - ((double)lin[1] * x[j] + (1.0 - lin[1]) * ((double)x[j] - v[j]))) <= 1e-6 * (1 + fabs(x[j]) + fabs(v[j])));
}
END_TEST

/* §0: v = v_u + g·(v_c − v_u); g = 0 is v_u exactly, g = 1 is v_c within one rounding
 * (v_u + (v_c − v_u) is exact when the difference is, by Sterbenz, for close values). */
START_TEST(test_cfg)
{
    const float vu[4] = {0.5f, -1.0f, 2.0f, 0.0f}, vc[4] = {0.75f, 1.0f, -2.0f, 3.0f};
    float out[4];
    ck_assert_int_eq(fr_cfg_combine(REF, 4, 4.5f, vu, vc, out), FR_OK);
    const float want[4] = {1.625f, 8.0f, -16.0f, 13.5f}; /* exact in binary */
    for (int i = 0; i < 4; i++) ck_assert_msg(out[i] == want[i], "cfg[%d] = %.9g", i, (double)out[i]);
    ck_assert_int_eq(fr_cfg_combine(REF, 4, 0.0f, vu, vc, out), FR_OK);
    ck_assert(memcmp(out, vu, sizeof out) == 0);
    ck_assert_int_eq(fr_cfg_combine(REF, 4, 1.0f, vu, vc, out), FR_OK);
    ck_assert(memcmp(out, vc, sizeof out) == 0);
    float inplace[4];
    memcpy(inplace, vu, sizeof inplace);
    ck_assert_int_eq(fr_cfg_combine(REF, 4, 4.5f, inplace, vc, inplace), FR_OK);
    ck_assert(memcmp(inplace, want, sizeof want) == 0);
}
END_TEST

START_TEST(test_names)
{
    for (int k = 0; k < FR_SAMPLER_COUNT; k++) {
        fr_sampler_kind got;
        ck_assert_ptr_nonnull(fr_sampler_name((fr_sampler_kind)k));
        ck_assert_int_eq(fr_sampler_from_name(fr_sampler_name((fr_sampler_kind)k), &got), FR_OK);
        ck_assert_int_eq(got, k);
    }
    const char *want[FR_SAMPLER_COUNT] = {"ode", "sde", "cps", "dance", "ddim", "dpm"};
    for (int k = 0; k < FR_SAMPLER_COUNT; k++) ck_assert_str_eq(fr_sampler_name((fr_sampler_kind)k), want[k]);
    ck_assert_ptr_null(fr_sampler_name(FR_SAMPLER_COUNT));
    fr_sampler_kind got;
    ck_assert_int_eq(fr_sampler_from_name("SDE", &got), FR_ERR_ARG);
    ck_assert(strstr(fr_last_error(), "SDE") != NULL);
    ck_assert(!fr_sampler_is_stochastic(FR_SAMPLER_ODE) && !fr_sampler_is_stochastic(FR_SAMPLER_DPM));
    ck_assert(fr_sampler_is_stochastic(FR_SAMPLER_SDE) && fr_sampler_is_stochastic(FR_SAMPLER_DDIM));
}
END_TEST

START_TEST(test_bad_args)
{
    load_grid();
    float x[4] = {0}, v[4] = {0}, xn[4], lp[1];
    fr_step p = flow_step(FR_SAMPLER_SDE, 3, 0.7f);
    p.sigma_next = p.sigma; /* dt = 0 */
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_SDE, 3, 0.7f);
    p.sigma = NAN;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_SDE, 0, 0.7f);
    p.sigma1 = 0.0f; /* σ == 1 without σ_1 */
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_SDE, 3, -0.1f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_ODE, 3, 0.0f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_sampler_logprob_of(REF, &p, 1, 4, xn, x, lp), FR_ERR_ARG);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 0, x, v, NULL, NULL, xn, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, NULL, v, NULL, NULL, xn, NULL, NULL, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_DPM, 3, 0.0f);
    p.order = 2;
    p.sigma_prev = g_grid[2];
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, NULL, NULL), FR_ERR_ARG);
    p.order = 3;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, x, NULL, xn, NULL, NULL, NULL), FR_ERR_ARG);
    p = flow_step(FR_SAMPLER_DDIM, 3, 1.0f);
    p.alpha_bar = 1.0f; /* β_t = 0 divides by zero */
    p.alpha_bar_prev = 1.0f;
    ck_assert_int_eq(fr_sampler_step(REF, &p, 1, 4, x, v, NULL, NULL, xn, NULL, NULL, NULL), FR_ERR_ARG);
    p.kind = (fr_sampler_kind)99;
    ck_assert_int_eq(fr_sampler_std(&p, NULL), FR_ERR_ARG);
    /* B = 0 is a valid empty batch */
    p = flow_step(FR_SAMPLER_SDE, 3, 0.7f);
    ck_assert_int_eq(fr_sampler_step(REF, &p, 0, 4, x, v, NULL, NULL, xn, NULL, lp, NULL), FR_OK);
}
END_TEST

Suite *suite_samplers(void)
{
    Suite *s = suite_create("samplers");
    TCase *tc = tcase_create("samplers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sde_check_values);
    tcase_add_test(tc, test_cps_check_values);
    tcase_add_test(tc, test_dance_check_values);
    tcase_add_test(tc, test_sde_a0_is_euler);
    tcase_add_test(tc, test_cps_a0_close_to_euler);
    tcase_add_test(tc, test_cps_no_clamp);
    tcase_add_test(tc, test_logp_at_mean_is_normalizer);
    tcase_add_test(tc, test_steps_vs_float64);
    tcase_add_test(tc, test_logprob_recompute_bitwise);
    tcase_add_test(tc, test_ddim_eta0_deterministic);
    tcase_add_test(tc, test_dpm_linear_field_lands_on_x0);
    tcase_add_test(tc, test_dpm_vs_float64);
    tcase_add_test(tc, test_cfg);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}
