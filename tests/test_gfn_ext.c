/* OP-GFN, local-search and multi-objective GFlowNets (docs/algorithms/gfn.md §9, §10, §13; spec
 * gflownets.md §9–§11):
 * OP-GFN's soft label and ordering loss by hand and its gradient by central differences; the
 * top-k metric on a tiny grid by hand; OP-GFN's KL(P_B ‖ uniform) term by hand and in the trainer; local search's acceptance rule by hand and its sample
 * accounting; the 2-objective HyperGrid's objectives and Pareto front by hand, the conditional
 * target and the exact Pareto coverage by hand; ref = opt = cuda-emu bit for bit; the CLI. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/gfn_train_internal.h"
#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_train.h"
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

/* y = ½(1[u > u'] + 1[u > u' − 1e-6]) (yhangchen/OP-GFN ordering_loss). */
START_TEST(test_op_label)
{
    ck_assert(fr_gfn_op_label(2.0, 1.0) == 1.0);
    ck_assert(fr_gfn_op_label(1.0, 2.0) == 0.0);
    ck_assert(fr_gfn_op_label(1.0, 1.0) == 0.5);
    ck_assert(fr_gfn_op_label(1.0, 1.0 + 5e-7) == 0.5); /* within 1e-6: a tie */
    ck_assert(fr_gfn_op_label(1.0, 1.0 + 2e-6) == 0.0);
}
END_TEST

/* Three trajectories of lengths 2, 3, 1 (exit included), pairs perm = (2, 0, 1), utilities
 * (0.5, 0.5, −1): the loss is mean_b softplus(d_b) − y_b d_b with d_b = R̂_b − R̂_perm[b],
 * R̂ = Σ logpf − Σ logpb, computed here term by term; log Z plays no part. */
#define OB 3
#define OL 3
static double o_pf[OB * OL] = {-0.3, -1.2, 0, -0.7, -0.4, -0.9, -2.1, 0, 0};
static double o_pb[OB * OL] = {-0.2, 0, 0, -0.5, -0.1, 0, 0, 0, 0};
static const int32_t o_len[OB] = {2, 3, 1};
static const int64_t o_perm[OB] = {2, 0, 1};
static const double o_util[OB] = {0.5, 0.5, -1.0};

static fr_gfn_batch op_batch(void)
{
    fr_gfn_batch b = {.B = OB, .L = OL, .len = o_len, .logpf = o_pf, .logpb = o_pb, .logr = o_util,
                      .log_z = 7.0, .perm = o_perm, .util = o_util};
    return b;
}

START_TEST(test_op_loss_by_hand)
{
    fr_gfn_batch b = op_batch();
    const double rh[OB] = {-0.3 - 1.2 + 0.2, -0.7 - 0.4 - 0.9 + 0.5 + 0.1, -2.1};
    const double y[OB] = {1.0, 0.5, 0.0}; /* 0.5 > −1; 0.5 = 0.5; −1 < 0.5 */
    double want = 0.0, d[OB];
    for (int i = 0; i < OB; i++) {
        d[i] = rh[i] - rh[o_perm[i]];
        want += log(1.0 + exp(d[i])) - y[i] * d[i];
    }
    want /= OB;
    double loss, res[OB];
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &loss, res, NULL), FR_OK);
    ck_assert_msg(fabs(loss - want) < 1e-14, "op loss %.17g, by hand %.17g", loss, want);
    for (int i = 0; i < OB; i++) ck_assert(fabs(res[i] - d[i]) < 1e-14);
    b.log_z = -3.0; /* log Z cancels in every pair's softmax */
    double loss2;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &loss2, NULL, NULL), FR_OK);
    ck_assert(loss2 == loss);
    /* the gradients by central differences; slots past a trajectory get 0 */
    double gpf[OB * OL], gpb[OB * OL], lp, lm;
    fr_gfn_grad g = {.logpf = gpf, .logpb = gpb};
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &loss, NULL, &g), FR_OK);
    ck_assert(g.log_z == 0.0);
    double *arrs[2] = {o_pf, o_pb}, *grads[2] = {gpf, gpb};
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < OB * OL; i++) {
            const double keep = arrs[a][i], h = 1e-6;
            arrs[a][i] = keep + h;
            ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &lp, NULL, NULL), FR_OK);
            arrs[a][i] = keep - h;
            ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &lm, NULL, NULL), FR_OK);
            arrs[a][i] = keep;
            const int used = i % OL < o_len[i / OL] - a;
            ck_assert_msg(fabs((lp - lm) / (2 * h) - grads[a][i]) < 1e-8, "op: array %d slot %d: fd %.12g analytic %.12g",
                          a, i, (lp - lm) / (2 * h), grads[a][i]);
            if (!used) ck_assert(grads[a][i] == 0.0);
        }
    /* a pair out of range or a NaN utility is refused */
    int64_t bad[OB] = {0, 3, 1};
    b.perm = bad;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &loss, NULL, NULL), FR_ERR_ARG);
    b.perm = NULL;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_OP, &b, &loss, NULL, NULL), FR_ERR_ARG);
    ck_assert_str_eq(fr_gfn_loss_name(FR_GFN_OP), "op");
}
END_TEST

/* The top-k set by hand: on 2-D H 4 the reward is 0.6 on the 4 corners (the ring, no band) and
 * 0.1 elsewhere, so k = 1..4 gives the corners (ties included) and k = 5 every cell; on 2-D H 8
 * (defaults) top-4 is the 4 mode cells. The trainer's metrics: found · |top| = the mode cells found
 * (top-4 = modes), mass = Σ P_T over the set and the expected hit fraction 1 − (1 − p)^n by hand. */
START_TEST(test_topk_by_hand)
{
    fr_env e = grid(2, 4);
    uint8_t top[64];
    for (int k = 1; k <= 4; k++) {
        ck_assert_int_eq(fr_gfn_topk_set(&e, k, top), 4);
        for (int64_t i = 0; i < 16; i++) {
            int32_t s[2];
            e.gfn->state_at(&e, i, s);
            ck_assert_int_eq(top[i], (s[0] == 0 || s[0] == 3) && (s[1] == 0 || s[1] == 3));
        }
    }
    ck_assert_int_eq(fr_gfn_topk_set(&e, 5, top), 16);
    ck_assert_int_eq(fr_gfn_topk_set(&e, 1000, top), 16); /* k clamped to |S| */
    fr_env_free(&e);

    e = grid(2, 8);
    ck_assert_int_eq(fr_gfn_topk_set(&e, 4, top), 4);
    for (int64_t i = 0; i < 64; i++) {
        int32_t s[2];
        e.gfn->state_at(&e, i, s);
        ck_assert_int_eq(top[i], e.gfn->is_mode(&e, s));
    }
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 8;
    o.hidden = 16;
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    double pt[64], l1;
    for (int it = 0; it < 6; it++) {
        double found, mass, ex, want_mass = 0.0, want_ex = 0.0;
        ck_assert_int_eq(fr_gfn_trainer_topk(t, 4, 50, &found, &mass, &ex), FR_OK);
        ck_assert_int_eq(fr_gfn_trainer_eval(t, &l1, NULL, pt), FR_OK);
        for (int64_t i = 0; i < 64; i++)
            if (top[i]) {
                want_mass += pt[i];
                want_ex += 1.0 - pow(1.0 - pt[i], 50.0);
            }
        ck_assert_msg(found * 4.0 == (double)fr_gfn_trainer_modes(t), "iteration %d: found %g, modes %lld", it, found,
                      (long long)fr_gfn_trainer_modes(t));
        ck_assert(fabs(mass - want_mass) < 1e-15);
        ck_assert_msg(fabs(ex - want_ex / 4.0) < 1e-12, "expected hits %.17g, by hand %.17g", ex, want_ex / 4.0);
        ck_assert(mass > 0.0 && mass < 1.0 && ex > 0.0 && ex <= 1.0);
        fr_gfn_step_info info;
        ck_assert_msg(fr_gfn_trainer_step(t, &info) == FR_OK, "%s", fr_last_error());
    }
    fr_gfn_trainer_free(t);
    fr_backend_close(&be);
    fr_env_free(&e);
}
END_TEST

/* Acceptance (spec §10): greedy iff log R(x) <= log R(x'); MH iff u < exp(min(0, log R(x') +
 * log P_B(τ|x) + log P_F(τ') − log R(x) − log P_B(τ'|x') − log P_F(τ))). */
START_TEST(test_ls_accept_rule)
{
    double la;
    ck_assert_int_eq(fr_gfn_ls_accept(0, 1.0, 1.0, 0, 0, 0, 0, 0.99, &la), 1); /* ties accepted (torchgfn: prev <= new) */
    ck_assert_int_eq(fr_gfn_ls_accept(0, 0.9, 1.0, 0, 0, 0, 0, 0.0, NULL), 0);
    ck_assert_int_eq(fr_gfn_ls_accept(0, 2.0, 1.0, -9, -9, 9, 9, 0.0, &la), 1); /* greedy ignores the proposal terms */
    /* log A = 0.5 + (−1.0) + (−2.0) − 0.2 − (−1.5) − (−0.7) = −0.5 */
    ck_assert_int_eq(fr_gfn_ls_accept(1, 0.5, 0.2, -1.0, -2.0, -1.5, -0.7, 0.0, &la), 1);
    ck_assert(fabs(la - (-0.5)) < 1e-15);
    const double a = exp(-0.5);
    ck_assert_int_eq(fr_gfn_ls_accept(1, 0.5, 0.2, -1.0, -2.0, -1.5, -0.7, a - 1e-9, NULL), 1);
    ck_assert_int_eq(fr_gfn_ls_accept(1, 0.5, 0.2, -1.0, -2.0, -1.5, -0.7, a + 1e-9, NULL), 0);
    /* a ratio above 1 is clamped to log A = 0: always accepted */
    ck_assert_int_eq(fr_gfn_ls_accept(1, 3.0, 0.0, 0, 0, 0, 0, 0.999999, &la), 1);
    ck_assert(la == 0.0);
    /* MH may accept a worse x' and reject a better one's unlikely proposal */
    ck_assert_int_eq(fr_gfn_ls_accept(1, 0.0, 1.0, 0, 0, 0, 0, 0.3, &la), 1); /* exp(−1) = 0.37 > 0.3 */
    ck_assert_int_eq(fr_gfn_ls_accept(1, 1.0, 0.0, 0, 0, 3.0, 0, 0.2, &la), 0); /* exp(−2) = 0.14 < 0.2 */
    ck_assert_int_eq(fr_gfn_ls_accept(1, NAN, 0.0, 0, 0, 0, 0, 0.0, &la), 0);  /* NaN rejects */
}
END_TEST

/* A short run with options o on HyperGrid 2-D of height H on backend `name`: the digest; last: the
 * last iteration's loss and counters. */
static uint64_t ext_run_h(const char *name, int threads, const fr_gfn_opts *o, int H, int iters, fr_gfn_step_info *last)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, name, 0, threads) == FR_OK, "%s: %s", name, fr_last_error());
    fr_env e = grid(2, H);
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, o) == FR_OK, "%s", fr_last_error());
    for (int i = 0; i < iters; i++) ck_assert_msg(fr_gfn_trainer_step(t, last) == FR_OK, "%s", fr_last_error());
    uint64_t d;
    ck_assert_int_eq(fr_gfn_trainer_digest(t, &d, NULL), FR_OK);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return d;
}

static uint64_t ext_run(const char *name, int threads, const fr_gfn_opts *o, int iters, fr_gfn_step_info *last)
{
    return ext_run_h(name, threads, o, 5, iters, last);
}

/* A 3-iteration run of o is the same bits (digest, last loss, accepted reconstructions) on opt at 1
 * and 3 threads and on cuda-emu (where it is built) as on ref. */
static void ext_same_on_backends(const fr_gfn_opts *o, const char *what)
{
    fr_gfn_step_info ir, ib;
    const uint64_t want = ext_run("ref", 1, o, 3, &ir);
    const struct {
        const char *name;
        int threads;
    } bk[] = {{"opt", 1}, {"opt", 3}, {"cuda-emu", 1}};
    for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++) {
        fr_backend probe;
        if (strcmp(bk[i].name, "cuda-emu") == 0 && fr_backend_open(&probe, "cuda-emu", 0, 1) != FR_OK) continue;
        if (strcmp(bk[i].name, "cuda-emu") == 0) fr_backend_close(&probe);
        const uint64_t got = ext_run(bk[i].name, bk[i].threads, o, 3, &ib);
        ck_assert_msg(got == want && ib.loss == ir.loss && ib.ls_accepted == ir.ls_accepted,
                      "%s %s: %s at %d threads differs from ref", what, fr_gfn_loss_name(o->loss), bk[i].name, bk[i].threads);
    }
}

/* Sample accounting: with --local-search I every iteration evaluates R at batch fresh and
 * batch · I rebuilt terminal states, so trajectories = iterations · batch · (1 + I); the modes found
 * count every one of them (so at least those of the fresh samples of the same draws); at most batch ·
 * I are accepted; greedy and MH differ; and the trainer is the same bits on every backend. */
START_TEST(test_ls_accounting_and_backends)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 6;
    o.hidden = 16;
    o.ls_rounds = 2;
    fr_gfn_step_info info;
    const uint64_t greedy = ext_run("ref", 1, &o, 3, &info);
    ck_assert_int_eq(info.trajectories, 3 * 6 * 3);
    ck_assert(info.ls_accepted >= 0 && info.ls_accepted <= 6 * 2);
    ck_assert(isfinite(info.loss));
    /* one iteration: the fresh draws are plain TB's (same seed, same initial network), so local
     * search finds at least its modes (2-D H 8: 4 mode cells) */
    fr_gfn_opts plain = o;
    plain.ls_rounds = 0;
    plain.batch = 64;
    ext_run_h("ref", 1, &plain, 8, 1, &info);
    ck_assert_int_eq(info.trajectories, 64);
    const int64_t modes_plain = info.modes_found;
    fr_gfn_opts wide = plain;
    wide.ls_rounds = 2;
    ext_run_h("ref", 1, &wide, 8, 1, &info);
    ck_assert_int_eq(info.trajectories, 64 * 3);
    ck_assert_msg(info.ls_accepted > 0 && info.ls_accepted <= 128, "accepted %lld", (long long)info.ls_accepted);
    ck_assert_msg(info.modes_found >= modes_plain && info.modes_found > 0, "local search found %lld modes, its fresh draws %lld",
                  (long long)info.modes_found, (long long)modes_plain);
    /* long fresh trajectories (the exit's sampling logit lowered by 4): every junction is past s0,
     * so the rebuild of the whole batch starts after step 0 */
    fr_gfn_opts longer = o;
    longer.batch = 2;
    longer.ls_rounds = 1;
    longer.sf_bias = 4.0;
    ext_run_h("ref", 1, &longer, 8, 5, &info);
    ck_assert_int_eq(info.trajectories, 5 * 2 * 2);
    o.ls_mh = 1;
    o.uniform_pb = 1;
    const uint64_t mh = ext_run("ref", 1, &o, 3, &info);
    ck_assert(mh != greedy);
    ck_assert_int_eq(info.trajectories, 3 * 6 * 3);
    o.uniform_pb = 0;
    o.loss = FR_GFN_OP;
    for (int c = 0; c < 2; c++) { /* MH with a learned P_B; OP-GFN with local search */
        fr_gfn_opts oc = o;
        if (c == 0) oc.loss = FR_GFN_TB;
        ext_same_on_backends(&oc, "local search");
    }
}
END_TEST

/* OP-GFN's KL(P_B ‖ uniform) of one state (yhangchen/OP-GFN get_backward_entropy): by hand, its
 * gradient in the logits by central differences (a clamped probability included: its term is
 * constant), the single-parent state (q = 1 clamped to 1 − eps: KL = −log(1 − eps), no gradient). */
static void kl_lsm(const double *z, const uint8_t *m, int n, double *lsm)
{
    double mx = -INFINITY, s = 0.0;
    for (int a = 0; a < n; a++)
        if (m[a] && z[a] > mx) mx = z[a];
    for (int a = 0; a < n; a++)
        if (m[a]) s += exp(z[a] - mx);
    for (int a = 0; a < n; a++) lsm[a] = m[a] ? z[a] - mx - log(s) : -INFINITY;
}

START_TEST(test_kl_uniform_by_hand)
{
    const uint8_t m[4] = {1, 1, 1, 0};
    double z[4] = {0.3, -1.1, 0.7, 5.0}, lsm[4], g[4];
    kl_lsm(z, m, 4, lsm);
    double want = 0.0;
    for (int a = 0; a < 3; a++) want += (1.0 / 3.0) * (log(1.0 / 3.0) - lsm[a]);
    const double kl = fr_gfn_kl_uniform(lsm, m, 4, g);
    ck_assert_msg(fabs(kl - want) < 1e-14 && kl > 0.0, "kl %.17g, by hand %.17g", kl, want);
    ck_assert(g[3] == 0.0);
    const double zs[2][4] = {{0.3, -1.1, 0.7, 5.0}, {0.0, -40.0, 0.5, 0.0}}; /* the second: q_1 ≈ 4e-18 is clamped */
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < 3; j++) {
            memcpy(z, zs[c], sizeof z);
            kl_lsm(z, m, 4, lsm);
            fr_gfn_kl_uniform(lsm, m, 4, g);
            const double h = 1e-6;
            z[j] = zs[c][j] + h;
            kl_lsm(z, m, 4, lsm);
            const double kp = fr_gfn_kl_uniform(lsm, m, 4, NULL);
            z[j] = zs[c][j] - h;
            kl_lsm(z, m, 4, lsm);
            const double km = fr_gfn_kl_uniform(lsm, m, 4, NULL);
            ck_assert_msg(fabs((kp - km) / (2 * h) - g[j]) < 1e-8, "kl case %d logit %d: fd %.12g analytic %.12g", c, j,
                          (kp - km) / (2 * h), g[j]);
        }
    /* the clamped q_1 carries no gradient of its own: g_1 = (Σ u over the free ones) q_1 */
    memcpy(z, zs[1], sizeof z);
    kl_lsm(z, m, 4, lsm);
    fr_gfn_kl_uniform(lsm, m, 4, g);
    ck_assert(fabs(g[1] - (2.0 / 3.0) * exp(lsm[1])) < 1e-20);
    const uint8_t one[4] = {0, 1, 0, 0};
    kl_lsm(z, one, 4, lsm);
    ck_assert(fabs(fr_gfn_kl_uniform(lsm, one, 4, g) + log(1.0 - FR_GFN_KL_EPS)) < 1e-20);
    for (int a = 0; a < 4; a++) ck_assert(g[a] == 0.0);
    const uint8_t none[4] = {0, 0, 0, 0};
    ck_assert(fr_gfn_kl_uniform(lsm, none, 4, g) == 0.0);
}
END_TEST

/* The trainer's KL term: the first iteration's loss is the plain loss plus kl_weight · K with the same
 * K > 0 at every weight (the draws and the initial network do not depend on it), the run differs from
 * kl_weight 0 and is the same bits on ref, opt (1, 3 threads) and cuda-emu (gfn-op and gfn-tb with local
 * search); a uniform P_B, fm and rtb are refused in one line naming the option. */
START_TEST(test_kl_trainer)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 6;
    o.hidden = 16;
    o.loss = FR_GFN_OP;
    fr_gfn_step_info i0, i1, i2;
    const uint64_t d0 = ext_run("ref", 1, &o, 1, &i0);
    o.kl_weight = 1.0;
    const uint64_t d1 = ext_run("ref", 1, &o, 1, &i1);
    o.kl_weight = 2.0;
    ext_run("ref", 1, &o, 1, &i2);
    const double k1 = i1.loss - i0.loss, k2 = (i2.loss - i0.loss) / 2.0;
    ck_assert_msg(k1 > 1e-6 && fabs(k1 - k2) < 1e-12, "KL term %.17g at weight 1, %.17g at weight 2", k1, k2);
    ck_assert(d1 != d0);
    for (int c = 0; c < 2; c++) {
        fr_gfn_opts oc = o;
        oc.kl_weight = 0.5;
        if (c == 1) {
            oc.loss = FR_GFN_TB;
            oc.ls_rounds = 1;
        }
        ext_same_on_backends(&oc, "kl");
    }
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    fr_gfn_trainer *t = NULL;
    const fr_gfn_loss_kind bad[3] = {FR_GFN_OP, FR_GFN_FM, FR_GFN_RTB};
    for (int c = 0; c < 3; c++) {
        fr_gfn_opts ob = o;
        ob.loss = bad[c];
        ob.uniform_pb = c == 0;
        ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &ob), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "--kl-weight"), "%s", fr_last_error());
    }
    o.kl_weight = -1.0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert(t == NULL);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* Local search refuses what it cannot serve, in one line naming the option. */
START_TEST(test_ls_errors)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    fr_gfn_trainer *t = NULL;
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 4;
    o.hidden = 8;
    o.ls_rounds = 1;
    o.loss = FR_GFN_FM;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--local-search"), "%s", fr_last_error());
    o.loss = FR_GFN_TB;
    o.replay = 8;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    o.replay = 0;
    o.ls_back_ratio = 0.0;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--ls-back-ratio"), "%s", fr_last_error());
    ck_assert(t == NULL);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* The CLI: gfn-op with --top-k and gfn-tb with --local-search print their metrics. */
START_TEST(test_cli_op_ls)
{
    static char out[1 << 16];
    char dir[256], cmd[1024];
    fr_test_mkdtemp(dir, sizeof dir, "gfnext");
    snprintf(cmd, sizeof cmd,
             "train --algo gfn-op --env hypergrid --ndim 2 --height 4 --batch-size 4 --hidden-dim 8 --n-hidden 1 "
             "--epochs 2 --eval-every 2 --top-k 4 --kl-weight 0.1 --out %s/op",
             dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "topk_found") && strstr(out, "op loss") && strstr(out, "KL(P_B || uniform) term, weight 0.1"),
                  "%s", out);
    snprintf(cmd, sizeof cmd,
             "train --algo gfn-tb --env hypergrid --ndim 2 --height 4 --batch-size 4 --hidden-dim 8 --n-hidden 1 "
             "--epochs 2 --eval-every 2 --local-search 2 --ls-mh --out %s/ls",
             dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "local search: 2 rounds") && strstr(out, "trajectories 24 "), "%s", out);
    snprintf(cmd, sizeof cmd,
             "train --algo gfn-tb --env mo-hypergrid --height 5 --preference --mo-beta 2 --mo-beta-dist uniform --mo-beta-a 1 "
             "--mo-beta-b 4 --mo-beta-therm 4 --batch-size 4 --hidden-dim 8 --n-hidden 1 --epochs 2 --eval-every 2 --out %s/mo",
             dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "pareto_cov1000") && strstr(out, "preference-conditioned") &&
                      strstr(out, "beta drawn per trajectory: uniform(1, 4), 4 thermometer bins"),
                  "%s", out);
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-op --help", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "--local-search") && strstr(out, "--top-k"), "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

/* Branin and Currin as the public grid writes them (yhangchen/OP-GFN multi/grid_cond_gfn.py),
 * again here, and the Pareto front of H 8 by brute force: the 6 cells (2..4, 0..1), as the public
 * formulas give in numpy. */
static void bc_by_hand(int H, int i, int j, double *r)
{
    const double pi = acos(-1.0), x0 = (double)i / (H - 1) * 2 - 1, x1 = (double)j / (H - 1) * 2 - 1;
    const double u = 15 * (x0 / 2 + 0.5) - 5, v = 15 * (x1 / 2 + 0.5);
    const double t1 = v - 5.1 / (4 * pi * pi) * u * u + 5 / pi * u - 6, t2 = 10 * (1 - 1 / (8 * pi)) * cos(u);
    r[0] = 1 - (t1 * t1 + t2 + 10) / 308.13;
    const double a = x0 / 2 + 0.5, b = x1 / 2 + 0.5;
    r[1] = (1 - exp(-1 / (2 * b + 1e-10))) * (2300 * pow(a, 3) + 1900 * a * a + 2092 * a + 60) /
           (100 * pow(a, 3) + 500 * a * a + 4 * a + 20) / 13.77;
}

START_TEST(test_mo_env_by_hand)
{
    const fr_env_class *c;
    ck_assert_int_eq(fr_env_find("mo-hypergrid", &c), FR_OK);
    int o = 8; /* its one option: the height */
    fr_env e;
    ck_assert_msg(fr_env_create(c, &o, &e) == FR_OK, "%s", fr_last_error());
    ck_assert_int_eq(e.n_states, 64);
    ck_assert_int_eq(e.n_objectives, 2);
    int front = 0;
    for (int64_t k = 0; k < 64; k++) {
        int32_t s[2];
        double r[2], h[2];
        e.gfn->state_at(&e, k, s);
        e.gfn->objectives(&e, s, r);
        bc_by_hand(8, s[0], s[1], h);
        ck_assert_msg(fabs(r[0] - h[0]) < 1e-12 && fabs(r[1] - h[1]) < 1e-12, "cell (%d, %d)", s[0], s[1]);
        ck_assert(r[0] > 0.0 && r[1] > 0.0);
        ck_assert(fabs(e.gfn->log_reward(&e, s) - log(0.5 * r[0] + 0.5 * r[1])) < 1e-15);
        const int want = s[0] >= 2 && s[0] <= 4 && s[1] <= 1;
        ck_assert_msg(e.gfn->is_mode(&e, s) == want, "cell (%d, %d): Pareto %d, by hand %d", s[0], s[1],
                      e.gfn->is_mode(&e, s), want);
        front += want;
    }
    ck_assert_int_eq(front, 6);
    fr_env_free(&e);
}
END_TEST

/* The conditional target and the exact evaluation by hand at one preference (P = 1: ω = (½, ½)):
 * mo_l1 = Σ|P_T − R(·|ω)^β/Z|, the log Z error against log Σ R^β, and the coverage mean over the 6
 * front cells of 1 − (1 − P_T)^n; trained a few steps; ref = opt = cuda-emu bit for bit. */
static uint64_t mo_run(const char *name, int threads, fr_gfn_loss_kind k, int iters, double *out3)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, name, 0, threads) == FR_OK, "%s: %s", name, fr_last_error());
    int h = 8;
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_mo_hypergrid, &h, &e), FR_OK);
    fr_gfn_opts o = fr_gfn_opts_default();
    o.loss = k;
    o.batch = 8;
    o.hidden = 16;
    o.preference = 1;
    o.mo_beta = 3.0;
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_gfn_step_info info = {0};
    for (int i = 0; i < iters; i++) ck_assert_msg(fr_gfn_trainer_step(t, &info) == FR_OK, "%s", fr_last_error());
    double l1, zerr, cov, pt[64], l1e, zerre;
    int64_t front;
    ck_assert_int_eq(fr_gfn_trainer_mo_eval(t, 1, 40, &l1, &zerr, &cov, &front), FR_OK);
    ck_assert_int_eq(fr_gfn_trainer_eval(t, &l1e, &zerre, pt), FR_OK); /* at ω = (½, ½) */
    double z = 0.0, tgt[64], want = 0.0, wcov = 0.0;
    for (int64_t i = 0; i < 64; i++) {
        int32_t s[2];
        double r[2];
        e.gfn->state_at(&e, i, s);
        e.gfn->objectives(&e, s, r);
        tgt[i] = pow(0.5 * r[0] + 0.5 * r[1], 3.0);
        z += tgt[i];
        if (e.gfn->is_mode(&e, s)) wcov += 1.0 - pow(1.0 - pt[i], 40.0);
    }
    for (int64_t i = 0; i < 64; i++) want += fabs(pt[i] - tgt[i] / z);
    double lz;
    ck_assert_int_eq(fr_gfn_trainer_log_z(t, &lz), FR_OK);
    ck_assert_msg(fabs(l1 - want) < 1e-12 && l1 == l1e, "mo_l1 %.17g, by hand %.17g, eval %.17g", l1, want, l1e);
    ck_assert(isfinite(lz) && fabs(zerr - fabs(lz - log(z))) < 1e-12 && zerr == zerre);
    ck_assert_int_eq(front, 6);
    ck_assert_msg(fabs(cov - wcov / 6.0) < 1e-12, "coverage %.17g, by hand %.17g", cov, wcov / 6.0);
    out3[0] = l1;
    out3[1] = cov;
    out3[2] = info.loss;
    uint64_t d;
    ck_assert_int_eq(fr_gfn_trainer_digest(t, &d, NULL), FR_OK);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return d;
}

START_TEST(test_mo_eval_by_hand_and_backends)
{
    const fr_gfn_loss_kind ks[] = {FR_GFN_TB, FR_GFN_DB};
    for (size_t c = 0; c < 2; c++) {
        double want[3], got[3];
        mo_run("ref", 1, ks[c], 0, want); /* the initial policy */
        const uint64_t d = mo_run("ref", 1, ks[c], 4, want);
        ck_assert(isfinite(want[2]));
        const char *names[] = {"opt", "opt", "cuda-emu"};
        const int threads[] = {1, 3, 1};
        for (int i = 0; i < 3; i++) {
            fr_backend probe;
            if (i == 2 && fr_backend_open(&probe, "cuda-emu", 0, 1) != FR_OK) continue;
            if (i == 2) fr_backend_close(&probe);
            ck_assert_msg(mo_run(names[i], threads[i], ks[c], 4, got) == d && got[0] == want[0] && got[2] == want[2],
                          "%s at %d threads differs from ref", names[i], threads[i]);
        }
    }
    /* refusals: a single-objective environment, a loss without a conditional form */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_env e = grid(2, 4);
    fr_gfn_trainer *t = NULL;
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 4;
    o.hidden = 8;
    o.preference = 1;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "2 objectives"), "%s", fr_last_error());
    fr_env_free(&e);
    int h = 4;
    ck_assert_int_eq(fr_env_create(&fr_env_mo_hypergrid, &h, &e), FR_OK);
    o.loss = FR_GFN_FM;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    o.loss = FR_GFN_TB;
    o.ls_rounds = 1;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert(t == NULL);
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

/* A drawn β (TemperatureConditional): the thermometer encoding by hand, each distribution's upper
 * bound (gamma's 95% quantile: Gamma(2)'s is 4.743864518…, χ²₄'s 9.487729037/2), the draws (in their
 * support, float32 values, the batch mean near the distribution's), the encoding after ω in each
 * trajectory's conditioning and log R = β log Σ ω R; the input widens by the bins; ref = opt (1, 3
 * threads) = cuda-emu bit for bit; bad parameters refused. */
static fr_gfn_trainer *beta_trainer(fr_backend *be, fr_env *e, int dist, double a, double b, int therm, int batch)
{
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = batch;
    o.hidden = 8;
    o.n_hidden = 1;
    o.preference = 1;
    o.mo_beta = 2.0;
    o.mo_beta_dist = dist;
    o.mo_beta_a = a;
    o.mo_beta_b = b;
    o.mo_beta_therm = therm;
    fr_gfn_trainer *t = NULL;
    ck_assert_msg(fr_gfn_trainer_new(&t, be, e, &o) == FR_OK, "%s", fr_last_error());
    return t;
}

START_TEST(test_mo_beta_drawn)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    int h = 5;
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_mo_hypergrid, &h, &e), FR_OK);
    fr_gfn_trainer *t = beta_trainer(&be, &e, 2, 0.0, 3.0, 4, 256); /* uniform [0, 3], 4 bins: gap 1 */
    ck_assert(t->beta_hi == 3.0 && t->ncw == 6 && t->dim[0] == e.obs_dim + 6);
    double enc[4];
    const double want[3][4] = {{1, 0.5, 0, 0}, {0, 0, 0, 0}, {1, 1, 1, 1}};
    const double betas[3] = {1.5, -1.0, 5.0};
    for (int c = 0; c < 3; c++) {
        fr_gfn_beta_encode(t, betas[c], enc);
        for (int i = 0; i < 4; i++) ck_assert_msg(enc[i] == want[c][i], "beta %g bin %d: %g", betas[c], i, enc[i]);
    }
    ck_assert(t->eval_w[2] == 1.0 && t->eval_w[3] == 1.0 && t->eval_w[4] == 0.0); /* mo_beta 2 */
    const struct {
        int dist;
        double a, b, lo, hi, mean, tol, ub;
    } cs[] = {{2, 0.0, 3.0, 0.0, 3.0, 1.5, 0.3, 3.0},
              {3, 1.0, 8.0, 1.0, 8.0, 7.0 / log(8.0), 0.6, 8.0},
              {1, 2.0, 1.5, 0.0, INFINITY, 3.0, 0.6, 1.5 * 4.743864518},
              {4, 2.0, 3.0, 0.0, 1.0, 0.4, 0.06, 1.0}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        if (c > 0) t = beta_trainer(&be, &e, cs[c].dist, cs[c].a, cs[c].b, 8, 256);
        ck_assert_msg(fabs(t->beta_hi - cs[c].ub) < 1e-8, "dist %d: upper bound %.12g, want %.12g", cs[c].dist, t->beta_hi, cs[c].ub);
        fr_gfn_step_info info;
        ck_assert_msg(fr_gfn_trainer_step(t, &info) == FR_OK, "%s", fr_last_error());
        double mean = 0.0;
        for (int64_t b = 0; b < 256; b++) {
            const double be_ = t->beta_b[b];
            ck_assert_msg(be_ >= cs[c].lo && be_ <= cs[c].hi && be_ == (double)(float)be_, "dist %d: beta %.17g", cs[c].dist, be_);
            mean += be_ / 256.0;
            const int nb = t->o.mo_beta_therm;
            double e2[64];
            fr_gfn_beta_encode(t, be_, e2);
            for (int i = 0; i < nb; i++) ck_assert(t->pref[b * t->ncw + 2 + i] == e2[i]);
            const int32_t *x = t->st + (b * e.max_steps + t->len[b] - 1) * e.state_dim;
            ck_assert(t->logr[b] == fr_gfn_mo_log_reward(t, x, t->pref + b * t->ncw, be_));
        }
        ck_assert_msg(t->beta_b[0] != t->beta_b[1] && fabs(mean - cs[c].mean) < cs[c].tol, "dist %d: batch mean %.6f, want %.6f",
                      cs[c].dist, mean, cs[c].mean);
        fr_gfn_trainer_free(t);
    }
    /* the same bits on every backend */
    fr_gfn_opts o = fr_gfn_opts_default();
    o.batch = 6;
    o.hidden = 16;
    o.preference = 1;
    o.mo_beta_dist = 1;
    o.mo_beta_a = 2.0;
    o.mo_beta_b = 4.0;
    o.mo_beta_therm = 8;
    uint64_t want_d = 0;
    const struct {
        const char *name;
        int threads;
    } bk[] = {{"ref", 1}, {"opt", 1}, {"opt", 3}, {"cuda-emu", 1}};
    for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++) {
        fr_backend b2;
        if (fr_backend_open(&b2, bk[i].name, 0, bk[i].threads) != FR_OK) continue; /* cuda-emu where built */
        fr_gfn_trainer *t2;
        ck_assert_msg(fr_gfn_trainer_new(&t2, &b2, &e, &o) == FR_OK, "%s", fr_last_error());
        for (int it = 0; it < 3; it++) ck_assert_msg(fr_gfn_trainer_step(t2, NULL) == FR_OK, "%s", fr_last_error());
        uint64_t d;
        ck_assert_int_eq(fr_gfn_trainer_digest(t2, &d, NULL), FR_OK);
        if (i == 0) want_d = d;
        ck_assert_msg(d == want_d, "drawn beta: %s at %d threads differs from ref", bk[i].name, bk[i].threads);
        fr_gfn_trainer_free(t2);
        fr_backend_close(&b2);
    }
    const double bad[][3] = {{3, 0.0, 8.0}, {2, 3.0, 3.0}, {1, -1.0, 1.0}, {4, 1.0, 0.0}, {7, 1.0, 2.0}};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        o.mo_beta_dist = (int)bad[c][0];
        o.mo_beta_a = bad[c][1];
        o.mo_beta_b = bad[c][2];
        fr_gfn_trainer *t3 = NULL;
        ck_assert_int_eq(fr_gfn_trainer_new(&t3, &be, &e, &o), FR_ERR_ARG);
        ck_assert_msg(strstr(fr_last_error(), "--mo-beta-dist"), "%s", fr_last_error());
    }
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

Suite *suite_gfn_ext(void)
{
    Suite *s = suite_create("gfn_ext");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_op_label);
    tcase_add_test(tc, test_op_loss_by_hand);
    tcase_add_test(tc, test_topk_by_hand);
    tcase_add_test(tc, test_ls_accept_rule);
    tcase_add_test(tc, test_ls_accounting_and_backends);
    tcase_add_test(tc, test_ls_errors);
    tcase_add_test(tc, test_kl_uniform_by_hand);
    tcase_add_test(tc, test_kl_trainer);
    tcase_add_test(tc, test_cli_op_ls);
    tcase_add_test(tc, test_mo_env_by_hand);
    tcase_add_test(tc, test_mo_eval_by_hand_and_backends);
    tcase_add_test(tc, test_mo_beta_drawn);
    suite_add_tcase(s, tc);
    return s;
}
