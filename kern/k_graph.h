/* Kernels of the op table's graph section (flowrl/ops.h; ref/ref_graph.c is the definition):
 * one thread per output element. The scatter-add's thread (v, j) walks node v's edges in the
 * list's order, so its chain of adds is ref's. */
#ifndef FLOWRL_KERN_K_GRAPH_H
#define FLOWRL_KERN_K_GRAPH_H

#include "flowrl/kernel.h"
#include "flowrl/ops.h"

#define FR_K_GRAPH_THREADS 256

typedef struct {
    int64_t R, H;
    const int32_t *idx, *ptr, *eid;
    const float *src;
    float *dst;
} fr_k_graph_args;

FR_KERNEL(fr_k_edge_gather, fr_k_graph_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    a->dst[i] = a->src[(int64_t)a->idx[i / a->H] * a->H + i % a->H];
}

static void k_edge_gather(int64_t E, int64_t H, const int32_t *idx, int64_t n_src, const float *x, float *msg)
{
    if (E * H <= 0) return;
    FR_KARG(idx, E, "idx");
    FR_KARG(x, n_src * H, "x");
    FR_KARG(msg, E * H, "msg");
    fr_k_graph_args a = {E, H, idx, NULL, NULL, x, msg};
    FR_LAUNCH(fr_k_edge_gather, fr_grid_1d(E * H, FR_K_GRAPH_THREADS), fr_dim3_x(FR_K_GRAPH_THREADS), a);
}

FR_KERNEL(fr_k_edge_scatter_add, fr_k_graph_args)
{
    const int64_t i = fr_kidx_global_x(k);
    if (i >= a->R * a->H) return;
    const int64_t v = i / a->H, j = i % a->H;
    float acc = a->dst[i];
    for (int32_t e = a->ptr[v]; e < a->ptr[v + 1]; e++) acc = acc + a->src[(int64_t)(a->eid ? a->eid[e] : e) * a->H + j];
    a->dst[i] = acc;
}

static void k_edge_scatter_add(int64_t N, int64_t H, const int32_t *ptr, const int32_t *eid, int64_t n_msg,
                               const float *msg, float *out)
{
    if (N * H <= 0) return;
    FR_KARG(ptr, N + 1, "ptr");
    FR_KARG_OPT(eid, n_msg, "eid");
    FR_KARG(msg, n_msg * H, "msg");
    FR_KARG(out, N * H, "out");
    fr_k_graph_args a = {N, H, NULL, ptr, eid, msg, out};
    FR_LAUNCH(fr_k_edge_scatter_add, fr_grid_1d(N * H, FR_K_GRAPH_THREADS), fr_dim3_x(FR_K_GRAPH_THREADS), a);
}

static void fr_kern_fill_graph(fr_ops *t)
{
    t->edge_gather = k_edge_gather;
    t->edge_scatter_add = k_edge_scatter_add;
}

#endif
