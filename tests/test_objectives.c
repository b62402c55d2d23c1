/* Advantages and the Flow-GRPO family of losses (docs/algorithms/advantages.md §1.1, §1.4; docs/algorithms/flow-grpo.md §2-§4, §11;
 * docs/algorithms/samplers.md §10): float64 re-implementations, central finite differences in float64, the
 * on-policy bitwise check, the GRPO-Guard algebra, and the window draws. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/advantage.h"
#include "flowrl/grpo.h"
#include "flowrl/grpo_elem.h"
#include "flowrl/philox.h"
#include "flowrl/reduce.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"
#include "tests/step_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* |got − want| <= tol, NaN fails (the comparison is written so that NaN is false). */
#define CLOSE(got, want, tol, ...)                                                         \
    ck_assert_msg(fabs((double)(got) - (double)(want)) <= (tol), __VA_ARGS__)

static float test_normal(uint64_t *s)
{
    double u1 = ((double)(fr_test_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(fr_test_next(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static float g_grid[11]; /* the diffusers grid, T = 10, S = 3 (docs/algorithms/samplers.md §1.2) */

static fr_step grid_step(fr_sampler_kind k, int i, float noise)
{
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, g_grid), FR_OK);
    return fr_test_grid_step(g_grid, k, i, noise);
}

/* ---- float64 references ------------------------------------------------------------- */

static double d_clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* One PPO term in float64 with the same (float32) clip bounds. */
static double d_ppo_term(double z, double a, double lo, double hi, double amax)
{
    double r = exp(z), A = d_clamp(a, -amax, amax);
    double u = -A * r, c = -A * d_clamp(r, lo, hi);
    return u > c ? u : c;
}

/* ---- on-policy: r == 1 bitwise through the whole sampler path (§2 "Check", §11) ------- */

START_TEST(test_onpolicy_ratio_exact)
{
    enum { B = 6, D = 37 };
    uint64_t seed = 0x0B1EC71u;
    float x[B * D], v[B * D], xi[B * D], xn[B * D], mu[B * D], mu2[B * D], lo[B], ln[B], adv[B];
    for (int i = 0; i < B * D; i++) {
        x[i] = test_normal(&seed);
        v[i] = test_normal(&seed);
    }
    fr_rng_fill_normal(xi, B * D, 42, FR_RNG_SAMPLER_NOISE, 0, 0, 3);
    for (int b = 0; b < B; b++) adv[b] = 3.0f * test_normal(&seed);
    adv[0] = 7.5f; /* beyond the ±5 clamp */
    fr_sampler_kind kinds[3] = {FR_SAMPLER_SDE, FR_SAMPLER_CPS, FR_SAMPLER_DANCE};
    float noise[3] = {0.7f, 0.8f, 0.3f};
    for (int kk = 0; kk < 3; kk++) {
        fr_step p = grid_step(kinds[kk], 3, noise[kk]);
        ck_assert_int_eq(fr_sampler_step(fr_test_ref_be(), &p, B, D, x, v, NULL, xi, xn, mu, lo, NULL), FR_OK);
        /* training recomputes logp_new from the same model output and the stored x' */
        ck_assert_int_eq(fr_sampler_logprob(fr_test_ref_be(), &p, B, D, x, v, NULL, xn, mu2, ln), FR_OK);
        fr_ppo_params prm = {1e-4, FR_GRPO_ADV_CLIP_MAX};
        fr_ppo_stats st;
        float g[B], r[B], negA[B];
        ck_assert_int_eq(fr_ppo_policy(B, &prm, ln, lo, adv, 1.0f, g, r, &st), FR_OK);
        for (int b = 0; b < B; b++) {
            ck_assert_msg(fr_test_bits_equal(ln[b], lo[b]), "%s: logp recompute differs at %d", fr_sampler_name(kinds[kk]), b);
            ck_assert_msg(fr_test_bits_equal(r[b], 1.0f), "%s: ratio[%d] = %.9g, expected exactly 1",
                          fr_sampler_name(kinds[kk]), b, (double)r[b]);
            negA[b] = -fr_adv_clamp_elem(adv[b], 5.0f);
            /* inside the band both torch.maximum halves reach r: the full −Â·r·gout/B */
            ck_assert_msg(fr_test_bits_equal(g[b], (1.0f / (float)B) * negA[b]), "grad[%d] = %.9g", b, (double)g[b]);
        }
        ck_assert_msg(fr_test_bits_equal(st.loss, fr_mean_canonical(negA, B)), "L_pol = %.9g, expected -mean(A)",
                      (double)st.loss);
        ck_assert(st.clipfrac == 0.0f && st.approx_kl == 0.0f);
        ck_assert(st.ratio_min == 1.0f && st.ratio_max == 1.0f && st.ratio_mean == 1.0f);
    }
}
END_TEST

/* ---- PPO clip: float64 values, FD gradients, torch's tie rules ------------------------ */

START_TEST(test_ppo_vs_double_and_fd)
{
    enum { B = 64 };
    uint64_t seed0 = 0x5EED0001u, seed = seed0;
    double eps_list[3] = {0.2, 1e-4, 0.05};
    for (int e = 0; e < 3; e++) {
        double eps = eps_list[e];
        fr_ppo_params prm = {eps, 5.0f};
        fr_ppo_clip c = fr_ppo_clip_make(eps);
        float ln[B], lo[B], adv[B], g[B], r[B];
        for (int b = 0; b < B; b++) {
            lo[b] = -1.0f + 0.3f * test_normal(&seed);
            ln[b] = lo[b] + (float)(3.0 * eps) * test_normal(&seed);
            adv[b] = 3.0f * test_normal(&seed);
        }
        float gout = 0.37f;
        fr_ppo_stats st;
        ck_assert_int_eq(fr_ppo_policy(B, &prm, ln, lo, adv, gout, g, r, &st), FR_OK);
        double L = 0, kl = 0;
        int nclip = 0;
        for (int b = 0; b < B; b++) {
            double z = (double)ln[b] - (double)lo[b];
            L += d_ppo_term((double)(ln[b] - lo[b]), adv[b], c.lo, c.hi, 5.0) / B;
            kl += 0.5 * z * z / B;
            nclip += fabs((double)r[b] - 1.0) > (double)c.eps;
        }
        /* the float loss: terms of size |A|·r rounded once or twice, summed canonically; 16 ulps
         * of Σ|terms|/B bounds both the term rounding and the B = 64 summation */
        double sabs = 0;
        for (int b = 0; b < B; b++) sabs += fabs(d_ppo_term((double)(ln[b] - lo[b]), adv[b], c.lo, c.hi, 5.0)) / B;
        CLOSE(st.loss, L, 16 * FLT_EPSILON * sabs, "seed %llx eps %g: loss %.9g vs %.12g", (unsigned long long)seed0,
              eps, (double)st.loss, L);
        CLOSE(st.approx_kl, kl, 1e-5 * kl + 1e-30, "approx_kl %.9g vs %.12g", (double)st.approx_kl, kl);
        CLOSE(st.clipfrac, (double)nclip / B, 0.0, "clipfrac %g vs %d/%d", (double)st.clipfrac, nclip, B);
        /* gradients against central differences of the float64 term, at z = the float Δlogp
         * (skip samples within 1e-6 of a kink of clamp: the FD straddles it there) */
        for (int b = 0; b < B; b++) {
            double z = (double)(ln[b] - lo[b]), h = 1e-7;
            double rr = exp(z);
            if (fabs(rr - c.lo) < 1e-6 || fabs(rr - c.hi) < 1e-6) continue;
            double fd = (d_ppo_term(z + h, adv[b], c.lo, c.hi, 5.0) - d_ppo_term(z - h, adv[b], c.lo, c.hi, 5.0)) /
                        (2 * h) * gout / B;
            /* the float gradient: 3 roundings of ~|A|·r·gout/B; FD truncation ~h²·|A| */
            CLOSE(g[b], fd, 1e-6 * fabs(fd) + 1e-9, "seed %llx eps %g sample %d: grad %.9g vs FD %.12g (r %.9g, A %g)",
                  (unsigned long long)seed0, eps, b, (double)g[b], fd, (double)r[b], (double)adv[b]);
        }
    }
}
END_TEST

START_TEST(test_ppo_ties_and_branches)
{
    fr_ppo_clip c = fr_ppo_clip_make(1e-4);
    ck_assert(c.lo == (float)(1.0 - 1e-4) && c.hi == (float)(1.0 + 1e-4) && c.eps == 1e-4f);
    float g = 0.5f;
    /* at the bounds (inclusive clamp mask) u == c: ½ + ½ both pass, full −A·r·g */
    ck_assert(fr_ppo_dterm_elem(c.hi, 2.0f, c, g) == -2.0f * g * c.hi);
    ck_assert(fr_ppo_dterm_elem(c.lo, -2.0f, c, g) == 2.0f * g * c.lo);
    float above = nextafterf(c.hi, 2.0f), below = nextafterf(c.lo, 0.0f);
    /* A > 0, r > 1+ε: −A·r < −A·(1+ε), maximum picks the clipped side: gradient 0 */
    ck_assert(fr_ppo_dterm_elem(above, 2.0f, c, g) == 0.0f);
    /* A < 0, r > 1+ε: the unclipped side is larger: the gradient flows */
    ck_assert(fr_ppo_dterm_elem(above, -2.0f, c, g) == (g * 2.0f) * above);
    /* A > 0, r < 1−ε: unclipped −A·r > −A·(1−ε): flows; A < 0 there: clipped, 0 */
    ck_assert(fr_ppo_dterm_elem(below, 2.0f, c, g) == (g * -2.0f) * below);
    ck_assert(fr_ppo_dterm_elem(below, -2.0f, c, g) == 0.0f);
    /* A = 0: every term is 0 and so is the gradient */
    ck_assert(fr_ppo_term_elem(1.5f, 0.0f, c) == 0.0f && fr_ppo_dterm_elem(1.5f, 0.0f, c, g) == 0.0f);
    /* NaN propagates into the term, the gradient and the stats */
    ck_assert(isnan(fr_ppo_term_elem(NAN, 1.0f, c)) && isnan(fr_ppo_dterm_elem(NAN, 1.0f, c, g)));
    ck_assert(isnan(fr_adv_clamp_elem(NAN, 5.0f)) && fr_adv_clamp_elem(-9.0f, 5.0f) == -5.0f);
    /* clipfrac counts |r − 1| > ε strictly */
    fr_ppo_clip q = fr_ppo_clip_make(0.25);
    ck_assert(!fr_ppo_is_clipped_elem(1.25f, q) && fr_ppo_is_clipped_elem(nextafterf(1.25f, 2.0f), q));
    ck_assert(!fr_ppo_is_clipped_elem(0.75f, q) && fr_ppo_is_clipped_elem(nextafterf(0.75f, 0.0f), q));
    float ln[2] = {0.0f, NAN}, lo[2] = {0.0f, 0.0f}, adv[2] = {1.0f, 1.0f}, gr[2];
    fr_ppo_params prm = {1e-4, 5.0f};
    fr_ppo_stats st;
    ck_assert_int_eq(fr_ppo_policy(2, &prm, ln, lo, adv, 1.0f, gr, NULL, &st), FR_OK);
    ck_assert(isnan(st.loss) && isnan(st.ratio_max) && isnan(st.ratio_min) && isnan(gr[1]) && !isnan(gr[0]));
    prm.adv_clip_max = 0.0f;
    ck_assert_int_eq(fr_ppo_policy(2, &prm, ln, lo, adv, 1.0f, gr, NULL, &st), FR_ERR_ARG);
}
END_TEST

/* ---- d logp / dμ and the KL (§2) ---------------------------------------------------- */

START_TEST(test_logp_backward_fd)
{
    enum { B = 3, D = 29 };
    uint64_t seed0 = 0xD10C9u, seed = seed0;
    fr_step steps[4] = {grid_step(FR_SAMPLER_SDE, 3, 0.7f), grid_step(FR_SAMPLER_CPS, 3, 0.8f),
                        grid_step(FR_SAMPLER_DANCE, 3, 0.3f), grid_step(FR_SAMPLER_SDE, 0, 0.7f)};
    fr_step ddim;
    memset(&ddim, 0, sizeof ddim);
    ddim.kind = FR_SAMPLER_DDIM;
    ddim.alpha_bar = 0.5f;
    ddim.alpha_bar_prev = 0.6f;
    ddim.noise = 1.0f;
    fr_step all[5] = {steps[0], steps[1], steps[2], steps[3], ddim};
    for (int s = 0; s < 5; s++) {
        fr_step_std sd;
        ck_assert_int_eq(fr_sampler_std(&all[s], &sd), FR_OK);
        float xn[B * D], mu[B * D], gl[B], gm[B * D];
        for (int i = 0; i < B * D; i++) {
            mu[i] = test_normal(&seed);
            xn[i] = mu[i] + sd.std * test_normal(&seed);
        }
        for (int b = 0; b < B; b++) gl[b] = test_normal(&seed);
        ck_assert_int_eq(fr_logp_backward(fr_test_ref_be(), &all[s], B, D, xn, mu, gl, gm, 0), FR_OK);
        int cps = all[s].kind == FR_SAMPLER_CPS;
        double var = (double)sd.std * sd.std;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < D; k++) {
                int i = b * D + k;
                /* logp is a mean over D of e(μ_k); de/dμ in closed form and by FD in float64 */
                double d = (double)xn[i] - mu[i], h = 1e-6;
                double ep = cps ? -(d - h) * (d - h) : -(d - h) * (d - h) / (2 * var);
                double em = cps ? -(d + h) * (d + h) : -(d + h) * (d + h) / (2 * var);
                double fd = gl[b] * (ep - em) / (2 * h) / D;
                double exact = gl[b] * (cps ? 2 * d / D : d / (var * D));
                CLOSE(fd, exact, 1e-7 * fabs(exact) + 1e-12, "FD self-check");
                /* ~4 float roundings on the product */
                CLOSE(gm[i], exact, 4e-6 * fabs(exact) + 1e-30, "seed %llx %s step %d (%d,%d): %.9g vs %.12g",
                      (unsigned long long)seed0, fr_sampler_name(all[s].kind), s, b, k, (double)gm[i], exact);
            }
        /* accumulate adds */
        float gm2[B * D];
        memcpy(gm2, gm, sizeof gm);
        ck_assert_int_eq(fr_logp_backward(fr_test_ref_be(), &all[s], B, D, xn, mu, gl, gm2, 1), FR_OK);
        for (int i = 0; i < B * D; i++) ck_assert(gm2[i] == gm[i] + gm[i]);
    }
    fr_step ode = grid_step(FR_SAMPLER_ODE, 3, 0.0f);
    float one = 1.0f, o[1];
    ck_assert_int_eq(fr_logp_backward(fr_test_ref_be(), &ode, 1, 1, &one, &one, &one, o, 0), FR_ERR_ARG);
}
END_TEST

START_TEST(test_kl_loss)
{
    enum { B = 5, D = 41 };
    uint64_t seed0 = 0x4B1u, seed = seed0;
    fr_step p = grid_step(FR_SAMPLER_SDE, 3, 0.7f);
    float s_code, s_paper;
    ck_assert_int_eq(fr_kl_std(&p, FR_KL_CODE, &s_code), FR_OK);
    ck_assert_int_eq(fr_kl_std(&p, FR_KL_PAPER, &s_paper), FR_OK);
    /* docs/algorithms/samplers.md §3 check values: σ_t = 1.718500 (no √(−dt)) feeds the KL; 0.445897 is the step std */
    CLOSE(s_code, 1.718500, 0.5e-6, "kl sigma (code form) %.9g", (double)s_code);
    CLOSE(s_paper, 0.445897, 0.5e-6, "kl sigma (paper form) %.9g", (double)s_paper);
    float mu[B * D], mr[B * D], g[B * D];
    for (int i = 0; i < B * D; i++) {
        mu[i] = test_normal(&seed);
        mr[i] = mu[i] + 0.05f * test_normal(&seed);
    }
    float loss, loss_p, gout = 0.04f;
    ck_assert_int_eq(fr_kl_loss(fr_test_ref_be(), B, D, s_code, mu, mr, gout, &loss, g, 0), FR_OK);
    ck_assert_int_eq(fr_kl_loss(fr_test_ref_be(), B, D, s_paper, mu, mr, gout, &loss_p, NULL, 0), FR_OK);
    double L = 0, two_var = 2.0 * (double)s_code * s_code;
    for (int b = 0; b < B; b++) {
        double ss = 0;
        for (int k = 0; k < D; k++) ss += ((double)mu[b * D + k] - mr[b * D + k]) * ((double)mu[b * D + k] - mr[b * D + k]);
        L += ss / D / two_var / B;
    }
    /* differences are exact in float (Sterbenz does not apply, but 2 roundings of the square
     * and ~D/8 + 3 of the sum): 1e-5 relative */
    CLOSE(loss, L, 1e-5 * L, "seed %llx: KL %.9g vs %.12g", (unsigned long long)seed0, (double)loss, L);
    /* the paper form divides by 2σ_t²(−dt) instead of 2σ_t² */
    double mdt = (double)p.sigma - p.sigma_next;
    CLOSE(loss_p, L / mdt, 2e-5 * L / mdt, "paper-form KL %.9g vs %.12g", (double)loss_p, L / mdt);
    for (int i = 0; i < B * D; i++) {
        double d = (double)mu[i] - mr[i], h = 1e-6;
        double fd = gout * (((d + h) * (d + h) - (d - h) * (d - h)) / (2 * h)) / (two_var * D * B);
        CLOSE(g[i], fd, 1e-5 * fabs(fd) + 1e-15, "seed %llx: KL grad[%d] %.9g vs FD %.12g", (unsigned long long)seed0, i,
              (double)g[i], fd);
    }
    ck_assert_int_eq(fr_kl_loss(fr_test_ref_be(), B, D, 0.0f, mu, mr, gout, &loss, g, 0), FR_ERR_ARG);
}
END_TEST

/* ---- GRPO-Guard (§3) ---------------------------------------------------------------- */

typedef struct {
    int B, D;
    double s, sd2, lo, hi, amax;
    int per_sample;
    const float *xn, *mo, *lold, *adv;
} guard_ref;

/* The whole GRPO-Guard loss in float64 as a function of μ_θ (B, D). */
static double d_guard_loss(const guard_ref *q, const double *mu)
{
    int B = q->B, D = q->D;
    double two_s2 = 2 * q->s * q->s, ball = 0, L = 0;
    double c0 = -log(q->s) - log(sqrt(2 * M_PI));
    for (int i = 0; i < B * D; i++) ball += (mu[i] - q->mo[i]) * (mu[i] - q->mo[i]);
    ball = ball / (B * D) / two_s2;
    for (int b = 0; b < B; b++) {
        double lp = 0, bs = 0;
        for (int k = 0; k < D; k++) {
            int i = b * D + k;
            double d = q->xn[i] - mu[i], dm = mu[i] - q->mo[i];
            lp += -d * d / two_s2 + c0;
            bs += dm * dm;
        }
        lp /= D;
        double bias = q->per_sample ? bs / D / two_s2 : ball;
        double z = (lp - q->lold[b] + bias) * q->s;
        L += d_ppo_term(z, q->adv[b], q->lo, q->hi, q->amax) / B;
    }
    return L / q->sd2;
}

START_TEST(test_guard)
{
    enum { B = 4, D = 48 };
    uint64_t seed0 = 0x6A4D0u, seed = seed0;
    fr_step p = grid_step(FR_SAMPLER_SDE, 3, 0.7f);
    fr_step_std sd;
    ck_assert_int_eq(fr_sampler_std(&p, &sd), FR_OK);
    float dmdv;
    ck_assert_int_eq(fr_grpo_dmean_dv(&p, &dmdv), FR_OK);
    float x[B * D], v0[B * D], v1[B * D], xi[B * D], xn[B * D], mo[B * D], mu[B * D], lold[B], lnew[B], adv[B];
    for (int i = 0; i < B * D; i++) {
        x[i] = test_normal(&seed);
        v0[i] = test_normal(&seed);
    }
    fr_rng_fill_normal(xi, B * D, 7, FR_RNG_SAMPLER_NOISE, 1, 2, 3);
    ck_assert_int_eq(fr_sampler_step(fr_test_ref_be(), &p, B, D, x, v0, NULL, xi, xn, mo, lold, NULL), FR_OK);
    /* the new policy: δ = μ_θ − μ_old mixes a part along ξ (so mean_d[ξδ] is not tiny) and noise */
    for (int i = 0; i < B * D; i++) v1[i] = v0[i] + (0.01f * xi[i] + 0.02f * test_normal(&seed)) / dmdv;
    ck_assert_int_eq(fr_sampler_logprob(fr_test_ref_be(), &p, B, D, x, v1, NULL, xn, mu, lnew), FR_OK);
    for (int b = 0; b < B; b++) adv[b] = 2.0f * test_normal(&seed);
    double s = sd.std, sqrt_dt = sqrt((double)p.sigma - p.sigma_next);

    for (int mode = 0; mode < 2; mode++) {
        fr_ppo_params prm = {0.5, 5.0f};
        float r[B], bias[B], g[B * D];
        fr_ppo_stats st;
        ck_assert_int_eq(fr_guard_policy(fr_test_ref_be(), &p, B, D, (fr_guard_bias)mode, &prm, xn, mu, mo, lnew, lold, adv, 1.0f, g, 0, r,
                                         bias, &st),
                         FR_OK);
        double two_s2 = 2 * s * s, ball = 0;
        for (int i = 0; i < B * D; i++) ball += ((double)mu[i] - mo[i]) * ((double)mu[i] - mo[i]);
        ball = ball / (B * D) / two_s2;
        for (int b = 0; b < B; b++) {
            double xd = 0, ad = 0, bs = 0;
            for (int k = 0; k < D; k++) {
                int i = b * D + k;
                double dm = (double)mu[i] - mo[i];
                xd += xi[i] * dm / D;                       /* mean_d[ξ·δ] */
                ad += ((double)xn[i] - mo[i]) * dm / D / s; /* mean_d[(x' − μ_old)·δ]/s */
                bs += dm * dm / D / two_s2;
            }
            double want_bias = mode == FR_GUARD_BIAS_BATCH ? ball : bs;
            CLOSE(bias[b], want_bias, 1e-5 * want_bias, "mode %d bias[%d] %.9g vs %.12g", mode, b, (double)bias[b],
                  want_bias);
            /* the identity of §3: with the per-sample bias, (Δlogp + bias_i)·s = mean_d[ξδ]
             * (x' − μ_old = s·ξ up to the rounding of x'); with the batch bias the code adds
             * s·(bias_all − bias_i) to it. z in float: Δlogp of two logps of size |logp| ~ 1
             * carries ~8 ulps of |logp| each (mean over D, the constant terms), times s. */
            double z = ((double)lnew[b] - lold[b] + (double)bias[b]) * s;
            double want = ad + (mode == FR_GUARD_BIAS_BATCH ? s * (ball - bs) : 0.0);
            double tol = s * 16 * FLT_EPSILON * (fabs(lnew[b]) + fabs(lold[b])) + 1e-5 * fabs(want);
            CLOSE(z, want, tol, "seed %llx mode %d sample %d: z %.9g vs identity %.12g (tol %g)",
                  (unsigned long long)seed0, mode, b, z, want, tol);
            double zf = fr_guard_logratio_elem(lnew[b], lold[b], bias[b], (float)s);
            CLOSE(log(r[b]), zf, 4 * FLT_EPSILON, "ratio[%d] = exp(z)", b);
            if (mode == FR_GUARD_BIAS_SAMPLE)
                CLOSE(z, xd, tol + 1e-6 * s, "per-sample z %.9g vs mean_d[xi*delta] %.12g", z, xd);
        }
        /* gradients w.r.t. μ_θ by central differences of the float64 loss (the batch bias
         * couples every sample's μ) */
        fr_ppo_clip c = fr_ppo_clip_make(prm.clip_range);
        guard_ref q = {B, D, s, sqrt_dt * sqrt_dt, c.lo, c.hi, 5.0, mode == FR_GUARD_BIAS_SAMPLE, xn, mo, lold, adv};
        double mud[B * D], gmax = 0;
        for (int i = 0; i < B * D; i++) {
            mud[i] = mu[i];
            gmax = fmax(gmax, fabs(g[i]));
        }
        double L0 = d_guard_loss(&q, mud);
        CLOSE(st.loss, L0, 1e-4 * fabs(L0) + 1e-6, "mode %d: loss %.9g vs %.12g", mode, (double)st.loss, L0);
        for (int i = 0; i < B * D; i += 5) {
            double h = 1e-6, keep = mud[i];
            mud[i] = keep + h;
            double lp = d_guard_loss(&q, mud);
            mud[i] = keep - h;
            double lm = d_guard_loss(&q, mud);
            mud[i] = keep;
            double fd = (lp - lm) / (2 * h);
            /* the float gradient: relative 1e-5 of the largest entry (the float log-prob
             * difference in r and ~10 roundings per entry) */
            CLOSE(g[i], fd, 1e-4 * gmax + 1e-5 * fabs(fd), "seed %llx mode %d: dL/dmu[%d] %.9g vs FD %.12g",
                  (unsigned long long)seed0, mode, i, (double)g[i], fd);
        }
    }
    /* a tight clip range clips some samples; the batch bias still routes gradient to their μ */
    fr_ppo_params tight = {2e-3, 5.0f};
    float r[B], g[B * D];
    fr_ppo_stats st;
    ck_assert_int_eq(fr_guard_policy(fr_test_ref_be(), &p, B, D, FR_GUARD_BIAS_BATCH, &tight, xn, mu, mo, lnew, lold, adv, 1.0f, g, 0, r,
                                     NULL, &st),
                     FR_OK);
    fr_ppo_clip c = fr_ppo_clip_make(tight.clip_range);
    guard_ref q = {B, D, s, sqrt_dt * sqrt_dt, c.lo, c.hi, 5.0, 0, xn, mo, lold, adv};
    int clipped = 0, kink = 0;
    for (int b = 0; b < B; b++) {
        clipped += fr_ppo_dterm_elem(r[b], adv[b], c, 1.0f) == 0.0f;
        kink |= fabs(r[b] - c.lo) < 1e-5 || fabs(r[b] - c.hi) < 1e-5;
    }
    ck_assert_msg(clipped > 0 && clipped < B && !kink, "seed %llx: %d of %d clipped (kink %d): choose another seed",
                  (unsigned long long)seed0, clipped, B, kink);
    double mud[B * D], gmax = 0;
    for (int i = 0; i < B * D; i++) {
        mud[i] = mu[i];
        gmax = fmax(gmax, fabs(g[i]));
    }
    for (int i = 0; i < B * D; i += 3) {
        double h = 1e-6, keep = mud[i];
        mud[i] = keep + h;
        double lp = d_guard_loss(&q, mud);
        mud[i] = keep - h;
        double lm = d_guard_loss(&q, mud);
        mud[i] = keep;
        CLOSE(g[i], (lp - lm) / (2 * h), 1e-4 * gmax, "tight clip: dL/dmu[%d] %.9g vs FD %.12g", i, (double)g[i],
              (lp - lm) / (2 * h));
    }
    fr_step cps = grid_step(FR_SAMPLER_CPS, 3, 0.8f);
    ck_assert_int_eq(fr_guard_policy(fr_test_ref_be(), &cps, B, D, FR_GUARD_BIAS_BATCH, &tight, xn, mu, mo, lnew, lold, adv, 1.0f, g, 0, r,
                                     NULL, &st),
                     FR_ERR_ARG);
}
END_TEST

/* ---- dμ/dv ---------------------------------------------------------------------------- */

START_TEST(test_dmean_dv)
{
    enum { N = 16 };
    uint64_t seed = 0xD3D7u;
    fr_step ddim;
    memset(&ddim, 0, sizeof ddim);
    ddim.kind = FR_SAMPLER_DDIM;
    ddim.alpha_bar = 0.5f;
    ddim.alpha_bar_prev = 0.6f;
    ddim.noise = 0.5f;
    fr_step st[7] = {grid_step(FR_SAMPLER_SDE, 3, 0.7f), grid_step(FR_SAMPLER_SDE, 0, 0.7f),
                     grid_step(FR_SAMPLER_CPS, 3, 0.8f), grid_step(FR_SAMPLER_DANCE, 3, 0.3f),
                     grid_step(FR_SAMPLER_ODE, 5, 0.0f), grid_step(FR_SAMPLER_CPS, 8, 0.0f), ddim};
    for (int s = 0; s < 7; s++) {
        float dmdv;
        ck_assert_int_eq(fr_grpo_dmean_dv(&st[s], &dmdv), FR_OK);
        /* μ is affine in v: (μ(v + Δ) − μ(v − Δ))/(2Δ) from the sampler itself; each μ carries
         * a few ulps of max|μ| */
        float x[N], vp[N], vm[N], mp[N], mm[N];
        float dv = 4.0f;
        double mx = 0;
        for (int i = 0; i < N; i++) {
            x[i] = test_normal(&seed);
            float v = test_normal(&seed);
            vp[i] = v + dv;
            vm[i] = v - dv;
        }
        ck_assert_int_eq(fr_sampler_mean(fr_test_ref_be(), &st[s], 1, N, x, vp, NULL, mp), FR_OK);
        ck_assert_int_eq(fr_sampler_mean(fr_test_ref_be(), &st[s], 1, N, x, vm, NULL, mm), FR_OK);
        for (int i = 0; i < N; i++) mx = fmax(mx, fmax(fabs(mp[i]), fabs(mm[i])));
        for (int i = 0; i < N; i++) {
            double fd = ((double)mp[i] - mm[i]) / (2.0 * dv);
            CLOSE(dmdv, fd, 8 * FLT_EPSILON * mx / (2.0 * dv) + 4 * FLT_EPSILON * fabs(fd),
                  "%s step %d: dmu/dv %.9g vs sampler %.9g", fr_sampler_name(st[s].kind), s, (double)dmdv, fd);
        }
    }
    /* the closed forms: sde dσ·(1 + σ_t²(1−σ)/(2σ)); dance dσ·(1 + η²(1−σ)/(2σ)) */
    fr_step_std sd;
    ck_assert_int_eq(fr_sampler_std(&st[0], &sd), FR_OK);
    double sg = st[0].sigma, dsg = (double)st[0].sigma_next - sg, sdt = sd.std_dev;
    float got;
    ck_assert_int_eq(fr_grpo_dmean_dv(&st[0], &got), FR_OK);
    CLOSE(got, dsg * (1 + sdt * sdt * (1 - sg) / (2 * sg)), 1e-6 * fabs(dsg), "sde closed form");
    ck_assert_int_eq(fr_grpo_dmean_dv(&st[3], &got), FR_OK);
    CLOSE(got, dsg * (1 + 0.09 * (1 - sg) / (2 * sg)), 1e-6 * fabs(dsg), "dance closed form");
    ddim.x0_clip = 1.0f;
    ck_assert_int_eq(fr_grpo_dmean_dv(&ddim, &got), FR_ERR_UNSUPPORTED);
    fr_step dpm = grid_step(FR_SAMPLER_DPM, 3, 0.0f);
    ck_assert_int_eq(fr_grpo_dmean_dv(&dpm, &got), FR_ERR_UNSUPPORTED);
}
END_TEST

/* ---- advantages (§1.1, §1.4) ------------------------------------------------------------ */

/* numpy: mean, population std (ddof 0), + eps, all in float64 */
static void d_adv(int B, const float *r, const int64_t *grp, int global_std, double eps, double *out, double *scale)
{
    double gm = 0, gv = 0;
    for (int i = 0; i < B; i++) gm += r[i];
    gm /= B;
    for (int i = 0; i < B; i++) gv += (r[i] - gm) * (r[i] - gm);
    double gs = sqrt(gv / B);
    *scale = 0;
    for (int i = 0; i < B; i++) {
        double m = 0, v = 0;
        int n = 0;
        for (int j = 0; j < B; j++)
            if (!grp || grp[j] == grp[i]) m += r[j], n++;
        m /= n;
        for (int j = 0; j < B; j++)
            if (!grp || grp[j] == grp[i]) v += (r[j] - m) * (r[j] - m);
        double s = global_std ? gs : sqrt(v / n);
        out[i] = (r[i] - m) / (s + eps);
        double mr = 0;
        for (int j = 0; j < B; j++)
            if (!grp || grp[j] == grp[i]) mr = fmax(mr, fabs(r[j] - m));
        *scale = fmax(*scale, mr / (s + eps));
    }
}

START_TEST(test_adv_vs_numpy)
{
    /* FG stat_tracking.py's own example: prompts a b a c b a, rewards 1..6 */
    float r0[6] = {1, 2, 3, 4, 5, 6};
    int64_t g0[6] = {0, 1, 0, 2, 1, 0};
    float a0[6];
    double d0[6], sc;
    for (int gs = 0; gs < 2; gs++) {
        ck_assert_int_eq(fr_adv_per_prompt(6, r0, g0, gs, FR_ADV_EPS_FLOW_GRPO, a0), FR_OK);
        d_adv(6, r0, g0, gs, 1e-4, d0, &sc);
        for (int i = 0; i < 6; i++) CLOSE(a0[i], d0[i], 8 * FLT_EPSILON * sc, "example global_std %d [%d]", gs, i);
        /* 'c' is a single-sample group: exactly 0 */
        ck_assert(a0[3] == 0.0f);
    }
    /* a per-group hand value: group a = {1, 3, 6}, mean 10/3, std sqrt(38/9) */
    ck_assert_int_eq(fr_adv_per_prompt(6, r0, g0, 0, FR_ADV_EPS_FLOW_GRPO, a0), FR_OK);
    CLOSE(a0[5], (6.0 - 10.0 / 3) / (sqrt(38.0 / 9) + 1e-4), 1e-6, "A(6 in group a) = %.9g", (double)a0[5]);

    /* random batches: 8 groups of 1..24, in shuffled sample order; some groups constant */
    for (int trial = 0; trial < 20; trial++) {
        uint64_t seed0 = 0xADu + 977u * (uint64_t)trial, seed = seed0;
        enum { MAXB = 200 };
        float r[MAXB], a[MAXB];
        int64_t grp[MAXB];
        double d[MAXB];
        int B = 0;
        for (int gi = 0; gi < 8; gi++) {
            int n = 1 + (int)(fr_test_next(&seed) % 24);
            int constant = fr_test_next(&seed) % 4 == 0;
            float base = 10.0f * test_normal(&seed), c = 0.1f * (float)(1 + gi);
            for (int k = 0; k < n; k++) {
                grp[B] = 1000 - 37 * gi; /* ids need not be small or sorted */
                r[B++] = constant ? c : base + test_normal(&seed);
            }
        }
        for (int i = B - 1; i > 0; i--) { /* shuffle */
            int j = (int)(fr_test_next(&seed) % (uint64_t)(i + 1));
            float tr = r[i];
            int64_t tg = grp[i];
            r[i] = r[j], grp[i] = grp[j], r[j] = tr, grp[j] = tg;
        }
        for (int gs = 0; gs < 3; gs++) {
            if (gs < 2) {
                ck_assert_int_eq(fr_adv_per_prompt(B, r, grp, gs, FR_ADV_EPS_FLOW_GRPO, a), FR_OK);
                d_adv(B, r, grp, gs, 1e-4, d, &sc);
            } else {
                ck_assert_int_eq(fr_adv_batch(B, r, FR_ADV_EPS_FLOW_GRPO, a), FR_OK);
                d_adv(B, r, NULL, 0, 1e-4, d, &sc);
            }
            for (int i = 0; i < B; i++) {
                /* r − mean loses at most ~(B/8 + 4) ulps of max|r| through the canonical mean
                 * and the std ~ the same relative; 64 ulps of the largest |r − m|/(s + eps) */
                CLOSE(a[i], d[i], 64 * FLT_EPSILON * sc, "seed %llx mode %d sample %d: A %.9g vs numpy %.12g",
                      (unsigned long long)seed0, gs, i, (double)a[i], d[i]);
                if (d[i] == 0.0) ck_assert_msg(a[i] == 0.0f, "seed %llx: constant group gave A = %g", (unsigned long long)seed0, (double)a[i]);
            }
        }
    }
    /* identical rewards whose float32 sum rounds: still exactly 0 */
    float same[7] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    int64_t one[7] = {0, 0, 0, 0, 0, 0, 0};
    float az[7];
    ck_assert_int_eq(fr_adv_per_prompt(7, same, one, 0, FR_ADV_EPS_FLOW_GRPO, az), FR_OK);
    for (int i = 0; i < 7; i++) ck_assert(az[i] == 0.0f);
    float m, s;
    ck_assert_int_eq(fr_adv_mean_std(same, 7, &m, &s), FR_OK);
    ck_assert(m == 0.1f && s == 0.0f);
    same[3] = NAN;
    ck_assert_int_eq(fr_adv_per_prompt(7, same, one, 0, FR_ADV_EPS_FLOW_GRPO, az), FR_ERR_NUMERIC);
}
END_TEST

START_TEST(test_adv_filter_zero)
{
    enum { B = 24 };
    float adv[B];
    uint8_t keep[B], keep2[B];
    int64_t kept;
    /* 7 zeros among 24: 17 kept, num_batches 4 -> re-enable 3 */
    for (int i = 0; i < B; i++) adv[i] = (i % 3 == 1 && i < 21) ? 0.0f : 0.5f * (float)(i + 1);
    int nzero = 0;
    for (int i = 0; i < B; i++) nzero += adv[i] == 0.0f;
    ck_assert_int_eq(nzero, 7);
    int hits[B];
    memset(hits, 0, sizeof hits);
    int differ = 0;
    const int E = 2000;
    for (int e = 0; e < E; e++) {
        ck_assert_int_eq(fr_adv_filter_zero(B, adv, 4, 42, FR_RNG_TEST, (uint32_t)e, 0, keep, &kept), FR_OK);
        ck_assert_int_eq(kept, 20);
        int n = 0;
        for (int i = 0; i < B; i++) {
            n += keep[i];
            if (adv[i] != 0.0f) ck_assert(keep[i]);
            else hits[i] += keep[i];
        }
        ck_assert_int_eq(n, 20);
        /* a pure function of the coordinates */
        ck_assert_int_eq(fr_adv_filter_zero(B, adv, 4, 42, FR_RNG_TEST, (uint32_t)e, 0, keep2, &kept), FR_OK);
        ck_assert(memcmp(keep, keep2, B) == 0);
        ck_assert_int_eq(fr_adv_filter_zero(B, adv, 4, 42, FR_RNG_TEST, (uint32_t)e, 1, keep2, &kept), FR_OK);
        differ += memcmp(keep, keep2, B) != 0;
    }
    ck_assert_msg(differ > E / 2, "the shard coordinate changes the choice only %d of %d times", differ, E);
    /* the documented choice: among the dropped, numbered k in sample order, the 3 smallest
     * (fr_rng_u32(seed, purpose, epoch, shard, 0, k), k) */
    for (uint32_t e = 0; e < 50; e++) {
        ck_assert_int_eq(fr_adv_filter_zero(B, adv, 4, 42, FR_RNG_TEST, e, 5, keep, &kept), FR_OK);
        uint32_t wk[B];
        int idx[B], F = 0;
        for (int i = 0; i < B; i++)
            if (adv[i] == 0.0f) {
                wk[F] = fr_rng_u32(42, FR_RNG_TEST, e, 5, 0, (uint32_t)F);
                idx[F++] = i;
            }
        for (int k = 0; k < F; k++) {
            int rank = 0; /* how many dropped samples precede k in (w, k) order */
            for (int j = 0; j < F; j++) rank += wk[j] < wk[k] || (wk[j] == wk[k] && j < k);
            ck_assert_msg(keep[idx[k]] == (rank < 3), "epoch %u: dropped sample %d (rank %d) keep %d", e, idx[k], rank,
                          keep[idx[k]]);
        }
    }
    /* each dropped sample is re-enabled with probability 3/7: binomial(2000, 3/7), sd ~ 22 */
    for (int i = 0; i < B; i++)
        if (adv[i] == 0.0f)
            ck_assert_msg(fabs(hits[i] - E * 3.0 / 7) < 5 * sqrt(E * 3.0 / 7 * 4.0 / 7), "sample %d re-enabled %d of %d",
                          i, hits[i], E);
    /* divisible already: nothing re-enabled */
    ck_assert_int_eq(fr_adv_filter_zero(B, adv, 17, 1, FR_RNG_TEST, 0, 0, keep, &kept), FR_OK);
    ck_assert_int_eq(kept, 17);
    /* not enough dropped samples to reach divisibility (needs 18 - 17 % 18 = 1... use 10:
     * 17 % 10 = 7 -> needs 3, 7 dropped -> fine; 16: needs 15 > 7): unchanged, as FG */
    ck_assert_int_eq(fr_adv_filter_zero(B, adv, 16, 1, FR_RNG_TEST, 0, 0, keep, &kept), FR_OK);
    ck_assert_int_eq(kept, 17);
    /* NaN != 0: a NaN advantage is kept (and the loss will show it) */
    adv[1] = NAN;
    ck_assert_int_eq(fr_adv_filter_zero(B, adv, 1, 1, FR_RNG_TEST, 0, 0, keep, &kept), FR_OK);
    ck_assert(keep[1] && kept == 18);
}
END_TEST

START_TEST(test_ddpo_tracker)
{
    fr_ddpo_tracker *t;
    ck_assert_int_eq(fr_ddpo_tracker_new(4, 3, FR_ADV_EPS_DDPO, &t), FR_OK);
    float hist[8];
    int64_t n;
    /* epoch 1: group 7 gets 2 rewards (< min_count 3): the BATCH mean/std */
    float r1[4] = {1.0f, 2.0f, 5.0f, 9.0f};
    int64_t g1[4] = {7, 3, 7, 3};
    float a[8];
    ck_assert_int_eq(fr_ddpo_tracker_update(t, 4, r1, g1, a), FR_OK);
    double bm = 17.0 / 4, bv = 0;
    for (int i = 0; i < 4; i++) bv += (r1[i] - bm) * (r1[i] - bm);
    double bs = sqrt(bv / 4);
    for (int i = 0; i < 4; i++) CLOSE(a[i], (r1[i] - bm) / (bs + 1e-6), 1e-6, "epoch 1 [%d] %.9g", i, (double)a[i]);
    ck_assert_int_eq(fr_ddpo_tracker_history(t, 7, hist, 8, &n), FR_OK);
    ck_assert(n == 2 && hist[0] == 1.0f && hist[1] == 5.0f);
    /* epoch 2: 2 more for group 7 -> 4 >= 3: the deque's stats over {1, 5, 4, 6};
     * group 3 gets 1 more -> 3 >= 3: deque {2, 9, 0} */
    float r2[3] = {4.0f, 0.0f, 6.0f};
    int64_t g2[3] = {7, 3, 7};
    ck_assert_int_eq(fr_ddpo_tracker_update(t, 3, r2, g2, a), FR_OK);
    double s7 = sqrt((9.0 + 1.0 + 0.0 + 4.0) / 4), m3 = 11.0 / 3;
    double s3 = sqrt(((2 - m3) * (2 - m3) + (9 - m3) * (9 - m3) + m3 * m3) / 3);
    CLOSE(a[0], 0.0 / (s7 + 1e-6), 1e-6, "epoch 2 [0]");
    CLOSE(a[2], 2.0 / (s7 + 1e-6), 1e-6, "epoch 2 [2] %.9g", (double)a[2]);
    CLOSE(a[1], (0.0 - m3) / (s3 + 1e-6), 1e-6, "epoch 2 [1] %.9g", (double)a[1]);
    /* epoch 3: 3 more for group 7 -> deque keeps the last 4: {6, 10, 11, 12} */
    float r3[3] = {10.0f, 11.0f, 12.0f};
    int64_t g3[3] = {7, 7, 7};
    ck_assert_int_eq(fr_ddpo_tracker_update(t, 3, r3, g3, a), FR_OK);
    ck_assert_int_eq(fr_ddpo_tracker_history(t, 7, hist, 8, &n), FR_OK);
    ck_assert(n == 4 && hist[0] == 6.0f && hist[1] == 10.0f && hist[2] == 11.0f && hist[3] == 12.0f);
    double m = 39.0 / 4, v = 0;
    for (int i = 0; i < 4; i++) v += (hist[i] - m) * (hist[i] - m);
    for (int i = 0; i < 3; i++) CLOSE(a[i], (r3[i] - m) / (sqrt(v / 4) + 1e-6), 1e-6, "epoch 3 [%d]", i);
    ck_assert_int_eq(fr_ddpo_tracker_history(t, 12345, hist, 8, &n), FR_OK);
    ck_assert(n == 0);
    ck_assert_int_eq(fr_ddpo_tracker_history(t, 7, hist, 2, &n), FR_ERR_ARG);
    fr_ddpo_tracker_free(t);
    ck_assert_int_eq(fr_ddpo_tracker_new(0, 3, FR_ADV_EPS_DDPO, &t), FR_ERR_ARG);
}
END_TEST

/* ---- windows, trained steps, averaging (docs/algorithms/samplers.md §10; docs/algorithms/flow-grpo.md §2, §4) -------- */

START_TEST(test_train_steps)
{
    /* values printed by Python 3: int(T * f) */
    struct {
        int64_t T;
        double f;
        int64_t want;
    } c[] = {{10, 0.99, 9}, {100, 0.99, 99}, {10, 1.0, 10}, {25, 0.99, 24}, {40, 0.99, 39}, {10, 0.7, 7},
             {3, 0.3, 0},   {10, 0.3, 3},   {16, 0.6, 9},  {1000, 0.29, 290}, {100, 0.29, 28}, {10, 0.57, 5},
             {100, 0.57, 56}, {50, 0.58, 28}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int64_t t;
        ck_assert_int_eq(fr_train_steps(c[i].T, c[i].f, &t), FR_OK);
        ck_assert_msg(t == c[i].want, "int(%lld * %.17g) = %lld, Python says %lld", (long long)c[i].T, c[i].f,
                      (long long)t, (long long)c[i].want);
    }
    int64_t t;
    ck_assert_int_eq(fr_train_steps(10, 1.5, &t), FR_ERR_ARG);
    ck_assert_int_eq(fr_train_steps(10, NAN, &t), FR_ERR_ARG);
    int64_t dv;
    ck_assert_int_eq(fr_grpo_accum_divisor(2, 9, &dv), FR_OK); /* SD3: grad_accum 2, T_train 9 */
    ck_assert_int_eq(dv, 18);
    ck_assert_int_eq(fr_grpo_accum_divisor(0, 9, &dv), FR_ERR_ARG);
    ck_assert_int_eq(fr_grpo_accum_divisor(3, 0, &dv), FR_ERR_ARG);
}
END_TEST

START_TEST(test_fast_window)
{
    int64_t s, len;
    /* W = 0: (0, T − 1) */
    ck_assert_int_eq(fr_fast_window(42, 0, 0, 0, 10, 0, 10, 0, &s, &len), FR_OK);
    ck_assert(s == 0 && len == 9);
    struct {
        int64_t T, r0, r1, W;
    } cfg[3] = {{10, 0, 5, 3}, {10, 0, 10, 2}, {10, 2, 9, 4}};
    for (int c = 0; c < 3; c++) {
        int64_t n = cfg[c].r1 - cfg[c].W - cfg[c].r0 + 1, cnt[16] = {0};
        const int E = 3000;
        int differ = 0;
        for (int e = 0; e < E; e++) {
            ck_assert_int_eq(fr_fast_window(42, (uint32_t)e, 1, 0, cfg[c].T, cfg[c].r0, cfg[c].r1, cfg[c].W, &s, &len), FR_OK);
            ck_assert_msg(s >= cfg[c].r0 && s <= cfg[c].r1 - cfg[c].W && len == cfg[c].W, "epoch %d: start %lld", e,
                          (long long)s);
            cnt[s - cfg[c].r0]++;
            int64_t s2, l2;
            ck_assert_int_eq(fr_fast_window(42, (uint32_t)e, 1, 0, cfg[c].T, cfg[c].r0, cfg[c].r1, cfg[c].W, &s2, &l2), FR_OK);
            ck_assert(s2 == s);
            ck_assert_int_eq(fr_fast_window(42, (uint32_t)e, 2, 0, cfg[c].T, cfg[c].r0, cfg[c].r1, cfg[c].W, &s2, &l2), FR_OK);
            differ += s2 != s;
        }
        /* every start in {r0..r1−W} appears, each within 5 sd of E/n */
        double p = 1.0 / (double)n, sdv = sqrt(E * p * (1 - p));
        for (int64_t k = 0; k < n; k++)
            ck_assert_msg(fabs((double)cnt[k] - E * p) < 5 * sdv, "config %d: start %lld drawn %lld of %d", c,
                          (long long)(cfg[c].r0 + k), (long long)cnt[k], E);
        ck_assert_msg(differ > E * (1 - p) / 2, "the call coordinate changed the draw %d of %d times", differ, E);
    }
    ck_assert_int_eq(fr_fast_window(42, 0, 0, 0, 10, 3, 4, 2, &s, &len), FR_ERR_ARG);  /* r1 − W < r0 */
    ck_assert_int_eq(fr_fast_window(42, 0, 0, 0, 10, 0, 11, 2, &s, &len), FR_ERR_ARG); /* r1 > T */
}
END_TEST

START_TEST(test_mix_window)
{
    fr_mix_window w;
    ck_assert_int_eq(fr_mix_window_init(&w, 25), FR_OK);
    ck_assert(w.max_timesteps == 23 && w.window == 4 && w.iters_per_group == 25);
    /* cur = (n / 25) mod 24; window range(cur, min(cur + 4, 23)); rollback to 0 after 23 */
    for (int64_t n = 0; n < 3 * 24 * 25 + 7; n++) {
        int64_t s, len;
        fr_mix_window_get(&w, &s, &len);
        int64_t cur = (n / 25) % 24, want_len = (cur + 4 < 23 ? cur + 4 : 23) - cur;
        ck_assert_msg(s == cur && len == (want_len > 0 ? want_len : 0), "iteration %lld: window (%lld, %lld)",
                      (long long)n, (long long)s, (long long)len);
        fr_mix_window_update(&w);
    }
    /* the hand-listed ends of the first cycle */
    ck_assert_int_eq(fr_mix_window_init(&w, 25), FR_OK);
    int64_t s, len;
    for (int n = 0; n < 20 * 25; n++) fr_mix_window_update(&w);
    fr_mix_window_get(&w, &s, &len);
    ck_assert(s == 20 && len == 3);
    for (int n = 0; n < 3 * 25; n++) fr_mix_window_update(&w);
    fr_mix_window_get(&w, &s, &len);
    ck_assert(s == 23 && len == 0); /* the empty window: a pure-ODE iteration */
    for (int n = 0; n < 25; n++) fr_mix_window_update(&w);
    fr_mix_window_get(&w, &s, &len);
    ck_assert(s == 0 && len == 4); /* rolled back */
    /* read before update: with one iteration per group, iteration 0 trains from cur = 0 */
    ck_assert_int_eq(fr_mix_window_init(&w, 25), FR_OK);
    w.iters_per_group = 1;
    fr_mix_window_get(&w, &s, &len);
    ck_assert(s == 0);
    /* without roll_back, cur clips at max: the window stays empty */
    w.roll_back = 0;
    for (int n = 0; n < 40; n++) fr_mix_window_update(&w);
    fr_mix_window_get(&w, &s, &len);
    ck_assert(s == 23 && len == 0);
    ck_assert_int_eq(fr_mix_window_init(&w, 2), FR_ERR_ARG);
}
END_TEST

Suite *suite_objectives(void)
{
    Suite *s = suite_create("objectives");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_onpolicy_ratio_exact);
    tcase_add_test(tc, test_ppo_vs_double_and_fd);
    tcase_add_test(tc, test_ppo_ties_and_branches);
    tcase_add_test(tc, test_logp_backward_fd);
    tcase_add_test(tc, test_kl_loss);
    tcase_add_test(tc, test_guard);
    tcase_add_test(tc, test_dmean_dv);
    tcase_add_test(tc, test_adv_vs_numpy);
    tcase_add_test(tc, test_adv_filter_zero);
    tcase_add_test(tc, test_ddpo_tracker);
    tcase_add_test(tc, test_train_steps);
    tcase_add_test(tc, test_fast_window);
    tcase_add_test(tc, test_mix_window);
    suite_add_tcase(s, tc);
    return s;
}
