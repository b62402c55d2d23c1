/* The environment registry (flowrl/env.h): one line per environment class, and instances made
 * from a class's option rows. docs/envs.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/afn.h"
#include "flowrl/env.h"
#include "flowrl/env_ctl.h"
#include "flowrl/flgfn.h"
#include "flowrl/gfn_box.h"
#include "flowrl/gfn_comb.h"

static const fr_env_class *const k_envs[] = {
    &fr_env_hypergrid,
    &fr_env_mo_hypergrid, /* 2 objectives (core/env_mo_hypergrid.c) */
    &fr_env_box, /* continuous GFlowNet (flowrl/gfn_box.h) */
    &fr_env_graph, /* graph combinatorial optimisation (flowrl/gfn_comb.h) */
    &fr_env_gmm25, /* energy targets (core/env_energy.c) */
    &fr_env_funnel,
    &fr_env_manywell,
    &fr_env_nav2d,    /* control (flowrl/env_ctl.h) */
    &fr_env_pendulum,
    &fr_env_tictactoe, /* two-player game (flowrl/afn.h) */
    &fr_env_set,       /* FL-GFN's set task (flowrl/flgfn.h) */
    NULL,
};

const fr_env_class *const *fr_env_classes(void) { return k_envs; }

fr_status fr_env_find(const char *name, const fr_env_class **out)
{
    if (fr_env_cmd_program(name)) { /* cmd:PROGRAM, a program over a pipe (not listed: no defaults) */
        *out = &fr_env_cmd;
        return FR_OK;
    }
    for (const fr_env_class *const *c = k_envs; *c; c++)
        if (name && strcmp((*c)->name, name) == 0) {
            *out = *c;
            return FR_OK;
        }
    char list[256] = "";
    for (const fr_env_class *const *c = k_envs; *c; c++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", c == k_envs ? "" : ", ", (*c)->name);
    }
    return fr_fail(FR_ERR_ARG, "unknown environment '%s' (known: %s, cmd:PROGRAM; `flowrl envs` describes them)",
                   name ? name : "",
                   list);
}

const fr_env_class *fr_env_first_of(const char *kind)
{
    const char *k = kind ? kind : "gfn";
    for (const fr_env_class *const *c = k_envs; *c; c++)
        if (strstr((*c)->kind, k)) return *c;
    return NULL;
}

/* One group over the class's rows, for the defaults and the range checks of the option engine. */
static void bind(fr_opts *o, const fr_env_class *c, void *st)
{
    memset(o, 0, sizeof *o);
    o->cmd = "env";
    o->g[0] = (fr_opt_group){c->name, c->rows, c->n_rows, 0};
    o->ng = 1;
    o->s[0] = st;
}

fr_status fr_env_defaults(const fr_env_class *c, void *st)
{
    fr_opts o;
    bind(&o, c, st);
    return fr_opts_defaults(&o);
}

fr_status fr_env_create(const fr_env_class *c, const void *st, fr_env *out)
{
    memset(out, 0, sizeof *out);
    void *o = fr_calloc(1, c->opts_size ? c->opts_size : 1);
    if (!o) return FR_ERR_NOMEM;
    fr_status s = FR_OK;
    if (st) {
        memcpy(o, st, c->opts_size);
        fr_opts b;
        bind(&b, c, o);
        s = fr_opts_check(&b);
    } else {
        s = fr_env_defaults(c, o);
    }
    if (s == FR_OK) s = c->create(o, out);
    free(o);
    if (s == FR_OK) out->cls = c;
    return s;
}

void fr_env_free(fr_env *e)
{
    if (!e) return;
    if (e->ctl && e->ctl->close) e->ctl->close(e);
    free(e->impl);
    memset(e, 0, sizeof *e);
}
