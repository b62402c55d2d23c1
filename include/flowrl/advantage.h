/* Advantage estimators of the Flow-GRPO family and DDPO (docs/algorithms/advantages.md §1.1, §1.4),
 * and Flow-GRPO's zero-advantage filter (§1.1 item 6).
 *
 * Groups: the public code keys groups by the prompt STRING; flowrl takes one int64 group
 * id per sample (the caller maps equal prompts to equal ids). Within a group, samples are
 * taken in sample order.
 *
 * Arithmetic (all float32; the public code uses numpy float64):
 *   mean = canonical long sum (flowrl/reduce.h) of the group's rewards in sample order
 *          / (float)n, EXCEPT that a group whose rewards are all equal has mean = that
 *          value exactly (float64 numpy gets that exactly for any realistic n; a float32
 *          sum of n equal values can round, which would turn the "identical rewards ->
 *          A = 0 -> dropped" rule of §1.1 into tiny nonzero advantages);
 *   std  = sqrtf(canonical Σ (r − mean)² / (float)n), population (ddof 0); exactly 0 for
 *          a constant group;
 *   A    = (r − mean) / (std + eps)   (eps added in float32: 1e-4f, not float64 1e-4).
 * The results agree with a float64 numpy computation to a few float32 ulps of
 * max|r − mean|/(std + eps) (tests/test_objectives.c).
 *
 * Advantages are returned UNCLAMPED: the clamp to ±adv_clip_max (5) belongs to the loss
 * (flowrl/grpo.h), as in FG's training loop; the zero filter sees unclamped values (a
 * clamp never turns a nonzero into 0, so the order does not matter). Rewards must be
 * finite (FR_ERR_NUMERIC otherwise). FG's advantages have a T_train axis of equal
 * columns; flowrl returns one value per sample, broadcast by the loop. */
#ifndef FLOWRL_ADVANTAGE_H
#define FLOWRL_ADVANTAGE_H

#include <stdint.h>

#include "flowrl/status.h"

#define FR_ADV_EPS_FLOW_GRPO 1e-4f    /* §1.1: FG, AWM, DGPO, NFT (tracker and untracked) */
#define FR_ADV_EPS_DDPO 1e-6f         /* §1.4 with tracking */
#define FR_ADV_EPS_DDPO_UNTRACKED 1e-8f /* §1.4 without tracking */

/* mean and population std of x (n,) as described above (n >= 1). */
fr_status fr_adv_mean_std(const float *x, // (n,)
                          int64_t n, float *mean, float *std);

/* Flow-GRPO PerPromptStatTracker.update for one epoch (§1.1; the tracker holds no history,
 * it is cleared every epoch): A_i = (r_i − mean_{g(i)}) / (std + eps), std of the group
 * (global_std = 0) or of ALL B rewards (global_std = 1, the SD3 default; the mean stays
 * per group). */
fr_status fr_adv_per_prompt(int64_t B,
                            const float *rewards,  // (B,)
                            const int64_t *group,  // (B,) group id per sample
                            int global_std, float eps,
                            float *adv);           // (B,)

/* Without per-prompt tracking (§1.1 item 4; DDPO untracked with eps 1e-8):
 * A = (r − mean_all)/(std_all + eps). */
fr_status fr_adv_batch(int64_t B,
                       const float *rewards, // (B,)
                       float eps,
                       float *adv);          // (B,)

/* Flow-GRPO's filter (§1.1 item 6): keep[i] = (adv[i] != 0); then, if the kept count is
 * not divisible by num_batches and at least m = num_batches − kept mod num_batches
 * samples were dropped, m randomly chosen dropped samples are re-enabled (else nothing
 * changes, as in FG). FG draws the m with torch.randperm; flowrl picks, among the dropped
 * samples numbered k = 0, 1, ... in sample order, the m with the smallest
 * (w_k, k), w_k = fr_rng_u32(seed, purpose, c0, c1, 0, k): a uniform m-subset, a pure
 * function of its coordinates. Coordinates: c0 = epoch, c1 = the shard (FG filters per
 * process on its local samples; 0 in one process). purpose: the caller's fr_rng_purpose
 * (philox.h has no dedicated value yet; see the report of this module). *kept: the
 * final count. */
fr_status fr_adv_filter_zero(int64_t B,
                             const float *adv, // (B,)
                             int64_t num_batches, uint32_t seed, uint32_t purpose, uint32_t c0,
                             uint32_t c1,
                             uint8_t *keep,    // (B,) 1 = train on the sample
                             int64_t *kept);

/* DDPO per-prompt deque tracker (§1.4; ddpo_pytorch/stat_tracking.py). Each group id owns a
 * deque of its last buffer_size rewards. update() first appends the batch's rewards of
 * each group (sample order), then: if the deque holds fewer than min_count rewards, the
 * BATCH's mean/std (all B rewards) is used, else the deque's (oldest to newest);
 * A = (r − mean)/(std + eps) with eps FR_ADV_EPS_DDPO. The history persists across
 * updates (unlike Flow-GRPO's tracker). */
typedef struct fr_ddpo_tracker fr_ddpo_tracker;

fr_status fr_ddpo_tracker_new(int64_t buffer_size, int64_t min_count, float eps, fr_ddpo_tracker **out);
void fr_ddpo_tracker_free(fr_ddpo_tracker *t);
fr_status fr_ddpo_tracker_update(fr_ddpo_tracker *t, int64_t B,
                                 const float *rewards, // (B,)
                                 const int64_t *group, // (B,)
                                 float *adv);          // (B,)
/* The deque of `group`, oldest first, into out (cap,); *n = its length (0 if unseen). */
fr_status fr_ddpo_tracker_history(const fr_ddpo_tracker *t, int64_t group,
                                  float *out, // (cap,)
                                  int64_t cap, int64_t *n);

#endif
