/* GenEval-style evaluation (docs/design.md §6): n samples per prompt of a split, drawn with
 * fixed seeds, scored by the task's reward; accuracy per prompt kind (task->group_names)
 * and overall, and the mean score. Loading a checkpoint for inference: flowrl/infer_ckpt.h
 * (included here for the callers that use both).
 *
 * Seeds. Sample k of prompt p is the rollout sample id s = p·FR_EVAL_MAX_N + k under
 * key seed = opts.seed (default FR_EVAL_SEED) and c0 = FR_ROLLOUT_C0_EVAL (flowrl/rollout.h).
 * Neither depends on the training seed or epoch, so an evaluation draws the same x_T and
 * noise for every checkpoint of every run (a paired comparison), the first k samples do
 * not change when n grows, and the result does not depend on the batch size. */
#ifndef FLOWRL_EVALUATE_H
#define FLOWRL_EVALUATE_H

#include <stdint.h>

#include "flowrl/backend.h"
#include "flowrl/infer_ckpt.h"
#include "flowrl/model.h"
#include "flowrl/rollout.h"
#include "flowrl/status.h"
#include "flowrl/task.h"

#define FR_EVAL_SEED 0x45564131u /* "EVA1" */
#define FR_EVAL_MAX_N 65536      /* samples per prompt (the stride of the sample ids) */

typedef enum { FR_SPLIT_TRAIN = 0, FR_SPLIT_EVAL = 1 } fr_split;

extern const char *const fr_split_names[]; /* indexed by fr_split, NULL-terminated */
const char *fr_split_name(fr_split s); /* "train", "eval" */
fr_status fr_split_from_name(const char *s, fr_split *out);
/* The prompt ids of a split: [first, first + n). */
void fr_split_range(const fr_task *t, fr_split s, int *first, int *n);

typedef struct {
    fr_split split;
    int n;          /* samples per prompt, 1 .. FR_EVAL_MAX_N */
    uint32_t seed;  /* Philox key of the sampler streams */
    int reward_id;  /* the task's reward (0: its default) */
    /* Scores in place of the task's reward (an external reward program, flowrl/reward_cmd.h),
     * or NULL: fills score (B,) for batch number `batch`. Such a reward has no notion of
     * "correct": every sample counts as not correct. */
    fr_status (*score)(void *user, uint32_t batch, int B, const int *pid, const float *x, float *score);
    void *score_user;
} fr_eval_opts;

/* split eval, n 16, seed FR_EVAL_SEED, reward 0, no score hook. */
fr_eval_opts fr_eval_opts_default(void);

typedef struct {
    int n_prompts;       /* prompts evaluated (the split) */
    int *prompt_ids;     /* (n_prompts,) */
    int *prompt_correct; /* (n_prompts,) samples judged correct */
    double *prompt_score;/* (n_prompts,) mean score */
    int n_groups;        /* task->n_groups */
    int *group_prompts;  /* (n_groups,) */
    int64_t *group_samples, *group_correct; /* (n_groups,) */
    double *group_score; /* (n_groups,) mean score (NaN for an empty group) */
    int n;               /* samples per prompt */
    int64_t samples, correct;
    double score;        /* mean score over all samples */
    /* Diversity: per prompt the mean over its n(n−1)/2 pairs of samples (the reward's input
     * x, D values) of the Euclidean distance ‖x_i − x_j‖ / √D, the RMS per-value distance
     * (0 when n = 1); pairs i < j in order, in double. Per kind and overall the mean over
     * the prompts. Independent of the batch size like every field. */
    double *prompt_diversity; /* (n_prompts,) */
    double *group_diversity;  /* (n_groups,) NaN for an empty group */
    double diversity;
    /* KL to a reference (fr_eval_kl; have_kl = 0 until it ran): nats per sample, the mean
     * over the samples, per prompt, per kind (mean over its samples) and overall; kl_per_dim
     * = kl / D. */
    int have_kl;
    double *prompt_kl;   /* (n_prompts,) */
    double *group_kl;    /* (n_groups,) NaN for an empty group */
    double kl, kl_per_dim;
} fr_eval_result;

/* Runs the evaluation. rc gives the sampler (its seed and c0 are replaced as described
 * above; rc->batch rows per rollout call). Scores are summed in sample order (prompt,
 * then k) in double, so the result is independent of the batch size. */
fr_status fr_evaluate(const fr_model *m, fr_backend *be, const fr_task *task, const fr_rollout_cfg *rc,
                      const fr_eval_opts *opts, fr_eval_result *res);
void fr_eval_result_free(fr_eval_result *r);

/* KL of the policy m to a reference ref, the same measure for every algorithm: the KL
 * between the discretised path measures of m and ref under the stochastic sampler rc
 * (flowrl eval --kl-ref: Flow-GRPO's SDE sampler, --kl-steps 10 steps, --kl-noise-level 0.7).
 * Both chains have Gaussian transitions x_{t+1} ~ N(μ(x_t), σ_t² I) with the same σ_t (the
 * step's transition std, fr_step_std.std), so
 *   KL(p_m ‖ p_ref) = E_{x ~ p_m} Σ_t Σ_d (μ_m(x_t) − μ_ref(x_t))² / (2σ_t²),
 * estimated by Monte Carlo on opts' prompts × n samples at eval's seeds (flowrl/evaluate.h
 * "Seeds", key opts->seed, c0 FR_ROLLOUT_C0_EVAL): the policy's rollout with its
 * trajectory, and at every step the reference's mean at the same x_t (fr_guided_forward with
 * rc's guidance, fr_sampler_mean; row sums of squares by the op entry row_sumsq_diff).
 * Summed in double per sample over the steps, then over the samples in order: independent
 * of the batch size, 0 exactly when ref has m's weights. Fills res's KL fields (have_kl = 1);
 * res must be fr_evaluate's result for the same opts. Every step of rc needs std > 0. */
fr_status fr_eval_kl(const fr_model *m, const fr_model *ref, fr_backend *be, const fr_task *task,
                     const fr_rollout_cfg *rc, const fr_eval_opts *opts, fr_eval_result *res);

#endif
