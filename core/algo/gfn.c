/* GFlowNets on the run loop (docs/algorithms/gfn.md): `flowrl train --algo gfn-tb|gfn-db|
 * gfn-subtb|gfn-zvar|gfn-fm|gfn-mdb|gfn-rtb|gfn-op --env NAME`, eight rows that differ only by the loss (§3), over the
 * trainer of flowrl/gfn_train.h. They train on an environment (fr_algo.on_env): the trainer owns
 * the network (and log Z for TB); the loop keeps AdamW over that list in two groups (the network
 * at --lr and --weight-decay, log Z at --lr-z without decay, as torchgfn's train_hypergrid.py),
 * the records, checkpoints, resume, signals and the evaluation, which is the trainer's exact one
 * (§5.1: L1 of P_T to R/Z, log Z error, modes; the sampled L1 with --validation-samples).
 *
 * One epoch is one iteration: --batch-size trajectories, actions from Philox (seed,
 * FR_RNG_GFN_ACTION, epoch, trajectory, step), the loss and its gradient, one optimiser step.
 * audit.log records of an epoch: loss, then the loop's state records (the network, log_z for
 * TB, optim.m.*, optim.v.*) and u0.grad_norm / u0.grad.* before the step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/gfn_common.h"
#include "flowrl/algo.h"
#include "flowrl/gfn_train.h"

typedef struct {
    int64_t batch, hidden, n_hidden, validation_samples, replay, ls_rounds, top_k;
    int uniform_pb, forward_looking, weighting, regression, ls_mh, preference, mo_beta_dist, mo_beta_therm;
    double ls_back_ratio, mo_beta, kl_weight, mo_beta_a, mo_beta_b;
    double lr_z, epsilon, temperature, sf_bias, lambda, init_log_z, linex_alpha, clip_min, beta;
    char prior[1024];
} gfn_opts;

/* torchgfn's spellings (SubTBGFlowNet.weighting; flowrl/gfn.h) */
static const char *const k_weighting_names[] = {"geometric_within", "equal_within", "equal", "geometric", "DB",
                                                "ModifiedDB", "TB", NULL};
static const char *const k_regression_names[] = {"square", "cosh", "linex", NULL};
/* TemperatureConditional's sample_dist (recursionpharma/gflownet; flowrl/gfn_train.h mo_beta_dist) */
static const char *const k_beta_dists[] = {"constant", "gamma", "uniform", "loguniform", "beta", NULL};
#define CLIP_OFF -1e300 /* --log-reward-clip-min's "off" (torchgfn v2: −inf; options are finite) */

#define C gfn_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(C, batch, "batch_size", "128", 1, 1 << 20, "trajectories per epoch (one optimiser step)", 0),
    FR_OPT_I64(C, hidden, "hidden_dim", "256", 1, 8192, "width of the MLP trunk", 0),
    FR_OPT_I64(C, n_hidden, "n_hidden", "2", 1, 15, "hidden layers of the trunk", 0),
    FR_OPT_BOOL(C, uniform_pb, "uniform_pb", "false", "P_B uniform over the parents (else a learned head)", 0),
    FR_OPT_F64(C, lr_z, "lr_z", "0.1", 1e-12, 100, "AdamW learning rate of log Z (TB; torchgfn's lr_Z), no weight decay", 0),
    FR_OPT_F64(C, epsilon, "epsilon", "0", 0, 1, "ε of the ε-uniform exploration mixture", 0),
    FR_OPT_F64(C, temperature, "temperature", "1", 1e-6, 1e6, "sampling logits divided by it (exploration)", 0),
    FR_OPT_F64(C, sf_bias, "sf_bias", "0", -1e6, 1e6, "subtracted from the exit's sampling logit (exploration)", 0),
    FR_OPT_F64(C, lambda, "subtb_lambda", "0.9", 1e-6, 1e6, "SubTB's λ (geometric_within)", 0),
    FR_OPT_F64(C, init_log_z, "init_log_z", "0", -1e6, 1e6, "initial log Z (TB)", 0),
    FR_OPT_I64(C, validation_samples, "validation_samples", "0", 0, 1e9,
               "at each evaluation also the sampled L1 and JSD of this many fresh trajectories (torchgfn: 200000; 0: off)",
               FR_OPT_RESUMABLE),
    FR_OPT_BOOL(C, forward_looking, "forward_looking", "false",
                "db / subtb: log F(s) = log F~(s) + log R(s) (torchgfn forward_looking; every HyperGrid state has a reward)", 0),
    FR_OPT_ENUM(C, weighting, "subtb_weighting", "geometric_within", k_weighting_names,
                "subtb: the sub-trajectories' weighting (torchgfn's names)", 0),
    FR_OPT_ENUM(C, regression, "regression", "square", k_regression_names,
                "g of each residual: square r^2, cosh e^r + e^-r - 2, linex (e^(a r) - a r - 1)/a^2", 0),
    FR_OPT_F64(C, linex_alpha, "linex_alpha", "1", -100, 100, "Linex's alpha (nonzero)", 0),
    FR_OPT_F64(C, clip_min, "log_reward_clip_min", "-1e300", -1e300, 1e300,
               "log rewards clamped below at it in the loss (-1e300: off, torchgfn v2's -inf; v1 used -12)", 0),
    FR_OPT_STR(C, prior, "prior", "",
               "rtb: the prior policy, a checkpoint of an earlier gfn run with this trunk (its P_F head; empty: the "
               "initial network)",
               FR_OPT_PATH),
    FR_OPT_F64(C, beta, "beta", "1", -1000, 1000, "rtb: the reward's exponent (target p_prior(x) R(x)^beta)", 0),
    FR_OPT_I64(C, replay, "replay_buffer", "0", 0, 1 << 24,
               "replay buffer of this many trajectories; each epoch trains on batch_size drawn from it (torchgfn "
               "train_hypergrid: 2048; 0: off)",
               0),
    FR_OPT_I64(C, ls_rounds, "local_search", "0", 0, 1000,
               "local search (docs/algorithms/gfn.md §10): refine each trajectory this many rounds (destroy with P_B, "
               "rebuild with P_F, accept) and train on the fresh and the refined ones (0: off)",
               0),
    FR_OPT_F64(C, ls_back_ratio, "ls_back_ratio", "0.5", 1e-6, 1,
               "local search: destroy K = ceil(ratio (n - 1)) steps of a trajectory of n actions (torchgfn back_ratio)", 0),
    FR_OPT_BOOL(C, ls_mh, "ls_mh", "false", "local search: Metropolis-Hastings acceptance (else greedy: R(x') >= R(x))", 0),
    FR_OPT_I64(C, top_k, "top_k", "0", 0, 1 << 30,
               "at each evaluation also the top-k metric (§9): the fraction of the k best states found in training, "
               "P_T of them, the expected fraction hit by 1000 fresh samples (0: off)",
               FR_OPT_RESUMABLE),
    FR_OPT_BOOL(C, preference, "preference", "false",
                "multi-objective (§13; --env mo-hypergrid): condition the policy on a preference w ~ Dirichlet(1, 1) per "
                "trajectory, reward (w . R(x))^beta; tb's log Z becomes log Z(w)",
                0),
    FR_OPT_F64(C, mo_beta, "mo_beta", "1", 1e-6, 1000,
               "--preference: the reward's exponent beta (constant; with --mo-beta-dist, the evaluation's)", 0),
    FR_OPT_ENUM(C, mo_beta_dist, "mo_beta_dist", "constant", k_beta_dists,
                "--preference: beta drawn per trajectory: gamma(shape a, scale b), uniform [a, b], loguniform [a, b] or "
                "beta(a, b), its thermometer encoding an input of the policy (constant: --mo-beta)",
                0),
    FR_OPT_F64(C, mo_beta_a, "mo_beta_a", "1", 0, 1e6, "--mo-beta-dist: the first parameter a", 0),
    FR_OPT_F64(C, mo_beta_b, "mo_beta_b", "32", 0, 1e6, "--mo-beta-dist: the second parameter b", 0),
    FR_OPT_INT(C, mo_beta_therm, "mo_beta_therm", "32", 2, 64, "--mo-beta-dist: thermometer bins of the encoding", 0),
    FR_OPT_F64(C, kl_weight, "kl_weight", "0", 0, 1e6,
               "OP-GFN's KL(P_B || uniform) term: this weight times its mean over the visited states but s0 (learned "
               "P_B; 0: off)",
               0),
};
#undef C

typedef struct {
    fr_gfn_trainer *t;
    int64_t n_modes;
} gfn_state;

static const fr_gfn_loss_kind k_losses[] = {FR_GFN_TB, FR_GFN_DB, FR_GFN_SUBTB, FR_GFN_ZVAR,
                                            FR_GFN_FM, FR_GFN_MDB, FR_GFN_RTB, FR_GFN_OP};
extern const fr_algo fr_algo_gfn_tb, fr_algo_gfn_db, fr_algo_gfn_subtb, fr_algo_gfn_zvar, fr_algo_gfn_fm, fr_algo_gfn_mdb,
    fr_algo_gfn_rtb, fr_algo_gfn_op;

static fr_gfn_loss_kind loss_of(const fr_algo *a)
{
    const fr_algo *rows[] = {&fr_algo_gfn_tb, &fr_algo_gfn_db,  &fr_algo_gfn_subtb, &fr_algo_gfn_zvar,
                             &fr_algo_gfn_fm, &fr_algo_gfn_mdb, &fr_algo_gfn_rtb, &fr_algo_gfn_op};
    for (int i = 0; i < 8; i++)
        if (a == rows[i]) return k_losses[i];
    return FR_GFN_TB;
}

/* Cross-option checks; an option a loss does not read (--forward-looking off db / subtb) is the
 * trainer's one-line refusal at set-up. */
static fr_status gfn_check(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    const gfn_opts *a = ao;
    if (a->replay != 0 && a->replay < a->batch)
        return fr_fail(FR_ERR_ARG, "--replay-buffer %lld must be 0 (off) or at least --batch-size %lld",
                       (long long)a->replay, (long long)a->batch);
    if (a->regression == FR_GFN_LINEX && a->linex_alpha == 0.0) return fr_fail(FR_ERR_ARG, "--linex-alpha must be nonzero");
    return FR_OK;
}

static void gfn_free(void *p)
{
    gfn_state *g = p;
    if (!g) return;
    fr_gfn_trainer_free(g->t);
    free(g);
}

static fr_status gfn_setup(fr_run *r, void **out)
{
    const gfn_opts *a = r->ao;
    gfn_state *g = fr_calloc(1, sizeof *g);
    if (!g) return FR_ERR_NOMEM;
    *out = g;
    fr_gfn_opts o = fr_gfn_loop_opts(r, a->batch, a->hidden, a->n_hidden, a->uniform_pb, a->epsilon, a->temperature);
    o.loss = loss_of(r->algo);
    o.lr_z = a->lr_z;
    o.sf_bias = a->sf_bias;
    o.lambda = a->lambda;
    o.init_log_z = a->init_log_z;
    o.forward_looking = a->forward_looking;
    o.weighting = (fr_gfn_subtb_weighting)a->weighting;
    o.regression = (fr_gfn_regression)a->regression;
    o.linex_alpha = a->linex_alpha;
    o.log_reward_clip_min = a->clip_min <= CLIP_OFF ? -INFINITY : a->clip_min;
    o.replay = a->replay;
    o.beta = a->beta;
    o.prior = a->prior;
    o.ls_rounds = a->ls_rounds;
    o.ls_back_ratio = a->ls_back_ratio;
    o.ls_mh = a->ls_mh;
    o.preference = a->preference;
    o.mo_beta = a->mo_beta;
    o.mo_beta_dist = a->mo_beta_dist;
    o.mo_beta_a = a->mo_beta_a;
    o.mo_beta_b = a->mo_beta_b;
    o.mo_beta_therm = a->mo_beta_therm;
    o.kl_weight = a->kl_weight;
    FR_TRY(fr_gfn_trainer_new(&g->t, r->be, &r->env, &o));
    return fr_env_target(&r->env, NULL, NULL, &g->n_modes, NULL);
}

static fr_status gfn_params(fr_run *r, void *state, fr_param **ps, int *n, fr_run_group *groups, int *n_groups)
{
    gfn_state *g = state;
    int n_net;
    *n = fr_gfn_trainer_params(g->t, ps, &n_net);
    fr_gfn_loop_groups(*n, n_net, ((const gfn_opts *)r->ao)->lr_z, groups, n_groups);
    return FR_OK;
}

static void gfn_header(fr_run *r, void *state)
{
    const gfn_opts *a = r->ao;
    gfn_state *g = state;
    if (loss_of(r->algo) == FR_GFN_RTB)
        fr_run_info(r, "rtb: prior %s, beta %g: the target is p_prior(x) R(x)^beta / Z", a->prior[0] ? a->prior : "(the initial network)",
                    a->beta);
    fr_run_info(r, "%s loss, batch %lld, hidden %lld x %lld, %s P_B, lr_z %g, epsilon %g, temperature %g, sf_bias %g; "
                   "%lld modes",
                fr_gfn_loss_name(loss_of(r->algo)), (long long)a->batch, (long long)a->hidden, (long long)a->n_hidden,
                loss_of(r->algo) == FR_GFN_RTB ? "no" : a->uniform_pb ? "uniform" : "learned", a->lr_z, a->epsilon, a->temperature, a->sf_bias,
                (long long)g->n_modes);
    char clip[32] = "off";
    if (a->clip_min > CLIP_OFF) snprintf(clip, sizeof clip, "%g", a->clip_min);
    fr_run_info(r, "regression %s (linex alpha %g), log-reward clip %s, replay buffer %lld, forward-looking %s, subtb "
                   "weighting %s",
                k_regression_names[a->regression], a->linex_alpha, clip, (long long)a->replay,
                a->forward_looking ? "on" : "off", k_weighting_names[a->weighting]);
    if (a->preference)
        fr_run_info(r, "preference-conditioned: w ~ Dirichlet(1, 1) per trajectory, reward (w . R(x))^%g; exact_l1 and "
                       "log_z_err at w = (0.5, 0.5), mo_* over 9 preferences",
                    a->mo_beta);
    if (a->preference && a->mo_beta_dist != 0)
        fr_run_info(r, "beta drawn per trajectory: %s(%g, %g), %d thermometer bins; the evaluation at beta %g",
                    k_beta_dists[a->mo_beta_dist], a->mo_beta_a, a->mo_beta_b, a->mo_beta_therm, a->mo_beta);
    if (a->kl_weight > 0.0)
        fr_run_info(r, "KL(P_B || uniform) term, weight %g (mean over the visited states but s0)", a->kl_weight);
    if (a->ls_rounds > 0)
        fr_run_info(r, "local search: %lld rounds a trajectory, back ratio %g, %s acceptance; %lld samples an epoch",
                    (long long)a->ls_rounds, a->ls_back_ratio, a->ls_mh ? "Metropolis-Hastings" : "greedy",
                    (long long)(a->batch * (1 + a->ls_rounds)));
}

static fr_status gfn_epoch(fr_run *r, void *state)
{
    gfn_state *g = state;
    fr_gfn_step_info info;
    FR_TRY(fr_gfn_trainer_grad(g->t, &info));
    FR_TRY(fr_gfn_loop_step(r, info.loss, fr_gfn_loss_name(loss_of(r->algo))));
    double log_z;
    FR_TRY(fr_gfn_trainer_log_z(g->t, &log_z));
    fr_run_metric(r, "log_z", log_z);
    fr_run_metric(r, "trajectories", (double)info.trajectories);
    fr_run_metric(r, "modes", (double)info.modes_found);
    if (((const gfn_opts *)r->ao)->ls_rounds > 0) fr_run_metric(r, "ls_accepted", (double)info.ls_accepted);
    return FR_OK;
}

static fr_status gfn_evaluate(fr_run *r, void *state, const char *key, int64_t epoch, double *score)
{
    gfn_state *g = state;
    const gfn_opts *a = r->ao;
    double l1, zerr, sl1 = NAN, jsd = NAN;
    FR_TRY(fr_gfn_trainer_eval(g->t, &l1, &zerr, NULL));
    if (a->validation_samples > 0) FR_TRY(fr_gfn_trainer_sampled(g->t, a->validation_samples, &sl1, &jsd, NULL));
    char line[96] = "", top[128] = "", mo[160] = "";
    if (a->preference) {
        double ml1, mz, cov;
        int64_t front;
        FR_TRY(fr_gfn_trainer_mo_eval(g->t, 9, 1000, &ml1, &mz, &cov, &front));
        snprintf(mo, sizeof mo, " mo_l1 %.6f mo_log_z_err %.6f pareto_cov1000 %.6f pareto_found %lld/%lld", ml1, mz, cov,
                 (long long)fr_gfn_trainer_modes(g->t), (long long)front);
        fr_run_metric(r, "mo_l1", ml1);
        fr_run_metric(r, "pareto_cov1000", cov);
    }
    if (a->validation_samples > 0) {
        snprintf(line, sizeof line, " sampled_l1 %.6f sampled_jsd %.6f", sl1, jsd);
        fr_run_metric(r, "sampled_l1", sl1);
        fr_run_metric(r, "sampled_jsd", jsd);
    }
    if (a->top_k > 0) {
        double found, mass, ex;
        FR_TRY(fr_gfn_trainer_topk(g->t, a->top_k, 1000, &found, &mass, &ex));
        snprintf(top, sizeof top, " topk_found %.6f topk_mass %.6f topk_hit1000 %.6f", found, mass, ex);
        fr_run_metric(r, "topk_found", found);
        fr_run_metric(r, "topk_mass", mass);
    }
    /* samples: R evaluations, each local search reconstruction included */
    fr_run_info(r, "eval %-8s (epoch %lld): trajectories %lld exact_l1 %.6f log_z_err %.6f modes %lld/%lld%s%s%s", key,
                (long long)epoch, (long long)(epoch * a->batch * (1 + a->ls_rounds)), l1, zerr,
                (long long)fr_gfn_trainer_modes(g->t), (long long)g->n_modes, line, top, mo);
    *score = l1;
    if (strcmp(key, "after") != 0) return FR_OK;
    /* the parameters' digest: two runs of one configuration are the same bits */
    uint64_t d;
    int64_t np;
    FR_TRY(fr_gfn_trainer_digest(g->t, &d, &np));
    fr_gfn_digest_line(r, d, np);
    return FR_OK;
}

static fr_status gfn_save(fr_run *r, void *state, fr_st_file *f)
{
    (void)r;
    return fr_gfn_trainer_save(((gfn_state *)state)->t, f);
}

static fr_status gfn_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    (void)r;
    return fr_gfn_trainer_load(((gfn_state *)state)->t, f, path);
}

/* The smallest run (tests/test_algos.c): HyperGrid 2-D of height 4, 4 trajectories an epoch, a
 * trunk of 8 x 1, and a replay buffer of 8 (it wraps in the 3 epochs: resume and the backends
 * cover its checkpoint and draws). */
static void gfn_tiny(fr_run_opts *ro, void *ao)
{
    gfn_opts *a = ao;
    a->batch = 4;
    a->replay = 8;
    a->hidden = 8;
    a->n_hidden = 1;
    fr_gfn_loop_tiny(ro);
}

static const char *const k_progress[] = {"loss", "log_z", "modes", NULL};

#define GFN_ROW(sym, NAME, LOSS)                                                                                       \
    const fr_algo sym = {NAME,                                                                                         \
                         "GFlowNet with the " LOSS " loss on an environment (--env; torchgfn's HyperGrid defaults)",   \
                         "docs/algorithms/gfn.md",                                                                     \
                         "A GFlowNet (" LOSS ", docs/algorithms/gfn.md §3) on an enumerable environment: --batch-size " \
                         "trajectories and one AdamW step per epoch; evaluation: the exact L1 of P_T to R/Z, the log Z " \
                         "error and the modes found.",                                                                 \
                         k_rows,                                                                                       \
                         (int)(sizeof k_rows / sizeof k_rows[0]),                                                      \
                         sizeof(gfn_opts),                                                                             \
                         fr_gfn_loop_defaults,                                                                         \
                         gfn_check,                                                                                    \
                         NULL,                                                                                         \
                         gfn_setup,                                                                                    \
                         gfn_header,                                                                                   \
                         gfn_epoch,                                                                                    \
                         gfn_save,                                                                                     \
                         gfn_load,                                                                                     \
                         k_progress,                                                                                   \
                         gfn_free,                                                                                     \
                         gfn_tiny,                                                                                     \
                         0,                                                                                            \
                         1,                                                                                            \
                         gfn_params,                                                                                   \
                         gfn_evaluate,                                                                                 \
                         "gfn", FR_ALGO_PREFS_NONE, 0 /* no_lora */}

GFN_ROW(fr_algo_gfn_tb, "gfn-tb", "trajectory balance");
GFN_ROW(fr_algo_gfn_db, "gfn-db", "detailed balance");
GFN_ROW(fr_algo_gfn_subtb, "gfn-subtb", "sub-trajectory balance");
GFN_ROW(fr_algo_gfn_zvar, "gfn-zvar", "log-partition variance");
GFN_ROW(fr_algo_gfn_fm, "gfn-fm", "flow matching");
GFN_ROW(fr_algo_gfn_mdb, "gfn-mdb", "modified detailed balance");
GFN_ROW(fr_algo_gfn_rtb, "gfn-rtb", "relative trajectory balance (--prior)");
GFN_ROW(fr_algo_gfn_op, "gfn-op", "OP-GFN order-preserving (the reward through comparisons only)");
