/* The Box environment and its GFlowNet (flowrl/gfn_box.h; docs/envs.md §8,
 * docs/algorithms/gfn-box.md): the reward at hand-picked points, log Z = log 0.305, the exact cell
 * target, the target sampler's band mass, the elementary functions against libm, the log-probs of
 * a hand trajectory, every gradient by central differences, the draws' geometry and moments, the
 * KDE JSD, and the trainer's gradients equal on every backend. Whole runs (resume, ref = opt at
 * 1-3 threads, cuda-emu): tests/test_algos.c (the registry). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/gfn_box.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_env box_env(double delta)
{
    fr_env e;
    fr_box_opts o;
    ck_assert_int_eq(fr_env_defaults(&fr_env_box, &o), FR_OK);
    o.delta = delta;
    ck_assert_msg(fr_env_create(&fr_env_box, &o, &e) == FR_OK, "%s", fr_last_error());
    ck_assert_ptr_nonnull(fr_box_of(&e));
    return e;
}

/* torchgfn Box.reward by hand: ring |x_d − ½| > ¼ (R1), band 0.3 < |x_d − ½| < 0.4 (R2), in float32. */
START_TEST(test_box_reward_by_hand)
{
    fr_env e = box_env(0.25);
    const fr_box_opts *o = fr_box_of(&e);
    const double pts[][3] = {{0.5, 0.5, 0.1f},  {0.1, 0.1, 0.1f + 0.5f},          {0.15, 0.15, 0.1f + 0.5f + 2.0f},
                             {0.15, 0.5, 0.1f}, {0.95, 0.05, 0.1f + 0.5f},         {0.85, 0.15, 0.1f + 0.5f + 2.0f},
                             {0.2, 0.85, 0.1f + 0.5f}, {0.0, 0.0, 0.1f + 0.5f},    {0.8, 0.8, 0.1f + 0.5f}};
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++)
        ck_assert_msg(fr_box_reward(o, pts[i]) == (float)pts[i][2], "R(%g, %g) = %.9g, expected %.9g", pts[i][0], pts[i][1],
                      fr_box_reward(o, pts[i]), pts[i][2]);
    /* spec gflownets.md §6: log Z = log(R0 + 0.25 R1 + 0.04 R2) = log 0.305 = −1.187444 */
    ck_assert_msg(fabs(fr_box_log_z(o) - -1.187444) < 1e-6, "log Z %.9f", fr_box_log_z(o));
    /* the exact cell masses: sum 1; cell [0.1, 0.2)² is all ring and band: (0.1 + 0.5 + 2)·0.01 / 0.305 */
    double p[100], sum = 0.0;
    fr_box_target_cells(o, 10, p);
    for (int i = 0; i < 100; i++) sum += p[i];
    ck_assert_msg(fabs(sum - 1.0) < 1e-12, "cells sum to %.15g", sum);
    ck_assert_msg(fabs(p[1 * 10 + 1] - 0.026 / 0.305) < 1e-12, "cell (1, 1) %.15g", p[11]);
    ck_assert_msg(fabs(p[5 * 10 + 5] - 0.001 / 0.305) < 1e-12, "cell (5, 5) %.15g", p[55]);
    /* forced exits: ‖1 − s‖ ≤ δ or a coordinate ≥ 1 − ε */
    const double a[2] = {0.85, 0.85}, b[2] = {0.8, 0.8}, c[2] = {1.0, 0.1};
    ck_assert(fr_box_must_exit(o, a));
    ck_assert(!fr_box_must_exit(o, b));
    ck_assert(fr_box_must_exit(o, c));
    ck_assert_int_eq(e.max_steps, 10);
    fr_env_free(&e);
}
END_TEST

/* The target sampler against the exact cells (20,000 samples, L1 ≤ 0.08: the noise floor
 * Σ √(2p(1−p)/(πN)) is 0.045), and its band mass 0.04·2.6/0.305 = 0.3410 (train_box.py's bound
 * R0 + max(R1, R2) would give 0.2948). */
START_TEST(test_box_target_sampler)
{
    fr_env e = box_env(0.25);
    const fr_box_opts *o = fr_box_of(&e);
    enum { N = 20000 };
    double h[100] = {0}, p[100], band = 0.0, l1 = 0.0;
    for (uint32_t i = 0; i < N; i++) {
        double x[2];
        fr_box_target_sample(o, 3, i, x);
        ck_assert(x[0] >= 0.0 && x[0] < 1.0 && x[1] >= 0.0 && x[1] < 1.0);
        h[(int)(x[0] * 10) * 10 + (int)(x[1] * 10)] += 1.0 / N;
        band += fr_box_reward(o, x) > 2.0f ? 1.0 / N : 0.0;
    }
    fr_box_target_cells(o, 10, p);
    for (int i = 0; i < 100; i++) l1 += fabs(h[i] - p[i]);
    ck_assert_msg(l1 < 0.08, "target samples: L1 %.4f to the exact cells", l1);
    ck_assert_msg(fabs(band - 0.104 / 0.305) < 0.0135, "band mass %.4f, expected %.4f (4 sd: 0.0135)", band, 0.104 / 0.305);
    fr_env_free(&e);
}
END_TEST

/* atan / acos against libm (within 4e-16 absolute), lgamma (1e-13 relative), digamma at known
 * values and as lgamma's derivative. */
START_TEST(test_box_elementary)
{
    for (int i = -40; i <= 40; i++) {
        const double x = i * 0.37 + 0.011 * i * i;
        ck_assert_msg(fabs(fr_box_atan(x) - atan(x)) < 4e-16, "atan(%g): %.17g vs %.17g", x, fr_box_atan(x), atan(x));
        const double c = i / 40.0;
        ck_assert_msg(fabs(fr_box_acos(c) - acos(c)) < 4e-16 * 8, "acos(%g): %.17g vs %.17g", c, fr_box_acos(c), acos(c));
    }
    for (double x = 0.05; x < 12.0; x *= 1.37)
        ck_assert_msg(fabs(fr_box_lgamma(x) - lgamma(x)) < 1e-13 * (1.0 + fabs(lgamma(x))), "lgamma(%g): %.17g vs %.17g", x,
                      fr_box_lgamma(x), lgamma(x));
    ck_assert(fabs(fr_box_digamma(1.0) - -0.57721566490153286) < 1e-13);
    ck_assert(fabs(fr_box_digamma(0.5) - -1.9635100260214235) < 1e-13);
    for (double x = 0.1; x < 10.0; x *= 1.5) {
        const double h = 1e-5 * x, fd = (lgamma(x + h) - lgamma(x - h)) / (2 * h);
        ck_assert_msg(fabs(fr_box_digamma(x) - fd) < 1e-7 * (1.0 + fabs(fd)), "digamma(%g) %.12g vs %.12g", x, fr_box_digamma(x), fd);
    }
}
END_TEST

/* A hand trajectory s0 → s1 → s2 → exit at δ = 0.25 with one-component mixtures whose densities
 * are known in closed form: Beta(2, 1) (pdf 2u: concentrations [1, 3], raw α 0 → 2, raw β −800 →
 * 1) and Beta(1, 1) (uniform: raw 0 with concentrations [0.5, 1.5]). */
START_TEST(test_box_log_probs_hand_trajectory)
{
    fr_env e = box_env(0.25);
    const fr_box_opts *o = fr_box_of(&e);
    const double d = 0.25, pi = 3.14159265358979323846, CL = 1.1920928955078125e-07;
    const fr_box_policy pol = {1, 1, 1.0, 3.0};
    /* s0: radius fraction 0.5 ~ Beta(2, 1) (density 1), angle fraction 1/3 ~ Beta(2, 1) (density 2/3) */
    const double s0[2] = {0, 0}, a0[2] = {d * 0.5 * cos(pi / 6), d * 0.5 * sin(pi / 6)};
    const double out0[5] = {0.0, 0.0, -800.0, 0.0, -800.0};
    double lp;
    ck_assert_int_eq(fr_box_log_pf(o, &pol, s0, a0, 0, out0, 0.0, NULL, &lp), FR_OK);
    double want = log(2.0 * 0.5) + log(2.0 / 3.0) - log(d) - log(pi / 2) - log(0.5 * d);
    ck_assert_msg(fabs(lp - want) < 1e-12, "log P_F(a0 | s0) %.15g, expected %.15g", lp, want);
    /* s1 → s2: exit logit 0 (p ½), angle fraction 0.25 ~ Beta(2, 1): density 2u with u = 0.25/(1 − CLAMP) */
    const double s1[2] = {a0[0], a0[1]}, a1[2] = {d * cos(pi / 8), d * sin(pi / 8)};
    const double out1[4] = {0.0, 0.0, 0.0, -800.0};
    ck_assert_int_eq(fr_box_log_pf(o, &pol, s1, a1, 0, out1, 0.0, NULL, &lp), FR_OK);
    want = log(0.5) + log(2.0 * 0.25 / (1.0 - CL)) - log(d) - log(pi / 2);
    ck_assert_msg(fabs(lp - want) < 1e-12, "log P_F(a1 | s1) %.15g, expected %.15g", lp, want);
    /* s2 exits: exit logit 1 */
    const double s2[2] = {s1[0] + a1[0], s1[1] + a1[1]}, ex[2] = {-INFINITY, -INFINITY}, out2[4] = {1.0, 0.0, 0.0, 0.0};
    ck_assert_int_eq(fr_box_log_pf(o, &pol, s2, ex, 1, out2, 0.0, NULL, &lp), FR_OK);
    ck_assert_msg(fabs(lp - log(1.0 / (1.0 + exp(-1.0)))) < 1e-14, "log P_F(exit | s2) %.15g", lp);
    /* P_B: s1 is within δ of s0 (log 1); at s2 the uniform P_B's angle range is [0, asin(s2_y/δ)·2/π] */
    ck_assert_int_eq(fr_box_log_pb(o, &pol, s1, a0, NULL, 0.0, NULL, &lp), FR_OK);
    ck_assert(lp == 0.0);
    ck_assert(s2[0] >= d && s2[1] < d);
    ck_assert_int_eq(fr_box_log_pb(o, &pol, s2, a1, NULL, 0.0, NULL, &lp), FR_OK);
    want = -log(d) - log(pi / 2) - log(asin(s2[1] / d) / (pi / 2));
    ck_assert_msg(fabs(lp - want) < 1e-12, "log P_B(s1 | s2) %.15g, expected %.15g", lp, want);
    /* the learned P_B with Beta(2, 1): + log(2u), u the backward angle's fraction, clamped to [1e-4, 1 − 1e-4] */
    const double pbo[3] = {0.0, 0.0, -800.0};
    double lpl;
    ck_assert_int_eq(fr_box_log_pb(o, &pol, s2, a1, pbo, 0.0, NULL, &lpl), FR_OK);
    const double u = (pi / 8) / (pi / 2) / (asin(s2[1] / d) / (pi / 2));
    ck_assert_msg(fabs(lpl - (lp + log(2.0 * u))) < 1e-12, "learned log P_B %.15g, expected %.15g", lpl, lp + log(2.0 * u));
    /* the exit is not an action of s0; a step where the exit is forced is refused */
    ck_assert_int_eq(fr_box_log_pf(o, &pol, s0, ex, 1, out0, 0.0, NULL, &lp), FR_ERR_ARG);
    const double corner[2] = {0.9, 0.9};
    ck_assert_int_eq(fr_box_log_pf(o, &pol, corner, a1, 0, out1, 0.0, NULL, &lp), FR_ERR_ARG);
    ck_assert_int_eq(fr_box_log_pf(o, &pol, corner, ex, 1, out1, 0.0, NULL, &lp), FR_OK);
    ck_assert(lp == 0.0);
    fr_env_free(&e);
}
END_TEST

static double rnd(uint32_t c0, uint32_t i) { return (double)fr_rng_normal(7, FR_RNG_TEST, c0, 0, 0, i); }

/* Every gradient in the raw outputs against central differences (h 1e-6, relative 1e-6): s0, a step
 * near the top edge (a restricted angle range), the exit, and the learned P_B. */
START_TEST(test_box_gradients_fd)
{
    fr_env e = box_env(0.25);
    const fr_box_opts *o = fr_box_of(&e);
    const fr_box_policy pol = {3, 2, 0.1, 5.1};
    const double s0[2] = {0, 0}, a0[2] = {0.12, 0.09}, s1[2] = {0.3, 0.82}, a1[2] = {0.25 * cos(0.2), 0.25 * sin(0.2)};
    const double ex[2] = {-INFINITY, -INFINITY}, s2[2] = {0.6, 0.45};
    for (int c = 0; c < 4; c++) {
        const int n = c == 0 ? 15 : c == 3 ? 6 : 7;
        double out[16], g[16] = {0}, lp, lp2;
        for (int i = 0; i < n; i++) out[i] = rnd((uint32_t)c, (uint32_t)i);
        const double *s = c == 0 ? s0 : c == 3 ? s2 : s1, *a = c == 0 ? a0 : c == 2 ? ex : a1;
        fr_status st = c == 3 ? fr_box_log_pb(o, &pol, s, a1, out, 1.0, g, &lp) : fr_box_log_pf(o, &pol, s, a, c == 2, out, 1.0, g, &lp);
        ck_assert_msg(st == FR_OK, "case %d: %s", c, fr_last_error());
        for (int i = 0; i < n; i++) {
            const double h = 1e-6, keep = out[i];
            out[i] = keep + h;
            if (c == 3) fr_box_log_pb(o, &pol, s, a1, out, 0.0, NULL, &lp);
            else fr_box_log_pf(o, &pol, s, a, c == 2, out, 0.0, NULL, &lp);
            out[i] = keep - h;
            if (c == 3) fr_box_log_pb(o, &pol, s, a1, out, 0.0, NULL, &lp2);
            else fr_box_log_pf(o, &pol, s, a, c == 2, out, 0.0, NULL, &lp2);
            out[i] = keep;
            const double fd = (lp - lp2) / (2 * h);
            ck_assert_msg(fabs(g[i] - fd) < 1e-6 * (1.0 + fabs(fd)), "case %d output %d: gradient %.10g, central difference %.10g",
                          c, i, g[i], fd);
        }
    }
    fr_env_free(&e);
}
END_TEST

/* Draws: s0's actions in the quarter disk, later ones of length δ inside the square and the
 * angle range, the exit frequency σ(z), and the mean angle fraction 2/3 of Beta(2, 1). */
START_TEST(test_box_draws)
{
    fr_env e = box_env(0.25);
    const fr_box_opts *o = fr_box_of(&e);
    const fr_box_policy pol = {2, 1, 1.0, 3.0};
    const double s0[2] = {0, 0}, out0[10] = {0.3, -0.2, 0.5, 1.0, -1.0, 0.2, 2.0, -0.5, 0.1, 0.0};
    const double s1[2] = {0.4, 0.8}, out1[4] = {-1.0, 0.0, 0.0, -800.0};
    enum { N = 20000 };
    double exits = 0.0, usum = 0.0, nu = 0.0, amin, amax;
    fr_box_angles(0.25, 1, s1, &amin, &amax);
    ck_assert(amin == 0.0 && amax < 1.0);
    for (uint32_t i = 0; i < N; i++) {
        double a[2];
        int ex;
        ck_assert_int_eq(fr_box_sample_pf(o, &pol, s0, out0, 5, FR_RNG_TEST, i, 0, 0, a, &ex), FR_OK);
        ck_assert(!ex && a[0] >= 0.0 && a[1] >= 0.0 && sqrt(a[0] * a[0] + a[1] * a[1]) <= 0.25);
        ck_assert_int_eq(fr_box_sample_pf(o, &pol, s1, out1, 5, FR_RNG_TEST, i, 1, 0, a, &ex), FR_OK);
        if (ex) {
            exits += 1.0;
            continue;
        }
        ck_assert(fabs(sqrt(a[0] * a[0] + a[1] * a[1]) - 0.25) < 1e-15 && s1[1] + a[1] <= 1.0 + 1e-15);
        usum += (acos(a[0] / 0.25) / (3.14159265358979323846 / 2) - amin) / (amax - amin);
        nu += 1.0;
    }
    const double p = 1.0 / (1.0 + exp(1.0));
    ck_assert_msg(fabs(exits / N - p) < 4 * sqrt(p * (1 - p) / N), "exit frequency %.4f, expected %.4f", exits / N, p);
    ck_assert_msg(fabs(usum / nu - 2.0 / 3.0) < 4 * 0.2357 / sqrt(nu), "mean angle fraction %.4f, expected 2/3", usum / nu);
    fr_env_free(&e);
}
END_TEST

/* The KDE JSD: 0 for one sample set against itself, near log 2 for far-apart clusters. */
START_TEST(test_box_kde_jsd)
{
    double a[200], b[200];
    for (int i = 0; i < 100; i++) {
        a[2 * i] = 0.05 + 0.001 * i;
        a[2 * i + 1] = 0.05;
        b[2 * i] = 0.95 - 0.001 * i;
        b[2 * i + 1] = 0.95;
    }
    ck_assert(fabs(fr_box_kde_jsd(a, 100, a, 100, 0.1)) < 1e-15);
    const double j = fr_box_kde_jsd(a, 100, b, 100, 0.1);
    ck_assert_msg(j > 0.6 && j <= log(2.0), "JSD of far clusters %.6f", j);
}
END_TEST

/* Two iterations' gradients and the evaluation of loss k: the same bits on ref, opt at 3 threads and
 * cuda-emu. */
static void run_trainer(const char *backend, int threads, fr_box_loss k, uint64_t *dig, double *l1)
{
    fr_env e = box_env(0.25);
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, backend, 0, threads) == FR_OK, "%s", fr_last_error());
    fr_box_train_opts o = fr_box_train_opts_default();
    o.batch = 16;
    o.hidden = 16;
    o.n_hidden = 2;
    o.loss = k;
    o.weighting = FR_SUBTB_EQUAL; /* subtb: a weighting other than the default */
    fr_box_trainer *t;
    ck_assert_msg(fr_box_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_param *ps;
    int n_net, n = fr_box_trainer_params(t, &ps, &n_net);
    /* after the policies: log Z (TB), or the flow's 3 layers and log F(s0) (DB, SubTB) */
    ck_assert_int_eq(n, n_net + (k == FR_BOX_TB ? 1 : 7));
    ck_assert_str_eq(ps[n - 1].name, k == FR_BOX_TB ? "log_z" : "log_f_s0");
    uint64_t d = 0;
    for (int it = 0; it < 2; it++) {
        fr_box_step_info info;
        ck_assert_msg(fr_box_trainer_grad(t, &info) == FR_OK, "%s", fr_last_error());
        ck_assert(isfinite(info.loss) && info.iteration == it + 1);
        for (int p = 0; p < n; p++) {
            const int64_t m = fr_tensor_numel(ps[p].grad);
            float *h = malloc((size_t)m * sizeof *h);
            ck_assert_int_eq(fr_d2h(&be, h, ps[p].grad->data, (size_t)m * sizeof *h), FR_OK);
            d = d * 1099511628211ULL ^ fr_digest_bytes(h, (size_t)m * sizeof *h);
            free(h);
        }
    }
    fr_box_eval ev;
    ck_assert_msg(fr_box_trainer_eval(t, 40, 5, 0, &ev, NULL) == FR_OK, "%s", fr_last_error());
    *dig = d;
    *l1 = ev.l1;
    fr_box_trainer_free(t);
    fr_backend_close(&be);
    fr_env_free(&e);
}

START_TEST(test_box_trainer_backends_bitwise)
{
    const fr_box_loss ks[] = {FR_BOX_TB, FR_BOX_DB, FR_BOX_SUBTB};
    for (int c = 0; c < 3; c++) {
        uint64_t dr, d;
        double lr, l;
        run_trainer("ref", 1, ks[c], &dr, &lr);
        const char *bes[] = {"opt", "opt", "cuda-emu"};
        for (int i = 0; i < 3; i++) {
            fr_backend probe; /* cuda-emu where built */
            if (i == 2 && fr_backend_open(&probe, "cuda-emu", 0, 1) != FR_OK) continue;
            if (i == 2) fr_backend_close(&probe);
            run_trainer(bes[i], i == 1 ? 3 : 1, ks[c], &d, &l);
            ck_assert_msg(d == dr && l == lr, "loss %d: %s (%d): gradients or evaluation differ from ref", (int)ks[c], bes[i], i);
        }
    }
    /* the trainer refuses an environment that is not the Box */
    fr_env hg;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, NULL, &hg), FR_OK);
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_box_train_opts o = fr_box_train_opts_default();
    fr_box_trainer *t;
    ck_assert_int_eq(fr_box_trainer_new(&t, &be, &hg, &o), FR_ERR_ARG);
    fr_backend_close(&be);
    fr_env_free(&hg);
}
END_TEST

/* DB and SubTB's state flow: the first iteration's loss as a function of log F(s0) and of the flow
 * network's output bias (each enters the residuals linearly, so the loss is quadratic in it and a
 * central difference is exact up to rounding) against the gradient the trainer hands the optimiser;
 * the draws do not depend on the flow, so a fresh trainer at each value sees the same trajectories. */
static double box_loss_at(fr_box_loss k, const char *name, float v, float *grad)
{
    fr_env e = box_env(0.25);
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_box_train_opts o = fr_box_train_opts_default();
    o.batch = 8;
    o.hidden = 8;
    o.n_hidden = 1;
    o.loss = k;
    fr_box_trainer *t;
    ck_assert_msg(fr_box_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_param *ps;
    int n_net, n = fr_box_trainer_params(t, &ps, &n_net), p = n_net;
    while (p < n && strcmp(ps[p].name, name) != 0) p++;
    ck_assert_msg(p < n && fr_tensor_numel(ps[p].value) == 1, "no scalar parameter %s", name);
    ck_assert_int_eq(fr_h2d(&be, ps[p].value->data, &v, sizeof v), FR_OK);
    fr_box_step_info info;
    ck_assert_msg(fr_box_trainer_grad(t, &info) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(fr_d2h(&be, grad, ps[p].grad->data, sizeof *grad), FR_OK);
    fr_box_trainer_free(t);
    fr_backend_close(&be);
    fr_env_free(&e);
    return info.loss;
}

START_TEST(test_box_flow_gradients_fd)
{
    const fr_box_loss ks[] = {FR_BOX_DB, FR_BOX_SUBTB};
    const char *names[] = {"log_f_s0", "logf.2.bias"};
    for (int c = 0; c < 2; c++)
        for (int q = 0; q < 2; q++) {
            float g, gp, gm;
            const float v = 0.25f, h = 0.5f;
            box_loss_at(ks[c], names[q], v, &g);
            const double lp = box_loss_at(ks[c], names[q], v + h, &gp), lm = box_loss_at(ks[c], names[q], v - h, &gm);
            const double fd = (lp - lm) / (2.0 * h);
            ck_assert_msg(fabs(fd - (double)g) <= 1e-5 * fmax(1.0, fabs(fd)) && g != 0.0f,
                          "loss %d, %s: central difference %.9g, the trainer's gradient %.9g", (int)ks[c], names[q], fd, (double)g);
        }
}
END_TEST

Suite *suite_gfn_box(void)
{
    Suite *s = suite_create("gfn_box");
    TCase *tc = tcase_create("box");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_box_reward_by_hand);
    tcase_add_test(tc, test_box_target_sampler);
    tcase_add_test(tc, test_box_elementary);
    tcase_add_test(tc, test_box_log_probs_hand_trajectory);
    tcase_add_test(tc, test_box_gradients_fd);
    tcase_add_test(tc, test_box_draws);
    tcase_add_test(tc, test_box_kde_jsd);
    tcase_add_test(tc, test_box_trainer_backends_bitwise);
    tcase_add_test(tc, test_box_flow_gradients_fd);
    suite_add_tcase(s, tc);
    return s;
}
