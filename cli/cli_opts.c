/* The option engine (flowrl/opts.h) as every command uses it: --help, usage errors (exit
 * 2) and runtime failures (exit 1). */
#include <stdarg.h>
#include <stdio.h>

#include "cli/commands.h"
#include "flowrl/backend.h"

int fr_cli_opts(const fr_opts *o, int argc, char **argv, void (*usage)(FILE *f), const char **positional,
                int max_positional, int *n_positional, fr_opts_seen *seen)
{
    if (fr_opts_wants_help(argc, argv)) {
        usage(stdout);
        fr_opts_help(o, stdout);
        return 0;
    }
    if (fr_opts_parse(o, argc, argv, 1, positional, max_positional, n_positional, seen) != FR_OK)
        return fr_cli_usage(o->cmd, "%s", fr_last_error());
    return -1;
}

int fr_cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flowrl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (flowrl %s --help)\n", cmd);
    return 2;
}

int fr_cli_status(const char *cmd, fr_status s)
{
    fr_cli_error(cmd, "%s", fr_last_error());
    return s == FR_ERR_ARG ? 2 : 1;
}

int fr_cli_resolve_backend(const char *cmd, const fr_backend_opts *b, fr_backend *be)
{
    fr_status s = fr_backend_opts_resolve(b, be);
    return s == FR_OK ? 0 : fr_cli_status(cmd, s);
}
