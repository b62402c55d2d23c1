/* Helpers shared by the tests: ulp distance, seeded random inputs, the reference op table,
 * scratch directories, whole-file reads, the CLI. */
#ifndef FLOWRL_TESTUTIL_H
#define FLOWRL_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "flowrl/backend.h"

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

/* The python3 that runs the tests' reward programs: $FLOWRL_PYTHON, else /usr/bin/python3
 * (a version-manager shim on PATH can cost 0.3 s a start), else python3 from PATH. */
static inline const char *fr_test_python(void)
{
    const char *env = getenv("FLOWRL_PYTHON");
    if (env && *env) return env;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* The python with gymnasium (a test dependency: ./configure --install-deps installs it from PyPI
 * into the peer venv .venv-peers/): $FLOWRL_GYM_PYTHON, else that venv's; fails the test with the
 * remedy when it cannot import gymnasium. */
static inline const char *fr_test_gym_python(void)
{
    static char py[1024];
    const char *env = getenv("FLOWRL_GYM_PYTHON");
    if (env && *env) snprintf(py, sizeof py, "%s", env);
    else snprintf(py, sizeof py, "%s/.venv-peers/bin/python", fr_test_src());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import gymnasium' >/dev/null 2>&1", py);
    ck_assert_msg(system(cmd) == 0, "%s cannot import gymnasium: run ./configure --install-deps (it installs "
                  "gymnasium from PyPI into .venv-peers), or set FLOWRL_GYM_PYTHON", py);
    return py;
}

/* The first python3 that imports torch (a test dependency: ./configure --install-deps installs
 * Debian's python3-torch): $FLOWRL_PYTHON, /usr/bin/python3, python3; NULL if none does. */
static inline const char *fr_test_torch_python(void)
{
    const char *env = getenv("FLOWRL_PYTHON");
    const char *const cands[] = {env, "/usr/bin/python3", "python3"};
    for (int i = 0; i < 3; i++) {
        if (!cands[i] || !*cands[i]) continue;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s -c 'import torch' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

/* A handle on backend `name` (fr_backend_open, asserted to open). */
static inline fr_backend fr_test_backend(const char *name, int fast, int threads)
{
    fr_backend be;
    ck_assert_msg(fr_backend_open(&be, name, fast, threads) == FR_OK, "backend %s: %s", name, fr_last_error());
    return be;
}

/* A handle on backend `name` when it can start here; one that cannot (cuda without a device)
 * prints "WHO: NAME NOT SUPPORTED here (why)" and gives 0, so a loop over fr_backend_names()
 * skips it. */
static inline int fr_test_backend_try(fr_backend *be, const char *who, const char *name, int threads)
{
    if (fr_backend_open(be, name, 0, threads) == FR_OK) return 1;
    printf("%s: %s NOT SUPPORTED here (%s)\n", who, name, fr_last_error());
    return 0;
}

/* The reference backend: one handle per test file, opened on first use. */
static inline fr_backend *fr_test_ref_be(void)
{
    static fr_backend be;
    if (!be.ops) be = fr_test_backend("ref", 0, 1);
    return &be;
}

/* A fresh scratch directory /tmp/flowrl-TAG-XXXXXX into buf (n >= 32 + strlen(tag)). */
static inline void fr_test_mkdtemp(char *buf, size_t n, const char *tag)
{
    int w = snprintf(buf, n, "/tmp/flowrl-%s-XXXXXX", tag);
    ck_assert_msg(w > 0 && (size_t)w < n, "scratch directory name too long");
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s failed", buf);
}

/* Removes a scratch directory and everything in it. */
static inline void fr_test_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The bytes of a file, NUL-terminated (malloc'd; *n its length without the NUL). */
static inline void *fr_test_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(fread(buf, 1, (size_t)len, f) == (size_t)len, "%s: short read", path);
    fclose(f);
    buf[len] = '\0';
    *n = (size_t)len;
    return buf;
}

/* Fails the test unless the files at paths a and b hold the same bytes. */
static inline void fr_test_assert_same_bytes(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    void *fa = fr_test_slurp(a, &na), *fb = fr_test_slurp(b, &nb);
    const int same = na == nb && memcmp(fa, fb, na) == 0;
    free(fa), free(fb);
    ck_assert_msg(same, "%s and %s differ", a, b);
}

/* Removes the plain files in a flat scratch directory and the directory; returns how many
 * files there were (a test that expects k files proves no temporary was left behind). */
static inline int fr_test_rmdir_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
        n++;
    }
    closedir(d);
    rmdir(dir);
    return n;
}

#endif
