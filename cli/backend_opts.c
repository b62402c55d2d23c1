/* --backend NAME [--fast] [--threads N], the same for every command. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/ops.h"
#include "flowrl/opt.h"

int fr_cli_backend(const char *cmd, const char *name, int fast, long threads, const fr_ops **ops,
                   int *n_threads)
{
    if (!name) { /* the fastest bitwise backend built in */
        name = "ref";
        for (const char *const *b = fr_backend_names(); *b; b++)
            if (strcmp(*b, "opt") == 0) name = "opt";
    }
    fr_status st = fr_backend_get_mode(name, fast, ops);
    if (st != FR_OK) {
        fr_cli_error(cmd, "%s", fr_last_error());
        return st == FR_ERR_ARG ? 2 : 1;
    }
    *n_threads = 1;
    if (strcmp((*ops)->name, "opt") == 0) {
        fr_opt_set_threads((int)threads);
        *n_threads = fr_opt_get_threads();
    }
    return 0;
}

void fr_cli_backend_describe(const fr_ops *ops, int n_threads, char *buf, size_t n)
{
    snprintf(buf, n, "backend %s, threads %d, mode %s", ops->name, n_threads,
             ops->mode ? ops->mode : "exact");
}
