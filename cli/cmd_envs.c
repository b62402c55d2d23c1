/* flowrl envs: every environment of the registry (flowrl/env.h) with its kind, line, docs page
 * and options (flag, default, help); --json as one JSON object. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "flowrl/env.h"
#include "flowrl/env_ctl.h"
#include "flowrl/gfn_box.h"

static void usage(void)
{
    printf("Usage: flowrl envs [--json]\n\n"
           "Lists the environments of `flowrl train --env NAME` (GFlowNet, control, energy): name, kind, summary,\n"
           "docs page and options with their defaults. --json prints one JSON object on stdout:\n"
           "{\"envs\": [{\"name\", \"kind\", \"summary\", \"doc\", \"states\", \"actions\", (control:) \"obs_dim\",\n"
           "\"action_dim\", \"max_steps\",\n"
           "\"options\": [{\"flag\", \"key\", \"default\", \"help\"}]}]}.\n");
}

/* The flag of a row: --key with '_' -> '-'. */
static void flag_of(const fr_opt *r, char *buf, size_t n)
{
    snprintf(buf, n, "--%s", r->key);
    for (char *p = buf; *p; p++)
        if (*p == '_') *p = '-';
}

/* e NULL: the pipe class (no instance without a program; its widths come from the program). */
static cJSON *env_json(const fr_env_class *c, const void *st, const fr_env *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e ? c->name : "cmd:PROGRAM");
    cJSON_AddStringToObject(o, "kind", c->kind);
    cJSON_AddStringToObject(o, "summary", c->summary);
    cJSON_AddStringToObject(o, "doc", c->doc);
    if (e) cJSON_AddNumberToObject(o, "states", (double)e->n_states);
    if (e) cJSON_AddNumberToObject(o, "actions", e->n_actions);
    if (e && e->energy) {
        cJSON_AddNumberToObject(o, "dims", e->state_dim);
        cJSON_AddNumberToObject(o, "log_z", e->energy->log_z(e));
    }
    if (e && e->ctl) { /* control: observation and action widths, episode limit */
        cJSON_AddNumberToObject(o, "obs_dim", e->obs_dim);
        cJSON_AddNumberToObject(o, "action_dim", e->action_dim);
        cJSON_AddNumberToObject(o, "max_steps", e->max_steps);
    }
    cJSON *rows = cJSON_AddArrayToObject(o, "options");
    for (int i = 0; i < c->n_rows; i++) {
        if (c->rows[i].flags & FR_OPT_HIDDEN) continue;
        char flag[64], def[64];
        flag_of(&c->rows[i], flag, sizeof flag);
        fr_opt_format(&c->rows[i], st, def, sizeof def);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "flag", flag);
        cJSON_AddStringToObject(r, "key", c->rows[i].key);
        cJSON_AddStringToObject(r, "default", def);
        cJSON_AddStringToObject(r, "help", c->rows[i].help);
        cJSON_AddItemToArray(rows, r);
    }
    return o;
}

static void env_text(const fr_env_class *c, const void *st, const fr_env *e)
{
    if (!e)
        printf("cmd:PROGRAM (%s) %s\n  %s; observations, actions and episode limit from the program\n", c->kind,
               c->summary, c->doc);
    else if (e->energy) /* an energy target: a density on R^D */
        printf("%s (%s) %s\n  %s; at the defaults %s: %d dimensions, log Z %.6f\n", c->name, c->kind, c->summary,
               c->doc, e->desc, e->state_dim, e->energy->log_z(e));
    else if (fr_box_of(e)) /* continuous states in [0, 1]^2 */
        printf("%s (%s) %s\n  %s; at the defaults %s: states in [0, 1]^2, at most %d actions, log Z %.6f\n", c->name,
               c->kind, c->summary, c->doc, e->desc, e->max_steps, fr_box_log_z(fr_box_of(e)));
    else if (e->ctl)
        printf("%s (%s) %s\n  %s; at the defaults %s: observations %d, actions %d (continuous), episodes of at most %d "
               "steps\n", c->name, c->kind, c->summary, c->doc, e->desc, e->obs_dim, e->action_dim, e->max_steps);
    else
        printf("%s (%s) %s\n  %s; at the defaults %s: %lld states, %d actions\n", c->name, c->kind, c->summary, c->doc,
               e->desc, (long long)e->n_states, e->n_actions);
    for (int i = 0; i < c->n_rows; i++) {
        if (c->rows[i].flags & FR_OPT_HIDDEN) continue;
        char flag[64], def[64];
        flag_of(&c->rows[i], flag, sizeof flag);
        fr_opt_format(&c->rows[i], st, def, sizeof def);
        printf("  %-10s %s (%s)\n", flag, c->rows[i].help, def);
    }
}

int cmd_envs(int argc, char **argv)
{
    if (fr_opts_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else return fr_cli_usage("envs", "unexpected argument '%s'", argv[i]);
    }
    cJSON *root = json ? cJSON_CreateObject() : NULL;
    cJSON *list = json ? cJSON_AddArrayToObject(root, "envs") : NULL;
    const fr_env_class *const *reg = fr_env_classes();
    int n_reg = 0;
    while (reg[n_reg]) n_reg++;
    for (int i = 0; i <= n_reg; i++) { /* the registry, then the pipe class */
        const fr_env_class *const *c = i < n_reg ? &reg[i] : (const fr_env_class *const[]){&fr_env_cmd};
        void *st = calloc(1, (*c)->opts_size ? (*c)->opts_size : 1);
        fr_env e;
        memset(&e, 0, sizeof e);
        fr_status s = st ? fr_env_defaults(*c, st) : FR_ERR_NOMEM;
        if (s == FR_OK && i < n_reg) s = fr_env_create(*c, st, &e);
        if (s != FR_OK) {
            free(st);
            cJSON_Delete(root);
            return fr_cli_status("envs", s);
        }
        if (json) cJSON_AddItemToArray(list, env_json(*c, st, i < n_reg ? &e : NULL));
        else env_text(*c, st, i < n_reg ? &e : NULL);
        fr_env_free(&e);
        free(st);
    }
    if (json) {
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text) return fr_cli_error("envs", "out of memory");
        printf("%s\n", text);
        free(text);
    }
    return fflush(stdout) == 0 ? 0 : fr_cli_error("envs", "writing to stdout failed");
}
