/* Flow-GRPO's options, defaults and checks, and its registry row (flowrl/algo.h). */
#include <math.h>
#include <stddef.h>

#include "core/algo/flow_grpo.h"
#include "core/algo/traj_family.h"

const char *const fr_flow_grpo_window_names[] = {"none", "fast", "mix", NULL};
const char *const fr_flow_grpo_guard_names[] = {"off", "batch", "sample", NULL};
const char *const fr_flow_grpo_kl_names[] = {"code", "paper", NULL};

#define O fr_flow_grpo_opts
static const fr_opt k_rows[] = {
    FR_OPT_ENUM(O, kl_form, "kl_form", "code", fr_flow_grpo_kl_names, "KL form: code (FG: no dt) or paper (with dt)", 0),
    FR_OPT_TRI(O, train_cfg, "train_cfg", "auto", "recompute CFG in training: auto (on iff cfg != 1), on, off", 0),
    FR_OPT_ENUM(O, window, "window", "none", fr_flow_grpo_window_names,
                "trained steps: none (0..int(T*fraction)-1), fast (Flow-GRPO-Fast random SDE window) or mix "
                "(MixGRPO progressive window)", 0),
    {"window_size", FR_OPT_I64, offsetof(O, window_size), sizeof(int64_t), "2", 0, 10000, NULL,
     "fast: window length, 0 = steps 0..T-2", 0, "--fast-window", "W"},
    {"window_range_lo", FR_OPT_I64, offsetof(O, window_lo), sizeof(int64_t), "0", 0, 10000, NULL,
     "fast: the window's start is drawn from LO..HI-W", 0, "--fast-range-lo", "LO"},
    {"window_range_hi", FR_OPT_I64, offsetof(O, window_hi), sizeof(int64_t), "-1", -1, 10000, NULL,
     "fast: HI of that range, -1 = T/2", 0, "--fast-range-hi", "HI"},
    FR_OPT_I64(O, mix_window, "mix_window", "4", 1, 10000, "mix: window length", 0),
    FR_OPT_I64(O, mix_iters, "mix_iters", "25", 1, 100000000, "mix: epochs before the window moves one step", 0),
    FR_OPT_ENUM(O, guard, "guard", "off", fr_flow_grpo_guard_names,
                "GRPO-Guard: off, batch (the public code's batch-wide bias) or sample (per-sample bias); its config "
                "pairs it with --clip-range 2e-6 (at 1e-4 the normalised ratio rarely reaches the clip: "
                "docs/lora.md §7.10)", 0),
    FR_OPT_BOOL(O, same_noise, "init_same_noise", "false",
                "the G samples of a prompt share x_T (DanceGRPO's option; the public Flow-GRPO draws one a sample)", 0),
};
#undef O

/* Flow-GRPO's values on top of every run's (fr_run_opts_defaults; the public SD3 configs use
 * 48 prompts x 24 samples, the CPU-sized P 8 x G 8 are the rows'): sde T 10 (diffusers grid,
 * shift 3), a 0.7, clip 1e-4, β 0.04 (code form), EMA every 8 steps when on. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_flow_grpo(ro);
    ro->opt.ema_every = 8; /* FG: EMA 0.9 every 8 optimiser steps when on */
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_flow_grpo_opts *o = ao;
    const int64_t T = ro->smp.num_steps;
#define BAD(...) return fr_fail(FR_ERR_ARG, "train: flow-grpo: " __VA_ARGS__)
    if (ro->smp.sampler != FR_SAMPLER_SDE && ro->smp.sampler != FR_SAMPLER_CPS)
        BAD("--sampler %s: Flow-GRPO trains the sde and cps samplers", fr_sampler_name(ro->smp.sampler));
    if (T < 2) BAD("--num-steps %lld: at least 2", (long long)T);
    if (!(ro->smp.noise_level > 0.0f)) BAD("--noise-level %g: the SDE needs a > 0", (double)ro->smp.noise_level);
    if (!(ro->c.clip_range > 0.0 && ro->c.clip_range < 1.0))
        BAD("--clip-range %g: the PPO clip needs 0 < c < 1 (the ratio is clipped to [1 - c, 1 + c])", ro->c.clip_range);
    if (!(ro->c.adv_clip > 0.0f)) BAD("--adv-clip %g: expected > 0", (double)ro->c.adv_clip);
    if (o->window == FR_FG_WINDOW_FAST) {
        int64_t r1 = o->window_hi >= 0 ? o->window_hi : T / 2;
        if (o->window_size >= T ||
            (o->window_size > 0 && !(o->window_lo <= r1 - o->window_size && r1 <= T)))
            BAD("fast window %lld in [%lld, %lld] with %lld steps: need W < T and LO <= HI - W, HI <= T",
                (long long)o->window_size, (long long)o->window_lo, (long long)r1, (long long)T);
    }
    if (o->window == FR_FG_WINDOW_MIX) {
        if (T < 3) BAD("the mix window needs at least 3 steps");
        if (o->mix_window > T) BAD("--mix-window %lld exceeds the %lld steps", (long long)o->mix_window, (long long)T);
    }
    if (o->guard != FR_FG_GUARD_OFF && ro->smp.sampler != FR_SAMPLER_SDE)
        BAD("GRPO-Guard is defined for the sde sampler only (docs/algorithms/flow-grpo.md)");
    return FR_OK;
#undef BAD
}

static void tiny(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_tiny(ro);
}

static const char *const k_progress[] = {"kl", "clipfrac", "ratio_min", "ratio_max", "kept", NULL};

const fr_algo fr_algo_flow_grpo = {
    .name = "flow-grpo",
    .summary = "Flow-GRPO: SDE rollouts, group-relative advantages, PPO-clip + KL (Fast/Mix windows, GRPO-Guard)",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "Flow-GRPO fine-tuning: per epoch, P prompts x G samples rolled out with the SDE (or CPS) sampler over\n"
            "T training steps, scored by the task reward, group-normalised advantages, PPO-clip updates of every\n"
            "trained step with a KL penalty to the frozen base. Flow-GRPO-Fast's and MixGRPO's windows and\n"
            "GRPO-Guard are options.",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_flow_grpo_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = fr_fg_setup,
    .header = fr_fg_header,
    .epoch = fr_fg_epoch,
    .load = fr_fg_load,
    .progress_keys = k_progress,
    .free = fr_fg_free,
    .tiny = tiny,
};
