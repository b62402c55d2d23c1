/* σ grids, timestep inputs, DDPM tables (docs/algorithms/samplers.md §1, §6, §7) and `flowrl schedule`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/schedule.h"
#include "tests/suites.h"
#include "tests/testutil.h"

/* docs/algorithms/samplers.md §1.2 check vector, T = 10, S = 3, as printed there (6 decimals). */
static const char *const k_fg_check[11] = {"1.000000", "0.960129", "0.913349", "0.857692",
                                           "0.790368", "0.707278", "0.602151", "0.464876",
                                           "0.278049", "0.008929", "0"};

/* The value printed with 6 decimals must reproduce the spec's digits; numerically that is
 * |σ − printed| <= 0.5e-6, half a unit of the last printed digit (plus 1e-12 for the
 * decimal literal's own conversion). The final "0" is exact. */
static void check_fg_vector(const float *sig)
{
    for (int i = 0; i < 11; i++) {
        double ref = strtod(k_fg_check[i], NULL);
        double tol = i == 10 ? 0.0 : 0.5e-6 + 1e-12;
        ck_assert_msg(!isnan(sig[i]) && fabs((double)sig[i] - ref) <= tol,
                      "sigma_%d = %.9g, spec %s (tol %g)", i, (double)sig[i], k_fg_check[i], tol);
        if (i < 10) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.6f", (double)sig[i]);
            ck_assert_msg(strcmp(buf, k_fg_check[i]) == 0, "sigma_%d prints %s, spec %s", i, buf, k_fg_check[i]);
        }
    }
}

START_TEST(test_diffusers_check_vector)
{
    float sig[11];
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, sig), FR_OK);
    check_fg_vector(sig);
    /* the double shift (docs/algorithms/samplers.md §1.2 quirk): sigma_{T-1} = s(s(0.001)), not s(0.001) */
    double ss = fr_shift_d(fr_shift_d(0.001, 3.0), 3.0);
    ck_assert_msg(fabs(sig[9] - ss) <= 1e-8, "sigma_9 %.9g vs s(s(0.001)) %.9g", (double)sig[9], ss);
    ck_assert(fabs(sig[9] - fr_shift_d(0.001, 3.0)) > 1e-3);
    ck_assert(sig[0] == 1.0f && sig[10] == 0.0f);
}
END_TEST

/* §1.3: σ_1 = 2.88/2.92, σ_24 = 0.12/1.08 for T = 25; the spec's 4-digit values. flowrl
 * rounds the float64 value once, so each is within 1 ulp of the exact rational (the
 * float64 linspace/shift error is ~1e-16, far below half a float ulp except at ties). */
START_TEST(test_linspace_check_values)
{
    float sig[26];
    ck_assert_int_eq(fr_sigmas_linspace(25, 3.0, sig), FR_OK);
    ck_assert(sig[0] == 1.0f && sig[25] == 0.0f);
    ck_assert_int_le(fr_test_ulps(sig[1], (float)(2.88 / 2.92)), 1);
    ck_assert_int_le(fr_test_ulps(sig[24], (float)(0.12 / 1.08)), 1);
    const char *want[4] = {"0.9863", "0.9718", "0.1111", "0.0000"};
    const int idx[4] = {1, 2, 24, 25};
    for (int k = 0; k < 4; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.4f", (double)sig[idx[k]]);
        ck_assert_msg(strcmp(buf, want[k]) == 0, "sigma_%d prints %s, spec %s", idx[k], buf, want[k]);
    }
    /* S = 1 is the identity: σ_i = 1 − i/T, within 1 ulp */
    ck_assert_int_eq(fr_sigmas_linspace(25, 1.0, sig), FR_OK);
    for (int i = 0; i <= 25; i++)
        ck_assert_msg(fr_test_ulps(sig[i], (float)(1.0 - i / 25.0)) <= 1, "S=1 sigma_%d %.9g", i, (double)sig[i]);
}
END_TEST

START_TEST(test_grids_monotone)
{
    static float sig[402];
    const double shifts[4] = {1.0, 3.0, 5.5, 0.5};
    for (int g = 0; g < 2; g++)
        for (int si = 0; si < 4; si++)
            for (int64_t T = 1; T <= 400; T += (T < 40 ? 1 : 37)) {
                fr_status st = g ? fr_sigmas_linspace(T, shifts[si], sig) : fr_sigmas_diffusers(T, shifts[si], sig);
                ck_assert_int_eq(st, FR_OK);
                ck_assert_msg(sig[0] == 1.0f && sig[T] == 0.0f, "grid %d S %g T %lld ends %g..%g", g,
                              shifts[si], (long long)T, (double)sig[0], (double)sig[T]);
                for (int64_t i = 0; i < T; i++)
                    ck_assert_msg(sig[i + 1] < sig[i] && !isnan(sig[i]),
                                  "grid %d S %g T %lld not strictly decreasing at %lld: %.9g, %.9g", g,
                                  shifts[si], (long long)T, (long long)i, (double)sig[i], (double)sig[i + 1]);
            }
    ck_assert_int_eq(fr_sigmas_diffusers(0, 3.0, sig), FR_ERR_ARG);
    ck_assert_int_eq(fr_sigmas_diffusers(10, 0.0, sig), FR_ERR_ARG);
    ck_assert_int_eq(fr_sigmas_diffusers(10, NAN, sig), FR_ERR_ARG);
    ck_assert_int_eq(fr_sigmas_linspace(0, 3.0, sig), FR_ERR_ARG);
    ck_assert_int_eq(fr_sigmas_linspace(3, 3.0, NULL), FR_ERR_ARG);
}
END_TEST

/* §1.4: ⌊1000σ⌋/1000 with the float32 product of the public code. 0.29f·1000 rounds up to
 * 290.0f in float32 (0.28999999166·1000 = 289.99999166, half an ulp of 290 is 1.5e-5), so
 * the quantized input is 0.29f; a float64 floor would give 0.289. */
START_TEST(test_timestep_quantized)
{
    ck_assert(fr_timestep_quantized(1.0f) == 1.0f);
    ck_assert(fr_timestep_quantized(0.0f) == 0.0f);
    ck_assert(fr_timestep_quantized(0.857692301f) == 857.0f / 1000.0f);
    ck_assert(fr_timestep_quantized(0.0019f) == 1.0f / 1000.0f);
    ck_assert(fr_timestep_quantized(0.29f) == 290.0f / 1000.0f);
    ck_assert(floor(0.29f * 1000.0) == 289.0); /* the float64 reading differs */
    ck_assert(fr_timestep_diffusers(0.5f) == 500.0f);
    float sig[17];
    ck_assert_int_eq(fr_sigmas_linspace(16, 3.0, sig), FR_OK);
    for (int i = 0; i <= 16; i++) {
        float q = fr_timestep_quantized(sig[i]);
        ck_assert_msg(q <= sig[i] && sig[i] - q < 1e-3f + 1e-7f, "sigma %.9g -> %.9g", (double)sig[i], (double)q);
    }
}
END_TEST

/* β / ᾱ tables against float64 references computed here with libm. */
START_TEST(test_betas)
{
    static float b[1000], ab[1000];
    ck_assert_int_eq(fr_betas_linear(1000, 1e-4, 0.02, b), FR_OK);
    ck_assert(b[0] == 1e-4f && b[999] == 0.02f);
    ck_assert_int_le(fr_test_ulps(b[500], (float)(1e-4 + 500 * (0.02 - 1e-4) / 999)), 1);
    ck_assert_int_eq(fr_betas_scaled_linear(1000, 0.00085, 0.012, b), FR_OK);
    /* r rounded to float then squared in float: <= 2 ulp from the exact square (2 roundings) */
    ck_assert_int_le(fr_test_ulps(b[0], 0.00085f), 2);
    ck_assert_int_le(fr_test_ulps(b[999], 0.012f), 2);
    ck_assert_int_eq(fr_alphas_cumprod(1000, b, ab), FR_OK);
    double acc = 1.0, exact = 1.0;
    for (int i = 0; i < 1000; i++) {
        /* torch's definition: alphas = 1 − β in float32, cumprod accumulated in float64 and
         * rounded once per entry; 1 ulp covers the float64 accumulation error */
        acc *= (double)(1.0f - b[i]);
        ck_assert_msg(fr_test_ulps(ab[i], (float)acc) <= 1, "alpha_bar[%d] %.9g vs %.9g", i, (double)ab[i], acc);
        /* against the exact product of 1 − β: each float32 1 − β is off by <= 2^-25
         * relative, so i+1 factors and the final rounding give <= (i+2)·2^-24 relative */
        exact *= 1.0 - (double)b[i];
        ck_assert_msg(fabs(ab[i] - exact) <= (i + 2) * 0x1.0p-24 * exact, "alpha_bar[%d] %.9g vs exact %.9g", i,
                      (double)ab[i], exact);
        ck_assert(i == 0 || ab[i] < ab[i - 1]);
    }

    /* DPPO cosine (docs/algorithms/samplers.md §7), T = 20, against DPPO's float64 formula with
     * x = linspace(0, n+1, n+1), x/(n+1). Tolerance: flowrl's float32 sin/cos of angles
     * rounded to float32 (relative error a few 1e-7 each) through a product and quotient
     * with no cancellation: 2e-6 relative, ~30 float ulps. */
    const int n = 20;
    ck_assert_int_eq(fr_betas_cosine(n, 0.008, 0.999, b), FR_OK);
    double abd[21];
    for (int k = 0; k <= n; k++) {
        double x = k == n ? (double)(n + 1) : (double)k * ((double)(n + 1) / n);
        double c = cos(((x / (n + 1)) + 0.008) / 1.008 * M_PI * 0.5);
        abd[k] = c * c;
    }
    double worst = 0.0;
    for (int k = 1; k <= n; k++) {
        double ref = 1.0 - (abd[k] / abd[0]) / (abd[k - 1] / abd[0]);
        if (ref > 0.999) ref = 0.999;
        double rel = fabs((double)b[k - 1] - ref) / ref;
        if (rel > worst) worst = rel;
        ck_assert_msg(!isnan(b[k - 1]) && rel <= 2e-6, "cosine beta_%d %.9g vs %.9g (rel %g)", k,
                      (double)b[k - 1], ref, rel);
    }
    ck_assert(b[n - 1] == 0.999f);
    ck_assert_int_eq(fr_alphas_cumprod(n, b, ab), FR_OK);
    for (int k = 1; k < n; k++) ck_assert(ab[k] < ab[k - 1] && ab[k] > 0.0f);
    ck_assert_int_eq(fr_betas_cosine(0, 0.008, 0.999, b), FR_ERR_ARG);
    b[3] = NAN;
    ck_assert_int_eq(fr_alphas_cumprod(n, b, ab), FR_ERR_NUMERIC);
}
END_TEST

/* §6: DDIM spacing; prev_t clamps to 0 so the last step reads ᾱ[0]. */
START_TEST(test_ddim_timesteps)
{
    int64_t t[50];
    ck_assert_int_eq(fr_ddim_timesteps(50, 1000, 1, t), FR_OK);
    ck_assert_int_eq(t[0], 981);
    ck_assert_int_eq(t[49], 1);
    for (int i = 0; i < 49; i++) ck_assert_int_eq(fr_ddim_prev_timestep(t[i], 50, 1000), t[i + 1]);
    ck_assert_int_eq(fr_ddim_prev_timestep(1, 50, 1000), 0);
    ck_assert_int_eq(fr_ddim_prev_timestep(999, 1, 1000), 0);
    ck_assert_int_eq(fr_ddim_timesteps(0, 1000, 1, t), FR_ERR_ARG);
    ck_assert_int_eq(fr_ddim_timesteps(2000, 1000, 1, t), FR_ERR_ARG);
}
END_TEST

/* ---- flowrl schedule ---------------------------------------------------------------- */

static char g_out[1 << 16];

/* Splits g_out into lines; returns the count. */
static int out_lines(char **lines, int max)
{
    int n = 0;
    for (char *tok = strtok(g_out, "\n"); tok && n < max; tok = strtok(NULL, "\n")) lines[n++] = tok;
    return n;
}

START_TEST(test_cli_schedule)
{
    char *lines[64];
    ck_assert_int_eq(fr_test_run_cli("schedule --grid diffusers --num-steps 10 --shift 3", g_out, sizeof g_out), 0);
    ck_assert_int_eq(out_lines(lines, 64), 11);
    float sig[11], lib[11];
    ck_assert_int_eq(fr_sigmas_diffusers(10, 3.0, lib), FR_OK);
    for (int i = 0; i < 11; i++) {
        char *end;
        sig[i] = strtof(lines[i], &end);
        ck_assert_msg(*end == '\0', "line %d: '%s'", i, lines[i]);
        /* %.9g round-trips a float32: the printed value is the library's value, bit for bit */
        ck_assert_msg(fr_test_bits_equal(sig[i], lib[i]), "line %d: %s vs %.9g", i, lines[i], (double)lib[i]);
    }
    check_fg_vector(sig);
    ck_assert_str_eq(lines[0], "1");
    ck_assert_str_eq(lines[10], "0");

    /* default shift is 3; the linear grid has T + 1 values 1 .. 0 */
    ck_assert_int_eq(fr_test_run_cli("schedule --grid linear --num-steps 25", g_out, sizeof g_out), 0);
    ck_assert_int_eq(out_lines(lines, 64), 26);
    ck_assert_str_eq(lines[0], "1");
    ck_assert_str_eq(lines[25], "0");
    ck_assert_int_le(fr_test_ulps(strtof(lines[1], NULL), (float)(2.88 / 2.92)), 1);
}
END_TEST

START_TEST(test_cli_schedule_bad_args)
{
    static const char *bad[] = {
        "schedule",
        "schedule --grid diffusers",
        "schedule --num-steps 10",
        "schedule --grid cosine --num-steps 10",
        "schedule --grid diffusers --num-steps 0",
        "schedule --grid diffusers --num-steps -3",
        "schedule --grid diffusers --num-steps 10x",
        "schedule --grid diffusers --num-steps 1000001",
        "schedule --grid diffusers --num-steps 10 --shift 0",
        "schedule --grid diffusers --num-steps 10 --shift nan",
        "schedule --grid diffusers --num-steps 10 --shift",
        "schedule --grid diffusers --num-steps 10 --bogus 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fr_test_run_cli(bad[i], g_out, sizeof g_out);
        ck_assert_msg(rc == 2, "'%s' exited %d, want 2", bad[i], rc);
        ck_assert_msg(strstr(g_out, "flowrl schedule") != NULL, "'%s' printed: %s", bad[i], g_out);
        int nl = 0;
        for (char *p = g_out; *p; p++) nl += *p == '\n';
        ck_assert_msg(nl == 1, "'%s' should print one line, printed: %s", bad[i], g_out);
    }
    ck_assert_int_eq(fr_test_run_cli("schedule --help", g_out, sizeof g_out), 0);
    ck_assert(strstr(g_out, "Usage: flowrl schedule") != NULL);
}
END_TEST

Suite *suite_schedule(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("schedule");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_diffusers_check_vector);
    tcase_add_test(tc, test_linspace_check_values);
    tcase_add_test(tc, test_grids_monotone);
    tcase_add_test(tc, test_timestep_quantized);
    tcase_add_test(tc, test_betas);
    tcase_add_test(tc, test_ddim_timesteps);
    tcase_add_test(tc, test_cli_schedule);
    tcase_add_test(tc, test_cli_schedule_bad_args);
    suite_add_tcase(s, tc);
    return s;
}
