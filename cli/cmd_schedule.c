/* flowrl schedule: print a σ grid (docs/algorithms/samplers.md §1.2, §1.3), one value per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/schedule.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: flowrl schedule --grid diffusers|linear --num-steps N [--shift S]\n\n"
            "Prints the N + 1 values sigma_0 .. sigma_N of a sampler grid (sigma = 1 is noise,\n"
            "the last value is 0), one per line (%%.9g: the exact float32 value).\n"
            "  --grid diffusers  Flow-GRPO's diffusers double-shift grid (docs/algorithms/samplers.md §1.2):\n"
            "                    s(linspace(1000, 1000 s(0.001), N)/1000), then 0\n"
            "  --grid linear     s(linspace(1, 0, N + 1)) of MixGRPO, DanceGRPO, BranchGRPO,\n"
            "                    G2RPO (docs/algorithms/samplers.md §1.3)\n"
            "--grid and --num-steps are required.\n"
            "Example: flowrl schedule --grid diffusers --num-steps 10\n");
}

int cmd_schedule(int argc, char **argv)
{
    fr_sampling_opts so;
    fr_opts o = {.cmd = "schedule", .s = {&so}};
    fr_opts_add(&o, "Grid", fr_sampling_rows, fr_sampling_nrows_grid, 0);
    if (fr_opts_defaults(&o) != FR_OK) return fr_cli_status("schedule", FR_ERR_IO);
    fr_opts_seen seen;
    int rc = fr_cli_opts(&o, argc, argv, usage, NULL, 0, NULL, &seen);
    if (rc >= 0) return rc;
    if (!fr_opts_seen_key(&o, &seen, "grid") || !fr_opts_seen_key(&o, &seen, "num_steps"))
        return fr_cli_usage("schedule", "--grid and --num-steps are required");
    const int64_t steps = so.num_steps;
    float *sigmas = fr_malloc((size_t)(steps + 1) * sizeof *sigmas);
    if (!sigmas) return fr_cli_error("schedule", "%s", fr_last_error());
    fr_status st = so.grid == FR_GRID_DIFFUSERS ? fr_sigmas_diffusers(steps, so.shift, sigmas)
                                                : fr_sigmas_linspace(steps, so.shift, sigmas);
    if (st != FR_OK) {
        free(sigmas);
        return fr_cli_error("schedule", "%s", fr_last_error());
    }
    for (int64_t i = 0; i <= steps; i++) printf("%.9g\n", (double)sigmas[i]);
    free(sigmas);
    if (fflush(stdout) != 0 || ferror(stdout)) return fr_cli_error("schedule", "write error on stdout");
    return 0;
}
