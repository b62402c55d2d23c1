/* The Box GFlowNet on the run loop (docs/algorithms/gfn-box.md): `flowrl train --algo gfn-box
 * --env box --loss tb|zvar|db|subtb`, over the trainer of flowrl/gfn_box.h (torchgfn 1.2.1
 * tutorials/examples/train_box.py). It trains on an environment (fr_algo.on_env): the trainer owns
 * the P_F network with its s0 parameters, the P_B network and log Z (or the state flow); the loop
 * keeps Adam over them in two groups (the policies at --lr, log Z at --lr-z or the state flow with
 * its s0 value at --lr-f, as train_box.py), the records, checkpoints,
 * resume and the evaluation (the L1 and JSD of a histogram of terminal states against the exact
 * R/Z of its cells, train_box.py's KDE JSD with --kde-samples, the log Z error; a PNG of the
 * samples at the first and last evaluation).
 *
 * One epoch is one iteration: --batch-size trajectories, draws from Philox (seed,
 * FR_RNG_BOX_ACTION, epoch, trajectory, step), the loss and its gradient, one optimiser step.
 * audit.log records of an epoch: loss, then the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/gfn_box.h"

typedef struct {
    int loss, uniform_pb, n_components, n_components_s0, eval_bins, weighting;
    int64_t batch, hidden, n_hidden, eval_samples, kde_samples;
    double min_concentration, max_concentration, lr_z, init_log_z, lr_f, lambda;
} box_opts;

static const char *const k_loss_names[] = {"tb", "zvar", "db", "subtb", NULL};
/* torchgfn's spellings (SubTBGFlowNet.weighting; flowrl/gfn.h) */
static const char *const k_weighting_names[] = {"geometric_within", "equal_within", "equal", "geometric", "DB",
                                                "ModifiedDB", "TB", NULL};

#define C box_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(C, loss, "loss", "tb", k_loss_names,
                "tb (trajectory balance), zvar (log-partition variance), db (detailed balance) or subtb (sub-trajectory "
                "balance); db and subtb learn a state flow",
                0),
    FR_OPT_I64(C, batch, "batch_size", "128", 1, 1 << 20, "trajectories per epoch (one optimiser step)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "128", 1, 8192, "width of the P_F and P_B MLPs", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "4", 1, 7, "hidden layers of the MLPs", 0),
    FR_OPT_INT(C, n_components, "n_components", "2", 1, 64, "Beta mixture components of a step from s != s0 (and of P_B)", 0),
    FR_OPT_INT(C, n_components_s0, "n_components_s0", "4", 1, 64, "Beta mixture components of the first step (radius and angle)", 0),
    FR_OPT_F64(C, min_concentration, "min_concentration", "0.1", 1e-6, 1e6, "smallest Beta concentration", 0),
    FR_OPT_F64(C, max_concentration, "max_concentration", "5.1", 1e-6, 1e6, "largest Beta concentration", 0),
    FR_OPT_BOOL(C, uniform_pb, "uniform_pb", "false", "P_B uniform over the south-western quarter circle (else a learned MLP)", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.001", 1e-12, 100, "Adam learning rate of log Z (tb; train_box.py's lr_Z)", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "0", -1e6, 1e6, "initial log Z (tb)", 0),
    FR_OPT_F64(C, lr_f, "lr_f", "0.01", 1e-12, 100,
               "Adam learning rate of the state flow and its s0 value log F(s0) (db, subtb; train_box.py's lr_F)", 0),
    FR_OPT_F64(C, lambda, "subtb_lambda", "0.9", 1e-6, 1e6, "subtb's lambda (train_box.py's subTB_lambda)", 0),
    FR_OPT_ENUM(C, weighting, "subtb_weighting", "geometric_within", k_weighting_names,
                "subtb: the sub-trajectories' weighting (torchgfn's names)", 0),
    FR_OPT_I64(C, eval_samples, "eval_samples", "10000", 1, 1e8, "terminal states of each evaluation (train_box.py: 10000)", FR_OPT_RESUMABLE),
    FR_OPT_INT(C, eval_bins, "eval_bins", "10", 1, 1000, "the evaluation's histogram has eval_bins x eval_bins cells", FR_OPT_RESUMABLE),
    FR_OPT_I64(C, kde_samples, "kde_samples", "0", 0, 1e6,
               "at the last evaluation also train_box.py's KDE JSD against this many target samples (its 10000; 0: off)", FR_OPT_RESUMABLE),
};
#undef C

typedef struct {
    fr_box_trainer *t;
} box_state;

/* train_box.py: Adam at 1e-3, 3e6 trajectories of batch 128 (23,437 iterations), a validation every
 * 500; a checkpoint every 1,000. */
static void box_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 23437, 1000, 500, 1e-3);
}

static fr_status box_check(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    const box_opts *a = ao;
    if (!(a->max_concentration > a->min_concentration))
        return fr_fail(FR_ERR_ARG, "train: --max-concentration %g must exceed --min-concentration %g", a->max_concentration,
                       a->min_concentration);
    return FR_OK;
}

static void box_free(void *p)
{
    box_state *g = p;
    if (!g) return;
    fr_box_trainer_free(g->t);
    free(g);
}

static fr_status box_setup(fr_run *r, void **out)
{
    const box_opts *a = r->ao;
    box_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    fr_box_train_opts o = fr_box_train_opts_default();
    o.loss = (fr_box_loss)a->loss;
    o.batch = a->batch;
    o.hidden = a->hidden;
    o.n_hidden = a->n_hidden;
    o.pol.K = a->n_components;
    o.pol.K0 = a->n_components_s0;
    o.pol.cmin = a->min_concentration;
    o.pol.cmax = a->max_concentration;
    o.uniform_pb = a->uniform_pb;
    o.init_log_z = a->init_log_z;
    o.seed = r->o->run.seed;
    o.lambda = a->lambda;
    o.weighting = (fr_gfn_subtb_weighting)a->weighting;
    return fr_box_trainer_new(&g->t, r->be, &r->env, &o);
}

static fr_status box_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    box_state *g = state;
    int n_net;
    *n = fr_box_trainer_params(g->t, ps, &n_net);
    groups[0] = (fr_run_group){0, n_net, -1.0, -1.0}; /* the run's --lr and --weight-decay */
    *n_groups = 1;
    const box_opts *a = r->ao;
    const double lr = a->loss == FR_BOX_DB || a->loss == FR_BOX_SUBTB ? a->lr_f : a->lr_z; /* the flow, or log Z */
    if (*n > n_net) groups[(*n_groups)++] = (fr_run_group){n_net, *n - n_net, lr, 0.0};
    return FR_OK;
}

static void box_header(fr_run *r, void *state)
{
    (void)state;
    const box_opts *a = r->ao;
    fr_run_info(r, "%s loss, batch %lld, hidden %lld x %lld, %d Beta components (%d at s0), concentrations [%g, %g], %s "
                   "P_B, lr_z %g; log Z %.6f",
                k_loss_names[a->loss], (long long)a->batch, (long long)a->hidden, (long long)a->n_hidden, a->n_components,
                a->n_components_s0, a->min_concentration, a->max_concentration, a->uniform_pb ? "uniform" : "learned",
                a->lr_z, fr_box_log_z(fr_box_of(&r->env)));
    if (a->loss == FR_BOX_DB || a->loss == FR_BOX_SUBTB)
        fr_run_info(r, "state flow: an MLP of %lld x %lld and log F(s0) at lr_f %g%s%s (subtb lambda %g)", (long long)a->hidden,
                    (long long)a->n_hidden, a->lr_f, a->loss == FR_BOX_SUBTB ? ", weighting " : "",
                    a->loss == FR_BOX_SUBTB ? k_weighting_names[a->weighting] : "", a->lambda);
}

static fr_status box_epoch(fr_run *r, void *state)
{
    box_state *g = state;
    fr_box_step_info info;
    FR_TRY(fr_box_trainer_grad(g->t, &info));
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)info.loss));
    float gn;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    fr_run_metric(r, "loss", info.loss);
    fr_run_metric(r, "log_r", info.log_r_mean);
    fr_run_metric(r, "len", info.len_mean);
    return FR_OK;
}

/* samples/KEY.png: target samples (orange) under the sampler's terminal states (blue), the square
 * [0, 1]² centred. */
static fr_status write_png(fr_run *r, const char *key, const double *xs, int64_t n)
{
    const fr_box_opts *bo = fr_box_of(&r->env);
    float *xy = fr_malloc((size_t)(4 * n) * sizeof *xy);
    if (!xy) return FR_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        double gt[2];
        fr_box_target_sample(bo, r->o->run.seed, (uint32_t)i, gt);
        for (int c = 0; c < 2; c++) {
            xy[2 * i + c] = (float)gt[c] - 0.5f;
            xy[2 * (n + i) + c] = (float)xs[2 * i + c] - 0.5f;
        }
    }
    fr_status s = fr_gfn_sample_png(r, key, xy, n, 0.55f);
    free(xy);
    return s;
}

static fr_status box_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    box_state *g = state;
    const box_opts *a = r->ao;
    double *xs = fr_malloc((size_t)(2 * a->eval_samples) * sizeof *xs);
    if (!xs) return FR_ERR_NOMEM;
    fr_box_eval ev;
    const int last = strcmp(key, "after") == 0; /* the KDE (10^4 grid points x both sample sets) at the last one */
    fr_status s = fr_box_trainer_eval(g->t, a->eval_samples, a->eval_bins, last ? a->kde_samples : 0, &ev, xs);
    if (s == FR_OK) {
        char kde[48] = "";
        if (last && a->kde_samples > 0) {
            snprintf(kde, sizeof kde, " kde_jsd %.6f", ev.kde_jsd);
            fr_run_metric(r, "kde_jsd", ev.kde_jsd);
        }
        fr_run_info(r, "eval %-8s (epoch %lld): trajectories %lld l1 %.6f jsd %.6f%s log_z %.6f log_z_err %.6f (log Z %.6f, "
                       "%lld samples, %d x %d cells)",
                    key, (long long)epoch, (long long)(epoch * a->batch), ev.l1, ev.jsd, kde, ev.log_z,
                    fabs(ev.log_z - ev.log_z_true), ev.log_z_true, (long long)a->eval_samples, a->eval_bins, a->eval_bins);
        *score = ev.l1;
    }
    if (s == FR_OK && (strcmp(key, "before") == 0 || strcmp(key, "after") == 0)) s = write_png(r, key, xs, a->eval_samples);
    free(xs);
    if (s != FR_OK || strcmp(key, "after") != 0) return s;
    uint64_t d;
    int64_t np;
    FR_TRY(fr_box_trainer_digest(g->t, &d, &np));
    fr_gfn_digest_line(r, d, np);
    return FR_OK;
}

static fr_status box_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    return fr_box_trainer_save(((box_state *)state)->t, f);
}

static fr_status box_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    return fr_box_trainer_load(((box_state *)state)->t, f, path);
}

/* The smallest run (tests/test_algos.c): 4 trajectories an epoch, MLPs of 8 x 1, the KDE on 4
 * target samples. */
static void box_tiny(fr_run_opts *ro, void *ao)
{
    box_opts *a = ao;
    a->batch = 4;
    a->hidden = 8;
    a->n_hidden = 1;
    a->eval_samples = 8;
    a->eval_bins = 4;
    a->kde_samples = 4;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", "log_r", "len", NULL};

const fr_algo fr_algo_gfn_box = {
    "gfn-box",
    "continuous GFlowNet on torchgfn's Box (--env box; mixture-of-Betas policies; train_box.py)",
    "docs/algorithms/gfn-box.md",
    "A GFlowNet on the Box environment (--env box, docs/envs.md §8) with --loss tb, zvar, db or subtb, as torchgfn's "
    "train_box.py: P_F a mixture of Betas over the quarter disk at s0 (radius and angle) and over the quarter "
    "circle's angles elsewhere, with an exit probability; P_B a mixture of Betas over the south-western quarter "
    "circle (or uniform); db and subtb learn a state flow (an MLP, its s0 value a scalar, at --lr-f). Defaults: train_box.py's (batch 128, hidden 128 x 4, 2 components, 4 at s0, "
    "concentrations [0.1, 5.1], Adam lr 1e-3, lr_z 1e-3, 23437 epochs = 3e6 trajectories, an evaluation every "
    "500 on 10000 samples). Evaluation: the L1 and JSD of a histogram of terminal states against the exact R/Z "
    "of its cells, the KDE JSD at the last one (--kde-samples), the log Z error; samples/before.png and after.png.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(box_opts),
    box_defaults,
    box_check,
    NULL,
    box_setup,
    box_header,
    box_epoch,
    box_save,
    box_load,
    k_progress,
    box_free,
    box_tiny,
    0,
    1,
    box_params,
    box_evaluate,
    "gfn-continuous",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
