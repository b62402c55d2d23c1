/* Built-in tasks (DESIGN.md §6): a data generator, a prompt table and rewards behind one
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
} fr_task;

/* The task called `name` ("gmm2d", "shapes"); FR_ERR_ARG naming the known tasks if none. */
fr_status fr_task_get(const char *name, const fr_task **out);
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

/* The first Philox coordinate (c0) of each task's data stream; append, never renumber. */
enum { FR_TASK_TAG_GMM2D = 1, FR_TASK_TAG_SHAPES = 2 };

/* The tasks themselves, for callers that want one directly. */
extern const fr_task fr_task_gmm2d;
extern const fr_task fr_task_shapes;

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
#define FR_SHAPES_NCOLORS 4  /* red, green, blue, yellow */
#define FR_SHAPES_OBJ 3      /* objects are OBJ x OBJ squares */
#define FR_SHAPES_GRID 4     /* ... placed on a GRID x GRID lattice of cells */
#define FR_SHAPES_MAX_COUNT 4
#define FR_SHAPES_N_PROMPTS 70 /* 4 single + 12 counting + 6 two + 48 position */
#define FR_SHAPES_N_TRAIN 52   /* the split rule of data/shapes_prompts.c gives these */
#define FR_SHAPES_N_EVAL 18
#define FR_SHAPES_N_SLOTS 5    /* kind | colour A | colour B | count | relation */
#define FR_SHAPES_N_VOCAB 22

typedef enum {
    FR_SHAPES_SINGLE = 0,   /* "a red object" */
    FR_SHAPES_COUNTING = 1, /* "three blue objects" (2..4) */
    FR_SHAPES_TWO = 2,      /* "a red and a green object" */
    FR_SHAPES_POSITION = 3  /* "a red object left of a blue object" */
} fr_shapes_kind;

typedef enum {
    FR_SHAPES_LEFT = 0, /* A left of B */
    FR_SHAPES_RIGHT = 1,
    FR_SHAPES_ABOVE = 2,
    FR_SHAPES_BELOW = 3
} fr_shapes_rel;

typedef struct {
    int kind;    /* fr_shapes_kind */
    int color_a; /* the (first) colour */
    int color_b; /* TWO, POSITION: the second colour; else -1 */
    int count;   /* COUNTING: 2..4; SINGLE: 1; else 1 (one object of each colour) */
    int rel;     /* POSITION: fr_shapes_rel; else -1 */
} fr_shapes_prompt;

extern const char *const fr_shapes_color_names[FR_SHAPES_NCOLORS];
/* Palette in [-1, 1] per channel; the background is (-1, -1, -1). */
extern const float fr_shapes_palette[FR_SHAPES_NCOLORS][3];

fr_status fr_shapes_prompt_get(int prompt_id, fr_shapes_prompt *p);
/* Whether the canonical prompt p is held out for evaluation (data/shapes_prompts.c). */
int fr_shapes_is_eval(const fr_shapes_prompt *p);

/* Detector (data/shapes_detect.c). */
#define FR_SHAPES_MIN_PIXELS 5  /* smaller components are specks, ignored */
#define FR_SHAPES_MAX_PIXELS 16 /* larger ones are blobs, not objects */
#define FR_SHAPES_MAX_OBJECTS ((FR_SHAPES_H * FR_SHAPES_W) / FR_SHAPES_MIN_PIXELS + 1)
#define FR_SHAPES_COLOR_TOL 0.8f /* a pixel within this distance of a palette colour has it */
#define FR_SHAPES_POS_MARGIN 2.0f /* pixels between centroids for a relative position */

typedef struct {
    int color;
    int pixels;
    float cx, cy; /* centroid, pixel units (column, row) */
} fr_shapes_object;

typedef struct {
    int n_objects; /* components of MIN..MAX pixels */
    int n_blobs;   /* components above MAX pixels */
    int counts[FR_SHAPES_NCOLORS];
    fr_shapes_object obj[FR_SHAPES_MAX_OBJECTS];
} fr_shapes_detection;

fr_status fr_shapes_detect(const float *x, // (3, H, W)
                           fr_shapes_detection *det);
/* GenEval-style verdict for prompt_id: score in [0, 1], correct = (score == 1). */
fr_status fr_shapes_score(int prompt_id, const fr_shapes_detection *det, float *score,
                          int *correct);

#endif
