/* The GIN of graph combinatorial optimisation (core/gfn_comb_internal.h; docs/algorithms/
 * gfn-comb.md §3; GFlowNet-CombOpt@306bff0 gflownet/network.py): sum aggregation through the op
 * table's edge_gather / edge_scatter_add, every dense layer an fr_mlp, so the bits are ref's on
 * every backend. Differences from network.py (say so in the docs): no batch norm, no dropout,
 * the readout reads the last layer only (network.py concatenates every layer's h), and the
 * graph-level output is a sum over nodes (network.py: MaxPooling). */
#include <stdio.h>
#include <string.h>

#include "flowrl/ops.h"
#include "gfn_comb_internal.h"

fr_status fr_gin_new(fr_gin *g, fr_backend *be, const char *prefix, int layers, int64_t H, int64_t cap, int64_t cap_e)
{
    memset(g, 0, sizeof *g);
    if (layers < 1 || layers > FR_GIN_MAX_LAYERS)
        return fr_fail(FR_ERR_ARG, "gin: %d layers (expected 1..%d)", layers, FR_GIN_MAX_LAYERS);
    g->be = be;
    g->layers = layers;
    g->H = H;
    g->cap = cap;
    g->cap_e = cap_e < 1 ? 1 : cap_e;
    char name[48];
    const int64_t d_emb[2] = {3, H}, d_mp[3] = {H, H, H}, d_head[3] = {H, H, 1};
    snprintf(name, sizeof name, "%s.emb", prefix);
    FR_TRY(fr_mlp_new(&g->emb, be, name, 1, d_emb, FR_ACT_RELU, cap));
    for (int l = 1; l < layers; l++) {
        snprintf(name, sizeof name, "%s.mp%d", prefix, l);
        FR_TRY(fr_mlp_new(&g->mp[l], be, name, 2, d_mp, FR_ACT_RELU, cap));
    }
    snprintf(name, sizeof name, "%s.head", prefix);
    FR_TRY(fr_mlp_new(&g->head, be, name, 2, d_head, FR_ACT_RELU, cap));
    for (int l = 0; l < layers; l++)
        if (!(g->h[l] = fr_dev_floats(be, cap * H))) return FR_ERR_NOMEM;
    g->msg = fr_dev_floats(be, g->cap_e * H);
    g->dh = fr_dev_floats(be, cap * H);
    g->dh2 = fr_dev_floats(be, cap * H);
    g->gout = fr_dev_floats(be, cap);
    return g->msg && g->dh && g->dh2 && g->gout ? FR_OK : FR_ERR_NOMEM;
}

void fr_gin_free(fr_gin *g)
{
    if (!g || !g->be) return;
    fr_mlp_free(&g->emb);
    for (int l = 1; l < g->layers; l++) fr_mlp_free(&g->mp[l]);
    fr_mlp_free(&g->head);
    for (int l = 0; l < g->layers; l++) fr_dev_free(g->be, g->h[l]);
    fr_dev_free(g->be, g->msg);
    fr_dev_free(g->be, g->dh);
    fr_dev_free(g->be, g->dh2);
    fr_dev_free(g->be, g->gout);
    memset(g, 0, sizeof *g);
}

/* Each dense layer its own init stream: stream·16 + k. */
fr_status fr_gin_init(fr_gin *g, uint32_t seed, uint32_t stream)
{
    FR_TRY(fr_mlp_init_params(&g->emb, seed, stream * 16u, 1.0f));
    for (int l = 1; l < g->layers; l++) FR_TRY(fr_mlp_init_params(&g->mp[l], seed, stream * 16u + (uint32_t)l, 1.0f));
    return fr_mlp_init_params(&g->head, seed, stream * 16u + 15u, 1.0f);
}

fr_status fr_gin_zero_grad(fr_gin *g)
{
    FR_TRY(fr_mlp_zero_grad(&g->emb));
    for (int l = 1; l < g->layers; l++) FR_TRY(fr_mlp_zero_grad(&g->mp[l]));
    return fr_mlp_zero_grad(&g->head);
}

int fr_gin_params(fr_gin *g, fr_param *ps)
{
    int n = 0;
    fr_mlp *ms[FR_GIN_MAX_LAYERS + 1];
    int nm = 0;
    ms[nm++] = &g->emb;
    for (int l = 1; l < g->layers; l++) ms[nm++] = &g->mp[l];
    ms[nm++] = &g->head;
    for (int i = 0; i < nm; i++)
        for (int p = 0; p < ms[i]->n_params; p++) ps[n++] = ms[i]->params[p];
    return n;
}

fr_status fr_gin_forward(fr_gin *g, const fr_gin_batch *b, const float *x_h, int graph)
{
    const fr_ops *op = g->be->ops;
    const int64_t N = b->N, H = g->H;
    if (N > g->cap || b->E > g->cap_e)
        return fr_fail(FR_ERR_ARG, "gin: %lld nodes / %lld edges, sized for %lld / %lld", (long long)N, (long long)b->E,
                       (long long)g->cap, (long long)g->cap_e);
    FR_TRY(fr_h2d(g->be, g->emb.x, x_h, (size_t)(N * 3) * sizeof(float)));
    fr_mlp_forward(&g->emb, N);
    op->act_fwd(FR_ACT_RELU, N * H, fr_mlp_out(&g->emb), g->h[0]);
    for (int l = 1; l < g->layers; l++) {
        float *a = g->mp[l].x; /* (N, H): h + Σ over the incoming edges, in canonical order */
        op->copy(N * H, g->h[l - 1], a);
        op->edge_gather(b->E, H, b->src, N, g->h[l - 1], g->msg);
        op->edge_scatter_add(N, H, b->ptr_dst, NULL, b->E, g->msg, a);
        fr_mlp_forward(&g->mp[l], N);
        op->act_fwd(FR_ACT_RELU, N * H, fr_mlp_out(&g->mp[l]), g->h[l]);
    }
    op->copy(N * H, g->h[g->layers - 1], g->head.x);
    fr_mlp_forward(&g->head, N);
    if (graph) {
        op->fill(b->S, 0.0f, g->gout);
        op->edge_scatter_add(b->S, 1, b->ptr_g, NULL, N, fr_mlp_out(&g->head), g->gout);
    }
    return FR_OK;
}

fr_status fr_gin_backward(fr_gin *g, const fr_gin_batch *b, const float *dout_h, int graph)
{
    const fr_ops *op = g->be->ops;
    const int64_t N = b->N, H = g->H;
    if (graph) { /* d node = d state of its state */
        FR_TRY(fr_h2d(g->be, g->gout, dout_h, (size_t)b->S * sizeof(float)));
        op->edge_gather(N, 1, b->gid, b->S, g->gout, g->head.dout);
    } else {
        FR_TRY(fr_h2d(g->be, g->head.dout, dout_h, (size_t)N * sizeof(float)));
    }
    fr_mlp_backward(&g->head, N, g->dh);
    for (int l = g->layers - 1; l >= 1; l--) {
        /* through h_l = relu(z_l), MLP_l, then a = h + Σ_{u→v} h: dh_{l−1}[u] = da[u] + Σ_{u→v} da[v] */
        op->act_bwd(FR_ACT_RELU, N * H, fr_mlp_out(&g->mp[l]), g->dh, g->mp[l].dout, 0);
        fr_mlp_backward(&g->mp[l], N, g->dh2);
        op->copy(N * H, g->dh2, g->dh);
        op->edge_gather(b->E, H, b->dst, N, g->dh2, g->msg);
        op->edge_scatter_add(N, H, b->ptr_src, b->eid_src, b->E, g->msg, g->dh);
    }
    op->act_bwd(FR_ACT_RELU, N * H, fr_mlp_out(&g->emb), g->dh, g->emb.dout, 0);
    fr_mlp_backward(&g->emb, N, NULL);
    return FR_OK;
}
