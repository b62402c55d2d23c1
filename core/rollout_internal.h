/* Shared by core/rollout.c (configuration) and core/rollout_engine.c (the loop). */
#ifndef FLOWRL_CORE_ROLLOUT_INTERNAL_H
#define FLOWRL_CORE_ROLLOUT_INTERNAL_H

#include "flowrl/rollout.h"

/* The model / task / grid / sharing checks of fr_rollout (flowrl/rollout.h). */
fr_status fr_rollout_check_cfg(const fr_model *m, const fr_task *task, const fr_rollout_cfg *c);

/* The x_T_key / group_size / branch checks alone. */
fr_status fr_rollout_check_sharing(const fr_rollout_cfg *c);

#endif
