/* Advantage estimators of the Flow-GRPO family and DDPO (docs/algorithms/advantages.md §1.1, §1.4),
 * Flow-GRPO's zero-advantage filter (§1.1 item 6), and the local-group and tree advantages
 * of DanceGRPO, MixGRPO, G²RPO and BranchGRPO (§1.2, §1.3; their own section below).
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

/* ---- Local-group and tree advantages (docs/algorithms/advantages.md §1.2, §1.3) ------------
 * DanceGRPO, MixGRPO, G²RPO and BranchGRPO normalise within one prompt's samples on one GPU
 * with torch.std: UNBIASED (n − 1), eps 1e-8 added in float32. Arithmetic as above (float32,
 * canonical mean with the exact rule for equal values, canonical Σ(r − mean)²) but with
 * std = sqrtf(Σ(r − mean)² / (float)(n − 1)). A group of equal rewards gives A = 0 exactly;
 * the public code's float32 torch.mean of equal values can round, and its A is then the
 * rounding divided by ~1e-8, up to |A| ~ 1 (measured, tests/test_adv_local.c): flowrl does
 * not copy that. Rewards must be finite (FR_ERR_NUMERIC); shapes are checked (FR_ERR_ARG). */

#define FR_ADV_EPS_LOCAL 1e-8f     /* §1.2, §1.3: `group_rewards.std() + 1e-8` */
#define FR_ADV_TREE_STD_MIN 1e-6f  /* §1.3: a depth whose std is below this gets A = 0 */

/* §1.2: the samples form consecutive groups of group_size (B a multiple of group_size);
 * A = (r − mean_group)/(std_group + eps). group_size 1 is FR_ERR_ARG: torch's unbiased std
 * of one value is NaN, so the public code would train on NaN advantages. */
fr_status fr_adv_local_group(int64_t B,
                             const float *rewards, // (B,)
                             int64_t group_size, float eps,
                             float *adv);          // (B,)

/* §1.2, G²RPO's multi-granularity sum (and MixGRPO's `advantage_aggr` with unit weights):
 * A = 0 + a_0 + a_1 + ... + a_{n_gran−1} (float32 adds in g order, starting from +0 as
 * torch.zeros_like does), a_g = fr_adv_local_group of row g. Several reward models: one
 * call per model, then add the results in model order (G²RPO: hps + clip). */
fr_status fr_adv_local_group_sum(int64_t n_gran, int64_t B,
                                 const float *rewards, // (n_gran, B)
                                 int64_t group_size, float eps,
                                 float *adv);          // (B,)

/* §1.3, BranchGRPO's tree advantage. The batch holds B/L trees of L = Π width[k] leaves
 * each, leaf ids consecutive in depth-first order (tree t = samples [tL, tL + L)). Split k
 * (k = 0..n_split−1) turns each node into width[k] children. Depth 0 is the root, depth d
 * the nodes made by split d − 1, depth n_split the leaves; a depth-d node owns the
 * L / Π_{k<d} width[k] consecutive leaves below it.
 *
 * These are the trees of fr_rollout_branch (flowrl/rollout.h): width[k] = branch[k].width.
 *
 * Node reward R: a leaf's reward; an internal node's R is the mean of ALL its leaves
 * (prob_weighted = 0, fr_adv_group_mean over them in leaf order), or (prob_weighted = 1)
 * Σ_c softmax(lp)_c·R_c over its children c, lp_c = the log-prob of the edge into child c:
 * w_c = fr_expf(lp_c − max lp)/S, S = canonical Σ fr_expf(lp_c − max lp), R =
 * fr_dot_canonical(w, R_c), except that children of equal R give that R exactly (float32
 * weights need not sum to 1). logp[k][s] (k = 0..n_split−1) is the log-prob of the split-k
 * transition (sampler step branch[k].at) on leaf s's path, i.e. of the edge into the
 * depth-(k+1) node containing s: equal for every leaf of that node (FR_ERR_ARG otherwise)
 * and finite (FR_ERR_NUMERIC). It is the sampler's log-prob (flowrl/sampler.h: a mean over
 * the D elements, as the public code's). logp may be NULL when prob_weighted = 0.
 *
 * Per tree and depth, over the depth's n_d nodes: A = (R − mean_d)/(std_d + eps), unbiased
 * std; A = 0 where n_d = 1 or std_d < FR_ADV_TREE_STD_MIN. Outputs are broadcast to leaves:
 * adv[d][s] and node_reward[d][s] belong to the depth-d node containing leaf s (row
 * n_split: the leaves themselves). The public tree has one node per sampler step; the steps
 * between two splits form chains whose nodes have the same R and A as the chain's first
 * node, so the transition at sampler step i of leaf s carries adv[d][s], d = the number of
 * splits at steps <= i. */
fr_status fr_adv_tree(int64_t B,
                      const float *rewards,  // (B,) leaf rewards
                      int64_t n_split,
                      const int64_t *width,  // (n_split,) children per node at split k, >= 1
                      int prob_weighted,
                      const float *logp,     // (n_split, B) or NULL
                      float eps,
                      float *adv,            // (n_split + 1, B)
                      float *node_reward);   // (n_split + 1, B)

#endif
