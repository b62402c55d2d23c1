/* The shared option groups (flowrl/opts.h): one struct and one row table per group, so a
 * flag means one thing in every command. A command lists the groups it takes and may change
 * a group's defaults after fr_opts_defaults (e.g. `sample` defaults to the ODE sampler with
 * 40 steps, `train` to sde with 10); --help shows the command's own defaults.
 *
 *   group      flags
 *   backend    --backend NAME, --fast, --threads N                       (never saved)
 *   sampling   --sampler, --num-steps, --grid, --shift, --noise-level, --eta, --dpm-order,
 *              --cfg, --rollout-batch, --ddim-offset
 *   optimiser  --lr, --lr-min, --lr-schedule, --warmup, --adam-beta1, --adam-beta2,
 *              --adam-eps, --weight-decay, --max-grad-norm, --ema-decay, --ema-every
 *   eval       --eval-steps, --eval-n, --eval-every
 *   run        --seed, --out, --epochs, --checkpoint-every, --keep-checkpoints, --log-every,
 *              --force
 *
 * Renamed flags (the old spelling is a deprecated alias with a warning, for one release):
 *   --steps (sampler steps: train, sample, eval)  → --num-steps
 *   --steps (pretrain optimiser steps)            → --max-train-steps
 *   --batch (pretrain samples per step)           → --train-batch-size
 *   --batch (sample / eval rows per forward)      → --rollout-batch
 *   --noise                                       → --noise-level
 *   --clip (pretrain max gradient norm)           → --max-grad-norm
 *   --ema (decay, pretrain and train)             → --ema-decay
 *   --schedule (pretrain learning-rate schedule)  → --lr-schedule
 *   --save-every (pretrain)                       → --checkpoint-every
 *   --prompts FILE (sample; train's --prompts is a count) → --prompt-file
 *   --fast-window / --fast-range (Flow-GRPO-Fast) → --window-size / --window-range
 */
#ifndef FLOWRL_OPT_GROUPS_H
#define FLOWRL_OPT_GROUPS_H

#include <stdint.h>

#include "flowrl/opts.h"
#include "flowrl/pretrain.h"
#include "flowrl/rollout.h"
#include "flowrl/sampler.h"
#include "flowrl/schedule.h"

#define FR_OPT_PATH_MAX 1024

/* --backend NAME (default: the fastest bitwise backend built in), --fast, --threads N
 * (0 = all CPUs). Never saved: they never change the bits (--fast aside, which the run
 * header and audit.log record). */
typedef struct {
    char backend[32];
    int fast;
    int64_t threads;
} fr_backend_opts;
extern const fr_opt fr_backend_rows[];
extern const int fr_backend_nrows;

/* The sampler of rollouts, `sample` and `eval`. The first fr_sampling_nrows_grid rows are
 * the σ grid alone (--num-steps, --grid, --shift: `schedule`). --noise-level and --eta
 * are one value for the sampler (a of sde/cps/dance, η of ddim); a command gives the
 * sampler's own default (fr_rollout_cfg_default) where neither was set. */
typedef struct {
    fr_sampler_kind sampler;
    int64_t num_steps;      /* T */
    fr_grid grid;
    double shift;
    float noise_level;      /* a (sde, cps, dance) */
    float eta;              /* ddim */
    int64_t dpm_order;      /* dpm-solver++ */
    float cfg;              /* guidance scale; 1 = off */
    int64_t rollout_batch;  /* rows per model forward (never changes the bits) */
    int64_t ddim_offset;
} fr_sampling_opts;
extern const fr_opt fr_sampling_rows[];
extern const int fr_sampling_nrows;
extern const int fr_sampling_nrows_grid;

/* The learning-rate schedule is pretrain's fr_lr_schedule (flowrl/pretrain.h: cosine,
 * constant), so that one type names it; its names: */
extern const char *const fr_lr_schedule_names[]; /* "cosine", "constant", NULL */

/* One optimiser step: clip (max_grad_norm, 0 = off) → AdamW → EMA (decay < 0: off; every
 * ema_every optimiser steps). lr: warm-up over `warmup` steps from 0, then the schedule down
 * to lr_min. */
typedef struct {
    double lr, lr_min;     /* AdamW hyper-parameters in double, as torch (flowrl/optim.h) */
    fr_lr_schedule lr_schedule;
    int64_t warmup;
    double adam_beta1, adam_beta2, adam_eps, weight_decay;
    float max_grad_norm;
    float ema_decay;
    int64_t ema_every;
} fr_optim_opts;
extern const fr_opt fr_optim_rows[];
extern const int fr_optim_nrows;

/* Held-out evaluation of a run: eval_n samples per held-out prompt with eval_steps ODE
 * steps, before, after, and every eval_every epochs (0 = only before/after). */
typedef struct {
    int64_t eval_steps, eval_n, eval_every;
} fr_evalrun_opts;
extern const fr_opt fr_evalrun_rows[];
extern const int fr_evalrun_nrows;

/* A run's identity and its bookkeeping. */
typedef struct {
    uint32_t seed;
    char out[FR_OPT_PATH_MAX];
    int64_t epochs;
    int64_t checkpoint_every;   /* a checkpoint every N epochs / steps (and always the
                                   last); 0 = the last only */
    int64_t keep_checkpoints;   /* 0 = all */
    int64_t log_every;          /* a progress line every N epochs */
    int force;                  /* overwrite an existing output */
} fr_runctl_opts;
extern const fr_opt fr_runctl_rows[];
extern const int fr_runctl_nrows;
/* The first rows, those of a step-counting command (pretrain): --seed, --out, --force,
 * --log-every, --checkpoint-every. */
extern const int fr_runctl_nrows_steps;

/* Appends a group to o (o->ng < FR_OPTS_MAX_GROUPS), its rows over struct `which`. */
void fr_opts_add(fr_opts *o, const char *title, const fr_opt *rows, int n, int which);

/* Opens the backend of the options (fr_backend_open): "" = opt when built in, else ref;
 * threads 0 = all CPUs on opt; FR_ERR_ARG for an unknown backend; --fast without vendor
 * kernels fails as fr_backend_get_mode does. */
struct fr_backend;
fr_status fr_backend_opts_resolve(const fr_backend_opts *b, struct fr_backend *be);

#endif
