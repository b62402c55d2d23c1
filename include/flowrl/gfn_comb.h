/* Graph combinatorial optimisation with GFlowNets ("Let the Flows Tell", arXiv 2305.17010;
 * spec more.md §8.2; public code zdhNarsil/GFlowNet-CombOpt@306bff0 gflownet/util.py,
 * algorithm.py, network.py; docs/algorithms/gfn-comb.md).
 *
 * A state labels each node of a graph: 0 excluded, 1 selected, 2 undecided; s0 is all 2s. An
 * action picks an undecided node; the task's rule then decides more nodes; a state with no 2
 * is terminal (there is no exit action). The tasks (util.py's MDPs):
 *   MIS        node → 1; undecided neighbours of a 1 → 0                         log R = #1
 *   MaxClique  node → 1; undecided nodes not adjacent to every 1 → 0             log R = #1
 *   MDS        node → 0 (deleted; 2 means "in the set, may be deleted"); an undecided node with
 *              no in-set (1 or 2) neighbour → 1; an undecided node adjacent to a 0 whose in-set
 *              degree ≤ 1 → 1                                                 log R = −#1
 *   MaxCut     node → 1; an undecided node with more 1-neighbours than 0/2-neighbours → 0
 *                                                     log R = cut size (2 counted as 0)
 * P_B is uniform: log P_B = −log #(state = 1) (MDS: #(state = 0)). The rewards are log R =
 * κ·u(s), κ annealed linearly (rexpit → rexp over annend graphs).
 *
 * The policy and the flow are two GINs (core/gfn_comb_net.c) whose message passing is the op
 * table's edge_gather / edge_scatter_add (flowrl/ops.h "graphs"), so the trainer's bits are
 * ref's on every backend. */
#ifndef FLOWRL_GFN_COMB_H
#define FLOWRL_GFN_COMB_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/optim.h"
#include "flowrl/status.h"

typedef enum { FR_COMB_MIS = 0, FR_COMB_CLIQUE = 1, FR_COMB_MDS = 2, FR_COMB_MAXCUT = 3 } fr_comb_task;

#define FR_COMB_MAX_NODES 64
#define FR_COMB_EXACT_MAX_NODES 13 /* fr_comb_exact: 3^n states */

/* An undirected simple graph: n nodes, m edges, the 2m directed edges in canonical order
 * (sorted by (destination, source)): edge k of destination v has index ptr[v] <= k < ptr[v+1]
 * and source src[k]; adj (n, n) 0/1. */
typedef struct {
    int n, m;
    int32_t *ptr; /* (n+1,) */
    int32_t *src; /* (2m,) */
    uint8_t *adj; /* (n, n) */
} fr_graph;

/* The graph of m edges (m, 2) (self-loops and repeats refused: FR_ERR_ARG). */
fr_status fr_graph_new(fr_graph *g, int n, int m, const int32_t *edges);
/* Erdős–Rényi G(n, p): pair (i < j) in lexicographic order k is an edge iff Philox (seed,
 * FR_RNG_COMB_GRAPH, id, 0, 0, k) < p. */
fr_status fr_graph_er(fr_graph *g, int n, double p, uint32_t seed, uint32_t id);
void fr_graph_free(fr_graph *g);

/* ---- the MDP (core/gfn_comb_env.c) ---- */
void fr_comb_initial(int n, int8_t *s);
int fr_comb_done(int n, const int8_t *s);
/* s_next = the state after picking undecided node v of s (s_next may be s). */
void fr_comb_step(fr_comb_task task, const fr_graph *g, const int8_t *s, int v, int8_t *s_next);
/* u(s): MIS, MaxClique #1; MDS −#1; MaxCut the cut with 2 as 0. log R = κ·u. */
double fr_comb_value(fr_comb_task task, const fr_graph *g, const int8_t *s);
/* #parents of s under uniform P_B: #(s = 1) (MDS: #(s = 0)). */
int fr_comb_parents(fr_comb_task task, int n, const int8_t *s);
/* The optimum of the task by enumerating all 2^n subsets (n <= 24): the largest independent
 * set, the largest clique, −the smallest dominating set, the largest cut. */
double fr_comb_brute_force(fr_comb_task task, const fr_graph *g);

/* Exact quantities over the state DAG (n <= FR_COMB_EXACT_MAX_NODES; states indexed by their
 * base-3 code Σ s_i 3^i): the terminating distribution of a forward policy and the target.
 * pf(ctx, s, logp) fills logp (n,) with log P_F(v | s) over the undecided nodes (NULL: the
 * uniform policy). pt, target (3^n,) float64 (may be NULL): P_T(x) and exp(κ u(x)) / Z over the
 * terminal states reachable from s0 (0 elsewhere). Returns the number of reachable terminals
 * (negative on allocation failure). */
typedef void (*fr_comb_pf_fn)(void *ctx, const int8_t *s, double *logp);
int64_t fr_comb_exact(fr_comb_task task, const fr_graph *g, double kappa, fr_comb_pf_fn pf, void *ctx, double *pt,
                      double *target);
int64_t fr_comb_code(int n, const int8_t *s);

/* ---- the trainer (core/gfn_comb_train.c) ---- */
typedef enum { FR_COMB_FLDB = 0, FR_COMB_DB = 1 } fr_comb_loss;

typedef struct {
    fr_comb_task task;
    fr_comb_loss loss;   /* FL-DB (alg=fl, the default) or DB */
    int hidden;          /* GIN width (256) */
    int layers;          /* GIN layers (5: the input embedding and 4 message-passing layers) */
    int max_nodes;       /* the largest graph the buffers hold */
    int bsit;            /* graphs per rollout batch (8) */
    int tstep;           /* gradient steps per rollout batch (30) */
    int tbatch;          /* transitions per gradient step (64) */
    double lr;           /* Adam lr of both networks (1e-3) */
    double kappa0, kappa1; /* κ from rexpit to rexp (1, 500) */
    int64_t anneal_graphs; /* over this many training graphs (annend 40000) */
    uint32_t seed;
} fr_comb_opts;

fr_comb_opts fr_comb_opts_default(void);

typedef struct fr_comb_trainer fr_comb_trainer;

fr_status fr_comb_trainer_new(fr_comb_trainer **out, fr_backend *be, const fr_comb_opts *o);
void fr_comb_trainer_free(fr_comb_trainer *t);
/* κ at the current count of training graphs. */
double fr_comb_kappa(const fr_comb_trainer *t);
/* One iteration on G graphs (G <= bsit): on-policy rollouts (Philox (seed, FR_RNG_COMB_ACTION,
 * iteration, graph, step)), then tstep Adam steps (the trainer's own AdamW state, lr, no weight
 * decay) on tbatch transitions each, drawn without replacement (FR_RNG_COMB_ORDER); *loss the
 * mean loss of the steps. κ counts iteration·bsit training graphs. */
fr_status fr_comb_train_iter(fr_comb_trainer *t, const fr_graph *gs, int G, double *loss);
/* The same iteration for a caller that owns the optimiser (the run loop, core/algo/gfn_comb.c):
 * the rollout of iteration iter, then per k < tstep the gradients of minibatch k (into the
 * zeroed gradients of fr_comb_params) and the caller's optimiser step. */
fr_status fr_comb_begin_iter(fr_comb_trainer *t, int64_t iter, const fr_graph *gs, int G);
fr_status fr_comb_grad_step(fr_comb_trainer *t, int k, double *loss);
/* K sampled solutions of g (Philox (seed, FR_RNG_COMB_EVAL, id, sample, step)): their mean
 * value and the best. */
fr_status fr_comb_sample(fr_comb_trainer *t, const fr_graph *g, uint32_t id, int K, double *mean, double *best);
/* log P_F (n,) of the policy at state s of g (−inf at decided nodes), and log F̃(s). */
fr_status fr_comb_policy(fr_comb_trainer *t, const fr_graph *g, const int8_t *s, double *logpf, double *logf);
/* The FL-DB (or DB) residuals of the transitions s_i → s_{i+1} = step(s_i, a_i), i < L, of
 * one trajectory of g at κ (kappa): resid (L,). */
fr_status fr_comb_residuals(fr_comb_trainer *t, const fr_graph *g, int L, const int8_t *states, const int *actions,
                            double kappa, double *resid);
/* The parameters (values) digest and the list for AdamW / checkpoints. */
fr_status fr_comb_digest(fr_comb_trainer *t, uint64_t *digest);
int fr_comb_params(fr_comb_trainer *t, fr_param **ps);

/* ---- the `graph` environment (core/env_graph.c): the options of `--algo gfn-comb` ---- */
typedef struct {
    int task;      /* fr_comb_task */
    int nodes;     /* n of G(n, p) */
    double edge_p; /* p */
} fr_graph_env_opts;
struct fr_env_class;
extern const struct fr_env_class fr_env_graph;

#endif
