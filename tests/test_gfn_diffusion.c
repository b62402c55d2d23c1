/* Diffusion samplers as GFlowNets (flowrl/env.h's energy targets, flowrl/gfn_diffusion.h;
 * docs/algorithms/gfn-diffusion.md, docs/envs.md §3): each target's log Z by numerical
 * integration (25GMM on a 2-D grid, Manywell's 1-D well ⇒ 164.695675) or by its factorised
 * density (Funnel), ∇log R by central differences, the ground-truth samplers' moments, log P_B of
 * the bridge by hand, each loss by hand with its gradient by central differences, the zero-residual
 * identities, the untrained sampler's exact importance weight, and the trainer's gradients equal
 * on every backend (exploration: tests/test_gfn_diffusion_expl.c). Resume and ref = opt of whole
 * runs: tests/test_algos.c (the registry). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/philox.h"
#include "tests/gfn_diffusion_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define LOG_2PI 1.8378770664093454836

/* A test input: N(0, s²) from Philox (FR_RNG_TEST, c0, i). */
static double rnd(uint32_t c0, uint32_t i, double s) { return s * (double)fr_rng_normal(7, FR_RNG_TEST, c0, 0, 0, i); }

/* 25GMM: ∫ R over [−16, 16]² by the midpoint rule at h = 0.04 (the integrand is smooth and
 * negligible at the border, so the rule is exact to ~1e-12); log Z = 0. */
START_TEST(test_gmm25_log_z_grid)
{
    fr_env e = target(&fr_env_gmm25);
    ck_assert_int_eq(e.state_dim, 2);
    const double h = 0.04;
    double s = 0.0;
    for (int i = 0; i < 800; i++)
        for (int j = 0; j < 800; j++) {
            double x[2] = {-16.0 + (i + 0.5) * h, -16.0 + (j + 0.5) * h};
            s += fr_awm_exp(e.energy->log_reward(&e, x));
        }
    const double lz = fr_awm_log(s * h * h);
    ck_assert_msg(fabs(lz - 0.0) < 1e-9 && e.energy->log_z(&e) == 0.0, "25GMM: log ∫R = %.3e", lz);
    fr_env_free(&e);
}
END_TEST

/* Manywell: Z_x1 = ∫ exp(−x⁴ + 6x² + x/2) dx by the midpoint rule over [−5, 5] at h = 1e-4
 * (≈ 11784.50927, many_well.py's constant), ∫ exp(−x²/2) = √(2π); so log Z = 16·(log Z_x1 +
 * ½ log 2π) = 164.695675 (spec gflownets.md §13.5) at D = 32. */
START_TEST(test_manywell_log_z_integral)
{
    fr_env e = target(&fr_env_manywell);
    ck_assert_int_eq(e.state_dim, 32);
    double z1 = 0.0;
    const double h = 1e-4;
    for (int i = 0; i < 100000; i++) {
        double x = -5.0 + (i + 0.5) * h;
        z1 += fr_awm_exp(-x * x * x * x + 6.0 * x * x + 0.5 * x) * h;
    }
    ck_assert_msg(fabs(z1 - 11784.50927) < 1e-4, "Z_x1 = %.6f", z1);
    const double lz = 16.0 * (fr_awm_log(z1) + 0.5 * LOG_2PI);
    ck_assert_msg(fabs(lz - 164.695675) < 1e-6 && fabs(e.energy->log_z(&e) - 164.695675) < 1e-6,
                  "log Z integrated %.7f, the target's %.7f", lz, e.energy->log_z(&e));
    /* a block's log R by hand */
    double x[32];
    for (int d = 0; d < 32; d++) x[d] = rnd(1, (uint32_t)d, 1.5);
    double want = 0.0;
    for (int j = 0; j < 16; j++)
        want += -pow(x[2 * j], 4) + 6.0 * x[2 * j] * x[2 * j] + 0.5 * x[2 * j] - 0.5 * x[2 * j + 1] * x[2 * j + 1];
    ck_assert(fabs(e.energy->log_reward(&e, x) - want) < 1e-10 * fabs(want));
    fr_env_free(&e);
}
END_TEST

/* Funnel: log R is log N(x0; 0, σ0²) + Σ_i log N(x_i; 0, e^{x0}), a normalised density (log Z = 0),
 * by hand; and in D = 2 with σ0 = 1 the integral over x1 at fixed x0 is the N(x0; 0, 1) density
 * (a grid in x1 scaled by e^{x0/2}). */
START_TEST(test_funnel_normalised)
{
    fr_env e = target(&fr_env_funnel);
    ck_assert_int_eq(e.state_dim, 10);
    ck_assert(e.energy->log_z(&e) == 0.0);
    for (uint32_t c = 0; c < 20; c++) {
        double x[10];
        for (int d = 0; d < 10; d++) x[d] = rnd(2 + c, (uint32_t)d, d == 0 ? 3.0 : 2.0);
        double want = -0.5 * (x[0] * x[0] / 9.0 + LOG_2PI + log(9.0));
        for (int d = 1; d < 10; d++) want += -0.5 * (x[d] * x[d] / exp(x[0]) + LOG_2PI + x[0]);
        ck_assert_msg(fabs(e.energy->log_reward(&e, x) - want) < 1e-9 * (1.0 + fabs(want)), "funnel at %u", c);
    }
    fr_env_free(&e);
    fr_funnel_opts o = {2, 1.0};
    ck_assert_int_eq(fr_env_create(&fr_env_funnel, &o, &e), FR_OK);
    double tot = 0.0;
    const double h0 = 0.01;
    for (int i = 0; i < 1600; i++) {
        const double x0 = -8.0 + (i + 0.5) * h0, sd = exp(0.5 * x0), h1 = 0.01 * sd;
        double inner = 0.0;
        for (int j = 0; j < 2400; j++) {
            double x[2] = {x0, -12.0 * sd + (j + 0.5) * h1};
            inner += fr_awm_exp(e.energy->log_reward(&e, x)) * h1;
        }
        tot += inner * h0;
    }
    ck_assert_msg(fabs(fr_awm_log(tot)) < 1e-9, "funnel D=2: log ∫R = %.3e", fr_awm_log(tot));
    fr_env_free(&e);
}
END_TEST

/* ∇log R against central differences (float64, step 1e-5·(1 + |x|)) at 20 points per target. */
START_TEST(test_grad_log_r_fd)
{
    const fr_env_class *cs[] = {&fr_env_gmm25, &fr_env_funnel, &fr_env_manywell};
    const double scale[] = {6.0, 1.5, 1.5};
    for (int c = 0; c < 3; c++) {
        fr_env e = target(cs[c]);
        const int D = e.state_dim;
        double x[32], g[32];
        for (uint32_t p = 0; p < 20; p++) {
            for (int d = 0; d < D; d++) x[d] = rnd(100 + p, (uint32_t)d, scale[c]);
            const double lr = e.energy->grad_log_reward(&e, x, g);
            ck_assert(lr == e.energy->log_reward(&e, x));
            for (int d = 0; d < D; d++) {
                const double h = 1e-5 * (1.0 + fabs(x[d])), x0 = x[d];
                x[d] = x0 + h;
                const double up = e.energy->log_reward(&e, x);
                x[d] = x0 - h;
                const double dn = e.energy->log_reward(&e, x);
                x[d] = x0;
                const double fd = (up - dn) / (2.0 * h);
                ck_assert_msg(fabs(fd - g[d]) < 1e-5 * (1.0 + fabs(g[d])), "%s point %u dim %d: analytic %.9g, fd %.9g",
                              cs[c]->name, p, d, g[d], fd);
            }
        }
        fr_env_free(&e);
    }
}
END_TEST

/* The ground-truth samplers: pure functions of (seed, i), and their moments within 5 standard
 * errors over n = 20,000 samples. 25GMM: E x = 0, E x_d² = 50 + 0.3; Funnel: E x0² = 9,
 * E x_i² e^{−x0} = 1; Manywell: E x2² = 1 and P(x1 > 0) = ∫_{x>0} e^{well} / Z_x1 (integrated). */
START_TEST(test_samplers_moments)
{
    const int n = 20000;
    double x[32], y[32];
    fr_env e = target(&fr_env_gmm25);
    double m0 = 0.0, q0 = 0.0;
    for (int i = 0; i < n; i++) {
        e.energy->sample(&e, 3, (uint32_t)i, x);
        e.energy->sample(&e, 3, (uint32_t)i, y);
        ck_assert(memcmp(x, y, sizeof(double) * 2) == 0);
        m0 += x[0];
        q0 += x[1] * x[1];
    }
    ck_assert_msg(fabs(m0 / n) < 5.0 * sqrt(50.3 / n) && fabs(q0 / n - 50.3) < 5.0 * 40.0 / sqrt(n), "25GMM: mean %g, E x² %g",
                  m0 / n, q0 / n);
    fr_env_free(&e);
    e = target(&fr_env_funnel);
    double a = 0.0, b = 0.0;
    for (int i = 0; i < n; i++) {
        e.energy->sample(&e, 3, (uint32_t)i, x);
        a += x[0] * x[0];
        b += x[5] * x[5] * exp(-x[0]);
    }
    ck_assert_msg(fabs(a / n - 9.0) < 5.0 * 9.0 * sqrt(2.0 / n) && fabs(b / n - 1.0) < 5.0 * sqrt(2.0 / n),
                  "funnel: E x0² %g, E x² e^-x0 %g", a / n, b / n);
    fr_env_free(&e);
    e = target(&fr_env_manywell);
    double pos = 0.0, q2 = 0.0, zp = 0.0, z = 0.0;
    for (int i = 0; i < 100000; i++) {
        const double t = -5.0 + (i + 0.5) * 1e-4, w = exp(-t * t * t * t + 6.0 * t * t + 0.5 * t);
        z += w;
        if (t > 0.0) zp += w;
    }
    for (int i = 0; i < n / 16; i++) {
        e.energy->sample(&e, 3, (uint32_t)i, x);
        for (int j = 0; j < 16; j++) {
            pos += x[2 * j] > 0.0;
            q2 += x[2 * j + 1] * x[2 * j + 1];
        }
    }
    const double p = zp / z, ph = pos / (n / 16 * 16);
    ck_assert_msg(fabs(ph - p) < 5.0 * sqrt(p * (1 - p) / n) && fabs(q2 / (n / 16 * 16) - 1.0) < 5.0 * sqrt(2.0 / n),
                  "manywell: P(x1 > 0) %g (integrated %g), E x2² %g", ph, p, q2 / (n / 16 * 16));
    fr_env_free(&e);
}
END_TEST

/* The bridge: x_k | x_{k+1} ~ N(x_{k+1}·k/(k+1), t_scale·Δt·k/(k+1)), summed over D; 0 at k = 0. */
START_TEST(test_log_pb_by_hand)
{
    const int64_t T = 10, D = 3;
    const double ts = 5.0;
    double a[3], b[3];
    for (int d = 0; d < 3; d++) {
        a[d] = rnd(9, (uint32_t)d, 1.0);
        b[d] = rnd(9, (uint32_t)(d + 3), 1.0);
    }
    ck_assert(fr_gfnd_log_pb(a, b, 0, D, ts, T) == 0.0);
    for (int64_t k = 1; k < T; k++) {
        const double v = ts * 0.1 * (double)k / (double)(k + 1);
        double want = 0.0;
        for (int d = 0; d < 3; d++) {
            const double u = a[d] - b[d] * (double)k / (double)(k + 1);
            want += -0.5 * u * u / v - 0.5 * (LOG_2PI + log(v));
        }
        ck_assert_msg(fabs(fr_gfnd_log_pb(a, b, k, D, ts, T) - want) < 1e-12, "k %lld", (long long)k);
    }
}
END_TEST

/* Random (B, T) inputs of the losses. */
typedef struct {
    double pf[12], pb[12], f[15], r[3];
} batch;
enum { LB = 3, LT = 4 };

static void fill(batch *x, uint32_t c)
{
    for (int i = 0; i < LB * LT; i++) {
        x->pf[i] = rnd(c, (uint32_t)i, 2.0);
        x->pb[i] = i % LT == 0 ? 0.0 : rnd(c + 1, (uint32_t)i, 2.0);
    }
    for (int i = 0; i < LB * (LT + 1); i++) x->f[i] = rnd(c + 2, (uint32_t)i, 1.0);
    for (int b = 0; b < LB; b++) {
        x->r[b] = rnd(c + 3, (uint32_t)b, 3.0);
        x->f[b * (LT + 1) + LT] = x->r[b];
    }
}

static double loss_of(fr_gfnd_loss k, const batch *x, double lz, double lam)
{
    double l;
    ck_assert_int_eq(fr_gfnd_loss_eval(k, LB, LT, x->pf, x->pb, x->f, x->r, lz, lam, &l, NULL, NULL, NULL), FR_OK);
    return l;
}

/* Each loss by hand (spec §7.1; gflownet_losses.py), then its gradients by central differences. */
START_TEST(test_losses_by_hand_and_fd)
{
    batch x;
    fill(&x, 20);
    const double lz = 0.7, lam = 2.0;
    double s[LB], want_tb = 0.0, want_avg = 0.0, want_db = 0.0, want_sub = 0.0, mean = 0.0;
    for (int b = 0; b < LB; b++) {
        s[b] = -x.r[b];
        for (int j = 0; j < LT; j++) s[b] += x.pf[b * LT + j] - x.pb[b * LT + j];
        want_tb += 0.5 * (lz + s[b]) * (lz + s[b]) / LB;
        mean += s[b] / LB;
    }
    for (int b = 0; b < LB; b++) want_avg += 0.5 * (s[b] - mean) * (s[b] - mean) / LB;
    double tot = 0.0;
    for (int i = 0; i <= LT; i++)
        for (int j = i + 1; j <= LT; j++) tot += pow(lam, j - i);
    for (int b = 0; b < LB; b++) {
        const double *f = x.f + b * (LT + 1);
        for (int j = 0; j < LT; j++) {
            const double r = f[j] + x.pf[b * LT + j] - x.pb[b * LT + j] - f[j + 1];
            want_db += 0.5 * r * r / LB;
        }
        for (int i = 0; i <= LT; i++)
            for (int j = i + 1; j <= LT; j++) {
                double r = f[i] - f[j];
                for (int m = i; m < j; m++) r += x.pf[b * LT + m] - x.pb[b * LT + m];
                want_sub += pow(lam, j - i) / tot * r * r; /* summed over the batch, no ½ */
            }
    }
    const double want[4] = {want_tb, want_avg, want_db, want_sub};
    for (int k = 0; k < 4; k++) {
        double l = loss_of((fr_gfnd_loss)k, &x, lz, lam);
        ck_assert_msg(fabs(l - want[k]) < 1e-12 * (1.0 + want[k]), "%s: %.15g, by hand %.15g",
                      fr_gfnd_loss_name((fr_gfnd_loss)k), l, want[k]);
        double gpf[LB * LT], gf[LB * (LT + 1)], gz;
        ck_assert_int_eq(fr_gfnd_loss_eval((fr_gfnd_loss)k, LB, LT, x.pf, x.pb, x.f, x.r, lz, lam, &l, gpf, gf, &gz), FR_OK);
        const double h = 1e-6;
        for (int i = 0; i < LB * LT; i++) {
            batch y = x;
            y.pf[i] += h;
            const double up = loss_of((fr_gfnd_loss)k, &y, lz, lam);
            y.pf[i] -= 2 * h;
            const double fd = (up - loss_of((fr_gfnd_loss)k, &y, lz, lam)) / (2 * h);
            ck_assert_msg(fabs(fd - gpf[i]) < 1e-6 * (1.0 + fabs(fd)), "%s d/dlogpf[%d]: %.9g vs fd %.9g",
                          fr_gfnd_loss_name((fr_gfnd_loss)k), i, gpf[i], fd);
        }
        if (k >= 2)
            for (int i = 0; i < LB * (LT + 1); i++) {
                if (i % (LT + 1) == LT) continue; /* log F_T = log R is not a parameter */
                batch y = x;
                y.f[i] += h;
                const double up = loss_of((fr_gfnd_loss)k, &y, lz, lam);
                y.f[i] -= 2 * h;
                const double fd = (up - loss_of((fr_gfnd_loss)k, &y, lz, lam)) / (2 * h);
                ck_assert_msg(fabs(fd - gf[i]) < 1e-6 * (1.0 + fabs(fd)), "%s d/dlogf[%d]: %.9g vs fd %.9g",
                              fr_gfnd_loss_name((fr_gfnd_loss)k), i, gf[i], fd);
            }
        if (k == 0) {
            const double fd = (loss_of(FR_GFND_TB, &x, lz + h, lam) - loss_of(FR_GFND_TB, &x, lz - h, lam)) / (2 * h);
            ck_assert_msg(fabs(fd - gz) < 1e-6 * (1.0 + fabs(fd)), "tb d/dlogZ: %.9g vs fd %.9g", gz, fd);
        }
    }
}
END_TEST

/* Zero residuals: tb with log Z = −s_b for a batch whose s_b agree, tb-avg on the same batch, and
 * db / subtb with log F_i = log F_0 + Σ_{m<i} (log P_B − log P_F)_m (so F_T = R): loss 0 and zero
 * gradients. */
START_TEST(test_zero_residual_identities)
{
    batch x;
    fill(&x, 40);
    for (int b = 0; b < LB; b++) {
        double s = 0.0;
        for (int j = 0; j < LT; j++) s += x.pf[b * LT + j] - x.pb[b * LT + j];
        x.r[b] = s - 1.25; /* s_b = Σ log P_F − Σ log P_B − log R = 1.25 for every b */
        double *f = x.f + b * (LT + 1);
        f[0] = x.r[b] - s; /* then F_T = R */
        for (int j = 0; j < LT; j++) f[j + 1] = f[j] + x.pf[b * LT + j] - x.pb[b * LT + j];
        ck_assert(fabs(f[LT] - x.r[b]) < 1e-12);
        f[LT] = x.r[b];
    }
    for (int k = 0; k < 4; k++) {
        double l, gpf[LB * LT], gf[LB * (LT + 1)], gz;
        ck_assert_int_eq(
            fr_gfnd_loss_eval((fr_gfnd_loss)k, LB, LT, x.pf, x.pb, x.f, x.r, -1.25, 2.0, &l, gpf, gf, &gz), FR_OK);
        ck_assert_msg(l < 1e-24, "%s: loss %g at zero residuals", fr_gfnd_loss_name((fr_gfnd_loss)k), l);
        for (int i = 0; i < LB * LT; i++) ck_assert(fabs(gpf[i]) < 1e-12);
    }
    /* and non-finite inputs are named */
    x.pf[5] = NAN;
    double l;
    ck_assert_int_eq(fr_gfnd_loss_eval(FR_GFND_TB, LB, LT, x.pf, x.pb, NULL, x.r, 0.0, 2.0, &l, NULL, NULL, NULL),
                     FR_ERR_NUMERIC);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "log P_F[1, 1]"));
}
END_TEST

/* The untrained sampler (zero_init, fixed variance, no Langevin) is Brownian motion of variance
 * t_scale, whose bridge is P_B: P_F(τ)/P_B(τ|x) = N(x; 0, t_scale·I) exactly, so every evaluation
 * weight is log R(x) − log N(x; 0, t_scale·I) (the TB residual's identity at log Z = log Ẑ). */
START_TEST(test_untrained_weight_identity)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_funnel);
    fr_gfnd_opts o = tiny_opts(FR_GFND_TB);
    fr_gfnd_trainer *t;
    ck_assert_msg(fr_gfnd_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    const int64_t n = 40, D = 10;
    double *xs = malloc((size_t)(n * D) * sizeof *xs), *w = malloc((size_t)n * sizeof *w);
    fr_gfnd_eval ev;
    ck_assert_int_eq(fr_gfnd_trainer_eval(t, n, &ev, xs), FR_OK);
    double elbo = 0.0, m = -INFINITY, s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = e.energy->log_reward(&e, xs + i * D);
        for (int64_t d = 0; d < D; d++) v -= -0.5 * (xs[i * D + d] * xs[i * D + d] / 5.0 + LOG_2PI + log(5.0));
        w[i] = v;
        elbo += v / n;
        if (v > m) m = v;
    }
    for (int64_t i = 0; i < n; i++) s += exp(w[i] - m);
    ck_assert_msg(fabs(ev.elbo - elbo) < 1e-9 * (1.0 + fabs(elbo)), "ELBO %.12g, Brownian identity %.12g", ev.elbo, elbo);
    ck_assert_msg(fabs(ev.log_z_is - (m + log(s / n))) < 1e-9 * (1.0 + fabs(m)), "log Z_IS %.12g vs %.12g", ev.log_z_is,
                  m + log(s / n));
    ck_assert(ev.log_z_learned == 0.0 && ev.log_z_true == 0.0 && isfinite(ev.eubo));
    fr_gfnd_trainer_free(t);
    free(xs);
    free(w);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* Two gradient steps (the second after an SGD step on the first's gradient, so the weights move)
 * of every loss, with Langevin and a learned variance: the gradients' digest and the loss are
 * the same bits on ref, opt at 1 and 3 threads, and cuda-emu where built. */
static uint64_t grad_digest(const char *name, int threads, fr_gfnd_loss k, double *loss)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, name, 0, threads) == FR_OK, "%s: %s", name, fr_last_error());
    fr_env e = target(&fr_env_gmm25);
    fr_gfnd_opts o = tiny_opts(k);
    o.langevin = 1;
    o.learned_variance = 1;
    o.zero_init = 0;
    o.exploration = 0.5;
    o.partial_energy = k == FR_GFND_SUBTB;
    fr_gfnd_trainer *t;
    ck_assert_msg(fr_gfnd_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_param *ps;
    int np;
    const int n = fr_gfnd_trainer_params(t, &ps, &np);
    uint64_t d = 0;
    for (int it = 0; it < 2; it++) {
        fr_gfnd_step_info info;
        ck_assert_msg(fr_gfnd_trainer_grad(t, &info) == FR_OK, "%s", fr_last_error());
        *loss = info.loss;
        for (int p = 0; p < n; p++) {
            const int64_t c = fr_tensor_numel(ps[p].value);
            float *v = malloc((size_t)c * sizeof *v), *g = malloc((size_t)c * sizeof *g);
            ck_assert_int_eq(fr_d2h(&be, v, ps[p].value->data, (size_t)c * sizeof *v), FR_OK);
            ck_assert_int_eq(fr_d2h(&be, g, ps[p].grad->data, (size_t)c * sizeof *g), FR_OK);
            d ^= fr_digest_bytes(g, (size_t)c * sizeof *g) + (uint64_t)p;
            for (int64_t i = 0; i < c; i++) v[i] -= 0.01f * g[i];
            ck_assert_int_eq(fr_h2d(&be, ps[p].value->data, v, (size_t)c * sizeof *v), FR_OK);
            free(v);
            free(g);
        }
    }
    fr_gfnd_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return d;
}

START_TEST(test_trainer_backends_bitwise)
{
    for (int k = 0; k < 4; k++) {
        double l0, l;
        const uint64_t want = grad_digest("ref", 1, (fr_gfnd_loss)k, &l0);
        ck_assert(isfinite(l0) && l0 > 0.0);
        for (size_t i = 0; i < N_VS_REF; i++) {
            if (!vs_ref_here(i)) continue;
            const uint64_t got = grad_digest(k_vs_ref[i].name, k_vs_ref[i].threads, (fr_gfnd_loss)k, &l);
            ck_assert_msg(got == want && l == l0, "%s: %s at %d threads differs from ref",
                          fr_gfnd_loss_name((fr_gfnd_loss)k), k_vs_ref[i].name, k_vs_ref[i].threads);
        }
    }
}
END_TEST

/* Not an energy target: one line naming the environment. */
START_TEST(test_trainer_errors)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, NULL, &e), FR_OK);
    fr_gfnd_opts o = tiny_opts(FR_GFND_TB);
    fr_gfnd_trainer *t;
    ck_assert_int_eq(fr_gfnd_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "is not an energy target"));
    fr_env_free(&e);
    fr_manywell_opts mo = {7};
    ck_assert_int_eq(fr_env_create(&fr_env_manywell, &mo, &e), FR_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(fr_last_error(), "--dim 7"));
    fr_backend_close(&be);
}
END_TEST

static char g_out[1 << 14];

START_TEST(test_cli_envs_energy)
{
    ck_assert_int_eq(fr_test_run_cli("envs", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "gmm25 (energy)") && strstr(g_out, "funnel (energy)") &&
                      strstr(g_out, "manywell (energy)") && strstr(g_out, "32 dimensions, log Z 164.695675"),
                  "%s", g_out);
}
END_TEST

Suite *suite_gfn_diffusion(void)
{
    Suite *s = suite_create("gfn_diffusion");
    TCase *tc = tcase_create("targets");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gmm25_log_z_grid);
    tcase_add_test(tc, test_manywell_log_z_integral);
    tcase_add_test(tc, test_funnel_normalised);
    tcase_add_test(tc, test_grad_log_r_fd);
    tcase_add_test(tc, test_samplers_moments);
    tcase_add_test(tc, test_cli_envs_energy);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("trainer");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, test_log_pb_by_hand);
    tcase_add_test(tl, test_losses_by_hand_and_fd);
    tcase_add_test(tl, test_zero_residual_identities);
    tcase_add_test(tl, test_untrained_weight_identity);
    tcase_add_test(tl, test_trainer_backends_bitwise);
    tcase_add_test(tl, test_trainer_errors);
    suite_add_tcase(s, tl);
    return s;
}
