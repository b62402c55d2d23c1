/* The CLI's own commands (info, rng) and its argument handling. */
#include <string.h>

#include "tests/suites.h"
#include "tests/testutil.h"

static char g_out[1 << 16];

START_TEST(test_rng_philox_kat)
{
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0,0 --counter 0,0,0,0", g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "6627e8d5 e169c58d bc57ac4c 9b00dbd8\n");
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0xa4093822,0x299f31d0 --counter "
                                     "0x243f6a88,0x85a308d3,0x13198a2e,0x03707344",
                                     g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "d16cfe09 94fdcceb 5001e420 24126ea1\n");
    ck_assert_int_eq(fr_test_run_cli("rng philox --key 0xffffffff,0xffffffff --counter "
                                     "0xffffffff,0xffffffff,0xffffffff,0xffffffff --rounds 7",
                                     g_out, sizeof g_out), 0);
    ck_assert_str_eq(g_out, "5207ddc2 45165e59 4d8ee751 8c52f662\n");
}
END_TEST

START_TEST(test_rng_streams)
{
    ck_assert_int_eq(fr_test_run_cli("rng normal --seed 1 --purpose 0 --coords 0,0,0 --count 3", g_out, sizeof g_out), 0);
    int lines = 0;
    for (char *p = g_out; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 3);
    ck_assert_int_eq(fr_test_run_cli("rng uniform --seed 1 --purpose 0 --coords 0,0,0 --count 1", g_out, sizeof g_out), 0);
    float u = strtof(g_out, NULL);
    ck_assert(u > 0.0f && u < 1.0f);
}
END_TEST

START_TEST(test_rng_bad_args)
{
    static const char *bad[] = {
        "rng philox --key 0 --counter 0,0,0,0",       /* one key word */
        "rng philox --key 0,0 --counter 0,0,0",       /* three counter words */
        "rng philox --key 0,0x1ffffffff --counter 0,0,0,0", /* > 32 bits */
        "rng philox --key 0,0 --counter 0,0,0,0 --rounds 0",
        "rng philox --key 0,0 --counter 0,0,0,0 --bogus",
        "rng philox --key",
        "rng mersenne",
        "rng",
        "no-such-command",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = fr_test_run_cli(bad[i], g_out, sizeof g_out);
        ck_assert_msg(rc == 2, "'%s' exited %d, want 2 (usage error)", bad[i], rc);
        ck_assert_msg(strstr(g_out, "flowrl") != NULL, "'%s' printed no message: %s", bad[i], g_out);
    }
}
END_TEST

START_TEST(test_info)
{
    ck_assert_int_eq(fr_test_run_cli("info", g_out, sizeof g_out), 0);
    ck_assert_msg(strstr(g_out, "fp contract: ok") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "-ffp-contract=off") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "backends:    ref") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "self-test ok") != NULL, "%s", g_out);
}
END_TEST

START_TEST(test_help)
{
    ck_assert_int_eq(fr_test_run_cli("--help", g_out, sizeof g_out), 0);
    ck_assert(strstr(g_out, "Commands:") != NULL);
    /* every listed command answers --help with exit 0 and a Usage line */
    char *p = strstr(g_out, "Commands:\n");
    ck_assert_ptr_nonnull(p);
    p += strlen("Commands:\n");
    int n = 0;
    char list[1 << 12];
    snprintf(list, sizeof list, "%s", p);
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        char name[64], args[128], out[8192];
        if (sscanf(line, " %63s", name) != 1) continue;
        snprintf(args, sizeof args, "%s --help", name);
        int rc = fr_test_run_cli(args, out, sizeof out);
        ck_assert_msg(rc == 0 && strstr(out, "Usage:") != NULL, "flowrl %s --help: rc %d: %s", name, rc, out);
        n++;
    }
    ck_assert_int_ge(n, 3);
    ck_assert_int_eq(fr_test_run_cli("", g_out, sizeof g_out), 2);
}
END_TEST

Suite *suite_cli(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_rng_philox_kat);
    tcase_add_test(tc, test_rng_streams);
    tcase_add_test(tc, test_rng_bad_args);
    tcase_add_test(tc, test_info);
    tcase_add_test(tc, test_help);
    suite_add_tcase(s, tc);
    return s;
}
