/* Chunk-GRPO's step chunks (docs/algorithms/flow-grpo.md §8; arXiv 2510.21583, no public
 * code): the T steps of a trajectory cut into K chunks of consecutive steps at boundaries
 * that "follow the temporal dynamics, using the relative L1 distance between successive
 * latents". The paper gives no formula; the two functions below are flowrl's choice.
 *
 * Host functions over host memory (a trajectory crosses with fr_d2h first). Sums are
 * float64, accumulated in index order; each result is rounded once. */
#ifndef FLOWRL_CHUNK_H
#define FLOWRL_CHUNK_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/status.h"

/* d_i = (1/N) Σ_n r_{i,n}, i = 0..T−1, with the relative L1 distance of sample n
 *   r_{i,n} = ‖x_{i+1,n} − x_{i,n}‖₁ / ‖x_{i,n}‖₁     (sums over the D elements)
 * and, where ‖x_{i,n}‖₁ = 0 (flowrl's guard), r = 1 if x_{i+1,n} ≠ 0 (the step adds all
 * of x_{i+1}) and r = 0 if both are 0.
 * Each norm in float32: fabsf of the float32 difference (or value), summed in the canonical
 * order of flowrl/reduce.h (fr_sum_canonical, what the row_sum op computes), so the host and
 * the backend version below agree bit for bit; then in float64 the ratio (one division) and
 * the mean over n = 0..N−1 in order divided by N; d_i rounded once to float32. traj is
 * time-major, as fr_rollout writes it.
 * FR_ERR_NUMERIC (naming step and sample) on a NaN or inf in traj. */
fr_status fr_traj_rel_l1(const float *traj, // (T+1, N, D) host
                         int64_t T, int64_t N, int64_t D,
                         float *d_out); // (T,) host

/* The same of a trajectory in backend memory (flowrl/backend.h), by op entries (binary sub,
 * unary abs, row_sum); only the 2·T·N norms cross to the host. Equal to fr_traj_rel_l1 of
 * the host copy, bit for bit. */
fr_status fr_traj_rel_l1_dev(fr_backend *be,
                             const float *traj, // (T+1, N, D) backend
                             int64_t T, int64_t N, int64_t D,
                             float *d_out);     // (T,) host

/* K chunks of the T steps, chunk k = steps [start[k], start[k+1]), start[0] = 0,
 * start[K] = T, each chunk non-empty, so that each chunk's share of Σ d is as near 1/K
 * as a greedy cut gets it: with the prefix sums P_j = Σ_{i<j} d_i (float64, in order),
 *   start[k] = min(max(j_k, start[k−1] + 1), T − K + k),   k = 1..K−1,
 *   j_k      = the least j with K·P_j >= k·P_T              (the running sum passes k/K)
 * (the clamps keep every chunk non-empty). If Σ d = 0 every d_i counts as 1, so equal d
 * and all-zero d both give the equal split start[k] = ceil(k·T/K). 1 <= K <= T; every
 * d_i finite and >= 0 (FR_ERR_ARG names the first that is not). */
fr_status fr_chunk_bounds(const float *d, // (T,) host
                          int64_t T, int64_t K,
                          int64_t *start); // (K+1,) host

#endif
