/* flowrl audit A B: are two runs bit-identical, and if not, where do they first diverge
 * (DESIGN.md §2; include/flowrl/runcompare.h). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/runcompare.h"

static void help(void)
{
    printf("Usage: flowrl audit RUN_A RUN_B [--prefix-ok]\n\n"
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
           "  2  usage error, or a run that cannot be read or whose audit log is malformed\n\n"
           "Options:\n"
           "  --prefix-ok  exit 0 also when one run is a prefix of the other\n"
           "  -h, --help   this text\n");
}

int cmd_audit(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *run[2] = {NULL, NULL};
    int n = 0, prefix_ok = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--prefix-ok") == 0) {
            prefix_ok = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "flowrl audit: unknown option '%s' (flowrl audit --help)\n", argv[i]);
            return 2;
        } else if (n == 2) {
            fprintf(stderr, "flowrl audit: two runs expected, got a third: '%s'\n", argv[i]);
            return 2;
        } else {
            run[n++] = argv[i];
        }
    }
    if (n != 2) {
        fprintf(stderr, "Usage: flowrl audit RUN_A RUN_B [--prefix-ok]   (flowrl audit --help)\n");
        return 2;
    }
    fr_runs_cmp c;
    if (fr_runs_compare(run[0], run[1], &c) != FR_OK) {
        fr_cli_error("audit", "%s", fr_last_error());
        fr_runs_cmp_free(&c);
        return 2;
    }
    printf("A: %s\nB: %s\n", run[0], run[1]);
    for (size_t i = 0; i < c.n_lines; i++) printf("%s\n", c.lines[i]);
    int rc = c.verdict == FR_RUNS_IDENTICAL || (c.verdict == FR_RUNS_PREFIX && prefix_ok) ? 0 : 1;
    fr_runs_cmp_free(&c);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fr_cli_error("audit", "writing to stdout failed");
        return 2;
    }
    return rc;
}
