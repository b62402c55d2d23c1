/* Diffusion-DPO's and Flow-DPO's options, defaults and checks, and their registry rows
 * (flowrl/algo.h; docs/algorithms/dpo.md, spec/objectives.md §15, spec/more.md §7.1). */
#include <stddef.h>
#include <string.h>

#include "core/algo/dpo.h"

#define O fr_dpo_opts
static const fr_opt k_rows_diffusion[] = {
    FR_OPT_STR(O, prefs, "prefs", "", "preference file (flowrl prefs make; required)", FR_OPT_PATH),
    FR_OPT_F64(O, beta_dpo, "beta_dpo", "5000", 0, 1e9, "beta of the DPO sigmoid", 0),
};
static const fr_opt k_rows_flow[] = {
    FR_OPT_STR(O, prefs, "prefs", "", "preference file instead of pairs from the reference's rollouts", FR_OPT_PATH),
    FR_OPT_F64(O, beta_dpo, "beta_dpo", "100", 0, 1e9, "beta of the DPO sigmoid (config.train.beta)", 0),
    FR_OPT_I64(O, num_train_timesteps, "num_train_timesteps", "0", 0, 100000,
               "(time, noise) draws accumulated per batch; 0: int(0.99 * num_steps)", 0),
    FR_OPT_I64(O, ref_update_step, "ref_update_step", "10000000", 1, 1e12,
               "copy the learner into the reference every N optimiser steps (40: online DPO; 1e7: offline)", 0),
};
static const fr_opt k_rows_balanced[] = {
    FR_OPT_STR(O, scorers, "scorers", "",
               "the vote's scorers, comma-separated: the task's reward names, 'reward' (the run's); empty: the run's "
               "reward and the task's other rewards", 0),
    FR_OPT_F64(O, beta_dpo, "beta_dpo", "100", 0, 1e9, "beta of the DPO sigmoid (Flow-DPO's)", 0),
    FR_OPT_I64(O, num_train_timesteps, "num_train_timesteps", "0", 0, 100000,
               "(time, noise) draws accumulated per batch; 0: int(0.99 * num_steps)", 0),
    FR_OPT_I64(O, ref_update_step, "ref_update_step", "10000000", 1, 1e12,
               "copy the learner into the reference every N optimiser steps (the paper's dynamic reference; 1e7: off)", 0),
};
#undef O

/* Both: 8 prompts x 8 samples per epoch in one batch, 10 sampler steps (the sampler only
 * evaluates, or draws Flow-DPO's online pairs), no KL term (the DPO β is --beta-dpo), AdamW
 * clip 1. */
static void defaults_common(fr_run_opts *ro, fr_dpo_opts *o, int flow)
{
    o->flow = flow;
    ro->smp.num_steps = 10;
    ro->c.prompts = 8;
    ro->c.group = 8;
    ro->c.num_batches = 1;
    ro->c.grad_accum = 1;
    ro->c.beta = 0.0f;
    ro->opt.max_grad_norm = 1.0f;
}

/* Diffusion-DPO on gmm2d: the launchers' β 5000, AdamW weight decay 1e-2 and clip 1; lr 1e-3
 * (the public 1e-8 × scale_lr at batch 2048 is ~2e-5 for a UNet; the 2-D model at a batch of 32
 * pairs learns nothing measurable below 3e-4, docs/algorithms/dpo.md §3); 32 pairs per epoch
 * (P·G/2) in one batch. The sampler (DDIM η 1) only evaluates. */
static void defaults_diffusion(fr_run_opts *ro, void *ao)
{
    defaults_common(ro, ao, 0);
    ro->smp.sampler = FR_SAMPLER_DDIM;
    ro->smp.noise_level = 1.0f;
    ro->opt.lr = 1e-3;
    ro->opt.weight_decay = 1e-2;
}

/* Flow-DPO: FDPO config/dpo.py (geneval_sd3 / pickscore_sd3) sized for a CPU: SDE noise 0.7,
 * 10 steps (9 draws per batch), one batch per epoch, lr 3e-4, weight decay 1e-4, clip 1, β 100;
 * G 8 samples per prompt instead of 24. */
static void defaults_flow(fr_run_opts *ro, void *ao)
{
    defaults_common(ro, ao, 1);
    ro->smp.sampler = FR_SAMPLER_SDE;
    ro->smp.noise_level = 0.7f;
    ro->opt.lr = 3e-4;
    ro->opt.weight_decay = 1e-4;
}

/* BalancedDPO: Flow-DPO's online setting [flowrl choice], pairs by the scorers' vote. */
static void defaults_balanced(fr_run_opts *ro, void *ao)
{
    defaults_flow(ro, ao);
    ((fr_dpo_opts *)ao)->vote = 1;
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_dpo_opts *o = ao;
    const char *name = o->vote ? "balanced-dpo" : o->flow ? "flow-dpo" : "diffusion-dpo";
    if (o->vote && (ro->c.group < 2 || ro->c.group % 2 != 0))
        return fr_fail(FR_ERR_ARG, "train: balanced-dpo: --group %lld, expected an even count >= 2 (consecutive samples "
                                   "form the voted pairs)", (long long)ro->c.group);
    if (!o->flow && !o->prefs[0])
        return fr_fail(FR_ERR_ARG, "train: diffusion-dpo: --prefs FILE is required (pairs of the task: flowrl prefs make "
                                   "--ckpt BASE --pairs N --out FILE)");
    if (ro->c.beta != 0.0f)
        return fr_fail(FR_ERR_ARG, "train: %s: --beta %g, expected 0 (no KL term; the DPO beta is --beta-dpo)", name,
                       (double)ro->c.beta);
    if (o->prefs[0]) {
        const int64_t n = ro->c.prompts * ro->c.group;
        if (n % 2 != 0 || (n / 2) % ro->c.num_batches != 0)
            return fr_fail(FR_ERR_ARG,
                           "train: %s: --prompts x --group = %lld samples, expected an even count whose %lld pairs "
                           "split into --num-batches %lld",
                           name, (long long)n, (long long)(n / 2), (long long)ro->c.num_batches);
    } else {
        if (ro->c.group < 2)
            return fr_fail(FR_ERR_ARG, "train: %s: --group %lld, expected >= 2 (best vs worst of each prompt)", name,
                           (long long)ro->c.group);
        if (ro->smp.sampler == FR_SAMPLER_DDIM || ro->smp.sampler == FR_SAMPLER_DPM)
            return fr_fail(FR_ERR_ARG, "train: %s: --sampler %s is a diffusion (epsilon) sampler; it trains flow models",
                           name, fr_sampler_name(ro->smp.sampler));
    }
    if (o->flow && fr_dpo_draws(ro, o) < 1)
        return fr_fail(FR_ERR_ARG, "train: %s: --num-train-timesteps 0 gives int(0.99 * --num-steps %lld) = 0 draws; "
                                   "set --num-train-timesteps", name, (long long)ro->smp.num_steps);
    return FR_OK;
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 1; /* the frozen reference of every error difference */
}

/* Both: 4 sampler steps, 4 prompts, two micro-batches of one optimiser step each (the second
 * sees a moved policy), lr 3e-3. */
static void tiny_common(fr_run_opts *ro, int64_t group)
{
    ro->smp.num_steps = 4;
    ro->c.prompts = 4;
    ro->c.group = group;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 1;
    ro->opt.lr = 3e-3;
}

static void tiny_diffusion(fr_run_opts *ro, void *ao)
{
    (void)ao;
    tiny_common(ro, 2);
}

static void tiny_flow(fr_run_opts *ro, void *ao)
{
    fr_dpo_opts *o = ao;
    tiny_common(ro, 3);
    o->num_train_timesteps = 2;
    o->ref_update_step = 2; /* online: the reference follows the learner from the second epoch */
}

static const char *const k_progress[] = {"loss", "implicit_acc", "z_mean", NULL};

const fr_algo fr_algo_diffusion_dpo = {
    .name = "diffusion-dpo",
    .summary = "Diffusion-DPO: DPO on denoising errors of an epsilon base against its frozen copy, pairs from a "
               "preference file",
    .doc = "docs/algorithms/dpo.md",
    .help = "Diffusion-DPO (Wallace et al.) on an epsilon-prediction base (flowrl pretrain --pred epsilon), offline\n"
            "from a preference file (--prefs, flowrl prefs make): per epoch P*G/2 pairs of the file in a permuted\n"
            "walk; per pair one DDPM time t and one noise shared by the preferred and the rejected sample; the\n"
            "loss -log sigmoid(-(beta/2)((e_w - e_l) - (e_ref_w - e_ref_l))) on the squared noise errors of the\n"
            "policy and the frozen base.",
    .rows = k_rows_diffusion,
    .n_rows = (int)(sizeof k_rows_diffusion / sizeof k_rows_diffusion[0]),
    .opts_size = sizeof(fr_dpo_opts),
    .defaults = defaults_diffusion,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_dpo_algo_setup,
    .header = fr_dpo_algo_header,
    .epoch = fr_dpo_algo_epoch,
    .save = fr_dpo_algo_save,
    .load = fr_dpo_algo_load,
    .progress_keys = k_progress,
    .free = fr_dpo_algo_free,
    .tiny = tiny_diffusion,
    .base_pred = FR_PRED_EPSILON,
    .prefs = FR_ALGO_PREFS_REQUIRED,
    .no_lora = 1, /* the DPO family keeps its reference as a full model (r->ref; Flow-DPO copies the policy into it) */
};

const fr_algo fr_algo_flow_dpo = {
    .name = "flow-dpo",
    .summary = "Flow-DPO: DPO on velocity errors against a frozen (or periodically updated) reference, best vs "
               "worst of the reference's samples",
    .doc = "docs/algorithms/dpo.md",
    .help = "Flow-DPO as the public Flow-GRPO repository implements it (train_sd3_dpo.py): per epoch P prompts x G\n"
            "samples of the reference (SDE, noise 0.7), the best vs the worst of each prompt; per batch\n"
            "num_train_timesteps draws of a logit-normal sigma of the shift-3 grid and a noise shared by the pair,\n"
            "accumulated into one step of -log sigmoid(-(beta/2)((e_w - e_ref_w) - (e_l - e_ref_l))) on velocity\n"
            "errors; --ref-update-step N copies the learner into the reference (online DPO); --prefs FILE trains\n"
            "from a preference file instead.",
    .rows = k_rows_flow,
    .n_rows = (int)(sizeof k_rows_flow / sizeof k_rows_flow[0]),
    .opts_size = sizeof(fr_dpo_opts),
    .defaults = defaults_flow,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_dpo_algo_setup,
    .header = fr_dpo_algo_header,
    .epoch = fr_dpo_algo_epoch,
    .save = fr_dpo_algo_save,
    .load = fr_dpo_algo_load,
    .progress_keys = k_progress,
    .free = fr_dpo_algo_free,
    .tiny = tiny_flow,
    .prefs = FR_ALGO_PREFS_OPTIONAL,
    .no_lora = 1, /* the reference is a full copy (--ref-update-step copies the policy into it) */
};

static void tiny_balanced(fr_run_opts *ro, void *ao)
{
    tiny_flow(ro, ao);
    ro->c.group = 4;
}

static const char *const k_progress_balanced[] = {"loss", "implicit_acc", "kept", NULL};

const fr_algo fr_algo_balanced_dpo = {
    .name = "balanced-dpo",
    .summary = "BalancedDPO: Flow-DPO on pairs labelled by the majority vote of several scorers (the task's rewards)",
    .doc = "docs/algorithms/balanced-dpo.md",
    .help = "BalancedDPO (arXiv 2503.12575; no public code in reach: the method is [paper/secondary], its rules are\n"
            "[flowrl choice]): per epoch P prompts x G samples of the reference (Flow-DPO's online setting); each\n"
            "consecutive pair of a prompt's samples is labelled by the hard majority vote of K scorers (--scorers:\n"
            "the run's reward and the task's other rewards by default), y = sign(sum_k sign(r_k(a) - r_k(b))), ties dropped; Flow-DPO's loss on the\n"
            "kept pairs; --ref-update-step N copies the learner into the reference (the paper's dynamic\n"
            "reference, whose interval and rule are [unverified]; off by default). With one scorer it is Flow-DPO\n"
            "on that scorer's labels.",
    .rows = k_rows_balanced,
    .n_rows = (int)(sizeof k_rows_balanced / sizeof k_rows_balanced[0]),
    .opts_size = sizeof(fr_dpo_opts),
    .defaults = defaults_balanced,
    .check = check,
    .needs_ref = needs_ref,
    .setup = fr_dpo_algo_setup,
    .header = fr_dpo_algo_header,
    .epoch = fr_dpo_algo_epoch,
    .save = fr_dpo_algo_save,
    .load = fr_dpo_algo_load,
    .progress_keys = k_progress_balanced,
    .free = fr_dpo_algo_free,
    .tiny = tiny_balanced,
    .no_lora = 1, /* the reference is a full copy (--ref-update-step copies the policy into it) */
};
