/* Suite `golden`: the committed golden set (golden/, flowrl/golden.h).
 *  - every committed case checks OK, bitwise, with ref, with opt (1 to 3 threads) and with
 *    cuda-emu (every case in its guarded device memory, no case through a ref entry), and
 *    the set is complete (a file per registry case, no unknown case in MANIFEST);
 *  - `flowrl golden gen` into a temp dir reproduces the committed files byte for byte
 *    (generation is deterministic and the committed set is current);
 *  - the check can fail: one flipped low bit in an output is a FAIL with max ulp 1 and exit
 *    status 1; a flipped bit in an input (even one the computation does not read) is a FAIL
 *    naming the MANIFEST digest mismatch;
 *  - gen refuses to overwrite a set without --force;
 *  - the element comparison: bitwise vs tolerance, NaN never passes;
 *  - the whole-epoch case (epoch.flow_grpo): it holds every record its run's audit.log
 *    names (the computation checks that itself); a flipped low bit of an optimizer-state
 *    output fails with max ulp 1; a flipped input parameter bit moves recomputed outputs,
 *    not only a digest; --fast (vendor kernels forced) differs from ref's bits yet passes
 *    the case's tolerance;
 *  - examples/check_sde_step.py (numpy) passes on the committed sde case and fails on a
 *    corrupted one, when a python3 with numpy is installed (skipped with a note otherwise). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flowrl/fast.h"
#include "flowrl/golden.h"
#include "flowrl/opt.h"
#include "tests/suites.h"
#include "tests/testutil.h"

static char g_out[1 << 17];

static void golden_dir(char *buf, size_t n) { snprintf(buf, n, "%s/golden", fr_test_src()); }

static char *tmpdir(void)
{
    static char buf[512];
    const char *t = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/flowrl-golden-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
    return buf;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
    closedir(d);
    rmdir(dir);
}

static void spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Copies the committed set into a fresh temp dir. */
static char *copy_set(void)
{
    char src[1024], from[1400], to[1400];
    golden_dir(src, sizeof src);
    char *dst = tmpdir();
    DIR *d = opendir(src);
    ck_assert_msg(d != NULL, "no %s", src);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strstr(e->d_name, "README")) continue;
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        size_t n;
        unsigned char *b = fr_test_slurp(from, &n);
        spit(to, b, n);
        free(b);
    }
    closedir(d);
    return dst;
}

/* Flips bit `bit` of element `idx` of tensor `name` in dir/case.safetensors, in place (the
 * rest of the file keeps its bytes: writing is deterministic). */
static void flip_bit(const char *dir, const char *casename, const char *name, int64_t idx, int bit)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, casename);
    fr_st_file f;
    ck_assert_msg(fr_st_read(&f, path) == FR_OK, "%s", fr_last_error());
    const fr_tensor *t = fr_st_get(&f, name);
    ck_assert_msg(t != NULL, "%s has no %s", path, name);
    ck_assert(idx < fr_tensor_numel(t));
    unsigned char *p = (unsigned char *)t->data + (size_t)idx * fr_dtype_size(t->dtype);
    p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    ck_assert_msg(fr_st_write(&f, path) == FR_OK, "%s", fr_last_error());
    fr_st_free(&f);
}

static fr_golden_manifest *manifest(const char *dir)
{
    fr_golden_manifest *m;
    ck_assert_msg(fr_golden_manifest_read(dir, &m) == FR_OK, "%s", fr_last_error());
    return m;
}

START_TEST(test_committed_set_checks)
{
    char dir[1024];
    golden_dir(dir, sizeof dir);
    fr_golden_manifest *m = manifest(dir);
    ck_assert_msg(fr_golden_manifest_unknown(m, 0) == NULL, "MANIFEST lists unknown case %s",
                  fr_golden_manifest_unknown(m, 0));
    ck_assert_int_ge(fr_golden_count(), 50);
    static const char *const backends[] = {"ref", "opt", "opt", "opt", "cuda-emu"};
    static const int threads[] = {0, 1, 2, 3, 0};
    for (int b = 0; b < 5; b++) {
        fr_backend be = fr_test_backend(backends[b], 0, threads[b]);
        for (size_t i = 0; i < fr_golden_count(); i++) {
            const fr_golden_case *c = fr_golden_get(i);
            fr_golden_result r;
            ck_assert(fr_golden_check_case(c, dir, m, &be, FR_GOLDEN_BITWISE, &r) == FR_OK);
            ck_assert_msg(r.verdict <= FR_GOLDEN_OK_FALLBACK, "%s --backend %s (threads %d): %s",
                          c->name, backends[b], threads[b], r.detail);
            ck_assert_msg(r.max_ulp == 0 && r.max_abs == 0.0, "%s: nonzero difference on OK", c->name);
            if (b == 0) ck_assert_int_eq(r.verdict, FR_GOLDEN_OK);
            else if (c->slot == FR_GOLDEN_SHARED) ck_assert_int_eq(r.verdict, FR_GOLDEN_OK_SHARED);
            else if (be.device) ck_assert_msg(r.verdict == FR_GOLDEN_OK, "%s --backend %s: not its own code", c->name,
                                              backends[b]);
            for (size_t j = 0; j < i; j++) /* names unique */
                ck_assert_str_ne(fr_golden_get(j)->name, c->name);
        }
        if (be.device) /* the cases crossed to the device and back */
            ck_assert(be.copies.h2d_calls > 0 && be.copies.d2h_calls > 0);
    }
    fr_opt_set_threads(0);
    fr_golden_manifest_free(m);
    /* the CLI: verdict in the exit status, one line per case, final count */
    char args[1400];
    snprintf(args, sizeof args, "golden check --backend opt --threads 3 --dir %s", dir);
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "0 FAIL, 0 NOT SUPPORTED") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "OK                 op.gemm_nn\n") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "OK                 sampler.sde\n") != NULL, "%s", g_out); /* opt: its own row-parallel sampler_step */
    ck_assert_msg(strstr(g_out, "OK (shared code)   adv.batch\n") != NULL, "%s", g_out);
    /* --threads 3 really ran the cases on 3 threads (the golden shapes are small) */
    ck_assert_msg(strstr(g_out, "; 2 worker threads + the caller ran parts\n") != NULL, "%s", g_out);
    /* without --dir: the set next to the binary (FLOWRL_BIN is BUILD/flowrl; from any cwd) */
    rc = fr_test_run_cli("golden check --backend ref --case 'op.gemm*'", g_out, sizeof g_out);
    ck_assert_msg(rc == 0 && strstr(g_out, "/golden (written by flowrl "), "exit %d: %s", rc, g_out);
    /* a device backend: the copies it made on the verdict line */
    snprintf(args, sizeof args, "golden check --backend cuda-emu --dir %s --case 'sampler.*'", dir);
    rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "OK                 sampler.sde\n") != NULL, "%s", g_out);
    ck_assert_msg(strstr(g_out, "golden check --backend cuda-emu: 7 cases: 7 OK (0 shared code, 0 ref fallback), "
                                "0 FAIL, 0 NOT SUPPORTED; copies: h2d ") != NULL, "%s", g_out);
}
END_TEST

START_TEST(test_regenerate_is_identical)
{
    char dir[1024], a[1400], b[1400];
    golden_dir(dir, sizeof dir);
    char *tmp = tmpdir();
    char args[1400];
    snprintf(args, sizeof args, "golden gen --dir %s", tmp);
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    for (size_t i = 0; i <= fr_golden_count(); i++) {
        const char *name = i < fr_golden_count() ? fr_golden_get(i)->name : NULL;
        if (name) {
            snprintf(a, sizeof a, "%s/%s.safetensors", dir, name);
            snprintf(b, sizeof b, "%s/%s.safetensors", tmp, name);
        } else {
            snprintf(a, sizeof a, "%s/MANIFEST", dir);
            snprintf(b, sizeof b, "%s/MANIFEST", tmp);
        }
        size_t na, nb;
        unsigned char *x = fr_test_slurp(a, &na), *y = fr_test_slurp(b, &nb);
        ck_assert_msg(na == nb && memcmp(x, y, na) == 0,
                      "%s differs from a fresh `flowrl golden gen` (regenerate the set with "
                      "`" FR_GOLDEN_COMMAND "` if the change is intended)", a);
        free(x);
        free(y);
    }
    rm_tree(tmp);
}
END_TEST

START_TEST(test_flipped_output_bit_fails)
{
    /* bit 0 of an F32: one ulp, in an op case and in a shared-code case */
    static const char *const cases[][2] = {{"op.gemm_nn", "out.C"}, {"sampler.sde", "out.logp"}};
    for (int k = 0; k < 2; k++) {
        char *tmp = copy_set();
        flip_bit(tmp, cases[k][0], cases[k][1], 2, 0);
        char args[1400];
        snprintf(args, sizeof args, "golden check --backend ref --dir %s", tmp);
        int rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 1, "exit %d, want 1: %s", rc, g_out);
        char want[200];
        snprintf(want, sizeof want, "FAIL               %s: %s: max abs", cases[k][0], cases[k][1]);
        ck_assert_msg(strstr(g_out, want) != NULL, "no '%s' in: %s", want, g_out);
        ck_assert_msg(strstr(g_out, "max ulp 1 at [2]") != NULL, "%s", g_out);
        ck_assert_msg(strstr(g_out, " 1 FAIL,") != NULL, "%s", g_out);
        /* the same through the library, with the measured difference */
        fr_golden_manifest *m = manifest(tmp);
        fr_golden_result r;
        ck_assert(fr_golden_check_case(fr_golden_find(cases[k][0]), tmp, m, fr_test_ref_be(), FR_GOLDEN_BITWISE, &r) ==
                  FR_OK);
        ck_assert_int_eq(r.verdict, FR_GOLDEN_FAIL);
        ck_assert_int_eq(r.max_ulp, 1);
        ck_assert(r.max_abs > 0.0);
        fr_golden_manifest_free(m);
        rm_tree(tmp);
    }
}
END_TEST

START_TEST(test_flipped_input_bit_fails)
{
    /* in.x of the sde step moves outputs; in.xi of obj.flow_grpo is a generation input the
     * computation never reads: only the MANIFEST digest can catch it */
    static const char *const cases[][2] = {{"sampler.sde", "in.x"}, {"obj.flow_grpo", "in.xi"},
                                           {"op.adamw", "in.lr"}};
    for (int k = 0; k < 3; k++) {
        char *tmp = copy_set();
        flip_bit(tmp, cases[k][0], cases[k][1], 0, 20);
        char args[1400];
        snprintf(args, sizeof args, "golden check --backend opt --dir %s --case '%s'", tmp, cases[k][0]);
        int rc = fr_test_run_cli(args, g_out, sizeof g_out);
        ck_assert_msg(rc == 1, "%s %s: exit %d, want 1: %s", cases[k][0], cases[k][1], rc, g_out);
        char want[200];
        snprintf(want, sizeof want, "digest mismatch vs MANIFEST: %s", cases[k][1]);
        ck_assert_msg(strstr(g_out, want) != NULL, "no '%s' in: %s", want, g_out);
        ck_assert_msg(strstr(g_out, "1 cases: 0 OK") != NULL, "%s", g_out);
        rm_tree(tmp);
    }
}
END_TEST

START_TEST(test_gen_refuses_overwrite)
{
    char *tmp = copy_set(), path[1400], args[1400];
    snprintf(path, sizeof path, "%s/MANIFEST", tmp);
    spit(path, "not a manifest\n", 15);
    snprintf(args, sizeof args, "golden gen --dir %s", tmp);
    int rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, g_out);
    ck_assert_msg(strstr(g_out, "--force") != NULL, "%s", g_out);
    size_t n;
    unsigned char *b = fr_test_slurp(path, &n);
    ck_assert(n == 15 && memcmp(b, "not a manifest\n", 15) == 0); /* untouched */
    free(b);
    /* a case file alone also blocks */
    remove(path);
    rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 1 && strstr(g_out, ".safetensors exists") != NULL, "exit %d: %s", rc, g_out);
    snprintf(args, sizeof args, "golden gen --force --dir %s", tmp);
    rc = fr_test_run_cli(args, g_out, sizeof g_out);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, g_out);
    snprintf(args, sizeof args, "golden check --backend ref --dir %s", tmp);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 0);
    /* usage errors */
    ck_assert_int_eq(fr_test_run_cli("golden check --dir /nonexistent", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("golden check --backend ref --case 'no.such*'", g_out, sizeof g_out), 2);
    ck_assert_int_eq(fr_test_run_cli("golden frobnicate", g_out, sizeof g_out), 2);
    snprintf(args, sizeof args, "golden check --backend nosuch --dir %s", tmp);
    ck_assert_int_eq(fr_test_run_cli(args, g_out, sizeof g_out), 1);
    rm_tree(tmp);
}
END_TEST

START_TEST(test_compare_modes)
{
    float want[4] = {1.0f, -2.0f, 0.0f, 3.0f}, got[4];
    int64_t sh[1] = {4};
    fr_tensor w = fr_tensor_f32(want, 1, sh), g = fr_tensor_f32(got, 1, sh);
    fr_golden_tol tol = {0.0f, 2.4e-7f};
    double ma;
    int64_t mu, worst;
    memcpy(got, want, sizeof got);
    ck_assert(fr_golden_compare(&g, &w, FR_GOLDEN_BITWISE, tol, &ma, &mu, &worst));
    ck_assert(mu == 0 && worst == -1);
    got[1] = nextafterf(-2.0f, -3.0f); /* one ulp */
    ck_assert(!fr_golden_compare(&g, &w, FR_GOLDEN_BITWISE, tol, &ma, &mu, &worst));
    ck_assert(mu == 1 && worst == 1 && ma > 0.0);
    ck_assert(fr_golden_compare(&g, &w, FR_GOLDEN_TOLERANCE, tol, &ma, &mu, &worst));
    got[2] = -0.0f; /* the sign of zero is a bit: not bitwise equal, within any tolerance */
    ck_assert(!fr_golden_compare(&g, &w, FR_GOLDEN_BITWISE, tol, &ma, &mu, &worst));
    ck_assert(fr_golden_compare(&g, &w, FR_GOLDEN_TOLERANCE, tol, &ma, &mu, &worst));
    got[3] = NAN;
    ck_assert(!fr_golden_compare(&g, &w, FR_GOLDEN_TOLERANCE, (fr_golden_tol){INFINITY, INFINITY}, &ma, &mu, &worst));
    ck_assert(mu == INT64_MAX && worst == 3);
    fr_tensor g3 = fr_tensor_f32(got, 1, (int64_t[]){3});
    ck_assert(!fr_golden_compare(&g3, &w, FR_GOLDEN_TOLERANCE, tol, &ma, &mu, &worst));
}
END_TEST

static fr_golden_result check_one(const char *dir, const char *casename, fr_backend *be, fr_golden_mode mode)
{
    fr_golden_manifest *m = manifest(dir);
    fr_golden_result r;
    const fr_golden_case *c = fr_golden_find(casename);
    ck_assert_msg(c != NULL, "no case %s", casename);
    ck_assert(fr_golden_check_case(c, dir, m, be, mode, &r) == FR_OK);
    fr_golden_manifest_free(m);
    return r;
}

START_TEST(test_epoch_case)
{
    const fr_golden_case *c = fr_golden_find("epoch.flow_grpo");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(fr_golden_kind_name(c), "ops");
    fr_backend *ref = fr_test_ref_be();

    /* one ulp of the second moment of one weight after the epoch */
    char *tmp = copy_set();
    flip_bit(tmp, "epoch.flow_grpo", "out.optim.v.out.weight", 2, 0);
    fr_golden_result r = check_one(tmp, "epoch.flow_grpo", ref, FR_GOLDEN_BITWISE);
    ck_assert_int_eq(r.verdict, FR_GOLDEN_FAIL);
    ck_assert_msg(r.max_ulp == 1 && strstr(r.detail, "out.optim.v.out.weight: max abs") != NULL, "%s", r.detail);
    rm_tree(tmp);

    /* an input weight: the recomputed epoch moves (rollout, gradients, parameters) */
    tmp = copy_set();
    flip_bit(tmp, "epoch.flow_grpo", "in.blocks.0.fc1.weight", 0, 20);
    r = check_one(tmp, "epoch.flow_grpo", ref, FR_GOLDEN_BITWISE);
    ck_assert_int_eq(r.verdict, FR_GOLDEN_FAIL);
    ck_assert_msg(strstr(r.detail, "out.traj: max abs") != NULL, "%s", r.detail);
    rm_tree(tmp);

    /* --fast with every vendor kernel forced: other bits than ref, within the tolerance */
    fr_backend fast;
    if (fr_backend_open(&fast, "opt", 1, 0) != FR_OK) {
        printf("golden: no --fast table in this build (%s): epoch.flow_grpo --fast NOT tested\n", fr_last_error());
        return;
    }
    char dir[1024];
    golden_dir(dir, sizeof dir);
    fr_fast_policy p = fr_fast_get_policy();
    fr_fast_set_policy(FR_FAST_ALWAYS);
    for (int th = 1; th <= 3; th++) {
        fast = fr_test_backend("opt", 1, th);
        r = check_one(dir, "epoch.flow_grpo", &fast, FR_GOLDEN_TOLERANCE);
        ck_assert_msg(r.verdict == FR_GOLDEN_OK, "--fast, %d threads: %s", th, r.detail);
        ck_assert_msg(r.max_abs > 0.0 && r.max_abs < 1e-5, "--fast, %d threads: max abs %g (0: the vendor kernels "
                      "ran nowhere, the tolerance was not exercised)", th, r.max_abs);
        r = check_one(dir, "epoch.flow_grpo", &fast, FR_GOLDEN_BITWISE);
        ck_assert_int_eq(r.verdict, FR_GOLDEN_FAIL);
    }
    fr_opt_set_threads(0);
    fr_fast_set_policy(p);
}
END_TEST

/* A python3 that imports numpy ("python3" first, then Debian's /usr/bin/python3). */
static const char *numpy_python(void)
{
    static const char *const cands[] = {"python3", "/usr/bin/python3"};
    for (int i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

static int run_sh(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = fread(out, 1, n - 1, p);
    out[used] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_numpy_example)
{
    const char *py = numpy_python();
    if (!py) {
        printf("golden: numpy not found for python3 or /usr/bin/python3: examples/check_sde_step.py "
               "NOT tested (apt-get install python3-numpy)\n");
        return;
    }
    char cmd[2048], dir[1024];
    golden_dir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "%s %s/examples/check_sde_step.py %s/sampler.sde.safetensors 2>&1", py,
             fr_test_src(), dir);
    int rc = run_sh(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0 && strstr(g_out, "PASS") != NULL, "exit %d: %s", rc, g_out);
    /* the σ == 1 step too */
    snprintf(cmd, sizeof cmd, "%s %s/examples/check_sde_step.py %s/sampler.sde_sigma1.safetensors 2>&1",
             py, fr_test_src(), dir);
    rc = run_sh(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 0 && strstr(g_out, "PASS") != NULL, "exit %d: %s", rc, g_out);
    /* it can fail: an exponent bit of one mean element */
    char *tmp = copy_set();
    flip_bit(tmp, "sampler.sde", "out.mean", 5, 27);
    snprintf(cmd, sizeof cmd, "%s %s/examples/check_sde_step.py %s/sampler.sde.safetensors 2>&1", py,
             fr_test_src(), tmp);
    rc = run_sh(cmd, g_out, sizeof g_out);
    ck_assert_msg(rc == 1 && strstr(g_out, "FAIL") != NULL, "exit %d: %s", rc, g_out);
    rm_tree(tmp);
}
END_TEST

Suite *suite_golden(void)
{
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_committed_set_checks);
    tcase_add_test(tc, test_regenerate_is_identical);
    tcase_add_test(tc, test_flipped_output_bit_fails);
    tcase_add_test(tc, test_flipped_input_bit_fails);
    tcase_add_test(tc, test_gen_refuses_overwrite);
    tcase_add_test(tc, test_compare_modes);
    tcase_add_test(tc, test_epoch_case);
    tcase_add_test(tc, test_numpy_example);
    suite_add_tcase(s, tc);
    return s;
}
