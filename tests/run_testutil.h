/* Helpers of the run-loop suites (tests/test_algos.c, test_train.c, test_runs.c): a scratch
 * directory with a tiny fresh gmm2d base (H 16, 1 block; an epoch takes milliseconds), tiny
 * run options for an algorithm of the registry, runs through the library and the CLI, and
 * comparisons of audit records. */
#ifndef FLOWRL_TESTS_RUN_TESTUTIL_H
#define FLOWRL_TESTS_RUN_TESTUTIL_H

#include <stdint.h>
#include <sys/types.h>

#include "flowrl/algo.h"

extern char fr_rt_dir[256];   /* the scratch directory of the current test */
extern char fr_rt_base[320];  /* DIR/base.safetensors */
extern char fr_rt_base_eps[320]; /* DIR/base-eps.safetensors: the same model predicting epsilon */

void fr_rt_setup(void);      /* checked fixture: scratch dir + base */
void fr_rt_teardown(void);

/* "DIR/name" (a static buffer per call site is not enough: returns into buf). */
const char *fr_rt_path(char *buf, size_t n, const char *name);

/* An algorithm's options: defaults, its tiny() configuration, the base of its base_pred, gmm2d, seed 11, no
 * evaluation, run directory DIR/run. ao is allocated (free it). An algorithm that trains on an
 * environment (fr_algo.on_env) gets the first registered environment instead of a base, its
 * options in eo (allocated). */
typedef struct {
    fr_run_opts ro;
    void *ao, *eo;
    const fr_algo *a;
} fr_rt_opts;
void fr_rt_opts_init(fr_rt_opts *o, const fr_algo *a, const char *run, int64_t epochs);
void fr_rt_opts_free(fr_rt_opts *o);

/* An algorithm that refuses to run without a preference file (its check fails with its option
 * "prefs" empty: Diffusion-DPO) gets a synthetic one of task (gmm2d, shapes): 16 seeded pairs
 * of values in [-1, 1], prompts i mod n_train, r_w = 1 > r_l, written once as
 * DIR/prefs-TASK.safetensors. fr_rt_opts_init calls it with gmm2d; a test that switches the
 * task calls it again. Other algorithms are left as they are. */
void fr_rt_set_prefs(fr_rt_opts *o, const char *task);

/* A small fresh shapes model (x0 head for velocity, plain for epsilon; two condition slots, H = F = E = 16, one block), as
 * fr_rt_setup's gmm2d one, predicting pred (fr_pred), saved as DIR/shapes-base.safetensors
 * (-eps for epsilon; path into buf); returns its parameter count. */
double fr_rt_small_shapes_base(char *buf, size_t n, int pred);

/* Runs through the library (asserts success unless want != FR_OK). */
fr_status fr_rt_run(const fr_rt_opts *o, const char *backend, int threads, const fr_run_cb *cb, fr_run_result *res);
/* Resumes DIR/run to `epochs` (0: as config.json says) through the library. */
fr_status fr_rt_resume(const char *run, int64_t epochs, int64_t from_step, const char *backend, int threads,
                       fr_run_result *res);

/* The record lines (step / scalar / end-step) of DIR/run/audit.log, malloc'd. */
char *fr_rt_records(const char *run);
/* Asserts equal records through `steps` complete steps, and `flowrl audit` says identical. */
void fr_rt_assert_same_records(const char *a, const char *b, int64_t steps);

/* The CLI: `flowrl ARGS` with stdout+stderr captured, its exit status. */
int fr_rt_cli(char *out, size_t n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Starts `flowrl train` with argv (NULL-terminated, without the program name) in the
 * background, output to /dev/null. */
pid_t fr_rt_spawn(const char *const *args);
/* Waits until DIR/run/checkpoints/ holds step-N.safetensors or a later step (the child is mid-run). */
void fr_rt_wait_checkpoint(const char *run, int64_t step, pid_t pid);

/* The mean reward of a run's first epoch and the mean of its last three (a learning test's
 * two numbers): pass fr_rt_curve_record as the epoch callback with a zeroed fr_rt_curve. */
typedef struct {
    double first, last3[3];
    int64_t n;
} fr_rt_curve;
int fr_rt_curve_record(const fr_run_epoch_event *ev, void *user);
double fr_rt_curve_last3(const fr_rt_curve *c);

/* Metrics of epochs 1..16 by key (NAN where absent): pass fr_rt_metrics_record as the epoch
 * callback with keys set and the rest zeroed; v[k][e − 1] is keys[k] of epoch e. */
typedef struct {
    const char *const *keys; /* NULL-terminated, at most 8 */
    double v[8][16];
    int64_t epochs;          /* the last epoch seen */
} fr_rt_metrics;
int fr_rt_metrics_record(const fr_run_epoch_event *ev, void *user);

#endif
