/* The image network's half of fr_gmflow_net's dispatch (core/gmflow_image.c), called by
 * core/gmflow_train.c where g->img is set. */
#ifndef FLOWRL_GMFLOW_INTERNAL_H
#define FLOWRL_GMFLOW_INTERNAL_H

#include "flowrl/gmflow.h"

void fr_gmflow_image_free(fr_gmflow_net *g);
/* The model's init (flowrl/model.h) of seed: its out layer is zero, so every row starts at
 * means 0, logits 0 (w = 1/K) and log-std 0, the 2-D network's zeroed heads. */
fr_status fr_gmflow_image_init(fr_gmflow_net *g, uint32_t seed);
fr_status fr_gmflow_image_forward(fr_gmflow_net *g, int64_t R, const float *t, const float *x, const int *prompts,
                                  float *rows);

#endif
