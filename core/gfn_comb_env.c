/* Graphs and the four MDPs of graph combinatorial optimisation (flowrl/gfn_comb.h; spec
 * more.md §8.2; zdhNarsil/GFlowNet-CombOpt@306bff0 gflownet/util.py), the brute-force optima and
 * the exact terminating distribution over the state DAG (docs/algorithms/gfn-comb.md §2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flowrl/awm_elem.h"
#include "flowrl/gfn_comb.h"
#include "flowrl/philox.h"

fr_status fr_graph_new(fr_graph *g, int n, int m, const int32_t *edges)
{
    memset(g, 0, sizeof *g);
    if (n < 1 || n > FR_COMB_MAX_NODES || m < 0)
        return fr_fail(FR_ERR_ARG, "graph: %d nodes, %d edges (expected 1..%d nodes)", n, m, FR_COMB_MAX_NODES);
    g->n = n;
    g->m = m;
    g->ptr = fr_calloc((size_t)n + 1, sizeof *g->ptr);
    g->src = fr_calloc((size_t)(2 * m) + 1, sizeof *g->src);
    g->adj = fr_calloc((size_t)(n * n), 1);
    if (!g->ptr || !g->src || !g->adj) {
        fr_graph_free(g);
        return FR_ERR_NOMEM;
    }
    for (int k = 0; k < m; k++) {
        int a = edges[2 * k], b = edges[2 * k + 1];
        if (a < 0 || b < 0 || a >= n || b >= n || a == b || g->adj[a * n + b]) {
            fr_graph_free(g);
            return fr_fail(FR_ERR_ARG, "graph: edge %d (%d, %d) is a self-loop, a repeat or out of range", k, a, b);
        }
        g->adj[a * n + b] = g->adj[b * n + a] = 1;
    }
    /* destination v's edges by source ascending: the canonical order */
    int k = 0;
    for (int v = 0; v < n; v++) {
        g->ptr[v] = k;
        for (int u = 0; u < n; u++)
            if (g->adj[v * n + u]) g->src[k++] = u;
    }
    g->ptr[n] = k;
    return FR_OK;
}

fr_status fr_graph_er(fr_graph *g, int n, double p, uint32_t seed, uint32_t id)
{
    if (n < 1 || n > FR_COMB_MAX_NODES) return fr_fail(FR_ERR_ARG, "graph: %d nodes (expected 1..%d)", n, FR_COMB_MAX_NODES);
    int32_t edges[FR_COMB_MAX_NODES * (FR_COMB_MAX_NODES - 1)];
    int m = 0;
    uint32_t k = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++, k++)
            if ((double)fr_rng_uniform(seed, FR_RNG_COMB_GRAPH, id, 0, 0, k) < p) {
                edges[2 * m] = i;
                edges[2 * m + 1] = j;
                m++;
            }
    return fr_graph_new(g, n, m, edges);
}

void fr_graph_free(fr_graph *g)
{
    if (!g) return;
    free(g->ptr);
    free(g->src);
    free(g->adj);
    memset(g, 0, sizeof *g);
}

void fr_comb_initial(int n, int8_t *s) { memset(s, 2, (size_t)n); }

int fr_comb_done(int n, const int8_t *s)
{
    for (int i = 0; i < n; i++)
        if (s[i] == 2) return 0;
    return 1;
}

/* Σ over v's neighbours of [s_u in set] for the labels in mask (bit l: label l counts). */
static int nbr_count(const fr_graph *g, const int8_t *s, int v, unsigned mask)
{
    int c = 0;
    for (int k = g->ptr[v]; k < g->ptr[v + 1]; k++) c += (int)((mask >> s[g->src[k]]) & 1u);
    return c;
}

void fr_comb_step(fr_comb_task task, const fr_graph *g, const int8_t *s, int v, int8_t *s_next)
{
    const int n = g->n;
    int8_t t[FR_COMB_MAX_NODES];
    memcpy(t, s, (size_t)n);
    int num1 = 0;
    switch (task) {
    case FR_COMB_MIS:
        t[v] = 1;
        for (int i = 0; i < n; i++)
            if (t[i] == 2 && nbr_count(g, t, i, 1u << 1) > 0) t[i] = 0;
        break;
    case FR_COMB_CLIQUE:
        t[v] = 1;
        for (int i = 0; i < n; i++) num1 += t[i] == 1;
        for (int i = 0; i < n; i++)
            if (t[i] == 2 && nbr_count(g, t, i, 1u << 1) < num1) t[i] = 0;
        break;
    case FR_COMB_MDS: {
        /* util.py evaluates both rules on the state after the deletion (the degrees from it),
         * the second rule's "undecided" the nodes undecided after the deletion */
        t[v] = 0;
        int8_t u[FR_COMB_MAX_NODES];
        memcpy(u, t, (size_t)n);
        int deg12[FR_COMB_MAX_NODES];
        for (int i = 0; i < n; i++) deg12[i] = nbr_count(g, u, i, (1u << 1) | (1u << 2));
        for (int i = 0; i < n; i++)
            if (u[i] == 2 && deg12[i] == 0) t[i] = 1;
        for (int i = 0; i < n; i++) {
            if (u[i] != 2) continue;
            int sp = 0; /* a neighbour 0 whose in-set degree is at most 1 */
            for (int k = g->ptr[i]; k < g->ptr[i + 1]; k++) {
                int w = g->src[k];
                sp += t[w] == 0 && deg12[w] <= 1;
            }
            if (sp >= 1) t[i] = 1;
        }
        break;
    }
    case FR_COMB_MAXCUT: {
        t[v] = 1;
        int d1[FR_COMB_MAX_NODES], d02[FR_COMB_MAX_NODES];
        for (int i = 0; i < n; i++) {
            d1[i] = nbr_count(g, t, i, 1u << 1);
            d02[i] = nbr_count(g, t, i, (1u << 0) | (1u << 2));
        }
        for (int i = 0; i < n; i++)
            if (t[i] == 2 && d1[i] > d02[i]) t[i] = 0;
        break;
    }
    }
    memcpy(s_next, t, (size_t)n);
}

double fr_comb_value(fr_comb_task task, const fr_graph *g, const int8_t *s)
{
    int c = 0;
    if (task == FR_COMB_MAXCUT) {
        for (int v = 0; v < g->n; v++)
            for (int k = g->ptr[v]; k < g->ptr[v + 1]; k++) {
                int u = g->src[k];
                c += u < v && (s[u] == 1) != (s[v] == 1); /* each edge once */
            }
        return (double)c;
    }
    for (int i = 0; i < g->n; i++) c += s[i] == 1;
    return task == FR_COMB_MDS ? -(double)c : (double)c;
}

int fr_comb_parents(fr_comb_task task, int n, const int8_t *s)
{
    const int8_t lab = task == FR_COMB_MDS ? 0 : 1;
    int c = 0;
    for (int i = 0; i < n; i++) c += s[i] == lab;
    return c;
}

double fr_comb_brute_force(fr_comb_task task, const fr_graph *g)
{
    const int n = g->n;
    double best = -INFINITY;
    int8_t s[FR_COMB_MAX_NODES];
    for (uint32_t mask = 0; mask < (1u << n); mask++) {
        for (int i = 0; i < n; i++) s[i] = (int8_t)((mask >> i) & 1u);
        int ok = 1, size = __builtin_popcount(mask);
        for (int i = 0; i < n && ok; i++) {
            if (task == FR_COMB_MIS && s[i] && nbr_count(g, s, i, 1u << 1) > 0) ok = 0;
            if (task == FR_COMB_CLIQUE && s[i] && nbr_count(g, s, i, 1u << 1) < size - 1) ok = 0;
            if (task == FR_COMB_MDS && !s[i] && nbr_count(g, s, i, 1u << 1) == 0) ok = 0;
        }
        if (!ok) continue;
        double u = task == FR_COMB_MAXCUT ? fr_comb_value(task, g, s) : task == FR_COMB_MDS ? -(double)size : (double)size;
        if (u > best) best = u;
    }
    return best;
}

int64_t fr_comb_code(int n, const int8_t *s)
{
    int64_t c = 0;
    for (int i = n - 1; i >= 0; i--) c = 3 * c + s[i];
    return c;
}

static void decode(int n, int64_t c, int8_t *s)
{
    for (int i = 0; i < n; i++, c /= 3) s[i] = (int8_t)(c % 3);
}

/* Forward mass u(s) over the DAG: every step decides at least one node, so processing the
 * states by their number of undecided nodes, most first, visits each parent before its
 * children (gflownets.md §5.1's order). */
int64_t fr_comb_exact(fr_comb_task task, const fr_graph *g, double kappa, fr_comb_pf_fn pf, void *ctx, double *pt,
                      double *target)
{
    const int n = g->n;
    if (n > FR_COMB_EXACT_MAX_NODES) return -1;
    int64_t N = 1;
    for (int i = 0; i < n; i++) N *= 3;
    double *u = fr_calloc((size_t)N, sizeof *u);
    if (!u) return -1;
    int8_t s[FR_COMB_MAX_NODES], s2[FR_COMB_MAX_NODES];
    double lp[FR_COMB_MAX_NODES];
    fr_comb_initial(n, s);
    u[fr_comb_code(n, s)] = 1.0;
    int64_t n_term = 0;
    if (pt) memset(pt, 0, (size_t)N * sizeof *pt);
    if (target) memset(target, 0, (size_t)N * sizeof *target);
    double zmax = -INFINITY;
    for (int undecided = n; undecided >= 0; undecided--)
        for (int64_t c = 0; c < N; c++) {
            if (u[c] == 0.0) continue;
            decode(n, c, s);
            int k = 0;
            for (int i = 0; i < n; i++) k += s[i] == 2;
            if (k != undecided) continue;
            if (k == 0) {
                n_term++;
                if (pt) pt[c] = u[c];
                double lr = kappa * fr_comb_value(task, g, s);
                if (lr > zmax) zmax = lr;
                continue;
            }
            if (pf) pf(ctx, s, lp);
            for (int v = 0; v < n; v++) {
                if (s[v] != 2) continue;
                double p = pf ? fr_awm_exp(lp[v]) : 1.0 / (double)k;
                fr_comb_step(task, g, s, v, s2);
                u[fr_comb_code(n, s2)] += u[c] * p;
            }
        }
    if (target) {
        double z = 0.0;
        for (int64_t c = 0; c < N; c++) {
            decode(n, c, s);
            if (u[c] == 0.0 || !fr_comb_done(n, s)) continue;
            target[c] = fr_awm_exp(kappa * fr_comb_value(task, g, s) - zmax);
            z += target[c];
        }
        for (int64_t c = 0; c < N; c++) target[c] /= z;
    }
    free(u);
    return n_term;
}
