/* The `graph` environment (flowrl/gfn_comb.h; docs/algorithms/gfn-comb.md §2): a task and the
 * Erdős–Rényi family G(n, p) that `flowrl train --algo gfn-comb` draws its graphs from. It has
 * no fr_env_gfn_ops: each graph is its own state space, which the trainer handles. */
#include <stdio.h>
#include <stdlib.h>

#include "flowrl/env.h"
#include "flowrl/gfn_comb.h"

static const char *const k_tasks[] = {"mis", "clique", "mds", "maxcut", NULL};

#define O fr_graph_env_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(O, task, "task", "mis", k_tasks, "mis, clique (MaxClique), mds (min dominating set) or maxcut", 0),
    FR_OPT_INT(O, nodes, "nodes", "10", 2, 13, "nodes n of the Erdős–Rényi graphs G(n, p) (<= 13: exact evaluation)", 0),
    FR_OPT_F64(O, edge_p, "edge_p", "0.3", 0, 1, "edge probability p of G(n, p)", 0),
};
#undef O

static fr_status create(const void *ov, fr_env *e)
{
    const fr_graph_env_opts *o = ov;
    fr_graph_env_opts *copy = fr_malloc(sizeof *copy);
    if (!copy) return FR_ERR_NOMEM;
    *copy = *o;
    e->impl = copy;
    e->state_dim = o->nodes;
    e->obs_dim = 3 * o->nodes;
    e->n_actions = o->nodes;
    e->exit_action = -1;
    e->max_steps = o->nodes;
    snprintf(e->desc, sizeof e->desc, "graph %s G(n=%d, p=%g)", k_tasks[o->task], o->nodes, o->edge_p);
    return FR_OK;
}

const fr_env_class fr_env_graph = {
    "graph",
    "graph combinatorial optimisation: MIS, MaxClique, MDS or MaxCut on Erdős–Rényi graphs G(n, p) (--algo gfn-comb)",
    "docs/algorithms/gfn-comb.md",
    "gfn-graph",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(fr_graph_env_opts),
    create,
};
