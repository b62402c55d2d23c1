/* MixGRPO (docs/algorithms/flow-grpo.md §4) on the family engine (core/algo/traj_family.h):
 * `flowrl train --algo mix-grpo`.
 *
 * Per epoch: MixGRPO's progressive window [cur, min(cur + W, T − 2)) (docs/algorithms/samplers.md
 * §10.2) is SDE (Flow-GRPO's step, η 0.7) and trained; the steps before it run the Euler ODE; the
 * steps after it the Euler ODE, or with --flash the DPM-Solver++ 2M tail on the compressed grid
 * (MixGRPO-Flash, samplers.md §9). s(linspace) grid with shift 3, quantised time input, one x_T
 * per prompt, local-group advantages (unbiased std, eps 1e-8), no zero filter, no KL. The
 * samples in shuffled order form num_batches batches; per grad_accum batches one optimiser step
 * over every (batch, window step), PPO-clip scaled by 1/(grad_accum·W) (Flow-GRPO's plan).
 *
 * Flow-GRPO's `--window mix` stays a Flow-GRPO option: Flow-GRPO's grid, tracker, zero filter and
 * KL with MixGRPO's window. This algorithm is MixGRPO as its public code runs.
 *
 * audit.log records of an epoch: window (I64 [start, len]), prompts, noise.x_T, noise.xi, traj,
 * mean, logp_old (over the steps the trajectory stores: all T, or up to the window's end with
 * --flash), rewards, reward_mean, reward_std, adv, order, per optimiser step u<k>.ratio
 * ((grad_accum, W, b)), u<k>.loss, u<k>.grad_norm, u<k>.grad.<NAME>; kl, clipfrac, approx_kl. */
#include <stddef.h>
#include <stdlib.h>

#include "core/algo/traj_family.h"
#include "flowrl/advantage.h"
#include "flowrl/schedule.h"

typedef enum { MIX_FLASH_OFF = 0, MIX_FLASH_ON = 1, MIX_FLASH_STAR = 2 } mix_flash;
static const char *const k_flash_names[] = {"off", "flash", "flash-star", NULL};

typedef struct {
    int same_noise;
    int64_t window, iters;
    int flash;
    double compress;
} fr_mix_opts;

typedef struct {
    fr_mix_opts o;
    fr_ppo_params prm;
    fr_mix_window mix;
    fr_tf tf;
    float *grid; /* (T+1,) the Flash grid of the epoch */
} mix_state;

static void mix_free(void *p)
{
    mix_state *t = p;
    if (!t) return;
    fr_tf_free(&t->tf);
    free(t->grid);
    free(t);
}

static double compress_of(const fr_mix_opts *o)
{
    return o->compress > 0.0 ? o->compress : o->flash == MIX_FLASH_STAR ? 0.2 : 0.4;
}

static fr_status mix_setup(fr_run *r, void **out)
{
    const fr_run_opts *ro = r->o;
    mix_state *t = fr_calloc(1, sizeof *t);
    if (!t) return FR_ERR_NOMEM;
    *out = t;
    t->o = *(const fr_mix_opts *)r->ao;
    t->prm = (fr_ppo_params){ro->c.clip_range, ro->c.adv_clip};
    FR_TRY(fr_mix_window_init(&t->mix, ro->smp.num_steps));
    t->mix.window = t->o.window;
    t->mix.iters_per_group = t->o.iters;
    if (t->o.flash == MIX_FLASH_STAR) t->mix.step = 0; /* Flash*: prog_overlap_step 0, the window stays at [0, W) */
    FR_TRY(fr_tf_setup(r, &t->tf, 0, ro->smp.cfg != 1.0f, &fr_traj_ppo, &t->prm, FR_KL_CODE));
    fr_tf *f = &t->tf;
    fr_tf_fastvideo_rollout(f, t->o.same_noise);
    return FR_ALLOC(t->grid, f->T + 1) ? FR_OK : FR_ERR_NOMEM;
}

/* The epoch's grid: the run's, or with --flash (and a non-empty window) the grid up to the
 * window's last step ℓ followed by the compressed DPM-Solver++ tail (fr_sigmas_flash_tail). */
static fr_status epoch_grid(const fr_run *r, mix_state *t, int64_t ws0, int64_t wl)
{
    fr_tf *f = &t->tf;
    f->rc.sigmas = f->sched.sigmas;
    f->rc.T = f->T;
    f->rc.dpm_from = 0;
    if (t->o.flash == MIX_FLASH_OFF || wl == 0) return FR_OK; /* an empty window: MIX crashes, flowrl rolls out ODE */
    const int64_t last = ws0 + wl - 1;
    FR_TRY(fr_sigmas_flash_tail(f->T, last, compress_of(&t->o), r->o->smp.shift, t->grid, f->T + 1, &f->rc.T));
    f->rc.sigmas = t->grid;
    f->rc.dpm_from = last + 1;
    return FR_OK;
}

static fr_status mix_epoch(fr_run *r, void *state)
{
    mix_state *t = state;
    fr_tf *f = &t->tf;
    int64_t ws0, wl;
    fr_mix_window_get(&t->mix, &ws0, &wl);
    for (int64_t i = 0; i < f->T; i++) f->step_noise[i] = (i >= ws0 && i < ws0 + wl) ? r->o->smp.noise_level : 0.0f;
    f->rc.step_noise = f->step_noise;
    FR_TRY(epoch_grid(r, t, ws0, wl));
    FR_TRY(fr_tf_rec_window(r, ws0, wl));
    FR_TRY(fr_tf_rollout(r, f, NULL));
    int64_t K;
    FR_TRY(fr_tf_local_batches(r, f, &K));
    FR_TRY(fr_tf_update_batches(r, f, K, ws0, wl, 1.0f));
    fr_run_metric(r, "window_start", (double)ws0);
    fr_run_metric(r, "window_len", (double)wl);
    fr_run_metric(r, "rollout_steps", (double)f->rc.T);
    fr_mix_window_update(&t->mix);
    return FR_OK;
}

/* The window after `epoch` epochs (one update per epoch): nothing to read back. */
static fr_status mix_load(fr_run *r, void *state, const fr_st_file *f, const char *path)
{
    mix_state *t = state;
    (void)f;
    (void)path;
    for (int64_t e = 0; e < r->epoch; e++) fr_mix_window_update(&t->mix);
    return FR_OK;
}

static void mix_header(fr_run *r, void *state)
{
    mix_state *t = state;
    const fr_run_opts *ro = r->o;
    fr_run_info(r, "sampler %s in the window, ode outside; %lld steps (%s grid, shift %g, quantised time), noise %g, "
                   "cfg %g; x_T %s",
                fr_sampler_name(ro->smp.sampler), (long long)ro->smp.num_steps, fr_grid_name(ro->smp.grid), ro->smp.shift,
                (double)ro->smp.noise_level, (double)ro->smp.cfg, t->o.same_noise ? "shared per prompt" : "per sample");
    fr_run_info(r, "window %lld steps from step %lld, moving every %lld epochs; after it %s; clip %g, local-group "
                   "advantages; %lld batches, grad accum %lld",
                (long long)t->o.window, (long long)t->mix.cur, t->mix.step ? (long long)t->o.iters : 0LL,
                t->o.flash == MIX_FLASH_OFF ? "ode" : "dpm-solver++ 2m (flash)", ro->c.clip_range,
                (long long)ro->c.num_batches, (long long)ro->c.grad_accum);
}

/* ---- options ------------------------------------------------------------------------------ */

#define O fr_mix_opts
static const fr_opt k_rows[] = {
    FR_OPT_BOOL(O, same_noise, "init_same_noise", "true", "the G samples of a prompt share x_T (MIX's default)", 0),
    FR_OPT_I64(O, window, "mix_window", "4", 1, 10000, "W: SDE steps in the window (MIX group_size)", 0),
    FR_OPT_I64(O, iters, "mix_iters", "25", 1, 100000000, "epochs before the window moves one step (iters_per_group)", 0),
    FR_OPT_ENUM(O, flash, "flash", "off", k_flash_names,
                "after the window: off (Euler ODE), flash (DPM-Solver++ 2M on a grid compressed by 0.4) or flash-star "
                "(compress 0.2, window frozen at the first W steps)", 0),
    FR_OPT_F64(O, compress, "flash_compress", "0", 0, 1, "the Flash tail's compress ratio; 0 = the mode's (0.4 / 0.2)", 0),
};
#undef O

/* MIX's scripts on a CPU: Flow-GRPO's SDE step (η 0.7) on s(linspace) with shift 3, T 25, window
 * 4 moving every 25 epochs, clip 1e-4, adv clip 5, kl_coeff 0. */
static void defaults(fr_run_opts *ro, void *ao)
{
    (void)ao;
    fr_tf_defaults_fastvideo(ro, FR_SAMPLER_SDE, 25, 0.7f, 1e-4);
}

static fr_status check(const fr_run_opts *ro, const void *ao)
{
    const fr_mix_opts *o = ao;
    static const fr_sampler_kind kinds[] = {FR_SAMPLER_SDE, FR_SAMPLER_DANCE};
    FR_TRY(fr_tf_check_common(ro, "mix-grpo", kinds, 2, 3, FR_TF_LOCAL_GROUPS | FR_TF_NO_KL));
#define BAD(...) return fr_fail(FR_ERR_ARG, "train: mix-grpo: " __VA_ARGS__)
    if (o->window > ro->smp.num_steps - 2)
        BAD("--mix-window %lld: at most T - 2 = %lld", (long long)o->window, (long long)ro->smp.num_steps - 2);
    if (o->flash != MIX_FLASH_OFF && ro->smp.grid != FR_GRID_LINEAR)
        BAD("--flash %s: the Flash tail re-grids s(linspace): needs --grid linear", k_flash_names[o->flash]);
    return FR_OK;
#undef BAD
}

static void tiny(fr_run_opts *ro, void *ao)
{
    fr_mix_opts *o = ao;
    fr_tf_tiny(ro);
    ro->smp.num_steps = 5;
    o->window = 2;
    o->iters = 1; /* the window moves every epoch: the resume tests see it move */
}

static const char *const k_progress[] = {"clipfrac", "window_start", NULL};

const fr_algo fr_algo_mix_grpo = {
    .name = "mix-grpo",
    .summary = "MixGRPO: SDE in a sliding window, ODE (or DPM-Solver++ with --flash) outside, local-group PPO",
    .doc = "docs/algorithms/flow-grpo.md",
    .help = "MixGRPO fine-tuning: per epoch, P prompts x G samples from one x_T per prompt; only a window of W\n"
            "consecutive steps is stochastic and trained, sliding one step every mix_iters epochs; ODE elsewhere\n"
            "(--flash: DPM-Solver++ 2M after the window on a compressed grid). Local-group advantages, PPO-clip,\n"
            "no KL. Flow-GRPO's --window mix is Flow-GRPO with this window (its own tracker, filter and KL).",
    .rows = k_rows,
    .n_rows = (int)(sizeof k_rows / sizeof k_rows[0]),
    .opts_size = sizeof(fr_mix_opts),
    .defaults = defaults,
    .check = check,
    .needs_ref = fr_tf_needs_ref_beta,
    .setup = mix_setup,
    .header = mix_header,
    .epoch = mix_epoch,
    .load = mix_load,
    .progress_keys = k_progress,
    .free = mix_free,
    .tiny = tiny,
};
