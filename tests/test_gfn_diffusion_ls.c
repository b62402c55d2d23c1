/* Off-policy training of the diffusion samplers (flowrl/gfn_diffusion_ls.h,
 * docs/algorithms/gfn-diffusion.md §8): the replay buffer's rank-prioritised and uniform draws
 * against their probabilities, MALA's acceptance ratio against its formula and the chain against
 * its target, the step's adaptation, and the trainer with --both-ways / --local-search: the
 * backward iterations, a checkpoint's buffers, and a short CLI run the same bytes on every
 * backend and after a resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/digest.h"
#include "flowrl/env.h"
#include "flowrl/gfn_diffusion.h"
#include "flowrl/gfn_diffusion_ls.h"
#include "flowrl/philox.h"
#include "flowrl/safetensors.h"
#include "tests/gfn_diffusion_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Draws of a buffer of 8 items (12 added: the first 4 dropped) against the rank priority
 * 1 / (0.01·8 + r) / Σ, and against 1/8 when uniform: each count within 5 binomial sd. */
static void check_draws(int rank)
{
    fr_gfnd_replay *r;
    ck_assert_int_eq(fr_gfnd_replay_new(&r, 8, 2, rank, 0.01), FR_OK);
    double x[24], lr[12];
    for (int i = 0; i < 12; i++) {
        x[2 * i] = i, x[2 * i + 1] = -i;
        lr[i] = (i % 3 == 0) ? 1.0 : -(double)i; /* items 0, 3, 6, 9 tie at log R 1 */
    }
    ck_assert_int_eq(fr_gfnd_replay_add(r, x, lr, 5), FR_OK);
    ck_assert_int_eq(fr_gfnd_replay_add(r, x + 10, lr + 5, 7), FR_OK);
    ck_assert_int_eq(fr_gfnd_replay_size(r), 8);
    /* held: items 4..11; by rank: 6, 9 (log R 1, the older first), then −4, −5, −7, −8, −10, −11 */
    const int want_item[8] = {6, 9, 4, 5, 7, 8, 10, 11};
    double p[8], W = 0.0;
    for (int k = 0; k < 8; k++) W += p[k] = rank ? 1.0 / (0.01 * 8 + k) : 1.0;
    enum { N = 1 << 16 };
    double *xs = malloc(2 * N * sizeof *xs), *ls = malloc(N * sizeof *ls);
    int64_t *rk = malloc(N * sizeof *rk);
    ck_assert_int_eq(fr_gfnd_replay_sample(r, N, 7, FR_RNG_GFND_REPLAY, 3, 1, xs, ls, rk), FR_OK);
    long cnt[12] = {0};
    for (int i = 0; i < N; i++) {
        const int item = (int)xs[2 * i];
        ck_assert_msg(item >= 4 && xs[2 * i + 1] == -item && ls[i] == lr[item], "draw %d: item %d", i, item);
        if (rank) ck_assert_msg(want_item[rk[i]] == item, "draw %d: rank %lld is item %d", i, (long long)rk[i], item);
        cnt[item]++;
    }
    for (int k = 0; k < 8; k++) {
        const double q = rank ? p[k] / W : 1.0 / 8.0, mu = N * q, sd = sqrt(N * q * (1.0 - q));
        const long c = cnt[rank ? want_item[k] : 4 + k];
        ck_assert_msg(fabs((double)c - mu) < 5.0 * sd, "%s rank %d: %ld draws, expected %.1f ± %.1f",
                      rank ? "rank" : "uniform", k, c, mu, sd);
    }
    /* a checkpoint round trip draws the same */
    fr_st_file f;
    fr_st_init(&f);
    ck_assert_int_eq(fr_gfnd_replay_save(r, &f, "b"), FR_OK);
    fr_gfnd_replay *r2;
    ck_assert_int_eq(fr_gfnd_replay_new(&r2, 8, 2, rank, 0.01), FR_OK);
    ck_assert_msg(fr_gfnd_replay_load(r2, &f, "b", "mem") == FR_OK, "%s", fr_last_error());
    double xa[20], la[10], xb[20], lb[10];
    ck_assert_int_eq(fr_gfnd_replay_add(r, x, lr, 1), FR_OK);
    ck_assert_int_eq(fr_gfnd_replay_add(r2, x, lr, 1), FR_OK);
    ck_assert_int_eq(fr_gfnd_replay_sample(r, 10, 1, FR_RNG_GFND_REPLAY, 0, 0, xa, la, NULL), FR_OK);
    ck_assert_int_eq(fr_gfnd_replay_sample(r2, 10, 1, FR_RNG_GFND_REPLAY, 0, 0, xb, lb, NULL), FR_OK);
    ck_assert(memcmp(xa, xb, sizeof xa) == 0 && memcmp(la, lb, sizeof la) == 0);
    fr_st_free(&f);
    fr_gfnd_replay_free(r2);
    fr_gfnd_replay_free(r);
    free(xs), free(ls), free(rk);
}

START_TEST(test_replay_priority_draws)
{
    check_draws(1);
    check_draws(0);
    fr_gfnd_replay *r;
    ck_assert_int_eq(fr_gfnd_replay_new(&r, 4, 1, 1, 0.01), FR_OK);
    double x, l;
    ck_assert_int_ne(fr_gfnd_replay_sample(r, 1, 1, FR_RNG_GFND_REPLAY, 0, 0, &x, &l, NULL), FR_OK);
    fr_gfnd_replay_free(r);
}
END_TEST

/* A standard normal target on R^2: log R = −|x|²/2, ∇ = −x, log Z = log 2π. */
static double n_log_r(const fr_env *e, const double *x) { (void)e; return -0.5 * (x[0] * x[0] + x[1] * x[1]); }
static double n_grad(const fr_env *e, const double *x, double *g)
{
    g[0] = -x[0], g[1] = -x[1];
    return n_log_r(e, x);
}
static const fr_env_energy_ops k_normal = {n_log_r, n_grad, NULL, NULL, NULL};

START_TEST(test_mala_acceptance)
{
    fr_env e;
    memset(&e, 0, sizeof e);
    e.state_dim = 2;
    e.energy = &k_normal;
    /* the ratio against the formula written out (langevin.py): for a Gaussian target and any h,
     * log α(x → y) = −log α(y → x) (detailed balance of the ratio) */
    const double x[2] = {0.3, -1.2}, y[2] = {-0.4, 0.7}, h = 0.37;
    double gx[2], gy[2];
    const double lx = n_grad(&e, x, gx), ly = n_grad(&e, y, gy);
    double qf = 0, qb = 0;
    for (int d = 0; d < 2; d++) {
        qf += pow(y[d] - x[d] - h * gx[d], 2);
        qb += pow(x[d] - y[d] - h * gy[d], 2);
    }
    const double want = ly - lx - qb / (4 * h) + qf / (4 * h);
    const double got = fr_gfnd_mala_log_accept(x, y, gx, gy, lx, ly, h, 2);
    const double back = fr_gfnd_mala_log_accept(y, x, gy, gx, ly, lx, h, 2);
    ck_assert_msg(fabs(got - want) < 1e-12 && fabs(got + back) < 1e-12, "log alpha %.17g, want %.17g, back %.17g", got,
                  want, back);
    /* the chain keeps N(0, I): 4,000 chains started at the target, 40 steps of h = 0.8 (no
     * adaptation), the kept proposals' E|x|² = 2 and E x = 0 within 5 sd */
    enum { C = 4000 };
    double *xs = malloc(2 * C * sizeof *xs), *lr = malloc(C * sizeof *lr);
    for (int b = 0; b < C; b++)
        for (int d = 0; d < 2; d++) xs[2 * b + d] = fr_rng_normal(3, FR_RNG_GFND_LS_NOISE, 999, b, 0, d);
    fr_gfnd_replay *out;
    ck_assert_int_eq(fr_gfnd_replay_new(&out, 40 * C, 2, 0, 0.01), FR_OK);
    fr_gfnd_ls_opts o = {40, 20, 0.8, 0, 0.574};
    fr_gfnd_ls_info info;
    ck_assert_int_eq(fr_gfnd_local_search(&e, &o, C, xs, lr, 11, 5, out, &info), FR_OK);
    ck_assert_msg(info.accept_rate > 0.5 && info.accept_rate < 0.99 && info.last_step == 0.8, "acceptance %g, step %g",
                  info.accept_rate, info.last_step);
    /* the final chains (one per chain, independent): E|x|² = 2 (sd 2/√C), E x_0 = 0 (sd 1/√C) */
    double m2 = 0, m1 = 0;
    for (int b = 0; b < C; b++) {
        m2 += xs[2 * b] * xs[2 * b] + xs[2 * b + 1] * xs[2 * b + 1];
        m1 += xs[2 * b];
        ck_assert(lr[b] == n_log_r(&e, xs + 2 * b));
    }
    ck_assert_msg(fabs(m2 / C - 2.0) < 5 * 2.0 / sqrt(C) && fabs(m1 / C) < 5.0 / sqrt(C), "E|x|^2 %g, E x0 %g", m2 / C,
                  m1 / C);
    ck_assert_msg(info.kept > 0 && info.kept == fr_gfnd_replay_size(out) && info.kept <= 19 * C, "kept %lld",
                  (long long)info.kept);
    /* the same call gives the same bits */
    double *xs2 = malloc(2 * C * sizeof *xs2), *lr2 = malloc(C * sizeof *lr2);
    for (int b = 0; b < C; b++)
        for (int d = 0; d < 2; d++) xs2[2 * b + d] = fr_rng_normal(3, FR_RNG_GFND_LS_NOISE, 999, b, 0, d);
    ck_assert_int_eq(fr_gfnd_local_search(&e, &o, C, xs2, lr2, 11, 5, NULL, NULL), FR_OK);
    ck_assert(memcmp(xs, xs2, 2 * C * sizeof *xs) == 0);
    /* the adaptation: from h = 4 (acceptance far below 0.574) the step shrinks by 1% an iteration
     * until the windows' rate crosses the target, and the rate ends near it */
    for (int b = 0; b < 400; b++) xs2[2 * b] = xs2[2 * b + 1] = 0.5;
    fr_gfnd_ls_opts oa = {300, 299, 4.0, 1, 0.574};
    fr_gfnd_ls_info ia;
    ck_assert_int_eq(fr_gfnd_local_search(&e, &oa, 400, xs2, lr2, 2, 0, NULL, &ia), FR_OK);
    fr_gfnd_ls_opts oe = {40, 39, ia.last_step, 0, 0.574};
    fr_gfnd_ls_info ie;
    ck_assert_int_eq(fr_gfnd_local_search(&e, &oe, 400, xs2, lr2, 2, 1, NULL, &ie), FR_OK);
    ck_assert_msg(ia.last_step < 2.0 && fabs(ie.accept_rate - 0.574) < 0.1, "adapted step %g: acceptance %g",
                  ia.last_step, ie.accept_rate);
    fr_gfnd_replay_free(out);
    free(xs), free(lr), free(xs2), free(lr2);
}
END_TEST

/* The trainer: with --both-ways the odd iterations are backward (the search on i mod 4 < 2), the
 * even ones forward with the default path's bits; a checkpoint after 3 iterations carries the
 * buffers (a trainer loaded from it gives iteration 4 and 5's gradients bit for bit). */
START_TEST(test_trainer_both_ways_and_checkpoint)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    fr_gfnd_opts o0 = tiny_opts(FR_GFND_TB), o = o0;
    o.langevin = o0.langevin = 1;
    o.local_search = o.both_ways = 1;
    o.ls_cycle = 4;
    o.ls_iters = 12;
    o.ls_burn_in = 3;
    o.ld_step = 0.1;
    o.ld_schedule = 1;
    fr_gfnd_trainer *t0, *t, *tr;
    ck_assert_msg(fr_gfnd_trainer_new(&t0, &be, &e, &o0) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_gfnd_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    ck_assert_msg(fr_gfnd_trainer_new(&tr, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    uint64_t dg[6];
    fr_st_file f;
    fr_st_init(&f);
    for (int it = 0; it < 6; it++) {
        fr_gfnd_step_info i0, i;
        ck_assert_msg(fr_gfnd_trainer_grad(t, &i) == FR_OK, "%s", fr_last_error());
        dg[it] = grads_digest(&be, t);
        /* no optimiser steps: the default trainer's iteration it is the same network's forward batch */
        if (it % 2 == 0) {
            ck_assert_msg(fr_gfnd_trainer_grad(t0, &i0) == FR_OK, "%s", fr_last_error());
            ck_assert_msg(!i.backward && i.loss == i0.loss && dg[it] == grads_digest(&be, t0) && i.ls_kept == -1,
                          "iteration %d: forward batch differs from the default path's", it);
        } else {
            ck_assert_msg(fr_gfnd_trainer_grad(t0, &i0) == FR_OK, "%s", fr_last_error());
            ck_assert_msg(i.backward && isfinite(i.loss) && i.loss != i0.loss, "iteration %d: loss %g", it, i.loss);
            ck_assert_msg((i.ls_kept >= 0) == (it % 4 < 2), "iteration %d: search kept %lld", it, (long long)i.ls_kept);
        }
        if (it == 2) ck_assert_int_eq(fr_gfnd_trainer_save(t, &f), FR_OK);
    }
    ck_assert_msg(fr_gfnd_trainer_load(tr, &f, "mem") == FR_OK, "%s", fr_last_error());
    for (int it = 3; it < 6; it++) {
        fr_gfnd_step_info i;
        ck_assert_msg(fr_gfnd_trainer_grad(tr, &i) == FR_OK, "%s", fr_last_error());
        ck_assert_msg(grads_digest(&be, tr) == dg[it], "iteration %d after the checkpoint differs", it);
    }
    fr_st_free(&f);
    fr_gfnd_trainer_free(t0);
    fr_gfnd_trainer_free(t);
    fr_gfnd_trainer_free(tr);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* The time-only NN2 (langevin_time_scale): the gradient of its output bias (NN2(t_k) + δ at every
 * k) against the central difference of a backward iteration's loss, whose states do not depend on
 * the parameters (P_B from the buffer): three trainers at the same checkpoint, the bias moved by
 * ±δ in two of them. */
START_TEST(test_time_scale_grad_fd)
{
    fr_backend be;
    ck_assert_int_eq(fr_backend_open(&be, "ref", 0, 1), FR_OK);
    fr_env e = target(&fr_env_gmm25);
    for (int k = 0; k < 2; k++) {
        fr_gfnd_opts o = tiny_opts(k ? FR_GFND_TB_AVG : FR_GFND_TB);
        o.langevin = o.langevin_time_scale = 1;
        o.both_ways = 1;
        o.init_log_z = 0.3;
        fr_gfnd_trainer *t[3];
        for (int i = 0; i < 3; i++) ck_assert_msg(fr_gfnd_trainer_new(&t[i], &be, &e, &o) == FR_OK, "%s", fr_last_error());
        fr_gfnd_step_info info;
        ck_assert_int_eq(fr_gfnd_trainer_grad(t[0], &info), FR_OK);
        fr_st_file f;
        fr_st_init(&f);
        ck_assert_int_eq(fr_gfnd_trainer_save(t[0], &f), FR_OK);
        const float delta = 1.0f / 256.0f;
        double loss[3];
        float g = 0.0f;
        for (int i = 0; i < 3; i++) {
            if (i) ck_assert_int_eq(fr_gfnd_trainer_load(t[i], &f, "mem"), FR_OK);
            fr_param *ps;
            int np;
            const int n = fr_gfnd_trainer_params(t[i], &ps, &np);
            int at = -1;
            for (int p = 0; p < n; p++)
                if (strcmp(ps[p].name, "lgv.2.bias") == 0) at = p;
            ck_assert_int_ge(at, 0);
            ck_assert_int_lt(at, np); /* in the policy's group */
            float b;
            ck_assert_int_eq(fr_d2h(&be, &b, ps[at].value->data, sizeof b), FR_OK);
            ck_assert(b == 0.01f); /* zero_init: LangevinScalingModel's 0.01 */
            b += i == 1 ? delta : i == 2 ? -delta : 0.0f;
            ck_assert_int_eq(fr_h2d(&be, ps[at].value->data, &b, sizeof b), FR_OK);
            ck_assert_int_eq(fr_gfnd_trainer_grad(t[i], &info), FR_OK);
            ck_assert(info.backward);
            loss[i] = info.loss;
            if (i == 0) ck_assert_int_eq(fr_d2h(&be, &g, ps[at].grad->data, sizeof g), FR_OK);
        }
        const double fd = (loss[1] - loss[2]) / (2.0 * (double)delta);
        ck_assert_msg(fabs(fd - (double)g) < 1e-3 * (1.0 + fabs(fd)) && g != 0.0f, "%s: d loss / d NN2 bias %.9g, fd %.9g",
                      k ? "tb-avg" : "tb", (double)g, fd);
        fr_st_free(&f);
        for (int i = 0; i < 3; i++) fr_gfnd_trainer_free(t[i]);
    }
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

static char g_out[1 << 14];

/* A short CLI run with --local-search (VarGrad, Langevin, exploration) on the funnel: its final
 * evaluation line and digest; epochs, resume: from the checkpoint of epoch 4. */
static void short_run(const char *backend, int threads, const char *extra, int epochs, int resume, char *line, size_t n)
{
    static char dir[256];
    char args[1400];
    if (!resume) fr_test_mkdtemp(dir, sizeof dir, "gfnd_ls");
    if (resume)
        snprintf(args, sizeof args, "train --resume %s/r --epochs %d --backend %s --threads %d", dir, epochs, backend,
                 threads);
    else
        snprintf(args, sizeof args,
                 "train --algo gfn-diffusion --env funnel --loss tb-avg --langevin --exploration 0.2 %s --batch-size 8 "
                 "--steps 10 --hidden-dim 16 --harmonics 4 --epochs %d --eval-samples 50 --eval-every 0 "
                 "--checkpoint-every 4 --backend %s --threads %d --out %s/r",
                 extra, epochs, backend, threads, dir);
    ck_assert_msg(fr_test_run_cli(args, g_out, sizeof g_out) == 0, "%s", g_out);
    const char *ev = strstr(g_out, "eval after"), *dg = strstr(g_out, "digest ");
    ck_assert_msg(ev && dg, "%s", g_out);
    snprintf(line, n, "%.*s | %.23s", (int)strcspn(ev, "\n"), ev, dg);
    if (epochs != 4 || resume) fr_test_rmtree(dir);
}

START_TEST(test_cli_local_search_backends_resume)
{
    const char *ls = "--local-search --ls-cycle 4 --max-iter-ls 10 --burn-in 2 --ld-step 0.1 --ld-schedule";
    char want[512], got[512], off[512];
    short_run("ref", 1, ls, 9, 0, want, sizeof want);
    short_run("ref", 1, "", 9, 0, off, sizeof off);
    ck_assert_msg(strcmp(want, off) != 0, "local search changed nothing: %s", want);
    for (size_t i = 0; i < N_VS_REF; i++) {
        if (!vs_ref_here(i)) continue;
        short_run(k_vs_ref[i].name, k_vs_ref[i].threads, ls, 9, 0, got, sizeof got);
        ck_assert_msg(strcmp(got, want) == 0, "%s at %d threads: %s; ref: %s", k_vs_ref[i].name, k_vs_ref[i].threads,
                      got, want);
    }
    short_run("ref", 1, ls, 4, 0, got, sizeof got);
    short_run("opt", 2, ls, 9, 1, got, sizeof got);
    ck_assert_msg(strcmp(got, want) == 0, "resumed at epoch 4: %s; uninterrupted: %s", got, want);
}
END_TEST

Suite *suite_gfn_diffusion_ls(void)
{
    Suite *s = suite_create("gfn_diffusion_ls");
    TCase *tc = tcase_create("local_search");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_replay_priority_draws);
    tcase_add_test(tc, test_mala_acceptance);
    tcase_add_test(tc, test_trainer_both_ways_and_checkpoint);
    tcase_add_test(tc, test_time_scale_grad_fd);
    tcase_add_test(tc, test_cli_local_search_backends_resume);
    suite_add_tcase(s, tc);
    return s;
}
