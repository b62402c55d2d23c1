/* DGPO's options, defaults and checks, and its registry row (flowrl/algo.h;
 * docs/algorithms/dgpo.md, spec §10). */
#include <stddef.h>

#include "core/algo/dgpo.h"

#define O fr_dgpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_I64(O, num_train_timesteps, "num_train_timesteps", "4", 1, 1024,
               "M: sampler indices trained per epoch, drawn without replacement", 0),
    FR_OPT_I64(O, trunc_steps, "trunc_steps", "6", 0, 1023, "the indices are drawn from 0..trunc_steps", 0),
    FR_OPT_F64(O, beta_dpo, "beta_dpo", "100", 0, 1e9, "beta of the implicit reward in the group weight sigmoid(S_g)", 0),
    FR_OPT_BOOL(O, use_shared_noise, "use_shared_noise", "true", "one noise per prompt group and time", 0),
    FR_OPT_BOOL(O, clip_dsm, "clip_dsm", "true", "PPO-style clip: detach a clipped sample's flow-matching loss", 0),
    FR_OPT_BOOL(O, clip_kl, "clip_kl", "false", "the clip also detaches a clipped sample's KL", 0),
    FR_OPT_BOOL(O, use_ema_ref, "use_ema_ref", "false", "d_ref of the EMA reference instead of the base", 0),
    FR_OPT_I64(O, switch_ema_ref, "switch_ema_ref", "200", 0, 1000000000,
               "after this many optimiser steps the EMA reference rolls out", 0),
    FR_OPT_F64(O, ema_ref_decay, "ema_ref_decay", "0.3", 0, 1, "EMA reference decay: min(this, 0.001 * global step)", 0),
};
#undef O

fr_status fr_dgpo_opts_params(const fr_run_opts *ro, const fr_dgpo_opts *o, fr_dgpo_params *p)
{
    *p = fr_dgpo_defaults();
    p->beta_dpo = o->beta_dpo;
    p->group_size = ro->c.group;
    p->clip_range = ro->c.clip_range;
    p->clip_dsm = o->clip_dsm;
    p->clip_kl = o->clip_kl;
    p->use_ema_ref = o->use_ema_ref;
    p->adv_clip_max = ro->c.adv_clip;
    p->beta = ro->c.beta;
    return fr_dgpo_params_check(p);
}

/* DGPO's values on top of every run's (fr_run_opts_defaults): the public ocr configuration
 * (config/dgpo.py general_ocr_sd3_4gpu) sized for a CPU: 10 ODE steps (deterministic; the
 * code's DPM-Solver is an epsilon sampler here), one optimiser step per epoch (grad_accum =
 * num_batches), clip 1e-2, β 0.02, global std. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_ODE;
    ro->smp.num_steps = 10;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 2;
    ro->c.clip_range = 1e-2;
    ro->c.beta = 0.02f;
    ro->c.global_std = 1;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_dgpo_opts *o = ao;
    fr_dgpo_params p;
    fr_status s = fr_dgpo_opts_params(ro, o, &p);
    if (s != FR_OK) return fr_fail(s, "train: dgpo: %s", fr_last_error());
    if (o->trunc_steps >= ro->smp.num_steps)
        return fr_fail(FR_ERR_ARG, "train: dgpo: --trunc-steps %lld, expected < --num-steps %lld", (long long)o->trunc_steps,
                       (long long)ro->smp.num_steps);
    if (o->num_train_timesteps > o->trunc_steps + 1)
        return fr_fail(FR_ERR_ARG, "train: dgpo: --num-train-timesteps %lld, expected <= --trunc-steps + 1 = %lld",
                       (long long)o->num_train_timesteps, (long long)o->trunc_steps + 1);
    if (ro->c.prompts % ro->c.num_batches != 0)
        return fr_fail(FR_ERR_ARG,
                       "train: dgpo: --prompts %lld is not a multiple of --num-batches %lld: a micro-batch holds whole "
                       "prompt groups",
                       (long long)ro->c.prompts, (long long)ro->c.num_batches);
    if (ro->smp.sampler == FR_SAMPLER_DDIM || ro->smp.sampler == FR_SAMPLER_DPM)
        return fr_fail(FR_ERR_ARG, "train: dgpo: --sampler %s is a diffusion (epsilon) sampler; DGPO trains flow models",
                       fr_sampler_name(ro->smp.sampler));
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    fr_dgpo_params p;
    if (fr_dgpo_opts_params(ro, ao, &p) != FR_OK) return 1;
    return fr_dgpo_needs_ref(&p);
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_dgpo_opts *o = ao;
    ro->smp.num_steps = 6;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1; /* two optimiser steps: the second micro-batch sees a moved policy */
    ro->opt.lr = 3e-3;
    o->num_train_timesteps = 3;
    o->trunc_steps = 4;
    o->switch_ema_ref = 1; /* the EMA reference rolls out from the second epoch */
}

static const char *const k_progress[] = {"kl", "clipfrac", "w_mean", "loss", NULL};

const fr_algo fr_algo_dgpo = {
    .name = "dgpo",
    .summary = "DGPO: group preference on flow-matching losses of the final samples, sigmoid group weights, "
               "PPO-style clip, KL + EMA reference",
    .doc = "docs/algorithms/dgpo.md",
    .help = "Direct Group Preference Optimization: per epoch, P prompts x G samples rolled out deterministically\n"
            "(ODE by default), scored and normalised per prompt; the update is a flow-matching loss on the final\n"
            "samples at M sampler times drawn without replacement, with one noise per group, each sample weighted\n"
            "by its clamped advantage and its group's detached weight sigmoid(S_g), S_g the advantage-weighted\n"
            "implicit reward against the base; a PPO-style clip against an EMA reference, a KL to the base, and\n"
            "rollouts from the EMA reference after switch_ema_ref optimiser steps.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_dgpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_dgpo_algo_setup,
    .header = fr_dgpo_algo_header,
    .epoch = fr_dgpo_algo_epoch,
    .save = fr_dgpo_algo_save,
    .load = fr_dgpo_algo_load,
    .progress_keys = k_progress,
    .free = fr_dgpo_algo_free,
    .tiny = tiny,
};
