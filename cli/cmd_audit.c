/* flowrl audit A B: are two runs bit-identical, and if not, where do they first diverge
 * (docs/design.md §2; include/flowrl/runcompare.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/runcompare.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: flowrl audit RUN_A RUN_B [--prefix-ok]\n\n"
           "Compares the audit logs of two runs step by step. RUN is a run directory, a run\n"
           "archive made by `flowrl pack` (read in place) or an audit.log file. Prints\n"
           "  identical through step N (S steps, R records)\n"
           "or the first step and record (tensor or scalar) that differ, with both digests;\n"
           "when both runs keep checkpoints/step-N.safetensors holding that tensor (scalars:\n"
           "always, from the exact values in the logs) also the number of differing elements,\n"
           "the first differing index and the max abs and max ulp differences. Lines starting\n"
           "with 'note:' report environment differences, resumes and incomplete last steps\n"
           "(a run killed mid-step); those are never compared.\n\n"
           "Exit status:\n"
           "  0  identical: the same complete steps, every record equal\n"
           "  1  the runs differ, or one run is shorter (equal as far as it goes: the output\n"
           "     says 'identical through step N' and which run continues); see --prefix-ok\n"
           "  2  usage error, or a run that cannot be read or whose audit log is malformed\n");
}

typedef struct {
    int prefix_ok;
} audit_opts;

static const fr_opt k_rows[] = {
    FR_OPT_BOOL(audit_opts, prefix_ok, "prefix_ok", "false", "exit 0 also when one run is a prefix of the other", 0),
};

int cmd_audit(int argc, char **argv)
{
    audit_opts ao;
    fr_opts o = {.cmd = "audit", .s = {&ao}};
    fr_opts_add(&o, "Options", k_rows, 1, 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("audit", FR_ERR_IO);
    const char *run[2] = {NULL, NULL};
    int n = 0;
    int rc = fr_cli_opts(&o, argc, argv, usage, run, 2, &n, NULL);
    if (rc >= 0) return rc;
    if (n != 2) return fr_cli_usage("audit", "two runs expected: RUN_A RUN_B");
    const int prefix_ok = ao.prefix_ok;
    fr_runs_cmp c;
    if (fr_runs_compare(run[0], run[1], &c) != FR_OK) {
        fr_cli_error("audit", "%s", fr_last_error());
        fr_runs_cmp_free(&c);
        return 2;
    }
    printf("A: %s\nB: %s\n", run[0], run[1]);
    for (size_t i = 0; i < c.n_lines; i++) printf("%s\n", c.lines[i]);
    rc = c.verdict == FR_RUNS_IDENTICAL || (c.verdict == FR_RUNS_PREFIX && prefix_ok) ? 0 : 1;
    fr_runs_cmp_free(&c);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fr_cli_error("audit", "writing to stdout failed");
        return 2;
    }
    return rc;
}
