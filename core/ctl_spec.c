/* Environment specs and their options as text (flowrl/env_ctl.h): "nav2d" or "cmd:PROGRAM" to a
 * class and its defaulted options; the options to and from the JSON object a demonstrations
 * file records, so that a reader can make the same instance again. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/env_ctl.h"

fr_status fr_env_spec(const char *spec, const fr_env_class **cls, void **opts)
{
    *opts = NULL;
    const char *prog = fr_env_cmd_program(spec);
    if (prog && strlen(prog) >= FR_ENV_CMD_PROGRAM_MAX)
        return fr_fail(FR_ERR_ARG, "--env cmd:PROGRAM: the program has %zu bytes, at most %d", strlen(prog),
                       FR_ENV_CMD_PROGRAM_MAX - 1);
    FR_TRY(fr_env_find(spec, cls));
    void *o = fr_calloc(1, (*cls)->opts_size ? (*cls)->opts_size : 1);
    if (!o) return FR_ERR_NOMEM;
    fr_status s = fr_env_defaults(*cls, o);
    if (s != FR_OK) {
        free(o);
        return s;
    }
    fr_env_spec_apply(*cls, o, spec);
    *opts = o;
    return FR_OK;
}

void fr_env_spec_apply(const fr_env_class *c, void *opts, const char *spec)
{
    const char *prog = fr_env_cmd_program(spec);
    if (c == &fr_env_cmd && prog) snprintf(((fr_env_cmd_opts *)opts)->program, FR_ENV_CMD_PROGRAM_MAX, "%s", prog);
}

char *fr_env_options_json(const fr_env_class *c, const void *opts)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < c->n_rows; i++) {
        char v[FR_ENV_CMD_PROGRAM_MAX + 16];
        fr_opt_format(&c->rows[i], opts, v, sizeof v);
        cJSON_AddStringToObject(o, c->rows[i].key, v);
    }
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

fr_status fr_env_options_from_json(const fr_env_class *c, void *opts, const char *json, const char *where)
{
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return fr_fail(FR_ERR_FORMAT, "%s: env_options is not a JSON object", where);
    }
    fr_status s = FR_OK;
    for (cJSON *it = o->child; it && s == FR_OK; it = it->next) {
        const fr_opt *row = NULL;
        for (int i = 0; i < c->n_rows; i++)
            if (strcmp(c->rows[i].key, it->string) == 0) row = &c->rows[i];
        if (!row) s = fr_fail(FR_ERR_FORMAT, "%s: env_options: '%.64s' is not an option of %s", where, it->string, c->name);
        else if (!cJSON_IsString(it))
            s = fr_fail(FR_ERR_FORMAT, "%s: env_options: '%.64s' is not a string", where, it->string);
        else
            s = fr_opt_set(row, opts, it->valuestring, where);
    }
    cJSON_Delete(o);
    return s;
}

fr_status fr_env_from_demos(const fr_demos *d, fr_env *e)
{
    const fr_env_class *c;
    void *o;
    char where[64];
    snprintf(where, sizeof where, "demonstrations of %.40s", d->env);
    FR_TRY(fr_env_spec(d->env, &c, &o));
    fr_status s = d->env_options ? fr_env_options_from_json(c, o, d->env_options, where) : FR_OK;
    if (s == FR_OK) s = fr_env_create(c, o, e);
    free(o);
    if (s == FR_OK && (e->obs_dim != d->obs_dim || e->action_dim != d->action_dim)) {
        s = fr_fail(FR_ERR_FORMAT, "%s: the environment %s has obs_dim %d, action_dim %d; the file %d, %d", where, e->desc,
                    e->obs_dim, e->action_dim, d->obs_dim, d->action_dim);
        fr_env_free(e);
    }
    return s;
}
