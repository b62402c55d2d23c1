/* The step-dependent AdamW scalars (core/adamw.c) that every backend's adamw op receives
 * (fr_adamw_hp, flowrl/ops.h), computed once per step so all backends use identical floats. */
#ifndef FLOWRL_ADAMW_H
#define FLOWRL_ADAMW_H

#include <stdint.h>

#include "flowrl/ops.h"

fr_adamw_hp fr_adamw_prepare(double lr, double beta1, double beta2, double eps,
                             double weight_decay, int64_t step);

#endif
