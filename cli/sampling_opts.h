/* Options shared by `flowrl sample` and `flowrl eval`: the checkpoint, the backend and
 * the sampler (the shared groups of flowrl/opt_groups.h), turned into a loaded model and
 * a fr_rollout_cfg. */
#ifndef FLOWRL_CLI_SAMPLING_OPTS_H
#define FLOWRL_CLI_SAMPLING_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/evaluate.h"
#include "flowrl/opt_groups.h"
#include "flowrl/rollout.h"

/* The checkpoint to sample and the key of the sampler noise. */
typedef struct {
    char ckpt[FR_OPT_PATH_MAX];
    char task[64];
    char adapter[FR_OPT_PATH_MAX]; /* a LoRA adapter file to run the checkpoint with, or "" */
    int no_ema;
    uint32_t seed;
} fr_cli_model_opts;

typedef struct {
    fr_cli_model_opts m;
    fr_sampling_opts s;
    fr_backend_opts b;
} fr_cli_sampling_args;

/* Adds the groups "Checkpoint", "Sampling", "Backend" over a's structs, as structs
 * first .. first + 2 of o. */
void fr_cli_sampling_add(fr_opts *o, fr_cli_sampling_args *a, int first);

typedef struct {
    fr_infer_ckpt ck;
    fr_backend be;
    fr_rollout_cfg rc;
    fr_rollout_schedule sched;
    fr_grid grid;
    double shift;
    int64_t ddim_offset;
    uint32_t seed; /* --seed, or the command's default */
    struct fr_lora *lora; /* --adapter: the checkpoint's weights as its base, ck.model its view */
} fr_cli_sampling;

/* Loads the checkpoint, picks the backend and builds rc (seen: which options argv gave:
 * the sampler defaults to the checkpoint's kind, the noise level to the sampler's).
 * Returns 0, 1 (runtime failure) or 2 (usage error), the message printed. */
int fr_cli_sampling_setup(const fr_opts *o, const fr_opts_seen *seen, const fr_cli_sampling_args *a,
                          fr_cli_sampling *s);
void fr_cli_sampling_free(fr_cli_sampling *s);

/* "ode, 40 steps, grid diffusers shift 3, cfg 1" (the sampler and its parameters) */
void fr_cli_sampler_line(const fr_cli_sampling *s, char *buf, size_t n);
/* Seconds since an arbitrary origin (CLOCK_MONOTONIC). */
double fr_cli_now(void);


#endif
