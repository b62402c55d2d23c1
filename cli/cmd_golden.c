/* flowrl golden gen|check|list: the golden-file suite (flowrl/golden.h, golden/README.md). */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "flowrl/backend.h"
#include "flowrl/fast.h"
#include "flowrl/golden.h"
#include "flowrl/opt.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl golden gen [--force] [--dir DIR]\n"
           "       flowrl golden check --backend ref|opt|cuda-emu|cuda [--fast] [--threads N]\n"
           "                           [--dir DIR] [--case PATTERN]\n"
           "       flowrl golden list [--case PATTERN]\n\n"
           "gen    regenerates every case file and MANIFEST in DIR from the ref backend; refuses\n"
           "       to overwrite an existing set unless --force. The committed set is written by\n"
           "       `" FR_GOLDEN_COMMAND "` from the source root.\n"
           "check  recomputes each case from its stored inputs with the backend, in its memory\n"
           "       (inputs copied in, outputs copied out), and compares the outputs: bit for bit\n"
           "       (ref, and opt/cuda-emu/cuda, whose contract is ref's bits), or within each\n"
           "       case's tolerance with --fast. Every tensor digest is also checked against\n"
           "       MANIFEST. One line per case:\n"
           "         OK                 the backend's own code matched\n"
           "         OK (ref fallback)  matched through the ref entry the backend did not override\n"
           "         OK (shared code)   matched, but the case (advantages) runs core/ host code\n"
           "                            that every backend shares\n"
           "         FAIL               with the max abs and ulp difference and what differs\n"
           "         NOT SUPPORTED      the backend/mode cannot run the case\n"
           "       then a count (and, for a device backend, the copies to and from the device).\n"
           "       Exit status 0 if nothing failed, 1 otherwise.\n"
           "list   the cases: name, kind (op = one op-table entry, ops = many, shared = core/\n"
           "       host code), description.\n"
           "--backend is required by check; --force is gen's, --fast and --threads check's.\n");
}

/* Opens the --fast mode of a backend (flowrl/fast.h), with the vendor kernels forced on at
 * every shape (FR_FAST_ALWAYS): under the default rule the tiny golden shapes would all stay
 * on the canonical kernels and the tolerance check would compare nothing new. 0 (and why,
 * in *why) when the backend or this build has no fast mode. */
static int open_fast(fr_backend *fast, const char *backend, int threads, char *why, size_t n)
{
    if (fr_backend_open(fast, backend, 1, threads) != FR_OK) {
        snprintf(why, n, "%s", fr_last_error());
        return 0;
    }
    fr_fast_set_policy(FR_FAST_ALWAYS);
    return 1;
}

static int match(const char *pattern, const char *name)
{
    return !pattern || fnmatch(pattern, name, 0) == 0;
}

static int run_list(const char *pattern)
{
    int n = 0;
    for (size_t i = 0; i < fr_golden_count(); i++) {
        const fr_golden_case *c = fr_golden_get(i);
        if (!match(pattern, c->name)) continue;
        printf("%-28s %-6s %s\n", c->name, fr_golden_kind_name(c), c->what);
        n++;
    }
    if (!n) {
        fprintf(stderr, "flowrl golden: no case matches '%s'\n", pattern);
        return 2;
    }
    return 0;
}

static int run_gen(const char *dir, int force)
{
    if (fr_golden_gen(dir, force) != FR_OK) { /* the message starts "golden gen: " */
        fprintf(stderr, "flowrl %s\n", fr_last_error());
        return 1;
    }
    printf("golden gen: wrote %zu cases and %s/%s\n", fr_golden_count(), dir, FR_GOLDEN_MANIFEST);
    return 0;
}

static int run_check(const char *dir, const char *backend, int fast, int threads,
                     const char *pattern)
{
    fr_backend be, fast_be;
    if (fr_backend_open(&be, backend, 0, threads) != FR_OK) return fr_cli_error("golden check", "%s", fr_last_error());
    char why[512] = "";
    int have_fast = fast && open_fast(&fast_be, backend, threads, why, sizeof why);
    fr_golden_manifest *m;
    if (fr_golden_manifest_read(dir, &m) != FR_OK) return fr_cli_error("golden check", "%s", fr_last_error());

    int n = 0;
    for (size_t i = 0; i < fr_golden_count(); i++) n += match(pattern, fr_golden_get(i)->name);
    if (!n) {
        fr_golden_manifest_free(m);
        fprintf(stderr, "flowrl golden check: no case matches '%s'\n", pattern);
        return 2;
    }
    printf("golden check: backend %s, %s, threads %d, set %s (written by flowrl %s), %d cases\n",
           backend, fast ? (have_fast ? "--fast (vendor kernels at every shape, per-case tolerances)"
                                  : "--fast (not available)") : "bitwise",
           be.threads, dir,
           fr_golden_manifest_version(m), n);
    for (size_t i = 0; fr_golden_manifest_unknown(m, i); i++)
        printf("note: MANIFEST lists case %s, which this flowrl does not know (stale set?)\n",
               fr_golden_manifest_unknown(m, i));

    /* opt at N > 1 threads: the cases are too small to split under the work-per-thread
     * minimums, so split every op as far as N allows and check below that the N - 1
     * workers really ran (the bits must not depend on it). */
    int opt_threads = strcmp(backend, "opt") == 0 && !fast && be.threads > 1;
    if (opt_threads) fr_opt_set_split_all(1);
    int ok = 0, shared = 0, fallback = 0, fail = 0, unsup = 0;
    for (size_t i = 0; i < fr_golden_count(); i++) {
        const fr_golden_case *c = fr_golden_get(i);
        if (!match(pattern, c->name)) continue;
        fr_backend *use = &be;
        if (fast && c->slot != FR_GOLDEN_SHARED) {
            /* shared code is the same in every mode: checked (with its zero tolerance) on the
             * exact table */
            use = &fast_be;
            if (!have_fast) {
                printf("%-18s %s (--fast: %s)\n", "NOT SUPPORTED", c->name, why);
                unsup++;
                continue;
            }
        }
        fr_golden_result r;
        if (fr_golden_check_case(c, dir, m, use, fast ? FR_GOLDEN_TOLERANCE : FR_GOLDEN_BITWISE, &r) != FR_OK) {
            fr_golden_manifest_free(m);
            return fr_cli_error("golden check", "%s: %s", c->name, fr_last_error());
        }
        switch (r.verdict) {
        case FR_GOLDEN_OK: printf("%-18s %s\n", "OK", c->name); ok++; break;
        case FR_GOLDEN_OK_SHARED: printf("%-18s %s\n", "OK (shared code)", c->name); ok++; shared++; break;
        case FR_GOLDEN_OK_FALLBACK: printf("%-18s %s\n", "OK (ref fallback)", c->name); ok++; fallback++; break;
        case FR_GOLDEN_NOT_SUPPORTED: printf("%-18s %s\n", "NOT SUPPORTED", c->name); unsup++; break;
        default: printf("%-18s %s: %s\n", "FAIL", c->name, r.detail); fail++; break;
        }
    }
    fr_golden_manifest_free(m);
    char copies[160] = "";
    if (be.device) { /* every case crossed to the device and back: how much */
        fr_copy_stats cs = be.copies;
        if (have_fast) {
            cs.h2d_calls += fast_be.copies.h2d_calls, cs.h2d_bytes += fast_be.copies.h2d_bytes;
            cs.d2h_calls += fast_be.copies.d2h_calls, cs.d2h_bytes += fast_be.copies.d2h_bytes;
        }
        snprintf(copies, sizeof copies, "; copies: h2d %llu (%llu bytes), d2h %llu (%llu bytes)",
                 (unsigned long long)cs.h2d_calls, (unsigned long long)cs.h2d_bytes,
                 (unsigned long long)cs.d2h_calls, (unsigned long long)cs.d2h_bytes);
    }
    if (opt_threads) {
        fr_opt_set_split_all(0);
        int used = fr_opt_workers_used();
        if (used < be.threads - 1) {
            printf("%-18s threads: %d asked, but only %d worker thread(s) ran a part\n", "FAIL", be.threads, used);
            fail++;
        }
        snprintf(copies, sizeof copies, "; %d worker thread%s + the caller ran parts", used, used == 1 ? "" : "s");
    }
    printf("golden check --backend %s%s: %d cases: %d OK (%d shared code, %d ref fallback), %d FAIL, "
           "%d NOT SUPPORTED%s\n", backend, fast ? " --fast" : "", n, ok, shared, fallback, fail, unsup, copies);
    fr_backend_close(&be);
    if (have_fast) fr_backend_close(&fast_be);
    return fail ? 1 : 0;
}

/* check without --dir: the set next to the binary -- BIN/../golden (a build tree, BUILD/flowrl
 * beside golden/ in the source root), then BIN/../share/flowrl/golden (PREFIX/bin/flowrl after
 * `make install`) -- else ./golden. */
static void find_golden_dir(char *dir, size_t n)
{
    static const char *const k_rel[] = {"../golden", "../share/flowrl/golden"};
    char exe[4096], cand[4200], manifest[4300];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        for (size_t i = 0; i < sizeof k_rel / sizeof k_rel[0]; i++) {
            snprintf(cand, sizeof cand, "%s/%s", exe, k_rel[i]);
            snprintf(manifest, sizeof manifest, "%s/%s", cand, FR_GOLDEN_MANIFEST);
            char *real = access(manifest, R_OK) == 0 ? realpath(cand, NULL) : NULL;
            if (real && strlen(real) < n) {
                snprintf(dir, n, "%s", real);
                free(real);
                return;
            }
            free(real);
        }
    }
    snprintf(dir, n, "golden");
}

typedef struct {
    char dir[FR_OPT_PATH_MAX], pattern[256];
    int force;
} golden_opts;

static const fr_opt k_rows[] = {
    FR_OPT_ROW_(golden_opts, dir, "dir", FR_OPT_STR, "golden", 0, 0, NULL,
                "the golden directory (gen, check; check's default: the set next to the binary, "
                "BIN/../golden or BIN/../share/flowrl/golden, else ./golden)",
                FR_OPT_PATH, NULL, "DIR"),
    FR_OPT_ROW_(golden_opts, pattern, "case", FR_OPT_STR, "", 0, 0, NULL,
                "only cases whose name matches the shell pattern, e.g. 'op.gemm*' (check, list)", 0, NULL, "PATTERN"),
    FR_OPT_BOOL(golden_opts, force, "force", "false", "gen: overwrite an existing set", 0),
};

/* An option given to a subcommand it does not apply to is a usage error. */
static int misplaced(const fr_opts *o, const fr_opts_seen *seen, const char *sub, const char *key, const char *own)
{
    if (!fr_opts_seen_key(o, seen, key) || strstr(own, sub)) return 0;
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", key);
    return fr_cli_usage("golden", "%s applies to golden %s, not %s", flag, own, sub);
}

int cmd_golden(int argc, char **argv)
{
    golden_opts go;
    fr_backend_opts b;
    fr_opts o = {.cmd = "golden", .s = {&go, &b}};
    fr_opts_add(&o, "Options", k_rows, (int)(sizeof k_rows / sizeof k_rows[0]), 0);
    fr_opts_add(&o, "Backend (check)", fr_backend_rows, fr_backend_nrows, 1);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("golden", FR_ERR_IO);
    const char *sub = NULL;
    int n_pos = 0;
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, &sub, 1, &n_pos, &seen);
    if (rc >= 0) return rc;
    if (!n_pos) return fr_cli_usage("golden", "which: gen, check or list");
    if (strcmp(sub, "gen") != 0 && strcmp(sub, "check") != 0 && strcmp(sub, "list") != 0)
        return fr_cli_usage("golden", "unknown subcommand '%s' (gen, check, list)", sub);
    if ((rc = misplaced(&o, &seen, sub, "force", "gen")) || (rc = misplaced(&o, &seen, sub, "fast", "check")) ||
        (rc = misplaced(&o, &seen, sub, "threads", "check")) || (rc = misplaced(&o, &seen, sub, "backend", "check")) ||
        (rc = misplaced(&o, &seen, sub, "dir", "gen check")) || (rc = misplaced(&o, &seen, sub, "case", "check list")))
        return rc;
    const char *pattern = go.pattern[0] ? go.pattern : NULL;
    if (strcmp(sub, "gen") == 0) return run_gen(go.dir, go.force);
    if (strcmp(sub, "list") == 0) return run_list(pattern);
    if (!b.backend[0]) return fr_cli_usage("golden check", "--backend NAME is required (ref, opt, cuda-emu, cuda)");
    if (!fr_opts_seen_key(&o, &seen, "dir")) find_golden_dir(go.dir, sizeof go.dir);
    return run_check(go.dir, b.backend, b.fast, (int)b.threads, pattern);
}
