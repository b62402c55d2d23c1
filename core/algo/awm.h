/* AWM's options and the functions of its registry row (core/algo/awm*.c; the objective is
 * core/awm.c, flowrl/awm.h). */
#ifndef FLOWRL_CORE_ALGO_AWM_H
#define FLOWRL_CORE_ALGO_AWM_H

#include "flowrl/algo.h"
#include "flowrl/awm.h"

typedef struct {
    fr_awm_time_type time_type;   /* discrete_wo_init (the public geneval/ocr default) */
    int64_t train_timesteps;      /* K */
    double time_shift;            /* shift of the continuous time types */
    fr_awm_weighting weighting;   /* ghuber */
    double ghuber_power;          /* p */
    fr_awm_ratio_mode ratio_mode; /* exp_first */
    double advantage_max;         /* Ã = clamp(A, ±adv_clip)/adv_clip · advantage_max */
    fr_awm_kl_weight kl_weight;   /* Uniform or ELBO, of the KL to the base (common --beta) */
    double ema_beta;              /* weight of the EMA-KL, 0 = off */
    fr_awm_kl_weight kl_ema_weight;
    fr_awm_decay_type kl_ema_decay_type; /* linear: d = min(kl_ema_decay, 0.001·global step) */
    double kl_ema_decay;
} fr_awm_opts;

/* The objective's parameters and time selection of a run's options. */
fr_status fr_awm_opts_params(const fr_run_opts *ro, const fr_awm_opts *o, fr_awm_params *p, fr_awm_time_cfg *tc);

/* core/algo/awm.c */
fr_status fr_awm_algo_setup(fr_run *r, void **state);
void fr_awm_algo_header(fr_run *r, void *state);
fr_status fr_awm_algo_epoch(fr_run *r, void *state);
fr_status fr_awm_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_awm_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_awm_algo_free(void *state);

extern const fr_algo fr_algo_awm;

#endif
