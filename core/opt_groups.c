/* The shared option groups (flowrl/opt_groups.h): one row per flag, for every command. */
#include "flowrl/opt_groups.h"

#include <stdio.h>
#include <stdlib.h>

#include "flowrl/backend.h"
#include "flowrl/evaluate.h"

#define NROWS(a) (int)(sizeof(a) / sizeof((a)[0]))
#define MAX_STEPS "100000" /* sampler steps: above this a grid is a typo, not a schedule */
#define BELOW_ONE 0x1.fffffep-1 /* the largest float below 1: ranges [lo, 1) */

const char *const fr_lr_schedule_names[] = {"cosine", "constant", NULL}; /* fr_lr_schedule */

/* ---- backend ------------------------------------------------------------------------------ */

const fr_opt fr_backend_rows[] = {
    FR_OPT_ROW_(fr_backend_opts, backend, "backend", FR_OPT_STR, "", 0, 0, NULL,
                "op backend: ref, opt, cuda-emu (the CUDA kernels on the CPU, guarded), cuda "
                "(default: opt if built in, else ref; `flowrl info` lists this build's)", FR_OPT_NOT_SAVED, NULL, "NAME"),
    FR_OPT_BOOL(fr_backend_opts, fast, "fast", "false",
                "vendor kernels (opt: OpenBLAS/oneDNN; cuda: cuBLAS, TF32 off): deterministic on one "
                "machine and thread count, within docs/determinism.md's tolerance of ref (not bitwise)",
                FR_OPT_NOT_SAVED),
    FR_OPT_I64(fr_backend_opts, threads, "threads", "0", 0, 4096, "opt threads, 0 = all CPUs; ref runs on one thread",
               FR_OPT_NOT_SAVED),
};
const int fr_backend_nrows = NROWS(fr_backend_rows);

fr_status fr_backend_opts_resolve(const fr_backend_opts *b, fr_backend *be)
{
    return fr_backend_open(be, b->backend, b->fast, (int)b->threads);
}

/* ---- sampling ------------------------------------------------------------------------------ */

const fr_opt fr_sampling_rows[] = {
    /* the grid rows first (fr_sampling_nrows_grid) */
    FR_OPT_ROW_(fr_sampling_opts, num_steps, "num_steps", FR_OPT_I64, "40", 1, 100000, NULL, "sampler steps T",
                0, "--steps", NULL),
    FR_OPT_ENUM(fr_sampling_opts, grid, "grid", "diffusers", fr_grid_names,
                "sigma grid: diffusers (Flow-GRPO's double shift) or linear (MixGRPO, DanceGRPO)", 0),
    FR_OPT_F64(fr_sampling_opts, shift, "shift", "3", 1e-6, 1e6, "grid shift s(u) = S u / (1 + (S - 1) u)", 0),
    FR_OPT_ENUM(fr_sampling_opts, sampler, "sampler", "ode", fr_sampler_names,
                "ode (Euler), sde (Flow-GRPO), cps, dance, dpm (DPM-Solver++ 2M) for velocity models; "
                "ddim for epsilon models",
                0),
    FR_OPT_ROW_(fr_sampling_opts, noise_level, "noise_level", FR_OPT_F32, "0.7", 0, 100, NULL,
                "noise level a of sde, cps, dance (unless given: sde 0.7, cps 0.8, dance 0.3)", 0, "--noise", "A"),
    FR_OPT_F32(fr_sampling_opts, eta, "eta", "0", 0, 100, "ddim eta; the same value as --noise-level (give one)", 0),
    FR_OPT_I64(fr_sampling_opts, dpm_order, "dpm_order", "2", 1, 2, "DPM-Solver++ order", 0),
    FR_OPT_F32(fr_sampling_opts, cfg, "cfg", "1", -1e6, 1e6,
               "classifier-free guidance scale (guidance_scale); 1 = conditional only", 0),
    FR_OPT_ROW_(fr_sampling_opts, rollout_batch, "rollout_batch", FR_OPT_I64, "64", 1, 1 << 20, NULL,
                "rows per model forward (results never depend on it)", FR_OPT_RESUMABLE, "--batch", "B"),
    FR_OPT_I64(fr_sampling_opts, ddim_offset, "ddim_offset", "1", 0, 1000, "DDIM steps_offset (Stable Diffusion's 1)", 0),
};
const int fr_sampling_nrows = NROWS(fr_sampling_rows);
const int fr_sampling_nrows_grid = 3;

/* ---- optimiser -------------------------------------------------------------------------- */

const fr_opt fr_optim_rows[] = {
    FR_OPT_F64(fr_optim_opts, lr, "lr", "3e-4", 0, 10, "AdamW peak learning rate (learning_rate)", FR_OPT_RESUMABLE),
    FR_OPT_F64(fr_optim_opts, lr_min, "lr_min", "0", 0, 10, "final learning rate of the schedule", FR_OPT_RESUMABLE),
    FR_OPT_ROW_(fr_optim_opts, lr_schedule, "lr_schedule", FR_OPT_ENUM, "constant", 0, 0, fr_lr_schedule_names,
                "after the warm-up: cosine from lr to lr-min, or constant lr", FR_OPT_RESUMABLE, "--schedule", NULL),
    FR_OPT_I64(fr_optim_opts, warmup, "warmup", "0", -1, 1000000000,
               "linear warm-up steps from 0 to lr (-1: min(100, steps / 10))", FR_OPT_RESUMABLE),
    FR_OPT_F64(fr_optim_opts, adam_beta1, "adam_beta1", "0.9", 0, BELOW_ONE, "AdamW beta1", 0),
    FR_OPT_F64(fr_optim_opts, adam_beta2, "adam_beta2", "0.999", 0, BELOW_ONE, "AdamW beta2", 0),
    FR_OPT_F64(fr_optim_opts, adam_eps, "adam_eps", "1e-8", 1e-30, 1, "AdamW epsilon", 0),
    FR_OPT_F64(fr_optim_opts, weight_decay, "weight_decay", "0", 0, 1, "AdamW decoupled weight decay", 0),
    FR_OPT_ROW_(fr_optim_opts, max_grad_norm, "max_grad_norm", FR_OPT_F32, "1", 0, 1e9, NULL,
                "global gradient-norm clip, 0 = off", 0, "--clip", NULL),
    FR_OPT_ROW_(fr_optim_opts, ema_decay, "ema_decay", FR_OPT_F32, "-1", -1, BELOW_ONE, NULL,
                "EMA decay of the weights (pretrain warms it up: min(decay, (1+k)/(10+k))); < 0 = no EMA; with "
                "--lora-rank the EMA of the adapter is also written as adapter_ema.safetensors", 0, "--ema", NULL),
    FR_OPT_I64(fr_optim_opts, ema_every, "ema_every", "1", 1, 1000000000, "an EMA update every N optimiser steps", 0),
};
const int fr_optim_nrows = NROWS(fr_optim_rows);

/* ---- evaluation ------------------------------------------------------------------------ */

const fr_opt fr_evalrun_rows[] = {
    FR_OPT_I64(fr_evalrun_opts, eval_steps, "eval_steps", "40", 1, 100000, "ODE steps of the held-out evaluation",
               FR_OPT_RESUMABLE),
    FR_OPT_I64(fr_evalrun_opts, eval_n, "eval_n", "8", 0, FR_EVAL_MAX_N, "samples per held-out prompt, 0 = no evaluation",
               FR_OPT_RESUMABLE),
    FR_OPT_I64(fr_evalrun_opts, eval_every, "eval_every", "0", 0, 1000000000,
               "also evaluate every N epochs (0: before and after only)", FR_OPT_RESUMABLE),
};
const int fr_evalrun_nrows = NROWS(fr_evalrun_rows);

/* ---- run -------------------------------------------------------------------------------- */

const fr_opt fr_runctl_rows[] = {
    /* the rows of a step-counting command first (fr_runctl_nrows_steps) */
    FR_OPT_U32(fr_runctl_opts, seed, "seed", "0", "seed of every random stream (decimal or 0x hex)", 0),
    FR_OPT_ROW_(fr_runctl_opts, out, "out", FR_OPT_STR, "", 0, 0, NULL, "output (run directory or checkpoint)",
                FR_OPT_PATH | FR_OPT_RESUMABLE, NULL, "PATH"),
    FR_OPT_BOOL(fr_runctl_opts, force, "force", "false", "overwrite an existing output", FR_OPT_NOT_SAVED),
    FR_OPT_I64(fr_runctl_opts, log_every, "log_every", "1", 1, 1000000000, "a progress line every N epochs / steps",
               FR_OPT_RESUMABLE),
    FR_OPT_ROW_(fr_runctl_opts, checkpoint_every, "checkpoint_every", FR_OPT_I64, "1", 0, 1000000000, NULL,
                "a checkpoint every N epochs / steps, and always the last; 0 = the last only", FR_OPT_RESUMABLE,
                "--save-every", NULL),
    FR_OPT_I64(fr_runctl_opts, keep_checkpoints, "keep_checkpoints", "2", 0, 1000000, "checkpoints kept, 0 = all",
               FR_OPT_RESUMABLE),
    FR_OPT_I64(fr_runctl_opts, epochs, "epochs", "100", 1, 1000000000, "epochs in total (--resume may raise it)",
               FR_OPT_RESUMABLE),
};
const int fr_runctl_nrows = NROWS(fr_runctl_rows);
const int fr_runctl_nrows_steps = 5;

void fr_opts_add(fr_opts *o, const char *title, const fr_opt *rows, int n, int which)
{
    if (o->ng >= FR_OPTS_MAX_GROUPS || which < 0 || which >= FR_OPTS_MAX_STRUCTS) { /* a programming error */
        fprintf(stderr, "flowrl %s: option group %s: more than %d groups or struct %d outside [0, %d)\n", o->cmd,
                title, FR_OPTS_MAX_GROUPS, which, FR_OPTS_MAX_STRUCTS);
        abort();
    }
    o->g[o->ng++] = (fr_opt_group){title, rows, n, which};
}
