/* Diffusion-DRO's options, defaults and checks, and its registry row (flowrl/algo.h;
 * docs/algorithms/dro.md, spec/objectives.md §19). */
#include <stddef.h>

#include "core/algo/dro.h"
#include "flowrl/model.h"

#define O fr_dro_opts
static const fr_opt k_rows[] = {
    FR_OPT_STR(O, prefs, "prefs", "",
               "preference file (flowrl prefs make): its winners x_w are the expert data (required)", FR_OPT_PATH),
    FR_OPT_F64(O, margin, "margin", "1e-3", 0, 1e6, "margin of the hinge max(0, diff + margin)", 0),
    FR_OPT_I64(O, buffer_size, "buffer_size", "4", 1, 1 << 20, "trajectories the replay buffer keeps (FIFO)", 0),
    FR_OPT_I64(O, buffer_every, "buffer_every", "1", 1, 1 << 20,
               "new trajectories every this many micro-batches (buffer_sample_steps)", 0),
    FR_OPT_I64(O, lag_steps, "lag_steps", "16", 1, 1 << 30,
               "the lagged sampler copies the policy every this many micro-batches (buffer_update_steps)", 0),
    FR_OPT_BOOL(O, jitter, "jitter", "true",
                "per-trajectory timestep jitter U{0..n_train/T-1} (buffer_perturb_timesteps)", 0),
    FR_OPT_F64(O, cond_drop, "cond_drop", "0.2", 0, 1,
               "probability that a refreshed row's prompt is dropped (random_drop_prompt_probability)", 0),
};
#undef O

/* The public defaults (train.py) on a CPU: DDIM with eta 0, 20 steps, for the code's
 * DPM-Solver++ (docs/algorithms/dro.md §3); micro-batches of 4 rows (batch_size 4), 16 of them
 * accumulated into one optimiser step per epoch (gradient_accumulation_steps 16), lr 1e-4, AdamW
 * weight decay 1e-2 (torch's default), grad norm 1; no KL. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_DDIM;
    ro->smp.num_steps = 20;
    ro->smp.noise_level = 0.0f;
    ro->c.prompts = 64;
    ro->c.group = 1;
    ro->c.num_batches = 16;
    ro->c.grad_accum = 16;
    ro->c.beta = 0.0f;
    ro->opt.lr = 1e-4;
    ro->opt.weight_decay = 1e-2;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_dro_opts *o = ao;
    if (!o->prefs[0])
        return fr_fail(FR_ERR_ARG, "train: diffusion-dro: --prefs FILE is required (its winners are the expert data; "
                                   "flowrl prefs make writes one)");
    if (ro->smp.sampler != FR_SAMPLER_DDIM)
        return fr_fail(FR_ERR_ARG, "train: diffusion-dro: --sampler %s, expected ddim (the buffer's sampler on an epsilon base)",
                       fr_sampler_name(ro->smp.sampler));
    if (ro->smp.noise_level != 0.0f)
        return fr_fail(FR_ERR_ARG,
                       "train: diffusion-dro: --noise-level %g, expected 0: the buffer's DDIM is deterministic, as the "
                       "public DPM-Solver++",
                       (double)ro->smp.noise_level);
    if (o->buffer_every > ro->c.num_batches)
        return fr_fail(FR_ERR_ARG,
                       "train: diffusion-dro: --buffer-every %lld, expected <= --num-batches %lld: every epoch refreshes "
                       "the buffer at least once",
                       (long long)o->buffer_every, (long long)ro->c.num_batches);
    if (ro->c.beta != 0.0f)
        return fr_fail(FR_ERR_ARG, "train: diffusion-dro: --beta %g, expected 0: the hinge has no KL term", (double)ro->c.beta);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 1; /* e_ref: the frozen base */
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_dro_opts *o = ao;
    ro->smp.num_steps = 4;
    ro->c.prompts = 4;
    ro->c.group = 2;
    ro->c.num_batches = 4; /* b = 2 rows per micro-batch */
    ro->c.grad_accum = 2;  /* two optimiser steps per epoch */
    ro->opt.lr = 3e-3;
    o->buffer_size = 3;    /* 2 new trajectories per micro-batch: fills, then evicts, in epoch 1 */
    o->lag_steps = 3;      /* copies inside an accumulation and at an epoch boundary */
}

static const char *const k_progress[] = {"loss", "diff", "active", NULL};

const fr_algo fr_algo_dro = {
    .name = "diffusion-dro",
    .summary = "Diffusion-DRO: hinge ranking of denoising errors, expert data (preference winners) against a "
               "replay buffer of the lagged policy's trajectories",
    .doc = "docs/algorithms/dro.md",
    .help = "Diffusion-DRO fine-tuning of an epsilon-prediction base (flowrl pretrain --pred epsilon): the expert\n"
            "data are the winners x_w of --prefs; the policy data a replay buffer of (t, x_t, eps_hat) from\n"
            "trajectories of a lagged copy of the policy (DDIM eta 0, jittered timesteps). Per micro-batch:\n"
            "b buffer rows and b noised expert rows at the same t, L = mean max(0, (e_theta^exp - e_ref^exp)\n"
            "- (e_theta^pol - e_ref^pol) + margin) with e the denoising errors of the policy and the frozen base.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_dro_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_dro_algo_setup,
    .header = fr_dro_algo_header,
    .epoch = fr_dro_algo_epoch,
    .save = fr_dro_algo_save,
    .load = fr_dro_algo_load,
    .progress_keys = k_progress,
    .free = fr_dro_algo_free,
    .tiny = tiny,
    .base_pred = FR_PRED_EPSILON,
    .prefs = FR_ALGO_PREFS_REQUIRED,
    .no_lora = 1, /* the replay buffer's trajectories come from a lagged full copy of the policy */
};
