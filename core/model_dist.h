/* A model's update split over the ranks (flowrl/dist.h; docs/determinism.md "Many
 * processes"): after a backward with m->dw_parts > 1 each rank holds its rows of every
 * linear weight's gradient (fr_model_dw_split), after fr_adamw_step_part its share of every
 * tensor's values and moments; these gather them whole on every rank, through the host,
 * bytes only. With one rank they return s. */
#ifndef FLOWRL_CORE_MODEL_DIST_H
#define FLOWRL_CORE_MODEL_DIST_H

#include "flowrl/model.h"
#include "flowrl/optim.h"

fr_status fr_model_dist_whole_grads(fr_status s, fr_model *m);
fr_status fr_model_dist_whole_params(fr_status s, fr_model *m, fr_adamw_state *adam);

#endif
