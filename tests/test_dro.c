/* Diffusion-DRO (core/dro.c, core/algo/dro*.c, flowrl/dro.h; docs/algorithms/dro.md): the check
 * of spec §19 (at θ = ref every term is the margin bitwise and the loss within 1 ulp of it, in
 * the objective on every exact backend and in a whole run's audit records), the hinge against a
 * direct float64 evaluation, its tie rule, the gradient against finite differences in double,
 * the replay buffer's draws, and the one-line errors of --prefs. The generic run properties
 * are tests/test_algos.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/dro.h"
#include "flowrl/dro.h"
#include "flowrl/philox.h"
#include "tests/run_testutil.h"
#include "tests/suites.h"
#include "tests/testutil.h"

#define REF fr_test_ref_be()

enum { MB = 6, MD = 7, MR = 2 * MB };

/* Targets, near-target policy outputs and reference outputs near those. */
typedef struct {
    float target[MR * MD], out[MR * MD], out_ref[MR * MD];
} batch;

static void make_batch(batch *m, uint32_t seed, float ref_scale)
{
    fr_rng_fill_normal(m->target, MR * MD, seed, FR_RNG_TEST, 0, 0, 0);
    fr_rng_fill_normal(m->out, MR * MD, seed, FR_RNG_TEST, 1, 0, 0);
    fr_rng_fill_normal(m->out_ref, MR * MD, seed, FR_RNG_TEST, 2, 0, 0);
    for (int j = 0; j < MR * MD; j++) {
        m->out[j] = m->target[j] + 0.3f * m->out[j];
        m->out_ref[j] = m->out[j] + ref_scale * m->out_ref[j];
    }
}

/* L of the batch with policy output o, in double, straight from spec §19 */
static double loss_direct(const batch *m, const double *o, double margin)
{
    double L = 0.0;
    for (int i = 0; i < MB; i++) {
        double e[4] = {0, 0, 0, 0}; /* θ exp, θ pol, ref exp, ref pol */
        for (int k = 0; k < MD; k++) {
            const int a = i * MD + k, p = (MB + i) * MD + k;
            e[0] += (o[a] - m->target[a]) * (o[a] - m->target[a]);
            e[1] += (o[p] - m->target[p]) * (o[p] - m->target[p]);
            e[2] += ((double)m->out_ref[a] - m->target[a]) * ((double)m->out_ref[a] - m->target[a]);
            e[3] += ((double)m->out_ref[p] - m->target[p]) * ((double)m->out_ref[p] - m->target[p]);
        }
        const double diff = (e[0] / MD - e[2] / MD) - (e[1] / MD - e[3] / MD);
        L += fmax(0.0, diff + margin);
    }
    return L / MB;
}

static void run_loss(fr_backend *be, const batch *m, double margin, double gout, float *grad, double *e, double *diff,
                     double *term, fr_dro_stats *st)
{
    const size_t bytes = (size_t)(MR * MD) * sizeof(float);
    float *o = fr_dev_floats(be, MR * MD), *r = fr_dev_floats(be, MR * MD), *t = fr_dev_floats(be, MR * MD),
          *g = fr_dev_floats(be, MR * MD);
    ck_assert(o && r && t && g);
    ck_assert_int_eq(fr_h2d(be, o, m->out, bytes), FR_OK);
    ck_assert_int_eq(fr_h2d(be, r, m->out_ref, bytes), FR_OK);
    ck_assert_int_eq(fr_h2d(be, t, m->target, bytes), FR_OK);
    ck_assert_msg(fr_dro_loss(be, margin, MB, MD, o, r, t, gout, g, e, diff, term, st) == FR_OK, "%s", fr_last_error());
    if (grad) ck_assert_int_eq(fr_d2h(be, grad, g, bytes), FR_OK);
    fr_dev_free(be, o);
    fr_dev_free(be, r);
    fr_dev_free(be, t);
    fr_dev_free(be, g);
}

/* spec §19 check: out_ref = out, so every diff is exactly 0, every term is the margin bitwise
 * (max(0, 0 + margin) as flowrl computes it), the loss within 1 ulp of it; on every exact
 * backend built in. */
START_TEST(test_dro_margin_at_ref)
{
    const char *bks[] = {"ref", "opt", "cuda-emu"};
    for (int k = 0; k < 3; k++) {
        fr_backend be;
        if (!fr_test_backend_try(&be, "dro", bks[k], 2)) continue;
        batch m;
        make_batch(&m, 31, 0.0f);
        double e[4 * MB], diff[MB], term[MB];
        fr_dro_stats st;
        run_loss(&be, &m, FR_DRO_MARGIN, 1.0, NULL, e, diff, term, &st);
        const double want = fmax(0.0, 0.0 + FR_DRO_MARGIN);
        for (int i = 0; i < MB; i++) {
            ck_assert_msg(e[i] == e[2 * MB + i] && e[MB + i] == e[3 * MB + i], "%s row %d: e_theta != e_ref", bks[k], i);
            ck_assert_msg(diff[i] == 0.0, "%s row %d: diff %.17g", bks[k], i, diff[i]);
            ck_assert_msg(memcmp(&term[i], &want, sizeof want) == 0, "%s row %d: term %.17g, want the margin %.17g", bks[k],
                          i, term[i], want);
        }
        ck_assert_msg(st.loss >= nextafter(want, 0.0) && st.loss <= nextafter(want, 1.0),
                      "%s: loss %.17g is more than 1 ulp from the margin %.17g", bks[k], st.loss, want);
        ck_assert(st.active == 1.0);
        fr_backend_close(&be);
    }
}
END_TEST

/* The rows, diff, terms and loss against spec §19 in double; rows on both sides of the hinge. */
START_TEST(test_dro_hinge_direct)
{
    batch m;
    make_batch(&m, 7, 0.2f);
    double e[4 * MB], diff[MB], term[MB], o[MR * MD];
    fr_dro_stats st;
    run_loss(REF, &m, FR_DRO_MARGIN, 1.0, NULL, e, diff, term, &st);
    for (int j = 0; j < MR * MD; j++) o[j] = m.out[j];
    const double L = loss_direct(&m, o, FR_DRO_MARGIN);
    ck_assert_msg(fabs(st.loss - L) <= 1e-12 * fmax(1.0, fabs(L)), "loss %.17g, direct %.17g", st.loss, L);
    int on = 0, off = 0;
    for (int i = 0; i < MB; i++) {
        const double d = (e[i] - e[2 * MB + i]) - (e[MB + i] - e[3 * MB + i]);
        ck_assert(diff[i] == d);
        ck_assert(term[i] == (d + FR_DRO_MARGIN > 0.0 ? d + FR_DRO_MARGIN : 0.0));
        on += term[i] > 0.0, off += term[i] == 0.0;
    }
    ck_assert_msg(on > 0 && off > 0, "rows active %d, inactive %d: the case does not test both sides", on, off);
    ck_assert(st.active == (double)on / MB);
}
END_TEST

/* torch.maximum at a tie gives each side half: diff + margin == 0 gives c = ½·gout/B. */
START_TEST(test_dro_hinge_tie)
{
    const double m = 0.25; /* exact in binary: diff = −m, diff + m = 0 exactly */
    double ee[2] = {1.0, 2.0}, er[2] = {1.0, 0.5}, pe[2] = {m, 0.0}, pr[2] = {0.0, 0.0};
    double diff[2], term[2], coef[2], loss;
    ck_assert_int_eq(fr_dro_hinge(2, m, 0.5, ee, er, pe, pr, diff, term, coef, &loss), FR_OK);
    ck_assert(diff[0] == -m && term[0] == 0.0 && coef[0] == (0.5 * 0.5) / 2.0);
    ck_assert(diff[1] == 1.5 && term[1] == 1.75 && coef[1] == 0.5 / 2.0);
    ck_assert(loss == 1.75 / 2.0);
    ck_assert_int_eq(fr_dro_hinge(0, m, 1.0, ee, er, pe, pr, NULL, NULL, NULL, NULL), FR_ERR_ARG);
    ck_assert_int_eq(fr_dro_hinge(2, NAN, 1.0, ee, er, pe, pr, NULL, NULL, NULL, NULL), FR_ERR_ARG);
}
END_TEST

/* dL/dout by central differences of the double evaluation: expert rows +, policy rows −,
 * inactive rows 0; the float32 gradient within its rounding. */
START_TEST(test_dro_grad_fd)
{
    batch m;
    make_batch(&m, 13, 0.2f);
    float g[MR * MD];
    double term[MB];
    fr_dro_stats st;
    const double gout = 0.5;
    run_loss(REF, &m, FR_DRO_MARGIN, gout, g, NULL, NULL, term, &st);
    double o[MR * MD];
    for (int j = 0; j < MR * MD; j++) o[j] = m.out[j];
    for (int j = 0; j < MR * MD; j++) {
        const double h = 1e-6, x = o[j];
        o[j] = x + h;
        const double lp = loss_direct(&m, o, FR_DRO_MARGIN);
        o[j] = x - h;
        const double lm = loss_direct(&m, o, FR_DRO_MARGIN);
        o[j] = x;
        const double fd = gout * (lp - lm) / (2.0 * h);
        const int row = j / MD, pair = row % MB;
        if (term[pair] == 0.0) ck_assert_msg(g[j] == 0.0f, "element %d of an inactive row: %g", j, (double)g[j]);
        ck_assert_msg(fabs((double)g[j] - fd) <= 1e-6 + 1e-4 * fabs(fd), "element %d: grad %.9g, finite difference %.9g", j,
                      (double)g[j], fd);
    }
}
END_TEST

/* The buffer's draws: without replacement while b <= n (distinct positions), with replacement
 * beyond; every position in [0, n), every step in [0, T); a pure function of (seed, m). */
START_TEST(test_dro_pick)
{
    int64_t pos[16], step[16], pos2[16], step2[16];
    ck_assert_int_eq(fr_dro_pick(3, 5, 9, 20, 9, pos, step), FR_OK);
    int seen[9] = {0};
    for (int i = 0; i < 9; i++) {
        ck_assert(pos[i] >= 0 && pos[i] < 9 && step[i] >= 0 && step[i] < 20);
        ck_assert_msg(!seen[pos[i]]++, "position %lld drawn twice without replacement", (long long)pos[i]);
    }
    ck_assert_int_eq(fr_dro_pick(3, 5, 9, 20, 9, pos2, step2), FR_OK);
    ck_assert(memcmp(pos, pos2, sizeof(int64_t) * 9) == 0 && memcmp(step, step2, sizeof(int64_t) * 9) == 0);
    ck_assert_int_eq(fr_dro_pick(3, 6, 9, 20, 9, pos2, step2), FR_OK);
    ck_assert(memcmp(step, step2, sizeof(int64_t) * 9) != 0);
    ck_assert_int_eq(fr_dro_pick(3, 5, 4, 20, 16, pos, step), FR_OK);
    int hits[4] = {0};
    for (int i = 0; i < 16; i++) {
        ck_assert(pos[i] >= 0 && pos[i] < 4 && step[i] >= 0 && step[i] < 20);
        hits[pos[i]]++;
    }
    ck_assert_msg(hits[0] + hits[1] + hits[2] + hits[3] == 16, "with replacement");
    ck_assert_int_eq(fr_dro_pick(3, 5, 0, 20, 4, pos, step), FR_ERR_ARG);
}
END_TEST

/* ---- whole runs ------------------------------------------------------------------------------ */

typedef struct {
    int n_e, bad, n_loss, bad_loss;
} e_tap;

/* every q<q>.e and q<q>.loss record of audit step 1 */
static fr_status tap_e(int64_t step, const char *name, const fr_tensor *t, void *user)
{
    e_tap *c = user;
    const size_t l = strlen(name);
    if (step != 1 || name[0] != 'q') return FR_OK;
    if (l > 2 && strcmp(name + l - 2, ".e") == 0) {
        ck_assert(t->dtype == FR_F64 && t->ndim == 2 && t->shape[0] == 4);
        const double *e = t->data;
        const int64_t b = t->shape[1];
        for (int64_t i = 0; i < b; i++, c->n_e++)
            c->bad += e[i] != e[2 * b + i] || e[b + i] != e[3 * b + i];
    } else if (l > 5 && strcmp(name + l - 5, ".loss") == 0) {
        const float want = (float)FR_DRO_MARGIN;
        c->n_loss++;
        c->bad_loss += !(*(const float *)t->data == want);
    }
    return FR_OK;
}

/* The check as a run: with one optimiser step at the end of epoch 1 every micro-batch of the
 * epoch sees θ = the base, so each row's e_θ equals e_ref bitwise and each recorded loss is the
 * margin; on ref and on cuda-emu. */
START_TEST(test_dro_run_margin_at_ref)
{
    const char *bks[] = {"ref", "cuda-emu"};
    for (int k = 0; k < 2; k++) {
        fr_rt_opts o;
        fr_rt_opts_init(&o, &fr_algo_dro, bks[k], 1);
        o.ro.c.grad_accum = o.ro.c.num_batches;
        ((fr_dro_opts *)o.ao)->buffer_every = 2; /* refreshes at micro-batches 0 (empty), 1, 3 */
        fr_backend be;
        if (!fr_test_backend_try(&be, "dro", bks[k], 1)) {
            fr_rt_opts_free(&o);
            continue;
        }
        e_tap c = {0, 0, 0, 0};
        fr_run_env env = {&be, NULL, tap_e, &c};
        fr_run_result res;
        ck_assert_msg(fr_run_new(&o.ro, o.ao, &env, &res) == FR_OK, "%s: %s", bks[k], fr_last_error());
        ck_assert_int_eq(c.n_e, o.ro.c.prompts * o.ro.c.group);
        ck_assert_int_eq(c.n_loss, o.ro.c.num_batches);
        ck_assert_msg(c.bad == 0 && c.bad_loss == 0, "%s: %d rows with e_theta != e_ref, %d losses != margin", bks[k],
                      c.bad, c.bad_loss);
        fr_backend_close(&be);
        fr_rt_opts_free(&o);
    }
}
END_TEST

/* --prefs: required, and a file of another task is one line naming it. */
START_TEST(test_dro_prefs_errors)
{
    fr_rt_opts o;
    fr_rt_opts_init(&o, &fr_algo_dro, "noprefs", 1);
    ((fr_dro_opts *)o.ao)->prefs[0] = '\0';
    ck_assert_int_eq(fr_rt_run(&o, "ref", 1, NULL, NULL), FR_ERR_ARG);
    ck_assert_msg(strstr(fr_last_error(), "--prefs") && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    fr_rt_opts_free(&o);
    fr_rt_opts_init(&o, &fr_algo_dro, "shapesprefs", 1);
    fr_rt_set_prefs(&o, "shapes"); /* a shapes file for a gmm2d run */
    const char *path = ((fr_dro_opts *)o.ao)->prefs;
    ck_assert_int_ne(fr_rt_run(&o, "ref", 1, NULL, NULL), FR_OK);
    ck_assert_msg(strstr(fr_last_error(), path) && !strchr(fr_last_error(), '\n'), "%s", fr_last_error());
    fr_rt_opts_free(&o);
}
END_TEST

Suite *suite_dro(void)
{
    Suite *s = suite_create("dro");
    TCase *tc = tcase_create("loss");
    tcase_add_test(tc, test_dro_margin_at_ref);
    tcase_add_test(tc, test_dro_hinge_direct);
    tcase_add_test(tc, test_dro_hinge_tie);
    tcase_add_test(tc, test_dro_grad_fd);
    tcase_add_test(tc, test_dro_pick);
    suite_add_tcase(s, tc);
    TCase *run = tcase_create("run");
    tcase_add_checked_fixture(run, fr_rt_setup, fr_rt_teardown);
    tcase_set_timeout(run, 120);
    tcase_add_test(run, test_dro_run_margin_at_ref);
    tcase_add_test(run, test_dro_prefs_errors);
    suite_add_tcase(s, run);
    return s;
}
