/* flowrl golden gen|check|list: the golden-file suite (flowrl/golden.h, golden/README.md). */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/fast.h"
#include "flowrl/golden.h"
#include "flowrl/opt.h"

static void help(void)
{
    printf("Usage: flowrl golden gen [--force] [--dir DIR]\n"
           "       flowrl golden check --backend ref|opt|cuda [--fast] [--threads N] [--dir DIR]\n"
           "                           [--case PATTERN]\n"
           "       flowrl golden list [--case PATTERN]\n\n"
           "gen    regenerates every case file and MANIFEST in DIR from the ref backend; refuses\n"
           "       to overwrite an existing set unless --force. The committed set is written by\n"
           "       `" FR_GOLDEN_COMMAND "` from the source root.\n"
           "check  recomputes each case from its stored inputs with the backend and compares the\n"
           "       outputs: bit for bit (ref, and opt/cuda, whose contract is ref's bits), or\n"
           "       within each case's tolerance with --fast. Every tensor digest is also checked\n"
           "       against MANIFEST. One line per case:\n"
           "         OK                 the backend's own code matched\n"
           "         OK (ref fallback)  matched through the ref entry the backend did not override\n"
           "         OK (shared code)   matched, but the case (sampler, advantage, objective) runs\n"
           "                            core/ code that every backend shares\n"
           "         FAIL               with the max abs and ulp difference and what differs\n"
           "         NOT SUPPORTED      the backend/mode cannot run the case\n"
           "       then a count. Exit status 0 if nothing failed, 1 otherwise.\n"
           "list   the cases: name, kind (op = one op-table entry, shared = core/ code),\n"
           "       description.\n\n"
           "Options:\n"
           "  --dir DIR        the golden directory (default golden)\n"
           "  --case PATTERN   only cases whose name matches the shell pattern (e.g. 'op.gemm*')\n"
           "  --threads N      threads of the opt backend\n"
           "  -h, --help       this text\n");
}

/* The --fast table of a backend (flowrl/fast.h), with the vendor kernels forced on at every
 * shape (FR_FAST_ALWAYS): under the default rule the tiny golden shapes would all stay on
 * the canonical kernels and the tolerance check would compare nothing new. NULL (and why,
 * in *why) when the backend or this build has no fast mode. */
static const fr_ops *fast_table(const char *backend, char *why, size_t n)
{
    const fr_ops *ops = NULL;
    if (fr_backend_get_mode(backend, 1, &ops) != FR_OK) {
        snprintf(why, n, "%s", fr_last_error());
        return NULL;
    }
    fr_fast_set_policy(FR_FAST_ALWAYS);
    return ops;
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
    const fr_ops *ops = NULL, *ref = NULL;
    if (fr_backend_get(backend, &ops) != FR_OK) return fr_cli_error("golden check", "%s", fr_last_error());
    if (fr_backend_get("ref", &ref) != FR_OK) return fr_cli_error("golden check", "%s", fr_last_error());
    if (threads > 0) fr_opt_set_threads(threads);
    char why[512] = "";
    const fr_ops *fast_ops = fast ? fast_table(backend, why, sizeof why) : NULL;
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
           backend, fast ? (fast_ops ? "--fast (vendor kernels at every shape, per-case tolerances)"
                                  : "--fast (not available)") : "bitwise",
           strcmp(backend, "opt") == 0 ? fr_opt_get_threads() : 1, dir,
           fr_golden_manifest_version(m), n);
    for (size_t i = 0; fr_golden_manifest_unknown(m, i); i++)
        printf("note: MANIFEST lists case %s, which this flowrl does not know (stale set?)\n",
               fr_golden_manifest_unknown(m, i));

    int ok = 0, shared = 0, fallback = 0, fail = 0, unsup = 0;
    for (size_t i = 0; i < fr_golden_count(); i++) {
        const fr_golden_case *c = fr_golden_get(i);
        if (!match(pattern, c->name)) continue;
        const fr_ops *use = ops;
        if (fast) {
            /* shared code is the same in every mode: checked (with its zero tolerance) on ref */
            use = c->slot == FR_GOLDEN_SHARED ? ops : fast_ops;
            if (!use) {
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
    (void)ref;
    printf("golden check --backend %s%s: %d cases: %d OK (%d shared code, %d ref fallback), %d FAIL, "
           "%d NOT SUPPORTED\n", backend, fast ? " --fast" : "", n, ok, shared, fallback, fail, unsup);
    return fail ? 1 : 0;
}

int cmd_golden(int argc, char **argv)
{
    if (argc < 2 || fr_cli_wants_help(argc, argv)) {
        help();
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *dir = "golden", *backend = NULL, *pattern = NULL;
    int force = 0, fast = 0, threads = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--force") == 0 && strcmp(sub, "gen") == 0) force = 1;
        else if (strcmp(a, "--fast") == 0 && strcmp(sub, "check") == 0) fast = 1;
        else if (strcmp(a, "--dir") == 0 && has && strcmp(sub, "list") != 0) dir = argv[++i];
        else if (strcmp(a, "--backend") == 0 && has && strcmp(sub, "check") == 0) backend = argv[++i];
        else if (strcmp(a, "--case") == 0 && has && strcmp(sub, "gen") != 0) pattern = argv[++i];
        else if (strcmp(a, "--threads") == 0 && has && strcmp(sub, "check") == 0) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > FR_OPT_MAX_THREADS) {
                fprintf(stderr, "flowrl golden: --threads '%s', expected 1..%d\n", argv[i], FR_OPT_MAX_THREADS);
                return 2;
            }
            threads = (int)t;
        } else {
            fprintf(stderr, "flowrl golden %s: unknown or incomplete option '%s' (flowrl golden --help)\n", sub, a);
            return 2;
        }
    }
    if (strcmp(sub, "gen") == 0) return run_gen(dir, force);
    if (strcmp(sub, "list") == 0) return run_list(pattern);
    if (strcmp(sub, "check") == 0) {
        if (!backend) {
            fprintf(stderr, "flowrl golden check: --backend NAME is required (ref, opt, cuda)\n");
            return 2;
        }
        return run_check(dir, backend, fast, threads, pattern);
    }
    fprintf(stderr, "flowrl golden: unknown subcommand '%s' (gen, check, list)\n", sub);
    return 2;
}
