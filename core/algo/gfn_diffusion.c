/* Diffusion samplers trained as GFlowNets on the run loop (docs/algorithms/gfn-diffusion.md):
 * `flowrl train --algo gfn-diffusion --env gmm25|funnel|manywell --loss tb|tb-avg|db|subtb`, over
 * the trainer of flowrl/gfn_diffusion.h (GFNOrg/gfn-diffusion@255b499 energy_sampling/). It
 * trains on an energy target (fr_algo.on_env): the trainer owns the drift network, the flow
 * network (db, subtb) or log Z (tb); the loop keeps Adam over them in two groups (the drift at
 * --lr, the flow / log Z at --lr-flow, as utils.py get_gfn_optimizer), the records, checkpoints,
 * resume and the evaluation (log Ẑ_IS, ELBO, EUBO, learned log Z, Δlog Z; a PNG of the samples
 * against the target's at the first and last evaluation).
 *
 * One epoch is one iteration: --batch-size trajectories of --steps Euler–Maruyama steps, noise
 * from Philox (seed, FR_RNG_GFND_NOISE, epoch, trajectory, step), the loss and its gradient, one
 * optimiser step. audit.log records of an epoch: loss, then the loop's state records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/gfn_diffusion.h"

typedef struct {
    int loss;
    int64_t batch, steps, hidden, n_hidden, harmonics, exploration_decay, eval_samples;
    double t_scale, log_var_range, lgv_clip, gfn_clip, exploration, subtb_lambda, lr_flow, init_log_z;
    int learned_variance, langevin, zero_init, clipping, partial_energy;
    int both_ways, local_search, prioritized, ld_schedule, langevin_time_scale, pis_architectures;
    int64_t joint_layers, lgv_layers;
    int64_t buffer_size, ls_cycle, max_iter_ls, burn_in;
    double rank_weight, ld_step, target_acceptance_rate;
} gfnd_opts;

static const char *const k_loss_names[] = {"tb", "tb-avg", "db", "subtb", NULL};
static const char *const k_prio_names[] = {"rank", "none", NULL};

#define C gfnd_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(C, loss, "loss", "tb", k_loss_names, "tb, tb-avg (VarGrad), db or subtb (spec gflownets.md §7.1)", 0),
    FR_OPT_I64(C, batch, "batch_size", "300", 1, 1 << 20, "trajectories per epoch (one optimiser step)", 0),
    FR_OPT_I64(C, steps, "steps", "100", 1, 10000, "Euler-Maruyama steps T (dt = 1/T)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "64", 1, 8192, "width of the drift and flow MLPs", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 14, "hidden layers of the MLPs", 0),
    FR_OPT_I64(C, harmonics, "harmonics", "64", 1, 4096, "time embedding: sin, cos of 2 pi j t, j = 1..harmonics", 0),
    FR_OPT_F64(C, t_scale, "t_scale", "5", 1e-6, 1e6, "variance scale of P_F and of the Brownian bridge (train.py: 5; the README's Manywell runs: 1)", 0),
    FR_OPT_BOOL(C, learned_variance, "learned_variance", "false", "learn the log-variance (tanh(v) x log_var_range)", 0),
    FR_OPT_F64(C, log_var_range, "log_var_range", "4", 0, 100, "range of the learned log-variance", 0),
    FR_OPT_BOOL(C, langevin, "langevin", "false", "Langevin parametrisation: drift = NN1 + NN2 x grad log R", 0),
    FR_OPT_BOOL(C, langevin_time_scale, "langevin_time_scale", "false",
                "with --langevin: NN2(t) its own MLP of the time features (the paper's eq. 17); default NN2(x, t) a column "
                "of the drift head", 0),
    FR_OPT_BOOL(C, pis_architectures, "pis_architectures", "false",
                "the public code's PIS networks: x -> Linear(D, H) plus a time MLP of learned-phase features, GELU, "
                "--joint-layers x (Linear(H, H), GELU), a head of 2D; with --langevin NN2(t) its own MLP of --lgv-layers; "
                "implies --zero-init (docs/algorithms/gfn-diffusion.md §1, §6)", 0),
    FR_OPT_I64(C, joint_layers, "joint_layers", "2", 0, 14, "with --pis-architectures: Linear(H, H) layers after the embeddings", 0),
    FR_OPT_I64(C, lgv_layers, "lgv_layers", "3", 1, 15, "with --pis-architectures --langevin: hidden layers of NN2(t)", 0),
    FR_OPT_BOOL(C, zero_init, "zero_init", "true", "the drift head starts at 0 (the Langevin scale at 0.01)", 0),
    FR_OPT_BOOL(C, clipping, "clipping", "true", "clip grad log R to +-lgv_clip and the drift head to +-gfn_clip", 0),
    FR_OPT_F64(C, lgv_clip, "lgv_clip", "100", 1e-6, 1e12, "clip of grad log R (with --clipping)", 0),
    FR_OPT_F64(C, gfn_clip, "gfn_clip", "10000", 1e-6, 1e12, "clip of the drift head (with --clipping)", 0),
    FR_OPT_F64(C, exploration, "exploration", "0", 0, 100,
               "exploration std e: sampling variance sigma^2 dt + e^2 (the README's runs: 0.1 or 0.2)", 0),
    FR_OPT_I64(C, exploration_decay, "exploration_decay", "5000", 0, 1e12,
               "e decays linearly to 0 over this many epochs (0: constant)", 0),
    FR_OPT_F64(C, subtb_lambda, "subtb_lambda", "2", 1e-6, 1e6, "SubTB's lambda (pairs weighted lambda^(j-i))", 0),
    FR_OPT_BOOL(C, partial_energy, "partial_energy", "false", "FL-SubTB / FL-DB: the forward-looking log F", 0),
    FR_OPT_F64(C, lr_flow, "lr_flow", "0.1", 1e-12, 100,
               "Adam learning rate of log Z (tb; the README's 1e-1) or of the flow MLP (db, subtb; the README's 1e-2)", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "0", -1e6, 1e6, "initial log Z (tb)", 0),
    FR_OPT_I64(C, eval_samples, "eval_samples", "2000", 1, 1e8,
               "samples of each evaluation (log Z_IS, ELBO; as many ground-truth samples for EUBO)", FR_OPT_RESUMABLE),
    /* off-policy training (docs/algorithms/gfn-diffusion.md §8; train.py's names and defaults) */
    FR_OPT_BOOL(C, both_ways, "both_ways", "false",
                "odd epochs train on trajectories drawn back by P_B from a replay buffer of the forward batches' x_T", 0),
    FR_OPT_BOOL(C, local_search, "local_search", "false",
                "with --both-ways: MALA local search from the buffer into a second buffer the backward batches use", 0),
    FR_OPT_I64(C, buffer_size, "buffer_size", "600000", 1, 1e9, "each replay buffer's capacity (first in, first out)", 0),
    FR_OPT_ENUM(C, prioritized, "prioritized", "rank", k_prio_names,
                "buffer draws: rank (prob. 1/(rank_weight N + rank), rank 0 the highest log R) or none (uniform)", 0),
    FR_OPT_F64(C, rank_weight, "rank_weight", "0.01", 0, 1e6, "rank priority's offset per item held", 0),
    FR_OPT_I64(C, ls_cycle, "ls_cycle", "100", 1, 1e9, "local search on the odd epochs i with i mod ls_cycle < 2", 0),
    FR_OPT_I64(C, max_iter_ls, "max_iter_ls", "200", 0, 1e9, "MALA iterations of a local search", 0),
    FR_OPT_I64(C, burn_in, "burn_in", "100", 0, 1e9, "accepted MALA proposals after this iteration are kept", 0),
    FR_OPT_F64(C, ld_step, "ld_step", "0.001", 1e-12, 1e6, "MALA step size (the README's LS runs: 0.1)", 0),
    FR_OPT_BOOL(C, ld_schedule, "ld_schedule", "false", "adapt the MALA step to --target-acceptance-rate", 0),
    FR_OPT_F64(C, target_acceptance_rate, "target_acceptance_rate", "0.574", 0, 1, "the adapted step's target", 0),
};
#undef C

typedef struct {
    fr_gfnd_trainer *t;
} gfnd_state;

/* The public code's run: Adam at 1e-3 without weight decay or clipping, 25,000 iterations, an
 * evaluation every 100 (train.py); a checkpoint every 1,000. */
static void gfnd_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 25000, 1000, 100, 1e-3);
}

static fr_status gfnd_check(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    const gfnd_opts *a = ao;
    if (a->partial_energy && a->loss != FR_GFND_DB && a->loss != FR_GFND_SUBTB)
        return fr_fail(FR_ERR_ARG, "train: --partial-energy needs --loss db or subtb (a flow network)");
    if ((a->both_ways || a->local_search) && a->loss != FR_GFND_TB && a->loss != FR_GFND_TB_AVG)
        return fr_fail(FR_ERR_ARG, "train: --both-ways / --local-search need --loss tb or tb-avg (train.py --mode_bwd)");
    return FR_OK;
}

static void gfnd_free(void *p)
{
    gfnd_state *g = p;
    if (!g) return;
    fr_gfnd_trainer_free(g->t);
    free(g);
}

static fr_status gfnd_setup(fr_run *r, void **out)
{
    const gfnd_opts *a = r->ao;
    gfnd_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    fr_gfnd_opts o = fr_gfnd_opts_default();
    o.loss = (fr_gfnd_loss)a->loss;
    o.batch = a->batch;
    o.steps = a->steps;
    o.hidden = a->hidden;
    o.n_hidden = a->n_hidden;
    o.harmonics = a->harmonics;
    o.t_scale = a->t_scale;
    o.learned_variance = a->learned_variance;
    o.log_var_range = a->log_var_range;
    o.langevin = a->langevin;
    o.langevin_time_scale = a->langevin_time_scale;
    o.pis_architectures = a->pis_architectures;
    o.joint_layers = a->joint_layers;
    o.lgv_layers = a->lgv_layers;
    o.zero_init = a->zero_init;
    o.clipping = a->clipping;
    o.lgv_clip = a->lgv_clip;
    o.gfn_clip = a->gfn_clip;
    o.exploration = a->exploration;
    o.exploration_decay = a->exploration_decay;
    o.subtb_lambda = a->subtb_lambda;
    o.partial_energy = a->partial_energy;
    o.init_log_z = a->init_log_z;
    o.seed = r->o->run.seed;
    o.both_ways = a->both_ways || a->local_search; /* train.py: --local_search sets --both_ways */
    o.local_search = a->local_search;
    o.buffer_size = a->buffer_size;
    o.buffer_rank = a->prioritized == 0;
    o.rank_weight = a->rank_weight;
    o.ls_cycle = a->ls_cycle;
    o.ls_iters = a->max_iter_ls;
    o.ls_burn_in = a->burn_in;
    o.ld_step = a->ld_step;
    o.ld_schedule = a->ld_schedule;
    o.ls_target_rate = a->target_acceptance_rate;
    return fr_gfnd_trainer_new(&g->t, r->be, &r->env, &o);
}

static fr_status gfnd_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    gfnd_state *g = state;
    int n_pol;
    *n = fr_gfnd_trainer_params(g->t, ps, &n_pol);
    groups[0] = (fr_run_group){0, n_pol, -1.0, -1.0}; /* the run's --lr and --weight-decay */
    *n_groups = 1;
    if (*n > n_pol) groups[(*n_groups)++] = (fr_run_group){n_pol, *n - n_pol, ((const gfnd_opts *)r->ao)->lr_flow, 0.0};
    return FR_OK;
}

static void gfnd_header(fr_run *r, void *state)
{
    (void)state;
    const gfnd_opts *a = r->ao;
    fr_run_info(r, "%s loss, batch %lld, T %lld, t_scale %g, hidden %lld x %lld, %lld harmonics, %s variance%s%s, "
                   "exploration %g (decay %lld), lr_flow %g; log Z %.6f",
                k_loss_names[a->loss], (long long)a->batch, (long long)a->steps, a->t_scale, (long long)a->hidden,
                (long long)a->n_hidden, (long long)a->harmonics, a->learned_variance ? "learned" : "fixed",
                a->langevin ? (a->langevin_time_scale ? ", langevin NN2(t)" : ", langevin") : "", a->partial_energy ? ", partial energy" : "", a->exploration,
                (long long)a->exploration_decay, a->lr_flow, r->env.energy->log_z(&r->env));
    if (a->pis_architectures)
        fr_run_info(r, "PIS networks (--pis-architectures): state Linear(D, %lld) + time MLP of %lld learned-phase "
                       "frequencies, %lld joint layers%s; zero_init",
                    (long long)a->hidden, (long long)a->harmonics, (long long)a->joint_layers,
                    a->langevin ? ", NN2(t) LangevinScalingModelPIS" : "");
    if (a->both_ways && !a->local_search)
        fr_run_info(r, "both ways: buffer %lld (%s, rank weight %g), no local search", (long long)a->buffer_size,
                    k_prio_names[a->prioritized], a->rank_weight);
    if (a->local_search)
        fr_run_info(r, "both ways: buffer %lld (%s, rank weight %g); local search every %lld: %lld MALA steps, burn-in "
                       "%lld, step %g%s (target acceptance %g)",
                    (long long)a->buffer_size, k_prio_names[a->prioritized], a->rank_weight, (long long)a->ls_cycle,
                    (long long)a->max_iter_ls, (long long)a->burn_in, a->ld_step, a->ld_schedule ? " adapted" : " fixed",
                    a->target_acceptance_rate);
}

static fr_status gfnd_epoch(fr_run *r, void *state)
{
    gfnd_state *g = state;
    fr_gfnd_step_info info;
    FR_TRY(fr_gfnd_trainer_grad(g->t, &info));
    if (!isfinite(info.loss))
        return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: the %s loss is %g", (long long)r->epoch + 1,
                       k_loss_names[((const gfnd_opts *)r->ao)->loss], info.loss);
    FR_TRY(fr_run_rec_scalar(r, "loss", (float)info.loss));
    float gn;
    FR_TRY(fr_run_optimizer_step(r, 0, &gn));
    fr_run_metric(r, "loss", info.loss);
    fr_run_metric(r, "log_r", info.log_r_mean);
    fr_run_metric(r, "exploration", info.exploration);
    if (info.ls_kept >= 0) {
        fr_run_metric(r, "ls_kept", (double)info.ls_kept);
        fr_run_metric(r, "ls_accept", info.ls_accept);
    }
    return FR_OK;
}

/* samples/KEY.png: the target's ground-truth samples (orange) under the sampler's (blue), first
 * two coordinates, over the target's extent. */
static fr_status write_png(fr_run *r, const char *key, const double *xs, int64_t n)
{
    const fr_env *e = &r->env;
    const int64_t D = e->state_dim;
    float *xy = fr_malloc((size_t)(4 * n) * sizeof *xy);
    double *gt = fr_malloc((size_t)D * sizeof *gt);
    fr_status s = xy && gt ? FR_OK : FR_ERR_NOMEM;
    for (int64_t i = 0; i < n && s == FR_OK; i++) {
        e->energy->sample(e, r->o->run.seed, (uint32_t)i, gt);
        xy[2 * i] = (float)gt[0];
        xy[2 * i + 1] = (float)(D > 1 ? gt[1] : 0.0);
        xy[2 * (n + i)] = (float)xs[i * D];
        xy[2 * (n + i) + 1] = (float)(D > 1 ? xs[i * D + 1] : 0.0);
    }
    if (s == FR_OK) s = fr_gfn_sample_png(r, key, xy, n, (float)e->energy->extent(e));
    free(xy);
    free(gt);
    return s;
}

static fr_status gfnd_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    gfnd_state *g = state;
    const gfnd_opts *a = r->ao;
    const int png = strcmp(key, "before") == 0 || strcmp(key, "after") == 0;
    double *xs = png ? fr_malloc((size_t)(a->eval_samples * r->env.state_dim) * sizeof *xs) : NULL;
    if (png && !xs) return FR_ERR_NOMEM;
    fr_gfnd_eval ev;
    fr_status s = fr_gfnd_trainer_eval(g->t, a->eval_samples, &ev, xs);
    if (s == FR_OK) {
        const double dz = fabs(ev.log_z_is - ev.log_z_true);
        fr_run_info(r, "eval %-8s (epoch %lld): log_Z_IS %.6f ELBO %.6f EUBO %.6f log_Z_learned %.6f delta_log_Z %.6f "
                       "(log Z %.6f, %lld samples)",
                    key, (long long)epoch, ev.log_z_is, ev.elbo, ev.eubo, ev.log_z_learned, dz, ev.log_z_true,
                    (long long)a->eval_samples);
        *score = dz;
    }
    if (s == FR_OK && png) s = write_png(r, key, xs, a->eval_samples);
    free(xs);
    if (s != FR_OK || strcmp(key, "after") != 0) return s;
    uint64_t d;
    int64_t np;
    FR_TRY(fr_gfnd_trainer_digest(g->t, &d, &np));
    fr_gfn_digest_line(r, d, np);
    return FR_OK;
}

static fr_status gfnd_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    return fr_gfnd_trainer_save(((gfnd_state *)state)->t, f);
}

static fr_status gfnd_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    return fr_gfnd_trainer_load(((gfnd_state *)state)->t, f, path);
}

/* The smallest run (tests/test_algos.c): 25GMM, 4 trajectories of 4 steps, an MLP of 8 x 1 with
 * 2 harmonics, Langevin and a learned variance on (every branch of the drift), on the first
 * energy target (env_kind). */
static void gfnd_tiny(fr_run_opts *ro, void *ao)
{
    gfnd_opts *a = ao;
    a->batch = 4;
    a->steps = 4;
    a->hidden = 8;
    a->n_hidden = 1;
    a->harmonics = 2;
    a->langevin = 1;
    a->learned_variance = 1;
    a->eval_samples = 8;
    ro->run.epochs = 3;
    ro->run.checkpoint_every = 1;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", "log_r", NULL};

const fr_algo fr_algo_gfn_diffusion = {
    "gfn-diffusion",
    "diffusion sampler trained as a GFlowNet on an energy target (--env gmm25|funnel|manywell; gfn-diffusion)",
    "docs/algorithms/gfn-diffusion.md",
    "A diffusion sampler (Euler-Maruyama P_F from x0 = 0, Brownian-bridge P_B) trained as a GFlowNet on an "
    "energy target (--env gmm25, funnel or manywell) with --loss tb, tb-avg (VarGrad), db or subtb, as "
    "GFNOrg/gfn-diffusion's energy_sampling/train.py. Defaults: the public code's (batch 300, T 100, hidden 64, "
    "64 harmonics, fixed variance, subtb lambda 2, Adam lr 1e-3, 25000 epochs, an evaluation every 100 on 2000 "
    "samples) and t_scale 5, with the README's TB run for the rest (zero_init, clipping, lr_flow 1e-1; its Manywell runs use --t-scale 1). Evaluation: log Z_IS, "
    "ELBO, EUBO, the learned log Z and delta log Z = |log Z_IS - log Z|; samples/before.png and after.png.",
    k_rows,
    (int)(sizeof k_rows / sizeof k_rows[0]),
    sizeof(gfnd_opts),
    gfnd_defaults,
    gfnd_check,
    NULL,
    gfnd_setup,
    gfnd_header,
    gfnd_epoch,
    gfnd_save,
    gfnd_load,
    k_progress,
    gfnd_free,
    gfnd_tiny,
    0,
    1,
    gfnd_params,
    gfnd_evaluate,
    "energy",
    FR_ALGO_PREFS_NONE, 0 /* no_lora */,
};
