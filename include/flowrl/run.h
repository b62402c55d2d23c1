/* The one run loop every RL algorithm shares (`flowrl train --algo NAME`; core/run*.c).
 *
 * The loop owns everything that is not the algorithm: the run directory and its lock, the
 * options (flowrl/opts.h: common rows + the algorithm's rows → argv, --help, config.json,
 * checkpoint metadata, the resume check), the policy and the frozen reference model, the
 * optimiser (clip → AdamW → EMA, flowrl/optim_step.h), the audit log and its tap, the
 * checkpoints (every K epochs, keep the last M, per-tensor digests verified on load),
 * resume (audit.log and metrics.jsonl cut back to the checkpoint), SIGINT/SIGTERM at an
 * epoch boundary, evaluation before / every K epochs / after, metrics.jsonl as key/value
 * records, curve.svg, the sample grids, and the health checks (collapse, divergence,
 * non-finite parameters or samples).
 *
 * An algorithm (flowrl/algo.h) is called once per epoch, between the loop's
 * fr_audit_begin_step and its state records (the parameters, ema.*, optim.m.*, optim.v.*
 * under the checkpoint's names) + fr_audit_end_step; it records its own intermediates with
 * fr_run_rec_* and its metrics with fr_run_metric, and steps the optimiser with
 * fr_run_optimizer_step.
 *
 * Run directory:
 *   config.json         every saved option (common and the algorithm's), resolved
 *   metrics.jsonl       one JSON object per epoch: "epoch", the algorithm's keys, "seconds"
 *   audit.log           flowrl/audit.h; per epoch the algorithm's records, then the state
 *   checkpoints/step-N.safetensors   params, ema.*, optim.m/v.*, the algorithm's state,
 *                       metadata: task, base digest, algo, epoch, seed, identity options,
 *                       per-tensor digests
 *   samples/before.png, samples/after.png, samples/epoch-N.png
 *   eval.json           held-out accuracy before / at each evaluation / after
 *   curve.svg           reward per epoch (smoothed) and held-out accuracy points
 *   .lock               held for the life of a run (the holder's PID) */
#ifndef FLOWRL_RUN_H
#define FLOWRL_RUN_H

#include <signal.h>
#include <stdint.h>

#include "flowrl/advantage.h"
#include "flowrl/backend.h"
#include "flowrl/env.h"
#include "flowrl/grpo.h"
#include "flowrl/lora.h"
#include "flowrl/model.h"
#include "flowrl/opt_groups.h"
#include "flowrl/optim.h"
#include "flowrl/reward_cmd.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/task.h"
#include "flowrl/tensor.h"

struct fr_algo;
struct fr_audit;
struct fr_st_file;

typedef enum {
    FR_TRAIN_ADV_PROMPT = 0, /* Flow-GRPO PerPromptStatTracker (docs/algorithms/advantages.md §1) */
    FR_TRAIN_ADV_BATCH = 1,  /* no per-prompt tracking */
    FR_TRAIN_ADV_DDPO = 2    /* DDPO's per-prompt deque */
} fr_train_adv;

/* The options every algorithm shares beyond the groups of flowrl/opt_groups.h. */
typedef struct {
    char algo[32];
    char env[1040];               /* an environment algorithm's --env (flowrl/env.h; or cmd:PROGRAM, flowrl/env_ctl.h) */
    char base[FR_OPT_PATH_MAX];   /* base checkpoint: policy init and KL reference */
    char task[32];                /* "" = the checkpoint's metadata "task" */
    char reward[FR_OPT_PATH_MAX]; /* a task reward name, "cmd:PROGRAM", or "" = task default */
    char workdir[FR_OPT_PATH_MAX]; /* where the run was started: a reward program runs there */
    int base_raw;                 /* 1: start from the raw weights, not the base's ema.* */
    int64_t prompts;              /* P prompts per epoch */
    int64_t group;                /* G samples per prompt */
    /* group-relative advantages (docs/algorithms/advantages.md) */
    fr_train_adv adv;
    int global_std;
    int64_t ddpo_buffer, ddpo_min_count;
    float adv_clip;
    /* batching of the update */
    int64_t num_batches, grad_accum;
    double timestep_fraction;
    /* the PPO clip range and the KL weight (their defaults are the algorithm's) */
    double clip_range;
    float beta;
    /* health checks (docs/design.md "runs that cannot lie") */
    int64_t warn_zero_adv;        /* warn when every advantage was zero this many epochs in a row */
    double warn_kl;               /* warn once when the epoch's KL or approx-KL exceeds this */
    /* LoRA (flowrl/lora.h): rank 0 = full fine-tuning; alpha 0 = the rank (scale 1) */
    int64_t lora_rank;
    double lora_alpha;
    char lora_targets[FR_LORA_TARGETS_MAX];
} fr_run_common;

typedef struct {
    fr_run_common c;
    fr_runctl_opts run;
    fr_sampling_opts smp;
    fr_optim_opts opt;
    fr_evalrun_opts ev;
    fr_reward_cmd_opts rw;        /* the reward program's (timeout) */
    fr_backend_opts be;
    /* An environment algorithm's (fr_algo.on_env) environment class and its options (a struct
     * of env_class->opts_size bytes, the caller's): set both before fr_run_opts_defaults, which
     * keeps them, sets the options to the class's defaults and binds its rows. */
    const fr_env_class *env_class;
    void *env_opts;
} fr_run_opts;

/* Adds the common groups (inputs, advantages, batching, run, sampling, optimiser, eval,
 * backend) of ro and the algorithm's own group (over ao) to o. */
void fr_run_opts_bind(fr_opts *o, fr_run_opts *ro, const struct fr_algo *a, void *ao);

/* ro and ao (the algorithm's struct, opts_size bytes) at `flowrl train --algo A`'s defaults:
 * the rows' defaults, then what every RL run shares (seed 42, 20 epochs, a checkpoint every
 * epoch keeping 2, lr 3e-4 constant, AdamW weight decay 1e-4, grad norm 1, EMA off, eval 40
 * ODE steps x 8, 64 rows per forward, cfg 1), then the algorithm's own (a->defaults); ro's
 * algo names a. o (may be NULL) receives the binding. */
fr_status fr_run_opts_defaults(fr_opts *o, fr_run_opts *ro, const struct fr_algo *a, void *ao);

/* ---- callbacks ------------------------------------------------------------------------ */

#define FR_RUN_MAX_METRICS 64
typedef struct {
    const char *key;
    double value;
} fr_metric;

typedef struct {
    int64_t epoch;      /* 1-based (the audit step) */
    int64_t epochs;
    double seconds;
    int n;
    fr_metric m[FR_RUN_MAX_METRICS]; /* the algorithm's metrics, in the order recorded */
} fr_run_epoch_event;

/* The value of a metric of ev (NAN if absent). */
double fr_run_event_get(const fr_run_epoch_event *ev, const char *key);

typedef struct {
    int64_t epoch;    /* 1-based */
    int64_t update;   /* optimizer step within the epoch, 0-based */
    int64_t n_ratio;
    const float *ratio;
    float loss;
} fr_run_update_event;

typedef struct {
    /* Each may be NULL. A nonzero return from on_epoch stops after that epoch (like SIGINT). */
    int (*on_epoch)(const fr_run_epoch_event *ev, void *user);
    void (*on_update)(const fr_run_update_event *ev, void *user);
    /* A line of information (the run header, eval tables, warnings): the CLI prints it. */
    void (*on_info)(const char *line, void *user);
    void *user;
    /* Checked at every epoch boundary: nonzero stops the run there with a checkpoint; the
     * value is the signal number (SIGINT, SIGTERM) for the result. */
    volatile sig_atomic_t *stop;
} fr_run_cb;

typedef struct {
    int64_t first_epoch;  /* epochs already done when this call started (resume) */
    int64_t epochs_done;  /* epochs complete at the end */
    int interrupted;      /* the signal (or 1 for on_epoch) that stopped it before the end */
    double acc_before, acc_after;     /* held-out accuracy */
    double score_before, score_after; /* held-out mean reward */
    int have_after;
} fr_run_result;

/* The audit tap: every audit.log record as it is written (the audit step N, the record's
 * name and the tensor whose digest it holds; a 0-d F32 tensor for a scalar). The tensor is
 * borrowed for the call. A status other than FR_OK stops the run with it. */
typedef fr_status (*fr_run_record_fn)(int64_t step, const char *name, const fr_tensor *t, void *user);

/* How a call runs: backend handle (its thread count and copy counters), callbacks, tap (all
 * borrowed). */
typedef struct {
    fr_backend *be;
    const fr_run_cb *cb;
    fr_run_record_fn tap;
    void *tap_user;
} fr_run_env;

/* A new run into ro->run.out (absent or empty). ao: the algorithm's options (its struct). */
fr_status fr_run_new(const fr_run_opts *ro, const void *ao, const fr_run_env *env, fr_run_result *res);

/* Continues the run in dir: config.json gives every option. override (may be NULL) puts
 * the command line on top of them: it receives the run's options bound in an fr_opts
 * (flowrl/opts.h) and fills seen; a changed option that is not FR_OPT_RESUMABLE is refused
 * (fr_opts_resume_check). from_step > 0 resumes from that checkpoint instead of the newest
 * (audit.log and metrics.jsonl cut back to it, later checkpoints removed). */
typedef struct {
    const char *dir;
    int64_t from_step;
    fr_status (*override)(const fr_opts *now, fr_opts_seen *seen, void *user);
    void *override_user;
} fr_run_resume_req;
fr_status fr_run_resume(const fr_run_resume_req *rq, const fr_run_env *env, fr_run_result *res);

/* ---- the run as an algorithm sees it ----------------------------------------------------- */

/* An AdamW group of an environment algorithm's parameter list: ps[first, first + n) at learning
 * rate lr (<= 0: the run's scheduled --lr) and weight decay weight_decay (< 0: --weight-decay). */
typedef struct {
    int first, n;
    double lr, weight_decay;
} fr_run_group;
#define FR_RUN_MAX_GROUPS 4

typedef struct fr_run {
    const fr_run_opts *o;
    const void *ao;
    const struct fr_algo *algo;
    const char *dir;
    fr_backend *be;
    const fr_task *task;
    int reward_id;                 /* built-in reward; -1 with an external program */
    fr_reward_cmd *rcmd;
    fr_model pol;                  /* the policy (trained) */
    fr_model ref;                  /* the frozen base (when the algorithm asks for it) */
    int have_ref;
    fr_lora *lora;                 /* --lora-rank > 0: the adapters and the frozen base; pol is the view of
                                      adapter "default" (trained), ref the base (adapter off, no copy) */
    fr_adamw_state adam;
    fr_ema ema;                    /* EMA of the weights (opt.ema_decay >= 0) */
    int have_ema;
    char base_digest[17];
    fr_env env;                    /* an environment algorithm's (fr_algo.on_env) */
    int have_env;
    fr_run_group groups[FR_RUN_MAX_GROUPS]; /* its AdamW groups (n_groups 0: one, the run's) */
    int n_groups;
    /* per epoch */
    int64_t epoch;                 /* 0-based epoch being run */
    struct fr_run_private *priv;
} fr_run;

/* Audit records (and the tap): _tensor, _scalar and _f32 of host memory; _dev and _dev_f32
 * of backend memory, copied to the host (fr_d2h) for the digest and the tap; _params of the
 * policy's n_params tensors vals (backend memory: parameters, gradients, EMA, moments) under
 * PREFIX<name>. */
fr_status fr_run_rec_tensor(fr_run *r, const char *name, const fr_tensor *v);
fr_status fr_run_rec_scalar(fr_run *r, const char *name, float x);
fr_status fr_run_rec_f32(fr_run *r, const char *name, const float *p, int nd, int64_t d0, int64_t d1, int64_t d2);
fr_status fr_run_rec_dev(fr_run *r, const char *name, const fr_tensor *v);
fr_status fr_run_rec_dev_f32(fr_run *r, const char *name, const float *p, int nd, int64_t d0, int64_t d1, int64_t d2);
fr_status fr_run_rec_params(fr_run *r, const char *prefix, const fr_tensor *vals);
/* k calls of fr_run_rec_params in one: list l's records PREFIX[l]<name> of vals[l], in order.
 * On a host backend (ref, opt) the log's bytes are the same and the tensors' digests are
 * computed first, on the backend's host threads (fr_host_for); a device backend's records are
 * copied out and digested one by one. */
fr_status fr_run_rec_param_lists(fr_run *r, int k, const char *const *prefix, const fr_tensor *const *vals);
/* Consecutive records in one: item i as fr_run_rec_dev (dev 1: backend memory) or
 * fr_run_rec_tensor (dev 0: host memory) would write it, in order; on a host backend the
 * digests are computed first on the backend's host threads, as fr_run_rec_param_lists'. */
typedef struct {
    const char *name;
    fr_tensor t;
    int dev;
} fr_run_rec_item;
fr_status fr_run_rec_many(fr_run *r, int n, const fr_run_rec_item *items);
/* A second model shaped like the policy that an algorithm keeps (DiffusionNFT's old policy,
 * DGPO's and AWM's EMA, the EMA evaluated): a full model of the policy's config, or with LoRA on
 * a view of the adapter `adapter` (added, zero) on the policy's base, as the public code keeps a
 * second adapter on one transformer. Its values are the caller's to set (its parameter list
 * matches r->pol's tensor for tensor); free it with fr_model_free. */
fr_status fr_run_model_like(fr_run *r, const char *adapter, fr_model *m);
/* host (owned; fr_tensor_free it) = a copy of v, whose data is backend memory. */
fr_status fr_run_host_copy(fr_run *r, const fr_tensor *v, fr_tensor *host);
/* An algorithm's extra copy of the policy's parameters (an EMA adapter, an EMA reference) in
 * a checkpoint (its save / load): vals (the policy's n_params tensors, backend memory) under
 * PREFIX<name>; load refuses a missing or differently shaped tensor (FR_ERR_FORMAT naming
 * path and tensor). */
fr_status fr_run_save_params(fr_run *r, fr_st_file *f, const char *prefix, const fr_tensor *vals);
fr_status fr_run_load_params(fr_run *r, const fr_st_file *f, const char *path, const char *prefix, fr_tensor *vals);
/* host (n,) = the rollout's final samples dev (n,), backend memory: the reward's input, the one
 * D-wide crossing an epoch needs (counted apart in the copies.* metrics). */
fr_status fr_run_reward_input(fr_run *r, float *host, const float *dev, int64_t n);

/* One metric of this epoch (metrics.jsonl, the progress line, the health checks).
 * Keys the loop knows: reward_mean, reward_std, accuracy (share judged correct; NAN with an
 * external reward), kept (samples with a nonzero advantage), kl, approx_kl. */
void fr_run_metric(fr_run *r, const char *key, double value);

/* An algorithm state's buffers (the files of core/algo): FR_ALLOC(p, n) callocs n elements of *p
 * and is true on success; fr_run_free_bufs frees the backend buffers dev[0..n_dev) (only when be
 * is set: a state torn down before its backend was known holds none) and the host buffers
 * host[0..n_host). */
#define FR_ALLOC(p, n) (((p) = fr_calloc((size_t)(n), sizeof *(p))) != NULL)
void fr_run_free_bufs(fr_backend *be, void *const *dev, size_t n_dev, void *const *host, size_t n_host);

/* Hands an optimiser step's ratios to the caller's on_update (tests watch the on-policy ratio). */
void fr_run_update(const fr_run *r, const fr_run_update_event *ev);

/* A line for the user (the CLI prints it). */
void fr_run_info(const fr_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The epoch's optimiser step u (0-based within the epoch): global-norm clip, the records
 * u<u>.grad_norm and u<u>.grad.<NAME>, AdamW at the scheduled lr, EMA every ema_every steps.
 * *gn: the norm before clipping (NAN when clipping is off). */
fr_status fr_run_optimizer_step(fr_run *r, int64_t u, float *gn);

/* The epoch's rollout fr_rollout(m, r->be, r->task, rc, N, pid, sid, no x_init, x, tj) of
 * the run's N samples. Over R > 1 ranks (flowrl/dist.h) each rank rolls out its block of
 * whole groups and the outputs (x, and tj's traj, mean, logp) are gathered, so every rank
 * holds all of them, bit for bit what one process computes (a sample is a function of its
 * coordinates, flowrl/rollout.h); the NFE counts sum every rank's rows. */
fr_status fr_run_rollout(fr_run *r, const fr_model *m, const fr_rollout_cfg *rc, int64_t N, const int *pid,
                         const uint32_t *sid, float *x, const fr_rollout_traj *tj);

/* The final samples of an epoch, for the algorithms that train on the rollout's last states
 * (AWM, DGPO, DiffusionNFT): N = P·G rows, row s = sample s of prompt prompts[s / G], its group
 * that prompt. */
typedef struct {
    int64_t N, D;
    fr_backend *be;
    float *x;                     /* (N, D) backend: the rollout's samples */
    int *prompts, *pid, *correct; /* (P,), (N,), (N,) host */
    uint32_t *sid;                /* (N,) the rows' sample ids (noise coordinates) */
    int64_t *group;               /* (N,) */
    float *x_h, *reward, *adv;    /* (N, D) the reward's input, (N,), (N,) host */
} fr_run_samples;
fr_status fr_run_samples_alloc(fr_run *r, fr_run_samples *s);
void fr_run_samples_free(fr_run_samples *s);
/* An epoch's steps 1–4 for those algorithms: the prompts (fr_run_prompts), the rollout by m
 * (rc->c0 = the epoch), the samples to the host once (fr_run_reward_input), checked finite and
 * recorded as "samples", then rewards (fr_run_rewards) and advantages (fr_run_advantages). */
fr_status fr_run_samples_epoch(fr_run *r, const fr_model *m, fr_rollout_cfg *rc, fr_run_samples *s);

/* The built-in (or external) reward of N final samples x (N, D, host memory: the rollout's
 * samples copied out once) with prompt ids pid (N,):
 * reward (N,), correct (N,) (may be NULL); records "rewards", "reward_mean", "reward_std"
 * and the metrics reward_mean, reward_std, accuracy. Over R > 1 ranks each rank scores its
 * block of whole groups (with its own reward program) and the scores are gathered. */
fr_status fr_run_rewards(fr_run *r, int64_t N, const int *pid, const float *x, float *reward, int *correct);

/* fr_run_rewards' scores without its records and metrics: reward (N,) and correct (N,) of the N
 * host samples x (N, D), each rank scoring its block of whole groups of the run's group size,
 * gathered over the ranks (an algorithm that scores more rows than P·G in groups: G²RPO's
 * granularities). */
fr_status fr_run_reward_split(fr_run *r, int64_t N, const int *pid, const float *x, float *reward, int *correct);

/* The run's reward (the task's built-in one or the reward program) of n host samples x (n, D)
 * with prompt ids pid (n,) into reward (n,), with no record, metric or rank split: for scores
 * an algorithm uses inside an epoch (Smart-GRPO's noise search). Every rank scores all n. */
fr_status fr_run_score(fr_run *r, int64_t n, const int *pid, const float *x, float *reward);

/* The group-relative advantages of the common options (prompt / batch / ddpo tracker) of N
 * rewards with group ids group (N,) into adv (N,), recorded as "adv". The DDPO tracker's
 * history is saved in checkpoints by the loop. */
fr_status fr_run_advantages(fr_run *r, int64_t N, const float *reward, const int64_t *group, float *adv);

/* The rollout sampler of the run's sampling options (kind, steps, grid, shift, noise level,
 * guidance, rows per forward, the run's seed) with its schedule in sched (free it with
 * fr_rollout_schedule_free); c0 and step_noise are the algorithm's to set per epoch. */
fr_status fr_run_rollout_cfg(const fr_run *r, fr_rollout_cfg *rc, fr_rollout_schedule *sched);

/* An epsilon base's DDPM ᾱ table (*n_train values, from the checkpoint's ddpm.* metadata), or
 * NULL with *n_train 0 for a velocity base: the forward process of the epsilon objectives
 * (Diffusion-DPO). */
const float *fr_run_alpha_bar(const fr_run *r, int64_t *n_train);

/* FR_ERR_NUMERIC naming what and the first bad index if x (n) holds a NaN or an infinity.
 * Call it on rollout samples: the loop then sets the checkpoint that produced them aside. */
fr_status fr_run_check_finite(fr_run *r, const char *what, const float *x, int64_t n);

/* The policy's prompts of epoch e: P train prompt ids, u32(seed, FR_RNG_PROMPTS, e, p, 0, 0)
 * mod n_train, recorded as "prompts". */
fr_status fr_run_prompts(fr_run *r, int *prompts);

/* The samples i < N with keep[i] (keep NULL: all) in the order of the keys
 * u32(seed, FR_RNG_SHUFFLE, epoch, 0, 0, i), ties by index, into order (K,): Flow-GRPO's
 * re-batching of the kept samples, shared by every algorithm that shuffles an epoch. */
fr_status fr_run_shuffle(const fr_run *r, int64_t N, const uint8_t *keep, int64_t *order, int64_t *K);

/* Names (NULL / FR_ERR_ARG for unknown values). */
const char *fr_train_adv_name(fr_train_adv a); /* "prompt", "batch", "ddpo" */

#endif
