/* Built-in tasks (docs/design.md §6): a data generator, a prompt table and rewards behind one
 * struct, looked up by name. docs: data/README.md.
 *
 * Conventions
 *   - A sample is a float vector of D elements. Image tasks store (C, H, W) channel-major
 *     with values in [-1, 1] (pixel = (x + 1) / 2 * 255 when written); 2-D tasks D = 2.
 *   - A prompt is an integer id in [0, n_prompts). Training uses ids [0, n_train); the
 *     GenEval-style evaluation uses ids [eval_first, eval_first + n_eval). For shapes the two
 *     ranges are disjoint (held-out combinations, eval_first = n_train); for gmm2d every
 *     prompt is both (eval_first = 0).
 *   - Each prompt also has n_slots integer tokens from a vocabulary of n_vocab (one token
 *     per slot: kind, colour, count, ...), so that a model can embed a prompt as a sum of
 *     slot-token embeddings and generalise to held-out combinations; a per-id embedding
 *     cannot say anything about an eval prompt it never trained on.
 *   - Data is a pure function of (seed, prompt, index): Philox purpose FR_RNG_TASK_DATA,
 *     counter (task tag, prompt, index). Nothing depends on call order or threads.
 *   - A reward returns a score in [0, 1] (dense, for RL training) and a binary "correct"
 *     (for GenEval-style accuracy). Reward 0 is the task's default. */
#ifndef FLOWRL_TASK_H
#define FLOWRL_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/status.h"

#define FR_PROMPT_TEXT_MAX 64 /* bytes, with the terminating NUL */
#define FR_PROMPT_MAX_SLOTS 8

typedef struct fr_task {
    const char *name;
    const char *description;
    int D;       /* elements per sample */
    int C, H, W; /* image dims (C*H*W == D), or 0, 0, 0 for a non-image task */

    int n_prompts;
    int n_train;    /* training prompts: ids [0, n_train) */
    int eval_first; /* evaluation prompts: ids [eval_first, eval_first + n_eval) */
    int n_eval;

    int n_slots; /* tokens per prompt */
    int n_vocab; /* tokens are in [0, n_vocab) */

    int n_groups;                    /* prompt kinds, for per-kind accuracy */
    const char *const *group_names;  /* (n_groups,) */
    int n_rewards;
    const char *const *reward_names; /* (n_rewards,); [0] is the default */
    /* The first n_judges rewards judge the prompt (BalancedDPO's default scorers); those after
     * (shapes' redquad) score something else. 0: all n_rewards do. */
    int n_judges;

    /* Text form of a prompt ("two red objects"), NUL-terminated, at most
     * FR_PROMPT_TEXT_MAX bytes including the NUL (cap must be at least that). */
    fr_status (*prompt_text)(int prompt_id, char *buf, size_t cap);
    fr_status (*prompt_tokens)(int prompt_id, int32_t *tokens); // tokens: (n_slots,)
    int (*prompt_group)(int prompt_id);                          /* in [0, n_groups) */

    /* One training sample: x = the index-th sample of prompt_id under seed. */
    fr_status (*sample)(int prompt_id, uint32_t seed, uint32_t index, float *x); // x: (D,)

    /* Reward `reward_id` of sample x for prompt_id. A non-finite element of x is an error
     * (FR_ERR_NUMERIC), never a silent score. */
    fr_status (*reward)(int reward_id, int prompt_id, const float *x, // x: (D,)
                        float *score, int *correct);

    /* The same score and its gradient grad = d score / d x (D,) where reward `reward_id` is
     * differentiable (DRaFT and the reward-gradient tools, docs/algorithms/draft.md);
     * FR_ERR_UNSUPPORTED naming the reward where it is not (a step function). NULL: none is. */
    fr_status (*reward_grad)(int reward_id, int prompt_id, const float *x, // x: (D,)
                             float *score, float *grad);                   // grad: (D,)

    /* A PNG of N samples at path (see fr_task_render); NULL: the default picture. */
    fr_status (*render)(const struct fr_task *t, const char *path, int N,
                        const int *prompt_ids, // (N,)
                        const float *x,        // (N, D)
                        int cols, int scale);

    /* The background of a 2-D scatter picture of this task (fr_scatter_opts's ring and
     * marks; flowrl/png.h): writes at most max (x, y) marks and returns how many, sets
     * *ring_radius (0: none). NULL: a plain background. */
    int (*scatter_marks)(const struct fr_task *t, float *marks, int max, float *ring_radius);

    /* A per-pixel reward map (H·W,) of sample x for reward `reward_id` (PXPO,
     * docs/algorithms/pxpo.md): shapes' per-pixel correctness. NULL: none (PXPO then takes
     * the scalar reward as a constant map). */
    fr_status (*pixel_reward)(int reward_id, int prompt_id, const float *x, // x: (D,)
                              float *map);                                   // map: (H·W,)
} fr_task;

/* The task called `name` ("gmm2d", "shapes", "checkerboard"); FR_ERR_ARG naming the known tasks if none. */
fr_status fr_task_get(const char *name, const fr_task **out);
/* The training prompts in turn: i mod t->n_train (the generators' prompt of sample i: GMFlow's
 * training pairs and samples, pi-Flow's student and teacher, docs/algorithms/gmflow.md §7). */
int fr_task_prompt_in_turn(const fr_task *t, int64_t i);
int fr_task_count(void);
const fr_task *fr_task_at(int i); /* i in [0, fr_task_count()), else NULL */

/* The index of the reward called `name` in t->reward_names; FR_ERR_ARG if none. */
fr_status fr_task_reward_id(const fr_task *t, const char *name, int *reward_id);

/* Batched forms of t->sample and t->reward: row b uses prompt_ids[b] and (for sample) index
 * first_index + b. */
fr_status fr_task_sample_batch(const fr_task *t, int B, const int *prompt_ids, // (B,)
                               uint32_t seed, uint32_t first_index,
                               float *x); // (B, D)
fr_status fr_task_reward_batch(const fr_task *t, int reward_id, int B,
                               const int *prompt_ids, // (B,)
                               const float *x,        // (B, D)
                               float *score,          // (B,)
                               int *correct);         // (B,), may be NULL
/* Batched t->reward_grad; FR_ERR_UNSUPPORTED naming the task and reward when it has none. */
fr_status fr_task_reward_grad_batch(const fr_task *t, int reward_id, int B,
                                    const int *prompt_ids, // (B,)
                                    const float *x,        // (B, D)
                                    float *score,          // (B,)
                                    float *grad);          // (B, D)

/* A picture of N samples of prompts prompt_ids as a PNG at path (written atomically): an
 * image task as a grid of `cols` samples a row, each pixel scale x scale (fr_png_write_grid);
 * a 2-D task as a 512-pixel scatter plot of [-6, 6]^2, each point in the tab10 colour of
 * its prompt id (id mod 10), with the task's own decoration (gmm2d: the ring and the mode
 * means). Other tasks: FR_ERR_UNSUPPORTED. */
fr_status fr_task_render(const fr_task *t, const char *path, int N,
                         const int *prompt_ids, // (N,)
                         const float *x,        // (N, D)
                         int cols, int scale);

/* The first Philox coordinate (c0) of each task's data stream; append, never renumber. */
enum { FR_TASK_TAG_GMM2D = 1, FR_TASK_TAG_SHAPES = 2, FR_TASK_TAG_CHECKERBOARD = 3 };

/* The tasks themselves, for callers that want one directly. */
extern const fr_task fr_task_gmm2d;
extern const fr_task fr_task_shapes;
extern const fr_task fr_task_checkerboard;

/* ---- checkerboard: GMFlow's 2-D toy (data/checkerboard.c) ------------------------- */
/* 1 when x (2,) lies in one of the 8 white cells of [-4, 4)^2, else 0. */
int fr_checkerboard_inside(const float *x);

/* ---- gmm2d: 8 Gaussians on a ring (data/gmm2d.c) ---------------------------------- */
#define FR_GMM2D_MODES 8
#define FR_GMM2D_RADIUS 4.0f /* ring radius */
#define FR_GMM2D_STD 0.4f    /* per-axis std of each mode */

/* Mean of mode k (k = prompt id): RADIUS * (cos(k pi/4), sin(k pi/4)). */
void fr_gmm2d_mode(int k, float *xy); // xy: (2,)

/* ---- shapes: a GenEval-like image task (data/shapes*.c) ----------------------------- */
#define FR_SHAPES_C 3
#define FR_SHAPES_H 16
#define FR_SHAPES_W 16
#define FR_SHAPES_D (FR_SHAPES_C * FR_SHAPES_H * FR_SHAPES_W)
#define FR_SHAPES_N_PROMPTS 70 /* 4 single + 12 counting + 6 two + 48 position */
#define FR_SHAPES_N_TRAIN 52   /* the split rule of data/shapes_prompts.c gives these */
#define FR_SHAPES_N_EVAL 18
#define FR_SHAPES_N_SLOTS 5    /* kind | colour A | colour B | count | relation */
#define FR_SHAPES_N_VOCAB 22
/* The prompts, the palette and the detector: data/shapes_internal.h. */

#endif
