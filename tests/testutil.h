/* Helpers shared by the tests: ulp distance, seeded random inputs, temp dirs. */
#ifndef FLOWRL_TESTUTIL_H
#define FLOWRL_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Monotone integer image of a float: ulp distance = |ord(a) - ord(b)|. */
static inline int64_t fr_test_ord(float x)
{
    int32_t i;
    memcpy(&i, &x, 4);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

static inline int64_t fr_test_ulps(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int64_t d = fr_test_ord(a) - fr_test_ord(b);
    return d < 0 ? -d : d;
}

static inline int fr_test_bits_equal(float a, float b) { return memcmp(&a, &b, 4) == 0; }

/* A tiny seeded generator for test inputs (splitmix64); the seed is printed on failure. */
static inline uint64_t fr_test_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float fr_test_uniform(uint64_t *s, float lo, float hi)
{
    double u = (double)(fr_test_next(s) >> 11) * 0x1.0p-53;
    return (float)(lo + (hi - lo) * u);
}

/* Runs cmd through the shell, captures up to n-1 bytes of its stdout into out (the rest is
 * drained), and returns the exit status (-1 if it did not exit). */
static inline int fr_test_run_sh(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = 0, got;
    while (used + 1 < n && (got = fread(out + used, 1, n - 1 - used, p)) > 0) used += got;
    out[used] = '\0';
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `$FLOWRL_BIN args` through the shell (stderr merged into stdout), captures up to
 * n-1 bytes of output into out, and returns the exit status (-1 if it did not exit). */
static inline int fr_test_run_cli(const char *args, char *out, size_t n)
{
    const char *bin = getenv("FLOWRL_BIN");
    if (!bin) bin = "build/flowrl";
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
    return fr_test_run_sh(cmd, out, n);
}

/* The source tree root (make check sets FLOWRL_SRC). */
static inline const char *fr_test_src(void)
{
    const char *s = getenv("FLOWRL_SRC");
    return s ? s : ".";
}

#endif
