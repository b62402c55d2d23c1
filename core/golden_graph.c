/* Golden cases of the op table's graph entries (flowrl/ops.h "graphs"; docs/algorithms/
 * gfn-comb.md §3): edge_gather and edge_scatter_add on the Erdős–Rényi graph G(11, 0.4) of
 * fr_graph_er (seed 1, id 0), H = 19 (an 8-lane register and a tail). The scatter-add runs in the
 * backward's form: the edges grouped by source through a permutation eid. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/golden_internal.h"
#include "flowrl/gfn_comb.h"

#define SLOT(entry) ((long)offsetof(fr_ops, entry))
enum { GH = 19 };

/* The graph's canonical edges: src (E,), dst (E,), ptr_src (n+1,) and eid (E,) by source. */
static fr_status graph_in(fr_golden_in *g, int with_src_groups, int64_t *n_out, int64_t *e_out)
{
    fr_graph gr;
    FR_TRY(fr_graph_er(&gr, 11, 0.4, 1, 0));
    const int64_t n = gr.n, E = 2 * (int64_t)gr.m;
    int32_t *dst = calloc((size_t)E + 1, 4), *ptr_s = calloc((size_t)n + 1, 4), *eid = calloc((size_t)E + 1, 4);
    fr_status s = dst && ptr_s && eid ? FR_OK : FR_ERR_NOMEM;
    if (s == FR_OK) {
        for (int v = 0; v < n; v++)
            for (int k = gr.ptr[v]; k < gr.ptr[v + 1]; k++) dst[k] = v;
        for (int64_t e = 0; e < E; e++) ptr_s[gr.src[e] + 1]++;
        for (int64_t v = 0; v < n; v++) ptr_s[v + 1] += ptr_s[v];
        int32_t next[FR_COMB_MAX_NODES];
        memcpy(next, ptr_s, (size_t)n * 4);
        for (int64_t e = 0; e < E; e++) eid[next[gr.src[e]]++] = (int32_t)e;
        const int64_t se = E, sn = n + 1;
        if (!with_src_groups)
            s = fr_gi_tensor(g, "src", FR_I32, 1, &se, gr.src,
                             "the sources of G(11, 0.4)'s directed edges (fr_graph_er seed 1, id 0), sorted by (destination, source)");
        else {
            s = fr_gi_tensor(g, "ptr", FR_I32, 1, &sn, ptr_s, "per source node u: its edges' range in eid");
            if (s == FR_OK) s = fr_gi_tensor(g, "eid", FR_I32, 1, &se, eid, "the canonical edges grouped by source, ascending within");
        }
    }
    *n_out = n, *e_out = E;
    free(dst), free(ptr_s), free(eid);
    fr_graph_free(&gr);
    return s;
}

static fr_status gather_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t n, E;
    FR_TRY(graph_in(g, 0, &n, &E));
    return fr_gi_uniform(g, "x", 2, (int64_t[]){n, GH}, -1.0f, 1.0f, NULL);
}

static fr_status gather_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t sx[2];
    const float *x;
    const int32_t *src;
    FR_TRY(fr_gd_f32(d, in, "x", 2, sx, &x));
    const fr_tensor *ts = fr_st_get(in, "in.src");
    if (!ts || ts->ndim != 1) return fr_fail(FR_ERR_FORMAT, "golden edge_gather: in.src missing");
    const int64_t E = ts->shape[0];
    FR_TRY(fr_gd_exact(d, in, "src", FR_I32, 1, &E, (const void **)&src));
    float *msg;
    FR_TRY(fr_gd_out_f32(d, out, "msg", 2, (int64_t[]){E, sx[1]}, NULL, &msg));
    d->be->ops->edge_gather(E, sx[1], src, sx[0], x, msg);
    return FR_OK;
}

static fr_status scatter_in(const fr_golden_case *c, fr_golden_in *g)
{
    (void)c;
    int64_t n, E;
    FR_TRY(graph_in(g, 1, &n, &E));
    FR_TRY(fr_gi_uniform(g, "out0", 2, (int64_t[]){n, GH}, -1.0f, 1.0f, NULL));
    return fr_gi_uniform(g, "msg", 2, (int64_t[]){E, GH}, -1.0f, 1.0f, NULL);
}

static fr_status scatter_run(const fr_golden_case *c, fr_golden_dev *d, const fr_st_file *in, fr_st_file *out)
{
    (void)c;
    int64_t so[2], sm[2];
    const float *o0, *msg;
    const int32_t *ptr, *eid;
    FR_TRY(fr_go_f32(in, "out0", 2, so, &o0));
    FR_TRY(fr_gd_f32(d, in, "msg", 2, sm, &msg));
    const int64_t np = so[0] + 1;
    FR_TRY(fr_gd_exact(d, in, "ptr", FR_I32, 1, &np, (const void **)&ptr));
    FR_TRY(fr_gd_exact(d, in, "eid", FR_I32, 1, &sm[0], (const void **)&eid));
    float *o;
    FR_TRY(fr_gd_out_f32(d, out, "out", 2, so, o0, &o));
    d->be->ops->edge_scatter_add(so[0], so[1], ptr, eid, sm[0], msg, o);
    return FR_OK;
}

#define T_EXACT {0.0f, 0.0f}
const fr_golden_case fr_golden_cases_graph[] = {
    {"op.edge_gather", "msg (E,19) = x (11,19) at the sources of G(11, 0.4)'s edges", SLOT(edge_gather), 0, T_EXACT,
     gather_in, gather_run},
    /* chains of plain adds in edge order; no vendor kernel replaces it */
    {"op.edge_scatter_add", "out (11,19) = out0 + each source's messages (E,19) through eid, in edge order",
     SLOT(edge_scatter_add), 0, T_EXACT, scatter_in, scatter_run},
};
const size_t fr_golden_n_graph = sizeof fr_golden_cases_graph / sizeof fr_golden_cases_graph[0];
