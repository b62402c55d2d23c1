/* Loading a checkpoint for sampling and evaluation (core/infer_ckpt.c): the model, its task
 * and, for epsilon models, the DDPM schedule. */
#ifndef FLOWRL_INFER_CKPT_H
#define FLOWRL_INFER_CKPT_H

#include <stdint.h>

#include "flowrl/model.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

/* A model ready to sample from: the config from the metadata (fr_model_config_from_meta),
 * the task from metadata "task", EMA weights ("ema.<name>") when present unless
 * use_ema = 0, and for epsilon models the DDPM ᾱ table from metadata "ddpm.schedule"
 * (linear | scaled_linear | cosine), "ddpm.beta_start", "ddpm.beta_end",
 * "ddpm.n_train"; absent keys default to DDPM's linear 1e-4 .. 0.02 over 1000 steps. */
typedef struct {
    fr_model model;
    const fr_task *task;
    int ema;            /* 1: the EMA weights were loaded */
    float *alpha_bar;   /* (n_train,) epsilon models, else NULL */
    int64_t n_train;
    char schedule[96];  /* epsilon models: the DDPM schedule in words */
} fr_infer_ckpt;

/* The model in be's memory (alpha_bar stays on the host: per-timestep scalars). task_name,
 * if not NULL, names the task of a checkpoint that lacks metadata "task"; if the checkpoint
 * names a different one it is an error. */
fr_status fr_infer_ckpt_load(fr_infer_ckpt *c, fr_backend *be, const char *path, int use_ema, const char *task_name);
void fr_infer_ckpt_free(fr_infer_ckpt *c);

#endif
