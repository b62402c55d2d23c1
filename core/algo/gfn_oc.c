/* Outcome-conditioned GFlowNets on the run loop (docs/algorithms/gfn-oc.md; spec more.md §8.1,
 * paper only, its losses [unverified]; flowrl/gfn_oc.h): `flowrl train --algo gfn-oc --env
 * hypergrid` pre-trains the goal-conditioned DB baseline (reward-free: R(x | y) = 1[x = y], hindsight
 * relabelling), `--algo gfn-oc-ft --pretrained CKPT` fine-tunes the composed sampler y ~ q, x ~
 * P_F(· | y) to the environment's own reward with TB on the learned outcome predictor q and log Z.
 *
 * One epoch is one iteration and one optimiser step (the network at --lr, log Z at --lr-z without
 * decay). audit.log records of an epoch: loss, then the loop's state records. Evaluation (exact):
 * gfn-oc the goal-reaching rate mean_y P_T(y | y) (the score), the mean L1 of P_T(· | y) to
 * R(· | y)/Z(y) and the mean log Z(y) error; gfn-oc-ft the L1 of the composed sampler to R/Z (the
 * score), the log Z error, q's own L1 and the floor the frozen conditional allows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/gfn_oc.h"
#include "flowrl/gfn_train.h"

typedef struct {
    int64_t batch, hidden, n_hidden, q_hidden;
    int uniform_pb;
    double epsilon, temperature, log_floor, relabel, lr_z, init_log_z;
    char pretrained[1024];
} oc_opts;

#define C oc_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(C, batch, "batch_size", "128", 1, 1 << 20, "trajectories per epoch (one optimiser step)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "256", 1, 8192, "width of the conditional policy's MLP trunk", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 15, "hidden layers of the conditional policy's trunk", 0),
    FR_OPT_BOOL(C, uniform_pb, "uniform_pb", "false", "gfn-oc: P_B uniform over the parents (else a learned head)", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "0", 0, 1, "gfn-oc: epsilon of the epsilon-uniform exploration mixture", 0),
    FR_OPT_F64(C, temperature, "temperature", "1", 1e-6, 1e6, "gfn-oc: sampling logits divided by it", 0),
    FR_OPT_F64(C, log_floor, "oc_log_floor", "-10", -1e6, -1e-6,
               "log R(x | y) for x != y (the sparse reward 1[x = y] with a finite floor); gfn-oc-ft: the pre-training's", 0),
    FR_OPT_F64(C, relabel, "oc_relabel", "0.5", 0, 1, "gfn-oc: probability of the hindsight relabelling y := x", 0),
    FR_OPT_STR(C, pretrained, "pretrained", "",
               "gfn-oc-ft: a gfn-oc checkpoint with this trunk (the frozen conditional policy; empty: the initial network)",
               FR_OPT_PATH),
    FR_OPT_I64(C, q_hidden, "q_hidden", "64", 1, 8192, "gfn-oc-ft: width of the outcome predictor g (q = softmax g)", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.1", 1e-12, 100, "gfn-oc-ft: AdamW learning rate of log Z, no weight decay", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "0", -1e6, 1e6, "gfn-oc-ft: initial log Z", 0),
};
#undef C

typedef struct {
    fr_gfn_trainer *t; /* gfn-oc */
    fr_oc_ft *f;       /* gfn-oc-ft */
} oc_state;

extern const fr_algo fr_algo_gfn_oc, fr_algo_gfn_oc_ft;
static int is_ft(const fr_run *r) { return r->algo == &fr_algo_gfn_oc_ft; }

static void oc_free(void *p)
{
    oc_state *g = p;
    if (!g) return;
    fr_gfn_trainer_free(g->t);
    fr_oc_ft_free(g->f);
    free(g);
}

static fr_status oc_setup(fr_run *r, void **out)
{
    const oc_opts *a = r->ao;
    oc_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    if (is_ft(r)) {
        fr_oc_ft_opts o = {.batch = a->batch, .hidden = a->hidden, .n_hidden = a->n_hidden, .q_hidden = a->q_hidden,
                           .oc_log_floor = a->log_floor, .init_log_z = a->init_log_z, .seed = r->o->run.seed,
                           .pretrained = a->pretrained};
        return fr_oc_ft_new(&g->f, r->be, &r->env, &o);
    }
    fr_gfn_opts o = fr_gfn_loop_opts(r, a->batch, a->hidden, a->n_hidden, a->uniform_pb, a->epsilon, a->temperature);
    o.loss = FR_GFN_DB;
    o.outcome = 1;
    o.oc_log_floor = a->log_floor;
    o.oc_relabel = a->relabel;
    return fr_gfn_trainer_new(&g->t, r->be, &r->env, &o);
}

static fr_status oc_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    oc_state *g = state;
    int n_net;
    *n = g->f ? fr_oc_ft_params(g->f, ps, &n_net) : fr_gfn_trainer_params(g->t, ps, &n_net);
    fr_gfn_loop_groups(*n, n_net, ((const oc_opts *)r->ao)->lr_z, groups, n_groups);
    return FR_OK;
}

static void oc_header(fr_run *r, void *state)
{
    const oc_opts *a = r->ao;
    (void)state;
    if (is_ft(r)) {
        fr_run_info(r, "oc-gfn fine-tuning: y ~ q = softmax g(enc y) (g %lld wide), x ~ P_F(. | y) of %s (frozen, %lld x %lld), "
                       "TB residual log Z + log q(y) - log R(x); batch %lld, lr_z %g",
                    (long long)a->q_hidden, a->pretrained[0] ? a->pretrained : "the initial network", (long long)a->hidden,
                    (long long)a->n_hidden, (long long)a->batch, a->lr_z);
        return;
    }
    fr_run_info(r, "oc-gfn pre-training (DB baseline; the paper's losses are unverified): y ~ uniform, log R(x | y) = 0 "
                   "if x = y else %g, hindsight y := x with probability %g; batch %lld, hidden %lld x %lld, %s P_B, "
                   "epsilon %g, temperature %g",
                a->log_floor, a->relabel, (long long)a->batch, (long long)a->hidden, (long long)a->n_hidden,
                a->uniform_pb ? "uniform" : "learned", a->epsilon, a->temperature);
}

static fr_status oc_epoch(fr_run *r, void *state)
{
    oc_state *g = state;
    double loss;
    if (g->f) {
        FR_TRY(fr_oc_ft_grad(g->f, &loss));
    } else {
        fr_gfn_step_info info;
        FR_TRY(fr_gfn_trainer_grad(g->t, &info));
        loss = info.loss;
    }
    return fr_gfn_loop_step(r, loss, r->algo->name);
}

static fr_status oc_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    oc_state *g = state;
    const oc_opts *a = r->ao;
    uint64_t d;
    int64_t np;
    if (g->f) {
        double l1, zerr, lz, ql1, fl1;
        FR_TRY(fr_oc_ft_eval(g->f, &l1, &zerr, &lz, &ql1, &fl1));
        fr_run_info(r, "eval %-8s (epoch %lld): trajectories %lld exact_l1 %.6f log_z %.6f log_z_err %.6f q_l1 %.6f floor_l1 %.6f",
                    key, (long long)epoch, (long long)(epoch * a->batch), l1, lz, zerr, ql1, fl1);
        fr_run_metric(r, "exact_l1", l1);
        fr_run_metric(r, "log_z_err", zerr);
        *score = l1;
        if (strcmp(key, "after") == 0) FR_TRY(fr_oc_ft_digest(g->f, &d, &np));
    } else {
        double rate, l1, zerr;
        FR_TRY(fr_gfn_oc_eval(g->t, &rate, &l1, &zerr, NULL));
        fr_run_info(r, "eval %-8s (epoch %lld): trajectories %lld goal_rate %.6f cond_l1 %.6f cond_log_z_err %.6f", key,
                    (long long)epoch, (long long)(epoch * a->batch), rate, l1, zerr);
        fr_run_metric(r, "goal_rate", rate);
        fr_run_metric(r, "cond_l1", l1);
        *score = rate;
        if (strcmp(key, "after") == 0) FR_TRY(fr_gfn_trainer_digest(g->t, &d, &np));
    }
    if (strcmp(key, "after") == 0) fr_gfn_digest_line(r, d, np); /* two runs of one configuration are the same bits */
    return FR_OK;
}

static fr_status oc_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    oc_state *g = state;
    return g->f ? fr_oc_ft_save(g->f, f) : fr_gfn_trainer_save(g->t, f);
}

static fr_status oc_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    oc_state *g = state;
    return g->f ? fr_oc_ft_load(g->f, f, path) : fr_gfn_trainer_load(g->t, f, path);
}

/* The smallest run (tests/test_algos.c): HyperGrid 2-D of height 4, 4 trajectories an epoch, a
 * trunk of 8 x 1 (the fine-tuner's conditional: the initial network of that shape). */
static void oc_tiny(fr_run_opts *ro, void *ao)
{
    oc_opts *a = ao;
    a->batch = 4;
    a->hidden = 8;
    a->n_hidden = 1;
    a->q_hidden = 8;
    fr_gfn_loop_tiny(ro);
}

static const char *const k_progress[] = {"loss", NULL};

#define OC_ROW(sym, NAME, SUMMARY, HELP)                                                                               \
    const fr_algo sym = {NAME,        SUMMARY,   "docs/algorithms/gfn-oc.md",                                          \
                         HELP,        k_rows,    (int)(sizeof k_rows / sizeof k_rows[0]),                              \
                         sizeof(oc_opts), fr_gfn_loop_defaults, NULL,                                                  \
                         NULL,        oc_setup,  oc_header,                                                            \
                         oc_epoch,    oc_save,   oc_load,                                                              \
                         k_progress,  oc_free,   oc_tiny,                                                              \
                         0,           1,         oc_params,                                                            \
                         oc_evaluate, "gfn",     FR_ALGO_PREFS_NONE, 0 /* no_lora */}

OC_ROW(fr_algo_gfn_oc, "gfn-oc",
       "outcome-conditioned GFlowNet pre-training: the goal-reaching DB baseline (reward-free, hindsight relabelling)",
       "OC-GFN pre-training (docs/algorithms/gfn-oc.md; spec more.md §8.1, the paper's losses unverified): a goal-"
       "conditioned DB GFlowNet on an enumerable environment, R(x | y) = 1[x = y] with a finite log floor, y uniform per "
       "trajectory and relabelled y := x with probability --oc-relabel; evaluation: the exact goal-reaching rate "
       "mean_y P_T(y | y).");
OC_ROW(fr_algo_gfn_oc_ft, "gfn-oc-ft",
       "OC-GFN fine-tuning: a learned outcome predictor q(y) over a frozen pre-trained gfn-oc policy, TB to the env's reward",
       "OC-GFN fine-tuning (docs/algorithms/gfn-oc.md §3): the composed sampler y ~ q = softmax g(enc y), x ~ P_F(. | y) of "
       "the frozen --pretrained gfn-oc checkpoint, g and log Z trained with trajectory balance (log Z + log q(y) - log "
       "R(x))^2 to the environment's reward; evaluation: the exact L1 of the composed sampler to R/Z.");
