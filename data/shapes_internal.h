/* The shapes task's prompts, palette and detector, shared by data/shapes*.c, data/task.c
 * and the task tests (not part of the public API; the task itself: flowrl/task.h). */
#ifndef FLOWRL_DATA_SHAPES_INTERNAL_H
#define FLOWRL_DATA_SHAPES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/task.h"

#define FR_SHAPES_NCOLORS 4  /* red, green, blue, yellow */
#define FR_SHAPES_OBJ 3      /* objects are OBJ x OBJ squares */
#define FR_SHAPES_GRID 4     /* ... placed on a GRID x GRID lattice of cells */
#define FR_SHAPES_MAX_COUNT 4

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

/* FR_ERR_NUMERIC naming `who` and the first non-finite element of x (3, H, W), else FR_OK. */
fr_status fr_shapes_check_finite(const float *x, const char *who);
fr_status fr_shapes_detect(const float *x, // (3, H, W)
                           fr_shapes_detection *det);
/* The same, and pix (H·W,) = each pixel's object index in det->obj, or FR_SHAPES_PIX_* (pix may
 * be NULL). */
enum { FR_SHAPES_PIX_BACKGROUND = -1, FR_SHAPES_PIX_SPECK = -2, FR_SHAPES_PIX_BLOB = -3 };
fr_status fr_shapes_detect_pixels(const float *x, // (3, H, W)
                                  fr_shapes_detection *det, int *pix);
/* The per-pixel correctness map (fr_task.pixel_reward; data/shapes_detect.c). */
fr_status fr_shapes_pixel_reward(int reward_id, int prompt_id, const float *x, // (3, H, W)
                                 float *map);                                 // (H·W,)
/* The redquad reward (PXPO's miniature, spec/more.md §3; data/shapes_redquad.c): the map (H·W,)
 * r_ij = redness_ij · (+1 in the top-left quadrant, −1 elsewhere) and its mean. */
enum { FR_SHAPES_REWARD_GENEVAL = 0, FR_SHAPES_REWARD_STRICT = 1, FR_SHAPES_REWARD_CLASSIFIER = 2,
       FR_SHAPES_REWARD_REDQUAD = 3, FR_SHAPES_N_REWARDS = 4 };
fr_status fr_shapes_redquad_map(const float *x, // (3, H, W)
                                float *map);    // (H·W,)
fr_status fr_shapes_redquad(const float *x, float *score);
/* GenEval-style verdict for prompt_id: score in [0, 1], correct = (score == 1). */
fr_status fr_shapes_score(int prompt_id, const fr_shapes_detection *det, float *score,
                          int *correct);

fr_status fr_shapes_prompt_text(int prompt_id, char *buf, size_t cap);
fr_status fr_shapes_prompt_tokens(int prompt_id, int32_t *tokens); // tokens: (FR_SHAPES_N_SLOTS,)
int fr_shapes_prompt_group(int prompt_id);
int fr_shapes_n_train_prompts(void);
int fr_shapes_n_eval_prompts(void);

fr_status fr_shapes_sample(int prompt_id, uint32_t seed, uint32_t index, float *x); // x: (D,)
fr_status fr_shapes_reward(int reward_id, int prompt_id, const float *x, float *score,
                           int *correct);
/* fr_task.reward_grad: the classifier reward (id 2) only; grad may be NULL. */
fr_status fr_shapes_reward_grad(int reward_id, int prompt_id, const float *x, float *score, float *grad);

#endif
