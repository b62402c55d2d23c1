/* The sliced Wasserstein-2 distance between two sample sets (core/swd.c): the metric of the
 * generator miniatures (GMFlow, pi-Flow: samples against a teacher's or the data's).
 *
 *   SW2(a, b)^2 = (1 / P) sum_p W2(a . theta_p, b . theta_p)^2
 *
 * over P directions theta_p, each a standard normal D-vector from Philox (seed, FR_RNG_SWD_DIR,
 * p, 0, 0, lane d) normalised to unit length in double. The 1-D W2 between the projected sets
 * compares quantiles: both sorted, M = max(na, nb) levels u_k = (k + 1/2) / M, the value of a
 * set of n points at u_k its sorted element floor(u_k n) (the empirical quantile function), so
 * equal sizes compare sorted element k with sorted element k. Everything after the float
 * inputs is double; the result is a function of the inputs' bits, the seed and P. */
#ifndef FLOWRL_SWD_H
#define FLOWRL_SWD_H

#include <stdint.h>

#include "flowrl/status.h"

fr_status fr_sliced_w2(const float *a, int64_t na, // (na, D)
                       const float *b, int64_t nb, // (nb, D)
                       int D, int n_proj, uint32_t seed, double *out);

#endif
