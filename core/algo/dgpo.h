/* DGPO's options and the functions of its registry row (core/algo/dgpo*.c; the objective is
 * core/dgpo.c, flowrl/dgpo.h). */
#ifndef FLOWRL_CORE_ALGO_DGPO_H
#define FLOWRL_CORE_ALGO_DGPO_H

#include "flowrl/algo.h"
#include "flowrl/dgpo.h"

typedef struct {
    int64_t num_train_timesteps; /* M = 4: sampler indices drawn per epoch, without replacement */
    int64_t trunc_steps;         /* 6: the indices are drawn from 0..trunc_steps */
    double beta_dpo;             /* 100 */
    int use_shared_noise;        /* 1: one ε per prompt group and time */
    int clip_dsm;                /* 1: PPO-style sample clip of d */
    int clip_kl;                 /* 0: the clip also detaches the KL */
    int use_ema_ref;             /* 0: d_ref of the base; 1: of the EMA reference */
    int64_t switch_ema_ref;      /* 200: after this many optimiser steps the EMA reference rolls out */
    double ema_ref_decay;        /* 0.3: the EMA reference's decay min(this, 0.001·global step) */
} fr_dgpo_opts;

/* The objective's parameters of a run's options. */
fr_status fr_dgpo_opts_params(const fr_run_opts *ro, const fr_dgpo_opts *o, fr_dgpo_params *p);

/* core/algo/dgpo.c */
fr_status fr_dgpo_algo_setup(fr_run *r, void **state);
void fr_dgpo_algo_header(fr_run *r, void *state);
fr_status fr_dgpo_algo_epoch(fr_run *r, void *state);
fr_status fr_dgpo_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_dgpo_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_dgpo_algo_free(void *state);

extern const fr_algo fr_algo_dgpo;

#endif
