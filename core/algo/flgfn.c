/* FL-GFN on the run loop (docs/algorithms/flgfn.md): `flowrl train --algo fl-gfn --env set
 * [--loss fldb|db]`, the trainer of flowrl/flgfn.h. The trainer owns the network; the loop keeps
 * AdamW over it (--lr 1e-3, the code's tb_lr), records, checkpoints, resume and the evaluation (the
 * mean log R of on-policy sets and the mean R of the 100 best distinct ones). One epoch: --batch-size
 * trajectories (Philox (seed, FR_RNG_FLGFN_ACTION, epoch, trajectory, step)), the loss, one
 * optimiser step; every draw is a function of the epoch, so a checkpoint needs nothing more. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/digest.h"
#include "flowrl/flgfn.h"

typedef struct {
    int loss, pin, uniform_pb;
    int64_t batch, hidden, n_hidden, eval_samples;
    double epsilon;
} flgfn_opts;

static const char *const k_losses[] = {"fldb", "db", NULL};

#define C flgfn_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(C, loss, "loss", "fldb", k_losses, "fldb: forward-looking DB with the step energies; db: DB, log R(x) in the last residual", 0),
    FR_OPT_BOOL(C, pin, "pin_terminal", "true",
                "fldb: log F~ of the terminal set pinned to 0 (the paper); --no-pin-terminal: the network's output (the public code)", 0),
    FR_OPT_BOOL(C, uniform_pb, "uniform_pb", "false", "P_B uniform over the items in s' (the code's rand_pb)", 0),
    FR_OPT_I64(C, batch, "batch_size", "16", 1, 1 << 16, "trajectories per epoch (the code's mbsize)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "256", 1, 8192, "width of the MLP", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 7, "hidden layers of the MLP", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "-1", -1, 1,
               "epsilon-uniform exploration (the code's exp_weight); -1: the code's choice (fldb 1 on small, 0.5 "
               "otherwise; db 1)",
               0),
    FR_OPT_I64(C, eval_samples, "eval_samples", "1000", 1, 1 << 20, "on-policy sets drawn at each evaluation",
               FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_flgfn_trainer *t;
    double eps;
} flgfn_state;

/* The code's settings: 10000 steps, Adam lr 1e-3, no clipping; an evaluation every 1000. */
static void flgfn_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 10000, 1000, 1000, 1e-3);
}

static void flgfn_free(void *p)
{
    flgfn_state *g = p;
    if (!g) return;
    fr_flgfn_trainer_free(g->t);
    free(g);
}

static fr_status flgfn_setup(fr_run *r, void **out)
{
    const flgfn_opts *a = r->ao;
    flgfn_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    if (r->env.cls != &fr_env_set) return fr_fail(FR_ERR_ARG, "train: --algo fl-gfn needs --env set (got %s)", r->env.cls->name);
    g->eps = a->epsilon;
    if (g->eps < 0.0) g->eps = a->loss == FR_FLGFN_DB || fr_set_items(&r->env) == 30 ? 1.0 : 0.5;
    fr_flgfn_opts o = {(fr_flgfn_loss_kind)a->loss, a->pin, a->uniform_pb, a->batch, a->hidden, a->n_hidden, g->eps,
                       r->o->run.seed};
    return fr_flgfn_trainer_new(&g->t, r->be, &r->env, &o);
}

static fr_status flgfn_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    (void)r;
    *n = fr_flgfn_trainer_params(((flgfn_state *)state)->t, ps);
    groups[0] = (fr_run_group){0, *n, -1.0, -1.0};
    *n_groups = 1;
    return FR_OK;
}

static void flgfn_header(fr_run *r, void *state)
{
    const flgfn_opts *a = r->ao;
    fr_run_info(r, "fl-gfn: %s loss, terminal flow %s, %s P_B, batch %lld, hidden %lld x %lld, epsilon %g; best log R %.6f",
                k_losses[a->loss], a->loss == FR_FLGFN_DB ? "log R (db)" : a->pin ? "pinned" : "unpinned (the code)",
                a->uniform_pb ? "uniform" : "learned", (long long)a->batch, (long long)a->hidden, (long long)a->n_hidden,
                ((flgfn_state *)state)->eps, fr_set_max_log_r(&r->env));
}

static fr_status flgfn_epoch(fr_run *r, void *state)
{
    double loss;
    FR_TRY(fr_flgfn_trainer_grad(((flgfn_state *)state)->t, r->epoch, &loss));
    if (!isfinite(loss)) return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: the fl-gfn loss is %g", (long long)r->epoch + 1, loss);
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)loss));
    float gn;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    fr_run_metric(r, "loss", loss);
    return FR_OK;
}

static fr_status flgfn_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    flgfn_state *g = state;
    double mlr, top;
    FR_TRY(fr_flgfn_trainer_eval(g->t, ((const flgfn_opts *)r->ao)->eval_samples, &mlr, &top));
    fr_run_info(r, "eval %-8s (epoch %lld): mean_log_r %.6f (target %.6f) top100_r %.6f (best log R %.6f)", key,
                (long long)epoch, mlr, fr_set_target_mean_log_r(&r->env, NULL), top, fr_set_max_log_r(&r->env));
    fr_run_metric(r, "mean_log_r", mlr);
    fr_run_metric(r, "top100_r", top);
    *score = mlr;
    if (strcmp(key, "after") != 0) return FR_OK;
    uint64_t d;
    int64_t np;
    char hex[17];
    FR_TRY(fr_flgfn_trainer_digest(g->t, &d, &np));
    fr_digest_hex(d, hex);
    fr_run_info(r, "parameters %lld, digest %s", (long long)np, hex);
    return FR_OK;
}

static void flgfn_tiny(fr_run_opts *ro, void *ao)
{
    flgfn_opts *a = ao;
    a->batch = 2;
    a->hidden = 8;
    a->n_hidden = 1;
    a->eval_samples = 8;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", NULL};

const fr_algo fr_algo_fl_gfn = {"fl-gfn",
                                "FL-GFN (forward-looking DB) or DB on the set task (--env set; ling-pan/FL-GFN)",
                                "docs/algorithms/flgfn.md",
                                "FL-GFN (spec more.md §8.5): forward-looking detailed balance with the step energies "
                                "(terminal flow pinned, or the code's unpinned one) or DB on the set task; evaluation: "
                                "mean log R of on-policy sets and the mean R of the 100 best distinct ones.",
                                k_rows,
                                (int)(sizeof k_rows / sizeof k_rows[0]),
                                sizeof(flgfn_opts),
                                flgfn_defaults,
                                NULL,
                                NULL,
                                flgfn_setup,
                                flgfn_header,
                                flgfn_epoch,
                                NULL,
                                NULL,
                                k_progress,
                                flgfn_free,
                                flgfn_tiny,
                                0,
                                1,
                                flgfn_params,
                                flgfn_evaluate,
                                "set",
                                FR_ALGO_PREFS_NONE, 0 /* no_lora */};
