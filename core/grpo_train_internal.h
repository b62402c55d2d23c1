/* Shared between the files of the Flow-GRPO training loop (core/grpo_train*.c). */
#ifndef FLOWRL_CORE_GRPO_TRAIN_INTERNAL_H
#define FLOWRL_CORE_GRPO_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/evaluate.h"
#include "flowrl/grpo_train.h"
#include "flowrl/safetensors.h"

#define FR_TRAIN_CONFIG_NAME "config.json"
#define FR_TRAIN_METRICS_NAME "metrics.jsonl"
#define FR_TRAIN_EVAL_NAME "eval.json"
#define FR_TRAIN_CURVE_NAME "curve.svg"

/* Fast window's r1 after resolving -1 (= T/2); whether training recomputes CFG. */
int64_t fr_train_fast_r1(const fr_grpo_train_opts *o);
int fr_train_cfg_on(const fr_grpo_train_opts *o);
/* Metadata "train.<key>" of every option that determines the bits (all but out, epochs). */
fr_status fr_train_opts_to_meta(const fr_grpo_train_opts *o, fr_st_file *f);

/* Whole-file read (NUL-terminated) and write-to-temporary-then-rename. */
fr_status fr_train_read_file(const char *path, char **buf, size_t *len);
fr_status fr_train_write_file_atomic(const char *path, const char *data, size_t len, int newline);

/* ---- run-directory files (core/grpo_train_files.c) ----------------------------------- */

/* Per-epoch curve points, kept for curve.svg. */
typedef struct {
    int64_t n, cap;
    double *reward, *acc;
} fr_train_curve;

void fr_train_curve_free(fr_train_curve *c);
fr_status fr_train_curve_push(fr_train_curve *c, double reward, double acc);
fr_status fr_train_curve_write_svg(const fr_train_curve *c, const char *path);

/* Appends one JSON line for ev to RUNDIR/metrics.jsonl (flushed). */
fr_status fr_train_metrics_append(const char *dir, const fr_train_epoch_event *ev);
/* Cuts metrics.jsonl to its first n lines (FR_ERR_MISMATCH if it has fewer) and loads the
 * curve points of those lines. */
fr_status fr_train_metrics_truncate(const char *dir, int64_t n, fr_train_curve *curve);

/* The largest N with RUNDIR/checkpoints/step-N.safetensors (0: none); removes stale
 * temporary files of interrupted writes. */
fr_status fr_train_last_checkpoint(const char *dir, int64_t *n);
/* Removes step-M for M <= newest − keep (keep 0: none removed). */
fr_status fr_train_prune_checkpoints(const char *dir, int64_t newest, int64_t keep);

/* eval.json: sets object `key` ("before", "after") to the result r, keeping the others. */
fr_status fr_train_eval_json_set(const char *dir, const char *key, const fr_task *t, const fr_eval_result *r,
                                 int64_t epoch);
/* Reads back overall accuracy and mean score of `key`; *found = 0 if absent. */
fr_status fr_train_eval_json_get(const char *dir, const char *key, int *found, double *acc, double *score);
/* samples/NAME.png: shapes a grid of the eval prompts' first samples, gmm2d a scatter. */
fr_status fr_train_sample_grid(const char *dir, const char *name, const fr_model *m, const fr_ops *ops,
                               const fr_task *t, const fr_rollout_cfg *rc, int64_t n_per_prompt);

/* "DIR/NAME" into buf (FR_ERR_ARG if it does not fit). */
fr_status fr_train_path(char *buf, size_t n, const char *dir, const char *name);

#endif
