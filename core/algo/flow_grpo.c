/* Flow-GRPO (docs/algorithms/flow-grpo.md) on the run loop (flowrl/run.h, flowrl/algo.h):
 * `flowrl train --algo flow-grpo`.
 *
 * Per epoch e (audit step e + 1):
 *   1. prompts   fr_run_prompts
 *   2. rollout   G samples per prompt, sample id s = p·G + g, c0 = e, with the SDE (or CPS)
 *                sampler over T steps, storing x_j, x_{j+1}, μ_j and logp_j of every step
 *   3. rewards   fr_run_rewards;   4. advantages   fr_run_advantages, then the zero filter
 *                (fr_adv_filter_zero, purpose FR_RNG_ADV_FILTER, c0 = e)
 *   5. batches   the kept samples in the order of the keys u32(seed, FR_RNG_SHUFFLE, e, 0, 0,
 *                k) (ties by index), cut into num_batches equal batches
 *   6. updates   for each batch and trained step j: recompute v_θ (the rollout's CFG when
 *                train_cfg), logp_θ with the rollout's own step, PPO-clip (or GRPO-Guard)
 *                and β·KL to the frozen base; gradients scaled by 1/(grad_accum·n_trained);
 *                after every grad_accum batches one optimiser step (fr_run_optimizer_step).
 * Trained steps: 0..int(T·timestep_fraction)−1; Flow-GRPO-Fast's random window (one draw
 * per epoch) or MixGRPO's progressive window (steps outside run with noise 0).
 *
 * audit.log records of an epoch, in this order: window (I64 [start, len]), prompts (I32
 * (P,)), noise.x_T (N, D), noise.xi (T, N, D: ξ of each step by coordinate, 0 where the step
 * draws none), traj (T+1, N, D), mean (T, N, D), logp_old (T, N), rewards (N,), reward_mean,
 * reward_std, adv (N,), keep (U8 (N,)), order (I64 (K,); absent when K = 0), then per
 * optimiser step k: u<k>.ratio ((grad_accum, n_trained, b)), u<k>.loss, u<k>.grad_norm,
 * u<k>.grad.<NAME>; then kl, clipfrac, approx_kl; then the loop's state records. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/algo/flow_grpo.h"
#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/audit.h"
#include "flowrl/philox.h"

typedef struct {
    fr_flow_grpo_opts o;
    fr_mix_window mix;
    fr_traj_guard_params prm; /* the objective's parameters (prm.ppo for PPO-clip) */
    fr_tf tf;                 /* the family's rollout, buffers and update executor */
} fg_state;

static int cfg_on(const fr_run_opts *ro, const fr_flow_grpo_opts *o)
{
    return o->train_cfg < 0 ? ro->smp.cfg != 1.0f : o->train_cfg;
}

static int64_t fast_r1(const fr_run_opts *ro, const fr_flow_grpo_opts *o)
{
    return o->window_hi >= 0 ? o->window_hi : ro->smp.num_steps / 2;
}

void fr_fg_free(void *p)
{
    fg_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t);
}

fr_status fr_fg_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    fg_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_flow_grpo_opts *)r->ao;
    if (t->o.window == FR_FG_WINDOW_MIX) {
        FR_TRY(fr_mix_window_init(&t->mix, ro->smp.num_steps));
        t->mix.window = t->o.mix_window;
        t->mix.iters_per_group = t->o.mix_iters;
    }
    /* the update: PPO-clip or GRPO-Guard with β·KL, CFG recomputed as the rollout formed it */
    t->prm.ppo = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    t->prm.bias = t->o.guard == FR_FG_GUARD_BATCH ? FR_GUARD_BIAS_BATCH : FR_GUARD_BIAS_SAMPLE;
    const int guard = t->o.guard != FR_FG_GUARD_OFF;
    FR_TRY(fr_tf_setup(r, &t->tf, 0, cfg_on(ro, &t->o), guard ? &fr_traj_guard : &fr_traj_ppo,
                       guard ? (const void *)&t->prm : (const void *)&t->prm.ppo, t->o.kl_form));
    if (t->o.same_noise) fr_tf_group_x_T(&t->tf); /* DanceGRPO's init_same_noise */
    return FR_OK;
}

/* ---- one epoch ----------------------------------------------------------------------------- */

/* Trained steps [start, start + len) and the per-step noise of epoch e. */
static fr_status epoch_window(const fr_run *r, fg_state *t, uint32_t e, int64_t *start, int64_t *len)
{
    const fr_run_opts *ro = r->o;
    fr_tf *f = &t->tf;
    if (t->o.window == FR_FG_WINDOW_NONE) {
        *start = 0;
        FR_TRY(fr_train_steps(f->T, ro->c.timestep_fraction, len));
        f->rc.step_noise = NULL; /* FG: every step stochastic, the first T_train trained */
        return FR_OK;
    }
    if (t->o.window == FR_FG_WINDOW_FAST)
        /* one draw per epoch: flowrl rolls out an epoch in one call (call = 0, rank = 0) */
        FR_TRY(fr_fast_window(ro->run.seed, e, 0, 0, f->T, t->o.window_lo, fast_r1(ro, &t->o), t->o.window_size, start,
                              len));
    else
        fr_mix_window_get(&t->mix, start, len);
    for (int64_t i = 0; i < f->T; i++) f->step_noise[i] = (i >= *start && i < *start + *len) ? ro->smp.noise_level : 0.0f;
    f->rc.step_noise = f->step_noise;
    return FR_OK;
}

fr_status fr_fg_epoch(fr_run *r, void *state)
{
    fg_state *t = state;
    fr_tf *f = &t->tf;
    const uint32_t e = (uint32_t)r->epoch;

    int64_t ws0, wl;
    FR_TRY(epoch_window(r, t, e, &ws0, &wl));
    for (int64_t j = ws0; j < ws0 + wl; j++) FR_TRY(fr_tf_check_trained(f, j));
    FR_TRY(fr_tf_rec_window(r, ws0, wl));

    /* 1. prompts, 2. rollout, 3. rewards */
    FR_TRY(fr_tf_rollout(r, f, NULL));
    /* 4. advantages and the zero filter, 5. batches */
    int64_t K;
    FR_TRY(fr_tf_fg_batches(r, f, &K));

    /* 6. inner updates */
    FR_TRY(fr_tf_update_batches(r, f, K, ws0, wl, 1.0f));
    fr_run_metric(r, "window_start", (double)ws0);
    fr_run_metric(r, "window_len", (double)wl);
    if (t->o.window == FR_FG_WINDOW_MIX) fr_mix_window_update(&t->mix);
    return FR_OK;
}

/* MixGRPO's window after `epoch` epochs (one update per epoch): nothing to read back. */
fr_status fr_fg_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    fg_state *t = state;
    (void)f;
    (void)path;
    for (int64_t e = 0; t->o.window == FR_FG_WINDOW_MIX && e < r->epoch; e++) fr_mix_window_update(&t->mix);
    return FR_OK;
}

void fr_fg_header(fr_run *r, void *state)
{
    fg_state *t = state;
    const int cfg_train = t->tf.tr.guidance.on;
    const fr_run_opts *ro = r->o;
    int64_t tt = 0;
    fr_train_steps(ro->smp.num_steps, ro->c.timestep_fraction, &tt);
    fr_run_info(r, "sampler %s, %lld steps (%s grid, shift %g), noise %g, cfg %g (train cfg %s); window %s, %lld trained steps",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, cfg_train ? "on" : "off",
                fr_flow_grpo_window_names[t->o.window],
                t->o.window == FR_FG_WINDOW_NONE   ? (long long)tt
                : t->o.window == FR_FG_WINDOW_FAST ? (long long)(t->o.window_size > 0 ? t->o.window_size : ro->smp.num_steps - 1)
                                                   : (long long)t->o.mix_window);
    fr_run_info(r, "clip %g, beta %g (%s form), adv %s%s, guard %s; %lld batches, grad accum %lld; x_T %s",
                ro->c.clip_range, (double)ro->c.beta, fr_flow_grpo_kl_names[t->o.kl_form], fr_train_adv_name(ro->c.adv),
                ro->c.adv == FR_TRAIN_ADV_PROMPT ? (ro->c.global_std ? " (global std)" : " (group std)") : "",
                fr_flow_grpo_guard_names[t->o.guard], (long long)ro->c.num_batches, (long long)ro->c.grad_accum,
                t->o.same_noise ? "shared per prompt" : "per sample");
}
