/* Shared by the tasks' files in data/ (not part of the public API). */
#ifndef FLOWRL_DATA_TASK_INTERNAL_H
#define FLOWRL_DATA_TASK_INTERNAL_H

#include "flowrl/png.h"
#include "flowrl/task.h"

/* The scatter plot of fr_task_render with opts o: N points x (N, 2), coloured by prompt. */
fr_status fr_task_scatter_png(const char *path, int N, const int *prompt_ids, // (N,)
                              const float *x,                                 // (N, 2)
                              const fr_scatter_opts *o);

#endif
