/* Guided trajectory balance on the run loop (docs/algorithms/gfn-guided.md): `flowrl train --algo
 * gfn-guided --env hypergrid [--loss guided-tb|tb] [--policy sa|ssr]`, the trainer of
 * flowrl/gfn_guided.h. The trainer owns P_F, P_B and log Z; the loop keeps Adam over them in three
 * groups (P_F and P_B at --lr 1e-4, log Z at --lr-z 1e-2, no weight decay: the two optimisers of
 * basegfn.py, which a guided step's disjoint gradients make one), the records, checkpoints, resume
 * and the evaluation (the exact L1 of P_T to R/Z, log Z, modes found).
 *
 * One epoch is one round of trainers.py: the online batch (u = 0) and the offline batch (u = 1),
 * each the loss, its gradient (each policy's clipped to --policy-clip-norm), one optimiser step and
 * log Z clamped to its floor. audit.log records of an epoch: per batch u the losses u<u>.l_tb and
 * u<u>.l_b, then the loop's records of step u. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/gfn_guided.h"

typedef struct {
    int loss, policy, pb_target, guide;
    int64_t batch, hidden, n_hidden, embed;
    double w, lr_z, epsilon, guide_temperature, logit_clip, clip_norm, init_log_z, log_z_floor;
} gtb_opts;

static const char *const k_losses[] = {"guided-tb", "tb", NULL};
static const char *const k_policies[] = {"sa", "ssr", NULL};
static const char *const k_pb_targets[] = {"guide", "code", NULL};
static const char *const k_guides[] = {"substructure", "uniform", NULL};

#define C gtb_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(C, loss, "loss", "guided-tb", k_losses,
                "guided-tb: SubstructureGFN's guided trajectory balance; tb: the same loop's plain TB (TBGFN)", 0),
    FR_OPT_ENUM(C, policy, "policy", "sa", k_policies,
                "sa: an MLP state -> action logits; ssr: relative edge flows, a scorer on enc(s) || enc(s') over the children", 0),
    FR_OPT_ENUM(C, pb_target, "pb_target", "guide", k_pb_targets,
                "guided-tb: P_B's loss (sum log P_B - log P_guide)^2 (guide, the presumably intended form) or the "
                "code's (log R + sum log P_B - log P_guide)^2 (code)",
                0),
    FR_OPT_F64(C, w, "target_mix", "0.5", 0, 1, "guided-tb: w of the target w sg(back) + (1 - w)(log P_guide + log R)", 0),
    FR_OPT_I64(C, batch, "batch_size", "16", 2, 1 << 16, "trajectories of the online and of the offline batch", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "16", 1, 8192, "width of the MLPs", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "0", 0, 7, "hidden layers (0: the code's, sa 2, ssr 1 per MLP)", 0),
    FR_OPT_I64(C, embed, "embed_dim", "16", 1, 4096, "ssr: the encoder's embedding width", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.01", 1e-12, 100, "Adam learning rate of log Z", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "0.1", 0, 1, "online batch: chance of a uniform child at each step", 0),
    FR_OPT_ENUM(C, guide, "guide", "substructure", k_guides,
                "guided-tb: substructure (children scored by the mean R of the observed x they contain) or uniform over "
                "the children that contain x",
                0),
    FR_OPT_F64(C, guide_temperature, "guide_temperature", "1", 0, 1e6, "guided-tb: the guide's scores raised to it", 0),
    FR_OPT_F64(C, logit_clip, "logit_clip", "50", 1e-6, 1e30, "policy logits clipped to [-c, c]", 0),
    FR_OPT_F64(C, clip_norm, "policy_clip_norm", "10", 0, 1e30, "each policy's gradient norm clipped to it (0: off)", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "5", -1e6, 1e6, "initial log Z (basegfn.py)", 0),
    FR_OPT_F64(C, log_z_floor, "log_z_floor", "0", -1e6, 1e6, "log Z clamped below to it after each step (basegfn.py logZ_lower)", 0),
};
#undef C

typedef struct {
    fr_gtb_trainer *t;
} gtb_state;

/* The code's settings (exps/bag/settings.yaml): Adam lr 1e-4, no weight decay; the policies clip
 * their own gradients, so the loop's clipping is off. */
static void gtb_defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_gfn_loop_defaults_at(ro, 2000, 500, 500, 1e-4);
}

static void gtb_free(void *p)
{
    gtb_state *g = p;
    if (!g) return;
    fr_gtb_trainer_free(g->t);
    free(g);
}

static fr_status gtb_setup(fr_run *r, void **out)
{
    const gtb_opts *a = r->ao;
    gtb_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    if (r->env.cls != &fr_env_hypergrid)
        return fr_fail(FR_ERR_ARG, "train: --algo gfn-guided needs --env hypergrid (got %s)", r->env.cls->name);
    fr_gtb_opts o = fr_gtb_opts_default();
    o.policy = (fr_gtb_policy)a->policy;
    o.guided = a->loss == 0;
    o.pb_target = (fr_gtb_pb_target)a->pb_target;
    o.w = a->w;
    o.batch = a->batch;
    o.hidden = a->hidden;
    o.n_hidden = a->n_hidden > 0 ? a->n_hidden : a->policy == FR_GTB_SSR ? 1 : 2;
    o.embed = a->embed;
    o.epsilon = a->epsilon;
    o.guide_temperature = a->guide_temperature;
    o.uniform_guide = a->guide == 1;
    o.logit_clip = a->logit_clip;
    o.clip_norm = a->clip_norm;
    o.init_log_z = a->init_log_z;
    o.log_z_floor = a->log_z_floor;
    o.seed = r->o->run.seed;
    return fr_gtb_trainer_new(&g->t, r->be, &r->env, &o);
}

static fr_status gtb_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    int n_f, n_b;
    *n = fr_gtb_trainer_params(((gtb_state *)state)->t, ps, &n_f, &n_b);
    groups[0] = (fr_run_group){0, n_f, -1.0, 0.0};
    groups[1] = (fr_run_group){n_f, n_b, -1.0, 0.0};
    groups[2] = (fr_run_group){n_f + n_b, 1, ((const gtb_opts *)r->ao)->lr_z, 0.0};
    *n_groups = 3;
    return FR_OK;
}

static void gtb_header(fr_run *r, void *state)
{
    (void)state;
    const gtb_opts *a = r->ao;
    fr_run_info(r, "gfn-guided: %s, %s policy, %s guide, P_B target %s, w %g, batch %lld + %lld offline, hidden %lld, epsilon %g",
                k_losses[a->loss], k_policies[a->policy], a->loss == 0 ? k_guides[a->guide] : "no",
                a->loss == 0 ? k_pb_targets[a->pb_target] : "(tb)", a->w,
                (long long)a->batch, (long long)a->batch, (long long)a->hidden, a->epsilon);
}

static fr_status gtb_epoch(fr_run *r, void *state)
{
    gtb_state *g = state;
    double sum = 0.0;
    int steps = 0;
    for (int u = 0; u < 2; u++) {
        int trained;
        double l_tb, l_b;
        char name[32];
        FR_TRY(fr_gtb_trainer_grad(g->t, r->epoch, u, &trained, &l_tb, &l_b));
        if (!trained) continue;
        if (!isfinite(l_tb) || !isfinite(l_b))
            return fr_fail(FR_ERR_NUMERIC, "train: epoch %lld: the guided tb loss is %g / %g", (long long)r->epoch + 1, l_tb, l_b);
        snprintf(name, sizeof name, "u%d.l_tb", u);
        FR_TRY(fr_run_rec_scalar(r, name, (float)l_tb));
        snprintf(name, sizeof name, "u%d.l_b", u);
        FR_TRY(fr_run_rec_scalar(r, name, (float)l_b));
        float gn;
        FR_TRY(fr_run_optimizer_step(r, steps, &gn));
        FR_TRY(fr_gtb_trainer_clamp_log_z(g->t));
        sum += l_tb;
        steps++;
    }
    int64_t modes;
    FR_TRY(fr_gtb_trainer_eval(g->t, NULL, NULL, &modes, NULL));
    fr_run_metric(r, "loss", sum / steps);
    fr_run_metric(r, "modes_found", (double)modes);
    return FR_OK;
}

static fr_status gtb_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    return fr_gtb_trainer_save(((gtb_state *)state)->t, f);
}

static fr_status gtb_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    return fr_gtb_trainer_load(((gtb_state *)state)->t, f, path);
}

static fr_status gtb_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    gtb_state *g = state;
    double l1, log_z;
    int64_t modes, obs;
    FR_TRY(fr_gtb_trainer_eval(g->t, &l1, &log_z, &modes, &obs));
    int64_t n_modes;
    FR_TRY(fr_env_target(&r->env, NULL, NULL, &n_modes, NULL));
    fr_run_info(r, "eval %-8s (epoch %lld): exact_l1 %.6f log_z %.6f modes_found %lld/%lld observed %lld", key,
                (long long)epoch, l1, log_z, (long long)modes, (long long)n_modes, (long long)obs);
    fr_run_metric(r, "exact_l1", l1);
    fr_run_metric(r, "log_z", log_z);
    fr_run_metric(r, "modes_found", (double)modes);
    *score = l1;
    if (strcmp(key, "after") != 0) return FR_OK;
    uint64_t d;
    int64_t np;
    FR_TRY(fr_gtb_trainer_digest(g->t, &d, &np));
    fr_gfn_digest_line(r, d, np);
    return FR_OK;
}

static void gtb_tiny(fr_run_opts *ro, void *ao)
{
    gtb_opts *a = ao;
    a->batch = 4;
    a->hidden = 8;
    a->embed = 4;
    ro->run.epochs = 4;
    ro->run.checkpoint_every = 2;
    ro->ev.eval_every = 2;
}

static const char *const k_progress[] = {"loss", "modes_found", NULL};

const fr_algo fr_algo_gfn_guided = {"gfn-guided",
                                    "guided trajectory balance or TB with the sa or ssr policy on HyperGrid (maxwshen/gflownet)",
                                    "docs/algorithms/gfn-guided.md",
                                    "Guided TB (spec more.md §8.4, Shen et al. ICML 2023): P_F and log Z fit a target mixing "
                                    "the detached P_B chain with a substructure guide's trajectory log-probability, P_B fits "
                                    "the guide; online and offline batches each round; --policy ssr scores each child by an "
                                    "MLP on the two states' encodings. --loss tb: the same loop's plain TB.",
                                    k_rows,
                                    (int)(sizeof k_rows / sizeof k_rows[0]),
                                    sizeof(gtb_opts),
                                    gtb_defaults,
                                    NULL,
                                    NULL,
                                    gtb_setup,
                                    gtb_header,
                                    gtb_epoch,
                                    gtb_save,
                                    gtb_load,
                                    k_progress,
                                    gtb_free,
                                    gtb_tiny,
                                    0,
                                    1,
                                    gtb_params,
                                    gtb_evaluate,
                                    "gfn",
                                    FR_ALGO_PREFS_NONE, 0 /* no_lora */};
