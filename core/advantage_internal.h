/* Shared between the advantage estimators (core/advantage.c, core/advantage_local.c;
 * flowrl/advantage.h): the group statistics and the argument checks. */
#ifndef FLOWRL_CORE_ADVANTAGE_INTERNAL_H
#define FLOWRL_CORE_ADVANTAGE_INTERNAL_H

#include <stdint.h>

#include "flowrl/status.h"

/* 1 if the n >= 1 values of x are all equal. */
int fr_adv_all_equal(const float *x, int64_t n);

/* Mean of x (n,) (n >= 1): the canonical mean, except that equal values give that value
 * exactly (flowrl/advantage.h). */
float fr_adv_group_mean(const float *x, int64_t n);

/* Mean and std of x (n,): std = sqrtf(canonical Σ(x − mean)² / (float)(n − ddof)), ddof 0
 * (numpy's default) or 1 (torch.std, n >= 2); exactly 0 for equal values. */
void fr_adv_group_stats(const float *x, int64_t n, int ddof, float *mean, float *std);

/* FR_ERR_ARG unless 1 <= n <= 2^31, FR_ERR_NUMERIC at the first non-finite r[i]. */
fr_status fr_adv_check_rewards(const char *fn, int64_t n, const float *r);

/* FR_ERR_ARG unless eps is finite and > 0. */
fr_status fr_adv_check_eps(const char *fn, float eps);

#endif
