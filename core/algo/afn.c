/* Adversarial flow networks on the run loop (docs/algorithms/afn.md): `flowrl train --algo afn
 * --env tictactoe`, the trainer of flowrl/afn.h. The trainer owns π's network and log Z0; the
 * loop keeps AdamW over that list in two groups (the network at --lr, log Z0 at --lr-z without
 * weight decay: the public code's Adam with lr 1e-3 and lr_Z_0 5e-2), the records, checkpoints,
 * resume and the evaluation (% optimal moves against flowrl's minimax; loss at λ).
 *
 * One epoch: --batch-size self-play games of the current policy (Philox (seed,
 * FR_RNG_AFN_GAME, epoch, game, move)), the loss and its gradient, one optimiser step. Every draw
 * is a function of the epoch index, so a checkpoint needs nothing beyond the parameters and the
 * optimiser. audit.log records of an epoch: loss, decisive, then the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/afn.h"
#include "flowrl/algo.h"
#include "flowrl/digest.h"

typedef struct {
    int64_t batch, hidden, n_hidden;
    double lr_z, temperature, epsilon;
} afn_opts;

#define C afn_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(C, batch, "batch_size", "512", 1, 1 << 20, "self-play games per epoch (one optimiser step)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "128", 1, 8192, "width of the policy MLP", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 7, "hidden layers of the policy MLP", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.05", 1e-12, 100, "AdamW learning rate of log Z0 (the public code's lr_Z_0), no weight decay", 0),
    FR_OPT_F64(C, temperature, "temperature", "2", 1e-6, 1e6,
               "self-play samples softmax(logits / temperature) (the public code's gen_batch: 2); the loss uses pi", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "0", 0, 1, "epsilon-uniform over the legal moves mixed into self-play", 0),
};
#undef C

typedef struct {
    fr_afn_trainer *t;
} afn_state;

/* The public code's ttt.yaml on the loop's options: 1000 steps, lr 1e-3, no weight decay, no
 * clipping; an evaluation every 100 steps. */
static void afn_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 1000, 100, 100, 1e-3);
}

static void afn_free(void *p)
{
    afn_state *g = p;
    if (!g) return;
    fr_afn_trainer_free(g->t);
    free(g);
}

static fr_status afn_setup(fr_run *r, void **out)
{
    const afn_opts *a = r->ao;
    if (r->env.cls != &fr_env_tictactoe)
        return fr_fail(FR_ERR_ARG, "train: --algo afn plays tic-tac-toe: --env tictactoe (got %s)", r->env.cls->name);
    afn_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    fr_afn_opts o = fr_afn_opts_default();
    o.batch = a->batch;
    o.hidden = a->hidden;
    o.n_hidden = a->n_hidden;
    o.lambda = fr_ttt_lambda(&r->env);
    o.temperature = a->temperature;
    o.epsilon = a->epsilon;
    o.seed = r->o->run.seed;
    return fr_afn_trainer_new(&g->t, r->be, &o);
}

static fr_status afn_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    afn_state *g = state;
    int n_net;
    *n = fr_afn_trainer_params(g->t, ps, &n_net);
    groups[0] = (fr_run_group){0, n_net, -1.0, -1.0}; /* the run's --lr and --weight-decay */
    groups[1] = (fr_run_group){n_net, 1, ((const afn_opts *)r->ao)->lr_z, 0.0};
    *n_groups = 2;
    return FR_OK;
}

static void afn_header(fr_run *r, void *state)
{
    (void)state;
    const afn_opts *a = r->ao;
    fr_run_info(r, "afn: lambda %g, batch %lld games, hidden %lld x %lld, lr_z %g, temperature %g, epsilon %g; %lld positions with a "
                   "move (minimax by search)",
                fr_ttt_lambda(&r->env), (long long)a->batch, (long long)a->hidden, (long long)a->n_hidden, a->lr_z,
                a->temperature, a->epsilon, (long long)r->env.n_states);
}

static fr_status afn_epoch(fr_run *r, void *state)
{
    afn_state *g = state;
    double loss, decisive;
    FR_TRY(fr_afn_trainer_grad(g->t, r->epoch, &loss, &decisive));
    if (!isfinite(loss)) return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: the afn loss is %g", (long long)r->epoch + 1, loss);
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)loss));
    FR_TRY(fr_run_rec_scalar(r, "decisive", (float)decisive));
    float gn;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    double z0;
    FR_TRY(fr_afn_trainer_log_z(g->t, &z0));
    fr_run_metric(r, "loss", loss);
    fr_run_metric(r, "log_z0", z0);
    fr_run_metric(r, "decisive", decisive);
    return FR_OK;
}

static fr_status afn_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    afn_state *g = state;
    double frac, mass, z0;
    FR_TRY(fr_afn_trainer_optimal(g->t, &frac, &mass));
    FR_TRY(fr_afn_trainer_log_z(g->t, &z0));
    fr_run_info(r, "eval %-8s (epoch %lld): optimal_moves %.6f optimal_mass %.6f log_z0 %.6f", key, (long long)epoch,
                frac, mass, z0);
    fr_run_metric(r, "optimal_moves", frac);
    *score = frac;
    if (strcmp(key, "after") != 0) return FR_OK;
    uint64_t d;
    int64_t np;
    char hex[17];
    FR_TRY(fr_afn_trainer_digest(g->t, &d, &np));
    fr_digest_hex(d, hex);
    fr_run_info(r, "parameters %lld, digest %s", (long long)np, hex);
    return FR_OK;
}

/* The smallest run (tests/test_algos.c): 4 games an epoch, a trunk of 8 x 1, 3 epochs. */
static void afn_tiny(fr_run_opts *ro, void *ao)
{
    afn_opts *a = ao;
    a->batch = 4;
    a->hidden = 8;
    a->n_hidden = 1;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", "log_z0", "decisive", NULL};

const fr_algo fr_algo_afn = {"afn",
                             "adversarial flow network (AFlowNet) self-play on tic-tac-toe (--env tictactoe)",
                             "docs/algorithms/afn.md",
                             "AFlowNet (spec more.md §8.3): one policy pi(a|s, player) and log Z0 trained by the "
                             "two-player trajectory balance residual with the branch adjustment on --batch-size "
                             "self-play games an epoch; evaluation: % optimal moves against exact minimax.",
                             k_rows,
                             (int)(sizeof k_rows / sizeof k_rows[0]),
                             sizeof(afn_opts),
                             afn_defaults,
                             NULL,
                             NULL,
                             afn_setup,
                             afn_header,
                             afn_epoch,
                             NULL,
                             NULL,
                             k_progress,
                             afn_free,
                             afn_tiny,
                             0,
                             1,
                             afn_params,
                             afn_evaluate,
                             "game",
                             FR_ALGO_PREFS_NONE, 0 /* no_lora */};
