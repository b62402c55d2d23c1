/* FL-GFN on the set task (flowrl/flgfn.h; docs/algorithms/flgfn.md): the environment (the public
 * code's sizes and energies), the FL-DB / DB losses (spec more.md §8.5's check: the residuals
 * telescope to the TB residual with log Z = log F̃(s0), plus −log F̃(x) while the terminal flow is
 * unpinned; DB's last residual with log R), gradients by central differences, and the trainer's
 * gradients bit for bit on ref, opt (3 threads) and cuda-emu. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/flgfn.h"
#include "flowrl/philox.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static fr_env set_env(int size)
{
    const fr_env_class *c;
    ck_assert_int_eq(fr_env_find("set", &c), FR_OK);
    int o[1] = {size};
    fr_env e;
    ck_assert_msg(fr_env_create(c, o, &e) == FR_OK, "%s", fr_last_error());
    return e;
}

START_TEST(test_set_env)
{
    const int D[3] = {30, 80, 100}, n[3] = {20, 60, 80};
    for (int s = 0; s < 3; s++) {
        fr_env e = set_env(s);
        ck_assert_int_eq(fr_set_items(&e), D[s]);
        ck_assert_int_eq(fr_set_size_of(&e), n[s]);
        /* the best set: the n smallest energies, picked here one by one */
        const double *E = fr_set_energies(&e), best = fr_set_max_log_r(&e);
        uint8_t used[100] = {0};
        double want = 0.0;
        for (int i = 0; i < n[s]; i++) {
            int m = -1;
            for (int k = 0; k < D[s]; k++)
                if (!used[k] && (m < 0 || E[k] < E[m])) m = k;
            used[m] = 1;
            want -= E[m];
        }
        ck_assert_msg(fabs(best - want) < 1e-12, "size %d: %.17g vs %.17g", s, best, want);
        fr_env_free(&e);
    }
    fr_env e = set_env(0);
    ck_assert(fr_set_energies(&e)[0] == 0.6961474461702144); /* set/gflownet.py's first small energy */
    ck_assert(fr_set_energies(&e)[29] == 0.013149744911117978);
    /* the target's E[log R] and log Z on small, by elementary symmetric polynomials (a Python check
     * of the same sums gives -4.53710134657954 and 11.892389285206134) */
    double lz, m = fr_set_target_mean_log_r(&e, &lz);
    ck_assert_msg(fabs(m + 4.53710134657954) < 1e-9 && fabs(lz - 11.892389285206134) < 1e-9, "%.15g %.15g", m, lz);
    fr_env_free(&e);
}
END_TEST

enum { TB = 3, TN = 4 };

static void batch(double *lpf, double *lpb, double *logf, double *en)
{
    for (int i = 0; i < TB * TN; i++) {
        lpf[i] = -0.3 - 0.2 * fabs(sin(1.0 + i));
        lpb[i] = -0.1 - 0.4 * fabs(cos(2.0 + i));
        en[i] = 0.9 * sin(3.0 * i);
    }
    for (int i = 0; i < TB * (TN + 1); i++) logf[i] = 0.7 * cos(0.5 + i);
}

START_TEST(test_telescoping)
{
    double lpf[TB * TN], lpb[TB * TN], logf[TB * (TN + 1)], en[TB * TN], res[TB * TN], loss;
    batch(lpf, lpb, logf, en);
    for (int k = 0; k < 2; k++)
        for (int pin = 0; pin < 2; pin++) {
            ck_assert_int_eq(fr_flgfn_loss((fr_flgfn_loss_kind)k, pin, TB, TN, lpf, lpb, logf, en, &loss, res, NULL, NULL,
                                           NULL), FR_OK);
            double mean = 0.0;
            for (int b = 0; b < TB; b++) {
                double sum = 0.0, tb = logf[b * (TN + 1)], log_r = 0.0;
                for (int t = 0; t < TN; t++) {
                    sum += res[b * TN + t];
                    tb += lpf[b * TN + t] - lpb[b * TN + t];
                    log_r -= en[b * TN + t];
                    mean += res[b * TN + t] * res[b * TN + t];
                }
                tb -= log_r; /* the TB residual with log Z = log F̃(s0) */
                if (k == FR_FLGFN_FLDB && !pin) tb -= logf[b * (TN + 1) + TN];
                ck_assert_msg(fabs(sum - tb) < 1e-12, "kind %d pin %d traj %d: sum %.17g, TB %.17g", k, pin, b, sum, tb);
            }
            ck_assert(fabs(loss - mean / (TB * TN)) < 1e-12);
            if (k == FR_FLGFN_DB) { /* DB has no energy term and ignores pin: DB's last residual uses log R */
                double r2[TB * TN];
                fr_flgfn_loss(FR_FLGFN_DB, !pin, TB, TN, lpf, lpb, logf, en, &loss, r2, NULL, NULL, NULL);
                ck_assert(memcmp(r2, res, sizeof r2) == 0);
            }
        }
}
END_TEST

START_TEST(test_gradients_fd)
{
    double lpf[TB * TN], lpb[TB * TN], logf[TB * (TN + 1)], en[TB * TN];
    double gpf[TB * TN], gpb[TB * TN], gf[TB * (TN + 1)], loss, lp, lm;
    batch(lpf, lpb, logf, en);
    const double h = 1e-6;
    for (int k = 0; k < 2; k++)
        for (int pin = 0; pin < 2; pin++) {
            fr_flgfn_loss_kind kk = (fr_flgfn_loss_kind)k;
            ck_assert_int_eq(fr_flgfn_loss(kk, pin, TB, TN, lpf, lpb, logf, en, &loss, NULL, gpf, gpb, gf), FR_OK);
            double *arr[3] = {lpf, lpb, logf}, *grd[3] = {gpf, gpb, gf};
            const int len[3] = {TB * TN, TB * TN, TB * (TN + 1)};
            for (int a = 0; a < 3; a++)
                for (int i = 0; i < len[a]; i++) {
                    const double keep = arr[a][i];
                    arr[a][i] = keep + h;
                    fr_flgfn_loss(kk, pin, TB, TN, lpf, lpb, logf, en, &lp, NULL, NULL, NULL, NULL);
                    arr[a][i] = keep - h;
                    fr_flgfn_loss(kk, pin, TB, TN, lpf, lpb, logf, en, &lm, NULL, NULL, NULL, NULL);
                    arr[a][i] = keep;
                    ck_assert_msg(fabs((lp - lm) / (2 * h) - grd[a][i]) < 1e-6, "kind %d pin %d array %d slot %d", k, pin, a, i);
                }
        }
}
END_TEST

static float *trainer_grads(const char *bk, int threads, size_t *n, int uniform_pb)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, bk, 0, threads) == FR_OK, "%s: %s", bk, fr_last_error());
    fr_env e = set_env(0);
    fr_flgfn_opts o = {FR_FLGFN_FLDB, 0, uniform_pb, 4, 16, 2, 0.5, 3};
    fr_flgfn_trainer *t;
    ck_assert_msg(fr_flgfn_trainer_new(&t, &be, &e, &o) == FR_OK, "%s", fr_last_error());
    double loss, mlr, top;
    ck_assert_int_eq(fr_flgfn_trainer_grad(t, 1, &loss), FR_OK);
    ck_assert_int_eq(fr_flgfn_trainer_eval(t, 10, &mlr, &top), FR_OK);
    ck_assert(isfinite(loss) && mlr < 0.0 && top > 0.0);
    fr_param *ps;
    const int np = fr_flgfn_trainer_params(t, &ps);
    *n = 0;
    for (int p = 0; p < np; p++) *n += (size_t)fr_tensor_numel(ps[p].grad);
    float *h = malloc((*n + 3) * sizeof *h), *at = h;
    for (int p = 0; p < np; p++) {
        const size_t k = (size_t)fr_tensor_numel(ps[p].grad);
        ck_assert_int_eq(fr_d2h(&be, at, ps[p].grad->data, k * sizeof *at), FR_OK);
        at += k;
    }
    at[0] = (float)loss;
    at[1] = (float)mlr;
    at[2] = (float)top;
    *n += 3;
    fr_flgfn_trainer_free(t);
    fr_env_free(&e);
    fr_backend_close(&be);
    return h;
}

START_TEST(test_trainer_backends_bitwise)
{
    for (int u = 0; u < 2; u++) {
        size_t n, m;
        float *ref = trainer_grads("ref", 1, &n, u);
        const char *bks[] = {"opt", "cuda-emu"};
        const int th[] = {3, 1};
        for (int k = 0; k < 2; k++) {
            float *o = trainer_grads(bks[k], th[k], &m, u);
            ck_assert_uint_eq(m, n);
            ck_assert_msg(memcmp(o, ref, n * sizeof *o) == 0, "%s differs from ref (uniform_pb %d)", bks[k], u);
            free(o);
        }
        free(ref);
    }
}
END_TEST

Suite *suite_flgfn(void)
{
    Suite *s = suite_create("flgfn");
    TCase *tc = tcase_create("flgfn");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_set_env);
    tcase_add_test(tc, test_telescoping);
    tcase_add_test(tc, test_gradients_fd);
    tcase_add_test(tc, test_trainer_backends_bitwise);
    suite_add_tcase(s, tc);
    return s;
}
