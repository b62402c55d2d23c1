/* Online RL fine-tuning of a flow model with the Flow-GRPO family (spec/objectives.md §1.1,
 * §2, §3, §4, §22; spec/samplers.md §3, §4, §10, §15): `flowrl train --algo flow-grpo`.
 *
 * Per epoch e = 0, 1, ... (one audit step N = e + 1, flowrl/audit.h):
 *   1. prompts   p = 0..P−1: train prompt u32(seed, FR_RNG_PROMPTS, e, p, 0, 0) mod n_train
 *   2. rollout   G samples per prompt, sample id s = p·G + g, c0 = e (flowrl/rollout.h), the
 *                SDE / CPS sampler over T steps of the training grid (denoising reduction:
 *                T = 10 here, eval_steps = 40 ODE steps for evaluation), storing x_j, x_{j+1},
 *                μ_j and logp_j of every step
 *   3. rewards   the task reward (or an external program, flowrl/reward_cmd.h)
 *   4. adv.      Flow-GRPO's per-prompt tracker (population std + 1e-4, global or per-group
 *                std), the untracked batch form, or DDPO's buffered tracker (flowrl/advantage.h);
 *                clamped to ±adv_clip inside the loss; zero advantages dropped and the kept
 *                samples re-enabled to a multiple of num_batches (fr_adv_filter_zero, purpose
 *                FR_RNG_ADV_FILTER, c0 = e)
 *   5. batches   the kept samples in the order of the keys u32(seed, FR_RNG_SHUFFLE, e, 0, 0, k)
 *                (ties by index), cut into num_batches equal batches
 *   6. updates   for each batch, for each trained step j in order: recompute v_θ (same CFG as
 *                the rollout when train_cfg), logp_θ with the rollout's own fr_step
 *                (fr_rollout_step), the PPO-clip (or GRPO-Guard) term and β·KL to the frozen
 *                base model; gradients scaled by 1/(grad_accum·n_trained)
 *                (fr_grpo_accum_divisor); after every grad_accum batches: global-norm clip,
 *                AdamW, and every ema_every optimizer steps the EMA of the weights.
 * Trained steps: 0..int(T·timestep_fraction)−1 (FG); the Fast window (one draw per epoch,
 * fr_fast_window with call 0; steps outside run with noise 0); or MixGRPO's progressive
 * window (advanced once per epoch; steps outside run with noise 0).
 *
 * Every random number is a function of (seed, epoch, sample, step): nothing depends on the
 * wall clock, the backend, the thread count or on having been resumed, so a resumed run
 * writes the same audit records as an uninterrupted one.
 *
 * Run directory (fr_grpo_train_run):
 *   config.json         every option, resolved (the input of --resume)
 *   metrics.jsonl       one JSON object per epoch
 *   audit.log           per epoch: digests of prompts, noise, trajectories, log-probs,
 *                       rewards, advantages, ratios, losses, gradients, parameters, optimizer
 *                       state (see core/grpo_train.c for the record names)
 *   checkpoints/step-N.safetensors   state after epoch N (params, ema.*, optim.m/v.*, DDPO
 *                       history, metadata: task, base digest, epoch, seed, every option)
 *   samples/before.png, samples/after.png   held-out samples (ODE, eval seeds)
 *   eval.json           held-out accuracy before / after
 *   curve.svg           reward mean and accuracy per epoch */
#ifndef FLOWRL_GRPO_TRAIN_H
#define FLOWRL_GRPO_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "flowrl/grpo.h"
#include "flowrl/ops.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/tensor.h"

typedef enum {
    FR_TRAIN_ADV_PROMPT = 0, /* Flow-GRPO PerPromptStatTracker (§1.1) */
    FR_TRAIN_ADV_BATCH = 1,  /* no per-prompt tracking (§1.1 item 4) */
    FR_TRAIN_ADV_DDPO = 2    /* DDPO's per-prompt deque (§1.4) */
} fr_train_adv;

typedef enum {
    FR_TRAIN_WINDOW_NONE = 0, /* FG: steps 0..T_train−1, all steps stochastic */
    FR_TRAIN_WINDOW_FAST = 1, /* Flow-GRPO-Fast random window (samplers.md §10.1) */
    FR_TRAIN_WINDOW_MIX = 2   /* MixGRPO progressive window (samplers.md §10.2) */
} fr_train_window;

typedef enum {
    FR_TRAIN_GUARD_OFF = 0,
    FR_TRAIN_GUARD_BATCH = 1, /* GRPO-Guard, the public code's batch-wide bias (§3) */
    FR_TRAIN_GUARD_SAMPLE = 2 /* GRPO-Guard, the per-sample reading */
} fr_train_guard;

#define FR_TRAIN_PATH_MAX 1024

typedef struct {
    /* inputs */
    char base[FR_TRAIN_PATH_MAX];   /* base checkpoint (policy init and KL reference) */
    char task[32];                  /* "" = the checkpoint's metadata "task" */
    char reward[FR_TRAIN_PATH_MAX]; /* a task reward name, "cmd:PROGRAM", or "" = task default */
    int base_raw;                   /* 1: start from the raw weights, not the base's ema.* */
    /* run */
    int64_t epochs;
    uint32_t seed;
    /* sampling */
    fr_sampler_kind sampler; /* sde or cps */
    int64_t T;               /* training sampler steps */
    fr_grid grid;
    double shift;
    float noise;             /* noise level a */
    float cfg;               /* guidance in rollouts */
    int train_cfg;           /* 1: training recomputes the CFG combination; -1 = (cfg != 1) */
    int64_t P, G;            /* prompts per epoch, samples per prompt */
    int64_t rollout_batch;   /* rows per model forward (results do not depend on it) */
    /* trained steps */
    double timestep_fraction;
    fr_train_window window;
    int64_t fast_w, fast_r0, fast_r1;   /* Fast: W, range [r0, r1] (r1 = -1: T/2) */
    int64_t mix_w, mix_iters;           /* Mix: window length, epochs per shift */
    /* objective */
    fr_train_guard guard;
    double clip_range;
    float adv_clip;
    float beta;
    fr_kl_form kl_form;
    fr_train_adv adv;
    int global_std;
    int64_t ddpo_buffer, ddpo_min_count;
    /* optimisation */
    int64_t num_batches, grad_accum;
    float lr, beta1, beta2, adam_eps, weight_decay, max_grad_norm;
    float ema;              /* < 0: off; else the decay */
    int64_t ema_every;      /* EMA update every this many optimizer steps */
    /* evaluation and output */
    int64_t eval_steps, eval_n;
    int64_t keep_checkpoints; /* 0 = all */
    char out[FR_TRAIN_PATH_MAX];
} fr_grpo_train_opts;

/* The CPU-sized defaults of `flowrl train --help` (every one also in config.json): P 8, G 8,
 * sde T 10 (diffusers grid, shift 3), a 0.7, cfg 1, timestep_fraction 0.99, clip 1e-4 (see the
 * help text for the measured alternative), adv clip 5, β 0.04 (code form), per-prompt tracker
 * with global std, 4 batches with grad accumulation 2, lr 3e-4, AdamW (0.9, 0.999, 1e-8, wd
 * 1e-4), grad norm 1, EMA off (0.9 every 8 when on), eval 40 ODE steps x 8, keep 2
 * checkpoints, epochs 20, seed 42. */
fr_grpo_train_opts fr_grpo_train_defaults(void);

/* FR_ERR_ARG naming the first bad option. */
fr_status fr_grpo_train_check(const fr_grpo_train_opts *o);

/* config.json: the options as one JSON object (and back). Unknown keys are an error; keys
 * missing from an older file keep their defaults. */
fr_status fr_grpo_train_opts_write_json(const fr_grpo_train_opts *o, const char *base_digest,
                                        const char *path);
fr_status fr_grpo_train_opts_read_json(fr_grpo_train_opts *o, const char *path);

/* ---- callbacks ------------------------------------------------------------------------ */

typedef struct {
    int64_t epoch;      /* 1-based (the audit step) */
    int64_t epochs;
    float reward_mean, reward_std;
    double accuracy;    /* share of training samples judged correct (NaN: external reward) */
    float kl, clipfrac, approx_kl, ratio_min, ratio_max, loss, grad_norm;
    int64_t kept, n_samples, n_updates;
    int64_t win_start, win_len; /* trained steps of this epoch */
    double seconds;
} fr_train_epoch_event;

typedef struct {
    int64_t epoch;    /* 1-based */
    int64_t update;   /* optimizer step within the epoch, 0-based */
    int64_t n_ratio;  /* entries of ratio */
    const float *ratio; // (grad_accum, n_trained, batch) every ratio of this update
    float loss;
} fr_train_update_event;

typedef struct {
    /* Each may be NULL. A nonzero return from on_epoch stops after that epoch (like SIGINT). */
    int (*on_epoch)(const fr_train_epoch_event *ev, void *user);
    void (*on_update)(const fr_train_update_event *ev, void *user);
    /* A line of information (the run header, eval tables): the CLI prints it. */
    void (*on_info)(const char *line, void *user);
    void *user;
    /* Checked at every epoch boundary: nonzero stops the run there with a checkpoint. */
    volatile sig_atomic_t *stop;
} fr_grpo_train_cb;

typedef struct {
    int64_t first_epoch;  /* epochs already done when this call started (resume) */
    int64_t epochs_done;  /* epochs complete at the end */
    int interrupted;      /* 1: stopped by *stop or on_epoch before opts.epochs */
    double acc_before, acc_after;     /* held-out accuracy */
    double score_before, score_after; /* held-out mean reward */
    int have_after;
} fr_grpo_train_result;

/* A new run into o->out (must not exist or be empty). backend / threads are recorded in
 * audit.log's env lines and config.json; they never change the bits. */
fr_status fr_grpo_train_run(const fr_grpo_train_opts *o, const fr_ops *ops, int threads,
                            const fr_grpo_train_cb *cb, fr_grpo_train_result *res);

/* fr_grpo_train_run that also hands every audit.log record to tap as it is written: the
 * audit step N, the record's NAME (core/grpo_train.c lists them) and the tensor whose digest
 * the record holds (a 0-d F32 tensor for a scalar record). The tensor is borrowed for the
 * call only. A status other than FR_OK from tap stops the run with that status. Lets a caller
 * see the intermediates themselves, not only their digests (core/golden_epoch.c). */
typedef fr_status (*fr_train_record_fn)(int64_t step, const char *name, const fr_tensor *t, void *user);
fr_status fr_grpo_train_run_tap(const fr_grpo_train_opts *o, const fr_ops *ops, int threads,
                                const fr_grpo_train_cb *cb, fr_train_record_fn tap, void *tap_user,
                                fr_grpo_train_result *res);

/* Continues the run in dir from its last complete checkpoint (config.json gives every
 * option; epochs > 0 replaces the epoch count, e.g. to extend the run). */
fr_status fr_grpo_train_resume(const char *dir, int64_t epochs, const fr_ops *ops, int threads,
                               const fr_grpo_train_cb *cb, fr_grpo_train_result *res);

/* Names for options (NULL / FR_ERR_ARG for unknown values). */
const char *fr_train_adv_name(fr_train_adv a);         /* "prompt", "batch", "ddpo" */
fr_status fr_train_adv_from_name(const char *s, fr_train_adv *out);
const char *fr_train_window_name(fr_train_window w);   /* "none", "fast", "mix" */
fr_status fr_train_window_from_name(const char *s, fr_train_window *out);
const char *fr_train_guard_name(fr_train_guard g);     /* "off", "batch", "sample" */
fr_status fr_train_guard_from_name(const char *s, fr_train_guard *out);
const char *fr_kl_form_name(fr_kl_form f);             /* "code", "paper" */
fr_status fr_kl_form_from_name(const char *s, fr_kl_form *out);

#endif
