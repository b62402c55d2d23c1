/* Message passing over edges of opt (flowrl/ops.h "graphs"; ref/ref_graph.c is the definition).
 * Threads own blocks of output rows (edges for the gather, nodes for the scatter-add); within a
 * node the edges run in ref's order and the inner loop runs across columns, so every element's
 * chain of adds is ref's and the bits are ref's at any thread count. */
#include "opt/opt_internal.h"

/* Rows per thread below which the extra threads cost more than they save. */
#define GRAPH_MIN_ROWS 256

typedef struct {
    int64_t H;
    const int32_t *idx, *ptr, *eid;
    const float *src;
    float *dst;
} graph_ctx;

static void gather_rows(void *arg, int64_t r0, int64_t r1)
{
    const graph_ctx *c = (const graph_ctx *)arg;
    for (int64_t e = r0; e < r1; e++) {
        const float *x = c->src + (int64_t)c->idx[e] * c->H;
        float *m = c->dst + e * c->H;
        for (int64_t j = 0; j < c->H; j++) m[j] = x[j];
    }
}

static void opt_edge_gather(int64_t E, int64_t H, const int32_t *idx, int64_t n_src, const float *x, float *msg)
{
    (void)n_src;
    graph_ctx c = {H, idx, NULL, NULL, x, msg};
    fr_opt_parallel_range(E, 1, GRAPH_MIN_ROWS, gather_rows, &c);
}

static void scatter_rows(void *arg, int64_t v0, int64_t v1)
{
    const graph_ctx *c = (const graph_ctx *)arg;
    for (int64_t v = v0; v < v1; v++) {
        float *o = c->dst + v * c->H;
        for (int32_t k = c->ptr[v]; k < c->ptr[v + 1]; k++) {
            const float *m = c->src + (int64_t)(c->eid ? c->eid[k] : k) * c->H;
            for (int64_t j = 0; j < c->H; j++) o[j] = o[j] + m[j];
        }
    }
}

static void opt_edge_scatter_add(int64_t N, int64_t H, const int32_t *ptr, const int32_t *eid, int64_t n_msg,
                                 const float *msg, float *out)
{
    (void)n_msg;
    graph_ctx c = {H, NULL, ptr, eid, msg, out};
    fr_opt_parallel_range(N, 1, GRAPH_MIN_ROWS, scatter_rows, &c);
}

void fr_opt_fill_graph(fr_ops *ops)
{
    ops->edge_gather = opt_edge_gather;
    ops->edge_scatter_add = opt_edge_scatter_add;
}
