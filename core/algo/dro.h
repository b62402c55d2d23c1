/* Diffusion-DRO's options and the functions of its registry row (core/algo/dro*.c; the loss is
 * core/dro.c, flowrl/dro.h; docs/algorithms/dro.md). */
#ifndef FLOWRL_CORE_ALGO_DRO_H
#define FLOWRL_CORE_ALGO_DRO_H

#include "flowrl/algo.h"
#include "flowrl/dro.h"

typedef struct {
    char prefs[FR_OPT_PATH_MAX]; /* the expert data: the winners x_w of this preference file */
    double margin;               /* 1e-3: the hinge's margin (train.py --margin) */
    int64_t buffer_size;         /* 4: trajectories the replay buffer keeps (--buffer_size) */
    int64_t buffer_every;        /* 1: new trajectories every this many micro-batches (--buffer_sample_steps) */
    int64_t lag_steps;           /* 16: the lagged sampler copies the policy every this many micro-batches
                                    (--buffer_update_steps) */
    int jitter;                  /* 1: per-trajectory timestep jitter U{0..n_train/T − 1} (--buffer_perturb_timesteps) */
    double cond_drop;            /* 0.2: a refreshed row's prompt is dropped (the null condition) with this
                                    probability (--random_drop_prompt_probability) */
} fr_dro_opts;

/* core/algo/dro.c */
fr_status fr_dro_algo_setup(fr_run *r, void **state);
void fr_dro_algo_header(fr_run *r, void *state);
fr_status fr_dro_algo_epoch(fr_run *r, void *state);
fr_status fr_dro_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_dro_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_dro_algo_free(void *state);

extern const fr_algo fr_algo_dro;

#endif
