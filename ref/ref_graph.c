/* Message passing over edges (flowrl/ops.h "graphs"; docs/algorithms/gfn-comb.md §3): the
 * definition the opt and kern/ entries reproduce. A node's sum over its edges is one chain of
 * plain adds in the edge list's order. */
#include "ref/ref_internal.h"

static void ref_edge_gather(int64_t E, int64_t H,
                            const int32_t *idx, // (E,)
                            int64_t n_src,
                            const float *x,     // (n_src,H)
                            float *msg)         // (E,H)
{
    (void)n_src; /* the extent a device backend checks */
    for (int64_t e = 0; e < E; e++)
        for (int64_t j = 0; j < H; j++) msg[e * H + j] = x[(int64_t)idx[e] * H + j];
}

static void ref_edge_scatter_add(int64_t N, int64_t H,
                                 const int32_t *ptr, // (N+1,)
                                 const int32_t *eid, // (ptr[N],) or NULL
                                 int64_t n_msg,
                                 const float *msg,   // (n_msg,H)
                                 float *out)         // (N,H)
{
    (void)n_msg;
    for (int64_t v = 0; v < N; v++)
        for (int64_t j = 0; j < H; j++) {
            float acc = out[v * H + j];
            for (int32_t k = ptr[v]; k < ptr[v + 1]; k++) acc = acc + msg[(int64_t)(eid ? eid[k] : k) * H + j];
            out[v * H + j] = acc;
        }
}

void fr_ref_fill_graph(fr_ops *ops)
{
    ops->edge_gather = ref_edge_gather;
    ops->edge_scatter_add = ref_edge_scatter_add;
}
