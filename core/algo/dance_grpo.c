/* DanceGRPO (docs/algorithms/flow-grpo.md §5) on the family engine (core/algo/traj_family.h):
 * `flowrl train --algo dance-grpo`.
 *
 * Per epoch e: the rollout with the constant-η step (`dance`, docs/algorithms/samplers.md §5) on
 * the s(linspace) grid with the quantised time input, every step stochastic, one x_T per prompt
 * shared by its G samples (init_same_noise); local-group advantages (unbiased std, eps 1e-8;
 * docs/algorithms/advantages.md §1.2); per sample a random permutation of the T − 1 steps (the
 * last is dropped), of which the first int(timestep_fraction·(T − 1)) are trained. The samples
 * in shuffled order form num_batches batches; per grad_accum batches one optimiser step over
 * every (batch, step j) with the batch's rows that train j, PPO-clip per (sample, step) scaled
 * by 1/(b·grad_accum·n_train) (DANCE: loss / (grad_accum·n_train) per sample).
 *
 * audit.log records of an epoch: prompts, noise.x_T, noise.xi, traj, mean, logp_old, rewards,
 * reward_mean, reward_std, adv (N,), order (I64 (N,)), steps (I64 (N, n_train): each sample's
 * trained steps in permutation order), per optimiser step u<k>.ratio ((rows,) in plan order:
 * batch, step, row), u<k>.loss, u<k>.grad_norm, u<k>.grad.<NAME>; then kl, clipfrac,
 * approx_kl; then the loop's state records. */
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"

typedef struct {
    int same_noise;
} fr_dance_opts;

typedef struct {
    fr_dance_opts o;
    fr_ppo_params prm;
    fr_tf tf;
    int64_t n_train;
} dance_state;

static void dance_free(void *p)
{
    dance_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t);
}

static fr_status dance_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    dance_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_dance_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    fr_tf_fastvideo_rollout(f, t->o.same_noise);
    return fr_train_steps(f->T - 1, ro->c.timestep_fraction, &t->n_train);
}

static fr_status dance_epoch(fr_run *r, void *state)
{
    dance_state *t = state;
    fr_tf *f = &t->tf;
    FR_TRY(fr_tf_rollout(r, f, NULL));
    int64_t K;
    FR_TRY(fr_tf_local_batches(r, f, &K));
    FR_TRY(fr_tf_select_steps(r, f, f->N, f->sid, f->T - 1, t->n_train));
    FR_TRY(fr_tf_plan_selected(r, f, f->N, 1, f->order, t->n_train));
    FR_TRY(fr_tf_run_plan(r, f));
    return fr_tf_finish(r, f);
}

static void dance_header(fr_run *r, void *state)
{
    dance_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g, quantised time), eta %g, cfg %g; x_T %s",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, t->o.same_noise ? "shared per prompt" : "per sample");
    fr_run_info(r, "%lld of %lld steps trained per sample (random), clip %g, adv clip %g, local-group advantages; "
                   "%lld batches, grad accum %lld",
                (long long)t->n_train, (long long)ro->smp.num_steps - 1, ro->c.clip_range, (double)ro->c.adv_clip,
                (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_dance_opts
static const fr_opt k_rows[] = {
    FR_OPT_BOOL(O, same_noise, "init_same_noise", "true", "the G samples of a prompt share x_T (DANCE's default)", 0),
};
#undef O

/* DANCE's finetune_flux_grpo.sh on a CPU: dance step η 0.3, T 16 on s(linspace) with shift 3,
 * 60% of the 15 steps trained, clip 1e-4, adv clip 5, no KL; the run's batches (DANCE's grad
 * accum 4 is per single sample: flowrl's batches already average b samples). */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_fastvideo(ro, FR_SAMPLER_DANCE, 16, 0.3f, 1e-4);
    ro->c.timestep_fraction = 0.6;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_DANCE, FR_SAMPLER_SDE};
    FR_TRY(fr_tf_check_common(ro, "dance-grpo", kinds, 2, 2, FR_TF_LOCAL_GROUPS | FR_TF_NO_KL));
    int64_t n;
    FR_TRY(fr_train_steps(ro->smp.num_steps - 1, ro->c.timestep_fraction, &n));
    if (n < 1)
        return fr_fail(FR_ERR_ARG, "train: dance-grpo: --timestep-fraction %g trains no step of %lld",
                       ro->c.timestep_fraction, (long long)ro->smp.num_steps - 1);
    return FR_OK;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
    ro->c.timestep_fraction = 0.7; /* 2 of 3 steps */
}

static const char *const k_progress[] = {"clipfrac", "ratio_min", "ratio_max", NULL};

const fr_algo fr_algo_dance_grpo = {
    .name = "dance-grpo",
    .summary = "DanceGRPO: constant-eta SDE, shared x_T per prompt, random trained steps per sample, local-group PPO",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "DanceGRPO fine-tuning: per epoch, P prompts x G samples from one x_T per prompt, rolled out with the\n"
            "constant-eta flux step on the s(linspace) grid (quantised time input), local-group advantages\n"
            "(unbiased std), PPO-clip on a random int(fraction*(T-1)) of each sample's steps; no KL.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_dance_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = dance_setup,
    .header = dance_header,
    .epoch = dance_epoch,
    .progress_keys = k_progress,
    .free = dance_free,
    .tiny = tiny,
};
