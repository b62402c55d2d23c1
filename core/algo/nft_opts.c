/* DiffusionNFT's options, defaults and checks, and its registry row (flowrl/algo.h;
 * docs/algorithms/nft.md, objectives §11). */
#include <stddef.h>

#include "core/algo/nft.h"

static const char *const k_adv_mode[] = {"all", "positive_only", "negative_only", "one_only", "binary", NULL};

#define O fr_nft_opts
static const fr_opt k_rows[] = {
    FR_OPT_F64(O, nft_beta, "nft_beta", "1", 1e-6, 1e3,
               "beta of the implicit policies: v+ = b*v + (1-b)*v_old, v- = (1+b)*v_old - b*v", 0),
    FR_OPT_ENUM(O, adv_mode, "adv_mode", "all", k_adv_mode, "how the clamped advantage becomes the reward weight r", 0),
    FR_OPT_I64(O, decay_type, "decay_type", "1", 0, 2,
               "old policy's decay after each epoch: 0 (d = 0), 1 (min(0.001 * step, 0.5)), 2 (0 before step 75, "
               "then min(0.0075 * (step - 75), 0.999))",
               0),
};
#undef O

fr_status fr_nft_opts_params(const fr_run_opts *ro, const fr_nft_opts *o, fr_nft_params *p)
{
    *p = fr_nft_defaults();
    p->beta = o->nft_beta;
    p->adv_mode = o->adv_mode;
    p->adv_clip_max = ro->c.adv_clip;
    p->kl_beta = ro->c.beta;
    return fr_nft_params_check(p);
}

/* DiffusionNFT's values on top of every run's (fr_run_opts_defaults): config/nft.py sized
 * for a CPU: deterministic 2nd-order DPM solver, 10 steps, fraction 0.99 (9 training times
 * per sample), β_KL 1e-4, global std, one optimiser step per epoch (num_batches = grad_accum). */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_DPM;
    ro->smp.num_steps = 10;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 2;
    ro->c.timestep_fraction = 0.99;
    ro->c.beta = 1e-4f;
    ro->c.global_std = 1;
}

/* J = int(T·fraction) training times per sample (`int(num_steps * timestep_fraction)`). */
static int64_t train_times(const fr_run_opts *ro) { return (int64_t)((double)ro->smp.num_steps * ro->c.timestep_fraction); }

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    fr_nft_params p;
    fr_status s = fr_nft_opts_params(ro, ao, &p);
    if (s != FR_OK) return fr_fail(s, "train: nft: %s", fr_last_error());
    if (ro->smp.sampler != FR_SAMPLER_ODE && ro->smp.sampler != FR_SAMPLER_DPM)
        return fr_fail(FR_ERR_ARG, "train: nft: --sampler %s: DiffusionNFT rolls out with a deterministic flow solver (dpm or ode)",
                       fr_sampler_name(ro->smp.sampler));
    int64_t J = train_times(ro);
    if (J < 1 || J > ro->smp.num_steps || ro->smp.num_steps > 4096)
        return fr_fail(FR_ERR_ARG,
                       "train: nft: --num-steps %lld with --timestep-fraction %g gives %lld training times, expected "
                       "1..num_steps (<= 4096)",
                       (long long)ro->smp.num_steps, ro->c.timestep_fraction, (long long)J);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    return ro->c.beta > 0.0f;
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_nft_opts *o = ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1; /* two optimiser steps per epoch */
    ro->c.timestep_fraction = 0.5;
    ro->opt.lr = 3e-3;
    o->decay_type = 1;
}

static const char *const k_progress[] = {"kl", "r_mean", "loss", NULL};

const fr_algo fr_algo_nft = {
    .name = "nft",
    .summary = "DiffusionNFT: positive / negative implicit policies on the forward process, x0 losses mixed by reward",
    .doc = "docs/algorithms/nft.md",
    .help = "DiffusionNFT (Negative-aware FineTuning): per epoch, P prompts x G samples rolled out by the old policy\n"
            "with a deterministic solver (dpm, 10 steps), scored and normalised per prompt; each sample is noised at J\n"
            "of the grid's times (a permutation per sample); the trained and old velocities form a positive and a\n"
            "negative implicit policy whose adaptively weighted x0 losses are mixed by the reward weight r, plus a KL\n"
            "to the base. After each epoch the old policy moves toward the trained one (decay_type).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_nft_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_nft_algo_setup,
    .header = fr_nft_algo_header,
    .epoch = fr_nft_algo_epoch,
    .save = fr_nft_algo_save,
    .load = fr_nft_algo_load,
    .progress_keys = k_progress,
    .free = fr_nft_algo_free,
    .tiny = tiny,
};
