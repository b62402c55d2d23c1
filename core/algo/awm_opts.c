/* AWM's options, defaults and checks, and its registry row (flowrl/algo.h;
 * docs/algorithms/awm.md §9). */
#include <stddef.h>

#include "core/algo/awm.h"

static const char *const k_time[] = {"discrete_wo_init", "discrete", "discrete_with_init", "uniform", "logit_normal",
                                     NULL};
static const char *const k_weighting[] = {"Uniform", "ghuber", "t", "t**2", "huber", NULL};
static const char *const k_ratio[] = {"exp_first", "sum_first", NULL};
static const char *const k_klw[] = {"Uniform", "ELBO", NULL};
static const char *const k_decay[] = {"linear", "constant", NULL};

#define O fr_awm_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(O, time_type, "time_type", "discrete_wo_init", k_time, "how the K training times are drawn", 0),
    FR_OPT_I64(O, train_timesteps, "train_timesteps", "6", 1, 1024, "K: training times per micro-batch", 0),
    FR_OPT_F64(O, time_shift, "time_shift", "3", 1e-3, 1e3, "shift of the uniform / logit_normal times", 0),
    FR_OPT_ENUM(O, weighting, "weighting", "ghuber", k_weighting, "the flow-matching log-prob's weighting", 0),
    FR_OPT_F64(O, ghuber_power, "ghuber_power", "0.25", 1e-6, 1, "ghuber: the power p", 0),
    FR_OPT_ENUM(O, ratio_mode, "ratio_mode", "exp_first", k_ratio,
                "PPO ratio per (sample, time) or of the sample's mean log-prob", 0),
    FR_OPT_F64(O, advantage_max, "advantage_max", "1", 1e-9, 1e6, "scaled advantage: clamp(A, +-adv_clip)/adv_clip * this",
               0),
    FR_OPT_ENUM(O, kl_weight, "kl_weight", "Uniform", k_klw, "KL to the base: Uniform or ELBO (/ 2 std^2)", 0),
    FR_OPT_F64(O, ema_beta, "ema_beta", "1", 0, 1e6, "weight of the KL to the EMA copy, 0 = off", 0),
    FR_OPT_ENUM(O, kl_ema_weight, "kl_ema_weight", "Uniform", k_klw, "EMA-KL: Uniform or ELBO", 0),
    FR_OPT_ENUM(O, kl_ema_decay_type, "kl_ema_decay_type", "linear", k_decay,
                "EMA copy's decay: linear (min(decay, 0.001 * step)) or constant", 0),
    FR_OPT_F64(O, kl_ema_decay, "kl_ema_decay", "0.3", 0, 1, "EMA copy's decay (the cap of linear)", 0),
};
#undef O

fr_status fr_awm_opts_params(const fr_run_opts *ro, const fr_awm_opts *o, fr_awm_params *p, fr_awm_time_cfg *tc)
{
    *p = fr_awm_defaults();
    p->weighting = o->weighting;
    p->ghuber_power = o->ghuber_power;
    p->ratio_mode = o->ratio_mode;
    p->clip_range = ro->c.clip_range;
    p->adv_clip_max = ro->c.adv_clip;
    p->advantage_max = o->advantage_max;
    p->beta = ro->c.beta;
    p->kl_weight = o->kl_weight;
    p->ema_beta = o->ema_beta;
    p->kl_ema_weight = o->kl_ema_weight;
    *tc = fr_awm_time_defaults();
    tc->type = o->time_type;
    tc->K = o->train_timesteps;
    tc->fraction = ro->c.timestep_fraction;
    tc->shift = o->time_shift;
    return fr_awm_params_check(p);
}

/* AWM's values on top of every run's (fr_run_opts_defaults): the public geneval/ocr
 * configuration sized for a CPU: 14 ODE steps, one optimiser step per epoch (num_batches =
 * grad_accum), fraction 0.9, clip 1, β 0.001, global std. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_ODE;
    ro->smp.num_steps = 14;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 2;
    ro->c.timestep_fraction = 0.9;
    ro->c.clip_range = 1.0;
    ro->c.beta = 0.001f;
    ro->c.global_std = 1;
    ro->opt.ema_every = 1;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_awm_opts *o = ao;
    fr_awm_params p;
    fr_awm_time_cfg tc;
    fr_status s = fr_awm_opts_params(ro, o, &p, &tc);
    if (s != FR_OK) return fr_fail(s, "train: awm: %s", fr_last_error());
    if (o->time_type <= FR_AWM_TIME_DISCRETE_WITH_INIT) {
        int64_t lo[1024], hi[1024];
        s = fr_awm_strata(&tc, ro->smp.num_steps, lo, hi);
        if (s != FR_OK)
            return fr_fail(s, "train: awm: --train-timesteps %lld with --num-steps %lld and --timestep-fraction %g: %s",
                           (long long)o->train_timesteps, (long long)ro->smp.num_steps, ro->c.timestep_fraction,
                           fr_last_error());
    }
    if (ro->smp.sampler == FR_SAMPLER_DDIM || ro->smp.sampler == FR_SAMPLER_DPM)
        return fr_fail(FR_ERR_ARG, "train: awm: --sampler %s is a diffusion (epsilon) sampler; AWM trains flow models",
                       fr_sampler_name(ro->smp.sampler));
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    return ro->c.beta > 0.0f;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_awm_opts *o = ao;
    ro->smp.num_steps = 6;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1; /* two optimiser steps: the second batch is off-policy */
    o->train_timesteps = 3;
    ro->opt.lr = 3e-3;
}

static const char *const k_progress[] = {"kl", "ema_kl", "clipfrac", "loss", NULL};

const fr_algo fr_algo_awm = {
    .name = "awm",
    .summary = "AWM: advantage-weighted flow matching on the final samples (any sampler), PPO form, KL + EMA-KL",
    .doc = "docs/algorithms/awm.md",
    .help = "Advantage Weighted Matching: per epoch, P prompts x G samples rolled out with any sampler (ODE by\n"
            "default), scored and normalised per prompt; the update is a flow-matching loss on the final samples at\n"
            "K stratified times, weighted by the (clamped, scaled) advantages in a PPO form, with a KL to the base\n"
            "and to an EMA copy of the weights.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_awm_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_awm_algo_setup,
    .header = fr_awm_algo_header,
    .epoch = fr_awm_algo_epoch,
    .save = fr_awm_algo_save,
    .load = fr_awm_algo_load,
    .progress_keys = k_progress,
    .free = fr_awm_algo_free,
    .tiny = tiny,
};
