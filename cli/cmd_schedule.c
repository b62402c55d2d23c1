/* flowrl schedule: print a σ grid (spec/samplers.md §1.2, §1.3), one value per line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/schedule.h"

/* Above this a grid is no longer a sampler schedule but a typo. */
#define MAX_STEPS 100000

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl schedule --grid diffusers|linear --steps N [--shift S]\n\n"
            "Prints the N + 1 values sigma_0 .. sigma_N of a sampler grid (sigma = 1 is noise,\n"
            "the last value is 0), one per line (%%.9g: the exact float32 value).\n"
            "  --grid diffusers  Flow-GRPO's diffusers double-shift grid (spec/samplers.md 1.2):\n"
            "                    s(linspace(1000, 1000 s(0.001), N)/1000), then 0\n"
            "  --grid linear     s(linspace(1, 0, N + 1)) of MixGRPO, DanceGRPO, BranchGRPO,\n"
            "                    G2RPO (spec/samplers.md 1.3)\n"
            "  --steps N         number of sampler steps, 1 .. %d\n"
            "  --shift S         shift of s(u) = S u / (1 + (S - 1) u), default 3\n"
            "Example: flowrl schedule --grid diffusers --steps 10\n",
            MAX_STEPS);
}

int cmd_schedule(int argc, char **argv)
{
    if (fr_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *grid = NULL, *steps_s = NULL, *shift_s = NULL;
    for (int i = 1; i < argc; i++) {
        const char **target = strcmp(argv[i], "--grid") == 0    ? &grid
                              : strcmp(argv[i], "--steps") == 0 ? &steps_s
                              : strcmp(argv[i], "--shift") == 0 ? &shift_s
                                                                : NULL;
        if (!target) {
            fr_cli_error("schedule", "unknown option '%s' (flowrl schedule --help)", argv[i]);
            return 2;
        }
        if (i + 1 >= argc) {
            fr_cli_error("schedule", "%s needs a value", argv[i]);
            return 2;
        }
        *target = argv[++i];
    }
    if (!grid || !steps_s) {
        fr_cli_error("schedule", "--grid and --steps are required (flowrl schedule --help)");
        return 2;
    }
    int diffusers = strcmp(grid, "diffusers") == 0;
    if (!diffusers && strcmp(grid, "linear") != 0) {
        fr_cli_error("schedule", "unknown grid '%s' (diffusers or linear)", grid);
        return 2;
    }
    char *end;
    errno = 0;
    long steps = strtol(steps_s, &end, 10);
    if (end == steps_s || *end != '\0' || errno != 0 || steps < 1 || steps > MAX_STEPS) {
        fr_cli_error("schedule", "--steps '%s': expected an integer in 1 .. %d", steps_s, MAX_STEPS);
        return 2;
    }
    double shift = FR_DEFAULT_SHIFT;
    if (shift_s) {
        errno = 0;
        shift = strtod(shift_s, &end);
        if (end == shift_s || *end != '\0' || errno != 0 || !(shift > 0.0 && shift <= 1e6)) {
            fr_cli_error("schedule", "--shift '%s': expected a number in (0, 1e6]", shift_s);
            return 2;
        }
    }
    float *sigmas = malloc((size_t)(steps + 1) * sizeof *sigmas);
    if (!sigmas) return fr_cli_error("schedule", "out of memory for %ld steps", steps);
    fr_status st = diffusers ? fr_sigmas_diffusers(steps, shift, sigmas) : fr_sigmas_linspace(steps, shift, sigmas);
    if (st != FR_OK) {
        free(sigmas);
        return fr_cli_error("schedule", "%s", fr_last_error());
    }
    for (long i = 0; i <= steps; i++) printf("%.9g\n", (double)sigmas[i]);
    free(sigmas);
    if (fflush(stdout) != 0 || ferror(stdout)) return fr_cli_error("schedule", "write error on stdout");
    return 0;
}
