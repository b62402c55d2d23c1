/* flowrl algos: every algorithm of the registry (flowrl/algo.h) with its line and docs page. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/algo.h"

int cmd_algos(int argc, char **argv)
{
    if (fr_opts_wants_help(argc, argv)) {
        printf("Usage: flowrl algos\n\nLists the algorithms of `flowrl train --algo NAME`: name, summary, docs page.\n"
               "`flowrl train --algo NAME --help` gives an algorithm's options and defaults.\n");
        return 0;
    }
    if (argc > 1) return fr_cli_error("algos", "unexpected argument '%s' (flowrl algos --help)", argv[1]), 2;
    int w = 0; /* the name column: as wide as the longest name */
    for (const fr_algo *const *a = fr_algos(); *a; a++) w = (int)strlen((*a)->name) > w ? (int)strlen((*a)->name) : w;
    for (const fr_algo *const *a = fr_algos(); *a; a++)
        printf("%-*s %s\n%-*s %s\n", w, (*a)->name, (*a)->summary, w, "", (*a)->doc);
    return fflush(stdout) == 0 ? 0 : fr_cli_error("algos", "writing to stdout failed");
}
