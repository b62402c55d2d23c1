/* Flow-GRPO's options and the functions of its registry row (core/algo/flow_grpo*.c). */
#ifndef FLOWRL_CORE_ALGO_FLOW_GRPO_H
#define FLOWRL_CORE_ALGO_FLOW_GRPO_H

#include "flowrl/algo.h"
#include "flowrl/grpo.h"

typedef enum { FR_FG_WINDOW_NONE = 0, FR_FG_WINDOW_FAST = 1, FR_FG_WINDOW_MIX = 2 } fr_fg_window;
typedef enum { FR_FG_GUARD_OFF = 0, FR_FG_GUARD_BATCH = 1, FR_FG_GUARD_SAMPLE = 2 } fr_fg_guard;

typedef struct {
    fr_kl_form kl_form;   /* code (FG: no Δt) or paper */
    int train_cfg;        /* -1 auto (on iff cfg != 1), 0, 1: training recomputes the CFG combination */
    fr_fg_window window;  /* none, fast (Flow-GRPO-Fast), mix (MixGRPO) */
    int64_t window_size;  /* fast: W (0 = steps 0..T-2) */
    int64_t window_lo, window_hi; /* fast: the start is drawn from [lo, hi − W] (hi −1: T/2) */
    int64_t mix_window, mix_iters;
    fr_fg_guard guard;    /* GRPO-Guard: off, batch (the public code's bias), sample */
    int same_noise;       /* the G samples of a prompt share x_T (DanceGRPO's init_same_noise) */
} fr_flow_grpo_opts;

extern const char *const fr_flow_grpo_window_names[];
extern const char *const fr_flow_grpo_guard_names[];
extern const char *const fr_flow_grpo_kl_names[];

/* core/algo/flow_grpo.c */
fr_status fr_fg_setup(fr_run *r, void **state);
void fr_fg_header(fr_run *r, void *state);
fr_status fr_fg_epoch(fr_run *r, void *state);
fr_status fr_fg_load(fr_run *r, void *state, const fr_st_file *f, const char *path);
void fr_fg_free(void *state);

extern const fr_algo fr_algo_flow_grpo;

#endif
