/* The image measurement of the generator commands (gmflow, piflow; docs/algorithms/gmflow.md §7,
 * piflow.md §7): sample i has the training prompt fr_task_prompt_in_turn(t, i). */
#include <stdio.h>

#include "cli/commands.h"
#include "flowrl/task.h"

int fr_cli_print_accuracy(const char *cmd, const fr_task *t, const float *x, int64_t N)
{
    if (!t->C) return 0;
    int64_t ok_n = 0;
    for (int64_t i = 0; i < N; i++) {
        float sc;
        int ok = 0;
        fr_status s = t->reward(1, fr_task_prompt_in_turn(t, i), x + i * t->D, &sc, &ok);
        if (s != FR_OK) return fr_cli_status(cmd, s);
        ok_n += ok != 0;
    }
    printf("geneval accuracy (the detector, strict) over %lld samples of the %d training prompts in turn: %.6f\n",
           (long long)N, t->n_train, (double)ok_n / (double)N);
    return 0;
}
