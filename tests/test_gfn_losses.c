/* GFlowNet losses and options beyond the first piece (flowrl/gfn.h, flowrl/gfn_train.h;
 * docs/algorithms/gfn.md §3, §5): modified DB, forward-looking DB / SubTB, SubTB's weightings
 * (spec gflownets.md §13.3: TB weighting = TB with log Z = log F(s0), DB weighting = DB, weights
 * sum to 1), RTB, the regressions g, each by hand on a tiny batch and by central differences;
 * the JSD by hand; the trainer's new options ref = opt bitwise; the CLI's one-line refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_train.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* Trajectory 0: 3 actions (2 steps + exit); trajectory 1: 1 (exit at s0). Both start at s0, so
 * logf[b, 0] and logrs[b, 0] agree across rows (what a real batch has). */
enum { B2 = 2, L2 = 3 };
static const int32_t k_len[B2] = {3, 1};
static double k_pf[B2 * L2] = {-0.7, -1.1, -0.4, -1.3, 0, 0};
static double k_pb[B2 * L2] = {-0.2, -0.6, 0, 0, 0, 0};
static double k_f[B2 * L2] = {1.5, 0.9, 0.3, 1.5, 0, 0};
static double k_r[B2] = {0.8, -0.5};
static double k_rs[B2 * L2] = {-0.5, -1.2, 0.8, -0.5, 0, 0};   /* log R(s_t); s_{n−1} = x: logr */
static double k_px[B2 * L2] = {-1.6, -0.9, -0.4, -1.3, 0, 0};  /* log P_F(exit | s_t); the last = logpf's exit */
static double k_pr[B2 * L2] = {-0.9, -1.0, -0.6, -1.1, 0, 0};  /* the prior's log P_F */

static fr_gfn_batch tiny(void)
{
    fr_gfn_batch b = {.B = B2, .L = L2, .len = k_len, .logpf = k_pf, .logpb = k_pb, .logf = k_f, .logr = k_r,
                      .log_z = 0.25, .lambda = 0.9, .logrs = k_rs, .logpf_exit = k_px, .logprior = k_pr,
                      .linex_alpha = 0.5, .beta = 1.5};
    return b;
}

static double loss_of(fr_gfn_loss_kind k, const fr_gfn_batch *b)
{
    double l;
    ck_assert_msg(fr_gfn_loss(k, b, &l, NULL, NULL) == FR_OK, "%s", fr_last_error());
    return l;
}

START_TEST(test_mdb_fl_by_hand)
{
    fr_gfn_batch b = tiny();
    double res[B2 * L2];
    /* MDB: the two non-exit transitions of trajectory 0 (trajectory 1 has none) */
    double m0 = (-0.5 - 0.7 - 0.9) - (-1.2 - 0.2 - 1.6), m1 = (-1.2 - 1.1 - 0.4) - (0.8 - 0.6 - 0.9), loss;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_MDB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - m0) < 1e-14 && fabs(res[1] - m1) < 1e-14 && res[2] == 0.0 && res[3] == 0.0);
    ck_assert(fabs(loss - (m0 * m0 + m1 * m1) / 2) < 1e-14);
    /* forward-looking DB: log F(s_t) = logf + logrs, the exit's target log R(x) */
    b.forward_looking = 1;
    double d[4] = {(1.5 - 0.5) - 0.7 - (0.9 - 1.2) + 0.2, (0.9 - 1.2) - 1.1 - (0.3 + 0.8) + 0.6, (0.3 + 0.8) - 0.4 - 0.8,
                   (1.5 - 0.5) - 1.3 + 0.5};
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_DB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - d[0]) < 1e-14 && fabs(res[1] - d[1]) < 1e-14 && fabs(res[2] - d[2]) < 1e-14 &&
              fabs(res[3] - d[3]) < 1e-14);
    ck_assert(fabs(loss - (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + d[3] * d[3]) / 4) < 1e-14);
    /* forward-looking SubTB's whole-trajectory residual: TB's with log Z = log F̃(s0) + log R(s0) */
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_SUBTB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - ((1.5 - 0.5) + (-0.7 - 1.1 - 0.4) - (-0.2 - 0.6) - 0.8)) < 1e-14);
    /* RTB: ½ (logZ + Σ logpf − Σ logprior − β logr)², no P_B */
    double q0 = 0.25 + (-0.7 - 1.1 - 0.4) - (-0.9 - 1.0 - 0.6) - 1.5 * 0.8, q1 = 0.25 - 1.3 + 1.1 + 1.5 * 0.5;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_RTB, &b, &loss, res, NULL), FR_OK);
    ck_assert(fabs(res[0] - q0) < 1e-14 && fabs(res[1] - q1) < 1e-14);
    ck_assert(fabs(loss - 0.5 * (q0 * q0 + q1 * q1) / 2) < 1e-14);
    /* at φ = prior and log Z = β log r the residual is 0 (one trajectory's batch) */
    fr_gfn_batch one = tiny();
    one.B = 1;
    one.logprior = k_pf;
    one.log_z = 1.5 * 0.8;
    fr_gfn_grad g = {.log_z = 1.0};
    double gpf[B2 * L2];
    g.logpf = gpf;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_RTB, &one, &loss, res, &g), FR_OK);
    ck_assert_msg(res[0] == 0.0 && loss == 0.0 && g.log_z == 0.0 && gpf[0] == 0.0, "rtb at the prior: r %g", res[0]);
    /* the regressions on TB: cosh e^r + e^−r − 2, linex (e^{αr} − αr − 1)/α² */
    fr_gfn_batch c = tiny();
    double r0 = 0.25 + (-0.7 - 1.1 - 0.4) - (-0.2 - 0.6) - 0.8, r1 = 0.25 - 1.3 + 0.5;
    c.regression = FR_GFN_COSH;
    ck_assert(fabs(loss_of(FR_GFN_TB, &c) - (exp(r0) + exp(-r0) - 2 + exp(r1) + exp(-r1) - 2) / 2) < 1e-14);
    c.regression = FR_GFN_LINEX;
    double a = 0.5, l0 = (exp(a * r0) - a * r0 - 1) / (a * a), l1 = (exp(a * r1) - a * r1 - 1) / (a * a);
    ck_assert(fabs(loss_of(FR_GFN_TB, &c) - (l0 + l1) / 2) < 1e-14);
    /* mdb without the exit log-probs, rtb without a prior: one line */
    c.logpf_exit = NULL;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_MDB, &c, &loss, NULL, NULL), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "logpf_exit"), "%s", fr_last_error());
    c.logprior = NULL;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_RTB, &c, &loss, NULL, NULL), FR_ERR_ARG);
    c.regression = FR_GFN_LINEX;
    c.linex_alpha = 0.0;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &c, &loss, NULL, NULL), FR_ERR_ARG);
}
END_TEST

/* Spec §13.3: the weights sum to 1 (the *_within and ModifiedDB ones to 1/B per trajectory),
 * the loss is Σ w·r², TB weighting = TB at log Z = log F(s0) and DB weighting = DB, bit for bit;
 * equal_within and geometric by hand. */
START_TEST(test_subtb_weightings)
{
    enum { L1 = L2 + 1 };
    for (int fl = 0; fl < 2; fl++)
        for (int w = 0; w < 7; w++) {
            fr_gfn_batch b = tiny();
            b.forward_looking = fl;
            b.weighting = (fr_gfn_subtb_weighting)w;
            double wt[B2 * L1 * L1], loss, sum = 0.0, want = 0.0, per[B2] = {0, 0};
            ck_assert_int_eq(fr_gfn_subtb_weights(&b, wt), FR_OK);
            for (int i = 0; i < B2; i++)
                for (int p = 0; p < L1; p++)
                    for (int j = 0; j < L1; j++) {
                        double v = wt[(i * L1 + p) * L1 + j];
                        ck_assert(v >= 0.0);
                        if (v == 0.0) continue;
                        ck_assert(p < j && j <= k_len[i]);
                        sum += v;
                        per[i] += v;
                        /* r_pj: F(s_p) + Σ (logpf − logpb) − F(s_j), F(s_n) = log R */
                        double F[L1];
                        for (int t = 0; t < k_len[i]; t++) F[t] = k_f[i * L2 + t] + (fl ? k_rs[i * L2 + t] : 0.0);
                        F[k_len[i]] = k_r[i];
                        double r = F[p] - F[j];
                        for (int t = p; t < j; t++) r += k_pf[i * L2 + t] - (t < k_len[i] - 1 ? k_pb[i * L2 + t] : 0.0);
                        want += v * r * r;
                    }
            const char *name = fr_gfn_weighting_name(b.weighting);
            ck_assert_msg(fabs(sum - 1.0) < 1e-15, "%s: weights sum to %.17g", name, sum);
            if (w == FR_SUBTB_GEOMETRIC_WITHIN || w == FR_SUBTB_EQUAL_WITHIN || w == FR_SUBTB_MODIFIED_DB || w == FR_SUBTB_TB)
                ck_assert_msg(fabs(per[0] - 0.5) < 1e-15 && fabs(per[1] - 0.5) < 1e-15, "%s: per trajectory %g %g", name,
                              per[0], per[1]);
            ck_assert_int_eq(fr_gfn_loss(FR_GFN_SUBTB, &b, &loss, NULL, NULL), FR_OK);
            ck_assert_msg(fabs(loss - want) < 1e-13, "%s fl %d: loss %.17g, Σ w r² %.17g", name, fl, loss, want);
            if (w == FR_SUBTB_TB) {
                fr_gfn_batch t = b;
                t.log_z = k_f[0] + (fl ? k_rs[0] : 0.0);
                ck_assert_msg(loss == loss_of(FR_GFN_TB, &t), "TB weighting %.17g, TB %.17g", loss, loss_of(FR_GFN_TB, &t));
            }
            if (w == FR_SUBTB_DB) ck_assert(loss == loss_of(FR_GFN_DB, &b));
            if (w == FR_SUBTB_EQUAL_WITHIN) ck_assert(fabs(wt[(0 * L1 + 0) * L1 + 2] - 2.0 / 12 / 2) < 1e-17);
            if (w == FR_SUBTB_EQUAL) ck_assert(fabs(wt[(1 * L1 + 0) * L1 + 1] - 1.0 / 7) < 1e-17);
            if (w == FR_SUBTB_GEOMETRIC) /* maxlen 3: λ^{k−1}(1−λ)/(1−λ³) over the count of length k (1: 4, 2: 2, 3: 1) */
                ck_assert(fabs(wt[(0 * L1 + 1) * L1 + 3] - 0.9 * 0.1 / (1 - 0.729) / 2) < 1e-15);
        }
    fr_gfn_batch b = tiny();
    b.weighting = FR_SUBTB_GEOMETRIC;
    b.lambda = 1.0;
    double loss;
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_SUBTB, &b, &loss, NULL, NULL), FR_ERR_ARG);
}
END_TEST

/* Every new loss, weighting and regression: each gradient against central differences. */
START_TEST(test_gradients_fd)
{
    struct {
        fr_gfn_loss_kind k;
        int fl, w, g;
    } cs[] = {{FR_GFN_MDB, 0, 0, 0},    {FR_GFN_RTB, 0, 0, 0},    {FR_GFN_DB, 1, 0, 0},     {FR_GFN_SUBTB, 1, 0, 0},
              {FR_GFN_SUBTB, 0, 1, 0},  {FR_GFN_SUBTB, 0, 2, 0},  {FR_GFN_SUBTB, 0, 3, 0},  {FR_GFN_SUBTB, 0, 4, 0},
              {FR_GFN_SUBTB, 0, 5, 0},  {FR_GFN_SUBTB, 1, 6, 0},  {FR_GFN_TB, 0, 0, 1},     {FR_GFN_TB, 0, 0, 2},
              {FR_GFN_ZVAR, 0, 0, 1},   {FR_GFN_ZVAR, 0, 0, 2},   {FR_GFN_DB, 0, 0, 1},     {FR_GFN_SUBTB, 0, 0, 2},
              {FR_GFN_MDB, 0, 0, 1},    {FR_GFN_RTB, 0, 0, 2}};
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        fr_gfn_batch b = tiny();
        b.forward_looking = cs[c].fl;
        b.weighting = (fr_gfn_subtb_weighting)cs[c].w;
        b.regression = (fr_gfn_regression)cs[c].g;
        const fr_gfn_loss_kind k = cs[c].k;
        double gpf[B2 * L2], gpb[B2 * L2], gf[B2 * L2], gx[B2 * L2], loss, lp, lm;
        fr_gfn_grad g = {.logpf = gpf, .logpb = gpb, .logf = gf, .logpf_exit = gx};
        ck_assert_int_eq(fr_gfn_loss(k, &b, &loss, NULL, &g), FR_OK);
        ck_assert(isfinite(loss) && loss > 0.0);
        double *arrs[4] = {k_pf, k_pb, k_f, k_px}, *grads[4] = {gpf, gpb, gf, gx};
        for (int a = 0; a < 4; a++)
            for (int i = 0; i < B2 * L2; i++) {
                double keep = arrs[a][i], h = 1e-6;
                arrs[a][i] = keep + h;
                lp = loss_of(k, &b);
                arrs[a][i] = keep - h;
                lm = loss_of(k, &b);
                arrs[a][i] = keep;
                double fd = (lp - lm) / (2 * h);
                ck_assert_msg(fabs(fd - grads[a][i]) < 1e-7 * (1.0 + fabs(fd)), "case %zu (%s): array %d slot %d: fd %.12g analytic %.12g",
                              c, fr_gfn_loss_name(k), a, i, fd, grads[a][i]);
            }
        if (k == FR_GFN_TB || k == FR_GFN_RTB) {
            b.log_z += 1e-6;
            lp = loss_of(k, &b);
            b.log_z -= 2e-6;
            lm = loss_of(k, &b);
            ck_assert(fabs((lp - lm) / 2e-6 - g.log_z) < 1e-7);
        }
    }
}
END_TEST

/* JSD by hand (nats, 0·log 0 = 0): p = (½, ½, 0), q = (1, 0, 0), m = (¾, ¼, 0). */
START_TEST(test_jsd_by_hand)
{
    const double p[3] = {0.5, 0.5, 0.0}, q[3] = {1.0, 0.0, 0.0};
    double want = 0.5 * (0.5 * log(0.5 / 0.75) + 0.5 * log(0.5 / 0.25)) + 0.5 * log(1.0 / 0.75);
    ck_assert_msg(fabs(fr_gfn_jsd(p, q, 3) - want) < 1e-15, "jsd %.17g want %.17g", fr_gfn_jsd(p, q, 3), want);
    ck_assert(fr_gfn_jsd(p, p, 3) == 0.0);
    const double a[2] = {1.0, 0.0}, b[2] = {0.0, 1.0};
    ck_assert(fabs(fr_gfn_jsd(a, b, 2) - log(2.0)) < 1e-15);
}
END_TEST

/* The trainer with each new option: ref = opt at 3 threads bit for bit, a finite loss, and the
 * option changes the bits (it is read). */
static uint64_t opt_run(const char *be_name, int threads, const fr_gfn_opts *o, double *loss)
{
    fr_backend be = fr_test_backend(be_name, 0, threads);
    fr_hypergrid_opts ho = {2, 5, 0.1, 0.5, 2.0};
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &ho, &e), FR_OK);
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, o) == FR_OK, "%s", fr_last_error());
    fr_gfn_step_info info = {0};
    for (int i = 0; i < 4; i++) ck_assert_msg(fr_gfn_trainer_step(t, &info) == FR_OK, "%s", fr_last_error());
    *loss = info.loss;
    uint64_t d;
    ck_assert_int_eq(fr_gfn_trainer_digest(t, &d, NULL), FR_OK);
    fr_gfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return d;
}

START_TEST(test_trainer_options_bitwise)
{
    fr_gfn_opts base = fr_gfn_opts_default();
    base.batch = 8;
    base.hidden = 16;
    double l0, l, lo;
    fr_gfn_opts o = base;
    o.loss = FR_GFN_DB;
    uint64_t db_plain = opt_run("ref", 1, &o, &l0);
    fr_gfn_opts cfg[12];
    int n = 0;
    cfg[n] = base, cfg[n++].loss = FR_GFN_MDB;
    cfg[n] = base, cfg[n].loss = FR_GFN_DB, cfg[n++].forward_looking = 1;
    cfg[n] = base, cfg[n].loss = FR_GFN_SUBTB, cfg[n++].weighting = FR_SUBTB_EQUAL;
    cfg[n] = base, cfg[n].loss = FR_GFN_SUBTB, cfg[n].forward_looking = 1, cfg[n++].weighting = FR_SUBTB_GEOMETRIC;
    cfg[n] = base, cfg[n].loss = FR_GFN_DB, cfg[n++].regression = FR_GFN_COSH;
    cfg[n] = base, cfg[n].loss = FR_GFN_DB, cfg[n].regression = FR_GFN_LINEX, cfg[n++].linex_alpha = -0.5;
    cfg[n] = base, cfg[n].loss = FR_GFN_DB, cfg[n++].log_reward_clip_min = 0.0; /* log R ≥ log 0.1: clips all but the modes */
    cfg[n] = base, cfg[n].loss = FR_GFN_DB, cfg[n++].replay = 20;
    cfg[n] = base, cfg[n].loss = FR_GFN_FM, cfg[n++].replay = 8;
    cfg[n] = base, cfg[n].loss = FR_GFN_RTB, cfg[n++].beta = 0.5;
    for (int c = 0; c < n; c++) {
        uint64_t want = opt_run("ref", 1, &cfg[c], &l);
        ck_assert_msg(isfinite(l), "config %d: loss %g", c, l);
        ck_assert_msg(opt_run("opt", 3, &cfg[c], &lo) == want && lo == l, "config %d: opt differs from ref", c);
        if (cfg[c].loss == FR_GFN_DB) ck_assert_msg(want != db_plain, "config %d: the option changed nothing", c);
    }
    /* one line for an option a loss does not read, and for a buffer smaller than the batch */
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_hypergrid_opts ho = {2, 4, 0.1, 0.5, 2.0};
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &ho, &e), FR_OK);
    fr_gfn_trainer *t;
    o = base;
    o.forward_looking = 1;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--forward-looking applies to db and subtb, not tb"), "%s", fr_last_error());
    o = base;
    o.replay = 4;
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--replay-buffer 4"), "%s", fr_last_error());
    fr_env_free(&e);
    fr_backend_close(&be);
}
END_TEST

static char g_out[1 << 14];

/* RTB on the trainer: φ starts at the prior, so at β = 0 and log Z = 0 the first iteration's loss
 * is 0 and the target is the prior's own P_T (exact L1 0 to rounding); from a checkpoint of a gfn-tb run
 * through the CLI the same, and a prior of another width is one line naming the tensor. */
START_TEST(test_rtb_prior)
{
    fr_backend be = fr_test_backend("ref", 0, 1);
    fr_hypergrid_opts ho = {2, 4, 0.1, 0.5, 2.0};
    fr_env e;
    ck_assert_int_eq(fr_env_create(&fr_env_hypergrid, &ho, &e), FR_OK);
    fr_gfn_opts o = fr_gfn_opts_default();
    o.loss = FR_GFN_RTB;
    o.batch = 8;
    o.hidden = 16;
    o.beta = 0.0;
    fr_gfn_trainer *t;
    ck_assert_msg(fr_gfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    double l1, zerr;
    ck_assert_int_eq(fr_gfn_trainer_eval(t, &l1, &zerr, NULL), FR_OK);
    /* the target is the prior's P_T divided by its float64 sum (1 to rounding): L1 at rounding level */
    ck_assert_msg(l1 < 1e-14 && zerr < 1e-15, "rtb at the prior: exact L1 %g, log Z error %g", l1, zerr);
    fr_gfn_step_info info;
    ck_assert_int_eq(fr_gfn_trainer_step(t, &info), FR_OK);
    ck_assert_msg(info.loss == 0.0, "rtb at the prior, beta 0, log Z 0: loss %g", info.loss);
    ck_assert_int_eq(fr_gfn_trainer_step(t, &info), FR_OK); /* the step moved nothing: still 0 */
    ck_assert_msg(info.loss == 0.0, "second step: loss %g", info.loss);
    fr_gfn_trainer_free(t);
    o.beta = 1.0; /* the target tilts by R: the loss is not 0 */
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_OK);
    ck_assert_int_eq(fr_gfn_trainer_step(t, &info), FR_OK);
    ck_assert(info.loss > 0.0);
    fr_gfn_trainer_free(t);
    o.loss = FR_GFN_TB;
    o.prior = "x.safetensors";
    ck_assert_int_eq(fr_gfn_trainer_new(&t, &be, &e, &o), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--prior applies to rtb, not tb"), "%s", fr_last_error());
    fr_env_free(&e);
    fr_backend_close(&be);

    char dir[256], cmd[768];
    fr_test_mkdtemp(dir, sizeof dir, "gfnrtb");
    snprintf(cmd, sizeof cmd, "train --algo gfn-tb --epochs 3 --batch-size 4 --hidden-dim 8 --height 4 --backend ref "
                              "--out %s/prior", dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 0);
    snprintf(cmd, sizeof cmd, "train --algo gfn-rtb --beta 0 --prior %s/prior/checkpoints/step-3.safetensors --epochs 1 "
                              "--batch-size 4 --hidden-dim 8 --height 4 --backend ref --out %s/rtb", dir, dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "eval before   (epoch 0): trajectories 0 exact_l1 0.000000 log_z_err 0.000000") &&
                      strstr(g_out, "epoch 1/1  loss 0  log_z 0 "),
                  "%s", g_out);
    snprintf(cmd, sizeof cmd, "train --algo gfn-rtb --prior %s/prior/checkpoints/step-3.safetensors --epochs 1 "
                              "--batch-size 4 --hidden-dim 16 --height 4 --backend ref --out %s/bad", dir, dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 1);
    ck_assert_msg(strstr(g_out, "step-3.safetensors: prior tensor trunk.0.weight missing or not F32 (16, 8)"), "%s", g_out);
    fr_test_rmtree(dir);
}
END_TEST

START_TEST(test_cli_options)
{
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-subtb --subtb-weighting bogus", g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "--subtb-weighting") && strstr(g_out, "geometric_within"), "%s", g_out);
    ck_assert_int_eq(fr_test_run_cli("train --algo gfn-mdb --help", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "--replay-buffer") && strstr(g_out, "--regression") && strstr(g_out, "--forward-looking") &&
                      strstr(g_out, "--log-reward-clip-min") && strstr(g_out, "modified detailed balance"),
                  "%s", g_out);
    char dir[256], cmd[512];
    fr_test_mkdtemp(dir, sizeof dir, "gfnopt");
    snprintf(cmd, sizeof cmd, "train --algo gfn-tb --replay-buffer 8 --out %s/bad", dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 2);
    ck_assert_msg(strstr(g_out, "--replay-buffer 8 must be 0 (off) or at least --batch-size 128"), "%s", g_out);
    snprintf(cmd, sizeof cmd, "train --algo gfn-db --forward-looking --regression cosh --replay-buffer 8 --epochs 2 "
                              "--batch-size 4 --hidden-dim 8 --height 4 --backend ref --validation-samples 8 --out %s/run", dir);
    ck_assert_int_eq(fr_test_run_cli(cmd, g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "regression cosh") && strstr(g_out, "replay buffer 8, forward-looking on") &&
                      strstr(g_out, "sampled_jsd"),
                  "%s", g_out);
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_gfn_losses(void)
{
    Suite *s = suite_create("gfn_losses");
    TCase *tc = tcase_create("losses");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mdb_fl_by_hand);
    tcase_add_test(tc, test_subtb_weightings);
    tcase_add_test(tc, test_gradients_fd);
    tcase_add_test(tc, test_jsd_by_hand);
    tcase_add_test(tc, test_trainer_options_bitwise);
    tcase_add_test(tc, test_cli_options);
    tcase_add_test(tc, test_rtb_prior);
    suite_add_tcase(s, tc);
    return s;
}
