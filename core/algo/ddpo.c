/* DDPO (docs/algorithms/ddpo.md) on the family engine (core/algo/traj_family.h):
 * `flowrl train --algo ddpo`.
 *
 * Per epoch e: the rollout of an epsilon-prediction base with the DDIM step with η =
 * --noise-level (docs/algorithms/samplers.md §6), every step stochastic, one x_T per sample;
 * DDPO's per-prompt deque tracker (docs/algorithms/advantages.md §1.4; the loop checkpoints it);
 * per sample a random permutation of the T steps, of which the first int(timestep_fraction·T)
 * are trained (fr_tf_select_steps). The samples in shuffled order form num_batches batches; per
 * grad_accum batches one optimiser step over every (batch, step j) with the batch's rows that
 * train j, PPO-clip (or, with --score-function, DDPO-SF) per (sample, step) scaled by
 * 1/(b·grad_accum·n_train) (DDPO's accelerate accumulation over grad_accum·n_train). DDPO
 * accumulates the steps in permutation order; flowrl in step order (the sum is the same terms;
 * docs/algorithms/ddpo.md §2).
 *
 * audit.log records of an epoch: prompts, noise.x_T, noise.xi, traj, mean, logp_old, rewards,
 * reward_mean, reward_std, adv (N,), order (I64 (N,)), steps (I64 (N, n_train)), per optimiser
 * step u<k>.ratio ((rows,) in plan order: batch, step, row), u<k>.loss, u<k>.grad_norm,
 * u<k>.grad.<NAME>; then kl, clipfrac, approx_kl; then the loop's state records (the tracker). */
#include <stdlib.h>

#include "core/algo/traj_family.h"

typedef struct {
    int score_function;
} fr_ddpo_opts;

typedef struct {
    fr_ddpo_opts o;
    fr_ppo_params prm;
    fr_tf tf;
    int64_t n_train;
} ddpo_state;

static void ddpo_free(void *p)
{
    ddpo_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status ddpo_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    ddpo_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_ddpo_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    const fr_traj_objective *obj = t->o.score_function ? &fr_traj_score_function : &fr_traj_ppo;
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, obj, &t->prm, FR_KL_CODE));
    return fr_train_steps(t->tf.T, ro->c.timestep_fraction, &t->n_train);
}

static fr_status ddpo_epoch(fr_run *r, void *state)
{
    ddpo_state *t = state;
    fr_tf *f = &t->tf;
    FR_TRY(fr_tf_rollout(r, f, NULL));
    FR_TRY(fr_run_advantages(r, f->N, f->reward, f->group, f->adv));
    int64_t K;
    FR_TRY(fr_run_shuffle(r, f->N, NULL, f->order, &K));
    fr_tensor ot = fr_tensor_view(f->order, FR_I64, 1, &K);
    FR_TRY(fr_run_rec_tensor(r, "order", &ot));
    fr_run_metric(r, "samples", (double)f->N);
    FR_TRY(fr_tf_select_steps(r, f, f->N, f->sid, f->T, t->n_train));
    FR_TRY(fr_tf_plan_selected(r, f, f->N, 1, f->order, t->n_train));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void ddpo_header(fr_run *r, void *state)
{
    ddpo_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_tf_header_ddim(r);
    fr_run_info(r, "%lld of %lld steps trained per sample (random), %s, adv clip %g, advantages %s; %lld batches, "
                   "grad accum %lld",
                (long long)t->n_train, (long long)ro->smp.num_steps,
                t->o.score_function ? "score function (DDPO-SF)" : "PPO clip", (double)ro->c.adv_clip,
                fr_train_adv_name(ro->c.adv), (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_ddpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_BOOL(O, score_function, "score_function", "false",
                "DDPO-SF: L = -mean(A*logp), no ratio and no clip (the paper's score-function form)", 0),
};
#undef O

/* DDPO's config/base.py on a CPU: ddim η 1.0, T 10 (public 50), every step trained
 * (timestep_fraction 1.0), clip 1e-4, adv clip 5, the per-prompt deque tracker, no KL. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_ddim(ro);
    ro->c.clip_range = 1e-4;
    ro->c.adv_clip = 5.0f;
    ro->c.adv = FR_TRAIN_ADV_DDPO;
    ro->c.timestep_fraction = 1.0;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DDIM};
    FR_TRY(fr_tf_check_common(ro, "ddpo", kinds, 1, 1, FR_TF_NO_KL));
    int64_t n;
    FR_TRY(fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &n));
    if (n < 1)
        return fr_fail(FR_ERR_ARG, "train: ddpo: --timestep-fraction %g trains no step of %lld", ro->c.timestep_fraction,
                       (long long)ro->smp.num_steps);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
    ro->c.timestep_fraction = 0.75; /* 3 of 4 steps */
    ro->c.ddpo_buffer = 8;
    ro->c.ddpo_min_count = 2; /* the tracker's per-prompt statistics from the second epoch */
}

static const char *const k_progress[] = {"clipfrac", "ratio_min", "ratio_max", NULL};

const fr_algo fr_algo_ddpo = {
    .name = "ddpo",
    .summary = "DDPO: PPO (or score function) over the DDIM chain of an epsilon base, per-prompt deque tracker",
    .doc = "docs/algorithms/ddpo.md",
    .help = "DDPO fine-tuning of an epsilon-prediction base (flowrl pretrain --pred epsilon): per epoch, P prompts\n"
            "x G samples rolled out with the DDIM step with eta = --noise-level, DDPO's per-prompt deque tracker,\n"
            "PPO-clip (or --score-function) on a random int(fraction*T) of each sample's steps; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_ddpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = ddpo_setup,
    .header = ddpo_header,
    .epoch = ddpo_epoch,
    .progress_keys = k_progress,
    .free = ddpo_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
};
