/* Outcome-conditioned GFlowNets (docs/algorithms/gfn-oc.md; spec more.md §8.1; flowrl/gfn_oc.h):
 * the sparse reward and its floor, hindsight relabelling of a hand trajectory and in the trainer,
 * the outcome draw, the DB residual of the sparse reward by hand and the trainer's conditional DB
 * loss rebuilt from the network's outputs, the goal-conditioned exact P_T(· | y) by hand on a 2 × 2
 * grid, the fine-tuner's composed evaluation by hand, ref = opt (1, 3 threads) = cuda-emu bit for
 * bit (pre-training and fine-tuning), and the refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/gfn_train_internal.h"
#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_oc.h"
#include "flowrl/gfn_train.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_env grid(int D, int H)
{
    fr_hypergrid_opts o;
    ck_assert_int_eq(fr_env_defaults(&fr_env_hypergrid, &o), FR_OK);
    o.ndim = D;
    o.height = H;
    fr_env e;
    ck_assert_msg(fr_env_create(&fr_env_hypergrid, &o, &e) == FR_OK, "%s", fr_last_error());
    return e;
}

static fr_gfn_opts oc_opts(int64_t batch, double relabel)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.loss = FR_GFN_DB;
    o.outcome = 1;
    o.batch = batch;
    o.hidden = 16;
    o.n_hidden = 1;
    o.seed = 7;
    o.oc_relabel = relabel;
    return o;
}

/* R(x | y) = 1[x = y] with log floor; the relabel rule on a hand trajectory of H = 4: s0 = (0, 0)
 * → (1, 0) → (1, 1) → exit ends at x = 1·4 + 1 = 5; aimed at y = (3, 0) = 12 it relabels to 5 (log R
 * 0) on a coin below p and keeps 12 (log R = floor) above it. */
START_TEST(test_oc_reward_relabel_by_hand)
{
    ck_assert(fr_oc_log_reward(3, 3, -10.0) == 0.0);
    ck_assert(fr_oc_log_reward(2, 3, -10.0) == -10.0);
    fr_env e = grid(2, 4);
    const int32_t x[2] = {1, 1}, y[2] = {3, 0};
    const int64_t xi = e.gfn->index(&e, x), yi = e.gfn->index(&e, y);
    ck_assert_int_eq(xi, 5);
    ck_assert_int_eq(yi, 12);
    ck_assert_int_eq(fr_oc_relabel(yi, xi, 0.2, 0.5), 5);
    ck_assert(fr_oc_log_reward(xi, fr_oc_relabel(yi, xi, 0.2, 0.5), -10.0) == 0.0);
    ck_assert_int_eq(fr_oc_relabel(yi, xi, 0.9, 0.5), 12);
    ck_assert(fr_oc_log_reward(xi, fr_oc_relabel(yi, xi, 0.9, 0.5), -10.0) == -10.0);
    ck_assert_int_eq(fr_oc_relabel(yi, xi, 0.0, 0.0), 12); /* p = 0: never */
    ck_assert_int_eq(fr_oc_relabel(yi, xi, 0.999, 1.0), 5); /* p = 1: always (u < 1) */
    /* the outcome draw floor(v n / 2^32) and log Z(y) = log(1 + (n − 1) e^floor) */
    ck_assert_int_eq(fr_oc_outcome_of(0u, 64), 0);
    ck_assert_int_eq(fr_oc_outcome_of(0xFFFFFFFFu, 64), 63);
    ck_assert_int_eq(fr_oc_outcome_of(0x80000000u, 64), 32);
    ck_assert_msg(fabs(fr_oc_log_z(64, -10.0) - log1p(63.0 * exp(-10.0))) < 1e-15, "%.17g", fr_oc_log_z(64, -10.0));
    fr_env_free(&e);
}
END_TEST

/* In the trainer: each trajectory's outcome is the Philox draw, relabelled to its terminal on the
 * coin (seed, FR_RNG_OC_RELABEL, iteration, b) below oc_relabel; its log R is 1[x = y]'s; its
 * conditioning is the outcome's encoding. At oc_relabel 1 every trajectory succeeds, at 0 none is
 * relabelled. */
START_TEST(test_oc_trainer_relabel)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    const double ps[] = {0.0, 0.5, 1.0};
    for (int c = 0; c < 3; c++) {
        fr_gfn_opts o = oc_opts(16, ps[c]);
        fr_gfn_trainer *t;
        ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
        int64_t relabelled = 0, hits = 0;
        for (int it = 0; it < 2; it++) {
            const uint32_t iter = (uint32_t)t->iter;
            ck_assert_msg(fr_gfn_trainer_step(t, NULL) == FR_OK, "%s", fr_last_error());
            const int64_t *g = fr_gfn_oc_goals(t);
            for (int64_t b = 0; b < o.batch; b++) {
                const int64_t T = e.max_steps;
                const int64_t x = e.gfn->index(&e, t->st + (b * T + t->len[b] - 1) * 2);
                const int64_t drawn = fr_oc_outcome_of(fr_rng_u32(o.seed, FR_RNG_OC_GOAL, iter, (uint32_t)b, 0, 0), 16);
                const double u = fr_u32_to_uniform(fr_rng_u32(o.seed, FR_RNG_OC_RELABEL, iter, (uint32_t)b, 0, 0));
                ck_assert_int_eq(g[b], u < ps[c] ? x : drawn);
                ck_assert(t->logr[b] == (x == g[b] ? 0.0 : -10.0));
                relabelled += u < ps[c];
                hits += x == g[b];
                int32_t s[2];
                float enc[8];
                e.gfn->state_at(&e, g[b], s);
                e.gfn->encode(&e, s, enc);
                for (int i = 0; i < 8; i++) ck_assert(t->pref[b * t->ncw + i] == (double)enc[i]);
            }
        }
        if (c == 2) ck_assert_int_eq(hits, 2 * o.batch);
        if (c == 1) ck_assert(relabelled > 0 && relabelled < 2 * o.batch);
        fr_gfn_trainer_free(t);
    }
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* DB with the sparse reward by hand: s0 → s1 → exit, log F = (0.2, −0.5), log P_F = (−0.7, −1.1),
 * log P_B(s0 | s1) = −0.3, x ≠ y so log R = −10: residuals 0.2 − 0.7 + 0.5 + 0.3 = 0.3 and −0.5 − 1.1
 * + 10 = 8.4, loss their mean square (0.09 + 70.56)/2 = 35.325. Then the trainer's conditional DB
 * loss of an iteration rebuilt from the network's outputs at (s, y) (before any update). */
START_TEST(test_oc_db_by_hand)
{
    const int32_t len[1] = {2};
    const double logpf[2] = {-0.7, -1.1}, logpb[2] = {-0.3, 0.0}, logf[2] = {0.2, -0.5};
    const double logr[1] = {fr_oc_log_reward(5, 12, -10.0)};
    fr_gfn_batch gb = {.B = 1, .L = 2, .len = len, .logpf = logpf, .logpb = logpb, .logf = logf, .logr = logr};
    double loss, resid[2];
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_DB, &gb, &loss, resid, NULL), FR_OK);
    ck_assert_msg(fabs(resid[0] - 0.3) < 1e-12 && fabs(resid[1] - 8.4) < 1e-12, "%.17g %.17g", resid[0], resid[1]);
    ck_assert_msg(fabs(loss - 35.325) < 1e-12, "%.17g", loss);

    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    fr_gfn_opts o = oc_opts(6, 0.5);
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    for (int it = 0; it < 3; it++) ck_assert_int_eq(fr_gfn_trainer_step(t, NULL), FR_OK);
    fr_gfn_step_info info;
    ck_assert_int_eq(fr_gfn_trainer_grad(t, &info), FR_OK); /* no update: the network is the one the loss saw */
    const int64_t T = e.max_steps, A = t->A, O = t->O;
    double sum = 0.0;
    int64_t n_tr = 0;
    for (int64_t b = 0; b < o.batch; b++) {
        const int n = t->len[b];
        const int32_t *st = t->st + b * T * 2;
        for (int k = 0; k < n; k++) fr_gfn_cond_row(t, k, t->pref + b * t->ncw);
        ck_assert_int_eq(fr_gfn_net_rows(t, n, st), FR_OK);
        for (int k = 0; k < n; k++) {
            uint8_t m[GFN_MAX_A];
            double lsm[GFN_MAX_A];
            e.gfn->forward_mask(&e, st + k * 2, m);
            fr_gfn_log_softmax(t->out_h + k * O, m, (int)A, lsm);
            const double lf = (double)t->out_h[k * O + t->f_col];
            double r;
            if (k + 1 < n) {
                double lb[GFN_MAX_A];
                e.gfn->backward_mask(&e, st + (k + 1) * 2, m);
                fr_gfn_log_softmax(t->out_h + (k + 1) * O + t->pb_col, m, (int)A - 1, lb);
                r = lf + lsm[t->act[b * T + k]] - (double)t->out_h[(k + 1) * O + t->f_col] - lb[t->act[b * T + k]];
            } else {
                const int64_t x = e.gfn->index(&e, st + k * 2);
                r = lf + lsm[e.exit_action] - fr_oc_log_reward(x, fr_gfn_oc_goals(t)[b], -10.0);
            }
            sum += r * r;
            n_tr++;
        }
    }
    ck_assert_msg(fabs(info.loss - sum / (double)n_tr) < 1e-12 * (1.0 + sum), "loss %.17g, by hand %.17g", info.loss,
                  sum / (double)n_tr);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* The goal-conditioned exact P_T by dynamic programming, by hand on the 2 × 2 grid (states
 * 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1); action d increments s_d, 2 exits): for each y,
 * u(0) = 1, P_T(0) = P_F(exit | 0), u(1) = P_F(a1 | 0), u(2) = P_F(a0 | 0), P_T(1) = u(1) P_F(exit | 1),
 * P_T(2) = u(2) P_F(exit | 2), P_T(3) = u(1) P_F(a0 | 1) + u(2) P_F(a1 | 2) (the corner can only exit);
 * the rate is mean_y P_T(y | y), the L1 against R(· | y)/Z(y). An untrained start whose policy
 * ignores y would score mean_y P_T(y) = 1/n exactly. */
START_TEST(test_oc_exact_dp_by_hand)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 2);
    fr_gfn_opts o = oc_opts(4, 0.5);
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    for (int it = 0; it < 5; it++) ck_assert_int_eq(fr_gfn_trainer_step(t, NULL), FR_OK);
    double rate, l1, zerr, pty[16];
    ck_assert_int_eq(fr_gfn_oc_eval(t, &rate, &l1, &zerr, pty), FR_OK);
    const double lz = log1p(3.0 * exp(-10.0));
    double want_rate = 0.0, want_l1 = 0.0;
    for (int64_t y = 0; y < 4; y++) {
        double pf[4][3];
        int32_t st[4][2];
        double w[GFN_MAX_COND];
        int32_t ys[2];
        float enc[4];
        e.gfn->state_at(&e, y, ys);
        e.gfn->encode(&e, ys, enc);
        for (int i = 0; i < 4; i++) w[i] = (double)enc[i];
        for (int i = 0; i < 4; i++) {
            e.gfn->state_at(&e, i, st[i]);
            fr_gfn_cond_row(t, i, w);
        }
        ck_assert_int_eq(fr_gfn_net_rows(t, 4, &st[0][0]), FR_OK);
        for (int i = 0; i < 4; i++) {
            uint8_t m[3];
            double lsm[3];
            e.gfn->forward_mask(&e, st[i], m);
            fr_gfn_log_softmax(t->out_h + i * t->O, m, 3, lsm);
            for (int a = 0; a < 3; a++) pf[i][a] = m[a] ? exp(lsm[a]) : 0.0;
        }
        ck_assert(pf[3][2] == 1.0);
        const double u1 = pf[0][1], u2 = pf[0][0];
        const double pt[4] = {pf[0][2], u1 * pf[1][2], u2 * pf[2][2], u1 * pf[1][0] + u2 * pf[2][1]};
        for (int x = 0; x < 4; x++) {
            ck_assert_msg(fabs(pty[y * 4 + x] - pt[x]) < 1e-12, "y %lld x %d: %.17g, by hand %.17g", (long long)y, x,
                          pty[y * 4 + x], pt[x]);
            want_l1 += fabs(pt[x] - exp((x == y ? 0.0 : -10.0) - lz)) / 4.0;
        }
        want_rate += pt[y] / 4.0;
    }
    ck_assert_msg(fabs(rate - want_rate) < 1e-12 && fabs(l1 - want_l1) < 1e-12, "rate %.17g (%.17g), l1 %.17g (%.17g)", rate,
                  want_rate, l1, want_l1);
    ck_assert(isfinite(zerr));
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* The fine-tuning TB loss by hand (n = 3 outcomes, logits (0.5, −1, 2), log Z 1.2, y = (2, 0, 2),
 * log R = (0.3, −0.7, 1.1)) and its gradients in the logits and log Z by central differences. */
static double ft_loss_at(const double *z, double log_z, const int64_t *y, const double *logr, float *dl, double *gz)
{
    const double m = fmax(z[0], fmax(z[1], z[2])), lse = m + log(exp(z[0] - m) + exp(z[1] - m) + exp(z[2] - m));
    const double lq[3] = {z[0] - lse, z[1] - lse, z[2] - lse};
    return fr_oc_ft_loss(3, lq, 3, y, logr, log_z, dl, gz);
}

START_TEST(test_oc_ft_loss_by_hand)
{
    const double z[3] = {0.5, -1.0, 2.0}, logr[3] = {0.3, -0.7, 1.1};
    const int64_t y[3] = {2, 0, 2};
    float dl[3];
    double gz;
    const double loss = ft_loss_at(z, 1.2, y, logr, dl, &gz);
    const double lse = log(exp(0.5) + exp(-1.0) + exp(2.0));
    const double r[3] = {1.2 + 2.0 - lse - 0.3, 1.2 + 0.5 - lse + 0.7, 1.2 + 2.0 - lse - 1.1};
    ck_assert_msg(fabs(loss - (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]) / 3.0) < 1e-14, "%.17g", loss);
    ck_assert(fabs(gz - 2.0 * (r[0] + r[1] + r[2]) / 3.0) < 1e-14);
    const double h = 1e-6;
    for (int j = 0; j < 3; j++) {
        double zp[3] = {z[0], z[1], z[2]}, zm[3] = {z[0], z[1], z[2]};
        zp[j] += h;
        zm[j] -= h;
        const double fd = (ft_loss_at(zp, 1.2, y, logr, NULL, NULL) - ft_loss_at(zm, 1.2, y, logr, NULL, NULL)) / (2.0 * h);
        ck_assert_msg(fabs(fd - (double)dl[j]) < 1e-6 * (1.0 + fabs(fd)), "logit %d: fd %.9g, gradient %.9g", j, fd, (double)dl[j]);
    }
    const double fdz = (ft_loss_at(z, 1.2 + h, y, logr, NULL, NULL) - ft_loss_at(z, 1.2 - h, y, logr, NULL, NULL)) / (2.0 * h);
    ck_assert_msg(fabs(fdz - gz) < 1e-7, "log Z: fd %.12g, gradient %.12g", fdz, gz);
}
END_TEST

/* Pre-training and fine-tuning a few iterations on a backend: the parameters' digests and the
 * evaluations. The fine-tuner's floor L1 by hand: Σ_x |Σ_y p(y) P_T(x | y) − p(x)| with P_T of an
 * OC-GFN trainer of the same seed and shape (the same initial network). */
static void oc_backend_run(const char *name, int threads, uint64_t *d, double *ev)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, name, 0, threads) == FR_OK, "%s: %s", name, fr_last_error());
    fr_env e = grid(2, 4);
    fr_gfn_opts o = oc_opts(8, 0.5);
    o.hidden = 32;
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    for (int it = 0; it < 3; it++) ck_assert_int_eq(fr_gfn_trainer_step(t, NULL), FR_OK);
    ck_assert_int_eq(fr_gfn_trainer_digest(t, &d[0], NULL), FR_OK);
    ck_assert_int_eq(fr_gfn_oc_eval(t, &ev[0], &ev[1], &ev[2], NULL), FR_OK);
    fr_gfn_trainer_free(t);

    fr_oc_ft_opts fo = {.batch = 8, .hidden = 32, .n_hidden = 1, .q_hidden = 8, .oc_log_floor = -10.0, .seed = 7};
    fr_oc_ft *f;
    ck_assert_msg(fr_oc_ft_new(&f, &be, &e, &fo) == FR_OK, "%s", fr_last_error());
    fr_param *ps;
    int n_net;
    const int np = fr_oc_ft_params(f, &ps, &n_net);
    ck_assert_int_eq(np, n_net + 1);
    double loss;
    for (int it = 0; it < 3; it++) {
        ck_assert_int_eq(fr_oc_ft_grad(f, &loss), FR_OK);
        ck_assert(isfinite(loss) && loss > 0.0);
        /* a plain SGD step (host test code: read, step, write back) */
        for (int p = 0; p < np; p++) {
            const int64_t n = fr_tensor_numel(ps[p].value);
            float *v = malloc((size_t)n * sizeof *v), *g = malloc((size_t)n * sizeof *g);
            ck_assert_int_eq(fr_d2h(&be, v, ps[p].value->data, (size_t)n * sizeof *v), FR_OK);
            ck_assert_int_eq(fr_d2h(&be, g, ps[p].grad->data, (size_t)n * sizeof *g), FR_OK);
            for (int64_t i = 0; i < n; i++) v[i] -= 0.05f * g[i];
            ck_assert_int_eq(fr_h2d(&be, ps[p].value->data, v, (size_t)n * sizeof *v), FR_OK);
            free(v);
            free(g);
        }
    }
    ck_assert_int_eq(fr_oc_ft_digest(f, &d[1], NULL), FR_OK);
    double fl1;
    ck_assert_int_eq(fr_oc_ft_eval(f, &ev[3], &ev[4], NULL, NULL, &fl1), FR_OK);
    ev[5] = loss;
    fr_oc_ft_free(f);
    /* the floor by hand from an initial OC-GFN network of the same seed */
    fr_gfn_opts o2 = oc_opts(8, 0.5);
    o2.hidden = 32;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o2), FR_OK);
    double pty[256], p[16], tgt[16], lz, want = 0.0;
    ck_assert_int_eq(fr_gfn_oc_eval(t, NULL, NULL, NULL, pty), FR_OK);
    ck_assert_int_eq(fr_env_target(&e, tgt, &lz, NULL, NULL), FR_OK);
    for (int x = 0; x < 16; x++) {
        p[x] = 0.0;
        for (int y = 0; y < 16; y++) p[x] += tgt[y] * pty[y * 16 + x];
        want += fabs(p[x] - tgt[x]);
    }
    ck_assert_msg(fabs(fl1 - want) < 1e-12, "floor l1 %.17g, by hand %.17g", fl1, want);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
}

START_TEST(test_oc_backends_equal)
{
    uint64_t want[2], got[2];
    double wev[6], gev[6];
    oc_backend_run("ref", 1, want, wev);
    const struct {
        const char *name;
        int threads;
    } bk[] = {{"opt", 1}, {"opt", 3}, {"cuda-emu", 1}};
    for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++) {
        fr_backend probe;
        if (fr_backend_open(&probe, bk[i].name, 0, 1) != FR_OK) continue; /* cuda-emu where built */
        fr_backend_close(&probe);
        oc_backend_run(bk[i].name, bk[i].threads, got, gev);
        ck_assert_msg(got[0] == want[0] && got[1] == want[1], "%s at %d threads: digests differ from ref", bk[i].name,
                      bk[i].threads);
        for (int k = 0; k < 6; k++) ck_assert_msg(gev[k] == wev[k], "%s at %d threads: value %d differs", bk[i].name, bk[i].threads, k);
    }
}
END_TEST

START_TEST(test_oc_refusals)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    fr_gfn_trainer *t = NULL;
    fr_gfn_opts o = oc_opts(4, 0.5);
    o.loss = FR_GFN_TB;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "DB baseline only"), "%s", fr_last_error());
    o = oc_opts(4, 0.5);
    o.oc_log_floor = 0.0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--oc-log-floor"), "%s", fr_last_error());
    o = oc_opts(4, 1.5);
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    o = oc_opts(4, 0.5);
    o.replay = 8;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert(t == NULL);
    /* the sampled L1 is not defined for a conditioned policy */
    o = oc_opts(4, 0.5);
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_OK);
    double l1;
    ck_assert_int_eq(fr_gfn_trainer_sampled_l1(t, 8, &l1, NULL), FR_ERR_ARG);
    fr_gfn_trainer_free(t);
    /* a pre-trained checkpoint of another width */
    char dir[256], path[1024];
    fr_test_mkdtemp(dir, sizeof dir, "oc");
    snprintf(path, sizeof path, "%s/oc_wide.safetensors", dir);
    o.hidden = 24;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_OK);
    fr_st_file f;
    fr_st_init(&f);
    fr_param *ps;
    int n_net;
    const int np = fr_gfn_trainer_params(t, &ps, &n_net);
    for (int p = 0; p < np; p++) {
        fr_tensor h;
        ck_assert_int_eq(fr_tensor_alloc(&h, FR_F32, ps[p].value->ndim, ps[p].value->shape), FR_OK);
        ck_assert_int_eq(fr_d2h(&be, h.data, ps[p].value->data, (size_t)fr_tensor_numel(&h) * sizeof(float)), FR_OK);
        ck_assert_int_eq(fr_st_add_take(&f, ps[p].name, &h), FR_OK);
    }
    ck_assert_int_eq(fr_st_write(&f, path), FR_OK);
    fr_st_free(&f);
    fr_gfn_trainer_free(t);
    fr_oc_ft_opts fo = {.batch = 4, .hidden = 16, .n_hidden = 1, .q_hidden = 8, .oc_log_floor = -10.0, .seed = 1,
                        .pretrained = path};
    fr_oc_ft *ft = NULL;
    ck_assert_int_eq(fr_oc_ft_new(&ft, &be, &e, &fo), FR_ERR_FORMAT);
    ck_assert_msg(strstr(fr_last_error(), "trunk.0.weight"), "%s", fr_last_error());
    fo.hidden = 24; /* the checkpoint's width loads */
    ck_assert_msg(fr_oc_ft_new(&ft, &be, &e, &fo) == FR_OK, "%s", fr_last_error());
    fr_oc_ft_free(ft);
    fr_test_rmtree(dir);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

Suite *suite_gfn_oc(void)
{
    Suite *s = suite_create("gfn_oc");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_oc_reward_relabel_by_hand);
    tcase_add_test(tc, test_oc_trainer_relabel);
    tcase_add_test(tc, test_oc_db_by_hand);
    tcase_add_test(tc, test_oc_exact_dp_by_hand);
    tcase_add_test(tc, test_oc_ft_loss_by_hand);
    tcase_add_test(tc, test_oc_backends_equal);
    tcase_add_test(tc, test_oc_refusals);
    suite_add_tcase(s, tc);
    return s;
}
