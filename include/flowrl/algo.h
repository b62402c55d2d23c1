/* The algorithm registry (`flowrl train --algo NAME`, `flowrl algos`): one row per RL
 * algorithm, as the backend registry has one per backend. An algorithm is its own files
 * (core/algo/NAME*.c), one line in core/algo_registry.c and a docs page; the run loop
 * (flowrl/run.h) does everything else.
 *
 * Per epoch the loop calls epoch() between fr_audit_begin_step and the state records; the
 * algorithm rolls out, scores (fr_run_rewards), forms advantages (fr_run_advantages),
 * updates (fr_run_optimizer_step) and records its intermediates (fr_run_rec_*) and metrics
 * (fr_run_metric). Every random number comes from Philox coordinates (seed, purpose, epoch,
 * sample, step), so a resumed run writes the same audit records as an uninterrupted one. */
#ifndef FLOWRL_ALGO_H
#define FLOWRL_ALGO_H

#include <stddef.h>

#include "flowrl/opts.h"
#include "flowrl/run.h"
#include "flowrl/safetensors.h"

enum { FR_ALGO_PREFS_NONE, FR_ALGO_PREFS_OPTIONAL, FR_ALGO_PREFS_REQUIRED };

typedef struct fr_algo {
    const char *name;      /* "flow-grpo" */
    const char *summary;   /* one line for `flowrl algos` */
    const char *doc;       /* "docs/algorithms/flow-grpo.md" */
    const char *help;      /* a paragraph for `flowrl train --algo NAME --help` */
    /* The algorithm's own options: rows over a struct of opts_size bytes. */
    const fr_opt *rows;
    int n_rows;
    size_t opts_size;
    /* Its defaults of the common options (sampler, steps, lr, clip range, beta, ...), set
     * after the rows' defaults and before argv. */
    void (*defaults)(fr_run_opts *ro, void *ao);
    /* Cross-option checks (FR_ERR_ARG, one line naming the option). */
    fr_status (*check)(const fr_run_opts *ro, const void *ao);
    /* 1: the loop keeps a frozen copy of the base in r->ref (KL to the base). */
    int (*needs_ref)(const fr_run_opts *ro, const void *ao);
    /* Allocates the algorithm's state for run r. */
    fr_status (*setup)(fr_run *r, void **state);
    /* Lines of the run header (fr_run_info). May be NULL. */
    void (*header)(fr_run *r, void *state);
    /* One epoch r->epoch. */
    fr_status (*epoch)(fr_run *r, void *state);
    /* The algorithm's state in a checkpoint beyond the weights and the optimiser (e.g. an
     * EMA-KL copy, a window position), and back. Either may be NULL. */
    fr_status (*save)(fr_run *r, void *state, fr_st_file *f);
    fr_status (*load)(fr_run *r, void *state, const fr_st_file *f, const char *path);
    /* Keys of fr_run_metric to print on the progress line after reward and accuracy
     * (NULL-terminated; may be NULL). */
    const char *const *progress_keys;
    void (*free)(void *state);
    /* The smallest configuration that runs every part of the algorithm (a few epochs of a
     * tiny gmm2d model in well under a second): the generic tests of tests/test_algos.c set
     * it on top of the defaults. May be NULL. */
    void (*tiny)(fr_run_opts *ro, void *ao);
    /* The prediction of the base it trains (fr_pred: 0 velocity, FR_PRED_EPSILON for DDPO): the
     * generic tests run it on a base of that kind. */
    int base_pred;
    /* 1: the algorithm trains on an environment (`--env NAME` and the environment's options,
     * flowrl/env.h; r->env) and owns its parameters: no base checkpoint, no task, no reward.
     * setup builds them; params hands the loop the list and its AdamW groups, over which the
     * loop keeps the optimiser state, records, checkpoints and resume (r->pol holds views of
     * the list, not a model); evaluate is the run's evaluation (before, every --eval-every
     * epochs, after). The loop steps the optimiser once per epoch's fr_run_optimizer_step. */
    int on_env;
    fr_status (*params)(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups);
    /* A line (fr_run_info) and *score: the algorithm's own held-out figure (GFlowNets: the exact
     * L1 of P_T to R/Z, lower is better). */
    fr_status (*evaluate)(fr_run *r, void *state, const char *key, int64_t epoch, double *score);
    /* on_env: the kind of environment it trains on (fr_env_class.kind: "gfn", "control"; NULL:
     * "gfn"); without --env the loop takes the registry's first class of that kind. */
    const char *env_kind;
    /* The preference file it reads (--prefs FILE, flowrl prefs make): FR_ALGO_PREFS_NONE, OPTIONAL
     * (flow-dpo: its reference's rollouts without one) or REQUIRED (diffusion-dpo, diffusion-dro);
     * `flowrl algos --json` "prefs", what bench/bench_algos.py reads to give it a file. */
    int prefs;
    /* 1: `--lora-rank` is refused (FR_ERR_ARG naming the algorithm): its extra model is a second full
     * copy of the policy (a reference copied from it, a lagged copy), not a view of an adapter on the
     * base (flowrl/lora.h, core/run_lora.c). */
    int no_lora;
} fr_algo;

/* The registered algorithms, in the order `flowrl algos` lists them; NULL-terminated. */
const fr_algo *const *fr_algos(void);
/* The algorithm of `flowrl train` without --algo (and of a config.json without "algo"):
 * the registry's first row. */
const fr_algo *fr_algo_default(void);
/* By name; FR_ERR_ARG "unknown algorithm 'x' (known: flow-grpo, awm)" otherwise. */
fr_status fr_algo_find(const char *name, const fr_algo **out);

#endif
