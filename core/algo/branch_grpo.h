/* BranchGRPO's options (core/algo/branch_grpo.c; docs/algorithms/flow-grpo.md §6). */
#ifndef FLOWRL_CORE_ALGO_BRANCH_GRPO_H
#define FLOWRL_CORE_ALGO_BRANCH_GRPO_H

#include <stdint.h>

#include "flowrl/algo.h"

typedef struct {
    char split_points[64];   /* "0,3,6,9": increasing steps < T */
    int64_t width;           /* children per node at a split */
    float split_noise_scale; /* ξ multiplier at a split step */
    int prob_weighted;       /* node rewards softmax(child log p)-weighted */
    char depth_pruning[256]; /* child step-depths (i + 1 for step i) not trained */
    int depth_slide;         /* the depth window slides by (epoch + 1) / slide_interval */
    int64_t slide_interval, stop_depth; /* stop_depth −1: the last split point */
    int width_mode;          /* 0 off, 1 per leaf, 2 best and worst over the epoch */
    double width_ratio, pruning_step_ratio;
} fr_branch_opts;

extern const fr_algo fr_algo_branch_grpo;

#endif
