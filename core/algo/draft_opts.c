/* The options, defaults and checks of the reward-gradient algorithms and their registry rows
 * (flowrl/algo.h; docs/algorithms/draft.md). */
#include <stddef.h>

#include "core/algo/draft.h"
#include "flowrl/reward_grad.h"

const char *const fr_draft_cut_names[] = {"gaussian", "uniform", "fixed", NULL};

#define O fr_draft_opts
#define LOSS_ROWS(DEF_LOSS, DEF_TARGET, DEF_SCALE)                                                                               \
    FR_OPT_ENUM(O, loss, "loss", DEF_LOSS, fr_rg_loss_names,                                                             \
                "per-sample loss of the reward r: neg (-r), relu (max(0, target - r)), l1 (|r - target|)", 0),      \
        FR_OPT_F64(O, target, "target", DEF_TARGET, -1e9, 1e9, "relu / l1: the target reward", 0),                      \
        FR_OPT_F64(O, loss_scale, "loss_scale", DEF_SCALE, 1e-12, 1e12, "L = loss_scale * mean loss", 0)

static const fr_opt k_draft_rows[] = {
    FR_OPT_I64(O, truncate, "truncate", "0", 0, 1000000,
               "DRaFT-K: gradient through the last K sampler steps only (0: all, full backprop) [paper]", 0),
    LOSS_ROWS("neg", "0", "1"),
};
static const fr_opt k_alignprop_rows[] = {
    FR_OPT_ENUM(O, strategy, "cut", "gaussian", fr_draft_cut_names,
                "AlignProp's backprop_strategy: where the gradient-carrying steps start [code]", 0),
    FR_OPT_F64(O, cut_mean, "cut_mean", "0.84", 0, 1,
               "gaussian cut: mean as a fraction of T (AP's 42 of 50) [flowrl choice: scaled to T]", 0),
    FR_OPT_F64(O, cut_std, "cut_std", "0.1", 0, 1,
               "gaussian cut: std as a fraction of T (AP's 5 of 50) [flowrl choice: scaled to T]", 0),
    LOSS_ROWS("neg", "0", "0.01"),
};
static const fr_opt k_refl_rows[] = {
    FR_OPT_F64(O, last_fraction, "last_fraction", "0.25", 1e-9, 1,
               "the gradient step is drawn from the last round(f T) steps (ReFL: 30..39 of 40) [flowrl choice: scaled]",
               0),
    LOSS_ROWS("relu", "2", "0.001"),
};
#undef O

/* Every variant: the ODE sampler over 16 steps (the spec's miniature, T = 8-32), one optimiser
 * step per epoch over num_batches = grad_accum micro-batches, no KL reference. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    ro->smp.sampler = FR_SAMPLER_ODE;
    ro->smp.num_steps = 16;
    ro->c.num_batches = 1;
    ro->c.grad_accum = 1;
    ro->c.beta = 0.0f;
    ro->opt.lr = 1e-3;
}

static fr_status check_common(const char *name, const fr_run_opts *ro, int sde_ok)
{
    if (ro->smp.sampler != FR_SAMPLER_ODE && !(sde_ok && ro->smp.sampler == FR_SAMPLER_SDE))
        return fr_fail(FR_ERR_ARG, "train: %s: --sampler %s; the gradient goes through Euler ODE steps (--sampler ode%s)",
                       name, fr_sampler_name(ro->smp.sampler), sde_ok ? " or sde" : "");
    if (ro->c.grad_accum != ro->c.num_batches)
        return fr_fail(FR_ERR_ARG, "train: %s: --grad-accum %lld with --num-batches %lld; one optimiser step per epoch "
                       "accumulates all micro-batches (set both equal)", name, (long long)ro->c.grad_accum,
                       (long long)ro->c.num_batches);
    return FR_OK;
}

static fr_status check_draft(const fr_run_opts *ro, const void *ao)
{
    const fr_draft_opts *o = ao;
    if (o->truncate > ro->smp.num_steps)
        return fr_fail(FR_ERR_ARG, "train: draft: --truncate %lld exceeds --num-steps %lld", (long long)o->truncate,
                       (long long)ro->smp.num_steps);
    return check_common("draft", ro, 0);
}

static fr_status check_alignprop(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    if (ro->smp.num_steps < 2)
        return fr_fail(FR_ERR_ARG, "train: alignprop: --num-steps %lld; the cut lies in [1, T - 1], T >= 2",
                       (long long)ro->smp.num_steps);
    return check_common("alignprop", ro, 0);
}

static fr_status check_refl(const fr_run_opts *ro, const void *ao)
{
    (void)ao;
    return check_common("refl", ro, 1);
}

static int needs_ref(const fr_run_opts *ro, const void *ao)
{
    (void)ro;
    (void)ao;
    return 0;
}

static fr_status setup_draft(fr_run *r, void **s) { return fr_draft_setup_variant(r, s, FR_RG_DRAFT); }
static fr_status setup_alignprop(fr_run *r, void **s) { return fr_draft_setup_variant(r, s, FR_RG_ALIGNPROP); }
static fr_status setup_refl(fr_run *r, void **s) { return fr_draft_setup_variant(r, s, FR_RG_REFL); }

/* Two micro-batches (the accumulation runs), 6 steps, a step size that moves the tiny model. */
static void tiny(fr_run_opts *ro, void *ao)
{
    fr_draft_opts *o = ao;
    ro->smp.num_steps = 6;
    ro->c.prompts = 2;
    ro->c.group = 4;
    ro->c.num_batches = 2;
    ro->c.grad_accum = 2;
    ro->opt.lr = 3e-3;
    if (o->truncate) o->truncate = 2;
}

static const char *const k_progress[] = {"loss", "cut", NULL};

#define RG_ROW(NAME, SUMMARY, HELP, ROWS, CHECK, SETUP)                                                             \
    {                                                                                                                \
        .name = NAME, .summary = SUMMARY, .doc = "docs/algorithms/draft.md", .help = HELP, .rows = ROWS,            \
        .n_rows = (int)(sizeof ROWS / sizeof ROWS[0]), .opts_size = sizeof(fr_draft_opts), .defaults = defaults,     \
        .check = CHECK, .needs_ref = needs_ref, .setup = SETUP, .header = fr_draft_header, .epoch = fr_draft_epoch, \
        .progress_keys = k_progress, .free = fr_draft_free, .tiny = tiny,                                            \
    }

const fr_algo fr_algo_draft = RG_ROW(
    "draft", "DRaFT / DRaFT-K: backprop of a differentiable reward through the ODE rollout (all or the last K steps)",
    "DRaFT [paper: no public code]: per epoch P prompts x G samples by the Euler ODE; the reward's gradient at the\n"
    "final sample is carried back through the sampler steps (the exact gradient of the discrete map, each step's\n"
    "velocity recomputed with grad) into the weights; --truncate K keeps only the last K steps (DRaFT-K; the\n"
    "paper prefers K = 1). Needs a differentiable reward (gmm2d mode / sqdist, or a reward program answering\n"
    "gradient requests). DRaFT-LV's re-noising is left out (its count is unverified).",
    k_draft_rows, check_draft, setup_draft);

const fr_algo fr_algo_alignprop = RG_ROW(
    "alignprop", "AlignProp: reward backprop through the last steps of the rollout after a randomly drawn cut",
    "AlignProp [code: mihirp1998/AlignProp]: as draft, with the steps before a cut c detached; c is drawn once per\n"
    "rollout by --cut (gaussian: int(N(0.84 T, 0.1 T)), AP's N(42, 5) of 50 scaled to T [flowrl choice]; uniform:\n"
    "torch.randint(0, T), high exclusive; fixed: T - 1), redrawn until 1 <= c <= T - 1. Loss scale 0.01 (AP's loss_coeff). The public\n"
    "code's DDIM eta 1 rollout is the ODE here [flowrl choice].",
    k_alignprop_rows, check_alignprop, setup_alignprop);

const fr_algo fr_algo_refl = RG_ROW(
    "refl", "ReFL: reward of the one-step x0 prediction at a random late step, backprop into the weights",
    "ReFL [code: THUDM/ImageReward ReFL.py]: the rollout runs without grad to a step m drawn from the last quarter\n"
    "of the grid (ReFL's randint(30, 39) of 40, scaled [flowrl choice]); x0_hat = x_m - sigma_m v(x_m) is scored\n"
    "and its gradient flows into the weights through that one prediction. Loss relu(2 - r) x 0.001 (the public\n"
    "grad_scale); no pre-training-loss regulariser (the public script has none).",
    k_refl_rows, check_refl, setup_refl);
