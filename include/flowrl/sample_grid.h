/* Labelled sample pictures (a run's samples/NAME.png): one row per prompt, labelled with
 * the prompt's text, each sample framed green (correct), red (incorrect) or grey (not
 * judged) by the task's detector, with a k/n count per row; several panels (before /
 * after) side by side sharing the row labels. 2-D tasks get one scatter plot per panel,
 * points coloured by prompt (a legend gives each prompt's text), a judged-incorrect point
 * drawn as an x instead of a filled square. Text uses the built-in 5x7 font
 * (flowrl/font5x7.h, upper case). Output bytes depend only on the input; files are written
 * through fr_atomic_write. */
#ifndef FLOWRL_SAMPLE_GRID_H
#define FLOWRL_SAMPLE_GRID_H

#include <stdint.h>

#include "flowrl/status.h"
#include "flowrl/task.h"

typedef struct {
    const char *title;  /* above the panel, followed by "K/N CORRECT" when judged; NULL: none */
    const float *x;     // (n_rows, n_cols, D) samples in task space (flowrl/task.h)
    const int *correct; // (n_rows, n_cols): 1 correct, 0 incorrect, -1 unknown; NULL: all unknown
} fr_sample_panel;

typedef struct {
    int scale;        /* image upscaling, nearest neighbour; 0: 4 */
    int text_scale;   /* size of a font pixel in image pixels; 0: 2 */
    int label_chars;  /* width of the label column in characters (labels wrap); 0: 22 */
    int scatter_size; /* 2-D tasks: side of a panel in pixels; 0: 384 */
} fr_sample_grid_opts;

/* Renders n_panels panels of n_rows x n_cols samples into *rgb (malloc'ed, (*h, *w, 3)).
 * row_labels: (n_rows,) strings, or NULL for no label column. o may be NULL. */
fr_status fr_sample_grid_render(const fr_task *task, int n_rows, const char *const *row_labels, int n_cols,
                                int n_panels, const fr_sample_panel *panels, const fr_sample_grid_opts *o,
                                uint8_t **rgb, int *h, int *w);

/* One panel, no title, written to path. */
fr_status fr_sample_grid_labelled(const char *path, const fr_task *task, int n_rows,
                                  const char *const *row_labels, // (n_rows,)
                                  int n_cols,
                                  const float *x,     // (n_rows, n_cols, D)
                                  const int *correct, // (n_rows, n_cols), -1 unknown; or NULL
                                  const fr_sample_grid_opts *o);

/* n_panels panels side by side (e.g. before | after), written to path. */
fr_status fr_sample_grid_side_by_side(const char *path, const fr_task *task, int n_rows,
                                      const char *const *row_labels, // (n_rows,)
                                      int n_cols, int n_panels,
                                      const fr_sample_panel *panels, // (n_panels,)
                                      const fr_sample_grid_opts *o);

/* correct[r, c] = the task's verdict (reward reward_id) on sample x[r, c] for prompt_ids[r]. */
fr_status fr_sample_grid_judge(const fr_task *task, int reward_id, int n_rows,
                               const int *prompt_ids, // (n_rows,)
                               int n_cols,
                               const float *x, // (n_rows, n_cols, D)
                               int *correct);  // (n_rows, n_cols)

/* The whole job for a run directory: rows labelled with the prompts' text
 * (task->prompt_text), every sample judged by reward reward_id, panels side by side.
 * titles: (n_panels,) or NULL; xs: (n_panels,) pointers to (n_rows, n_cols, D). */
fr_status fr_sample_grid_prompts(const char *path, const fr_task *task, int reward_id, int n_rows,
                                 const int *prompt_ids, // (n_rows,)
                                 int n_cols, int n_panels,
                                 const char *const *titles,
                                 const float *const *xs,
                                 const fr_sample_grid_opts *o);

#endif
