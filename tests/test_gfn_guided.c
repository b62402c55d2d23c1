/* Guided TB and the ssr policy (flowrl/gfn_guided.h; docs/algorithms/gfn-guided.md; spec more.md
 * §8.4): the spec's checks (w = 1 is plain TB with a detached P_B target; P_guide = P_B and w = 0
 * give T = back; the clamp kills the gradient beyond |residual| > 10), the loss's gradients by
 * central differences, the substructure guide and the offline split by hand, the sa and ssr
 * policies' gradients by central differences, the trainer's gradients bit for bit on ref, opt
 * (3 threads) and cuda-emu, and an ssr run: ref = opt, resumed = uninterrupted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/gfn.h"
#include "flowrl/gfn_guided.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define TB_ 5
#define TL_ 4

/* A batch of TB_ trajectories of lengths 1..TL_: per-step log-probs (B, L), their chains. */
typedef struct {
    int32_t len[TB_];
    double lpf[TB_ * TL_], lpb[TB_ * TL_], logr[TB_], lpg[TB_], fwd[TB_], back[TB_], pb[TB_];
    double log_z;
} batch_t;

static void chains(batch_t *b)
{
    for (int i = 0; i < TB_; i++) {
        b->fwd[i] = b->log_z;
        b->back[i] = b->logr[i];
        b->pb[i] = 0.0;
        for (int t = 0; t < b->len[i]; t++) b->fwd[i] += b->lpf[i * TL_ + t];
        for (int t = 0; t < b->len[i] - 1; t++) {
            b->back[i] += b->lpb[i * TL_ + t];
            b->pb[i] += b->lpb[i * TL_ + t];
        }
    }
}

static batch_t make_batch(uint64_t seed, double spread)
{
    batch_t b;
    uint64_t s = seed;
    b.log_z = fr_test_uniform(&s, -1.0f, 1.0f);
    for (int i = 0; i < TB_; i++) {
        b.len[i] = 1 + i % TL_;
        b.logr[i] = fr_test_uniform(&s, -2.0f, 1.0f);
        b.lpg[i] = fr_test_uniform(&s, -3.0f, 0.0f);
        for (int t = 0; t < TL_; t++) {
            b.lpf[i * TL_ + t] = spread * fr_test_uniform(&s, -1.5f, 0.0f);
            b.lpb[i * TL_ + t] = spread * fr_test_uniform(&s, -1.5f, 0.0f);
        }
    }
    chains(&b);
    return b;
}

START_TEST(test_w1_is_tb_with_detached_pb)
{
    batch_t b = make_batch(7, 1.0);
    double l_tb, l_b, l_plain, l_b0, r1[TB_], r0[TB_], gf1[TB_], gb1[TB_], gf0[TB_], gb0[TB_];
    fr_gtb_batch g = {TB_, b.fwd, b.back, b.pb, b.logr, b.lpg, 1.0, FR_GTB_PB_GUIDE};
    ck_assert_int_eq(fr_gtb_loss(&g, &l_tb, &l_b, r1, gf1, gb1), FR_OK);
    fr_gtb_batch p = g;
    p.lpg = NULL;
    ck_assert_int_eq(fr_gtb_loss(&p, &l_plain, &l_b0, r0, gf0, gb0), FR_OK);
    /* T = 1·back + 0·(lpg + log R) = back: the same bits as the same loop's plain TB */
    ck_assert(memcmp(&l_tb, &l_plain, sizeof l_tb) == 0 && l_b0 == 0.0);
    ck_assert(memcmp(r1, r0, sizeof r1) == 0 && memcmp(gf1, gf0, sizeof gf1) == 0);
    for (int i = 0; i < TB_; i++) ck_assert(gb0[i] == -gf0[i]); /* plain TB moves P_B, guided TB's target does not */
    /* against flowrl's TB (core/gfn_loss.c): there r = log Z + Σ_t (lpf − lpb) − log R, here the two
     * chains are summed apart (basegfn.py), so the residuals agree to rounding, not bit for bit */
    double pf[TB_ * TL_], pbk[TB_ * TL_], gpf[TB_ * TL_], gpb[TB_ * TL_], loss, res[TB_];
    memcpy(pf, b.lpf, sizeof pf);
    memcpy(pbk, b.lpb, sizeof pbk);
    fr_gfn_batch tb = {0};
    tb.B = TB_;
    tb.L = TL_;
    tb.len = b.len;
    tb.logpf = pf;
    tb.logpb = pbk;
    tb.logr = b.logr;
    tb.log_z = b.log_z;
    fr_gfn_grad gg = {gpf, gpb, NULL, 0.0, NULL};
    ck_assert_int_eq(fr_gfn_loss(FR_GFN_TB, &tb, &loss, res, &gg), FR_OK);
    double gz = 0.0;
    for (int i = 0; i < TB_; i++) {
        ck_assert_msg(fabs(res[i] - r1[i]) <= 8 * 2.3e-16 * (fabs(b.fwd[i]) + fabs(b.back[i])), "resid %d %.17g %.17g", i,
                      res[i], r1[i]);
        for (int t = 0; t < b.len[i]; t++) ck_assert(fabs(gpf[i * TL_ + t] - gf1[i]) <= 1e-14);
        gz += gf1[i];
    }
    ck_assert(fabs(loss - l_tb) <= 1e-14 * (1.0 + loss) && fabs(gg.log_z - gz) <= 1e-14);
}
END_TEST

START_TEST(test_w0_guide_pb_gives_back)
{
    batch_t b = make_batch(11, 1.0);
    for (int i = 0; i < TB_; i++) b.lpg[i] = b.pb[i]; /* P_guide = P_B */
    double l_tb, l_b, r[TB_], gf[TB_], gb[TB_];
    for (int code = 0; code < 2; code++) {
        fr_gtb_batch g = {TB_, b.fwd, b.back, b.pb, b.logr, b.lpg, 0.0, code ? FR_GTB_PB_CODE : FR_GTB_PB_GUIDE};
        ck_assert_int_eq(fr_gtb_loss(&g, &l_tb, &l_b, r, gf, gb), FR_OK);
        for (int i = 0; i < TB_; i++) /* T = lpg + log R = Σ lpb + log R, back = log R + Σ lpb: one reordering */
            ck_assert_msg(fabs((b.fwd[i] - r[i]) - b.back[i]) <= 4 * 2.3e-16 * (fabs(b.back[i]) + 1.0), "T %d", i);
        if (!code) ck_assert(l_b == 0.0); /* the intended form: Σ log P_B − log P_guide = 0 */
        else {                              /* the code's: (log R + Σ log P_B − log P_guide)² = log R² */
            double want = 0.0;
            for (int i = 0; i < TB_; i++) want += b.logr[i] * b.logr[i];
            ck_assert(fabs(l_b - want / TB_) <= 1e-12);
        }
    }
}
END_TEST

START_TEST(test_clamp_kills_gradient)
{
    const double fwd[2] = {10.5, 9.5}, back[2] = {0.0, 0.0}, logr[2] = {0.0, 0.0};
    double l, lb, r[2], gf[2], gb[2];
    fr_gtb_batch p = {2, fwd, back, NULL, logr, NULL, 0.5, FR_GTB_PB_CODE};
    ck_assert_int_eq(fr_gtb_loss(&p, &l, &lb, r, gf, gb), FR_OK);
    ck_assert(gf[0] == 0.0 && gb[0] == 0.0);         /* |r| = 10.5 > 10: clamped at 100, no gradient */
    ck_assert(gf[1] == 2.0 * 9.5 / 2.0 && gb[1] == -gf[1]);
    ck_assert(l == (100.0 + 9.5 * 9.5) / 2.0);
    /* guided: L_B's clamp alike */
    const double lpg[2] = {-11.0, -3.0}, pb[2] = {0.0, 0.0};
    fr_gtb_batch g = {2, fwd, back, pb, logr, lpg, 1.0, FR_GTB_PB_GUIDE};
    ck_assert_int_eq(fr_gtb_loss(&g, &l, &lb, r, gf, gb), FR_OK);
    ck_assert(gb[0] == 0.0 && gb[1] == 2.0 * 3.0 / 2.0 && lb == (100.0 + 9.0) / 2.0);
}
END_TEST

START_TEST(test_loss_gradients_fd)
{
    batch_t b = make_batch(3, 0.5);
    for (int code = 0; code < 3; code++) { /* 0: guide target, 1: the code's, 2: plain TB */
        fr_gtb_batch g = {TB_, b.fwd, b.back, b.pb, b.logr, code == 2 ? NULL : b.lpg, 0.3,
                          code == 1 ? FR_GTB_PB_CODE : FR_GTB_PB_GUIDE};
        double l, lb, gf[TB_], gb[TB_];
        ck_assert_int_eq(fr_gtb_loss(&g, &l, &lb, NULL, gf, gb), FR_OK);
        const double h = 1e-6;
        for (int i = 0; i < TB_; i++) {
            double lp, lm, bp, bm, keep = b.fwd[i];
            b.fwd[i] = keep + h;
            fr_gtb_loss(&g, &lp, &bp, NULL, NULL, NULL);
            b.fwd[i] = keep - h;
            fr_gtb_loss(&g, &lm, &bm, NULL, NULL, NULL);
            b.fwd[i] = keep;
            ck_assert_msg(fabs((lp - lm) / (2 * h) - gf[i]) <= 1e-6, "fwd %d", i);
            /* one step's log P_B moves back and pb together */
            double kb = b.back[i], kp = b.pb[i];
            b.back[i] = kb + h;
            b.pb[i] = kp + h;
            fr_gtb_loss(&g, &lp, &bp, NULL, NULL, NULL);
            b.back[i] = kb - h;
            b.pb[i] = kp - h;
            fr_gtb_loss(&g, &lm, &bm, NULL, NULL, NULL);
            b.back[i] = kb;
            b.pb[i] = kp;
            const double fd = code == 2 ? (lp - lm) / (2 * h) : (bp - bm) / (2 * h);
            ck_assert_msg(fabs(fd - gb[i]) <= 1e-6, "back %d (%d): fd %g analytic %g", i, code, fd, gb[i]);
        }
    }
}
END_TEST

static fr_env grid(int D, int H)
{
    const fr_env_class *c;
    ck_assert_int_eq(fr_env_find("hypergrid", &c), FR_OK);
    fr_hypergrid_opts o = {D, H, 0.1, 0.5, 2.0};
    fr_env e;
    ck_assert_msg(fr_env_create(c, &o, &e) == FR_OK, "%s", fr_last_error());
    return e;
}

START_TEST(test_guide_by_hand)
{
    fr_env e = grid(2, 4);
    int32_t act[8];
    double p[8];
    const int32_t s0[2] = {0, 0}, x[2] = {2, 1};
    /* nothing observed: uniform over the children inside x */
    ck_assert_int_eq(fr_gtb_guide_probs(&e, s0, x, 0, NULL, NULL, 1.0, act, p), 2);
    ck_assert(act[0] == 0 && act[1] == 1 && p[0] == 0.5 && p[1] == 0.5);
    /* at x: the exit alone; outside x: none */
    ck_assert_int_eq(fr_gtb_guide_probs(&e, x, x, 0, NULL, NULL, 1.0, act, p), 1);
    ck_assert(act[0] == 2 && p[0] == 1.0);
    const int32_t out[2] = {3, 0};
    ck_assert_int_eq(fr_gtb_guide_probs(&e, out, x, 0, NULL, NULL, 1.0, act, p), 0);
    /* observed (2, 1) itself (left out), (1, 0) R 1, (3, 3) R 3, (0, 2) R 2: child (1, 0) contains
     * (1, 0) and (3, 3): mean 2; child (0, 1) contains (3, 3), (0, 2): mean 2.5; p ∝ score^1 */
    const int32_t obs[8] = {2, 1, 1, 0, 3, 3, 0, 2};
    const double r[4] = {7.0, 1.0, 3.0, 2.0};
    ck_assert_int_eq(fr_gtb_guide_probs(&e, s0, x, 4, obs, r, 1.0, act, p), 2);
    ck_assert_msg(fabs(p[0] - 2.0 / 4.5) < 1e-14 && fabs(p[1] - 2.5 / 4.5) < 1e-14, "%.17g %.17g", p[0], p[1]);
    /* temperature 2: p ∝ score² */
    ck_assert_int_eq(fr_gtb_guide_probs(&e, s0, x, 4, obs, r, 2.0, act, p), 2);
    ck_assert(fabs(p[0] - 4.0 / 10.25) < 1e-14 && fabs(p[1] - 6.25 / 10.25) < 1e-14);
    /* one child with no observed x: floored at 1e-5 while the other scores */
    const int32_t obs2[4] = {1, 0, 2, 0};
    const double r2[2] = {1.0, 1.0};
    ck_assert_int_eq(fr_gtb_guide_probs(&e, s0, x, 2, obs2, r2, 1.0, act, p), 2);
    ck_assert(fabs(p[1] - 1e-5 / (1.0 + 1e-5)) < 1e-18);
    /* numpy.percentile(range(1, 11), 90) = 9.1; of (5,) = 5 */
    const double v[10] = {3, 1, 2, 10, 9, 4, 5, 8, 7, 6}, one = 5.0;
    ck_assert(fabs(fr_gtb_percentile90(v, 10) - 9.1) < 1e-12 && fr_gtb_percentile90(&one, 1) == 5.0);
    fr_env_free(&e);
}
END_TEST

static fr_gtb_opts small_opts(int ssr, int guided)
{
    fr_gtb_opts o = fr_gtb_opts_default();
    o.policy = ssr ? FR_GTB_SSR : FR_GTB_SA;
    o.guided = guided;
    o.batch = 6;
    o.hidden = 8;
    o.n_hidden = ssr ? 1 : 2;
    o.embed = 4;
    o.epsilon = 0.3;
    o.seed = 5;
    return o;
}

/* Σ_q g_q log p_q of a few queries in each direction against central differences over some
 * parameter elements (float weights, float64 log-softmax: h = 1e-3, as 1e-2 crosses a ReLU kink at
 * seed 5; tolerance 2e-3 + 1% relative for the float network). */
START_TEST(test_policy_gradients_fd)
{
    fr_backend *be = fr_test_ref_be();
    fr_env e = grid(2, 4);
    const int32_t st[8] = {0, 0, 1, 2, 3, 1, 2, 3}, fa[4] = {0, 2, 1, 2}, ba[4] = {1, 0, 0, 1};
    const int32_t bst[8] = {0, 1, 1, 2, 3, 1, 2, 3};
    const double g[4] = {0.7, -1.3, 0.4, 1.1};
    for (int ssr = 0; ssr < 2; ssr++) {
        fr_gtb_opts o = small_opts(ssr, 1);
        fr_gtb_trainer *t;
        ck_assert_msg(fr_gtb_trainer_new(&t, be, &e, &o) == FR_OK, "%s", fr_last_error());
        fr_param *ps;
        int nf, nb;
        const int np = fr_gtb_trainer_params(t, &ps, &nf, &nb);
        for (int dir = 0; dir < 2; dir++) {
            const int32_t *S = dir ? bst : st, *Acts = dir ? ba : fa;
            for (int p = 0; p < np - 1; p++)
                fr_dev_zero(be, ps[p].grad->data, (size_t)fr_tensor_numel(ps[p].grad) * sizeof(float));
            double lp[4];
            ck_assert_msg(fr_gtb_trainer_logp(t, dir, 4, S, Acts, lp, g) == FR_OK, "%s", fr_last_error());
            const int p0 = dir ? nf : 0, p1 = dir ? nf + nb : nf;
            int checked = 0;
            for (int p = p0; p < p1; p++) {
                float *v = ps[p].value->data, *gr = ps[p].grad->data;
                const int64_t n = fr_tensor_numel(ps[p].value);
                for (int64_t i = 0; i < n; i += 1 + n / 5) {
                    const float keep = v[i], h = 1e-3f;
                    double a[4], c[4], fp = 0.0, fm = 0.0;
                    v[i] = keep + h;
                    fr_gtb_trainer_logp(t, dir, 4, S, Acts, a, NULL);
                    v[i] = keep - h;
                    fr_gtb_trainer_logp(t, dir, 4, S, Acts, c, NULL);
                    v[i] = keep;
                    for (int q = 0; q < 4; q++) {
                        fp += g[q] * a[q];
                        fm += g[q] * c[q];
                    }
                    const double fd = (fp - fm) / (2.0 * h);
                    ck_assert_msg(fabs(fd - gr[i]) <= 2e-3 + 1e-2 * fabs(fd), "ssr %d dir %d %s[%lld]: fd %g analytic %g", ssr,
                                  dir, ps[p].name, (long long)i, fd, (double)gr[i]);
                    checked++;
                }
            }
            ck_assert(checked > 4);
        }
        /* the softmax is over the choices: P_F of s0's three children sums to 1 */
        double l3[3];
        const int32_t s3[6] = {0, 0, 0, 0, 0, 0}, a3[3] = {0, 1, 2};
        ck_assert_int_eq(fr_gtb_trainer_logp(t, 0, 3, s3, a3, l3, NULL), FR_OK);
        ck_assert(fabs(exp(l3[0]) + exp(l3[1]) + exp(l3[2]) - 1.0) < 1e-12);
        fr_gtb_trainer_free(t);
    }
    fr_env_free(&e);
}
END_TEST

/* Six rounds (online and offline) of the trainer, every gradient and loss, on one backend. */
static float *trainer_run(const char *bk, int threads, int ssr, int guided, size_t *n)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, bk, 0, threads) == FR_OK, "%s: %s", bk, fr_last_error());
    fr_env e = grid(2, 5);
    fr_gtb_opts o = small_opts(ssr, guided);
    fr_gtb_trainer *t;
    ck_assert_msg(fr_gtb_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    fr_param *ps;
    const int np = fr_gtb_trainer_params(t, &ps, NULL, NULL);
    size_t per = 0;
    for (int p = 0; p < np; p++) per += (size_t)fr_tensor_numel(ps[p].grad);
    float *h = calloc(12 * (per + 2) + 2, sizeof *h), *at = h;
    int offline = 0;
    for (int ep = 0; ep < 6; ep++)
        for (int u = 0; u < 2; u++) {
            int tr;
            double l_tb, l_b;
            ck_assert_msg(fr_gtb_trainer_grad(t, ep, u, &tr, &l_tb, &l_b) == FR_OK, "%s", fr_last_error());
            if (!tr) continue;
            offline += u;
            ck_assert(isfinite(l_tb) && isfinite(l_b) && (guided || l_b == 0.0));
            for (int p = 0; p < np; p++) {
                const size_t k = (size_t)fr_tensor_numel(ps[p].grad);
                ck_assert_int_eq(fr_d2h(&be, at, ps[p].grad->data, k * sizeof *at), FR_OK);
                at += k;
            }
            *at++ = (float)l_tb;
            *at++ = (float)l_b;
        }
    ck_assert_msg(offline > 0, "no offline batch ran");
    double l1, lz;
    int64_t modes, obs;
    ck_assert_int_eq(fr_gtb_trainer_eval(t, &l1, &lz, &modes, &obs), FR_OK);
    ck_assert(l1 > 0.0 && l1 < 2.0 && obs >= 10 && lz == 5.0);
    *at++ = (float)l1;
    *n = (size_t)(at - h);
    fr_gtb_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return h;
}

START_TEST(test_trainer_backends_bitwise)
{
    for (int ssr = 0; ssr < 2; ssr++)
        for (int guided = 0; guided < 2; guided++) {
            size_t n, m;
            float *ref = trainer_run("ref", 1, ssr, guided, &n);
            const char *bks[] = {"opt", "cuda-emu"};
            const int th[] = {3, 1};
            for (int k = 0; k < 2; k++) {
                float *o = trainer_run(bks[k], th[k], ssr, guided, &m);
                ck_assert_uint_eq(m, n);
                ck_assert_msg(memcmp(o, ref, n * sizeof *o) == 0, "%s differs from ref (ssr %d guided %d)", bks[k], ssr, guided);
                free(o);
            }
            free(ref);
        }
}
END_TEST

/* The run loop with --policy ssr (the generic algos suite runs the default sa): ref and opt at 3
 * threads write the same audit records, a stopped and resumed run those of an uninterrupted one,
 * and another environment is refused with a line naming the one it needs. */
START_TEST(test_run_ssr_ref_opt_resume)
{
    static char out[16384];
    char dir[96], cmd[1024];
    fr_test_mkdtemp(dir, sizeof dir, "gtb");
    const char *a = "--algo gfn-guided --env hypergrid --height 5 --policy ssr --batch-size 6 --hidden-dim 8 "
                    "--embed-dim 4 --eval-every 4 --checkpoint-every 3";
    snprintf(cmd, sizeof cmd, "train %s --epochs 8 --backend ref --out %s/ref", a, dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    ck_assert_msg(strstr(out, "eval after") && strstr(out, "modes_found"), "%s", out);
    snprintf(cmd, sizeof cmd, "train %s --epochs 8 --backend opt --threads 3 --out %s/opt", a, dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    snprintf(cmd, sizeof cmd, "train %s --epochs 5 --backend opt --out %s/part", a, dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    snprintf(cmd, sizeof cmd, "train --resume %s/part --epochs 8", dir);
    ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0, "%s", out);
    const char *other[2] = {"opt", "part"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "audit %s/ref %s/%s", dir, dir, other[i]);
        ck_assert_msg(fr_test_run_cli(cmd, out, sizeof out) == 0 && strstr(out, "identical through step 8"), "%s: %s",
                      other[i], out);
    }
    snprintf(cmd, sizeof cmd, "train --algo gfn-guided --env set --out %s/set", dir);
    ck_assert_int_ne(fr_test_run_cli(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "needs --env hypergrid"), "%s", out);
    fr_test_rmtree(dir);
}
END_TEST

Suite *suite_gfn_guided(void)
{
    Suite *s = suite_create("gfn_guided");
    TCase *tc = tcase_create("gfn_guided");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_w1_is_tb_with_detached_pb);
    tcase_add_test(tc, test_w0_guide_pb_gives_back);
    tcase_add_test(tc, test_clamp_kills_gradient);
    tcase_add_test(tc, test_loss_gradients_fd);
    tcase_add_test(tc, test_guide_by_hand);
    tcase_add_test(tc, test_policy_gradients_fd);
    tcase_add_test(tc, test_trainer_backends_bitwise);
    tcase_add_test(tc, test_run_ssr_ref_opt_resume);
    suite_add_tcase(s, tc);
    return s;
}
