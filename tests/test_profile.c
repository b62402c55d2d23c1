/* The epoch profile (flowrl/profile.h) and opt's row-parallel entries (opt/opt_rows.c), issue 15:
 * the timing table forwards every call unchanged and counts it where it belongs; opt's row blocks
 * give ref's bits at 1-3 threads on shapes whose rows split unevenly and whose D leaves a
 * Box-Muller pair half used. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/backend.h"
#include "flowrl/opt.h"
#include "flowrl/profile.h"
#include "suites.h"

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) * 0x1p-24f - 0.5f;
    }
}

START_TEST(test_profile_counts)
{
    const fr_ops *ref, *opt;
    ck_assert_int_eq(fr_backend_get("ref", &ref), FR_OK);
    ck_assert_int_eq(fr_backend_get("opt", &opt), FR_OK);
    const fr_ops *p = fr_profile_ops(ref);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(fr_profile_ops(ref), p); /* the same table again */
    ck_assert_ptr_null(fr_profile_ops(opt));  /* one wrapped table at a time */
    float A[6 * 5], B[5 * 7], C0[6 * 7], C1[6 * 7], y0[12], y1[12];
    fill(A, 30, 1), fill(B, 35, 2);
    ref->gemm(0, 0, 6, 7, 5, A, B, C0, 0);
    p->gemm(0, 0, 6, 7, 5, A, B, C1, 0);
    p->gemm(0, 0, 6, 7, 5, A, B, C1, 0);
    ck_assert_int_eq(memcmp(C0, C1, sizeof C0), 0);
    ref->act_fwd(FR_ACT_SILU, 12, A, y0);
    fr_profile_begin(FR_PROF_REWARDS);
    p->act_fwd(FR_ACT_SILU, 12, A, y1); /* a child: not the region's self time */
    fr_profile_end(FR_PROF_REWARDS);
    ck_assert_int_eq(memcmp(y0, y1, sizeof y0), 0);
    fr_profile_row rows[8];
    int n = fr_profile_rows(rows, 8), seen = 0;
    ck_assert_int_eq(n, 3);
    for (int i = 0; i < n; i++) {
        if (rows[i].is_gemm) {
            ck_assert_str_eq(rows[i].what, "dx NN 6x7x5");
            ck_assert_int_eq((int)rows[i].calls, 2);
            ck_assert(rows[i].M == 6 && rows[i].N == 7 && rows[i].K == 5);
            seen |= 1;
        } else if (strcmp(rows[i].what, "act_fwd silu") == 0) {
            ck_assert_str_eq(rows[i].group, "element-wise");
            ck_assert_int_eq((int)rows[i].calls, 1);
            seen |= 2;
        } else {
            ck_assert_str_eq(rows[i].what, "rewards");
            ck_assert_int_eq((int)rows[i].calls, 1);
            seen |= 4;
        }
        ck_assert(rows[i].seconds >= 0);
    }
    ck_assert_int_eq(seen, 7);
    fr_profile_reset();
    ck_assert_int_eq(fr_profile_rows(rows, 8), 0);
}
END_TEST

START_TEST(test_rows_bitwise)
{
    const fr_ops *ref, *opt;
    ck_assert_int_eq(fr_backend_get("ref", &ref), FR_OK);
    ck_assert_int_eq(fr_backend_get("opt", &opt), FR_OK);
    enum { R = 37, D = 13, S = 3, E = 8, NT = 5 };
    float x[R * D], mo[R * D], xi[R * D], t[R], tab[NT * D];
    int32_t c[R * S];
    uint32_t ids[R];
    fill(x, R * D, 3), fill(mo, R * D, 4), fill(xi, R * D, 5), fill(t, R, 6), fill(tab, NT * D, 7);
    for (int i = 0; i < R; i++) t[i] = 0.5f + 0.4f * t[i], ids[i] = (uint32_t)(i * 7 + 1);
    for (int i = 0; i < R * S; i++) c[i] = i % NT;
    fr_step_coef q;
    memset(&q, 0, sizeof q);
    q.kind = FR_SAMPLER_SDE, q.std = 0.3f, q.std_dev = 0.9f;
    q.sde.cx = 1.01f, q.sde.cv = 1.2f, q.sde.dt = -0.1f, q.sde.std_dev = 0.9f, q.sde.std = 0.3f;
    q.gauss.two_var = 0.18f, q.gauss.log_std = -1.2039728f, q.gauss.log_sqrt_2pi = 0.9189385f;
    fr_opt_set_split_all(1);
    for (int th = 1; th <= 3; th++) {
        fr_opt_set_threads(th);
        static float a[2][R * D], m[2][R * D], l[2][R], h[2][R * D], xn[2][R * D], e[2][R * E], fm[2][R * D],
            fe[2][R * D], st[2][R * D], sl[2][R];
        for (int k = 0; k < 2; k++) {
            const fr_ops *o = k ? opt : ref;
            o->rng_normal_rows(R, D, 42, 3, 1, 5, ids, 9, a[k]);
            o->sampler_step(R, D, q, x, mo, NULL, xi, st[k], m[k], sl[k]);
            o->sampler_logprob(R, D, q, x, mo, NULL, xi, NULL, m[k], l[k]);
            o->temb_sinusoidal(R, E, t, e[k]);
            memcpy(h[k], x, sizeof x);
            o->embed_gather_add(R, S, D, NT, tab, c, h[k]);
            o->x0_head_fwd(R, D, 0.05f, t, h[k], mo, NULL, h[k]);
            o->row_sumsq_diff(R, D, x, a[k], l[k] + 0);
            o->noise_fm(R, 5, D, 42, 7, 2, 11, ids, x, t, fm[k], fe[k]); /* x0 rows r mod 5 */
            memcpy(xn[k], x, sizeof x);
            o->noise_fm(R, R, D, 42, 7, 2, 11, ids, xn[k], t, xn[k], NULL); /* in place, no ε */
        }
        ck_assert_msg(memcmp(fm[0], fm[1], sizeof fm[0]) == 0 && memcmp(fe[0], fe[1], sizeof fe[0]) == 0,
                      "noise_fm at %d threads", th);
        ck_assert_msg(memcmp(a[0], a[1], sizeof a[0]) == 0, "rng_normal_rows at %d threads", th);
        ck_assert_msg(memcmp(xn[0], xn[1], sizeof xn[0]) == 0, "noise_fm in place at %d threads", th);
        ck_assert_msg(memcmp(st[0], st[1], sizeof st[0]) == 0 && memcmp(sl[0], sl[1], sizeof sl[0]) == 0,
                      "sampler steps at %d threads", th);
        ck_assert_msg(memcmp(m[0], m[1], sizeof m[0]) == 0, "sampler means at %d threads", th);
        ck_assert_msg(memcmp(l[0], l[1], sizeof l[0]) == 0, "row sums at %d threads", th);
        ck_assert_msg(memcmp(h[0], h[1], sizeof h[0]) == 0, "embedding + x0 head at %d threads", th);
        ck_assert_msg(memcmp(e[0], e[1], sizeof e[0]) == 0, "time embedding at %d threads", th);
    }
    fr_opt_set_split_all(0);
    fr_opt_set_threads(0);
}
END_TEST

Suite *suite_profile(void)
{
    Suite *s = suite_create("profile");
    TCase *tc = tcase_create("profile");
    tcase_add_test(tc, test_profile_counts);
    tcase_add_test(tc, test_rows_bitwise);
    suite_add_tcase(s, tc);
    return s;
}
