/* Graph combinatorial optimisation with GFlowNets on the run loop (docs/algorithms/gfn-comb.md):
 * `flowrl train --algo gfn-comb --env graph --task mis|clique|mds|maxcut`, over the trainer of
 * flowrl/gfn_comb.h (GFlowNet-CombOpt@306bff0 main.py's loop). It trains on an environment
 * (fr_algo.on_env): the trainer owns the two GINs; the loop keeps Adam over them, the records,
 * checkpoints, resume and the evaluation (the sampled mean objective on held-out graphs against
 * the brute-force optimum).
 *
 * One epoch is one iteration: --bsit graphs G(n, p) (Philox (seed, FR_RNG_COMB_GRAPH, epoch·bsit
 * + i)), their on-policy rollouts, then --tstep optimiser steps on --tbatch transitions each.
 * audit.log records of an epoch: loss (the steps' mean), then the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/env.h"
#include "flowrl/gfn_comb.h"

typedef struct {
    int64_t hidden, layers, bsit, tstep, tbatch, eval_graphs, eval_samples;
    int loss;
    double kappa0, kappa1, anneal;
} comb_opts;

static const char *const k_loss_names[] = {"fl", "db", NULL};
#define EVAL_ID0 1000000u /* held-out graph ids: training draws ids epoch·bsit + i below this */

#define C comb_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(C, loss, "loss", "fl", k_loss_names, "fl: FL-DB (alg=fl, the default), db: detailed balance", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "256", 1, 4096, "width of both GINs (network.py: 256)", 0),
    FR_OPT_I64(C, layers, "layers", "5", 1, 8, "GIN layers: the input embedding and layers - 1 message-passing layers", 0),
    FR_OPT_I64(C, bsit, "bsit", "8", 1, 64, "graphs per epoch (one on-policy rollout batch)", 0),
    FR_OPT_I64(C, tstep, "tstep", "30", 1, 1000, "optimiser steps per epoch", 0),
    FR_OPT_I64(C, tbatch, "tbatch", "64", 1, 128, "transitions per optimiser step, drawn without replacement", 0),
    FR_OPT_F64(C, kappa0, "rexpit", "1", 0, 1e6, "kappa (the reward exponent) at the start", 0),
    FR_OPT_F64(C, kappa1, "rexp", "500", 0, 1e6, "kappa at the end of the annealing", 0),
    FR_OPT_F64(C, anneal, "annend", "40000", 0, 1e12, "training graphs over which kappa anneals linearly", 0),
    FR_OPT_I64(C, eval_graphs, "eval_graphs", "10", 1, 1000, "held-out graphs of each evaluation", FR_OPT_RESUMABLE),
    FR_OPT_I64(C, eval_samples, "eval_samples", "32", 1, 100000, "sampled solutions per held-out graph", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_comb_trainer *t;
    fr_graph_env_opts env;
} comb_state;

/* main.py: Adam lr 1e-3; 20 epochs of the RB training set are about 5000 iterations of 8 graphs. */
static void comb_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 5000, 500, 500, 1e-3);
}

static void comb_free(void *p)
{
    comb_state *g = p;
    if (!g) return;
    fr_comb_trainer_free(g->t);
    free(g);
}

static fr_status comb_setup(fr_run *r, void **out)
{
    if (r->env.cls != &fr_env_graph)
        return fr_fail(FR_ERR_ARG, "train: --algo gfn-comb trains on --env graph, not %s", r->env.cls ? r->env.cls->name : "?");
    const comb_opts *a = r->ao;
    comb_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    g->env = *(const fr_graph_env_opts *)r->env.impl;
    fr_comb_opts o = fr_comb_opts_default();
    o.task = (fr_comb_task)g->env.task;
    o.loss = (fr_comb_loss)a->loss;
    o.hidden = (int)a->hidden;
    o.layers = (int)a->layers;
    o.max_nodes = g->env.nodes;
    o.bsit = (int)a->bsit;
    o.tstep = (int)a->tstep;
    o.tbatch = (int)a->tbatch;
    o.lr = r->o->opt.lr;
    o.kappa0 = a->kappa0;
    o.kappa1 = a->kappa1;
    o.anneal_graphs = (int64_t)a->anneal;
    o.seed = r->o->run.seed;
    return fr_comb_trainer_new(&g->t, r->be, &o);
}

static fr_status comb_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    (void)r;
    *n = fr_comb_params(((comb_state *)state)->t, ps);
    groups[0] = (fr_run_group){0, *n, -1.0, -1.0};
    *n_groups = 1;
    return FR_OK;
}

static void comb_header(fr_run *r, void *state)
{
    const comb_opts *a = r->ao;
    (void)state;
    fr_run_info(r, "%s loss, GINs %lld x %lld, %lld graphs an epoch, %lld steps of %lld transitions, kappa %g -> %g over %g "
                   "graphs",
                k_loss_names[a->loss], (long long)a->layers, (long long)a->hidden, (long long)a->bsit, (long long)a->tstep,
                (long long)a->tbatch, a->kappa0, a->kappa1, a->anneal);
}

static fr_status comb_epoch(fr_run *r, void *state)
{
    comb_state *g = state;
    const comb_opts *a = r->ao;
    fr_graph gs[64];
    int made = 0;
    fr_status s = FR_OK;
    for (; made < a->bsit && s == FR_OK; made++)
        s = fr_graph_er(&gs[made], g->env.nodes, g->env.edge_p, r->o->run.seed, (uint32_t)(r->epoch * a->bsit + made));
    if (s == FR_OK) s = fr_comb_begin_iter(g->t, r->epoch, gs, (int)a->bsit);
    double acc = 0.0;
    for (int k = 0; k < a->tstep && s == FR_OK; k++) {
        double l = 0.0;
        float gn;
        s = fr_comb_grad_step(g->t, k, &l);
        if (s == FR_OK) s = fr_run_optimizer_step(r, k, &gn);
        acc += l;
    }
    for (int i = 0; i < made; i++) fr_graph_free(&gs[i]);
    FR_TRY(s);
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)(acc / (double)a->tstep)));
    fr_run_metric(r, "loss", acc / (double)a->tstep);
    fr_run_metric(r, "kappa", fr_comb_kappa(g->t));
    return FR_OK;
}

/* Mean sampled objective over held-out graphs (Philox ids EVAL_ID0 + i) and their brute-force
 * optimum; score = optimum − mean (lower is better). */
static fr_status comb_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    comb_state *g = state;
    const comb_opts *a = r->ao;
    double mean = 0.0, best = 0.0, opt = 0.0;
    for (int64_t i = 0; i < a->eval_graphs; i++) {
        fr_graph gr;
        FR_TRY(fr_graph_er(&gr, g->env.nodes, g->env.edge_p, r->o->run.seed, EVAL_ID0 + (uint32_t)i));
        double m, b;
        fr_status s = fr_comb_sample(g->t, &gr, (uint32_t)i, (int)a->eval_samples, &m, &b);
        if (s == FR_OK) {
            mean += m / (double)a->eval_graphs;
            best += b / (double)a->eval_graphs;
            opt += fr_comb_brute_force((fr_comb_task)g->env.task, &gr) / (double)a->eval_graphs;
        }
        fr_graph_free(&gr);
        FR_TRY(s);
    }
    fr_run_info(r, "eval %-8s (epoch %lld): mean objective %.4f, best of %lld %.4f, optimum %.4f (%lld held-out graphs)", key,
                (long long)epoch, mean, (long long)a->eval_samples, best, opt, (long long)a->eval_graphs);
    *score = opt - mean;
    return FR_OK;
}

/* The smallest run (tests/test_algos.c): 2 graphs an epoch, GINs of 2 x 8, 2 steps of 8 transitions. */
static void comb_tiny(fr_run_opts *ro, void *ao)
{
    comb_opts *a = ao;
    a->hidden = 8;
    a->layers = 2;
    a->bsit = 2;
    a->tstep = 2;
    a->tbatch = 8;
    a->anneal = 8;
    a->eval_graphs = 2;
    a->eval_samples = 4;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", "kappa", NULL};

const fr_algo fr_algo_gfn_comb = {
    "gfn-comb",
    "GFlowNets for graph combinatorial optimisation (--env graph: MIS, MaxClique, MDS, MaxCut; FL-DB / DB; GIN)",
    "docs/algorithms/gfn-comb.md",
    "A GFlowNet that builds solutions of MIS, MaxClique, MDS or MaxCut (--env graph --task NAME) on Erdos-Renyi graphs "
    "G(n, p) node by node, as GFlowNet-CombOpt's main.py: P_F and the flow are GINs with sum aggregation, uniform P_B, "
    "log R = kappa u(s) annealed from --rexpit to --rexp over --annend graphs, the FL-DB loss (--loss fl) or DB. Each "
    "epoch draws --bsit graphs, rolls them out on-policy and takes --tstep Adam steps on --tbatch transitions. "
    "Evaluation: the mean sampled objective on held-out graphs against the brute-force optimum.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(comb_opts),
    comb_defaults,
    NULL,
    NULL,
    comb_setup,
    comb_header,
    comb_epoch,
    NULL,
    NULL,
    k_progress,
    comb_free,
    comb_tiny,
    0,
    1,
    comb_params,
    comb_evaluate,
    "gfn-graph",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
