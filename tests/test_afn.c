/* Adversarial flow networks (flowrl/afn.h; docs/algorithms/afn.md): the tic-tac-toe rules and
 * flowrl's minimax (4520 positions with a move, the empty board a draw, positions by hand), the
 * AFlowNet loss (spec more.md §8.3's check: a uniform policy with log Z0 = 0 gives λ²·the fraction
 * of decisive games, 100 when all are; the game-ending move's quirk; gradients by central
 * differences), and the trainer's gradients equal bit for bit on ref, opt (1, 3 threads) and
 * cuda-emu. The run loop's generic tests (suite algos) cover audit, resume and backends. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/afn.h"
#include "flowrl/backend.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static void board_of(const char *s, int8_t *b)
{
    for (int i = 0; i < 9; i++) b[i] = (int8_t)(s[i] == 'X' ? 1 : s[i] == 'O' ? 2 : 0);
}

START_TEST(test_minimax)
{
    const int8_t *v = fr_ttt_values();
    const uint16_t *opt = fr_ttt_optimal();
    ck_assert_int_eq(fr_ttt_positions(NULL), 4520);
    int8_t b[9];
    board_of(".........", b);
    ck_assert_int_eq(v[fr_ttt_code(b)], 0);       /* perfect play draws */
    ck_assert_int_eq(opt[fr_ttt_code(b)], 0x1ff); /* and every first move keeps the draw */
    board_of("XX.OO....", b);                      /* X to move wins at 2 */
    ck_assert_int_eq(fr_ttt_to_move(b), 0);
    ck_assert_int_eq(v[fr_ttt_code(b)], 1);
    ck_assert_int_eq(opt[fr_ttt_code(b)], 1 << 2);
    board_of("XX.O.....", b); /* O to move has lost: a block at 2 meets X's fork at 4, so every move is optimal */
    ck_assert_int_eq(fr_ttt_to_move(b), 1);
    ck_assert_int_eq(v[fr_ttt_code(b)], -1);
    ck_assert_int_eq(opt[fr_ttt_code(b)], 0x1f4);
    board_of("X........", b);                      /* O's only drawing replies to a corner: the centre */
    ck_assert_int_eq(v[fr_ttt_code(b)], 0);
    ck_assert_int_eq(opt[fr_ttt_code(b)], 1 << 4);
    board_of("XXXOO....", b);                      /* over: the player to move (O) has lost */
    ck_assert_int_eq(fr_ttt_winner(b), 1);
    ck_assert_int_eq(v[fr_ttt_code(b)], -1);
    ck_assert_int_eq(opt[fr_ttt_code(b)], 0);
}
END_TEST

/* B games of uniform self-play from Philox (seed): len, nA, outcome; lp = −log|A| (uniform). */
static void uniform_games(int64_t B, uint32_t seed, int32_t *len, int32_t *nA, int8_t *outcome, double *lp)
{
    for (int64_t g = 0; g < B; g++) {
        int8_t b[9] = {0};
        uint8_t mask[9];
        int m = 0;
        for (; !fr_ttt_over(b); m++) {
            const int n = fr_ttt_legal(b, mask);
            int k = (int)(fr_rng_uniform(seed, 0, (uint32_t)g, (uint32_t)m, 0, 0) * (float)n);
            if (k >= n) k = n - 1;
            int a = 0;
            for (; !mask[a] || k-- > 0; a++) {}
            nA[g * 9 + m] = n;
            lp[g * 9 + m] = -log((double)n);
            b[a] = (int8_t)(1 + (m & 1));
        }
        for (int t = m; t < 9; t++) {
            nA[g * 9 + t] = 1;
            lp[g * 9 + t] = 0.0;
        }
        len[g] = m;
        const int w = fr_ttt_winner(b);
        outcome[g] = (int8_t)(w == 1 ? 1 : w == 2 ? -1 : 0);
    }
}

enum { NB = 64 };

START_TEST(test_loss_uniform)
{
    int32_t len[NB], nA[NB * 9];
    int8_t out[NB];
    double lp[NB * 9], loss, resid[NB];
    uniform_games(NB, 7, len, nA, out, lp);
    int dec = 0;
    for (int b = 0; b < NB; b++) dec += out[b] != 0;
    ck_assert_int_gt(dec, 0);
    ck_assert_int_lt(dec, NB);
    ck_assert_int_eq(fr_afn_loss(NB, lp, nA, len, out, 0.0, 10.0, &loss, resid, NULL, NULL), FR_OK);
    ck_assert_msg(fabs(loss - 100.0 * dec / NB) < 1e-9, "loss %.17g, want %.17g", loss, 100.0 * dec / NB);
    /* only the decisive games: 100 exactly (λ = 10) */
    int32_t len2[NB], nA2[NB * 9];
    int8_t out2[NB];
    double lp2[NB * 9];
    int n2 = 0;
    for (int b = 0; b < NB; b++)
        if (out[b]) {
            len2[n2] = len[b];
            out2[n2] = out[b];
            memcpy(nA2 + n2 * 9, nA + b * 9, sizeof(int32_t) * 9);
            memcpy(lp2 + n2 * 9, lp + b * 9, sizeof(double) * 9);
            n2++;
        }
    ck_assert_int_eq(fr_afn_loss(n2, lp2, nA2, len2, out2, 0.0, 10.0, &loss, NULL, NULL, NULL), FR_OK);
    ck_assert_msg(fabs(loss - 100.0) < 1e-9, "all decisive: loss %.17g", loss);
    /* the quirk: the game-ending move's log π enters nowhere */
    for (int b = 0; b < n2; b++) lp2[b * 9 + len2[b] - 1] = -5.0;
    double l2;
    ck_assert_int_eq(fr_afn_loss(n2, lp2, nA2, len2, out2, 0.0, 10.0, &l2, NULL, NULL, NULL), FR_OK);
    ck_assert(l2 == loss);
    /* the sides: a log π of player 0 (t = 0) raises r, of player 1 (t = 1) lowers it */
    double r0 = resid[0], r1;
    lp[0] += 0.5;
    fr_afn_loss(1, lp, nA, len, out, 0.0, 10.0, &loss, &r1, NULL, NULL);
    ck_assert(fabs(r1 - (r0 + 0.5)) < 1e-12);
    lp[0] -= 0.5;
    lp[1] += 0.5;
    fr_afn_loss(1, lp, nA, len, out, 0.0, 10.0, &loss, &r1, NULL, NULL);
    ck_assert(fabs(r1 - (r0 - 0.5)) < 1e-12);
    /* refusals */
    len[0] = 0;
    ck_assert_int_eq(fr_afn_loss(NB, lp, nA, len, out, 0.0, 10.0, &loss, NULL, NULL, NULL), FR_ERR_ARG);
}
END_TEST

START_TEST(test_loss_gradients_fd)
{
    enum { B = 6 };
    int32_t len[B], nA[B * 9];
    int8_t out[B];
    double lp[B * 9], g[B * 9], gz, loss;
    uniform_games(B, 3, len, nA, out, lp);
    for (int i = 0; i < B * 9; i++) lp[i] += 0.1 * sin(1.0 + i); /* away from the uniform point */
    const double z0 = 0.3, h = 1e-6;
    ck_assert_int_eq(fr_afn_loss(B, lp, nA, len, out, z0, 10.0, &loss, NULL, g, &gz), FR_OK);
    for (int i = 0; i < B * 9; i++) {
        double lpp, lpm, keep = lp[i];
        lp[i] = keep + h;
        fr_afn_loss(B, lp, nA, len, out, z0, 10.0, &lpp, NULL, NULL, NULL);
        lp[i] = keep - h;
        fr_afn_loss(B, lp, nA, len, out, z0, 10.0, &lpm, NULL, NULL, NULL);
        lp[i] = keep;
        ck_assert_msg(fabs((lpp - lpm) / (2 * h) - g[i]) < 1e-5, "slot %d: fd %g, grad %g", i, (lpp - lpm) / (2 * h), g[i]);
    }
    double lpz, lmz;
    fr_afn_loss(B, lp, nA, len, out, z0 + h, 10.0, &lpz, NULL, NULL, NULL);
    fr_afn_loss(B, lp, nA, len, out, z0 - h, 10.0, &lmz, NULL, NULL, NULL);
    ck_assert(fabs((lpz - lmz) / (2 * h) - gz) < 1e-5);
}
END_TEST

/* The gradients of epoch 2 of a small trainer as bytes (every parameter's grad, log Z0 last). */
static float *trainer_grads(const char *bk, int threads, size_t *n)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, bk, 0, threads) == FR_OK, "%s: %s", bk, fr_last_error());
    fr_afn_opts o = fr_afn_opts_default();
    o.batch = 24;
    o.hidden = 16;
    o.epsilon = 0.25;
    o.seed = 5;
    fr_afn_trainer *t;
    ck_assert_msg(fr_afn_trainer_new(&t, &be, &o) == FR_OK, "%s", fr_last_error());
    double loss, dec, frac, mass;
    ck_assert_int_eq(fr_afn_trainer_grad(t, 2, &loss, &dec), FR_OK);
    ck_assert(isfinite(loss) && dec > 0.0);
    ck_assert_int_eq(fr_afn_trainer_optimal(t, &frac, &mass), FR_OK);
    ck_assert(frac > 0.0 && frac < 1.0 && mass > 0.0 && mass < 1.0);
    fr_param *ps;
    int n_net;
    const int np = fr_afn_trainer_params(t, &ps, &n_net);
    ck_assert_int_eq(np, n_net + 1);
    ck_assert_str_eq(ps[n_net].name, "log_z0");
    *n = 0;
    for (int p = 0; p < np; p++) *n += (size_t)fr_tensor_numel(ps[p].grad);
    float *h = malloc((*n + 3) * sizeof *h), *at = h;
    for (int p = 0; p < np; p++) {
        const size_t k = (size_t)fr_tensor_numel(ps[p].grad);
        ck_assert_int_eq(fr_d2h(&be, at, ps[p].grad->data, k * sizeof *at), FR_OK);
        at += k;
    }
    at[0] = (float)loss;
    at[1] = (float)frac;
    at[2] = (float)mass;
    *n += 3;
    fr_afn_trainer_free(t);
    fr_backend_close(&be);
    return h;
}

START_TEST(test_trainer_backends_bitwise)
{
    size_t n, m;
    float *ref = trainer_grads("ref", 1, &n);
    double norm = 0.0;
    for (size_t i = 0; i + 3 < n; i++) norm += (double)ref[i] * ref[i];
    ck_assert(norm > 0.0);
    const char *bks[] = {"opt", "opt", "cuda-emu"};
    const int th[] = {1, 3, 1};
    for (int k = 0; k < 3; k++) {
        float *o = trainer_grads(bks[k], th[k], &m);
        ck_assert_uint_eq(m, n);
        ck_assert_msg(memcmp(o, ref, n * sizeof *o) == 0, "%s (%d threads) differs from ref", bks[k], th[k]);
        free(o);
    }
    free(ref);
}
END_TEST

Suite *suite_afn(void)
{
    Suite *s = suite_create("afn");
    TCase *tc = tcase_create("afn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_minimax);
    tcase_add_test(tc, test_loss_uniform);
    tcase_add_test(tc, test_loss_gradients_fd);
    tcase_add_test(tc, test_trainer_backends_bitwise);
    suite_add_tcase(s, tc);
    return s;
}
