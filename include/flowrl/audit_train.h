/* The audit log of a trainer whose output is one checkpoint file (`flowrl gmflow train`,
 * `flowrl piflow train`, `flowrl bc`): the format and the env header of `flowrl train`'s
 * RUNDIR/audit.log (flowrl/audit.h), so `flowrl audit A.audit.log B.audit.log` compares two
 * such runs step by step (docs/design.md §2).
 *
 * Every optimiser step N is one audit step holding, in this order:
 *   scalar loss        F64  the step's loss (before the update)
 *   grad.NAME               each parameter's gradient (the network's names)
 *   scalar grad_norm   F64  the L2 norm of the whole gradient, summed in double in parameter
 *                           order (none of the three clips: a record, not a control)
 *   NAME                    each parameter after the update
 *   optim.m.NAME, optim.v.NAME   the AdamW moments after the update
 *   scalar optim.step  F64  AdamW's update count
 *   ema.NAME                the EMA weights, where the trainer keeps one
 * The parameter and moment names are the checkpoint's tensor names. */
#ifndef FLOWRL_AUDIT_TRAIN_H
#define FLOWRL_AUDIT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/audit.h"
#include "flowrl/backend.h"
#include "flowrl/mlp.h"
#include "flowrl/optim.h"

/* The log next to a checkpoint: CKPT with its ".safetensors" suffix replaced by ".audit.log"
 * (appended when it has none). FR_ERR_ARG when it does not fit n bytes. */
fr_status fr_audit_train_path(const char *ckpt, char *buf, size_t n);

/* Where the log goes and what it continues. */
typedef struct {
    const char *log;      /* the log's path (--audit FILE); NULL or "": fr_audit_train_path(out) */
    const char *out;      /* the checkpoint the run writes */
    const char *resumed;  /* the checkpoint it continues; NULL or "": a fresh run */
    int64_t from;         /* the step that checkpoint holds (0 for a fresh run) */
    const char *step_key; /* non-NULL: from is instead read from the resumed checkpoint's metadata */
    const char *cmd;      /* env run.cmd: "gmflow train", "piflow train", "bc" */
    const fr_audit_kv *extra; /* more env lines (at most 15) */
    size_t n_extra;
} fr_audit_train_cfg;

/* Opens the log for a run whose next step is from + 1, with the env header of `flowrl train`
 * (backend and threads of be) plus run.cmd and the extra lines; path (n bytes) receives its path.
 *   fresh (from 0): an existing file at the path is replaced.
 *   resumed (from > 0): the log is continued when it exists, else the log of the resumed
 *     checkpoint (fr_audit_train_path(resumed)) is copied to it when that exists; it is then
 *     cut back to step `from` (fr_audit_truncate_to_step: a killed run's later steps go;
 *     FR_ERR_MISMATCH when it ends before `from`) and a resume block is appended. With
 *     neither, a new log starts at step from + 1 (its first steps are missing from any
 *     comparison). */
fr_status fr_audit_train_open(fr_audit **a, const fr_audit_train_cfg *c, const fr_backend *be, char *path, size_t n);

/* The trained parameters a step records: their tensors in be's memory (value and grad) and
 * name(ctx, p), the checkpoint's name of parameter p. */
typedef struct {
    fr_backend *be;
    const fr_param *params;
    int n;
    const char *(*name)(const void *ctx, int p);
    const void *ctx;
} fr_audit_params;

/* The records of step `step` listed above (opt and ema may be NULL), then end-step. Tensors are
 * copied out of the parameters' backend memory. */
fr_status fr_audit_train_step_params(fr_audit *a, int64_t step, double loss, const fr_audit_params *v,
                                     const fr_adamw_state *opt, const fr_ema *ema);

/* The same for an fr_mlp's parameters under its own names. */
fr_status fr_audit_train_step(fr_audit *a, int64_t step, double loss, const fr_mlp *net, const fr_adamw_state *opt,
                              const fr_ema *ema);

#endif
