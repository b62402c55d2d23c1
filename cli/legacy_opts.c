/* The hand parsers of the commands before the option engine (flowrl/opts.h), kept only for
 * cli/cmd_train.c until it moves to the engine; then this file goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sampling_opts.h"

int fr_cli_wants_help(int argc, char **argv) { return fr_opts_wants_help(argc, argv); }

int fr_cli_backend(const char *cmd, const char *name, int fast, long threads, const fr_ops **ops, int *n_threads)
{
    fr_backend_opts b = {.fast = fast, .threads = threads};
    snprintf(b.backend, sizeof b.backend, "%s", name ? name : "");
    if (name && strlen(name) >= sizeof b.backend) return fr_cli_usage(cmd, "unknown backend '%s'", name);
    return fr_cli_resolve_backend(cmd, &b, ops, n_threads);
}

void fr_cli_backend_describe(const fr_ops *ops, int n_threads, char *buf, size_t n)
{
    fr_backend_describe(ops, n_threads, buf, n);
}

int fr_cli_parse_opts(const char *cmd, int argc, char **argv, const fr_cli_opt *opts, int n)
{
    for (int i = 1; i < argc; i++) {
        const fr_cli_opt *o = NULL;
        for (int k = 0; k < n; k++)
            if (strcmp(argv[i], opts[k].name) == 0) o = &opts[k];
        if (!o) {
            fr_cli_error(cmd, "unknown option '%s' (flowrl %s --help)", argv[i], cmd);
            return 2;
        }
        if (o->flag) {
            *o->flag = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fr_cli_error(cmd, "%s needs a value", argv[i]);
            return 2;
        }
        *o->value = argv[++i];
    }
    return 0;
}

int fr_cli_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fr_cli_error(cmd, "%s '%s': expected an integer in %ld .. %ld", opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int fr_cli_double(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi)) {
        fr_cli_error(cmd, "%s '%s': expected a number in [%g, %g]", opt, s, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int fr_cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out)
{
    double v;
    if (fr_cli_double(cmd, opt, s, lo, hi, &v)) return 2;
    *out = (float)v;
    return 0;
}

