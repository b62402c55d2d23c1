/* Confidence intervals for the accuracies flowrl reports (make demo's before/after table,
 * evaluation summaries), so that a difference within sampling noise is not read as signal. */
#ifndef FLOWRL_STATS_H
#define FLOWRL_STATS_H

#include <stdint.h>

#include "flowrl/status.h"

#define FR_Z95 1.959963984540054 /* the 0.975 quantile of the standard normal */

/* Wilson score interval (Wilson 1927) for a proportion with k successes in n trials, 95%:
 *   p = k/n, z = FR_Z95, centre = (p + z²/2n) / (1 + z²/n),
 *   half = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²);  lo = centre - half, hi = centre + half.
 * Unlike the normal approximation p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and is not
 * zero-width at k = 0 or k = n. Assumes the n trials are independent: samples drawn for the
 * same prompt are correlated, so across few prompts the true uncertainty is wider.
 * FR_ERR_ARG unless 0 <= k <= n and n >= 1. */
fr_status fr_proportion_ci95(int64_t k, int64_t n, double *lo, double *hi);

/* 95% interval for the difference p2 - p1 of two proportions (k1 of n1, k2 of n2) by
 * Newcombe's hybrid score method (Newcombe 1998, method 10), from the two Wilson intervals
 * [l1, u1], [l2, u2]:
 *   lo = d - sqrt((p2 - l2)² + (u1 - p1)²),  hi = d + sqrt((u2 - p2)² + (p1 - l1)²),  d = p2 - p1.
 * Treats the two samples as independent; for a paired design (the same seeds before and
 * after, as in flowrl eval) this is conservative. FR_ERR_ARG as above. */
fr_status fr_proportion_diff_ci95(int64_t k1, int64_t n1, int64_t k2, int64_t n2, double *lo, double *hi);

#endif
