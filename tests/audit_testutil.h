/* Audit-log checks of the single-checkpoint trainers (flowrl/audit_train.h: gmflow train,
 * piflow train, bc): `flowrl audit`'s comparison (fr_runs_compare) of two logs, and a log as a
 * run killed mid-step leaves it. */
#ifndef FLOWRL_TESTS_AUDIT_TESTUTIL_H
#define FLOWRL_TESTS_AUDIT_TESTUTIL_H

#include <string.h>

#include "flowrl/runcompare.h"
#include "tests/testutil.h"

/* `flowrl audit A B` finds the logs identical through `steps` steps. */
static inline void fr_test_audit_identical(const char *a, const char *b, int64_t steps)
{
    fr_runs_cmp c;
    ck_assert_msg(fr_runs_compare(a, b, &c) == FR_OK, "%s vs %s: %s", a, b, fr_last_error());
    ck_assert_msg(c.verdict == FR_RUNS_IDENTICAL && c.through_step == steps, "%s vs %s: %s (verdict %d through %lld)", a,
                  b, c.n_lines ? c.lines[0] : "", (int)c.verdict, (long long)c.through_step);
    fr_runs_cmp_free(&c);
}

/* `flowrl audit A B` reports the first difference at step `step`, record `name`. */
static inline void fr_test_audit_differs_at(const char *a, const char *b, int64_t step, const char *name)
{
    fr_runs_cmp c;
    ck_assert_msg(fr_runs_compare(a, b, &c) == FR_OK, "%s vs %s: %s", a, b, fr_last_error());
    ck_assert_msg(c.verdict == FR_RUNS_DIFFER && c.diff_step == step && c.diff_name && strcmp(c.diff_name, name) == 0,
                  "%s vs %s: %s (verdict %d at step %lld, record %s)", a, b, c.n_lines ? c.lines[0] : "", (int)c.verdict,
                  (long long)c.diff_step, c.diff_name ? c.diff_name : "(none)");
    fr_runs_cmp_free(&c);
}

/* dst := the log `full` as a run killed during step through + 1 leaves it: its header and
 * steps 1..through complete, two records of the next step and a torn half line. */
static inline void fr_test_audit_killed(const char *full, const char *dst, int64_t through)
{
    size_t n = 0;
    char *buf = fr_test_slurp(full, &n);
    ck_assert_msg(buf != NULL, "no %s", full);
    char end[64];
    snprintf(end, sizeof end, "\nend-step %lld ", (long long)through);
    char *p = strstr(buf, end);
    ck_assert_msg(p != NULL, "%s: no step %lld", full, (long long)through);
    p = strchr(p + 1, '\n'); /* past the end-step line */
    ck_assert(p != NULL);
    for (int k = 0; k < 2 && p; k++) p = strchr(p + 1, '\n');
    ck_assert_msg(p != NULL, "%s: no step %lld after %lld", full, (long long)through + 1, (long long)through);
    const size_t keep = (size_t)(p + 1 - buf) + 7; /* + a torn line */
    ck_assert(keep < n);
    FILE *f = fopen(dst, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", dst);
    ck_assert(fwrite(buf, 1, keep, f) == keep);
    fclose(f);
    free(buf);
}

#endif
