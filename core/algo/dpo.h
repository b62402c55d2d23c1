/* Diffusion-DPO and Flow-DPO (docs/algorithms/dpo.md): options and the functions of their two
 * registry rows (core/algo/dpo*.c; the objective is core/pair_dpo.c, flowrl/pair_dpo.h). */
#ifndef FLOWRL_CORE_ALGO_DPO_H
#define FLOWRL_CORE_ALGO_DPO_H

#include "flowrl/algo.h"
#include "flowrl/pair_dpo.h"
#include "flowrl/task.h"

/* Flow-DPO's offline setting: `ref_update_step = 10000000` (FDPO config/dpo.py). */
#define FR_DPO_OFFLINE_STEP 10000000

typedef struct {
    char prefs[FR_OPT_PATH_MAX];  /* preference file; "" (flow-dpo only): pairs from the reference's rollouts */
    double beta_dpo;              /* 5000 (Diffusion-DPO launchers), 100 (FDPO config/dpo.py) */
    int64_t num_train_timesteps;  /* flow-dpo: draws per batch; 0 = int(num_steps·0.99) as FDPO */
    int64_t ref_update_step;      /* flow-dpo: the learner is copied into the reference every this many steps */
    int flow;                     /* set by the row's defaults: 1 for flow-dpo (not an option) */
    char scorers[256];            /* balanced-dpo: the task's reward names, comma-separated (the vote's scorers) */
    int vote;                     /* set by the row's defaults: 1 for balanced-dpo (not an option) */
} fr_dpo_opts;

/* balanced-dpo's scorers: at most this many */
#define FR_DPO_MAX_SCORERS 8
/* the scorer "reward": the run's own reward (--reward, built-in or cmd:) */
#define FR_DPO_SCORER_RUN (-1)
/* The scorer ids (*K of them) of a comma-separated list of the task's reward names and "reward"
 * (FR_DPO_SCORER_RUN); "": the run's reward, then every other built-in reward of the task (names
 * other than run_reward, or than the task's first when run_reward is empty). */
fr_status fr_dpo_scorer_ids(const fr_task *task, const char *list, const char *run_reward, int *ids, int *K);

/* core/algo/dpo.c */
fr_status fr_dpo_algo_setup(fr_run *r, void **state);
void fr_dpo_algo_header(fr_run *r, void *state);
fr_status fr_dpo_algo_epoch(fr_run *r, void *state);
fr_status fr_dpo_algo_save(fr_run *r, void *state, fr_st_file *f);
fr_status fr_dpo_algo_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_dpo_algo_free(void *state);
/* Flow-DPO's draws per batch: num_train_timesteps, or int(num_steps·0.99) when it is 0. */
int64_t fr_dpo_draws(const fr_run_opts *ro, const fr_dpo_opts *o);

extern const fr_algo fr_algo_diffusion_dpo;
extern const fr_algo fr_algo_flow_dpo;
extern const fr_algo fr_algo_balanced_dpo;

#endif
