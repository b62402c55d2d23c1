/* flowrl algos: every algorithm of the registry (flowrl/algo.h) with its line and docs page;
 * --json: the same as one JSON object, with the prediction of the base each one trains. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/algo.h"
#include "flowrl/model.h"

/* {"algos": [{"name", "summary", "doc", "trains_on", "base_pred", "env_kind", "prefs"}, ...]} in the
 * registry's order; trains_on "base" (a base checkpoint, whose prediction base_pred is) or "env" (an
 * environment, `--env NAME`: no base_pred; env_kind the side of the environments it takes, "gfn",
 * "energy" or "control", docs/envs.md §0); prefs "required" or "optional" for an algorithm that reads a
 * preference file (--prefs), absent otherwise. */
static int print_json(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "algos") : NULL;
    int ok = list != NULL;
    for (const fr_algo *const *a = fr_algos(); ok && *a; a++) {
        cJSON *o = cJSON_CreateObject();
        if (o && !cJSON_AddItemToArray(list, o)) cJSON_Delete(o), o = NULL; /* else the list owns it */
        ok = o && cJSON_AddStringToObject(o, "name", (*a)->name) && cJSON_AddStringToObject(o, "summary", (*a)->summary) &&
             cJSON_AddStringToObject(o, "doc", (*a)->doc) &&
             cJSON_AddStringToObject(o, "trains_on", (*a)->on_env ? "env" : "base") &&
             ((*a)->on_env || cJSON_AddStringToObject(o, "base_pred", fr_pred_name((fr_pred)(*a)->base_pred))) &&
             (!(*a)->on_env || cJSON_AddStringToObject(o, "env_kind", (*a)->env_kind ? (*a)->env_kind : "gfn")) &&
             ((*a)->prefs == FR_ALGO_PREFS_NONE ||
              cJSON_AddStringToObject(o, "prefs", (*a)->prefs == FR_ALGO_PREFS_REQUIRED ? "required" : "optional"));
    }
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return fr_cli_error("algos", "out of memory");
    int rc = printf("%s\n", text) < 0 || fflush(stdout) != 0 ? fr_cli_error("algos", "writing to stdout failed") : 0;
    free(text);
    return rc;
}

int cmd_algos(int argc, char **argv)
{
    if (fr_opts_wants_help(argc, argv)) {
        printf("Usage: flowrl algos [--json]\n\nLists the algorithms of `flowrl train --algo NAME`: name, summary, docs page.\n"
               "--json: one JSON object {\"algos\": [{\"name\", \"summary\", \"doc\", \"trains_on\", \"base_pred\",\n"
               "\"env_kind\", \"prefs\"}]}: trains_on \"base\" (a base checkpoint, base_pred its prediction: velocity or\n"
               "epsilon) or \"env\" (an environment, --env NAME; `flowrl envs` lists them; env_kind its side: gfn,\n"
               "energy or control); prefs \"required\" or \"optional\"\n"
               "where it reads a preference file (--prefs FILE, flowrl prefs make), absent otherwise.\n"
               "`flowrl train --algo NAME --help` gives an algorithm's options and defaults.\n");
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--json") == 0) return print_json();
    if (argc > 1) return fr_cli_error("algos", "unexpected argument '%s' (flowrl algos --help)", argv[1]), 2;
    int w = 0; /* the name column: as wide as the longest name */
    for (const fr_algo *const *a = fr_algos(); *a; a++) w = (int)strlen((*a)->name) > w ? (int)strlen((*a)->name) : w;
    for (const fr_algo *const *a = fr_algos(); *a; a++)
        printf("%-*s %s\n%-*s %s\n", w, (*a)->name, (*a)->summary, w, "", (*a)->doc);
    return fflush(stdout) == 0 ? 0 : fr_cli_error("algos", "writing to stdout failed");
}
