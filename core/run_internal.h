/* Shared between the files of the run loop (core/run*.c; flowrl/run.h). */
#ifndef FLOWRL_CORE_RUN_INTERNAL_H
#define FLOWRL_CORE_RUN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flowrl/algo.h"
#include "flowrl/audit.h"
#include "flowrl/dir_lock.h"
#include "flowrl/evaluate.h"
#include "flowrl/run.h"
#include "flowrl/safetensors.h"

#define FR_TRAIN_PATH_MAX FR_OPT_PATH_MAX
#define FR_TRAIN_CONFIG_NAME "config.json"
#define FR_TRAIN_METRICS_NAME "metrics.jsonl"
#define FR_TRAIN_EVAL_NAME "eval.json"
#define FR_TRAIN_CURVE_NAME "curve.svg"

/* Per-epoch curve points (curve.svg): reward mean and training accuracy per epoch, held-out
 * accuracy at each evaluation. */
typedef struct {
    int64_t n, cap;
    double *reward, *acc;
    int64_t n_eval, cap_eval;
    double *eval_epoch, *eval_acc;
} fr_train_curve;

struct fr_run_private {
    const fr_run_env *env;
    struct fr_audit *audit;
    int64_t rec_step;             /* the audit step being written */
    void *state;                  /* the algorithm's */
    fr_ddpo_tracker *ddpo;
    /* an epsilon base's DDPM ᾱ table (n_train,) for its ddim rollouts; NULL for a velocity base */
    float *alpha_bar;
    int64_t ddpm_n_train;
    fr_train_curve curve;
    fr_run_epoch_event ev;        /* metrics of the epoch being run */
    char metric_keys[FR_RUN_MAX_METRICS][96]; /* ev.m[k].key points here: fr_run_metric copies the key, so
                                               * an algorithm may build it in a stack buffer */
    int64_t zero_adv_streak;      /* epochs in a row with kept == 0 */
    int warned_kl, warned_zero;
    int state_nonfinite;          /* fr_run_check_finite failed on rollout samples */
    int eval_reward_id;
    int created_dir;              /* fr_run_new made the directory (removed on early failure) */
    int64_t ckpt_written;         /* checkpoints written by this process */
    fr_lock_file lock;            /* the run directory lock (flowrl/dir_lock.h) */
    double split_seconds;         /* this epoch's time in the split rollout and rewards (core/run_dist.c) */
    int writer;                   /* 1: this process writes the run directory (rank 0 of
                                     flowrl/dist.h; the others compute and write nothing) */
    uint64_t record_bytes;        /* d2h bytes for the audit log and checkpoints (fr_run_host_copy) */
    uint64_t reward_bytes;        /* d2h bytes of the reward's input (fr_run_reward_input) */
    void *rec_host;               /* fr_run_rec_dev's host copy, kept between records (a fresh
                                     allocation of MBs faults in every page each time) */
    size_t rec_host_cap;
    fr_tensor *env_values, *env_grads; /* an environment algorithm's list as r->pol's views */
    uint64_t nfe_total;           /* forward-equivalents of the epochs so far (metric nfe.total;
                                     checkpoint metadata "nfe.total") */
};

/* ---- run-directory files (core/run_files.c) ------------------------------------------- */

void fr_train_curve_free(fr_train_curve *c);
fr_status fr_train_curve_push(fr_train_curve *c, double reward, double acc);
fr_status fr_train_curve_push_eval(fr_train_curve *c, double epoch, double acc);
/* curve.svg: reward and training accuracy per epoch (smoothed), held-out accuracy points. */
fr_status fr_train_curve_write_svg(const fr_train_curve *c, const char *title, const char *path);

/* --lora-rank > 0 (core/run_lora.c): the loaded base moves into r->lora and r->pol becomes the
 * view of its trained adapter "default"; an algorithm that keeps a second full copy of the policy
 * is refused in one line. */
fr_status fr_run_setup_lora(fr_run *r);

/* --resume (core/run_ckpt.c): the checkpoint to resume from (from_step > 0: that one, else the
 * newest; a one-line error listing the run's checkpoints when from_step has none), and, when
 * checkpoint `bad` does not load, the error s re-raised with the newest older checkpoint that
 * verifies, to resume from with --from-step. */
fr_status fr_run_pick_checkpoint(const fr_run *r, int64_t from_step, int64_t *last);
void fr_run_offer_intact(const fr_run *r, int64_t bad, fr_status s);

/* The epoch's metrics the run loop records for every algorithm (core/run_record.c): its
 * host/backend copies since `start` (copies.*) and its rows through the network since `start`
 * with the run's running forward-equivalents (nfe.*). */
void fr_run_copy_metrics(fr_run *r, const fr_copy_stats *start, uint64_t record0, uint64_t reward0);
void fr_run_nfe_metrics(fr_run *r, const fr_work_stats *start);

/* Appends one JSON line for ev to RUNDIR/metrics.jsonl (flushed). */
fr_status fr_train_metrics_append(const char *dir, const fr_run_epoch_event *ev);
/* Cuts metrics.jsonl to its first n lines (FR_ERR_MISMATCH if it has fewer) and loads the
 * curve points of those lines. */
fr_status fr_train_metrics_truncate(const char *dir, int64_t n, fr_train_curve *curve);

/* The checkpoint steps of RUNDIR/checkpoints, ascending (*steps malloc'd, may be NULL when
 * *n = 0); removes stale temporary files of interrupted writes. */
fr_status fr_train_list_checkpoints(const char *dir, int64_t **steps, int64_t *n);
/* Removes all but the newest `keep` checkpoints (keep 0: none removed). */
fr_status fr_train_prune_checkpoints(const char *dir, int64_t keep);

/* eval.json: sets object `key` ("before", "epoch-N", "after") to the result r. */
fr_status fr_train_eval_json_set(const char *dir, const char *key, const fr_task *t, const fr_eval_result *r,
                                 int64_t epoch);
/* Reads back overall accuracy and mean score of `key`; *found = 0 if absent. */
fr_status fr_train_eval_json_get(const char *dir, const char *key, int *found, double *acc, double *score);
/* samples/NAME.png: the eval prompts' first n_per_prompt samples of each model side by side
 * (panel titles), a row per prompt labelled with its text, each sample marked by the task's
 * detector (flowrl/sample_grid.h); gmm2d a scatter per panel. */
fr_status fr_train_sample_grid(const char *dir, const char *name, const fr_model *const *models,
                               const char *const *titles, int n_models, fr_backend *be, const fr_task *t,
                               int reward_id, const fr_rollout_cfg *rc, int64_t n_per_prompt);

/* "DIR/NAME" into buf (FR_ERR_ARG if it does not fit). */
fr_status fr_train_path(char *buf, size_t n, const char *dir, const char *name);

/* ---- options (core/run_opts.c) --------------------------------------------------------- */

/* Every saved option of the run (common and the algorithm's) into an fr_opts. */
void fr_run_bind(fr_opts *o, const fr_run_opts *ro, const fr_algo *a, const void *ao);
/* config.json of the run (with algo, base_digest and the resolved values). */
fr_status fr_run_write_config(const fr_run *r);
/* Identity metadata "train.<key>" of every saved, non-resumable option, plus task,
 * base.digest and algo. */
fr_status fr_run_meta(const fr_run *r, fr_st_file *f);

/* ---- checkpoints (core/run_ckpt.c) ---------------------------------------------------- */

fr_status fr_run_save_checkpoint(fr_run *r, int64_t epoch);
/* Loads step-N: digests verified, metadata equal to the run's, and the parameters' digests
 * equal to audit.log's records of step N where the log has them. */
fr_status fr_run_load_checkpoint(fr_run *r, int64_t epoch);

/* ---- many ranks (core/run_dist.c; flowrl/dist.h) ---------------------------------------- */

/* FR_ERR_ARG when the ranks outnumber the prompts of an epoch. */
fr_status fr_run_dist_check(const fr_run *r);

/* ---- evaluation (core/run_eval.c) ----------------------------------------------------- */

/* Held-out evaluation of the policy (EMA weights when on) under eval.json key `key`
 * ("before", "epoch-N", "after"), with the sample grid samples/KEY.png. */
fr_status fr_run_eval_current(fr_run *r, const char *key, int64_t epoch, double *acc, double *score);
fr_status fr_run_evaluate(fr_run *r, const fr_model *m, const char *key, int64_t epoch, double *acc, double *score);

/* core/run.c's steps, shared with fr_run_resume (core/run_resume.c) */
void fr_run_result_init(fr_run_result *res);
fr_status fr_run_check_opts(const fr_run_opts *ro, const fr_algo *a, const void *ao);
void fr_run_init(fr_run *r, struct fr_run_private *pv, const fr_run_opts *ro, const fr_algo *a, const void *ao,
                 const fr_run_env *env);
fr_status fr_run_setup(fr_run *r);
fr_status fr_run_open_audit(fr_run *r);
void fr_run_header(fr_run *r);
fr_status fr_run_loop(fr_run *r, int64_t first, fr_run_result *res);
/* teardown, and the run directory's fate on failure (fresh: the run was new) */
fr_status fr_run_finish(fr_run *r, fr_status s, int fresh);

#endif
