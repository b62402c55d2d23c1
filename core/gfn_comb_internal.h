/* The GIN of graph combinatorial optimisation (core/gfn_comb_net.c; docs/algorithms/gfn-comb.md
 * §3): over a batch of S states, their graphs' disjoint union of N nodes and E directed edges. */
#ifndef FLOWRL_GFN_COMB_INTERNAL_H
#define FLOWRL_GFN_COMB_INTERNAL_H

#include "flowrl/gfn_comb.h"
#include "flowrl/mlp.h"

#define FR_GIN_MAX_LAYERS 8

/* The union's structure in backend memory: ptr_dst (N+1,) and src (E,) the canonical edges,
 * dst (E,), ptr_src (N+1,) and eid_src (E,) the same edges grouped by source, ptr_g (S+1,) the
 * states' nodes, gid (N,) the state of each node. */
typedef struct {
    int64_t N, E, S;
    int32_t *ptr_dst, *src, *dst, *ptr_src, *eid_src, *ptr_g, *gid;
} fr_gin_batch;

/* h_0 = relu(onehot(s) W_0 + b_0); h_l = relu(MLP_l(h_{l−1} + Σ_{u→v} h_{l−1}[u])), l < layers;
 * out = MLP_out(h_{layers−1}) (N, 1); graph: out summed over each state's nodes (S, 1). */
typedef struct {
    fr_backend *be;
    int layers;
    int64_t H, cap;
    fr_mlp emb, mp[FR_GIN_MAX_LAYERS], head;
    float *h[FR_GIN_MAX_LAYERS]; /* (cap, H) post-ReLU */
    float *msg, *dh, *dh2;       /* (cap_e, H), (cap, H), (cap, H) */
    float *gout;                 /* (cap, 1) per-state sums */
    int64_t cap_e;
} fr_gin;

fr_status fr_gin_new(fr_gin *g, fr_backend *be, const char *prefix, int layers, int64_t H, int64_t cap, int64_t cap_e);
void fr_gin_free(fr_gin *g);
fr_status fr_gin_init(fr_gin *g, uint32_t seed, uint32_t stream);
/* Forward of the batch; x_h (N, 3) the one-hot labels on the host. Node outputs at
 * fr_mlp_out(&g->head); graph = 1 also sums them per state into g->gout. */
fr_status fr_gin_forward(fr_gin *g, const fr_gin_batch *b, const float *x_h, int graph);
/* Backward from dout_h (host): (N, 1) node gradients, or (S, 1) state gradients when graph = 1. */
fr_status fr_gin_backward(fr_gin *g, const fr_gin_batch *b, const float *dout_h, int graph);
fr_status fr_gin_zero_grad(fr_gin *g);
/* The parameters into ps (returns the count). */
int fr_gin_params(fr_gin *g, fr_param *ps);

#endif
